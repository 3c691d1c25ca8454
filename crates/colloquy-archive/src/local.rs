//! Local archives read straight from the file system.
//!
//! An archive of one zip per chat is tens of thousands of small files. Through `object_store`'s local
//! store each cost about 20 system calls and a hop through tokio's blocking pool: four `statx` while
//! listing (the walk, a symlink check, `is_file`, the metadata), then an open, `fstat`, `statx` and
//! `lseek` to read it, and 9 futex calls to hand it between threads (`strace -c`, benches/README.md).
//! Here a listing is one directory walk in one blocking task with one `statx` per file, and a file is
//! read where it is parsed (open, read, close), with no thread hand-off.
//!
//! Only a store that is exactly `object_store`'s local file system at `/` is read this way, and under a
//! server's policy each file is checked as the guarded store checks it: where it really is, symlinks
//! resolved. Any other store (a client's, a prefixed one) goes through `object_store` as before.

use std::collections::HashSet;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::path::{Path, PathPart};
use object_store::{ObjectMeta, ObjectStore};
use url::Url;

use colloquy_store::AccessPolicy;

/// Objects handed from the walking thread to the listing at a time.
const CHUNK: usize = 512;

/// How a scan reads a local archive without `object_store`.
#[derive(Debug, Clone)]
pub struct LocalFiles {
    /// The server's policy and the store URL it checks paths under, when there is one.
    guard: Option<(Arc<AccessPolicy>, Url)>,
}

/// How `object_store` shows its local file system rooted at `/`, bare and inside a server's guard.
const LOCAL_ROOT: &str = "LocalFileSystem(file:///)";
const GUARDED_LOCAL_ROOT: &str = "Guarded(LocalFileSystem(file:///))";

impl LocalFiles {
    /// Direct access for `store` when it is the local file system at `/`: bare (no policy to apply), or
    /// guarded by the server and `policy` is that server's. Otherwise `None`, and the scan uses the
    /// store. Stores are told apart by how they display, which is all `dyn ObjectStore` shows; a store
    /// that displays otherwise simply keeps the slower path.
    pub fn for_store(
        store: &dyn ObjectStore,
        base: &Url,
        policy: Option<&Arc<AccessPolicy>>,
    ) -> Option<Self> {
        if base.scheme() != "file" {
            return None;
        }
        let shown = store.to_string();
        if shown == LOCAL_ROOT {
            // A bare store under a policy would be a server that forgot its guard: read through it.
            return policy.is_none().then_some(Self { guard: None });
        }
        if shown == GUARDED_LOCAL_ROOT {
            let policy = Arc::clone(policy?);
            return Some(Self {
                guard: Some((policy, colloquy_store::store_key(base))),
            });
        }
        None
    }

    fn check(&self, path: &Path) -> object_store::Result<()> {
        match &self.guard {
            None => Ok(()),
            Some((policy, base)) => policy.check_url(base, path, false).map_err(|d| {
                object_store::Error::PermissionDenied {
                    path: path.to_string(),
                    source: Box::new(d),
                }
            }),
        }
    }

    /// Every file under `prefix` (all of `/` without one), as `object_store`'s local list gives them:
    /// symlinks followed, broken ones skipped, versions from the same entity tag. Walked in one blocking
    /// task, handed over `CHUNK` objects at a time.
    pub fn list(
        &self,
        prefix: Option<&Path>,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        let prefix = prefix.cloned().unwrap_or_default();
        if let Err(e) = self.check(&prefix) {
            return futures::stream::once(async move { Err(e) }).boxed();
        }
        let (tx, rx) = tokio::sync::mpsc::channel::<Vec<object_store::Result<ObjectMeta>>>(4);
        tokio::task::spawn_blocking(move || walk(prefix, &tx));
        futures::stream::unfold(rx, |mut rx| async move {
            rx.recv()
                .await
                .map(|chunk| (futures::stream::iter(chunk), rx))
        })
        .flatten()
        .boxed()
    }

