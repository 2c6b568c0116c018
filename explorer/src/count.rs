//! Exact counts of crash states, however large.
//!
//! A chunk of n blocks whose blocks take k distinct values stands for `surj(n, k)` concrete states
//! (the surjections of n blocks onto k values), and n can be 2^28 for a 1 TiB file: the count has
//! hundreds of millions of digits. A [`Count`] keeps it exact as a sum of monomials
//! `coefficient * b1^e1 * b2^e2 ...`, folds small powers into the coefficient, and turns into a
//! plain integer only when that integer is of reasonable size. `2^2048 + 2` is how the seed's
//! 8 MiB store reads.

use num_bigint::{BigInt, BigUint, Sign};
use std::collections::BTreeMap;
use std::fmt;

/// Powers whose value fits in this many bits are multiplied into the coefficient.
const FOLD_BITS: f64 = 64.0;
/// Counts up to this many bits are also available as a plain integer.
pub const EXACT_BITS: f64 = (1u64 << 20) as f64;

/// An exact non-negative count: a sum of `coefficient * product of base^exponent`.
///
/// A count that is a plain integer below 2^64 (nearly every count of a class) is kept as that
/// integer, without allocating; every other count as its monomials. The form is canonical (a
/// count that fits is always `Small`), so equality is structural.
#[derive(Clone, PartialEq, Eq)]
pub struct Count {
    repr: Repr,
}

type Terms = BTreeMap<Vec<(u64, u64)>, BigInt>;

#[derive(Clone, PartialEq, Eq)]
enum Repr {
    Small(u64),
    /// Monomial (sorted `(base, exponent)` pairs, bases >= 2, no repeated base) -> coefficient;
    /// never a constant that fits in a `u64`.
    Terms(Terms),
}

impl Default for Count {
    fn default() -> Self {
        Count::zero()
    }
}

impl fmt::Debug for Count {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Count")
            .field("terms", &self.terms())
            .finish()
    }
}

impl Count {
    pub fn zero() -> Count {
        Count {
            repr: Repr::Small(0),
        }
    }

    pub fn one() -> Count {
        Count {
            repr: Repr::Small(1),
        }
    }

    /// The canonical count of some monomials (zero coefficients already removed).
    fn from_terms(terms: Terms) -> Count {
        let repr = match terms.len() {
            0 => Repr::Small(0),
            1 => match terms.iter().next() {
                Some((m, c)) if m.is_empty() => match u64::try_from(c) {
                    Ok(n) => Repr::Small(n),
                    Err(_) => Repr::Terms(terms),
                },
                _ => Repr::Terms(terms),
            },
            _ => Repr::Terms(terms),
        };
        Count { repr }
    }

