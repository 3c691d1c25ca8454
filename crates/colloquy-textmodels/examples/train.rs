//! Trains one of the built-in models from the TSV files that `scripts/models/prepare_data.py` writes, prints
//! its evaluation on the development sets, and writes the model file.
//!
//! ```text
//! cargo run --release -p colloquy-textmodels --example train -- <language|sentiment|intent> \
//!     --prep <prepared dir> --data <public data dir> --handwritten scripts/models/handwritten \
//!     --out crates/colloquy-textmodels/models [--fold] [--bits N] [--epochs N] [--lr X] [--l2 X] \
//!     [--alpha X] [--set name=value ...]
//! ```
//! `--fold` trains on the cross-fitting half only (language) and writes no model: its numbers are the
//! honest ones for the lingua development sets. For intent, `--fold` skips the shipped model.
//!
//! The defaults are the chosen settings; `--set` overrides one experiment knob for a run:
//! feature-spec fields (`char_min`, `char_max`, `words`, `bigrams`, `negation`, `signals`, 0/1 for flags);
//! language: `windows`, `max_window`, `single_w`, `word_ex`, `word_ex_min`, `speed_reps` (timing);
//! sentiment: `cv` (folds for the class offsets, 0 = none), `avg` (models averaged), `other_w` (VADER
//! review snippets), `w_<lang>`, `w_vader`, `w_emotion`, `wcap`, `neg_prior`, `emoji_alpha`, `hand_alpha`,
//! `min_known`,
//! `neg_bias`/`pos_bias` (fixed offsets when `cv` is 0), `lang_offsets` (measures per-language offsets),
//! `self_w`/`self_tau`/`self_n`/`self_cap` (self-training on the BYU chat; off: it did not help);
//! intent: `foreign_w` (non-English hand-written rows), `hand_en_w`, `cw_pow`/`cw_min`/`cw_max` (class
//! balance), `strip_aug` (accent-stripped copies of non-English rows), `mix_none` (share of requests also
//! trained wrapped in small talk; 0 = off) and `mix_w` (their weight).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use colloquy_textmodels::features::{known_word_bucket, symbol_bucket, word_bucket};
use colloquy_textmodels::hash::checksum;
use colloquy_textmodels::model::{CacheId, LinearModel, Scratch, argmax, softmax};
use colloquy_textmodels::train::{AdaGrad, Example, TrainConfig, Trained, next, quantize, train};
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
    /// `--set name=value` experiment overrides, read through [`Args::knob`].
    knobs: BTreeMap<String, f32>,
}

impl Args {
    /// An experiment knob: the `--set` value of `name`, or `default`.
    fn knob(&self, name: &str, default: f32) -> f32 {
        self.knobs.get(name).copied().unwrap_or(default)
    }

    /// A feature spec with the `--set` overrides of its fields applied.
    fn spec(&self, base: FeatureSpec) -> FeatureSpec {
        let flag = |name: &str, v: bool| self.knob(name, f32::from(u8::from(v))) != 0.0;
        FeatureSpec {
            bits: self.bits.unwrap_or(base.bits),
            char_min: self.knob("char_min", base.char_min as f32) as u32,
            char_max: self.knob("char_max", base.char_max as f32) as u32,
            words: flag("words", base.words),
            bigrams: flag("bigrams", base.bigrams),
            negation: flag("negation", base.negation),
            signals: flag("signals", base.signals),
        }
    }
}

fn parse_args() -> Result<Args> {
    let mut it = std::env::args().skip(1);
    let task = it
        .next()
        .ok_or("usage: train <language|sentiment|intent> --prep DIR --out DIR ...")?;
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
        knobs: BTreeMap::new(),
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
            "--set" => {
                let v = value()?;
                let (k, x) = v.split_once('=').ok_or("--set needs name=value")?;
                a.knobs.insert(k.to_owned(), x.parse()?);
            }
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
    LinearModel {
        spec,
        labels,
        scale,
        bias,
        weights,
        known_bits,
        known,
        params,
        cache_id: CacheId::default(),
    }
}

fn write_model(args: &Args, name: &str, model: &LinearModel) -> Result<()> {
    fs::create_dir_all(&args.out)?;
    let path = args.out.join(format!("{name}.bin"));
    let bytes = model.to_bytes();
    fs::write(&path, &bytes)?;
    println!(
        "wrote {} ({:.1} MB)",
        path.display(),
        bytes.len() as f64 / 1e6
    );
    Ok(())
}

fn progress(epoch: usize, loss: f64) {
    println!("  epoch {epoch}: loss {loss:.4}");
}

// ---------------------------------------------------------------------------------------------------------
// language()

// 2^18 buckets (8.7 MB): +0.5 point on single words and word pairs over 2^17 (fold mode), same speed.
// Character 1–4-grams: as accurate as 1–5 with these settings (fold mode) and a fifth fewer features per
// word, so faster (xSID-length utterances: 150–240k/s against 130–190k/s on one shared core here);
// 1–3 loses 2 points on single words.
const LANGUAGE_SPEC: FeatureSpec = FeatureSpec {
    bits: 18,
    char_min: 1,
    char_max: 4,
    words: true,
    bigrams: false,
    negation: false,
    signals: false,
};

