//! Bounded exhaustive workloads, in the spirit of ACE (Mohan et al., "Finding Crash-Consistency
//! Bugs with Bounded Black-Box Crash Testing", OSDI 2018): every sequence of `ops` core operations
//! over a small set of files and directories, each followed by a persistence point (none, `fsync`
//! or `fdatasync` of a file the op touched, `fsync` of its directory, or `sync`).
//!
//! A workload is a [`Space`] and an index: [`Space::workload`] decodes the index in mixed radix,
//! so the space can be split between threads and any workload named by its number. Each workload
//! becomes an ordinary unplug program, built as a [`Program`] value ([`Workload::build`], in
//! `workloads/program.rs`) and printed ([`Workload::program`]), whose properties are the
//! built-in *oracles*, derived from the volatile state at each persistence point:
//!
//! - `fsync_K` (after `fsync` of file X returns at op K, and nothing later changes X): after op K,
//!   `X == new`: the file is there with the content it had when it was synced.
//! - `fdatasync_K`: after op K, `exists X implies X == new` (fdatasync persists the data and the
//!   size, not the name).
//! - `dirsync_K` (`fsync` of directory X): after op K, `entries X == {...}` as they were then.
//! - `sync_K`: after op K, every path that nothing later changes is as it was then (files `== new`,
//!   directories exist, removed names stay removed).
//! - `rename_K` (op K renames P, a file the workload made, over an existing Q that no other op
//!   touches): at every crash point, `exists Q implies (Q == old or Q == new)`: the target is the
//!   old file or the new one, never a torn mix or an empty file.
//!
//! A program's text (with its oracles as properties) is the whole reproduction: `unplug check`
//! on it gives the same verdicts.

use crate::{Analysis, CrashState, Limits};
use unplug_model::{ModelSpec, Program};

mod program;

/// The bounded space: how many core ops, files per directory and directories.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Space {
    pub ops: usize,
    pub files: usize,
    pub dirs: usize,
    steps: Vec<Step>,
}

/// A core operation of a workload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CoreOp {
    /// `open P create` (creat(2))
    Creat(String),
    /// `mkdir P`
    Mkdir(String),
    /// `pwrite` of 4 KiB at offset 0 (the file is created if missing)
    Write(String),
    /// `pwrite` of 2 KiB at 1 KiB of an existing file (in place, unaligned)
    Overwrite(String),
    /// `write` of 4 KiB through an `append` handle of an existing file
    Append(String),
    /// a 4 KiB store through `mmap` of an existing file, then `msync` MS_SYNC
    MmapWrite(String),
    /// `fallocate` of [0, 12 KiB) (the file grows)
    Falloc(String),
    /// `fallocate` of [0, 12 KiB) with `keep-size`
    FallocKeep(String),
    /// `ftruncate` to 2 KiB
    Truncate(String),
    /// `link P Q`
    Link(String, String),
    /// `unlink P`
    Unlink(String),
    /// `rename P Q`
    Rename(String, String),
}

/// The persistence point after a core op.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Persist {
    None,
    /// `fsync` of a file
    Fsync(String),
    /// `fdatasync` of a file
    Fdatasync(String),
    /// `fsync` of a directory (`.` for the root)
    FsyncDir(String),
    Sync,
}

/// One position of a workload: a core op and the persistence point after it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub op: CoreOp,
    pub persist: Persist,
}

/// The names files take in each directory.
const FILE_NAMES: [&str; 4] = ["foo", "bar", "baz", "qux"];
/// The names of the directories under the root.
const DIR_NAMES: [&str; 4] = ["A", "B", "C", "E"];
/// The name of a directory `mkdir` creates (in the root and in each directory).
const NEW_DIR: &str = "N";

