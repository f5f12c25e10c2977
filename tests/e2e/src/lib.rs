//! Harness for plugboard's end-to-end tests: starts the real `plugboard`
//! binary on free loopback ports with a generated configuration, and runs
//! SIPp scenarios against it. Every process is bounded in time and killed on drop.
//!
//! Build first (scripts/test.sh does): `cargo build --release -p plugboard`
//! and `scripts/build-plugins.sh`.

pub mod servers;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

/// The tenant domain every test config uses.
pub const DOMAIN: &str = "e2e.plugboard.test";

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The cargo target dir this test binary was built into, and its profile dir.
fn profile_dir() -> PathBuf {
    // target/<profile>/deps/<test-binary>
    let exe = std::env::current_exe().expect("current exe");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>")
        .to_path_buf()
}

/// The plugboard binary under test.
pub fn plugboard_bin() -> PathBuf {
    let p = profile_dir().join("plugboard");
    assert!(
        p.exists(),
        "{} not built: run `cargo build --release -p plugboard` (scripts/test.sh does)",
        p.display()
    );
    p
}

/// A packaged plugin: target/plugins/<name>/plugin.wasm, with its
/// plugin.toml beside it (scripts/build-plugins.sh packages them).
pub fn plugin_wasm(name: &str) -> PathBuf {
    let p = profile_dir()
        .join("../plugins")
        .join(name)
        .join("plugin.wasm");
    assert!(
        p.exists(),
        "{} not built: run scripts/build-plugins.sh",
        p.display()
    );
    p
}

static NEXT_RANGE: AtomicU16 = AtomicU16::new(0);

fn dechunk(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || tail.len() < n {
            break;
        }
        out.push_str(&tail[..n]);
        rest = tail[n..].trim_start_matches("\r\n");
    }
    out
}

/// A distinct RTP port range per PBX started by this process.
fn rtp_range() -> (u16, u16) {
    let n = NEXT_RANGE.fetch_add(1, Ordering::Relaxed);
    let base = 30000 + (std::process::id() as u16 % 8) * 2000 + (n % 10) * 200;
    (base, base + 199)
}

/// A running plugboard process.
pub struct Pbx {
    child: Option<Child>,
    pub udp: SocketAddr,
    pub tcp: SocketAddr,
    /// The admin API address, when [`Setup::admin`] was set.
    pub admin: Option<SocketAddr>,
    pub dir: tempfile::TempDir,
    config_path: PathBuf,
    log_path: PathBuf,
}

/// What goes into a test config besides the server section.
pub struct Setup {
    /// `[plugins.NAME] path = ...` entries: (name, wasm file).
    pub plugins: Vec<(String, PathBuf)>,
    /// Users: (extension, password).
    pub users: Vec<(String, String)>,
    /// Dial plan lines in TOML (`"100" = { plugin = "x" }`).
    pub dialplan: Vec<String>,
    /// Extra `[server]` lines.
    pub server_extra: Vec<String>,
    /// TOML appended at the end (more tenants).
    pub extra_toml: String,
    /// `grants = [...]` of `[plugins.NAME]` entries: (name, capabilities).
    pub plugin_grants: Vec<(String, Vec<String>)>,
    /// Start the admin API on a free loopback port, with [`OPERATOR_TOKEN`]
    /// and a tenant-admin token per tenant domain (see [`tenant_token`]).
    pub admin: Vec<String>,
    /// RTP port range instead of the default 200 ports per PBX (load tests).
    pub rtp_ports: Option<(u16, u16)>,
    /// Tables placed before the tenants: by default `[trust] allow_unsigned
    /// = true` (the test plugins are built locally and unsigned); tests of
    /// packages, trust and licences put their own `[trust]`, `[licence]`
    /// and `[testing]` here.
    pub tables: String,
}

/// The operator's admin API token in test configs.
pub const OPERATOR_TOKEN: &str = "operator-token-for-e2e-tests";

