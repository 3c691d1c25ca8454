//! Slack workspace export (`.zip` or unpacked folder): `users.json`, `channels.json`, `groups.json`,
//! `dms.json`, `mpims.json` and one folder per conversation holding a JSON array per day.
//! Each channel (or DM) is a conversation; thread replies point at their parent through `reply_to`.

use std::collections::HashMap;

use serde::Deserialize;

use super::flat_json::Json;
use super::json_doc::parse_document;
use super::{ExportFile, ExportFormat, ParseCtx};
use crate::error::Result;
use crate::message::{Message, Role};
use crate::sink::Sink;

/// Expands a file; a file that cannot be read is a bad object (skipped under `on_error 'skip'`).
fn load(f: &ExportFile, sink: &mut Sink<'_>) -> Result<Option<bytes::Bytes>> {
    match f.data.load() {
        Ok(d) => Ok(Some(d)),
        Err(e) => {
            sink.bad_object(e)?;
            Ok(None)
        }
    }
}

/// Slack's workspace export, a `.zip` or an unpacked folder.
pub struct Slack;

impl ExportFormat for Slack {
    fn name(&self) -> &'static str {
        "slack"
    }

    /// A single file of a Slack export means nothing without the rest.
    fn parse(&self, _data: &[u8], _ctx: &ParseCtx<'_>, sink: &mut Sink<'_>) -> Result<()> {
        sink.bad_object(
            "the 'slack' format reads a Slack export .zip or folder (with users.json and channels.json), not a single file",
        )
    }

    fn folder_markers(&self) -> &'static [&'static str] {
        MARKERS
    }

    fn parse_folder(
        &self,
        files: &[ExportFile],
        ctx: &ParseCtx<'_>,
        sink: &mut Sink<'_>,
    ) -> Result<()> {
        parse(files, ctx, sink)
    }

    fn folder_layout(&self) -> &'static [&'static str] {
        &["users.json", "general/2025-01-01.json", "channels.json"]
    }

    fn samples(&self) -> &'static [&'static str] {
        &[
            "slack_folder/users.json",
            "slack_folder/ext-globex/2025-02-03.json",
        ]
    }
}

/// The metadata files that mark a folder or zip as a Slack export.
pub const MARKERS: &[&str] = &[
    "users.json",
    "channels.json",
    "groups.json",
    "dms.json",
    "mpims.json",
];

/// Message subtypes that are notices about the conversation rather than something someone said.
const SYSTEM_SUBTYPES: &[&str] = &[
    "channel_join",
    "channel_leave",
    "channel_topic",
    "channel_purpose",
    "channel_name",
    "channel_archive",
    "channel_unarchive",
    "group_join",
    "group_leave",
    "group_topic",
    "group_purpose",
    "group_name",
    "group_archive",
    "group_unarchive",
    "pinned_item",
    "unpinned_item",
    "reminder_add",
    "huddle_thread",
    "channel_canvas_updated",
];

#[derive(Deserialize, Default)]
struct Profile {
    #[serde(default)]
    real_name: Option<String>,
    #[serde(default)]
    display_name: Option<String>,
}

#[derive(Deserialize)]
struct User {
    id: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    real_name: Option<String>,
    #[serde(default)]
    profile: Option<Profile>,
    #[serde(default)]
    is_bot: bool,
}

#[derive(Deserialize)]
struct Conversation {
    id: String,
    #[serde(default)]
    name: Option<String>,
}

struct Person {
    /// The most human name users.json has (real name, else display name); `None` when it has only a handle.
    name: Option<String>,
    handle: Option<String>,
    is_bot: bool,
}

