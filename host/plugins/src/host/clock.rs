//! `plugboard:pbx/clock` (0.1.2): the tenant's clock, from
//! [`crate::TenantServices`] (a controlled clock under test).

use crate::bindings::plugboard::pbx::clock::{Host, LocalTime};
use crate::state::PluginState;
use crate::types as t;

impl Host for PluginState {
    async fn now(&mut self) -> LocalTime {
        self.cpu.reset_stretch();
        local(self.services.now())
    }

    async fn to_local(&mut self, unix_ms: u64) -> LocalTime {
        self.cpu.reset_stretch();
        local(self.services.to_local(unix_ms))
    }
}

fn local(l: t::LocalTime) -> LocalTime {
    LocalTime {
        unix_ms: l.unix_ms,
        year: l.year,
        month: l.month,
        day: l.day,
        hour: l.hour,
        minute: l.minute,
        second: l.second,
        weekday: l.weekday,
        utc_offset_minutes: l.utc_offset_minutes,
        zone: l.zone,
    }
}
