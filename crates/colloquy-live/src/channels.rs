//! The channels' own webhook formats, written from their public documentation, and their signatures.
//!
//! - WhatsApp Business Cloud API: `entry[].changes[].value.messages[]`, signed with
//!   `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body, keyed by the app secret>`; the
//!   subscription handshake is a GET with `hub.mode=subscribe`, `hub.verify_token` and `hub.challenge`.
//!   Delivery statuses (`value.statuses`) are not messages and are skipped.
//! - Twilio (SMS, and WhatsApp through Twilio): a form with `MessageSid`, `From`, `To`, `Body`, signed with
//!   `X-Twilio-Signature: <base64 HMAC-SHA1 of the public URL followed by every parameter's name and value
//!   sorted by name, keyed by the auth token>`. Twilio sends no timestamp: the message gets the time it
//!   arrived.
//! - Slack Events API: `event_callback` with a `message` event, or the `url_verification` challenge, signed
//!   with `X-Slack-Signature: v0=<hex HMAC-SHA256 of "v0:<timestamp>:<body>", keyed by the signing
//!   secret>` and `X-Slack-Request-Timestamp` (refused when more than five minutes off, against replays).
//!
//! A request whose signature does not verify is refused before its body is read as JSON.

use base64::Engine;
use chrono::{DateTime, SecondsFormat, Utc};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;

use crate::error::{LiveError, Result};
use crate::message::LiveMessage;

/// How far Slack's request timestamp may be from now.
const SLACK_MAX_SKEW_SECS: i64 = 300;

/// A webhook signature that did not verify, or was missing.
fn unsigned(why: &str) -> LiveError {
    LiveError::Unauthorized(why.into())
}

/// `sha256=<hex>` over `body` with `app_secret` (Meta's `X-Hub-Signature-256`).
pub fn verify_meta(app_secret: &str, header: Option<&str>, body: &[u8]) -> Result<()> {
    let hex = header
        .and_then(|h| h.strip_prefix("sha256="))
        .ok_or_else(|| unsigned("X-Hub-Signature-256 is missing or not 'sha256=<hex>'"))?;
    let expected = decode_hex(hex).ok_or_else(|| unsigned("X-Hub-Signature-256 is not hex"))?;
    verify_hmac::<Hmac<sha2::Sha256>>(
        app_secret,
        &[body],
        &expected,
        "X-Hub-Signature-256",
        "the body",
    )
}

/// Checks (in constant time) that `expected` is the HMAC of `parts` keyed by `secret`.
fn verify_hmac<M: Mac + KeyInit>(
    secret: &str,
    parts: &[&[u8]],
    expected: &[u8],
    header: &str,
    what: &str,
) -> Result<()> {
    let mut mac = <M as KeyInit>::new_from_slice(secret.as_bytes())
        .map_err(|_| unsigned("the secret cannot key HMAC"))?;
    for p in parts {
        mac.update(p);
    }
    mac.verify_slice(expected)
        .map_err(|_| unsigned(&format!("{header} does not match {what}")))
}

