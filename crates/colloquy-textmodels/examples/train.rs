//! Trains one of the built-in models from the TSV files that `scripts/models/prepare_data.py` writes, prints
//! its evaluation on the development sets, and writes the model file.
//!
//! ```text
//! cargo run --release -p colloquy-textmodels --example train -- <language|sentiment|intent> \
//!     --prep <prepared dir> --data <public data dir> --handwritten scripts/models/handwritten \
//!     --out crates/colloquy-textmodels/models [--fold] [--bits N] [--epochs N]
//! ```
//! `--fold` trains on the cross-fitting half only (language) and writes no model: its numbers are the
//! honest ones for the lingua development sets.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use colloquy_textmodels::features::{known_word_bucket, symbol_bucket, word_bucket};
use colloquy_textmodels::model::{LinearModel, Scratch};
use colloquy_textmodels::train::{Example, TrainConfig, next, quantize, train};
use colloquy_textmodels::{FeatureSpec, IntentModel, LanguageDetector, SentimentModel, Tokens};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

struct Args {
    task: String,
    prep: PathBuf,
    data: Option<PathBuf>,
    handwritten: Option<PathBuf>,
    out: PathBuf,
    fold: bool,
    bits: Option<u32>,
    epochs: Option<usize>,
    lr: Option<f32>,
    l2: Option<f32>,
    alpha: Option<f32>,
}

fn parse_args() -> Result<Args> {
    let mut it = std::env::args().skip(1);
    let task = it.next().ok_or("usage: train <language|sentiment|intent> --prep DIR --out DIR ...")?;
    let mut a = Args {
        task,
        prep: PathBuf::new(),
        data: None,
        handwritten: None,
        out: PathBuf::from("crates/colloquy-textmodels/models"),
        fold: false,
        bits: None,
        epochs: None,
        lr: None,
        l2: None,
        alpha: None,
    };
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--prep" => a.prep = value()?.into(),
            "--data" => a.data = Some(value()?.into()),
            "--handwritten" => a.handwritten = Some(value()?.into()),
            "--out" => a.out = value()?.into(),
            "--bits" => a.bits = Some(value()?.parse()?),
            "--epochs" => a.epochs = Some(value()?.parse()?),
            "--lr" => a.lr = Some(value()?.parse()?),
            "--l2" => a.l2 = Some(value()?.parse()?),
            "--alpha" => a.alpha = Some(value()?.parse()?),
            "--fold" => a.fold = true,
            other => return Err(format!("unknown flag {other}").into()),
        }
    }
    Ok(a)
}

fn main() -> Result<()> {
    let args = parse_args()?;
    match args.task.as_str() {
        "language" => language(&args),
        "sentiment" => sentiment(&args),
        "intent" => intent(&args),
        other => Err(format!("unknown task {other}").into()),
    }
}

/// Rows of a TSV file; a missing file is an error naming it.
fn read_tsv(path: &Path, columns: usize) -> Result<Vec<Vec<String>>> {
    let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut rows = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let cols: Vec<String> = line.splitn(columns, '\t').map(str::to_owned).collect();
        if cols.len() != columns {
            return Err(format!("{}:{}: expected {columns} columns", path.display(), n + 1).into());
        }
        rows.push(cols);
    }
    Ok(rows)
}

fn finish_model(
    spec: FeatureSpec,
    labels: Vec<String>,
    weights: &[f32],
    bias: Vec<f32>,
    known: Option<(u32, Vec<u64>)>,
    params: Vec<(String, f32)>,
) -> LinearModel {
    let (scale, weights) = quantize(weights);
    let (known_bits, known) = known.unwrap_or((0, vec![]));
    LinearModel { spec, labels, scale, bias, weights, known_bits, known, params }
}

fn write_model(args: &Args, name: &str, model: &LinearModel) -> Result<()> {
    fs::create_dir_all(&args.out)?;
    let path = args.out.join(format!("{name}.bin"));
    let bytes = model.to_bytes();
    fs::write(&path, &bytes)?;
    println!("wrote {} ({:.1} MB)", path.display(), bytes.len() as f64 / 1e6);
    Ok(())
}

fn progress(epoch: usize, loss: f64) {
    println!("  epoch {epoch}: loss {loss:.4}");
}

