//! `--shard I/N` and `unplug merge`: for `workloads`, `table` and `real` over a directory, the
//! shards of a run merged give exactly the report (text and `--json`) and the exit status of the
//! run without `--shard`; and every way shards can fail to make one run is a clear error.
//! The `real` test needs root and what scripts/install-deps installs, like tests/real.rs.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn unplug(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_unplug"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("unplug runs")
}

/// A scratch directory for this test, removed first if it is left over.
fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("unplug-shard-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs `args` with `--shard i/n` for each i, each shard's lines in a file of `dir`.
fn shards(dir: &Path, tag: &str, args: &[&str], n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let s = format!("{i}/{n}");
            let out = unplug(&[args, &["--shard", &s]].concat());
            let file = dir.join(format!("{tag}{i}.jsonl"));
            std::fs::write(&file, &out.stdout).unwrap();
            file.to_str().unwrap().to_string()
        })
        .collect()
}

/// `unplug merge [--json] FILES`.
fn merge(files: &[String], json: bool) -> Output {
    let mut args = vec!["merge"];
    if json {
        args.push("--json");
    }
    args.extend(files.iter().map(String::as_str));
    unplug(&args)
}

/// Replaces every match of `re` (a tiny pattern: literal text around one `#` standing for a
/// number, with decimals) by the text with `#` itself: the figures that differ between any two
/// runs (wall-clock seconds) are compared as `#`.
fn mask(s: &str, pats: &[(&str, &str)]) -> String {
    let mut out = s.to_string();
    for (before, after) in pats {
        let mut res = String::new();
        let mut rest = out.as_str();
        while let Some(i) = rest.find(before) {
            let (head, tail) = rest.split_at(i + before.len());
            res.push_str(head);
            let num = tail
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .unwrap_or(tail.len());
            if num > 0 && tail[num..].starts_with(after) {
                res.push('#');
                rest = &tail[num..];
            } else {
                rest = tail;
            }
        }
        res.push_str(rest);
        out = res;
    }
    out
}

/// The unsharded run of `args` and the merge of its `n` shards: the same exit status, the same
/// standard output (after `pats` masked) and the same standard error.
fn assert_merge_is_the_run(
    dir: &Path,
    tag: &str,
    args: &[&str],
    n: usize,
    pats: &[(&str, &str)],
) -> Output {
    let files = shards(dir, tag, args, n);
    for (json, extra) in [(false, vec![]), (true, vec!["--json"])] {
        let whole = unplug(&[args, &extra].concat());
        let merged = merge(&files, json);
        assert_eq!(
            merged.status.code(),
            whole.status.code(),
            "{args:?} {extra:?}: {}",
            text(&merged.stderr)
        );
        let (w, m) = (text(&whole.stdout), text(&merged.stdout));
        assert!(!w.is_empty());
        assert_eq!(mask(&w, pats), mask(&m, pats), "{args:?} {extra:?}");
        assert_eq!(
            text(&whole.stderr),
            text(&merged.stderr),
            "{args:?} {extra:?}"
        );
    }
    unplug(args)
}

