//! `--config FILE`: archives to register and DataFusion settings, in TOML.
//!
//! ```toml
//! [settings]
//! "datafusion.execution.target_partitions" = "4"
//!
//! [[archive]]
//! name = "support"
//! location = "s3://acme/exports/"
//! options = { timezone = "Europe/Berlin", agents = "Acme Support" }
//!
//! [[model]]                    # CREATE OR REPLACE FUNCTION name(TEXT) RETURNS ... LANGUAGE ONNX AS location
//! name = "toxicity"
//! location = "s3://models/toxicity.onnx"
//! returns = "DOUBLE"           # TEXT (label), DOUBLE (score), FLOAT[] or FLOAT[384] (vector)
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use datafusion::prelude::SessionContext;
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
    #[serde(default)]
    pub archive: Vec<ArchiveEntry>,
    /// ONNX models registered as SQL functions in every session.
    #[serde(default)]
    pub model: Vec<ModelEntry>,
    /// `colloquy serve` settings.
    pub server: Option<ServerSection>,
    /// Live ingest: messages posted to `colloquy serve` join `messages`.
    pub live: Option<LiveSection>,
}

/// ```toml
/// [live]
/// dir = "/var/lib/colloquy/live"  # write-ahead log and flushed messages (data/<channel>/<day>/*.jsonl)
/// bind = "127.0.0.1:8081"         # POST /v1/messages, GET /health
/// token = "…"                     # bearer token of POST /v1/messages (at least 16 bytes; unset: off)
/// max_body_bytes = 1048576        # one request
/// flush_ms = 1000                 # how often accepted messages become files the archive reader reads
/// data = "s3://bucket/live/"      # flushed messages on an object store (default: dir/data/)
/// client_rules = true             # Flight SQL clients may CREATE RULE / DROP RULE
/// rule_webhook_hosts = ["hooks.example.com:443"]  # where their webhooks may go (none: rule_events only)
/// flight_ingest = true            # Flight SQL clients may push rows into live_messages (bulk ingest, append)
/// [live.whatsapp]                 # WhatsApp Business Cloud API webhooks: GET (handshake) and POST /v1/whatsapp
/// app_secret = "…"                # signs X-Hub-Signature-256
/// verify_token = "…"              # the subscription handshake's hub.verify_token
/// [live.twilio]                   # Twilio SMS / WhatsApp webhooks: POST /v1/twilio
/// auth_token = "…"                # signs X-Twilio-Signature
/// url = "https://chat.example.com/v1/twilio"  # the webhook URL exactly as configured in Twilio
/// [live.slack]                    # Slack Events API: POST /v1/slack
/// signing_secret = "…"
/// [[live.rule]]                   # a built-in rule of sql/rules/
/// builtin = "negative_streak"     # or negative_spike, customer_waiting
/// [[live.rule]]                   # a standing query; each new value of `key` fires once
/// name = "negative_customer"
/// sql = "SELECT conversation_key, channel, text FROM conversation_messages WHERE sentiment < -0.5"
/// key = "conversation_key"
/// webhook = "https://hooks.example.com/route"   # optional: POSTed the event (else only rule_events)
/// scope = "conversation"          # what each evaluation reads: the conversations that got new messages
///                                 # (default), "new" (the new messages only), "all", or
/// # window = "25 hours"           # the conversations with a message in the newest 25 hours
/// # [live] webhook_tries = 5: tries per POST
/// ```
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiveSection {
    pub dir: std::path::PathBuf,
    pub bind: Option<String>,
    pub token: Option<String>,
    pub max_body_bytes: Option<usize>,
    pub flush_ms: Option<u64>,
    pub whatsapp: Option<WhatsAppSection>,
    pub twilio: Option<TwilioSection>,
    pub slack: Option<SlackSection>,
    /// Tries per webhook action before it is dead-lettered (backoff from half a second, doubling).
    pub webhook_tries: Option<u32>,
    /// Where flushes write the messages: an object-store prefix (`s3://bucket/live/`); unset,
    /// `<dir>/data/`. The write-ahead log stays in `dir`.
    pub data: Option<String>,
    /// Flight SQL clients may make and drop rules (`CREATE RULE`, `DROP RULE`).
    pub client_rules: Option<bool>,
    /// `host:port` (or `host`, for its scheme's port) that the webhooks of client rules may call; none:
    /// client rules only record into `rule_events`.
    #[serde(default)]
    pub rule_webhook_hosts: Vec<String>,
    /// Flight SQL clients may push messages with bulk ingest (DoPut, mode 'append') into `live_messages`.
    pub flight_ingest: Option<bool>,
    /// Archive messages at or after this time (RFC 3339) are left out of `messages`: they are the ones
    /// to be replayed (`colloquy replay --from`), to try rules on past traffic as if it were live.
    pub history_until: Option<String>,
    #[serde(default)]
    pub rule: Vec<RuleSection>,
}

