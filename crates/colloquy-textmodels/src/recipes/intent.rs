//! The intent model: the customer-service taxonomy plus `none`, from the prepared intent rows
//! (`prep/intent/*.tsv`, `label<TAB>text`), class-balanced, with the hand-written non-English rows
//! weighing more and requests also trained wrapped in small talk. The `none` threshold is chosen on the
//! development split; the test split is only reported.

use std::collections::BTreeMap;
use std::time::Instant;

use super::data::read_tsv;
use super::eval::intent_accuracy;
use super::splits::small_talk_mix;
use super::{Result, Settings, finish_model, progress, sorted_labels, write_model};
use crate::IntentModel;
use crate::features::FeatureSpec;
use crate::model::LinearModel;
use crate::tokens::Tokens;
use crate::train::{AdaGrad, Example, TrainConfig, train};

/// The features: words, word pairs and character 3–5-grams.
pub const SPEC: FeatureSpec = FeatureSpec {
    bits: 18,
    char_min: 3,
    char_max: 5,
    words: true,
    bigrams: true,
    negation: false,
    signals: false,
};

/// The hand-written messages of `--handwritten` (`intent_<lang>.tsv`), by trimmed text, to whether they
/// are not English: non-English ones are few, so they can weigh more.
pub fn handwritten(s: &Settings) -> Result<BTreeMap<String, bool>> {
    let mut hand: BTreeMap<String, bool> = BTreeMap::new();
    if let Some(hw) = &s.handwritten {
        for lang in ["en", "es", "fr", "de", "pt", "it"] {
            let path = hw.join(format!("intent_{lang}.tsv"));
            if path.exists() {
                for r in read_tsv(&path, 2)? {
                    hand.insert(r[1].trim().to_owned(), lang != "en");
                }
            }
        }
    }
    Ok(hand)
}