    /// The whole of a listed file, read on the calling thread (a parse task's).
    pub fn read(&self, location: &Path, size: u64) -> object_store::Result<Bytes> {
        self.check(location)?;
        let path = to_fs(location);
        let err = |e: std::io::Error| object_store::Error::Generic {
            store: "LocalFileSystem",
            source: Box::new(e),
        };
        let mut file = std::fs::File::open(&path).map_err(err)?;
        // The size from the listing, plus one byte to see the end without growing the buffer. Read by
        // hand: `File::read_to_end` asks the file system for the size and position again (a `statx`
        // and an `lseek` per file).
        let mut data = vec![0u8; usize::try_from(size).unwrap_or(0).saturating_add(1)];
        let mut filled = 0;
        loop {
            if filled == data.len() {
                // Grown since it was listed.
                data.resize(data.len() * 2, 0);
            }
            match file.read(&mut data[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(err(e)),
            }
        }
        data.truncate(filled);
        Ok(Bytes::from(data))
    }
}

/// The file-system path of a local object path.
fn to_fs(location: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for part in location.parts() {
        out.push(
            percent_encoding::percent_decode_str(part.as_ref())
                .decode_utf8_lossy()
                .as_ref(),
        );
    }
    out
}

/// `object_store` keeps the parts of an unfinished upload as `name#N`; its listing hides them.
fn is_upload_part(name: &str) -> bool {
    name.rsplit_once('#')
        .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

fn walk(prefix: Path, tx: &tokio::sync::mpsc::Sender<Vec<object_store::Result<ObjectMeta>>>) {
    let mut chunk = Vec::with_capacity(CHUNK);
    // False once the listing's reader has gone away.
    let send = |item: object_store::Result<ObjectMeta>,
                chunk: &mut Vec<object_store::Result<ObjectMeta>>,
                last: bool|
     -> bool {
        chunk.push(item);
        if chunk.len() >= CHUNK || last {
            return tx.blocking_send(std::mem::take(chunk)).is_ok();
        }
        true
    };
    let root = to_fs(&prefix);
    // Followed directories by device and inode: a symlink loop is walked once.
    let mut seen: HashSet<(u64, u64)> = HashSet::new();
    let mut dirs = vec![(root, prefix)];
    while let Some((dir, path)) = dirs.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            // Gone since it was listed, or the location names nothing: nothing to list.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => continue,
            Err(e) => {
                let _ = send(Err(walk_error(&dir, e)), &mut chunk, true);
                return;
            }
        };
        if let Ok(m) = std::fs::metadata(&dir)
            && !seen.insert((m.dev(), m.ino()))
        {
            continue;
        }
        let mut subdirs = Vec::new();
        for entry in entries {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    let _ = send(Err(walk_error(&dir, e)), &mut chunk, true);
                    return;
                }
            };
            let name = entry.file_name();
            let Some(name) = name.to_str() else {
                let _ = send(
                    Err(object_store::Error::Generic {
                        store: "LocalFileSystem",
                        source: format!("file name is not valid UTF-8: {}", entry.path().display())
                            .into(),
                    }),
                    &mut chunk,
                    true,
                );
                return;
            };
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let location = path.clone().join(PathPart::from(name));
            if kind.is_dir() {
                subdirs.push((entry.path(), location));
                continue;
            }
            // One `statx`, following a symlink; a broken one is skipped, as a file deleted since the
            // directory was read.
            let Ok(meta) = std::fs::metadata(entry.path()) else {
                continue;
            };
            if meta.is_dir() {
                subdirs.push((entry.path(), location));
                continue;
            }
            if !meta.is_file() || is_upload_part(name) {
                continue;
            }
            let item = Ok(object_meta(location, &meta));
            if !send(item, &mut chunk, false) {
                return;
            }
        }
        // Reversed so that the stack pops folders in the order they were read.
        dirs.extend(subdirs.into_iter().rev());
    }
    let _ = tx.blocking_send(chunk);
}

fn walk_error(dir: &std::path::Path, e: std::io::Error) -> object_store::Error {
    object_store::Error::Generic {
        store: "LocalFileSystem",
        source: format!("cannot list {}: {e}", dir.display()).into(),
    }
}

/// The object's metadata with `object_store`'s local entity tag (inode, modification time and size in
/// hex), so cache keys are the same whichever path listed it.
fn object_meta(location: Path, meta: &std::fs::Metadata) -> ObjectMeta {
    let modified = meta.modified().ok();
    let micros = modified
        .and_then(|m| m.duration_since(std::time::SystemTime::UNIX_EPOCH).ok())
        .unwrap_or_default()
        .as_micros();
    ObjectMeta {
        location,
        last_modified: modified.map(DateTime::<Utc>::from).unwrap_or_default(),
        size: meta.len(),
        e_tag: Some(format!("{:x}-{micros:x}-{:x}", meta.ino(), meta.len())),
        version: None,
    }
}
