//! Local archives read straight from the file system.
//!
//! An archive of one zip per chat is tens of thousands of small files. Through `object_store`'s local
//! store each cost about 20 system calls and a hop through tokio's blocking pool: four `statx` while
//! listing (the walk, a symlink check, `is_file`, the metadata), then an open, `fstat`, `statx` and
//! `lseek` to read it, and 9 futex calls to hand it between threads (`strace -c`, benches/README.md).
//! Here a listing is one directory walk, `CHUNK` files per blocking task: per folder an `open`, an
//! `fstat` and `getdents64` until the end, per file one `newfstatat` of its name in its folder; and a
//! file is read where it is parsed (`openat`, one `read` when the listed size is all there is, `close`),
//! with no thread hand-off.
//!
//! Only a store that is exactly `object_store`'s local file system at `/` is read this way, and under a
//! server's policy each file is checked as the guarded store checks it: where it really is, symlinks
//! resolved. Any other store (a client's, a prefixed one) goes through `object_store` as before.

use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore};
use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags, Stat};
use rustix::io::Errno;
use url::Url;

use colloquy_store::AccessPolicy;

/// Objects handed from the walk to the listing at a time, and walked per blocking task.
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
    /// symlinks followed, broken ones skipped, versions from the same entity tag. Walked `CHUNK` objects
    /// per blocking task, so a listing nobody reads holds no thread.
    pub fn list(
        &self,
        prefix: Option<&Path>,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        let prefix = prefix.cloned().unwrap_or_default();
        if let Err(e) = self.check(&prefix) {
            return futures::stream::once(async move { Err(e) }).boxed();
        }
        let (tx, rx) = tokio::sync::mpsc::channel::<Vec<object_store::Result<ObjectMeta>>>(4);
        tokio::spawn(walk(prefix, tx));
        received(rx).boxed()
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
        let listed = data.len() - 1;
        let mut filled = 0;
        loop {
            if filled == data.len() {
                // Grown since it was listed.
                data.resize(data.len() * 2, 0);
            }
            match file.read(&mut data[filled..]) {
                Ok(0) => break,
                // All the listed bytes, and a read that stopped short of the one asked for past them:
                // the end, without another read to hear it (a system call per file). A file that grew
                // since it was listed is read whole unless a read happens to stop exactly at the
                // listed size (a file system's short read); then it is read as listed.
                Ok(n) if filled + n == listed => {
                    filled += n;
                    break;
                }
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(err(e)),
            }
        }
        data.truncate(filled);
        Ok(Bytes::from(data))
    }
}

/// The items of the chunks a producer task sends, one by one, until it drops its sender.
pub(crate) fn received<T: Send + 'static>(
    rx: tokio::sync::mpsc::Receiver<Vec<T>>,
) -> impl futures::Stream<Item = T> + Send + 'static {
    futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|chunk| (futures::stream::iter(chunk), rx))
    })
    .flatten()
}

/// The file-system path of a local object path. Paths hold file names as they are (`50% off #1.txt`),
/// as `object_store`'s local listing gives them.
fn to_fs(location: &Path) -> PathBuf {
    PathBuf::from(format!("/{location}"))
}

