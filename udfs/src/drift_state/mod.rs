//! drift()'s state: one bounded, mergeable summary per side (reference and current) and the verdict
//! computed from the two. Each kind mirrors the test Evidently applies by default, so that the two agree:
//! numbers — Kolmogorov–Smirnov up to 1,000 rows a side, else the Wasserstein distance in reference standard
//! deviations (drift at 0.1); categories — chi-square up to 1,000 rows a side, else the Jensen–Shannon
//! distance (drift at 0.1); text — a domain classifier's ROC AUC (drift above 0.55 past 1,000 rows a
//! side, else above the 99th percentile of the AUC of a classifier that cannot tell the sides apart).

mod categorical;
mod codec;
mod domain;
mod embedding;
mod numeric;
mod stats;
mod text;

use colloquy_textmodels::Tokens;
use datafusion::common::{Result, exec_err};

pub use categorical::CategoryCounts;
pub use codec::{Reader, Writer};
pub use embedding::EmbeddingSample;
pub use numeric::NumericSketch;
pub use text::TextSample;

/// Above this many rows a side, fixed effect-size thresholds replace significance tests (a test on
/// millions of rows flags differences too small to matter).
const LARGE_SIDE: u64 = 1_000;
const ALPHA: f64 = 0.05;
/// The text test's one-sided level: its null distribution is exact, so 5% would flag 5% of no-drift pairs
/// on average and more in an unlucky run; 1% keeps false alarms well under the 5% we promise.
const TEXT_Z: f64 = 2.326;
const TOP_TERMS: usize = 10;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Numeric,
    Categorical,
    Text,
    Embedding,
}

