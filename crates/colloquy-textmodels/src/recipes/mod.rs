//! The recipes that build the shipped models: read the TSV files that `scripts/models/prepare_data.py`
//! writes, train, print the evaluation on the development sets, and write the model file. The
//! `train-models` binary is their command line (`scripts/models/train.sh` runs it):
//!
//! ```text
//! cargo run --release -p colloquy-textmodels --bin train-models -- <language|sentiment|intent> \
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
//!
//! Each recipe is a `fit` over rows in memory (what the tests drive) and a `run` that reads the files,
//! evaluates and writes. Every choice is deterministic ([`splits`]): the same data gives the same bytes.

pub mod data;
pub mod eval;
pub mod intent;
pub mod language;
pub mod sentiment;
pub mod splits;

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::features::FeatureSpec;
use crate::model::{CacheId, LinearModel};
use crate::train::quantize;

/// The trainer's errors: messages for the person running it.
pub type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// The `train-models` command line: [`Settings::parse`], then [`run`]. Errors go to stderr, exit code 1.
pub fn main() -> ExitCode {
    match Settings::parse(std::env::args().skip(1)).and_then(|s| run(&s)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("train-models: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the recipe of `settings.task`.
pub fn run(settings: &Settings) -> Result<()> {
    match settings.task.as_str() {
        "language" => language::run(settings),
        "sentiment" => sentiment::run(settings),
        "intent" => intent::run(settings),
        other => Err(format!("unknown task {other}").into()),
    }
}

/// What a run reads, writes and overrides (the command line, see the module documentation).
#[derive(Clone, Debug)]
pub struct Settings {
    /// `language`, `sentiment` or `intent`.
    pub task: String,
    /// The prepared TSV files (`langid/`, `sentiment/`, `intent/`).
    pub prep: PathBuf,
    /// The public data folder, for the lexicons and raw files the preparation does not copy.
    pub data: Option<PathBuf>,
    /// `scripts/models/handwritten`.
    pub handwritten: Option<PathBuf>,
    /// Where `<task>.bin` is written (and, for sentiment, `language.bin` read from).
    pub out: PathBuf,
    pub fold: bool,
    pub bits: Option<u32>,
    pub epochs: Option<usize>,
    pub lr: Option<f32>,
    pub l2: Option<f32>,
    pub alpha: Option<f32>,
    /// `--set name=value` experiment overrides, read through [`Settings::knob`].
    pub knobs: BTreeMap<String, f32>,
}

impl Settings {
    /// Reads the command line after the program name.
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Self> {
        let mut it = args.into_iter();
        let task = it
            .next()
            .ok_or("usage: train-models <language|sentiment|intent> --prep DIR --out DIR ...")?;
        let mut a = Self {
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

    /// An experiment knob: the `--set` value of `name`, or `default`.
    pub fn knob(&self, name: &str, default: f32) -> f32 {
        self.knobs.get(name).copied().unwrap_or(default)
    }

    /// A feature spec with `--bits` and the `--set` overrides of its fields applied.
    pub fn spec(&self, base: FeatureSpec) -> FeatureSpec {
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

/// The model file's form of trained f32 weights: quantised, with the known-words set and parameters.
pub fn finish_model(
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
        lexicon: None,
        cache_id: CacheId::default(),
    }
}

/// Writes `<out>/<name>.bin`.
fn write_model(settings: &Settings, name: &str, model: &LinearModel) -> Result<()> {
    fs::create_dir_all(&settings.out)?;
    let path = settings.out.join(format!("{name}.bin"));
    let bytes = model.to_bytes();
    fs::write(&path, &bytes)?;
    println!(
        "wrote {} ({:.1} MB)",
        path.display(),
        bytes.len() as f64 / 1e6
    );
    Ok(())
}

/// The training loss, epoch by epoch.
fn progress(epoch: usize, loss: f64) {
    println!("  epoch {epoch}: loss {loss:.4}");
}

/// The distinct values of column 0 (the labels), sorted.
fn sorted_labels(rows: &[Vec<String>]) -> Vec<String> {
    rows.iter()
        .map(|r| r[0].clone())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    /// Rows from TSV lines written in a test.
    pub(crate) fn rows(lines: &[&str]) -> Vec<Vec<String>> {
        lines
            .iter()
            .map(|l| l.split('\t').map(str::to_owned).collect())
            .collect()
    }

    /// The settings of `train-models <task> <extra...>`, reading and writing nothing.
    pub(crate) fn settings(task: &str, extra: &[&str]) -> Settings {
        let mut list = vec![task];
        list.extend_from_slice(extra);
        Settings::parse(args(&list)).expect("valid settings")
    }

    /// A folder of its own under the system's temporary folder, removed when dropped.
    pub(crate) struct TempDir(pub PathBuf);

    impl TempDir {
        pub(crate) fn new(name: &str) -> Self {
            let dir = std::env::temp_dir()
                .join(format!("colloquy-recipes-{name}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).expect("temporary folder");
            Self(dir)
        }

        /// Writes `lines` (one row each) to `path` under the folder.
        pub(crate) fn write(&self, path: &str, lines: &[&str]) {
            let path = self.0.join(path);
            fs::create_dir_all(path.parent().expect("a file in a folder")).expect("folder");
            fs::write(path, lines.join("\n") + "\n").expect("written");
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn command_line() {
        let s = Settings::parse(args(&[
            "intent",
            "--prep",
            "p",
            "--bits",
            "12",
            "--fold",
            "--set",
            "mix_none=0",
            "--set",
            "words=0",
        ]))
        .expect("valid");
        assert_eq!(
            (s.task.as_str(), s.bits, s.fold),
            ("intent", Some(12), true)
        );
        assert_eq!(s.prep, PathBuf::from("p"));
        assert_eq!(s.knob("mix_none", 1.0), 0.0);
        assert_eq!(s.knob("mix_w", 1.0), 1.0);
        let spec = s.spec(intent::SPEC);
        assert_eq!((spec.bits, spec.words, spec.char_max), (12, false, 5));
        for bad in [
            &["intent", "--bits"][..],
            &["intent", "--colour", "red"],
            &["intent", "--set", "x"],
            &[],
        ] {
            assert!(Settings::parse(args(bad)).is_err(), "{bad:?}");
        }
        let unknown = Settings::parse(args(&["weather"])).expect("parsed");
        assert!(run(&unknown).is_err());
    }
}