/// `object_store` keeps the parts of an unfinished upload as `name#N`; its listing hides them.
fn is_upload_part(name: &str) -> bool {
    name.split_once('#')
        .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// A walk of a folder tree that can stop between chunks: its state moves from one blocking task to the
/// next, so a listing nobody is reading waits on the async side and holds no blocking-pool thread (every
/// scan of the process parses on those few threads).
struct Walk {
    /// Folders still to read, each named in the folder it was found in: a folder of 49,000 thread
    /// folders (a Messenger inbox) waits as 49,000 names and one shared parent, not as 49,000 full paths
    /// twice over.
    dirs: Vec<Pending>,
    /// The folder being read.
    open: Option<OpenDir>,
    done: bool,
}

/// The device and inode of a folder and of each folder above it.
type Above = Arc<Vec<(u64, u64)>>;

/// A folder being read or read already, shared by the subfolders found in it.
struct Folder {
    dir: PathBuf,
    path: Path,
    /// The device and inode of this folder and those above it: a link back to one of them (a loop) is
    /// not walked again; a folder reached by two paths that do not loop is listed under both, as
    /// object_store lists it.
    above: Above,
}

/// A folder still to read.
enum Pending {
    Prefix(PathBuf, Path),
    In(Arc<Folder>, Box<str>),
}

struct OpenDir {
    folder: Arc<Folder>,
    /// Read with `getdents64` straight into a buffer; also the handle the folder's files are looked up
    /// from, one name each rather than their whole paths.
    entries: Dir,
    subdirs: Vec<Box<str>>,
}

impl Walk {
    fn new(prefix: Path) -> Self {
        Self {
            dirs: vec![Pending::Prefix(to_fs(&prefix), prefix)],
            open: None,
            done: false,
        }
    }

    /// The next objects, up to `CHUNK`; an error ends the walk (it is the chunk's last item).
    fn next_chunk(&mut self) -> Vec<object_store::Result<ObjectMeta>> {
        let mut chunk = Vec::with_capacity(CHUNK);
        while chunk.len() < CHUNK && !self.done {
            if let Err(e) = self.step(&mut chunk) {
                chunk.push(Err(e));
                self.done = true;
            }
        }
        chunk
    }

    /// Reads one entry of the open folder, or opens the next folder.
    fn step(
        &mut self,
        chunk: &mut Vec<object_store::Result<ObjectMeta>>,
    ) -> object_store::Result<()> {
        let Some(open) = &mut self.open else {
            match self.dirs.pop() {
                Some(Pending::Prefix(dir, path)) => {
                    self.open = open_dir(dir, path, &Arc::new(Vec::new()))?;
                }
                Some(Pending::In(parent, name)) => {
                    let path = match parent.path.as_ref() {
                        "" => Path::parse(&*name)?,
                        parent_path => Path::parse(format!("{parent_path}/{name}"))?,
                    };
                    self.open = open_dir(parent.dir.join(&*name), path, &parent.above)?;
                }
                None => self.done = true,
            }
            return Ok(());
        };
        let Some(entry) = open.entries.read() else {
            // Reversed so that the stack pops folders in the order they were read.
            let subdirs = std::mem::take(&mut open.subdirs);
            let parent = &open.folder;
            self.dirs.extend(
                subdirs
                    .into_iter()
                    .rev()
                    .map(|name| Pending::In(Arc::clone(parent), name)),
            );
            self.open = None;
            return Ok(());
        };
        let dir = &open.folder.dir;
        let entry = entry.map_err(|e| walk_error(dir, e.into()))?;
        let name = entry.file_name();
        let bytes = name.to_bytes();
        if bytes == b"." || bytes == b".." {
            return Ok(());
        }
        let Ok(utf8) = name.to_str() else {
            return Err(object_store::Error::Generic {
                store: "LocalFileSystem",
                source: format!(
                    "file name is not valid UTF-8: {}",
                    dir.join(std::ffi::OsStr::from_bytes(bytes)).display()
                )
                .into(),
            });
        };
        if entry.file_type() == FileType::Directory {
            open.subdirs.push(utf8.into());
            return Ok(());
        }
        // One `stat` of the name in its folder, following a symlink; a broken one is skipped, as a file
        // deleted since the folder was read.
        let fd = open.entries.fd().map_err(|e| walk_error(dir, e.into()))?;
        let Ok(stat) = rustix::fs::statat(fd, name, AtFlags::empty()) else {
            return Ok(());
        };
        match FileType::from_raw_mode(stat.st_mode) {
            FileType::Directory => open.subdirs.push(utf8.into()),
            FileType::RegularFile if !is_upload_part(utf8) => {
                let location = match open.folder.path.as_ref() {
                    "" => Path::parse(utf8)?,
                    parent => Path::parse(format!("{parent}/{utf8}"))?,
                };
                chunk.push(Ok(object_meta(location, &stat)));
            }
            _ => {}
        }
        Ok(())
    }
}

/// A folder opened for reading, or `None` when there is nothing to read: gone since it was listed, not a
/// folder, or a loop back to a folder above it.
fn open_dir(dir: PathBuf, path: Path, above: &Above) -> object_store::Result<Option<OpenDir>> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let fd = match rustix::fs::open(&dir, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::NOENT | Errno::NOTDIR) => return Ok(None),
        Err(e) => return Err(walk_error(&dir, e.into())),
    };
    let above = match rustix::fs::fstat(&fd) {
        Ok(st) if above.contains(&id_of(&st)) => return Ok(None),
        Ok(st) => {
            let mut with_this = Vec::with_capacity(above.len() + 1);
            with_this.extend_from_slice(above);
            with_this.push(id_of(&st));
            Arc::new(with_this)
        }
        Err(_) => Arc::clone(above),
    };
    let entries = Dir::new(fd).map_err(|e| walk_error(&dir, e.into()))?;
    Ok(Some(OpenDir {
        folder: Arc::new(Folder { dir, path, above }),
        entries,
        subdirs: Vec::new(),
    }))
}

