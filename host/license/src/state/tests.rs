use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use plugboard_registry::keys::{KeyId, SecretKey};

use super::*;
use crate::clock::{Clock, ManualClock};
use crate::file::tests::BODY;
use crate::log::{FileGraceLog, MemoryLog};

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// BODY: site pbx1.example.com, issued 2026-11-01, expires 2027-11-30,
/// calls 100, tenants 10, mailboxes 500, acme-queue for a.example.com,
/// acme-fax for all.
const SITE: &str = "pbx1.example.com";
const EXPIRES_AT: &str = "2027-12-01T00:00:00Z";

struct Fx {
    issuer: SecretKey,
    vendor: SecretKey,
    clock: Arc<ManualClock>,
    log: Arc<dyn GraceLog>,
}

impl Fx {
    fn new(now: &str) -> Fx {
        Fx {
            issuer: SecretKey::generate("plugboard").unwrap(),
            vendor: SecretKey::generate("acme").unwrap(),
            clock: Arc::new(ManualClock::new(t(now))),
            log: Arc::new(MemoryLog::new()),
        }
    }

    fn setup(&self) -> Setup {
        let vendor = self.vendor.public();
        Setup {
            site: SITE.into(),
            issuers: vec![self.issuer.public()],
            vendors: Arc::new(move |id: &KeyId| (vendor.id() == *id).then(|| vendor.clone())),
            clock: self.clock.clone(),
            grace: self.log.clone(),
        }
    }

    fn licensing(&self, texts: &[&str]) -> Licensing {
        let files: Vec<(String, &str)> = texts
            .iter()
            .enumerate()
            .map(|(i, t)| (format!("l{i}.toml"), *t))
            .collect();
        Licensing::from_texts(self.setup(), &files)
    }

    fn site_licence(&self, body: &str) -> String {
        file::sign(body, &self.issuer).unwrap()
    }

    fn set(&self, s: &str) {
        self.clock.set(t(s));
    }
}

fn cap(calls: u32, tenants: u32, mailboxes: u32) -> Capacity {
    Capacity {
        calls: Some(calls),
        tenants: Some(tenants),
        mailboxes: Some(mailboxes),
    }
}

#[test]
fn unlicensed_is_unlimited() {
    let fx = Fx::new("2027-01-01T00:00:00Z");
    let l = fx.licensing(&[]);
    let s = l.status();
    assert_eq!(s.state, State::Unlicensed);
    assert_eq!(s.effective, Capacity::UNLIMITED);
    assert_eq!(
        (s.licensed, s.licence, s.next, s.days_left),
        (None, None, None, None)
    );
    assert!(s.problems.is_empty());
    assert_eq!(l.admit(Item::Calls, u32::MAX - 1), Ok(()));
    assert_eq!(l.reminder_due(None), None);
    assert_eq!(l.site(), SITE);
    let e = l.entitled("acme-queue", None, "a.example.com").unwrap_err();
    assert_eq!(
        e,
        "no licence entitles feature acme-queue for tenant a.example.com"
    );
    let json = serde_json::to_value(l.status()).unwrap();
    assert_eq!(json["state"]["kind"], "unlicensed");
}