fn language(args: &Args) -> Result<()> {
    let spec = args.spec(LANGUAGE_SPEC);
    let train_file = if args.fold {
        "train_fold.tsv"
    } else {
        "train_full.tsv"
    };
    let rows = read_tsv(&args.prep.join("langid").join(train_file), 2)?;
    let labels: Vec<String> = rows
        .iter()
        .map(|r| r[0].clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let index: BTreeMap<&str, u32> = labels
        .iter()
        .enumerate()
        .map(|(i, l)| (l.as_str(), i as u32))
        .collect();
    let mut tokens = Tokens::new();
    let mut examples = Vec::new();
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let windows = args.knob("windows", 4.0) as usize;
    let max_window = args.knob("max_window", 3.0) as u64;
    let single_w = args.knob("single_w", 1.0);
    // Each word of 4+ letters as an example of its own, at 0.3 weight: +1.5 points on single words and
    // +2 on word pairs (fold mode), −0.4 on xSID's mean per language.
    let word_ex = args.knob("word_ex", 0.3);
    let word_ex_min = args.knob("word_ex_min", 4.0) as usize;
    for r in &rows {
        let y = index[r[0].as_str()];
        examples.extend(Example::new(&spec, &mut tokens, &r[1], y, 1.0));
        // Chat messages are short: train on one- to three-word windows of longer texts as well (four per
        // text: +0.5 point on lingua sentences over two).
        let words: Vec<&str> = r[1].split_whitespace().collect();
        if words.len() >= 4 && word_ex > 0.0 {
            // Every word on its own as well, weighing less: single-word queries need the vocabulary.
            for w in words.iter().filter(|w| w.chars().count() >= word_ex_min) {
                examples.extend(Example::new(&spec, &mut tokens, w, y, word_ex));
            }
        }
        if words.len() >= 4 {
            for _ in 0..windows {
                let n = 1 + (next(&mut rng) % max_window) as usize;
                let start = (next(&mut rng) % (words.len() - n + 1) as u64) as usize;
                let window = words[start..start + n].join(" ");
                let w = if n == 1 { single_w } else { 1.0 };
                examples.extend(Example::new(&spec, &mut tokens, &window, y, w));
            }
        }
    }
    println!(
        "language: {} rows → {} examples, {} labels, 2^{} buckets",
        rows.len(),
        examples.len(),
        labels.len(),
        spec.bits
    );
    let t = Instant::now();
    let cfg = TrainConfig {
        epochs: args.epochs.unwrap_or(4),
        learning_rate: args.lr.unwrap_or(0.3),
        adagrad: AdaGrad::PerWeight {
            l2: args.l2.unwrap_or(1e-7),
        },
        seed: 11,
    };
    let trained = train(
        1 << spec.bits,
        labels.len(),
        &examples,
        &cfg,
        None,
        progress,
    );
    println!("trained in {:.1}s", t.elapsed().as_secs_f64());
    let model = finish_model(
        spec,
        labels,
        &trained.weights,
        trained.bias,
        None,
        vec![("min_letters".into(), 2.0)],
    );
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
    // `--set speed_reps=N`: a steadier single-core speed figure (each set scored N times).
    let reps = args.knob("speed_reps", 0.0) as usize;
    for set in [
        "dev_lingua_words",
        "dev_lingua_wordpairs",
        "dev_xsid",
        "dev_xlmt",
    ] {
        let path = args.prep.join("langid").join(format!("{set}.tsv"));
        if reps == 0 || !path.exists() {
            continue;
        }
        let rows = read_tsv(&path, 2)?;
        let (mut scratch, mut probs, mut found) = (Scratch::default(), Vec::new(), 0usize);
        let t = Instant::now();
        for _ in 0..reps {
            for r in &rows {
                found += usize::from(
                    detector
                        .detect(&r[1], None, &mut scratch, &mut probs)
                        .is_some(),
                );
            }
        }
        let n = rows.len() * reps;
        let mean_chars =
            rows.iter().map(|r| r[1].chars().count()).sum::<usize>() as f64 / rows.len() as f64;
        println!(
            "speed {set}: {:.0} rows/s ({n} rows, mean {mean_chars:.0} chars, {found} detected)",
            n as f64 / t.elapsed().as_secs_f64()
        );
    }
    if !args.fold {
        write_model(args, "language", &model)?;
    }
    Ok(())
}

fn evaluate_language(
    d: &LanguageDetector,
    set: &str,
    rows: &[Vec<String>],
    restrict: Option<&str>,
) -> Result<()> {
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
            *confusions
                .entry((r[0].clone(), got.to_owned()))
                .or_default() += 1;
        }
    }
    let secs = t.elapsed().as_secs_f64();
    let total: usize = per.values().map(|p| p.1).sum();
    let right: usize = per.values().map(|p| p.0).sum();
    let mean = per.values().map(|&(r, n)| r as f64 / n as f64).sum::<f64>() / per.len() as f64;
    println!(
        "{set}{}: accuracy {:.4}, mean per-language {:.4} ({} rows, {} languages, {:.0} rows/s)",
        restrict
            .map(|r| format!(" [candidates {r}]"))
            .unwrap_or_default(),
        right as f64 / total as f64,
        mean,
        total,
        per.len(),
        total as f64 / secs
    );
    let line: Vec<String> = per
        .iter()
        .map(|(l, &(r, n))| format!("{l} {:.3}", r as f64 / n as f64))
        .collect();
    println!("  {}", line.join("  "));
    let mut worst: Vec<_> = confusions.into_iter().collect();
    worst.sort_by_key(|b| std::cmp::Reverse(b.1));
    let top: Vec<String> = worst
        .iter()
        .take(8)
        .map(|((a, b), n)| format!("{a}→{b} {n}"))
        .collect();
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
const KNOWN_BITS: u32 = 22;

