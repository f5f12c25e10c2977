//! The route table and a small hand-written matcher.
//!
//! [`ROUTES`] is the single source of truth: dispatch, authorisation, body
//! handling and the OpenAPI coverage test all read it. Patterns use OpenAPI's
//! `{name}` syntax; a parameter matches one non-empty path segment, which is
//! percent-decoded after splitting (so `%2F` never splits a segment and
//! `%2A98` is `*98`). Literal segments match exactly (case-sensitive). No two
//! patterns can match the same path (a unit test checks), so the order of the
//! table does not matter.

use hyper::Method;
use percent_encoding::percent_decode_str;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// No authentication.
    Public,
    /// Any authenticated principal (the handler filters what a tenant admin sees).
    Authenticated,
    /// The operator, or the admin of the tenant named by `{domain}`.
    Tenant,
    /// The operator only.
    Operator,
}

/// What the request body must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyKind {
    /// Ignored (not read).
    None,
    /// A JSON object of at most [`crate::MAX_JSON_BODY`] bytes.
    Json,
    /// A JSON object of at most [`crate::MAX_UPLOAD_BODY`] bytes (plugin upload).
    Upload,
    /// A JSON object of at most [`crate::MAX_PROMPT_BODY`] bytes (prompt upload).
    PromptUpload,
}

/// The operation a route performs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Health,
    Metrics,
    OpenApi,
    ListTenants,
    CreateTenant,
    GetTenant,
    PutTenant,
    DeleteTenant,
    ListUsers,
    CreateUser,
    GetUser,
    PutUser,
    DeleteUser,
    GetDialplan,
    PutDialEntry,
    DeleteDialEntry,
    ListPlugins,
    InstallPlugin,
    UninstallPlugin,
    ListTenantPlugins,
    PutTenantPlugin,
    RollbackTenantPlugin,
    DeleteTenantPlugin,
    PutGrants,
    ListPrompts,
    PutPrompt,
    DeletePrompt,
    ListCalls,
    ListTenantCalls,
    ListRegistrations,
    ListCdrs,
    ListTenantCdrs,
    ListTrust,
    AddTrust,
    RemoveTrust,
    GetLicence,
    PutLicence,
    DeleteLicence,
}

/// One route.
#[derive(Debug)]
pub(crate) struct Route {
    pub method: Method,
    pub pattern: &'static str,
    pub op: Op,
    pub access: Access,
    pub body: BodyKind,
}

const fn route(
    method: Method,
    pattern: &'static str,
    op: Op,
    access: Access,
    body: BodyKind,
) -> Route {
    Route {
        method,
        pattern,
        op,
        access,
        body,
    }
}

use Access::{Authenticated, Operator, Public, Tenant};
use BodyKind::{Json, PromptUpload, Upload};

