//! The volatile execution of the newer ops (fallocate, rename exchange / noreplace, O_TMPFILE and
//! flink, symlinks, sync_file_range, O_DIRECT): the facts each records, and every semantic error,
//! all reported in one run.

use unplug_model::volatile::{Dirty, SyncReq};
use unplug_model::{load, Assign, Kind, Trace};

fn trace(src: &str) -> Trace {
    load(src).unwrap_or_else(|e| panic!("{src}\n{e:#?}")).1
}

/// The errors of `src`, as `line: message` (the line of the op the error points at).
fn errors(src: &str) -> Vec<String> {
    let diags = match load(src) {
        Ok(_) => panic!("{src}: no error"),
        Err(d) => d,
    };
    diags
        .iter()
        .map(|d| {
            let line = src[..d.span.start].matches('\n').count() + 1;
            format!("{line}: {}", d.message)
        })
        .collect()
}

/// `src` fails with exactly one error per expected `(line, message substring)`.
#[track_caller]
fn check_errors(src: &str, expected: &[(usize, &str)]) {
    let got = errors(src);
    assert_eq!(got.len(), expected.len(), "{src}\n{got:#?}");
    for (line, msg) in expected {
        assert!(
            got.iter()
                .any(|g| g.starts_with(&format!("{line}: ")) && g.contains(msg)),
            "{src}\nexpected {line}: {msg}\ngot {got:#?}"
        );
    }
}

fn entry(dir: usize, name: &str, target: Option<usize>) -> Assign {
    Assign::Entry {
        dir,
        name: name.into(),
        target,
    }
}

#[test]
fn fallocate_extends_at_the_syscall_and_dirties_nothing() {
    let t = trace(
        "setup\nf = open a create\nwrite f 4KiB OLD\nend\n\
         fallocate f 0 16KiB\n\
         fallocate f 0 64KiB keep-size\n\
         fallocate f 4KiB 4KiB\n",
    );
    let grow = &t.ops[0];
    assert_eq!(
        grow.assigns,
        [Assign::Size {
            ino: 1,
            size: 16384,
            holes_from: None
        }]
    );
    assert_eq!(grow.extends, None);
    assert!(grow.dirtied.is_empty());
    assert_eq!(grow.allocated, Some((1, 0, 16384)));
    assert_eq!(
        (&grow.touched[..], &grow.datasync_touched[..]),
        (&[1][..], &[1][..])
    );
    // keep-size and a range inside the file: no size change, only the allocation.
    for f in &t.ops[1..] {
        assert!(f.assigns.is_empty() && f.dirtied.is_empty() && f.extends.is_none());
        assert_eq!(f.datasync_touched, [1]);
    }
    assert_eq!(t.ops[1].allocated, Some((1, 0, 65536)));
    // The new range reads as zeros; the old data stays.
    let (kind, size, content) = &t.last.inodes[&1];
    assert_eq!((*kind, *size), (Kind::File, 16384));
    assert_eq!(content.0.len(), 1);
    assert_eq!(content.0[0].end, 4096);
    // The size change is a layout cut.
    assert!(t.cuts[&1].contains(&16384));
}

#[test]
fn fallocate_errors() {
    check_errors(
        "f = open a create\nd = open . dir\n\
         fallocate f 0 0\n\
         fallocate d 0 4KiB\n\
         fallocate g 0 4KiB\n\
         fallocate f 0 4KiB keep-size\n",
        &[
            (3, "fallocate of length 0 fails with EINVAL"),
            (4, "`d` is a directory handle"),
            (5, "handle `g` is not open"),
        ],
    );
}

#[test]
fn rename_exchange_swaps_both_entries_in_one_op() {
    let t = trace(
        "setup\nmkdir d\nf = open a create\ng = open d/b create\nend\n\
         rename a d/b exchange\n\
         rename d a exchange\n",
    );
    // a is inode 2, d inode 1, d/b inode 3.
    assert_eq!(
        t.ops[0].assigns,
        [entry(0, "a", Some(3)), entry(1, "b", Some(2))]
    );
    assert_eq!(t.ops[0].touched, [0, 1, 2, 3]);
    assert_eq!(t.ops[0].rename_over, None);
    // A directory and a file swap too.
    assert_eq!(
        t.ops[1].assigns,
        [entry(0, "d", Some(3)), entry(0, "a", Some(1))]
    );
    assert_eq!(t.last.entries[&(0, "a".to_string())], 1);
    assert_eq!(t.last.entries[&(1, "b".to_string())], 2);
    // Two names of one inode: nothing happens.
    let t = trace("setup\nf = open a create\nlink a b\nend\nrename a b exchange\n");
    assert!(t.ops[0].assigns.is_empty());
}