/// The tenant-admin token of `domain` in test configs.
pub fn tenant_token(domain: &str) -> String {
    format!("tenant-admin-token-{domain}")
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            plugins: Vec::new(),
            users: (101..=104)
                .map(|u| (u.to_string(), format!("pw{u}")))
                .collect(),
            dialplan: Vec::new(),
            // SIPp answers only the first challenge, and only MD5.
            server_extra: vec!["digest_algorithms = [\"MD5\", \"SHA-256\"]".to_string()],
            extra_toml: String::new(),
            plugin_grants: Vec::new(),
            admin: Vec::new(),
            rtp_ports: None,
            tables: "[trust]\nallow_unsigned = true\n".to_string(),
        }
    }
}

impl Setup {
    fn render(&self, dir: &Path) -> String {
        let (lo, hi) = self.rtp_ports.unwrap_or_else(rtp_range);
        let mut s = format!(
            "[server]\nsip_udp = \"127.0.0.1:0\"\nsip_tcp = \"127.0.0.1:0\"\nmedia_ip = \"127.0.0.1\"\n\
             rtp_ports = \"{lo}-{hi}\"\ndata_dir = \"{}\"\nprompts_dir = \"{}\"\nplugin_cache_dir = \"{}\"\n",
            dir.join("data").display(),
            repo_root().join("prompts").display(),
            repo_root().join("target/plugin-cache").display(),
        );
        for l in &self.server_extra {
            s.push_str(l);
            s.push('\n');
        }
        for (name, path) in &self.plugins {
            s.push_str(&format!(
                "\n[plugins.{name}]\npath = \"{}\"\n",
                path.display()
            ));
            if let Some((_, g)) = self.plugin_grants.iter().find(|(n, _)| n == name) {
                s.push_str(&format!("grants = {g:?}\n"));
            }
        }
        if !self.admin.is_empty() {
            s.push_str(&format!(
                "\n[admin]\nlisten = \"127.0.0.1:0\"\noperator_token = \"{OPERATOR_TOKEN}\"\n[admin.tenant_tokens]\n"
            ));
            for d in &self.admin {
                s.push_str(&format!("\"{d}\" = \"{}\"\n", tenant_token(d)));
            }
        }
        s.push('\n');
        s.push_str(&self.tables);
        s.push_str(&format!("\n[[tenant]]\ndomain = \"{DOMAIN}\"\n"));
        for (ext, pw) in &self.users {
            s.push_str(&format!(
                "[[tenant.user]]\nextension = \"{ext}\"\npassword = \"{pw}\"\n"
            ));
        }
        if !self.dialplan.is_empty() {
            s.push_str("[tenant.dialplan]\n");
            for l in &self.dialplan {
                s.push_str(l);
                s.push('\n');
            }
        }
        s.push('\n');
        s.push_str(&self.extra_toml);
        s
    }
}