/// Every route of the API.
#[rustfmt::skip]
pub(crate) static ROUTES: &[Route] = &[
    route(Method::GET, "/v1/health", Op::Health, Public, BodyKind::None),
    route(Method::GET, "/v1/metrics", Op::Metrics, Operator, BodyKind::None),
    route(Method::GET, "/v1/openapi.json", Op::OpenApi, Public, BodyKind::None),
    // Tenants.
    route(Method::GET, "/v1/tenants", Op::ListTenants, Authenticated, BodyKind::None),
    route(Method::POST, "/v1/tenants", Op::CreateTenant, Operator, Json),
    route(Method::GET, "/v1/tenants/{domain}", Op::GetTenant, Tenant, BodyKind::None),
    route(Method::PUT, "/v1/tenants/{domain}", Op::PutTenant, Tenant, Json),
    route(Method::DELETE, "/v1/tenants/{domain}", Op::DeleteTenant, Operator, BodyKind::None),
    // Users.
    route(Method::GET, "/v1/tenants/{domain}/users", Op::ListUsers, Tenant, BodyKind::None),
    route(Method::POST, "/v1/tenants/{domain}/users", Op::CreateUser, Tenant, Json),
    route(Method::GET, "/v1/tenants/{domain}/users/{ext}", Op::GetUser, Tenant, BodyKind::None),
    route(Method::PUT, "/v1/tenants/{domain}/users/{ext}", Op::PutUser, Tenant, Json),
    route(Method::DELETE, "/v1/tenants/{domain}/users/{ext}", Op::DeleteUser, Tenant, BodyKind::None),
    // Dial plan.
    route(Method::GET, "/v1/tenants/{domain}/dialplan", Op::GetDialplan, Tenant, BodyKind::None),
    route(Method::PUT, "/v1/tenants/{domain}/dialplan/{number}", Op::PutDialEntry, Tenant, Json),
    route(Method::DELETE, "/v1/tenants/{domain}/dialplan/{number}", Op::DeleteDialEntry, Tenant, BodyKind::None),
    // Plugins installed on the host.
    route(Method::GET, "/v1/plugins", Op::ListPlugins, Operator, BodyKind::None),
    route(Method::POST, "/v1/plugins", Op::InstallPlugin, Operator, Upload),
    route(Method::DELETE, "/v1/plugins/{name}/{version}", Op::UninstallPlugin, Operator, BodyKind::None),
    // The trust store: vendor keys whose packages may be installed.
    route(Method::GET, "/v1/trust", Op::ListTrust, Operator, BodyKind::None),
    route(Method::POST, "/v1/trust", Op::AddTrust, Operator, Json),
    route(Method::DELETE, "/v1/trust/{key_id}", Op::RemoveTrust, Operator, BodyKind::None),
    // Licences.
    route(Method::GET, "/v1/licence", Op::GetLicence, Operator, BodyKind::None),
    route(Method::PUT, "/v1/licences/{name}", Op::PutLicence, Operator, Json),
    route(Method::DELETE, "/v1/licences/{name}", Op::DeleteLicence, Operator, BodyKind::None),
    // Tenant plugins.
    route(Method::GET, "/v1/tenants/{domain}/plugins", Op::ListTenantPlugins, Tenant, BodyKind::None),
    route(Method::PUT, "/v1/tenants/{domain}/plugins/{name}", Op::PutTenantPlugin, Tenant, Json),
    route(Method::DELETE, "/v1/tenants/{domain}/plugins/{name}", Op::DeleteTenantPlugin, Tenant, BodyKind::None),
    route(Method::POST, "/v1/tenants/{domain}/plugins/{name}/rollback", Op::RollbackTenantPlugin, Tenant, BodyKind::None),
    route(Method::PUT, "/v1/tenants/{domain}/plugins/{name}/grants", Op::PutGrants, Operator, Json),
    // Tenant prompt overrides.
    route(Method::GET, "/v1/tenants/{domain}/prompts", Op::ListPrompts, Tenant, BodyKind::None),
    route(Method::PUT, "/v1/tenants/{domain}/prompts/{language}/{name}", Op::PutPrompt, Tenant, PromptUpload),
    route(Method::DELETE, "/v1/tenants/{domain}/prompts/{language}/{name}", Op::DeletePrompt, Tenant, BodyKind::None),
    // Live state.
    route(Method::GET, "/v1/calls", Op::ListCalls, Operator, BodyKind::None),
    route(Method::GET, "/v1/tenants/{domain}/calls", Op::ListTenantCalls, Tenant, BodyKind::None),
    route(Method::GET, "/v1/tenants/{domain}/registrations", Op::ListRegistrations, Tenant, BodyKind::None),
    // Call detail records.
    route(Method::GET, "/v1/cdrs", Op::ListCdrs, Operator, BodyKind::None),
    route(Method::GET, "/v1/tenants/{domain}/cdrs", Op::ListTenantCdrs, Tenant, BodyKind::None),
];

