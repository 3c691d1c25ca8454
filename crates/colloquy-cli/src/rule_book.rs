//! `CREATE RULE` and `DROP RULE` from Flight SQL clients, with `[live] client_rules = true`.
//!
//! ```sql
//! CREATE RULE refund_watch [KEY conversation_key (the default)] [SCOPE 'conversation' | WINDOW '8 days']
//!   AS SELECT conversation_key, text FROM conversation_messages WHERE text ILIKE '%refund%'
//!   [ACTION webhook('https://hooks.example.com/route' [, '{"text": {{text}}, "rule": {{rule}}}'])]
//! DROP RULE refund_watch
//! ```
//!
//! A statement from the network: a client may make the server POST to a URL, so a webhook's host and port
//! must be in `[live] rule_webhook_hosts` (none by default: client rules then only record into
//! `rule_events`). The rule is checked (it plans, it is a query, it has its key column) before it is
//! accepted, then kept in `<dir>/rules/defined.jsonl` so that it survives restarts. Only rules made this
//! way can be dropped this way; the config file's are the operator's.

use std::path::PathBuf;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use crate::config::RuleSection;
use crate::rules::Command;

pub const DEFINED: &str = "defined.jsonl";

/// One line of `defined.jsonl`.
#[derive(Debug, Serialize, Deserialize)]
struct Change {
    op: String,
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sql: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    window: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    webhook: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    template: Option<String>,
    by: String,
    at: String,
}

/// A client's rule as kept: its section and who made it.
pub struct Kept {
    pub section: RuleSection,
    pub by: String,
}

/// A parsed statement.
#[derive(Debug, PartialEq, Eq)]
enum Statement {
    Create(Box<RuleSection>),
    Drop(String),
}

fn is_rule_statement(sql: &str) -> bool {
    let words: Vec<String> = sql
        .split_whitespace()
        .take(2)
        .map(str::to_ascii_lowercase)
        .collect();
    matches!(
        words.iter().map(String::as_str).collect::<Vec<_>>()[..],
        ["create", "rule"] | ["drop", "rule"]
    )
}

fn identifier(word: &str, what: &str) -> anyhow::Result<String> {
    let ok = word
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && word.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && word.len() <= 64;
    anyhow::ensure!(
        ok,
        "{what} '{word}' is not a plain name (letters, digits, _; at most 64)"
    );
    Ok(word.to_ascii_lowercase())
}

fn quoted(word: &str, what: &str) -> anyhow::Result<String> {
    word.strip_prefix('\'')
        .and_then(|w| w.strip_suffix('\''))
        .filter(|w| !w.contains('\''))
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("{what} takes a quoted value, like '8 days': got {word}"))
}

/// `CREATE RULE …` or `DROP RULE name`.
fn parse(sql: &str) -> anyhow::Result<Statement> {
    let sql = sql.trim().trim_end_matches(';').trim();
    let lower = sql.to_ascii_lowercase();
    if lower.starts_with("drop") {
        let words: Vec<&str> = sql.split_whitespace().collect();
        anyhow::ensure!(words.len() == 3, "DROP RULE takes one name: DROP RULE name");
        return Ok(Statement::Drop(identifier(words[2], "the rule's name")?));
    }
    // The query runs from the first AS (a whole word) to the end, or to a last ACTION webhook('…').
    let as_at = find_word(&lower, "as")
        .ok_or_else(|| anyhow::anyhow!("CREATE RULE name [KEY column] [SCOPE '…' | WINDOW '…'] AS SELECT … [ACTION webhook('url')]: no AS"))?;
    let head = words(&sql[..as_at]);
    let mut body = sql[as_at + 2..].trim();
    let mut rule = RuleSection {
        name: Some(identifier(
            head.get(2)
                .ok_or_else(|| anyhow::anyhow!("CREATE RULE needs a name"))?,
            "the rule's name",
        )?),
        ..Default::default()
    };
    let mut rest = head[3.min(head.len())..].iter();
    while let Some(word) = rest.next() {
        let value = rest
            .next()
            .ok_or_else(|| anyhow::anyhow!("{word} needs a value"))?;
        match word.to_ascii_lowercase().as_str() {
            "key" => rule.key = Some(identifier(value, "KEY")?),
            "scope" => rule.scope = Some(quoted(value, "SCOPE")?),
            "window" => rule.window = Some(quoted(value, "WINDOW")?),
            other => anyhow::bail!(
                "CREATE RULE: '{other}' is not KEY, SCOPE or WINDOW (a window with a space is quoted: WINDOW '8 days')"
            ),
        }
    }
    let body_lower = body.to_ascii_lowercase();
    if let Some(action) = rfind_word(&body_lower, "action") {
        let call = body[action + 6..].trim();
        let args = call
            .get(..7)
            .filter(|w| w.eq_ignore_ascii_case("webhook"))
            .map(|_| call[7..].trim())
            .and_then(|c| c.strip_prefix('('))
            .and_then(|c| c.strip_suffix(')'))
            .ok_or_else(|| {
                anyhow::anyhow!("ACTION takes webhook('url') or webhook('url', 'template')")
            })?;
        let mut args = sql_strings(args)?.into_iter();
        rule.webhook = Some(
            args.next()
                .ok_or_else(|| anyhow::anyhow!("webhook(…) needs a URL"))?,
        );
        rule.template = args.next();
        anyhow::ensure!(
            args.next().is_none(),
            "webhook(…) takes a URL and a template, no more"
        );
        body = body[..action].trim();
    }
    anyhow::ensure!(!body.is_empty(), "CREATE RULE: the query after AS is empty");
    // Most rules route conversations: without KEY a rule fires once per conversation.
    rule.key
        .get_or_insert_with(|| "conversation_key".to_owned());
    rule.sql = Some(body.to_owned());
    Ok(Statement::Create(Box::new(rule)))
}

