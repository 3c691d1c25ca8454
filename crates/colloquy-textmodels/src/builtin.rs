//! The models that ship inside the binary, parsed once on first use.
//!
//! Each file in `models/` is produced by `scripts/models/train.sh` (see `models/README.md` for the data,
//! the licenses and the evaluation of each).

use std::sync::LazyLock;

use crate::{IntentModel, LanguageDetector, ModelError, SentimentModel};

static LANGUAGE: LazyLock<Result<LanguageDetector, ModelError>> =
    LazyLock::new(|| LanguageDetector::from_bytes(include_bytes!("../models/language.bin")));
static SENTIMENT: LazyLock<Result<SentimentModel, ModelError>> =
    LazyLock::new(|| SentimentModel::from_bytes(include_bytes!("../models/sentiment.bin")));
static INTENT: LazyLock<Result<IntentModel, ModelError>> =
    LazyLock::new(|| IntentModel::from_bytes(include_bytes!("../models/intent.bin")));

/// The built-in language detector.
pub fn language() -> Result<&'static LanguageDetector, ModelError> {
    LANGUAGE.as_ref().map_err(Clone::clone)
}

/// The built-in sentiment model.
pub fn sentiment() -> Result<&'static SentimentModel, ModelError> {
    SENTIMENT.as_ref().map_err(Clone::clone)
}

/// The built-in intent model.
pub fn intent() -> Result<&'static IntentModel, ModelError> {
    INTENT.as_ref().map_err(Clone::clone)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Scratch;

    #[test]
    fn shipped_models_load_and_answer() {
        let mut s = Scratch::default();
        let mut p = Vec::new();
        let lang = language().expect("language model");
        let d = lang
            .detect(
                "where is my order, it was due yesterday",
                None,
                &mut s,
                &mut p,
            )
            .expect("detected");
        assert_eq!(lang.codes()[d.language], "en");
        let d = lang.detect(
            "¿dónde está mi pedido? llevo una semana esperando",
            None,
            &mut s,
            &mut p,
        );
        assert_eq!(lang.codes()[d.expect("detected").language], "es");
        assert!(lang.detect("👍", None, &mut s, &mut p).is_none());

        let sent = sentiment().expect("sentiment model");
        let good = sent
            .score("thank you so much, this is great!", &mut s, &mut p)
            .expect("scored");
        let bad = sent
            .score("this is terrible, worst service ever", &mut s, &mut p)
            .expect("scored");
        assert!(good.score > 0.3 && bad.score < -0.3, "{good:?} {bad:?}");
        // Finnish is not a language the model knows: no score, with or without the detector's help.
        let fi = "Tilaukseni ei ole vieläkään saapunut perille";
        assert!(sent.score(fi, &mut s, &mut p).is_none());
        let mut ls = Scratch::default();
        assert!(
            sent.score_with(fi, &mut s, &mut p, Some((lang, &mut ls)))
                .is_none()
        );

        let intent = intent().expect("intent model");
        let i = intent.classify("where is my package? tracking says nothing", &mut s, &mut p);
        assert_eq!(intent.labels()[i.label], "track_order");
        let i = intent.classify("hello there!", &mut s, &mut p);
        assert_eq!(intent.labels()[i.label], "none");
    }

    #[test]
    fn language_of_answers_what_detect_answers() {
        let lang = language().expect("language model");
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../scripts/models/handwritten");
        let mut texts: Vec<String> = ["en", "es", "fr", "de", "pt", "it"]
            .iter()
            .flat_map(|l| {
                std::fs::read_to_string(dir.join(format!("intent_{l}.tsv")))
                    .expect("hand-written messages")
                    .lines()
                    .filter_map(|l| l.split_once('\t').map(|(_, t)| t.to_owned()))
                    .collect::<Vec<_>>()
            })
            .collect();
        assert!(texts.len() > 2000);
        // Short and mixed texts, where scores come closest.
        texts.extend(
            [
                "ok",
                "si",
                "no",
                "merci",
                "ciao ok",
                "ja",
                "hola hello",
                "👍",
                "a b",
            ]
            .map(String::from),
        );
        let masks = [
            None,
            lang.candidates("en,es").expect("codes"),
            lang.candidates("fr,it,pt").expect("codes"),
        ];
        let (mut s, mut p, mut q) = (Scratch::default(), Vec::new(), Vec::new());
        for text in &texts {
            for mask in &masks {
                let detected = lang
                    .detect(text, mask.as_deref(), &mut s, &mut p)
                    .map(|d| d.language);
                let fast = lang.language_of(text, mask.as_deref(), &mut s, &mut q);
                assert_eq!(fast, detected, "{text:?} {mask:?}");
            }
        }
    }
}