fn sentiment(args: &Args) -> Result<()> {
    let spec = args.spec(SENTIMENT_SPEC);
    let labels: Vec<String> = ["neg", "neu", "pos"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut rows = read_tsv(&args.prep.join("sentiment").join("train.tsv"), 3)?;
    for r in &rows {
        if !labels.contains(&r[0]) {
            return Err(format!("bad sentiment label {}", r[0]).into());
        }
    }
    let n_main = rows.len();
    // The VADER review/editorial snippets: English, but not tweets, so they weigh less.
    let other_w = args.knob("other_w", 0.0);
    if other_w > 0.0 {
        rows.extend(read_tsv(
            &args.prep.join("sentiment").join("train_vader_other.tsv"),
            3,
        )?);
    }
    let mut weights = sentiment_weights(args, &rows, n_main, other_w);
    // English comes from three sources; each can weigh differently (`w_vader`, `w_emotion`).
    let sources = english_sources(args)?;
    for (r, w) in rows[..n_main].iter().zip(weights.iter_mut()) {
        if r[1] == "en"
            && let Some(src) = sources.get(r[2].as_str())
        {
            let default = if *src == "vader" { 2.0 } else { 1.0 };
            *w *= args.knob(&format!("w_{src}"), default);
        }
    }
    let mut known = vec![0u64; (1usize << KNOWN_BITS) / 64];
    let mut tokens = Tokens::new();
    let mut examples = Vec::new();
    for (i, (r, &w)) in rows.iter().zip(&weights).enumerate() {
        if w <= 0.0 {
            continue;
        }
        let y = labels.iter().position(|l| *l == r[0]).unwrap_or(1) as u32;
        if let Some(ex) = Example::new(&spec, &mut tokens, &r[2], y, w) {
            tokens.words().for_each(|w| mark_known(&mut known, w));
            examples.push((ex, i));
        }
    }
    let (prior, lexicon_words) = sentiment_prior(args, &spec, &mut known)?;
    println!(
        "sentiment: {} rows → {} examples, {lexicon_words} lexicon words as prior",
        rows.len(),
        examples.len()
    );
    // A small learning rate over more epochs: 1,800 tweets per language overfit quickly (5-fold CV on
    // train 0.553 at lr 0.2 / 6 epochs, 0.568 here).
    let cfg = TrainConfig {
        epochs: args.epochs.unwrap_or(8),
        learning_rate: args.lr.unwrap_or(0.05),
        adagrad: AdaGrad::PerWeight {
            l2: args.l2.unwrap_or(1e-5),
        },
        seed: 5,
    };
    let n_avg = args.knob("avg", 1.0) as usize;
    let mut lang_offsets: BTreeMap<String, [f32; 3]> = BTreeMap::new();
    // Class offsets for macro-F1, chosen by cross-validation on the training tweets (never on a dev set).
    let folds = args.knob("cv", 5.0) as usize;
    let mut offsets = [args.knob("neg_bias", 0.0), 0.0, args.knob("pos_bias", 0.0)];
    if folds > 1 {
        let mut oof: Vec<(usize, Vec<f32>, String, &str)> = Vec::new();
        for k in 0..folds {
            let fold_of = |i: usize| (i * 7919 + 13) % folds;
            let fit: Vec<Example> = examples
                .iter()
                .filter(|e| fold_of(e.1) != k)
                .map(|e| e.0.clone())
                .collect();
            let trained = train_averaged(&spec, 3, &fit, &cfg, &prior, n_avg, |_, _| {});
            let model = finish_model(
                spec,
                labels.clone(),
                &trained.weights,
                trained.bias,
                None,
                vec![],
            );
            let mut scratch = Scratch::default();
            for (_, r) in rows
                .iter()
                .enumerate()
                .filter(|&(i, _)| fold_of(i) == k && i < n_main)
            {
                let mut logits = Vec::new();
                model.logits(&r[2], &mut scratch, &mut logits);
                let gold = labels.iter().position(|l| *l == r[0]).unwrap_or(1);
                let src = if r[1] == "en" {
                    sources.get(r[2].as_str()).copied().unwrap_or("xlmt")
                } else {
                    ""
                };
                oof.push((gold, logits, r[1].clone(), src));
            }
        }
        let score = |dn: f32, dp: f32| {
            let mut by: BTreeMap<&str, Vec<(usize, usize)>> = BTreeMap::new();
            for (g, l, lang, _) in &oof {
                let v = [l[0] + dn, l[1], l[2] + dp];
                let p = if v[0] >= v[1] && v[0] >= v[2] {
                    0
                } else if v[2] > v[1] {
                    2
                } else {
                    1
                };
                by.entry(lang.as_str()).or_default().push((*g, p));
            }
            by.values().map(|p| macro_f1(p, 3)).sum::<f64>() / by.len() as f64
        };
        let base = score(0.0, 0.0);
        let mut best = (base, 0.0, 0.0);
        for a in -20..=20 {
            for b in -20..=20 {
                let (dn, dp) = (a as f32 * 0.05, b as f32 * 0.05);
                let s = score(dn, dp);
                if s > best.0 + 1e-9 {
                    best = (s, dn, dp);
                }
            }
        }
        println!(
            "{folds}-fold CV on train: mean macro-F1 {base:.4} → {:.4} with offsets neg {:+.2} pos {:+.2}",
            best.0, best.1, best.2
        );
        offsets = [best.1, 0.0, best.2];
        let mut by: BTreeMap<String, Vec<(usize, usize)>> = BTreeMap::new();
        for (g, l, lang, src) in &oof {
            let v = [l[0] + best.1, l[1], l[2] + best.2];
            let p = if v[0] >= v[1] && v[0] >= v[2] {
                0
            } else if v[2] > v[1] {
                2
            } else {
                1
            };
            by.entry(format!(
                "{lang}{}{src}",
                if src.is_empty() { "" } else { "-" }
            ))
            .or_default()
            .push((*g, p));
        }
        let line: Vec<String> = by
            .iter()
            .map(|(k, p)| format!("{k} {:.3}", macro_f1(p, 3)))
            .collect();
        println!("  CV per set: {}", line.join("  "));
        // What per-language offsets would add (the scorer has no language input today: measurement only).
        if args.knob("lang_offsets", 0.0) != 0.0 {
            let langs: BTreeSet<&str> = oof.iter().map(|o| o.2.as_str()).collect();
            for lang in langs {
                let rows: Vec<_> = oof.iter().filter(|o| o.2 == lang).collect();
                let mut best = (0.0, 0.0, 0.0);
                for a in -20..=20 {
                    for b in -20..=20 {
                        let (dn, dp) = (offsets[0] + a as f32 * 0.05, offsets[2] + b as f32 * 0.05);
                        let pairs: Vec<(usize, usize)> = rows
                            .iter()
                            .map(|(g, l, _, _)| {
                                let v = [l[0] + dn, l[1], l[2] + dp];
                                (
                                    *g,
                                    if v[0] >= v[1] && v[0] >= v[2] {
                                        0
                                    } else if v[2] > v[1] {
                                        2
                                    } else {
                                        1
                                    },
                                )
                            })
                            .collect();
                        let f = macro_f1(&pairs, 3);
                        if f > best.0 + 1e-9 {
                            best = (f, dn, dp);
                        }
                    }
                }
                lang_offsets.insert(
                    lang.to_owned(),
                    [best.1 - offsets[0], 0.0, best.2 - offsets[2]],
                );
            }
        }
    }
    let t = Instant::now();
    let mut fit: Vec<Example> = examples.into_iter().map(|e| e.0).collect();
    let mut trained = train_averaged(&spec, 3, &fit, &cfg, &prior, n_avg, progress);
    // Self-training (`--set self_w=W`): unlabelled English chat, labelled by the model where it is sure,
    // then a second fit with those rows added.
    let self_w = args.knob("self_w", 0.0);
    if self_w > 0.0 {
        let teacher = finish_model(
            spec,
            labels.clone(),
            &trained.weights,
            trained.bias.clone(),
            None,
            vec![],
        );
        let tau = args.knob("self_tau", 0.8);
        let n = args.knob("self_n", 20000.0) as usize;
        let texts = chitchat_messages(args)?;
        let step = (texts.len() / n.max(1)).max(1);
        let mut scratch = Scratch::default();
        let mut probs = Vec::new();
        let en_w = weights
            .iter()
            .zip(&rows)
            .filter(|(_, r)| r[1] == "en")
            .map(|(w, _)| *w)
            .sum::<f32>()
            / rows.iter().filter(|r| r[1] == "en").count().max(1) as f32;
        let mut added = [0usize; 3];
        let mut pseudo = Vec::new();
        for text in texts.iter().step_by(step) {
            if teacher.logits(text, &mut scratch, &mut probs) == 0 {
                continue;
            }
            softmax(&mut probs, None);
            let (y, p) = argmax(&probs);
            if p >= tau
                && let Some(ex) = Example::new(&spec, &mut tokens, text, y as u32, self_w * en_w)
            {
                added[y] += 1;
                pseudo.push(ex);
            }
        }
        // Each pseudo-class weighs the same in total, as the labelled classes do.
        let total: usize = added.iter().sum();
        for mut ex in pseudo {
            let k = added[ex.label as usize] as f32;
            ex.weight *= (total as f32 / (3.0 * k)).min(args.knob("self_cap", 5.0));
            fit.push(ex);
        }
        println!(
            "self-training: {} chat messages read, pseudo-labelled neg/neu/pos {added:?}",
            texts.len()
        );
        trained = train_averaged(&spec, 3, &fit, &cfg, &prior, n_avg, |_, _| {});
    }
    println!("trained in {:.1}s", t.elapsed().as_secs_f64());
    let bias = trained
        .bias
        .iter()
        .zip(offsets)
        .map(|(b, o)| b + o)
        .collect();
    let model = finish_model(
        spec,
        labels,
        &trained.weights,
        bias,
        Some((KNOWN_BITS, known)),
        vec![("min_known".into(), args.knob("min_known", 0.5))],
    );
    let m = SentimentModel::new(model.clone())?;
    let languages = fs::read(args.out.join("language.bin"))
        .ok()
        .and_then(|b| LanguageDetector::from_bytes(&b).ok());
    if languages.is_none() {
        println!("  (no language.bin in --out: texts with few known words count as unknown)");
    }
    for set in ["dev_xlmt", "dev_en_clean", "dev_tweeteval_val"] {
        let path = args.prep.join("sentiment").join(format!("{set}.tsv"));
        if path.exists() {
            let rows = read_tsv(&path, 3)?;
            evaluate_sentiment(&m, languages.as_ref(), set, &rows);
            if !lang_offsets.is_empty() {
                let mut by: BTreeMap<&str, Vec<(usize, usize)>> = BTreeMap::new();
                let mut scratch = Scratch::default();
                let mut logits = Vec::new();
                for r in &rows {
                    m.model().logits(&r[2], &mut scratch, &mut logits);
                    let o = lang_offsets.get(&r[1]).copied().unwrap_or_default();
                    let v = [logits[0] + o[0], logits[1], logits[2] + o[2]];
                    let p = if v[0] >= v[1] && v[0] >= v[2] {
                        0
                    } else if v[2] > v[1] {
                        2
                    } else {
                        1
                    };
                    let g = labels_idx(&r[0]);
                    by.entry(r[1].as_str()).or_default().push((g, p));
                }
                let line: Vec<String> = by
                    .iter()
                    .map(|(l, p)| format!("{l} {:.3}", macro_f1(p, 3)))
                    .collect();
                let mean = by.values().map(|p| macro_f1(p, 3)).sum::<f64>() / by.len() as f64;
                println!(
                    "  with per-language offsets (CV-tuned): {}  mean {mean:.3}",
                    line.join("  ")
                );
            }
        }
    }
    write_model(args, "sentiment", &model)
}

/// The English training texts that come from the VADER tweets and from TweetEval emotion, by text (as
/// the preparation script writes it: whitespace collapsed).
fn english_sources(args: &Args) -> Result<BTreeMap<String, &'static str>> {
    let mut out = BTreeMap::new();
    let Some(data) = &args.data else {
        return Ok(out);
    };
    let clean = |t: &str| t.split_whitespace().collect::<Vec<_>>().join(" ");
    let vader = data.join("sentiment/vader_icwsm2014_groundtruth/tweets_GroundTruth.txt");
    if let Ok(text) = fs::read_to_string(&vader) {
        for line in text.lines() {
            if let Some(t) = line.splitn(3, '\t').nth(2) {
                out.insert(clean(t), "vader");
            }
        }
    }
    for split in ["train", "val"] {
        let path = data.join(format!("sentiment/tweeteval_emotion/{split}_text.txt"));
        if let Ok(text) = fs::read_to_string(&path) {
            for line in text.lines() {
                out.insert(clean(line), "emotion");
            }
        }
    }
    Ok(out)
}

