//! Shared by the fuzz targets: run one parser over arbitrary bytes under both `on_error` policies.
//! No input may panic; with `on_error 'skip'` every bad record is logged, so parsing must succeed.

use colloquy_formats::formats::{ExportFile, ParseCtx};
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
        let result = if format.is_folder_export() {
            // NUL bytes split the input into the members of a typical export (users.json, a day file...).
            let mut parts = data.split(|&b| b == 0);
            let files: Vec<ExportFile> = format
                .spec()
                .folder_layout()
                .iter()
                .map(|path| ExportFile {
                    path: (*path).to_string(),
                    source: (*path).to_string(),
                    data: bytes::Bytes::copy_from_slice(parts.next().unwrap_or_default()).into(),
                })
                .collect();
            format.parse_folder(&files, &ctx, &mut sink)
        } else {
            format.parse(data, &ctx, &mut sink)
        };
        drop(sink);
        if on_error == OnError::Skip {
            assert!(result.is_ok(), "skip mode must not fail: {result:?}");
        }
    }
}
