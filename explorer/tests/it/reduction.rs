//! The chunk reduction is exact: checked against a brute-force enumerator.
//!
//! The explorer treats a run of interchangeable blocks as one chunk and counts the ways its
//! blocks can differ instead of enumerating them (explorer/src/explore.rs). This file holds an
//! independent, naive enumerator: every block its own effect, every downward-closed set of *all*
//! effects enumerated, the state of each built by applying the latest persisted assignment of every
//! key. For small programs, both must give the same distinct-state count at every crash point,
//! and every property the same verdict. A proptest does the same over generated programs.

use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use unplug_explorer::cone::Reads;
use unplug_explorer::state::{build_tree, eval, exact_segments, EvalContext};
use unplug_explorer::{Analysis, CrashState, ModelRun};
use unplug_model::volatile::Trace;
use unplug_model::{
    Assign, EffectKind, Extent, Ino, Kind, Layout, ModelSpec, Origin, Path, Persistence, BLOCK,
};

/// All crash states at crash point `k`, by brute force over a per-block layout.
fn brute_states(trace: &Trace, p: &Persistence, k: usize) -> BTreeSet<CrashState> {
    let n = p.effects.len();
    let mut preds = vec![Vec::new(); n];
    for e in &p.edges {
        preds[e.to].push(e.from);
    }
    let mut floor = vec![false; n];
    let mut stack: Vec<usize> = p
        .floors
        .iter()
        .filter(|f| f.op <= k)
        .flat_map(|f| f.effects.clone())
        .collect();
    while let Some(e) = stack.pop() {
        if !floor[e] {
            floor[e] = true;
            stack.extend(preds[e].iter().copied());
        }
    }
    let issued: Vec<usize> = (0..n).filter(|&e| p.effects[e].op <= k + 1).collect();
    assert!(
        issued.len() <= 22,
        "brute force is for small programs ({} effects)",
        issued.len()
    );
    let mut out = BTreeSet::new();
    for mask in 0u64..(1u64 << issued.len()) {
        let mut inc = vec![false; n];
        for (i, &e) in issued.iter().enumerate() {
            inc[e] = mask >> i & 1 == 1;
        }
        let closed = issued
            .iter()
            .all(|&e| (!floor[e] || inc[e]) && (!inc[e] || preds[e].iter().all(|&q| inc[q])));
        if closed {
            // torn-garbage: any unit with a write not yet durable (allowed by the durable
            // effects, not forced, newer than the unit's last global assignment) may be garbage.
            let capable: Vec<(Ino, u64)> = if p.model.garbage() {
                let stamps = global_stamps(p, &inc);
                p.layout
                    .chunks
                    .iter()
                    .enumerate()
                    .filter(|(c, ch)| {
                        let base = stamps.get(&(ch.ino, ch.first)).copied().unwrap_or((0, 0));
                        p.effects.iter().enumerate().any(|(e, eff)| {
                            matches!(&eff.kind, EffectKind::Block { chunk, .. } if chunk == c)
                                && eff.op <= k + 1
                                && !floor[e]
                                && preds[e].iter().all(|&q| inc[q])
                                && (eff.op, e) > base
                        })
                    })
                    .map(|(_, ch)| (ch.ino, ch.first))
                    .collect()
            } else {
                Vec::new()
            };
            for gmask in 0u64..(1u64 << capable.len()) {
                let garbage: BTreeSet<(Ino, u64)> = (0..capable.len())
                    .filter(|i| gmask >> i & 1 == 1)
                    .map(|i| capable[i])
                    .collect();
                out.insert(apply(trace, p, &inc, &garbage));
            }
        }
    }
    out
}

/// A byte range of a block and where its bytes come from.
type BlockPart = (u64, u64, Origin);

/// Per unit, when its content was last set by a durable global effect (a truncate's holes or
/// content a metadata effect carries): (op, effect index).
fn global_stamps(p: &Persistence, inc: &[bool]) -> BTreeMap<(Ino, u64), (usize, usize)> {
    let mut out = BTreeMap::new();
    for (e, eff) in p.effects.iter().enumerate().filter(|(e, _)| inc[*e]) {
        for a in eff.assigns() {
            if let Assign::Size {
                ino,
                holes_from: Some(h),
                ..
            } = a
            {
                for ch in p
                    .layout
                    .chunks
                    .iter()
                    .filter(|ch| ch.ino == *ino && ch.start() >= *h * BLOCK)
                {
                    out.insert((ch.ino, ch.first), (eff.op, e));
                }
            }
        }
        for (c, _) in &eff.blocks {
            let ch = &p.layout.chunks[*c];
            out.insert((ch.ino, ch.first), (eff.op, e));
        }
    }
    out
}

