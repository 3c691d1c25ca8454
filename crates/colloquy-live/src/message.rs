//! The generic endpoint's message: the message schema's own field names, one JSON object per message.
//!
//! ```json
//! {"message_id": "m-1", "channel": "webchat", "conversation_id": "c-9", "ts": "2026-03-02T09:15:00Z",
//!  "sender_id": "u-7", "sender_name": "Ana", "sender_role": "customer", "text": "where is my order?"}
//! ```
//!
//! A body is one such object, an array of them, or JSON Lines. Every message is checked before any is
//! stored: a request with one bad message stores nothing and says which message and field were wrong.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{LiveError, Result};

/// Longest id, channel or name accepted (bytes).
const MAX_ID_BYTES: usize = 256;
/// Longest text accepted (bytes).
const MAX_TEXT_BYTES: usize = 64 * 1024;
const ROLES: &[&str] = &["customer", "agent", "bot", "system"];

/// One message as stored: its line in the live store's JSON Lines files.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveMessage {
    pub message_id: String,
    pub channel: String,
    pub conversation_id: String,
    /// RFC 3339, UTC.
    pub ts: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender_role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
}

impl LiveMessage {
    /// The fields a message has (the generic endpoint's, and the columns of a Flight SQL ingest).
    pub const FIELDS: &'static [&'static str] = &[
        "message_id",
        "channel",
        "conversation_id",
        "ts",
        "sender_id",
        "sender_name",
        "sender_role",
        "text",
        "reply_to",
    ];

    /// The day (UTC) the message belongs to, `YYYY-MM-DD`: its folder in the store.
    pub fn day(&self) -> &str {
        &self.ts[..10]
    }

    /// The message as one line of JSON (no newline).
    pub fn to_line(&self) -> Vec<u8> {
        // Serialising a struct of strings cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Checks the fields and normalises the timestamp to RFC 3339 UTC; `at` names the message in errors.
    pub(crate) fn checked(mut self, at: &str) -> Result<Self> {
        let bad = |field: &str, why: String| {
            LiveError::BadRequest(format!("{at}: field '{field}': {why}"))
        };
        for (field, value) in [
            ("message_id", &self.message_id),
            ("channel", &self.channel),
            ("conversation_id", &self.conversation_id),
        ] {
            if value.trim().is_empty() {
                return Err(bad(field, "is empty".into()));
            }
            if value.len() > MAX_ID_BYTES {
                return Err(bad(field, format!("is longer than {MAX_ID_BYTES} bytes")));
            }
        }
        for (field, value) in [
            ("sender_id", &self.sender_id),
            ("sender_name", &self.sender_name),
            ("reply_to", &self.reply_to),
        ] {
            if value.as_ref().is_some_and(|v| v.len() > MAX_ID_BYTES) {
                return Err(bad(field, format!("is longer than {MAX_ID_BYTES} bytes")));
            }
        }
        if self.text.as_ref().is_some_and(|t| t.len() > MAX_TEXT_BYTES) {
            return Err(bad(
                "text",
                format!("is longer than {MAX_TEXT_BYTES} bytes"),
            ));
        }
        if let Some(role) = &self.sender_role
            && !ROLES.contains(&role.as_str())
        {
            return Err(bad(
                "sender_role",
                format!("'{role}' is not one of {}", ROLES.join(", ")),
            ));
        }
        let ts = DateTime::parse_from_rfc3339(&self.ts).map_err(|e| {
            bad(
                "ts",
                format!("'{}' is not an RFC 3339 timestamp ({e})", self.ts),
            )
        })?;
        self.ts = ts
            .with_timezone(&Utc)
            .to_rfc3339_opts(SecondsFormat::AutoSi, true);
        Ok(self)
    }
}