/// Walks `prefix` a chunk per blocking task and sends the chunks, until the walk ends or the listing's
/// reader goes away. Waiting for room in `tx` happens here, between tasks.
async fn walk(prefix: Path, tx: tokio::sync::mpsc::Sender<Vec<object_store::Result<ObjectMeta>>>) {
    let mut walk = Walk::new(prefix);
    while !walk.done {
        let chunk;
        (walk, chunk) = match tokio::task::spawn_blocking(move || {
            let chunk = walk.next_chunk();
            (walk, chunk)
        })
        .await
        {
            Ok(done) => done,
            Err(e) => {
                let failed = object_store::Error::Generic {
                    store: "LocalFileSystem",
                    source: format!("the folder walk failed: {e}").into(),
                };
                let _ = tx.send(vec![Err(failed)]).await;
                return;
            }
        };
        if !chunk.is_empty() && tx.send(chunk).await.is_err() {
            return;
        }
    }
}

fn walk_error(dir: &std::path::Path, e: std::io::Error) -> object_store::Error {
    object_store::Error::Generic {
        store: "LocalFileSystem",
        source: format!("cannot list {}: {e}", dir.display()).into(),
    }
}

/// The object's metadata with `object_store`'s local entity tag (inode, modification time and size in
/// hex), so cache keys are the same whichever path listed it.
fn object_meta(location: Path, stat: &Stat) -> ObjectMeta {
    let modified = modified(stat);
    let micros = modified
        .and_then(|m| m.duration_since(UNIX_EPOCH).ok())
        .unwrap_or_default()
        .as_micros();
    let size = u64::try_from(stat.st_size).unwrap_or(0);
    ObjectMeta {
        location,
        last_modified: modified.map(DateTime::<Utc>::from).unwrap_or_default(),
        size,
        e_tag: Some(format!("{:x}-{micros:x}-{size:x}", id_of(stat).1)),
        version: None,
    }
}

/// A file's modification time, as std's `Metadata::modified` gives it (before 1970 too).
fn modified(stat: &Stat) -> Option<SystemTime> {
    let (secs, nanos) = mtime_of(stat);
    let whole = Duration::from_secs(secs.unsigned_abs());
    let at = if secs >= 0 {
        UNIX_EPOCH.checked_add(whole)?
    } else {
        UNIX_EPOCH.checked_sub(whole)?
    };
    at.checked_add(Duration::from_nanos(nanos))
}

// The `stat` fields' types differ by platform (`st_dev` is a `u64` on Linux and an `i32` on macOS,
// `st_mtime_nsec` a `u64` and an `i64`), so they are converted as if they could be anything: on the
// platform where a conversion is to the same type, clippy sees a useless one.

/// A file's device and inode.
#[allow(clippy::useless_conversion, clippy::unnecessary_fallible_conversions)]
fn id_of(stat: &Stat) -> (u64, u64) {
    (
        u64::try_from(stat.st_dev).unwrap_or_default(),
        u64::try_from(stat.st_ino).unwrap_or_default(),
    )
}

