//! Messages per second per core of the built-in models on short chat messages (the hand-written support
//! messages in six languages under `scripts/models/handwritten/`, median 6 words).
//!
//! `cargo bench -p colloquy-textmodels --bench models`; CI runs it once as a smoke test (`--test`).

use std::hint::black_box;
use std::path::Path;

use colloquy_textmodels::{Scratch, builtin};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn messages() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/models/handwritten");
    let mut out = Vec::new();
    for lang in ["en", "es", "fr", "de", "pt", "it"] {
        let text =
            std::fs::read_to_string(dir.join(format!("intent_{lang}.tsv"))).unwrap_or_default();
        out.extend(
            text.lines()
                .filter_map(|l| l.split_once('\t'))
                .map(|(_, t)| t.to_owned()),
        );
    }
    assert!(
        !out.is_empty(),
        "no benchmark messages found in {}",
        dir.display()
    );
    out
}

fn bench(c: &mut Criterion) {
    let msgs = messages();
    let mut group = c.benchmark_group("models");
    group.throughput(Throughput::Elements(msgs.len() as u64));
    let mut s = Scratch::default();
    let mut ls = Scratch::default();
    let mut p = Vec::new();
    if let Ok(lang) = builtin::language() {
        group.bench_function("language", |b| {
            b.iter(|| {
                msgs.iter()
                    .filter(|m| lang.detect(m, None, &mut s, &mut p).is_some())
                    .count()
            })
        });
        if let Ok(sent) = builtin::sentiment() {
            group.bench_function("sentiment", |b| {
                b.iter(|| {
                    msgs.iter()
                        .filter_map(|m| sent.score_with(m, &mut s, &mut p, Some((lang, &mut ls))))
                        .map(|x| x.score)
                        .sum::<f32>()
                })
            });
        }
    }
    if let Ok(intent) = builtin::intent() {
        group.bench_function("intent", |b| {
            b.iter(|| {
                msgs.iter()
                    .map(|m| intent.classify(black_box(m), &mut s, &mut p).label)
                    .sum::<usize>()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