// ---------------------------------------------------------------------------------------------------------
// language()

const LANGUAGE_SPEC: FeatureSpec = FeatureSpec {
    bits: 17,
    char_min: 1,
    char_max: 5,
    words: true,
    bigrams: false,
    negation: false,
    signals: false,
};

fn language(args: &Args) -> Result<()> {
    let spec = FeatureSpec { bits: args.bits.unwrap_or(LANGUAGE_SPEC.bits), ..LANGUAGE_SPEC };
    let train_file = if args.fold { "train_fold.tsv" } else { "train_full.tsv" };
    let rows = read_tsv(&args.prep.join("langid").join(train_file), 2)?;
    let labels: Vec<String> = rows.iter().map(|r| r[0].clone()).collect::<BTreeSet<_>>().into_iter().collect();
    let index: BTreeMap<&str, u16> = labels.iter().enumerate().map(|(i, l)| (l.as_str(), i as u16)).collect();
    let mut tokens = Tokens::new();
    let mut examples = Vec::new();
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    for r in &rows {
        let y = index[r[0].as_str()];
        examples.extend(Example::new(&spec, &mut tokens, &r[1], y, 1.0));
        // Chat messages are short: train on one- to three-word windows of longer texts as well.
        let words: Vec<&str> = r[1].split_whitespace().collect();
        if words.len() >= 4 {
            for _ in 0..2 {
                let n = 1 + (next(&mut rng) % 3) as usize;
                let start = (next(&mut rng) % (words.len() - n + 1) as u64) as usize;
                let window = words[start..start + n].join(" ");
                examples.extend(Example::new(&spec, &mut tokens, &window, y, 1.0));
            }
        }
    }
    println!("language: {} rows → {} examples, {} labels, 2^{} buckets", rows.len(), examples.len(), labels.len(), spec.bits);
    let t = Instant::now();
    let cfg = TrainConfig { epochs: args.epochs.unwrap_or(5), learning_rate: 0.3, l2: 1e-7, seed: 11 };
    let trained = train(&spec, labels.len(), &examples, &cfg, None, progress);
    println!("trained in {:.1}s", t.elapsed().as_secs_f64());
    let model = finish_model(spec, labels, &trained.weights, trained.bias, None, vec![("min_letters".into(), 2.0)]);
    let detector = LanguageDetector::new(model.clone());
    let xlmt = "ar,de,en,es,fr,hi,it,pt";
    let xsid = "ar,da,de,en,id,it,ja,kk,lt,nl,no,sr,tr,zh";
    for (set, restrict) in [
        ("dev_lingua_sentences", None),
        ("dev_lingua_wordpairs", None),
        ("dev_lingua_words", None),
        ("dev_xlmt", None),
        ("dev_xlmt", Some(xlmt)),
        ("dev_xsid", None),
        ("dev_xsid", Some(xsid)),
    ] {
        let path = args.prep.join("langid").join(format!("{set}.tsv"));
        if !path.exists() {
            continue;
        }
        evaluate_language(&detector, set, &read_tsv(&path, 2)?, restrict)?;
    }
    if !args.fold {
        write_model(args, "language", &model)?;
    }
    Ok(())
}

