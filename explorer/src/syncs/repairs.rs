//! Repairs of a property that fails as written: one fsync (of a file or a directory) inserted
//! after some op, or where none works, two after the same op.

use super::{NoRepair, Repair, Target};
use crate::Analysis;
use rayon::prelude::*;
use unplug_model::volatile::{Ino, Kind, SyncReq, Trace};
use unplug_model::{ModelSpec, Path, When};

/// An inode and a path it has.
type Named = (Ino, Path);

/// Syncs to insert that make property `i` hold: one fsync (of a file or a directory) after some
/// op; where none works, two fsyncs after the same op (a new file in a new directory needs both
/// directories synced under POSIX).
///
/// `first` is the first crash point where the property fails as written (if a state was
/// found that breaks it). Only ops up to it are tried: the states of crash point `first`
/// depend on ops 1 to `first`+1 only (explorer/tests/it/reduction.rs,
/// `crash_states_do_not_depend_on_later_ops`), so a sync inserted after op `first` leaves
/// them, and the violation, as they are.
pub(super) fn find_repairs(
    a: &Analysis,
    model: &ModelSpec,
    i: usize,
    first: Option<usize>,
) -> Vec<Repair> {
    let t = &a.trace;
    let last = first.unwrap_or(t.ops.len());
    // Only files and directories can be opened and fsynced (a symlink cannot).
    let fsyncable = |ino: &Ino| t.kinds.get(ino) != Some(&Kind::Symlink);
    // Per position up to the first violation: the inodes that have a name there.
    let named: Vec<Vec<Named>> = t
        .paths_after
        .each()
        .take(last + 1)
        .map(|paths| paths.into_iter().filter(|(i, _)| fsyncable(i)).collect())
        .collect();
    let single: Vec<Repair> = named
        .iter()
        .enumerate()
        .flat_map(|(after, here)| here.iter().map(move |x| (after, x)))
        .collect::<Vec<_>>()
        .par_iter()
        .filter_map(|&(after, (ino, path))| {
            try_insert(a, model, i, after, vec![fsync_of(t, *ino, path)])
        })
        .collect();
    if !single.is_empty() {
        return single;
    }
    let pairs: Vec<(usize, &Named, &Named)> = named
        .iter()
        .enumerate()
        .flat_map(|(after, here)| {
            (0..here.len())
                .flat_map(move |x| (x + 1..here.len()).map(move |y| (after, &here[x], &here[y])))
        })
        .collect();
    pairs
        .into_par_iter()
        .filter_map(|(after, (i1, p1), (i2, p2))| {
            try_insert(
                a,
                model,
                i,
                after,
                vec![fsync_of(t, *i1, p1), fsync_of(t, *i2, p2)],
            )
        })
        .collect()
}

/// The sync request of an fsync of inode `ino` (reached by `path`), and what to open.
fn fsync_of(t: &Trace, ino: Ino, path: &Path) -> (SyncReq, Target) {
    let kind = t.kinds[&ino];
    let req = match kind {
        Kind::Dir => SyncReq::Dir {
            ino,
            datasync: false,
        },
        Kind::File => SyncReq::File {
            ino,
            datasync: false,
            range: None,
        },
        // A symlink cannot be opened to fsync it; `fsyncable` keeps it out.
        Kind::Symlink => SyncReq::Dir {
            ino,
            datasync: false,
        },
    };
    let kind = if kind == Kind::Dir {
        "directory"
    } else {
        "file"
    };
    (
        req,
        Target {
            kind,
            path: path.to_string(),
        },
    )
}

/// The repair that inserts the fsyncs `picks` after op `after`, if property `i` then holds.
fn try_insert(
    a: &Analysis,
    model: &ModelSpec,
    i: usize,
    after: usize,
    picks: Vec<(SyncReq, Target)>,
) -> Option<Repair> {
    let t = &a.trace;
    if crate::budget::interrupted() {
        // The user asked to stop: the caller reports nothing of this analysis.
        return None;
    }
    let (reqs, targets): (Vec<SyncReq>, Vec<Target>) = picks.into_iter().unzip();
    let inserted = vec![after; reqs.len()];
    if !a.holds(
        model,
        &Analysis::with_syncs(t, after, reqs),
        &inserted,
        Some(i),
    )[i]
    {
        return None;
    }
    let code = targets
        .iter()
        .enumerate()
        .map(|(n, x)| {
            let h = format!("s{}", n + 1);
            let flag = if x.kind == "directory" { " dir" } else { "" };
            format!("{h} = open {}{flag}\nfsync {h}\nclose {h}", x.path)
        })
        .collect::<Vec<_>>()
        .join("\n");
    Some(Repair {
        after,
        fsync: targets,
        code,
    })
}

/// Why no one or two fsyncs repair property `i`: the program with a `sync` after every op (and
/// after setup) is the most added syncs could do. If the property still fails, the crash point
/// of its first violation says why. In that program, crash point `2k` is right after op `k`
/// (the sync after it may have started) and `2k + 1` right after that sync: a violation at `2k`
/// needs op `k` durable the moment it returns (pinned), one at `2k + 1` is not about durability.
pub(super) fn why_no_repair(a: &Analysis, model: &ModelSpec, i: usize) -> NoRepair {
    let n = a.trace.ops.len();
    let mut t = a.trace.clone();
    for after in (0..=n).rev() {
        t = Analysis::with_syncs(&t, after, vec![SyncReq::All]);
    }
    let mut p = a.program.properties[i].clone();
    if let When::After { op, .. } = &mut p.when {
        *op *= 2;
    }
    let run = a.run_trace(model, t);
    match run.check_one(&p).counterexample {
        None => NoRepair::MoreSyncs,
        // Crash point 0 holds only the state after setup: no op's durability is asked for.
        Some(v) if v.at % 2 == 0 && v.at > 0 => NoRepair::Pinned { at: v.at / 2 },
        Some(v) => NoRepair::NotDurability { at: v.at / 2 },
    }
}
