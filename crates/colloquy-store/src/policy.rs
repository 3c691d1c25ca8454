//! What a client of a shared server may reach: the location, write and network rules of `colloquy serve`.
//!
//! `colloquy sql` runs with the local user's rights and has no policy. The server builds one
//! [`AccessPolicy`] from its `[server]` section and puts it in two places, so that no path into the
//! engine gets around it:
//! - the runtime's object-store registry ([`GuardedRegistry`]): every store DataFusion or colloquy
//!   fetches by URL (CSV/JSON/Parquet tables, `COPY`, `INSERT`, ONNX models) comes back wrapped in a
//!   [`GuardedStore`] that checks each path it reads, lists or writes;
//! - each client session's configuration (as an extension): archive tables and `read_archive` check their
//!   location while planning, for a clear error, and build stores from a client's OPTIONS without the
//!   server's credentials.
//!
//! Local paths are compared after canonicalisation (symlinks and `..` resolved), so a link inside an
//! allowed folder that points elsewhere is refused where it points.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, ToSocketAddrs};
use std::ops::Range;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use datafusion::error::Result as DFResult;
use datafusion::execution::object_store::ObjectStoreRegistry;
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions,
};
use url::Url;

use crate::location::Location;
use crate::stores::{AutoStoreRegistry, store_key};

/// Folders no client ever reads or writes, whatever the allow-list says.
const SYSTEM_DIRS: [&str; 3] = ["/proc", "/dev", "/sys"];

/// Why the server refused: the rule, and the `[server]` key that would allow it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied {
    pub rule: &'static str,
    pub message: String,
}

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (rule: {})", self.message, self.rule)
    }
}

impl std::error::Error for Denied {}

impl Denied {
    fn new(rule: &'static str, message: String) -> Self {
        Self { rule, message }
    }
}

/// One allowed location: a scheme, an authority and a path prefix (object-store form, no leading `/`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Prefix {
    scheme: String,
    authority: String,
    path: String,
    /// As the operator wrote it, for messages.
    text: String,
}

impl Prefix {
    fn parse(text: &str) -> Result<Self, String> {
        let url = Location::parse(text).map_err(|e| format!("location '{text}': {e}"))?;
        let (scheme, authority) = scheme_and_authority(&url.base);
        let mut path = url.prefix.as_ref().to_string();
        if scheme == "file" {
            path = canonical_local(&path);
        }
        Ok(Self {
            scheme,
            authority,
            path,
            text: text.to_string(),
        })
    }

    fn holds(&self, scheme: &str, authority: &str, path: &str) -> bool {
        self.scheme == scheme
            && self.authority.eq_ignore_ascii_case(authority)
            && (self.path.is_empty()
                || path == self.path
                || path
                    .strip_prefix(self.path.as_str())
                    .is_some_and(|rest| rest.starts_with('/')))
    }
}

impl Prefix {
    /// Whether this prefix lies under `path` (a request for a parent folder).
    fn inside(&self, scheme: &str, authority: &str, path: &str) -> bool {
        self.scheme == scheme
            && self.authority.eq_ignore_ascii_case(authority)
            && (path.is_empty()
                || self
                    .path
                    .strip_prefix(path)
                    .is_some_and(|rest| rest.starts_with('/')))
    }
}

/// `s3a` is `s3`, `gcs` is `gs`, `azure`/`abfs(s)` are `az`: one name per store kind.
fn scheme_and_authority(url: &Url) -> (String, String) {
    let scheme = match url.scheme() {
        "s3a" => "s3",
        "gcs" => "gs",
        "azure" | "abfs" | "abfss" => "az",
        other => other,
    }
    .to_string();
    let authority = url[url::Position::BeforeHost..url::Position::AfterPort].to_ascii_lowercase();
    (scheme, authority)
}

/// A local object path (no leading `/`) with symlinks and `..` resolved as far as the path exists.
fn canonical_local(path: &str) -> String {
    let full = PathBuf::from(format!("/{path}"));
    let mut existing: &FsPath = &full;
    let mut rest = Vec::new();
    let resolved = loop {
        if let Ok(c) = existing.canonicalize() {
            break Some(c);
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_owned());
                existing = parent;
            }
            _ => break None,
        }
    };
    let mut out = resolved.unwrap_or(full);
    for name in rest.iter().rev() {
        out.push(name);
    }
    out.to_string_lossy().trim_start_matches('/').to_string()
}