pub fn parse(files: &[ExportFile], ctx: &ParseCtx<'_>, sink: &mut Sink<'_>) -> Result<()> {
    let channel = ctx.channel("slack");
    let by_path: HashMap<&str, &ExportFile> = files.iter().map(|f| (f.path.as_str(), f)).collect();

    let mut people: HashMap<String, Person> = HashMap::new();
    if let Some(f) = by_path.get("users.json") {
        sink.set_source(f.source.clone())?;
        let data = load(f, sink)?;
        match data.map(|d| serde_json::from_slice::<Vec<User>>(super::strip_bom(&d))) {
            None => {}
            Some(Ok(users)) => {
                for u in users {
                    let profile = u.profile.unwrap_or_default();
                    let name = [u.real_name, profile.real_name, profile.display_name]
                        .into_iter()
                        .flatten()
                        .find(|n| !n.trim().is_empty());
                    people.insert(
                        u.id,
                        Person {
                            name,
                            handle: u.name,
                            is_bot: u.is_bot,
                        },
                    );
                }
            }
            Some(Err(e)) => sink.bad_record(
                e.line() as u64,
                Some(e.column() as u64),
                format!("users.json: {e}"),
            )?,
        }
    }
    // Folder name → conversation id. Channels are stored by name, DMs by id.
    let mut folders: HashMap<String, String> = HashMap::new();
    for meta in ["channels.json", "groups.json", "mpims.json", "dms.json"] {
        let Some(f) = by_path.get(meta) else { continue };
        sink.set_source(f.source.clone())?;
        let Some(data) = load(f, sink)? else { continue };
        match serde_json::from_slice::<Vec<Conversation>>(super::strip_bom(&data)) {
            Ok(list) => {
                for c in list {
                    let folder = c.name.clone().unwrap_or_else(|| c.id.clone());
                    folders.insert(folder, c.name.unwrap_or(c.id));
                }
            }
            Err(e) => sink.bad_record(
                e.line() as u64,
                Some(e.column() as u64),
                format!("{meta}: {e}"),
            )?,
        }
    }

    let mut day_files: Vec<&ExportFile> = files
        .iter()
        .filter(|f| f.path.contains('/') && f.path.ends_with(".json"))
        .collect();
    day_files.sort_by(|a, b| a.path.cmp(&b.path));
    for f in day_files {
        let folder = f.path.rsplit_once('/').map_or("", |(d, _)| d);
        let folder = folder.rsplit('/').next().unwrap_or(folder);
        let conversation = folders
            .get(folder)
            .cloned()
            .unwrap_or_else(|| folder.to_string());
        sink.set_source(f.source.clone())?;
        let Some(data) = load(f, sink)? else { continue };
        // Day files are most of an export: parsed into values that borrow their strings.
        let records: Vec<Json<'_>> = match parse_document(&data, sink)? {
            Some(Json::Array(a)) => a,
            Some(_) => {
                sink.bad_record(1, Some(1), "expected a JSON array of messages")?;
                continue;
            }
            None => continue,
        };
        for (i, r) in records.iter().enumerate() {
            let record_no = i as u64 + 1;
            match message(r, &people, &channel, &conversation, ctx, record_no) {
                Ok(Some(m)) => sink.push(m)?,
                Ok(None) => {}
                Err(reason) => {
                    sink.bad_record(record_no, None, format!("message {record_no}: {reason}"))?
                }
            }
        }
    }
    Ok(())
}

/// Slack's `ts` ("1712345678.000200") to microseconds, exactly (no float rounding).
fn slack_ts(ts: &str) -> Option<i64> {
    let (secs, frac) = ts.split_once('.').unwrap_or((ts, "0"));
    let secs: i64 = secs.parse().ok()?;
    let frac = format!("{:0<6}", frac.get(..frac.len().min(6))?);
    let micros: i64 = frac.parse().ok()?;
    secs.checked_mul(1_000_000)?.checked_add(micros)
}

fn str_of<'v>(r: &'v Json<'_>, key: &str) -> Option<&'v str> {
    r.str_of(key)
}

