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

/// Registers the archive at `dir` as `messages`, with the options the demo is written for.
pub async fn register(ctx: &SessionContext, dir: &Path) -> anyhow::Result<()> {
    let location = format!("{}/", dir.canonicalize()?.display());
    colloquy::register_archive(ctx, colloquy::MESSAGES_TABLE, &location, DEMO_OPTIONS).await?;
    Ok(())
}

/// The headline queries `colloquy demo` prints.
pub const HEADLINES: &[(&str, &str)] = &[
    (
        "Messages by channel and sender role",
        "SELECT channel, sender_role, count(*) AS messages, count(DISTINCT conversation_id) AS conversations \
         FROM messages GROUP BY channel, sender_role ORDER BY channel, messages DESC",
    ),
    (
        "Busiest conversations",
        "SELECT channel, conversation_id, count(*) AS messages, min(ts) AS first_message, max(ts) AS last_message \
         FROM messages GROUP BY channel, conversation_id ORDER BY messages DESC, conversation_id LIMIT 10",
    ),
    (
        "Messages per week and channel",
        "SELECT date_trunc('week', ts) AS week, \
                count(*) FILTER (WHERE channel = 'whatsapp') AS whatsapp, \
                count(*) FILTER (WHERE channel = 'webchat') AS webchat, \
                count(*) FILTER (WHERE channel = 'sms') AS sms, \
                count(*) FILTER (WHERE channel = 'slack') AS slack, \
                count(*) AS total \
         FROM messages GROUP BY 1 ORDER BY 1",
    ),
    (
        "Busiest days",
        "SELECT CAST(ts AS DATE) AS day, count(*) AS messages FROM messages GROUP BY 1 ORDER BY messages DESC, day LIMIT 5",
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
    register(&ctx, &args.out).await?;
    let runner = Runner::new(ctx, OutputFormat::Table, false);
    for (title, sql) in HEADLINES {
        writeln!(out, "\n## {title}")?;
        runner.run_script(sql, title).await?;
    }
    writeln!(
        out,
        "\nQuery it yourself:\n  colloquy sql -c \"CREATE EXTERNAL TABLE messages STORED AS ARCHIVE LOCATION '{}/' OPTIONS ('timezone' 'Europe/Berlin', 'agents' '*| Acme Support,*(Acme)', 'bots' 'Acme Bot')\" -c \"SELECT ...\"\n  or: colloquy sql --demo",
        args.out.display()
    )?;
    Ok(())
}
