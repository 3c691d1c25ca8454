//! `colloquy serve`: the Flight SQL server over the configured archives (or the demo archive).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use colloquy::governance::Governance;
use colloquy::store::AccessPolicy;
use colloquy_flight::{
    Authenticator, Gate, GovernanceSlot, Limits, Normalizer, ServiceOptions, Tls, TokenLimits,
};

use crate::config::{self, Config, RuleSection, ServerSection};
use crate::{ServeArgs, demo};

/// Defaults that keep a 2-core, 4 GB host answering: the operator raises them in `[server]`.
const DEFAULT_MEMORY_LIMIT: &str = "2GB";
const DEFAULT_QUERY_MEMORY_LIMIT: &str = "1GB";
const DEFAULT_QUERY_TIMEOUT_SECS: f64 = 300.0;
/// Planning recurses once per expression level: query threads get room for `max_expression_depth`.
const QUERY_THREAD_STACK: usize = 32 << 20;

/// The access policy: the `[server]` prefixes, plus the archives and models the config registers and the
/// demo folder.
pub fn access_policy(
    config: Option<&Config>,
    server: &ServerSection,
    demo_dir: Option<&std::path::Path>,
) -> anyhow::Result<AccessPolicy> {
    let mut policy = AccessPolicy::new(&server.read, &server.write, &server.allow_hosts)
        .map_err(|e| anyhow::anyhow!("[server]: {e}"))?;
    let mut registered: Vec<String> = Vec::new();
    if let Some(config) = config {
        registered.extend(config.archive.iter().map(|a| a.location.clone()));
        registered.extend(config.model.iter().map(|m| m.location.clone()));
    }
    if let Some(dir) = demo_dir {
        registered.push(format!("{}/", dir.canonicalize()?.display()));
    }
    if let Some(audit) = &server.audit_log {
        let location = audit_target(audit)?.location();
        policy
            .seal(&location, "the audit trail")
            .map_err(|e| anyhow::anyhow!("audit_log: {e}"))?;
        registered.push(location);
    }
    if let Some(live) = config.and_then(|c| c.live.as_ref()) {
        // Clients read the flushed messages; only the server writes the store (log and data).
        let store = format!("{}/", crate::live::store_dir(live)?.display());
        policy
            .seal(&store, "the live store")
            .map_err(|e| anyhow::anyhow!("[live] dir: {e}"))?;
        let data = crate::live::data_location(live)?;
        if live.data.is_some() {
            policy
                .seal(&data, "the live store")
                .map_err(|e| anyhow::anyhow!("[live] data: {e}"))?;
        }
        registered.push(data);
        registered.push(format!("{}/", crate::live::rules_dir(live)?.display()));
    }
    for location in registered {
        policy
            .allow_read(&location)
            .map_err(|e| anyhow::anyhow!("registered location: {e}"))?;
    }
    Ok(policy)
}

/// The governance rules of `[server]`, or `None` when it sets none.
fn governance(
    config: Option<&Config>,
    server: &ServerSection,
    demo_dir: Option<&std::path::Path>,
) -> anyhow::Result<Option<Governance>> {
    let mut tables = std::collections::BTreeMap::new();
    if let Some(config) = config {
        for a in &config.archive {
            tables.insert(a.name.clone(), a.location.clone());
        }
    }
    if let Some(dir) = demo_dir {
        tables.insert(
            colloquy::MESSAGES_TABLE.to_string(),
            format!("{}/", dir.canonicalize()?.display()),
        );
    }
    if let Some(audit) = &server.audit_log {
        tables.insert(
            colloquy_flight::audit::TABLE.to_string(),
            audit_target(audit)?.location(),
        );
    }
    let rules = server.rules(tables);
    if rules.is_empty() {
        return Ok(None);
    }
    // `messages` is a view over two tables once live ingest is on: the row and column policies of
    // `messages` would not reach them.
    anyhow::ensure!(
        config.is_none_or(|c| c.live.is_none()),
        "[live] cannot be combined with governance rules ([server] roles, grants, policies) yet"
    );
    Governance::new(rules)
        .map(Some)
        .map_err(|e| anyhow::anyhow!("[server] governance: {e}"))
}

