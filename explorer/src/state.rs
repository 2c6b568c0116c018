//! A crash state as a reader sees it after reboot and recovery, and the evaluation of properties
//! on it.
//!
//! One [`CrashState`] stands for a *class* of concrete disk states: where the blocks of a chunk
//! may differ from each other (some persisted, some not), the class records the set of values the
//! chunk's blocks take, and [`CrashState::concrete_count`] says how many concrete states that is.
//! Every predicate of the property language has the same truth value on every member of a class
//! (see `eval`), which is what makes the reduction exact.

use crate::count::Count;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use unplug_model::{BlockValue, Content, ContentRef, Expr, Extent, Origin, Path};

/// The content of a file: segments in offset order covering `[0, size)`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Segment {
    /// Every byte is known: extents merged where neighbours share an origin.
    Exact(Extent),
    /// `blocks` units (of `unit` bytes: blocks, or sectors) starting at `start`, each holding
    /// one of `values`, and each value held by at least one unit.
    Mixed {
        unit: u64,
        start: u64,
        end: u64,
        blocks: u64,
        values: BTreeSet<BlockValue>,
    },
}

/// A file or directory in a crash state.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Node {
    Dir {
        links: u64,
    },
    File {
        size: u64,
        links: u64,
        content: Vec<Segment>,
        /// For a file with several names: the first of its other names (in path order), when
        /// that comes before this one. The content is the same object, counted once.
        same_file_as: Option<Path>,
    },
    /// A symbolic link and its target text (never followed: a path through a symlink names
    /// nothing in a crash state).
    Symlink {
        target: String,
        links: u64,
    },
}

/// A crash state: every reachable path and what it holds.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct CrashState {
    pub tree: BTreeMap<Path, Node>,
}

impl CrashState {
    /// How many concrete disk states this class stands for.
    pub fn concrete_count(&self) -> Count {
        let mut n = Count::one();
        for node in self.tree.values() {
            if let Node::File {
                content,
                same_file_as: None,
                ..
            } = node
            {
                for s in content {
                    if let Segment::Mixed { blocks, values, .. } = s {
                        n = n.mul(&Count::surjections(*blocks, values.len()));
                    }
                }
            }
        }
        n
    }
}

impl CrashState {
    /// Whether the concrete state `c` (a state read back from a disk: exact content only) is a
    /// member of this class: the same paths and nodes, and content equal byte range by byte
    /// range, where for a mixed segment every unit holds one of the class's values and every
    /// value is held by some unit (the class's definition). Zero runs may be explicit or gaps on
    /// either side.
    pub fn contains(&self, c: &CrashState) -> bool {
        self.tree.len() == c.tree.len()
            && self.tree.iter().zip(&c.tree).all(|((p, n), (q, m))| {
                p == q
                    && match (n, m) {
                        (
                            Node::File {
                                size,
                                links,
                                content,
                                same_file_as,
                            },
                            Node::File {
                                size: size2,
                                links: links2,
                                content: content2,
                                same_file_as: same2,
                            },
                        ) => {
                            size == size2
                                && links == links2
                                && same_file_as == same2
                                && content_contains(content, content2, *size)
                        }
                        (a, b) => a == b,
                    }
            })
    }
}

/// The extents of `v` (sorted, not overlapping) within `[lo, hi)`, gaps as zeros
/// ([`Content::slice`]), neighbours merged so that equal bytes compare equal.
fn flat(v: Vec<Extent>, lo: u64, hi: u64) -> Vec<Extent> {
    unplug_model::volatile::merge(Content(v).slice(lo, hi))
}

