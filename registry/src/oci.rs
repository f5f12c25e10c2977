//! Push and pull plugin packages to any OCI distribution registry
//! (Docker Hub, GHCR, Harbor, Zot, `docker-registry`, ...), with
//! [`oci_client`].
//!
//! # Artifact layout
//!
//! One package version is one OCI image manifest
//! (`application/vnd.oci.image.manifest.v1+json`):
//!
//! | part | media type | content |
//! |------|------------|---------|
//! | `artifactType` and config | `application/vnd.plugboard.plugin.v1+toml` | the `plugin.toml` text |
//! | layer 0 | `application/wasm` | the component (`plugin.wasm`) |
//! | layer 1, only when signed | `application/vnd.plugboard.plugin.signature.v1+toml` | `plugin.sig` |
//!
//! The tag is the semantic version (`1.2.0`); build metadata's `+` is
//! written `_` because tags cannot hold `+` (`1.2.0+b7` → `1.2.0_b7`).
//! Versions are immutable: [`Client::push`] refuses to replace a tag with
//! different content (the check-then-write is not atomic on the registry
//! side; two concurrent pushes of one version can still race).
//!
//! References are written `oci://<host[:port]>/<repository>[@<version or
//! requirement>]`, e.g. `oci://ghcr.io/acme/queue@^1.2`; see
//! [`Reference::parse`].
//!
//! Pulling does not check trust: the caller runs [`crate::trust::verify`].

use std::fmt;

use oci_client::client::{ClientConfig, ClientProtocol, Config, ImageLayer};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::manifest::{OCI_IMAGE_MEDIA_TYPE, OciImageManifest, OciManifest};
use oci_client::secrets::RegistryAuth;

use crate::package::{Package, PackageError, Signature};

/// Media type of the manifest's config blob (the `plugin.toml` text) and
/// the manifest's `artifactType`.
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.plugboard.plugin.v1+toml";
/// Media type of layer 0, the WebAssembly component.
pub const COMPONENT_MEDIA_TYPE: &str = "application/wasm";
/// Media type of layer 1, `plugin.sig` (present only when signed).
pub const SIGNATURE_MEDIA_TYPE: &str = "application/vnd.plugboard.plugin.signature.v1+toml";

/// Which version of a repository a [`Reference`] means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionSpec {
    /// The highest published version (the highest release, or the highest
    /// pre-release when there is no release).
    Latest,
    /// Exactly this version.
    Exact(semver::Version),
    /// The highest version matching this requirement (cargo rules:
    /// pre-releases match only when the requirement names one).
    Req(semver::VersionReq),
}

impl fmt::Display for VersionSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VersionSpec::Latest => f.write_str("latest"),
            VersionSpec::Exact(v) => write!(f, "{v}"),
            VersionSpec::Req(r) => write!(f, "{r}"),
        }
    }
}

impl VersionSpec {
    /// The highest version in `available` that this spec accepts.
    pub fn select(&self, available: &[semver::Version]) -> Option<semver::Version> {
        match self {
            VersionSpec::Exact(v) => available.iter().find(|a| *a == v).cloned(),
            VersionSpec::Req(r) => available.iter().filter(|a| r.matches(a)).max().cloned(),
            VersionSpec::Latest => available
                .iter()
                .filter(|a| a.pre.is_empty())
                .max()
                .or_else(|| available.iter().max())
                .cloned(),
        }
    }
}

/// A package in a registry: `oci://<registry>/<repository>[@<spec>]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// `host[:port]`, e.g. `ghcr.io` or `127.0.0.1:5000`.
    pub registry: String,
    /// The repository path, e.g. `acme/queue`.
    pub repository: String,
    /// Which version.
    pub version: VersionSpec,
}

