//! The admin API over real HTTP on loopback, against the in-memory fake backend.

mod common;

use common::{A_ADMIN, B_ADMIN, OPERATOR, Server};
use serde_json::json;

#[tokio::test]
async fn health_and_openapi_need_no_token() {
    let s = Server::start().await;
    let r = s.raw("GET", "/v1/health", &[], b"").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"status": "ok"}));
    assert_eq!(r.header("content-type"), Some("application/json"));
    let r = s.raw("GET", "/v1/openapi.json", &[], b"").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, plugboard_admin::OPENAPI_JSON);
    assert_eq!(r.json()["openapi"], "3.1.0");
    s.stop().await;
}

#[tokio::test]
async fn missing_or_unknown_token_is_401_with_challenge() {
    let s = Server::start().await;
    for (path, headers) in [
        ("/v1/tenants", vec![]),
        ("/v1/tenants/a.test/users", vec![]),
        ("/v1/metrics", vec![("Authorization", "Basic b3A6b3A=")]),
        ("/v1/tenants", vec![("Authorization", "Bearer")]),
    ] {
        let r = s.raw("GET", path, &headers, b"").await;
        assert_eq!(r.status, 401, "{path}");
        assert_eq!(r.code(), "unauthorized");
        assert_eq!(
            r.header("www-authenticate"),
            Some("Bearer realm=\"plugboard\"")
        );
    }
    let r = s.call("GET", "/v1/tenants", "wrong", None).await;
    assert_eq!(r.status, 401);
    assert!(
        r.header("www-authenticate")
            .unwrap()
            .contains("invalid_token")
    );
    // An unknown token is refused before anything is read or changed.
    let r = s.call("DELETE", "/v1/tenants/a.test", "wrong", None).await;
    assert_eq!(r.status, 401);
    assert_eq!(
        s.call("GET", "/v1/tenants/a.test", OPERATOR, None)
            .await
            .status,
        200
    );
    s.stop().await;
}

#[tokio::test]
async fn tenant_admin_cannot_touch_other_tenants() {
    let s = Server::start().await;
    let cross = [
        ("GET", "/v1/tenants/b.test"),
        ("GET", "/v1/tenants/b.test/users"),
        ("GET", "/v1/tenants/b.test/users/101"),
        ("DELETE", "/v1/tenants/b.test/users/101"),
        ("GET", "/v1/tenants/b.test/dialplan"),
        ("GET", "/v1/tenants/b.test/calls"),
        ("GET", "/v1/tenants/b.test/registrations"),
        ("GET", "/v1/tenants/b.test/cdrs"),
        ("GET", "/v1/tenants/b.test/cdrs?format=csv"),
        ("GET", "/v1/tenants/b.test/plugins"),
        ("DELETE", "/v1/tenants/b.test/plugins/vm"),
        ("POST", "/v1/tenants/b.test/plugins/vm/rollback"),
        ("GET", "/v1/tenants/b.test/prompts"),
        ("DELETE", "/v1/tenants/b.test/prompts/en/welcome"),
        // A domain that does not exist: still 403, never 404.
        ("GET", "/v1/tenants/nonexistent.test/users"),
        ("GET", "/v1/tenants/nonexistent.test"),
        // Percent-encoding does not smuggle another domain through.
        ("GET", "/v1/tenants/b%2Etest/users"),
    ];
    for (method, path) in cross {
        let r = s.call(method, path, A_ADMIN, None).await;
        assert_eq!(r.status, 403, "{method} {path}: {}", r.body);
        assert_eq!(r.code(), "forbidden");
    }
    for (method, path, body) in [
        (
            "PUT",
            "/v1/tenants/b.test/users/102",
            json!({"password": "x"}),
        ),
        (
            "POST",
            "/v1/tenants/b.test/users",
            json!({"extension": "102"}),
        ),
        (
            "PUT",
            "/v1/tenants/b.test/dialplan/100",
            json!({"user": "101"}),
        ),
        ("PUT", "/v1/tenants/b.test/plugins/vm", json!({})),
        (
            "PUT",
            "/v1/tenants/b.test/prompts/en/welcome",
            json!({"wav": "UklGRg=="}),
        ),
        ("PUT", "/v1/tenants/b.test", json!({"domain": "b.test"})),
        ("PUT", "/v1/tenants/new.test", json!({"domain": "new.test"})),
    ] {
        let r = s.call(method, path, A_ADMIN, Some(body)).await;
        assert_eq!(r.status, 403, "{method} {path}: {}", r.body);
    }
    // Nothing was changed in b.test.
    let b = s
        .call("GET", "/v1/tenants/b.test", OPERATOR, None)
        .await
        .json();
    assert_eq!(b["users"].as_array().unwrap().len(), 1);
    assert_eq!(b["dialplan"], json!([]));
    s.stop().await;
}

