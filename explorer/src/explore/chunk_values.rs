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

/// Nonempty subsets of `vals` with at most `max` elements, in a fixed order.
pub(super) fn subsets(vals: &[Option<usize>], max: usize) -> Vec<Choice> {
    let n = vals.len();
    subsets_masks(n, max)
        .into_iter()
        .map(|mask| {
            (0..n)
                .filter(|i| mask >> i & 1 == 1)
                .map(|i| vals[i])
                .collect()
        })
        .collect()
}

/// The subsets of [`subsets`] as bit masks over the `n` values, in the same order.
pub(super) fn subsets_masks(n: usize, max: usize) -> Vec<u64> {
    let mut out: Vec<u64> = (1u64..(1u64 << n.min(20)))
        .filter(|mask| (mask.count_ones() as usize) <= max)
        .collect();
    out.sort_by_key(|m| m.count_ones());
    out
}