/// Comma-separated SQL strings ('…', a quote in one doubled: '').
fn sql_strings(text: &str) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    let mut chars = text.trim().chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        anyhow::ensure!(
            chars.next() == Some('\''),
            "webhook(…) takes quoted strings: webhook('url', 'template')"
        );
        let mut value = String::new();
        loop {
            match chars.next() {
                Some('\'') if chars.peek() == Some(&'\'') => {
                    chars.next();
                    value.push('\'');
                }
                Some('\'') => break,
                Some(c) => value.push(c),
                None => anyhow::bail!("webhook(…): a string is not closed"),
            }
        }
        out.push(value);
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        match chars.next() {
            None => return Ok(out),
            Some(',') => continue,
            Some(c) => anyhow::bail!("webhook(…): '{c}' where a comma or the end belongs"),
        }
    }
}

/// The words of `text`, a quoted value ('8 days') one word with its quotes.
fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    for c in text.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                word.push(c);
            }
            c if c.is_whitespace() && !quoted => {
                if !word.is_empty() {
                    out.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

fn is_word_at(text: &str, i: usize, word: &str) -> bool {
    let before = text[..i].chars().next_back();
    let after = text[i + word.len()..].chars().next();
    text[i..].starts_with(word)
        && before.is_none_or(char::is_whitespace)
        && after.is_none_or(|c| c.is_whitespace() || c == '(')
}

fn find_word(text: &str, word: &str) -> Option<usize> {
    text.match_indices(word)
        .map(|(i, _)| i)
        .find(|&i| is_word_at(text, i, word))
}

fn rfind_word(text: &str, word: &str) -> Option<usize> {
    text.rmatch_indices(word)
        .map(|(i, _)| i)
        .find(|&i| is_word_at(text, i, word))
}

/// The rules clients made and did not drop, in the order they were made.
pub fn load(rules_dir: &std::path::Path) -> anyhow::Result<Vec<Kept>> {
    let path = rules_dir.join(DEFINED);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let mut rules: Vec<Kept> = Vec::new();
    for line in text.lines() {
        // A line cut short by a crash was never answered: the rule was not made.
        let Ok(c) = serde_json::from_str::<Change>(line) else {
            continue;
        };
        rules.retain(|r| r.section.name.as_deref() != Some(c.name.as_str()));
        if c.op == "create" {
            rules.push(Kept {
                section: RuleSection {
                    name: Some(c.name),
                    sql: c.sql,
                    key: c.key,
                    scope: c.scope,
                    window: c.window,
                    webhook: c.webhook,
                    template: c.template,
                    ..Default::default()
                },
                by: c.by,
            });
        }
    }
    Ok(rules)
}

/// The statements' handler: hands rules to the runner and keeps them.
pub struct RuleBook {
    pub enabled: bool,
    /// `host:port` a client rule's webhook may call.
    pub hosts: Vec<String>,
    pub dir: PathBuf,
    pub commands: mpsc::Sender<Command>,
    /// One change at a time: the file's order is the runner's.
    pub writing: std::sync::Arc<tokio::sync::Mutex<()>>,
}

impl RuleBook {
    pub fn allowed(&self, url: &str) -> anyhow::Result<()> {
        let parsed = url::Url::parse(url).with_context(|| format!("webhook '{url}'"))?;
        anyhow::ensure!(
            matches!(parsed.scheme(), "http" | "https"),
            "webhook '{url}': only http and https"
        );
        let host = parsed.host_str().unwrap_or_default();
        let port = parsed.port_or_known_default().unwrap_or(0);
        let here = format!("{host}:{port}");
        anyhow::ensure!(
            self.hosts
                .iter()
                .any(|h| h == &here || (h == host && parsed.port().is_none())),
            "webhook '{url}': {here} is not in [live] rule_webhook_hosts (the hosts client rules may call)"
        );
        Ok(())
    }

    async fn run_statement(&self, sql: &str, user: &str) -> anyhow::Result<String> {
        anyhow::ensure!(
            self.enabled,
            "rules are the operator's here: [live] client_rules = true lets clients make them"
        );
        let statement = parse(sql)?;
        if let Statement::Create(section) = &statement
            && let Some(url) = &section.webhook
        {
            self.allowed(url)?;
        }
        let commands = self.commands.clone();
        let dir = self.dir.clone();
        let user = user.to_owned();
        let writing = std::sync::Arc::clone(&self.writing);
        // Applied and written down together, whatever happens to the client's call meanwhile: a rule
        // the runner has must be in the file, and a dropped one out of it.
        tokio::spawn(async move {
            let _one = writing.lock().await;
            change(statement, &commands, &dir, &user).await
        })
        .await?
    }
}

/// Sends the runner one command and waits until it is applied.
async fn ask(
    commands: &mpsc::Sender<Command>,
    command: impl FnOnce(oneshot::Sender<anyhow::Result<()>>) -> Command,
) -> anyhow::Result<()> {
    let stopped = || anyhow::anyhow!("the rule runner has stopped");
    let (done, answer) = oneshot::channel();
    commands.send(command(done)).await.map_err(|_| stopped())?;
    answer.await.map_err(|_| stopped())?
}

/// Hands `statement` to the runner and, once it is applied, appends it to `defined.jsonl`.
async fn change(
    statement: Statement,
    commands: &mpsc::Sender<Command>,
    dir: &std::path::Path,
    user: &str,
) -> anyhow::Result<String> {
    let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let (name, record) = match statement {
        Statement::Create(section) => {
            let mut rule = section.resolve()?;
            rule.from_client = true;
            rule.owner = Some(user.to_owned());
            let name = rule.name.clone();
            ask(commands, |done| Command::Add(rule, done)).await?;
            let record = Change {
                op: "create".into(),
                name: name.clone(),
                sql: section.sql,
                key: section.key,
                scope: section.scope,
                window: section.window,
                webhook: section.webhook,
                template: section.template,
                by: user.to_owned(),
                at,
            };
            (name, record)
        }
        Statement::Drop(name) => {
            ask(commands, |done| {
                Command::Drop(name.clone(), user.to_owned(), done)
            })
            .await?;
            let record = Change {
                op: "drop".into(),
                name: name.clone(),
                sql: None,
                key: None,
                scope: None,
                window: None,
                webhook: None,
                template: None,
                by: user.to_owned(),
                at,
            };
            (name, record)
        }
    };
    append(dir, &record)?;
    let done = if record.op == "create" {
        "created"
    } else {
        "dropped"
    };
    Ok(format!("rule {name} {done}"))
}

fn append(dir: &std::path::Path, change: &Change) -> anyhow::Result<()> {
    use std::io::Write;
    let path = dir.join(DEFINED);
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    let mut line = serde_json::to_vec(change)?;
    line.push(b'\n');
    file.write_all(&line)?;
    file.sync_data()?;
    Ok(())
}

#[async_trait::async_trait]
impl colloquy_flight::RuleStatements for RuleBook {
    fn claims(&self, sql: &str) -> bool {
        is_rule_statement(sql)
    }

    async fn run(&self, sql: &str, user: &str) -> colloquy_flight::Result<String> {
        self.run_statement(sql, user)
            .await
            .map_err(|e| colloquy_flight::Error::invalid(format!("{e:#}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_parse_or_say_what_is_wrong() {
        let Statement::Create(r) = parse(
            "create rule Refund_Watch KEY conversation_key WINDOW '8 days' AS SELECT conversation_key, 'as' AS x \
             FROM conversation_messages WHERE text ILIKE '%action%' ACTION webhook('https://h.example/route');",
        )
        .expect("parses") else {
            panic!("a create");
        };
        assert_eq!(r.name.as_deref(), Some("refund_watch"));
        assert_eq!(r.key.as_deref(), Some("conversation_key"));
        assert_eq!(r.window.as_deref(), Some("8 days"));
        assert_eq!(r.webhook.as_deref(), Some("https://h.example/route"));
        assert_eq!(
            r.sql.as_deref(),
            Some(
                "SELECT conversation_key, 'as' AS x FROM conversation_messages WHERE text ILIKE '%action%'"
            )
        );
        assert_eq!(
            parse("DROP RULE refund_watch").expect("parses"),
            Statement::Drop("refund_watch".into())
        );
        let err = |sql: &str| parse(sql).expect_err("refused").to_string();
        assert!(err("CREATE RULE x SELECT 1").contains("no AS"));
        assert!(err("CREATE RULE x-y AS SELECT 1").contains("not a plain name"));
        assert!(err("CREATE RULE x SCOPE new AS SELECT 1").contains("takes a quoted value"));
        assert!(err("CREATE RULE x EVERY '1' AS SELECT 1").contains("is not KEY, SCOPE or WINDOW"));
        assert!(
            err("CREATE RULE x AS SELECT 1 ACTION email('a')").contains("ACTION takes webhook")
        );
        assert!(
            err("CREATE RULE x AS ").contains("no AS")
                || err("CREATE RULE x AS ").contains("empty")
        );
        assert!(err("DROP RULE a b").contains("one name"));
        assert!(is_rule_statement("  create\n RULE x AS SELECT 1"));
        assert!(!is_rule_statement("CREATE VIEW rule AS SELECT 1"));
    }
}