fn content_contains(class: &[Segment], c: &[Segment], size: u64) -> bool {
    let Some(cx) = exact(c) else {
        return false;
    };
    let cx: Vec<Extent> = cx.into_iter().cloned().collect();
    // The observed extents overlapping [lo, hi), found from the first one ending after lo.
    let slice = |lo: u64, hi: u64| {
        let i = cx.partition_point(|e| e.end <= lo);
        flat(
            cx[i..]
                .iter()
                .take_while(|e| e.start < hi)
                .cloned()
                .collect(),
            lo,
            hi,
        )
    };
    let zeros = |lo: u64, hi: u64| lo >= hi || slice(lo, hi) == flat(Vec::new(), lo, hi);
    let exact = |e: &Extent| slice(e.start, e.end) == flat(vec![e.clone()], e.start, e.end);
    let unit = |v: &BlockValue, b: u64, e: u64| {
        let ext: Vec<Extent> =
            v.0.iter()
                .map(|(s, t, o)| Extent {
                    start: b + s,
                    end: b + t,
                    origin: o.clone(),
                })
                .collect();
        flat(ext, b, e) == slice(b, e)
    };
    departure(class, size, &zeros, &exact, &unit).is_none()
}

/// Where a concrete content of `size` bytes first departs from the class content `class`: the
/// byte range of the first segment, gap or unit that does not hold, or None if it is a member
/// (the class definition, over any representation of the concrete content). `zeros(lo, hi)`:
/// the range reads as zeros; `exact(e)`: the range of `e` holds its origin's bytes; `unit(v, b,
/// e)`: the unit `[b, e)` holds value `v` (relative to `b`, gaps as zeros). A mixed segment
/// holds when each unit holds one of its values and every value is held by some unit.
pub fn departure(
    class: &[Segment],
    size: u64,
    zeros: &dyn Fn(u64, u64) -> bool,
    exact: &dyn Fn(&Extent) -> bool,
    unit: &dyn Fn(&BlockValue, u64, u64) -> bool,
) -> Option<(u64, u64)> {
    let mut pos = 0;
    for seg in class {
        match seg {
            Segment::Exact(e) => {
                if !zeros(pos, e.start) {
                    return Some((pos, e.start));
                }
                if !exact(e) {
                    return Some((e.start, e.end));
                }
                pos = e.end;
            }
            Segment::Mixed {
                unit: u,
                start,
                end,
                blocks,
                values,
            } => {
                if !zeros(pos, *start) {
                    return Some((pos, *start));
                }
                let mut used = BTreeSet::new();
                for i in 0..*blocks {
                    let b = start + i * u;
                    let e = (b + u).min(*end);
                    match values.iter().position(|v| unit(v, b, e)) {
                        Some(v) => {
                            used.insert(v);
                        }
                        None => return Some((b, e)),
                    }
                }
                if used.len() != values.len() {
                    return Some((*start, *end));
                }
                pos = *end;
            }
        }
    }
    (!zeros(pos, size)).then_some((pos, size))
}

/// What `old` and `new` mean for a path, and the lengths of named data; for `checker`, the
/// judge and the program's crash point being judged.
pub struct EvalContext<'a> {
    pub old: &'a CrashState,
    pub new: &'a CrashState,
    pub data_len: &'a BTreeMap<String, u64>,
    /// What `checker` asks (see [`Judge`]); without one, `checker` is false on every state.
    pub judge: Option<&'a dyn Judge>,
    /// The program's crash point of the states judged (not a variant's), for what the
    /// application had printed by then: see `Trace::printed_point`.
    pub at: usize,
}

impl<'a> EvalContext<'a> {
    /// The context of the analysis's program, for states of `trace` (the program's or a
    /// variant's) at its crash point `k`.
    pub fn of(a: &'a crate::Analysis, trace: &'a unplug_model::Trace, k: usize) -> Self {
        EvalContext {
            old: &a.old,
            new: &a.new,
            data_len: &trace.data_len,
            judge: a.judge(),
            at: trace.printed_point(k),
        }
    }
}

/// The application's own checker, behind the `checker` predicate: whether it accepts a crash
/// state (a class: every concrete state it stands for) at a crash point of the program. The
/// CLI's judge materializes the state as a directory and runs a command on it.
pub trait Judge: Send + Sync {
    /// Whether the checker accepts `state` at the program's crash point `at`.
    fn accepts(&self, state: &CrashState, at: usize) -> bool;
    /// How many judgments so far were not exhaustive: a state accepted without being checked
    /// (past a budget), a class judged on some of its concrete states, a run cut short. A
    /// verdict that rests on one of them is not proven, never "holds".
    fn unsure(&self) -> usize;
}

