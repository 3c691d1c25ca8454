//! Numbers: a log-bucketed histogram (relative accuracy 1%, like DDSketch), so two partial states merge by
//! adding counts and the result does not depend on how rows were partitioned.

use std::collections::BTreeMap;

use datafusion::common::Result;

use super::codec::{Reader, Writer};

const GAMMA: f64 = 1.02;
/// Magnitudes below this count as zero; above `MAX_KEY`'s they share the top bucket.
const MIN_ABS: f64 = 1e-9;
const MAX_KEY: i32 = 4_000;

#[derive(Default, Debug, Clone)]
pub struct NumericSketch {
    pub count: u64,
    pub sum: f64,
    pub sum_sq: f64,
    zero: u64,
    pos: BTreeMap<i32, u64>,
    neg: BTreeMap<i32, u64>,
}

fn key(abs: f64) -> i32 {
    ((abs.ln() / GAMMA.ln()).ceil() as i32).min(MAX_KEY)
}

fn value(key: i32) -> f64 {
    2.0 * GAMMA.powi(key) / (GAMMA + 1.0)
}

impl NumericSketch {
    pub fn add(&mut self, x: f64) {
        if !x.is_finite() {
            return;
        }
        self.count += 1;
        self.sum += x;
        self.sum_sq += x * x;
        if x.abs() < MIN_ABS {
            self.zero += 1;
        } else if x > 0.0 {
            *self.pos.entry(key(x)).or_default() += 1;
        } else {
            *self.neg.entry(key(-x)).or_default() += 1;
        }
    }

    pub fn merge(&mut self, other: &Self) {
        self.count += other.count;
        self.sum += other.sum;
        self.sum_sq += other.sum_sq;
        self.zero += other.zero;
        for (k, c) in &other.pos {
            *self.pos.entry(*k).or_default() += c;
        }
        for (k, c) in &other.neg {
            *self.neg.entry(*k).or_default() += c;
        }
    }

    pub fn std(&self) -> f64 {
        if self.count < 2 {
            return 0.0;
        }
        let n = self.count as f64;
        ((self.sum_sq - self.sum * self.sum / n) / (n - 1.0))
            .max(0.0)
            .sqrt()
    }

    /// (value, count) in ascending order of value.
    pub fn points(&self) -> Vec<(f64, u64)> {
        let mut out: Vec<(f64, u64)> = self
            .neg
            .iter()
            .rev()
            .map(|(&k, &c)| (-value(k), c))
            .collect();
        if self.zero > 0 {
            out.push((0.0, self.zero));
        }
        out.extend(self.pos.iter().map(|(&k, &c)| (value(k), c)));
        out
    }

    pub fn bytes(&self) -> usize {
        48 + 24 * (self.pos.len() + self.neg.len())
    }

    pub fn write(&self, w: &mut Writer) {
        w.u64(self.count);
        w.f64(self.sum);
        w.f64(self.sum_sq);
        w.u64(self.zero);
        for map in [&self.pos, &self.neg] {
            w.u32(map.len() as u32);
            for (&k, &c) in map {
                w.i32(k);
                w.u64(c);
            }
        }
    }

    pub fn read(r: &mut Reader<'_>) -> Result<Self> {
        let mut s = Self {
            count: r.u64()?,
            sum: r.f64()?,
            sum_sq: r.f64()?,
            zero: r.u64()?,
            ..Self::default()
        };
        for i in 0..2 {
            let n = r.u32()?;
            for _ in 0..n {
                let (k, c) = (r.i32()?, r.u64()?);
                if i == 0 {
                    s.pos.insert(k, c);
                } else {
                    s.neg.insert(k, c);
                }
            }
        }
        Ok(s)
    }
}

/// The largest gap between the two empirical CDFs (the KS statistic) and the area between them (the
/// Wasserstein-1 distance), computed on the bucket values.
pub fn ks_and_wasserstein(a: &NumericSketch, b: &NumericSketch) -> (f64, f64) {
    let (pa, pb) = (a.points(), b.points());
    let (na, nb) = (a.count.max(1) as f64, b.count.max(1) as f64);
    let (mut i, mut j) = (0, 0);
    let (mut fa, mut fb) = (0.0f64, 0.0f64);
    let (mut d, mut w) = (0.0f64, 0.0);
    let mut last: Option<f64> = None;
    while i < pa.len() || j < pb.len() {
        let x = match (pa.get(i), pb.get(j)) {
            (Some(p), Some(q)) => p.0.min(q.0),
            (Some(p), None) => p.0,
            (None, Some(q)) => q.0,
            (None, None) => break,
        };
        if let Some(prev) = last {
            w += (fa - fb).abs() * (x - prev);
        }
        while i < pa.len() && pa[i].0 == x {
            fa += pa[i].1 as f64 / na;
            i += 1;
        }
        while j < pb.len() && pb[j].0 == x {
            fb += pb[j].1 as f64 / nb;
            j += 1;
        }
        d = d.max((fa - fb).abs());
        last = Some(x);
    }
    (d, w)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_equals_single_pass() {
        let mut all = NumericSketch::default();
        let mut a = NumericSketch::default();
        let mut b = NumericSketch::default();
        for i in 0..1000 {
            let x = (i as f64 - 500.0) / 37.0;
            all.add(x);
            if i % 3 == 0 { a.add(x) } else { b.add(x) }
        }
        a.merge(&b);
        assert_eq!(a.points(), all.points());
        let mut w = Writer::default();
        a.write(&mut w);
        let back = NumericSketch::read(&mut Reader::new(&w.0)).expect("reads");
        assert_eq!(back.points(), all.points());
    }

    #[test]
    fn distances() {
        let mut a = NumericSketch::default();
        let mut b = NumericSketch::default();
        for i in 0..1000 {
            a.add(i as f64 / 1000.0);
            b.add(i as f64 / 1000.0 + 0.5);
        }
        let (d, w) = ks_and_wasserstein(&a, &b);
        assert!((d - 0.5).abs() < 0.02, "{d}");
        assert!((w - 0.5).abs() < 0.03, "{w}");
        let (d0, w0) = ks_and_wasserstein(&a, &a);
        assert_eq!((d0, w0), (0.0, 0.0));
    }
}
