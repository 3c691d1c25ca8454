//! Shared by the fuzz targets: run one parser over arbitrary bytes under both `on_error` policies.
//! No input may panic; with `on_error 'skip'` every bad record is logged, so parsing must succeed.

use colloquy_formats::formats::{ParseCtx, csv, discord, jsonl, messenger, slack, teams, telegram, whatsapp};
use colloquy_formats::message::Message;
use colloquy_formats::options::{ArchiveOptions, OnError, Tz};
use colloquy_formats::sink::Sink;
use colloquy_formats::Format;

pub fn run(format: Format, data: &[u8]) {
    for on_error in [OnError::Skip, OnError::Fail] {
        // A zone with DST, so that gaps and overlaps in local times are exercised.
        let options = ArchiveOptions { on_error, timezone: Tz::Europe__Berlin, ..ArchiveOptions::default() };
        let mut rows = 0usize;
        let mut emit = |_m: Message, _: &str| {
            rows += 1;
            Ok(())
        };
        let mut sink = Sink::new("memory:///fuzz", on_error, &mut emit);
        let ctx = ParseCtx { options: &options, name: "fuzz.txt", container: None, default_channel: None, format_name: format.name() };
        let result = match format {
            Format::Whatsapp => whatsapp::parse(data, &ctx, &mut sink),
            Format::Jsonl => jsonl::parse(data, &ctx, &mut sink),
            Format::Csv => csv::parse(data, &ctx, &mut sink),
            Format::Telegram => telegram::parse(data, &ctx, &mut sink),
            Format::Discord => discord::parse(data, &ctx, &mut sink),
            Format::Messenger | Format::Instagram => messenger::parse(data, &ctx, &mut sink, "messenger"),
            Format::Teams => teams::parse(data, &ctx, &mut sink),
            Format::Slack => {
                // Split the input into users.json and one day file, as an export would hold them.
                let cut = data.iter().position(|&b| b == 0).unwrap_or(data.len());
                let files = vec![
                    slack::SlackFile { path: "users.json".into(), source: "u".into(), data: bytes::Bytes::copy_from_slice(&data[..cut]).into() },
                    slack::SlackFile {
                        path: "general/2025-01-01.json".into(),
                        source: "g".into(),
                        data: bytes::Bytes::copy_from_slice(data.get(cut + 1..).unwrap_or_default()).into(),
                    },
                ];
                slack::parse(&files, &ctx, &mut sink)
            }
        };
        drop(sink);
        if on_error == OnError::Skip {
            assert!(result.is_ok(), "skip mode must not fail: {result:?}");
        }
    }
}
