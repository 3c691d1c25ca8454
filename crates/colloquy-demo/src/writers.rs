//! Writes the demo's conversations in each channel's native export format.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::Path;

use chrono::{NaiveDateTime, TimeZone, Timelike};
use chrono_tz::Europe::Berlin;
use serde_json::json;

use crate::{Channel, Conversation, Customer, Demo, Msg, Role};

#[derive(Debug, Default, Clone, Copy)]
pub struct WriteStats {
    pub files: u64,
    pub bytes: u64,
    /// Messages written, including the notices each format adds (WhatsApp's encryption line, Slack joins).
    pub rows: u64,
}

const AGENT_SUFFIX: &str = " | Acme Support";
const BOT_NAME: &str = "Acme Bot";
const SHOP_NUMBER: &str = "+49 30 5550 1000";
const COMPANIES: &[&str] = &[
    "northwind",
    "globex",
    "initech",
    "umbrella",
    "hooli",
    "vandelay",
    "soylent",
    "stark",
    "wayne",
    "tyrell",
    "cyberdyne",
    "wonka",
];

fn utc_micros(local: NaiveDateTime) -> i64 {
    Berlin
        .from_local_datetime(&local)
        .earliest()
        .unwrap_or_else(|| Berlin.from_utc_datetime(&local))
        .timestamp_micros()
}

fn rfc3339(local: NaiveDateTime) -> String {
    let m = utc_micros(local);
    chrono::DateTime::from_timestamp_micros(m)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

fn write_file(path: &Path, data: &[u8], stats: &mut WriteStats) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    fs::write(path, data)?;
    stats.files += 1;
    stats.bytes += data.len() as u64;
    Ok(())
}

/// Writes every channel under `out` (which is emptied of earlier demo folders first).
pub fn write_archive(demo: &Demo, out: &Path) -> io::Result<WriteStats> {
    for sub in ["whatsapp", "slack", "webchat", "sms"] {
        let p = out.join(sub);
        if p.exists() {
            fs::remove_dir_all(&p)?;
        }
    }
    fs::create_dir_all(out)?;
    let mut stats = WriteStats::default();
    let by = |c: Channel| demo.conversations.iter().filter(move |x| x.channel == c);
    write_whatsapp(demo, by(Channel::Whatsapp).collect(), out, &mut stats)?;
    write_slack(demo, by(Channel::Slack).collect(), out, &mut stats)?;
    write_webchat(demo, by(Channel::Webchat).collect(), out, &mut stats)?;
    write_sms(demo, by(Channel::Sms).collect(), out, &mut stats)?;
    Ok(stats)
}

fn hour12(h: u32) -> (u32, &'static str) {
    let suffix = if h < 12 { "AM" } else { "PM" };
    let h12 = match h % 12 {
        0 => 12,
        x => x,
    };
    (h12, suffix)
}

/// One WhatsApp line prefix in the customer's phone's layout.
fn wa_prefix(c: &Customer, t: NaiveDateTime) -> String {
    let (h12, ampm) = hour12(t.hour());
    match (c.ios, c.us_locale) {
        (false, true) => format!(
            "{}, {}:{:02}\u{202F}{ampm} - ",
            t.format("%-m/%-d/%y"),
            h12,
            t.minute()
        ),
        (false, false) => format!("{}, {} - ", t.format("%d/%m/%Y"), t.format("%H:%M")),
        (true, true) => format!(
            "[{}, {}:{:02}:{:02}\u{202F}{ampm}] ",
            t.format("%-m/%-d/%y"),
            h12,
            t.minute(),
            t.second()
        ),
        (true, false) => format!("[{}, {}] ", t.format("%d/%m/%Y"), t.format("%H:%M:%S")),
    }
}

fn wa_author(c: &Customer, m: &Msg) -> String {
    match m.role {
        Role::Customer => {
            if c.shown_as_number {
                c.phone.clone()
            } else {
                c.name.clone()
            }
        }
        Role::Agent => format!("{}{AGENT_SUFFIX}", m.agent.unwrap_or("Agent")),
        Role::Bot => BOT_NAME.to_string(),
        Role::System => String::new(),
    }
}

