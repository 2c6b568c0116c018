//! Tests of the search: dependencies, variants as text, the cheapest treatment, reorderings
//! and breaking programs.

use super::*;

fn analysis(src: &str) -> Analysis {
    Analysis::new(&unplug_model::parse::parse(src).expect("parses")).expect("executes")
}

const SEED: &str = include_str!("../../../examples/mmap-rename.up");

#[test]
fn dependencies_follow_handles_paths_and_inodes() {
    let a = analysis(
        "f = open a create\ng = open b create\nwrite f 4KiB D\nwrite g 4KiB E\nfsync f\nfsync g\n\
         property P: always (exists a implies a == D)\n",
    );
    let d = dependencies(&a.program, &a.trace);
    // Both creates write entries of the root directory.
    assert!(d.contains(&(1, 2)));
    // The write to a needs its open; the fsync of a needs the write.
    assert!(d.contains(&(1, 3)) && d.contains(&(3, 5)));
    // Writes to different files, the fsync of one file and the write of the other: free.
    assert!(!d.contains(&(3, 4)));
    assert!(!d.contains(&(4, 5)));
    assert!(!d.contains(&(5, 6)));
    assert!(respects(&[1, 2, 4, 3, 6, 5], &d));
    assert!(!respects(&[1, 2, 5, 3, 4, 6], &d));
}

#[test]
fn the_seed_is_a_chain() {
    let a = analysis(SEED);
    let d = dependencies(&a.program, &a.trace);
    for k in 1..8 {
        assert!(d.contains(&(k, k + 1)), "{k} -> {}", k + 1);
    }
    let (orders, exhaustive) = candidate_orders(8, &d);
    assert!(orders.is_empty() && exhaustive);
    // sync and syncfs depend on everything.
    let b = analysis("f = open a create\ng = open b create\nsync\nproperty P: always exists a\n");
    assert!(dependencies(&b.program, &b.trace).contains(&(1, 3)));
}

#[test]
fn after_n_follows_its_op() {
    let e = Edit {
        order: vec![1, 2, 3, 4, 7],
        datasync: BTreeSet::new(),
    };
    // Op 8 dropped: the property holds from after op 7, now op 5.
    assert_eq!(e.threshold(8), 5);
    assert_eq!(e.threshold(7), 5);
    assert_eq!(e.threshold(2), 2);
    let moved = Edit {
        order: vec![1, 3, 2],
        datasync: BTreeSet::new(),
    };
    assert_eq!(moved.threshold(2), 3);
    assert_eq!(moved.threshold(3), 2);
    assert_eq!(Edit::identity(3).threshold(0), 0);

    let a = analysis(SEED);
    let src = e.source(&a, &["h".into()]);
    assert_eq!(
        src,
        "# h\ndata D 8MiB\nf = open tmp create rdwr\nftruncate f 8MiB\nm = mmap f 0 8MiB\n\
         store m 0 8MiB D\npublish: rename tmp final\n\
         property A: always (exists final implies final == D)\nproperty B: after 5: final == D\n"
    );
    // The program as written comes back as itself.
    let same = Edit::identity(8).load(&a).expect("loads");
    let shape = |p: &Program| -> Vec<(OpKind, Option<String>, String)> {
        p.ops
            .iter()
            .map(|o| (o.kind.clone(), o.label.clone(), o.text.clone()))
            .collect()
    };
    assert_eq!(shape(&same.program), shape(&a.program));
    assert_eq!(
        same.program.properties[1].when,
        a.program.properties[1].when
    );
    // A weakened fsync is written as fdatasync.
    let w = Edit {
        order: (1..=8).collect(),
        datasync: [6].into(),
    };
    assert!(w.source(&a, &[]).contains("\nfdatasync f\npublish:"));
}

#[test]
fn cheapest_on_a_small_program() {
    // Checked by hand: under ext4, B needs the file's data and its name durable after op 6.
    // The fsync of the directory (op 6) commits the journal (with the create) but the data
    // needs op 3 or a full fsync; seq needs nothing but the last sync to make B durable.
    let a = analysis(
        "f = open a create\nwrite f 4KiB D\nfsync f\nd = open . dir\nfsync d\nfsync f\n\
         property B: after 6: a == D\n",
    );
    let seq = cheapest(&a, &ModelSpec::Seq, &[0], None).expect("holds as written");
    assert!(seq.exhaustive);
    // Seq: any one sync after the write keeps B; the cheapest is an fdatasync (6).
    assert_eq!(seq.cost, 6);
    assert_eq!(seq.written_cost, 10 + 20 + 10);
    let fdatasyncs: Vec<Vec<(usize, Treatment)>> = seq
        .variants
        .iter()
        .map(|v| v.iter().map(|c| (c.op.get(), c.treatment)).collect())
        .collect();
    assert_eq!(
        fdatasyncs,
        [
            vec![
                (3, Treatment::Fdatasync),
                (5, Treatment::Drop),
                (6, Treatment::Drop)
            ],
            vec![
                (3, Treatment::Drop),
                (5, Treatment::Drop),
                (6, Treatment::Fdatasync)
            ],
        ]
    );
    // Under posix the directory fsync is needed for the name, and one file sync for the data.
    let posix = cheapest(&a, &ModelSpec::Posix, &[0], None).expect("holds as written");
    assert_eq!(posix.cost, 20 + 6);
    assert!(posix.variants.iter().all(|v| v
        .iter()
        .any(|c| c.op.get() == 5 && c.treatment == Treatment::Keep)));
    // Nothing is cheaper than the cheapest.
    assert!(cheapest(&a, &ModelSpec::Posix, &[0], Some(26)).is_none());
}

