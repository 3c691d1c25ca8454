//! Differential test: colloquy and the npm package `whatsapp-chat-parser` read the same WhatsApp exports
//! and must agree on the number of messages, their authors and their timestamps.
//!
//! Files where the two knowingly differ are left out: iOS notices written under the chat's name (we call
//! them system messages; the npm parser takes the chat name for an author).

use std::process::Command;

use anyhow::{Context, bail, ensure};
use serde_json::Value;

use super::{Test, fixtures, root, rows};

async fn agrees_with_whatsapp_chat_parser() -> anyhow::Result<()> {
    let dir = root().join("tests").join("differential");
    if !dir
        .join("node_modules")
        .join("whatsapp-chat-parser")
        .exists()
    {
        bail!(
            "tests/differential/node_modules is missing: run ./scripts/test (it runs npm ci there)"
        );
    }
    let mut files: Vec<_> = std::fs::read_dir(fixtures().join("whatsapp"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    ensure!(
        files.len() >= 4,
        "expected the WhatsApp fixtures, found {files:?}"
    );
    let output = Command::new("node")
        .arg("parse.mjs")
        .args(&files)
        .current_dir(&dir)
        .env("TZ", "UTC")
        .output()
        .context("running node (Node.js must be installed)")?;
    ensure!(
        output.status.success(),
        "node failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let theirs: Value = serde_json::from_slice(&output.stdout)?;

    let ctx = colloquy::new_context();
    for f in &files {
        let path = f.to_string_lossy();
        let ours = rows(
            &ctx,
            &format!(
                "SELECT coalesce(sender_name, 'NULL'), CAST(CAST(ts AS BIGINT) / 1000 AS BIGINT) FROM read_archive('{}', 'whatsapp') ORDER BY source_line",
                path.replace('\'', "''")
            ),
        )
        .await?;
        let list = theirs[path.as_ref()]
            .as_array()
            .with_context(|| format!("no npm result for {path}"))?;
        ensure!(
            ours.len() == list.len(),
            "{path}: colloquy read {} messages, whatsapp-chat-parser {}",
            ours.len(),
            list.len()
        );
        for (i, (o, t)) in ours.iter().zip(list).enumerate() {
            let author = t["author"].as_str().unwrap_or("NULL");
            let ms = t["ms"].as_i64().context("ms")?.to_string();
            ensure!(
                o[0] == author,
                "{path} message {}: author '{}' vs npm '{author}'",
                i + 1,
                o[0]
            );
            ensure!(
                o[1] == ms,
                "{path} message {}: time {} vs npm {ms}",
                i + 1,
                o[1]
            );
        }
    }
    Ok(())
}

pub fn tests() -> Vec<Test> {
    vec![Test::new(
        "differential::whatsapp_chat_parser",
        agrees_with_whatsapp_chat_parser,
    )]
}
