//! Every error: its position, message and hint, several in one run, sorted.
use super::*;

#[test]
fn statement_errors() {
    check_err("frobnicate x", &["1:1: unknown statement `frobnicate`"]);
    check_err("  fsyn f", &["1:3: unknown statement `fsyn`"]);
    check_err("open tmp create", &["1:1: `open` must assign its result"]);
    check_err("mmap f 0 1", &["1:1: `mmap` must assign its result"]);
    check_err(
        "f = close g",
        &["1:5: only `open` and `mmap` return a handle"],
    );
    check_err("f =", &["1:4: missing `open` or `mmap`"]);
    check_err("( sync", &["1:1: expected a statement, found `(`"]);
    check_err("! sync", &["1:1: expected a statement"]);
    check_err("sync now", &["1:6: unexpected `now`"]);
}

#[test]
fn argument_errors() {
    check_err("f = open tmp creat", &["1:14: unknown open flag `creat`"]);
    check_err(
        "f = open tmp create O_SYNC",
        &["1:21: unknown open flag `O_SYNC`"],
    );
    check_err("f = open tmp (", &["1:14: unknown open flag `(`"]);
    check_err("f = open", &["1:9: missing path"]);
    check_err("1f = open tmp", &["1:1: bad handle name `1f`"]);
    check_err("close", &["1:6: missing handle"]);
    check_err("close f g", &["1:9: unexpected `g`"]);
    check_err("close 9", &["1:7: bad handle `9`"]);
    check_err("close (", &["1:7: expected handle, found `(`"]);
    check_err(
        "write f 4KB D",
        &["1:9: bad length `4KB`: unknown unit `KB`"],
    );
    check_err("write f D 4KiB", &["1:9: bad length `D`: not a size"]);
    check_err("write f 4KiB", &["1:13: missing data name"]);
    check_err("write f 4KiB old", &["1:14: `old` cannot be a data name"]);
    check_err("write f 4KiB new", &["1:14: `new` cannot be a data name"]);
    check_err("write f 4KiB 1D", &["1:14: bad data name `1D`"]);
    check_err("write f 4KiB D at", &["1:18: missing data offset"]);
    check_err("write f 4KiB D at x", &["1:19: bad data offset `x`"]);
    check_err("write f 4KiB D on 0", &["1:16: unexpected `on`"]);
    check_err(
        "write f 99999999999999TiB D",
        &["1:9: bad length `99999999999999TiB`: does not fit in 64 bits"],
    );
    check_err(
        "ftruncate f 18446744073709551616",
        &["1:13: does not fit in 64 bits"],
    );
    check_err("ftruncate f -1", &["1:13: bad size `-1`: not a size"]);
    check_err(
        "pwrite f 18446744073709551615 1 D",
        &["1:31: the write ends past 2^64"],
    );
    check_err(
        "write f 2 D at 18446744073709551615",
        &["1:16: the data range ends past 2^64"],
    );
    check_err(
        "store m 0xffffffffffffffff 1 D",
        &["1:28: the store ends past"],
    );
    check_err(
        "m = mmap f 1 0xffffffffffffffff",
        &["1:14: the mapping ends past"],
    );
    check_err(
        "msync m 1 0xffffffffffffffff sync",
        &["1:11: the msync range ends past"],
    );
    check_err("pwrite f 1 D", &["1:12: bad length `D`"]);
    check_err("m = mmap f 0", &["1:13: missing length"]);
    check_err("m = mmap f 0 1 2", &["1:16: unexpected `2`"]);
    check_err("store m 0 1", &["1:12: missing data name"]);
    check_err("msync m", &["1:8: missing msync mode"]);
    check_err(
        "msync m synch",
        &["1:9: expected `sync` or `async`, found `synch`"],
    );
    check_err("msync m 0 4KiB", &["1:15: missing msync mode"]);
    check_err(
        "msync m 0 4KiB invalidate",
        &["1:16: expected `sync` or `async`, found `invalidate`"],
    );
    check_err("msync m 0 sync", &["1:11: bad length `sync`"]);
    check_err("msync m sync invalidate now", &["1:25: unexpected `now`"]);
    check_err(
        "msync m 4KB 1 sync",
        &["1:9: bad offset `4KB`: unknown unit"],
    );
    check_err("munmap", &["1:7: missing mapping name"]);
    check_err("fdatasync f g", &["1:13: unexpected `g`"]);
    check_err("syncfs", &["1:7: missing handle"]);
    check_err("rename a", &["1:9: missing target path"]);
    check_err("link a", &["1:7: missing new path"]);
    check_err(
        "rename /a b",
        &["1:8: bad source path `/a`: paths are relative"],
    );
    check_err(
        "mkdir a//b",
        &["1:7: bad path `a//b`: empty path component"],
    );
    check_err("mkdir a/", &["1:7: empty path component"]);
    check_err("mkdir a/..", &["1:7: `..` is not allowed"]);
    check_err("unlink ./a", &["1:8: `.` is not allowed"]);
    check_err("unlink ..", &["1:8: `..` is not allowed"]);
    check_err("mkdir a*b", &["1:7: invalid character `*`"]);
    check_err("rmdir été", &["1:7: invalid character `é`"]);
    check_err("unlink a b", &["1:10: unexpected `b`"]);
    check_err("unlink a:b", &["1:9: unexpected `:`"]);
    check_err("é = open x", &["1:1: bad handle name `é`"]);
    check_err("x = open é cr", &["1:10: bad path `é`"]);
    check_err("ëë = open a b", &["1:1: bad handle name"]);
    check_err("f = open a ëcreate", &["1:12: unknown open flag `ëcreate`"]);
}

