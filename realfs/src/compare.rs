//! Compares an observed crash state with a predicted one and says, per path and in plain words,
//! what differs.

use serde::Serialize;
use std::collections::BTreeSet;
use unplug_explorer::state::size_str;
use unplug_explorer::{CrashState, Node, Segment};
use unplug_model::Path;

/// What a real run left next to what the model predicts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Comparison {
    /// The tree the run left, mapped with [`crate::observe::to_state`].
    pub observed: CrashState,
    /// The model's state of the same moment.
    pub predicted: CrashState,
    /// `observed == predicted`.
    pub equal: bool,
    /// One line per difference, in path order (empty exactly when `equal`).
    pub differences: Vec<String>,
}

impl Comparison {
    pub fn new(observed: CrashState, predicted: CrashState) -> Comparison {
        let differences = differences(&observed, &predicted);
        let equal = observed == predicted;
        debug_assert_eq!(equal, differences.is_empty());
        Comparison {
            observed,
            predicted,
            equal,
            differences,
        }
    }
}

fn describe(node: &Node) -> String {
    match node {
        Node::Dir { .. } => "a directory".into(),
        Node::File { size, .. } => format!("a file of size {}", size_str(*size)),
        Node::Symlink { target, .. } => format!("a symlink to {target}"),
    }
}

