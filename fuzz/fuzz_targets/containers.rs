#![no_main]
//! Fuzzes zip reading and decompression: bounded output, errors instead of panics.
use colloquy_formats::container::{Compression, decompress, zip_entries};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let bytes = bytes::Bytes::copy_from_slice(data);
    if let Ok(entries) = zip_entries(bytes.clone()) {
        for e in entries {
            let _ = e.read();
        }
    }
    for c in [Compression::Gzip, Compression::Zstd, Compression::Bzip2] {
        let _ = decompress(bytes.clone(), c);
    }
});
