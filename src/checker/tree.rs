//! A crash state as a real directory tree: the concrete states a class stands for (its
//! *members*), and the writing of one member into a directory with real bytes, sizes, holes,
//! hard links and symlinks.
//!
//! A class's mixed segment (`blocks` units, each holding one of `values`, every value held by
//! some unit) stands for every such assignment. When the class has at most [`ALL_MEMBERS`]
//! concrete states, each is a member; otherwise the members are representatives, and the
//! judgment of the class is not exhaustive (reported as such): per mixed segment, for each
//! value, the assignment where it fills every unit but the first ones (which take the other
//! values in order) and the one where it fills every unit but the last ones, i.e. a write torn
//! at its start and at its end, for each value.

use std::hash::{Hash, Hasher};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path as StdPath;
use unplug_explorer::{CrashState, Node, Segment};
use unplug_model::{BlockValue, Origin};
use unplug_realfs::DataBytes;

/// The most concrete states a class may have for all of them to be checked.
pub(crate) const ALL_MEMBERS: u64 = 16;

/// One concrete state of a class: per mixed segment of the state (in tree order, files with
/// several names once), the value index each unit holds.
pub(crate) type Member = Vec<Vec<usize>>;

/// The members checked for `state`, and whether they are all its concrete states.
pub(crate) fn members(state: &CrashState) -> (Vec<Member>, bool) {
    let segs: Vec<(u64, usize)> = mixed(state)
        .map(|s| match s {
            Segment::Mixed { blocks, values, .. } => (*blocks, values.len()),
            Segment::Exact(_) => unreachable!("mixed() yields mixed segments"),
        })
        .collect();
    if segs.is_empty() {
        return (vec![Vec::new()], true);
    }
    let exhaustive = state
        .concrete_count()
        .exact()
        .and_then(|n| n.to_string().parse::<u64>().ok())
        .is_some_and(|n| n <= ALL_MEMBERS);
    if exhaustive {
        // Every combination of every segment's surjections.
        let mut out: Vec<Member> = vec![Vec::new()];
        for &(n, k) in &segs {
            let each = surjections(n, k);
            out = out
                .into_iter()
                .flat_map(|m| {
                    each.iter().map(move |a| {
                        let mut m = m.clone();
                        m.push(a.clone());
                        m
                    })
                })
                .collect();
        }
        return (out, true);
    }
    // Representatives: the i-th of every segment's, together.
    let reps: Vec<Vec<Vec<usize>>> = segs.iter().map(|&(n, k)| representatives(n, k)).collect();
    let most = reps.iter().map(Vec::len).max().unwrap_or(1);
    let out = (0..most)
        .map(|i| reps.iter().map(|r| r[i % r.len()].clone()).collect())
        .collect();
    (out, false)
}

/// The mixed segments of a state, in the order [`Member`] indexes them.
fn mixed(state: &CrashState) -> impl Iterator<Item = &Segment> {
    state
        .tree
        .values()
        .flat_map(|n| match n {
            Node::File {
                content,
                same_file_as: None,
                ..
            } => content.as_slice(),
            _ => &[],
        })
        .filter(|s| matches!(s, Segment::Mixed { .. }))
}

/// Every assignment of `k` values to `n` units that uses each value (`n` is small here).
fn surjections(n: u64, k: usize) -> Vec<Vec<usize>> {
    let n = n as usize;
    let mut out = Vec::new();
    let mut a = vec![0usize; n];
    loop {
        if (0..k).all(|v| a.contains(&v)) {
            out.push(a.clone());
        }
        // The next assignment in base k.
        let mut i = 0;
        while i < n && a[i] + 1 == k {
            a[i] = 0;
            i += 1;
        }
        if i == n {
            return out;
        }
        a[i] += 1;
    }
}

/// For each value: it fills the units after the other values (one unit each, in order), and it
/// fills the units before them.
fn representatives(n: u64, k: usize) -> Vec<Vec<usize>> {
    let n = n as usize;
    let mut out = Vec::new();
    for v in 0..k {
        let others: Vec<usize> = (0..k).filter(|&o| o != v).collect();
        let mut head = others.clone();
        head.resize(n, v);
        let mut tail = vec![v; n - others.len()];
        tail.extend(&others);
        for a in [head, tail] {
            if !out.contains(&a) {
                out.push(a);
            }
        }
    }
    out
}

