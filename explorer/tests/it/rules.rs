//! The rule lists are true: each configuration's list is exactly what its builder uses, and every
//! rule matters.
//!
//! `rule_lists_match_the_builders`: for each model configuration, every litmus program is built
//! and the rules on its effects (the rule that made each, and those it carries), edges and floors
//! are collected; that set must equal the
//! configuration's [`ModelSpec::rules`] list, apart from the rules of [`NOT_CARRIED`], which say
//! why they are in a list although no builder puts them on anything.
//!
//! `every_rule_changes_some_litmus_outcome`: for each configuration and each of its rules, the
//! corpus is explored with the rule switched off (`Analysis::drop_rule`: its edges and floors are
//! not made, and the code it gates behaves as if it did not hold); some program must then get a
//! different distinct-state count at some crash point or a different property verdict. A rule
//! that no litmus program exercises fails the test: it would be a rule nobody checks. Rules that
//! describe the absence of an ordering, or why two configurations behave alike, have nothing to
//! switch off; the litmus expectations cover them (see DESCRIPTIVE).

use std::collections::BTreeSet;
use unplug_explorer::{guarantee, Analysis};
use unplug_model::persist::{btrfs, ext4, posix, seq, torn, xfs};
use unplug_model::{rules, Layout, ModelSpec, Program};

/// Rules in a configuration's list that no builder puts on an effect, edge or floor, and why.
const NOT_CARRIED: &[(&str, &str)] = &[
    (
        rules::SETUP_DURABLE.id,
        "the program's meaning: setup's state is crash point 0's, which the explorer starts from",
    ),
    (
        rules::OP_ATOMIC.id,
        "the shape of the effects: an op's metadata is one effect, so it persists whole",
    ),
    (
        rules::MS_ASYNC_NOOP.id,
        "an absence: msync(MS_ASYNC) and MS_INVALIDATE make no floor",
    ),
    (
        ext4::EXT4_ORDERED.id,
        "an absence: with delalloc no new block is visible with stale bytes (no stale value is made)",
    ),
    (
        ext4::EXT4_WRITEBACK_DELALLOC.id,
        "why data=writeback with delalloc builds as data=ordered does (unwritten extents)",
    ),
    (
        ext4::EXT4_FAST_COMMIT.id,
        "why fast_commit builds as the default does",
    ),
    (
        ext4::EXT4_FSYNC_ALLOC.id,
        "carried by the ext4.delalloc edges of the data a sync forces",
    ),
    (
        xfs::XFS_UNWRITTEN.id,
        "an absence: no new block is visible with stale bytes (no stale value is made)",
    ),
    (
        xfs::XFS_SETATTR_SIZE.id,
        "the content of an op's own transaction: ftruncate's size is in its m effect",
    ),
    (
        xfs::XFS_NO_RENAME_FLUSH.id,
        "an absence: a rename over a file orders nothing",
    ),
    (
        xfs::XFS_TRUNCATE_CLOSE.id,
        "an absence: the flush at close after a truncate orders nothing",
    ),
    (
        btrfs::BTRFS_RENAME_FLUSH.id,
        "an absence: the flush of a rename over a file orders nothing",
    ),
    (
        btrfs::BTRFS_TRUNCATE_CLOSE.id,
        "an absence: the flush at close after a truncate to 0 orders nothing",
    ),
    (
        torn::TORN_SECTOR.id,
        "the layout's unit (512-byte sectors), not an effect",
    ),
    (
        torn::TORN_GARBAGE.id,
        "the explorer's candidate values (garbage in a unit being written), not an effect",
    ),
];

/// Rules that add no edge or floor: they say what is *not* ordered, or what the program means.
/// Each is shown by litmus programs whose states only exist because of it.
const DESCRIPTIVE: &[&str] = &[
    rules::SETUP_DURABLE.id,
    rules::OP_ATOMIC.id,
    posix::POSIX_UNORDERED.id,
    rules::MS_ASYNC_NOOP.id,
    ext4::EXT4_ORDERED.id,
    ext4::EXT4_OVERWRITE.id,
    // Shown by `# expect ext4:data=writeback:` and `# expect ext4:fast_commit:` lines that
    // match the default's.
    ext4::EXT4_WRITEBACK_DELALLOC.id,
    ext4::EXT4_FAST_COMMIT.id,
    // Its floor extension is carried by the ext4.delalloc edges of the data it syncs.
    ext4::EXT4_FSYNC_ALLOC.id,
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
    torn::TORN_SECTOR.id,
    torn::TORN_GARBAGE.id,
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

/// The ids of the rules `model`'s builder puts on the effects, edges and floors of `prog`, built
/// as the explorer builds it.
fn carried(prog: &Program, model: &ModelSpec) -> BTreeSet<&'static str> {
    let trace = unplug_model::execute(prog).expect("litmus programs run");
    let layout = if model.splits_last_block() {
        Layout::with_last_blocks(&trace, model.unit())
    } else {
        Layout::new(&trace, model.unit())
    };
    let p = unplug_model::persist::build(model, &trace, layout);
    let effects = p
        .effects
        .iter()
        .flat_map(|e| std::iter::once(e.rule).chain(e.carries.iter().copied()))
        .map(|r| r.id);
    let edges = p.edges.iter().map(|e| e.rule.id);
    let floors = p.floors.iter().map(|f| f.rule.id);
    effects.chain(edges).chain(floors).collect()
}