#[test]
fn structure_errors() {
    check_err("setup\nsync", &["1:1: `setup` is not closed by `end`"]);
    check_err("end", &["1:1: `end` without `setup`"]);
    check_err("setup\nend\nsetup\nend", &["3:1: at most one setup block"]);
    check_err(
        "sync\nsetup\nsync\nend",
        &["2:1: setup must come before the program's ops"],
    );
    check_err("setup\nsetup\nend", &["2:1: setup blocks cannot be nested"]);
    check_err("setup now\nend", &["1:7: unexpected `now`"]);
    check_err("setup\nend now", &["2:5: unexpected `now`"]);
    check_err(
        "setup\n x: sync\nend",
        &["2:2: labels are not allowed inside setup"],
    );
    check_err(
        "setup\nproperty A: always exists a\nend",
        &["2:1: properties are not allowed inside setup"],
    );
    check_err("a: sync\na: sync", &["2:1: label `a` is defined twice"]);
    check_err("a:", &["1:1: label `a` is not followed by an op"]);
    check_err("a: data D 1", &["1:1: `data` cannot have a label"]);
    check_err("a: setup\nend", &["1:1: `setup` cannot have a label"]);
    check_err("1a: sync", &["1:1: bad label `1a`"]);
    check_err("data D 1\ndata D 2", &["2:6: data `D` is declared twice"]);
    check_err("data D", &["1:7: missing data length"]);
    check_err("data empty 1", &["1:6: `empty` cannot be a data name"]);
    check_err("data D 1 2", &["1:10: unexpected `2`"]);
    check_err(
        "data D 1x",
        &["1:8: bad data length `1x`: unknown unit `x`"],
    );
    // data declarations are allowed inside setup
    assert_eq!(parse("setup\ndata D 1\nend").unwrap().data.len(), 1);
}

/// `data NAME SIZE hex HEXDIGITS` and `data NAME SIZE file RELPATH`: each error points at what
/// is wrong (a non-hex character at itself).
#[test]
fn data_source_errors() {
    check_err("data D 2 hex abc", &["1:14: odd number of hex digits (3)"]);
    check_err("data D 2 hex 0g1f", &["1:15: `g` is not a hex digit"]);
    check_err("data D 2 hex 00112", &["1:14: odd number of hex digits"]);
    check_err(
        "data D 3 hex 0011",
        &["1:14: the hex content is 2 bytes, but the data is declared 3 bytes"],
    );
    check_err("data D 2 hex", &["1:13: missing hex digits"]);
    check_err("data D 2 hex (", &["1:14: expected hex digits, found `(`"]);
    check_err("data D 2 hex 0011 ff", &["1:19: unexpected `ff`"]);
    check_err("data D 2 file", &["1:14: missing data file path"]);
    check_err(
        "data D 2 file /etc/passwd",
        &["1:15: bad data file `/etc/passwd`: the path is relative"],
    );
    check_err(
        "data D 2 file a//b",
        &["1:15: bad data file `a//b`: empty path component"],
    );
    check_err("data D 2 file a/b c", &["1:19: unexpected `c`"]);
    check_err("data D 2 file a:b", &["1:16: unexpected `:`"]);
    check_err(
        "data D 2 bytes 0011",
        &["1:10: unexpected `bytes` after the data's size"],
    );
    // every error of a run, one per line
    check_err(
        "data D 1 hex 0\ndata E 1 hex zz\ndata F 1 file",
        &[
            "1:14: odd number",
            "2:14: `z` is not a hex digit",
            "3:14: missing data file path",
        ],
    );
}

