//! A workload as an unplug program, built as a [`Program`] value (its setup, its ops, its
//! oracles as properties) and printed with [`unplug_model::print`].

use super::{parent, CoreOp, Persist, Space, Workload, DIR_NAMES};
use crate::explore::volatile_state;
use crate::state::Node;
use crate::CrashState;
use std::collections::BTreeSet;
use unplug_model::{
    print, ContentRef, Expr, MsyncMode, Op, OpKind, OpenFlags, Path, Program, Property, RenameMode,
    Span, When,
};

const KIB: u64 = 1024;

/// An op as built (no label, no source text).
fn op(kind: OpKind) -> Op {
    Op {
        kind,
        label: None,
        text: String::new(),
        span: Span::default(),
        site: None,
    }
}

/// `HANDLE = open P [create | append | dir]`
fn open(handle: &str, p: &str, flags: OpenFlags) -> OpKind {
    OpKind::Open {
        handle: handle.to_string(),
        path: path(p),
        flags,
    }
}

fn create() -> OpenFlags {
    OpenFlags {
        create: true,
        ..OpenFlags::default()
    }
}

fn write(handle: &str, offset: Option<u64>, len: u64, data: &str) -> OpKind {
    OpKind::Write {
        handle: handle.to_string(),
        offset,
        len,
        data: data.to_string(),
        data_off: None,
    }
}

fn fallocate(handle: &str, keep_size: bool) -> OpKind {
    OpKind::Fallocate {
        handle: handle.to_string(),
        offset: 0,
        len: 12 * KIB,
        keep_size,
    }
}

impl CoreOp {
    /// The op's calls in workload step `i` (handle `h{i}`, mapping `m{i}`, data `D{i}`).
    fn ops(&self, i: usize) -> Vec<OpKind> {
        let h = format!("h{i}");
        let d = format!("D{i}");
        let plain = |p: &str| open(&h, p, OpenFlags::default());
        match self {
            CoreOp::Creat(p) => vec![open(&h, p, create())],
            CoreOp::Mkdir(p) => vec![OpKind::Mkdir { path: path(p) }],
            CoreOp::Write(p) => vec![open(&h, p, create()), write(&h, Some(0), 4 * KIB, &d)],
            CoreOp::Overwrite(p) => vec![plain(p), write(&h, Some(KIB), 2 * KIB, &d)],
            CoreOp::Append(p) => {
                let append = OpenFlags {
                    append: true,
                    ..OpenFlags::default()
                };
                vec![open(&h, p, append), write(&h, None, 4 * KIB, &d)]
            }
            CoreOp::MmapWrite(p) => {
                let m = format!("m{i}");
                vec![
                    plain(p),
                    OpKind::Mmap {
                        handle: h.clone(),
                        map: m.clone(),
                        offset: 0,
                        len: 4 * KIB,
                    },
                    OpKind::Store {
                        map: m.clone(),
                        offset: 0,
                        len: 4 * KIB,
                        data: d.clone(),
                        data_off: None,
                    },
                    OpKind::Msync {
                        map: m,
                        range: None,
                        mode: MsyncMode::Sync,
                        invalidate: false,
                    },
                ]
            }
            CoreOp::Falloc(p) => vec![plain(p), fallocate(&h, false)],
            CoreOp::FallocKeep(p) => vec![plain(p), fallocate(&h, true)],
            CoreOp::Truncate(p) => vec![
                plain(p),
                OpKind::Ftruncate {
                    handle: h.clone(),
                    size: 2 * KIB,
                },
            ],
            CoreOp::Link(a, b) => vec![OpKind::Link {
                from: path(a),
                to: path(b),
            }],
            CoreOp::Unlink(p) => vec![OpKind::Unlink { path: path(p) }],
            CoreOp::Rename(a, b) => vec![OpKind::Rename {
                from: path(a),
                to: path(b),
                mode: RenameMode::Replace,
            }],
        }
    }
}