/// The decoded path parameters of a matched route.
#[derive(Debug, Default)]
pub(crate) struct Params(Vec<(&'static str, String)>);

impl Params {
    /// The parameter `name`; empty if the route has none (a programming error caught by tests).
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }

    /// The `{domain}` parameter, if the route has one.
    pub fn domain(&self) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| *n == "domain")
            .map(|(_, v)| v.as_str())
    }
}

/// Why no route was found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Miss {
    /// No pattern matches the path.
    NotFound,
    /// Patterns match the path, but not with this method; the allowed methods.
    MethodNotAllowed(Vec<Method>),
    /// A parameter is not UTF-8 after percent-decoding.
    BadSegment(String),
}

/// Finds the route for `method` and `path` (the raw, still percent-encoded path).
pub(crate) fn find(method: &Method, path: &str) -> Result<(&'static Route, Params), Miss> {
    let Some(rest) = path.strip_prefix('/') else {
        return Err(Miss::NotFound);
    };
    let segments: Vec<&str> = rest.split('/').collect();
    let mut allowed = Vec::new();
    for r in ROUTES {
        if !matches_pattern(r.pattern, &segments) {
            continue;
        }
        if r.method != *method {
            allowed.push(r.method.clone());
            continue;
        }
        let mut params = Vec::new();
        for (p, s) in r.pattern[1..].split('/').zip(&segments) {
            if let Some(name) = param_name(p) {
                let decoded = percent_decode_str(s).decode_utf8().map_err(|_| {
                    Miss::BadSegment(format!(
                        "path parameter {{{name}}} is not UTF-8 after percent-decoding"
                    ))
                })?;
                params.push((name, decoded.into_owned()));
            }
        }
        return Ok((r, Params(params)));
    }
    if allowed.is_empty() {
        Err(Miss::NotFound)
    } else {
        Err(Miss::MethodNotAllowed(allowed))
    }
}