/// Where `audit_log` says the trail goes: a local file (as an absolute path; it need not exist yet),
/// or, for a URL, the object-store prefix it names, with a store built from the environment's
/// credentials as for the operator's archives.
pub fn audit_target(location: &str) -> anyhow::Result<colloquy_flight::audit::Target> {
    use colloquy_flight::audit::Target;
    let location = location.trim();
    if !location.contains("://") || location.starts_with("file://") {
        let path = location.strip_prefix("file://").unwrap_or(location);
        let path = std::path::absolute(path).with_context(|| format!("audit_log {location}"))?;
        return Ok(Target::File(path));
    }
    let url = if location.ends_with('/') {
        location.to_string()
    } else {
        format!("{location}/")
    };
    let (store, prefix) = store_prefix(&url, &format!("audit_log {location}"), "a prefix")?;
    Ok(Target::Store { store, prefix, url })
}

/// The object store and prefix of an operator's `url` (a folder on S3, GCS, Azure…); `what` names the
/// setting in errors, `pattern_refusal` says what is wanted instead of a glob pattern.
pub fn store_prefix(
    url: &str,
    what: &str,
    pattern_refusal: &str,
) -> anyhow::Result<(Arc<dyn object_store::ObjectStore>, object_store::path::Path)> {
    let parsed =
        colloquy::store::Location::parse(url).map_err(|e| anyhow::anyhow!("{what}: {e}"))?;
    anyhow::ensure!(
        parsed.glob.is_none(),
        "{what}: {pattern_refusal}, not a pattern"
    );
    let store = colloquy::store::build_store(&parsed.base, &Default::default())
        .map_err(|e| anyhow::anyhow!("{what}: {e}"))?;
    Ok((store, parsed.prefix))
}

fn limits(server: &ServerSection) -> anyhow::Result<Limits> {
    let d = Limits::default();
    Ok(Limits {
        max_sql_bytes: server.max_sql_bytes.unwrap_or(d.max_sql_bytes),
        max_expression_depth: server
            .max_expression_depth
            .unwrap_or(d.max_expression_depth),
        max_sessions: server.max_sessions.unwrap_or(d.max_sessions),
        max_queries_per_user: server
            .max_queries_per_user
            .unwrap_or(d.max_queries_per_user),
        max_target_partitions: server
            .max_target_partitions
            .unwrap_or(d.max_target_partitions),
        max_ingest_bytes: match server.max_ingest_bytes.as_deref() {
            Some(t) => parse_bytes("max_ingest_bytes", t)?,
            None => d.max_ingest_bytes,
        },
    })
}

fn authenticator(server: &ServerSection) -> anyhow::Result<Authenticator> {
    let d = TokenLimits::default();
    Authenticator::with_limits(
        server.users.clone().into_iter().collect::<HashMap<_, _>>(),
        server.tokens.clone().into_iter().collect::<HashMap<_, _>>(),
        TokenLimits {
            ttl: server
                .token_ttl_secs
                .map_or(d.ttl, std::time::Duration::from_secs_f64),
            max_tokens: server.max_tokens.unwrap_or(d.max_tokens),
        },
    )
    .map_err(|e| anyhow::anyhow!("{e}"))
}

/// Passwords and tokens cross the network in the clear without TLS: only on loopback, unless the
/// operator says so.
fn check_transport(
    bind: &std::net::SocketAddr,
    tls: bool,
    auth: &Authenticator,
    server: &ServerSection,
) -> anyhow::Result<()> {
    if tls || bind.ip().is_loopback() {
        return Ok(());
    }
    if auth.required() {
        if !server.allow_plaintext_passwords {
            anyhow::bail!(
                "refusing to take passwords and tokens over plain TCP on {bind}: configure tls_cert and tls_key, bind to 127.0.0.1, or set allow_plaintext_passwords = true in [server]"
            );
        }
        eprintln!(
            "colloquy serve: WARNING: passwords and tokens travel unencrypted on {bind} (allow_plaintext_passwords = true)"
        );
    } else {
        eprintln!(
            "colloquy serve: WARNING: {bind} is reachable from other hosts and no users or tokens are configured: anyone who can connect can query"
        );
    }
    Ok(())
}

/// The query runtime, shut down in the background when dropped: dropping a runtime inside the serving
/// runtime's async code panics, and an error return after it started (a rule that does not plan) must
/// stay an error.
struct QueryRuntime(Option<tokio::runtime::Runtime>);

impl QueryRuntime {
    fn handle(&self) -> &tokio::runtime::Handle {
        match &self.0 {
            Some(rt) => rt.handle(),
            None => unreachable!("the runtime is taken only when dropped"),
        }
    }
}

