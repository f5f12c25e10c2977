//! A fake in-memory backend, a server on 127.0.0.1:0 and a raw HTTP/1.1 helper.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use plugboard_admin::{
    AdminBackend, ApiError, CdrQuery, Metric, MetricKind, PluginUpload, Principal, Sample,
};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub const OPERATOR: &str = "op-token";
pub const A_ADMIN: &str = "a-token";
pub const B_ADMIN: &str = "b-token";

#[derive(Default)]
struct Tenant {
    language: String,
    users: BTreeMap<String, Value>,
    dialplan: BTreeMap<String, Value>,
    plugins: BTreeMap<String, Value>,
    /// Prompt overrides: (language, name) → WAV bytes.
    prompts: BTreeMap<(String, String), Vec<u8>>,
}

impl Tenant {
    fn doc(&self, domain: &str) -> Value {
        json!({
            "domain": domain,
            "language": self.language,
            "users": self.users.values().collect::<Vec<_>>(),
            "dialplan": self.dialplan.iter().map(|(n, t)| {
                let mut e = t.clone();
                e["number"] = json!(n);
                e
            }).collect::<Vec<_>>(),
            "plugins": self.plugins.values().collect::<Vec<_>>(),
        })
    }

    fn from_doc(doc: &Value) -> Result<Tenant, ApiError> {
        let mut t = Tenant {
            language: doc["language"].as_str().unwrap_or("en").to_owned(),
            ..Tenant::default()
        };
        for u in doc["users"].as_array().into_iter().flatten() {
            let ext = u["extension"]
                .as_str()
                .ok_or_else(|| ApiError::bad_request("users[].extension: missing"))?;
            t.users.insert(ext.to_owned(), u.clone());
        }
        for e in doc["dialplan"].as_array().into_iter().flatten() {
            let mut e = e.clone();
            let number = e
                .as_object_mut()
                .and_then(|o| o.remove("number"))
                .and_then(|n| n.as_str().map(str::to_owned))
                .ok_or_else(|| ApiError::bad_request("dialplan[].number: missing"))?;
            t.dialplan.insert(number, e);
        }
        Ok(t)
    }
}

/// Everything in memory; `ext == "panic"` panics, to test isolation.
#[derive(Default)]
pub struct Fake {
    tenants: Mutex<BTreeMap<String, Tenant>>,
    installed: Mutex<Vec<Value>>,
    pub last_upload: Mutex<Option<PluginUpload>>,
    pub last_cdr_query: Mutex<Option<(Option<String>, CdrQuery)>>,
}

impl Fake {
    pub fn new() -> Arc<Fake> {
        let fake = Fake::default();
        {
            let mut t = fake.tenants.lock().unwrap();
            for d in ["a.test", "b.test"] {
                let mut tenant = Tenant {
                    language: "en".into(),
                    ..Tenant::default()
                };
                tenant.users.insert(
                    "101".into(),
                    json!({"extension": "101", "password": "pw", "display_name": format!("Alice at {d}")}),
                );
                t.insert(d.into(), tenant);
            }
        }
        Arc::new(fake)
    }

    fn with_tenant<R>(
        &self,
        domain: &str,
        f: impl FnOnce(&mut Tenant) -> Result<R, ApiError>,
    ) -> Result<R, ApiError> {
        let mut tenants = self.tenants.lock().unwrap();
        let t = tenants
            .get_mut(domain)
            .ok_or_else(|| ApiError::not_found(format!("no tenant {domain}")))?;
        f(t)
    }

    fn cdrs(domain: Option<&str>) -> Value {
        let all = json!([
            {"call_id": "c1@x", "tenant": "a.test", "from": "101", "to": "*98", "start_ms": 1000,
             "answer_ms": 1500, "end_ms": 9000, "disposition": "answered", "plugin": "vm",
             "plugin_version": "1.0.0", "sip": {"codes": [200]}, "caller_name": "Smith, \"Al\""},
            {"call_id": "c2@x", "tenant": "b.test", "from": "+4930123", "to": "200", "start_ms": 2000,
             "answer_ms": null, "end_ms": 2500, "disposition": "busy"}
        ]);
        match domain {
            None => all,
            Some(d) => Value::Array(
                all.as_array()
                    .unwrap()
                    .iter()
                    .filter(|c| c["tenant"] == d)
                    .cloned()
                    .collect(),
            ),
        }
    }
}

#[async_trait]
impl AdminBackend for Fake {
    fn authenticate(&self, bearer_token: &str) -> Option<Principal> {
        match bearer_token {
            OPERATOR => Some(Principal::Operator),
            A_ADMIN => Some(Principal::TenantAdmin {
                domain: "a.test".into(),
            }),
            B_ADMIN => Some(Principal::TenantAdmin {
                domain: "B.Test".into(),
            }),
            _ => None,
        }
    }

