//! The integration suite, one binary (`harness = false`): every `.slt` file under `tests/slt/`, then the
//! tests that need real peers (an S3-compatible server, the npm WhatsApp parser) and the demo archive.
//!
//! `cargo test --test integration -- FILTER` runs the tests whose name contains FILTER;
//! `COLLOQUY_SLT_COMPLETE=1` rewrites the expected output of `.slt` files (review the diff!).

mod support;

use std::process::ExitCode;

fn main() -> ExitCode {
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        // The cluster's scheduler and executors run in this runtime: decoding the plans of the
        // analytics views recurses deeply (debug builds use more stack per frame).
        .thread_stack_size(16 << 20)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut tests = support::slt::tests();
    tests.extend(support::s3::tests());
    tests.extend(support::stores::tests());
    tests.extend(support::cache::tests());
    tests.extend(support::view_cache::tests());
    tests.extend(support::cluster::tests());
    tests.extend(support::differential::tests());
    tests.extend(support::demo::tests());
    tests.extend(support::onnx::tests());

    let selected: Vec<_> = tests
        .into_iter()
        .filter(|t| filter.is_empty() || filter.iter().any(|f| t.name.contains(f.as_str())))
        .collect();
    let mut failed = Vec::new();
    for t in &selected {
        let started = std::time::Instant::now();
        let result = runtime.block_on((t.run)());
        let secs = started.elapsed().as_secs_f64();
        match result {
            Ok(()) => println!("test {} ... ok ({secs:.2}s)", t.name),
            Err(e) => {
                println!("test {} ... FAILED ({secs:.2}s)\n{e:#}\n", t.name);
                failed.push(t.name.clone());
            }
        }
    }
    println!(
        "\n{} passed, {} failed{}",
        selected.len() - failed.len(),
        failed.len(),
        if failed.is_empty() {
            String::new()
        } else {
            format!(": {}", failed.join(", "))
        }
    );
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