/// Why a push or pull failed.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    /// The reference text is not `oci://host/repository[@version]`.
    #[error(
        "bad package reference {text:?}: {reason} (expected oci://host[:port]/repository[@version], e.g. oci://ghcr.io/acme/queue@^1.2)"
    )]
    BadReference {
        /// The text given.
        text: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The package itself is unusable (e.g. no name/version).
    #[error(transparent)]
    Package(#[from] PackageError),
    /// The registry refused a request or could not be reached.
    #[error("{action} at {registry}: {source}")]
    Registry {
        /// What was being done (e.g. "listing the tags of acme/queue").
        action: String,
        /// The registry host.
        registry: String,
        /// The registry client's error.
        #[source]
        source: OciDistributionError,
    },
    /// The repository has no versions at all.
    #[error("{reference} has no published versions")]
    NoVersions {
        /// The repository (`oci://host/repo`).
        reference: String,
    },
    /// No published version matches the requested spec.
    #[error(
        "no version of {reference} matches {spec}; available: {}",
        list_versions(available)
    )]
    NoMatch {
        /// The repository (`oci://host/repo`).
        reference: String,
        /// The requested spec.
        spec: VersionSpec,
        /// The published versions, ascending.
        available: Vec<semver::Version>,
    },
    /// The version is already published with other content.
    #[error(
        "{reference} is already published with {what}; versions are immutable: publish a new version"
    )]
    VersionExists {
        /// The version's reference.
        reference: String,
        /// What differs ("different content", "a different signature").
        what: String,
    },
    /// What was pulled is not a plugboard package.
    #[error("{reference} is not a plugboard package: {reason}")]
    NotAPackage {
        /// The version's reference.
        reference: String,
        /// What is wrong.
        reason: String,
    },
}

fn list_versions(v: &[semver::Version]) -> String {
    if v.is_empty() {
        return "none".into();
    }
    v.iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn bad_ref(text: &str, reason: impl Into<String>) -> OciError {
    OciError::BadReference {
        text: text.to_string(),
        reason: reason.into(),
    }
}

/// Whether `repo` is a valid OCI repository name (lowercase path components
/// of `[a-z0-9]` separated by `.`, `_`, `__` or `-`s, joined by `/`).
fn valid_repository(repo: &str) -> bool {
    repo.len() <= 255
        && !repo.is_empty()
        && repo.split('/').all(|part| {
            let b = part.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|c| {
                    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'.' | b'_' | b'-')
                })
        })
}

fn valid_registry(host: &str) -> bool {
    !host.is_empty()
        && host
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b':' | b'[' | b']'))
}

/// The tag for `version` (`+` becomes `_`).
pub fn tag_for(version: &semver::Version) -> String {
    version.to_string().replace('+', "_")
}

/// The version a tag names, if it is one (`_` read as `+`).
pub fn version_of_tag(tag: &str) -> Option<semver::Version> {
    semver::Version::parse(&tag.replace('_', "+")).ok()
}

impl Reference {
    /// Parses `oci://host[:port]/repository` followed by nothing (latest),
    /// `@1.2.3` (exact), `@^1.2` or `@>=1, <2` (a requirement), or
    /// `:1.2.3` (a tag, exact).
    pub fn parse(text: &str) -> Result<Reference, OciError> {
        let rest = text
            .trim()
            .strip_prefix("oci://")
            .ok_or_else(|| bad_ref(text, "it must start with oci://"))?;
        let (host, path) = rest
            .split_once('/')
            .ok_or_else(|| bad_ref(text, "no repository after the registry host"))?;
        if !valid_registry(host) {
            return Err(bad_ref(
                text,
                format!("registry host {host:?} is not a host[:port]"),
            ));
        }
        let (repository, version) = if let Some((repo, spec)) = path.split_once('@') {
            let spec = spec.trim();
            let version = if spec.is_empty() {
                return Err(bad_ref(text, "nothing after '@'"));
            } else if spec == "latest" {
                VersionSpec::Latest
            } else if let Ok(v) = semver::Version::parse(spec) {
                VersionSpec::Exact(v)
            } else {
                VersionSpec::Req(semver::VersionReq::parse(spec).map_err(|e| {
                    bad_ref(
                        text,
                        format!("{spec:?} is neither a version nor a version requirement: {e}"),
                    )
                })?)
            };
            (repo, version)
        } else if let Some((repo, tag)) = path.rsplit_once(':') {
            let v = version_of_tag(tag)
                .ok_or_else(|| bad_ref(text, format!("tag {tag:?} is not a semantic version")))?;
            (repo, VersionSpec::Exact(v))
        } else {
            (path, VersionSpec::Latest)
        };
        if !valid_repository(repository) {
            return Err(bad_ref(
                text,
                format!(
                    "repository {repository:?} must be lowercase letters, digits, '.', '_', '-' \
                     in '/'-separated parts"
                ),
            ));
        }
        Ok(Reference {
            registry: host.to_string(),
            repository: repository.to_string(),
            version,
        })
    }