#[test]
fn rename_noreplace() {
    let t = trace("setup\nf = open a create\nend\nrename a b noreplace\n");
    assert_eq!(
        t.ops[0].assigns,
        [entry(0, "a", None), entry(0, "b", Some(1))]
    );
    check_errors(
        "setup\nf = open a create\ng = open b create\nmkdir d\nmkdir d/e\nend\n\
         rename a b noreplace\n\
         rename a a noreplace\n\
         rename a c exchange\n\
         rename c a exchange\n\
         rename d d/e exchange\n\
         rename d/e d exchange\n\
         rename a d/x exchange\n",
        &[
            (7, "`b` already exists: RENAME_NOREPLACE fails with EEXIST"),
            (8, "`a` already exists"),
            (
                9,
                "`c` does not exist at this point: RENAME_EXCHANGE needs both names",
            ),
            (10, "`c` does not exist"),
            (11, "cannot exchange `d` with a path inside it: EINVAL"),
            (12, "cannot exchange `d` with a path inside it: EINVAL"),
            (13, "`d/x` does not exist"),
        ],
    );
}

#[test]
fn tmpfile_is_an_inode_without_a_name_until_flink() {
    let t = trace(
        "mkdir d\n\
         t = open d tmpfile\n\
         write t 4KiB D\n\
         fsync t\n\
         flink t d/name\n\
         flink t other\n",
    );
    let open = &t.ops[1];
    assert_eq!(
        open.assigns,
        [Assign::Init {
            ino: 2,
            kind: Kind::File
        }]
    );
    assert_eq!(open.touched, [2]);
    assert!(!t.paths_after.at(2).contains_key(&2));
    assert_eq!(
        t.ops[3].sync,
        Some(SyncReq::File {
            ino: 2,
            datasync: false,
            range: None
        })
    );
    assert_eq!(t.ops[4].assigns, [entry(1, "name", Some(2))]);
    assert_eq!(t.ops[4].touched, [1, 2]);
    // A file with a name can get more (linkat of a descriptor works on any file).
    assert_eq!(t.ops[5].assigns, [entry(0, "other", Some(2))]);
    assert_eq!(t.kinds[&2], Kind::File);
}

#[test]
fn tmpfile_and_flink_errors() {
    check_errors(
        "setup\nf = open file create\nend\n\
         a = open . tmpfile create\n\
         b = open . tmpfile dir\n\
         c = open file tmpfile\n\
         d = open nowhere tmpfile\n\
         e = open . tmpfile excl\n\
         flink e x\n\
         t = open . tmpfile\n\
         flink t file\n\
         flink t nodir/x\n\
         flink t x\n\
         unlink x\n\
         flink t y\n\
         r = open . dir\n\
         flink r z\n\
         flink nope z\n",
        &[
            (4, "O_TMPFILE with O_CREAT fails with EINVAL"),
            (5, "`dir` does not go with it"),
            (
                6,
                "`file` is not a directory: O_TMPFILE needs one (ENOTDIR)",
            ),
            (7, "`nowhere` does not exist"),
            (
                9,
                "the file of `e` has no name left and cannot get one: ENOENT",
            ),
            (11, "`file` already exists: EEXIST"),
            (12, "directory `nodir` does not exist"),
            // Linked once, then unlinked: no longer linkable (I_LINKABLE is cleared).
            (
                15,
                "the file of `t` has no name left and cannot get one: ENOENT",
            ),
            (
                17,
                "`r` is a directory handle: hard links to directories are not allowed",
            ),
            (18, "handle `nope` is not open"),
        ],
    );
    // A file unlinked while open cannot get a name back.
    check_errors(
        "f = open a create\nunlink a\nflink f b\n",
        &[(3, "has no name left and cannot get one: ENOENT")],
    );
}

#[test]
fn symlink_is_a_new_inode_with_its_target() {
    let t = trace(
        "mkdir d\n\
         symlink ../v2 d/cur\n\
         link d/cur cur2\n\
         rename cur2 cur3\n\
         unlink cur3\n",
    );
    assert_eq!(
        t.ops[1].assigns,
        [
            Assign::Init {
                ino: 2,
                kind: Kind::Symlink
            },
            entry(1, "cur", Some(2))
        ]
    );
    assert_eq!(t.ops[1].datasync_touched, [2]);
    assert_eq!(t.kinds[&2], Kind::Symlink);
    assert_eq!(t.last.symlinks[&2], "../v2");
    assert!(t.initial.symlinks.is_empty());
    assert_eq!(t.ops[2].assigns, [entry(0, "cur2", Some(2))]);
    // Symlinks have no blocks: no layout chunk.
    assert!(!t.cuts.contains_key(&2));
}