/// Workloads: the unit is a workload; findings are listed (at most --max-findings per model
/// and oracle) across shards as the unsharded sweep lists them. The seconds are the shards' sum.
#[test]
fn merged_workload_shards_are_the_unsharded_sweep() {
    let dir = scratch("workloads");
    let secs = [(" in ", " s\n"), ("\"seconds\": ", ",")];
    for (i, args) in [
        &["workloads", "--ops", "1", "--files", "2", "--dirs", "1"][..],
        &[
            "workloads",
            "--ops",
            "2",
            "--files",
            "1",
            "--dirs",
            "1",
            "--limit",
            "1500",
            "--max-findings",
            "2",
        ][..],
    ]
    .into_iter()
    .enumerate()
    {
        assert_merge_is_the_run(&dir, &format!("w{i}-"), args, 3, &secs);
    }
    // More shards than some units need: a shard with nothing to do still writes its lines.
    assert_merge_is_the_run(
        &dir,
        "many",
        &[
            "workloads",
            "--ops",
            "1",
            "--files",
            "1",
            "--dirs",
            "0",
            "--limit",
            "4",
        ],
        6,
        &secs,
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Table: the unit is a program (by name); a program with errors is reported on standard error
/// by the merge as by the run, with the same exit status (2).
#[test]
fn merged_table_shards_are_the_unsharded_table() {
    let dir = scratch("table");
    let programs = dir.join("programs");
    std::fs::create_dir(&programs).unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for p in [
        "litmus/append-rename.up",
        "litmus/fsync-rename.up",
        "litmus/link-unlink.up",
        "litmus/mkdir-rmdir.up",
        "litmus/overwrite-order.up",
        "tests/cmd/bad.up",
    ] {
        let from = root.join(p);
        std::fs::copy(&from, programs.join(from.file_name().unwrap())).unwrap();
    }
    let d = programs.to_str().unwrap();
    let out = assert_merge_is_the_run(&dir, "t", &["table", d], 3, &[]);
    assert_eq!(out.status.code(), Some(2), "bad.up has errors");
    assert_merge_is_the_run(
        &dir,
        "t-ext4",
        &["table", d, "-m", "ext4", "-m", "posix", "--max-states", "3"],
        2,
        &[],
    );
    // The fixture of the CLI transcripts, in as many shards as programs and more.
    assert_merge_is_the_run(&dir, "fx", &["table", "tests/cmd/table-fixture"], 4, &[]);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Real runs over a directory: the unit is a session (whole programs on a fresh file system, as
/// the unsharded run cuts them), so each shard records what the unsharded run records. A real
/// run is not repeatable to the byte (which states a crash image shows depends on when the
/// kernel wrote back), so two runs, sharded or not, are compared without their timings and
/// observed-state figures; the merge itself is then held exact: the sessions of the 3 shards,
/// put into one shard 0/1, merge to the same bytes.
#[test]
fn merged_real_shards_are_the_unsharded_run() {
    let dir = scratch("real");
    let programs = dir.join("programs");
    std::fs::create_dir(&programs).unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for p in [
        "append-rename",
        "append-size",
        "create-rename-dirsync",
        "fdatasync-rename",
        "fsync-rename",
        "link-unlink",
        "mkdir-rmdir",
        "overwrite-order",
    ] {
        std::fs::copy(
            root.join(format!("litmus/{p}.up")),
            programs.join(format!("{p}.up")),
        )
        .unwrap();
    }
    let keep = dir.join("unsound");
    let args = [
        "real",
        programs.to_str().unwrap(),
        "--fs",
        "ext4",
        "--fs",
        "xfs",
        "--max-images",
        "1",
        "--keep",
        keep.to_str().unwrap(),
    ];
    let files = shards(&dir, "r", &args, 3);
    let figures = |s: &str| {
        mask(
            s,
            &[
                ("(", "/s)"),
                ("recording ", " s"),
                ("checking ", " s"),
                ("/s), ", " distinct"),
                ("observed: ", "%"),
                ("images    ", " states"),
                ("  ", "/"),
                ("\"check_seconds\": ", ","),
                ("\"record_seconds\": ", ","),
                ("\"images_per_second\": ", ","),
                ("\"observed_states\": ", ","),
                ("\"predicted_observed\": ", ","),
                ("\"predicted_observed_fraction\": ", ","),
                ("\"images\": ", ","),
                ("\"violated\": ", "\n"),
            ],
        )
    };
    for json in [false, true] {
        let mut a = args.to_vec();
        if json {
            a.push("--json");
        }
        let whole = unplug(&a);
        let merged = merge(&files, json);
        assert_eq!(whole.status.code(), Some(0), "{}", text(&whole.stderr));
        assert_eq!(merged.status.code(), Some(0), "{}", text(&merged.stderr));
        assert_eq!(
            figures(&text(&whole.stdout)),
            figures(&text(&merged.stdout)),
            "json: {json}"
        );
    }
    // The same session reports as one shard of one: the same bytes as the merge of three.
    let mut records: Vec<(u64, String)> = Vec::new();
    let mut header = String::new();
    for f in &files {
        let s = std::fs::read_to_string(f).unwrap();
        let mut lines = s.lines();
        header = lines.next().unwrap().to_string();
        for l in lines {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            if let Some(u) = v["unit"].as_u64() {
                records.push((u, l.to_string()));
            }
        }
    }
    records.sort();
    let mut h: serde_json::Value = serde_json::from_str(&header).unwrap();
    let units = h["unplug_shard"]["units"].as_u64().unwrap();
    assert!(units >= 3 * 2, "at least 3 sessions per file system: {h}");
    assert_eq!(records.len() as u64, units);
    h["unplug_shard"]["shard"] = 0.into();
    h["unplug_shard"]["shards"] = 1.into();
    let mut one = format!("{h}\n");
    for (_, l) in &records {
        one.push_str(l);
        one.push('\n');
    }
    one.push_str(&format!(
        "{{\"end\":{{\"units\":{units},\"summary\":{{}}}}}}\n"
    ));
    let single = dir.join("one.jsonl");
    std::fs::write(&single, one).unwrap();
    let single = vec![single.to_str().unwrap().to_string()];
    for json in [false, true] {
        assert_eq!(
            text(&merge(&single, json).stdout),
            text(&merge(&files, json).stdout),
            "json: {json}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Every way shards can fail to make one run is an error (exit 2) that names the problem, and
/// the file and line where it is one.
#[test]
fn merge_refuses_shards_that_are_not_one_run() {
    let dir = scratch("errors");
    let w = ["workloads", "--ops", "1", "--files", "1", "--dirs", "0"];
    let files = shards(&dir, "w", &w, 3);
    let err = |files: &[&str]| {
        let out = merge(
            &files.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            false,
        );
        assert_eq!(out.status.code(), Some(2), "{files:?}");
        assert!(out.stdout.is_empty());
        text(&out.stderr)
    };
    let (a, b, c) = (files[0].as_str(), files[1].as_str(), files[2].as_str());
    let e = err(&[a, c]);
    assert!(e.contains("missing shard 1/3"), "{e}");
    let e = err(&[a, b, b, c]);
    assert!(e.contains("shard 1/3 is given twice"), "{e}");
    // Shards of another run: other options, another command, another number of shards.
    let other = shards(&dir, "x", &[&w[..], &["--max-findings", "1"]].concat(), 3);
    let e = err(&[a, other[1].as_str(), c]);
    assert!(e.contains("shards of different runs"), "{e}");
    assert!(e.contains("option max_findings 5 against 1"), "{e}");
    let t = shards(&dir, "t", &["table", "tests/cmd/table-fixture"], 3);
    let e = err(&[a, t[1].as_str(), c]);
    assert!(e.contains("command \"workloads\" against \"table\""), "{e}");
    let two = shards(&dir, "two", &w, 2);
    let e = err(&[a, two[1].as_str()]);
    assert!(e.contains("shards 3 against 2"), "{e}");
    // A malformed line, a cut-short shard, something that is not a shard's output.
    let s1 = std::fs::read_to_string(b).unwrap();
    let bad = dir.join("bad.jsonl");
    let mut lines: Vec<&str> = s1.lines().collect();
    lines.insert(1, "{\"unit\": 1, \"data\"");
    std::fs::write(&bad, lines.join("\n")).unwrap();
    let e = err(&[a, bad.to_str().unwrap(), c]);
    assert!(e.contains("bad.jsonl:2: not a JSON line"), "{e}");
    let cut = dir.join("cut.jsonl");
    std::fs::write(&cut, s1.lines().next().unwrap()).unwrap();
    let e = err(&[a, cut.to_str().unwrap(), c]);
    assert!(
        e.contains("cut.jsonl: no end record: shard 1/3 did not finish"),
        "{e}"
    );
    let e = err(&[a, "tests/cmd/bad.up", c]);
    assert!(e.contains("bad.up:1: not the output of a shard"), "{e}");
    // Shard 0's finding in workload 6 (posix, dirsync), moved to workload 7, which is shard 1's.
    let s0 = std::fs::read_to_string(a).unwrap();
    assert!(s0.contains("\"unit\":6,"), "{s0}");
    let foreign = dir.join("foreign.jsonl");
    std::fs::write(&foreign, s0.replacen("\"unit\":6,", "\"unit\":7,", 1)).unwrap();
    let e = err(&[foreign.to_str().unwrap(), b, c]);
    assert!(
        e.contains("foreign.jsonl:2: unit 7 is not one of shard 0/3's"),
        "{e}"
    );
    let e = err(&[a, "no-such-file.jsonl", c]);
    assert!(e.contains("cannot read `no-such-file.jsonl`"), "{e}");
    // Standard input once at most; the order of the files does not matter.
    let out = Command::new(env!("CARGO_BIN_EXE_unplug"))
        .args(["merge", c, "-", a])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(std::fs::File::open(b).unwrap())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let e = err(&[a, "-", "-"]);
    assert!(e.contains("`-` (standard input) can be given once"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `--shard` takes I/N with 0 <= I < N, for each of the three commands: otherwise a usage error.
#[test]
fn bad_shards_are_usage_errors() {
    for cmd in [
        &["workloads", "--ops", "1"][..],
        &["table", "tests/cmd/table-fixture"],
        &["real", "litmus/fsync-rename.up"],
    ] {
        for bad in ["3/3", "1/0", "x/2", "2", "-1/2"] {
            let flag = format!("--shard={bad}");
            let out = unplug(&[cmd, &[flag.as_str()]].concat());
            assert_eq!(out.status.code(), Some(2), "{cmd:?} {bad}");
            let e = text(&out.stderr);
            assert!(
                e.contains("--shard") && e.contains("a shard is I/N with 0 <= I < N"),
                "{cmd:?} {bad}: {e}"
            );
        }
    }
}