impl Persist {
    /// The persistence point's calls in workload step `i` (handle `g{i}`).
    fn ops(&self, i: usize) -> Vec<OpKind> {
        let g = format!("g{i}");
        let fsync = OpKind::Fsync { handle: g.clone() };
        match self {
            Persist::None => vec![],
            Persist::Fsync(p) => vec![open(&g, p, OpenFlags::default()), fsync],
            Persist::Fdatasync(p) => vec![
                open(&g, p, OpenFlags::default()),
                OpKind::Fdatasync { handle: g.clone() },
            ],
            Persist::FsyncDir(p) => {
                let dir = OpenFlags {
                    directory: true,
                    ..OpenFlags::default()
                };
                vec![open(&g, p, dir), fsync]
            }
            Persist::Sync => vec![OpKind::Sync],
        }
    }
}

impl Space {
    /// The setup ops: the directories, and the first file of each directory with 8 KiB of its
    /// own data (`O1`, `O2`, ...), durable before the workload starts.
    pub fn setup(&self) -> Vec<Op> {
        let mut v: Vec<OpKind> = DIR_NAMES[..self.dirs]
            .iter()
            .map(|d| OpKind::Mkdir { path: path(d) })
            .collect();
        for (i, f) in self.initial_files().iter().enumerate() {
            let s = format!("s{i}");
            v.push(open(&s, f, create()));
            v.push(write(&s, None, 8 * KIB, &format!("O{}", i + 1)));
            v.push(OpKind::Close { handle: s });
        }
        v.into_iter().map(op).collect()
    }
}

/// A workload's ops (numbered as unplug numbers them) and where each step's persistence point
/// ends.
pub(super) struct Ops {
    pub(super) ops: Vec<Op>,
    /// Per step: (the op number of its core op's last call, the op number of its persistence
    /// point's last call).
    ends: Vec<(usize, usize)>,
}

impl Workload {
    pub(super) fn ops(&self) -> Ops {
        let mut ops = Vec::new();
        let mut ends = Vec::new();
        for (i, s) in self.steps.iter().enumerate() {
            ops.extend(s.op.ops(i + 1).into_iter().map(op));
            let op_end = ops.len();
            ops.extend(s.persist.ops(i + 1).into_iter().map(op));
            ends.push((op_end, ops.len()));
        }
        Ops { ops, ends }
    }

    /// The workload as an unplug program with its oracles as properties, or None when the ops
    /// do not run (an op on a missing file, a mapping past the end of a file, ...).
    pub fn build(&self, space: &Space) -> Option<Program> {
        let Ops { ops, ends } = self.ops();
        let mut program = Program {
            setup: space.setup(),
            ops,
            data: Vec::new(),
            properties: Vec::new(),
            outputs: Vec::new(),
        };
        let trace = unplug_model::execute(&program).ok()?;
        let oracles = Oracles {
            space,
            workload: self,
            program: &program,
            start: volatile_state(&trace.initial),
            end: volatile_state(&trace.last),
        };
        let mut properties = Vec::new();
        for (i, &(op_end, k)) in ends.iter().enumerate() {
            properties.extend(oracles.persisted(i, k)?);
            properties.extend(oracles.rename(i, op_end));
        }
        program.properties = properties;
        Some(program)
    }

    /// [`Workload::build`] as `.up` text ([`print::program`]); debug builds check that the text
    /// parses back to the program built.
    pub fn program(&self, space: &Space) -> Option<String> {
        let built = self.build(space)?;
        let text = print::program(&built);
        debug_assert_eq!(
            unplug_model::parse::parse(&text).map(|p| print::normalized(&p)),
            Ok(print::normalized(&built)),
            "the workload's text is the workload"
        );
        Some(text)
    }
}

/// What the oracles of one workload are derived from.
struct Oracles<'a> {
    space: &'a Space,
    workload: &'a Workload,
    program: &'a Program,
    /// The volatile state before the first op and after the last.
    start: CrashState,
    end: CrashState,
}

fn property(name: String, when: When, expr: Expr) -> Property {
    Property {
        name,
        when,
        expr,
        text: String::new(),
        span: Span::default(),
    }
}

fn after(k: usize) -> When {
    When::After {
        op: k,
        written: k.to_string(),
    }
}

fn is_new(p: &str) -> Expr {
    Expr::ContentEq(path(p), ContentRef::New)
}

fn exists(p: &str) -> Expr {
    Expr::Exists(path(p))
}

