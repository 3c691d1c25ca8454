//! Writes the seed corpus of the `parse` fuzz target from every registered format's samples:
//! `fuzz/corpus/parse/<format>-<n>` holds the format's name on the first line, then the sample (for a
//! folder export, the sample once per member of its layout, joined by NUL bytes as the target splits
//! them).
//!
//! `cargo run -p colloquy-formats --example fuzz_seeds`

use std::path::PathBuf;

use colloquy_formats::Format;

fn main() -> std::io::Result<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = root.join("fuzz/corpus/parse");
    std::fs::create_dir_all(&out)?;
    for format in Format::all() {
        for (n, rel) in format.spec().samples().iter().enumerate() {
            let sample = std::fs::read(root.join("tests/fixtures").join(rel))?;
            let mut seed = format!("{}\n", format.name()).into_bytes();
            let members = if format.is_folder_export() {
                format.spec().folder_layout().len()
            } else {
                1
            };
            for i in 0..members {
                if i > 0 {
                    seed.push(0);
                }
                seed.extend_from_slice(&sample);
            }
            let path = out.join(format!("{}-{n}", format.name()));
            std::fs::write(&path, seed)?;
            println!("{}", path.display());
        }
    }
    Ok(())
}