fn join(dir: &str, name: &str) -> String {
    if dir == "." {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

fn parent(p: &str) -> String {
    match p.rsplit_once('/') {
        Some((d, _)) => d.to_string(),
        None => ".".to_string(),
    }
}

impl Space {
    /// The space of `ops` core ops over `files` file names (1..=4) in the root and in each of
    /// `dirs` directories (0..=4).
    pub fn new(ops: usize, files: usize, dirs: usize) -> Result<Space, String> {
        if !(1..=FILE_NAMES.len()).contains(&files) {
            return Err(format!(
                "--files must be 1 to {} (got {files})",
                FILE_NAMES.len()
            ));
        }
        if dirs > DIR_NAMES.len() {
            return Err(format!(
                "--dirs must be 0 to {} (got {dirs})",
                DIR_NAMES.len()
            ));
        }
        if ops == 0 {
            return Err("--ops must be at least 1".to_string());
        }
        let mut s = Space {
            ops,
            files,
            dirs,
            steps: Vec::new(),
        };
        s.steps = s.all_steps();
        if s.len().is_none() {
            return Err(format!(
                "the space of {ops} ops has more than 2^64 workloads"
            ));
        }
        Ok(s)
    }

    /// The directories: the root (`.`) and `A`, `B`, ...
    pub fn dir_paths(&self) -> Vec<String> {
        std::iter::once(".".to_string())
            .chain(DIR_NAMES[..self.dirs].iter().map(|d| d.to_string()))
            .collect()
    }

    /// Every file path of the space.
    pub fn file_paths(&self) -> Vec<String> {
        let mut v = Vec::new();
        for d in self.dir_paths() {
            for f in &FILE_NAMES[..self.files] {
                v.push(join(&d, f));
            }
        }
        v
    }

    /// The files that exist before the workload (the first name in each directory, 8 KiB).
    pub(crate) fn initial_files(&self) -> Vec<String> {
        self.dir_paths()
            .iter()
            .map(|d| join(d, FILE_NAMES[0]))
            .collect()
    }

    fn core_ops(&self) -> Vec<CoreOp> {
        let files = self.file_paths();
        let mut v = Vec::new();
        for f in &files {
            v.push(CoreOp::Creat(f.clone()));
        }
        for d in self.dir_paths() {
            v.push(CoreOp::Mkdir(join(&d, NEW_DIR)));
        }
        for f in &files {
            v.push(CoreOp::Write(f.clone()));
            v.push(CoreOp::Overwrite(f.clone()));
            v.push(CoreOp::Append(f.clone()));
            v.push(CoreOp::MmapWrite(f.clone()));
            v.push(CoreOp::Falloc(f.clone()));
            v.push(CoreOp::FallocKeep(f.clone()));
            v.push(CoreOp::Truncate(f.clone()));
            v.push(CoreOp::Unlink(f.clone()));
        }
        for a in &files {
            for b in &files {
                if a != b {
                    v.push(CoreOp::Link(a.clone(), b.clone()));
                    v.push(CoreOp::Rename(a.clone(), b.clone()));
                }
            }
        }
        v
    }

    /// The persistence points that can follow an op: none, `sync`, and `fsync` / `fdatasync` of
    /// each file it leaves named and `fsync` of each directory whose entries it changed.
    fn persists(op: &CoreOp) -> Vec<Persist> {
        let mut v = vec![Persist::None];
        let mut dirs: Vec<String> = Vec::new();
        match op {
            CoreOp::Mkdir(p) => {
                v.push(Persist::FsyncDir(p.clone()));
                dirs.push(parent(p));
            }
            CoreOp::Unlink(p) => dirs.push(parent(p)),
            CoreOp::Link(a, b) | CoreOp::Rename(a, b) => {
                v.push(Persist::Fsync(b.clone()));
                v.push(Persist::Fdatasync(b.clone()));
                dirs.push(parent(b));
                dirs.push(parent(a));
            }
            // The ops on one file: creat, write, overwrite, append, mmap write, fallocate,
            // truncate.
            other => {
                let p = other.paths()[0];
                v.push(Persist::Fsync(p.to_string()));
                v.push(Persist::Fdatasync(p.to_string()));
                dirs.push(parent(p));
            }
        }
        dirs.dedup();
        v.extend(dirs.into_iter().map(Persist::FsyncDir));
        v.push(Persist::Sync);
        v
    }

    fn all_steps(&self) -> Vec<Step> {
        self.core_ops()
            .into_iter()
            .flat_map(|op| {
                Self::persists(&op).into_iter().map(move |persist| Step {
                    op: op.clone(),
                    persist,
                })
            })
            .collect()
    }

    /// The choices for one position (a core op and its persistence point).
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// How many workloads the space holds (`steps ^ ops`), or None past 2^64.
    pub fn len(&self) -> Option<u64> {
        (self.steps.len() as u64).checked_pow(self.ops as u32)
    }

    /// Whether the space is empty (never: every space has at least one step).
    pub fn is_empty(&self) -> bool {
        self.len() == Some(0)
    }

    /// Workload number `index` (0-based; mixed radix, the first op the most significant digit).
    pub fn workload(&self, index: u64) -> Workload {
        let n = self.steps.len() as u64;
        let mut digits = Vec::with_capacity(self.ops);
        let mut x = index;
        for _ in 0..self.ops {
            digits.push((x % n) as usize);
            x /= n;
        }
        digits.reverse();
        Workload {
            index,
            steps: digits.into_iter().map(|d| self.steps[d].clone()).collect(),
        }
    }

    /// The index of the first step of workload `index` (its most significant digit).
    pub fn first_step(&self, index: u64) -> usize {
        let rest = (self.steps.len() as u64).pow(self.ops as u32 - 1);
        (index / rest) as usize
    }

    /// For each step, whether a workload may start with it: a workload whose first step does
    /// not run (an op on a file that does not exist yet) does not run either, whatever follows,
    /// so these can be skipped without building them.
    pub fn first_steps_that_run(&self) -> Vec<bool> {
        self.steps
            .iter()
            .map(|s| {
                let w = Workload {
                    index: 0,
                    steps: vec![s.clone()],
                };
                let p = Program {
                    setup: self.setup(),
                    ops: w.ops().ops,
                    ..Program::default()
                };
                unplug_model::execute(&p).is_ok()
            })
            .collect()
    }
}

/// One workload of a space.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Workload {
    pub index: u64,
    pub steps: Vec<Step>,
}

impl CoreOp {
    /// The paths the op names (whose entries or content it may change).
    pub fn paths(&self) -> Vec<&str> {
        match self {
            CoreOp::Creat(p)
            | CoreOp::Mkdir(p)
            | CoreOp::Write(p)
            | CoreOp::Overwrite(p)
            | CoreOp::Append(p)
            | CoreOp::MmapWrite(p)
            | CoreOp::Falloc(p)
            | CoreOp::FallocKeep(p)
            | CoreOp::Truncate(p)
            | CoreOp::Unlink(p) => vec![p],
            CoreOp::Link(a, b) | CoreOp::Rename(a, b) => vec![a, b],
        }
    }

    /// A short name: `write foo`, `rename foo A/bar`.
    pub fn label(&self) -> String {
        match self {
            CoreOp::Creat(p) => format!("creat {p}"),
            CoreOp::Mkdir(p) => format!("mkdir {p}"),
            CoreOp::Write(p) => format!("write {p}"),
            CoreOp::Overwrite(p) => format!("overwrite {p}"),
            CoreOp::Append(p) => format!("append {p}"),
            CoreOp::MmapWrite(p) => format!("mmap-write {p}"),
            CoreOp::Falloc(p) => format!("falloc {p}"),
            CoreOp::FallocKeep(p) => format!("falloc-keep {p}"),
            CoreOp::Truncate(p) => format!("truncate {p}"),
            CoreOp::Link(a, b) => format!("link {a} {b}"),
            CoreOp::Unlink(p) => format!("unlink {p}"),
            CoreOp::Rename(a, b) => format!("rename {a} {b}"),
        }
    }
}

impl Persist {
    pub fn label(&self) -> String {
        match self {
            Persist::None => String::new(),
            Persist::Fsync(p) => format!("fsync {p}"),
            Persist::Fdatasync(p) => format!("fdatasync {p}"),
            Persist::FsyncDir(p) => format!("fsync dir {p}"),
            Persist::Sync => "sync".to_string(),
        }
    }
}

impl Workload {
    /// `creat foo; fsync foo | rename foo bar; sync`
    pub fn label(&self) -> String {
        self.steps
            .iter()
            .map(|s| {
                let p = s.persist.label();
                if p.is_empty() {
                    s.op.label()
                } else {
                    format!("{}; {p}", s.op.label())
                }
            })
            .collect::<Vec<_>>()
            .join(" | ")
    }
}

impl Space {
    /// Every path a workload can name: the files, the directories and the new directories.
    pub(crate) fn all_paths(&self) -> Vec<String> {
        let mut v = self.file_paths();
        for d in self.dir_paths() {
            if d != "." {
                v.push(d.clone());
            }
            v.push(join(&d, NEW_DIR));
        }
        v.sort();
        v
    }
}

/// The name of the oracle a property checks (`fsync_7` -> `fsync`).
pub fn oracle_of(property: &str) -> &str {
    property.split('_').next().unwrap_or(property)
}

/// The verdicts of one workload under one model.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ModelVerdict {
    pub model: String,
    /// Oracle properties that fail (a crash state violates them).
    pub violated: Vec<String>,
    /// Oracle properties not proven because the state budget was hit at these crash points.
    pub unproven: Vec<(String, Vec<usize>)>,
    /// Distinct crash states over all crash points.
    pub states: usize,
}