impl Oracles<'_> {
    /// The volatile state right after op `k`.
    fn state_after(&self, k: usize) -> Option<CrashState> {
        let mut p = self.program.clone();
        p.ops.truncate(k);
        unplug_model::execute(&p)
            .ok()
            .map(|t| volatile_state(&t.last))
    }

    /// The oracle of step `i`'s persistence point, which ends at op `k` (Some(None): none
    /// applies; None: the ops up to `k` do not run).
    fn persisted(&self, i: usize, k: usize) -> Option<Option<Property>> {
        let steps = &self.workload.steps;
        // Paths named by a later step's core op: their state after k says nothing about what
        // k persisted.
        let later: BTreeSet<&str> = steps[i + 1..].iter().flat_map(|s| s.op.paths()).collect();
        let changed_later = |p: &str, at: &CrashState| -> bool {
            later.contains(p) || at.tree.get(&path(p)) != self.end.tree.get(&path(p))
        };
        Some(match &steps[i].persist {
            Persist::None => None,
            Persist::Fsync(x) => {
                let at = self.state_after(k)?;
                (!changed_later(x, &at))
                    .then(|| property(format!("fsync_{k}"), after(k), is_new(x)))
            }
            Persist::Fdatasync(x) => {
                let at = self.state_after(k)?;
                let expr = Expr::Implies(Box::new(exists(x)), Box::new(is_new(x)));
                (!changed_later(x, &at)).then(|| property(format!("fdatasync_{k}"), after(k), expr))
            }
            Persist::FsyncDir(x) => {
                let at = self.state_after(k)?;
                let entries_now = entries(&at, x);
                let touched = later.iter().any(|p| parent(p) == *x);
                (!touched && entries_now == entries(&self.end, x)).then(|| {
                    let expr = Expr::Entries(path(x), entries_now);
                    property(format!("dirsync_{k}"), after(k), expr)
                })
            }
            Persist::Sync => {
                let at = self.state_after(k)?;
                let parts = self
                    .space
                    .all_paths()
                    .into_iter()
                    .filter(|p| !changed_later(p, &at))
                    .filter_map(|p| match at.tree.get(&path(&p)) {
                        Some(Node::Dir { .. }) => Some(exists(&p)),
                        Some(Node::File { .. }) => Some(is_new(&p)),
                        Some(_) => None,
                        None => Some(Expr::Not(Box::new(exists(&p)))),
                    });
                // `a and b and c`: left-associated, as the parser reads it.
                parts
                    .reduce(|acc, e| Expr::And(Box::new(acc), Box::new(e)))
                    .map(|expr| property(format!("sync_{k}"), after(k), expr))
            }
        })
    }

    /// The rename oracle of step `i`, whose core op ends at op `op_end`: `rename P Q` where P
    /// is a file the workload made (it did not exist before) and Q existed before, is a file
    /// at the end, and no other op touches it: at every crash point, `exists Q implies (Q ==
    /// old or Q == new)`. A source that existed before may legitimately show its own older
    /// content (an overwrite of it that did not persist).
    fn rename(&self, i: usize, op_end: usize) -> Option<Property> {
        let CoreOp::Rename(p, q) = &self.workload.steps[i].op else {
            return None;
        };
        let others_touch_q = self
            .workload
            .steps
            .iter()
            .enumerate()
            .any(|(j, s)| j != i && s.op.paths().contains(&q.as_str()));
        let q_path = path(q);
        let replaces = !others_touch_q
            && p != q
            && !self.start.tree.contains_key(&path(p))
            && matches!(self.start.tree.get(&q_path), Some(Node::File { .. }))
            && matches!(self.end.tree.get(&q_path), Some(Node::File { .. }));
        replaces.then(|| {
            let content = |r| Box::new(Expr::ContentEq(q_path.clone(), r));
            let either = Expr::Or(content(ContentRef::Old), content(ContentRef::New));
            let expr = Expr::Implies(Box::new(exists(q)), Box::new(either));
            property(format!("rename_{op_end}"), When::Always, expr)
        })
    }
}

pub(super) fn path(p: &str) -> Path {
    if p == "." {
        Path::root()
    } else {
        Path(p.split('/').map(str::to_string).collect())
    }
}

/// The names in directory `dir` of a state, sorted.
fn entries(s: &CrashState, dir: &str) -> Vec<String> {
    let d = path(dir);
    s.tree
        .keys()
        .filter(|p| p.parent().as_ref() == Some(&d))
        .filter_map(|p| p.file_name().map(str::to_string))
        .collect()
}
