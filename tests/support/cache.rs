//! The parsed-archive cache a server shares between sessions: answers stay the same whatever the
//! projection, an object is parsed once per version, and changed or new exports are read again.

use std::sync::Arc;

use anyhow::ensure;
use colloquy::archive::ParsedCache;
use datafusion::prelude::{SessionConfig, SessionContext};

use super::{Test, rows};

fn line(conv: &str, id: &str, text: &str) -> String {
    format!(
        "{{\"session_id\": \"{conv}\", \"id\": \"{id}\", \"timestamp\": \"2025-01-20T09:00:00Z\", \"role\": \"visitor\", \"text\": \"{text}\"}}\n"
    )
}

async fn session(
    cache: &Arc<ParsedCache>,
    dir: &std::path::Path,
) -> anyhow::Result<SessionContext> {
    let ctx = colloquy::new_context_with_config(cache.attach(SessionConfig::new()));
    colloquy::register_archive(
        &ctx,
        "t",
        &format!("{}/", dir.display()),
        &[("format", "jsonl"), ("on_error", "skip")],
    )
    .await?;
    Ok(ctx)
}

async fn parsed_once_per_version() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let a = dir.path().join("a.jsonl");
    let b = dir.path().join("b.jsonl");
    std::fs::write(
        &a,
        format!(
            "{}{}{{not json\n",
            line("c1", "m1", "where is my order"),
            line("c1", "m2", "thanks")
        ),
    )?;
    std::fs::write(&b, line("c2", "m3", "refund please"))?;
    let cache = Arc::new(ParsedCache::new(64 << 20));
    let ctx = session(&cache, dir.path()).await?;

    let first = rows(&ctx, "SELECT text FROM t ORDER BY text").await?;
    ensure!(
        first == [["refund please"], ["thanks"], ["where is my order"]],
        "first scan: {first:?}"
    );
    let s = cache.stats();
    ensure!(
        (s.misses, s.hits, s.entries) == (2, 0, 2),
        "after the first scan: {s:?}"
    );

    // Another projection (and the line numbers) from the cached entries, and the skipped line again.
    let second = rows(
        &ctx,
        "SELECT conversation_id, message_id, source_line FROM t ORDER BY message_id",
    )
    .await?;
    ensure!(
        second == [["c1", "m1", "1"], ["c1", "m2", "2"], ["c2", "m3", "1"]],
        "second scan: {second:?}"
    );
    let s = cache.stats();
    ensure!(
        (s.misses, s.hits) == (2, 2),
        "the second scan parsed again: {s:?}"
    );
    let errors = rows(&ctx, "SELECT line FROM archive_errors()").await?;
    ensure!(
        errors == [["3"]],
        "skipped records replayed from the cache: {errors:?}"
    );

    // A second session sharing the cache (a second client of the server) parses nothing.
    let other = session(&cache, dir.path()).await?;
    let n = rows(
        &other,
        "SELECT count(*) FROM t WHERE channel = 'webchat' OR true",
    )
    .await?;
    ensure!(n == [["3"]], "second session: {n:?}");
    ensure!(cache.stats().misses == 2, "{:?}", cache.stats());

    // An export replaced in place and a new one: only those two are read.
    std::fs::write(
        &b,
        format!(
            "{}{}",
            line("c2", "m3", "refund please"),
            line("c2", "m4", "any news?")
        ),
    )?;
    std::fs::write(dir.path().join("c.jsonl"), line("c3", "m5", "hello"))?;
    let third = rows(&ctx, "SELECT message_id FROM t ORDER BY message_id").await?;
    ensure!(
        third == [["m1"], ["m2"], ["m3"], ["m4"], ["m5"]],
        "after the change: {third:?}"
    );
    let s = cache.stats();
    ensure!(
        s.misses == 4,
        "only b (changed) and c (new) are parsed: {s:?}"
    );
    Ok(())
}

