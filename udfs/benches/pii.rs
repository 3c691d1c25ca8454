//! redact_pii() throughput on short chat messages, without the query engine: one in ten holds personal
//! data, the rest hold the numbers support chats are full of (orders, dates, prices).
//! `cargo bench -p colloquy-udfs --bench pii`; `cargo test` runs each once as a smoke test.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

use colloquy_udfs::pii::{PiiSet, find, redact};

const MESSAGES: usize = 100_000;

fn messages() -> Vec<String> {
    const PLAIN: &[&str] = &[
        "Hi, where is my order A10422? Nothing since Monday",
        "Thanks, that was quick 🙂",
        "Refund of €49.90 for order #558812 on 2026-01-05?",
        "It said 10:30 but the driver never came",
        "ok",
    ];
    const PII: &[&str] = &[
        "my email is dana.ortiz@example.com",
        "call me on +44 20 7946 0958 please",
        "card 4111 1111 1111 1111 was charged twice",
        "IBAN DE89 3704 0044 0532 0130 00 for the refund",
    ];
    (0..MESSAGES)
        .map(|i| {
            if i % 10 == 0 {
                PII[(i / 10) % PII.len()].to_string()
            } else {
                PLAIN[i % PLAIN.len()].to_string()
            }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let msgs = messages();
    let bytes: usize = msgs.iter().map(String::len).sum();
    let mut g = c.benchmark_group("pii");
    g.throughput(Throughput::Elements(MESSAGES as u64));
    g.bench_function("redact_pii", |b| {
        b.iter(|| {
            msgs.iter()
                .map(|m| redact(m, PiiSet::ALL).len())
                .sum::<usize>()
        })
    });
    g.bench_function("find", |b| {
        b.iter(|| {
            msgs.iter()
                .map(|m| find(m, PiiSet::ALL).len())
                .sum::<usize>()
        })
    });
    g.throughput(Throughput::Bytes(bytes as u64));
    g.bench_function("redact_pii_bytes", |b| {
        b.iter(|| {
            msgs.iter()
                .map(|m| redact(m, PiiSet::ALL).len())
                .sum::<usize>()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
