//! One parsed message, before it becomes a row, and the rules shared by every format.

use std::fmt;

/// The columns of the message table, in order (the schema itself is built where Arrow is used).
pub const MESSAGE_COLUMNS: &[&str] = &[
    "channel",
    "conversation_id",
    "message_id",
    "ts",
    "sender_id",
    "sender_name",
    "sender_role",
    "text",
    "reply_to",
    "attachments",
    "source",
    "source_line",
];

/// Who wrote a message. Never unknown: every human who is not a configured agent is a customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Customer,
    Agent,
    Bot,
    System,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Customer => "customer",
            Role::Agent => "agent",
            Role::Bot => "bot",
            Role::System => "system",
        }
    }

    /// Reads the role words that chat logs commonly use; `None` when the word is not one of them.
    pub fn from_word(word: &str) -> Option<Role> {
        let w = word.trim().to_ascii_lowercase().replace(['-', ' '], "_");
        Some(match w.as_str() {
            "customer" | "user" | "client" | "contact" | "visitor" | "end_user" | "enduser"
            | "guest" | "inbound" => Role::Customer,
            "agent" | "operator" | "staff" | "support" | "human_agent" | "rep"
            | "representative" | "employee" | "outbound" => Role::Agent,
            "bot" | "assistant" | "ai" | "automation" | "virtual_agent" | "chatbot" => Role::Bot,
            "system" | "event" | "notice" | "notification" => Role::System,
            _ => return None,
        })
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A message as a parser produces it. `message_id` is derived when the export has no native id.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub channel: String,
    pub conversation_id: String,
    pub message_id: Option<String>,
    /// Microseconds since the Unix epoch, UTC.
    pub ts: Option<i64>,
    pub sender_id: Option<String>,
    pub sender_name: Option<String>,
    pub role: Role,
    pub text: Option<String>,
    pub reply_to: Option<String>,
    pub attachments: Vec<String>,
    /// The 1-based line (text formats) or record number (JSON documents) the message came from.
    pub source_line: u64,
}

impl Message {
    /// A stable id from the message's content, so that one message in two overlapping exports gets one id.
    pub fn derived_id(&self) -> String {
        let mut h = blake3::Hasher::new();
        for part in [
            Some(self.channel.as_str()),
            Some(self.conversation_id.as_str()),
            self.sender_id.as_deref().or(self.sender_name.as_deref()),
            self.text.as_deref(),
        ] {
            h.update(part.unwrap_or("").as_bytes());
            h.update(&[0x1f]);
        }
        h.update(&self.ts.unwrap_or(i64::MIN).to_le_bytes());
        let hex = h.finalize().to_hex();
        hex[..32].to_string()
    }
}