    /// The repository without a version: `oci://host/repo`.
    pub fn repository_url(&self) -> String {
        format!("oci://{}/{}", self.registry, self.repository)
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "oci://{}/{}", self.registry, self.repository)?;
        match &self.version {
            VersionSpec::Latest => Ok(()),
            spec => write!(f, "@{spec}"),
        }
    }
}

impl std::str::FromStr for Reference {
    type Err = OciError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reference::parse(s)
    }
}

/// How to reach registries.
#[derive(Debug, Clone, Default)]
pub struct ClientOptions {
    /// Registries (`host[:port]`, exactly as in references) reached over
    /// plain HTTP, e.g. `127.0.0.1:5000`; all others use HTTPS.
    pub insecure: Vec<String>,
    /// User name for HTTP basic authentication (anonymous when `None`). The
    /// CLI reads it from `PLUGBOARD_REGISTRY_USER`.
    pub username: Option<String>,
    /// Password or token for basic authentication. The CLI reads it from
    /// `PLUGBOARD_REGISTRY_PASSWORD`.
    pub password: Option<String>,
}

/// What [`Client::push`] published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    /// The exact version's reference, `oci://host/repo@1.2.0`.
    pub reference: Reference,
    /// The OCI manifest digest (`sha256:<hex>`).
    pub digest: String,
}

/// A registry client for plugin packages.
pub struct Client {
    inner: oci_client::Client,
    auth: RegistryAuth,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

fn is_not_found(e: &OciDistributionError) -> bool {
    match e {
        OciDistributionError::RegistryError { envelope, .. } => envelope.errors.iter().any(|e| {
            matches!(
                e.code,
                OciErrorCode::ManifestUnknown | OciErrorCode::NameUnknown | OciErrorCode::NotFound
            )
        }),
        OciDistributionError::ServerError { code, .. } => *code == 404,
        OciDistributionError::ImageManifestNotFoundError(_) => true,
        _ => false,
    }
}

/// The parts of a pushed version, for comparing with an existing one.
#[derive(PartialEq, Eq)]
struct Digests {
    config: String,
    component: Option<String>,
    signature: Option<String>,
}

impl Digests {
    fn of(m: &OciImageManifest) -> Digests {
        let layer = |mt: &str| {
            m.layers
                .iter()
                .find(|l| l.media_type == mt)
                .map(|l| l.digest.clone())
        };
        Digests {
            config: m.config.digest.clone(),
            component: layer(COMPONENT_MEDIA_TYPE),
            signature: layer(SIGNATURE_MEDIA_TYPE),
        }
    }
}

impl Client {
    /// A client with these options. TLS is rustls with the ring provider
    /// (installed as the process default if none is) and the platform's
    /// certificate roots.
    pub fn new(options: ClientOptions) -> Client {
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            // Err only if another thread installed one meanwhile: fine.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let config = ClientConfig {
            protocol: if options.insecure.is_empty() {
                ClientProtocol::Https
            } else {
                ClientProtocol::HttpsExcept(options.insecure.clone())
            },
            platform_resolver: None,
            connect_timeout: Some(std::time::Duration::from_secs(10)),
            read_timeout: Some(std::time::Duration::from_secs(60)),
            ..ClientConfig::default()
        };
        let auth = match options.username {
            Some(user) => RegistryAuth::Basic(user, options.password.unwrap_or_default()),
            None => RegistryAuth::Anonymous,
        };
        Client {
            inner: oci_client::Client::new(config),
            auth,
        }
    }