/// The messages of a request body: one JSON object, an array of objects, or JSON Lines.
pub fn parse_body(body: &[u8]) -> Result<Vec<LiveMessage>> {
    let text = std::str::from_utf8(body)
        .map_err(|e| LiveError::BadRequest(format!("the body is not UTF-8: {e}")))?;
    let trimmed = text.trim_start();
    if trimmed.is_empty() {
        return Err(LiveError::BadRequest("the body is empty".into()));
    }
    if trimmed.starts_with('[') {
        let items: Vec<serde_json::Value> = serde_json::from_str(text).map_err(|e| {
            LiveError::BadRequest(format!(
                "the body is not a JSON array: line {}, column {}: {e}",
                e.line(),
                e.column()
            ))
        })?;
        return items
            .into_iter()
            .enumerate()
            .map(|(i, v)| parse_value(v, &format!("message {}", i + 1)))
            .collect();
    }
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = format!("line {}", n + 1);
        let v: serde_json::Value = serde_json::from_str(line).map_err(|e| {
            LiveError::BadRequest(format!("{at}, column {}: not JSON: {e}", e.column()))
        })?;
        out.push(parse_value(v, &at)?);
    }
    Ok(out)
}

/// One message from a JSON value (an object of the message schema's fields), checked; `at` names it in
/// errors.
pub fn parse_value(v: serde_json::Value, at: &str) -> Result<LiveMessage> {
    if !v.is_object() {
        return Err(LiveError::BadRequest(format!("{at}: not a JSON object")));
    }
    let m: LiveMessage =
        serde_json::from_value(v).map_err(|e| LiveError::BadRequest(format!("{at}: {e}")))?;
    m.checked(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &str = r#"{"message_id":"m1","channel":"webchat","conversation_id":"c1","ts":"2026-03-02T10:15:00+01:00","text":"hi","sender_role":"customer"}"#;

    #[test]
    fn object_array_and_lines() {
        let one = parse_body(OK.as_bytes()).expect("one object");
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].ts, "2026-03-02T09:15:00Z");
        assert_eq!(one[0].day(), "2026-03-02");
        let arr = parse_body(format!("[{OK}, {OK}]").as_bytes()).expect("an array");
        assert_eq!(arr.len(), 2);
        let lines = parse_body(format!("{OK}\n\n{OK}\n").as_bytes()).expect("lines");
        assert_eq!(lines.len(), 2);
        let back: LiveMessage = serde_json::from_slice(&one[0].to_line()).expect("its own line");
        assert_eq!(back, one[0]);
    }

    #[test]
    fn fields_are_the_serialised_fields() {
        let full = LiveMessage {
            message_id: "m".into(),
            channel: "c".into(),
            conversation_id: "v".into(),
            ts: "2026-03-02T09:15:00Z".into(),
            sender_id: Some("s".into()),
            sender_name: Some("n".into()),
            sender_role: Some("customer".into()),
            text: Some("t".into()),
            reply_to: Some("r".into()),
        };
        let value = serde_json::to_value(&full).expect("serialises");
        let mut keys: Vec<&str> = value
            .as_object()
            .expect("an object")
            .keys()
            .map(String::as_str)
            .collect();
        let mut fields = LiveMessage::FIELDS.to_vec();
        keys.sort_unstable();
        fields.sort_unstable();
        assert_eq!(keys, fields);
    }

    #[test]
    fn errors_name_the_message_and_field() {
        let err = |body: &str| {
            parse_body(body.as_bytes())
                .expect_err("refused")
                .to_string()
        };
        assert_eq!(err(""), "the body is empty");
        assert!(err(&format!("{OK}\n{{oops")).starts_with("line 2, column 2: not JSON"));
        assert!(err(r#"{"channel":"x"}"#).contains("line 1: missing field `message_id`"));
        let no_ts = OK.replace("2026-03-02T10:15:00+01:00", "yesterday");
        assert!(
            err(&no_ts).contains("line 1: field 'ts': 'yesterday' is not an RFC 3339 timestamp")
        );
        let role = OK.replace("customer", "boss");
        assert!(err(&role).contains("field 'sender_role': 'boss' is not one of customer"));
        let empty = OK.replace("\"m1\"", "\"  \"");
        assert!(err(&empty).contains("field 'message_id': is empty"));
        let long = OK.replace("\"hi\"", &format!("\"{}\"", "x".repeat(MAX_TEXT_BYTES + 1)));
        assert!(err(&long).contains("field 'text': is longer than"));
        assert!(err(&format!("[{OK}, 3]")).contains("message 2: not a JSON object"));
        assert!(err("[1,").starts_with("the body is not a JSON array: line 1"));
        assert!(err("\u{0}\u{ff}").contains("not JSON"));
    }
}
