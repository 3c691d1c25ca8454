//! The kept results of `conversation_messages` and `conversations` (`colloquy::view_cache`): the same
//! answers as the plain views, computed once per archive version, and computed again when an export, a
//! setting or the budget says so.

use std::sync::Arc;

use anyhow::ensure;
use colloquy::view_cache::ViewCache;
use datafusion::prelude::SessionContext;

use super::{Test, rows};

/// A web chat log line: conversation `conv`, a customer message at `minute` past 09:00.
fn line(conv: &str, id: &str, minute: u32, text: &str) -> String {
    format!(
        "{{\"session_id\": \"{conv}\", \"id\": \"{id}\", \"timestamp\": \"2025-01-20T09:{minute:02}:00Z\", \"role\": \"visitor\", \"text\": \"{text}\"}}\n"
    )
}

async fn session(
    dir: &std::path::Path,
    cache: Option<&Arc<ViewCache>>,
) -> anyhow::Result<SessionContext> {
    let ctx = colloquy::new_context();
    if let Some(cache) = cache {
        cache.install(&ctx);
    }
    colloquy::register_archive(
        &ctx,
        "messages",
        &format!("{}/", dir.display()),
        &[("format", "jsonl")],
    )
    .await?;
    colloquy::analytics::install_views(&ctx).await?;
    Ok(ctx)
}

const CONVERSATIONS: &str = "SELECT conversation_key, messages, customer_messages FROM conversations ORDER BY conversation_key";

async fn kept_until_the_archive_changes() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    std::fs::write(
        dir.path().join("a.jsonl"),
        format!(
            "{}{}",
            line("c1", "m1", 0, "where is my order"),
            line("c1", "m2", 1, "it is late")
        ),
    )?;
    let cache = Arc::new(ViewCache::new(64 << 20));
    let ctx = session(dir.path(), Some(&cache)).await?;

    let first = rows(&ctx, CONVERSATIONS).await?;
    ensure!(first == [["jsonl/c1#1", "2", "2"]], "first: {first:?}");
    // conversations missed, and so did conversation_messages under it.
    ensure!(
        cache.stats() == (0, 2),
        "after the first query: {:?}",
        cache.stats()
    );
    let again = rows(&ctx, CONVERSATIONS).await?;
    ensure!(again == first, "again: {again:?}");
    ensure!(
        cache.stats() == (1, 2),
        "the second query is a hit: {:?}",
        cache.stats()
    );

    // A new export under the location: both views are computed again.
    std::fs::write(
        dir.path().join("b.jsonl"),
        line("c2", "m3", 5, "refund please"),
    )?;
    let after = rows(&ctx, CONVERSATIONS).await?;
    ensure!(
        after == [["jsonl/c1#1", "2", "2"], ["jsonl/c2#1", "1", "1"]],
        "after a new export: {after:?}"
    );
    ensure!(
        cache.stats() == (1, 4),
        "a new export is a miss: {:?}",
        cache.stats()
    );

    // A setting the views read: a gap of 0 minutes cuts c1 in two.
    ctx.sql("SET colloquy.analytics.conversation_gap_minutes = 0")
        .await?
        .collect()
        .await?;
    let cut = rows(&ctx, CONVERSATIONS).await?;
    ensure!(
        cut == [
            ["jsonl/c1#1", "1", "1"],
            ["jsonl/c1#2", "1", "1"],
            ["jsonl/c2#1", "1", "1"]
        ],
        "with a gap of 0 minutes: {cut:?}"
    );
    Ok(())
}