fn write_whatsapp(
    demo: &Demo,
    convs: Vec<&Conversation>,
    out: &Path,
    stats: &mut WriteStats,
) -> io::Result<()> {
    let mut by_customer: BTreeMap<usize, Vec<&Conversation>> = BTreeMap::new();
    for c in convs {
        by_customer.entry(c.customer).or_default().push(c);
    }
    for (cust_id, convs) in by_customer {
        let c = &demo.customers[cust_id];
        let chat_name = if c.shown_as_number {
            c.phone.clone()
        } else {
            c.name.clone()
        };
        let first = convs[0].msgs[0].ts - chrono::Duration::minutes(1);
        let mut text = String::new();
        if c.ios {
            text.push_str(&format!(
                "{}{chat_name}: \u{200E}Messages and calls are end-to-end encrypted. No one outside of this chat, not even WhatsApp, can read or listen to them.\n",
                wa_prefix(c, first)
            ));
        } else {
            text.push_str(&format!(
                "{}Messages and calls are end-to-end encrypted. No one outside of this chat, not even WhatsApp, can read or listen to them. Tap to learn more.\n",
                wa_prefix(c, first)
            ));
        }
        stats.rows += 1;
        let mut media = Vec::new();
        for conv in convs {
            for m in &conv.msgs {
                if m.role == Role::System {
                    continue;
                }
                let body = match (&m.text, &m.attachment) {
                    (Some(t), _) => t.clone(),
                    (None, Some(_)) if c.ios => {
                        let name = format!(
                            "{:08}-PHOTO-{}.jpg",
                            media.len() + 1,
                            m.ts.format("%Y-%m-%d-%H-%M-%S")
                        );
                        media.push(name.clone());
                        format!("\u{200E}<attached: {name}>")
                    }
                    (None, _) => "<Media omitted>".to_string(),
                };
                text.push_str(&format!(
                    "{}{}: {body}\n",
                    wa_prefix(c, m.ts),
                    wa_author(c, m)
                ));
                stats.rows += 1;
            }
        }
        let (zip_name, entry) = if c.ios {
            (
                format!("WhatsApp Chat - {chat_name}.zip"),
                "_chat.txt".to_string(),
            )
        } else {
            (
                format!("WhatsApp Chat with {chat_name}.zip"),
                format!("WhatsApp Chat with {chat_name}.txt"),
            )
        };
        let mut buf = io::Cursor::new(Vec::new());
        {
            let mut zip = zip::ZipWriter::new(&mut buf);
            let opts = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Deflated);
            zip.start_file(entry, opts).map_err(io::Error::other)?;
            zip.write_all(text.as_bytes())?;
            for name in media {
                // A few bytes of JPEG header stand in for the photo; readers must skip media entries.
                zip.start_file(name, opts).map_err(io::Error::other)?;
                zip.write_all(b"\xFF\xD8\xFF\xE0demo")?;
            }
            zip.finish().map_err(io::Error::other)?;
        }
        write_file(&out.join("whatsapp").join(zip_name), buf.get_ref(), stats)?;
    }
    Ok(())
}

