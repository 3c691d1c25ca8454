//! Facebook Messenger and Instagram "Download your information" JSON (`message_1.json`, newest first):
//! `participants`, `messages[]` with `sender_name`, `timestamp_ms`, `content`, media lists and reactions.
//! Their strings are UTF-8 bytes written as `\u00XX` code points ("mojibake"); they are repaired here.

use serde_json::Value as Json;

use super::json_doc::{parse_document, str_of};
use super::{ExportFormat, ParseCtx, Probe};
use crate::error::Result;
use crate::message::{Message, Role};
use crate::sink::Sink;
use crate::time::epoch_to_micros;

/// Facebook Messenger's "Download your information" JSON.
pub struct Messenger;

/// Instagram's, the same shape; told from Messenger's by its path (or the `format` option).
pub struct Instagram;

fn is_instagram(path: &str) -> bool {
    path.to_ascii_lowercase().contains("instagram")
}

impl ExportFormat for Messenger {
    fn name(&self) -> &'static str {
        "messenger"
    }

    fn aliases(&self) -> &'static [&'static str] {
        &["facebook"]
    }

    fn sniff(&self, probe: &Probe<'_>) -> bool {
        probe.is_json_document() && sniff(probe.text) && !is_instagram(probe.path)
    }

    fn parse(&self, data: &[u8], ctx: &ParseCtx<'_>, sink: &mut Sink<'_>) -> Result<()> {
        parse(data, ctx, sink, "messenger")
    }

    fn samples(&self) -> &'static [&'static str] {
        &["social/messenger/inbox/anasilva_123/message_1.json"]
    }
}

impl ExportFormat for Instagram {
    fn name(&self) -> &'static str {
        "instagram"
    }

    fn sniff(&self, probe: &Probe<'_>) -> bool {
        probe.is_json_document() && sniff(probe.text) && is_instagram(probe.path)
    }

    fn parse(&self, data: &[u8], ctx: &ParseCtx<'_>, sink: &mut Sink<'_>) -> Result<()> {
        parse(data, ctx, sink, "instagram")
    }

    fn samples(&self) -> &'static [&'static str] {
        &["social/your_instagram_activity/messages/inbox/acmeshop_456/message_1.json"]
    }
}

pub fn sniff(head: &str) -> bool {
    head.contains("\"timestamp_ms\"") && head.contains("\"sender_name\"")
}

/// Undoes the export's encoding bug: each UTF-8 byte was written as one code point U+0000..U+00FF. Text
/// that has a character above U+00FF, or whose bytes are not valid UTF-8, was not mangled and is kept.
pub fn repair_mojibake(s: &str) -> String {
    if s.is_ascii() || s.chars().any(|c| c as u32 > 0xFF) {
        return s.to_string();
    }
    let bytes: Vec<u8> = s.chars().map(|c| c as u32 as u8).collect();
    String::from_utf8(bytes).unwrap_or_else(|_| s.to_string())
}

fn fixed(v: &Json, key: &str) -> Option<String> {
    str_of(v, key).map(repair_mojibake)
}

pub fn parse(
    data: &[u8],
    ctx: &ParseCtx<'_>,
    sink: &mut Sink<'_>,
    default_channel: &str,
) -> Result<()> {
    let Some(doc) = parse_document::<Json>(data, sink)? else {
        return Ok(());
    };
    let channel = ctx.channel(default_channel);
    let Some(messages) = doc.get("messages").and_then(Json::as_array) else {
        return sink.bad_object("not a Messenger/Instagram export: no 'messages' array");
    };
    // The thread's folder (`inbox/anasilva_123`) is its stable id; the title can change.
    let conversation = fixed(&doc, "thread_path")
        .or_else(|| fixed(&doc, "title"))
        .unwrap_or_else(|| {
            let dir = ctx.name.rsplit_once('/').map_or("", |(d, _)| d);
            let dir = dir.rsplit('/').next().unwrap_or(dir);
            if dir.is_empty() {
                super::fields::file_stem(ctx.name)
            } else {
                dir.to_string()
            }
        });
    for (i, m) in messages.iter().enumerate() {
        let record = i as u64 + 1;
        if !m.is_object() {
            sink.bad_record(record, None, "expected a JSON object")?;
            continue;
        }
        let ts = match m.get("timestamp_ms").and_then(Json::as_f64) {
            None => None,
            Some(ms) => match epoch_to_micros(ms / 1000.0) {
                Some(t) => Some(t),
                None => {
                    sink.bad_record(record, None, format!("timestamp_ms {ms} is out of range"))?;
                    continue;
                }
            },
        };
        let sender = fixed(m, "sender_name");
        let kind = str_of(m, "type").unwrap_or("Generic");
        let role = match kind {
            "Subscribe" | "Unsubscribe" | "Call" => Role::System,
            _ => ctx
                .options
                .roles
                .classify(sender.as_deref(), sender.as_deref()),
        };
        let mut attachments = Vec::new();
        for key in ["photos", "videos", "audio_files", "files", "gifs"] {
            if let Some(list) = m.get(key).and_then(Json::as_array) {
                for item in list {
                    if let Some(uri) = str_of(item, "uri") {
                        attachments.push(uri.rsplit('/').next().unwrap_or(uri).to_string());
                    }
                }
            }
        }
        if let Some(uri) = m.get("sticker").and_then(|s| str_of(s, "uri")) {
            attachments.push(uri.rsplit('/').next().unwrap_or(uri).to_string());
        }
        let mut text = fixed(m, "content");
        if text.is_none()
            && let Some(link) = m.get("share").and_then(|s| fixed(s, "link"))
        {
            text = Some(link);
        }
        sink.push(Message {
            channel: channel.clone(),
            conversation_id: conversation.clone(),
            message_id: None,
            ts,
            sender_id: sender.clone(),
            sender_name: sender,
            role,
            text,
            reply_to: None,
            attachments,
            source_line: record,
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mojibake() {
        // "café 😀" as the export writes it: each UTF-8 byte a code point.
        assert_eq!(
            repair_mojibake("caf\u{00c3}\u{00a9} \u{00f0}\u{009f}\u{0098}\u{0080}"),
            "café 😀"
        );
        assert_eq!(repair_mojibake("plain"), "plain");
        // Genuine Latin-1-range text that is not UTF-8 bytes stays as it is.
        assert_eq!(repair_mojibake("d\u{00e9}j\u{00e0}"), "d\u{00e9}j\u{00e0}");
        assert_eq!(repair_mojibake("日本"), "日本");
    }
}
