//! Microsoft Teams messages in the Graph API's `chatMessage` shape: a JSON array, or a Graph page
//! `{"value": [...]}`; and the same messages as the Teams export API and eDiscovery write them
//! (`TeamsDataExport`: one array per channel, PascalCase keys such as `Body.Content`, `CreatedDateTime`,
//! `From.User.DisplayName`, `ChannelIdentity`). HTML bodies become text (mentions kept as their names),
//! replies point at their parent, applications are bots and `systemEventMessage`s are system rows.

use serde_json::Value as Json;

use super::json_doc::{names_in, parse_document, str_of, text_of};
use super::{ExportFormat, ParseCtx, Probe};
use crate::error::Result;
use crate::message::{Message, Role};
use crate::sink::Sink;
use crate::time::parse_timestamp;

/// Microsoft Teams messages (Graph `chatMessage`, export API, eDiscovery).
pub struct Teams;

impl ExportFormat for Teams {
    fn name(&self) -> &'static str {
        "teams"
    }

    fn aliases(&self) -> &'static [&'static str] {
        &["msteams", "microsoft_teams"]
    }

    fn sniff(&self, probe: &Probe<'_>) -> bool {
        probe.is_json_document() && sniff(probe.text)
    }

    fn parse(&self, data: &[u8], ctx: &ParseCtx<'_>, sink: &mut Sink<'_>) -> Result<()> {
        parse(data, ctx, sink)
    }

    fn samples(&self) -> &'static [&'static str] {
        &["teams/support-chat.json", "teams/export-api/General.json"]
    }
}

pub fn sniff(head: &str) -> bool {
    (head.contains("\"createdDateTime\"")
        && (head.contains("\"messageType\"")
            || head.contains("\"chatId\"")
            || head.contains("\"body\"")))
        || (head.contains("\"CreatedDateTime\"")
            && (head.contains("\"MessageType\"")
                || head.contains("\"ChannelIdentity\"")
                || head.contains("\"Body\"")))
}

/// The export API's PascalCase keys as the Graph API's camelCase ones (`ChannelIdentity.ChannelId` →
/// `channelIdentity.channelId`), so that one reader serves both.
fn camel_case_keys(v: Json) -> Json {
    match v {
        Json::Object(o) => Json::Object(
            o.into_iter()
                .map(|(k, v)| {
                    let mut chars = k.chars();
                    let key = match chars.next() {
                        Some(first) if first.is_ascii_uppercase() => {
                            first.to_ascii_lowercase().to_string() + chars.as_str()
                        }
                        _ => k,
                    };
                    (key, camel_case_keys(v))
                })
                .collect(),
        ),
        Json::Array(a) => Json::Array(a.into_iter().map(camel_case_keys).collect()),
        other => other,
    }
}

