//! Lookups against a real, throwaway OpenLDAP slapd on loopback (ADR 0012).
//!
//! One slapd serves the whole file: `directory_against_slapd` runs the
//! scenarios in order and stops the server last (to show the cache and the
//! error naming the servers). Requires Debian's `slapd` package.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use plugboard_directory::{Directory, DirectoryConfig, DirectoryError, Entry, NumberingPlan};

const SUFFIX: &str = "dc=example,dc=com";
const ROOT_DN: &str = "cn=admin,dc=example,dc=com";
const ROOT_PW: &str = "secret";
const PEOPLE: &str = "ou=people,dc=example,dc=com";

const DATA: &str = "\
dn: dc=example,dc=com
objectClass: dcObject
objectClass: organization
dc: example
o: Example

dn: ou=people,dc=example,dc=com
objectClass: organizationalUnit
ou: people

dn: ou=other,dc=example,dc=com
objectClass: organizationalUnit
ou: other

# Internal number with a hyphen before the extension, plus a mobile.
dn: uid=alice,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: alice
cn: Alice Example
sn: Example
displayName: Alice Liddell
mail: alice@example.com
telephoneNumber: +49 8142 4799-123
telephoneNumber: +49 170 5550123
employeeNumber: $argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g

# Hyphens everywhere and no displayName (cn is used).
dn: uid=bob,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: bob
cn: Bob Builder
sn: Builder
mail: bob@example.com
telephoneNumber: +49-8142-4799-150

# Only the extension is stored.
dn: uid=carol,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: carol
cn: Carol Short
sn: Short
displayName: Carol Short
telephoneNumber: 2001

# An outside number in another area, in a nested OU (subtree search).
dn: ou=sales,ou=people,dc=example,dc=com
objectClass: organizationalUnit
ou: sales

dn: uid=dave,ou=sales,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: dave
cn: Dave Seller
sn: Seller
displayName: Dave Seller
mail: dave@example.com
telephoneNumber: +49 89 1234567

# Two people share one number: the first by DN (erin) wins.
dn: uid=frank,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: frank
cn: Frank Second
sn: Second
telephoneNumber: +49 8142 4799 170

dn: uid=erin,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: erin
cn: Erin First
sn: First
telephoneNumber: +49 8142 4799-170

# Outside the configured search bases: must never be found.
dn: uid=mallory,ou=other,dc=example,dc=com
objectClass: inetOrgPerson
uid: mallory
cn: Mallory Hidden
sn: Hidden
displayName: Mallory Hidden
mail: mallory@example.com
telephoneNumber: +49 8142 4799-199
";

/// A slapd child process serving a temp folder; killed on drop.
struct Slapd {
    _dir: tempfile::TempDir,
    child: Option<Child>,
    /// `ldap://127.0.0.1:PORT`
    url: String,
    /// `ldaps://127.0.0.1:PORT`, certificate signed by `ca_file`.
    tls_url: String,
    /// The test CA (PEM).
    ca_file: PathBuf,
    /// Another CA that did not sign the server certificate.
    other_ca_file: PathBuf,
}

/// A CA and a server certificate for 127.0.0.1 (openssl CLI, EC keys).
fn make_certificates(dir: &Path) {
    let openssl = |args: &[&str]| run(Command::new("openssl").args(args).current_dir(dir));
    for ca in ["ca", "other-ca"] {
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &format!("{ca}.key"),
            "-out",
            &format!("{ca}.pem"),
            "-days",
            "2",
            "-subj",
            &format!("/CN=plugboard test {ca}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
    }
    openssl(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
         keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "server.ext",
    ]);
}

