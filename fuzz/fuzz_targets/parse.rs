#![no_main]
//! Fuzzes every registered parser through the format registry. The input's first line names the format
//! (the seeds in corpus/parse are written so by `cargo run -p colloquy-formats --example fuzz_seeds`);
//! any other first line picks a format by the first byte, so mutated names still reach a parser.
#[path = "common.rs"]
mod common;

use colloquy_formats::Format;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|&b| b == b'\n').unwrap_or(data.len());
    let body = data.get(split + 1..).unwrap_or_default();
    let format = std::str::from_utf8(&data[..split]).ok().and_then(Format::named).unwrap_or_else(|| {
        let all: Vec<Format> = Format::all().collect();
        all[usize::from(data.first().copied().unwrap_or(0)) % all.len()]
    });
    common::run(format, body);
});