/// Many small exports come back as a few batches, not one per export.
async fn small_exports_are_coalesced() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    for i in 0..200 {
        std::fs::write(
            dir.path().join(format!("chat-{i:03}.jsonl")),
            line(&format!("c{i}"), &format!("m{i}"), "hi"),
        )?;
    }
    let cache = Arc::new(ParsedCache::new(64 << 20));
    let ctx = session(&cache, dir.path()).await?;
    for round in 0..2 {
        let batches = ctx
            .sql("SELECT conversation_id FROM t")
            .await?
            .collect()
            .await?;
        let total: usize = batches.iter().map(|b| b.num_rows()).sum();
        ensure!(total == 200, "round {round}: {total} rows");
        ensure!(
            batches.len() <= 16,
            "round {round}: {} batches for 200 one-line exports",
            batches.len()
        );
    }
    ensure!(cache.stats().hits == 200, "{:?}", cache.stats());
    Ok(())
}

/// Every kind of scan unit (Slack folders, byte ranges of a split JSON Lines file, zips of mixed
/// exports) gives the same rows from the cache as without one.
async fn every_unit_kind_reads_back_the_same() -> anyhow::Result<()> {
    let root = super::fixtures();
    let cases = [
        (root.join("slack_folder"), vec![]),
        (root.join("mixed"), vec![]),
        (root.join("jsonl"), vec![("split_size", "300")]),
        (root.join("whatsapp"), vec![]),
    ];
    let summary = "SELECT count(*), count(DISTINCT message_id), sum(length(text)), \
                   min(source_line), max(source_line), count(DISTINCT source) FROM t";
    let cache = Arc::new(ParsedCache::new(64 << 20));
    for (dir, options) in cases {
        let location = format!("{}/", dir.display());
        let mut options = options;
        options.push(("on_error", "skip"));
        let plain = colloquy::new_context();
        colloquy::register_archive(&plain, "t", &location, &options).await?;
        let want = rows(&plain, summary).await?;
        let cached = colloquy::new_context_with_config(cache.attach(SessionConfig::new()));
        colloquy::register_archive(&cached, "t", &location, &options).await?;
        let before = cache.stats();
        for round in 0..2 {
            let got = rows(&cached, summary).await?;
            ensure!(got == want, "{location} round {round}: {got:?} vs {want:?}");
        }
        let after = cache.stats();
        ensure!(
            after.hits > before.hits && after.entries > before.entries,
            "{location}: the second round did not use the cache ({before:?} → {after:?})"
        );
    }
    Ok(())
}

/// An export too large for the cache's budget is streamed as without a cache, and not kept.
async fn large_exports_stream_past_the_cache() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let big: String = (0..200)
        .map(|i| line("c1", &format!("m{i}"), "a longer message about an order"))
        .collect();
    std::fs::write(dir.path().join("big.jsonl"), &big)?;
    std::fs::write(dir.path().join("small.jsonl"), line("c2", "s1", "hi"))?;
    // 16 times the small export, far less than 16 times the big one.
    let cache = Arc::new(ParsedCache::new(16 * 2048));
    let ctx = session(&cache, dir.path()).await?;
    for round in 0..2 {
        let n = rows(&ctx, "SELECT count(*) FROM t").await?;
        ensure!(n == [["201"]], "round {round}: {n:?}");
    }
    let s = cache.stats();
    ensure!(
        s.entries == 1 && s.hits == 1 && s.misses == 1,
        "only the small export is cached: {s:?}"
    );
    Ok(())
}

pub fn tests() -> Vec<Test> {
    vec![
        Test::new("cache::parsed_once_per_version", parsed_once_per_version),
        Test::new(
            "cache::small_exports_are_coalesced",
            small_exports_are_coalesced,
        ),
        Test::new(
            "cache::every_unit_kind_reads_back_the_same",
            every_unit_kind_reads_back_the_same,
        ),
        Test::new(
            "cache::large_exports_stream_past_the_cache",
            large_exports_stream_past_the_cache,
        ),
    ]
}
