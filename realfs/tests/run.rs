//! Runs hand-built programs in a temporary directory and checks the tree they leave; runs every
//! litmus test and example for real and compares the tree with the model's volatile state.

use std::io;
use unplug_model::{MsyncMode, Op, OpKind, OpenFlags, Path, Program, RenameMode, Span};
use unplug_realfs::pattern::{data_bytes, Extent, Origin};
use unplug_realfs::readback::{read_tree, Kind, ObservedTree};
use unplug_realfs::runner::{run, run_with, RunError, Step};
use unplug_realfs::{data_names, run_and_compare, Error, Unmapped};

fn p(s: &str) -> Path {
    if s == "." {
        Path::root()
    } else {
        Path(s.split('/').map(str::to_string).collect())
    }
}

fn op(text: &str, kind: OpKind) -> Op {
    Op {
        kind,
        label: None,
        text: text.to_string(),
        span: Span::default(),
        site: None,
    }
}

fn open(h: &str, path: &str, flags: OpenFlags) -> OpKind {
    OpKind::Open {
        handle: h.into(),
        path: p(path),
        flags,
    }
}

fn create() -> OpenFlags {
    OpenFlags {
        create: true,
        ..Default::default()
    }
}

fn pwrite(h: &str, off: u64, len: u64, data: &str) -> OpKind {
    OpKind::Write {
        handle: h.into(),
        offset: Some(off),
        len,
        data: data.into(),
        data_off: None,
    }
}

fn write(h: &str, len: u64, data: &str) -> OpKind {
    OpKind::Write {
        handle: h.into(),
        offset: None,
        len,
        data: data.into(),
        data_off: None,
    }
}

fn close(h: &str) -> OpKind {
    OpKind::Close { handle: h.into() }
}

fn d(name: &str, delta: i64) -> Origin {
    Origin::Data {
        name: name.into(),
        delta,
    }
}

fn ext(start: u64, end: u64, origin: Origin) -> Extent {
    Extent { start, end, origin }
}

fn program(setup: Vec<Op>, ops: Vec<Op>) -> Program {
    Program {
        setup,
        ops,
        ..Default::default()
    }
}

fn run_and_read(prog: &Program, names: &[&str]) -> ObservedTree {
    let dir = tempfile::tempdir().unwrap();
    run(prog, dir.path()).unwrap_or_else(|e| panic!("run failed: {e}"));
    read_tree(dir.path(), names).unwrap()
}

/// Asserts a file entry's size, link count and extents.
fn assert_file(tree: &ObservedTree, path: &str, size: u64, links: u64, extents: &[Extent]) {
    let e = tree
        .get(&p(path))
        .unwrap_or_else(|| panic!("no {path} in\n{tree}"));
    assert_eq!(e.kind, Kind::File, "{tree}");
    assert_eq!(e.size, size, "{path} in\n{tree}");
    assert_eq!(e.links, links, "{path} in\n{tree}");
    assert_eq!(e.extents, extents, "{path} in\n{tree}");
}

fn paths(tree: &ObservedTree) -> Vec<String> {
    tree.entries.iter().map(|e| e.path.to_string()).collect()
}