#[tokio::test]
async fn tenant_admin_cannot_use_operator_routes() {
    let s = Server::start().await;
    for (method, path, body) in [
        ("GET", "/v1/metrics", None),
        ("GET", "/v1/calls", None),
        ("GET", "/v1/cdrs", None),
        ("GET", "/v1/plugins", None),
        (
            "POST",
            "/v1/plugins",
            Some(json!({"manifest": "name = \"x\"", "component": "AA=="})),
        ),
        ("DELETE", "/v1/plugins/vm/1.0.0", None),
        ("POST", "/v1/tenants", Some(json!({"domain": "c.test"}))),
        // Operator-only even on its own tenant.
        ("DELETE", "/v1/tenants/a.test", None),
        (
            "PUT",
            "/v1/tenants/a.test/plugins/vm/grants",
            Some(json!({"grants": ["kv"]})),
        ),
        // Enabling is the tenant's; granting at the same time is not.
        (
            "PUT",
            "/v1/tenants/a.test/plugins/vm",
            Some(json!({"grants": ["kv"]})),
        ),
        (
            "PUT",
            "/v1/tenants/a.test/plugins/vm",
            Some(json!({"http_hosts": ["example.com"]})),
        ),
        ("GET", "/v1/trust", None),
        ("POST", "/v1/trust", Some(json!({"public_key": "x"}))),
        ("DELETE", "/v1/trust/ed25519:0011223344556677", None),
        ("GET", "/v1/licence", None),
        ("PUT", "/v1/licences/site", Some(json!({"licence": "x"}))),
        ("DELETE", "/v1/licences/site", None),
    ] {
        let r = s.call(method, path, A_ADMIN, body).await;
        assert_eq!(r.status, 403, "{method} {path}: {}", r.body);
        assert_eq!(r.code(), "forbidden");
    }
    assert!(s.fake.last_upload.lock().unwrap().is_none());
    s.stop().await;
}

