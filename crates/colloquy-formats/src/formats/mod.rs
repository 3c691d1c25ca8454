//! One parser per export format. Each reads bytes already taken out of their container and decompressed.

pub mod csv;
pub mod discord;
pub mod jsonl;
pub mod messenger;
pub mod slack;
pub mod teams;
pub mod telegram;
pub mod whatsapp;

mod fields;
mod flat_json;
mod json_doc;

use std::fmt;
use std::hash::{Hash, Hasher};

use crate::error::{FormatError, Result};
use crate::options::ArchiveOptions;
use crate::sink::Sink;

/// The export formats `read_archive` and `STORED AS ARCHIVE` understand, in the order their sniffers
/// run. Adding a format is a file in this folder implementing [`ExportFormat`] and one line here.
pub const REGISTRY: &[&dyn ExportFormat] = &[
    &whatsapp::Whatsapp,
    &slack::Slack,
    &telegram::Telegram,
    &discord::Discord,
    &messenger::Messenger,
    &messenger::Instagram,
    &teams::Teams,
    &jsonl::Jsonl,
    &csv::Csv,
];

/// One export format: its names, how to recognise it, and its parser.
pub trait ExportFormat: Sync {
    /// The name `OPTIONS ('format' ...)` takes; also the channel of last resort for logs naming none.
    fn name(&self) -> &'static str;

    /// Other spellings `'format'` accepts.
    fn aliases(&self) -> &'static [&'static str] {
        &[]
    }

    /// File extensions (lower case, no dot) that decide this format before any content is read.
    fn extensions(&self) -> &'static [&'static str] {
        &[]
    }

    /// Whether an object is of this format, judged from its name and its first 64 KiB. Sniffers run in
    /// [`REGISTRY`] order and the first to say yes wins, so a broad sniffer goes after narrow ones.
    fn sniff(&self, _probe: &Probe<'_>) -> bool {
        false
    }

    /// The channel this format's messages come from (`whatsapp`), also recognised as a folder name in
    /// paths; `None` for logs that can hold any channel.
    fn channel(&self) -> Option<&'static str> {
        Some(self.name())
    }

    /// Parses one object (or zip entry), already decompressed.
    fn parse(&self, data: &[u8], ctx: &ParseCtx<'_>, sink: &mut Sink<'_>) -> Result<()>;

    /// For exports that are a folder (or zip) of many files, like Slack's: the file names that mark the
    /// export's root folder. Empty for formats read one object at a time.
    fn folder_markers(&self) -> &'static [&'static str] {
        &[]
    }

    /// Parses a whole folder export; `files` carry paths relative to the export's root.
    fn parse_folder(
        &self,
        _files: &[ExportFile],
        _ctx: &ParseCtx<'_>,
        sink: &mut Sink<'_>,
    ) -> Result<()> {
        sink.bad_object(format!(
            "the '{}' format is read one object at a time, not as a folder",
            self.name()
        ))
    }

    /// Typical member paths of a folder export, used by fuzzing to lay arbitrary bytes out as one.
    fn folder_layout(&self) -> &'static [&'static str] {
        &[]
    }

    /// Whether a large uncompressed object may be read as byte ranges that each start at a line start.
    fn splits_by_line(&self) -> bool {
        false
    }

    /// Fixtures under `tests/fixtures/` in this format: the robustness test damages each of them and
    /// the fuzz corpus starts from them. Every format names at least one.
    fn samples(&self) -> &'static [&'static str];
}

/// What a sniffer sees of an object.
pub struct Probe<'a> {
    /// The object's path or zip entry name.
    pub path: &'a str,
    /// Its extension, lower case, without the dot; empty when it has none.
    pub ext: &'a str,
    /// The first 64 KiB as text (cut at a character boundary), without a byte-order mark.
    pub text: &'a str,
}

impl Probe<'_> {
    /// Whether the text starts like one JSON document (an object or an array).
    pub fn is_json_document(&self) -> bool {
        self.text.trim_start().starts_with(['{', '['])
    }
}

/// One file of a folder export, with its path relative to the export's root.
pub struct ExportFile {
    pub path: String,
    pub source: String,
    pub data: FileData,
}

/// A file's bytes, or a zip entry still compressed (expanded when the parser reaches it).
pub enum FileData {
    Ready(bytes::Bytes),
    Zipped(crate::container::ZipEntry),
}

