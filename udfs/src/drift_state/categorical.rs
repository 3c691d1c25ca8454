//! Categories: exact counts per value, up to `MAX_CATEGORIES` distinct values; past that, values are folded
//! into `FOLDED_BUCKETS` hash buckets so the state stays bounded (only then does partitioning matter).

use std::collections::BTreeMap;

use colloquy_textmodels::hash::checksum;
use datafusion::common::Result;

use super::codec::{Reader, Writer};

pub const MAX_CATEGORIES: usize = 4_096;
const FOLDED_BUCKETS: u64 = 1_024;

#[derive(Default, Debug, Clone)]
pub struct CategoryCounts {
    pub count: u64,
    pub counts: BTreeMap<String, u64>,
    folded: bool,
}

fn folded_name(value: &str) -> String {
    format!("#bucket{}", checksum(value.as_bytes()) % FOLDED_BUCKETS)
}

impl CategoryCounts {
    pub fn add(&mut self, value: &str, n: u64) {
        self.count += n;
        if self.folded {
            *self.counts.entry(folded_name(value)).or_default() += n;
            return;
        }
        match self.counts.get_mut(value) {
            Some(c) => *c += n,
            None => {
                self.counts.insert(value.to_owned(), n);
                if self.counts.len() > MAX_CATEGORIES {
                    self.fold();
                }
            }
        }
    }

    fn fold(&mut self) {
        let old = std::mem::take(&mut self.counts);
        self.folded = true;
        for (k, c) in old {
            let name = if k.starts_with("#bucket") {
                k
            } else {
                folded_name(&k)
            };
            *self.counts.entry(name).or_default() += c;
        }
    }

    pub fn merge(&mut self, other: &Self) {
        if other.folded && !self.folded {
            self.fold();
        }
        for (k, &c) in &other.counts {
            if other.folded {
                // Both are folded: the keys are bucket names already.
                self.count += c;
                *self.counts.entry(k.clone()).or_default() += c;
            } else {
                // `add` folds the raw value if this side is (or becomes) folded.
                self.add(k, c);
            }
        }
    }

    /// Whether some categories were folded together.
    #[cfg(test)]
    pub fn folded(&self) -> bool {
        self.folded
    }

    pub fn bytes(&self) -> usize {
        32 + self.counts.keys().map(|k| k.len() + 48).sum::<usize>()
    }

    pub fn write(&self, w: &mut Writer) {
        w.u64(self.count);
        w.u8(u8::from(self.folded));
        w.u32(self.counts.len() as u32);
        for (k, &c) in &self.counts {
            w.str(k);
            w.u64(c);
        }
    }

    pub fn read(r: &mut Reader<'_>) -> Result<Self> {
        let count = r.u64()?;
        let folded = r.u8()? != 0;
        let n = r.u32()?;
        let mut counts = BTreeMap::new();
        for _ in 0..n {
            let k = r.str()?;
            counts.insert(k, r.u64()?);
        }
        Ok(Self {
            count,
            counts,
            folded,
        })
    }
}

/// Pearson's chi-square test of homogeneity on the 2 × k table, and the Jensen–Shannon distance (natural
/// log) between the two distributions. Returns (chi2, degrees of freedom, js).
pub fn chi2_and_js(a: &CategoryCounts, b: &CategoryCounts) -> (f64, f64, f64) {
    let (na, nb) = (a.count as f64, b.count as f64);
    let n = na + nb;
    let mut keys: Vec<&String> = a.counts.keys().chain(b.counts.keys()).collect();
    keys.sort();
    keys.dedup();
    let (mut chi2, mut js) = (0.0, 0.0);
    for k in &keys {
        let ca = a.counts.get(*k).copied().unwrap_or(0) as f64;
        let cb = b.counts.get(*k).copied().unwrap_or(0) as f64;
        let total = ca + cb;
        if n > 0.0 && total > 0.0 {
            let ea = total * na / n;
            let eb = total * nb / n;
            if ea > 0.0 {
                chi2 += (ca - ea).powi(2) / ea;
            }
            if eb > 0.0 {
                chi2 += (cb - eb).powi(2) / eb;
            }
        }
        let p = if na > 0.0 { ca / na } else { 0.0 };
        let q = if nb > 0.0 { cb / nb } else { 0.0 };
        let m = (p + q) / 2.0;
        if p > 0.0 {
            js += 0.5 * p * (p / m).ln();
        }
        if q > 0.0 {
            js += 0.5 * q * (q / m).ln();
        }
    }
    let df = (keys.len().max(2) - 1) as f64;
    (chi2, df, js.max(0.0).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_bounds_the_state() {
        let mut c = CategoryCounts::default();
        for i in 0..10_000 {
            c.add(&format!("v{i}"), 1);
        }
        assert!(c.folded() && c.counts.len() <= FOLDED_BUCKETS as usize);
        assert_eq!(c.count, 10_000);
        assert_eq!(c.counts.values().sum::<u64>(), 10_000);
    }

    #[test]
    fn merge_and_tests() {
        let mut a = CategoryCounts::default();
        let mut b = CategoryCounts::default();
        a.add("x", 50);
        a.add("y", 50);
        b.add("x", 90);
        b.add("y", 10);
        let (chi2, df, js) = chi2_and_js(&a, &b);
        assert_eq!(df, 1.0);
        assert!(chi2 > 30.0 && js > 0.2, "{chi2} {js}");
        let mut m = a.clone();
        m.merge(&b);
        assert_eq!(m.counts["x"], 140);
        assert_eq!(m.count, 200);
    }
}