/// The state a set of durable effects leaves: the latest persisted assignment of every key wins;
/// the units in `garbage` hold garbage.
#[allow(
    clippy::too_many_lines,
    reason = "the brute-force oracle is kept as one straight reading of the rules, independent of the explorer's structure"
)]
fn apply(
    trace: &Trace,
    p: &Persistence,
    inc: &[bool],
    garbage: &BTreeSet<(Ino, u64)>,
) -> CrashState {
    // The unit of atomic writes (a block, or a sector with atomic=sector).
    let unit = p.model.unit();
    let mut entries = trace.initial.entries.clone();
    let mut kinds: BTreeMap<Ino, Kind> = trace
        .initial
        .inodes
        .iter()
        .map(|(i, v)| (*i, v.0))
        .collect();
    let mut sizes: BTreeMap<Ino, u64> = trace
        .initial
        .inodes
        .iter()
        .map(|(i, v)| (*i, v.1))
        .collect();
    // Per (inode, block): its extents relative to the block. Effects are applied in index
    // order, which is op order: the last assignment wins.
    let mut blocks: BTreeMap<(Ino, u64), Vec<BlockPart>> = BTreeMap::new();
    for (ino, (_, _, content)) in &trace.initial.inodes {
        for e in &content.0 {
            for b in e.start / unit..e.end.div_ceil(unit) {
                let v = content
                    .slice(b * unit, (b + 1) * unit)
                    .into_iter()
                    .map(|x| (x.start - b * unit, x.end - b * unit, x.origin))
                    .collect();
                blocks.insert((*ino, b), v);
            }
        }
    }
    for (e, eff) in p.effects.iter().enumerate() {
        if !inc[e] {
            continue;
        }
        match &eff.kind {
            EffectKind::Meta(a) | EffectKind::Writeback(a) => {
                for a in a {
                    match a {
                        Assign::Entry {
                            dir,
                            name,
                            target: Some(t),
                        } => {
                            entries.insert((*dir, name.clone()), *t);
                        }
                        Assign::Entry {
                            dir,
                            name,
                            target: None,
                        } => {
                            entries.remove(&(*dir, name.clone()));
                        }
                        Assign::Init { ino, kind } => {
                            kinds.insert(*ino, *kind);
                            sizes.insert(*ino, 0);
                        }
                        Assign::Size {
                            ino,
                            size,
                            holes_from,
                        } => {
                            sizes.insert(*ino, *size);
                            if let Some(h) = holes_from {
                                for ((i, b), v) in blocks.iter_mut() {
                                    if i == ino && b * unit >= h * BLOCK {
                                        *v = vec![(0, unit, Origin::Zero)];
                                    }
                                }
                                // Blocks never written yet are zero already.
                            }
                        }
                    }
                }
            }
            EffectKind::Block { chunk, value } => {
                let c = &p.layout.chunks[*chunk];
                assert_eq!(c.blocks, 1, "brute force needs the per-block layout");
                blocks.insert((c.ino, c.first), value.0.clone());
            }
        }
        // Content set by the effect itself comes after its metadata (a truncate's holes).
        for (c, v) in &eff.blocks {
            let c = &p.layout.chunks[*c];
            assert_eq!(c.blocks, 1, "brute force needs the per-block layout");
            blocks.insert((c.ino, c.first), v.0.clone());
        }
    }
    for &(ino, b) in garbage {
        blocks.insert((ino, b), vec![(0, unit, Origin::Garbage)]);
    }
    // Walk the tree.
    let mut todo = vec![(Path::root(), 0usize)];
    let mut seen = BTreeSet::new();
    let mut paths = Vec::new();
    while let Some((path, ino)) = todo.pop() {
        if !seen.insert(path.clone()) {
            continue;
        }
        paths.push((path.clone(), ino));
        if kinds.get(&ino) == Some(&Kind::Dir) {
            for ((d, name), child) in &entries {
                if *d == ino && kinds.contains_key(child) {
                    todo.push((path.join(name), *child));
                }
            }
        }
    }
    build_tree(
        &paths,
        |i| kinds[&i] == Kind::Dir,
        |ino| {
            let size = sizes[&ino];
            let mut ext = Vec::new();
            for b in 0..size.div_ceil(unit) {
                let v = blocks
                    .get(&(ino, b))
                    .cloned()
                    .unwrap_or_else(|| vec![(0, unit, Origin::Zero)]);
                for (s, e, o) in v {
                    let (s, e) = (b * unit + s, (b * unit + e).min(size));
                    if s < e {
                        ext.push(Extent {
                            start: s,
                            end: e,
                            origin: o,
                        });
                    }
                }
            }
            (size, exact_segments(ext))
        },
    )
}