fn is_system_path(path: &str) -> bool {
    let full = format!("/{path}");
    SYSTEM_DIRS
        .iter()
        .any(|d| full == *d || full.strip_prefix(d).is_some_and(|r| r.starts_with('/')))
}

/// An address clients may not make the server call unless the operator allows its host.
pub fn is_internal_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_internal_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_internal_v4(v4),
            None => {
                let first = v6.segments()[0];
                v6.is_loopback()
                    || v6.is_unspecified()
                    || v6.is_multicast()
                    // fc00::/7 unique local (includes AWS's fd00:ec2::254 metadata), fe80::/10 link-local.
                    || (first & 0xfe00) == 0xfc00
                    || (first & 0xffc0) == 0xfe80
                    || v6 == Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0, 0)
            }
        },
    }
}

fn is_internal_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || a == 0
        // 100.64.0.0/10, carrier-grade NAT (also where some clouds put metadata services).
        || (a == 100 && (64..128).contains(&b))
}

/// The server's rules for its clients. Built once from `[server]`; shared by every session.
#[derive(Debug, Clone, Default)]
pub struct AccessPolicy {
    read: Vec<Prefix>,
    write: Vec<Prefix>,
    /// `host` or `host:port` entries: clients may reach these though they are internal, and may name
    /// them as an object-store endpoint.
    hosts: Vec<String>,
    /// Locations one session may not touch directly, whatever `read` and `write` say: the data behind
    /// tables its roles may not read, or read only through row and column policies. A request overlaps
    /// one when either holds the other (a parent folder holds the protected data too).
    protected: Vec<(Prefix, String)>,
    /// Locations no client writes whatever `write` says (the server's audit trail), with what they hold.
    sealed: Vec<(Prefix, String)>,
}

