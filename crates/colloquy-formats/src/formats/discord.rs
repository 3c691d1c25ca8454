//! DiscordChatExporter JSON: `guild`, `channel` and `messages[]` with authors (bots flagged), nicknames,
//! timestamps with offsets, edits, attachments and replies. Anything but an ordinary message or reply
//! (joins, pins, calls, channel changes) is a `system` row.

use serde_json::Value as Json;

use super::json_doc::{names_in, parse_document, str_of, text_of};
use super::{ExportFormat, ParseCtx, Probe};
use crate::error::Result;
use crate::message::{Message, Role};
use crate::sink::Sink;
use crate::time::parse_timestamp;

/// Message types people write; every other type is a notice.
const SPOKEN: &[&str] = &[
    "Default",
    "Reply",
    "ThreadStarterMessage",
    "ChatInputCommand",
    "ContextMenuCommand",
];

/// DiscordChatExporter's JSON.
pub struct Discord;

impl ExportFormat for Discord {
    fn name(&self) -> &'static str {
        "discord"
    }

    fn sniff(&self, probe: &Probe<'_>) -> bool {
        probe.is_json_document() && sniff(probe.text)
    }

    fn parse(&self, data: &[u8], ctx: &ParseCtx<'_>, sink: &mut Sink<'_>) -> Result<()> {
        parse(data, ctx, sink)
    }

    fn samples(&self) -> &'static [&'static str] {
        &["discord/Acme Community - support [991].json"]
    }
}

pub fn sniff(head: &str) -> bool {
    head.contains("\"guild\"") && head.contains("\"channel\"") && head.contains("\"messages\"")
}

pub fn parse(data: &[u8], ctx: &ParseCtx<'_>, sink: &mut Sink<'_>) -> Result<()> {
    let Some(doc) = parse_document::<Json>(data, sink)? else {
        return Ok(());
    };
    let channel = ctx.channel("discord");
    let Some(messages) = doc.get("messages").and_then(Json::as_array) else {
        return sink.bad_object("not a DiscordChatExporter export: no 'messages' array");
    };
    let chan = doc.get("channel");
    let conversation = chan
        .and_then(|c| str_of(c, "name"))
        .map(str::to_string)
        .or_else(|| chan.and_then(|c| text_of(c, "id")))
        .unwrap_or_else(|| super::fields::file_stem(ctx.name));
    for (i, m) in messages.iter().enumerate() {
        let record = i as u64 + 1;
        match message(m, ctx, &channel, &conversation, record) {
            Ok(msg) => sink.push(msg)?,
            Err(reason) => sink.bad_record(record, None, format!("message {record}: {reason}"))?,
        }
    }
    Ok(())
}

fn message(
    m: &Json,
    ctx: &ParseCtx<'_>,
    channel: &str,
    conversation: &str,
    record: u64,
) -> std::result::Result<Message, String> {
    if !m.is_object() {
        return Err("expected a JSON object".into());
    }
    let ts = match str_of(m, "timestamp") {
        Some(t) => Some(parse_timestamp(t, ctx.options.timezone, None)?),
        None => None,
    };
    let author = m.get("author");
    let sender_id = author.and_then(|a| text_of(a, "id"));
    let sender_name = author
        .and_then(|a| str_of(a, "nickname").or_else(|| str_of(a, "name")))
        .map(str::to_string);
    let kind = str_of(m, "type").unwrap_or("Default");
    let role = if !SPOKEN.contains(&kind) {
        Role::System
    } else if author.and_then(|a| a.get("isBot")).and_then(Json::as_bool) == Some(true) {
        Role::Bot
    } else {
        ctx.options
            .roles
            .classify(sender_id.as_deref(), sender_name.as_deref())
    };
    let mut text = str_of(m, "content").map(str::to_string);
    if text.is_none() && !SPOKEN.contains(&kind) {
        text = Some(kind.to_string());
    }
    let mut attachments = names_in(m, "attachments", &["fileName", "url"]);
    attachments.extend(
        names_in(m, "stickers", &["name"])
            .into_iter()
            .map(|n| format!("sticker:{n}")),
    );
    Ok(Message {
        channel: channel.to_string(),
        conversation_id: conversation.to_string(),
        message_id: text_of(m, "id"),
        ts,
        sender_id,
        sender_name,
        role,
        text,
        reply_to: m.get("reference").and_then(|r| text_of(r, "messageId")),
        attachments,
        source_line: record,
    })
}