#[test]
fn walks_not_yet_valid_valid_expiring_expired_demo() {
    let fx = Fx::new("2026-11-15T00:00:00Z");
    let body = BODY.replace(
        "issued = 2026-11-01",
        "issued = 2026-11-01\nnot_before = 2026-12-01",
    );
    let l = fx.licensing(&[&fx.site_licence(&body)]);

    // Not yet valid: as unlicensed.
    let s = l.status();
    assert_eq!(s.state, State::NotYetValid);
    assert_eq!(s.effective, Capacity::UNLIMITED);
    assert_eq!(s.licensed, Some(cap(100, 10, 500)));
    let summary = s.licence.unwrap();
    assert_eq!(
        (
            summary.id.as_str(),
            summary.signer.as_str(),
            summary.features.clone()
        ),
        ("PB-2026-0001", "plugboard", vec!["recording".to_string()])
    );
    assert_eq!(
        s.next,
        Some(Transition {
            state: State::Valid,
            at: t("2026-12-01T00:00:00Z")
        })
    );
    assert_eq!(l.admit(Item::Calls, 1000), Ok(()));
    let e = l.entitled("acme-queue", None, "a.example.com").unwrap_err();
    assert!(e.contains("is not valid before 2026-12-01"), "{e}");

    // Valid.
    fx.set("2026-12-01T00:00:00Z");
    let s = l.status();
    assert_eq!(s.state, State::Valid);
    assert_eq!(s.effective, cap(100, 10, 500));
    assert_eq!(s.days_left, Some(365));
    assert_eq!(
        s.next,
        Some(Transition {
            state: State::Expiring { days_left: 90 },
            at: t("2027-09-02T00:00:00Z")
        })
    );
    assert_eq!(l.admit(Item::Calls, 99), Ok(()));
    let r = l.admit(Item::Calls, 100).unwrap_err();
    assert_eq!(
        r.to_string(),
        "licence capacity reached: 100 concurrent calls (licensed capacity, licence valid until 2027-11-30)"
    );
    assert_eq!(l.entitled("acme-queue", None, "a.example.com"), Ok(()));
    assert_eq!(l.reminder_due(None), None);

    // One second before 90 days left: still valid (91 days, rounded up).
    fx.set("2027-09-01T23:59:59Z");
    assert_eq!(l.state(), State::Valid);
    assert_eq!(l.status().days_left, Some(91));

    // Expiring at exactly 90 days left.
    fx.set("2027-09-02T00:00:00Z");
    let s = l.status();
    assert_eq!(s.state, State::Expiring { days_left: 90 });
    assert_eq!(s.effective, cap(100, 10, 500));
    let demo_at = t("2028-01-30T00:00:00Z");
    assert_eq!(
        s.next,
        Some(Transition {
            state: State::Expired { demo_at },
            at: t(EXPIRES_AT)
        })
    );
    let r = l.admit(Item::Mailboxes, 500).unwrap_err();
    assert_eq!(
        r.to_string(),
        "licence capacity reached: 500 mailboxes (licensed capacity, licence expires on 2027-11-30)"
    );
    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(
        json["state"],
        serde_json::json!({"kind": "expiring", "days_left": 90})
    );
    assert_eq!(json["next"]["state"]["kind"], "expired");
    assert_eq!(json["next"]["at"], "2027-12-01T00:00:00Z");
    assert_eq!(json["effective"]["calls"], 100);
    assert_eq!(json["licence"]["expires"], "2027-11-30");

    // Last second of the last day.
    fx.set("2027-11-30T23:59:59Z");
    assert_eq!(l.state(), State::Expiring { days_left: 1 });

    // Expired: a quarter, rounded up.
    fx.set(EXPIRES_AT);
    let s = l.status();
    assert_eq!(s.state, State::Expired { demo_at });
    assert_eq!(s.effective, cap(25, 3, 125));
    assert_eq!(s.licensed, Some(cap(100, 10, 500)));
    assert_eq!(s.days_left, Some(0));
    assert_eq!(
        s.next,
        Some(Transition {
            state: State::Demo,
            at: demo_at
        })
    );
    assert_eq!(l.admit(Item::Calls, 24), Ok(()));
    let r = l.admit(Item::Calls, 25).unwrap_err();
    assert_eq!(
        r.to_string(),
        "licence capacity reached: 25 concurrent calls (expired on 2027-11-30, reduced capacity)"
    );
    assert_eq!(r.item, Item::Calls);
    assert_eq!(r.limit, 25);
    assert_eq!(l.entitled("acme-queue", None, "a.example.com"), Ok(()));
    assert_eq!(l.reminder_due(None), None);
    assert_eq!(
        serde_json::to_value(&s).unwrap()["state"]["demo_at"],
        "2028-01-30T00:00:00Z"
    );

    fx.set("2028-01-29T23:59:59Z");
    assert!(matches!(l.state(), State::Expired { .. }));

    // Demo: 1 call, 1 tenant, 10 mailboxes.
    fx.set("2028-01-30T00:00:00Z");
    let s = l.status();
    assert_eq!(s.state, State::Demo);
    assert_eq!(s.effective, cap(1, 1, 10));
    assert_eq!(s.next, None);
    assert_eq!(s.days_left, Some(-60));
    let r = l.admit(Item::Calls, 1).unwrap_err();
    assert_eq!(
        r.to_string(),
        "licence capacity reached: 1 concurrent calls (licence expired on 2027-11-30, demo level)"
    );
    assert_eq!(l.admit(Item::Mailboxes, 9), Ok(()));
    assert!(l.admit(Item::Tenants, 1).is_err());
    let e = l.entitled("acme-queue", None, "a.example.com").unwrap_err();
    assert_eq!(
        e,
        "the licence PB-2026-0001 carrying acme-queue expired on 2027-11-30, demo level"
    );
    assert_eq!(serde_json::to_value(&s).unwrap()["state"]["kind"], "demo");
}