fn exact(content: &[Segment]) -> Option<Vec<&Extent>> {
    content
        .iter()
        .map(|s| match s {
            Segment::Exact(e) => Some(e),
            Segment::Mixed { .. } => None,
        })
        .collect()
}

/// Canonical segments of a file that is exactly `extents` (which may contain zero runs).
pub fn exact_segments(extents: Vec<Extent>) -> Vec<Segment> {
    unplug_model::volatile::merge(extents)
        .into_iter()
        .map(Segment::Exact)
        .collect()
}

fn data_segments(name: &str, len: u64) -> Vec<Segment> {
    if len == 0 {
        return Vec::new();
    }
    vec![Segment::Exact(Extent {
        start: 0,
        end: len,
        origin: Origin::Data {
            name: name.to_string(),
            delta: 0,
        },
    })]
}

/// Evaluates a predicate on a crash state. A mixed segment holds at least two different block
/// values, so it never equals content that is one fixed value per chunk (named data, zero, or the
/// old or new content, whose boundaries are all layout cuts): content comparisons are constant
/// over the class. `checker` asks the judge, which answers for the whole class (see [`Judge`]).
pub fn eval(e: &Expr, s: &CrashState, cx: &EvalContext) -> bool {
    match e {
        Expr::Exists(p) => s.tree.contains_key(p),
        Expr::Size(p, cmp, n) => {
            matches!(s.tree.get(p), Some(Node::File { size, .. }) if cmp.eval(*size, *n))
        }
        Expr::Links(p, cmp, n) => match s.tree.get(p) {
            Some(Node::File { links, .. })
            | Some(Node::Dir { links })
            | Some(Node::Symlink { links, .. }) => cmp.eval(*links, *n),
            None => false,
        },
        Expr::Readlink(p, want) => {
            matches!(s.tree.get(p), Some(Node::Symlink { target, .. }) if target == want)
        }
        Expr::Entries(p, names) => match s.tree.get(p) {
            Some(Node::Dir { .. }) => {
                let want: BTreeSet<&str> = names.iter().map(String::as_str).collect();
                let have: BTreeSet<&str> = s
                    .tree
                    .keys()
                    .filter(|q| q.parent().as_ref() == Some(p) && !q.0.is_empty())
                    .filter_map(|q| q.file_name())
                    .collect();
                want == have
            }
            _ => false,
        },
        Expr::ContentEq(p, r) => {
            let Some(Node::File { size, content, .. }) = s.tree.get(p) else {
                return false;
            };
            let want: Vec<Segment> = match r {
                ContentRef::Data(d) => data_segments(d, cx.data_len.get(d).copied().unwrap_or(0)),
                ContentRef::Empty => Vec::new(),
                ContentRef::Old | ContentRef::New => {
                    let other = if *r == ContentRef::Old {
                        cx.old
                    } else {
                        cx.new
                    };
                    match other.tree.get(p) {
                        Some(Node::File {
                            size: osize,
                            content,
                            ..
                        }) if osize == size => content.clone(),
                        _ => return false,
                    }
                }
            };
            let want_size = want
                .iter()
                .map(|s| match s {
                    Segment::Exact(e) => e.end,
                    Segment::Mixed { end, .. } => *end,
                })
                .max()
                .unwrap_or(0);
            want_size == *size && exact(content).is_some() && *content == want
        }
        Expr::PrefixOf(p, d) => {
            let Some(Node::File { size, content, .. }) = s.tree.get(p) else {
                return false;
            };
            let len = cx.data_len.get(d).copied().unwrap_or(0);
            *size <= len && *content == data_segments(d, *size)
        }
        Expr::Checker(_) => cx.judge.is_some_and(|j| j.accepts(s, cx.at)),
        Expr::Not(a) => !eval(a, s, cx),
        Expr::And(a, b) => eval(a, s, cx) && eval(b, s, cx),
        Expr::Or(a, b) => eval(a, s, cx) || eval(b, s, cx),
        Expr::Implies(a, b) => !eval(a, s, cx) || eval(b, s, cx),
    }
}

/// A size in bytes, in the largest unit that divides it (`8MiB`, `4KiB`, `100B`).
pub fn size_str(n: u64) -> String {
    for (unit, v) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
        if n >= v && n.is_multiple_of(v) {
            return format!("{}{unit}", n / v);
        }
    }
    if n == 0 {
        return "0".into();
    }
    format!("{n}B")
}

