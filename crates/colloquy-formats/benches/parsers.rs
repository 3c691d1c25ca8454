//! Parser throughput, without the query engine: messages/s and bytes/s per format on synthetic exports
//! of 20,000 messages each (WhatsApp text, JSONL, CSV, a Slack day file).
//! `cargo bench -p colloquy-formats --bench parsers`; `cargo test` runs each once as a smoke test.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

use colloquy_formats::formats::{ExportFile, ParseCtx, csv, jsonl, slack, whatsapp};
use colloquy_formats::message::Message;
use colloquy_formats::options::{ArchiveOptions, OnError};
use colloquy_formats::sink::Sink;

const MESSAGES: usize = 20_000;

fn texts(i: usize) -> &'static str {
    const T: &[&str] = &[
        "Hi, where is my order A10422? The tracking page has not changed since Monday",
        "Thanks, that was quick 🙂",
        "I returned the jacket 5 days ago, when do I get my refund?",
        "Hello Dana, I checked your order: it ships today and you will get the tracking link by email.",
    ];
    T[i % T.len()]
}

fn whatsapp_export() -> Vec<u8> {
    let mut s = String::new();
    for i in 0..MESSAGES {
        let (d, h, m) = (1 + (i / 1440) % 28, (i / 60) % 24, i % 60);
        let who = if i % 2 == 0 {
            "Dana Ortiz"
        } else {
            "Maria | Acme Support"
        };
        s.push_str(&format!(
            "{d:02}/03/2025, {h:02}:{m:02} - {who}: {}\n",
            texts(i)
        ));
    }
    s.into_bytes()
}

fn jsonl_log() -> Vec<u8> {
    let mut s = String::new();
    for i in 0..MESSAGES {
        let role = if i % 2 == 0 { "visitor" } else { "agent" };
        s.push_str(&format!(
            "{{\"session_id\":\"wc-{}\",\"id\":\"m{i}\",\"timestamp\":\"2025-03-01T10:{:02}:{:02}Z\",\"role\":\"{role}\",\"author\":\"Ana Lima\",\"text\":\"{}\"}}\n",
            i / 8,
            (i / 60) % 60,
            i % 60,
            texts(i)
        ));
    }
    s.into_bytes()
}

fn csv_log() -> Vec<u8> {
    let mut s = String::from("message_sid,conversation,sent_at,direction,from,body\n");
    for i in 0..MESSAGES {
        let dir = if i % 2 == 0 { "inbound" } else { "outbound" };
        s.push_str(&format!(
            "SM{i},SMS-{},2025-03-01 10:{:02}:{:02},{dir},+34600111222,\"{}\"\n",
            i / 8,
            (i / 60) % 60,
            i % 60,
            texts(i)
        ));
    }
    s.into_bytes()
}

fn slack_day() -> Vec<u8> {
    let msgs: Vec<String> = (0..MESSAGES)
        .map(|i| {
            format!(
                "{{\"type\":\"message\",\"user\":\"U{}\",\"text\":\"<@U1> {}\",\"ts\":\"{}.{:06}\"}}",
                i % 7,
                texts(i),
                1_740_000_000 + i,
                i
            )
        })
        .collect();
    format!("[{}]", msgs.join(",")).into_bytes()
}

fn run(
    c: &mut Criterion,
    name: &str,
    data: &[u8],
    parse: impl Fn(&[u8], &ParseCtx<'_>, &mut Sink<'_>),
) {
    let options = ArchiveOptions::default();
    let mut group = c.benchmark_group("parse");
    group.throughput(Throughput::Bytes(data.len() as u64));
    group.sample_size(10);
    group.bench_function(name, |b| {
        b.iter(|| {
            let mut rows = 0usize;
            let mut emit = |_m: Message, _: &str| {
                rows += 1;
                Ok(())
            };
            let mut sink = Sink::new("memory:///bench", OnError::Fail, &mut emit);
            let ctx = ParseCtx {
                options: &options,
                name: "bench",
                container: None,
                default_channel: None,
                format_name: name,
            };
            parse(data, &ctx, &mut sink);
            drop(sink);
            assert_eq!(rows, MESSAGES, "{name} parsed {rows} messages");
        })
    });
    group.finish();
}

fn parsers(c: &mut Criterion) {
    run(c, "whatsapp", &whatsapp_export(), |d, ctx, s| {
        whatsapp::parse(d, ctx, s).expect("parses")
    });
    run(c, "jsonl", &jsonl_log(), |d, ctx, s| {
        jsonl::parse(d, ctx, s).expect("parses")
    });
    run(c, "csv", &csv_log(), |d, ctx, s| {
        csv::parse(d, ctx, s).expect("parses")
    });
    let day = slack_day();
    let files = vec![ExportFile {
        path: "general/2025-03-01.json".into(),
        source: "s".into(),
        data: bytes::Bytes::from(day.clone()).into(),
    }];
    run(c, "slack", &day, |_, ctx, s| {
        slack::parse(&files, ctx, s).expect("parses")
    });
}

criterion_group!(benches, parsers);
criterion_main!(benches);