impl Pbx {
    /// One admin API request (HTTP/1.1 over loopback, at most 60 s): returns
    /// the status and the body as JSON (`Null` when empty, a string when not JSON).
    pub fn api(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<&serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        use std::io::{Read, Write};
        let addr = self.admin.expect("admin API not enabled in Setup");
        let mut conn = std::net::TcpStream::connect(addr).expect("connect admin API");
        conn.set_read_timeout(Some(Duration::from_secs(60))).ok();
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        conn.write_all(req.as_bytes()).expect("send request");
        let mut raw = Vec::new();
        conn.read_to_end(&mut raw).expect("read response");
        let text = String::from_utf8_lossy(&raw);
        let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status: u16 = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad HTTP response: {text}"));
        let chunked = head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked");
        let body = if chunked {
            dechunk(rest)
        } else {
            rest.to_string()
        };
        let value = if body.trim().is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body))
        };
        (status, value)
    }

    /// Runs the `plugboard` CLI against this PBX's admin API with `token`.
    pub fn cli(&self, token: &str, args: &[&str]) -> Output {
        let addr = self.admin.expect("admin API not enabled in Setup");
        let child = Command::new(plugboard_bin())
            .arg("--api")
            .arg(format!("http://{addr}"))
            .arg("--token")
            .arg(token)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn plugboard CLI");
        wait_bounded(child, Duration::from_secs(120))
    }

    /// Starts plugboard with `setup` and waits for its ready line (at most 60 s:
    /// the first start compiles plugins).
    pub fn start(setup: &Setup) -> Pbx {
        Pbx::try_start(setup)
            .unwrap_or_else(|log| panic!("plugboard did not become ready; log:\n{log}"))
    }

    /// Like [`Pbx::start`], but a host that exits before it is ready is an
    /// `Err` with its log (for tests of refused configurations).
    pub fn try_start(setup: &Setup) -> Result<Pbx, String> {
        let dir = tempfile::tempdir().expect("tempdir");
        let config_path = dir.path().join("plugboard.toml");
        std::fs::write(&config_path, setup.render(dir.path())).expect("write config");
        let log_path = dir.path().join("plugboard.log");
        let mut pbx = Pbx {
            child: None,
            udp: "0.0.0.0:0".parse().expect("addr"),
            tcp: "0.0.0.0:0".parse().expect("addr"),
            admin: None,
            dir,
            config_path,
            log_path,
        };
        pbx.try_spawn()?;
        Ok(pbx)
    }

    fn spawn(&mut self) {
        if let Err(log) = self.try_spawn() {
            panic!("plugboard did not become ready; log:\n{log}");
        }
    }

    fn try_spawn(&mut self) -> Result<(), String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .expect("log file");
        let mut child = Command::new(plugboard_bin())
            .args(["run", "--config"])
            .arg(&self.config_path)
            .env("PLUGBOARD_LOG", "info,plugboard_calls=debug")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("spawn plugboard");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if line.starts_with("plugboard ready") => {
                    for part in line.split_whitespace() {
                        if let Some(a) = part.strip_prefix("udp=") {
                            self.udp = a.parse().expect("udp addr");
                        }
                        if let Some(a) = part.strip_prefix("tcp=") {
                            self.tcp = a.parse().expect("tcp addr");
                        }
                        if let Some(a) = part.strip_prefix("admin=") {
                            self.admin = a.parse().ok();
                        }
                    }
                    return Ok(());
                }
                Ok(_) => {}
                Err(_) => {
                    if let Some(c) = self.child.as_mut() {
                        let _ = c.kill();
                        let _ = c.wait();
                    }
                    return Err(self.log());
                }
            }
        }
    }

    /// Stops the process (SIGTERM, a clean shutdown) and starts it again on
    /// the same data and ports.
    pub fn restart(&mut self) {
        self.terminate();
        self.respawn();
    }

    /// Kills the process with SIGKILL (a crash) and starts it again.
    pub fn crash_and_restart(&mut self) {
        self.kill();
        self.respawn();
    }

    fn terminate(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        self.kill();
    }

    fn respawn(&mut self) {
        // Keep the same ports so registrations stay meaningful.
        let cfg = std::fs::read_to_string(&self.config_path).expect("config");
        let cfg = cfg
            .replace(
                "sip_udp = \"127.0.0.1:0\"",
                &format!("sip_udp = \"{}\"", self.udp),
            )
            .replace(
                "sip_tcp = \"127.0.0.1:0\"",
                &format!("sip_tcp = \"{}\"", self.tcp),
            );
        std::fs::write(&self.config_path, cfg).expect("config");
        self.spawn();
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The process's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// The CDRs written so far.
    pub fn cdrs(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.dir.path().join("data/cdr.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Waits until `n` CDRs exist (bounded).
    pub fn wait_cdrs(&self, n: usize, timeout: Duration) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let c = self.cdrs();
            if c.len() >= n || Instant::now() > deadline {
                return c;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// True while the process runs.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }
}

impl Drop for Pbx {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The SIPp scenario folder.
pub fn scenario(name: &str) -> PathBuf {
    repo_root().join("tests/e2e/sipp").join(name)
}

/// A free UDP port on 127.0.0.1 (for SIPp's signalling or media).
pub fn free_udp_port() -> u16 {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    s.local_addr().expect("addr").port()
}

/// Runs SIPp against `target` with a scenario and extra arguments, bounded by
/// `timeout`. Returns its output; the exit status is 0 when every call passed.
pub fn sipp(scenario_file: &str, target: SocketAddr, args: &[&str], timeout: Duration) -> Output {
    let child = sipp_spawn(scenario_file, target, args);
    wait_bounded(child, timeout)
}

/// Starts SIPp in the background (for a callee that must wait for INVITEs).
pub fn sipp_spawn(scenario_file: &str, target: SocketAddr, args: &[&str]) -> Child {
    // SIPp binds 5060 unless told otherwise: never let parallel tests collide.
    let port = free_udp_port().to_string();
    let default_port: &[&str] = if args.contains(&"-p") {
        &[]
    } else {
        &["-p", &port]
    };
    Command::new("sipp")
        .arg(target.to_string())
        .arg("-sf")
        .arg(scenario(scenario_file))
        .args(["-i", "127.0.0.1", "-nostdin"])
        .args(if args.contains(&"domain") {
            &[][..]
        } else {
            &["-key", "domain", DOMAIN][..]
        })
        .args(default_port)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sipp (install the sip-tester package)")
}

/// Waits for a child at most `timeout`, killing it after that.
pub fn wait_bounded(mut child: Child, timeout: Duration) -> Output {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                break;
            }
        }
    }
    child.wait_with_output().expect("wait")
}

/// Text of a SIPp run for assertion messages.
pub fn describe(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Registers `user` (password `pw<user>`) from SIPp bound to `port`, so that
/// INVITEs for the user go to whatever SIPp listens there next.
pub fn register_at(pbx: &Pbx, user: &str, port: u16) {
    let p = port.to_string();
    let pw = format!("pw{user}");
    let out = sipp(
        "register.xml",
        pbx.udp,
        &[
            "-s", user, "-au", user, "-ap", &pw, "-key", "expires", "3600", "-p", &p, "-m", "1",
        ],
        Duration::from_secs(20),
    );
    assert!(out.status.success(), "register {user}: {}", describe(&out));
}

/// Starts a SIPp callee on `port` running `scenario`, echoing RTP on `media`.
pub fn callee(pbx: &Pbx, scenario: &str, port: u16, media: u16) -> Child {
    callee_for(pbx, scenario, port, media, 1)
}

/// [`callee`] answering `calls` calls (at most 60 s).
pub fn callee_for(pbx: &Pbx, scenario: &str, port: u16, media: u16, calls: u32) -> Child {
    let p = port.to_string();
    let mp = media.to_string();
    let m = calls.to_string();
    let limit = if calls > 1 { "60s" } else { "30s" };
    sipp_spawn(
        scenario,
        pbx.udp,
        &[
            "-p",
            &p,
            "-mp",
            &mp,
            "-rtp_echo",
            "-m",
            &m,
            "-timeout",
            limit,
            "-timeout_error",
        ],
    )
}

/// Runs one SIPp call from user `from` (password `pw<from>`) to `number`,
/// bounded by `timeout_s` seconds.
pub fn call(pbx: &Pbx, scenario: &str, from: &str, number: &str, timeout_s: u64) -> Output {
    call_in(
        pbx,
        DOMAIN,
        scenario,
        (from, &format!("pw{from}")),
        number,
        timeout_s,
    )
}

/// One SIPp call of `scenario` in tenant `domain` from user `(name,
/// password)` to `number`, bounded by `timeout_s`.
pub fn call_in(
    pbx: &Pbx,
    domain: &str,
    scenario: &str,
    from: (&str, &str),
    number: &str,
    timeout_s: u64,
) -> Output {
    wait_bounded(
        call_in_background(pbx, domain, scenario, from, number, timeout_s),
        Duration::from_secs(timeout_s + 10),
    )
}

/// [`call_in`] without waiting: the running SIPp (for calls that overlap).
pub fn call_in_background(
    pbx: &Pbx,
    domain: &str,
    scenario: &str,
    from: (&str, &str),
    number: &str,
    timeout_s: u64,
) -> Child {
    calls_in_background(pbx, domain, scenario, from, number, &["-m", "1"], timeout_s)
}

/// Several SIPp calls of `scenario` in tenant `domain` from user `(name,
/// password)` to `number`; `calls` are SIPp's count and pacing options
/// (e.g. `["-m", "5", "-l", "5", "-r", "20"]`). Not waited for.
pub fn calls_in_background(
    pbx: &Pbx,
    domain: &str,
    scenario: &str,
    (from, password): (&str, &str),
    number: &str,
    calls: &[&str],
    timeout_s: u64,
) -> Child {
    let mp = free_udp_port().to_string();
    let limit = format!("{timeout_s}s");
    let mut args = vec![
        "-key",
        "domain",
        domain,
        "-s",
        number,
        "-key",
        "caller",
        from,
        "-au",
        from,
        "-ap",
        password,
        "-mp",
        &mp,
        "-timeout",
        &limit,
        "-timeout_error",
    ];
    args.extend_from_slice(calls);
    sipp_spawn(scenario, pbx.udp, &args)
}

/// Runs the `plugboard` binary with `args` and no admin API (the offline
/// commands: keys, packages, licences), bounded to 120 s.
pub fn plugboard(args: &[&str]) -> Output {
    let child = Command::new(plugboard_bin())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn plugboard");
    wait_bounded(child, Duration::from_secs(120))
}

/// A real OCI distribution registry (Debian's `docker-registry`) on a free
/// loopback port, storing into a temporary folder; killed on drop.
pub struct OciRegistry {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    _dir: tempfile::TempDir,
}

impl OciRegistry {
    /// Starts the registry and waits (at most 15 s) until `/v2/` answers.
    pub fn start() -> OciRegistry {
        let bin = Path::new("/usr/bin/docker-registry");
        assert!(
            bin.exists(),
            "{} is missing: run scripts/install-deps.sh --test (Debian package docker-registry)",
            bin.display()
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let addr = format!("127.0.0.1:{port}");
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n\
                 http:\n  addr: {addr}\n",
                dir.path().join("storage").display()
            ),
        )
        .expect("registry config");
        let child = Command::new(bin)
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn docker-registry");
        let mut reg = OciRegistry {
            child,
            addr,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(mut s) = std::net::TcpStream::connect(&reg.addr) {
                use std::io::{Read, Write};
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let _ = write!(s, "GET /v2/ HTTP/1.0\r\nHost: {}\r\n\r\n", reg.addr);
                let mut head = [0u8; 12];
                if s.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.") {
                    return reg;
                }
            }
            if let Ok(Some(st)) = reg.child.try_wait() {
                panic!("docker-registry exited at start: {st}");
            }
            assert!(
                Instant::now() < deadline,
                "docker-registry did not answer in 15 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for OciRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Enables plugin `name` for `domain` with `grants` in one tenant document
/// (the grants route accepts enabled plugins only), as the operator.
/// Returns the status and body of the PUT.
pub fn enable_with_grants(
    pbx: &Pbx,
    domain: &str,
    name: &str,
    grants: &[&str],
) -> (u16, serde_json::Value) {
    let path = format!("/v1/tenants/{domain}");
    let (st, mut doc) = pbx.api("GET", &path, OPERATOR_TOKEN, None);
    assert_eq!(st, 200, "{doc}");
    let plugins = doc["plugins"].as_array_mut().expect("plugins array");
    plugins.retain(|p| p["name"] != name);
    plugins.push(serde_json::json!({"name": name, "grants": grants}));
    pbx.api("PUT", &path, OPERATOR_TOKEN, Some(&doc))
}

/// Asserts that a command succeeded (`what` names it in the failure) and
/// returns its stdout.
pub fn succeeded(out: &Output, what: &str) -> String {
    assert!(out.status.success(), "{what}: {}", describe(out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `plugboard key generate --signer SIGNER` into `dir`: writes
/// `dir/SIGNER.key` and `dir/SIGNER.pub`.
pub fn generate_key(dir: &Path, signer: &str) {
    let stem = dir.join(signer);
    succeeded(
        &plugboard(&[
            "key",
            "generate",
            "--signer",
            signer,
            "-o",
            stem.to_str().expect("utf-8 path"),
        ]),
        "key generate",
    );
}

/// Copies the built plugin `name` (plugin.wasm and plugin.toml) into
/// `dir/name`, passing the manifest through `edit`; returns the folder.
pub fn plugin_copy(dir: &Path, name: &str, edit: impl Fn(String) -> String) -> PathBuf {
    let src = plugin_wasm(name);
    let out = dir.join(name);
    std::fs::create_dir_all(&out).expect("plugin folder");
    std::fs::copy(&src, out.join("plugin.wasm")).expect("copy plugin.wasm");
    let manifest = std::fs::read_to_string(src.with_file_name("plugin.toml")).expect("manifest");
    std::fs::write(out.join("plugin.toml"), edit(manifest)).expect("write manifest");
    out
}