/// Compares the explorer (reduced layout) with brute force on `src`, under every model.
/// Compares the explorer with brute force on `src` under every block-unit configuration.
fn check_exact(src: &str) {
    let models: Vec<ModelSpec> = ModelSpec::configurations()
        .into_iter()
        .filter(|m| m.unit() == BLOCK)
        .collect();
    check_exact_under(src, &models);
}

/// Compares the explorer (reduced layout) with brute force on `src`, under `models`.
fn check_exact_under(src: &str, models: &[ModelSpec]) {
    let program = unplug_model::parse::parse(src).unwrap_or_else(|e| panic!("parse: {e:?}\n{src}"));
    let reduced = Analysis::new(&program).unwrap_or_else(|e| panic!("execute: {e:?}\n{src}"));
    let mut per_block = reduced.clone();
    per_block.set_per_block(true);
    for m in models {
        let fast = reduced.run(m);
        let slow = per_block.run(m);
        let brute_p = unplug_model::build(
            m,
            &reduced.trace,
            Layout::per_block(&reduced.trace, m.unit()),
        );
        let cx = EvalContext {
            old: &reduced.old,
            new: &reduced.new,
            data_len: &reduced.trace.data_len,
            judge: None,
            at: 0,
        };
        for k in 0..=program.ops.len() {
            let brute = brute_states(&reduced.trace, &brute_p, k);
            let fast_pt = &fast.exploration.points[k];
            let slow_pt = &slow.exploration.points[k];
            let slow_set: BTreeSet<CrashState> =
                slow_pt.states.iter().map(|s| s.state.clone()).collect();
            assert_eq!(
                slow_set, brute,
                "{m}, crash point {k}: per-block explorer vs brute force\n{src}"
            );
            assert_eq!(
                fast_pt.total.exact(),
                Some(num_bigint::BigUint::from(brute.len())),
                "{m}, crash point {k}: reduced count vs brute force\n{src}"
            );
            // Every witness rebuilds its state (what `unplug explain` does).
            for entry in &fast_pt.states {
                let state = unplug_explorer::replay::state_of(&fast, &entry.witness)
                    .unwrap_or_else(|e| panic!("{m}, crash point {k}: {e}\n{src}"));
                assert_eq!(state, entry.state, "{m}, crash point {k}: witness\n{src}");
            }
            for prop in &program.properties {
                check_cone(&slow, &fast, prop, k, &slow_set, &cx, src);
                let brute_ok = brute.iter().all(|s| eval(&prop.expr, s, &cx));
                let fast_ok = fast_pt
                    .states
                    .iter()
                    .all(|s| eval(&prop.expr, &s.state, &cx));
                assert_eq!(
                    fast_ok, brute_ok,
                    "{m}, crash point {k}, property {}: reduced vs brute force\n{src}",
                    prop.name
                );
            }
        }
    }
}