#[test]
fn expired_capacity_is_a_quarter_with_minimum_one_and_demo_never_exceeds_the_licence() {
    let fx = Fx::new(EXPIRES_AT);
    let body = BODY
        .replace("calls = 100", "calls = 2")
        .replace("tenants = 10", "tenants = 1")
        .replace("mailboxes = 500", "mailboxes = 5");
    let l = fx.licensing(&[&fx.site_licence(&body)]);
    assert_eq!(l.status().effective, cap(1, 1, 2));
    fx.clock.advance(Duration::days(EXPIRED_DAYS));
    assert_eq!(l.status().effective, cap(1, 1, 5));
}

#[test]
fn reminders_at_90_60_30_and_daily_from_15_each_once() {
    let fx = Fx::new(EXPIRES_AT);
    let l = fx.licensing(&[&fx.site_licence(BODY)]);
    fx.clock.set(t(EXPIRES_AT) - Duration::days(100));
    let mut last = None;
    let mut sent = Vec::new();
    while fx.clock.now() < t(EXPIRES_AT) + Duration::days(2) {
        if let Some(r) = l.reminder_due(last) {
            assert_eq!(r.days_left, i64::from(r.mark), "{r:?}");
            assert_eq!(r.expires, NaiveDate::from_ymd_opt(2027, 11, 30).unwrap());
            assert_eq!(r.licence_id, "PB-2026-0001");
            last = Some(r.mark);
            sent.push(r.mark);
        }
        fx.clock.advance(Duration::hours(1));
    }
    assert_eq!(sent, REMINDER_MARKS.to_vec());
}

#[test]
fn a_clock_jump_sends_only_the_latest_reminder() {
    let fx = Fx::new(EXPIRES_AT);
    let l = fx.licensing(&[&fx.site_licence(BODY)]);
    let log = MemoryLog::new();
    fx.clock.set(t(EXPIRES_AT) - Duration::days(100));
    assert_eq!(l.due_reminder(&log), None);
    fx.clock.set(t(EXPIRES_AT) - Duration::days(50));
    let r = l.due_reminder(&log).unwrap();
    assert_eq!((r.mark, r.days_left), (60, 50));
    log.record_sent(&r.sha256, r.mark);
    assert_eq!(l.due_reminder(&log), None);
    fx.clock.set(t(EXPIRES_AT) - Duration::days(45));
    assert_eq!(l.due_reminder(&log), None);
    fx.clock.set(t(EXPIRES_AT) - Duration::hours(29 * 24 + 12));
    let r = l.due_reminder(&log).unwrap();
    assert_eq!((r.mark, r.days_left), (30, 30));
    // Straight into the last days: one reminder.
    fx.clock.set(t(EXPIRES_AT) - Duration::hours(3));
    assert_eq!(l.reminder_due(Some(30)).map(|r| r.mark), Some(1));
    assert_eq!(l.reminder_due(Some(1)), None);
}

