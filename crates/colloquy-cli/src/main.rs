//! The `colloquy` command: a SQL shell over conversation archives, and the demo archive.

mod cluster;
mod config;
mod demo;
mod live;
mod output;
mod progress;
mod replay;
mod rule_book;
mod rule_scope;
mod rules;
mod runner;
mod save_model;
mod serve;
mod shell;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use output::OutputFormat;

#[derive(Parser)]
#[command(
    name = "colloquy",
    version,
    about = "Customer-conversation archives as SQL"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run SQL: statements from -c and -f in order, or an interactive shell on a terminal.
    Sql(SqlArgs),
    /// Write the demo archive and print the headline analytics over it.
    Demo(DemoArgs),
    /// Serve SQL over Arrow Flight SQL (ADBC, JDBC, BI tools, notebooks).
    Serve(ServeArgs),
    /// Run a query that returns a model (e.g. train_classifier) and write its bytes to a file or object store.
    SaveModel(save_model::SaveModelArgs),
    /// Read a password from standard input and print its argon2 hash for `[server.users]`.
    HashPassword,
    /// The audit trail of `colloquy serve` (`audit_log` in `[server]`).
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Send an archive's messages to a live endpoint (`[live]` of `colloquy serve`) in time order.
    Replay(replay::ReplayArgs),
    /// Run a Ballista scheduler with colloquy built in (`sql --cluster` and `serve --cluster` use it).
    Scheduler(cluster::SchedulerArgs),
    /// Run a Ballista executor with colloquy's stores, functions and models built in.
    Executor(cluster::ExecutorArgs),
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check that no line of an audit trail was removed or changed (its hash chain), and print its head
    /// hash to compare with one kept elsewhere.
    Verify {
        /// The audit file (JSON Lines), or the object-store prefix of its segments (`s3://bucket/audit/`,
        /// read with the environment's credentials).
        trail: String,
    },
}

#[derive(clap::Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port; the address is printed on stdout).
    #[arg(long, value_name = "HOST:PORT")]
    bind: Option<String>,
    /// A TOML file declaring archives, session settings and the `[server]` section (users, tokens, TLS).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Serve the demo archive as the table `messages`.
    #[arg(long)]
    demo: bool,
    /// With --demo: live ingest on http://127.0.0.1:8081 with the built-in rules, over a larger demo
    /// archive whose history stops where its incident starts (`colloquy replay --demo` sends the rest).
    /// The demo's live store starts empty each time.
    #[arg(long, requires = "demo")]
    live: bool,
    /// With --live: where the built-in rules POST their events (else only the table rule_events).
    #[arg(long, value_name = "URL", requires = "live")]
    rule_webhook: Option<String>,
    /// Run clients' queries on the Ballista cluster whose scheduler is at df://HOST:PORT (see
    /// `colloquy scheduler` and `colloquy executor`).
    #[arg(long, value_name = "df://HOST:PORT")]
    cluster: Option<String>,
}

#[derive(clap::Args)]
pub struct SqlArgs {
    /// A SQL statement (or several separated by ';'); may be repeated.
    #[arg(short = 'c', long = "command", value_name = "SQL")]
    commands: Vec<String>,
    /// A file of SQL statements.
    #[arg(short = 'f', long = "file", value_name = "FILE.sql")]
    files: Vec<PathBuf>,
    /// How results are printed.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    format: OutputFormat,
    /// Register the demo archive (generated into the cache on first use) as the table `messages`.
    #[arg(long)]
    demo: bool,
    /// A TOML file declaring archives and session settings.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Run queries on the Ballista cluster whose scheduler is at df://HOST:PORT (see `colloquy
    /// scheduler` and `colloquy executor`); statements that change the session still run here.
    #[arg(long, value_name = "df://HOST:PORT")]
    cluster: Option<String>,
}

#[derive(clap::Args)]
pub struct DemoArgs {
    /// Where to write the archive.
    #[arg(long, default_value = "colloquy-demo")]
    out: PathBuf,
    /// Number of conversations (about 8 messages each).
    #[arg(long, default_value_t = 3000)]
    conversations: usize,
    /// Seed of the deterministic generator.
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

/// Blocking threads parse and open local files. Tokio allows 512; glibc then gives many of them a heap of
/// their own that keeps its freed memory, and peak memory grew with the archive (141 MB against 78 MB with one
/// heap on the 16x demo web chat logs, benches/README.md). A few per core keep every core busy.
fn blocking_threads() -> usize {
    std::thread::available_parallelism().map_or(4, |n| n.get() * 2)
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("COLLOQUY_LOG")
                .unwrap_or_else(|_| "warn,colloquy::query=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    // Requests in flight to object stores are bounded by the open-files limit (each holds a connection).
    colloquy_archive::raise_open_files_limit();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        // A scheduler and an executor decode query plans (protobuf, one stack frame per node) on these
        // threads: the analytics views nest deeply.
        .thread_stack_size(16 << 20)
        .enable_all()
        .max_blocking_threads(blocking_threads())
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("Error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Sql(args) => run_sql(args).await,
            Command::Demo(args) => demo::run(args).await,
            Command::Serve(args) => serve::run(args).await,
            Command::SaveModel(args) => save_model::run(args).await,
            Command::HashPassword => hash_password(),
            Command::Audit(AuditCommand::Verify { trail }) => audit_verify(&trail).await,
            Command::Replay(args) => replay::run(args).await,
            Command::Scheduler(args) => cluster::scheduler(args).await,
            Command::Executor(args) => cluster::executor(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // The reader went away (`colloquy ... | head`): stop quietly, as other Unix tools do.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {}", error_text(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes, leaving out causes that the message already quotes (DataFusion errors
/// repeat their source in their own text).
pub fn error_text(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let c = cause.to_string();
        if !text.contains(&c) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&c);
        }
    }
    text
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            || c.downcast_ref::<datafusion::arrow::error::ArrowError>()
                .is_some_and(|a| matches!(a, datafusion::arrow::error::ArrowError::IoError(_, io) if io.kind() == std::io::ErrorKind::BrokenPipe))
    })
}

