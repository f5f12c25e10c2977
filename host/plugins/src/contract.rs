//! Which contract a component targets, read from its import and export names
//! (`plugboard:pbx/handler@0.1.0`), and whether this host can run it.
//!
//! Python and JavaScript components carry no version stamp of their own, so
//! the interface names are the only reliable source. The checks run at load
//! time, before `instantiate_pre`, so errors name the offending import instead
//! of wasmtime's generic "import not defined".
//!
//! WASI: a Rust `wasm32-wasip2` guest always imports some `wasi:cli`/`wasi:io`
//! interfaces (std's panic and abort paths print to stderr and read the
//! environment), and Python guests import filesystem and sockets. The runtime
//! therefore links WASI 0.2 deny-by-default (no args, env, preopens or network;
//! stdout discarded; stderr captured for fault logs) and accepts imports from
//! the WASI 0.2 packages it links. Anything else (other namespaces, `wasi:http`,
//! WASI 0.3) is refused here with its name.

use std::fmt;

/// The contract versions this host implements: `plugboard:pbx@0.1.x`.
pub(crate) const SUPPORTED_MAJOR_MINOR: (u64, u64) = (0, 1);

/// The plugboard interfaces of `plugboard:pbx@0.1.x` the host links.
const PLUGBOARD_INTERFACES: &[&str] = &[
    "types",
    "call",
    "kv",
    "recordings",
    "config",
    "log",
    "http",
    "mail",
    "mwi",
    "clock",
    "speech",
    "directory",
    "redirect",
];

/// The export that marks each role: (interface, role).
const ROLE_EXPORTS: &[(&str, crate::manifest::Role)] = &[
    ("handler", crate::manifest::Role::CallFlow),
    ("screening", crate::manifest::Role::Screener),
    ("events", crate::manifest::Role::Listener),
];

/// WASI 0.2 packages linked deny-by-default.
const WASI_PACKAGES: &[&str] = &["cli", "io", "clocks", "random", "filesystem", "sockets"];

/// A parsed interface name `namespace:package/interface@version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InterfaceName<'a> {
    pub(crate) namespace: &'a str,
    pub(crate) package: &'a str,
    pub(crate) interface: &'a str,
    pub(crate) version: Option<Version>,
}

/// A semver version (pre-release and build suffixes ignored).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Version {
    pub(crate) major: u64,
    pub(crate) minor: u64,
    pub(crate) patch: u64,
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

impl Version {
    fn parse(s: &str) -> Option<Version> {
        let core = s.split(['-', '+']).next()?;
        let mut it = core.split('.');
        let v = Version {
            major: it.next()?.parse().ok()?,
            minor: it.next()?.parse().ok()?,
            patch: it.next()?.parse().ok()?,
        };
        it.next().is_none().then_some(v)
    }

    fn supported(&self) -> bool {
        (self.major, self.minor) == SUPPORTED_MAJOR_MINOR
    }
}

impl<'a> InterfaceName<'a> {
    /// Parse `ns:pkg/iface[@version]`; `None` for plain (non-interface) names.
    pub(crate) fn parse(name: &'a str) -> Option<InterfaceName<'a>> {
        let (path, version) = match name.split_once('@') {
            Some((p, v)) => (p, Some(Version::parse(v)?)),
            None => (name, None),
        };
        let (namespace, rest) = path.split_once(':')?;
        let (package, interface) = rest.split_once('/')?;
        Some(InterfaceName {
            namespace,
            package,
            interface,
            version,
        })
    }
}

/// What the checks found out about a component that may run here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ContractInfo {
    /// The contract version of the role's export, e.g. `0.1.0`.
    pub(crate) version: String,
    /// The role the export shows.
    pub(crate) role: crate::manifest::Role,
}

/// Check a component's export and import names against this host.
///
/// The error text is a sentence fragment; the caller prefixes the file name.
pub(crate) fn check<'a>(
    exports: impl IntoIterator<Item = &'a str>,
    imports: impl IntoIterator<Item = &'a str>,
) -> Result<ContractInfo, String> {
    let exports: Vec<&str> = exports.into_iter().collect();
    let handler = exports.iter().find_map(|e| {
        let n = InterfaceName::parse(e)?;
        if (n.namespace, n.package) != ("plugboard", "pbx") {
            return None;
        }
        ROLE_EXPORTS
            .iter()
            .find(|(i, _)| *i == n.interface)
            .map(|(_, role)| (*e, n, *role))
    });
    let Some((handler_name, handler, role)) = handler else {
        return Err(format!(
            "is not a plugboard plugin: it exports none of plugboard:pbx/handler (call-flow), \
             plugboard:pbx/screening (screener) or plugboard:pbx/events (listener) \
             (its exports: {})",
            if exports.is_empty() {
                "none".to_string()
            } else {
                exports.join(", ")
            }
        ));
    };
    let Some(version) = handler.version else {
        return Err(format!("exports {handler_name} without a contract version"));
    };
    if !version.supported() {
        return Err(version_error(&version));
    }
    for import in imports {
        check_import(import)?;
    }
    Ok(ContractInfo {
        version: version.to_string(),
        role,
    })
}