#[test]
fn a_tampered_licence_gets_28_days_of_grace_that_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("licence-log.json");
    let mut fx = Fx::new("2027-03-01T12:00:00Z");
    fx.log = Arc::new(FileGraceLog::open(&log_path));
    let tampered = fx.site_licence(BODY).replace("calls = 100", "calls = 900");
    let l = fx.licensing(&[&tampered]);
    let until = t("2027-03-29T12:00:00Z");
    let s = l.status();
    assert_eq!(s.state, State::Grace { until });
    assert_eq!(s.effective, cap(900, 10, 500));
    assert_eq!(s.days_left, None);
    assert_eq!(s.licence.unwrap().signer, "plugboard");
    assert_eq!(
        s.next,
        Some(Transition {
            state: State::Invalid,
            at: until
        })
    );
    assert_eq!(s.problems.len(), 1);
    assert!(s.problems[0].contains("does not match"), "{:?}", s.problems);
    assert!(s.problems[0].contains("grace period"), "{:?}", s.problems);
    assert_eq!(l.entitled("acme-queue", None, "a.example.com"), Ok(()));
    let r = l.admit(Item::Calls, 900).unwrap_err();
    assert_eq!(
        r.to_string(),
        "licence capacity reached: 900 concurrent calls (licence failed validation, grace period until 2027-03-29 12:00 UTC)"
    );
    assert_eq!(l.reminder_due(None), None);
    assert_eq!(
        serde_json::to_value(&s.state).unwrap()["until"],
        "2027-03-29T12:00:00Z"
    );

    // A restart 20 days later (new log handle, new Licensing): same deadline.
    drop(l);
    fx.clock.advance(Duration::days(20));
    fx.log = Arc::new(FileGraceLog::open(&log_path));
    let l = fx.licensing(&[&tampered]);
    assert_eq!(l.state(), State::Grace { until });

    // Grace over: demo level, entitlements gone.
    fx.set("2027-03-29T12:00:00Z");
    let s = l.status();
    assert_eq!(s.state, State::Invalid);
    assert_eq!(s.effective, Capacity::DEMO);
    assert_eq!(s.next, None);
    assert!(
        s.problems[0].contains("grace period ended"),
        "{:?}",
        s.problems
    );
    let r = l.admit(Item::Calls, 1).unwrap_err();
    assert_eq!(
        r.to_string(),
        "licence capacity reached: 1 concurrent calls (licence failed validation, demo level)"
    );
    let e = l.entitled("acme-queue", None, "a.example.com").unwrap_err();
    assert!(
        e.contains("grace period ended 2027-03-29, demo level"),
        "{e}"
    );
    assert_eq!(
        serde_json::to_value(&s).unwrap()["state"]["kind"],
        "invalid"
    );

    // A restart after the deadline stays invalid.
    fx.log = Arc::new(FileGraceLog::open(&log_path));
    assert_eq!(fx.licensing(&[&tampered]).state(), State::Invalid);
}

#[test]
fn a_failed_file_adds_no_entitlements_next_to_a_valid_licence() {
    let fx = Fx::new("2027-03-01T12:00:00Z");
    let valid = fx.site_licence(&BODY.replace("acme-queue", "other-feature"));
    // An edited copy that claims acme-queue for b.example.com.
    let forged = fx.site_licence(BODY).replace(
        "tenants = [\"a.example.com\"]",
        "tenants = [\"b.example.com\"]",
    );
    let l = fx.licensing(&[&valid, &forged]);
    assert_eq!(l.state(), State::Valid);
    let e = l.entitled("acme-queue", None, "b.example.com").unwrap_err();
    assert!(e.contains("another licence is in force"), "{e}");
    // Alone, the same file is in grace and its entitlements hold.
    let l = fx.licensing(&[&forged]);
    assert!(matches!(l.state(), State::Grace { .. }));
    assert_eq!(l.entitled("acme-queue", None, "b.example.com"), Ok(()));
}