/// The cone of influence of `prop` (explorer/src/cone.rs) loses nothing the property reads:
/// at crash point `k`, the per-block explorer's states in the cone, seen through the
/// property's reads, are exactly its states without the cone (`all`) seen through them, and the
/// reduced explorer's states in the cone give the same verdict; each state is its whole state
/// (`ModelRun::whole`) as read, and the whole state rebuilds from its witness.
fn check_cone(
    per_block: &ModelRun,
    reduced: &ModelRun,
    prop: &unplug_model::Property,
    k: usize,
    all: &BTreeSet<CrashState>,
    cx: &EvalContext,
    src: &str,
) {
    let Some(reads) = Reads::of(&prop.expr) else {
        return;
    };
    let m = &per_block.model;
    let in_cone = |run: &ModelRun| {
        let point = run
            .points_reading(k..=k, Some(&reads))
            .next()
            .expect("a point");
        for entry in &point.states {
            // Each state is what the property reads of the whole state its witness names,
            // and the whole state's witness rebuilds it.
            let whole = run.whole(entry);
            let state = unplug_explorer::replay::state_of(run, &whole.witness)
                .unwrap_or_else(|e| panic!("{m}, crash point {k}: {e}\n{src}"));
            assert_eq!(
                state, whole.state,
                "{m}, crash point {k}: witness in the cone of {}\n{src}",
                prop.name
            );
            assert_eq!(
                reads.project(&whole.state),
                entry.state,
                "{m}, crash point {k}: a state in the cone of {} is its whole state as read\n{src}",
                prop.name
            );
        }
        point.states
    };
    let coned: BTreeSet<CrashState> = in_cone(per_block)
        .iter()
        .map(|s| reads.project(&s.state))
        .collect();
    let seen: BTreeSet<CrashState> = all.iter().map(|s| reads.project(s)).collect();
    assert_eq!(
        coned, seen,
        "{m}, crash point {k}, property {}: the cone's states vs all states, as the property reads them\n{src}",
        prop.name
    );
    let ok = in_cone(reduced)
        .iter()
        .all(|s| eval(&prop.expr, &s.state, cx));
    assert_eq!(
        ok,
        all.iter().all(|s| eval(&prop.expr, s, cx)),
        "{m}, crash point {k}, property {}: verdict in the cone vs all states\n{src}",
        prop.name
    );
}

/// A directory renamed twice, and properties that read one of its names: a crash state where
/// it has two names shows it at the first (the cone must count the slots of the other name).
/// (The brute force here builds trees without that rule, so only the cone is compared, with the
/// explorer's own states.)
#[test]
fn a_directory_renamed_twice_in_the_cone() {
    let src = "setup\nmkdir d\nf = open d/x create\nwrite f 4KiB OLD\nclose f\nend\nrename d e\nmkdir d\nrename e a\nrename d b\nproperty A: always (exists a/x or not exists a)\nproperty B: always (entries b == {} or not exists b)\nproperty C: always (exists e/x or not exists e)\nproperty D: always (exists d/x or not exists d)\n";
    let program = unplug_model::parse::parse(src).expect("parses");
    let reduced = Analysis::new(&program).expect("executes");
    let mut per_block = reduced.clone();
    per_block.set_per_block(true);
    let cx = EvalContext {
        old: &reduced.old,
        new: &reduced.new,
        data_len: &reduced.trace.data_len,
        judge: None,
        at: 0,
    };
    for m in ModelSpec::configurations() {
        let (fast, slow) = (reduced.run(&m), per_block.run(&m));
        for point in &slow.exploration.points {
            let all: BTreeSet<CrashState> = point.states.iter().map(|s| s.state.clone()).collect();
            for prop in &program.properties {
                check_cone(&slow, &fast, prop, point.at, &all, &cx, src);
            }
        }
    }
}

/// Torn writes (512-byte sectors) and garbage, on writes of a few sectors: the brute force
/// enumerates every sector as its own effect, so the sizes stay small.
#[test]
fn torn_sectors_and_garbage_at_small_size() {
    let torn: Vec<ModelSpec> = ModelSpec::configurations()
        .into_iter()
        .filter(|m| m.unit() < BLOCK)
        .collect();
    assert!(!torn.is_empty());
    for src in [
        "setup\nf = open f create\nwrite f 2KiB OLD\nclose f\nend\nf = open f\npwrite f 512 1KiB NEW\nproperty P: always (f == old or f == new)\n",
        "f = open a create\nwrite f 1536 D\nfsync f\nwrite f 512 D\nproperty P: always (exists a implies a prefix-of D)\n",
    ] {
        check_exact_under(src, &torn);
    }
}

#[test]
fn seed_at_small_size() {
    check_exact(
        "f = open tmp create\nftruncate f 12KiB\nm = mmap f 0 12KiB\nstore m 0 12KiB D\nmsync m sync\nfsync f\nrename tmp final\nfsync f\n\
         property A: always (exists final implies final == D)\nproperty B: after 8: final == D\n",
    );
}

#[test]
fn seed_without_syncs() {
    check_exact("f = open tmp create\nftruncate f 12KiB\nm = mmap f 0 12KiB\nstore m 0 12KiB D\nrename tmp final\nproperty A: always (exists final implies final == D)\n");
}

#[test]
fn partial_msync_of_three_blocks() {
    check_exact("f = open a create\nftruncate f 16KiB\nm = mmap f 0 16KiB\nstore m 0 16KiB D\nmsync m 0 8KiB sync\nproperty P: always (a prefix-of D)\n");
}

