//! Trains on one `label<TAB>text` file and reports accuracy on another, without DataFusion: the quick loop
//! for tuning defaults on the train/dev splits written by `scripts/classifier/prepare_intent_benchmarks.py`.
//!
//! `cargo run --release -p colloquy-classifier --example train_csv -- TRAIN.csv DEV.csv ['options'] [OUT.onnx]`

use std::error::Error;

use colloquy_textmodels::recipes::data::read_tsv;

/// Texts and labels of a prepared file: a header line, then `label<TAB>text` rows.
fn read(path: &str) -> Result<(Vec<String>, Vec<String>), Box<dyn Error>> {
    // Every row has the two columns (`read_tsv` checks it).
    Ok(read_tsv(path.as_ref(), 2)?
        .into_iter()
        .skip(1)
        .filter_map(|row| <[String; 2]>::try_from(row).ok())
        .map(|[label, text]| (text, label))
        .unzip())
}

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 {
        return Err("usage: train_csv TRAIN.tsv DEV.tsv ['options'] [OUT.onnx]".into());
    }
    let (texts, labels) = read(&args[0])?;
    let (dev_texts, dev_labels) = read(&args[1])?;
    let options = colloquy_classifier::Options::parse(args.get(2).map_or("", String::as_str))?;
    let t: Vec<&str> = texts.iter().map(String::as_str).collect();
    let l: Vec<&str> = labels.iter().map(String::as_str).collect();
    let started = std::time::Instant::now();
    let model = colloquy_classifier::train(&t, &l, &options)?;
    let seconds = started.elapsed().as_secs_f64();
    let correct = dev_texts
        .iter()
        .zip(&dev_labels)
        .filter(|(t, l)| model.predict(t) == l.as_str())
        .count();
    println!(
        "rows {} features {}+{} train {:.2}s (featurize {:.2}s fit {:.2}s) loss {:.4} dev accuracy {:.4} ({} of {})",
        model.report.rows,
        model.words.len(),
        model.chars.len(),
        seconds,
        model.report.featurize_seconds,
        model.report.fit_seconds,
        model.report.final_loss,
        correct as f64 / dev_texts.len() as f64,
        correct,
        dev_texts.len()
    );
    // Scoring speed of the Rust scorer (what SQL uses for these models), one thread.
    let mut scratch = colloquy_classifier::Scratch::default();
    let mut p = Vec::new();
    let started = std::time::Instant::now();
    let mut scored = 0usize;
    while scored < 200_000 {
        for t in &dev_texts {
            model.probabilities_into(t, &mut scratch, &mut p);
        }
        scored += dev_texts.len();
    }
    println!(
        "scoring: {:.0} texts/s (one thread)",
        scored as f64 / started.elapsed().as_secs_f64()
    );
    if let Some(out) = args.get(3) {
        std::fs::write(out, model.to_onnx())?;
        let predictions: Vec<&str> = dev_texts.iter().map(|t| model.predict(t)).collect();
        std::fs::write(format!("{out}.predictions"), predictions.join("\n") + "\n")?;
    }
    Ok(())
}
