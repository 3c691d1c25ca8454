//! Times the demo generator alone: `cargo run --release -p colloquy-demo --example generate -- OUT [CONVERSATIONS] [SEED]`.

use std::time::Instant;

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let out = args.next().unwrap_or_else(|| "colloquy-demo".to_string());
    let conversations = args.next().and_then(|s| s.parse().ok()).unwrap_or(3000);
    let seed = args.next().and_then(|s| s.parse().ok()).unwrap_or(42);
    let started = Instant::now();
    let (demo, stats) = colloquy_demo::generate_to(
        std::path::Path::new(&out),
        colloquy_demo::DemoConfig {
            conversations,
            seed,
        },
    )?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{} conversations, {} messages, {} files, {:.1} MB in {secs:.2} s: {:.0} messages/s",
        demo.conversations.len(),
        stats.rows,
        stats.files,
        stats.bytes as f64 / 1e6,
        stats.rows as f64 / secs
    );
    Ok(())
}
