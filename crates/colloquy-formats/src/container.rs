//! Containers and compression: `.gz`, `.zst`, `.bz2` by extension, and `.zip` archives (WhatsApp and Slack
//! export as zips). Everything is bounded so that a small hostile file cannot exhaust memory.

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

/// The most bytes one object or zip entry may expand to.
pub const MAX_EXPANDED_BYTES: u64 = 4 << 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
    Bzip2,
}

/// The compression an object name says, and the name without that extension.
pub fn compression_of(name: &str) -> (Compression, &str) {
    for (ext, c) in [
        (".gz", Compression::Gzip),
        (".zst", Compression::Zstd),
        (".bz2", Compression::Bzip2),
    ] {
        if let Some(stem) = name.strip_suffix(ext) {
            return (c, stem);
        }
    }
    (Compression::None, name)
}

fn read_bounded(mut r: impl Read) -> Result<Bytes, String> {
    let mut out = Vec::new();
    let n = r
        .by_ref()
        .take(MAX_EXPANDED_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(|e| e.to_string())?;
    if n as u64 > MAX_EXPANDED_BYTES {
        return Err(format!("expands to more than {MAX_EXPANDED_BYTES} bytes"));
    }
    Ok(Bytes::from(out))
}

pub fn decompress(data: Bytes, c: Compression) -> Result<Bytes, String> {
    match c {
        Compression::None => Ok(data),
        Compression::Gzip => read_bounded(flate2::read::MultiGzDecoder::new(&data[..]))
            .map_err(|e| format!("cannot decompress gzip: {e}")),
        Compression::Zstd => {
            let d = zstd::stream::read::Decoder::new(&data[..])
                .map_err(|e| format!("cannot decompress zstd: {e}"))?;
            read_bounded(d).map_err(|e| format!("cannot decompress zstd: {e}"))
        }
        Compression::Bzip2 => read_bounded(bzip2::read::MultiBzDecoder::new(&data[..]))
            .map_err(|e| format!("cannot decompress bzip2: {e}")),
    }
}

pub fn is_zip(name: &str, data: &[u8]) -> bool {
    name.to_ascii_lowercase().ends_with(".zip") || data.starts_with(b"PK\x03\x04")
}

/// A file inside a zip, decompressed only when read: a large export (a whole Slack workspace) is held
/// compressed, and its files are expanded one at a time as the parser reaches them.
#[derive(Clone)]
pub struct ZipEntry {
    pub name: String,
    zip: zip::ZipArchive<std::io::Cursor<Bytes>>,
    index: usize,
    /// Bytes all entries of this zip have expanded to so far, against `MAX_EXPANDED_BYTES`.
    expanded: Arc<AtomicU64>,
}

impl ZipEntry {
    pub fn read(&self) -> Result<Bytes, String> {
        // Cloning the archive shares its parsed directory and the compressed bytes.
        let mut zip = self.zip.clone();
        let file = zip
            .by_index(self.index)
            .map_err(|e| format!("zip entry '{}': {e}", self.name))?;
        let data = read_bounded(file).map_err(|e| format!("zip entry '{}': {e}", self.name))?;
        let total = self
            .expanded
            .fetch_add(data.len() as u64, Ordering::Relaxed)
            + data.len() as u64;
        if total > MAX_EXPANDED_BYTES {
            return Err(format!(
                "zip expands to more than {MAX_EXPANDED_BYTES} bytes"
            ));
        }
        Ok(data)
    }
}

/// Lists the files of a zip, skipping folders and macOS resource forks. Entries are decompressed by
/// [`ZipEntry::read`], one by one, within the same bound as plain objects.
pub fn zip_entries(data: Bytes) -> Result<Vec<ZipEntry>, String> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(data))
        .map_err(|e| format!("not a readable zip archive: {e}"))?;
    let expanded = Arc::new(AtomicU64::new(0));
    let mut out = Vec::new();
    for i in 0..archive.len() {
        let file = archive
            .by_index_raw(i)
            .map_err(|e| format!("zip entry {i}: {e}"))?;
        if file.is_dir() {
            continue;
        }
        let name = file.name().to_string();
        drop(file);
        if name.starts_with("__MACOSX/")
            || name.rsplit('/').next().is_some_and(|n| n.starts_with("._"))
        {
            continue;
        }
        out.push(ZipEntry {
            name,
            zip: archive.clone(),
            index: i,
            expanded: Arc::clone(&expanded),
        });
    }
    Ok(out)
}