#[test]
fn data_sources() {
    use crate::program::DataSource;
    let p = parse(
        "data D 4 hex 00fFa9B0\ndata E 4KiB file prog.data/3f2a9c-1.bin\ndata F 0 hex\n\
         data G 2 file ../shared/g\ndata H 3",
    )
    .unwrap();
    let sources: Vec<_> = p.data.iter().map(|d| d.source.clone()).collect();
    assert_eq!(
        sources,
        vec![
            Some(DataSource::Hex(vec![0x00, 0xff, 0xa9, 0xb0])),
            Some(DataSource::File("prog.data/3f2a9c-1.bin".to_string())),
            Some(DataSource::Hex(Vec::new())),
            Some(DataSource::File("../shared/g".to_string())),
            None,
        ]
    );
    assert_eq!(p.data[1].len, 4096);
}

#[test]
#[allow(
    clippy::too_many_lines,
    reason = "a flat table of cases, one per error; splitting it would only scatter the table"
)]
fn property_errors() {
    check_err(
        "property A: always",
        &["1:19: the property has no expression"],
    );
    check_err(
        "property A: always   # nothing",
        &["1:19: the property has no expression"],
    );
    check_err(
        "property A: after 1:",
        &[
            "1:19: there is no op 1",
            "1:21: the property has no expression",
        ],
    );
    check_err(
        "property A always exists a",
        &["1:12: expected `:`, found `always`"],
    );
    check_err("property", &["1:9: missing property name"]);
    check_err(
        "property: always exists a",
        &["1:9: expected property name, found `:`"],
    );
    check_err(
        "property 1A: always exists a",
        &["1:10: bad property name `1A`"],
    );
    check_err(
        "property A: sometimes exists a",
        &["1:13: expected `always` or `after`"],
    );
    check_err(
        "property A: always exists a\nproperty A: always exists b",
        &["2:10: property `A` is defined twice"],
    );
    check_err("property A: always (exists a", &["1:20: unclosed `(`"]);
    check_err("property A: always exists a)", &["1:28: unmatched `)`"]);
    check_err(
        "property A: always ((exists a) and exists b",
        &["1:20: unclosed `(`"],
    );
    check_err("property A: always (exists a b)", &["1:30: unexpected `b`"]);
    check_err(
        "property A: always ()",
        &["1:21: expected a predicate, found `)`"],
    );
    check_err(
        "property A: always exists a and",
        &["1:32: missing predicate"],
    );
    check_err(
        "property A: always exists a and or exists b",
        &["1:33: expected a predicate, found `or`"],
    );
    check_err(
        "property A: always exists",
        &["1:26: missing path after `exists`"],
    );
    check_err("property A: always exists /a", &["1:27: bad path `/a`"]);
    check_err("property A: always exists a b", &["1:29: unexpected `b`"]);
    check_err(
        "property A: always size a 4KiB",
        &["1:27: expected a comparison, found `4KiB`"],
    );
    check_err(
        "property A: always size a == 4KB",
        &["1:30: bad size `4KB`"],
    );
    check_err("property A: always size a ==", &["1:29: missing size"]);
    check_err(
        "property A: always size a == 99999999999TiB",
        &["1:30: does not fit in 64 bits"],
    );
    check_err(
        "property A: always links a == 1K",
        &["1:31: bad link count `1K`: not an integer"],
    );
    check_err(
        "property A: always entries d == {a,}",
        &["1:36: bad entry name `}`"],
    );
    check_err(
        "property A: always entries d == {a b}",
        &["1:36: expected `,` or `}`"],
    );
    check_err(
        "property A: always entries d == {a, a}",
        &["1:37: entry `a` is listed twice"],
    );
    check_err(
        "property A: always entries d == {a",
        &["1:33: unclosed `{`"],
    );
    check_err(
        "property A: always entries d != {a}",
        &["1:30: expected `==`, found `!=`"],
    );
    check_err(
        "property A: always entries d == a",
        &["1:33: expected `{`, found `a`"],
    );
    check_err(
        "property A: always entries d == {..}",
        &["1:34: bad entry name `..`"],
    );
    check_err(
        "property A: always final",
        &["1:25: missing `==`, `!=` or `prefix-of`"],
    );
    check_err(
        "property A: always final = D",
        &["1:26: expected `==`, `!=` or `prefix-of` after path `final`, found `=`"],
    );
    check_err(
        "property A: always final < D",
        &["1:26: `<` cannot compare a file's content"],
    );
    check_err(
        "property A: always exist final",
        &["1:26: expected `==`, `!=` or `prefix-of` after path `exist`"],
    );
    check_err(
        "property A: always final == 1D",
        &["1:29: expected a data name, `old`, `new` or `empty`"],
    );
    check_err("property A: always final ==", &["1:28: missing data name"]);
    check_err(
        "property A: always final prefix-of old",
        &["1:36: `old` cannot be a data name"],
    );
    check_err(
        "property A: always !exists a",
        &["1:20: expected a predicate, found `!`"],
    );
    check_err(
        "property A: always and",
        &["1:20: expected a predicate, found `and`"],
    );
    check_err("property A: always not", &["1:23: missing predicate"]);
    check_err(
        "property A: always size == 1",
        &["1:25: expected path, found `==`"],
    );
}