    async fn health(&self) -> Result<Value, ApiError> {
        Ok(json!({"status": "ok"}))
    }

    async fn metrics(&self) -> Result<Vec<Metric>, ApiError> {
        Ok(vec![Metric {
            name: "plugboard_calls_active".into(),
            help: "Calls in progress.".into(),
            kind: MetricKind::Gauge,
            samples: vec![
                Sample::new(&[("tenant", "a.test")], 1.0),
                Sample::new(&[("tenant", "b\"test")], 0.0),
            ],
        }])
    }

    async fn list_tenants(&self) -> Result<Value, ApiError> {
        let t = self.tenants.lock().unwrap();
        Ok(t.iter()
            .map(|(d, t)| json!({"domain": d, "users": t.users.len()}))
            .collect())
    }

    async fn create_tenant(&self, body: Value) -> Result<Value, ApiError> {
        let domain = body["domain"]
            .as_str()
            .ok_or_else(|| ApiError::bad_request("domain: missing"))?
            .to_ascii_lowercase();
        let mut tenants = self.tenants.lock().unwrap();
        if tenants.contains_key(&domain) {
            return Err(ApiError::conflict(format!("tenant {domain} exists")));
        }
        let t = Tenant::from_doc(&body)?;
        let doc = t.doc(&domain);
        tenants.insert(domain, t);
        Ok(doc)
    }

    async fn get_tenant(&self, domain: &str) -> Result<Value, ApiError> {
        self.with_tenant(domain, |t| Ok(t.doc(domain)))
    }

    async fn put_tenant(
        &self,
        domain: &str,
        body: Value,
        may_create: bool,
    ) -> Result<Value, ApiError> {
        let mut tenants = self.tenants.lock().unwrap();
        if !tenants.contains_key(domain) && !may_create {
            return Err(ApiError::forbidden("only the operator can create tenants"));
        }
        let t = Tenant::from_doc(&body)?;
        let doc = t.doc(domain);
        tenants.insert(domain.to_owned(), t);
        Ok(doc)
    }

    async fn delete_tenant(&self, domain: &str) -> Result<Value, ApiError> {
        match self.tenants.lock().unwrap().remove(domain) {
            Some(_) => Ok(Value::Null),
            None => Err(ApiError::not_found(format!("no tenant {domain}"))),
        }
    }

    async fn list_users(&self, domain: &str) -> Result<Value, ApiError> {
        self.with_tenant(domain, |t| {
            Ok(t.users
                .values()
                .map(|u| {
                    let mut u = u.clone();
                    u.as_object_mut().unwrap().remove("password");
                    u
                })
                .collect())
        })
    }

    async fn create_user(&self, domain: &str, body: Value) -> Result<Value, ApiError> {
        let ext = body["extension"]
            .as_str()
            .ok_or_else(|| ApiError::bad_request("extension: missing"))?
            .to_owned();
        self.with_tenant(domain, |t| {
            if t.users.contains_key(&ext) {
                return Err(ApiError::conflict(format!("user {ext} exists")));
            }
            t.users.insert(ext, body.clone());
            Ok(body)
        })
    }

    async fn get_user(&self, domain: &str, ext: &str) -> Result<Value, ApiError> {
        if ext == "panic" {
            panic!("the fake backend panics on request");
        }
        self.with_tenant(domain, |t| {
            t.users
                .get(ext)
                .cloned()
                .ok_or_else(|| ApiError::not_found(format!("no user {ext}")))
        })
    }

    async fn put_user(&self, domain: &str, ext: &str, mut body: Value) -> Result<Value, ApiError> {
        body["extension"] = json!(ext);
        self.with_tenant(domain, |t| {
            t.users.insert(ext.to_owned(), body.clone());
            Ok(body)
        })
    }

    async fn delete_user(&self, domain: &str, ext: &str) -> Result<Value, ApiError> {
        self.with_tenant(domain, |t| match t.users.remove(ext) {
            Some(_) => Ok(Value::Null),
            None => Err(ApiError::not_found(format!("no user {ext}"))),
        })
    }

    async fn get_dialplan(&self, domain: &str) -> Result<Value, ApiError> {
        self.with_tenant(domain, |t| Ok(t.doc(domain)["dialplan"].clone()))
    }

    async fn put_dialplan_entry(
        &self,
        domain: &str,
        number: &str,
        body: Value,
    ) -> Result<Value, ApiError> {
        if body.get("user").is_none() && body.get("plugin").is_none() {
            return Err(ApiError::bad_request("give \"user\" or \"plugin\""));
        }
        self.with_tenant(domain, |t| {
            t.dialplan.insert(number.to_owned(), body.clone());
            let mut e = body;
            e["number"] = json!(number);
            Ok(e)
        })
    }