impl AccessPolicy {
    /// A policy that lets clients read under `read`, write (and read) under `write`, and reach the
    /// internal or endpoint `hosts`. Every entry is checked here, so a typo fails at start-up.
    pub fn new(read: &[String], write: &[String], hosts: &[String]) -> Result<Self, String> {
        let parse = |list: &[String]| -> Result<Vec<Prefix>, String> {
            list.iter().map(|t| Prefix::parse(t)).collect()
        };
        let hosts = hosts
            .iter()
            .map(|h| {
                let h = h.trim().to_ascii_lowercase();
                if h.is_empty() || h.contains('/') {
                    Err(format!(
                        "allow_hosts entry '{h}' must be a host or host:port, like '127.0.0.1:9000'"
                    ))
                } else {
                    Ok(h)
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            read: parse(read)?,
            write: parse(write)?,
            hosts,
            protected: Vec::new(),
            sealed: Vec::new(),
        })
    }

    /// This policy, for a session that may reach `location` (the data of `table`) only through the
    /// table: reading, listing or writing anything that overlaps it directly is refused.
    pub fn protect(&mut self, location: &str, table: &str) -> Result<(), String> {
        self.protected
            .push((Prefix::parse(location)?, table.to_string()));
        Ok(())
    }

    /// Refuses every client write that overlaps `location` (`what` it holds, for the message), even
    /// under a `write` prefix: the server alone writes its audit trail.
    pub fn seal(&mut self, location: &str, what: &str) -> Result<(), String> {
        self.sealed
            .push((Prefix::parse(location)?, what.to_string()));
        Ok(())
    }

    /// Adds a location clients may read (a registered archive, a model the config loads).
    pub fn allow_read(&mut self, location: &str) -> Result<(), String> {
        self.read.push(Prefix::parse(location)?);
        Ok(())
    }

    /// The read prefixes, as written, for the start-up log and messages.
    pub fn read_locations(&self) -> Vec<&str> {
        self.read.iter().map(|p| p.text.as_str()).collect()
    }

    pub fn write_locations(&self) -> Vec<&str> {
        self.write.iter().map(|p| p.text.as_str()).collect()
    }

    /// May a client read (or list) `location`, a URL or local path as a statement writes it?
    pub fn check_read_location(&self, location: &str) -> Result<(), Denied> {
        let url = Location::parse(location)
            .map_err(|e| Denied::new("locations", format!("cannot check '{location}': {e}")))?;
        self.check_url(&url.base, &url.prefix, false)
    }

    /// May a client write `location` (`COPY … TO`, an `INSERT` into a file table)?
    pub fn check_write_location(&self, location: &str) -> Result<(), Denied> {
        let url = Location::parse(location)
            .map_err(|e| Denied::new("writes", format!("cannot check '{location}': {e}")))?;
        self.check_url(&url.base, &url.prefix, true)
    }

    /// The check every guarded store makes: `path` in the store registered under `store` (its
    /// `scheme://authority`).
    pub fn check_url(&self, store: &Url, path: &Path, write: bool) -> Result<(), Denied> {
        let (scheme, authority) = scheme_and_authority(store);
        let mut path = path.as_ref().to_string();
        if scheme == "file" {
            path = canonical_local(&path);
            if is_system_path(&path) {
                return Err(Denied::new(
                    "locations",
                    format!(
                        "colloquy serve never lets clients {} '/{path}': /proc, /dev and /sys are off limits",
                        if write { "write" } else { "read" }
                    ),
                ));
            }
        }
        let shown = if scheme == "file" {
            format!("file:///{path}")
        } else {
            format!("{scheme}://{authority}/{path}")
        };
        if let Some((_, table)) = self.protected.iter().find(|(p, _)| {
            p.holds(&scheme, &authority, &path) || p.inside(&scheme, &authority, &path)
        }) {
            return Err(Denied::new(
                "grants",
                format!(
                    "'{shown}' holds the data of table '{table}', which your roles may read only through the table (with its row and column policies) or not at all"
                ),
            ));
        }
        let holds = |list: &[Prefix]| list.iter().any(|p| p.holds(&scheme, &authority, &path));
        if write
            && let Some((_, what)) = self.sealed.iter().find(|(p, _)| {
                p.holds(&scheme, &authority, &path) || p.inside(&scheme, &authority, &path)
            })
        {
            return Err(Denied::new(
                "writes",
                format!("'{shown}' holds {what}, which only the server writes"),
            ));
        }
        if write {
            if holds(&self.write) {
                return Ok(());
            }
            return Err(Denied::new(
                "writes",
                format!(
                    "colloquy serve is read-only for clients: writing '{shown}' is refused; an operator can allow writes under a prefix with `write = [\"…\"]` in [server]"
                ),
            ));
        }
        if holds(&self.read) || holds(&self.write) {
            return Ok(());
        }
        Err(Denied::new(
            "locations",
            format!(
                "colloquy serve does not let clients read '{shown}': it is neither a registered archive nor under an allowed location; an operator can allow it with `read = [\"{}\"]` in [server]",
                suggestion(&scheme, &authority, &path)
            ),
        ))
    }

    /// The network rule: requests to an `http(s)` host must not reach loopback, private, link-local or
    /// metadata addresses unless the operator lists the host in `allow_hosts`.
    pub fn check_host(&self, url: &Url) -> Result<(), Denied> {
        let Some(host) = url.host_str() else {
            return Ok(());
        };
        let port = url.port_or_known_default().unwrap_or(0);
        if self.host_allowed(host, port) {
            return Ok(());
        }
        let host_only = host.trim_start_matches('[').trim_end_matches(']');
        let addrs: Vec<IpAddr> = match host_only.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => (host_only, port)
                .to_socket_addrs()
                .map_err(|e| {
                    Denied::new(
                        "network",
                        format!("colloquy serve cannot check host '{host}': {e}"),
                    )
                })?
                .map(|a| a.ip())
                .collect(),
        };
        if let Some(ip) = addrs.into_iter().find(|ip| is_internal_ip(*ip)) {
            return Err(Denied::new(
                "network",
                format!(
                    "colloquy serve does not let clients reach '{host}': it is a loopback, private, link-local or metadata address ({ip}); an operator can allow it with `allow_hosts = [\"{host}:{port}\"]` in [server]"
                ),
            ));
        }
        Ok(())
    }

    /// An object-store endpoint a client names in OPTIONS (`aws.endpoint`, `azure.endpoint`, …): only
    /// hosts the operator lists, so a client's OPTIONS cannot send requests anywhere else.
    pub fn check_endpoint(&self, key: &str, endpoint: &str) -> Result<(), Denied> {
        let url = Url::parse(endpoint).map_err(|e| {
            Denied::new(
                "network",
                format!("object-store option '{key}': '{endpoint}' is not a URL ({e})"),
            )
        })?;
        let host = url.host_str().unwrap_or_default();
        let port = url.port_or_known_default().unwrap_or(0);
        if self.host_allowed(host, port) {
            return Ok(());
        }
        Err(Denied::new(
            "network",
            format!(
                "object-store option '{key}' points at '{host}:{port}', which the server does not let clients name; an operator can allow it with `allow_hosts = [\"{host}:{port}\"]` in [server]"
            ),
        ))
    }