fn origin_str(o: &Origin, start: u64) -> String {
    match o {
        Origin::Zero => "zero".into(),
        Origin::Stale => "stale".into(),
        Origin::Garbage => "garbage".into(),
        Origin::Data { name, delta } => {
            let at = start as i64 + delta;
            if *delta == 0 {
                name.clone()
            } else {
                format!(
                    "{name}@{}",
                    if at >= 0 {
                        size_str(at as u64)
                    } else {
                        at.to_string()
                    }
                )
            }
        }
    }
}

/// `[0, 8MiB) D` or `[4KiB, 8KiB) D@0` (data D from offset 0 placed at file offset 4KiB).
pub(crate) fn extent_str(e: &Extent) -> String {
    format!(
        "[{}, {}) {}",
        size_str(e.start),
        size_str(e.end),
        origin_str(&e.origin, e.start)
    )
}

fn value_str(v: &BlockValue) -> String {
    let whole = v.0.len() == 1;
    v.0.iter()
        .map(|(s, e, o)| {
            if whole && *s == 0 {
                origin_str(o, 0)
            } else {
                format!("[{s}..{e}) {}", origin_str(o, 0))
            }
        })
        .collect::<Vec<_>>()
        .join(" + ")
}

impl fmt::Display for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Segment::Exact(e) => f.write_str(&extent_str(e)),
            Segment::Mixed {
                unit,
                start,
                end,
                blocks,
                values,
            } => write!(
                f,
                "[{}, {}) {} {}s, each one of: {}",
                size_str(*start),
                size_str(*end),
                blocks,
                if *unit < 4096 { "sector" } else { "block" },
                values.iter().map(value_str).collect::<Vec<_>>().join(" | ")
            ),
        }
    }
}

impl fmt::Display for CrashState {
    /// One line per path: `final  file 8MiB  links 1  [0, 8MiB) D`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (p, n) in &self.tree {
            if p.0.is_empty() {
                continue;
            }
            if !first {
                writeln!(f)?;
            }
            first = false;
            match n {
                Node::Dir { .. } => write!(f, "{p}/  dir")?,
                Node::Symlink { target, links } => {
                    write!(f, "{p}  symlink -> {target}")?;
                    if *links != 1 {
                        write!(f, "  links {links}")?;
                    }
                }
                Node::File {
                    size,
                    links,
                    content,
                    same_file_as,
                } => {
                    write!(f, "{p}  file {}", size_str(*size))?;
                    if *links != 1 {
                        write!(f, "  links {links}")?;
                    }
                    if let Some(other) = same_file_as {
                        write!(f, "  (same file as {other})")?;
                        continue;
                    }
                    if !content.is_empty() {
                        let c: Vec<String> = content.iter().map(|s| s.to_string()).collect();
                        write!(f, "  {}", c.join(", "))?;
                    }
                }
            }
        }
        if first {
            write!(f, "(empty file system)")?;
        }
        Ok(())
    }
}

/// Builds a crash state from the reachable paths (root first) and their inodes: link counts,
/// directories' `2 + subdirectories`, and which names share a file.
pub fn build_tree<I: Copy + Ord>(
    paths: &[(Path, I)],
    is_dir: impl Fn(I) -> bool,
    file: impl Fn(I) -> (u64, Vec<Segment>),
) -> CrashState {
    build_tree_with(paths, is_dir, |_| None, file)
}