    async fn delete_dialplan_entry(&self, domain: &str, number: &str) -> Result<Value, ApiError> {
        self.with_tenant(domain, |t| match t.dialplan.remove(number) {
            Some(_) => Ok(Value::Null),
            None => Err(ApiError::not_found(format!("no entry {number}"))),
        })
    }

    async fn list_plugins(&self) -> Result<Value, ApiError> {
        Ok(Value::Array(self.installed.lock().unwrap().clone()))
    }

    async fn install_plugin(&self, upload: PluginUpload) -> Result<Value, ApiError> {
        let name = upload
            .manifest
            .lines()
            .find_map(|l| l.strip_prefix("name = "))
            .map(|n| n.trim_matches('"').to_owned())
            .ok_or_else(|| ApiError::bad_request("manifest: no name"))?;
        let v = json!({"name": name, "version": "1.0.0", "size": upload.component.len()});
        self.installed.lock().unwrap().push(v.clone());
        *self.last_upload.lock().unwrap() = Some(upload);
        Ok(v)
    }

    async fn list_trust(&self) -> Result<Value, ApiError> {
        Ok(json!([]))
    }

    async fn add_trust(&self, public_key: String) -> Result<Value, ApiError> {
        Ok(json!({"public_key": public_key}))
    }

    async fn remove_trust(&self, key_id: &str) -> Result<Value, ApiError> {
        Err(ApiError::not_found(format!("no trusted key {key_id}")))
    }

    async fn licence_status(&self) -> Result<Value, ApiError> {
        Ok(json!({"state": {"kind": "unlicensed"}}))
    }

    async fn put_licence(&self, name: &str, text: String) -> Result<Value, ApiError> {
        Ok(json!({"name": name, "bytes": text.len()}))
    }

    async fn delete_licence(&self, name: &str) -> Result<Value, ApiError> {
        Err(ApiError::not_found(format!("no licence {name}")))
    }

    async fn uninstall_plugin(&self, name: &str, version: &str) -> Result<Value, ApiError> {
        let mut installed = self.installed.lock().unwrap();
        let before = installed.len();
        installed.retain(|p| !(p["name"] == name && p["version"] == version));
        if installed.len() == before {
            return Err(ApiError::not_found(format!(
                "{name} {version} is not installed"
            )));
        }
        Ok(Value::Null)
    }

    async fn list_tenant_plugins(&self, domain: &str) -> Result<Value, ApiError> {
        self.with_tenant(domain, |t| Ok(t.plugins.values().cloned().collect()))
    }

    async fn put_tenant_plugin(
        &self,
        domain: &str,
        name: &str,
        body: Value,
    ) -> Result<Value, ApiError> {
        self.with_tenant(domain, |t| {
            let current = t.plugins.get(name).cloned();
            let version = body["version"]
                .as_str()
                .map(str::to_owned)
                .or_else(|| current.as_ref().and_then(|c| c["version"].as_str().map(str::to_owned)))
                .unwrap_or_else(|| "1.0.0".into());
            let config = body
                .get("config")
                .cloned()
                .or_else(|| current.as_ref().map(|c| c["config"].clone()))
                .unwrap_or_else(|| json!({}));
            let previous = current.as_ref().map(|c| c["version"].clone()).unwrap_or(Value::Null);
            let grants = current.map(|c| c["grants"].clone()).unwrap_or_else(|| json!([]));
            let p = json!({"name": name, "version": version, "previous_version": previous, "config": config, "grants": grants});
            t.plugins.insert(name.to_owned(), p.clone());
            Ok(p)
        })
    }

    async fn rollback_tenant_plugin(&self, domain: &str, name: &str) -> Result<Value, ApiError> {
        self.with_tenant(domain, |t| {
            let p = t
                .plugins
                .get_mut(name)
                .ok_or_else(|| ApiError::not_found(format!("{name} is not enabled")))?;
            let Some(prev) = p["previous_version"].as_str().map(str::to_owned) else {
                return Err(ApiError::conflict("no previous version"));
            };
            p["previous_version"] = Value::Null;
            p["version"] = json!(prev);
            Ok(p.clone())
        })
    }

    async fn delete_tenant_plugin(&self, domain: &str, name: &str) -> Result<Value, ApiError> {
        self.with_tenant(domain, |t| match t.plugins.remove(name) {
            Some(_) => Ok(Value::Null),
            None => Err(ApiError::not_found(format!("{name} is not enabled"))),
        })
    }

    async fn put_tenant_plugin_grants(
        &self,
        domain: &str,
        name: &str,
        body: Value,
    ) -> Result<Value, ApiError> {
        let grants = body
            .get("grants")
            .filter(|g| g.as_array().is_some_and(|a| a.iter().all(Value::is_string)))
            .cloned()
            .ok_or_else(|| ApiError::bad_request("grants: expected an array of strings"))?;
        self.with_tenant(domain, |t| {
            let p = t
                .plugins
                .get_mut(name)
                .ok_or_else(|| ApiError::not_found(format!("{name} is not enabled")))?;
            p["grants"] = grants;
            Ok(p.clone())
        })
    }

