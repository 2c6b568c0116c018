//! Maps a tree read back from a real file system ([`ObservedTree`]) into the model's crash-state
//! type ([`CrashState`]), so that what the kernel left and what the model predicts compare with
//! `==`.
//!
//! [`to_state`] is the one place that does this. It builds the state with the explorer's own
//! [`build_tree`](unplug_explorer::state::build_tree), the function that shapes the model's states, so both sides agree on every
//! convention: the root is in the tree as a directory, a directory's link count is
//! `2 + subdirectories` (what ext4 and tmpfs report; btrfs reports 1, so the observed `st_nlink`
//! of a directory is not used), the names of one file (one `st_ino`) all carry its size and
//! content and all but the first (in path order) say `same_file_as` the first, and content is
//! [`Segment::Exact`] extents merged where neighbours share an origin.
//!
//! A file's link count is the observed `st_nlink`. On a consistent file system it equals the
//! number of the file's names in the tree (the tree is the whole of a private directory); where
//! it does not (a crash left a wrong count that no fsck repaired) the difference is a finding.

use crate::pattern::{self, Extent};
use crate::readback::{Entry, Kind, ObservedTree};
use std::collections::{btree_map, BTreeMap};
use unplug_explorer::state::{build_tree_with, exact_segments};
use unplug_explorer::{CrashState, Node, Segment};
use unplug_model::Path;

/// Something in an observed tree that the model's crash states cannot represent.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Unmapped {
    /// Bytes of a file that are neither zeros nor any of the data asked about: stale blocks,
    /// garbage, a torn sector. The model's content is only ever zeros or named data.
    #[error(
        "{path}: bytes [{}, {}) are neither zeros nor any data the program writes \
         (stale blocks, garbage or a torn sector)",
        extent.start,
        extent.end
    )]
    Content { path: Path, extent: Extent },
    /// An entry that is neither a regular file, a directory nor a symlink (a device, ...).
    #[error("{path}: is neither a regular file, a directory nor a symlink")]
    Kind { path: Path, kind: Kind },
}

impl Unmapped {
    /// The path of the entry that cannot be represented.
    pub fn path(&self) -> &Path {
        match self {
            Unmapped::Content { path, .. } | Unmapped::Kind { path, .. } => path,
        }
    }
}

/// The model's origin of an observed origin; `None` for [`pattern::Origin::Unknown`].
pub(crate) fn to_origin(origin: &pattern::Origin) -> Option<unplug_model::Origin> {
    match origin {
        pattern::Origin::Zero => Some(unplug_model::Origin::Zero),
        pattern::Origin::Data { name, delta } => Some(unplug_model::Origin::Data {
            name: name.clone(),
            delta: *delta,
        }),
        pattern::Origin::Unknown => None,
    }
}