fn message(
    r: &Json<'_>,
    people: &HashMap<String, Person>,
    channel: &str,
    conversation: &str,
    ctx: &ParseCtx<'_>,
    record_no: u64,
) -> std::result::Result<Option<Message>, String> {
    if !r.is_object() {
        return Err("expected a JSON object".into());
    }
    if str_of(r, "type").is_some_and(|t| t != "message") {
        return Ok(None);
    }
    let ts_raw = str_of(r, "ts").ok_or("no 'ts' field")?;
    let ts = slack_ts(ts_raw).ok_or_else(|| format!("invalid ts '{ts_raw}'"))?;
    let subtype = str_of(r, "subtype");
    let user = str_of(r, "user");
    let bot_id = str_of(r, "bot_id");
    let sender_id = user.or(bot_id).map(str::to_string);
    let person = user.and_then(|u| people.get(u));
    let sender_name = person
        .and_then(|p| p.name.clone())
        .or_else(|| {
            r.get("user_profile")
                .and_then(|p| p.get("real_name"))
                .and_then(Json::as_str)
                .map(str::to_string)
        })
        .or_else(|| str_of(r, "username").map(str::to_string))
        .or_else(|| {
            r.get("bot_profile")
                .and_then(|p| p.get("name"))
                .and_then(Json::as_str)
                .map(str::to_string)
        })
        .or_else(|| person.and_then(|p| p.handle.clone()))
        .filter(|s| !s.is_empty());
    let role = if subtype.is_some_and(|s| SYSTEM_SUBTYPES.contains(&s)) {
        Role::System
    } else if bot_id.is_some() || subtype == Some("bot_message") || person.is_some_and(|p| p.is_bot)
    {
        Role::Bot
    } else {
        ctx.options
            .roles
            .classify(sender_id.as_deref(), sender_name.as_deref())
    };
    let text = str_of(r, "text").map(|t| decode_markup(t, people));
    let attachments = r
        .get("files")
        .and_then(Json::as_array)
        .map(|files| {
            files
                .iter()
                .filter_map(|f| {
                    str_of(f, "name")
                        .or_else(|| str_of(f, "title"))
                        .or_else(|| str_of(f, "mimetype"))
                })
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let reply_to = str_of(r, "thread_ts")
        .filter(|t| *t != ts_raw)
        .map(str::to_string);
    Ok(Some(Message {
        channel: channel.to_string(),
        conversation_id: conversation.to_string(),
        message_id: Some(ts_raw.to_string()),
        ts: Some(ts),
        sender_id,
        sender_name,
        role,
        text,
        reply_to,
        attachments,
        source_line: record_no,
    }))
}

/// Slack's markup to plain text: `<@U1>` → `@Name`, `<#C1|general>` → `#general`, `<url|label>` →
/// `label`, `<!here>` → `@here`, and the three HTML entities Slack escapes.
fn decode_markup(text: &str, people: &HashMap<String, Person>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('<') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let Some(end) = after.find('>') else {
            out.push_str(&rest[start..]);
            rest = "";
            break;
        };
        let inner = &after[..end];
        let (target, label) = match inner.split_once('|') {
            Some((t, l)) => (t, Some(l)),
            None => (inner, None),
        };
        if let Some(id) = target.strip_prefix('@') {
            out.push('@');
            match label.or_else(|| {
                people
                    .get(id)
                    .and_then(|p| p.name.as_deref().or(p.handle.as_deref()))
            }) {
                Some(name) => out.push_str(name),
                None => out.push_str(id),
            }
        } else if let Some(id) = target.strip_prefix('#') {
            out.push('#');
            out.push_str(label.unwrap_or(id));
        } else if let Some(special) = target.strip_prefix('!') {
            let word = special.split('^').next().unwrap_or(special);
            match label {
                Some(l) => out.push_str(l),
                None => {
                    out.push('@');
                    out.push_str(word);
                }
            }
        } else {
            out.push_str(label.unwrap_or(target.strip_prefix("mailto:").unwrap_or(target)));
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup() {
        let mut people = HashMap::new();
        people.insert(
            "U1".to_string(),
            Person {
                name: Some("Ana Silva".into()),
                handle: None,
                is_bot: false,
            },
        );
        assert_eq!(
            decode_markup(
                "<@U1> see <https://acme.test/o/1|order 1> in <#C9|support> &amp; <!here> a &lt; b",
                &people
            ),
            "@Ana Silva see order 1 in #support & @here a < b"
        );
        assert_eq!(
            decode_markup("<mailto:a@b.c|a@b.c> <https://x.y>", &people),
            "a@b.c https://x.y"
        );
        assert_eq!(decode_markup("unclosed <tag", &people), "unclosed <tag");
    }

    #[test]
    fn exact_ts() {
        assert_eq!(slack_ts("1712345678.000200"), Some(1_712_345_678_000_200));
        assert_eq!(slack_ts("1712345678"), Some(1_712_345_678_000_000));
        assert_eq!(slack_ts("abc"), None);
    }
}