impl Slapd {
    fn start() -> Slapd {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = dir.path().join("db");
        std::fs::create_dir(&db).unwrap();
        make_certificates(dir.path());
        let conf = dir.path().join("slapd.conf");
        std::fs::write(
            &conf,
            format!(
                "include /etc/ldap/schema/core.schema\n\
                 include /etc/ldap/schema/cosine.schema\n\
                 include /etc/ldap/schema/inetorgperson.schema\n\
                 pidfile {dir}/slapd.pid\n\
                 TLSCACertificateFile {dir}/ca.pem\n\
                 TLSCertificateFile {dir}/server.pem\n\
                 TLSCertificateKeyFile {dir}/server.key\n\
                 modulepath /usr/lib/ldap\n\
                 moduleload back_mdb\n\
                 database mdb\n\
                 maxsize 10485760\n\
                 suffix \"{SUFFIX}\"\n\
                 rootdn \"{ROOT_DN}\"\n\
                 rootpw {ROOT_PW}\n\
                 directory {db}\n",
                dir = dir.path().display(),
                db = db.display(),
            ),
        )
        .unwrap();
        let ldif = dir.path().join("data.ldif");
        std::fs::write(&ldif, DATA).unwrap();
        run(Command::new("slaptest").arg("-f").arg(&conf).arg("-u"));
        run(Command::new("slapadd")
            .arg("-f")
            .arg(&conf)
            .arg("-l")
            .arg(&ldif)
            .arg("-q"));
        let port = free_port();
        let url = format!("ldap://127.0.0.1:{port}");
        let tls_port = free_port();
        let tls_url = format!("ldaps://127.0.0.1:{tls_port}");
        let log = std::fs::File::create(dir.path().join("slapd.log")).unwrap();
        let child = Command::new("slapd")
            .arg("-d")
            .arg("0")
            .arg("-f")
            .arg(&conf)
            .arg("-h")
            .arg(format!("{url}/ {tls_url}/"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start slapd (Debian package slapd)");
        let mut slapd = Slapd {
            ca_file: dir.path().join("ca.pem"),
            other_ca_file: dir.path().join("other-ca.pem"),
            _dir: dir,
            child: Some(child),
            url,
            tls_url,
        };
        slapd.wait_ready(port);
        slapd.wait_ready(tls_port);
        slapd
    }

    fn wait_ready(&mut self, port: u16) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                let log = std::fs::read_to_string(self._dir.path().join("slapd.log"));
                panic!("slapd exited with {status}: {log:?}");
            }
            assert!(Instant::now() < deadline, "slapd not ready within 10 s");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stop at once (SIGKILL: the data is throwaway, SIGTERM takes ~2 s).
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn plan() -> NumberingPlan {
    NumberingPlan {
        country_code: "49".into(),
        area_code: "8142".into(),
        base_number: "4799".into(),
        extension_ranges: vec!["100-199".into(), "2000-2999".into()],
        international_prefix: "00".into(),
        national_prefix: "0".into(),
        outside_line_prefix: None,
    }
}

fn config(servers: &[&str]) -> DirectoryConfig {
    DirectoryConfig {
        pin_hash: Some("employeeNumber".into()),
        timeout_s: 2,
        ..DirectoryConfig::new(
            servers.iter().map(|s| s.to_string()).collect(),
            vec![PEOPLE.into()],
        )
    }
}

/// Every lookup is bounded, whatever the library does.
async fn lookup(dir: &Directory, raw: &str) -> Result<Option<Entry>, DirectoryError> {
    tokio::time::timeout(Duration::from_secs(20), dir.lookup_number(raw))
        .await
        .unwrap_or_else(|_| panic!("lookup of {raw:?} hung"))
}

async fn found(dir: &Directory, raw: &str) -> Entry {
    lookup(dir, raw)
        .await
        .unwrap_or_else(|e| panic!("lookup of {raw:?} failed: {e}"))
        .unwrap_or_else(|| panic!("{raw:?} not found"))
}

#[tokio::test]
async fn directory_against_slapd() {
    let mut slapd = Slapd::start();
    let url = slapd.url.clone();
    let closed = format!("ldap://127.0.0.1:{}", free_port());
    let directory = Directory::new(config(&[&url]), plan()).unwrap();

    // One person, three written forms (plus more), one entry.
    let alice = found(&directory, "+49 8142 4799 123").await;
    assert_eq!(
        alice,
        Entry {
            id: "uid=alice,ou=people,dc=example,dc=com".into(),
            number: Some("+4981424799123".into()),
            extension: Some("123".into()),
            display_name: Some("Alice Liddell".into()),
            mail: Some("alice@example.com".into()),
            pin_hash: Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g".into()),
        }
    );
    for raw in ["0049-81424799123", "123", "08142 4799-123", "4799123"] {
        directory.clear_cache();
        assert_eq!(found(&directory, raw).await, alice, "{raw}");
    }
    // Her mobile finds her too, and then the mobile is "her number".
    let mobile = found(&directory, "0170 555 0123").await;
    assert_eq!(mobile.id, alice.id);
    assert_eq!(mobile.number.as_deref(), Some("+491705550123"));
    assert_eq!(mobile.extension, None);

    // Hyphenated storage; no displayName → cn.
    let bob = found(&directory, "150").await;
    assert_eq!(bob.id, "uid=bob,ou=people,dc=example,dc=com");
    assert_eq!(bob.display_name.as_deref(), Some("Bob Builder"));
    assert_eq!(bob.number.as_deref(), Some("+4981424799150"));
    assert_eq!(bob.pin_hash, None);

    // Only the extension stored: found through {extension}, by any form.
    for raw in ["2001", "+49 8142 4799 2001"] {
        let carol = found(&directory, raw).await;
        assert_eq!(carol.id, "uid=carol,ou=people,dc=example,dc=com", "{raw}");
        assert_eq!(carol.number.as_deref(), Some("+49814247992001"));
        assert_eq!(carol.extension.as_deref(), Some("2001"));
        assert_eq!(carol.mail, None);
    }

    // Outside number, nested OU.
    let dave = found(&directory, "089 1234567").await;
    assert_eq!(dave.id, "uid=dave,ou=sales,ou=people,dc=example,dc=com");
    assert_eq!(dave.extension, None);
    assert_eq!(dave.mail.as_deref(), Some("dave@example.com"));

    // Two matches: the first by DN.
    assert_eq!(
        found(&directory, "170").await.id,
        "uid=erin,ou=people,dc=example,dc=com"
    );

    // Outside the search bases: not found (and that answer is cached).
    assert_eq!(lookup(&directory, "199").await, Ok(None));
    assert_eq!(lookup(&directory, "+49 8142 4799-199").await, Ok(None));
    // Nobody has this number.
    assert_eq!(lookup(&directory, "0711 999999").await, Ok(None));

    // Not a number: rejected before any server is asked.
    let err = lookup(&directory, "alice").await.unwrap_err();
    assert!(
        matches!(&err, DirectoryError::Invalid(m) if m.contains("'a' is not allowed")),
        "{err}"
    );
    assert_eq!(
        lookup(&directory, " ").await,
        Err(DirectoryError::Invalid("the number is empty".into()))
    );

    // Fallback: a closed port first, the real server second.
    let fallback = Directory::new(config(&[&closed, &url]), plan()).unwrap();
    let started = Instant::now();
    assert_eq!(found(&fallback, "123").await.id, alice.id);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );

    // Fallback: a server that accepts TCP but never answers costs at most
    // timeout_s, then the next server answers.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_url = format!("ldap://{}", silent.local_addr().unwrap());
    let slow = Directory::new(
        DirectoryConfig {
            timeout_s: 1,
            ..config(&[&silent_url, &url])
        },
        plan(),
    )
    .unwrap();
    let started = Instant::now();
    assert_eq!(found(&slow, "150").await.id, bob.id);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(3),
        "{took:?}"
    );