    /// The monomials of the count.
    fn terms(&self) -> std::borrow::Cow<'_, Terms> {
        match &self.repr {
            Repr::Small(0) => std::borrow::Cow::Owned(Terms::new()),
            Repr::Small(n) => {
                let mut t = Terms::new();
                t.insert(Vec::new(), BigInt::from(*n));
                std::borrow::Cow::Owned(t)
            }
            Repr::Terms(t) => std::borrow::Cow::Borrowed(t),
        }
    }

    fn constant(c: BigInt) -> Count {
        let mut terms = BTreeMap::new();
        if c.sign() != Sign::NoSign {
            terms.insert(Vec::new(), c);
        }
        Count::from_terms(terms)
    }

    /// Whether `base^exp` is folded into a coefficient.
    fn folds(base: u64, exp: u64) -> bool {
        (exp as f64) * (base as f64).log2() <= FOLD_BITS
    }

    /// `base^exp`, folded into a coefficient when small.
    fn power(base: u64, exp: u64) -> Count {
        match base {
            0 if exp > 0 => Count::zero(),
            0 | 1 => Count::one(),
            _ if exp == 0 => Count::one(),
            _ if Count::folds(base, exp) => Count::constant(BigInt::from(base).pow(exp as u32)),
            _ => {
                let mut terms = BTreeMap::new();
                terms.insert(vec![(base, exp)], BigInt::from(1));
                Count::from_terms(terms)
            }
        }
    }

    /// The number of surjections from `n` blocks onto `k` values:
    /// `sum_{j=0..k} (-1)^j C(k, j) (k - j)^n`.
    pub fn surjections(n: u64, k: usize) -> Count {
        if let Some(v) = Count::small_surjections(n, k) {
            return Count {
                repr: Repr::Small(v),
            };
        }
        Count::big_surjections(n, k)
    }

    /// [`Count::surjections`] with big integers.
    fn big_surjections(n: u64, k: usize) -> Count {
        let mut total = Count::zero();
        let mut binom = BigInt::from(1);
        for j in 0..=k {
            let sign = if j % 2 == 0 { 1 } else { -1 };
            total = total.add(&Count::power((k - j) as u64, n).scale(&(&binom * sign)));
            binom = binom * BigInt::from((k - j) as u64) / BigInt::from((j + 1) as u64);
        }
        total
    }

    /// [`Count::surjections`] in machine integers, when every power folds and every figure fits.
    fn small_surjections(n: u64, k: usize) -> Option<u64> {
        let mut total: i128 = 0;
        let mut binom: i128 = 1;
        for j in 0..=k {
            let base = (k - j) as u64;
            let power: i128 = match base {
                0 if n > 0 => 0,
                0 | 1 => 1,
                _ if n == 0 => 1,
                _ if Count::folds(base, n) => base.checked_pow(u32::try_from(n).ok()?)? as i128,
                _ => return None,
            };
            let term = binom.checked_mul(power)?;
            total = if j % 2 == 0 {
                total.checked_add(term)?
            } else {
                total.checked_sub(term)?
            };
            binom = binom.checked_mul(base as i128)? / (j as i128 + 1);
        }
        u64::try_from(total).ok()
    }

    fn scale(self, c: &BigInt) -> Count {
        let mut terms = self.terms().into_owned();
        for v in terms.values_mut() {
            *v *= c;
        }
        terms.retain(|_, v| v.sign() != Sign::NoSign);
        Count::from_terms(terms)
    }

    pub fn add(&self, other: &Count) -> Count {
        if let (Repr::Small(a), Repr::Small(b)) = (&self.repr, &other.repr) {
            if let Some(n) = a.checked_add(*b) {
                return Count {
                    repr: Repr::Small(n),
                };
            }
        }
        let mut terms = self.terms().into_owned();
        for (m, c) in other.terms().iter() {
            *terms.entry(m.clone()).or_default() += c;
        }
        terms.retain(|_, v| v.sign() != Sign::NoSign);
        Count::from_terms(terms)
    }

    pub fn mul(&self, other: &Count) -> Count {
        if let (Repr::Small(a), Repr::Small(b)) = (&self.repr, &other.repr) {
            if let Some(n) = a.checked_mul(*b) {
                return Count {
                    repr: Repr::Small(n),
                };
            }
        }
        let mut out = Count::zero();
        for (m1, c1) in self.terms().iter() {
            for (m2, c2) in other.terms().iter() {
                let mut m: BTreeMap<u64, u64> = m1.iter().copied().collect();
                for &(b, e) in m2 {
                    *m.entry(b).or_default() += e;
                }
                let mut t = Count::constant(c1 * c2);
                for (b, e) in m {
                    t = t.mul_power(b, e);
                }
                out = out.add(&t);
            }
        }
        out
    }

    /// Multiplies by one power (helper of `mul`, which merges bases first).
    fn mul_power(self, b: u64, e: u64) -> Count {
        let p = Count::power(b, e);
        let mut terms = BTreeMap::new();
        for (m, c) in self.terms().into_owned() {
            for (pm, pc) in p.terms().iter() {
                let mut mm = m.clone();
                mm.extend(pm.iter().copied());
                mm.sort_unstable();
                *terms.entry(mm).or_insert_with(|| BigInt::from(0)) += &c * pc;
            }
        }
        terms.retain(|_, v: &mut BigInt| v.sign() != Sign::NoSign);
        Count::from_terms(terms)
    }

    /// log2 of the largest monomial: the size of the count in bits, roughly.
    pub fn bits(&self) -> f64 {
        self.terms()
            .iter()
            .map(|(m, c)| {
                m.iter()
                    .map(|&(b, e)| e as f64 * (b as f64).log2())
                    .sum::<f64>()
                    + log2(c.magnitude())
            })
            .fold(0.0, f64::max)
    }

    /// The count as an integer, when it has at most [`EXACT_BITS`] bits.
    pub fn exact(&self) -> Option<BigUint> {
        if self.bits() > EXACT_BITS {
            return None;
        }
        let mut total = BigInt::from(0);
        for (m, c) in self.terms().iter() {
            let mut v = c.clone();
            for &(b, e) in m {
                v *= BigInt::from(b).pow(e as u32);
            }
            total += v;
        }
        total.to_biguint()
    }

    /// `2^2048 + 2`: the exact value as an expression (largest terms first).
    pub fn expression(&self) -> String {
        let all = self.terms();
        if all.is_empty() {
            return "0".into();
        }
        let mut terms: Vec<(&Vec<(u64, u64)>, &BigInt)> = all.iter().collect();
        let size = |m: &Vec<(u64, u64)>| {
            m.iter()
                .map(|&(b, e)| e as f64 * (b as f64).log2())
                .sum::<f64>()
        };
        terms.sort_by(|a, b| size(b.0).total_cmp(&size(a.0)).then_with(|| b.0.cmp(a.0)));
        let mut s = String::new();
        for (i, (m, c)) in terms.into_iter().enumerate() {
            let neg = c.sign() == Sign::Minus;
            let mag = c.magnitude();
            if i == 0 {
                if neg {
                    s.push('-');
                }
            } else {
                s.push_str(if neg { " - " } else { " + " });
            }
            let powers: Vec<String> = m.iter().map(|(b, e)| format!("{b}^{e}")).collect();
            if m.is_empty() {
                s.push_str(&mag.to_string());
            } else if *mag == BigUint::from(1u32) {
                s.push_str(&powers.join("·"));
            } else {
                s.push_str(&format!("{mag}·{}", powers.join("·")));
            }
        }
        s
    }
}

