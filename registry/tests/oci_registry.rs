//! Push and pull against a real OCI registry: Debian's `docker-registry`
//! (CNCF distribution 2.8), started on a free local port for the test.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use plugboard_registry::keys::SecretKey;
use plugboard_registry::oci::{Client, ClientOptions, OciError, Reference};
use plugboard_registry::package::Package;
use plugboard_registry::trust::{self, TrustStore};

const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

/// A `docker-registry serve` process, killed on drop.
struct Registry {
    child: Child,
    addr: String,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Registry {
    fn start() -> Registry {
        assert!(
            Path::new(REGISTRY_BIN).exists(),
            "{REGISTRY_BIN} is missing: run `scripts/install-deps.sh --test` \
             (Debian package docker-registry) to install the OCI registry this test needs"
        );
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let storage = dir.path().join("storage");
        std::fs::create_dir(&storage).unwrap();
        let config = dir.path().join("config.yml");
        let log = dir.path().join("registry.log");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\n\
                 log:\n  level: error\n  accesslog:\n    disabled: true\n\
                 storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: false\n\
                 http:\n  addr: {addr}\n",
                storage.display()
            ),
        )
        .unwrap();
        let child = Command::new(REGISTRY_BIN)
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {REGISTRY_BIN}: {e}"));
        let mut registry = Registry {
            child,
            addr,
            log,
            _dir: dir,
        };
        registry.wait_ready();
        registry
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits (up to 10 s) until `GET /v2/` answers 200.
    fn wait_ready(&mut self) {
        use std::io::{Read, Write};
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "docker-registry exited early ({status}): {}",
                    self.log_text()
                );
            }
            if let Ok(mut s) = std::net::TcpStream::connect(&self.addr) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let req = format!(
                    "GET /v2/ HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
                    self.addr
                );
                let mut resp = String::new();
                if s.write_all(req.as_bytes()).is_ok()
                    && s.read_to_string(&mut resp).is_ok()
                    && resp.starts_with("HTTP/1.1 200")
                {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "docker-registry did not answer GET /v2/ within 10 s: {}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn package(version: &str, component: &[u8]) -> Package {
    Package::new(
        format!(
            "name = \"queue\"\nversion = \"{version}\"\ncontract = \"0.1\"\nroles = [\"call-flow\"]\n"
        ),
        component.to_vec(),
    )
}

#[tokio::test]
async fn push_and_pull_against_docker_registry() {
    let registry = Registry::start();
    let host = registry.addr.clone();
    let client = Client::new(ClientOptions {
        insecure: vec![host.clone()],
        ..ClientOptions::default()
    });
    let key = SecretKey::generate("acme").unwrap();
    let repo = "acme/queue";

    assert!(client.versions(&host, repo).await.unwrap().is_empty());

    let mut pushed = Vec::new();
    for version in ["1.0.0", "1.2.0", "1.3.1", "2.0.0"] {
        let mut pkg = package(
            version,
            format!("\0asm fake component {version}").as_bytes(),
        );
        pkg.sign(&key);
        let p = client.push(&pkg, &host, repo).await.unwrap();
        assert_eq!(
            p.reference.to_string(),
            format!("oci://{host}/{repo}@{version}")
        );
        assert!(p.digest.starts_with("sha256:"), "{}", p.digest);
        pushed.push(pkg);
    }

    let versions: Vec<String> = client
        .versions(&host, repo)
        .await
        .unwrap()
        .iter()
        .map(|v| v.to_string())
        .collect();
    assert_eq!(versions, ["1.0.0", "1.2.0", "1.3.1", "2.0.0"]);

    let (pkg, version) = client
        .pull(&Reference::parse(&format!("oci://{host}/{repo}@^1.2")).unwrap())
        .await
        .unwrap();
    assert_eq!(version.to_string(), "1.3.1");
    assert_eq!(pkg, pushed[2]);
    assert_eq!(pkg.content_digest(), pushed[2].content_digest());
    assert_eq!(pkg.signature, pushed[2].signature);
    let verified = trust::verify(&pkg, &TrustStore::from_keys(vec![key.public()])).unwrap();
    assert_eq!(verified.key_id, key.public().id());
    assert_eq!(verified.digest, pushed[2].content_digest());
    // Not trusted by an empty store.
    let e = trust::verify(&pkg, &TrustStore::from_keys(vec![])).unwrap_err();
    assert!(e.to_string().contains("not in the trust store"), "{e}");

    // Latest and exact.
    let (_, latest) = client
        .pull(&Reference::parse(&format!("oci://{host}/{repo}")).unwrap())
        .await
        .unwrap();
    assert_eq!(latest.to_string(), "2.0.0");
    let (_, exact) = client
        .pull(&Reference::parse(&format!("oci://{host}/{repo}:1.0.0")).unwrap())
        .await
        .unwrap();
    assert_eq!(exact.to_string(), "1.0.0");

    let e = client
        .pull(&Reference::parse(&format!("oci://{host}/{repo}@^3")).unwrap())
        .await
        .unwrap_err();
    assert!(matches!(e, OciError::NoMatch { .. }), "{e}");
    let text = e.to_string();
    assert!(
        text.contains("available: 1.0.0, 1.2.0, 1.3.1, 2.0.0"),
        "{text}"
    );

    // Pushing the same package again is fine; other content is refused.
    let again = client.push(&pushed[1], &host, repo).await.unwrap();
    assert_eq!(
        again.reference.to_string(),
        format!("oci://{host}/{repo}@1.2.0")
    );
    let mut changed = package("1.2.0", b"\0asm a different component");
    changed.sign(&key);
    let e = client.push(&changed, &host, repo).await.unwrap_err();
    assert!(matches!(e, OciError::VersionExists { .. }), "{e}");
    assert!(e.to_string().contains("immutable"), "{e}");
    let (still, _) = client
        .pull(&Reference::parse(&format!("oci://{host}/{repo}@1.2.0")).unwrap())
        .await
        .unwrap();
    assert_eq!(still, pushed[1]);

    // Unsigned packages round-trip with no signature.
    let unsigned = package("0.1.0", b"\0asm unsigned");
    client
        .push(&unsigned, &host, "acme/unsigned")
        .await
        .unwrap();
    let (back, _) = client
        .pull(&Reference::parse(&format!("oci://{host}/acme/unsigned@0.1.0")).unwrap())
        .await
        .unwrap();
    assert_eq!(back.signature, None);
    assert_eq!(back, unsigned);
    let e = trust::verify(&back, &TrustStore::from_keys(vec![key.public()])).unwrap_err();
    assert_eq!(e, trust::VerifyError::Unsigned);

    // A repository that does not exist.
    let e = client
        .pull(&Reference::parse(&format!("oci://{host}/acme/nothing")).unwrap())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("has no published versions"), "{e}");
}
