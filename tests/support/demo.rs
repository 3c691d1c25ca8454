//! The demo archive reads back completely, with the channel mix and the incident it promises, and is
//! deterministic for a seed.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, ensure};
use colloquy_demo::{DEMO_OPTIONS, DemoConfig};

use super::{Test, rows};

fn hashes(dir: &Path) -> anyhow::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for p in super::files_under(dir)? {
        let rel = p.strip_prefix(dir)?.to_string_lossy().into_owned();
        out.insert(rel, blake3::hash(&std::fs::read(&p)?).to_hex().to_string());
    }
    Ok(out)
}

async fn reads_back() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (demo, stats) = colloquy_demo::generate_to(
        dir.path(),
        DemoConfig {
            conversations: 600,
            seed: 7,
        },
    )?;
    ensure!(demo.conversations.len() == 600);
    let ctx = colloquy::new_context();
    let loc = format!("{}/", dir.path().display());
    colloquy::register_archive(&ctx, "messages", &loc, DEMO_OPTIONS).await?;
    let n = rows(&ctx, "SELECT count(*) FROM messages").await?;
    ensure!(
        n[0][0] == stats.rows.to_string(),
        "read {} rows, the generator wrote {}",
        n[0][0],
        stats.rows
    );

    let channels = rows(&ctx, "SELECT DISTINCT channel FROM messages ORDER BY 1").await?;
    ensure!(
        channels.concat() == ["slack", "sms", "webchat", "whatsapp"],
        "channels: {channels:?}"
    );
    let roles = rows(&ctx, "SELECT DISTINCT sender_role FROM messages ORDER BY 1").await?;
    ensure!(
        roles.concat() == ["agent", "bot", "customer", "system"],
        "roles: {roles:?}"
    );
    let hive = rows(
        &ctx,
        "SELECT count(DISTINCT month) FROM messages WHERE channel = 'webchat'",
    )
    .await?;
    ensure!(hive[0][0] == "3", "webchat month partitions: {hive:?}");

    // Every timestamp lies in the demo period (date order inferred right for every WhatsApp chat).
    let out_of_period = rows(
        &ctx,
        "SELECT count(*) FROM messages WHERE ts < TIMESTAMP '2026-01-04T00:00:00Z' OR ts > TIMESTAMP '2026-03-31T00:00:00Z'",
    )
    .await?;
    ensure!(
        out_of_period[0][0] == "0",
        "{} messages outside the demo period",
        out_of_period[0][0]
    );

    // The incident: angry WhatsApp messages about tracking in the last four weeks only.
    let angry = rows(
        &ctx,
        "SELECT ts >= TIMESTAMP '2026-03-02T00:00:00+01:00' AS incident, count(*) FROM messages \
         WHERE channel = 'whatsapp' AND sender_role = 'customer' \
           AND (text LIKE '%Terrible service%' OR text LIKE '%furious%' OR text LIKE '%tracking link is broken%' \
                OR text LIKE '%inaceptable%' OR text LIKE '%inadmissible%' OR text LIKE '%inaceitável%' OR text LIKE '%unmöglich%') \
         GROUP BY 1 ORDER BY 1",
    )
    .await?;
    match angry.as_slice() {
        [only] if only[0] == "true" && only[1].parse::<u64>()? >= 10 => {}
        other => {
            bail!("expected angry WhatsApp messages only in the incident period, got {other:?}")
        }
    }
    Ok(())
}

async fn deterministic() -> anyhow::Result<()> {
    let (a, b) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let cfg = DemoConfig {
        conversations: 200,
        seed: 11,
    };
    colloquy_demo::generate_to(a.path(), cfg)?;
    colloquy_demo::generate_to(b.path(), cfg)?;
    let (ha, hb) = (hashes(a.path())?, hashes(b.path())?);
    ensure!(!ha.is_empty() && ha == hb, "two runs with one seed differ");
    let c = tempfile::tempdir()?;
    colloquy_demo::generate_to(
        c.path(),
        DemoConfig {
            conversations: 200,
            seed: 12,
        },
    )?;
    ensure!(
        hashes(c.path())? != ha,
        "another seed gave the same archive"
    );
    Ok(())
}

pub fn tests() -> Vec<Test> {
    vec![
        Test::new("demo::reads_back", reads_back),
        Test::new("demo::deterministic", deterministic),
    ]
}
