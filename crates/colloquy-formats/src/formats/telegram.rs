//! Telegram Desktop "Export chat history" / "Export Telegram data" JSON (`result.json`): a single chat, or a
//! whole account with `chats.list[]` (and `left_chats.list[]`). Text is a string or an array of entity
//! objects, joined; service messages are `system` rows; media become attachments.

use serde_json::Value as Json;

use super::json_doc::{parse_document, str_of, text_of};
use super::{ExportFormat, ParseCtx, Probe};
use crate::error::Result;
use crate::message::{Message, Role};
use crate::sink::Sink;
use crate::time::{parse_timestamp, truncate};

/// Telegram Desktop's JSON export (`result.json`).
pub struct Telegram;

impl ExportFormat for Telegram {
    fn name(&self) -> &'static str {
        "telegram"
    }

    fn sniff(&self, probe: &Probe<'_>) -> bool {
        probe.is_json_document() && sniff(probe.text)
    }

    fn parse(&self, data: &[u8], ctx: &ParseCtx<'_>, sink: &mut Sink<'_>) -> Result<()> {
        parse(data, ctx, sink)
    }

    fn samples(&self) -> &'static [&'static str] {
        &[
            "telegram/result.json",
            "telegram/account/result.json",
            "telegram/fractional/result.json",
        ]
    }
}

/// Does a JSON document's head look like a Telegram export?
pub fn sniff(head: &str) -> bool {
    head.contains("\"date_unixtime\"")
        || (head.contains("\"messages\"")
            && [
                "\"personal_chat\"",
                "\"private_group\"",
                "\"private_supergroup\"",
                "\"public_supergroup\"",
                "\"saved_messages\"",
                "\"bot_chat\"",
            ]
            .iter()
            .any(|t| head.contains(t)))
}

pub fn parse(data: &[u8], ctx: &ParseCtx<'_>, sink: &mut Sink<'_>) -> Result<()> {
    let Some(doc) = parse_document::<Json>(data, sink)? else {
        return Ok(());
    };
    let channel = ctx.channel("telegram");
    let mut chats: Vec<&Json> = Vec::new();
    for key in ["chats", "left_chats"] {
        if let Some(list) = doc
            .get(key)
            .and_then(|c| c.get("list"))
            .and_then(Json::as_array)
        {
            chats.extend(list.iter());
        }
    }
    if chats.is_empty() {
        if doc.get("messages").is_some() {
            chats.push(&doc);
        } else {
            return sink.bad_object("not a Telegram export: no 'messages' and no 'chats.list'");
        }
    }
    let mut record = 0u64;
    for (chat_no, chat) in chats.iter().enumerate() {
        let conversation = str_of(chat, "name")
            .map(str::to_string)
            .or_else(|| text_of(chat, "id"))
            .unwrap_or_else(|| format!("chat {}", chat_no + 1));
        let Some(messages) = chat.get("messages").and_then(Json::as_array) else {
            record += 1;
            sink.bad_record(
                record,
                None,
                format!(
                    "chat '{}' has no 'messages' array",
                    truncate(&conversation, 40)
                ),
            )?;
            continue;
        };
        for m in messages {
            record += 1;
            match message(m, ctx, &channel, &conversation, record) {
                Ok(Some(msg)) => sink.push(msg)?,
                Ok(None) => {}
                Err(reason) => sink.bad_record(
                    record,
                    None,
                    format!("message {}: {reason}", text_of(m, "id").unwrap_or_default()),
                )?,
            }
        }
    }
    Ok(())
}

/// Telegram's text: a string, or an array of strings and `{type, text}` entities.
fn joined_text(v: Option<&Json>) -> Option<String> {
    let s = match v? {
        Json::String(s) => s.clone(),
        Json::Array(parts) => parts
            .iter()
            .map(|p| match p {
                Json::String(s) => s.as_str(),
                other => other.get("text").and_then(Json::as_str).unwrap_or(""),
            })
            .collect(),
        _ => return None,
    };
    Some(s).filter(|s| !s.is_empty())
}

fn message(
    m: &Json,
    ctx: &ParseCtx<'_>,
    channel: &str,
    conversation: &str,
    record: u64,
) -> std::result::Result<Option<Message>, String> {
    if !m.is_object() {
        return Err("expected a JSON object".into());
    }
    let kind = str_of(m, "type").unwrap_or("message");
    // Prefer the exact instant; `date` is the exporting computer's local time without a zone.
    let ts = match text_of(m, "date_unixtime") {
        Some(u) => Some(
            u.parse::<i64>()
                .map_err(|_| format!("invalid date_unixtime '{}'", truncate(&u, 20)))?
                * 1_000_000,
        ),
        // Telegram Desktop writes local time without a zone; other tools write RFC 3339 (fractions, `Z`,
        // offsets): every variant reads, the zoneless one in the archive's timezone.
        None => match str_of(m, "date") {
            Some(d) => Some(
                parse_timestamp(d, ctx.options.timezone, None)
                    .map_err(|e| format!("invalid date: {e}"))?,
            ),
            None => None,
        },
    };
    let (sender_id, sender_name) = if kind == "service" {
        (
            text_of(m, "actor_id"),
            str_of(m, "actor").map(str::to_string),
        )
    } else {
        (text_of(m, "from_id"), str_of(m, "from").map(str::to_string))
    };
    let role = if kind == "service" {
        Role::System
    } else if m.get("via_bot").is_some() {
        Role::Bot
    } else {
        ctx.options
            .roles
            .classify(sender_id.as_deref(), sender_name.as_deref())
    };
    let mut text = joined_text(m.get("text"));
    if kind == "service" && text.is_none() {
        // Service messages carry their meaning in `action` ("create_group", "invite_members", ...).
        text = str_of(m, "action").map(|a| a.replace('_', " "));
    }
    let mut attachments = Vec::new();
    for key in ["photo", "file", "thumbnail"] {
        if let Some(f) = str_of(m, key) {
            attachments.push(f.rsplit('/').next().unwrap_or(f).to_string());
        }
    }
    if attachments.is_empty()
        && let Some(kind) = str_of(m, "media_type")
            .or_else(|| m.get("contact_information").map(|_| "contact"))
            .or_else(|| m.get("location_information").map(|_| "location"))
    {
        attachments.push(kind.to_string());
    }
    Ok(Some(Message {
        channel: channel.to_string(),
        conversation_id: conversation.to_string(),
        message_id: text_of(m, "id"),
        ts,
        sender_id,
        sender_name,
        role,
        text,
        reply_to: text_of(m, "reply_to_message_id"),
        attachments,
        source_line: record,
    }))
}
