//! `colloquy replay`: an archive sent to a live endpoint as it happened, in time order, at a given rate.
//!
//! For trying rules on real traffic and for the latency benchmark: every message of the archive (read
//! with the archive reader, as `messages` would be) is POSTed to `/v1/messages` in the generic shape,
//! `--batch` at a time, paced to `--rate` messages a second. It prints what the endpoint answered.

use std::time::{Duration, Instant};

use anyhow::Context;

#[derive(clap::Args)]
pub struct ReplayArgs {
    /// The archive: a folder, file or object-store URL, as `read_archive` takes it.
    #[arg(required_unless_present = "demo")]
    archive: Option<String>,
    /// The live demo's incident, to `colloquy serve --demo --live`: its archive from where the served
    /// history stops, to http://127.0.0.1:8081 with the token that server wrote.
    #[arg(long, conflicts_with = "archive")]
    demo: bool,
    /// The live endpoint (`colloquy serve` with `[live]`), e.g. http://127.0.0.1:8081
    #[arg(long, value_name = "URL", required_unless_present = "demo")]
    to: Option<String>,
    /// Its bearer token (`[live] token`); also read from COLLOQUY_LIVE_TOKEN.
    #[arg(long, env = "COLLOQUY_LIVE_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Send only the messages from this time on (RFC 3339).
    #[arg(long, value_name = "TIME")]
    from: Option<String>,
    /// Messages per second (0: as fast as the endpoint takes them).
    #[arg(long, default_value_t = 100.0)]
    rate: f64,
    /// Messages per request.
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Send at most this many messages.
    #[arg(long)]
    limit: Option<usize>,
    /// The archive's time zone (for exports that write local times).
    #[arg(long, default_value = "UTC")]
    timezone: String,
}

pub async fn run(mut args: ReplayArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.batch >= 1, "--batch must be at least 1");
    anyhow::ensure!(args.rate >= 0.0, "--rate must not be negative");
    let mut options = vec![("timezone".to_owned(), args.timezone.clone())];
    if args.demo {
        let dir = crate::demo::ensure_cached_with(crate::demo::LIVE_DEMO).await?;
        args.archive = Some(format!("{}/", dir.canonicalize()?.display()));
        options = colloquy_demo::DEMO_OPTIONS
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        args.from.get_or_insert_with(crate::demo::live_demo_cut);
        args.to
            .get_or_insert_with(|| format!("http://{}", crate::demo::LIVE_DEMO_BIND));
        if args.token.is_none() {
            let path = crate::demo::live_demo_dir()?.join("token");
            let token = std::fs::read_to_string(&path).with_context(|| {
                format!(
                    "no token at {}: start `colloquy serve --demo --live` first",
                    path.display()
                )
            })?;
            args.token = Some(token.trim().to_owned());
        }
    }
    let (Some(archive), Some(to), Some(token)) = (&args.archive, &args.to, &args.token) else {
        anyhow::bail!(
            "replay needs an archive, --to and --token (or COLLOQUY_LIVE_TOKEN), or --demo"
        );
    };
    let from = match &args.from {
        Some(t) => format!(" AND ts >= {}", crate::live::sql_timestamp(t, "--from")?),
        None => String::new(),
    };
    let ctx = colloquy::new_context();
    let quote = |s: &str| s.replace('\'', "''");
    let options: String = options
        .iter()
        .map(|(k, v)| format!(", '{}', '{}'", quote(k), quote(v)))
        .collect();
    let sql = format!(
        "SELECT message_id, channel, conversation_id, \
         to_char(ts, '%Y-%m-%dT%H:%M:%S%.6fZ') AS ts, sender_id, sender_name, sender_role, text, reply_to \
         FROM read_archive('{}', 'auto'{options}) WHERE ts IS NOT NULL{from} \
         ORDER BY ts, source, source_line{}",
        quote(archive),
        args.limit
            .map(|n| format!(" LIMIT {n}"))
            .unwrap_or_default()
    );
    let plan = ctx.state().create_logical_plan(&sql).await?;
    let batches = colloquy::execute(&ctx, plan)
        .await?
        .collect()
        .await
        .with_context(|| format!("reading {archive}"))?;
    let mut writer = datafusion::arrow::json::LineDelimitedWriter::new(Vec::new());
    for b in &batches {
        writer.write(b)?;
    }
    writer.finish()?;
    let lines: Vec<Vec<u8>> = writer
        .into_inner()
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect();
    let url = format!("{}/v1/messages", to.trim_end_matches('/'));
    let client = reqwest::Client::new();
    let started = Instant::now();
    let (mut sent, mut accepted, mut duplicates) = (0usize, 0u64, 0u64);
    for chunk in lines.chunks(args.batch) {
        if args.rate > 0.0 {
            let due = started + Duration::from_secs_f64(sent as f64 / args.rate);
            tokio::time::sleep_until(due.into()).await;
        }
        let body = chunk.join(&b'\n');
        let resp = client
            .post(&url)
            .bearer_auth(token)
            .body(body)
            .send()
            .await
            .with_context(|| format!("POST {url}"))?;
        let status = resp.status();
        let reply: serde_json::Value =
            serde_json::from_slice(&resp.bytes().await.unwrap_or_default()).unwrap_or_default();
        anyhow::ensure!(
            status.is_success(),
            "POST {url}: HTTP {}: {}",
            status.as_u16(),
            reply["error"].as_str().unwrap_or("(no reason given)")
        );
        accepted += reply["accepted"].as_u64().unwrap_or(0);
        duplicates += reply["duplicates"].as_u64().unwrap_or(0);
        sent += chunk.len();
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "replayed {sent} messages in {secs:.1} s ({:.0}/s): {accepted} accepted, {duplicates} duplicates",
        sent as f64 / secs.max(1e-9)
    );
    Ok(())
}
