//! Where the time of a many-small-objects archive goes, step by step over one local folder:
//! listing, reading, opening zips, inflating entries, parsing. Each step repeats the ones before it.
//!
//! `cargo run --release -p colloquy-archive --example object_costs -- /path/to/archive/whatsapp`

use std::time::Instant;

use colloquy_archive::container::{is_zip, zip_entries};
use colloquy_archive::detect::detect;
use colloquy_archive::formats::ParseCtx;
use colloquy_archive::local::LocalFiles;
use colloquy_archive::message::Message;
use colloquy_archive::options::ArchiveOptions;
use colloquy_archive::sink::Sink;
use futures::TryStreamExt;
use object_store::ObjectStore;
use object_store::local::LocalFileSystem;
use object_store::path::Path;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args().nth(1).ok_or("usage: object_costs DIR")?;
    let dir = std::fs::canonicalize(dir)?;
    let prefix = Path::from_absolute_path(&dir)?;
    let store = LocalFileSystem::new();
    let base = url::Url::parse("file:///")?;
    let local = LocalFiles::for_store(&store, &base, None).ok_or("not the local root store")?;

    let t = Instant::now();
    let listed: Vec<_> = store.list(Some(&prefix)).try_collect().await?;
    let object_store_list = t.elapsed();
    let t = Instant::now();
    let metas: Vec<_> = local.list(Some(&prefix)).try_collect().await?;
    let local_list = t.elapsed();
    assert_eq!(listed.len(), metas.len());
    let n = metas.len() as f64;
    let per = |d: std::time::Duration| d.as_secs_f64() * 1e6 / n;
    println!("{} objects", metas.len());
    println!(
        "list (object_store)   {:8.2} us/object",
        per(object_store_list)
    );
    println!("list (LocalFiles)     {:8.2} us/object", per(local_list));

    let t = Instant::now();
    let mut datas = Vec::with_capacity(metas.len());
    for m in &metas {
        datas.push(local.read(&m.location, m.size)?);
    }
    println!("read                  {:8.2} us/object", per(t.elapsed()));

    let t = Instant::now();
    let mut entries = 0usize;
    for d in &datas {
        if is_zip("x.zip", d) {
            entries += zip_entries(d.clone())?.len();
        }
    }
    println!(
        "open zip              {:8.2} us/object ({entries} entries)",
        per(t.elapsed())
    );

    let t = Instant::now();
    let mut texts = Vec::with_capacity(entries);
    for d in &datas {
        for e in zip_entries(d.clone())? {
            texts.push((e.name.clone(), e.read()?));
        }
    }
    println!("open + inflate        {:8.2} us/object", per(t.elapsed()));

    let options = ArchiveOptions::default();
    let t = Instant::now();
    let mut messages = 0usize;
    for (name, data) in &texts {
        if colloquy_archive::detect::is_media(name) {
            continue;
        }
        let format = detect(name, data)?;
        let ctx = ParseCtx {
            options: &options,
            name,
            container: Some("chat.zip"),
            default_channel: None,
            format_name: format.name(),
        };
        let mut emit = |_m: Message, _s: &str| {
            messages += 1;
            Ok(())
        };
        let mut sink = Sink::new("x", options.on_error, &mut emit);
        format.parse(data, &ctx, &mut sink)?;
    }
    println!(
        "detect + parse        {:8.2} us/object ({messages} messages, {:.0}k messages/s)",
        per(t.elapsed()),
        messages as f64 / t.elapsed().as_secs_f64() / 1e3
    );
    Ok(())
}