/// The mean of `n` models trained with different shuffles: still one linear model, with less variance
/// than any of them.
fn train_averaged(
    spec: &FeatureSpec,
    n_labels: usize,
    examples: &[Example],
    cfg: &TrainConfig,
    prior: &[f32],
    n: usize,
    mut progress: impl FnMut(usize, f64),
) -> Trained {
    let n = n.max(1);
    let mut sum: Option<Trained> = None;
    for k in 0..n {
        let cfg = TrainConfig {
            seed: cfg.seed + 1000 * k as u64,
            ..*cfg
        };
        let t = train(
            1 << spec.bits,
            n_labels,
            examples,
            &cfg,
            Some(prior.to_vec()),
            &mut progress,
        );
        match &mut sum {
            None => sum = Some(t),
            Some(s) => {
                s.weights
                    .iter_mut()
                    .zip(&t.weights)
                    .for_each(|(a, b)| *a += b);
                s.bias.iter_mut().zip(&t.bias).for_each(|(a, b)| *a += b);
            }
        }
    }
    let mut s = sum.unwrap_or(Trained {
        weights: prior.to_vec(),
        bias: vec![0.0; n_labels],
    });
    let f = 1.0 / n as f32;
    s.weights.iter_mut().for_each(|w| *w *= f);
    s.bias.iter_mut().for_each(|b| *b *= f);
    s
}