impl Drop for QueryRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let config = args.config.as_deref().map(config::load).transpose()?;
    let server = config
        .as_ref()
        .and_then(|c| c.server.clone())
        .unwrap_or_default();
    let bind = args
        .bind
        .clone()
        .or(server.bind.clone())
        .unwrap_or_else(|| "127.0.0.1:50051".to_owned());
    let demo_dir = match (args.demo, args.live) {
        (true, true) => Some(demo::ensure_cached_with(demo::LIVE_DEMO).await?),
        (true, false) => Some(demo::ensure_cached().await?),
        _ => None,
    };
    // `--demo --live` without a `[live]` of the config file's: the demo's own, passed to every session.
    let mut config = config;
    let demo_live = match args.live && config.as_ref().is_none_or(|c| c.live.is_none()) {
        true => {
            let live = demo::live_section(args.rule_webhook.clone())?;
            config.get_or_insert_with(Config::default).live = Some(live.clone());
            eprintln!(
                "colloquy serve: the demo's history ends at {} (its incident); send the rest with `colloquy replay --demo`",
                demo::live_demo_cut()
            );
            Some(live)
        }
        false => None,
    };
    let policy = Arc::new(access_policy(
        config.as_ref(),
        &server,
        demo_dir.as_deref(),
    )?);
    let memory_limit = parse_bytes(
        "memory_limit",
        server
            .memory_limit
            .as_deref()
            .unwrap_or(DEFAULT_MEMORY_LIMIT),
    )?;
    let runtime_env = colloquy::server_runtime_env(Some(memory_limit), Arc::clone(&policy));
    let cache_budget = match server.archive_cache.as_deref() {
        Some(t) => parse_bytes("archive_cache", t)?,
        None => DEFAULT_ARCHIVE_CACHE,
    };
    let archive_cache =
        (cache_budget > 0).then(|| Arc::new(colloquy::archive::ParsedCache::new(cache_budget)));
    let view_budget = match server.view_cache.as_deref() {
        Some(t) => parse_bytes("view_cache", t)?,
        None => DEFAULT_VIEW_CACHE,
    };
    // One budget for every session; each session's views keep entries of their own.
    let view_cache =
        (view_budget > 0).then(|| Arc::new(colloquy::view_cache::ViewCache::new(view_budget)));
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
    let governed = governance(config.as_ref(), &server, demo_dir.as_deref())?;
    if let Some(cluster) = &args.cluster {
        // Row and column policies are applied by an operator of this process; live messages are held
        // in it. Neither reaches executors yet: refuse rather than run clients' queries without them.
        anyhow::ensure!(
            governed.is_none(),
            "--cluster {cluster}: governance rules ([server] roles, grants, policies) are applied in this process and cannot run on a cluster yet; serve without --cluster"
        );
        anyhow::ensure!(
            config.as_ref().is_none_or(|c| c.live.is_none()),
            "--cluster {cluster}: [live] messages are held in this process and cannot be read on a cluster yet; serve without --cluster"
        );
        colloquy_cluster::scheduler_url(cluster)?;
    }
    let live_store = match config.as_ref().and_then(|c| c.live.as_ref()) {
        Some(live) => {
            let (addr, store) = crate::live::start(live, server.allow_plaintext_passwords).await?;
            eprintln!("colloquy serve: live ingest on http://{addr}/v1/messages");
            Some((live.clone(), store))
        }
        None => None,
    };
    // Opened (and its chain checked) before the first session: a broken trail stops the server.
    let audit = match &server.audit_log {
        Some(location) => Some(Arc::new(
            colloquy_flight::AuditLog::open(audit_target(location)?, governed.is_some())
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?,
        )),
        None => None,
    };
    let audit_table = audit.as_ref().map(|a| a.target().clone());
    let cluster = args.cluster.clone();
    let config_path: Option<PathBuf> = args.config.clone();
    // Each client session gets a context of its own, built the way `colloquy sql` builds one.
    let demo_dir_for_reload = demo_dir.clone();
    let session_env = runtime_env.clone();
    let session_policy = Arc::clone(&policy);
    let factory = colloquy_flight::factory(move || {
        let config_path = config_path.clone();
        let demo_dir = demo_dir.clone();
        let demo_live = demo_live.clone();
        let runtime_env = session_env.clone();
        let archive_cache = archive_cache.clone();
        let view_cache = view_cache.clone();
        let policy = Arc::clone(&session_policy);
        let audit_table = audit_table.clone();
        let cluster = cluster.clone();
        async move {
            let mut config = datafusion::prelude::SessionConfig::new();
            if let Some(cache) = &archive_cache {
                config = cache.attach(config);
            }
            let ctx = match &cluster {
                // Queries run on the cluster; kept view results and parsed units live on executors.
                Some(url) => colloquy_cluster::remote_context(url, config, runtime_env.clone())?,
                None => {
                    if let Some(cache) = &view_cache {
                        config = config.with_extension(Arc::clone(cache));
                    }
                    colloquy::new_context_with_runtime(config, runtime_env.clone())
                }
            };
            crate::set_up(
                &ctx,
                config_path.as_deref(),
                demo_dir.as_deref(),
                demo_live.as_ref(),
            )
            .await
            .map_err(|e| colloquy_flight::Error::Internal(crate::error_text(&e)))?;
            if let Some(target) = &audit_table {
                ctx.sql(&colloquy_flight::audit::table_sql(target))
                    .await?
                    .collect()
                    .await?;
            }
            // The operator's archives and models are in: from here on the session is a client's.
            colloquy::restrict(&ctx, policy);
            Ok(ctx)
        }
    });
    // Queries and rule evaluations run on a runtime of their own; this one keeps answering gRPC calls
    // and webhooks meanwhile.
    let cpu = QueryRuntime(Some(
        tokio::runtime::Builder::new_multi_thread()
            .thread_name("colloquy-cpu")
            .thread_stack_size(QUERY_THREAD_STACK)
            .enable_all()
            .build()
            .context("cannot start the query runtime")?,
    ));
    let live_sink = live_store
        .as_ref()
        .filter(|(live, _)| live.flight_ingest == Some(true))
        .map(|(_, store)| {
            Arc::new(crate::live::FlightSink {
                store: store.clone(),
            }) as Arc<dyn colloquy_flight::LiveSink>
        });
    let mut rule_statements: Option<Arc<dyn colloquy_flight::RuleStatements>> = None;
    if let Some((live, store)) = live_store {
        let (log, pending) = colloquy_live::RuleLog::open(&crate::live::store_dir(&live)?)
            .map_err(|e| anyhow::anyhow!("[live] the rule log: {e}"))?;
        let mut rules = live
            .rule
            .iter()
            .map(RuleSection::resolve)
            .collect::<anyhow::Result<Vec<_>>>()?;
        // The rules clients made (CREATE RULE), kept across restarts; only while they may.
        let rules_dir = crate::live::rules_dir(&live)?;
        let client_rules = live.client_rules == Some(true);
        let (commands, received) = tokio::sync::mpsc::channel(16);
        let book = crate::rule_book::RuleBook {
            enabled: client_rules,
            hosts: live.rule_webhook_hosts.clone(),
            dir: rules_dir.clone(),
            commands,
            writing: Arc::new(tokio::sync::Mutex::new(())),
        };
        if client_rules {
            for kept in crate::rule_book::load(&rules_dir)? {
                let mut rule = kept.section.resolve()?;
                rule.owner = Some(kept.by);
                // The operator may have narrowed rule_webhook_hosts since.
                if let Some(Err(e)) = rule.webhook.as_deref().map(|u| book.allowed(u)) {
                    eprintln!("colloquy serve: rule {}: {e:#}: left out", rule.name);
                    continue;
                }
                rule.from_client = true;
                rules.push(rule);
            }
        }
        let n = rules.len();
        rule_statements = Some(Arc::new(book));
        crate::rules::start(
            rules,
            Arc::new(log),
            pending,
            crate::rules::Wiring {
                store,
                factory: factory.clone(),
                delivery: colloquy_live::Delivery {
                    tries: live.webhook_tries.unwrap_or(5).clamp(1, 20),
                    ..Default::default()
                },
                runtime: cpu.handle().clone(),
            },
            client_rules.then_some(received),
        )
        .await?;
        if n > 0 {
            eprintln!("colloquy serve: {n} live rule(s) evaluated after each flush");
        }
    }
    let auth = Arc::new(authenticator(&server)?);
    let tls = match (&server.tls_cert, &server.tls_key) {
        (Some(cert), Some(key)) => Some(Tls {
            cert: std::fs::read(cert)
                .with_context(|| format!("TLS certificate {}", cert.display()))?,
            key: std::fs::read(key).with_context(|| format!("TLS key {}", key.display()))?,
        }),
        (None, None) => None,
        _ => anyhow::bail!("the [server] section needs both tls_cert and tls_key, or neither"),
    };
    let listener = tokio::net::TcpListener::bind(&bind)
        .await
        .with_context(|| format!("cannot listen on {bind}"))?;
    let addr = listener.local_addr()?;
    check_transport(&addr, tls.is_some(), &auth, &server)?;
    let scheme = if tls.is_some() { "grpc+tls" } else { "grpc" };
    eprintln!(
        "colloquy serve: clients may read {}; write {}",
        policy.read_locations().join(", "),
        if policy.write_locations().is_empty() {
            "nothing (read-only)".to_owned()
        } else {
            policy.write_locations().join(", ")
        }
    );
    // A policy that does not parse, or names a column the table lacks, stops the server here rather
    // than failing each client's session.
    if let Some(g) = &governed {
        let factory = factory.clone();
        g.validate(async || {
            factory()
                .await
                .map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))
        })
        .await
        .map_err(|e| anyhow::anyhow!("[server] governance: {e}"))?;
        eprintln!(
            "colloquy serve: governance on: {} role(s); users read only what their roles are granted",
            g.role_count()
        );
    }
    let governance_slot = Arc::new(GovernanceSlot::new(governed));
    if let Some(path) = args.config.clone() {
        reload_on_hangup(
            path,
            Arc::clone(&auth),
            Arc::clone(&governance_slot),
            demo_dir_for_reload,
        );
    }
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
        // "0" leaves statements to the server-wide memory_limit alone.
        query_memory_limit: Some(parse_bytes(
            "query_memory_limit",
            server
                .query_memory_limit
                .as_deref()
                .unwrap_or(DEFAULT_QUERY_MEMORY_LIMIT),
        )?)
        .filter(|n| *n > 0),
        // 0 turns the timeout off.
        query_timeout: Some(
            server
                .query_timeout_secs
                .unwrap_or(DEFAULT_QUERY_TIMEOUT_SECS),
        )
        .filter(|s| *s > 0.0)
        .map(std::time::Duration::from_secs_f64),
        session_idle: std::time::Duration::from_secs_f64(server.session_idle_secs.unwrap_or(900.0)),
        metrics,
        gate: Gate {
            policy: Some(policy),
            limits: limits(&server)?,
        },
        governance: governance_slot,
        audit: audit.clone(),
        live_sink,
        rule_statements,
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
    drop(cpu);
    if let Some(audit) = &audit {
        // An object-store trail puts its last queued lines before the server stops.
        audit.close().await;
        // Kept elsewhere, the head hash shows whether lines were later cut from the end of the trail.
        eprintln!(
            "colloquy serve: audit trail {} ends at hash {}",
            audit.target().location(),
            audit.head()
        );
    }
    result
}

