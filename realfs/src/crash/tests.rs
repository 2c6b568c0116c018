use super::*;
use crate::wlog::Entry;
use std::fs::File;
use std::os::unix::fs::FileExt;
use Event::{Flush, Mark};

fn w(entry: usize) -> Event {
    Event::Write { entry, fua: false }
}
fn fua(entry: usize) -> Event {
    Event::Write { entry, fua: true }
}

/// A log of `n` writes, entry `i` at sector `i` of `sectors[i]` sectors filled with `i + 1`.
fn log_of(sectors: &[u64]) -> Log {
    Log {
        sector_size: 512,
        entries: sectors
            .iter()
            .enumerate()
            .map(|(i, &s)| Entry {
                sector: 8 * i as u64,
                sectors: s,
                flags: 0,
                data: vec![i as u8 + 1; s as usize * 512],
            })
            .collect(),
        ignored_tail_bytes: 0,
    }
}

/// The plan as one line per image: `writes lo..=hi kind`.
fn show(events: &[Event], last_op: usize, opts: &PlanOptions) -> Vec<String> {
    let log = log_of(&[4; 64]);
    plan(&log, events, last_op, opts)
        .iter()
        .map(|img| {
            let kind = match img.kind {
                ImageKind::Prefix => "P".to_string(),
                ImageKind::Subset => "S".to_string(),
                ImageKind::Torn {
                    entry,
                    sectors_kept,
                } => format!("T{entry}:{sectors_kept}"),
            };
            format!("{:?} {}..={} {kind}", img.writes, img.lo, img.hi)
        })
        .collect()
}

fn check(events: &[Event], last_op: usize, expect: &[&str]) {
    assert_eq!(show(events, last_op, &PlanOptions::default()), expect);
}

#[test]
fn flushes_make_writes_durable() {
    // op 1 writes 0 and 1 and flushes; op 2 writes 2 and flushes.
    check(
        &[Mark(0), w(0), w(1), Flush, Mark(1), w(2), Flush, Mark(2)],
        2,
        &[
            "[] 0..=1 P",
            "[0] 0..=1 S",
            "[1] 0..=1 S",
            "[0, 1] 0..=2 P",
            "[0, 1, 2] 1..=2 P",
        ],
    );
}

#[test]
fn windows_follow_the_marks() {
    // Writes 0 and 1 complete during op 2 and 3; the flush during op 4.
    check(
        &[
            Mark(0),
            Mark(1),
            w(0),
            Mark(2),
            w(1),
            Mark(3),
            Flush,
            Mark(4),
        ],
        4,
        &["[] 0..=4 P", "[0] 1..=4 S", "[1] 2..=4 S", "[0, 1] 2..=4 P"],
    );
    // Same, with the program's last op bounding the window.
    check(
        &[Mark(0), w(0), Flush, Mark(1), w(1), Mark(2)],
        2,
        &["[] 0..=1 P", "[0] 0..=2 P", "[0, 1] 1..=2 P"],
    );
}

#[test]
fn fua_writes_are_durable_on_completion() {
    // 1 is FUA: no state holds 2 without 1, and a state without 1 is from before it.
    check(
        &[Mark(0), w(0), Mark(1), fua(1), Mark(2), w(2), Mark(3)],
        3,
        &[
            "[] 0..=2 P",
            "[0] 0..=2 S",
            "[1] 1..=3 S",
            "[0, 1] 1..=3 S",
            "[1, 2] 2..=3 S",
            "[0, 1, 2] 2..=3 P",
        ],
    );
}

#[test]
fn nothing_before_the_first_mark() {
    // An image whose crash would have to precede every mark is not produced.
    check(
        &[w(0), Flush, Mark(0), w(1)],
        1,
        &["[0] 0..=1 P", "[0, 1] 0..=1 P"],
    );
    check(&[w(0), Mark(0)], 0, &["[] 0..=0 P", "[0] 0..=0 P"]);
    check(&[w(0), Flush], 0, &[]);
}

#[test]
fn torn_writes() {
    let opts = PlanOptions {
        torn: true,
        ..PlanOptions::default()
    };
    let log = log_of(&[1, 4, 3]);
    let events = [Mark(0), w(0), w(1), w(2), Mark(1)];
    let torn: Vec<_> = plan(&log, &events, 1, &opts)
        .into_iter()
        .filter(|i| matches!(i.kind, ImageKind::Torn { .. }))
        .map(|i| (i.writes, i.kind))
        .collect();
    let t = |entry, sectors_kept| ImageKind::Torn {
        entry,
        sectors_kept,
    };
    assert_eq!(
        torn,
        vec![
            (vec![0, 1], t(1, 1)),
            (vec![0, 1], t(1, 2)),
            (vec![0, 1, 2], t(2, 1)),
        ]
    );
}

#[test]
fn exhaustive_counts() {
    // 10 writes in one interval: 2^10 subsets; 3 + 2 in two: 8 + 4 - 1 shared.
    let mut ev = vec![Mark(0)];
    ev.extend((0..10).map(w));
    ev.push(Mark(1));
    assert_eq!(
        plan(&log_of(&[1; 10]), &ev, 1, &PlanOptions::default()).len(),
        1024
    );
    let ev = [Mark(0), w(0), w(1), w(2), Flush, w(3), w(4), Mark(1)];
    assert_eq!(
        plan(&log_of(&[1; 5]), &ev, 1, &PlanOptions::default()).len(),
        11
    );
}