fn content_str(content: &[Segment]) -> String {
    if content.is_empty() {
        "nothing".into()
    } else {
        content
            .iter()
            .map(Segment::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn name_str(same_file_as: &Option<Path>) -> String {
    match same_file_as {
        None => "its own file (or the first name of it)".into(),
        Some(p) => format!("another name of {p}"),
    }
}

/// What differs between `observed` (on disk) and `predicted` (by the model), one line per path
/// and aspect: a missing or extra path, a file that is a directory on the other side, a size, a
/// link count, which file a name belongs to, or the content.
pub fn differences(observed: &CrashState, predicted: &CrashState) -> Vec<String> {
    let paths: BTreeSet<&Path> = observed.tree.keys().chain(predicted.tree.keys()).collect();
    let mut out = Vec::new();
    for path in paths {
        match (observed.tree.get(path), predicted.tree.get(path)) {
            (None, None) => {}
            (None, Some(p)) => out.push(format!(
                "{path}: missing: the model predicts {}, there is none on disk",
                describe(p)
            )),
            (Some(o), None) => out.push(format!(
                "{path}: extra: {} on disk, the model predicts no such path",
                describe(o)
            )),
            (Some(Node::Dir { links: lo }), Some(Node::Dir { links: lp })) => {
                if lo != lp {
                    out.push(format!(
                        "{path}: links: {lo} on disk, {lp} predicted (directory)"
                    ));
                }
            }
            (
                Some(Node::File {
                    size: so,
                    links: lo,
                    content: co,
                    same_file_as: fo,
                }),
                Some(Node::File {
                    size: sp,
                    links: lp,
                    content: cp,
                    same_file_as: fp,
                }),
            ) => {
                if so != sp {
                    out.push(format!(
                        "{path}: size: {} on disk, {} predicted",
                        size_str(*so),
                        size_str(*sp)
                    ));
                }
                if lo != lp {
                    out.push(format!("{path}: links: {lo} on disk, {lp} predicted"));
                }
                if fo != fp {
                    out.push(format!(
                        "{path}: name: {} on disk, {} predicted",
                        name_str(fo),
                        name_str(fp)
                    ));
                }
                // Every name of a file carries its content: say a content difference once, at
                // the first name, unless the names disagree on which file this is.
                if co != cp && (fo.is_none() || fo != fp) {
                    out.push(format!(
                        "{path}: content: {} on disk, {} predicted",
                        content_str(co),
                        content_str(cp)
                    ));
                }
            }
            (
                Some(Node::Symlink {
                    target: to,
                    links: lo,
                }),
                Some(Node::Symlink {
                    target: tp,
                    links: lp,
                }),
            ) => {
                if to != tp {
                    out.push(format!(
                        "{path}: symlink target: {to} on disk, {tp} predicted"
                    ));
                }
                if lo != lp {
                    out.push(format!(
                        "{path}: links: {lo} on disk, {lp} predicted (symlink)"
                    ));
                }
            }
            (Some(o), Some(p)) => out.push(format!(
                "{path}: kind: {} on disk, the model predicts {}",
                describe(o),
                describe(p)
            )),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use unplug_model::{Extent, Origin};

    fn p(s: &str) -> Path {
        Path(s.split('/').map(str::to_string).collect())
    }

    fn d(start: u64, end: u64) -> Segment {
        Segment::Exact(Extent {
            start,
            end,
            origin: Origin::Data {
                name: "D".into(),
                delta: 0,
            },
        })
    }

    fn zero(start: u64, end: u64) -> Segment {
        Segment::Exact(Extent {
            start,
            end,
            origin: Origin::Zero,
        })
    }

    fn file(size: u64, links: u64, content: Vec<Segment>, same: Option<&str>) -> Node {
        Node::File {
            size,
            links,
            content,
            same_file_as: same.map(p),
        }
    }

    fn state(nodes: Vec<(Path, Node)>) -> CrashState {
        CrashState {
            tree: nodes.into_iter().collect(),
        }
    }

    #[test]
    fn equal_states_have_no_differences() {
        let s = state(vec![
            (Path::root(), Node::Dir { links: 2 }),
            (p("a"), file(4096, 1, vec![d(0, 4096)], None)),
        ]);
        let c = Comparison::new(s.clone(), s);
        assert!(c.equal);
        assert!(c.differences.is_empty());
    }

    #[test]
    fn every_kind_of_difference_is_named() {
        let observed = state(vec![
            (Path::root(), Node::Dir { links: 3 }),
            (
                p("a"),
                file(8192, 2, vec![d(0, 4096), zero(4096, 8192)], None),
            ),
            (p("b"), Node::Dir { links: 2 }),
            (
                p("c"),
                file(8192, 2, vec![d(0, 4096), zero(4096, 8192)], Some("a")),
            ),
            (p("extra"), file(0, 1, vec![], None)),
        ]);
        let predicted = state(vec![
            (Path::root(), Node::Dir { links: 2 }),
            (p("a"), file(4096, 1, vec![d(0, 4096)], None)),
            (p("b"), file(0, 1, vec![], None)),
            (p("c"), file(4096, 1, vec![d(0, 4096)], None)),
            (p("gone"), Node::Dir { links: 2 }),
        ]);
        let c = Comparison::new(observed, predicted);
        assert!(!c.equal);
        assert_eq!(
            c.differences,
            vec![
                ".: links: 3 on disk, 2 predicted (directory)",
                "a: size: 8KiB on disk, 4KiB predicted",
                "a: links: 2 on disk, 1 predicted",
                "a: content: [0, 4KiB) D, [4KiB, 8KiB) zero on disk, [0, 4KiB) D predicted",
                "b: kind: a directory on disk, the model predicts a file of size 0",
                "c: size: 8KiB on disk, 4KiB predicted",
                "c: links: 2 on disk, 1 predicted",
                "c: name: another name of a on disk, its own file (or the first name of it) \
                 predicted",
                "c: content: [0, 4KiB) D, [4KiB, 8KiB) zero on disk, [0, 4KiB) D predicted",
                "extra: extra: a file of size 0 on disk, the model predicts no such path",
                "gone: missing: the model predicts a directory, there is none on disk",
            ]
        );
    }

    #[test]
    fn a_content_difference_is_said_once_per_file() {
        let observed = state(vec![
            (p("a"), file(4096, 2, vec![zero(0, 4096)], None)),
            (p("b"), file(4096, 2, vec![zero(0, 4096)], Some("a"))),
        ]);
        let predicted = state(vec![
            (p("a"), file(4096, 2, vec![d(0, 4096)], None)),
            (p("b"), file(4096, 2, vec![d(0, 4096)], Some("a"))),
        ]);
        assert_eq!(
            differences(&observed, &predicted),
            vec!["a: content: [0, 4KiB) zero on disk, [0, 4KiB) D predicted"]
        );
        assert_eq!(
            differences(
                &state(vec![(p("e"), file(0, 1, vec![], None))]),
                &state(vec![(p("e"), file(4096, 1, vec![d(0, 4096)], None))])
            ),
            vec![
                "e: size: 0 on disk, 4KiB predicted",
                "e: content: nothing on disk, [0, 4KiB) D predicted"
            ]
        );
    }
}
