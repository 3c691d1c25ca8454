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
    let cfg = DemoConfig::default();
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
    crate::set_up(&ctx, None, Some(&args.out)).await?;
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