#[tokio::test]
async fn tenant_admin_manages_its_own_tenant() {
    let s = Server::start().await;
    // The tenant list is filtered to its own entry.
    let r = s.call("GET", "/v1/tenants", A_ADMIN, None).await;
    assert_eq!(r.json(), json!([{"domain": "a.test", "users": 1}]));
    let r = s.call("GET", "/v1/tenants", OPERATOR, None).await;
    assert_eq!(r.json().as_array().unwrap().len(), 2);
    // The principal's domain "B.Test" matches the path's "b.TEST" case-insensitively.
    let r = s.call("GET", "/v1/tenants", B_ADMIN, None).await;
    assert_eq!(r.json()[0]["domain"], "b.test");
    let r = s
        .call("GET", "/v1/tenants/b.TEST/users", B_ADMIN, None)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    // Own users, case-insensitive domain in the path.
    let r = s
        .call("GET", "/v1/tenants/A.Test/users", A_ADMIN, None)
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json(),
        json!([{"extension": "101", "display_name": "Alice at a.test"}])
    );
    let r = s
        .call(
            "POST",
            "/v1/tenants/a.test/users",
            A_ADMIN,
            Some(json!({"extension": "102", "password": "p"})),
        )
        .await;
    assert_eq!(r.status, 201);
    let r = s
        .call(
            "POST",
            "/v1/tenants/a.test/users",
            A_ADMIN,
            Some(json!({"extension": "102", "password": "p"})),
        )
        .await;
    assert_eq!((r.status, r.code().as_str()), (409, "conflict"));
    let r = s
        .call("DELETE", "/v1/tenants/a.test/users/102", A_ADMIN, None)
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(r.body, "");
    let r = s
        .call("GET", "/v1/tenants/a.test/users/102", A_ADMIN, None)
        .await;
    assert_eq!((r.status, r.code().as_str()), (404, "not_found"));
    // Own calls and CDRs only.
    let r = s
        .call("GET", "/v1/tenants/a.test/calls", A_ADMIN, None)
        .await;
    assert_eq!(r.json().as_array().unwrap().len(), 1);
    // Import (replace) of its own tenant is allowed; a body naming another domain is not.
    let mut doc = s
        .call("GET", "/v1/tenants/a.test", A_ADMIN, None)
        .await
        .json();
    doc["language"] = json!("de");
    let r = s
        .call("PUT", "/v1/tenants/a.test", A_ADMIN, Some(doc.clone()))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["language"], "de");
    doc["domain"] = json!("b.test");
    let r = s
        .call("PUT", "/v1/tenants/a.test", A_ADMIN, Some(doc))
        .await;
    assert_eq!((r.status, r.code().as_str()), (400, "bad_request"));
    // Once its tenant is gone, a tenant admin cannot re-create it (may_create is false).
    assert_eq!(
        s.call("DELETE", "/v1/tenants/a.test", OPERATOR, None)
            .await
            .status,
        204
    );
    let r = s
        .call(
            "PUT",
            "/v1/tenants/a.test",
            A_ADMIN,
            Some(json!({"domain": "a.test"})),
        )
        .await;
    assert_eq!(r.status, 403);
    let r = s
        .call(
            "PUT",
            "/v1/tenants/a.test",
            OPERATOR,
            Some(json!({"domain": "a.test"})),
        )
        .await;
    assert_eq!(r.status, 200);
    s.stop().await;
}

#[tokio::test]
async fn unknown_routes_are_404_and_wrong_methods_405() {
    let s = Server::start().await;
    for path in [
        "/",
        "/v1",
        "/v2/tenants",
        "/v1/tenants/a.test/nothing",
        "/v1/tenants/",
        "/v1/health/",
    ] {
        let r = s.call("GET", path, OPERATOR, None).await;
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(r.code(), "not_found");
    }
    // No token needed to learn that a route does not exist (it is in the public OpenAPI).
    assert_eq!(s.raw("GET", "/v1/nope", &[], b"").await.status, 404);
    let r = s.call("PATCH", "/v1/tenants/a.test", OPERATOR, None).await;
    assert_eq!(r.status, 405);
    assert_eq!(r.code(), "method_not_allowed");
    assert_eq!(r.header("allow"), Some("GET, PUT, DELETE"));
    let r = s.call("POST", "/v1/health", OPERATOR, None).await;
    assert_eq!((r.status, r.header("allow")), (405, Some("GET")));
    let r = s
        .call(
            "GET",
            "/v1/tenants/a.test/plugins/vm/rollback",
            OPERATOR,
            None,
        )
        .await;
    assert_eq!((r.status, r.header("allow")), (405, Some("POST")));
    s.stop().await;
}