    async fn list_prompts(&self, domain: &str) -> Result<Value, ApiError> {
        self.with_tenant(domain, |t| {
            Ok(t.prompts
                .iter()
                .map(|((l, n), wav)| json!({"language": l, "name": n, "size_bytes": wav.len()}))
                .collect())
        })
    }

    /// Accepts anything that starts with `RIFF`; refuses `..` in names.
    async fn put_prompt(
        &self,
        domain: &str,
        language: &str,
        name: &str,
        wav: Vec<u8>,
    ) -> Result<Value, ApiError> {
        if name.split('/').any(|s| s == ".." || s.is_empty()) {
            return Err(ApiError::bad_request(format!("prompt name {name:?}")));
        }
        if !wav.starts_with(b"RIFF") {
            return Err(ApiError::bad_request("not a valid WAV file"));
        }
        self.with_tenant(domain, |t| {
            let v = json!({"language": language, "name": name, "size_bytes": wav.len()});
            t.prompts.insert((language.into(), name.into()), wav);
            Ok(v)
        })
    }

    async fn delete_prompt(
        &self,
        domain: &str,
        language: &str,
        name: &str,
    ) -> Result<Value, ApiError> {
        self.with_tenant(domain, |t| {
            match t.prompts.remove(&(language.to_owned(), name.to_owned())) {
                Some(_) => Ok(Value::Null),
                None => Err(ApiError::not_found(format!(
                    "no {language} override of {name}"
                ))),
            }
        })
    }

    async fn list_calls(&self, domain: Option<&str>) -> Result<Value, ApiError> {
        let calls = json!([
            {"call_id": "c1@x", "tenant": "a.test", "from": "101", "to": "100"},
            {"call_id": "c2@x", "tenant": "b.test", "from": "101", "to": "200"}
        ]);
        Ok(match domain {
            None => calls,
            Some(d) => calls
                .as_array()
                .unwrap()
                .iter()
                .filter(|c| c["tenant"] == d)
                .cloned()
                .collect(),
        })
    }

    async fn list_registrations(&self, domain: &str) -> Result<Value, ApiError> {
        self.with_tenant(domain, |_| {
            Ok(json!([{"user": "101", "contact": format!("sip:101@192.0.2.7:5062;tenant={domain}")}]))
        })
    }

    async fn list_cdrs(&self, domain: Option<&str>, query: CdrQuery) -> Result<Value, ApiError> {
        *self.last_cdr_query.lock().unwrap() = Some((domain.map(str::to_owned), query));
        Ok(Fake::cdrs(domain))
    }
}

/// A running server and the way to stop it.
pub struct Server {
    pub addr: SocketAddr,
    pub fake: Arc<Fake>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Server {
    pub async fn start() -> Server {
        let fake = Fake::new();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let backend: Arc<dyn AdminBackend> = fake.clone();
        let task = tokio::spawn(plugboard_admin::serve(listener, backend, stopped));
        Server {
            addr,
            fake,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops the server and waits until `serve` returns.
    pub async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(std::time::Duration::from_secs(5), self.task.take().unwrap())
            .await
            .expect("serve returns after shutdown")
            .unwrap();
    }

    /// One raw HTTP/1.1 exchange (`Connection: close`).
    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Raw {
        let mut stream = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
            self.addr
        );
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        if !body.is_empty() || method == "POST" || method == "PUT" {
            req.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        req.push_str("\r\n");
        stream.write_all(req.as_bytes()).await.unwrap();
        // The server may answer (413) and close before reading everything.
        let _ = stream.write_all(body).await;
        let mut buf = Vec::new();
        let _ = stream.read_to_end(&mut buf).await;
        Raw::parse(&buf)
    }

    /// A request with a bearer token and an optional JSON body.
    pub async fn call(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> Raw {
        let auth = format!("Bearer {token}");
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let mut headers = vec![("Authorization", auth.as_str())];
        if !body.is_empty() {
            headers.push(("Content-Type", "application/json"));
        }
        self.raw(method, path, &headers, body.as_bytes()).await
    }
}

/// A parsed response.
#[derive(Debug)]
pub struct Raw {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Raw {
    fn parse(buf: &[u8]) -> Raw {
        let text = String::from_utf8_lossy(buf).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").expect("a complete response");
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let headers = lines
            .map(|l| {
                let (k, v) = l.split_once(':').unwrap();
                (k.trim().to_ascii_lowercase(), v.trim().to_owned())
            })
            .collect();
        Raw {
            status,
            headers,
            body: body.to_owned(),
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    /// The `error.code` of an error answer.
    pub fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    }
}