#[test]
fn the_model_never_follows_a_symlink() {
    check_errors(
        "setup\nmkdir d\nsymlink d s\nsymlink nowhere dangling\nend\n\
         f = open s/x create\n\
         g = open s dir\n\
         h = open dangling create\n\
         mkdir s/e\n\
         rename s/a b\n\
         link dangling s/y\n\
         rmdir s\n\
         mkdir s\n\
         symlink x s\n\
         t = open s tmpfile\n\
         unlink s\n\
         rename dangling d/l\n",
        &[
            (
                6,
                "`s/x` goes through the symlink `s`: the kernel would follow it",
            ),
            (7, "`s` is a symlink: open would follow it"),
            (8, "`dangling` is a symlink: open would follow it"),
            (9, "`s/e` goes through the symlink `s`"),
            (10, "`s/a` goes through the symlink `s`"),
            (11, "`s/y` goes through the symlink `s`"),
            (12, "`s` is not a directory"),
            (13, "`s` already exists: EEXIST"),
            (14, "`s` already exists: EEXIST"),
            (15, "`s` is a symlink: the model does not follow symlinks"),
        ],
    );
}

#[test]
fn sync_file_range_starts_writeback_and_syncs_nothing() {
    let t = trace(
        "f = open a create\nwrite f 12KiB D\n\
         sync_file_range f 4KiB 4KiB\n\
         sync_file_range f 4KiB 0\n\
         d = open . dir\n\
         sync_file_range d 0 0\n",
    );
    let f = &t.ops[2];
    assert_eq!(f.sync, None);
    assert!(f.assigns.is_empty() && f.dirtied.is_empty() && f.touched.is_empty());
    assert_eq!(f.writeback, Some((1, 4096, 8192)));
    assert_eq!(t.ops[3].writeback, Some((1, 4096, 12288)));
    assert_eq!(t.ops[5].writeback, None);
    check_errors("sync_file_range f 0 0\n", &[(1, "handle `f` is not open")]);
}

#[test]
fn direct_writes_are_aligned_and_marked() {
    let t = trace(
        "f = open a create direct\n\
         pwrite f 0 4KiB D\n\
         write f 512 D\n\
         g = open a\n\
         pwrite g 1 1 D\n",
    );
    assert_eq!(
        t.ops[1].dirtied,
        [Dirty {
            ino: 1,
            start: 0,
            end: 4096,
            mapped: false,
            direct: true
        }]
    );
    assert!(t.ops[2].dirtied[0].direct);
    assert!(!t.ops[4].dirtied[0].direct);
    check_errors(
        "setup\nf = open a create\nwrite f 100 OLD\nend\n\
         g = open a direct\n\
         pwrite g 100 512 D\n\
         pwrite g 0 100 D\n\
         h = open a direct append\n\
         write h 512 D\n\
         mkdir d\n\
         e = open d dir direct\n\
         pwrite g 1024 512 D\n",
        &[
            (
                6,
                "O_DIRECT write of 512 bytes at offset 100: the offset and the length must be \
                 multiples of 512 (EINVAL)",
            ),
            (7, "O_DIRECT write of 100 bytes at offset 0"),
            // O_APPEND: the write lands at the end of the 100-byte file.
            (9, "O_DIRECT write of 512 bytes at offset 100"),
            (11, "`d`: O_DIRECT on a directory fails with EINVAL"),
        ],
    );
}

#[test]
fn every_new_error_in_one_run() {
    let got = errors(
        "fallocate f 0 1\n\
         rename a b exchange\n\
         t = open nodir tmpfile\n\
         flink t x\n\
         symlink v2 s\n\
         symlink v3 s\n\
         sync_file_range f 0 0\n\
         g = open s\n",
    );
    assert_eq!(got.len(), 7, "{got:#?}");
    assert!(got[6].starts_with("8: `s` is a symlink"), "{got:#?}");
}

/// A file holds at most 2^63 - 1 bytes (MAX_LFS_FILESIZE): a write, truncate, fallocate or
/// mapping that ends past it fails as Linux fails it, so no later stage sees an offset whose
/// block arithmetic could overflow. Large ranges inside the limit run.
#[test]
fn ranges_past_the_largest_file_size_fail() {
    check_errors(
        "f = open a create\n\
         write f 18446744073709551615 D\n\
         ftruncate f 18446744073709551615\n\
         pwrite f 9223372036854775807 1 D\n\
         fallocate f 9223372036854775000 1000\n\
         m = mmap f 9223372036854771712 8KiB\n\
         g = open b create append\n\
         ftruncate g 9223372036854775806\n\
         write g 2 D\n",
        &[
            (2, "the write ends at byte 18446744073709551615, past the largest file size (2^63 - 1 bytes): EFBIG"),
            (3, "the truncate ends at byte 18446744073709551615, past the largest file size (2^63 - 1 bytes): EINVAL"),
            (4, "the write ends at byte 9223372036854775808"),
            (5, "the fallocate range ends at byte 9223372036854776000"),
            (6, "the mapping ends at byte 9223372036854779904"),
            // O_APPEND: the write lands at the end of the file, one byte below the limit.
            (9, "the write ends at byte 9223372036854775808"),
        ],
    );
    let t = trace(
        "f = open a create\n\
         pwrite f 1048576TiB 4KiB D\n\
         ftruncate f 9223372036854775807\n",
    );
    assert_eq!(t.last.inodes[&1].1, 9_223_372_036_854_775_807);
}