#[tokio::test]
async fn bad_bodies_are_refused_with_the_reason() {
    let s = Server::start().await;
    let auth = format!("Bearer {OPERATOR}");
    let json_headers = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
    ];
    let r = s
        .raw(
            "POST",
            "/v1/tenants/a.test/users",
            &json_headers,
            b"{\"extension\": ",
        )
        .await;
    assert_eq!((r.status, r.code().as_str()), (400, "invalid_json"));
    let message = r.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(
        message.contains("not valid JSON") && message.contains("line 1"),
        "{message}"
    );
    let r = s
        .raw("POST", "/v1/tenants/a.test/users", &json_headers, b"")
        .await;
    assert_eq!((r.status, r.code().as_str()), (400, "invalid_json"));
    assert!(r.body.contains("empty"));
    let r = s
        .raw(
            "PUT",
            "/v1/tenants/a.test/users/1",
            &json_headers,
            b"[1, 2]",
        )
        .await;
    assert_eq!((r.status, r.code().as_str()), (400, "bad_request"));
    assert!(r.body.contains("JSON object"));
    // The backend's own validation message comes through.
    let r = s
        .raw("PUT", "/v1/tenants/a.test/dialplan/1", &json_headers, b"{}")
        .await;
    assert_eq!(r.status, 400);
    assert!(
        r.body.contains("give \\\"user\\\" or \\\"plugin\\\""),
        "{}",
        r.body
    );
    // Wrong media type.
    let r = s
        .raw(
            "POST",
            "/v1/tenants/a.test/users",
            &[
                ("Authorization", auth.as_str()),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            b"extension=1",
        )
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (415, "unsupported_media_type")
    );
    // No Content-Type is accepted as JSON; "; charset" parameters are fine.
    let r = s
        .raw(
            "PUT",
            "/v1/tenants/a.test/users/7",
            &[("Authorization", auth.as_str())],
            b"{\"password\": \"p\"}",
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = s
        .raw(
            "PUT",
            "/v1/tenants/a.test/users/8",
            &[
                ("Authorization", auth.as_str()),
                ("Content-Type", "application/json; charset=utf-8"),
            ],
            b"{\"password\": \"p\"}",
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    // Too large: declared and actual.
    let big = vec![b' '; plugboard_admin::MAX_JSON_BODY + 1];
    let r = s
        .raw("PUT", "/v1/tenants/a.test/users/9", &json_headers, &big)
        .await;
    assert_eq!((r.status, r.code().as_str()), (413, "payload_too_large"));
    // Bad base64 in a plugin upload.
    let r = s
        .call(
            "POST",
            "/v1/plugins",
            OPERATOR,
            Some(json!({"manifest": "name = \"x\"", "component": "***"})),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("base64"));
    let r = s
        .call(
            "POST",
            "/v1/plugins",
            OPERATOR,
            Some(json!({"manifest": "name = \"x\""})),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("missing field `component`"), "{}", r.body);
    s.stop().await;
}

#[tokio::test]
async fn plugin_upload_and_tenant_plugin_lifecycle() {
    let s = Server::start().await;
    let wasm = b"\0asm\x0d\0\x01\0 component bytes";
    let b64 = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(wasm)
    };
    let r = s
        .call(
            "POST",
            "/v1/plugins",
            OPERATOR,
            Some(json!({"manifest": "name = \"vm\"\n", "component": b64})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json()["size"], wasm.len());
    assert_eq!(
        s.fake
            .last_upload
            .lock()
            .unwrap()
            .as_ref()
            .unwrap()
            .component,
        wasm
    );
    let r = s
        .call(
            "PUT",
            "/v1/tenants/a.test/plugins/vm",
            A_ADMIN,
            Some(json!({"config": {"pin": "1"}})),
        )
        .await;
    assert_eq!(r.status, 200);
    let r = s
        .call(
            "PUT",
            "/v1/tenants/a.test/plugins/vm",
            A_ADMIN,
            Some(json!({"version": "2.0.0"})),
        )
        .await;
    assert_eq!(r.json()["config"], json!({"pin": "1"}));
    assert_eq!(r.json()["previous_version"], "1.0.0");
    let r = s
        .call(
            "POST",
            "/v1/tenants/a.test/plugins/vm/rollback",
            A_ADMIN,
            None,
        )
        .await;
    assert_eq!(r.json()["version"], "1.0.0");
    let r = s
        .call(
            "PUT",
            "/v1/tenants/a.test/plugins/vm/grants",
            OPERATOR,
            Some(json!({"grants": ["kv"]})),
        )
        .await;
    assert_eq!(r.json()["grants"], json!(["kv"]));
    let r = s
        .call("GET", "/v1/tenants/a.test/plugins", A_ADMIN, None)
        .await;
    assert_eq!(r.json()[0]["grants"], json!(["kv"]));
    assert_eq!(
        s.call("DELETE", "/v1/tenants/a.test/plugins/vm", A_ADMIN, None)
            .await
            .status,
        204
    );
    assert_eq!(
        s.call("DELETE", "/v1/plugins/vm/1.0.0", OPERATOR, None)
            .await
            .status,
        204
    );
    s.stop().await;
}

#[tokio::test]
async fn prompt_override_lifecycle() {
    let s = Server::start().await;
    let wav = b"RIFF....WAVEfmt ";
    let b64 = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(wav)
    };
    // A tenant admin uploads for its own tenant; `digits%2F4` is one name.
    let r = s
        .call(
            "PUT",
            "/v1/tenants/a.test/prompts/de/digits%2F4",
            A_ADMIN,
            Some(json!({"wav": b64})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.json(),
        json!({"language": "de", "name": "digits/4", "size_bytes": wav.len()})
    );
    let r = s
        .call("GET", "/v1/tenants/a.test/prompts", A_ADMIN, None)
        .await;
    assert_eq!(r.json()[0]["name"], "digits/4");
    // The backend's refusal comes through with its reason.
    let r = s
        .call(
            "PUT",
            "/v1/tenants/a.test/prompts/de/x",
            A_ADMIN,
            Some(json!({"wav": "aGVsbG8="})),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("not a valid WAV"), "{}", r.body);
    // Bodies: base64, the one field, the size limit.
    for body in [
        json!({"wav": "***"}),
        json!({"wav": ""}),
        json!({"wav": "UklGRg==", "extra": 1}),
        json!({"file": "UklGRg=="}),
    ] {
        let r = s
            .call(
                "PUT",
                "/v1/tenants/a.test/prompts/de/x",
                A_ADMIN,
                Some(body),
            )
            .await;
        assert_eq!(r.status, 400, "{}", r.body);
    }
    let big = vec![b' '; plugboard_admin::MAX_PROMPT_BODY + 1];
    let auth = format!("Bearer {OPERATOR}");
    let r = s
        .raw(
            "PUT",
            "/v1/tenants/a.test/prompts/de/x",
            &[("Authorization", &auth)],
            &big,
        )
        .await;
    assert_eq!((r.status, r.code().as_str()), (413, "payload_too_large"));
    // Delete, then 404.
    let r = s
        .call(
            "DELETE",
            "/v1/tenants/a.test/prompts/de/digits%2F4",
            A_ADMIN,
            None,
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    let r = s
        .call(
            "DELETE",
            "/v1/tenants/a.test/prompts/de/digits%2F4",
            A_ADMIN,
            None,
        )
        .await;
    assert_eq!((r.status, r.code().as_str()), (404, "not_found"));
    let r = s
        .call("GET", "/v1/tenants/a.test/prompts", OPERATOR, None)
        .await;
    assert_eq!(r.json(), json!([]));
    s.stop().await;
}

#[tokio::test]
async fn dial_plan_numbers_are_percent_decoded() {
    let s = Server::start().await;
    for (encoded, number) in [
        ("%2A98", "*98"),
        ("*97", "*97"),
        ("%2B4930123", "+4930123"),
        ("+4940", "+4940"),
    ] {
        let path = format!("/v1/tenants/a.test/dialplan/{encoded}");
        let r = s
            .call(
                "PUT",
                &path,
                A_ADMIN,
                Some(json!({"plugin": "vm", "config": {"mode": "mailbox"}})),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.json()["number"], number);
    }
    let r = s
        .call("GET", "/v1/tenants/a.test/dialplan", A_ADMIN, None)
        .await;
    let numbers: Vec<_> = r
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["number"].clone())
        .collect();
    assert_eq!(
        numbers,
        vec![
            json!("*97"),
            json!("*98"),
            json!("+4930123"),
            json!("+4940")
        ]
    );
    assert_eq!(
        s.call("DELETE", "/v1/tenants/a.test/dialplan/%2A98", A_ADMIN, None)
            .await
            .status,
        204
    );
    let r = s
        .call("GET", "/v1/tenants/a.test/users/%FF", A_ADMIN, None)
        .await;
    assert_eq!(r.status, 400);
    s.stop().await;
}

#[tokio::test]
async fn cdrs_as_json_and_csv() {
    let s = Server::start().await;
    let r = s
        .call("GET", "/v1/cdrs?since_ms=1500&limit=10", OPERATOR, None)
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json().as_array().unwrap().len(), 2);
    let (scope, q) = s.fake.last_cdr_query.lock().unwrap().clone().unwrap();
    assert_eq!((scope, q.since_ms, q.limit), (None, Some(1500), Some(10)));

    let r = s
        .call("GET", "/v1/tenants/A.TEST/cdrs?format=csv", A_ADMIN, None)
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("text/csv; charset=utf-8; header=present")
    );
    assert_eq!(
        r.body,
        "call_id,tenant,from,to,start_ms,answer_ms,end_ms,disposition,plugin,plugin_version,caller_name,sip\r\n\
         c1@x,a.test,101,*98,1000,1500,9000,answered,vm,1.0.0,\"Smith, \"\"Al\"\"\",\"{\"\"codes\"\":[200]}\"\r\n"
    );
    assert_eq!(
        s.fake
            .last_cdr_query
            .lock()
            .unwrap()
            .clone()
            .unwrap()
            .0
            .as_deref(),
        Some("a.test")
    );

    // Accept: text/csv works too; ?format=json overrides it.
    let auth = format!("Bearer {OPERATOR}");
    let csv_accept = [("Authorization", auth.as_str()), ("Accept", "text/csv")];
    let r = s.raw("GET", "/v1/cdrs", &csv_accept, b"").await;
    assert!(r.header("content-type").unwrap().starts_with("text/csv"));
    assert!(
        r.body.contains("+4930123,200,2000,,2500,busy"),
        "{}",
        r.body
    );
    let r = s.raw("GET", "/v1/cdrs?format=json", &csv_accept, b"").await;
    assert_eq!(r.header("content-type"), Some("application/json"));

    for bad in ["limit=0", "since_ms=yesterday", "format=xml", "sort=asc"] {
        let r = s
            .call("GET", &format!("/v1/cdrs?{bad}"), OPERATOR, None)
            .await;
        assert_eq!((r.status, r.code().as_str()), (400, "bad_request"), "{bad}");
    }
    s.stop().await;
}

