//! `colloquy scheduler` and `colloquy executor`: a Ballista cluster with colloquy built in.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use colloquy::store::AccessPolicy;

#[derive(clap::Args)]
pub struct SchedulerArgs {
    /// Address to listen on. Ballista's scheduler has no authentication: keep it on loopback or a
    /// private network that only colloquy's executors and clients reach.
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:50050")]
    bind: String,
    /// A config file whose `[server]` read/write rules the scheduler applies to the archives it plans.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Seconds without a heartbeat after which an executor is lost and its tasks run elsewhere (at
    /// least 10: an executor busy on every slot is heard from every 5 s).
    #[arg(long, value_name = "SECONDS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(colloquy_cluster::scheduler::MIN_EXECUTOR_TIMEOUT_SECS..))]
    executor_timeout: u64,
}

#[derive(clap::Args)]
pub struct ExecutorArgs {
    /// The scheduler, as df://HOST:PORT or HOST:PORT.
    #[arg(long, value_name = "HOST:PORT")]
    scheduler: String,
    /// Address of this executor's Flight service, which other executors read shuffle data from (the
    /// next port up is bound too).
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:50051")]
    bind: String,
    /// The host other executors reach this one at, when it is not the --bind host.
    #[arg(long, value_name = "HOST")]
    external_host: Option<String>,
    /// Tasks run at once (default: the cores of this machine).
    #[arg(long, value_name = "N")]
    slots: Option<usize>,
    /// Where shuffle files go (default: a temporary folder).
    #[arg(long, value_name = "DIR")]
    work_dir: Option<String>,
    /// A config file whose `[server]` read/write rules this executor applies to every file it reads.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Bytes of parsed archive messages kept between queries, e.g. 512MB (0: none).
    #[arg(long, value_name = "SIZE", default_value = "256MB")]
    cache: String,
}

/// The `[server]` read/write rules of a config file, as the scheduler and executors apply them.
fn policy(config: Option<&std::path::Path>) -> anyhow::Result<Option<Arc<AccessPolicy>>> {
    let Some(path) = config else {
        return Ok(None);
    };
    let config = crate::config::load(path)?;
    let server = config.server.clone().unwrap_or_default();
    Ok(Some(Arc::new(crate::serve::access_policy(
        Some(&config),
        &server,
        None,
    )?)))
}

pub async fn scheduler(args: SchedulerArgs) -> anyhow::Result<()> {
    let options = colloquy_cluster::scheduler::SchedulerOptions {
        executor_timeout_secs: args.executor_timeout,
        policy: policy(args.config.as_deref())?,
    };
    let listener = tokio::net::TcpListener::bind(&args.bind)
        .await
        .with_context(|| format!("cannot listen on {}", args.bind))?;
    let addr = colloquy_cluster::scheduler::start(listener, options).await?;
    // The first line on stdout is the address (as `serve` prints its own): scripts read it.
    println!("df://{addr}");
    eprintln!(
        "colloquy scheduler: listening on df://{addr}; start executors with `colloquy executor --scheduler {addr}`"
    );
    tokio::signal::ctrl_c().await?;
    Ok(())
}

pub async fn executor(args: ExecutorArgs) -> anyhow::Result<()> {
    let (host, port) = args
        .bind
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h.to_string(), p.parse::<u16>().ok()?)))
        .with_context(|| format!("--bind {}: expected HOST:PORT", args.bind))?;
    let defaults = colloquy_cluster::executor::ExecutorOptions::default();
    let options = colloquy_cluster::executor::ExecutorOptions {
        scheduler: args.scheduler.clone(),
        bind_host: host,
        port,
        external_host: args.external_host.clone(),
        slots: args.slots.unwrap_or(defaults.slots),
        work_dir: args.work_dir.clone(),
        policy: policy(args.config.as_deref())?,
        cache_bytes: crate::serve::parse_bytes("--cache", &args.cache)?,
    };
    eprintln!(
        "colloquy executor: {} slot(s), asking {} for work",
        options.slots, args.scheduler
    );
    colloquy_cluster::executor::run(options).await?;
    Ok(())
}