fn param_name(pattern_segment: &'static str) -> Option<&'static str> {
    pattern_segment
        .strip_prefix('{')
        .and_then(|s| s.strip_suffix('}'))
}

fn matches_pattern(pattern: &'static str, segments: &[&str]) -> bool {
    let mut n = 0;
    for p in pattern[1..].split('/') {
        let Some(s) = segments.get(n) else {
            return false;
        };
        let ok = match param_name(p) {
            Some(_) => !s.is_empty(),
            None => p == *s,
        };
        if !ok {
            return false;
        }
        n += 1;
    }
    n == segments.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn no_two_patterns_overlap() {
        for (i, a) in ROUTES.iter().enumerate() {
            for b in &ROUTES[i + 1..] {
                if a.method != b.method {
                    continue;
                }
                let sa: Vec<_> = a.pattern.split('/').collect();
                let sb: Vec<_> = b.pattern.split('/').collect();
                let overlap = sa.len() == sb.len()
                    && sa
                        .iter()
                        .zip(&sb)
                        .all(|(x, y)| x == y || param_name(x).is_some() || param_name(y).is_some());
                assert!(
                    !overlap,
                    "{} {} overlaps {}",
                    a.method, a.pattern, b.pattern
                );
            }
        }
    }

    #[test]
    fn tenant_routes_have_a_domain_and_operator_routes_are_consistent() {
        for r in ROUTES {
            let has_domain = r.pattern.contains("{domain}");
            if r.access == Access::Tenant {
                assert!(has_domain, "{}", r.pattern);
            }
            if has_domain {
                assert!(
                    matches!(r.access, Access::Tenant | Access::Operator),
                    "{}",
                    r.pattern
                );
            }
            if r.body != BodyKind::None {
                assert!(r.method == Method::POST || r.method == Method::PUT);
            }
        }
    }

    #[test]
    fn matching_and_decoding() {
        let (r, p) = find(&Method::PUT, "/v1/tenants/A.Test/dialplan/%2A98").unwrap();
        assert_eq!(r.op, Op::PutDialEntry);
        assert_eq!(p.domain(), Some("A.Test"));
        assert_eq!(p.get("number"), "*98");
        let (_, p) = find(&Method::PUT, "/v1/tenants/a.test/dialplan/+4930%2F1").unwrap();
        assert_eq!(p.get("number"), "+4930/1");
        let (r, _) = find(&Method::POST, "/v1/tenants/a.test/plugins/x/rollback").unwrap();
        assert_eq!(r.op, Op::RollbackTenantPlugin);
        let (r, p) = find(&Method::PUT, "/v1/tenants/a.test/prompts/pt-BR/digits%2F4").unwrap();
        assert_eq!(r.op, Op::PutPrompt);
        assert_eq!((p.get("language"), p.get("name")), ("pt-BR", "digits/4"));
        assert_eq!(find(&Method::GET, "/v1/nope").unwrap_err(), Miss::NotFound);
        assert_eq!(
            find(&Method::GET, "/v1/tenants/").unwrap_err(),
            Miss::NotFound
        );
        assert_eq!(
            find(&Method::GET, "/v1/tenants//users").unwrap_err(),
            Miss::NotFound
        );
        assert_eq!(
            find(&Method::GET, "/v1/health/").unwrap_err(),
            Miss::NotFound
        );
        assert_eq!(find(&Method::GET, "").unwrap_err(), Miss::NotFound);
        assert_eq!(
            find(&Method::PATCH, "/v1/tenants/a.test").unwrap_err(),
            Miss::MethodNotAllowed(vec![Method::GET, Method::PUT, Method::DELETE])
        );
        assert!(matches!(
            find(&Method::GET, "/v1/tenants/%FF/users").unwrap_err(),
            Miss::BadSegment(_)
        ));
    }

    /// Every route is in openapi.json, and openapi.json has no route the router lacks.
    #[test]
    fn openapi_covers_exactly_the_routes() {
        let doc: serde_json::Value = serde_json::from_str(crate::OPENAPI_JSON).unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1."));
        let mut documented = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                if [
                    "get", "put", "post", "delete", "patch", "head", "options", "trace",
                ]
                .contains(&method.as_str())
                {
                    documented.insert((method.to_uppercase(), path.clone()));
                }
            }
        }
        let routed: BTreeSet<_> = ROUTES
            .iter()
            .map(|r| (r.method.to_string(), r.pattern.to_owned()))
            .collect();
        let missing: Vec<_> = routed.difference(&documented).collect();
        let extra: Vec<_> = documented.difference(&routed).collect();
        assert!(
            missing.is_empty(),
            "routes missing from openapi.json: {missing:?}"
        );
        assert!(
            extra.is_empty(),
            "openapi.json routes the router lacks: {extra:?}"
        );
    }

    /// Operations declare security consistent with the route's access, and
    /// every `{param}` of a path is declared as a path parameter.
    #[test]
    fn openapi_security_and_parameters_match() {
        let doc: serde_json::Value = serde_json::from_str(crate::OPENAPI_JSON).unwrap();
        for r in ROUTES {
            let item = &doc["paths"][r.pattern];
            let op = &item[r.method.as_str().to_lowercase()];
            let public = op["security"] == serde_json::json!([]);
            assert_eq!(
                public,
                r.access == Access::Public,
                "{} {}",
                r.method,
                r.pattern
            );
            let mut declared = BTreeSet::new();
            for p in item["parameters"]
                .as_array()
                .into_iter()
                .chain(op["parameters"].as_array())
                .flatten()
            {
                let p = if let Some(reference) = p["$ref"].as_str() {
                    let name = reference.rsplit('/').next().unwrap();
                    &doc["components"]["parameters"][name]
                } else {
                    p
                };
                if p["in"] == "path" {
                    declared.insert(p["name"].as_str().unwrap().to_owned());
                }
            }
            let used: BTreeSet<_> = r.pattern[1..]
                .split('/')
                .filter_map(param_name)
                .map(str::to_owned)
                .collect();
            assert_eq!(declared, used, "{} {}", r.method, r.pattern);
        }
    }
}