#[test]
fn a_declared_length_counts_when_a_write_is_dropped() {
    // Variants declare every data with its length as written, so that dropping the write
    // leaves `a == D` false (an empty file is not 4 KiB of D): the declared length wins
    // over what the remaining writes use (volatile.rs once kept only the latter).
    let a = analysis("data D 4KiB\nf = open a create\nfsync f\nproperty P: after 2: a == D\n");
    assert_eq!(a.holds(&ModelSpec::Seq, &a.trace, &[], None), [false]);
    assert_eq!(a.trace.data_len["D"], 4096);
}

#[test]
fn greedy_past_ten_syncs() {
    // Eleven fsyncs after one write: under seq any one of them keeps P. Greedy drops them
    // one by one (lowest op first) and weakens the last to fdatasync.
    let mut src = "f = open a create\nwrite f 4KiB D\n".to_string();
    src.push_str(&"fsync f\n".repeat(11));
    src.push_str("property P: after 13: a == D\n");
    let a = analysis(&src);
    let c = cheapest(&a, &ModelSpec::Seq, &[0], None).expect("holds as written");
    assert!(!c.exhaustive);
    assert_eq!((c.cost, c.written_cost), (6, 110));
    let kept: Vec<(usize, Treatment)> = c.variants[0]
        .iter()
        .filter(|s| s.treatment != Treatment::Drop)
        .map(|s| (s.op.get(), s.treatment))
        .collect();
    assert_eq!(kept, [(13, Treatment::Fdatasync)]);
}

#[test]
fn a_reordering_lets_a_sync_go() {
    // Under seq a sync makes the whole prefix durable. As written, P needs op 3 and Q op 6;
    // with b's open and write moved before op 3 (they touch neither f nor a), op 3 covers
    // both and op 6 can go.
    let a = analysis(
        "f = open a create\nwrite f 4KiB D\nfsync f\ng = open b create\nwrite g 4KiB E\n\
         fsync g\nproperty P: after 3: a == D\nproperty Q: after 6: b == E\n",
    );
    let r = search(&a, &ModelSpec::Seq, &Options::default());
    assert_eq!(r.cheapest.as_ref().map(|c| c.cost), Some(12));
    assert!(r.reorders.exhaustive);
    let best = &r.reorders.better[0];
    assert_eq!(best.cheapest.cost, 6);
    assert_eq!(best.order, [1, 2, 4, 5, 3, 6]);
    let kept: Vec<(usize, Treatment)> = best.cheapest.variants[0]
        .iter()
        .map(|c| (c.op.get(), c.treatment))
        .collect();
    assert_eq!(kept, [(3, Treatment::Fdatasync), (6, Treatment::Drop)]);
}

#[test]
fn the_seed_under_ext4() {
    let a = analysis(SEED);
    let r = search(&a, &ModelSpec::parse("ext4").unwrap(), &Options::default());
    assert_eq!(r.holds, [true, true]);
    let c = r.cheapest.expect("both hold");
    let sets: Vec<Vec<(usize, Treatment)>> = c
        .variants
        .iter()
        .map(|v| v.iter().map(|c| (c.op.get(), c.treatment)).collect())
        .collect();
    // {5, 8} or {6, 8}, op 6 as an fdatasync; op 8 stays an fsync on ext4.
    assert_eq!(
        sets,
        [
            vec![
                (5, Treatment::Keep),
                (6, Treatment::Drop),
                (8, Treatment::Keep)
            ],
            vec![
                (5, Treatment::Drop),
                (6, Treatment::Fdatasync),
                (8, Treatment::Keep)
            ],
        ]
    );
    assert_eq!((c.cost, c.written_cost), (16, 26));
    let restores: Vec<Vec<usize>> = r
        .breaking
        .iter()
        .map(|b| match b {
            Breaking::Found(b) => b.restores.clone(),
            _ => vec![],
        })
        .collect();
    // A needs op 5 or op 6; B needs op 8.
    assert_eq!(restores, [vec![5, 6], vec![8]]);
    for b in &r.breaking {
        let Breaking::Found(b) = b else {
            panic!("a breaking program")
        };
        // Open, ftruncate, mmap, store and rename are all it takes.
        assert_eq!(b.edit.order, [1, 2, 3, 4, 7]);
        assert_eq!(b.dropped_syncs, [5, 6, 8]);
        assert!(b.counterexample.is_some());
    }
}