    fn oci_ref(
        registry: &str,
        repository: &str,
        version: &semver::Version,
    ) -> oci_client::Reference {
        oci_client::Reference::with_tag(
            registry.to_string(),
            repository.to_string(),
            tag_for(version),
        )
    }

    fn check_repo(registry: &str, repository: &str) -> Result<(), OciError> {
        let text = format!("oci://{registry}/{repository}");
        if !valid_registry(registry) {
            return Err(bad_ref(
                &text,
                format!("registry host {registry:?} is not a host[:port]"),
            ));
        }
        if !valid_repository(repository) {
            return Err(bad_ref(
                &text,
                format!("repository {repository:?} is not a valid name"),
            ));
        }
        Ok(())
    }

    async fn existing_manifest(
        &self,
        image: &oci_client::Reference,
        registry: &str,
        what: &str,
    ) -> Result<Option<OciManifest>, OciError> {
        match self.inner.pull_manifest(image, &self.auth).await {
            Ok((m, _)) => Ok(Some(m)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(source) => Err(OciError::Registry {
                action: format!("fetching the manifest of {what}"),
                registry: registry.to_string(),
                source,
            }),
        }
    }

    /// Publishes `pkg` as `oci://<registry>/<repository>@<its version>`.
    /// Pushing the same package again is a no-op; a different package (or
    /// signature) under an existing version is refused.
    pub async fn push(
        &self,
        pkg: &Package,
        registry: &str,
        repository: &str,
    ) -> Result<Pushed, OciError> {
        Self::check_repo(registry, repository)?;
        let (_, version) = pkg.name_version()?;
        let reference = Reference {
            registry: registry.to_string(),
            repository: repository.to_string(),
            version: VersionSpec::Exact(version.clone()),
        };
        let image = Self::oci_ref(registry, repository, &version);

        let config = Config::new(
            pkg.manifest.clone().into_bytes(),
            CONFIG_MEDIA_TYPE.to_string(),
            None,
        );
        let mut layers = vec![ImageLayer::new(
            pkg.component.clone(),
            COMPONENT_MEDIA_TYPE.to_string(),
            None,
        )];
        if let Some(sig) = &pkg.signature {
            layers.push(ImageLayer::new(
                sig.to_file_text().into_bytes(),
                SIGNATURE_MEDIA_TYPE.to_string(),
                None,
            ));
        }
        let mut manifest = OciImageManifest::build(&layers, &config, None);
        manifest.media_type = Some(OCI_IMAGE_MEDIA_TYPE.to_string());
        manifest.artifact_type = Some(CONFIG_MEDIA_TYPE.to_string());
        let body = serde_json::to_vec(&manifest).expect("manifest serialises");
        let digest = {
            use sha2::Digest as _;
            format!("sha256:{}", hex::encode(sha2::Sha256::digest(&body)))
        };

        let shown = reference.to_string();
        match self.existing_manifest(&image, registry, &shown).await? {
            None => {}
            Some(OciManifest::Image(old)) => {
                let (old, new) = (Digests::of(&old), Digests::of(&manifest));
                if old == new {
                    let digest = self
                        .inner
                        .fetch_manifest_digest(&image, &self.auth)
                        .await
                        .map_err(|source| OciError::Registry {
                            action: format!("fetching the digest of {shown}"),
                            registry: registry.to_string(),
                            source,
                        })?;
                    return Ok(Pushed { reference, digest });
                }
                let what = if old.config == new.config && old.component == new.component {
                    "a different signature (or signed/unsigned)"
                } else {
                    "different content"
                };
                return Err(OciError::VersionExists {
                    reference: shown,
                    what: what.into(),
                });
            }
            Some(OciManifest::ImageIndex(_)) => {
                return Err(OciError::VersionExists {
                    reference: shown,
                    what: "an image index (not a plugboard package)".into(),
                });
            }
        }

        let reg_err = |action: String| {
            let registry = registry.to_string();
            move |source| OciError::Registry {
                action,
                registry,
                source,
            }
        };
        for (layer, desc) in layers.iter().zip(&manifest.layers) {
            self.inner
                .push_blob(&image, layer.data.clone(), &desc.digest)
                .await
                .map_err(reg_err(format!("uploading a layer of {shown}")))?;
        }
        self.inner
            .push_blob(&image, config.data.clone(), &manifest.config.digest)
            .await
            .map_err(reg_err(format!("uploading the manifest blob of {shown}")))?;
        self.inner
            .push_manifest_raw(
                &image,
                body,
                OCI_IMAGE_MEDIA_TYPE.parse().expect("valid header value"),
            )
            .await
            .map_err(reg_err(format!("pushing the manifest of {shown}")))?;
        Ok(Pushed { reference, digest })
    }

    /// The published versions of a repository, ascending; tags that are not
    /// semantic versions are ignored. A repository that does not exist has
    /// no versions.
    pub async fn versions(
        &self,
        registry: &str,
        repository: &str,
    ) -> Result<Vec<semver::Version>, OciError> {
        Self::check_repo(registry, repository)?;
        let image = oci_client::Reference::with_tag(
            registry.to_string(),
            repository.to_string(),
            "latest".into(),
        );
        let mut versions = Vec::new();
        let mut last: Option<String> = None;
        loop {
            let page = match self
                .inner
                .list_tags(&image, &self.auth, Some(1000), last.as_deref())
                .await
            {
                Ok(p) => p,
                Err(e) if is_not_found(&e) => break,
                Err(source) => {
                    return Err(OciError::Registry {
                        action: format!("listing the versions of {repository}"),
                        registry: registry.to_string(),
                        source,
                    });
                }
            };
            let n = page.tags.len();
            versions.extend(page.tags.iter().filter_map(|t| version_of_tag(t)));
            match page.tags.last() {
                Some(t) if n >= 1000 && last.as_deref() != Some(t) => last = Some(t.clone()),
                _ => break,
            }
        }
        versions.sort();
        versions.dedup();
        Ok(versions)
    }

    /// Resolves `reference` to the highest matching version, pulls it and
    /// rebuilds the package. Does not check trust: use
    /// [`crate::trust::verify`] on the result.
    pub async fn pull(
        &self,
        reference: &Reference,
    ) -> Result<(Package, semver::Version), OciError> {
        let (registry, repository) = (&reference.registry, &reference.repository);
        let available = self.versions(registry, repository).await?;
        if available.is_empty() {
            return Err(OciError::NoVersions {
                reference: reference.repository_url(),
            });
        }
        let version = reference
            .version
            .select(&available)
            .ok_or_else(|| OciError::NoMatch {
                reference: reference.repository_url(),
                spec: reference.version.clone(),
                available: available.clone(),
            })?;
        let exact = Reference {
            version: VersionSpec::Exact(version.clone()),
            ..reference.clone()
        };
        let shown = exact.to_string();
        let not_pkg = |reason: String| OciError::NotAPackage {
            reference: shown.clone(),
            reason,
        };
        let image = Self::oci_ref(registry, repository, &version);
        let manifest = match self.existing_manifest(&image, registry, &shown).await? {
            Some(OciManifest::Image(m)) => m,
            Some(OciManifest::ImageIndex(_)) => return Err(not_pkg("it is an image index".into())),
            None => return Err(not_pkg("the tag has no manifest".into())),
        };
        if manifest.config.media_type != CONFIG_MEDIA_TYPE {
            return Err(not_pkg(format!(
                "config media type is {:?}, expected {CONFIG_MEDIA_TYPE}",
                manifest.config.media_type
            )));
        }
        let types: Vec<&str> = manifest
            .layers
            .iter()
            .map(|l| l.media_type.as_str())
            .collect();
        let signed = match types.as_slice() {
            [COMPONENT_MEDIA_TYPE] => false,
            [COMPONENT_MEDIA_TYPE, SIGNATURE_MEDIA_TYPE] => true,
            _ => {
                return Err(not_pkg(format!(
                    "layers are {types:?}, expected [{COMPONENT_MEDIA_TYPE:?}] and optionally \
                     {SIGNATURE_MEDIA_TYPE:?}"
                )));
            }
        };
        // Declared sizes come from the registry: no overflow, no negative size.
        let total = std::iter::once(manifest.config.size)
            .chain(manifest.layers.iter().map(|l| l.size))
            .try_fold(0u64, |sum, size| {
                u64::try_from(size).ok().and_then(|s| sum.checked_add(s))
            });
        if total.is_none_or(|t| t > crate::package::MAX_PACKAGE_BYTES) {
            return Err(not_pkg(format!(
                "it is larger than {} bytes",
                crate::package::MAX_PACKAGE_BYTES
            )));
        }
        let fetch = |desc: &oci_client::manifest::OciDescriptor, what: &'static str| {
            let image = &image;
            let shown = &shown;
            let desc = desc.clone();
            async move {
                let mut out = Vec::with_capacity(desc.size.max(0) as usize);
                self.inner
                    .pull_blob(image, &desc, &mut out)
                    .await
                    .map_err(|source| OciError::Registry {
                        action: format!("downloading the {what} of {shown}"),
                        registry: registry.clone(),
                        source,
                    })?;
                // oci-client checks the digest; the size is checked here too.
                if out.len() as u64 != desc.size.max(0) as u64 {
                    return Err(not_pkg(format!(
                        "its {what} has {} bytes, the manifest says {}",
                        out.len(),
                        desc.size
                    )));
                }
                Ok::<_, OciError>(out)
            }
        };
        let manifest_text = fetch(&manifest.config, "plugin.toml").await?;
        let component = fetch(&manifest.layers[0], "component").await?;
        let signature = if signed {
            let bytes = fetch(&manifest.layers[1], "signature").await?;
            let text =
                String::from_utf8(bytes).map_err(|_| not_pkg("plugin.sig is not UTF-8".into()))?;
            Some(Signature::parse(&text).map_err(|e| not_pkg(e.to_string()))?)
        } else {
            None
        };
        let pkg = Package {
            manifest: String::from_utf8(manifest_text)
                .map_err(|_| not_pkg("plugin.toml is not UTF-8".into()))?,
            component,
            signature,
        };
        let (_, declared) = pkg.name_version().map_err(|e| not_pkg(e.to_string()))?;
        if declared != version {
            return Err(not_pkg(format!(
                "its plugin.toml says version {declared}, but it is tagged {}",
                tag_for(&version)
            )));
        }
        Ok((pkg, version))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> semver::Version {
        semver::Version::parse(s).unwrap()
    }

    #[test]
    fn parse_references() {
        let r = Reference::parse("oci://127.0.0.1:5000/acme/queue@^1.2").unwrap();
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.repository, "acme/queue");
        assert_eq!(
            r.version,
            VersionSpec::Req(semver::VersionReq::parse("^1.2").unwrap())
        );
        assert_eq!(r.to_string(), "oci://127.0.0.1:5000/acme/queue@^1.2");

        let r = Reference::parse("oci://ghcr.io/acme/queue@1.2.3").unwrap();
        assert_eq!(r.version, VersionSpec::Exact(v("1.2.3")));
        let r = Reference::parse("oci://ghcr.io/acme/queue:1.2.3_b7").unwrap();
        assert_eq!(r.version, VersionSpec::Exact(v("1.2.3+b7")));
        let r = Reference::parse("oci://ghcr.io/acme/queue@>=1, <2").unwrap();
        assert!(matches!(r.version, VersionSpec::Req(_)));
        let r = Reference::parse("oci://localhost:5000/queue").unwrap();
        assert_eq!(r.version, VersionSpec::Latest);
        assert_eq!(r.to_string(), "oci://localhost:5000/queue");
        assert_eq!(r, "oci://localhost:5000/queue".parse().unwrap());

        for (text, want) in [
            ("ghcr.io/acme/queue", "must start with oci://"),
            ("oci://ghcr.io", "no repository"),
            ("oci://ghcr.io/Acme/queue", "lowercase"),
            ("oci://ghcr.io/acme//queue", "lowercase"),
            ("oci://ghcr.io/acme/queue@", "nothing after '@'"),
            ("oci://ghcr.io/acme/queue@banana", "neither a version"),
            ("oci://ghcr.io/acme/queue:latest", "not a semantic version"),
            ("oci://gh cr.io/acme/queue", "host"),
        ] {
            let e = Reference::parse(text).unwrap_err().to_string();
            assert!(e.contains(want), "{text}: {e}");
            assert!(e.contains("expected oci://"), "{e}");
        }
    }

