//! Host implementations of the `plugboard:pbx@0.1.2` imports, one module per
//! interface, each with its own `add_to_linker` call in [`add_to_linker`] (a
//! future grant check decides per interface whether it is linked).

use wasmtime::component::{HasSelf, Linker};

use crate::bindings::plugboard::pbx;
use crate::state::PluginState;

mod call;
mod clock;
mod config;
mod directory;
mod http;
mod kv;
mod log;
mod mail;
mod mwi;
mod recordings;
mod redirect;
mod speech;

impl pbx::types::Host for PluginState {}

/// Link every plugboard interface into `linker`.
pub(crate) fn add_to_linker(linker: &mut Linker<PluginState>) -> wasmtime::Result<()> {
    pbx::types::add_to_linker::<_, HasSelf<PluginState>>(linker, |s| s)?;
    pbx::call::add_to_linker::<_, HasSelf<PluginState>>(linker, |s| s)?;
    pbx::kv::add_to_linker::<_, HasSelf<PluginState>>(linker, |s| s)?;
    pbx::recordings::add_to_linker::<_, HasSelf<PluginState>>(linker, |s| s)?;
    pbx::config::add_to_linker::<_, HasSelf<PluginState>>(linker, |s| s)?;
    pbx::log::add_to_linker::<_, HasSelf<PluginState>>(linker, |s| s)?;
    pbx::mail::add_to_linker::<_, HasSelf<PluginState>>(linker, |s| s)?;
    pbx::mwi::add_to_linker::<_, HasSelf<PluginState>>(linker, |s| s)?;
    pbx::clock::add_to_linker::<_, HasSelf<PluginState>>(linker, |s| s)?;
    pbx::speech::add_to_linker::<_, HasSelf<PluginState>>(linker, |s| s)?;
    pbx::directory::add_to_linker::<_, HasSelf<PluginState>>(linker, |s| s)?;
    pbx::redirect::add_to_linker::<_, HasSelf<PluginState>>(linker, |s| s)?;
    crate::bindings::whttp::add_to_linker::<_, HasSelf<PluginState>>(linker, |s| s)?;
    Ok(())
}