#[test]
fn replace_over_old_file() {
    check_exact(
        "setup\nf = open final create\nwrite f 8KiB OLD\nclose f\nend\nf = open tmp create\nwrite f 12KiB NEW\nrename tmp final\n\
         property A: always (final == OLD or final == NEW)\n",
    );
}

#[test]
fn unaligned_appends_and_truncate() {
    check_exact(
        "f = open a create\nwrite f 5000 D\nwrite f 5000 D\nftruncate f 3000\nwrite f 2000 E\nfdatasync f\n\
         property P: always (a prefix-of D or exists a)\n",
    );
}

#[test]
fn overwrite_of_setup_blocks() {
    check_exact(
        "setup\nf = open a create\nwrite f 12KiB A1\nclose f\nend\nf = open a\npwrite f 0 12KiB A2\nunlink a\nproperty P: always (a == A1 or not exists a)\n",
    );
}

/// Deferring (explorer/src/explore/downsets.rs) leaves out of the enumeration an effect whose
/// writes a later included effect overwrites; a truncate's hole is not such a write, even under a
/// later durable size. No model builds this shape today (its durable sizes come with their
/// chunk contents or pull the truncate in), so the persistence is made by hand: a truncate to 0
/// that may be lost, then a durable size of 8KiB without content: the old data or zeros.
#[test]
fn a_hole_is_not_folded_under_a_later_durable_size() {
    let src = "setup\nf = open f create\nwrite f 8KiB OLD\nclose f\nend\n\
               f = open f\nftruncate f 0\nftruncate f 8KiB\n";
    let program = unplug_model::parse::parse(src).expect("parses");
    let a = Analysis::new(&program).expect("executes");
    let ino = a.trace.initial.entries[&(0, "f".to_string())];
    let rule = &unplug_model::rules::OP_ATOMIC;
    let size = |op, size, holes_from| unplug_model::Effect {
        op,
        kind: EffectKind::Meta(vec![Assign::Size {
            ino,
            size,
            holes_from,
        }]),
        name: format!("t{op}"),
        blocks: Vec::new(),
        rule,
        carries: Vec::new(),
    };
    let p = Persistence {
        model: ModelSpec::Posix,
        effects: vec![size(2, 0, Some(0)), size(3, 8192, None)],
        edges: Vec::new(),
        floors: vec![unplug_model::Floor {
            op: 3,
            effects: vec![1],
            rule,
        }],
        layout: Layout::per_block(&a.trace, BLOCK),
        elided: Vec::new(),
    };
    let g = unplug_explorer::graph::Graph::new(&p);
    let point = unplug_explorer::explore::explore_point(
        &a.trace,
        &p,
        &g,
        3,
        unplug_explorer::explore::Limits::default(),
    );
    let found: BTreeSet<CrashState> = point.states.iter().map(|s| s.state.clone()).collect();
    let brute = brute_states(&a.trace, &p, 3);
    assert_eq!(brute.len(), 2, "old data or zeros");
    assert_eq!(found, brute);
}

/// A small op vocabulary over a few files for generated programs: writes, truncates, mmap
/// stores and msync, syncs, namespace ops and a setup file.
fn op_strategy() -> impl Strategy<Value = String> {
    let size = prop_oneof![
        Just("0"),
        Just("2KiB"),
        Just("4KiB"),
        Just("6KiB"),
        Just("8KiB")
    ];
    let handle = prop_oneof![Just("f"), Just("g"), Just("h")];
    let data = prop_oneof![Just("D"), Just("E")];
    let path = prop_oneof![Just("a"), Just("b"), Just("c"), Just("old"), Just("d/x")];
    prop_oneof![
        (handle.clone(), size.clone(), data.clone())
            .prop_map(|(h, s, d)| format!("write {h} {s} {d}")),
        (handle.clone(), size.clone(), size.clone(), data.clone())
            .prop_map(|(h, o, s, d)| format!("pwrite {h} {o} {s} {d}")),
        (handle.clone(), size.clone()).prop_map(|(h, s)| format!("ftruncate {h} {s}")),
        handle.clone().prop_map(|h| format!("fsync {h}")),
        handle.clone().prop_map(|h| format!("fdatasync {h}")),
        handle.clone().prop_map(|h| format!("close {h}")),
        (handle.clone(), path.clone()).prop_map(|(h, p)| format!("{h} = open {p} create")),
        (handle.clone(), path.clone()).prop_map(|(h, p)| format!("{h} = open {p} trunc")),
        handle.clone().prop_map(|h| format!("m = mmap {h} 0 8KiB")),
        (size.clone(), data).prop_map(|(s, d)| format!("store m 0 {s} {d}")),
        Just("msync m sync".to_string()),
        Just("msync m 0 4KiB sync".to_string()),
        Just("munmap m".to_string()),
        Just("h = open d dir".to_string()),
        (path.clone(), path.clone()).prop_map(|(a, b)| format!("rename {a} {b}")),
        (path.clone(), path.clone()).prop_map(|(a, b)| format!("link {a} {b}")),
        path.prop_map(|p| format!("unlink {p}")),
        Just("mkdir d".to_string()),
        Just("rmdir d".to_string()),
        Just("sync".to_string()),
    ]
}