impl FileData {
    pub fn load(&self) -> std::result::Result<bytes::Bytes, String> {
        match self {
            FileData::Ready(b) => Ok(b.clone()),
            FileData::Zipped(e) => e.read(),
        }
    }
}

impl From<bytes::Bytes> for FileData {
    fn from(b: bytes::Bytes) -> Self {
        FileData::Ready(b)
    }
}

/// A registered export format: a cheap handle onto its [`REGISTRY`] entry, compared by name.
#[derive(Clone, Copy)]
pub struct Format(&'static dyn ExportFormat);

impl Format {
    /// Every registered format, in sniffing order.
    pub fn all() -> impl Iterator<Item = Format> {
        REGISTRY.iter().map(|f| Format(*f))
    }

    /// The format with this name or alias (exact, lower case).
    pub fn named(name: &str) -> Option<Format> {
        Format::all().find(|f| f.name() == name || f.0.aliases().contains(&name))
    }

    /// The registered names, for error messages.
    pub fn names() -> String {
        Format::all()
            .map(Format::name)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Reads the `format` option: `None` for `auto`.
    pub fn from_option(s: &str) -> Result<Option<Format>> {
        let lower = s.trim().to_ascii_lowercase();
        if lower.is_empty() || lower == "auto" {
            return Ok(None);
        }
        Format::named(&lower).map(Some).ok_or_else(|| {
            FormatError::config(format!(
                "unknown archive format '{s}'; expected auto, {}",
                Format::names()
            ))
        })
    }

    /// The format whose folder exports a file of this name marks (`users.json` marks Slack's).
    pub fn marked_by(file_name: &str) -> Option<Format> {
        Format::all().find(|f| f.0.folder_markers().contains(&file_name))
    }

    pub fn name(self) -> &'static str {
        self.0.name()
    }

    /// The format's registry entry: its sniffer, parsers and samples.
    pub fn spec(self) -> &'static dyn ExportFormat {
        self.0
    }

    pub fn parse(self, data: &[u8], ctx: &ParseCtx<'_>, sink: &mut Sink<'_>) -> Result<()> {
        self.0.parse(data, ctx, sink)
    }

    pub fn parse_folder(
        self,
        files: &[ExportFile],
        ctx: &ParseCtx<'_>,
        sink: &mut Sink<'_>,
    ) -> Result<()> {
        self.0.parse_folder(files, ctx, sink)
    }

    pub fn is_folder_export(self) -> bool {
        !self.0.folder_markers().is_empty()
    }

    pub fn splits_by_line(self) -> bool {
        self.0.splits_by_line()
    }
}

impl PartialEq for Format {
    fn eq(&self, other: &Self) -> bool {
        self.name() == other.name()
    }
}

impl Eq for Format {}

impl PartialOrd for Format {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Format {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.name().cmp(other.name())
    }
}

impl Hash for Format {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name().hash(state);
    }
}

impl fmt::Debug for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a parser knows besides the bytes: the options and the name of the thing being read.
pub struct ParseCtx<'a> {
    pub options: &'a ArchiveOptions,
    /// The object (or container entry) name, e.g. `WhatsApp Chat with Ana.txt`, used where the format
    /// keeps the conversation's name in the file name.
    pub name: &'a str,
    /// The name of the outer object when `name` is an entry of a zip, e.g. `WhatsApp Chat - Ana.zip`.
    pub container: Option<&'a str>,
    /// The channel the object's path names (`channel=sms/` or a folder called `sms`), if any.
    pub default_channel: Option<&'a str>,
    /// The format's name, the channel of last resort for logs that name none.
    pub format_name: &'a str,
}

impl ParseCtx<'_> {
    /// The channel of every row: the `channel` option, else the format's own name for it.
    pub fn channel(&self, native: &str) -> String {
        self.options
            .channel
            .clone()
            .unwrap_or_else(|| native.to_string())
    }
}

/// Strips a UTF-8 byte-order mark, which Windows tools put at the start of exported text.
pub fn strip_bom(data: &[u8]) -> &[u8] {
    data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(data)
}

/// A cheap stand-in for fuzzing, run on every test: every parser over every prefix and many corrupted
/// copies of the fixtures must return (rows or an error), never panic.
#[cfg(test)]
mod robustness {
    use std::path::PathBuf;

    use super::*;
    use crate::options::OnError;
    use crate::sink::Sink;