fn labels_idx(label: &str) -> usize {
    match label {
        "neg" => 0,
        "neu" => 1,
        _ => 2,
    }
}

/// The messages of the BYU chit-chat dialogues (unlabelled English chat), read from the JSON by hand:
/// every `"text": "..."` value, with JSON escapes decoded.
fn chitchat_messages(args: &Args) -> Result<Vec<String>> {
    let Some(data) = &args.data else {
        return Ok(vec![]);
    };
    let json = fs::read_to_string(data.join("dialogues/chitchat_byu/dataset.json"))?;
    let mut out = Vec::new();
    let key = "\"text\": \"";
    let mut rest = json.as_str();
    while let Some(i) = rest.find(key) {
        rest = &rest[i + key.len()..];
        let mut text = String::new();
        let mut chars = rest.char_indices();
        let mut end = rest.len();
        while let Some((j, c)) = chars.next() {
            match c {
                '"' => {
                    end = j + 1;
                    break;
                }
                '\\' => match chars.next().map(|(_, e)| e) {
                    Some('n' | 't' | 'r') => text.push(' '),
                    Some('u') => {
                        let hex: String = chars.by_ref().take(4).map(|(_, h)| h).collect();
                        if let Some(ch) =
                            u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32)
                        {
                            text.push(ch);
                        }
                    }
                    Some(other) => text.push(other),
                    None => {}
                },
                _ => text.push(c),
            }
        }
        rest = &rest[end..];
        if !text.trim().is_empty() {
            out.push(text);
        }
    }
    Ok(out)
}

