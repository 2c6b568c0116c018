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
