//! Every rule matters: switching one off changes some outcome of the litmus corpus.
//!
//! For each model configuration and each of its rules, the corpus is explored with the rule
//! switched off (`Analysis::set_dropped_rule`: its edges and floors are not made, and the code it gates
//! behaves as if it did not hold); some program must then get a different distinct-state count
//! at some crash point or a different property verdict. A rule that no litmus program exercises
//! fails the test: it would be a rule nobody checks. Rules that describe the absence of an
//! ordering, or why two configurations behave alike, have nothing to switch off; the litmus
//! expectations cover them (see DESCRIPTIVE).

use unplug_explorer::Analysis;
use unplug_model::persist::{btrfs, xfs};
use unplug_model::{rules, ModelSpec, Program};

/// Rules that add no edge or floor: they say what is *not* ordered, or what the program means.
/// Each is shown by litmus programs whose states only exist because of it.
const DESCRIPTIVE: &[&str] = &[
    rules::SETUP_DURABLE.id,
    rules::OP_ATOMIC.id,
    rules::POSIX_UNORDERED.id,
    rules::MS_ASYNC_NOOP.id,
    rules::EXT4_ORDERED.id,
    rules::EXT4_OVERWRITE.id,
    // Shown by `# expect ext4:data=writeback:` and `# expect ext4:fast_commit:` lines that
    // match the default's.
    rules::EXT4_WRITEBACK_DELALLOC.id,
    rules::EXT4_FAST_COMMIT.id,
    // Its floor extension is carried by the ext4.delalloc edges of the data it syncs.
    rules::EXT4_FSYNC_ALLOC.id,
    // xfs: what is not ordered (no stale data, overwrites, truncate-down close, no rename
    // flush) and what an op's own transaction holds; shown by the `# expect xfs:` lines.
    xfs::XFS_UNWRITTEN.id,
    xfs::XFS_OVERWRITE.id,
    xfs::XFS_SETATTR_SIZE.id,
    xfs::XFS_NO_RENAME_FLUSH.id,
    xfs::XFS_TRUNCATE_CLOSE.id,
    // btrfs: the rename-over and truncate-to-0 flushes only start I/O (no ordering); shown by
    // the `# expect btrfs:` lines of replace-rename-nofsync and otrunc-replace.
    btrfs::BTRFS_RENAME_FLUSH.id,
    btrfs::BTRFS_TRUNCATE_CLOSE.id,
    // The unit of atomic writes and garbage are the layout and the explorer's candidates, not
    // edges; shown by the `# expect ext4:atomic=sector` lines (alice-a1, alice-a3) and the
    // golden snapshots of the torn configurations.
    rules::TORN_SECTOR.id,
    rules::TORN_GARBAGE.id,
];

fn corpus() -> Vec<(String, Program)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../litmus");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("litmus/ exists")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "up"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let src = std::fs::read_to_string(&p).expect("readable");
            let prog = unplug_model::parse::parse(&src)
                .unwrap_or_else(|e| panic!("{}: {e:?}", p.display()));
            (p.file_name().unwrap().to_string_lossy().into_owned(), prog)
        })
        .collect()
}

/// Everything a rule can change: per program, per crash point counts, and property verdicts.
fn outcomes(corpus: &[(String, Program)], model: &ModelSpec, drop: Option<&str>) -> Vec<String> {
    let mut out = Vec::new();
    for (name, prog) in corpus {
        let mut a = Analysis::new(prog).expect("litmus programs run");
        a.set_dropped_rule(drop);
        let run = a.run(model);
        let counts: Vec<String> = run
            .exploration
            .points
            .iter()
            .map(|p| p.total.to_string())
            .collect();
        let verdicts: Vec<String> = run
            .check()
            .iter()
            .map(|r| format!("{}={}", r.property, r.holds))
            .collect();
        out.push(format!(
            "{name}: {} | {}",
            counts.join(" "),
            verdicts.join(" ")
        ));
    }
    out
}

#[test]
fn every_rule_changes_some_litmus_outcome() {
    let corpus = corpus();
    let mut failures = Vec::new();
    for m in &ModelSpec::configurations() {
        let base = outcomes(&corpus, m, None);
        for r in m.rules() {
            if DESCRIPTIVE.contains(&r.id) {
                continue;
            }
            let mutated = outcomes(&corpus, m, Some(r.id));
            if mutated == base {
                failures.push(format!(
                    "{m}: switching rule {} off changes no litmus outcome",
                    r.id
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