#[test]
fn rule_lists_match_the_builders() {
    let corpus = corpus();
    let not_carried: BTreeSet<&str> = NOT_CARRIED.iter().map(|(id, _)| *id).collect();
    let mut failures = Vec::new();
    let mut explained_but_carried = BTreeSet::new();
    for m in &ModelSpec::configurations() {
        let listed: BTreeSet<&str> = m.rules().iter().map(|r| r.id).collect();
        let mut used = BTreeSet::new();
        for (_, prog) in &corpus {
            used.extend(carried(prog, m));
        }
        for id in used.difference(&listed) {
            failures.push(format!("{m}: the builder uses {id}, which its list lacks"));
        }
        for id in listed.difference(&used) {
            if !not_carried.contains(id) {
                failures.push(format!(
                    "{m}: {id} is listed but on no effect, edge or floor of the litmus corpus \
                     (use it, drop it, or explain it in NOT_CARRIED)"
                ));
            }
        }
        explained_but_carried.extend(used.intersection(&not_carried).copied());
    }
    // An explanation must stay true: a rule some builder does carry is not "not carried".
    for id in explained_but_carried {
        failures.push(format!("{id} is in NOT_CARRIED but a builder carries it"));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Every rule a configuration lists is declared by its file system (or the torn wrapper), and
/// every declared rule is listed by some configuration.
#[test]
fn declared_rules_are_used_by_some_configuration() {
    let listed: BTreeSet<&str> = ModelSpec::configurations()
        .iter()
        .flat_map(|m| m.rules().into_iter().map(|r| r.id))
        .collect();
    let declared: BTreeSet<&str> = unplug_model::persist::all_rules()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(listed, declared);
    assert!(seq::RULES.iter().all(|r| declared.contains(r.id)));
}

/// Everything a rule can change, per program: per crash point counts, and property verdicts.
fn outcomes(corpus: &[(String, Program)], model: &ModelSpec, drop: Option<&str>) -> Vec<String> {
    let mut out = Vec::new();
    for (name, prog) in corpus {
        let mut a = Analysis::new(prog).expect("litmus programs run");
        a.drop_rule = drop.map(str::to_string);
        out.push(format!("{name}: {}", guarantee::outcome(&a, model)));
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

/// Every rule's source cites something inside this repository (not the research sheet outside
/// it): a file that exists, and for `docs/SEMANTICS.md`, items of its background notes
/// (`docs/notes/semantics.md`) that exist: `P7`, `E10.4` (item E10), `B1r`, `section 6`.
#[test]
fn rule_sources_point_inside_the_repository() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let notes = std::fs::read_to_string(root.join("docs/notes/semantics.md")).expect("notes");
    let item_exists = |id: &str| {
        let base = id.split('.').next().unwrap_or(id);
        notes.lines().any(|l| l.starts_with(&format!("{base}. ")))
    };
    let mut failures = Vec::new();
    for r in unplug_model::persist::all_rules() {
        let src = r.source;
        if src
            .replace("docs/SEMANTICS.md", "")
            .contains("SEMANTICS.md")
        {
            failures.push(format!("{}: cites SEMANTICS.md outside docs/", r.id));
        }
        let paths: Vec<&str> = src
            .split(|c: char| c.is_whitespace() || ";,()".contains(c))
            .filter(|w| w.ends_with(".md") || w.ends_with(".rs"))
            .collect();
        if paths.is_empty() {
            failures.push(format!(
                "{}: its source cites no file of the repository",
                r.id
            ));
        }
        for p in &paths {
            if !root.join(p).exists() && *p != "docs/SEMANTICS.md" {
                failures.push(format!("{}: cites {p}, which the repository lacks", r.id));
            }
        }
        for part in src.split("docs/SEMANTICS.md").skip(1) {
            let cited = part.split(';').next().unwrap_or("");
            let mut words = cited
                .split(|c: char| c.is_whitespace() || ",()".contains(c))
                .filter(|w| !w.is_empty())
                .peekable();
            while let Some(w) = words.next() {
                if w == "section" {
                    let n = words.next().unwrap_or("");
                    if !notes.contains(&format!("\n### {n}. ")) {
                        failures.push(format!(
                            "{}: cites notes section {n}, which is missing",
                            r.id
                        ));
                    }
                    continue;
                }
                let is_item = w.len() >= 2
                    && "PMEXB".contains(&w[..1])
                    && w[1..]
                        .chars()
                        .all(|c| c.is_ascii_digit() || c == '.' || c == 'r');
                if is_item && !item_exists(w) {
                    failures.push(format!("{}: cites notes item {w}, which is missing", r.id));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