#[test]
fn a_licence_for_another_site_gets_grace() {
    let fx = Fx::new("2027-03-01T00:00:00Z");
    let other = fx.site_licence(&BODY.replace(SITE, "pbx2.example.com"));
    let l = fx.licensing(&[&other]);
    let s = l.status();
    assert_eq!(
        s.state,
        State::Grace {
            until: t("2027-03-29T00:00:00Z")
        }
    );
    assert!(
        s.problems[0]
            .contains("the licence is for site pbx2.example.com, this site is pbx1.example.com"),
        "{:?}",
        s.problems
    );
    // "*" is for any site.
    let any = fx.site_licence(&BODY.replace(SITE, "*"));
    assert_eq!(fx.licensing(&[&any]).state(), State::Valid);
}

#[test]
fn a_valid_licence_wins_over_a_failed_one_until_it_expires() {
    let fx = Fx::new("2027-03-01T00:00:00Z");
    let good = fx.site_licence(BODY);
    let bad = fx
        .site_licence(&BODY.replace("PB-2026-0001", "PB-2027-0002"))
        .replace("calls = 100", "calls = 1000");
    let l = fx.licensing(&[&good, &bad]);
    let s = l.status();
    assert_eq!(s.state, State::Valid);
    assert_eq!(s.licence.unwrap().id, "PB-2026-0001");
    assert_eq!(s.problems.len(), 1);
    // Once the good one has expired, the failed one's grace is better... but
    // its grace (from 2027-03-01) is long over by then.
    fx.set(EXPIRES_AT);
    assert!(matches!(l.state(), State::Expired { .. }));
}

#[test]
fn grace_outranks_an_expired_licence() {
    let fx = Fx::new(EXPIRES_AT);
    let old = fx.site_licence(BODY);
    let renewal = fx
        .site_licence(&BODY.replace("expires = 2027-11-30", "expires = 2028-11-30"))
        .replace("Example GmbH", "Example AG");
    let l = fx.licensing(&[&old, &renewal]);
    let s = l.status();
    assert_eq!(
        s.state,
        State::Grace {
            until: t(EXPIRES_AT) + Duration::days(GRACE_DAYS)
        }
    );
    assert_eq!(s.licence.unwrap().licensee, "Example AG");
    // After the grace: back to the expired licence's reduced capacity.
    assert_eq!(
        s.next.unwrap().state,
        State::Expired {
            demo_at: t("2028-01-30T00:00:00Z")
        }
    );
}

#[test]
fn the_licence_expiring_last_wins_and_a_renewal_takes_over_on_its_first_day() {
    let fx = Fx::new("2027-10-01T00:00:00Z");
    let old = fx.site_licence(BODY);
    let renewal = fx.site_licence(
        &BODY
            .replace("PB-2026-0001", "PB-2027-0007")
            .replace(
                "issued = 2026-11-01",
                "issued = 2027-09-01\nnot_before = 2027-11-01",
            )
            .replace("expires = 2027-11-30", "expires = 2028-11-30")
            .replace("calls = 100", "calls = 200"),
    );
    let l = fx.licensing(&[&renewal, &old]);
    let s = l.status();
    assert_eq!(s.state, State::Expiring { days_left: 61 });
    assert_eq!(s.licence.unwrap().id, "PB-2026-0001");
    assert_eq!(
        s.next,
        Some(Transition {
            state: State::Valid,
            at: t("2027-11-01T00:00:00Z")
        })
    );
    fx.set("2027-11-01T00:00:00Z");
    let s = l.status();
    assert_eq!(s.state, State::Valid);
    assert_eq!(s.licence.unwrap().id, "PB-2027-0007");
    assert_eq!(s.effective.calls, Some(200));
    // Two valid licences in effect: the one expiring last.
    let short = fx.site_licence(&BODY.replace("PB-2026-0001", "PB-short"));
    let long = fx.site_licence(
        &BODY
            .replace("PB-2026-0001", "PB-long")
            .replace("expires = 2027-11-30", "expires = 2029-01-01"),
    );
    fx.set("2027-01-01T00:00:00Z");
    for order in [[&short, &long], [&long, &short]] {
        let l = fx.licensing(&[order[0].as_str(), order[1].as_str()]);
        assert_eq!(l.status().licence.unwrap().id, "PB-long");
    }
}