fn write_slack(
    demo: &Demo,
    convs: Vec<&Conversation>,
    out: &Path,
    stats: &mut WriteStats,
) -> io::Result<()> {
    if convs.is_empty() {
        return Ok(());
    }
    let company = |cust: usize| COMPANIES[cust % COMPANIES.len()];
    let mut users = vec![json!({
        "id": "UBOT1", "name": "acmebot", "real_name": BOT_NAME, "is_bot": true,
        "profile": {"real_name": BOT_NAME, "display_name": "acmebot"}
    })];
    for (i, a) in crate::text::AGENTS.iter().enumerate() {
        users.push(json!({
            "id": format!("UA{i:03}"), "name": a.to_lowercase(), "real_name": format!("{a} (Acme)"), "is_bot": false,
            "profile": {"real_name": format!("{a} (Acme)"), "display_name": a}
        }));
    }
    let mut seen = std::collections::BTreeSet::new();
    for c in &convs {
        if seen.insert(c.customer) {
            let cust = &demo.customers[c.customer];
            users.push(json!({
                "id": format!("UC{:06}", c.customer), "name": cust.name.to_lowercase().replace(' ', "."),
                "real_name": cust.name, "is_bot": false,
                "profile": {"real_name": cust.name, "display_name": cust.name.split(' ').next().unwrap_or("")}
            }));
        }
    }
    let channels: Vec<_> = COMPANIES
        .iter()
        .enumerate()
        .map(|(i, co)| json!({"id": format!("C{i:04}"), "name": format!("ext-{co}"), "created": 1_767_225_600, "members": []}))
        .collect();

    // channel → day → messages
    let mut days: BTreeMap<String, BTreeMap<String, Vec<(i64, serde_json::Value)>>> =
        BTreeMap::new();
    let mut joined = std::collections::BTreeSet::new();
    for conv in convs {
        let chan = format!("ext-{}", company(conv.customer));
        let cust_id = format!("UC{:06}", conv.customer);
        let ts_of = |m: &Msg, k: usize| {
            let micros = utc_micros(m.ts) + ((conv.id * 37 + k) % 1000) as i64;
            (
                micros,
                format!(
                    "{}.{:06}",
                    micros.div_euclid(1_000_000),
                    micros.rem_euclid(1_000_000)
                ),
            )
        };
        let mut put = |m: &Msg, value: serde_json::Value, micros: i64| {
            stats.rows += 1;
            days.entry(chan.clone())
                .or_default()
                .entry(m.ts.format("%Y-%m-%d").to_string())
                .or_default()
                .push((micros, value));
        };
        let first = &conv.msgs[0];
        if joined.insert(conv.customer) {
            let (micros, _) = ts_of(first, 999);
            let micros = micros - 60_000_000;
            let ts = format!(
                "{}.{:06}",
                micros.div_euclid(1_000_000),
                micros.rem_euclid(1_000_000)
            );
            put(
                first,
                json!({"type": "message", "subtype": "channel_join", "user": cust_id, "text": format!("<@{cust_id}> has joined the channel"), "ts": ts}),
                micros,
            );
        }
        let (_, thread_ts) = ts_of(first, 0);
        for (k, m) in conv.msgs.iter().enumerate() {
            let (micros, ts) = ts_of(m, k);
            let mut v = match m.role {
                Role::Customer => json!({"type": "message", "user": cust_id, "ts": ts}),
                Role::Agent => {
                    let idx = crate::text::AGENTS
                        .iter()
                        .position(|a| Some(*a) == m.agent)
                        .unwrap_or(0);
                    json!({"type": "message", "user": format!("UA{idx:03}"), "ts": ts})
                }
                Role::Bot => {
                    json!({"type": "message", "subtype": "bot_message", "bot_id": "B0ACME", "username": BOT_NAME, "ts": ts})
                }
                Role::System => continue,
            };
            let text = match (&m.text, m.role) {
                (Some(t), Role::Agent) if k % 3 == 0 => format!("<@{cust_id}> {}", slack_escape(t)),
                (Some(t), _) => slack_escape(t),
                (None, _) => String::new(),
            };
            v["text"] = json!(text);
            if let Some(a) = &m.attachment {
                v["files"] = json!([{"id": format!("F{}{k}", conv.id), "name": format!("{a}_{}.jpg", conv.id), "mimetype": "image/jpeg"}]);
            }
            if k > 0 {
                v["thread_ts"] = json!(thread_ts);
                v["parent_user_id"] = json!(cust_id);
            } else {
                v["thread_ts"] = json!(thread_ts);
                v["reply_count"] = json!(conv.msgs.len() - 1);
            }
            put(m, v, micros);
        }
    }

    let mut buf = io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut buf);
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        let mut add = |name: &str, value: &serde_json::Value| -> io::Result<()> {
            zip.start_file(name, opts).map_err(io::Error::other)?;
            zip.write_all(
                serde_json::to_string_pretty(value)
                    .map_err(io::Error::other)?
                    .as_bytes(),
            )
        };
        add("users.json", &json!(users))?;
        add("channels.json", &json!(channels))?;
        for (chan, by_day) in days {
            for (day, mut msgs) in by_day {
                msgs.sort_by_key(|(m, _)| *m);
                let arr: Vec<_> = msgs.into_iter().map(|(_, v)| v).collect();
                add(&format!("{chan}/{day}.json"), &json!(arr))?;
            }
        }
        zip.finish().map_err(io::Error::other)?;
    }
    write_file(
        &out.join("slack").join("acme-slack-export.zip"),
        buf.get_ref(),
        stats,
    )
}