    #[test]
    fn select_versions() {
        let all = [
            v("1.0.0"),
            v("1.2.0"),
            v("1.3.1"),
            v("2.0.0"),
            v("2.1.0-rc.1"),
        ];
        let req = |s: &str| VersionSpec::Req(semver::VersionReq::parse(s).unwrap());
        assert_eq!(req("^1.2").select(&all), Some(v("1.3.1")));
        assert_eq!(req(">=1, <2").select(&all), Some(v("1.3.1")));
        assert_eq!(req("^3").select(&all), None);
        assert_eq!(VersionSpec::Latest.select(&all), Some(v("2.0.0")));
        assert_eq!(
            VersionSpec::Latest.select(&[v("0.1.0-rc.1")]),
            Some(v("0.1.0-rc.1"))
        );
        assert_eq!(
            VersionSpec::Exact(v("1.2.0")).select(&all),
            Some(v("1.2.0"))
        );
        assert_eq!(VersionSpec::Exact(v("1.2.1")).select(&all), None);
    }

    #[test]
    fn tags_and_versions() {
        assert_eq!(tag_for(&v("1.2.0+build.7")), "1.2.0_build.7");
        assert_eq!(version_of_tag("1.2.0_build.7"), Some(v("1.2.0+build.7")));
        assert_eq!(version_of_tag("latest"), None);
        assert_eq!(version_of_tag("sha256-abc"), None);
    }

    #[test]
    fn https_client_builds_and_reports_unreachable_registries() {
        // Builds the rustls (ring) TLS config; port 1 refuses the connection.
        let client = Client::new(ClientOptions::default());
        let rt = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(client.versions("127.0.0.1:1", "acme/queue"))
        });
        let e = rt.join().unwrap().unwrap_err();
        assert!(matches!(e, OciError::Registry { .. }), "{e}");
        assert!(
            e.to_string()
                .starts_with("listing the versions of acme/queue at 127.0.0.1:1"),
            "{e}"
        );
    }

    #[test]
    fn no_match_error_lists_versions() {
        let e = OciError::NoMatch {
            reference: "oci://h/acme/queue".into(),
            spec: VersionSpec::Req(semver::VersionReq::parse("^3").unwrap()),
            available: vec![v("1.0.0"), v("2.0.0")],
        };
        assert_eq!(
            e.to_string(),
            "no version of oci://h/acme/queue matches ^3; available: 1.0.0, 2.0.0"
        );
    }
}