fn mark_known(known: &mut [u64], w: &str) {
    let b = known_word_bucket(w, KNOWN_BITS) as usize;
    known[b / 64] |= 1 << (b % 64);
}

/// Example weights: each language weighs the same, and within a language each class does; the first
/// `n_main` rows are the tweets, the rest weigh `other_w`.
fn sentiment_weights(args: &Args, rows: &[Vec<String>], n_main: usize, other_w: f32) -> Vec<f32> {
    let mut counts: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for r in &rows[..n_main] {
        *counts.entry((r[1].as_str(), r[0].as_str())).or_default() += 1;
    }
    let groups = counts.len() as f32;
    let cap = args.knob("wcap", 5.0);
    let mut en_mean = (0.0f32, 0usize);
    let mut out: Vec<f32> = rows[..n_main]
        .iter()
        .map(|r| {
            let n = counts[&(r[1].as_str(), r[0].as_str())] as f32;
            // English tweets are the main target and the most varied: they weigh a half more.
            let default = if r[1] == "en" { 1.5 } else { 1.0 };
            let w = (n_main as f32 / (groups * n)).min(cap)
                * args.knob(&format!("w_{}", r[1]), default);
            if r[1] == "en" {
                en_mean.0 += w;
                en_mean.1 += 1;
            }
            w
        })
        .collect();
    let en_w = en_mean.0 / en_mean.1.max(1) as f32;
    out.extend(rows[n_main..].iter().map(|_| other_w * en_w));
    out
}

/// Lexicons become the starting weights of their words: a word the labelled tweets never show still
/// carries its polarity, and words they do show start from it. Returns the prior and the lexicon size.
fn sentiment_prior(
    args: &Args,
    spec: &FeatureSpec,
    known: &mut [u64],
) -> Result<(Vec<f32>, usize)> {
    let mut tokens = Tokens::new();
    let mut prior = vec![0.0f32; (1usize << spec.bits) * 3];
    let mut lexicon_words = 0;
    let mut add_prior = |bucket: u32, valence: f32| {
        let row = &mut prior[bucket as usize * 3..][..3];
        row[0] -= valence;
        row[2] += valence;
    };
    let alpha = args.alpha.unwrap_or(0.6);
    let neg_f = args.knob("neg_prior", 0.5);
    if let Some(data) = &args.data {
        let vader = data.join("packages/vadersentiment_3.3.2");
        let text = fs::read_to_string(vader.join("vader_lexicon.txt"))?;
        let mut valence: BTreeMap<String, f32> = BTreeMap::new();
        for line in text.lines() {
            let mut cols = line.split('\t');
            let (Some(word), Some(v)) = (cols.next(), cols.next()) else {
                continue;
            };
            let Ok(v) = v.trim().parse::<f32>() else {
                continue;
            };
            valence.insert(word.to_owned(), v);
            tokens.read(word);
            if tokens.len() == 1 {
                let w = tokens.word(0).to_owned();
                mark_known(known, &w);
                add_prior(word_bucket(&w, false, spec.bits), alpha * v / 2.0);
                add_prior(word_bucket(&w, true, spec.bits), -alpha * neg_f * v / 2.0);
                lexicon_words += 1;
            }
        }
        // An emoji's polarity: the mean valence of the words of its description.
        let emoji = fs::read_to_string(vader.join("emoji_utf8_lexicon.txt"))?;
        for line in emoji.lines() {
            let Some((e, desc)) = line.split_once('\t') else {
                continue;
            };
            let mut c = e.chars();
            let (Some(ch), None) = (c.next(), c.next()) else {
                continue;
            };
            let vs: Vec<f32> = desc
                .split_whitespace()
                .filter_map(|w| valence.get(w).copied())
                .collect();
            if !vs.is_empty() {
                let v = vs.iter().sum::<f32>() / vs.len() as f32;
                add_prior(
                    symbol_bucket(ch, spec.bits),
                    args.knob("emoji_alpha", alpha) * v / 2.0,
                );
            }
        }
    }
    if let Some(dir) = &args.handwritten {
        let hand = args.knob("hand_alpha", alpha);
        for entry in fs::read_dir(dir)? {
            let path = entry?.path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            if !name.starts_with("sentiment_lexicon_") {
                continue;
            }
            for r in read_tsv(&path, 2)? {
                let v: f32 = r[1]
                    .trim()
                    .parse()
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                tokens.read(&r[0]);
                for w in tokens.words().map(str::to_owned).collect::<Vec<_>>() {
                    mark_known(known, &w);
                    add_prior(word_bucket(&w, false, spec.bits), hand * v * 0.6);
                    add_prior(word_bucket(&w, true, spec.bits), -hand * neg_f * v * 0.6);
                }
                lexicon_words += 1;
            }
        }
    }
    Ok((prior, lexicon_words))
}

