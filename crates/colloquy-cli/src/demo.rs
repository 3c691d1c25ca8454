//! `colloquy demo` and `colloquy sql --demo`: the demo archive and its headline analytics.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use colloquy_demo::{DEMO_OPTIONS, DemoConfig};
use datafusion::prelude::SessionContext;

use crate::DemoArgs;
use crate::output::OutputFormat;
use crate::runner::Runner;

/// Where colloquy keeps its cache: `$COLLOQUY_CACHE_DIR`, else `$XDG_CACHE_HOME/colloquy`, else
/// `~/.cache/colloquy`.
pub fn cache_dir() -> anyhow::Result<PathBuf> {
    if let Some(d) = std::env::var_os("COLLOQUY_CACHE_DIR") {
        return Ok(PathBuf::from(d));
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME") {
        return Ok(PathBuf::from(d).join("colloquy"));
    }
    let home = std::env::var_os("HOME")
        .context("cannot find a cache directory: set COLLOQUY_CACHE_DIR")?;
    Ok(PathBuf::from(home).join(".cache").join("colloquy"))
}

/// The cached default demo archive, generated on first use. A marker file written last means a run
/// that was interrupted half-way regenerates it rather than serving a partial archive.
pub async fn ensure_cached() -> anyhow::Result<PathBuf> {
    ensure_cached_with(DemoConfig::default()).await
}

/// The demo of `serve --demo --live` and `replay --demo`: twenty times the default's traffic (394,471
/// messages), so that an hour of the incident holds enough negative messages for `negative_spike` to tell
/// it from chance.
pub const LIVE_DEMO: DemoConfig = DemoConfig {
    conversations: 60_000,
    seed: 42,
};