    fn host_allowed(&self, host: &str, port: u16) -> bool {
        let host = host.to_ascii_lowercase();
        let with_port = format!("{host}:{port}");
        self.hosts.iter().any(|h| *h == host || *h == with_port)
    }
}

fn suggestion(scheme: &str, authority: &str, path: &str) -> String {
    let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
    if scheme == "file" {
        format!("/{dir}/")
    } else {
        format!("{scheme}://{authority}/{dir}/")
    }
}

fn denied_error(path: &Path, d: Denied) -> object_store::Error {
    object_store::Error::PermissionDenied {
        path: path.to_string(),
        source: Box::new(d),
    }
}

/// A store that checks every path against the policy before passing the call on.
#[derive(Debug)]
pub struct GuardedStore {
    inner: Arc<dyn ObjectStore>,
    /// `scheme://authority` the store is registered under.
    base: Url,
    policy: Arc<AccessPolicy>,
}

impl GuardedStore {
    pub fn wrap(inner: Arc<dyn ObjectStore>, base: &Url, policy: Arc<AccessPolicy>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            base: store_key(base),
            policy,
        })
    }

    fn check(&self, path: &Path, write: bool) -> object_store::Result<()> {
        self.policy
            .check_url(&self.base, path, write)
            .map_err(|d| denied_error(path, d))
    }
}