#[test]
fn create_write_fsync_rename() {
    let prog = program(
        vec![],
        vec![
            op(
                "f = open tmp create trunc",
                open(
                    "f",
                    "tmp",
                    OpenFlags {
                        create: true,
                        trunc: true,
                        ..Default::default()
                    },
                ),
            ),
            op("pwrite f 0 8192 D", pwrite("f", 0, 8192, "D")),
            op("fsync f", OpKind::Fsync { handle: "f".into() }),
            op("close f", close("f")),
            op(
                "rename tmp final",
                OpKind::Rename {
                    from: p("tmp"),
                    to: p("final"),
                    mode: RenameMode::Replace,
                },
            ),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let mut steps = Vec::new();
    let log = run_with(&prog, dir.path(), &mut |s| {
        steps.push(s);
        Ok(())
    })
    .unwrap();
    assert_eq!(
        steps,
        [
            Step::BeforeSetup,
            Step::AfterSetup,
            Step::AfterOp(1),
            Step::AfterOp(2),
            Step::AfterOp(3),
            Step::AfterOp(4),
            Step::AfterOp(5)
        ]
    );
    assert!(log.setup.is_empty());
    assert_eq!(log.ops.len(), 5);
    for (i, r) in log.ops.iter().enumerate() {
        assert_eq!(r.number, i + 1);
        assert_eq!(r.text, prog.ops[i].text);
    }
    let tree = read_tree(dir.path(), &["D"]).unwrap();
    assert_eq!(paths(&tree), [".", "final"]);
    assert_file(&tree, "final", 8192, 1, &[ext(0, 8192, d("D", 0))]);
    assert_eq!(
        std::fs::read(dir.path().join("final")).unwrap(),
        data_bytes("D", 0, 8192)
    );
    // The readable form.
    let text = tree.to_string();
    assert_eq!(
        text.lines().nth(1),
        Some("final  file  size 8192  links 1  [0..8192) D+0"),
        "{text}"
    );
}

#[test]
fn setup_then_overwrite_with_second_data() {
    // Setup writes D; the ops overwrite the middle with E and extend with F at an explicit data
    // offset (so its delta is not 0).
    let prog = program(
        vec![
            op("f = open file create", open("f", "file", create())),
            op("pwrite f 0 16384 D", pwrite("f", 0, 16384, "D")),
        ],
        vec![
            op("pwrite f 4096 4096 E", pwrite("f", 4096, 4096, "E")),
            op(
                "pwrite f 16384 1000 F 0",
                OpKind::Write {
                    handle: "f".into(),
                    offset: Some(16384),
                    len: 1000,
                    data: "F".into(),
                    data_off: Some(0),
                },
            ),
            op("fdatasync f", OpKind::Fdatasync { handle: "f".into() }),
            op("sync", OpKind::Sync),
            op("syncfs f", OpKind::Syncfs { handle: "f".into() }),
        ],
    );
    let tree = run_and_read(&prog, &["D", "E", "F"]);
    assert_file(
        &tree,
        "file",
        17384,
        1,
        &[
            ext(0, 4096, d("D", 0)),
            ext(4096, 8192, d("E", 0)),
            ext(8192, 16384, d("D", 0)),
            ext(16384, 17384, d("F", -16384)),
        ],
    );
    // A name not asked about reads back as unknown.
    let tree = run_and_read(&prog, &["D"]);
    assert_file(
        &tree,
        "file",
        17384,
        1,
        &[
            ext(0, 4096, d("D", 0)),
            ext(4096, 8192, Origin::Unknown),
            ext(8192, 16384, d("D", 0)),
            ext(16384, 17384, Origin::Unknown),
        ],
    );
}

#[test]
#[allow(
    clippy::too_many_lines,
    reason = "the program is built op by op as AST values, one short literal per op"
)]
fn mmap_store_msync() {
    let prog = program(
        vec![
            op("f = open file create", open("f", "file", create())),
            op(
                "ftruncate f 16384",
                OpKind::Ftruncate {
                    handle: "f".into(),
                    size: 16384,
                },
            ),
        ],
        vec![
            op(
                "m = mmap f 0 16384",
                OpKind::Mmap {
                    handle: "f".into(),
                    map: "m".into(),
                    offset: 0,
                    len: 16384,
                },
            ),
            op(
                "store m 4096 4096 E",
                OpKind::Store {
                    map: "m".into(),
                    offset: 4096,
                    len: 4096,
                    data: "E".into(),
                    data_off: None,
                },
            ),
            op(
                "msync m sync",
                OpKind::Msync {
                    map: "m".into(),
                    range: None,
                    mode: MsyncMode::Sync,
                    invalidate: false,
                },
            ),
            op(
                "store m 0 4096 D",
                OpKind::Store {
                    map: "m".into(),
                    offset: 0,
                    len: 4096,
                    data: "D".into(),
                    data_off: None,
                },
            ),
            op(
                "msync m 0 4096 async",
                OpKind::Msync {
                    map: "m".into(),
                    range: Some((0, 4096)),
                    mode: MsyncMode::Async,
                    invalidate: false,
                },
            ),
            op(
                "store m 10000 1000 F 0",
                OpKind::Store {
                    map: "m".into(),
                    offset: 10000,
                    len: 1000,
                    data: "F".into(),
                    data_off: Some(0),
                },
            ),
            op(
                "msync m 8192 4096 sync invalidate",
                OpKind::Msync {
                    map: "m".into(),
                    range: Some((8192, 4096)),
                    mode: MsyncMode::Sync,
                    invalidate: true,
                },
            ),
            op("munmap m", OpKind::Munmap { map: "m".into() }),
            op(
                "n = mmap f 12288 4096",
                OpKind::Mmap {
                    handle: "f".into(),
                    map: "n".into(),
                    offset: 12288,
                    len: 4096,
                },
            ),
            op(
                "store n 0 512 D",
                OpKind::Store {
                    map: "n".into(),
                    offset: 0,
                    len: 512,
                    data: "D".into(),
                    data_off: None,
                },
            ),
            op(
                "msync n async invalidate",
                OpKind::Msync {
                    map: "n".into(),
                    range: None,
                    mode: MsyncMode::Async,
                    invalidate: true,
                },
            ),
            op("close f", close("f")),
        ],
    );
    let tree = run_and_read(&prog, &["D", "E", "F"]);
    assert_file(
        &tree,
        "file",
        16384,
        1,
        &[
            ext(0, 4096, d("D", 0)),
            ext(4096, 8192, d("E", 0)),
            ext(8192, 10000, Origin::Zero),
            ext(10000, 11000, d("F", -10000)),
            ext(11000, 12288, Origin::Zero),
            // Stored through the second mapping (file offset 12288, default data offset).
            ext(12288, 12800, d("D", 0)),
            ext(12800, 16384, Origin::Zero),
        ],
    );
}