/// A file's modification time: whole seconds since 1970 (negative before it), and nanoseconds.
#[allow(clippy::useless_conversion, clippy::unnecessary_fallible_conversions)]
fn mtime_of(stat: &Stat) -> (i64, u64) {
    (
        i64::try_from(stat.st_mtime).unwrap_or_default(),
        u64::try_from(stat.st_mtime_nsec).unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::os::unix::fs::symlink;

    use futures::TryStreamExt;
    use object_store::local::LocalFileSystem;

    use super::*;

    fn root_url() -> Url {
        Url::parse("file:///").expect("url")
    }

    /// A tree with what a real export folder can hold: nested folders, awkward names, links.
    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        std::fs::create_dir_all(root.join("whatsapp/sub dir")).expect("mkdir");
        std::fs::write(root.join("whatsapp/WhatsApp Chat - Ana.zip"), b"zip").expect("write");
        std::fs::write(root.join("whatsapp/sub dir/50% off #1.txt"), b"a").expect("write");
        std::fs::write(root.join("whatsapp/sub dir/Zoë.txt"), b"bb").expect("write");
        // An unfinished upload of object_store's, which its listing hides.
        std::fs::write(root.join("whatsapp/part#12"), b"x").expect("write");
        symlink(root.join("whatsapp/sub dir/Zoë.txt"), root.join("link.txt")).expect("link");
        symlink(root.join("missing.txt"), root.join("broken.txt")).expect("link");
        // Modified before 1970, to the nanosecond: both listings take the time the same way.
        let old = std::fs::File::create(root.join("whatsapp/sub dir/1969.txt")).expect("create");
        let before =
            UNIX_EPOCH - Duration::new(86_400 * 365, 0) + Duration::from_nanos(123_456_789);
        old.set_modified(before).expect("set modified");
        dir
    }

    async fn listed(
        stream: BoxStream<'static, object_store::Result<ObjectMeta>>,
    ) -> BTreeMap<String, (u64, Option<String>, DateTime<Utc>)> {
        stream
            .map_ok(|m| (m.location.to_string(), (m.size, m.e_tag, m.last_modified)))
            .try_collect()
            .await
            .expect("listing")
    }

    #[tokio::test]
    async fn lists_what_object_store_lists() {
        let dir = tree();
        let root = std::fs::canonicalize(dir.path()).expect("canonical");
        let prefix = Path::from_absolute_path(&root).expect("path");
        let store = LocalFileSystem::new();
        let local = LocalFiles::for_store(&store, &root_url(), None).expect("local root");
        let ours = listed(local.list(Some(&prefix))).await;
        let theirs = listed(store.list(Some(&prefix))).await;
        assert_eq!(ours, theirs);
        assert_eq!(ours.len(), 5, "{ours:?}");
        // Each file reads back whole by the path the listing gave.
        for (location, (size, ..)) in &ours {
            let data = local
                .read(&Path::parse(location).expect("path"), *size)
                .expect("read");
            assert_eq!(data.len() as u64, *size, "{location}");
        }
    }

    #[tokio::test]
    async fn a_walk_of_many_chunks_lists_what_object_store_lists() {
        // Chunks end inside folders, with folders still waiting to be read.
        let dir = tree();
        let root = std::fs::canonicalize(dir.path()).expect("canonical");
        for folder in ["a", "a/b", "c"] {
            std::fs::create_dir_all(root.join(folder)).expect("mkdir");
            for i in 0..CHUNK * 2 / 3 {
                std::fs::write(root.join(format!("{folder}/{i}.txt")), b"x").expect("write");
            }
        }
        let prefix = Path::from_absolute_path(&root).expect("path");
        let store = LocalFileSystem::new();
        let local = LocalFiles::for_store(&store, &root_url(), None).expect("local root");
        let ours: Vec<String> = local
            .list(Some(&prefix))
            .map_ok(|m| m.location.to_string())
            .try_collect()
            .await
            .expect("listing");
        assert_eq!(ours.len(), 5 + 3 * (CHUNK * 2 / 3), "every file once");
        let ours: BTreeMap<_, _> = ours.into_iter().map(|l| (l, ())).collect();
        let theirs = listed(store.list(Some(&prefix))).await;
        assert!(ours.keys().eq(theirs.keys()));
    }

    #[tokio::test]
    async fn a_symlink_loop_is_walked_once() {
        // object_store's listing fails on a loop; this one lists each file once and ends.
        let dir = tree();
        let root = std::fs::canonicalize(dir.path()).expect("canonical");
        symlink(root.join("whatsapp"), root.join("whatsapp/sub dir/again")).expect("link");
        let local =
            LocalFiles::for_store(&LocalFileSystem::new(), &root_url(), None).expect("local");
        let prefix = Path::from_absolute_path(&root).expect("path");
        let ours = listed(local.list(Some(&prefix))).await;
        assert_eq!(ours.len(), 5, "{ours:?}");
    }

    #[tokio::test]
    async fn reads_a_file_that_grew_since_it_was_listed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = std::fs::canonicalize(dir.path())
            .expect("canonical")
            .join("log.jsonl");
        std::fs::write(&file, vec![b'x'; 10_000]).expect("write");
        let local =
            LocalFiles::for_store(&LocalFileSystem::new(), &root_url(), None).expect("local");
        let path = Path::from_absolute_path(&file).expect("path");
        assert_eq!(local.read(&path, 10).expect("read").len(), 10_000);
        assert!(local.read(&Path::from("no/such/file"), 1).is_err());
    }

    #[test]
    fn only_the_plain_local_root_is_read_directly() {
        let policy = Arc::new(AccessPolicy::new(&[], &[], &[]).expect("policy"));
        let bare: Arc<dyn ObjectStore> = Arc::new(LocalFileSystem::new());
        let guarded: Arc<dyn ObjectStore> =
            colloquy_store::GuardedStore::wrap(Arc::clone(&bare), &root_url(), Arc::clone(&policy));
        let prefixed: Arc<dyn ObjectStore> =
            Arc::new(LocalFileSystem::new_with_prefix("/tmp").expect("prefix"));
        let s3 = Url::parse("s3://bucket/").expect("url");
        assert!(LocalFiles::for_store(bare.as_ref(), &root_url(), None).is_some());
        assert!(LocalFiles::for_store(guarded.as_ref(), &root_url(), Some(&policy)).is_some());
        // A guard without its policy, or a bare store where a policy applies: through the store.
        assert!(LocalFiles::for_store(guarded.as_ref(), &root_url(), None).is_none());
        assert!(LocalFiles::for_store(bare.as_ref(), &root_url(), Some(&policy)).is_none());
        assert!(LocalFiles::for_store(prefixed.as_ref(), &root_url(), None).is_none());
        assert!(LocalFiles::for_store(bare.as_ref(), &s3, None).is_none());
    }

    #[tokio::test]
    async fn a_policy_is_checked_where_each_file_really_is() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = std::fs::canonicalize(dir.path()).expect("canonical");
        std::fs::create_dir_all(root.join("allowed")).expect("mkdir");
        std::fs::write(root.join("secret.txt"), b"secret").expect("write");
        std::fs::write(root.join("allowed/chat.txt"), b"hello").expect("write");
        symlink(root.join("secret.txt"), root.join("allowed/link.txt")).expect("link");
        let allowed = format!("{}/allowed/", root.display());
        let policy = Arc::new(AccessPolicy::new(&[allowed], &[], &[]).expect("policy"));
        let guarded = colloquy_store::GuardedStore::wrap(
            Arc::new(LocalFileSystem::new()),
            &root_url(),
            Arc::clone(&policy),
        );
        let local =
            LocalFiles::for_store(guarded.as_ref(), &root_url(), Some(&policy)).expect("local");
        let path = |p: &str| Path::from_absolute_path(root.join(p)).expect("path");
        assert_eq!(
            local
                .read(&path("allowed/chat.txt"), 5)
                .expect("read")
                .as_ref(),
            b"hello"
        );
        // The link is listed (it is in the folder) but reading it is refused, as the guard refuses it.
        let err = local
            .read(&path("allowed/link.txt"), 6)
            .expect_err("outside");
        assert!(err.to_string().contains("secret.txt"), "{err}");
        // Listing outside the allowed folder is refused before anything is walked.
        let listing: Result<Vec<_>, _> = local.list(Some(&path(""))).try_collect().await;
        assert!(listing.is_err());
    }

    /// A listing that nobody reads must not hold a blocking-pool thread while it waits: other scans
    /// need the pool to list and parse. With one blocking thread, a walk that waited there for room
    /// would keep the second listing from ever starting.
    #[test]
    fn a_listing_nobody_reads_holds_no_blocking_thread() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .max_blocking_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let many = tempfile::tempdir().expect("tempdir");
        // More objects than the channel and a chunk in hand hold.
        let files = CHUNK * 8;
        for i in 0..files {
            std::fs::write(many.path().join(format!("{i}.txt")), b"x").expect("write");
        }
        let few = tree();
        let path = |dir: &tempfile::TempDir| {
            Path::from_absolute_path(std::fs::canonicalize(dir.path()).expect("canonical"))
                .expect("path")
        };
        let (many_path, few_path) = (path(&many), path(&few));
        let result = runtime.block_on(async {
            let local =
                LocalFiles::for_store(&LocalFileSystem::new(), &root_url(), None).expect("local");
            let mut waiting = local.list(Some(&many_path));
            let first = waiting.next().await.expect("an object").expect("listed");
            assert!(first.location.as_ref().ends_with(".txt"));
            // Let the waiting walk fill its channel.
            tokio::time::sleep(Duration::from_millis(300)).await;
            let other =
                tokio::time::timeout(Duration::from_secs(30), listed(local.list(Some(&few_path))))
                    .await
                    .ok()?;
            let mut all: Vec<String> = waiting
                .map_ok(|m| m.location.to_string())
                .try_collect()
                .await
                .expect("listing");
            all.push(first.location.to_string());
            Some((other.len(), all))
        });
        // Returns at once, or after a second with a walk still stuck in the pool.
        runtime.shutdown_timeout(Duration::from_secs(1));
        let (other, mut all) = result.expect("the second listing finished while the first waited");
        assert_eq!(other, 5);
        all.sort_unstable();
        all.dedup();
        // Every file once.
        assert_eq!(all.len(), files);
    }
}