/// Slack escapes these three characters in message text.
fn slack_escape(t: &str) -> String {
    t.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn write_webchat(
    demo: &Demo,
    convs: Vec<&Conversation>,
    out: &Path,
    stats: &mut WriteStats,
) -> io::Result<()> {
    let mut files: BTreeMap<String, String> = BTreeMap::new();
    for conv in convs {
        let c = &demo.customers[conv.customer];
        let day = conv.msgs[0].ts.date();
        let path = format!(
            "webchat/month={}/webchat-{}.jsonl",
            day.format("%Y-%m"),
            day.format("%Y-%m-%d")
        );
        let buf = files.entry(path).or_default();
        for (k, m) in conv.msgs.iter().enumerate() {
            let (role, author, author_id) = match m.role {
                Role::Customer => (
                    "visitor",
                    Some(c.name.clone()),
                    Some(format!("visitor-{}", c.id)),
                ),
                Role::Agent => (
                    "agent",
                    Some(format!("{}{AGENT_SUFFIX}", m.agent.unwrap_or("Agent"))),
                    m.agent.map(|a| format!("agent-{}", a.to_lowercase())),
                ),
                Role::Bot => ("bot", Some(BOT_NAME.to_string()), Some("bot".to_string())),
                Role::System => ("system", None, None),
            };
            let attachments: Vec<_> = m
                .attachment
                .iter()
                .map(|a| json!({"type": "image", "name": format!("{a}-{}-{k}.jpg", conv.id)}))
                .collect();
            let v = json!({
                "session_id": format!("wc-{:06}", conv.id),
                "id": format!("wc-{:06}-{k:02}", conv.id),
                "timestamp": rfc3339(m.ts),
                "role": role,
                "author": author,
                "author_id": author_id,
                "text": m.text,
                "attachments": attachments,
                "lang_hint": c.lang,
            });
            buf.push_str(&v.to_string());
            buf.push('\n');
            stats.rows += 1;
        }
    }
    for (path, body) in files {
        write_file(&out.join(path), body.as_bytes(), stats)?;
    }
    Ok(())
}

fn csv_field(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

fn write_sms(
    demo: &Demo,
    convs: Vec<&Conversation>,
    out: &Path,
    stats: &mut WriteStats,
) -> io::Result<()> {
    let mut files: BTreeMap<String, String> = BTreeMap::new();
    let last_month = (crate::period_start() + chrono::Duration::days(crate::PERIOD_DAYS - 1))
        .format("%Y-%m")
        .to_string();
    for conv in convs {
        let c = &demo.customers[conv.customer];
        let month = conv.msgs[0].ts.format("%Y-%m").to_string();
        let buf = files.entry(month).or_insert_with(|| {
            "message_sid,conversation,sent_at,direction,from,from_name,to,body,media\n".to_string()
        });
        for (k, m) in conv.msgs.iter().enumerate() {
            let (direction, from, from_name, to) = match m.role {
                Role::Customer => (
                    "inbound",
                    c.phone.clone(),
                    String::new(),
                    SHOP_NUMBER.to_string(),
                ),
                Role::Agent => (
                    "outbound",
                    SHOP_NUMBER.to_string(),
                    format!("{}{AGENT_SUFFIX}", m.agent.unwrap_or("Agent")),
                    c.phone.clone(),
                ),
                Role::Bot | Role::System => continue,
            };
            let media = m
                .attachment
                .as_ref()
                .map(|a| format!("https://mms.acme.test/{a}-{}-{k}.jpg", conv.id))
                .unwrap_or_default();
            buf.push_str(&format!(
                "SM{:06}{k:02},SMS-{:06},{},{direction},{},{},{},{},{}\n",
                conv.id,
                conv.id,
                m.ts.format("%Y-%m-%d %H:%M:%S"),
                csv_field(&from),
                csv_field(&from_name),
                csv_field(&to),
                csv_field(m.text.as_deref().unwrap_or("")),
                csv_field(&media)
            ));
            stats.rows += 1;
        }
    }
    for (month, body) in files {
        if month == last_month {
            // The newest month arrives compressed, as gateways often deliver it.
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            gz.write_all(body.as_bytes())?;
            write_file(
                &out.join(format!("sms/sms-{month}.csv.gz")),
                &gz.finish()?,
                stats,
            )?;
        } else {
            write_file(
                &out.join(format!("sms/sms-{month}.csv")),
                body.as_bytes(),
                stats,
            )?;
        }
    }
    Ok(())
}