/// A rule: its own `sql` and `key`, or a `builtin` one from `sql/rules/` (negative_streak, negative_spike,
/// customer_waiting).
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSection {
    pub name: Option<String>,
    pub builtin: Option<String>,
    pub sql: Option<String>,
    pub key: Option<String>,
    pub webhook: Option<String>,
    /// The webhook's JSON body, with `{{column}}` (the matched row's values, as JSON), `{{rule}}`,
    /// `{{key}}` and `{{fired_at}}`; unset: the event (`rule`, `key`, `fired_at`, `row`).
    pub template: Option<String>,
    /// `conversation` (default), `new` or `all`: what `messages` and `live_messages` hold when the
    /// rule is evaluated after a flush.
    pub scope: Option<String>,
    /// The conversations with a message this long before the newest one (`25 hours`, `90 minutes`):
    /// for rules over time windows that must also fire when a conversation gets nothing new.
    pub window: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WhatsAppSection {
    pub app_secret: String,
    pub verify_token: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TwilioSection {
    pub auth_token: String,
    pub url: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackSection {
    pub signing_secret: String,
}

/// ```toml
/// [server]
/// bind = "0.0.0.0:50051"
/// tls_cert = "cert.pem"
/// tls_key = "key.pem"
/// expand_views = true          # send Utf8View/BinaryView as Utf8/Binary
/// # What clients may reach besides the registered archives and models (and the demo with --demo):
/// read = ["s3://acme/exports/", "/srv/chats/"]   # URL or path prefixes clients may read
/// write = ["/srv/colloquy/out/"]                  # prefixes COPY / INSERT may write (none by default)
/// allow_hosts = ["127.0.0.1:9000"]               # internal hosts and object-store endpoints clients may name
/// memory_limit = "2GB"         # shared by all queries; DataFusion spills where it can
/// query_memory_limit = "1GB"   # at most this much per statement (within memory_limit)
/// archive_cache = "512MB"      # parsed archive messages kept between queries ("0" turns it off)
/// view_cache = "1GB"          # conversation_messages and conversations kept per archive version ("0": off)
/// query_timeout_secs = 300     # every statement, command and ingest
/// session_idle_secs = 900      # sessions without a call for this long are closed
/// max_sessions = 256
/// max_queries_per_user = 16    # statements one user (an anonymous client: one session) runs at once
/// max_sql_bytes = 1048576
/// max_expression_depth = 256
/// max_target_partitions = 16   # the most a client may SET datafusion.execution.target_partitions to
/// max_ingest_bytes = "512MB"   # one bulk ingest
/// max_tokens = 10000           # session tokens alive at once
/// token_ttl_secs = 43200       # session tokens expire after 12 hours
/// allow_plaintext_passwords = false  # passwords over plain TCP on a non-loopback address
/// metrics_bind = "127.0.0.1:9090"   # /metrics (Prometheus) and /health
/// audit_log = "/var/log/colloquy/audit.jsonl"  # every statement, hash-chained; the table `audit_log`
///                                              # (or a prefix: "s3://bucket/audit/", one object per put)
/// [server.users]               # basic-auth users (handshake → bearer token): argon2 hashes
/// ana = "$argon2id$v=19$m=19456,t=2,p=1$…"      # from `colloquy hash-password`
/// [server.tokens]              # static API tokens → user name
/// "tok-ci-123" = "ci"
///
/// # Governance (see colloquy::governance). Once any of these is set, a user reads only the tables a
/// # role of theirs is granted; every user has the role "public".
/// [server.roles]               # role → members
/// emea = ["ana"]
/// ml = ["carol"]
/// [[server.grant]]
/// role = "emea"
/// select = ["messages"]        # tables a role reads ("*": all); the analytics views follow `messages`
/// write = false                # COPY, INSERT into file tables, bulk ingest
/// create_function = false      # CREATE / DROP FUNCTION (ONNX models)
/// [[server.row_policy]]        # rows of `table` the roles see: where `using` is true (several: any)
/// table = "messages"
/// roles = ["emea"]
/// using = "channel IN ('whatsapp', 'sms')"
/// [[server.column_policy]]     # how `column` looks to roles not in `except`
/// table = "messages"
/// column = "sender_id"
/// mask = "hash"                # "hide", "null", "hash", or a SQL expression such as "redact_pii(text)"
/// except = ["ml"]
/// ```
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    pub bind: Option<String>,
    pub tls_cert: Option<std::path::PathBuf>,
    pub tls_key: Option<std::path::PathBuf>,
    pub expand_views: Option<bool>,
    pub memory_limit: Option<String>,
    pub query_memory_limit: Option<String>,
    pub archive_cache: Option<String>,
    pub view_cache: Option<String>,
    pub query_timeout_secs: Option<f64>,
    pub session_idle_secs: Option<f64>,
    pub metrics_bind: Option<String>,
    /// The audit trail (JSON Lines, hash-chained), readable as the table `audit_log`: a local file, or an
    /// object-store URL whose prefix gets one segment object per put.
    pub audit_log: Option<String>,
    #[serde(default)]
    pub read: Vec<String>,
    #[serde(default)]
    pub write: Vec<String>,
    #[serde(default)]
    pub allow_hosts: Vec<String>,
    pub max_sessions: Option<usize>,
    pub max_queries_per_user: Option<usize>,
    pub max_sql_bytes: Option<usize>,
    pub max_expression_depth: Option<usize>,
    pub max_target_partitions: Option<usize>,
    pub max_ingest_bytes: Option<String>,
    pub max_tokens: Option<usize>,
    pub token_ttl_secs: Option<f64>,
    #[serde(default)]
    pub allow_plaintext_passwords: bool,
    #[serde(default)]
    pub users: BTreeMap<String, String>,
    #[serde(default)]
    pub tokens: BTreeMap<String, String>,
    #[serde(default)]
    pub roles: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub grant: Vec<GrantEntry>,
    #[serde(default)]
    pub row_policy: Vec<RowPolicyEntry>,
    #[serde(default)]
    pub column_policy: Vec<ColumnPolicyEntry>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantEntry {
    pub role: String,
    #[serde(default)]
    pub select: Vec<String>,
    #[serde(default)]
    pub write: bool,
    #[serde(default)]
    pub create_function: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RowPolicyEntry {
    pub table: String,
    pub roles: Vec<String>,
    pub using: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnPolicyEntry {
    pub table: String,
    pub column: String,
    pub mask: String,
    #[serde(default)]
    pub except: Vec<String>,
}

impl ServerSection {
    /// The governance rules of this section, with the locations of `tables` (name → location) to
    /// protect from direct reads.
    pub fn rules(&self, tables: BTreeMap<String, String>) -> colloquy::governance::Rules {
        use colloquy::governance::{ColumnPolicy, Grant, Mask, RowPolicy, Rules};
        Rules {
            roles: self.roles.clone(),
            grants: self
                .grant
                .iter()
                .map(|g| Grant {
                    role: g.role.clone(),
                    select: g.select.clone(),
                    write: g.write,
                    create_function: g.create_function,
                })
                .collect(),
            row_policies: self
                .row_policy
                .iter()
                .map(|p| RowPolicy {
                    table: p.table.clone(),
                    roles: p.roles.clone(),
                    using: p.using.clone(),
                })
                .collect(),
            column_policies: self
                .column_policy
                .iter()
                .map(|p| ColumnPolicy {
                    table: p.table.clone(),
                    column: p.column.clone(),
                    mask: Mask::parse(&p.mask),
                    except: p.except.clone(),
                })
                .collect(),
            locations: tables,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchiveEntry {
    pub name: String,
    pub location: String,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelEntry {
    pub name: String,
    pub location: String,
    pub returns: String,
}

pub fn load(path: &Path) -> anyhow::Result<Config> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config {}", path.display()))?;
    toml::from_str(&text).map_err(|e| anyhow::anyhow!("config {}: {e}", path.display()))
}

/// Applies the config file at `path` to `ctx` and returns it (its `[live]` section is attached later).
pub async fn apply(ctx: &SessionContext, path: &Path) -> anyhow::Result<Config> {
    let config = load(path)?;
    for (key, value) in &config.settings {
        ctx.sql(&format!("SET {key} = '{}'", value.replace('\'', "''")))
            .await
            .with_context(|| format!("config {}: setting '{key}'", path.display()))?;
    }
    for a in &config.archive {
        let opts: Vec<(&str, &str)> = a
            .options
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        colloquy::register_archive(ctx, &a.name, &a.location, &opts)
            .await
            .with_context(|| format!("config {}: archive '{}'", path.display(), a.name))?;
    }
    for m in &config.model {
        let sql = format!(
            "CREATE OR REPLACE FUNCTION \"{}\"(TEXT) RETURNS {} LANGUAGE ONNX AS '{}'",
            m.name.replace('"', "\"\""),
            m.returns,
            m.location.replace('\'', "''")
        );
        ctx.sql(&sql)
            .await
            .with_context(|| format!("config {}: model '{}'", path.display(), m.name))?;
    }
    Ok(config)
}