/// Where the live demo's history stops and its replay starts: the incident's first day, at midnight in
/// the shop's time zone.
pub fn live_demo_cut() -> String {
    colloquy_demo::incident_start_utc().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The live store of `serve --demo --live`, and the token file `replay --demo` reads.
pub fn live_demo_dir() -> anyhow::Result<PathBuf> {
    Ok(cache_dir()?.join("live-demo"))
}

/// The `[live]` of `serve --demo --live`: an empty store in [`live_demo_dir`], a new token (written to
/// `token` there for `replay --demo`), the built-in rules, and the live demo's history up to its cut.
pub fn live_section(rule_webhook: Option<String>) -> anyhow::Result<crate::config::LiveSection> {
    let dir = live_demo_dir()?;
    if dir.exists() {
        std::fs::remove_dir_all(&dir)
            .with_context(|| format!("cannot empty the demo's live store {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir)?;
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness for a token: {e}"))?;
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let path = dir.join("token");
    {
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        f.write_all(token.as_bytes())?;
    }
    Ok(crate::config::LiveSection {
        dir: dir.join("store"),
        bind: Some(LIVE_DEMO_BIND.to_owned()),
        token: Some(token),
        history_until: Some(live_demo_cut()),
        rule: crate::rules::BUILTIN
            .iter()
            .map(|b| crate::config::RuleSection {
                builtin: Some(b.name.to_owned()),
                webhook: rule_webhook.clone(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    })
}

/// Where `serve --demo --live` takes messages.
pub const LIVE_DEMO_BIND: &str = "127.0.0.1:8081";

/// [`ensure_cached`] for a configuration.
pub async fn ensure_cached_with(cfg: DemoConfig) -> anyhow::Result<PathBuf> {
    let dir = cache_dir()?.join(format!("demo-v1-{}-{}", cfg.conversations, cfg.seed));
    let marker = dir.join(".complete");
    if !marker.exists() {
        eprintln!(
            "writing the demo archive to {} (first use only)…",
            dir.display()
        );
        let d = dir.clone();
        tokio::task::spawn_blocking(move || colloquy_demo::generate_to(&d, cfg)).await??;
        std::fs::write(&marker, b"")?;
    }
    Ok(dir)
}

/// A query on one line, its runs of spaces folded: printed above each result.
fn squeeze(sql: &str) -> String {
    sql.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Registers the archive at `dir` as `messages`, with the options the demo is written for.
pub async fn register(ctx: &SessionContext, dir: &Path) -> anyhow::Result<()> {
    let location = format!("{}/", dir.canonicalize()?.display());
    colloquy::register_archive(ctx, colloquy::MESSAGES_TABLE, &location, DEMO_OPTIONS).await?;
    Ok(())
}

/// The story `colloquy demo` tells, one query a step: who writes and in what language, how they feel and
/// what they want, how fast and how well they are served, and the incident hidden in the archive (a
/// delivery-tracking outage in WhatsApp, week of 2026-03-02). Every query reads the analytics views.
pub const HEADLINES: &[(&str, &str)] = &[
    (
        "Language mix per channel (language_mix)",
        "SELECT channel, string_agg(language || ' ' || CAST(round(100 * message_share) AS INT) || '%', ', ' \
         ORDER BY message_share DESC) AS languages FROM language_mix WHERE message_share >= 0.05 \
         GROUP BY channel ORDER BY channel",
    ),
    (
        "Sentiment and top intents per channel (conversations)",
        "WITH c AS (SELECT channel, count(*) AS conversations, round(avg(first_sentiment), 2) AS opening_sentiment, \
         round(avg(CASE WHEN ended_negative THEN 1.0 ELSE 0.0 END), 2) AS ended_negative FROM conversations GROUP BY channel), \
         i AS (SELECT channel, opening_intent, row_number() OVER (PARTITION BY channel ORDER BY count(*) DESC, opening_intent) AS r \
         FROM conversations WHERE opening_intent <> 'none' GROUP BY channel, opening_intent) \
         SELECT c.channel, c.conversations, c.opening_sentiment, c.ended_negative, \
         string_agg(i.opening_intent, ', ' ORDER BY i.r) AS top_intents FROM c JOIN i ON i.channel = c.channel AND i.r <= 3 \
         GROUP BY c.channel, c.conversations, c.opening_sentiment, c.ended_negative ORDER BY c.channel",
    ),
    (
        "First-contact resolution and time to first response (first_contact_resolution, conversations)",
        "SELECT f.channel, f.fcr_rate, r.median_first_response_min FROM \
         (SELECT channel, round(sum(resolved_first_contacts) / CAST(sum(decided_first_contacts) AS DOUBLE), 2) AS fcr_rate \
         FROM first_contact_resolution GROUP BY channel) f JOIN \
         (SELECT channel, round(median(first_response_s) / 60, 1) AS median_first_response_min FROM conversations GROUP BY channel) r \
         ON r.channel = f.channel ORDER BY f.channel",
    ),
    (
        "The incident: weeks whose texts, intents and sentiment all drifted (drift_weekly)",
        "SELECT channel, week, round(reference_sentiment_mean, 2) AS sentiment_before, round(sentiment_mean, 2) AS sentiment_now, \
         array_to_string(array_slice(top_intents, 1, 4), ' ') AS intents_that_moved \
         FROM drift_weekly WHERE drifted AND sentiment_drifted ORDER BY week, channel",
    ),
    (
        "... and track_order in WhatsApp turning negative (intent_trends)",
        "SELECT week, conversations, round(share, 2) AS share, round(avg_first_sentiment, 2) AS opening_sentiment, \
         round(negative_share, 2) AS ended_negative FROM intent_trends \
         WHERE channel = 'whatsapp' AND intent = 'track_order' AND week >= DATE '2026-02-16' ORDER BY week",
    ),
];

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let cfg = DemoConfig {
        conversations: args.conversations,
        seed: args.seed,
    };
    let started = Instant::now();
    let out = args.out.clone();
    let (demo, stats) = tokio::task::spawn_blocking(move || colloquy_demo::generate_to(&out, cfg))
        .await?
        .with_context(|| format!("cannot write the demo archive to {}", args.out.display()))?;
    let secs = started.elapsed().as_secs_f64();
    let mut out = std::io::stdout();
    writeln!(
        out,
        "Wrote {} messages in {} conversations ({} files, {:.1} MB) to {} in {:.2} s ({:.0} messages/s)",
        stats.rows,
        demo.conversations.len(),
        stats.files,
        stats.bytes as f64 / 1e6,
        args.out.display(),
        secs,
        stats.rows as f64 / secs.max(1e-9)
    )?;
    let ctx = colloquy::new_context();
    crate::set_up(&ctx, None, Some(&args.out), None).await?;
    let runner = Runner::new(ctx, OutputFormat::Table, false);
    for (title, sql) in HEADLINES {
        writeln!(out, "\n## {title}\n-- {}", squeeze(sql))?;
        runner.run_script(sql, title).await?;
    }
    writeln!(
        out,
        "\nNext:\n  colloquy sql --demo                   the same archive in a SQL shell (\\d lists the views)\n  colloquy serve --demo                 the Flight SQL server for BI tools, ADBC/JDBC and the notebooks\n  notebooks/README.md                   the notebooks: KPIs per channel, sentiment and drift, ONNX models\n  colloquy sql -c \"CREATE EXTERNAL TABLE messages STORED AS ARCHIVE LOCATION '{}/' OPTIONS ('timezone' 'Europe/Berlin')\"  your own exports",
        args.out.display()
    )?;
    Ok(())
}
