//! The parse step of `colloquy-archive`'s `object_costs` example (detect and parse every file under a
//! folder, and every entry of its zips, `ROUNDS` times over, after reading and inflating them once),
//! without DataFusion: it builds in a
//! minute or two, with symbols for `perf`, where a release build of the whole stack takes half an hour.
//!
//! ```text
//! CARGO_PROFILE_RELEASE_STRIP=false cargo build --release -p colloquy-formats --example parse_costs
//! target/release/examples/parse_costs /tmp/bench/demo140k/whatsapp 5
//! ```
use colloquy_formats::container::{is_zip, zip_entries};
use colloquy_formats::detect::{detect, is_media};
use colloquy_formats::formats::ParseCtx;
use colloquy_formats::message::Message;
use colloquy_formats::options::ArchiveOptions;
use colloquy_formats::sink::Sink;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args()
        .nth(1)
        .ok_or("usage: parse_costs DIR [ROUNDS]")?;
    let rounds: usize = std::env::args()
        .nth(2)
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    // Every file under the folder; a zip's entries in its place.
    let mut texts = Vec::new();
    let mut folders = vec![std::path::PathBuf::from(&dir)];
    while let Some(folder) = folders.pop() {
        for e in std::fs::read_dir(folder)? {
            let p = e?.path();
            if p.is_dir() {
                folders.push(p);
                continue;
            }
            let name = p.to_string_lossy().into_owned();
            let data = bytes::Bytes::from(std::fs::read(&p)?);
            if is_zip(&name, &data) {
                for e in zip_entries(data)? {
                    texts.push((e.name.clone(), Some(name.clone()), e.read()?));
                }
            } else {
                texts.push((name, None, data));
            }
        }
    }
    let options = ArchiveOptions::default();
    let mut messages = 0usize;
    let mut bytes = 0usize;
    let t = Instant::now();
    for _ in 0..rounds {
        for (name, container, data) in &texts {
            if is_media(name) {
                continue;
            }
            let format = detect(name, data)?;
            let ctx = ParseCtx {
                options: &options,
                name,
                container: container.as_deref(),
                default_channel: None,
                format_name: format.name(),
            };
            let mut emit = |m: Message, _s: &str| {
                messages += 1;
                bytes += m.text.map_or(0, |t| t.len());
                Ok(())
            };
            let mut sink = Sink::new("x", options.on_error, &mut emit);
            format.parse(data, &ctx, &mut sink)?;
        }
    }
    let e = t.elapsed().as_secs_f64();
    println!(
        "{} objects, {messages} messages ({bytes} text bytes): {:.2} us/object, {:.0}k messages/s",
        texts.len(),
        e * 1e6 / (texts.len() * rounds) as f64,
        messages as f64 / e / 1e3
    );
    Ok(())
}