#[test]
fn after_errors() {
    check_err(
        "sync\nproperty A: after 2: exists a",
        &["2:19: there is no op 2"],
    );
    check_err(
        "sync\nproperty A: after 0: exists a",
        &["2:19: there is no op 0"],
    );
    check_err("property A: after 1: exists a", &["1:19: there is no op 1"]);
    check_err(
        "sync\nproperty A: after 99999999999999999999999: exists a",
        &["2:19: there is no op 99999999999999999999999"],
    );
    check_err(
        "property A: after nope: exists a\np: sync",
        &["1:19: unknown label `nope`"],
    );
    check_err(
        "property A: after 1x: exists a",
        &["1:19: bad op number `1x`"],
    );
    check_err(
        "property A: after (: exists a",
        &["1:19: expected an op number or a label"],
    );
    check_err("property A: after", &["1:18: missing op number or label"]);
    check_err(
        "sync\nproperty A: after 1 exists a",
        &["2:21: expected `:`, found `exists`"],
    );
    // The hint lists the labels and the range.
    let diags = parse("a: sync\nb: sync\nproperty A: after c: exists x").unwrap_err();
    assert_eq!(
        diags[0].hint.as_deref(),
        Some("defined labels: a, b (or an op number from 1 to 2)")
    );
    let many: String = (1..=25).map(|i| format!("l{i}: sync\r\n")).collect();
    let diags = parse(&format!("{many}property A: after x: exists x")).unwrap_err();
    let hint = diags[0].hint.as_deref().unwrap();
    assert!(hint.starts_with("defined labels: l1, l2, l3,"), "{hint}");
    assert!(
        hint.ends_with("l20, and 5 more (or an op number from 1 to 25)"),
        "{hint}"
    );
    let diags = parse(&format!("{many}l7: sync")).unwrap_err();
    assert_eq!(
        diags[0].hint.as_deref(),
        Some("it already names op 7 (line 7); labels must be unique")
    );
    let diags = parse("\n\r\n# c\ndata D 1\n\ndata D 2").unwrap_err();
    assert_eq!(diags[0].hint.as_deref(), Some("first declared on line 4"));
    let diags = parse("sync\nsync\nsync\nproperty A: after 4: exists x").unwrap_err();
    assert_eq!(
        diags[0].hint.as_deref(),
        Some("ops are numbered from 1 to 3")
    );
    // Setup ops are not numbered.
    check_err(
        "setup\nsync\nend\nproperty A: after 1: exists x",
        &["4:19: there is no op 1"],
    );
    // An op with an error still counts, and its label is still known.
    check_err(
        "sync\nl: fsyn f\nproperty A: after 2: exists x\nproperty B: after l: exists x",
        &["2:4: unknown statement"],
    );
    // A property with a bad expression still has its `after` checked.
    check_err(
        "property A: after x: exists",
        &["1:19: unknown label `x`", "1:28: missing path"],
    );
}

#[test]
fn many_errors_in_one_run() {
    let src = "\
data D 8MiB
data D 4KiB
f = open tmp creat
write f 4KB D
setup
end
frob
close f extra
publish: rename tmp final
publish: sync
property A: after nowhere: exists final
property B: always (exists final
property B: always exists final
end
";
    check_err(
        src,
        &[
            "2:6: data `D` is declared twice",
            "3:14: unknown open flag `creat`",
            "4:9: bad length `4KB`",
            "5:1: setup must come before",
            "7:1: unknown statement `frob`",
            "8:9: unexpected `extra`",
            "10:1: label `publish` is defined twice",
            "11:19: unknown label `nowhere`",
            "12:20: unclosed `(`",
            "13:10: property `B` is defined twice",
            "14:1: `end` without `setup`",
        ],
    );
}

#[test]
fn errors_sorted_and_within_source() {
    let src = "property A: after zz: exists a\nfrob\n\u{1F600} = open é\nsetup";
    let diags = parse(src).unwrap_err();
    let starts: Vec<usize> = diags.iter().map(|d| d.span.start).collect();
    let mut sorted = starts.clone();
    sorted.sort();
    assert_eq!(starts, sorted);
    for d in &diags {
        assert!(src.is_char_boundary(d.span.start) && src.is_char_boundary(d.span.end));
    }
    check_err(
        src,
        &[
            "1:19: unknown label",
            "2:1: unknown statement",
            "3:1: bad handle name",
            "4:1: setup must come before the program's ops",
            "4:1: `setup` is not closed",
        ],
    );
}