async fn same_answers_as_the_plain_views() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut log = String::new();
    for c in 0..40 {
        for m in 0..(1 + c % 5) {
            let text = [
                "where is my order",
                "I want a refund",
                "thank you",
                "this is terrible",
            ][(c + m) % 4];
            log.push_str(&line(
                &format!("c{c}"),
                &format!("m{c}-{m}"),
                (m * 7) as u32,
                text,
            ));
        }
    }
    std::fs::write(dir.path().join("log.jsonl"), log)?;
    let plain = session(dir.path(), None).await?;
    let cache = Arc::new(ViewCache::new(64 << 20));
    let cached = session(dir.path(), Some(&cache)).await?;
    for view in colloquy::analytics::VIEWS
        .iter()
        .filter(|v| v.needs.is_none())
    {
        let sql = format!("SELECT * FROM {}", view.name);
        // Twice: the first computes (and keeps), the second reads what was kept.
        for round in 0..2 {
            let mut a = rows(&plain, &sql).await?;
            let mut b = rows(&cached, &sql).await?;
            a.sort();
            b.sort();
            ensure!(
                a == b,
                "{} differs in round {round}: {} rows against {}; first difference {:?}",
                view.name,
                a.len(),
                b.len(),
                a.iter().zip(&b).find(|(x, y)| x != y)
            );
        }
    }
    let (hits, _) = cache.stats();
    ensure!(
        hits > 10,
        "the views read the kept results: {:?}",
        cache.stats()
    );
    Ok(())
}

async fn over_budget_or_stopped_early_keeps_nothing() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut log = String::new();
    for m in 0..50 {
        log.push_str(&line("c1", &format!("m{m}"), m, "where is my order"));
    }
    std::fs::write(dir.path().join("a.jsonl"), log)?;

    // A budget smaller than the result: right answers, nothing kept.
    let tiny = Arc::new(ViewCache::new(1024));
    let ctx = session(dir.path(), Some(&tiny)).await?;
    for _ in 0..2 {
        let n = rows(&ctx, "SELECT count(*) FROM conversation_messages").await?;
        ensure!(n == [["50"]], "count: {n:?}");
    }
    ensure!(tiny.stats().0 == 0, "nothing fits: {:?}", tiny.stats());

    // A query that stops early keeps no partial result.
    let cache = Arc::new(ViewCache::new(64 << 20));
    let ctx = session(dir.path(), Some(&cache)).await?;
    let one = rows(&ctx, "SELECT message_id FROM conversation_messages LIMIT 1").await?;
    ensure!(one.len() == 1, "limit: {one:?}");
    let n = rows(&ctx, "SELECT count(*) FROM conversation_messages").await?;
    ensure!(n == [["50"]], "count after a LIMIT: {n:?}");
    Ok(())
}

/// A view that fails to be made again (its `messages` lost a column it reads: in a governed session, a
/// `hide` mask) must not stay as it was made over the earlier table.
async fn a_view_that_cannot_be_made_again_is_gone() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("a.jsonl"), line("c1", "m1", 0, "hello"))?;
    let cache = Arc::new(ViewCache::new(64 << 20));
    let ctx = session(dir.path(), Some(&cache)).await?;
    ensure!(rows(&ctx, "SELECT count(*) FROM conversations").await? == [["1"]]);
    ctx.deregister_table("messages")?;
    ctx.sql("CREATE TABLE messages AS SELECT 'x' AS text")
        .await?
        .collect()
        .await?;
    let installed = colloquy::analytics::install_views(&ctx).await?;
    ensure!(
        installed.created.is_empty(),
        "created: {:?}",
        installed.created
    );
    for view in ["conversation_messages", "conversations", "agent_scorecards"] {
        ensure!(
            !ctx.table_exist(view)?,
            "{view} outlived the messages it was made over"
        );
    }
    Ok(())
}

pub fn tests() -> Vec<Test> {
    vec![
        Test::new(
            "view_cache::a_view_that_cannot_be_made_again_is_gone",
            a_view_that_cannot_be_made_again_is_gone,
        ),
        Test::new(
            "view_cache::kept_until_the_archive_changes",
            kept_until_the_archive_changes,
        ),
        Test::new(
            "view_cache::same_answers_as_the_plain_views",
            same_answers_as_the_plain_views,
        ),
        Test::new(
            "view_cache::over_budget_or_stopped_early_keeps_nothing",
            over_budget_or_stopped_early_keeps_nothing,
        ),
    ]
}