#[test]
fn entitlements_cover_listed_tenants_or_all() {
    let fx = Fx::new("2027-03-01T00:00:00Z");
    let l = fx.licensing(&[&fx.site_licence(BODY)]);
    assert_eq!(l.entitled("acme-queue", None, "a.example.com"), Ok(()));
    // Issuer licences entitle whoever signed the plugin.
    let someone = KeyId("ed25519:0000000000000000".into());
    assert_eq!(
        l.entitled("acme-queue", Some(&someone), "a.example.com"),
        Ok(())
    );
    assert_eq!(
        l.entitled("acme-queue", None, "b.example.com"),
        Err("no licence entitles feature acme-queue for tenant b.example.com".into())
    );
    assert_eq!(l.entitled("acme-fax", None, "a.example.com"), Ok(()));
    assert_eq!(l.entitled("acme-fax", None, "b.example.com"), Ok(()));
    assert!(l.entitled("other", None, "a.example.com").is_err());
}

#[test]
fn site_features_unlock_for_every_tenant_but_not_from_a_vendor_licence() {
    let fx = Fx::new("2027-03-01T00:00:00Z");
    let l = fx.licensing(&[&fx.site_licence(BODY)]);
    assert_eq!(l.entitled("recording", None, "a.example.com"), Ok(()));
    assert_eq!(l.entitled("recording", None, "z.example.com"), Ok(()));
    // A vendor cannot grant site features: only entitlements count there.
    let l = fx.licensing(&[&file::sign(BODY, &fx.vendor).unwrap()]);
    let acme = fx.vendor.public().id();
    assert!(
        l.entitled("recording", Some(&acme), "a.example.com")
            .is_err()
    );
    // At the demo level the features lapse with the licence.
    fx.set("2028-02-01T00:00:00Z");
    let l = fx.licensing(&[&fx.site_licence(BODY)]);
    assert!(l.entitled("recording", None, "a.example.com").is_err());
}