/// Scores as the SQL function does: with the language detector (the one written to `--out`, if any)
/// deciding about texts with few known words.
fn evaluate_sentiment(
    m: &SentimentModel,
    languages: Option<&LanguageDetector>,
    set: &str,
    rows: &[Vec<String>],
) {
    let mut by_lang: BTreeMap<&str, Vec<(usize, usize)>> = BTreeMap::new();
    let mut lang_scratch = Scratch::default();
    let mut scratch = Scratch::default();
    let mut probs = Vec::new();
    let mut unknown = 0;
    let t = Instant::now();
    for r in rows {
        let gold = match r[0].as_str() {
            "neg" => 0,
            "neu" => 1,
            _ => 2,
        };
        let detector = languages.map(|d| (d, &mut lang_scratch));
        let got = match m.score_with(&r[2], &mut scratch, &mut probs, detector) {
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
    let line: Vec<String> = by_lang
        .iter()
        .map(|(l, pairs)| format!("{l} {:.3}", macro_f1(pairs, 3)))
        .collect();
    let dist: Vec<String> = by_lang
        .iter()
        .map(|(l, pairs)| {
            let c = |k: usize| pairs.iter().filter(|p| p.1 == k).count();
            format!("{l} {}/{}/{}", c(0), c(1), c(2))
        })
        .collect();
    println!("  predicted neg/neu/pos: {}", dist.join("  "));
    let rate = rows.len() as f64 / t.elapsed().as_secs_f64();
    let mean = by_lang.values().map(|p| macro_f1(p, 3)).sum::<f64>() / by_lang.len() as f64;
    println!(
        "{set}: macro-F1 {}  mean {mean:.3}  (unknown → neutral: {unknown}; {rate:.0} rows/s)",
        line.join("  ")
    );
}

fn macro_f1(pairs: &[(usize, usize)], k: usize) -> f64 {
    let mut f = 0.0;
    for c in 0..k {
        let tp = pairs.iter().filter(|&&(g, p)| g == c && p == c).count() as f64;
        let fp = pairs.iter().filter(|&&(g, p)| g != c && p == c).count() as f64;
        let fn_ = pairs.iter().filter(|&&(g, p)| g == c && p != c).count() as f64;
        f += if tp == 0.0 {
            0.0
        } else {
            2.0 * tp / (2.0 * tp + fp + fn_)
        };
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
    let spec = args.spec(INTENT_SPEC);
    let dir = args.prep.join("intent");
    // The hand-written messages: non-English ones are few, so they can weigh more.
    let mut hand: BTreeMap<String, bool> = BTreeMap::new();
    if let Some(hw) = &args.handwritten {
        for lang in ["en", "es", "fr", "de", "pt", "it"] {
            let path = hw.join(format!("intent_{lang}.tsv"));
            if path.exists() {
                for r in read_tsv(&path, 2)? {
                    hand.insert(r[1].trim().to_owned(), lang != "en");
                }
            }
        }
    }
    let foreign_w = args.knob("foreign_w", 2.0);
    let hand_en_w = args.knob("hand_en_w", 1.0);
    let cw_pow = args.knob("cw_pow", 1.0);
    let (cw_min, cw_max) = (args.knob("cw_min", 0.2), args.knob("cw_max", 5.0));
    let fit = |file: &str, threshold: Option<f32>| -> Result<LinearModel> {
        let rows = read_tsv(&dir.join(file), 2)?;
        let labels: Vec<String> = rows
            .iter()
            .map(|r| r[0].clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for r in &rows {
            *counts.entry(r[0].as_str()).or_default() += 1;
        }
        let mut tokens = Tokens::new();
        let mut examples = Vec::new();
        // Small talk of this file's own `none` rows, to wrap some requests in (see `mix_none` below).
        let small_talk: Vec<&str> = rows
            .iter()
            .filter(|r| r[0] == "none" && r[1].split_whitespace().count() <= 12)
            .map(|r| r[1].as_str())
            .collect();
        let mix_none = args.knob("mix_none", 1.0);
        let mix_w = args.knob("mix_w", 1.0);
        for r in &rows {
            let Some(y) = labels.iter().position(|l| *l == r[0]) else {
                continue;
            };
            // Chat requests come with greetings, thanks and asides around them ("hi! hope you're well, I
            // need to change my card"): a share of the requests is also trained with one of the small-talk
            // rows before or after it, so that the small talk does not pull the request towards `none`.
            let draw = checksum(r[1].as_bytes());
            if r[0] != "none"
                && !small_talk.is_empty()
                && ((draw % 10_000) as f32) < mix_none * 10_000.0
            {
                let talk = small_talk[(draw >> 20) as usize % small_talk.len()];
                let text = if draw >> 60 & 1 == 0 {
                    format!("{talk} {}", r[1])
                } else {
                    format!("{} {talk}", r[1])
                };
                let balance =
                    rows.len() as f32 / (labels.len() as f32 * counts[r[0].as_str()] as f32);
                let w = balance.powf(cw_pow).clamp(cw_min, cw_max) * mix_w;
                examples.extend(Example::new(&spec, &mut tokens, &text, y as u32, w));
            }
            let balance = rows.len() as f32 / (labels.len() as f32 * counts[r[0].as_str()] as f32);
            let mut w = balance.powf(cw_pow).clamp(cw_min, cw_max);
            match hand.get(r[1].as_str()) {
                Some(true) => w *= foreign_w,
                Some(false) => w *= hand_en_w,
                None => {}
            }
            examples.extend(Example::new(&spec, &mut tokens, &r[1], y as u32, w));
            if hand.get(r[1].as_str()) == Some(&true) && args.knob("strip_aug", 0.0) != 0.0 {
                let plain = strip_accents(&r[1]);
                if plain != r[1] {
                    examples.extend(Example::new(&spec, &mut tokens, &plain, y as u32, w));
                }
            }
        }
        println!(
            "intent ({file}): {} rows → {} examples, {} labels",
            rows.len(),
            examples.len(),
            labels.len()
        );
        let cfg = TrainConfig {
            epochs: args.epochs.unwrap_or(15),
            learning_rate: args.lr.unwrap_or(0.3),
            adagrad: AdaGrad::PerWeight {
                l2: args.l2.unwrap_or(1e-5),
            },
            seed: 3,
        };
        let t = Instant::now();
        let trained = train(
            1 << spec.bits,
            labels.len(),
            &examples,
            &cfg,
            None,
            progress,
        );
        println!("trained in {:.1}s", t.elapsed().as_secs_f64());
        let params = vec![("threshold".into(), threshold.unwrap_or(0.5))];
        Ok(finish_model(
            spec,
            labels,
            &trained.weights,
            trained.bias,
            None,
            params,
        ))
    };
    // Held-out evaluation: fit on train, choose the threshold on dev, report on test.
    let model = IntentModel::new(fit("train.tsv", None)?)?;
    let dev = read_tsv(&dir.join("dev.tsv"), 2)?;
    let mut best = (0.0, 0.0f32);
    for step in 0..=16 {
        let tau = step as f32 * 0.05;
        let acc = intent_accuracy(&model, &dev, tau, false);
        // On a tie the higher threshold: the same dev accuracy, and messages unlike anything in training
        // are more often `none`.
        if acc >= best.0 {
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
    let mut confusions: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for r in rows {
        let got = m.classify_with(&r[1], tau, &mut scratch, &mut probs);
        let e = per.entry(r[0].as_str()).or_default();
        e.1 += 1;
        if m.labels()[got.label] == r[0] {
            e.0 += 1;
        } else {
            *confusions
                .entry((r[0].as_str(), m.labels()[got.label].as_str()))
                .or_default() += 1;
            if report && std::env::var_os("INTENT_DUMP").is_some() {
                println!(
                    "  MISS {} → {} ({:.2}): {}",
                    r[0],
                    m.labels()[got.label],
                    got.confidence,
                    r[1]
                );
            }
        }
    }
    let total: usize = per.values().map(|p| p.1).sum();
    let right: usize = per.values().map(|p| p.0).sum();
    let acc = right as f64 / total.max(1) as f64;
    if report {
        let line: Vec<String> = per
            .iter()
            .map(|(l, &(r, n))| format!("{l} {:.3}", r as f64 / n as f64))
            .collect();
        println!("accuracy {acc:.4} over {total}: {}", line.join("  "));
        let mut worst: Vec<_> = confusions.into_iter().collect();
        worst.sort_by_key(|b| std::cmp::Reverse(b.1));
        let top: Vec<String> = worst
            .iter()
            .take(10)
            .map(|((a, b), n)| format!("{a}→{b} {n}"))
            .collect();
        println!("  confusions: {}", top.join(", "));
    }
    acc
}

/// `text` with the accents of Latin letters removed ("é" → "e"), as people type on phones.
fn strip_accents(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            'á' | 'à' | 'â' | 'ä' | 'ã' | 'å' => 'a',
            'é' | 'è' | 'ê' | 'ë' => 'e',
            'í' | 'ì' | 'î' | 'ï' => 'i',
            'ó' | 'ò' | 'ô' | 'ö' | 'õ' => 'o',
            'ú' | 'ù' | 'û' | 'ü' => 'u',
            'ç' => 'c',
            'ñ' => 'n',
            'Á' | 'À' | 'Â' | 'Ä' | 'Ã' => 'A',
            'É' | 'È' | 'Ê' | 'Ë' => 'E',
            'Í' | 'Ó' | 'Ú' | 'Ü' | 'Ö' => 'I',
            'Ç' => 'C',
            'Ñ' => 'N',
            other => other,
        })
        .collect()
}
