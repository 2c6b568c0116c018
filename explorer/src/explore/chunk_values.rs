//! What a chunk's units hold, as segments of a crash state's file content, and which subsets of
//! its candidate values a class may choose: shared by the reference code and the fast path, so
//! that both build the very same states.

use super::Choice;
use crate::state::Segment;
use std::collections::BTreeSet;
use unplug_model::{BlockValue, Extent};

/// The segments of a chunk whose every unit holds one value `v` (already clipped to the file):
/// one extent for a whole-unit value, whatever the chunk's length, else the value's extents
/// unit by unit.
pub(super) fn push_value(
    segs: &mut Vec<Segment>,
    v: &BlockValue,
    chunk: &unplug_model::Chunk,
    size: u64,
) {
    if let [(0, u, origin)] = v.0.as_slice() {
        if *u == chunk.unit {
            segs.push(Segment::Exact(Extent {
                start: chunk.start(),
                end: chunk.end().min(size),
                origin: origin.clone(),
            }));
            return;
        }
    }
    for b in 0..chunk.blocks {
        if chunk.start() + b * chunk.unit >= size {
            break;
        }
        segs.extend(v.extents(chunk, b, size).into_iter().map(Segment::Exact));
    }
}

/// The segments of a chunk whose units take the (clipped) `values`: those of the one value, or
/// a mixed segment.
pub(super) fn push_values(
    segs: &mut Vec<Segment>,
    values: BTreeSet<BlockValue>,
    chunk: &unplug_model::Chunk,
    size: u64,
) {
    if values.len() == 1 {
        let v = values.into_iter().next().expect("one value");
        push_value(segs, &v, chunk, size);
    } else {
        segs.push(Segment::Mixed {
            unit: chunk.unit,
            start: chunk.start(),
            end: chunk.end().min(size),
            blocks: visible_units(chunk, size),
            values,
        });
    }
}

/// How many units of a chunk lie (at least partly) inside a file of `size` bytes.
pub(super) fn visible_units(chunk: &unplug_model::Chunk, size: u64) -> u64 {
    (chunk.end().min(size).saturating_sub(chunk.start())).div_ceil(chunk.unit)
}

/// Clips a block value to the file size (bytes past the end are not part of the file) and
/// normalises it so that equal bytes compare equal.
pub(super) fn clip(v: &BlockValue, chunk: &unplug_model::Chunk, size: u64) -> BlockValue {
    let start = chunk.start();
    if chunk.blocks == 1 && start + chunk.unit > size {
        let lim = size.saturating_sub(start);
        BlockValue(
            v.0.iter()
                .filter(|(s, _, _)| *s < lim)
                .map(|(s, e, o)| (*s, (*e).min(lim), o.clone()))
                .collect(),
        )
    } else {
        v.clone()
    }
}

/// Merges exact extents into canonical form (mixed segments stay as they are): neighbouring
/// exact extents that touch and share an origin become one (as `volatile::merge`).
pub(super) fn canonical(segs: Vec<Segment>) -> Vec<Segment> {
    let mut out: Vec<Segment> = Vec::with_capacity(segs.len());
    for s in segs {
        if let (Segment::Exact(e), Some(Segment::Exact(last))) = (&s, out.last_mut()) {
            if last.end == e.start && last.origin == e.origin {
                last.end = e.end;
                continue;
            }
        }
        out.push(s);
    }
    out
}

/// [`canonical`] in place.
pub(super) fn canonical_in_place(segs: &mut Vec<Segment>) {
    segs.dedup_by(|s, last| match (s, last) {
        (Segment::Exact(e), Segment::Exact(last))
            if last.end == e.start && last.origin == e.origin =>
        {
            last.end = e.end;
            true
        }
        _ => false,
    });
}

/// Most options one chunk may have (nonempty subsets of its candidate values, at most its
/// visible units each). Past it, or past 64 candidates, the chunk gets only the options of one
/// value each and the crash point is marked unproven ([`crate::budget::Bound::Choices`]).
pub const MAX_OPTIONS: u128 = 1 << 16;

/// Nonempty subsets of `vals` with at most `max` elements, in a fixed order (see
/// [`subsets_masks`]), and whether they are all of them.
pub(super) fn subsets(vals: &[Option<usize>], max: usize) -> (Vec<Choice>, bool) {
    let n = vals.len();
    let (masks, complete) = subsets_masks(n, max);
    let choices = masks
        .into_iter()
        .map(|mask| {
            (0..n.min(64))
                .filter(|i| mask >> i & 1 == 1)
                .map(|i| vals[i])
                .collect()
        })
        .collect();
    (choices, complete)
}

/// The nonempty subsets of at most `max` of `n` values as bit masks, by size and then in
/// numeric order, and whether they are all of them: when there would be more than
/// [`MAX_OPTIONS`] or `n` exceeds 64, only the subsets of one value (of the first 64).
pub(super) fn subsets_masks(n: usize, max: usize) -> (Vec<u64>, bool) {
    let bits = n.min(64);
    let max = max.min(bits);
    // sum of C(bits, j) for j in 1..=max, saturating.
    let mut total: u128 = 0;
    let mut c: u128 = 1;
    for j in 1..=max {
        c = c * (bits - j + 1) as u128 / j as u128;
        total = total.saturating_add(c);
        if total > MAX_OPTIONS {
            break;
        }
    }
    let complete = n <= 64 && total <= MAX_OPTIONS;
    let max = if complete { max } else { max.min(1) };
    let mut out = Vec::new();
    for j in 1..=max {
        // The j-subsets in increasing numeric order (Gosper's hack).
        let mut m: u64 = if j == 64 { u64::MAX } else { (1 << j) - 1 };
        loop {
            out.push(m);
            let low = m & m.wrapping_neg();
            let Some(r) = m.checked_add(low) else { break };
            let next = (((r ^ m) >> 2) / low) | r;
            if bits < 64 && next >> bits != 0 {
                break;
            }
            m = next;
        }
    }
    (out, complete)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The masks are every subset of at most `max` of `n` values, by size then numerically, for
    /// small `n` (checked against filtering every mask); past the bound, the singletons.
    #[test]
    fn subsets_by_size_then_value() {
        for n in 0..=10 {
            for max in 0..=n + 1 {
                let mut all: Vec<u64> = (1u64..1 << n)
                    .filter(|m| m.count_ones() as usize <= max)
                    .collect();
                all.sort_by_key(|m| m.count_ones());
                assert_eq!(subsets_masks(n, max), (all, true), "n={n} max={max}");
            }
        }
        // 40 values, one each: 40 options; two each: 40 + 780.
        assert_eq!(subsets_masks(40, 1).0.len(), 40);
        assert_eq!(subsets_masks(40, 2).0.len(), 820);
        assert!(subsets_masks(40, 2).1);
        // 64 values of up to 64 each would be 2^64 - 1: only the singletons.
        let (m, complete) = subsets_masks(64, 64);
        assert!(!complete);
        assert_eq!(m.len(), 64);
        assert_eq!(m.last(), Some(&(1 << 63)));
        // More than 64 values: the first 64, one each, incomplete.
        assert_eq!(
            subsets_masks(100, 1),
            ((0..64).map(|i| 1u64 << i).collect(), false)
        );
    }
}
