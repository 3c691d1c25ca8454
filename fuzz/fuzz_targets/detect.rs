#![no_main]
//! Fuzzes format detection: any name and content gives a format or an error, never a panic; a detected
//! format then parses the same bytes without panicking.
#[path = "common.rs"]
mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|&b| b == b'\n').unwrap_or(0).min(data.len());
    let name = String::from_utf8_lossy(&data[..split]);
    let body = data.get(split + 1..).unwrap_or_default();
    if let Ok(format) = colloquy_formats::detect::detect(&name, body) {
        common::run(format, body);
    }
});
