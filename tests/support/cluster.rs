//! The `.slt` suite on a Ballista cluster: a scheduler and two executors (one task slot each) in this
//! process on loopback, started once for the whole run. Every file runs with the same expected output
//! as on a single node.

use tokio::sync::OnceCell;

use super::Test;
use super::slt::{Mode, run_file, slt_files};

static CLUSTER: OnceCell<String> = OnceCell::const_new();

/// The test cluster's address (`df://127.0.0.1:PORT`), started on first use.
pub async fn url() -> anyhow::Result<String> {
    CLUSTER
        .get_or_try_init(|| async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let addr = colloquy_cluster::scheduler::start(
                listener,
                colloquy_cluster::scheduler::SchedulerOptions::default(),
            )
            .await?;
            let url = format!("df://{addr}");
            for _ in 0..2 {
                colloquy_cluster::executor::start_in_process(&url, 1).await?;
            }
            Ok::<_, anyhow::Error>(url)
        })
        .await
        .cloned()
}

pub fn tests() -> Vec<Test> {
    let mut tests = Vec::new();
    for p in slt_files() {
        let stem = p
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        tests.push(Test::new(format!("slt_cluster::{stem}"), move || {
            let p = p.clone();
            async move { run_file(&p, Mode::Cluster).await }
        }));
    }
    tests
}