/// Trains the intent model on `rows` (`label<TAB>text`, `name` for the log), `hand` from
/// [`handwritten`]; `threshold` is stored as the model's `none` threshold (0.5 when `None`).
pub fn fit(
    s: &Settings,
    name: &str,
    rows: &[Vec<String>],
    hand: &BTreeMap<String, bool>,
    threshold: Option<f32>,
) -> LinearModel {
    let spec = s.spec(SPEC);
    let foreign_w = s.knob("foreign_w", 2.0);
    let hand_en_w = s.knob("hand_en_w", 1.0);
    let cw_pow = s.knob("cw_pow", 1.0);
    let (cw_min, cw_max) = (s.knob("cw_min", 0.2), s.knob("cw_max", 5.0));
    let labels = sorted_labels(rows);
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for r in rows {
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
    let mix_none = s.knob("mix_none", 1.0);
    let mix_w = s.knob("mix_w", 1.0);
    for r in rows {
        let Some(y) = labels.iter().position(|l| *l == r[0]) else {
            continue;
        };
        // Chat requests come with greetings, thanks and asides around them ("hi! hope you're well, I
        // need to change my card"): a share of the requests is also trained with one of the small-talk
        // rows before or after it, so that the small talk does not pull the request towards `none`.
        if r[0] != "none"
            && let Some((talk, before)) = small_talk_mix(&r[1], mix_none, small_talk.len())
        {
            let talk = small_talk[talk];
            let text = if before {
                format!("{talk} {}", r[1])
            } else {
                format!("{} {talk}", r[1])
            };
            let balance = rows.len() as f32 / (labels.len() as f32 * counts[r[0].as_str()] as f32);
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
        if hand.get(r[1].as_str()) == Some(&true) && s.knob("strip_aug", 0.0) != 0.0 {
            let plain = strip_accents(&r[1]);
            if plain != r[1] {
                examples.extend(Example::new(&spec, &mut tokens, &plain, y as u32, w));
            }
        }
    }
    println!(
        "intent ({name}): {} rows → {} examples, {} labels",
        rows.len(),
        examples.len(),
        labels.len()
    );
    let cfg = TrainConfig {
        epochs: s.epochs.unwrap_or(15),
        learning_rate: s.lr.unwrap_or(0.3),
        adagrad: AdaGrad::PerWeight {
            l2: s.l2.unwrap_or(1e-5),
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
    finish_model(spec, labels, &trained.weights, trained.bias, None, params)
}

/// Fits on `intent/train.tsv`, chooses the threshold on `dev.tsv`, reports on `test.tsv` and the
/// hand-written held-out thirds, then (not with `--fold`) fits `full_train.tsv` and writes `intent.bin`.
pub fn run(s: &Settings) -> Result<()> {
    let dir = s.prep.join("intent");
    let hand = handwritten(s)?;
    // Held-out evaluation: fit on train, choose the threshold on dev, report on test.
    let model = IntentModel::new(fit(
        s,
        "train.tsv",
        &read_tsv(&dir.join("train.tsv"), 2)?,
        &hand,
        None,
    ))?;
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
    if !s.fold {
        let rows = read_tsv(&dir.join("full_train.tsv"), 2)?;
        let shipped = fit(s, "full_train.tsv", &rows, &hand, Some(tau));
        write_model(s, "intent", &shipped)?;
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Scratch;
    use crate::recipes::tests::{TempDir, rows, settings};

    const ROWS: &[&str] = &[
        "track_order\twhere is my order",
        "track_order\tmy parcel has not arrived yet",
        "track_order\ttracking says nothing about my package",
        "refund\tI want my money back",
        "refund\tplease refund the double charge",
        "refund\twhen will I get the refund",
        "none\thello there",
        "none\thow are you today",
        "none\thaha nice one",
        "none\tgood morning everyone",
    ];

    #[test]
    fn classifies_its_training_rows() {
        let data = rows(ROWS);
        let s = settings("intent", &["--bits", "14"]);
        let model = fit(&s, "inline", &data, &BTreeMap::new(), Some(0.3));
        assert_eq!(model.labels, ["none", "refund", "track_order"]);
        let m = IntentModel::new(model).expect("an intent model");
        assert_eq!(m.threshold(), 0.3);
        let (mut scratch, mut probs) = (Scratch::default(), Vec::new());
        for r in &data {
            let got = m.classify(&r[1], &mut scratch, &mut probs);
            assert_eq!(m.labels()[got.label], r[0], "{}", r[1]);
        }
    }

    #[test]
    fn run_writes_a_model_from_the_prepared_files() {
        let dir = TempDir::new("intent");
        for file in ["train", "full_train"] {
            dir.write(&format!("prep/intent/{file}.tsv"), ROWS);
        }
        dir.write(
            "prep/intent/dev.tsv",
            &["refund\tgive me a refund", "none\thello"],
        );
        dir.write("prep/intent/test.tsv", &["track_order\twhere is my parcel"]);
        dir.write("hand/intent_es.tsv", &["refund\tquiero mi dinero"]);
        let prep = dir.0.join("prep");
        let out = dir.0.join("out");
        let hand = dir.0.join("hand");
        let s = settings(
            "intent",
            &[
                "--prep",
                prep.to_str().expect("UTF-8 path"),
                "--out",
                out.to_str().expect("UTF-8 path"),
                "--handwritten",
                hand.to_str().expect("UTF-8 path"),
                "--bits",
                "12",
                "--epochs",
                "5",
            ],
        );
        assert_eq!(
            handwritten(&s).expect("read"),
            BTreeMap::from([("quiero mi dinero".to_string(), true)])
        );
        super::super::run(&s).expect("trained");
        let bytes = std::fs::read(out.join("intent.bin")).expect("written");
        let m = IntentModel::from_bytes(&bytes).expect("a model file");
        assert_eq!(m.labels(), ["none", "refund", "track_order"]);
        // The threshold chosen on dev is one of the steps tried.
        assert!((0.0..=0.8).contains(&m.threshold()), "{}", m.threshold());
        // With --fold nothing is written.
        std::fs::remove_file(out.join("intent.bin")).expect("removed");
        let fold = Settings {
            fold: true,
            ..s.clone()
        };
        super::super::run(&fold).expect("trained");
        assert!(!out.join("intent.bin").exists());
    }
}