fn evaluate_language(d: &LanguageDetector, set: &str, rows: &[Vec<String>], restrict: Option<&str>) -> Result<()> {
    let mask = match restrict {
        Some(list) => d.candidates(list)?,
        None => None,
    };
    let mut scratch = Scratch::default();
    let mut probs = Vec::new();
    let mut per: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut confusions: BTreeMap<(String, String), usize> = BTreeMap::new();
    let t = Instant::now();
    for r in rows {
        let got = d.detect(&r[1], mask.as_deref(), &mut scratch, &mut probs);
        let got = got.map_or("NULL", |g| d.codes()[g.language].as_str());
        let e = per.entry(r[0].as_str()).or_default();
        e.1 += 1;
        if got == r[0] {
            e.0 += 1;
        } else {
            *confusions.entry((r[0].clone(), got.to_owned())).or_default() += 1;
        }
    }
    let secs = t.elapsed().as_secs_f64();
    let total: usize = per.values().map(|p| p.1).sum();
    let right: usize = per.values().map(|p| p.0).sum();
    let mean = per.values().map(|&(r, n)| r as f64 / n as f64).sum::<f64>() / per.len() as f64;
    println!(
        "{set}{}: accuracy {:.4}, mean per-language {:.4} ({} rows, {} languages, {:.0} rows/s)",
        restrict.map(|r| format!(" [candidates {r}]")).unwrap_or_default(),
        right as f64 / total as f64,
        mean,
        total,
        per.len(),
        total as f64 / secs
    );
    let line: Vec<String> = per.iter().map(|(l, &(r, n))| format!("{l} {:.3}", r as f64 / n as f64)).collect();
    println!("  {}", line.join("  "));
    let mut worst: Vec<_> = confusions.into_iter().collect();
    worst.sort_by(|a, b| b.1.cmp(&a.1));
    let top: Vec<String> = worst.iter().take(8).map(|((a, b), n)| format!("{a}→{b} {n}")).collect();
    println!("  confusions: {}", top.join(", "));
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------
// sentiment()

const SENTIMENT_SPEC: FeatureSpec = FeatureSpec {
    bits: 18,
    char_min: 3,
    char_max: 5,
    words: true,
    bigrams: true,
    negation: true,
    signals: true,
};
const KNOWN_BITS: u32 = 20;

fn sentiment(args: &Args) -> Result<()> {
    let spec = FeatureSpec { bits: args.bits.unwrap_or(SENTIMENT_SPEC.bits), ..SENTIMENT_SPEC };
    let labels: Vec<String> = ["neg", "neu", "pos"].iter().map(|s| s.to_string()).collect();
    let label_of = |s: &str| labels.iter().position(|l| l == s).map(|i| i as u16);
    let rows = read_tsv(&args.prep.join("sentiment").join("train.tsv"), 3)?;
    // Each language weighs the same, and within a language each class does.
    let mut counts: BTreeMap<(String, String), usize> = BTreeMap::new();
    for r in &rows {
        *counts.entry((r[1].clone(), r[0].clone())).or_default() += 1;
    }
    let groups = counts.len() as f32;
    let mut tokens = Tokens::new();
    let mut examples = Vec::new();
    let mut known = vec![0u64; (1usize << KNOWN_BITS) / 64];
    let mut mark_known = |w: &str| {
        let b = known_word_bucket(w, KNOWN_BITS) as usize;
        known[b / 64] |= 1 << (b % 64);
    };
    for r in &rows {
        let Some(y) = label_of(&r[0]) else { return Err(format!("bad sentiment label {}", r[0]).into()) };
        let n = counts[&(r[1].clone(), r[0].clone())] as f32;
        let weight = (rows.len() as f32 / (groups * n)).min(5.0);
        if let Some(ex) = Example::new(&spec, &mut tokens, &r[2], y, weight) {
            tokens.words().for_each(&mut mark_known);
            examples.push(ex);
        }
    }
    // Lexicons become the starting weights of their words: a word the labelled tweets never show still
    // carries its polarity, and words they do show start from it.
    let mut prior = vec![0.0f32; (1usize << spec.bits) * 3];
    let mut lexicon_words = 0;
    let mut add_prior = |bucket: u32, valence: f32| {
        let row = &mut prior[bucket as usize * 3..][..3];
        row[0] -= valence;
        row[2] += valence;
    };
    let alpha = args.alpha.unwrap_or(0.6);
    if let Some(data) = &args.data {
        let vader = data.join("packages/vadersentiment_3.3.2");
        let text = fs::read_to_string(vader.join("vader_lexicon.txt"))?;
        let mut valence: BTreeMap<String, f32> = BTreeMap::new();
        for line in text.lines() {
            let mut cols = line.split('\t');
            let (Some(word), Some(v)) = (cols.next(), cols.next()) else { continue };
            let Ok(v) = v.trim().parse::<f32>() else { continue };
            valence.insert(word.to_owned(), v);
            tokens.read(word);
            if tokens.len() == 1 {
                let w = tokens.word(0).to_owned();
                mark_known(&w);
                add_prior(word_bucket(&w, false, spec.bits), alpha * v / 2.0);
                add_prior(word_bucket(&w, true, spec.bits), -alpha * v / 4.0);
                lexicon_words += 1;
            }
        }
        // An emoji's polarity: the mean valence of the words of its description.
        let emoji = fs::read_to_string(vader.join("emoji_utf8_lexicon.txt"))?;
        for line in emoji.lines() {
            let Some((e, desc)) = line.split_once('\t') else { continue };
            let mut c = e.chars();
            let (Some(ch), None) = (c.next(), c.next()) else { continue };
            let vs: Vec<f32> = desc.split_whitespace().filter_map(|w| valence.get(w).copied()).collect();
            if !vs.is_empty() {
                let v = vs.iter().sum::<f32>() / vs.len() as f32;
                add_prior(symbol_bucket(ch, spec.bits), alpha * v / 2.0);
            }
        }
    }
    if let Some(dir) = &args.handwritten {
        for entry in fs::read_dir(dir)? {
            let path = entry?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            if !name.starts_with("sentiment_lexicon_") {
                continue;
            }
            for r in read_tsv(&path, 2)? {
                let v: f32 = r[1].trim().parse().map_err(|e| format!("{}: {e}", path.display()))?;
                tokens.read(&r[0]);
                for w in tokens.words().map(str::to_owned).collect::<Vec<_>>() {
                    mark_known(&w);
                    add_prior(word_bucket(&w, false, spec.bits), alpha * v * 0.6);
                    add_prior(word_bucket(&w, true, spec.bits), -alpha * v * 0.3);
                }
                lexicon_words += 1;
            }
        }
    }
    println!("sentiment: {} rows → {} examples, {lexicon_words} lexicon words as prior", rows.len(), examples.len());
    let t = Instant::now();
    let cfg = TrainConfig {
        epochs: args.epochs.unwrap_or(6),
        learning_rate: args.lr.unwrap_or(0.2),
        l2: args.l2.unwrap_or(1e-5),
        seed: 5,
    };
    let trained = train(&spec, 3, &examples, &cfg, Some(prior), progress);
    println!("trained in {:.1}s", t.elapsed().as_secs_f64());
    let model = finish_model(
        spec,
        labels,
        &trained.weights,
        trained.bias,
        Some((KNOWN_BITS, known)),
        vec![("min_known".into(), 0.3)],
    );
    let m = SentimentModel::new(model.clone())?;
    for set in ["dev_xlmt", "dev_en_clean", "dev_tweeteval_val"] {
        let path = args.prep.join("sentiment").join(format!("{set}.tsv"));
        if path.exists() {
            evaluate_sentiment(&m, set, &read_tsv(&path, 3)?);
        }
    }
    write_model(args, "sentiment", &model)
}

fn evaluate_sentiment(m: &SentimentModel, set: &str, rows: &[Vec<String>]) {
    let mut by_lang: BTreeMap<&str, Vec<(usize, usize)>> = BTreeMap::new();
    let mut scratch = Scratch::default();
    let mut probs = Vec::new();
    let mut unknown = 0;
    for r in rows {
        let gold = match r[0].as_str() {
            "neg" => 0,
            "neu" => 1,
            _ => 2,
        };
        let got = match m.score(&r[2], &mut scratch, &mut probs) {
            Some(s) => match s.label {
                colloquy_textmodels::Polarity::Negative => 0,
                colloquy_textmodels::Polarity::Neutral => 1,
                colloquy_textmodels::Polarity::Positive => 2,
            },
            None => {
                unknown += 1;
                1
            }
        };
        by_lang.entry(r[1].as_str()).or_default().push((gold, got));
    }
    let line: Vec<String> = by_lang.iter().map(|(l, pairs)| format!("{l} {:.3}", macro_f1(pairs, 3))).collect();
    println!("{set}: macro-F1 {}  (unknown → neutral: {unknown})", line.join("  "));
}

fn macro_f1(pairs: &[(usize, usize)], k: usize) -> f64 {
    let mut f = 0.0;
    for c in 0..k {
        let tp = pairs.iter().filter(|&&(g, p)| g == c && p == c).count() as f64;
        let fp = pairs.iter().filter(|&&(g, p)| g != c && p == c).count() as f64;
        let fn_ = pairs.iter().filter(|&&(g, p)| g == c && p != c).count() as f64;
        f += if tp == 0.0 { 0.0 } else { 2.0 * tp / (2.0 * tp + fp + fn_) };
    }
    f / k as f64
}

// ---------------------------------------------------------------------------------------------------------
// intent()

const INTENT_SPEC: FeatureSpec = FeatureSpec {
    bits: 18,
    char_min: 3,
    char_max: 5,
    words: true,
    bigrams: true,
    negation: false,
    signals: false,
};

fn intent(args: &Args) -> Result<()> {
    let spec = FeatureSpec { bits: args.bits.unwrap_or(INTENT_SPEC.bits), ..INTENT_SPEC };
    let dir = args.prep.join("intent");
    let fit = |file: &str, threshold: Option<f32>| -> Result<LinearModel> {
        let rows = read_tsv(&dir.join(file), 2)?;
        let labels: Vec<String> = rows.iter().map(|r| r[0].clone()).collect::<BTreeSet<_>>().into_iter().collect();
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for r in &rows {
            *counts.entry(r[0].as_str()).or_default() += 1;
        }
        let mut tokens = Tokens::new();
        let examples: Vec<Example> = rows
            .iter()
            .filter_map(|r| {
                let y = labels.iter().position(|l| *l == r[0])? as u16;
                let w = (rows.len() as f32 / (labels.len() as f32 * counts[r[0].as_str()] as f32)).clamp(0.2, 5.0);
                Example::new(&spec, &mut tokens, &r[1], y, w)
            })
            .collect();
        println!("intent ({file}): {} rows → {} examples, {} labels", rows.len(), examples.len(), labels.len());
        let cfg = TrainConfig { epochs: args.epochs.unwrap_or(6), learning_rate: 0.3, l2: 1e-6, seed: 3 };
        let t = Instant::now();
        let trained = train(&spec, labels.len(), &examples, &cfg, None, progress);
        println!("trained in {:.1}s", t.elapsed().as_secs_f64());
        let params = vec![("threshold".into(), threshold.unwrap_or(0.5))];
        Ok(finish_model(spec, labels, &trained.weights, trained.bias, None, params))
    };
    // Held-out evaluation: fit on train, choose the threshold on dev, report on test.
    let model = IntentModel::new(fit("train.tsv", None)?)?;
    let dev = read_tsv(&dir.join("dev.tsv"), 2)?;
    let mut best = (0.0, 0.0f32);
    for step in 0..=16 {
        let tau = step as f32 * 0.05;
        let acc = intent_accuracy(&model, &dev, tau, false);
        if acc > best.0 {
            best = (acc, tau);
        }
    }
    let tau = best.1;
    println!("threshold {tau:.2} (dev accuracy {:.4})", best.0);
    intent_accuracy(&model, &dev, tau, true);
    intent_accuracy(&model, &read_tsv(&dir.join("test.tsv"), 2)?, tau, true);
    for lang in ["es", "fr", "de", "pt", "it"] {
        let path = dir.join(format!("dev_{lang}.tsv"));
        if path.exists() {
            let acc = intent_accuracy(&model, &read_tsv(&path, 2)?, tau, false);
            println!("{lang} (hand-written, held-out third): accuracy {acc:.4}");
        }
    }
    if !args.fold {
        let shipped = fit("full_train.tsv", Some(tau))?;
        write_model(args, "intent", &shipped)?;
    }
    Ok(())
}

fn intent_accuracy(m: &IntentModel, rows: &[Vec<String>], tau: f32, report: bool) -> f64 {
    let mut scratch = Scratch::default();
    let mut probs = Vec::new();
    let mut per: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for r in rows {
        let got = m.classify_with(&r[1], tau, &mut scratch, &mut probs);
        let e = per.entry(r[0].as_str()).or_default();
        e.1 += 1;
        if m.labels()[got.label] == r[0] {
            e.0 += 1;
        }
    }
    let total: usize = per.values().map(|p| p.1).sum();
    let right: usize = per.values().map(|p| p.0).sum();
    let acc = right as f64 / total.max(1) as f64;
    if report {
        let line: Vec<String> = per.iter().map(|(l, &(r, n))| format!("{l} {:.3}", r as f64 / n as f64)).collect();
        println!("accuracy {acc:.4} over {total}: {}", line.join("  "));
    }
    acc
}
