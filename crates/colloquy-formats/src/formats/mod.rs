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

use crate::error::{FormatError, Result};
use crate::options::ArchiveOptions;

/// The export formats `read_archive` and `STORED AS ARCHIVE` understand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Whatsapp,
    Slack,
    Telegram,
    Discord,
    Messenger,
    Instagram,
    Teams,
    Jsonl,
    Csv,
}

impl Format {
    pub const ALL: [Format; 9] = [
        Format::Whatsapp,
        Format::Slack,
        Format::Telegram,
        Format::Discord,
        Format::Messenger,
        Format::Instagram,
        Format::Teams,
        Format::Jsonl,
        Format::Csv,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Format::Whatsapp => "whatsapp",
            Format::Slack => "slack",
            Format::Telegram => "telegram",
            Format::Discord => "discord",
            Format::Messenger => "messenger",
            Format::Instagram => "instagram",
            Format::Teams => "teams",
            Format::Jsonl => "jsonl",
            Format::Csv => "csv",
        }
    }

    /// `None` for `auto`.
    pub fn parse(s: &str) -> Result<Option<Format>> {
        let lower = s.trim().to_ascii_lowercase();
        if lower.is_empty() || lower == "auto" {
            return Ok(None);
        }
        let alias = match lower.as_str() {
            "ndjson" | "json_lines" | "jsonlines" => "jsonl",
            "tsv" => "csv",
            "facebook" => "messenger",
            "msteams" | "microsoft_teams" => "teams",
            other => other,
        };
        Format::ALL
            .into_iter()
            .find(|f| f.name() == alias)
            .map(Some)
            .ok_or_else(|| {
                FormatError::config(format!(
                    "unknown archive format '{s}'; expected auto, {}",
                    Format::ALL.map(Format::name).join(", ")
                ))
            })
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
                let _ = match format {
                    Format::Whatsapp => whatsapp::parse(&v, &ctx, &mut sink),
                    Format::Jsonl => jsonl::parse(&v, &ctx, &mut sink),
                    Format::Telegram => telegram::parse(&v, &ctx, &mut sink),
                    Format::Discord => discord::parse(&v, &ctx, &mut sink),
                    Format::Messenger | Format::Instagram => {
                        messenger::parse(&v, &ctx, &mut sink, "messenger")
                    }
                    Format::Teams => teams::parse(&v, &ctx, &mut sink),
                    Format::Csv => csv::parse(&v, &ctx, &mut sink),
                    Format::Slack => {
                        let files = vec![
                            slack::SlackFile {
                                path: "users.json".into(),
                                source: "u".into(),
                                data: bytes::Bytes::from(v.clone()).into(),
                            },
                            slack::SlackFile {
                                path: "general/2025-01-01.json".into(),
                                source: "g".into(),
                                data: bytes::Bytes::from(v).into(),
                            },
                        ];
                        slack::parse(&files, &ctx, &mut sink)
                    }
                };
                let _ = crate::detect::detect(name, data);
            }
        }
    }

    #[test]
    fn parsers_never_panic_on_damaged_input() {
        for f in [
            "WhatsApp Chat with Dana Ortiz.txt",
            "WhatsApp Chat with Jonas Weber.txt",
            "WhatsApp Chat with Lea.txt",
        ] {
            run_all(Format::Whatsapp, f, &fixture(&format!("whatsapp/{f}")));
        }
        run_all(
            Format::Jsonl,
            "webchat.jsonl",
            &fixture("jsonl/webchat.jsonl"),
        );
        run_all(Format::Csv, "sms.csv", &fixture("csv/sms.csv"));
        run_all(
            Format::Slack,
            "users.json",
            &fixture("slack_folder/users.json"),
        );
        run_all(
            Format::Slack,
            "day.json",
            &fixture("slack_folder/ext-globex/2025-02-03.json"),
        );
        run_all(
            Format::Telegram,
            "result.json",
            &fixture("telegram/result.json"),
        );
        run_all(
            Format::Telegram,
            "result.json",
            &fixture("telegram/account/result.json"),
        );
        run_all(
            Format::Discord,
            "d.json",
            &fixture("discord/Acme Community - support [991].json"),
        );
        run_all(
            Format::Messenger,
            "message_1.json",
            &fixture("social/messenger/inbox/anasilva_123/message_1.json"),
        );
        run_all(Format::Teams, "t.json", &fixture("teams/support-chat.json"));
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