/// Builds a valid program from generated ops: each op is kept only if the program with it still
/// executes (so a rename of a missing file is dropped rather than making the program invalid).
fn valid_program(ops: &[String]) -> String {
    let head = "data D 16KiB\ndata E 16KiB\nsetup\nf = open old create\nwrite f 4KiB OLD\nclose f\nend\nf = open a create\ng = open b create\n";
    let props = "property P: always (exists a implies a prefix-of D)\nproperty Q: after 2: exists b\nproperty R: always (old == OLD or not exists old)\nproperty S: always (not exists d or entries d == {x})\n";
    let mut body = String::new();
    for o in ops {
        let candidate = format!("{head}{body}{o}\n");
        let ok = unplug_model::parse::parse(&candidate)
            .ok()
            .is_some_and(|p| Analysis::new(&p).is_ok());
        if ok {
            body.push_str(o);
            body.push('\n');
        }
    }
    format!("{head}{body}{props}")
}

proptest! {
    // A fixed seed keeps CI deterministic; PROPTEST_CASES=N (default 256) runs more locally.
    #![proptest_config(ProptestConfig {
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x756e706c7567),
        ..ProptestConfig::default()
    })]
    /// Generated programs: the reduced explorer agrees with brute force.
    #[test]
    fn reduction_is_exact_on_generated_programs(ops in proptest::collection::vec(op_strategy(), 2..10)) {
        check_exact(&valid_program(&ops));
    }
}

/// The crash states at crash point `k` of `src` (under every configuration) are those of the
/// program cut after op `k`+1: no later op changes them. Sync analysis relies on it (a sync
/// inserted after the first violating crash point cannot repair it: `syncs/repairs.rs`).
fn check_causal(src: &str) {
    let program = unplug_model::parse::parse(src).unwrap_or_else(|e| panic!("parse: {e:?}\n{src}"));
    // Per-block layouts: a class's shape depends on the layout, which depends on every op.
    let mut whole = Analysis::new(&program).unwrap_or_else(|e| panic!("execute: {e:?}\n{src}"));
    whole.set_per_block(true);
    let n = program.ops.len();
    // Not btrfs: its rule btrfs.append-atomic looks ahead (`btrfs_sole_writer` asks whether a
    // later write of the file comes before its size changes), so an append in flight can
    // leave its size without its data at a crash point before that later write is issued
    // (`g = open b create; write g 2KiB D; pwrite g 0 2KiB D`, crash point 2). A known
    // defect of the model, to fix by giving the later write its own size effect.
    let models = ModelSpec::configurations()
        .into_iter()
        .filter(|m| m.unit() == BLOCK && *m != ModelSpec::Btrfs);
    for m in models {
        let run = whole.prepare(&m);
        for k in 0..n {
            let mut cut = program.clone();
            cut.ops.truncate(k + 1);
            cut.properties.clear();
            let mut a = Analysis::new(&cut).unwrap_or_else(|e| panic!("execute: {e:?}\n{src}"));
            a.set_per_block(true);
            let short = a.prepare(&m);
            let states = |r: &ModelRun| -> BTreeSet<CrashState> {
                let point = r.points(k..=k).next().expect("a crash point");
                point.states.into_iter().map(|s| s.state).collect()
            };
            assert_eq!(
                states(&run),
                states(&short),
                "{m}, crash point {k}: the ops after op {} change its states\n{src}",
                k + 1
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x636175736c),
        cases: 96,
        ..ProptestConfig::default()
    })]
    /// Generated programs: what a crash leaves does not depend on the ops after it.
    #[test]
    fn crash_states_do_not_depend_on_later_ops(ops in proptest::collection::vec(op_strategy(), 2..10)) {
        check_causal(&valid_program(&ops));
    }
}
