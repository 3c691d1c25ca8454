//! `colloquy serve`: the Flight SQL server over the configured archives (or the demo archive).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use colloquy_flight::{Authenticator, Normalizer, ServiceOptions, Tls};

use crate::config::{self, ServerSection};
use crate::{ServeArgs, demo};

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let server = match &args.config {
        Some(path) => config::load(path)?.server.unwrap_or_default(),
        None => ServerSection::default(),
    };
    let bind = args
        .bind
        .clone()
        .or(server.bind.clone())
        .unwrap_or_else(|| "127.0.0.1:50051".to_owned());
    let demo_dir = if args.demo {
        Some(demo::ensure_cached().await?)
    } else {
        None
    };
    let memory_limit = server
        .memory_limit
        .as_deref()
        .map(|t| parse_bytes("memory_limit", t))
        .transpose()?;
    let runtime_env = colloquy::runtime_env(memory_limit);
    let cache_budget = match server.archive_cache.as_deref() {
        Some(t) => parse_bytes("archive_cache", t)?,
        None => DEFAULT_ARCHIVE_CACHE,
    };
    let archive_cache =
        (cache_budget > 0).then(|| Arc::new(colloquy::archive::ParsedCache::new(cache_budget)));
    let metrics = Arc::new(colloquy_flight::metrics::Metrics {
        archive_cache: archive_cache.clone(),
        ..colloquy_flight::metrics::Metrics::with_memory(runtime_env.memory_pool.clone())
    });
    if let Some(http) = &server.metrics_bind {
        let l = tokio::net::TcpListener::bind(http)
            .await
            .with_context(|| format!("cannot listen on {http} for /metrics"))?;
        eprintln!(
            "colloquy serve: /metrics and /health on http://{}",
            l.local_addr()?
        );
        tokio::spawn(colloquy_flight::metrics::serve_http(l, metrics.clone()));
    }
    let config_path: Option<PathBuf> = args.config.clone();
    // Each client session gets a context of its own, built the way `colloquy sql` builds one.
    let session_env = runtime_env.clone();
    let factory = colloquy_flight::factory(move || {
        let config_path = config_path.clone();
        let demo_dir = demo_dir.clone();
        let runtime_env = session_env.clone();
        let archive_cache = archive_cache.clone();
        async move {
            let mut config = datafusion::prelude::SessionConfig::new();
            if let Some(cache) = &archive_cache {
                config = cache.attach(config);
            }
            let ctx = colloquy::new_context_with_runtime(config, runtime_env.clone());
            if let Some(path) = &config_path {
                config::apply(&ctx, path)
                    .await
                    .map_err(|e| colloquy_flight::Error::Internal(crate::error_text(&e)))?;
            }
            if let Some(dir) = &demo_dir {
                demo::register(&ctx, dir)
                    .await
                    .map_err(|e| colloquy_flight::Error::Internal(crate::error_text(&e)))?;
            }
            colloquy::analytics::install_views_and_warn(&ctx).await?;
            Ok(ctx)
        }
    });
    let auth = Arc::new(Authenticator::new(
        server.users.clone().into_iter().collect::<HashMap<_, _>>(),
        server.tokens.clone().into_iter().collect::<HashMap<_, _>>(),
    ));
    let tls = match (&server.tls_cert, &server.tls_key) {
        (Some(cert), Some(key)) => Some(Tls {
            cert: std::fs::read(cert)
                .with_context(|| format!("TLS certificate {}", cert.display()))?,
            key: std::fs::read(key).with_context(|| format!("TLS key {}", key.display()))?,
        }),
        (None, None) => None,
        _ => anyhow::bail!("the [server] section needs both tls_cert and tls_key, or neither"),
    };
    // Queries run on a runtime of their own; this one keeps answering gRPC calls meanwhile.
    let cpu = tokio::runtime::Builder::new_multi_thread()
        .thread_name("colloquy-cpu")
        .enable_all()
        .build()
        .context("cannot start the query runtime")?;
    let listener = tokio::net::TcpListener::bind(&bind)
        .await
        .with_context(|| format!("cannot listen on {bind}"))?;
    let addr = listener.local_addr()?;
    let scheme = if tls.is_some() { "grpc+tls" } else { "grpc" };
    if auth.required() {
        tracing::info!(
            "authentication: {} user(s), {} static token(s)",
            server.users.len(),
            server.tokens.len()
        );
    } else {
        eprintln!(
            "colloquy serve: no users or tokens configured: accepting every client without authentication"
        );
    }
    // The address on stdout, one line, so scripts that bind port 0 can find the server.
    println!("colloquy serve listening on {scheme}://{addr}");
    let options = ServiceOptions {
        factory,
        auth,
        normalizer: Normalizer {
            expand_views: server.expand_views.unwrap_or(true),
        },
        cpu: cpu.handle().clone(),
        query_memory_limit: server
            .query_memory_limit
            .as_deref()
            .map(|t| parse_bytes("query_memory_limit", t))
            .transpose()?,
        query_timeout: server
            .query_timeout_secs
            .map(std::time::Duration::from_secs_f64),
        session_idle: std::time::Duration::from_secs_f64(server.session_idle_secs.unwrap_or(900.0)),
        metrics,
    };
    let shutdown = async {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(t) => t,
                    Err(_) => {
                        let _ = ctrl_c.await;
                        return;
                    }
                };
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        eprintln!("colloquy serve: shutting down");
    };
    let result = colloquy_flight::serve(options, listener, tls, shutdown)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"));
    cpu.shutdown_background();
    result
}

/// Parsed archive messages the server keeps between queries unless `archive_cache` says otherwise.
const DEFAULT_ARCHIVE_CACHE: usize = 1 << 30;

/// "2GB", "512MB", "1048576", for the setting `what`.
fn parse_bytes(what: &str, text: &str) -> anyhow::Result<usize> {
    let t = text.trim().to_ascii_uppercase();
    let (digits, unit) = t.split_at(
        t.find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(t.len()),
    );
    let n: f64 = digits
        .parse()
        .with_context(|| format!("{what} '{text}' is not a size like '2GB'"))?;
    let mult = match unit.trim() {
        "" | "B" => 1.0,
        "KB" | "K" => 1024.0,
        "MB" | "M" => 1024.0 * 1024.0,
        "GB" | "G" => 1024.0 * 1024.0 * 1024.0,
        other => {
            anyhow::bail!("{what} '{text}': unknown unit '{other}' (use B, KB, MB or GB)")
        }
    };
    Ok((n * mult) as usize)
}