/// The canonical segments of a file entry's classified content.
fn content(e: &Entry, unknown_as_stale: bool) -> Result<Vec<Segment>, Unmapped> {
    debug_assert!(
        e.extents.windows(2).all(|w| w[0].end == w[1].start)
            && e.extents.first().map_or(0, |x| x.start) == 0
            && e.extents.last().map_or(0, |x| x.end) == e.size,
        "{}: the extents do not tile [0, {})",
        e.path,
        e.size
    );
    let extents = e
        .extents
        .iter()
        .filter(|x| !x.is_empty())
        .map(|x| match to_origin(&x.origin) {
            Some(origin) => Ok(unplug_model::Extent {
                start: x.start,
                end: x.end,
                origin,
            }),
            None if unknown_as_stale => Ok(unplug_model::Extent {
                start: x.start,
                end: x.end,
                origin: unplug_model::Origin::Stale,
            }),
            None => Err(Unmapped::Content {
                path: e.path.clone(),
                extent: x.clone(),
            }),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(exact_segments(extents))
}

/// Maps an observed tree into the model's crash-state type, in exactly the shape
/// `unplug_explorer::explore::volatile_state` gives the model's states (see the module doc).
///
/// Fails on the first entry (in the tree's order) the model cannot represent: content that is
/// neither zeros nor a data asked about, or an entry that is neither a file, a directory nor a
/// symlink.
/// Callers report that as a finding: no model state can equal such a tree.
pub fn to_state(tree: &ObservedTree) -> Result<CrashState, Unmapped> {
    state_of(tree, false)
}

/// Like [`to_state`] for a tree read back after a crash: bytes that are neither zeros nor a data
/// asked about are [`unplug_model::Origin::Stale`] (a block's earlier content: another file's
/// data, metadata), so that the model decides whether such bytes may show there. A crash state
/// holding them where the model predicts none is an unsound observation, not an error.
pub(crate) fn to_crash_state(tree: &ObservedTree) -> Result<CrashState, Unmapped> {
    state_of(tree, true)
}

fn state_of(tree: &ObservedTree, unknown_as_stale: bool) -> Result<CrashState, Unmapped> {
    let mut kinds: BTreeMap<u64, Kind> = BTreeMap::new();
    // Per file inode: (size, st_nlink, content), from its first name in the tree.
    let mut files: BTreeMap<u64, (u64, u64, Vec<Segment>)> = BTreeMap::new();
    // Per symlink inode: (target, st_nlink).
    let mut symlinks: BTreeMap<u64, (String, u64)> = BTreeMap::new();
    let mut paths: Vec<(Path, u64)> = Vec::with_capacity(tree.entries.len());
    for e in &tree.entries {
        match e.kind {
            Kind::Other => {
                return Err(Unmapped::Kind {
                    path: e.path.clone(),
                    kind: e.kind,
                })
            }
            Kind::Dir => {}
            Kind::Symlink => {
                symlinks.insert(e.ino, (e.target.clone().unwrap_or_default(), e.links));
            }
            Kind::File => {
                if let btree_map::Entry::Vacant(v) = files.entry(e.ino) {
                    v.insert((e.size, e.links, content(e, unknown_as_stale)?));
                }
            }
        }
        kinds.insert(e.ino, e.kind);
        paths.push((e.path.clone(), e.ino));
    }
    let mut state = build_tree_with(
        &paths,
        |ino| kinds[&ino] == Kind::Dir,
        |ino| symlinks.get(&ino).map(|(t, _)| t.clone()),
        |ino| {
            let (size, _, content) = &files[&ino];
            (*size, content.clone())
        },
    );
    for (path, ino) in &paths {
        match state.tree.get_mut(path) {
            Some(Node::File { links, .. }) => *links = files[ino].1,
            Some(Node::Symlink { links, .. }) => *links = symlinks[ino].1,
            _ => {}
        }
    }
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use unplug_model::Origin;

    fn p(s: &str) -> Path {
        if s == "." {
            Path::root()
        } else {
            Path(s.split('/').map(str::to_string).collect())
        }
    }

    fn dir(path: &str, ino: u64) -> Entry {
        Entry {
            path: p(path),
            kind: Kind::Dir,
            size: 4096,
            links: 2,
            ino,
            extents: Vec::new(),
            target: None,
        }
    }

    fn file(path: &str, ino: u64, links: u64, extents: Vec<Extent>) -> Entry {
        Entry {
            path: p(path),
            kind: Kind::File,
            size: extents.last().map_or(0, |x| x.end),
            links,
            ino,
            extents,
            target: None,
        }
    }

    fn x(start: u64, end: u64, origin: pattern::Origin) -> Extent {
        Extent { start, end, origin }
    }

    fn data(name: &str, delta: i64) -> pattern::Origin {
        pattern::Origin::Data {
            name: name.into(),
            delta,
        }
    }

    fn seg(start: u64, end: u64, origin: Origin) -> Segment {
        Segment::Exact(unplug_model::Extent { start, end, origin })
    }

    fn mdata(name: &str, delta: i64) -> Origin {
        Origin::Data {
            name: name.into(),
            delta,
        }
    }

    fn tree(entries: Vec<Entry>) -> ObservedTree {
        ObservedTree { entries }
    }

    #[test]
    fn empty_root_is_a_directory_with_two_links() {
        let s = to_state(&tree(vec![dir(".", 2)])).unwrap();
        assert_eq!(s.tree.len(), 1);
        assert_eq!(s.tree[&Path::root()], Node::Dir { links: 2 });
    }

    #[test]
    fn files_and_directories() {
        let t = tree(vec![
            dir(".", 2),
            file(
                "a",
                11,
                1,
                vec![
                    x(0, 4096, data("D", 0)),
                    x(4096, 8192, pattern::Origin::Zero),
                    x(8192, 8200, data("E", -8192)),
                ],
            ),
            dir("d", 12),
            dir("d/e", 13),
            file("d/empty", 14, 1, vec![]),
            dir("d/e/f", 15),
            dir("g", 16),
        ]);
        let s = to_state(&t).unwrap();
        let want: Vec<(Path, Node)> = vec![
            (Path::root(), Node::Dir { links: 4 }),
            (
                p("a"),
                Node::File {
                    size: 8200,
                    links: 1,
                    content: vec![
                        seg(0, 4096, mdata("D", 0)),
                        seg(4096, 8192, Origin::Zero),
                        seg(8192, 8200, mdata("E", -8192)),
                    ],
                    same_file_as: None,
                },
            ),
            (p("d"), Node::Dir { links: 3 }),
            (p("d/e"), Node::Dir { links: 3 }),
            (
                p("d/empty"),
                Node::File {
                    size: 0,
                    links: 1,
                    content: vec![],
                    same_file_as: None,
                },
            ),
            (p("d/e/f"), Node::Dir { links: 2 }),
            (p("g"), Node::Dir { links: 2 }),
        ];
        assert_eq!(s.tree.into_iter().collect::<Vec<_>>(), {
            let mut w = want;
            w.sort();
            w
        });
    }

    #[test]
    fn adjacent_extents_of_one_origin_merge() {
        // readback never splits one origin, but a hand-built or sector-wise tree may.
        let t = tree(vec![
            dir(".", 2),
            file(
                "a",
                3,
                1,
                vec![x(0, 512, data("D", 0)), x(512, 1024, data("D", 0))],
            ),
        ]);
        let s = to_state(&t).unwrap();
        let Node::File { content, .. } = &s.tree[&p("a")] else {
            panic!("not a file: {s:?}");
        };
        assert_eq!(content, &vec![seg(0, 1024, mdata("D", 0))]);
    }

    #[test]
    fn hard_links_share_one_file() {
        let body = vec![x(0, 4096, data("D", 0))];
        let t = tree(vec![
            dir(".", 2),
            file("b", 7, 3, body.clone()),
            dir("d", 8),
            file("d/c", 7, 3, body.clone()),
            file("z", 7, 3, body.clone()),
            file("lone", 9, 1, body),
        ]);
        let s = to_state(&t).unwrap();
        let linked = |same: Option<&str>| Node::File {
            size: 4096,
            links: 3,
            content: vec![seg(0, 4096, mdata("D", 0))],
            same_file_as: same.map(p),
        };
        assert_eq!(s.tree[&p("b")], linked(None));
        assert_eq!(s.tree[&p("d/c")], linked(Some("b")));
        assert_eq!(s.tree[&p("z")], linked(Some("b")));
        assert_eq!(
            s.tree[&p("lone")],
            Node::File {
                size: 4096,
                links: 1,
                content: vec![seg(0, 4096, mdata("D", 0))],
                same_file_as: None,
            }
        );
        assert_eq!(s.tree[&Path::root()], Node::Dir { links: 3 });
    }

    #[test]
    fn file_links_are_the_observed_st_nlink() {
        // One name in the tree but two links: a count no name accounts for shows up as is.
        let t = tree(vec![dir(".", 2), file("a", 3, 2, vec![])]);
        let s = to_state(&t).unwrap();
        assert!(matches!(s.tree[&p("a")], Node::File { links: 2, .. }));
    }

    #[test]
    fn unknown_extent_is_unmapped() {
        let bad = x(4096, 4100, pattern::Origin::Unknown);
        let t = tree(vec![
            dir(".", 2),
            file("a", 3, 1, vec![x(0, 4096, data("D", 0))]),
            file(
                "b",
                4,
                1,
                vec![
                    x(0, 4096, data("D", 0)),
                    bad.clone(),
                    x(4100, 8192, pattern::Origin::Unknown),
                ],
            ),
        ]);
        let err = to_state(&t).unwrap_err();
        assert_eq!(
            err,
            Unmapped::Content {
                path: p("b"),
                extent: bad,
            }
        );
        assert_eq!(err.path(), &p("b"));
        assert_eq!(
            err.to_string(),
            "b: bytes [4096, 4100) are neither zeros nor any data the program writes \
             (stale blocks, garbage or a torn sector)"
        );
    }

    #[test]
    fn other_kinds_are_unmapped() {
        let mut e = dir("s", 3);
        e.kind = Kind::Other;
        let err = to_state(&tree(vec![dir(".", 2), e])).unwrap_err();
        assert_eq!(
            err,
            Unmapped::Kind {
                path: p("s"),
                kind: Kind::Other
            }
        );
        assert_eq!(
            err.to_string(),
            "s: is neither a regular file, a directory nor a symlink"
        );
    }

    fn symlink(path: &str, ino: u64, links: u64, target: &str) -> Entry {
        Entry {
            path: p(path),
            kind: Kind::Symlink,
            size: target.len() as u64,
            links,
            ino,
            extents: Vec::new(),
            target: Some(target.to_string()),
        }
    }

    #[test]
    fn symlinks_map_to_the_models_symlinks() {
        // Two names of one symlink, and one in a subdirectory whose target goes nowhere.
        let src = "mkdir d\n\
                   symlink v2 cur\n\
                   link cur cur2\n\
                   symlink ../x/y d/l\n";
        let program = unplug_model::parse::parse(src).unwrap();
        let predicted = unplug_explorer::Analysis::new(&program).unwrap().new;
        let t = tree(vec![
            dir(".", 2),
            symlink("cur", 7, 2, "v2"),
            symlink("cur2", 7, 2, "v2"),
            dir("d", 3),
            symlink("d/l", 8, 1, "../x/y"),
        ]);
        let state = to_state(&t).unwrap();
        assert_eq!(state, predicted);
        assert_eq!(
            state.to_string(),
            "cur  symlink -> v2  links 2\n\
             cur2  symlink -> v2  links 2\n\
             d/  dir\n\
             d/l  symlink -> ../x/y"
        );
        // The observed link count is what the state says.
        let t = tree(vec![dir(".", 2), symlink("cur", 7, 3, "v2")]);
        assert_eq!(
            to_state(&t).unwrap().tree[&p("cur")],
            Node::Symlink {
                target: "v2".into(),
                links: 3
            }
        );
    }

    #[test]
    fn origins_map_one_to_one() {
        assert_eq!(to_origin(&pattern::Origin::Zero), Some(Origin::Zero));
        assert_eq!(to_origin(&data("D", -7)), Some(mdata("D", -7)));
        assert_eq!(to_origin(&pattern::Origin::Unknown), None);
    }

    #[test]
    fn same_shape_as_the_models_volatile_state() {
        // A program whose volatile end state has a subdirectory, a hole, two data and a hard
        // link; its observed counterpart, built by hand, must map to the very same state.
        let src = "mkdir d\n\
                   f = open d/a create\n\
                   pwrite f 0 4KiB D\n\
                   pwrite f 8KiB 4KiB E\n\
                   link d/a b\n\
                   g = open c create\n";
        let program = unplug_model::parse::parse(src).unwrap();
        let predicted = unplug_explorer::Analysis::new(&program).unwrap().new;
        let body = vec![
            x(0, 4096, data("D", 0)),
            x(4096, 8192, pattern::Origin::Zero),
            x(8192, 12288, data("E", 0)),
        ];
        let t = tree(vec![
            dir(".", 2),
            file("b", 5, 2, body.clone()),
            file("c", 6, 1, vec![]),
            dir("d", 3),
            file("d/a", 5, 2, body),
        ]);
        assert_eq!(to_state(&t).unwrap(), predicted);
    }
}