#[tokio::test]
async fn metrics_are_prometheus_text() {
    let s = Server::start().await;
    let r = s.call("GET", "/v1/metrics", OPERATOR, None).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    assert_eq!(
        r.body,
        "# HELP plugboard_calls_active Calls in progress.\n\
         # TYPE plugboard_calls_active gauge\n\
         plugboard_calls_active{tenant=\"a.test\"} 1\n\
         plugboard_calls_active{tenant=\"b\\\"test\"} 0\n"
    );
    s.stop().await;
}

#[tokio::test]
async fn a_panicking_backend_costs_one_500() {
    let s = Server::start().await;
    let r = s
        .call("GET", "/v1/tenants/a.test/users/panic", OPERATOR, None)
        .await;
    assert_eq!((r.status, r.code().as_str()), (500, "internal"));
    assert_eq!(
        s.call("GET", "/v1/tenants/a.test/users/101", OPERATOR, None)
            .await
            .status,
        200
    );
    s.stop().await;
}

#[tokio::test]
async fn keep_alive_connection_serves_several_requests_and_shutdown_ends_serve() {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    let s = Server::start().await;
    let stream = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let mut stream = BufReader::new(stream);
    for _ in 0..3 {
        stream
            .get_mut()
            .write_all(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut status = String::new();
        stream.read_line(&mut status).await.unwrap();
        assert!(status.starts_with("HTTP/1.1 200"), "{status}");
        let mut length = 0;
        loop {
            let mut line = String::new();
            stream.read_line(&mut line).await.unwrap();
            if line == "\r\n" {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; length];
        stream.read_exact(&mut body).await.unwrap();
    }
    // The idle keep-alive connection does not hold up shutdown.
    s.stop().await;
}