#[test]
fn sampled_intervals() {
    let mut ev = vec![Mark(0)];
    ev.extend((0..30).map(w));
    ev.insert(10, fua(30));
    ev.push(Mark(1));
    let opts = PlanOptions {
        samples: 50,
        seed: 7,
        ..PlanOptions::default()
    };
    let log = log_of(&[1; 31]);
    let a = plan(&log, &ev, 1, &opts);
    assert_eq!(a, plan(&log, &ev, 1, &opts), "deterministic");
    let other = plan(
        &log,
        &ev,
        1,
        &PlanOptions {
            seed: 8,
            ..opts.clone()
        },
    );
    assert_ne!(a, other, "the seed matters");
    // Prefixes (32), drop-one and keep-one: at most 32 + 62 + 50.
    assert!(a.len() > 32 + 40 && a.len() <= 32 + 62 + 50, "{}", a.len());
    let sets: std::collections::HashSet<_> = a.iter().map(|i| i.writes.clone()).collect();
    assert_eq!(sets.len(), a.len(), "deduplicated");
    for i in 0..30 {
        assert!(sets.contains(&vec![i]) || i >= 9, "only {i} kept");
    }
    // Every image respects the FUA write (entry 30, completed after writes 0..=8).
    for img in &a {
        let after = img.writes.iter().any(|&e| (9..30).contains(&e));
        assert!(!after || img.writes.contains(&30), "{:?}", img.writes);
    }
    // Keeping only write 20 keeps the FUA write too.
    assert!(sets.contains(&vec![30, 20]));
}

#[test]
fn max_images_keeps_prefixes_first() {
    let ev = [Mark(0), w(0), w(1), w(2), Flush, Mark(1), w(3), Mark(2)];
    let opts = PlanOptions {
        max_images: Some(4),
        ..PlanOptions::default()
    };
    let log = log_of(&[1; 4]);
    let all = plan(&log, &ev, 2, &PlanOptions::default());
    let capped = plan(&log, &ev, 2, &opts);
    assert_eq!(capped.len(), 4);
    let prefixes: Vec<_> = all.iter().filter(|i| i.kind == ImageKind::Prefix).collect();
    assert_eq!(prefixes.len(), 3);
    for p in prefixes {
        assert!(capped.contains(p));
    }
    // Plan order is kept.
    let pos: Vec<_> = capped
        .iter()
        .map(|c| all.iter().position(|a| a == c).unwrap())
        .collect();
    assert!(pos.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn write_image_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base");
    // A sparse base: data at 0..4096 and at 1 MiB, holes elsewhere.
    let f = File::create(&base).unwrap();
    f.set_len(4 << 20).unwrap();
    f.write_all_at(&[0x11; 4096], 0).unwrap();
    f.write_all_at(&[0x22; 8192], 1 << 20).unwrap();
    // Allocated zeros are not held.
    f.write_all_at(&[0; 8192], 3 << 20).unwrap();
    drop(f);
    assert_eq!(Base::open(&base).unwrap().held_bytes(), 4096 + 8192);
    let mut log = log_of(&[2, 4]);
    log.entries[0].sector = 4; // bytes 2048..3072 over base data
    log.entries[1].sector = 4096; // 2 MiB, into a hole
    log.entries.push(Entry {
        sector: 0,
        sectors: 8,
        flags: crate::wlog::DISCARD,
        data: vec![],
    });
    let out = dir.path().join("img");
    let img = CrashImage {
        writes: vec![0, 1, 2],
        lo: 0,
        hi: 0,
        kind: ImageKind::Torn {
            entry: 1,
            sectors_kept: 1,
        },
    };
    write_image(&base, &log, &img, &out).unwrap();
    let got = std::fs::read(&out).unwrap();
    let mut want = vec![0u8; 4 << 20];
    want[..4096].fill(0x11);
    want[1 << 20..(1 << 20) + 8192].fill(0x22);
    want[2048..3072].fill(1);
    want[2 << 20..(2 << 20) + 512].fill(2);
    assert_eq!(got.len(), want.len());
    assert!(got == want, "image bytes differ");
    // Sparse: far fewer blocks than the 4 MiB length.
    use std::os::unix::fs::MetadataExt;
    assert!(std::fs::metadata(&out).unwrap().blocks() * 512 < 1 << 20);
    // Bad entries are errors.
    let bad = CrashImage {
        writes: vec![9],
        ..img.clone()
    };
    assert!(write_image(&base, &log, &bad, &out).is_err());
    log.entries.push(Entry {
        sector: 0,
        sectors: 0,
        flags: crate::wlog::FLUSH,
        data: vec![],
    });
    let flush = CrashImage {
        writes: vec![3],
        ..img
    };
    assert!(write_image(&base, &log, &flush, &out).is_err());
}

#[test]
fn a_step_of_several_ops_spans_their_crash_points() {
    // `unplug real --exec`: one traced call became ops 1 to 3 (marks 0 then 3), the next op 4.
    let plan = show(
        &[Mark(0), w(0), Flush, Mark(3), w(1), Flush, Mark(4)],
        4,
        &PlanOptions::default(),
    );
    // A crash before the call's write completed may be after any of its three ops returned
    // (one mark per op would have said 0..=1 here).
    assert_eq!(plan, vec!["[] 0..=3 P", "[0] 0..=4 P", "[0, 1] 3..=4 P"]);
    // One op per mark: the window ends at the next op, as before.
    let plan = show(&[Mark(0), w(0), Flush, Mark(1)], 1, &PlanOptions::default());
    assert_eq!(plan, vec!["[] 0..=1 P", "[0] 0..=1 P"]);
}
