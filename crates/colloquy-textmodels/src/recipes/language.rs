//! The language model: ISO 639-1 codes from character n-grams and whole words, trained on sentences and
//! on the short windows chat messages look like (`prep/langid/train_full.tsv`, `code<TAB>text`).

use std::collections::BTreeMap;
use std::time::Instant;

use super::data::read_tsv;
use super::eval::evaluate_language;
use super::splits::word_window;
use super::{Result, Settings, finish_model, progress, sorted_labels, write_model};
use crate::features::FeatureSpec;
use crate::model::{LinearModel, Scratch};
use crate::train::{AdaGrad, Example, TrainConfig, train};
use crate::{LanguageDetector, Tokens};

// 2^18 buckets (8.7 MB): +0.5 point on single words and word pairs over 2^17 (fold mode), same speed.
// Character 1–4-grams: as accurate as 1–5 with these settings (fold mode) and a fifth fewer features per
// word, so faster (xSID-length utterances: 150–240k/s against 130–190k/s on one shared core here);
// 1–3 loses 2 points on single words.
pub const SPEC: FeatureSpec = FeatureSpec {
    bits: 18,
    char_min: 1,
    char_max: 4,
    words: true,
    bigrams: false,
    negation: false,
    signals: false,
};

/// Trains the language model on `rows` (`code<TAB>text`).
pub fn fit(s: &Settings, rows: &[Vec<String>]) -> LinearModel {
    let spec = s.spec(SPEC);
    let labels = sorted_labels(rows);
    let index: BTreeMap<&str, u32> = labels
        .iter()
        .enumerate()
        .map(|(i, l)| (l.as_str(), i as u32))
        .collect();
    let mut tokens = Tokens::new();
    let mut examples = Vec::new();
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let windows = s.knob("windows", 4.0) as usize;
    let max_window = s.knob("max_window", 3.0) as u64;
    let single_w = s.knob("single_w", 1.0);
    // Each word of 4+ letters as an example of its own, at 0.3 weight: +1.5 points on single words and
    // +2 on word pairs (fold mode), −0.4 on xSID's mean per language.
    let word_ex = s.knob("word_ex", 0.3);
    let word_ex_min = s.knob("word_ex_min", 4.0) as usize;
    for r in rows {
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
                let (n, window) = word_window(&words, max_window, &mut rng);
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
        epochs: s.epochs.unwrap_or(4),
        learning_rate: s.lr.unwrap_or(0.3),
        adagrad: AdaGrad::PerWeight {
            l2: s.l2.unwrap_or(1e-7),
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
    finish_model(
        spec,
        labels,
        &trained.weights,
        trained.bias,
        None,
        vec![("min_letters".into(), 2.0)],
    )
}

/// Trains on `langid/train_full.tsv` (`train_fold.tsv` with `--fold`), evaluates on the development sets
/// present, and writes `language.bin` (not with `--fold`).
pub fn run(s: &Settings) -> Result<()> {
    let train_file = if s.fold {
        "train_fold.tsv"
    } else {
        "train_full.tsv"
    };
    let rows = read_tsv(&s.prep.join("langid").join(train_file), 2)?;
    let model = fit(s, &rows);
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
        let path = s.prep.join("langid").join(format!("{set}.tsv"));
        if !path.exists() {
            continue;
        }
        evaluate_language(&detector, set, &read_tsv(&path, 2)?, restrict)?;
    }
    // `--set speed_reps=N`: a steadier single-core speed figure (each set scored N times).
    let reps = s.knob("speed_reps", 0.0) as usize;
    for set in [
        "dev_lingua_words",
        "dev_lingua_wordpairs",
        "dev_xsid",
        "dev_xlmt",
    ] {
        let path = s.prep.join("langid").join(format!("{set}.tsv"));
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
    if !s.fold {
        write_model(s, "language", &model)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recipes::tests::{rows, settings};

    #[test]
    fn learns_its_training_sentences() {
        let data = rows(&[
            "en\tthe weather is lovely today and the sun is out",
            "en\twhere is my order it was due yesterday",
            "en\tthank you so much for the quick answer",
            "es\tel tiempo es muy bueno hoy y hace sol",
            "es\tdónde está mi pedido llegaba ayer",
            "es\tmuchas gracias por la respuesta rápida",
            "de\tdas Wetter ist heute schön und die Sonne scheint",
            "de\two ist meine Bestellung sie sollte gestern kommen",
            "de\tvielen Dank für die schnelle Antwort",
        ]);
        let s = settings("language", &["--bits", "14", "--epochs", "20"]);
        let model = fit(&s, &data);
        assert_eq!(model.labels, ["de", "en", "es"]);
        assert_eq!(model.spec.bits, 14);
        let detector = LanguageDetector::new(model);
        let (mut scratch, mut probs) = (Scratch::default(), Vec::new());
        for r in &data {
            let d = detector
                .detect(&r[1], None, &mut scratch, &mut probs)
                .expect("enough letters");
            assert_eq!(detector.codes()[d.language], r[0], "{}", r[1]);
        }
        // Deterministic: the same rows give the same bytes.
        assert_eq!(
            fit(&s, &data).to_bytes(),
            detector.model().to_bytes(),
            "two runs differ"
        );
    }
}