/// Slack's `v0=<hex>` over `v0:<timestamp>:<body>`, with the timestamp within five minutes of `now`.
pub fn verify_slack(
    signing_secret: &str,
    signature: Option<&str>,
    timestamp: Option<&str>,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<()> {
    let ts = timestamp
        .and_then(|t| t.parse::<i64>().ok())
        .ok_or_else(|| unsigned("X-Slack-Request-Timestamp is missing or not a number"))?;
    if (now.timestamp() - ts).abs() > SLACK_MAX_SKEW_SECS {
        return Err(unsigned(
            "X-Slack-Request-Timestamp is more than five minutes off",
        ));
    }
    let hex = signature
        .and_then(|s| s.strip_prefix("v0="))
        .ok_or_else(|| unsigned("X-Slack-Signature is missing or not 'v0=<hex>'"))?;
    let expected = decode_hex(hex).ok_or_else(|| unsigned("X-Slack-Signature is not hex"))?;
    let prefix = format!("v0:{ts}:");
    verify_hmac::<Hmac<sha2::Sha256>>(
        signing_secret,
        &[prefix.as_bytes(), body],
        &expected,
        "X-Slack-Signature",
        "the body",
    )
}

/// Twilio's signature over the public `url` and the form parameters sorted by name.
pub fn verify_twilio(
    auth_token: &str,
    url: &str,
    header: Option<&str>,
    params: &[(String, String)],
) -> Result<()> {
    let given = header.ok_or_else(|| unsigned("X-Twilio-Signature is missing"))?;
    let expected = base64::engine::general_purpose::STANDARD
        .decode(given.trim())
        .map_err(|_| unsigned("X-Twilio-Signature is not base64"))?;
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let mut parts: Vec<&[u8]> = vec![url.as_bytes()];
    for (k, v) in sorted {
        parts.push(k.as_bytes());
        parts.push(v.as_bytes());
    }
    verify_hmac::<Hmac<sha1::Sha1>>(
        auth_token,
        &parts,
        &expected,
        "X-Twilio-Signature",
        "the request",
    )
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

fn json(body: &[u8]) -> Result<Value> {
    serde_json::from_slice(body).map_err(|e| {
        LiveError::BadRequest(format!(
            "the body is not JSON: line {}, column {}: {e}",
            e.line(),
            e.column()
        ))
    })
}

fn unix_seconds(v: &Value, at: &str) -> Result<String> {
    let secs: f64 = match v {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_f64(),
        _ => None,
    }
    .ok_or_else(|| LiveError::BadRequest(format!("{at}: timestamp is not a number of seconds")))?;
    let micros = (secs * 1e6).round() as i64;
    let ts = DateTime::from_timestamp_micros(micros)
        .ok_or_else(|| LiveError::BadRequest(format!("{at}: timestamp {secs} is out of range")))?;
    Ok(ts.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

fn str_at<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// The messages of a WhatsApp Cloud API webhook (statuses and other fields skipped).
pub fn whatsapp_messages(body: &[u8]) -> Result<Vec<LiveMessage>> {
    let v = json(body)?;
    let mut out = Vec::new();
    let entries = v
        .get("entry")
        .and_then(Value::as_array)
        .ok_or_else(|| LiveError::BadRequest("not a WhatsApp webhook: no 'entry' array".into()))?;
    for (e, entry) in entries.iter().enumerate() {
        let changes = entry.get("changes").and_then(Value::as_array);
        for (c, change) in changes.into_iter().flatten().enumerate() {
            let Some(value) = change.get("value") else {
                continue;
            };
            let contacts = value.get("contacts").and_then(Value::as_array);
            let name_of = |wa_id: &str| {
                contacts.into_iter().flatten().find_map(|k| {
                    (str_at(k, "wa_id") == Some(wa_id))
                        .then(|| k.pointer("/profile/name").and_then(Value::as_str))
                        .flatten()
                })
            };
            let messages = value.get("messages").and_then(Value::as_array);
            for (m, msg) in messages.into_iter().flatten().enumerate() {
                let at = format!("entry[{e}].changes[{c}].value.messages[{m}]");
                let field = |k: &str| {
                    str_at(msg, k).map(str::to_owned).ok_or_else(|| {
                        LiveError::BadRequest(format!("{at}: field '{k}' is missing"))
                    })
                };
                let from = field("from")?;
                let kind = str_at(msg, "type").unwrap_or("text");
                let text = match kind {
                    "text" => msg
                        .pointer("/text/body")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                    other => msg
                        .pointer(&format!("/{other}/caption"))
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                        .or_else(|| Some(format!("<{other}>"))),
                };
                out.push(LiveMessage {
                    message_id: field("id")?,
                    channel: "whatsapp".into(),
                    conversation_id: from.clone(),
                    ts: unix_seconds(msg.get("timestamp").unwrap_or(&Value::Null), &at)?,
                    sender_name: name_of(&from).map(str::to_owned),
                    sender_id: Some(from),
                    sender_role: Some("customer".into()),
                    text,
                    reply_to: msg
                        .pointer("/context/id")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                });
            }
        }
    }
    out.into_iter()
        .map(|m| m.checked("WhatsApp message"))
        .collect()
}

/// The message of a Twilio webhook (its form parameters), arrived at `now`.
pub fn twilio_message(params: &[(String, String)], now: DateTime<Utc>) -> Result<LiveMessage> {
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let need = |k: &str| {
        get(k).ok_or_else(|| LiveError::BadRequest(format!("form parameter '{k}' is missing")))
    };
    let from = need("From")?;
    let (channel, sender) = match from.strip_prefix("whatsapp:") {
        Some(number) => ("whatsapp", number.to_owned()),
        None => ("sms", from.clone()),
    };
    LiveMessage {
        message_id: need("MessageSid")?,
        channel: channel.into(),
        conversation_id: sender.clone(),
        ts: now.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        sender_id: Some(sender),
        sender_name: get("ProfileName"),
        sender_role: Some("customer".into()),
        text: get("Body"),
        reply_to: None,
    }
    .checked("Twilio message")
}

/// What a Slack Events API request carries.
pub enum SlackEvent {
    /// The URL-verification handshake: answer with the challenge.
    Challenge(String),
    Message(LiveMessage),
    /// Another event type, or a message subtype that is not a message (edits, joins): acknowledged,
    /// not stored.
    Ignored,
}

pub fn slack_event(body: &[u8]) -> Result<SlackEvent> {
    let v = json(body)?;
    match str_at(&v, "type") {
        Some("url_verification") => {
            let challenge = str_at(&v, "challenge").ok_or_else(|| {
                LiveError::BadRequest("url_verification without a challenge".into())
            })?;
            Ok(SlackEvent::Challenge(challenge.to_owned()))
        }
        Some("event_callback") => {
            let event = v
                .get("event")
                .ok_or_else(|| LiveError::BadRequest("event_callback without an event".into()))?;
            let subtype = str_at(event, "subtype");
            if str_at(event, "type") != Some("message")
                || subtype.is_some_and(|s| s != "bot_message" && s != "thread_broadcast")
            {
                return Ok(SlackEvent::Ignored);
            }
            let need = |k: &str| {
                str_at(event, k)
                    .map(str::to_owned)
                    .ok_or_else(|| LiveError::BadRequest(format!("event: field '{k}' is missing")))
            };
            let channel = need("channel")?;
            let ts = need("ts")?;
            let bot = event.get("bot_id").is_some() || subtype == Some("bot_message");
            let thread = str_at(event, "thread_ts").filter(|t| *t != ts);
            Ok(SlackEvent::Message(
                LiveMessage {
                    // A Slack message is identified by its channel and ts.
                    message_id: format!("{channel}/{ts}"),
                    channel: "slack".into(),
                    conversation_id: channel.clone(),
                    ts: unix_seconds(&Value::String(ts.clone()), "event.ts")?,
                    sender_id: str_at(event, "user")
                        .or(str_at(event, "bot_id"))
                        .map(str::to_owned),
                    sender_name: str_at(event, "username").map(str::to_owned),
                    sender_role: Some(if bot { "bot" } else { "customer" }.into()),
                    text: str_at(event, "text").map(str::to_owned),
                    reply_to: thread.map(|t| format!("{channel}/{t}")),
                }
                .checked("Slack message")?,
            ))
        }
        other => Err(LiveError::BadRequest(format!(
            "not a Slack Events API request (type {other:?})"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hmac_hex<M: Mac + KeyInit>(key: &[u8], parts: &[&[u8]]) -> String {
        let mut mac = <M as KeyInit>::new_from_slice(key).expect("a key");
        for p in parts {
            mac.update(p);
        }
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    const WHATSAPP: &str = r#"{"object":"whatsapp_business_account","entry":[{"id":"102","changes":[{"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550001111","phone_number_id":"106"},"contacts":[{"profile":{"name":"Ana Ruiz"},"wa_id":"34600111222"}],"messages":[{"from":"34600111222","id":"wamid.A1","timestamp":"1774864800","type":"text","text":{"body":"¿Dónde está mi pedido?"}},{"from":"34600111222","id":"wamid.A2","timestamp":"1774864860","type":"image","image":{"caption":"the box was broken","id":"img1"}}]}}]},{"id":"102","changes":[{"field":"messages","value":{"statuses":[{"id":"wamid.S","status":"delivered"}]}}]}]}"#;

    #[test]
    fn whatsapp_messages_and_signature() {
        let m = whatsapp_messages(WHATSAPP.as_bytes()).expect("messages");
        assert_eq!(m.len(), 2);
        assert_eq!(
            (
                m[0].message_id.as_str(),
                m[0].conversation_id.as_str(),
                m[0].ts.as_str()
            ),
            ("wamid.A1", "34600111222", "2026-03-30T10:00:00Z")
        );
        assert_eq!(m[0].sender_name.as_deref(), Some("Ana Ruiz"));
        assert_eq!(m[1].text.as_deref(), Some("the box was broken"));
        let sig = format!(
            "sha256={}",
            hmac_hex::<Hmac<sha2::Sha256>>(b"app-secret", &[WHATSAPP.as_bytes()])
        );
        verify_meta("app-secret", Some(&sig), WHATSAPP.as_bytes()).expect("verifies");
        let e = verify_meta("other", Some(&sig), WHATSAPP.as_bytes()).expect_err("wrong secret");
        assert!(e.to_string().contains("does not match"), "{e}");
        assert!(verify_meta("app-secret", None, b"{}").is_err());
        assert!(verify_meta("app-secret", Some("sha256=zz"), b"{}").is_err());
        let bad = WHATSAPP.replace(r#""id":"wamid.A1","#, "");
        let e = whatsapp_messages(bad.as_bytes()).expect_err("no id");
        assert!(
            e.to_string()
                .contains("entry[0].changes[0].value.messages[0]: field 'id' is missing"),
            "{e}"
        );
        assert!(whatsapp_messages(b"[]").is_err());
    }

    #[test]
    fn twilio_message_and_signature() {
        let params: Vec<(String, String)> = [
            ("MessageSid", "SM123"),
            ("From", "whatsapp:+14155550100"),
            ("To", "whatsapp:+14155550199"),
            ("Body", "my card was charged twice"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let now = DateTime::parse_from_rfc3339("2026-03-30T10:00:00Z")
            .expect("ts")
            .to_utc();
        let m = twilio_message(&params, now).expect("a message");
        assert_eq!(
            (m.channel.as_str(), m.conversation_id.as_str()),
            ("whatsapp", "+14155550100")
        );
        let url = "https://example.com/v1/twilio";
        let mut sorted = params.clone();
        sorted.sort();
        let mut parts: Vec<&[u8]> = vec![url.as_bytes()];
        for (k, v) in &sorted {
            parts.push(k.as_bytes());
            parts.push(v.as_bytes());
        }
        let hex = hmac_hex::<Hmac<sha1::Sha1>>(b"auth-token", &parts);
        let raw = decode_hex(&hex).expect("hex");
        let sig = base64::engine::general_purpose::STANDARD.encode(raw);
        verify_twilio("auth-token", url, Some(&sig), &params).expect("verifies");
        assert!(verify_twilio("auth-token", "https://evil/", Some(&sig), &params).is_err());
        assert!(verify_twilio("auth-token", url, None, &params).is_err());
        let e = twilio_message(&params[1..], now).expect_err("no sid");
        assert_eq!(e.to_string(), "form parameter 'MessageSid' is missing");
    }

    #[test]
    fn slack_events_and_signature() {
        let body = br#"{"type":"event_callback","event_id":"Ev1","event":{"type":"message","channel":"C1","user":"U1","text":"the export is broken","ts":"1774864800.000100","thread_ts":"1774864700.000200"}}"#;
        let SlackEvent::Message(m) = slack_event(body).expect("an event") else {
            panic!("a message");
        };
        assert_eq!(m.message_id, "C1/1774864800.000100");
        assert_eq!(m.reply_to.as_deref(), Some("C1/1774864700.000200"));
        assert_eq!(m.ts, "2026-03-30T10:00:00.000100Z");
        let challenge = br#"{"type":"url_verification","challenge":"abc"}"#;
        assert!(matches!(slack_event(challenge), Ok(SlackEvent::Challenge(c)) if c == "abc"));
        let edit = br#"{"type":"event_callback","event":{"type":"message","subtype":"message_changed","channel":"C1","ts":"1"}}"#;
        assert!(matches!(slack_event(edit), Ok(SlackEvent::Ignored)));
        let now = DateTime::from_timestamp(1_774_864_800, 0).expect("now");
        let sig = format!(
            "v0={}",
            hmac_hex::<Hmac<sha2::Sha256>>(b"signing", &[b"v0:1774864800:", body])
        );
        verify_slack("signing", Some(&sig), Some("1774864800"), body, now).expect("verifies");
        let late = now + chrono::Duration::seconds(301);
        let e = verify_slack("signing", Some(&sig), Some("1774864800"), body, late)
            .expect_err("replayed");
        assert!(e.to_string().contains("five minutes"), "{e}");
        assert!(verify_slack("signing", Some(&sig), Some("1774864801"), body, now).is_err());
        assert!(verify_slack("signing", None, Some("1774864800"), body, now).is_err());
    }
}