    // Bind as the root DN: right password works, wrong one is a clear error.
    let bound = Directory::new(
        DirectoryConfig {
            bind_dn: Some(ROOT_DN.into()),
            bind_password: Some(ROOT_PW.into()),
            ..config(&[&url])
        },
        plan(),
    )
    .unwrap();
    assert_eq!(found(&bound, "123").await.id, alice.id);
    let wrong = Directory::new(
        DirectoryConfig {
            bind_dn: Some(ROOT_DN.into()),
            bind_password: Some("not-the-password".into()),
            ..config(&[&url])
        },
        plan(),
    )
    .unwrap();
    let err = lookup(&wrong, "123").await.unwrap_err();
    let DirectoryError::Failed(message) = &err else {
        panic!("{err:?}")
    };
    assert!(
        message.contains(&url)
            && message.contains("bind as \"cn=admin,dc=example,dc=com\" refused")
            && message.contains("invalidCredentials")
            && message.contains("directory.bind_password"),
        "{err}"
    );
    eprintln!("wrong password: {err}");
    // A failure is not cached: the same directory fails again.
    assert!(lookup(&wrong, "123").await.is_err());

    // ldaps:// with the tenant CA from ca_file.
    let tls = Directory::new(
        DirectoryConfig {
            ca_file: Some(slapd.ca_file.clone()),
            ..config(&[&slapd.tls_url])
        },
        plan(),
    )
    .unwrap();
    assert_eq!(found(&tls, "123").await, alice);
    // Without it (system roots) or with another CA the certificate is
    // refused, and the error says so; a closed ldaps:// port falls back.
    for ca_file in [None, Some(slapd.other_ca_file.clone())] {
        let untrusted = Directory::new(
            DirectoryConfig {
                ca_file: ca_file.clone(),
                ..config(&[&slapd.tls_url])
            },
            plan(),
        )
        .unwrap();
        let err = lookup(&untrusted, "123").await.unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(&slapd.tls_url) && text.to_lowercase().contains("certificate"),
            "{ca_file:?}: {text}"
        );
        eprintln!("untrusted ({ca_file:?}): {text}");
    }
    let closed_tls = format!("ldaps://127.0.0.1:{}", free_port());
    let tls_fallback = Directory::new(
        DirectoryConfig {
            ca_file: Some(slapd.ca_file.clone()),
            ..config(&[&closed_tls, &slapd.tls_url])
        },
        plan(),
    )
    .unwrap();
    assert_eq!(found(&tls_fallback, "150").await.id, bob.id);

    // A short-TTL directory, warmed while the server is up.
    let short = Directory::new(
        DirectoryConfig {
            cache_ttl_s: 1,
            ..config(&[&url])
        },
        plan(),
    )
    .unwrap();
    assert_eq!(found(&short, "123").await.id, alice.id);

    // Cache: stop the server. Cached answers (found and not found) still
    // come back within the TTL; anything else fails naming every server.
    let with_fallback = Directory::new(config(&[&closed, &url]), plan()).unwrap();
    assert_eq!(found(&with_fallback, "150").await.id, bob.id);
    assert_eq!(lookup(&with_fallback, "199").await, Ok(None));
    slapd.stop();
    assert!(TcpStream::connect(url.trim_start_matches("ldap://")).is_err());
    assert_eq!(found(&directory, "0049 8142 4799123").await, alice); // cached above
    assert_eq!(
        found(&directory, "2001").await.extension.as_deref(),
        Some("2001")
    );
    assert_eq!(lookup(&directory, "+49 8142 4799-199").await, Ok(None));
    assert_eq!(found(&with_fallback, "+49 8142 4799-150").await.id, bob.id);
    assert_eq!(lookup(&with_fallback, "199").await, Ok(None));
    assert!(with_fallback.cached() >= 2);

    let started = Instant::now();
    let err = lookup(&with_fallback, "2500").await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2));
    let DirectoryError::Failed(message) = &err else {
        panic!("{err:?}")
    };
    assert!(
        message.contains(&format!("{closed}: cannot connect"))
            && message.contains(&format!("{url}: cannot connect")),
        "{err}"
    );
    eprintln!("all servers down: {err}");

    // The 1-second TTL runs out: the same number now needs the (dead) server.
    assert_eq!(found(&short, "123").await.id, alice.id);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(matches!(
        lookup(&short, "123").await,
        Err(DirectoryError::Failed(_))
    ));
}

/// Only the silent server: the call gives up after `timeout_s` with a
/// message saying so (no slapd needed).
#[tokio::test]
async fn a_silent_server_times_out() {
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ldap://{}", silent.local_addr().unwrap());
    let directory = Directory::new(
        DirectoryConfig {
            timeout_s: 1,
            ..config(&[&url])
        },
        plan(),
    )
    .unwrap();
    let started = Instant::now();
    let err = lookup(&directory, "123").await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(
        err,
        DirectoryError::Failed(format!("{url}: no answer within 1 s"))
    );
}
