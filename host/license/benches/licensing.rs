//! What licensing and trust cost on the hot and the install path:
//! - `admit_call`: the capacity check every INVITE makes (evaluate the
//!   licence against the clock, compare with calls in use);
//! - `entitled`: the check a licensed plugin's call makes;
//! - `verify_package/<size>`: checking a package's signature before install
//!   (SHA-256 over manifest and component, one Ed25519 verification), for a
//!   Rust-sized (75 KB) and a Python-sized (18 MB) component.

use std::sync::Arc;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use plugboard_license::{Item, Licensing, ManualClock, MemoryLog, Setup};
use plugboard_registry::keys::{KeyId, SecretKey};
use plugboard_registry::package::Package;
use plugboard_registry::trust::{TrustStore, verify};

const BODY: &str = r#"[licence]
id = "PB-BENCH"
licensee = "Bench GmbH"
site = "pbx1.example.com"
issued = 2026-11-01
expires = 2027-11-30

[capacity]
calls = 1000
tenants = 100
mailboxes = 60000

[[entitlement]]
feature = "acme-queue"
all = true
"#;

fn licensing() -> Licensing {
    let issuer = SecretKey::generate("plugboard").unwrap();
    let now = chrono::DateTime::parse_from_rfc3339("2027-03-01T00:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let setup = Setup {
        site: "pbx1.example.com".into(),
        issuers: vec![issuer.public()],
        vendors: Arc::new(|_: &KeyId| None),
        clock: Arc::new(ManualClock::new(now)),
        grace: Arc::new(MemoryLog::new()),
    };
    let text = plugboard_license::sign(BODY, &issuer).unwrap();
    Licensing::from_texts(setup, &[("site.toml", text.as_str())])
}

fn bench(c: &mut Criterion) {
    let l = licensing();
    assert!(l.admit(Item::Calls, 999).is_ok() && l.admit(Item::Calls, 1000).is_err());
    c.bench_function("admit_call", |b| {
        b.iter(|| l.admit(Item::Calls, std::hint::black_box(500)))
    });
    c.bench_function("entitled", |b| {
        b.iter(|| l.entitled("acme-queue", None, std::hint::black_box("a.example.com")))
    });

    let vendor = SecretKey::generate("acme").unwrap();
    let trust = TrustStore::from_keys(vec![vendor.public()]);
    let mut group = c.benchmark_group("verify_package");
    for size in [75 * 1024, 18 * 1024 * 1024] {
        let mut pkg = Package::new(
            "name = \"queue\"\nversion = \"1.0.0\"\n",
            vec![0x5au8; size],
        );
        pkg.sign(&vendor);
        assert!(verify(&pkg, &trust).is_ok());
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::from_parameter(size), &pkg, |b, pkg| {
            b.iter(|| verify(pkg, &trust).unwrap())
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = bench
}
criterion_main!(benches);