pub fn parse(data: &[u8], ctx: &ParseCtx<'_>, sink: &mut Sink<'_>) -> Result<()> {
    let Some(doc) = parse_document::<Json>(data, sink)? else {
        return Ok(());
    };
    let doc = camel_case_keys(doc);
    let channel = ctx.channel("teams");
    let list = match &doc {
        Json::Array(a) => a,
        Json::Object(o) => match o.get("value").or_else(|| o.get("messages")) {
            Some(Json::Array(a)) => a,
            _ => return sink.bad_object("not a Teams export: expected an array of chatMessage objects or {\"value\": [...]}"),
        },
        _ => return sink.bad_object("not a Teams export: expected a JSON array or object"),
    };
    let default_conversation = super::fields::file_stem(ctx.name);
    for (i, m) in list.iter().enumerate() {
        let record = i as u64 + 1;
        if !m.is_object() {
            sink.bad_record(record, None, "expected a chatMessage object")?;
            continue;
        }
        let ts = match str_of(m, "createdDateTime") {
            Some(t) => match parse_timestamp(t, ctx.options.timezone, None) {
                Ok(v) => Some(v),
                Err(e) => {
                    sink.bad_record(record, None, format!("createdDateTime: {e}"))?;
                    continue;
                }
            },
            None => None,
        };
        let from = m.get("from");
        let user = from.and_then(|f| f.get("user")).filter(|u| !u.is_null());
        let app = from
            .and_then(|f| f.get("application"))
            .filter(|a| !a.is_null());
        let who = user.or(app);
        let sender_id = who.and_then(|w| text_of(w, "id"));
        let sender_name = who
            .and_then(|w| str_of(w, "displayName"))
            .map(str::to_string);
        let role = if str_of(m, "messageType").is_some_and(|t| !t.eq_ignore_ascii_case("message")) {
            Role::System
        } else if app.is_some() && user.is_none() {
            Role::Bot
        } else {
            ctx.options
                .roles
                .classify(sender_id.as_deref(), sender_name.as_deref())
        };
        let body = m.get("body");
        let content = body.and_then(|b| str_of(b, "content")).unwrap_or("");
        let is_html = body
            .and_then(|b| str_of(b, "contentType"))
            .is_none_or(|t| t.eq_ignore_ascii_case("html"));
        let text = if is_html {
            html_to_text(content)
        } else {
            content.to_string()
        };
        let deleted = m.get("deletedDateTime").is_some_and(|d| !d.is_null());
        let attachments = names_in(m, "attachments", &["name", "contentType"]);
        let conversation = str_of(m, "chatId")
            .map(str::to_string)
            .or_else(|| {
                m.get("channelIdentity")
                    .and_then(|c| str_of(c, "channelId"))
                    .map(str::to_string)
            })
            .unwrap_or_else(|| default_conversation.clone());
        sink.push(Message {
            channel: channel.clone(),
            conversation_id: conversation,
            message_id: text_of(m, "id"),
            ts,
            sender_id,
            sender_name,
            role,
            text: Some(text).filter(|t| !t.is_empty() && !deleted),
            reply_to: text_of(m, "replyToId"),
            attachments,
            source_line: record,
        })?;
    }
    Ok(())
}

/// Teams HTML to plain text: tags dropped (block tags and `<br>` become line breaks), the common entities
/// decoded, whitespace runs inside a line collapsed.
pub fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find('>') else {
            out.push_str(&rest[start..]);
            rest = "";
            break;
        };
        let tag = rest[start + 1..start + end]
            .trim()
            .trim_start_matches('/')
            .to_ascii_lowercase();
        let name = tag
            .split(|c: char| c.is_whitespace() || c == '/')
            .next()
            .unwrap_or("");
        if matches!(name, "br" | "p" | "div" | "li" | "tr")
            && !out.ends_with('\n')
            && !out.is_empty()
        {
            out.push('\n');
        }
        rest = &rest[start + end + 1..];
    }
    out.push_str(rest);
    let decoded = decode_entities(&out);
    decoded
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

fn decode_entities(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let end = tail.find(';').filter(|e| *e <= 10);
        let decoded = end.and_then(|e| {
            let ent = &tail[1..e];
            let c = match ent {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" | "#39" => Some('\''),
                "nbsp" => Some(' '),
                _ => {
                    let num = ent.strip_prefix('#')?;
                    let code = match num.strip_prefix(['x', 'X']) {
                        Some(h) => u32::from_str_radix(h, 16).ok()?,
                        None => num.parse().ok()?,
                    };
                    char::from_u32(code)
                }
            }?;
            Some((c, e + 1))
        });
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &tail[len..];
            }
            None => {
                out.push('&');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html() {
        assert_eq!(
            html_to_text(
                "<div><div>Hi <at id=\"0\">Megan Bowen</at>,&nbsp;order &#35;12 &amp; more<br>next line</div></div>"
            ),
            "Hi Megan Bowen, order #12 & more\nnext line"
        );
        assert_eq!(
            html_to_text("<p>a</p><p>b &lt;3 &#x1F600;</p>"),
            "a\nb <3 😀"
        );
        assert_eq!(html_to_text("5 < 6 & unclosed"), "5 < 6 & unclosed");
    }
}