/// A hash of what `member` of `state` holds, for deduplicating checker runs: equal hashes for
/// equal trees (the same paths, kinds, sizes, link targets, and byte sources).
pub(crate) fn tree_hash(state: &CrashState, member: &Member) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    state.tree.hash(&mut h);
    member.hash(&mut h);
    h.finish()
}

/// Writes `member` of `state` into the empty directory `dir` (the state's root). A state
/// built as a checker reads it (`checker {PATHS}`) gets the directories above its paths.
pub(crate) fn write(
    state: &CrashState,
    member: &Member,
    data: &DataBytes,
    dir: &StdPath,
) -> io::Result<()> {
    let mut seg = 0usize;
    for (path, node) in &state.tree {
        if path.0.is_empty() {
            continue;
        }
        let at = dir.join(path.to_string());
        // A state built as a checker reads it holds its paths without their parents.
        if let Some(parent) = at.parent() {
            std::fs::create_dir_all(parent)?;
        }
        match node {
            Node::Dir { .. } => std::fs::create_dir_all(&at)?,
            Node::Symlink { target, .. } => std::os::unix::fs::symlink(target, &at)?,
            Node::File {
                same_file_as: Some(first),
                ..
            } => std::fs::hard_link(dir.join(first.to_string()), &at)?,
            Node::File { size, content, .. } => {
                let f = std::fs::File::create(&at)?;
                for s in content {
                    match s {
                        Segment::Exact(e) => {
                            put(&f, e.start, e.end - e.start, &e.origin, e.start, data)?
                        }
                        Segment::Mixed {
                            unit,
                            start,
                            end,
                            values,
                            ..
                        } => {
                            let values: Vec<&BlockValue> = values.iter().collect();
                            let units = &member[seg];
                            seg += 1;
                            for (i, &v) in units.iter().enumerate() {
                                let base = start + i as u64 * unit;
                                for (s, e, origin) in &values[v].0 {
                                    let from = base + s;
                                    let to = (base + e).min(*end);
                                    if from < to {
                                        put(&f, from, to - from, origin, from, data)?;
                                    }
                                }
                            }
                        }
                    }
                }
                f.set_len(*size)?;
            }
        }
    }
    Ok(())
}

/// Writes `len` bytes of `origin` at file offset `at` (`file_off` names the byte a data delta
/// counts from). Zeros are holes.
fn put(
    f: &std::fs::File,
    at: u64,
    len: u64,
    origin: &Origin,
    file_off: u64,
    data: &DataBytes,
) -> io::Result<()> {
    const STEP: u64 = 1 << 20;
    let mut done = 0;
    while done < len {
        let n = (len - done).min(STEP) as usize;
        let bytes = match origin {
            Origin::Zero => return Ok(()),
            Origin::Data { name, delta } => {
                let off = (file_off + done) as i64 + delta;
                data.slice(name, off.max(0) as u64, n)?
            }
            // What a block held before: not the file's data (a recognizable filler).
            Origin::Stale => filler(b"<stale> ", at + done, n),
            Origin::Garbage => filler(b"<garbage> ", at + done, n),
        };
        f.write_all_at(&bytes, at + done)?;
        done += n as u64;
    }
    Ok(())
}

fn filler(pattern: &[u8], from: u64, n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| pattern[((from as usize) + i) % pattern.len()])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn surjections_use_every_value() {
        let s = surjections(3, 2);
        assert_eq!(s.len(), 6);
        assert!(s.iter().all(|a| a.contains(&0) && a.contains(&1)));
    }

    #[test]
    fn representatives_tear_at_both_ends() {
        let r = representatives(4, 2);
        assert_eq!(
            r,
            vec![
                vec![1, 0, 0, 0],
                vec![0, 0, 0, 1],
                vec![0, 1, 1, 1],
                vec![1, 1, 1, 0]
            ]
        );
    }
}