    fn fixture(rel: &str) -> Vec<u8> {
        let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures")
            .join(rel);
        std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    fn variants(data: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let step = (data.len() / 150).max(1);
        for cut in (0..=data.len()).step_by(step) {
            out.push(data[..cut].to_vec());
        }
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        for _ in 0..300 {
            let mut d = data.to_vec();
            for _ in 0..3 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                if !d.is_empty() {
                    let i = (state as usize) % d.len();
                    d[i] = (state >> 32) as u8;
                }
            }
            out.push(d);
        }
        out
    }

    /// Lays damaged bytes out as the format's input: one object, or every member of a folder export.
    fn parse_damaged(
        format: Format,
        name: &str,
        data: &[u8],
        ctx: &ParseCtx<'_>,
        sink: &mut Sink<'_>,
    ) {
        let _ = if format.is_folder_export() {
            let files: Vec<ExportFile> = format
                .spec()
                .folder_layout()
                .iter()
                .map(|path| ExportFile {
                    path: (*path).to_string(),
                    source: format!("memory:///{path}"),
                    data: bytes::Bytes::copy_from_slice(data).into(),
                })
                .collect();
            format.parse_folder(&files, ctx, sink)
        } else {
            format.parse(data, ctx, sink)
        };
        let _ = crate::detect::detect(name, data);
    }

    fn run_all(format: Format, name: &str, data: &[u8]) {
        for on_error in [OnError::Skip, OnError::Fail] {
            let options = ArchiveOptions {
                on_error,
                ..ArchiveOptions::default()
            };
            for v in variants(data) {
                let mut emit = |_m: crate::message::Message, _: &str| Ok(());
                let mut sink = Sink::new("memory:///f", on_error, &mut emit);
                let ctx = ParseCtx {
                    options: &options,
                    name,
                    container: None,
                    default_channel: None,
                    format_name: format.name(),
                };
                parse_damaged(format, name, &v, &ctx, &mut sink);
            }
        }
    }

    #[test]
    fn parsers_never_panic_on_damaged_input() {
        for format in Format::all() {
            let samples = format.spec().samples();
            assert!(!samples.is_empty(), "format '{format}' names no samples");
            for rel in samples {
                let name = rel.rsplit('/').next().unwrap_or(rel);
                run_all(format, name, &fixture(rel));
            }
        }
    }

    /// Each format's samples are recognised as that format (or, for folder exports, mark one), so the
    /// registry's sniffers and the fixtures agree.
    #[test]
    fn samples_are_detected_as_their_format() {
        for format in Format::all() {
            if format.is_folder_export() {
                continue;
            }
            for rel in format.spec().samples() {
                let got = crate::detect::detect(rel, &fixture(rel));
                assert_eq!(got.map(Format::name), Ok(format.name()), "{rel}");
            }
        }
    }

    #[test]
    fn names_and_aliases_resolve() {
        for format in Format::all() {
            assert_eq!(
                Format::from_option(format.name()).ok().flatten(),
                Some(format)
            );
            for alias in format.spec().aliases() {
                assert_eq!(
                    Format::from_option(alias).ok().flatten(),
                    Some(format),
                    "{alias}"
                );
            }
        }
        assert_eq!(Format::from_option("AUTO").ok().flatten(), None);
        let err = Format::from_option("fax").expect_err("unknown").to_string();
        assert!(err.contains("expected auto, whatsapp, slack"), "{err}");
        assert_eq!(
            Format::marked_by("users.json").map(Format::name),
            Some("slack")
        );
    }

    #[test]
    fn containers_never_panic_on_damaged_input() {
        for f in [
            "mixed/slack-export.zip",
            "mixed/sms.csv.gz",
            "mixed/webchat.jsonl.bz2",
        ] {
            for v in variants(&fixture(f)) {
                let data = bytes::Bytes::from(v);
                if let Ok(entries) = crate::container::zip_entries(data.clone()) {
                    for e in entries {
                        let _ = e.read();
                    }
                }
                for c in [
                    crate::container::Compression::Gzip,
                    crate::container::Compression::Bzip2,
                    crate::container::Compression::Zstd,
                ] {
                    let _ = crate::container::decompress(data.clone(), c);
                }
            }
        }
    }

    #[test]
    fn zstd_round_trip() {
        let original = fixture("csv/sms.csv");
        let packed = zstd::encode_all(&original[..], 3).expect("compress");
        let unpacked = crate::container::decompress(
            bytes::Bytes::from(packed),
            crate::container::Compression::Zstd,
        )
        .expect("decompress");
        assert_eq!(&unpacked[..], &original[..]);
    }
}
