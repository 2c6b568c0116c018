//! Large programs stay bounded: offsets near the largest file size explore without overflow
//! under every model, and what the explorer builds does not grow with the bytes written.

use unplug_explorer::Analysis;
use unplug_model::{parse::parse, ModelSpec};

fn analysis(src: &str) -> Analysis {
    Analysis::new(&parse(src).expect("parses")).expect("runs")
}

/// A write at 1 EiB and a truncate to the largest file size: every model explores every crash
/// point (block arithmetic near 2^63 does not overflow), and the property holds where it must.
#[test]
fn offsets_near_the_largest_file_size_explore_under_every_model() {
    let a = analysis(
        "f = open a create\n\
         pwrite f 1048576TiB 4KiB D\n\
         fsync f\n\
         ftruncate f 9223372036854775807\n\
         property P: after 3: exists a implies size a >= 1048576TiB\n",
    );
    for m in ModelSpec::configurations() {
        let run = a.run(&m);
        assert_eq!(run.exploration.points.len(), 5, "{m}");
        assert!(run.check()[0].holds, "{m}");
    }
}

/// Under posix an extending write's size may persist at every page boundary it crosses; past
/// 16 MiB of steps they are elided: a 1 TiB write costs a handful of effects, the crash points
/// where the steps matter are marked unproven, and those after the fsync are exact.
#[test]
fn a_terabyte_write_costs_no_more_than_a_small_one() {
    let a = analysis(
        "f = open a create\n\
         write f 1TiB D\n\
         fsync f\n\
         property P: after 3: exists a implies a == D\n",
    );
    let run = a.run(&ModelSpec::Posix);
    assert!(
        run.persistence.effects.len() < 10,
        "{}",
        run.persistence.effects.len()
    );
    assert_eq!(run.persistence.elided.len(), 1);
    let hit: Vec<bool> = run.exploration.points.iter().map(|p| p.bound_hit).collect();
    assert_eq!(hit, [false, true, true, false]);
    assert!(run.check()[0].holds);
    assert!(a.holds(&ModelSpec::Posix, &a.trace, &[], None)[0]);
    // 8 MiB (the seed's size) keeps every step.
    let small = analysis("f = open a create\nwrite f 8MiB D\nfsync f\n");
    let run = small.run(&ModelSpec::Posix);
    assert!(run.persistence.elided.is_empty());
    assert!(run.exploration.points.iter().all(|p| !p.bound_hit));
}

/// Every configuration, ext4 without delalloc included (one size effect per page of a write,
/// ext4.page-handles: a 4 TiB write made 2^30 of them and 24 GB before it was elided, found by
/// the `explore` fuzz target): a terabyte write costs a handful of effects.
#[test]
fn a_terabyte_write_is_cheap_under_every_configuration() {
    let a = analysis(
        "f = open a create\n\
         write f 4TiB D\n\
         fsync f\n\
         property P: after 3: exists a implies a == D\n",
    );
    for m in ModelSpec::configurations() {
        let run = a.run(&m);
        let n = run.persistence.effects.len();
        assert!(n < 16, "{m}: {n} effects");
        assert!(run.check()[0].holds, "{m}");
    }
}

/// A program that syncs after every write: the effects a later sync overwrote are deferred
/// (explorer/src/explore/downsets.rs), so each crash point visits a few sets of metadata
/// effects under every configuration, whatever the length. Without deferring, btrfs's append
/// completions (`wK`, unordered, each overwritten by the next fsync's log) doubled them with
/// every write: crash point 40 of this shape hit the bound of 2^20.
#[test]
fn a_synced_program_visits_few_downsets_per_crash_point() {
    let mut src = String::from("f = open a create\ng = open b create\n");
    for i in 0..100 {
        let h = if i % 2 == 0 { "f" } else { "g" };
        src.push_str(&format!(
            "pwrite {h} {} 4KiB D\nfsync {h}\n",
            (i / 2) * 4096
        ));
    }
    src.push_str("property P: after 202: exists a and exists b\n");
    let mut a = analysis(&src);
    // Without deferring, btrfs's point 40 alone passes this bound.
    a.limits.max_downsets = 4096;
    for m in ModelSpec::configurations() {
        let t = unplug_explorer::perf::throughput(&a, &m, std::time::Duration::ZERO);
        assert!(!t.bound_hit, "{m}");
        assert!(
            t.downsets <= 16 * t.points,
            "{m}: {} downsets over {} points",
            t.downsets,
            t.points
        );
    }
}

