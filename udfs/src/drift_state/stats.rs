//! The distributions behind drift()'s p-values: normal, chi-square and Kolmogorov. Written out here (a few
//! dozen lines of textbook series) rather than pulling a statistics crate into every build.

/// P(Z > z) for a standard normal Z.
pub fn normal_sf(z: f64) -> f64 {
    0.5 * erfc(z / std::f64::consts::SQRT_2)
}

/// The complementary error function (Numerical Recipes' Chebyshev fit, relative error < 1.2e-7).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t
        * (-z * z - 1.265_512_23
            + t * (1.000_023_68
                + t * (0.374_091_96
                    + t * (0.096_784_18
                        + t * (-0.186_288_06
                            + t * (0.278_868_07
                                + t * (-1.135_203_98
                                    + t * (1.488_515_87
                                        + t * (-0.822_152_23 + t * 0.170_872_77)))))))))
            .exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

/// P(X > x) for X chi-square with `k` degrees of freedom: the regularised upper incomplete gamma Q(k/2, x/2).
pub fn chi2_sf(x: f64, k: f64) -> f64 {
    if x <= 0.0 || k <= 0.0 {
        return 1.0;
    }
    gamma_q(k / 2.0, x / 2.0)
}

fn gamma_q(a: f64, x: f64) -> f64 {
    if x < a + 1.0 {
        // Series for P(a, x).
        let mut sum = 1.0 / a;
        let mut term = sum;
        let mut n = a;
        for _ in 0..500 {
            n += 1.0;
            term *= x / n;
            sum += term;
            if term.abs() < sum.abs() * 1e-14 {
                break;
            }
        }
        (1.0 - sum * (-x + a * x.ln() - ln_gamma(a)).exp()).clamp(0.0, 1.0)
    } else {
        // Lentz's continued fraction for Q(a, x).
        let tiny = 1e-300;
        let mut b = x + 1.0 - a;
        let mut c = 1.0 / tiny;
        let mut d = 1.0 / b;
        let mut h = d;
        for i in 1..500 {
            let an = -(i as f64) * (i as f64 - a);
            b += 2.0;
            d = an * d + b;
            if d.abs() < tiny {
                d = tiny;
            }
            c = b + an / c;
            if c.abs() < tiny {
                c = tiny;
            }
            d = 1.0 / d;
            let delta = d * c;
            h *= delta;
            if (delta - 1.0).abs() < 1e-14 {
                break;
            }
        }
        ((-x + a * x.ln() - ln_gamma(a)).exp() * h).clamp(0.0, 1.0)
    }
}

/// ln Γ(x) by the Lanczos approximation (g = 7, n = 9).
fn ln_gamma(x: f64) -> f64 {
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = C[0];
    let t = x + 7.5;
    for (i, &c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// The two-sample Kolmogorov–Smirnov p-value of statistic `d` for sample sizes `n` and `m` (asymptotic
/// Kolmogorov distribution with Stephens' small-sample correction).
pub fn ks_p_value(d: f64, n: f64, m: f64) -> f64 {
    if n <= 0.0 || m <= 0.0 {
        return 1.0;
    }
    let en = (n * m / (n + m)).sqrt();
    let lambda = (en + 0.12 + 0.11 / en) * d;
    if lambda < 1e-3 {
        return 1.0;
    }
    let mut sum = 0.0;
    for j in 1..=100 {
        let j = j as f64;
        let term = 2.0 * (-1f64).powf(j - 1.0) * (-2.0 * j * j * lambda * lambda).exp();
        sum += term;
        if term.abs() < 1e-12 {
            break;
        }
    }
    sum.clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        assert!((normal_sf(1.644_853_6) - 0.05).abs() < 1e-6);
        assert!((normal_sf(0.0) - 0.5).abs() < 1e-6);
        // chi-square(1) critical value at 0.05 is 3.841; chi-square(10) at 0.05 is 18.307.
        assert!((chi2_sf(3.841_459, 1.0) - 0.05).abs() < 1e-5);
        assert!((chi2_sf(18.307_04, 10.0) - 0.05).abs() < 1e-5);
        assert!((chi2_sf(0.5, 3.0) - 0.918_891_4).abs() < 1e-5);
        // KS: lambda = 1.358 is the 5% point of the Kolmogorov distribution.
        let n: f64 = 1e6;
        let d = 1.358_1 / (n * n / (2.0 * n)).sqrt();
        assert!((ks_p_value(d, n, n) - 0.05).abs() < 1e-3);
        assert!((ln_gamma(5.0) - 24f64.ln()).abs() < 1e-10);
    }
}
