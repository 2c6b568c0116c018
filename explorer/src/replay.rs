//! Replay strings: a short text naming one crash state, printed with every counterexample and
//! taken back by `unplug explain`.
//!
//! Format: `AT:EFFECTS[/cCHUNK=SOURCES]...` where AT is the crash point, EFFECTS the persisted
//! metadata effects (`m7` is op 7's metadata, `m1.2` op 1's metadata of inode 2 under posix,
//! `m1.2s4096` the size 4096 an extending write of op 1 may leave part-way under posix, `w4`
//! op 4's writeback-time size; `-` for none), and each `/cN=...` says which values the blocks of
//! chunk N hold: `b` the base value (the durable metadata's, or the content before crash point
//! 0), `dK` the content written by op K (`aK`: the stale bytes its allocation exposes, ext4
//! data=writeback), `g` garbage (models with `garbage`). Example: `7:m1,m2,m7/c0=b`.

use crate::explore::{self, Witness};
use crate::{CrashState, ModelRun};

/// Formats a witness of `run` as a replay string.
pub fn format(run: &ModelRun, w: &Witness) -> String {
    let p = &run.persistence;
    let names: Vec<&str> = w
        .persisted
        .iter()
        .map(|&e| p.effects[e].name.as_str())
        .collect();
    let mut s = format!(
        "{}:{}",
        w.at,
        if names.is_empty() {
            "-".to_string()
        } else {
            names.join(",")
        }
    );
    for (c, srcs) in &w.chunks {
        let v: Vec<String> = srcs
            .iter()
            .map(|x| match x {
                None => "b".to_string(),
                Some(explore::GARBAGE) => "g".to_string(),
                Some(e) => p.effects[*e].name.clone(),
            })
            .collect();
        s.push_str(&format!("/c{c}={}", v.join("+")));
    }
    s
}

/// Parses a replay string against `run` and checks that it names a crash state the model allows.
/// Errors say what is wrong in words (an unknown effect, an effect whose prerequisite did not
/// persist, a floor effect missing).
pub fn parse(run: &ModelRun, text: &str) -> Result<Witness, String> {
    let p = &run.persistence;
    let mut parts = text.trim().split('/');
    let head = parts.next().unwrap_or("");
    let (at, effs) = head
        .split_once(':')
        .ok_or("a replay string starts with `CRASHPOINT:EFFECTS`, e.g. `7:m1,m2,m7`")?;
    let at: usize = at
        .parse()
        .map_err(|_| format!("`{at}` is not a crash point number"))?;
    if at > run.trace.ops.len() {
        return Err(format!(
            "crash point {at} does not exist: the program has {} ops",
            run.trace.ops.len()
        ));
    }
    let mut persisted = Vec::new();
    if effs != "-" && !effs.is_empty() {
        for name in effs.split(',') {
            let e = p
                .effects
                .iter()
                .position(|x| x.name == name && !x.is_block())
                .ok_or_else(|| {
                    format!("no metadata effect is called `{name}` under {}", run.model)
                })?;
            if p.effects[e].op > at + 1 {
                return Err(format!(
                    "`{name}` is issued by op {}, after crash point {at} (and the op in flight)",
                    p.effects[e].op
                ));
            }
            persisted.push(e);
        }
    }
    persisted.sort_unstable();
    persisted.dedup();
    let mut chunks = Vec::new();
    for part in parts {
        let (c, srcs) = part
            .strip_prefix('c')
            .and_then(|x| x.split_once('='))
            .ok_or_else(|| format!("`{part}` is not a chunk choice like `c0=b+d4`"))?;
        let c: usize = c
            .parse()
            .map_err(|_| format!("`{c}` is not a chunk number"))?;
        if c >= p.layout.chunks.len() {
            return Err(format!(
                "chunk {c} does not exist (the layout has {})",
                p.layout.chunks.len()
            ));
        }
        let mut v = Vec::new();
        for s in srcs.split('+') {
            if s == "b" {
                v.push(None);
                continue;
            }
            if s == "g" {
                v.push(Some(explore::GARBAGE));
                continue;
            }
            let e = run.graph.blocks_of_chunk[c]
                .iter()
                .copied()
                .find(|&e| p.effects[e].name == s)
                .ok_or_else(|| {
                    format!("`{s}` is not `b`, `g` or a block version of chunk {c} (like `d4`)")
                })?;
            v.push(Some(e));
        }
        chunks.push((c, v));
    }
    let w = Witness {
        at,
        persisted,
        chunks,
        partial: false,
        excluded: Vec::new(),
    };
    state_of(run, &w).map(|_| w)
}

/// Rebuilds the crash state a witness names, checking it is allowed.
pub fn state_of(run: &ModelRun, w: &Witness) -> Result<CrashState, String> {
    let p = &run.persistence;
    let cp = explore::CrashPoint::new(&run.trace, p, &run.graph, w.at);
    let floor = &cp.floor;
    let mut inc = vec![false; p.effects.len()];
    for &e in &w.persisted {
        inc[e] = true;
    }
    for &e in &w.persisted {
        for q in run.graph.preds(e) {
            if !inc[q] {
                let rule = run
                    .graph
                    .edges_into(e)
                    .into_iter()
                    .find(|(f, _)| *f == q)
                    .map(|(_, r)| r.id)
                    .unwrap_or("?");
                return Err(format!(
                    "`{}` persisted but `{}` did not, and rule {rule} says `{}` requires it",
                    p.effects[e].name, p.effects[q].name, p.effects[e].name
                ));
            }
        }
    }
    for (e, eff) in p.effects.iter().enumerate() {
        if floor[e] && !eff.is_block() && !inc[e] {
            return Err(format!(
                "`{}` is durable at crash point {} (a completed sync forces it) but is missing",
                eff.name, w.at
            ));
        }
    }
    let mut found = None;
    // A witness names a combination the enumeration made, so it is among these even when a
    // chunk had too many to make them all.
    let _complete = cp.states(&inc, &mut |s, cand| {
        if found.is_none() && cand.chunks == w.chunks {
            found = Some(s);
        }
    });
    found.ok_or_else(|| "the chunk choices do not match what this crash point allows (run `unplug states` to list them)".to_string())
}