/// The plugboard interfaces a component imports (`call`, `kv`, ...), without
/// `types` (shared type definitions, not a capability).
pub(crate) fn plugboard_imports<'a>(imports: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let mut out: Vec<&str> = imports
        .into_iter()
        .filter_map(InterfaceName::parse)
        .filter(|n| (n.namespace, n.package) == ("plugboard", "pbx") && n.interface != "types")
        .map(|n| n.interface)
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

fn version_error(v: &Version) -> String {
    let (ma, mi) = SUPPORTED_MAJOR_MINOR;
    let newer = (v.major, v.minor) > SUPPORTED_MAJOR_MINOR;
    format!(
        "targets plugboard:pbx@{v}, {} than this host supports (plugboard:pbx@{ma}.{mi}.x)",
        if newer { "newer" } else { "older" }
    )
}

fn check_import(import: &str) -> Result<(), String> {
    let Some(name) = InterfaceName::parse(import) else {
        return Err(format!(
            "imports `{import}`, which plugboard does not provide"
        ));
    };
    match (name.namespace, name.package) {
        ("plugboard", "pbx") => {
            let Some(v) = name.version else {
                return Err(format!("imports {import} without a contract version"));
            };
            if !v.supported() {
                return Err(format!("imports {import}: {}", version_error(&v)));
            }
            if !PLUGBOARD_INTERFACES.contains(&name.interface) {
                return Err(format!(
                    "imports {import}, which this host does not provide to plugins"
                ));
            }
            Ok(())
        }
        ("wasi", pkg) if WASI_PACKAGES.contains(&pkg) => match name.version {
            Some(v) if v.major == 0 && v.minor == 2 => Ok(()),
            _ => Err(format!(
                "imports {import}; only WASI 0.2 is available to plugins"
            )),
        },
        _ => Err(format!(
            "imports {import}, which plugboard does not provide to plugins"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HANDLER: &str = "plugboard:pbx/handler@0.1.0";

    #[test]
    fn a_rust_guest_with_wasi_cli_imports_is_accepted() {
        let info = check(
            [HANDLER],
            [
                "plugboard:pbx/types@0.1.0",
                "plugboard:pbx/call@0.1.0",
                "wasi:cli/environment@0.2.6",
                "wasi:io/streams@0.2.6",
            ],
        )
        .unwrap();
        assert_eq!(info.version, "0.1.0");
    }

    #[test]
    fn a_newer_contract_is_refused_naming_the_version() {
        let err = check(["plugboard:pbx/handler@0.2.0"], []).unwrap_err();
        assert!(err.contains("plugboard:pbx@0.2.0"), "{err}");
        assert!(err.contains("newer"), "{err}");
        let err = check(["plugboard:pbx/handler@1.0.0"], []).unwrap_err();
        assert!(err.contains("newer"), "{err}");
    }

    #[test]
    fn a_patch_release_of_the_contract_is_accepted() {
        assert_eq!(
            check(["plugboard:pbx/handler@0.1.3"], []).unwrap().version,
            "0.1.3"
        );
    }

    #[test]
    fn a_component_without_handler_is_not_a_call_flow() {
        let err = check(["wasi:cli/run@0.2.0"], []).unwrap_err();
        assert!(
            err.contains("exports none of plugboard:pbx/handler"),
            "{err}"
        );
        assert!(err.contains("wasi:cli/run@0.2.0"), "{err}");
    }

    #[test]
    fn unknown_imports_are_refused_by_name() {
        let err = check([HANDLER], ["wasi:http/outgoing-handler@0.2.0"]).unwrap_err();
        assert!(err.contains("wasi:http/outgoing-handler@0.2.0"), "{err}");
        let err = check([HANDLER], ["plugboard:pbx/fax@0.1.0"]).unwrap_err();
        assert!(err.contains("plugboard:pbx/fax@0.1.0"), "{err}");
        assert!(check([HANDLER], ["plugboard:pbx/mail@0.1.2"]).is_ok());
        let err = check([HANDLER], ["plugboard:pbx/kv@0.2.0"]).unwrap_err();
        assert!(err.contains("newer"), "{err}");
        let err = check([HANDLER], ["wasi:io/streams@0.3.0"]).unwrap_err();
        assert!(err.contains("WASI 0.2"), "{err}");
        let err = check([HANDLER], ["env"]).unwrap_err();
        assert!(err.contains("`env`"), "{err}");
    }

    #[test]
    fn names_parse_with_and_without_versions() {
        let n = InterfaceName::parse("wasi:io/streams@0.2.6-rc1").unwrap();
        assert_eq!(
            (n.namespace, n.package, n.interface),
            ("wasi", "io", "streams")
        );
        assert_eq!(
            n.version,
            Some(Version {
                major: 0,
                minor: 2,
                patch: 6
            })
        );
        assert_eq!(InterfaceName::parse("a:b/c").unwrap().version, None);
        assert!(InterfaceName::parse("plain").is_none());
        assert!(InterfaceName::parse("a:b/c@x.y").is_none());
    }
}