impl Kind {
    pub fn tag(self) -> u8 {
        match self {
            Self::Numeric => 0,
            Self::Categorical => 1,
            Self::Text => 2,
            Self::Embedding => 3,
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "numeric" => Some(Self::Numeric),
            "categorical" => Some(Self::Categorical),
            "text" => Some(Self::Text),
            "embedding" => Some(Self::Embedding),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub enum Side {
    Numeric(NumericSketch),
    Categorical(CategoryCounts),
    Text(TextSample),
    Embedding(EmbeddingSample),
}

impl Side {
    pub fn new(kind: Kind) -> Self {
        match kind {
            Kind::Numeric => Self::Numeric(NumericSketch::default()),
            Kind::Categorical => Self::Categorical(CategoryCounts::default()),
            Kind::Text => Self::Text(TextSample::default()),
            Kind::Embedding => Self::Embedding(EmbeddingSample::default()),
        }
    }

    pub fn add_str(&mut self, v: &str, tokens: &mut Tokens) {
        match self {
            Self::Categorical(c) => c.add(v, 1),
            Self::Text(t) => t.add(v, tokens),
            // A number column never reaches here: the kind follows the input type.
            Self::Numeric(_) | Self::Embedding(_) => {}
        }
    }

    pub fn add_vector(&mut self, v: &[f32]) -> Result<()> {
        match self {
            Self::Embedding(e) => e.add(v),
            _ => Ok(()),
        }
    }

    pub fn add_f64(&mut self, v: f64) {
        if let Self::Numeric(n) = self {
            n.add(v);
        }
    }

    pub fn rows(&self) -> u64 {
        match self {
            Self::Numeric(n) => n.count,
            Self::Categorical(c) => c.count,
            Self::Text(t) => t.count,
            Self::Embedding(e) => e.count,
        }
    }

    pub fn bytes(&self) -> usize {
        match self {
            Self::Numeric(n) => n.bytes(),
            Self::Categorical(c) => c.bytes(),
            Self::Text(t) => t.bytes(),
            Self::Embedding(e) => e.bytes(),
        }
    }

    pub fn merge(&mut self, other: &Self) -> Result<()> {
        match (self, other) {
            (Self::Numeric(a), Self::Numeric(b)) => a.merge(b),
            (Self::Categorical(a), Self::Categorical(b)) => a.merge(b),
            (Self::Text(a), Self::Text(b)) => a.merge(b),
            (Self::Embedding(a), Self::Embedding(b)) => a.merge(b)?,
            _ => return exec_err!("drift(): partial states of different kinds cannot be merged"),
        }
        Ok(())
    }

    pub fn write(&self, w: &mut Writer) {
        match self {
            Self::Numeric(n) => n.write(w),
            Self::Categorical(c) => c.write(w),
            Self::Text(t) => t.write(w),
            Self::Embedding(e) => e.write(w),
        }
    }

    pub fn read(kind: Kind, r: &mut Reader<'_>) -> Result<Self> {
        Ok(match kind {
            Kind::Numeric => Self::Numeric(NumericSketch::read(r)?),
            Kind::Categorical => Self::Categorical(CategoryCounts::read(r)?),
            Kind::Text => Self::Text(TextSample::read(r)?),
            Kind::Embedding => Self::Embedding(EmbeddingSample::read(r)?),
        })
    }
}

/// What drift() returns.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub score: Option<f64>,
    pub threshold: Option<f64>,
    pub p_value: Option<f64>,
    pub drifted: bool,
    pub method: &'static str,
    pub reference_rows: u64,
    pub current_rows: u64,
    pub top_terms: Vec<String>,
}

pub fn verdict(reference: &Side, current: &Side) -> Verdict {
    let (nr, nc) = (reference.rows(), current.rows());
    let mut v = Verdict {
        score: None,
        threshold: None,
        p_value: None,
        drifted: false,
        method: "",
        reference_rows: nr,
        current_rows: nc,
        top_terms: vec![],
    };
    let large = nr.min(nc) > LARGE_SIDE;
    match (reference, current) {
        (Side::Numeric(a), Side::Numeric(b)) => {
            if nr == 0 || nc == 0 {
                v.method = "ks";
                return v;
            }
            let (d, w) = numeric::ks_and_wasserstein(a, b);
            let p = stats::ks_p_value(d, nr as f64, nc as f64);
            v.p_value = Some(p);
            if large {
                let norm = w / a.std().max(0.001);
                v.method = "wasserstein";
                v.score = Some(norm);
                v.threshold = Some(0.1);
                v.drifted = norm >= 0.1;
            } else {
                v.method = "ks";
                v.score = Some(d);
                v.threshold = Some(ALPHA);
                v.drifted = p < ALPHA;
            }
        }
        (Side::Categorical(a), Side::Categorical(b)) => {
            if nr == 0 || nc == 0 {
                v.method = "chi_square";
                return v;
            }
            let (chi2, df, js) = categorical::chi2_and_js(a, b);
            let p = stats::chi2_sf(chi2, df);
            v.p_value = Some(p);
            v.top_terms = moved_categories(a, b);
            if large {
                v.method = "jensen_shannon";
                v.score = Some(js);
                v.threshold = Some(0.1);
                v.drifted = js >= 0.1;
            } else {
                v.method = "chi_square";
                v.score = Some(chi2);
                v.threshold = Some(ALPHA);
                v.drifted = p < ALPHA;
            }
        }
        (Side::Text(a), Side::Text(b)) => {
            v.method = "domain_classifier";
            v.top_terms = text::moved_terms(a, b, TOP_TERMS);
            domain_verdict(&mut v, text::domain_classifier(a, b), large);
        }
        (Side::Embedding(a), Side::Embedding(b)) => {
            v.method = "domain_classifier";
            domain_verdict(&mut v, embedding::domain_classifier(a, b), large);
        }
        _ => {}
    }
    v
}

/// The domain-classifier verdict: drift when the AUC is above 0.55 past 1,000 rows a side, else above
/// the 1% level of the AUC of a classifier that cannot tell the sides apart.
fn domain_verdict(v: &mut Verdict, test: Option<domain::DomainTest>, large: bool) {
    let Some(t) = test else {
        return;
    };
    let (n1, n2) = (t.held_out.0 as f64, t.held_out.1 as f64);
    // The AUC of a classifier that cannot tell the sides apart is the Mann–Whitney null.
    let sigma = ((n1 + n2 + 1.0) / (12.0 * n1 * n2)).sqrt();
    let p = stats::normal_sf((t.auc - 0.5) / sigma);
    let threshold = if large { 0.55 } else { 0.5 + TEXT_Z * sigma };
    v.score = Some(t.auc);
    v.p_value = Some(p);
    v.threshold = Some(threshold);
    v.drifted = t.auc > threshold;
}

/// Categories whose share changed most, as `+value` / `-value`.
fn moved_categories(a: &CategoryCounts, b: &CategoryCounts) -> Vec<String> {
    let (na, nb) = (a.count.max(1) as f64, b.count.max(1) as f64);
    let mut keys: Vec<&String> = a.counts.keys().chain(b.counts.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut moved: Vec<(f64, &String)> = keys
        .into_iter()
        .map(|k| {
            let pa = a.counts.get(k).copied().unwrap_or(0) as f64 / na;
            let pb = b.counts.get(k).copied().unwrap_or(0) as f64 / nb;
            (pb - pa, k)
        })
        .filter(|(d, _)| *d != 0.0)
        .collect();
    moved.sort_by(|x, y| y.0.abs().total_cmp(&x.0.abs()).then(x.1.cmp(y.1)));
    moved
        .into_iter()
        .take(TOP_TERMS)
        .map(|(d, k)| format!("{}{k}", if d > 0.0 { '+' } else { '-' }))
        .collect()
}