#[test]
fn store_past_end_of_file_is_an_error_not_sigbus() {
    let prog = program(
        vec![op("f = open file create", open("f", "file", create()))],
        vec![
            op(
                "ftruncate f 100",
                OpKind::Ftruncate {
                    handle: "f".into(),
                    size: 100,
                },
            ),
            op(
                "m = mmap f 0 16384",
                OpKind::Mmap {
                    handle: "f".into(),
                    map: "m".into(),
                    offset: 0,
                    len: 16384,
                },
            ),
            op(
                "store m 8192 10 D",
                OpKind::Store {
                    map: "m".into(),
                    offset: 8192,
                    len: 10,
                    data: "D".into(),
                    data_off: None,
                },
            ),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let err = run(&prog, dir.path()).unwrap_err();
    assert_eq!(err.op_number(), Some(3), "{err}");
}

#[test]
fn append_handle() {
    let prog = program(
        vec![],
        vec![
            op(
                "f = open log create append",
                open(
                    "f",
                    "log",
                    OpenFlags {
                        create: true,
                        append: true,
                        ..Default::default()
                    },
                ),
            ),
            op("write f 1000 D", write("f", 1000, "D")),
            op("write f 1000 D", write("f", 1000, "D")),
            // Linux appends even with pwrite's offset when the file is O_APPEND.
            op("pwrite f 0 1000 D", pwrite("f", 0, 1000, "D")),
            op("fsync f", OpKind::Fsync { handle: "f".into() }),
            // A second handle without append writes at its own position, from 0.
            op(
                "g = open log dsync",
                open(
                    "g",
                    "log",
                    OpenFlags {
                        dsync: true,
                        ..Default::default()
                    },
                ),
            ),
            op("write g 500 E", write("g", 500, "E")),
            op("write g 500 E", write("g", 500, "E")),
            op("close g", close("g")),
            op(
                "h = open log sync",
                open(
                    "h",
                    "log",
                    OpenFlags {
                        sync: true,
                        ..Default::default()
                    },
                ),
            ),
            op("write h 100 F", write("h", 100, "F")),
            op("close f", close("f")),
            op("close h", close("h")),
        ],
    );
    let tree = run_and_read(&prog, &["D", "E", "F"]);
    assert_file(
        &tree,
        "log",
        3000,
        1,
        &[
            ext(0, 100, d("F", 0)),
            ext(100, 1000, d("E", 0)),
            ext(1000, 3000, d("D", 0)),
        ],
    );
}

#[test]
fn link_unlink_mkdir_rmdir() {
    let prog = program(
        vec![op("mkdir d", OpKind::Mkdir { path: p("d") })],
        vec![
            op("f = open d/a create", open("f", "d/a", create())),
            op("pwrite f 0 512 D", pwrite("f", 0, 512, "D")),
            op("close f", close("f")),
            op(
                "link d/a b",
                OpKind::Link {
                    from: p("d/a"),
                    to: p("b"),
                },
            ),
            op(
                "link b c",
                OpKind::Link {
                    from: p("b"),
                    to: p("c"),
                },
            ),
            op("unlink d/a", OpKind::Unlink { path: p("d/a") }),
            op("mkdir e", OpKind::Mkdir { path: p("e") }),
            op("mkdir e/x", OpKind::Mkdir { path: p("e/x") }),
            op("rmdir e/x", OpKind::Rmdir { path: p("e/x") }),
            op(
                "dd = open d dir",
                open(
                    "dd",
                    "d",
                    OpenFlags {
                        directory: true,
                        ..Default::default()
                    },
                ),
            ),
            op(
                "fsync dd",
                OpKind::Fsync {
                    handle: "dd".into(),
                },
            ),
            op(
                "r = open . dir",
                open(
                    "r",
                    ".",
                    OpenFlags {
                        directory: true,
                        ..Default::default()
                    },
                ),
            ),
            op("fsync r", OpKind::Fsync { handle: "r".into() }),
        ],
    );
    let tree = run_and_read(&prog, &["D"]);
    assert_eq!(paths(&tree), [".", "b", "c", "d", "e"], "{tree}");
    assert_file(&tree, "b", 512, 2, &[ext(0, 512, d("D", 0))]);
    assert_file(&tree, "c", 512, 2, &[ext(0, 512, d("D", 0))]);
    for dir in ["d", "e"] {
        let e = tree.get(&p(dir)).unwrap();
        assert_eq!(e.kind, Kind::Dir);
        assert!(e.extents.is_empty());
    }
    let text = tree.to_string();
    assert!(
        text.lines()
            .any(|l| l.starts_with("b  file  size 512  links 2  [0..512) D+0")),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l.starts_with("d  dir   links ")),
        "{text}"
    );

    // Once e is removed too, the tree is back to files only.
    let mut prog2 = prog.clone();
    prog2
        .ops
        .push(op("rmdir e", OpKind::Rmdir { path: p("e") }));
    let tree = run_and_read(&prog2, &["D"]);
    assert_eq!(paths(&tree), [".", "b", "c", "d"], "{tree}");
}

#[test]
fn nested_paths_are_walked_in_order() {
    let prog = program(
        vec![],
        vec![
            op("mkdir z", OpKind::Mkdir { path: p("z") }),
            op("mkdir a", OpKind::Mkdir { path: p("a") }),
            op("f = open z/y create", open("f", "z/y", create())),
            op("g = open a/b create", open("g", "a/b", create())),
            op("h = open m create", open("h", "m", create())),
        ],
    );
    let tree = run_and_read(&prog, &[]);
    assert_eq!(paths(&tree), [".", "a", "a/b", "m", "z", "z/y"], "{tree}");
    assert_file(&tree, "m", 0, 1, &[]);
    // The tree serializes.
    let json = serde_json::to_string(&tree).unwrap();
    assert!(
        json.contains("\"a/b\"") || json.contains("[\"a\",\"b\"]"),
        "{json}"
    );
}

#[test]
fn failing_op_returns_its_number() {
    let prog = program(
        vec![op("f = open x create", open("f", "x", create()))],
        vec![
            op("close f", close("f")),
            op(
                "rename missing final",
                OpKind::Rename {
                    from: p("missing"),
                    to: p("final"),
                    mode: RenameMode::Replace,
                },
            ),
            op("unlink x", OpKind::Unlink { path: p("x") }),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let mut steps = Vec::new();
    let err = run_with(&prog, dir.path(), &mut |s| {
        steps.push(s);
        Ok(())
    })
    .unwrap_err();
    match &err {
        RunError::Op {
            number,
            text,
            source,
        } => {
            assert_eq!(*number, 2);
            assert_eq!(text, "rename missing final");
            assert_eq!(source.kind(), io::ErrorKind::NotFound);
        }
        other => panic!("wrong error {other:?}"),
    }
    assert_eq!(err.op_number(), Some(2));
    assert!(
        err.to_string().starts_with("op 2 `rename missing final`: "),
        "{err}"
    );
    // The op after the failing one did not run, and the hook saw only what completed.
    assert_eq!(
        steps,
        [Step::BeforeSetup, Step::AfterSetup, Step::AfterOp(1)]
    );
    assert!(dir.path().join("x").exists());
}

#[test]
fn failing_setup_op_and_open_flags() {
    // O_EXCL on an existing file fails in setup.
    let prog = program(
        vec![
            op("f = open x create", open("f", "x", create())),
            op(
                "g = open x create excl",
                open(
                    "g",
                    "x",
                    OpenFlags {
                        create: true,
                        excl: true,
                        ..Default::default()
                    },
                ),
            ),
        ],
        vec![],
    );
    let dir = tempfile::tempdir().unwrap();
    match run(&prog, dir.path()).unwrap_err() {
        RunError::Setup { number, source, .. } => {
            assert_eq!(number, 2);
            assert_eq!(source.kind(), io::ErrorKind::AlreadyExists);
        }
        other => panic!("wrong error {other:?}"),
    }
    // Open without create of a missing file, and a handle that was never opened.
    for (kind, number) in [
        (open("f", "nope", OpenFlags::default()), 1),
        (
            OpKind::Fsync {
                handle: "nope".into(),
            },
            1,
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let err = run(&program(vec![], vec![op("bad", kind)]), dir.path()).unwrap_err();
        assert_eq!(err.op_number(), Some(number), "{err}");
    }
}

#[test]
fn trunc_and_ftruncate_shrink() {
    let prog = program(
        vec![
            op("f = open file create", open("f", "file", create())),
            op("pwrite f 0 8192 D", pwrite("f", 0, 8192, "D")),
            op("close f", close("f")),
        ],
        vec![
            op(
                "f = open file trunc",
                open(
                    "f",
                    "file",
                    OpenFlags {
                        trunc: true,
                        ..Default::default()
                    },
                ),
            ),
            op("pwrite f 1024 1024 E", pwrite("f", 1024, 1024, "E")),
            op(
                "ftruncate f 1536",
                OpKind::Ftruncate {
                    handle: "f".into(),
                    size: 1536,
                },
            ),
            op(
                "ftruncate f 3000",
                OpKind::Ftruncate {
                    handle: "f".into(),
                    size: 3000,
                },
            ),
        ],
    );
    let tree = run_and_read(&prog, &["D", "E"]);
    assert_file(
        &tree,
        "file",
        3000,
        1,
        &[
            ext(0, 1024, Origin::Zero),
            ext(1024, 1536, d("E", 0)),
            ext(1536, 3000, Origin::Zero),
        ],
    );
}

#[test]
fn hook_error_stops_the_run() {
    let prog = program(
        vec![],
        vec![
            op("mkdir a", OpKind::Mkdir { path: p("a") }),
            op("mkdir b", OpKind::Mkdir { path: p("b") }),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let err = run_with(&prog, dir.path(), &mut |s| {
        if s == Step::AfterOp(1) {
            Err(io::Error::other("mark failed"))
        } else {
            Ok(())
        }
    })
    .unwrap_err();
    assert!(
        matches!(
            err,
            RunError::Hook {
                step: Step::AfterOp(1),
                ..
            }
        ),
        "{err}"
    );
    assert!(dir.path().join("a").exists());
    assert!(!dir.path().join("b").exists());
}

// ---------------------------------------------------------------------------------------------
// The model's volatile semantics against the real kernel
// ---------------------------------------------------------------------------------------------

/// Programs that cannot run for real, by file name, with the reason. None so far: every litmus
/// test and example stays within a few MiB.
const CANNOT_RUN: &[(&str, &str)] = &[];

/// Parses, runs and compares every `*.up` file of `dir` (relative to the workspace root), and
/// fails with every mismatch at once. Returns the names of the programs compared.
fn compare_all(dir: &str) -> Vec<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(dir);
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "up"))
        .collect();
    files.sort();
    let mut compared = Vec::new();
    let mut failures = Vec::new();
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        if let Some((_, why)) = CANNOT_RUN.iter().find(|(n, _)| *n == name) {
            eprintln!("skipped {name}: {why}");
            continue;
        }
        let src = std::fs::read_to_string(&file).unwrap();
        let program = match unplug_model::parse::parse(&src) {
            Ok(p) => p,
            Err(diags) => {
                failures.push(format!("{name}: does not parse: {diags:?}"));
                continue;
            }
        };
        if uses_direct(&program) {
            if let Some(why) = direct_unsupported() {
                eprintln!("skipped {name}: {why}");
                continue;
            }
        }
        let root = tempfile::tempdir().unwrap();
        match run_and_compare(&program, root.path()) {
            Ok(c) if c.equal => compared.push(name),
            Ok(c) => failures.push(format!(
                "{name}: the kernel and the model differ after the last op:\n  {}\n\
                 on disk:\n{}\npredicted:\n{}",
                c.differences.join("\n  "),
                c.observed,
                c.predicted
            )),
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    compared
}

#[test]
fn litmus_tests_match_the_models_volatile_state() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../litmus");
    if !dir.exists() {
        eprintln!("skipped: {} does not exist", dir.display());
        return;
    }
    let compared = compare_all("litmus");
    eprintln!("compared {} litmus tests: {compared:?}", compared.len());
}

#[test]
fn examples_match_the_models_volatile_state() {
    let compared = compare_all("examples");
    assert!(
        compared.contains(&"mmap-rename.up".to_string()),
        "{compared:?}"
    );
}

#[test]
fn run_and_compare_a_program_with_links_holes_and_a_subdirectory() {
    let src = "setup\n\
               f = open a create\n\
               write f 4KiB OLD\n\
               close f\n\
               end\n\
               mkdir d\n\
               g = open d/b create\n\
               pwrite g 8KiB 4KiB D\n\
               pwrite g 0 512 E at 100\n\
               link d/b c\n\
               f = open a append\n\
               write f 4KiB D\n\
               rename a d/a\n";
    let program = unplug_model::parse::parse(src).unwrap();
    assert_eq!(data_names(&program), vec!["D", "E", "OLD"]);
    let root = tempfile::tempdir().unwrap();
    let c = run_and_compare(&program, root.path()).unwrap();
    assert!(c.equal, "{}", c.differences.join("\n"));
    assert!(c.differences.is_empty());
    assert_eq!(c.observed.to_string(), c.predicted.to_string());
    assert_eq!(
        c.observed.to_string(),
        "c  file 12KiB  links 2  [0, 512B) E@100B, [512B, 8KiB) zero, [8KiB, 12KiB) D\n\
         d/  dir\n\
         d/a  file 8KiB  [0, 4KiB) OLD, [4KiB, 8KiB) D\n\
         d/b  file 12KiB  links 2  (same file as c)"
    );
}

#[test]
fn run_and_compare_rejects_an_invalid_program_without_running_it() {
    // Writing through a handle that was never opened: the model's volatile execution rejects it.
    let program = program(vec![], vec![op("write f 4KiB D", write("f", 4096, "D"))]);
    let root = tempfile::tempdir().unwrap();
    let err = run_and_compare(&program, root.path()).unwrap_err();
    assert!(matches!(err, Error::Invalid { count: 1, .. }), "{err:?}");
    assert_eq!(std::fs::read_dir(root.path()).unwrap().count(), 0);
}

#[test]
fn run_and_compare_reports_run_errors() {
    let program = program(vec![], vec![op("mkdir a", OpKind::Mkdir { path: p("a") })]);
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("x"), b"").unwrap();
    let err = run_and_compare(&program, root.path()).unwrap_err();
    assert!(matches!(err, Error::Run(RunError::Root { .. })), "{err:?}");
}

#[test]
fn bytes_no_program_wrote_are_unmapped() {
    // What a run leaves is read against the data the program writes: a file whose bytes are some
    // other data's (here, as after a crash that exposes stale blocks) maps to no model state.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a"), data_bytes("STALE", 0, 4096)).unwrap();
    let tree = read_tree(dir.path(), &["D"]).unwrap();
    let err = unplug_realfs::to_state(&tree).unwrap_err();
    assert_eq!(
        err,
        Unmapped::Content {
            path: p("a"),
            extent: ext(0, 4096, Origin::Unknown)
        }
    );
}

#[test]
fn a_sparse_tebibyte_file_reads_back_by_its_holes() {
    // readback skips holes (SEEK_DATA / SEEK_HOLE): only the 4 KiB of data are read.
    let src = "f = open a create\npwrite f 1TiB 4KiB D\nftruncate f 2TiB\n";
    let program = unplug_model::parse::parse(src).unwrap();
    let root = tempfile::tempdir().unwrap();
    let c = match run_and_compare(&program, root.path()) {
        // A file system with a smaller maximum file size (ext4 with 1 KiB blocks: 16 GiB).
        Err(Error::Run(e)) if e.io_error().raw_os_error() == Some(27) => {
            eprintln!("skipped: the temporary directory's file system refuses a 2 TiB file: {e}");
            return;
        }
        r => r.unwrap(),
    };
    assert!(c.equal, "{}", c.differences.join("\n"));
    assert_eq!(
        c.observed.to_string(),
        "a  file 2048GiB  [0, 1024GiB) zero, [1024GiB, 1073741828KiB) D, [1073741828KiB, 2048GiB) zero"
    );
}

#[test]
fn pwrite_on_an_append_handle_appends() {
    let src = "setup\nf = open a create\nwrite f 4KiB OLD\nclose f\nend\n\
               f = open a append\npwrite f 0 4KiB D\n";
    let program = unplug_model::parse::parse(src).unwrap();
    let root = tempfile::tempdir().unwrap();
    let c = run_and_compare(&program, root.path()).unwrap();
    // Linux ignores pwrite's offset on an O_APPEND handle (pwrite(2), BUGS): the disk and the
    // model both hold a  file 8KiB  [0, 4KiB) OLD, [4KiB, 8KiB) D.
    assert!(c.equal, "{}", c.differences.join("\n"));
}

#[test]
fn trunc_of_a_directory_is_rejected_like_the_kernel_does() {
    let program = unplug_model::parse::parse("mkdir d\nf = open d dir trunc\n").unwrap();
    let root = tempfile::tempdir().unwrap();
    let real = run(&program, root.path()).unwrap_err();
    assert_eq!(real.io_error().raw_os_error(), Some(21), "{real}");
    let root = tempfile::tempdir().unwrap();
    let err = run_and_compare(&program, root.path()).unwrap_err();
    assert!(matches!(err, Error::Invalid { .. }), "{err:?}");
}

// ---------------------------------------------------------------------------------------------
// fallocate, renameat2 flags, O_TMPFILE + flink, symlinks, sync_file_range, O_DIRECT
// ---------------------------------------------------------------------------------------------

/// Why O_DIRECT cannot be tested in a temporary directory here (tmpfs has no O_DIRECT before
/// Linux 6.6; a device with 4 KiB logical blocks refuses 512-byte-aligned writes), or None when
/// an aligned 512-byte O_DIRECT write works.
fn direct_unsupported() -> Option<String> {
    let dir = tempfile::tempdir().ok()?;
    let program =
        unplug_model::parse::parse("f = open probe create direct\npwrite f 0 512 D\n").ok()?;
    match run(&program, dir.path()) {
        Ok(_) => None,
        Err(e) => Some(format!(
            "O_DIRECT does not work in {} ({e})",
            std::env::temp_dir().display()
        )),
    }
}

/// Whether a program opens a handle with O_DIRECT.
fn uses_direct(program: &Program) -> bool {
    program.setup.iter().chain(&program.ops).any(|op| {
        matches!(
            &op.kind,
            OpKind::Open { flags, .. } if flags.direct
        )
    })
}

#[test]
fn run_and_compare_the_newer_ops() {
    let src = "setup\n\
               mkdir d\n\
               f = open a create\n\
               write f 4KiB OLD\n\
               close f\n\
               end\n\
               g = open b create\n\
               fallocate g 0 16KiB\n\
               pwrite g 0 4KiB D\n\
               fallocate g 0 64KiB keep-size\n\
               fallocate g 4KiB 4KiB\n\
               sync_file_range g 0 0\n\
               sync_file_range g 4KiB 4KiB\n\
               rename a b exchange\n\
               rename b c noreplace\n\
               t = open d tmpfile\n\
               write t 8KiB E\n\
               fsync t\n\
               flink t d/named\n\
               flink t again\n\
               symlink ../c d/link\n\
               link d/link l2\n\
               symlink /nowhere/at/all dangling\n\
               rename dangling d/link exchange\n";
    let program = unplug_model::parse::parse(src).unwrap();
    let root = tempfile::tempdir().unwrap();
    let c = run_and_compare(&program, root.path()).unwrap();
    assert!(
        c.equal,
        "{}\non disk:\n{}\npredicted:\n{}",
        c.differences.join("\n"),
        c.observed,
        c.predicted
    );
    assert_eq!(
        c.observed.to_string(),
        "a  file 16KiB  [0, 4KiB) D, [4KiB, 16KiB) zero\n\
         again  file 8KiB  links 2  [0, 8KiB) E\n\
         c  file 4KiB  [0, 4KiB) OLD\n\
         d/  dir\n\
         d/link  symlink -> /nowhere/at/all\n\
         d/named  file 8KiB  links 2  (same file as again)\n\
         dangling  symlink -> ../c  links 2\n\
         l2  symlink -> ../c  links 2"
    );
    // readback says what a symlink is.
    let tree = read_tree(root.path(), &["D", "E", "OLD"]).unwrap();
    let l2 = tree.get(&p("l2")).unwrap();
    assert_eq!(l2.kind, Kind::Symlink);
    assert_eq!(l2.target.as_deref(), Some("../c"));
    assert!(
        tree.to_string()
            .lines()
            .any(|l| l.starts_with("l2") && l.ends_with("-> ../c  links 2")),
        "{tree}"
    );
}

#[test]
fn run_and_compare_direct_writes() {
    if let Some(why) = direct_unsupported() {
        eprintln!("skipped: {why}");
        return;
    }
    let src = "setup\n\
               f = open a create\n\
               write f 8KiB OLD\n\
               close f\n\
               end\n\
               x = open a direct\n\
               pwrite x 4KiB 8KiB D\n\
               write x 512 E at 0\n\
               y = open a direct append\n\
               write y 1KiB E\n\
               fsync y\n";
    let program = unplug_model::parse::parse(src).unwrap();
    let root = tempfile::tempdir().unwrap();
    let c = run_and_compare(&program, root.path()).unwrap();
    assert!(c.equal, "{}", c.differences.join("\n"));
    assert_eq!(
        c.observed.to_string(),
        "a  file 13KiB  [0, 512B) E, [512B, 4KiB) OLD, [4KiB, 12KiB) D, [12KiB, 13KiB) E"
    );
}

/// The model rejects these programs, and so does the kernel, with the errno the model names.
#[test]
fn the_kernel_rejects_what_the_model_rejects() {
    let mut cases = vec![
        // (setup + ops, errno)
        (
            "setup\nf = open a create\ng = open b create\nend\nrename a b noreplace\n",
            17, // EEXIST
        ),
        (
            "setup\nf = open a create\nend\nrename a c exchange\n",
            2, // ENOENT
        ),
        ("mkdir d\nmkdir d/e\nrename d d/e exchange\n", 22), // EINVAL
        ("t = open . tmpfile excl\nflink t x\n", 2),         // ENOENT
        (
            "t = open . tmpfile\nflink t x\nunlink x\nflink t y\n",
            2, // ENOENT: linked once, I_LINKABLE is gone
        ),
        ("f = open a create\nunlink a\nflink f b\n", 2), // ENOENT
        ("t = open . tmpfile\nflink t .\n", 17),         // EEXIST (the root's name)
        ("t = open . tmpfile create\n", 22),             // EINVAL
        ("f = open a create\nfallocate f 0 0\n", 22),    // EINVAL
        ("symlink x s\nsymlink y s\n", 17),              // EEXIST
    ];
    let direct = direct_unsupported();
    if direct.is_none() {
        cases.push(("f = open a create direct\npwrite f 100 512 D\n", 22)); // EINVAL
        cases.push(("f = open a create direct\npwrite f 0 100 D\n", 22));
    } else {
        eprintln!(
            "skipped the unaligned O_DIRECT cases: {}",
            direct.as_deref().unwrap_or("")
        );
    }
    for (src, errno) in cases {
        let program = unplug_model::parse::parse(src).unwrap();
        let root = tempfile::tempdir().unwrap();
        let model = run_and_compare(&program, root.path()).unwrap_err();
        assert!(matches!(model, Error::Invalid { .. }), "{src}: {model:?}");
        let root = tempfile::tempdir().unwrap();
        let real = run(&program, root.path()).unwrap_err();
        assert_eq!(
            (real.op_number(), real.io_error().raw_os_error()),
            (Some(program.ops.len()), Some(errno)),
            "{src}: {real}"
        );
    }
}