impl fmt::Display for GuardedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Guarded({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for GuardedStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.check(location, true)?;
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.check(location, true)?;
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.check(location, false)?;
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[Range<u64>],
    ) -> object_store::Result<Vec<Bytes>> {
        self.check(location, false)?;
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        let policy = Arc::clone(&self.policy);
        let base = self.base.clone();
        let checked = locations
            .map(move |p| {
                let p = p?;
                policy
                    .check_url(&base, &p, true)
                    .map_err(|d| denied_error(&p, d))?;
                Ok(p)
            })
            .boxed();
        self.inner.delete_stream(checked)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        let root = Path::default();
        let p = prefix.unwrap_or(&root);
        match self.check(p, false) {
            Ok(()) => self.inner.list(prefix),
            Err(e) => futures::stream::once(async move { Err(e) }).boxed(),
        }
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        let root = Path::default();
        let p = prefix.unwrap_or(&root);
        match self.check(p, false) {
            Ok(()) => self.inner.list_with_offset(prefix, offset),
            Err(e) => futures::stream::once(async move { Err(e) }).boxed(),
        }
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.check(prefix.unwrap_or(&Path::default()), false)?;
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.check(from, false)?;
        self.check(to, true)?;
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(
        &self,
        from: &Path,
        to: &Path,
        options: RenameOptions,
    ) -> object_store::Result<()> {
        self.check(from, true)?;
        self.check(to, true)?;
        self.inner.rename_opts(from, to, options).await
    }
}

/// The server's object-store registry: stores are made on demand as for `colloquy sql`, then guarded.
#[derive(Debug)]
pub struct GuardedRegistry {
    inner: AutoStoreRegistry,
    policy: Arc<AccessPolicy>,
}

impl GuardedRegistry {
    pub fn new(policy: Arc<AccessPolicy>) -> Self {
        Self {
            inner: AutoStoreRegistry::new(),
            policy,
        }
    }
}

impl ObjectStoreRegistry for GuardedRegistry {
    fn register_store(
        &self,
        url: &Url,
        store: Arc<dyn ObjectStore>,
    ) -> Option<Arc<dyn ObjectStore>> {
        self.inner.register_store(url, store)
    }

    fn deregister_store(&self, url: &Url) -> DFResult<Arc<dyn ObjectStore>> {
        self.inner.deregister_store(url)
    }

    fn get_store(&self, url: &Url) -> DFResult<Arc<dyn ObjectStore>> {
        if matches!(url.scheme(), "http" | "https") {
            self.policy
                .check_host(url)
                .map_err(|d| datafusion::error::DataFusionError::External(Box::new(d)))?;
        }
        let store = self.inner.get_store(url)?;
        Ok(GuardedStore::wrap(store, url, Arc::clone(&self.policy)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(read: &[&str], write: &[&str], hosts: &[&str]) -> AccessPolicy {
        let v = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        AccessPolicy::new(&v(read), &v(write), &v(hosts)).expect("policy")
    }

    #[test]
    fn locations_are_prefixes_on_segment_boundaries() {
        let dir = tempfile::tempdir().expect("dir");
        let root = dir.path().canonicalize().expect("canonical");
        let allowed = root.join("exports");
        std::fs::create_dir_all(&allowed).expect("mkdir");
        let p = policy(&[&format!("{}/", allowed.display())], &[], &[]);
        assert!(
            p.check_read_location(&format!("{}/a.zip", allowed.display()))
                .is_ok()
        );
        assert!(
            p.check_read_location(&format!("{}/sub/*.jsonl", allowed.display()))
                .is_ok()
        );
        let sibling = format!("{}/exports-old/a.zip", root.display());
        let e = p.check_read_location(&sibling).expect_err("sibling");
        assert_eq!(e.rule, "locations");
        assert!(e.message.contains("read = ["), "{e}");
        let dotted = format!("{}/exports/../secret.txt", root.display());
        assert!(p.check_read_location(&dotted).is_err());
        assert!(p.check_read_location("/etc/passwd").is_err());
        assert!(p.check_read_location("s3://bucket/x").is_err());
    }

    #[test]
    fn sealed_locations_are_never_written() {
        let dir = tempfile::tempdir().expect("dir");
        let root = dir.path().canonicalize().expect("canonical");
        let mut p = policy(&[], &[&format!("{}/", root.display())], &[]);
        p.seal(&format!("{}/audit/", root.display()), "the audit trail")
            .expect("seal");
        for refused in [
            format!("{}/audit/00000000000000000007.jsonl", root.display()),
            format!("{}/", root.display()),
        ] {
            let e = p.check_write_location(&refused).expect_err(&refused);
            assert!(e.message.contains("the audit trail"), "{e}");
        }
        assert!(
            p.check_write_location(&format!("{}/out/x.csv", root.display()))
                .is_ok()
        );
        assert!(
            p.check_read_location(&format!("{}/audit/", root.display()))
                .is_ok()
        );
    }

    #[test]
    fn protected_locations_are_refused_with_their_parents_and_children() {
        let dir = tempfile::tempdir().expect("dir");
        let root = dir.path().canonicalize().expect("canonical");
        let eu = root.join("chats/eu");
        std::fs::create_dir_all(&eu).expect("mkdir");
        let mut p = policy(&[&format!("{}/", root.display())], &[], &[]);
        p.protect(&format!("{}/", eu.display()), "messages")
            .expect("protect");
        for refused in [
            format!("{}/a.jsonl", eu.display()),
            format!("{}/", eu.display()),
            format!("{}/chats/", root.display()),
            format!("{}/chats/*/a.jsonl", root.display()),
            format!("{}/", root.display()),
        ] {
            let e = p.check_read_location(&refused).expect_err(&refused);
            assert_eq!(e.rule, "grants", "{refused}");
            assert!(e.message.contains("'messages'"), "{e}");
        }
        assert!(
            p.check_read_location(&format!("{}/chats/us/a.jsonl", root.display()))
                .is_ok()
        );
        assert!(
            p.check_read_location(&format!("{}/chats/eu-old/a.jsonl", root.display()))
                .is_ok()
        );
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_are_checked_where_they_point() {
        let dir = tempfile::tempdir().expect("dir");
        let root = dir.path().canonicalize().expect("canonical");
        let allowed = root.join("exports");
        std::fs::create_dir_all(&allowed).expect("mkdir");
        std::fs::write(root.join("secret.txt"), "x").expect("write");
        std::os::unix::fs::symlink(root.join("secret.txt"), allowed.join("link.txt"))
            .expect("symlink");
        let p = policy(&[&format!("{}/", allowed.display())], &[], &[]);
        assert!(
            p.check_read_location(&format!("{}/link.txt", allowed.display()))
                .is_err()
        );
    }

    #[test]
    fn system_folders_never() {
        let p = policy(&["/"], &["/"], &[]);
        assert!(p.check_read_location("/tmp").is_ok());
        for bad in ["/proc/self/environ", "/dev/zero", "/sys/kernel", "/proc"] {
            let e = p.check_read_location(bad).expect_err(bad);
            assert!(e.message.contains("off limits"), "{e}");
        }
    }

    #[test]
    fn writes_need_a_write_prefix() {
        let p = policy(&["/data/"], &["/srv/out/"], &[]);
        let e = p
            .check_write_location("/data/x.csv")
            .expect_err("read-only");
        assert_eq!(e.rule, "writes");
        assert!(p.check_write_location("/srv/out/x.csv").is_ok());
        // Write prefixes are readable.
        assert!(p.check_read_location("/srv/out/x.csv").is_ok());
        assert!(p.check_write_location("s3://b/x").is_err());
    }

    #[test]
    fn object_store_locations() {
        let p = policy(
            &["s3://acme/exports/", "https://files.example.com/pub/"],
            &[],
            &[],
        );
        assert!(p.check_read_location("s3://acme/exports/a.zip").is_ok());
        assert!(p.check_read_location("s3a://acme/exports/a.zip").is_ok());
        assert!(p.check_read_location("s3://acme/other/a.zip").is_err());
        assert!(p.check_read_location("s3://acme-2/exports/a.zip").is_err());
        assert!(
            p.check_read_location("https://files.example.com/pub/x.jsonl")
                .is_ok()
        );
        assert!(
            p.check_read_location("https://files.example.com/private/x")
                .is_err()
        );
    }

    #[test]
    fn internal_hosts_need_the_operator() {
        let p = policy(&[], &[], &["127.0.0.1:9000"]);
        for bad in [
            "http://127.0.0.1:8080/",
            "http://169.254.169.254/latest/meta-data/",
            "http://10.0.0.1/",
            "http://192.168.1.1/",
            "http://[::1]:80/",
            "http://[fd00:ec2::254]/",
            "http://0.0.0.0/",
            "http://100.100.100.200/",
            "http://localhost:8080/",
        ] {
            let url = Url::parse(bad).expect("url");
            let e = p.check_host(&url).expect_err(bad);
            assert_eq!(e.rule, "network", "{bad}");
        }
        assert!(
            p.check_host(&Url::parse("http://127.0.0.1:9000/b").expect("url"))
                .is_ok()
        );
        assert!(
            p.check_host(&Url::parse("http://93.184.216.34/").expect("url"))
                .is_ok()
        );
        assert!(
            p.check_endpoint("aws.endpoint", "http://127.0.0.1:9000")
                .is_ok()
        );
        let e = p
            .check_endpoint("aws.endpoint", "http://attacker.example:80")
            .expect_err("endpoint");
        assert!(e.message.contains("allow_hosts"), "{e}");
    }

    #[tokio::test]
    async fn guarded_store_refuses_reads_writes_and_listings() {
        use object_store::ObjectStoreExt;
        let dir = tempfile::tempdir().expect("dir");
        let root = dir.path().canonicalize().expect("canonical");
        std::fs::create_dir_all(root.join("ok")).expect("mkdir");
        std::fs::write(root.join("ok/a.txt"), "fine").expect("write");
        std::fs::write(root.join("secret.txt"), "no").expect("write");
        let p = Arc::new(policy(&[&format!("{}/ok/", root.display())], &[], &[]));
        let base = Url::parse("file:///").expect("url");
        let store = GuardedStore::wrap(
            Arc::new(object_store::local::LocalFileSystem::new()),
            &base,
            p,
        );
        let rel = |p: &std::path::Path| Path::from(p.to_string_lossy().trim_start_matches('/'));
        let ok = store.get(&rel(&root.join("ok/a.txt"))).await.expect("read");
        assert_eq!(ok.bytes().await.expect("bytes").as_ref(), b"fine");
        let e = store
            .get(&rel(&root.join("secret.txt")))
            .await
            .expect_err("secret");
        assert!(
            matches!(e, object_store::Error::PermissionDenied { .. }),
            "{e}"
        );
        let listed: Vec<_> = store.list(Some(&rel(&root))).collect().await;
        assert!(listed.iter().all(Result::is_err), "{listed:?}");
        let out = rel(&root.join("ok/new.txt"));
        assert!(store.put(&out, PutPayload::from("x")).await.is_err());
        assert!(!root.join("ok/new.txt").exists());
    }
}