/// [`build_tree`] where `symlink` gives the target of the inodes that are symlinks (None for the
/// others); a symlink's link count is its number of names.
pub fn build_tree_with<I: Copy + Ord>(
    paths: &[(Path, I)],
    is_dir: impl Fn(I) -> bool,
    symlink: impl Fn(I) -> Option<String>,
    file: impl Fn(I) -> (u64, Vec<Segment>),
) -> CrashState {
    let mut names: BTreeMap<I, Vec<&Path>> = BTreeMap::new();
    for (p, i) in paths.iter().filter(|(p, _)| !p.0.is_empty()) {
        names.entry(*i).or_default().push(p);
    }
    for v in names.values_mut() {
        v.sort();
    }
    let mut state = CrashState::default();
    for (path, ino) in paths {
        let node = if is_dir(*ino) {
            // Children of `path`: one component longer, with `path` as prefix.
            let subdirs = paths
                .iter()
                .filter(|(q, i)| {
                    q.0.len() == path.0.len() + 1 && q.0.starts_with(&path.0) && is_dir(*i)
                })
                .count();
            Node::Dir {
                links: 2 + subdirs as u64,
            }
        } else if let Some(target) = symlink(*ino) {
            Node::Symlink {
                target,
                links: names[ino].len() as u64,
            }
        } else {
            let (size, content) = file(*ino);
            let v = &names[ino];
            let same_file_as = (v[0] != path).then(|| v[0].clone());
            Node::File {
                size,
                links: v.len() as u64,
                content,
                same_file_as,
            }
        };
        state.tree.insert(path.clone(), node);
    }
    state
}

#[cfg(test)]
mod tests {
    use super::*;
    use unplug_model::BlockValue;

    fn data(name: &str) -> Origin {
        Origin::Data {
            name: name.into(),
            delta: 0,
        }
    }

    fn file(size: u64, content: Vec<Segment>) -> CrashState {
        let mut s = CrashState::default();
        s.tree.insert(Path::root(), Node::Dir { links: 2 });
        s.tree.insert(
            Path(vec!["f".into()].into()),
            Node::File {
                size,
                links: 1,
                content,
                same_file_as: None,
            },
        );
        s
    }

    fn exact(v: &[(u64, u64, Origin)]) -> Vec<Segment> {
        v.iter()
            .map(|(s, e, o)| {
                Segment::Exact(Extent {
                    start: *s,
                    end: *e,
                    origin: o.clone(),
                })
            })
            .collect()
    }

    /// A class: block 0 is D exactly, blocks 1..4 each hold D or zeros (both present).
    fn class() -> CrashState {
        let values = [
            BlockValue::zero(4096),
            BlockValue(vec![(0, 4096, data("D"))]),
        ];
        let mut content = exact(&[(0, 4096, data("D"))]);
        content.push(Segment::Mixed {
            unit: 4096,
            start: 4096,
            end: 16384,
            blocks: 3,
            values: values.into_iter().collect(),
        });
        file(16384, content)
    }

    #[test]
    fn a_class_contains_exactly_its_members() {
        let c = class();
        let d = data("D");
        // D, zeros, D, D: every value used.
        let m = file(
            16384,
            exact(&[(0, 4096, d.clone()), (8192, 16384, d.clone())]),
        );
        assert!(c.contains(&m));
        // Explicit zero runs are the same as gaps.
        let m2 = file(
            16384,
            exact(&[
                (0, 4096, d.clone()),
                (4096, 8192, Origin::Zero),
                (8192, 16384, d.clone()),
            ]),
        );
        assert!(c.contains(&m2));
        // All D: the zero value is not used, so this is another class's member.
        assert!(!c.contains(&file(16384, exact(&[(0, 16384, d.clone())]))));
        // A unit holding something no value is.
        let bad = file(
            16384,
            exact(&[
                (0, 4096, d.clone()),
                (4096, 8192, Origin::Stale),
                (8192, 12288, d.clone()),
            ]),
        );
        assert!(!c.contains(&bad));
        // Block 0 must be D.
        assert!(!c.contains(&file(16384, exact(&[(8192, 16384, d.clone())]))));
        // Half a block of D in a unit: no value.
        assert!(!c.contains(&file(
            16384,
            exact(&[(0, 4096 + 2048, d.clone()), (8192, 16384, d.clone())])
        )));
        // Size and paths matter.
        assert!(!c.contains(&file(12288, exact(&[(0, 4096, d.clone())]))));
        let mut extra = m.clone();
        extra
            .tree
            .insert(Path(vec!["g".into()].into()), Node::Dir { links: 2 });
        assert!(!c.contains(&extra));
        // An exact class contains itself only.
        assert!(m.contains(&m));
        let mut root_only = m.clone();
        root_only.tree.retain(|p, _| p.0.is_empty());
        assert!(!m.contains(&root_only));
    }
}