#[test]
fn a_vendor_licence_entitles_only_that_vendors_plugins_and_sets_no_capacity() {
    let fx = Fx::new("2027-03-01T00:00:00Z");
    let vendor_licence = file::sign(BODY, &fx.vendor).unwrap();
    let l = fx.licensing(&[&vendor_licence]);
    let s = l.status();
    assert_eq!(s.state, State::Unlicensed);
    assert_eq!(s.effective, Capacity::UNLIMITED);
    assert_eq!(s.licensed, None);
    assert!(s.problems.is_empty(), "{:?}", s.problems);
    assert_eq!(l.admit(Item::Calls, 10_000), Ok(()));
    let acme = fx.vendor.public().id();
    assert_eq!(
        l.entitled("acme-queue", Some(&acme), "a.example.com"),
        Ok(())
    );
    assert_eq!(l.entitled("acme-fax", Some(&acme), "z.example.com"), Ok(()));
    let other = fx.issuer.public().id();
    let e = l
        .entitled("acme-queue", Some(&other), "a.example.com")
        .unwrap_err();
    assert!(
        e.contains(&format!(
            "signed by vendor key {acme}, not by this plugin's signer ({other})"
        )),
        "{e}"
    );
    let e = l.entitled("acme-queue", None, "a.example.com").unwrap_err();
    assert!(e.contains("(unsigned)"), "{e}");
    assert!(
        l.entitled("acme-queue", Some(&acme), "b.example.com")
            .is_err()
    );
    // Its own dates count.
    fx.set("2028-02-01T00:00:00Z");
    let e = l
        .entitled("acme-queue", Some(&acme), "a.example.com")
        .unwrap_err();
    assert!(e.contains("demo level"), "{e}");
    // Next to a site licence, its capacities are still ignored.
    fx.set("2027-03-01T00:00:00Z");
    let site = fx.site_licence(&BODY.replace("calls = 100", "calls = 7"));
    let l = fx.licensing(&[
        &file::sign(&BODY.replace("calls = 100", "calls = 1"), &fx.vendor).unwrap(),
        &site,
    ]);
    assert_eq!(l.status().effective.calls, Some(7));
    // A vendor licence for another site is ignored (no grace).
    let elsewhere = file::sign(&BODY.replace(SITE, "pbx9.example.com"), &fx.vendor).unwrap();
    let l = fx.licensing(&[&elsewhere]);
    assert_eq!(l.state(), State::Unlicensed);
    assert!(l.status().problems[0].contains("pbx9.example.com"));
    // A tampered vendor licence is ignored too.
    let tampered = vendor_licence.replace("a.example.com", "b.example.com");
    let l = fx.licensing(&[&tampered]);
    assert!(
        l.entitled("acme-queue", Some(&acme), "b.example.com")
            .is_err()
    );
    assert!(l.status().problems[0].contains("does not match"));
}

#[test]
fn unknown_unsigned_and_malformed_licences_are_ignored_with_a_problem() {
    let fx = Fx::new("2027-03-01T00:00:00Z");
    let stranger = SecretKey::generate("mallory").unwrap();
    let unknown = file::sign(BODY, &stranger).unwrap();
    let l = fx.licensing(&[&unknown, BODY, "[licence]\nid = 1\n"]);
    let s = l.status();
    assert_eq!(s.state, State::Unlicensed);
    assert_eq!(s.effective, Capacity::UNLIMITED);
    assert_eq!(s.problems.len(), 3, "{:?}", s.problems);
    assert!(
        s.problems[0].starts_with("l0.toml: signed by mallory with key ed25519:"),
        "{}",
        s.problems[0]
    );
    assert!(
        s.problems[0].contains("does not trust"),
        "{}",
        s.problems[0]
    );
    assert!(
        s.problems[1].contains("l1.toml: the licence is not signed; ignored"),
        "{}",
        s.problems[1]
    );
    assert!(
        s.problems[2].starts_with("l2.toml: not a licence file"),
        "{}",
        s.problems[2]
    );
    assert!(l.entitled("acme-queue", None, "a.example.com").is_err());
}

#[test]
fn load_dir_reads_toml_files_only() {
    let fx = Fx::new("2027-03-01T00:00:00Z");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("site.toml"), fx.site_licence(BODY)).unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not a licence").unwrap();
    std::fs::write(dir.path().join("broken.toml"), "x = [").unwrap();
    let l = Licensing::load_dir(fx.setup(), dir.path());
    let s = l.status();
    assert_eq!(s.state, State::Valid);
    assert_eq!(s.problems.len(), 1);
    assert!(
        s.problems[0].starts_with("broken.toml: "),
        "{:?}",
        s.problems
    );
    // A missing directory is no licence, not an error.
    let l = Licensing::load_dir(fx.setup(), &dir.path().join("missing"));
    assert_eq!(l.status().state, State::Unlicensed);
    assert!(l.status().problems.is_empty());
}
