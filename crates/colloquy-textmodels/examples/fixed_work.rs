//! A fixed amount of scoring work, for A/B runs of two builds of the scorer:
//!
//! ```text
//! cargo build --release -p colloquy-textmodels --example fixed_work   # once per variant; copy the binary
//! fixed_work <language|sentiment|intent> [passes] [messages file, one per line]
//! ```
//!
//! Criterion runs one variant after the other; on a noisy shared machine that moved the same code by
//! ±20% between runs minutes apart. Running two copied binaries alternately, many times, and comparing
//! best and median rates of each tells real changes from the machine's weather. The messages are the
//! criterion bench's (the hand-written support messages in six languages) unless a file is given. As in the
//! SQL functions, scoring buffers (and the word cache in them) are taken from the thread's pool for every
//! 8,192 messages.

use colloquy_textmodels::{Scratch, builtin};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let which = std::env::args().nth(1).unwrap_or_else(|| "intent".into());
    let passes: usize = std::env::args()
        .nth(2)
        .and_then(|p| p.parse().ok())
        .unwrap_or(100);
    let mut msgs = Vec::new();
    if let Some(file) = std::env::args().nth(3) {
        let text = std::fs::read_to_string(file)?;
        msgs.extend(text.lines().filter(|l| !l.is_empty()).map(str::to_owned));
    } else {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../scripts/models/handwritten");
        for lang in ["en", "es", "fr", "de", "pt", "it"] {
            let text = std::fs::read_to_string(dir.join(format!("intent_{lang}.tsv")))?;
            msgs.extend(
                text.lines()
                    .filter_map(|l| l.split_once('\t'))
                    .map(|(_, t)| t.to_owned()),
            );
        }
    }
    let lang = builtin::language()?;
    let sent = builtin::sentiment()?;
    let intent = builtin::intent()?;
    let model = match which.as_str() {
        "language" => lang.model(),
        "sentiment" => sent.model(),
        _ => intent.model(),
    };
    let (mut s, mut ls, mut p) = (
        Scratch::pooled(model),
        Scratch::pooled(lang.model()),
        Vec::new(),
    );
    // A checksum of the answers, so that two variants can be seen to agree and nothing is optimised away.
    let mut check = 0f64;
    let start = std::time::Instant::now();
    for _ in 0..passes {
        for (i, m) in msgs.iter().enumerate() {
            if i % 8192 == 0 {
                // Back to the pool and out again, as for each batch of a SQL function.
                drop((s, ls));
                (s, ls) = (Scratch::pooled(model), Scratch::pooled(lang.model()));
            }
            check += match which.as_str() {
                // As `language()` does: the language alone, without its probability.
                "language" => lang.language_of(m, None, &mut s, &mut p).map_or(0, |l| l) as f64,
                "sentiment" => sent
                    .score_with(m, &mut s, &mut p, Some((lang, &mut *ls)))
                    .map_or(0.0, |x| f64::from(x.score)),
                "intent" => intent.classify(m, &mut s, &mut p).label as f64,
                other => return Err(format!("unknown model '{other}'").into()),
            };
        }
    }
    let n = (passes * msgs.len()) as f64;
    println!(
        "{which}: {:.0} msgs/s (checksum {check:.3})",
        n / start.elapsed().as_secs_f64()
    );
    Ok(())
}