/// Unsynced overwrites of one block: each version is a state of its own. The options of a
/// chunk were the subsets of its first 20 candidates only, so 25 overwrites showed 20 of their
/// 26 states without saying so; past 64 versions (or 2^16 combinations) the crash point is now
/// marked unproven.
#[test]
fn every_version_of_a_block_is_a_state_or_the_point_is_unproven() {
    let program = |n: usize| {
        let mut src = String::from(
            "data D 1MiB\nsetup\nf = open a create\nwrite f 4KiB D\nclose f\nend\nf = open a\n",
        );
        for i in 1..=n {
            src.push_str(&format!("pwrite f 0 4KiB D at {}\n", i * 4096));
        }
        analysis(&src)
    };
    let a = program(25);
    let run = a.run(&ModelSpec::Posix);
    let last = &run.exploration.points[25];
    assert_eq!((last.states.len(), last.bound_hit), (26, false));
    let a = program(70);
    let run = a.run(&ModelSpec::Posix);
    let last = &run.exploration.points[70];
    assert_eq!((last.states.len(), last.bound_hit), (64, true));
    assert!(!run.exploration.points[60].bound_hit);
    // A block the file's size cuts (2 KiB of 4): its values are clipped one by one.
    let mut src = String::from(
        "data D 1MiB\nsetup\nf = open a create\nwrite f 2KiB D\nclose f\nend\nf = open a\n",
    );
    for i in 1..=70 {
        src.push_str(&format!("pwrite f 0 2KiB D at {}\n", i * 4096));
    }
    let a = analysis(&src);
    let run = a.run(&ModelSpec::Posix);
    let last = &run.exploration.points[70];
    assert_eq!((last.states.len(), last.bound_hit), (64, true));
}

/// Unsynced appends to one file: under ext4 each append's size update is a metadata effect the
/// next one overwrites, so the walk (explorer/src/explore/downsets.rs) defers every one below
/// the latest included: n + 1 downsets at the last crash point, not 2^n. Under xfs each also
/// writes its block, so only a property that reads no content (the cone leaves the contents
/// out) makes them deferrable. Before the walk deferred overwritten effects, the last crash
/// point of 12 appends visited 2^12 downsets.
#[test]
fn unsynced_appends_to_one_file_give_linearly_many_downsets() {
    let n = 12;
    let mut src = String::from("setup\nf = open log create\nclose f\nend\nh = open log append\n");
    src += &"write h 4KiB D\n".repeat(n);
    src += "property P: always (size log <= 49152)\n";
    let a = analysis(&src);
    let ext4 = ModelSpec::Ext4(Default::default());
    let t = unplug_explorer::perf::throughput(&a, &ext4, std::time::Duration::ZERO);
    assert!(!t.bound_hit);
    // Per crash point k: at most k + 2 downsets (none, or the latest size included).
    assert!(
        t.downsets <= (n + 2) * (n + 3) / 2,
        "{} downsets over {} points",
        t.downsets,
        t.points
    );
    // With 20 appends, every model answers the size property exactly (no bound hit), the
    // content of the log (2^20 combinations at the end) left out of its cone.
    let mut src = String::from("setup\nf = open log create\nclose f\nend\nh = open log append\n");
    src += &"write h 4KiB D\n".repeat(20);
    src += "property P: always (size log <= 81920)\n";
    let a = analysis(&src);
    for m in ModelSpec::all() {
        let r = a.prepare(&m).check_in_cone(0);
        assert!(r.holds && r.unproven.is_empty(), "{m}");
    }
}

/// "Rests on" switches each rule off and checks again; with `seq.prefix` off, 20 appends are
/// unordered and the property (true of every state) would need every one of 2^20 states. The
/// mutation's bound cuts it short: the rule is reported as not settled, not as load-bearing
/// (a bound hit used to count as a failure).
#[test]
fn a_mutation_cut_short_is_not_settled_rather_than_load_bearing() {
    let mut src = String::from("setup\nf = open log create\nclose f\nend\nh = open log append\n");
    src += &"write h 4KiB D\n".repeat(20);
    src += "property P: always (size log <= 81920 and exists log)\n";
    let a = analysis(&src);
    let g = unplug_explorer::guarantee::guarantee(&a, &ModelSpec::Seq, 0).expect("holds");
    let ids = |v: &[&unplug_model::Rule]| v.iter().map(|r| r.id).collect::<Vec<_>>();
    assert!(!ids(&g.load_bearing).contains(&"seq.prefix"), "{g:?}");
    assert!(
        ids(&g.undetermined).contains(&"seq.prefix") || g.basis == unplug_model::Basis::Posix,
        "{g:?}"
    );
}
