//! A progress line for long scans, on a terminal only: objects read, bytes and rows so far.

use std::time::Duration;

use colloquy::archive::progress::{PROGRESS, ProgressSnapshot};
use indicatif::{ProgressBar, ProgressStyle};

pub struct ScanBar {
    bar: ProgressBar,
    ticker: tokio::task::JoinHandle<()>,
}

impl ScanBar {
    pub fn start() -> Self {
        let base = PROGRESS.snapshot();
        let bar = ProgressBar::hidden();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        let b = bar.clone();
        // Short queries finish before the bar appears, so they print nothing extra.
        let ticker = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(400)).await;
            b.set_draw_target(indicatif::ProgressDrawTarget::stderr());
            loop {
                let now = PROGRESS.snapshot();
                b.set_message(describe(&base, &now));
                b.tick();
                tokio::time::sleep(Duration::from_millis(120)).await;
            }
        });
        Self { bar, ticker }
    }

    pub fn finish(self) {
        self.ticker.abort();
        self.bar.finish_and_clear();
    }
}

fn describe(base: &ProgressSnapshot, now: &ProgressSnapshot) -> String {
    let objects = now.objects_done - base.objects_done;
    let listed = now.objects_listed - base.objects_listed;
    let mb = (now.bytes_read - base.bytes_read) as f64 / 1e6;
    let rows = now.rows - base.rows;
    format!("scanning: {objects}/{listed} objects, {mb:.1} MB, {rows} messages")
}