/// log2 of a big integer (0 for 0 and 1), precise to a few digits.
fn log2(n: &BigUint) -> f64 {
    let bits = n.bits();
    if bits <= 63 {
        return n
            .iter_u64_digits()
            .next()
            .map_or(0.0, |v| (v as f64).log2());
    }
    // The top 63 bits carry all the precision an f64 has.
    let top = (n >> (bits - 63)).iter_u64_digits().next().unwrap_or(1) as f64;
    top.log2() + (bits - 63) as f64
}

impl fmt::Display for Count {
    /// The plain integer when it has at most 15 digits, else the expression.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.exact() {
            Some(n) if self.bits() < 50.0 => write!(f, "{n}"),
            _ => f.write_str(&self.expression()),
        }
    }
}

impl std::iter::Sum for Count {
    fn sum<I: Iterator<Item = Count>>(iter: I) -> Count {
        iter.fold(Count::zero(), |a, b| a.add(&b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn surj_brute(n: u64, k: usize) -> u64 {
        // Count functions from n blocks to k values that hit every value.
        (0..(k as u64).pow(n as u32))
            .filter(|&f| {
                let mut seen = vec![false; k];
                let mut x = f;
                for _ in 0..n {
                    seen[(x % k as u64) as usize] = true;
                    x /= k as u64;
                }
                seen.iter().all(|s| *s)
            })
            .count() as u64
    }

    #[test]
    fn surjections_match_brute_force() {
        for n in 1..=7 {
            for k in 1..=4 {
                let c = Count::surjections(n, k);
                assert_eq!(
                    c.exact(),
                    Some(BigUint::from(surj_brute(n, k))),
                    "surj({n}, {k}) = {c}"
                );
            }
        }
    }

    #[test]
    fn large_counts_stay_exact_as_expressions() {
        let seed = Count::surjections(2048, 2).add(&Count::constant(BigInt::from(4)));
        assert_eq!(seed.to_string(), "2^2048 + 2");
        assert_eq!(seed.exact().unwrap(), BigUint::from(2u32).pow(2048) + 2u32);
        // A 16 TiB file: 2^32 blocks. No integer is built, and nothing overflows.
        let huge = Count::surjections(1 << 32, 3);
        assert_eq!(huge.to_string(), "3^4294967296 - 3·2^4294967296 + 3");
        assert!(huge.exact().is_none());
        let product = huge.mul(&Count::surjections(1 << 32, 2));
        assert!(
            (product.bits() - 6f64.log2() * 4294967296.0).abs() < 1.0,
            "{}",
            product.bits()
        );
        // The same product on small sizes, where the integers can be checked.
        let small = Count::surjections(40, 3).mul(&Count::surjections(40, 2));
        let want =
            Count::surjections(40, 3).exact().unwrap() * Count::surjections(40, 2).exact().unwrap();
        assert_eq!(small.exact(), Some(want));
    }

    #[test]
    fn machine_integers_agree_with_big_integers() {
        for n in 0..=140 {
            for k in 0..=7 {
                let big = Count::big_surjections(n, k);
                assert_eq!(Count::surjections(n, k), big, "surj({n}, {k})");
                assert_eq!(big.exact(), Count::surjections(n, k).exact());
            }
        }
        let max = Count::constant(BigInt::from(u64::MAX));
        assert_eq!(max.add(&Count::one()).to_string(), "18446744073709551616");
        assert_eq!(max.mul(&max).exact(), Some(BigUint::from(u64::MAX).pow(2)));
        assert_eq!(Count::zero(), Count::constant(BigInt::from(0)));
        assert_eq!(Count::default().to_string(), "0");
        assert_eq!(Count::one().expression(), "1");
    }

    #[test]
    fn products_merge_bases() {
        let a = Count::surjections(100, 2); // 2^100 - 2
        let b = Count::surjections(100, 2);
        assert_eq!(a.mul(&b).to_string(), "2^200 - 4·2^100 + 4");
        assert_eq!(
            a.mul(&b).exact(),
            Some((BigUint::from(2u32).pow(100) - 2u32).pow(2))
        );
    }
}