/// Parsed archive messages the server keeps between queries unless `archive_cache` says otherwise.
const DEFAULT_ARCHIVE_CACHE: usize = 512 << 20;
/// Kept results of the base analytics views, for all sessions together.
const DEFAULT_VIEW_CACHE: usize = 1 << 30;

/// SIGHUP reads the config again and replaces users and tokens (tokens of removed users, or of users
/// whose password changed, stop working at once) and the governance rules (every session is shaped
/// again at its next call).
fn reload_on_hangup(
    path: PathBuf,
    auth: Arc<Authenticator>,
    governance_slot: Arc<GovernanceSlot>,
    demo_dir: Option<PathBuf>,
) {
    #[cfg(unix)]
    tokio::spawn(async move {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            return;
        };
        while hup.recv().await.is_some() {
            let reloaded = config::load(&path).and_then(|c| {
                let server = c.server.clone().unwrap_or_default();
                let rules = governance(Some(&c), &server, demo_dir.as_deref())?;
                let revoked = auth
                    .reload(
                        server.users.into_iter().collect(),
                        server.tokens.into_iter().collect(),
                    )
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                governance_slot.replace(rules);
                Ok(revoked)
            });
            match reloaded {
                Ok(revoked) => eprintln!(
                    "colloquy serve: reloaded users, tokens and governance from {} ({revoked} session token(s) revoked)",
                    path.display()
                ),
                Err(e) => eprintln!(
                    "colloquy serve: reload of {} failed, keeping the old users: {}",
                    path.display(),
                    crate::error_text(&e)
                ),
            }
        }
    });
    #[cfg(not(unix))]
    let _ = (path, auth, governance_slot, demo_dir);
}

/// "2GB", "512MB", "1048576", for the setting `what`.
pub fn parse_bytes(what: &str, text: &str) -> anyhow::Result<usize> {
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
