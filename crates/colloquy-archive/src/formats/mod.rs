//! One parser per export format. Each reads bytes already taken out of their container and decompressed.

pub mod csv;
pub mod jsonl;
pub mod slack;
pub mod whatsapp;

mod fields;

use std::fmt;

use crate::error::{ArchiveError, Result};
use crate::options::ArchiveOptions;

/// The export formats `read_archive` and `STORED AS ARCHIVE` understand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Whatsapp,
    Slack,
    Jsonl,
    Csv,
}

impl Format {
    pub const ALL: [Format; 4] = [Format::Whatsapp, Format::Slack, Format::Jsonl, Format::Csv];

    pub fn name(self) -> &'static str {
        match self {
            Format::Whatsapp => "whatsapp",
            Format::Slack => "slack",
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
            other => other,
        };
        Format::ALL
            .into_iter()
            .find(|f| f.name() == alias)
            .map(Some)
            .ok_or_else(|| {
                ArchiveError::config(format!(
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

/// Strips a UTF-8 byte-order mark, which Windows tools put at the start of exported text.
pub fn strip_bom(data: &[u8]) -> &[u8] {
    data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(data)
}
