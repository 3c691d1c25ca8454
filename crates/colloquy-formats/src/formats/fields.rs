//! Field mapping shared by the JSONL and CSV log formats: which field of a record feeds which column.

use super::ParseCtx;
use crate::message::{Message, Role};
use crate::time::{epoch_to_micros, parse_timestamp, truncate};

/// Field names tried, in order, for each column when `column.<name>` is not set.
const ALIASES: &[(&str, &[&str])] = &[
    ("channel", &["channel", "platform", "source_channel"]),
    (
        "conversation_id",
        &[
            "conversation_id",
            "conversation",
            "thread_id",
            "chat_id",
            "session_id",
            "ticket_id",
        ],
    ),
    (
        "message_id",
        &["message_id", "id", "msg_id", "message_sid", "sid"],
    ),
    (
        "ts",
        &[
            "ts",
            "timestamp",
            "time",
            "created_at",
            "sent_at",
            "date",
            "datetime",
        ],
    ),
    (
        "sender_id",
        &[
            "sender_id",
            "author_id",
            "user_id",
            "author.id",
            "sender.id",
            "from.id",
            "user.id",
            "from",
            "phone",
        ],
    ),
    (
        "sender_name",
        &[
            "sender_name",
            "author.name",
            "sender.name",
            "from.name",
            "user.name",
            "sender",
            "author",
            "name",
            "from_name",
            "user_name",
        ],
    ),
    (
        "sender_role",
        &[
            "sender_role",
            "role",
            "direction",
            "author_role",
            "sender_type",
        ],
    ),
    ("text", &["text", "body", "message", "content"]),
    (
        "reply_to",
        &["reply_to", "in_reply_to", "parent_id", "reply_to_id"],
    ),
    (
        "attachments",
        &["attachments", "media", "files", "media_urls"],
    ),
];

/// A value read from a record, before it is turned into a column value.
pub enum Value<'a> {
    Str(std::borrow::Cow<'a, str>),
    Number(f64),
    /// An integer kept exact (ids beyond 2^53 must not round).
    Int(i64),
    List(Vec<String>),
}

impl Value<'_> {
    fn into_string(self) -> String {
        match self {
            Value::Str(s) => s.into_owned(),
            Value::Number(n) if n.fract() == 0.0 && n.abs() < 1e15 => format!("{}", n as i64),
            Value::Number(n) => n.to_string(),
            Value::Int(i) => i.to_string(),
            Value::List(l) => l.join(";"),
        }
    }
}

/// Resolved field names for one file: `None` where the record has no such field.
pub struct Mapping {
    fields: Vec<(&'static str, Option<String>)>,
}

impl Mapping {
    /// Chooses field names from the explicit `column.*` options, else the first alias the file has.
    pub fn resolve(ctx: &ParseCtx<'_>, has_field: impl Fn(&str) -> bool) -> Self {
        let fields = ALIASES
            .iter()
            .map(|(col, aliases)| {
                let chosen = match ctx.options.columns.get(*col) {
                    Some(explicit) => Some(explicit.clone()),
                    None => aliases
                        .iter()
                        .find(|a| has_field(a))
                        .map(|a| (*a).to_string()),
                };
                (*col, chosen)
            })
            .collect();
        Self { fields }
    }

    /// Resolves the columns still without a field from a later record: optional fields such as
    /// reply_to or attachments are often absent from a log's first records.
    pub fn complete(&mut self, has_field: impl Fn(&str) -> bool) {
        for (col, chosen) in self.fields.iter_mut().filter(|(_, f)| f.is_none()) {
            let aliases = ALIASES
                .iter()
                .find(|(c, _)| c == col)
                .map_or(&[][..], |(_, a)| *a);
            *chosen = aliases
                .iter()
                .find(|a| has_field(a))
                .map(|a| (*a).to_string());
        }
    }

    /// True when some column has no field yet (see [`Mapping::complete`]).
    pub fn incomplete(&self) -> bool {
        self.fields.iter().any(|(_, f)| f.is_none())
    }

    pub fn field(&self, col: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(c, _)| *c == col)
            .and_then(|(_, f)| f.as_deref())
    }

    /// Builds a message; `Err` holds the column at fault and the reason.
    pub fn message<'r>(
        &self,
        ctx: &ParseCtx<'_>,
        default_conversation: &str,
        line: u64,
        get: impl Fn(&str) -> Option<Value<'r>>,
    ) -> Result<Message, (String, String)> {
        let text_of = |col: &str| {
            self.field(col)
                .and_then(&get)
                .map(Value::into_string)
                .filter(|s| !s.is_empty())
        };
        let channel = ctx
            .options
            .channel
            .clone()
            .or_else(|| text_of("channel"))
            .or_else(|| ctx.default_channel.map(str::to_string))
            .unwrap_or_else(|| ctx.format_name.to_string());
        let ts =
            match self.field("ts").and_then(&get) {
                None => None,
                Some(Value::Number(n)) => Some(epoch_to_micros(n).ok_or_else(|| {
                    ("ts".to_string(), format!("epoch value {n} is out of range"))
                })?),
                Some(Value::Int(i)) => Some(epoch_to_micros(i as f64).ok_or_else(|| {
                    ("ts".to_string(), format!("epoch value {i} is out of range"))
                })?),
                Some(v) => {
                    let s = v.into_string();
                    if s.is_empty() {
                        None
                    } else {
                        Some(
                            parse_timestamp(
                                &s,
                                ctx.options.timezone,
                                ctx.options.timestamp_format.as_deref(),
                            )
                            .map_err(|e| (self.field("ts").unwrap_or("ts").to_string(), e))?,
                        )
                    }
                }
            };
        let sender_id = text_of("sender_id");
        let sender_name = text_of("sender_name");
        let role = match text_of("sender_role") {
            Some(word) => Role::from_word(&word).ok_or_else(|| {
                (
                    self.field("sender_role").unwrap_or("sender_role").to_string(),
                    format!(
                        "unknown sender role '{}' (expected customer, agent, bot or system, or a synonym such as user, operator, assistant, inbound, outbound)",
                        truncate(&word, 30)
                    ),
                )
            })?,
            None => ctx.options.roles.classify(sender_id.as_deref(), sender_name.as_deref()),
        };
        // A role column says who is human; the configured names still pick out agents and bots among them.
        let role = match role {
            Role::Customer => match ctx
                .options
                .roles
                .classify(sender_id.as_deref(), sender_name.as_deref())
            {
                Role::Customer => Role::Customer,
                configured => configured,
            },
            other => other,
        };
        let attachments = match self.field("attachments").and_then(&get) {
            None => Vec::new(),
            Some(Value::List(l)) => l,
            Some(v) => {
                let s = v.into_string();
                s.split(';')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            }
        };
        Ok(Message {
            channel,
            conversation_id: text_of("conversation_id")
                .unwrap_or_else(|| default_conversation.to_string()),
            message_id: text_of("message_id"),
            ts,
            sender_id,
            sender_name,
            role,
            text: self.field("text").and_then(&get).map(Value::into_string),
            reply_to: text_of("reply_to"),
            attachments,
            source_line: line,
        })
    }
}

/// The file's stem, used as the conversation id when records carry none (one file per conversation).
pub fn file_stem(name: &str) -> String {
    let file = name.rsplit(['/', '#']).next().unwrap_or(name);
    let mut stem = file;
    for ext in [
        ".gz", ".zst", ".bz2", ".jsonl", ".ndjson", ".json", ".csv", ".tsv", ".txt",
    ] {
        stem = stem.strip_suffix(ext).unwrap_or(stem);
    }
    stem.to_string()
}