/// A crash state of a stronger model that a weaker one does not allow: a model bug.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct OrderFinding {
    pub stronger: String,
    pub weaker: String,
    pub at: usize,
    pub state: CrashState,
}

/// One workload checked under every model.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Checked {
    pub index: u64,
    pub label: String,
    pub program: String,
    /// How many oracle properties the program has.
    pub oracles: usize,
    pub verdicts: Vec<ModelVerdict>,
    pub order: Vec<OrderFinding>,
}

/// Checks one workload under `models` (None when its ops do not run). Every model is explored
/// block by block (each block its own chunk, so each crash-state class is one concrete state):
/// that makes the states of two models comparable by set inclusion for the strength order.
pub fn check(space: &Space, w: &Workload, models: &[ModelSpec], limits: Limits) -> Option<Checked> {
    let program = w.program(space)?;
    let parsed = unplug_model::parse::parse(&program).ok()?;
    let mut a = Analysis::new(&parsed).ok()?;
    a.limits = limits;
    a.set_per_block(true);
    let mut verdicts = Vec::new();
    let mut explored: Vec<crate::order::Concrete> = Vec::new();
    for m in models {
        let run = a.run(m);
        let results = run.check();
        verdicts.push(ModelVerdict {
            model: m.to_string(),
            violated: results
                .iter()
                .filter(|r| r.violating_classes > 0)
                .map(|r| r.property.clone())
                .collect(),
            unproven: results
                .iter()
                .filter(|r| r.violating_classes == 0 && !r.unproven.is_empty())
                .map(|r| (r.property.clone(), r.unproven.clone()))
                .collect(),
            states: run.exploration.points.iter().map(|p| p.states.len()).sum(),
        });
        explored.push(crate::order::Concrete::of(m, run.exploration));
    }
    let mut order = Vec::new();
    for (s, w) in crate::order::pairs(models) {
        let find = |m: &ModelSpec| explored.iter().find(|c| &c.model == m).expect("explored");
        let r = crate::order::compare(&parsed, find(&s), find(&w));
        order.extend(r.violations.into_iter().map(|v| OrderFinding {
            stronger: v.stronger,
            weaker: v.weaker,
            at: v.at,
            state: v.state,
        }));
    }
    Some(Checked {
        index: w.index,
        label: w.label(),
        oracles: parsed.properties.len(),
        program,
        verdicts,
        order,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn the_space_decodes_every_index_to_a_distinct_workload() {
        let s = Space::new(2, 1, 0).unwrap();
        let n = s.len().unwrap();
        assert_eq!(n, (s.steps().len() * s.steps().len()) as u64);
        let labels: BTreeSet<String> = (0..n).map(|i| s.workload(i).label()).collect();
        assert_eq!(labels.len() as u64, n);
        assert_eq!(s.workload(0).steps[0], s.steps()[0]);
        assert_eq!(s.workload(n - 1).steps[1], s.steps()[s.steps().len() - 1]);
    }

    #[test]
    fn a_workload_whose_first_step_does_not_run_does_not_run() {
        let s = Space::new(2, 2, 0).unwrap();
        let first = s.first_steps_that_run();
        assert!(first.iter().any(|x| *x) && first.iter().any(|x| !*x));
        for i in (0..s.len().unwrap()).step_by(7) {
            let w = s.workload(i);
            assert_eq!(s.steps()[s.first_step(i)], w.steps[0]);
            if !first[s.first_step(i)] {
                assert!(w.program(&s).is_none(), "{}", w.label());
            }
        }
    }

    #[test]
    fn bad_bounds_are_refused() {
        assert!(Space::new(0, 1, 0).is_err());
        assert!(Space::new(1, 5, 0).is_err());
        assert!(Space::new(1, 1, 5).is_err());
        assert!(Space::new(40, 4, 4).is_err());
    }

    fn find(s: &Space, label: &str) -> Workload {
        (0..s.len().unwrap())
            .map(|i| s.workload(i))
            .find(|w| w.label() == label)
            .unwrap_or_else(|| panic!("no workload {label}"))
    }

    #[test]
    fn oracles_follow_the_volatile_state() {
        let s = Space::new(2, 2, 1).unwrap();
        let w = find(&s, "write foo | rename foo A/foo");
        let text = w.program(&s).unwrap();
        assert!(
            !text.contains("property rename_"),
            "foo existed before: {text}"
        );
        let w = find(&s, "write bar; fsync bar | rename bar foo; fsync dir .");
        let text = w.program(&s).unwrap();
        assert!(
            text.contains("h1 = open bar create\npwrite h1 0 4KiB D1\ng1 = open bar\nfsync g1\n"),
            "{text}"
        );
        // bar is renamed later: no fsync oracle for it; foo was replaced: rename oracle.
        assert!(!text.contains("property fsync_"), "{text}");
        assert!(
            text.contains(
                "property rename_5: always (exists foo implies (foo == old or foo == new))"
            ),
            "{text}"
        );
        assert!(
            text.contains("property dirsync_7: after 7: entries . == {A, foo}"),
            "{text}"
        );
        let w = find(&s, "append A/foo; sync | creat bar");
        let text = w.program(&s).unwrap();
        assert!(text.contains("A/foo == new"), "{text}");
        assert!(text.contains("not exists A/bar"), "{text}");
        assert!(
            !text.contains("not exists bar"),
            "bar is created later: {text}"
        );
    }

    #[test]
    fn a_hard_link_found_after_its_first_name_keeps_its_content() {
        // `foo` is reached before `A/bar` but comes after it in path order: the explorer's fast
        // path once gave the content to one name only, so seq "lost" synced data.
        let s = Space::new(2, 2, 1).unwrap();
        let w = find(&s, "creat foo | link foo A/bar; sync");
        let c = check(
            &s,
            &w,
            &[ModelSpec::Seq, ModelSpec::Posix],
            Limits::default(),
        )
        .unwrap();
        assert!(c.oracles >= 1);
        for v in &c.verdicts {
            assert!(
                v.violated.is_empty(),
                "{}: {:?}\n{}",
                v.model,
                v.violated,
                c.program
            );
        }
    }

    #[test]
    fn workloads_that_do_not_run_have_no_program() {
        let s = Space::new(1, 2, 0).unwrap();
        assert!(find(&s, "overwrite bar").program(&s).is_none());
        assert!(find(&s, "overwrite foo").program(&s).is_some());
    }
}
