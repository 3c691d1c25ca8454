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

fn read_bounded(r: impl Read) -> Result<Bytes, String> {
    read_bounded_sized(r, 0)
}

/// A zip entry's declared size is trusted for the first allocation only, and only up to this: a hostile
/// header cannot make it reserve gigabytes.
const MAX_SIZE_HINT: u64 = 64 << 20;

/// [`read_bounded`] into a buffer of `size_hint` bytes to start with: growing from nothing took several
/// reads and copies per small WhatsApp chat.
fn read_bounded_sized(mut r: impl Read, size_hint: u64) -> Result<Bytes, String> {
    let mut out =
        Vec::with_capacity(usize::try_from(size_hint.min(MAX_SIZE_HINT) + 1).unwrap_or(0));
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

/// Deflated entries up to this size (compressed) are inflated in one call by the thread's own
/// decompressor ([`inflate_small`]).
const ONE_SHOT_MAX: u64 = 1 << 20;

thread_local! {
    /// Reused across entries: a new decoder per entry (a state, a window and a 32 KiB read buffer) cost
    /// more than inflating a WhatsApp chat of 800 bytes (benches/README.md, "Many small objects").
    static INFLATE: std::cell::RefCell<flate2::Decompress> =
        std::cell::RefCell::new(flate2::Decompress::new(false));
}

/// Inflates a raw deflate stream expected to give `size` bytes with checksum `crc`, within the usual
/// bound whatever the header says.
fn inflate_small(compressed: &[u8], size: u64, crc: u32) -> Result<Bytes, String> {
    use flate2::{FlushDecompress, Status};
    INFLATE.with_borrow_mut(|d| {
        d.reset(false);
        let mut out = Vec::with_capacity(usize::try_from(size.min(MAX_SIZE_HINT) + 1).unwrap_or(0));
        loop {
            let read = usize::try_from(d.total_in()).unwrap_or(usize::MAX);
            let rest = compressed.get(read..).unwrap_or_default();
            let (in_before, out_before) = (d.total_in(), d.total_out());
            let status = d
                .decompress_vec(rest, &mut out, FlushDecompress::None)
                .map_err(|e| format!("cannot inflate: {e}"))?;
            if status == Status::StreamEnd {
                break;
            }
            if out.len() == out.capacity() {
                if out.len() as u64 > MAX_EXPANDED_BYTES {
                    return Err(format!("expands to more than {MAX_EXPANDED_BYTES} bytes"));
                }
                out.reserve(out.len().max(4096));
            } else if d.total_in() == in_before && d.total_out() == out_before {
                return Err("the compressed data ends before its deflate stream".to_string());
            }
        }
        if out.capacity() > 2 * out.len() + 4096 {
            out.shrink_to_fit();
        }
        if crc32fast::hash(&out) != crc {
            return Err("checksum mismatch: the entry is corrupt".to_string());
        }
        Ok(Bytes::from(out))
    })
}

impl ZipEntry {
    /// A small deflated entry, inflated in one call; `None` for the others (stored, large, encrypted,
    /// other methods), which go through the zip crate's reader.
    fn read_small(&self) -> Option<Result<Bytes, String>> {
        let mut zip = self.zip.clone();
        let mut raw = zip.by_index_raw(self.index).ok()?;
        if raw.compression() != zip::CompressionMethod::Deflated
            || raw.encrypted()
            || raw.compressed_size() > ONE_SHOT_MAX
        {
            return None;
        }
        // Deflate expands at most 1032 to 1: a header claiming more than that lies.
        let size = raw.size().min(raw.compressed_size().saturating_mul(1032));
        let crc = raw.crc32();
        let mut compressed =
            Vec::with_capacity(usize::try_from(raw.compressed_size()).unwrap_or(0));
        if let Err(e) = raw.read_to_end(&mut compressed) {
            return Some(Err(e.to_string()));
        }
        Some(inflate_small(&compressed, size, crc))
    }

    pub fn read(&self) -> Result<Bytes, String> {
        let data = match self.read_small() {
            Some(small) => small.map_err(|e| format!("zip entry '{}': {e}", self.name))?,
            None => {
                // Cloning the archive shares its parsed directory and the compressed bytes.
                let mut zip = self.zip.clone();
                let file = zip
                    .by_index(self.index)
                    .map_err(|e| format!("zip entry '{}': {e}", self.name))?;
                let size = file.size();
                read_bounded_sized(file, size)
                    .map_err(|e| format!("zip entry '{}': {e}", self.name))?
            }
        };
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

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn zip_of(files: &[(&str, &[u8], zip::CompressionMethod)]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for (name, data, method) in files {
            let options = zip::write::SimpleFileOptions::default().compression_method(*method);
            w.start_file(*name, options).expect("start");
            w.write_all(data).expect("write");
        }
        w.finish().expect("finish").into_inner()
    }

    fn chat(lines: usize) -> Vec<u8> {
        (0..lines)
            .map(|i| format!("12/03/2026, 10:{:02} - Ana: message number {i}\n", i % 60))
            .collect::<String>()
            .into_bytes()
    }

    #[test]
    fn entries_read_back_whatever_their_size_and_method() {
        let small = chat(8);
        let large = chat(60_000);
        let stored = chat(3);
        let data = zip_of(&[
            ("a.txt", &small, zip::CompressionMethod::Deflated),
            ("b.txt", &large, zip::CompressionMethod::Deflated),
            ("c.txt", &stored, zip::CompressionMethod::Stored),
        ]);
        let entries = zip_entries(Bytes::from(data)).expect("zip");
        let read: Vec<Bytes> = entries.iter().map(|e| e.read().expect("read")).collect();
        assert_eq!(read[0].as_ref(), small.as_slice());
        assert_eq!(read[1].as_ref(), large.as_slice());
        assert_eq!(read[2].as_ref(), stored.as_slice());
        // The thread's decoder is reused: a second pass gives the same bytes.
        assert_eq!(entries[0].read().expect("again").as_ref(), small.as_slice());
    }

    #[test]
    fn a_corrupt_entry_is_an_error_naming_it() {
        let data = zip_of(&[("chat.txt", &chat(40), zip::CompressionMethod::Deflated)]);
        // The compressed data starts after the 30-byte local header and the name.
        let at = 30 + "chat.txt".len() + 5;
        for flip in [0x01u8, 0x40, 0xff] {
            let mut bad = data.clone();
            bad[at] ^= flip;
            let entries = zip_entries(Bytes::from(bad)).expect("directory is intact");
            let err = entries[0].read().expect_err("corrupt data must not read");
            assert!(err.contains("zip entry 'chat.txt'"), "{err}");
        }
    }

    #[test]
    fn a_lying_size_header_neither_truncates_nor_overallocates() {
        let text = chat(200);
        let compressed = {
            let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(&text).expect("deflate");
            e.finish().expect("finish")
        };
        let crc = crc32fast::hash(&text);
        // Declared far too small, then absurdly large: the bytes are the same.
        for declared in [10, u64::MAX / 2] {
            let out = inflate_small(&compressed, declared, crc).expect("inflate");
            assert_eq!(out.as_ref(), text.as_slice());
        }
        let err = inflate_small(&compressed[..compressed.len() / 2], 10, crc).expect_err("cut");
        assert!(err.contains("ends before"), "{err}");
    }
}