/// The first line of standard input (a terminal prompts for it), hashed for the config.
fn hash_password() -> anyhow::Result<()> {
    if std::io::stdin().is_terminal() {
        eprint!("password (shown as you type; pipe it in to avoid that): ");
    }
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    let password = line.trim_end_matches(['\r', '\n']);
    if password.is_empty() {
        anyhow::bail!("no password on standard input");
    }
    let hash = colloquy_flight::hash_password(password).map_err(|e| anyhow::anyhow!("{e}"))?;
    println!("{hash}");
    Ok(())
}

async fn audit_verify(trail: &str) -> anyhow::Result<()> {
    let target = serve::audit_target(trail)?;
    let report = colloquy_flight::audit::verify_target(&target)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    match report.problem {
        None => {
            println!(
                "{trail}: {} entries, chain intact; head {}",
                report.lines, report.head
            );
            Ok(())
        }
        Some(problem) => anyhow::bail!(
            "{trail}: {problem} ({} entries verified before it)",
            report.lines
        ),
    }
}

/// Parsed archive messages the interactive shell keeps between statements.
const SHELL_ARCHIVE_CACHE: usize = 512 << 20;

/// Results of `conversation_messages` and `conversations` a `colloquy sql` session keeps, per archive
/// version (see `colloquy::view_cache`): a million demo messages take about 400 MB.
const SQL_VIEW_CACHE: usize = 1 << 30;

/// A session with the config file's archives, models and settings, and the demo archive when asked for.
pub async fn session(
    config: Option<&std::path::Path>,
    demo: bool,
    cluster: Option<&str>,
) -> anyhow::Result<datafusion::prelude::SessionContext> {
    let demo_dir = match demo {
        true => Some(demo::ensure_cached().await?),
        false => None,
    };
    let ctx = match cluster {
        // Kept view results live in this process; on a cluster the views run where the data is read.
        Some(url) => colloquy_cluster::remote_context(
            url,
            datafusion::prelude::SessionConfig::new(),
            colloquy::runtime_env(None),
        )?,
        None => {
            let ctx = colloquy::new_context();
            // Before the views are installed: they are cached only in a session that has a cache.
            std::sync::Arc::new(colloquy::view_cache::ViewCache::new(SQL_VIEW_CACHE)).install(&ctx);
            ctx
        }
    };
    set_up(&ctx, config, demo_dir.as_deref(), None).await?;
    Ok(ctx)
}

/// What every session of `sql`, `save-model` and `serve` gets: the config file's settings, archives and
/// models, the demo archive, and the analytics views over them.
/// `live` is the live section of `serve --demo --live` when the config file has none.
pub async fn set_up(
    ctx: &datafusion::prelude::SessionContext,
    config: Option<&std::path::Path>,
    demo_dir: Option<&std::path::Path>,
    live: Option<&config::LiveSection>,
) -> anyhow::Result<()> {
    let live = match config {
        Some(path) => config::apply(ctx, path).await?.live,
        None => None,
    }
    .or_else(|| live.cloned());
    if let Some(dir) = demo_dir {
        demo::register(ctx, dir).await?;
    }
    // After the demo: `messages` must exist to become the archive and the live messages together.
    if let Some(live) = live {
        live::attach(ctx, &live).await?;
    }
    colloquy::analytics::install_views_and_warn(ctx).await?;
    Ok(())
}

async fn run_sql(args: SqlArgs) -> anyhow::Result<()> {
    let ctx = session(args.config.as_deref(), args.demo, args.cluster.as_deref()).await?;
    let show_progress = args.format == OutputFormat::Table && std::io::stderr().is_terminal();
    let runner = runner::Runner::new(ctx, args.format, show_progress);
    if args.commands.is_empty() && args.files.is_empty() {
        if std::io::stdin().is_terminal() {
            // Someone exploring asks many questions of the same archive: parse each export once (a
            // cluster's executors keep their own).
            if args.cluster.is_none() {
                std::sync::Arc::new(colloquy::archive::ParsedCache::new(SHELL_ARCHIVE_CACHE))
                    .install(&runner.ctx);
            }
            return shell::run(&runner).await;
        }
        let mut sql = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut sql)?;
        return runner.run_script(&sql, "<stdin>").await;
    }
    for c in &args.commands {
        runner.run_script(c, "-c").await?;
    }
    for f in &args.files {
        let sql = std::fs::read_to_string(f)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", f.display()))?;
        runner.run_script(&sql, &f.display().to_string()).await?;
    }
    Ok(())
}
