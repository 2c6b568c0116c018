//! CLI transcripts (trycmd): each `tests/cmd/*.toml` runs `unplug` with arguments and compares
//! its exit code, stdout and stderr with the files beside it. Regenerate after a reviewed change
//! with `TRYCMD=overwrite cargo test --test cli`.

#[test]
fn cli_transcripts() {
    trycmd::TestCases::new().case("tests/cmd/*.toml");
}

/// Runs `unplug` with `args` from the repository root; returns (exit code, stdout as JSON).
fn json_of(args: &[&str]) -> (i32, serde_json::Value) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_unplug"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("unplug runs");
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{args:?}: not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    (out.status.code().expect("exit code"), v)
}

/// The JSON contract of README.md ("JSON output"), which scripts rely on.
#[test]
fn json_contract() {
    let seed = "examples/mmap-rename.up";
    let (code, v) = json_of(&["check", "--json", seed]);
    assert_eq!(code, 1, "posix B fails");
    let results = v["results"].as_array().expect("results");
    let models: Vec<String> = unplug_model::ModelSpec::all()
        .iter()
        .map(|m| m.to_string())
        .collect();
    assert_eq!(
        results.len(),
        models.len() * 2,
        "every default model x 2 properties"
    );
    for r in results {
        assert!(
            models.contains(&r["model"].as_str().unwrap().to_string()),
            "{r}"
        );
        assert!(["A", "B"].contains(&r["property"].as_str().unwrap()), "{r}");
        assert!(r["holds"].is_boolean(), "{r}");
    }

    let (code, v) = json_of(&["syncs", "--json", seed]);
    assert_eq!(code, 1);
    for m in v["models"].as_array().expect("models") {
        let model = m["model"].as_str().expect("model");
        let syncs = m["syncs"].as_array().expect("syncs");
        let ops: Vec<u64> = syncs
            .iter()
            .map(|s| s["op"].as_u64().expect("op"))
            .collect();
        assert_eq!(ops, [5, 6, 8], "{model}");
        for s in syncs {
            assert!(s["call"].is_string());
            for p in ["A", "B"] {
                let verdict = s["verdicts"][p].as_str().expect("verdict");
                assert!(verdict == "needed" || verdict == "redundant", "{model} {s}");
            }
        }
    }
    let ext4 = v["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["model"] == "ext4")
        .unwrap();
    assert_eq!(ext4["syncs"][2]["verdicts"]["B"], "needed");
    assert!(ext4["syncs"][2]["counterexamples"]["B"]["replay"].is_string());

    let (code, v) = json_of(&["states", "--json", "--model", "ext4", seed]);
    assert_eq!(code, 0);
    let points = v["crash_points"].as_array().expect("crash_points");
    assert_eq!(points.len(), 9, "crash points 0 to 8");
    for (i, p) in points.iter().enumerate() {
        assert_eq!(p["at"].as_u64(), Some(i as u64));
        assert!(p["distinct_states"].is_number(), "{}", p["distinct_states"]);
        assert!(p["states"].is_array());
    }
    // Crash point 4 (the store returned, the msync may have started): nothing, an empty `tmp`,
    // `tmp` of 8 MiB of zeros, of D, or any of the 2^2048 - 2 mixes of its 2048 blocks.
    let expected = num_bigint::BigUint::from(2u32).pow(2048) + 2u32;
    assert_eq!(
        points[4]["distinct_states"].to_string(),
        expected.to_string()
    );
}

/// Every counterexample that `check` and `syncs` print replays: `explain --state REPLAY` shows the
/// same state (the round trip fail -> print -> replay), over the whole litmus corpus.
#[test]
fn every_printed_replay_string_explains_back() {
    let mut files: Vec<_> = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/litmus"))
        .expect("litmus/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "up"))
        .collect();
    files.push("examples/mmap-rename.up".into());
    files.sort();
    let mut checked = 0;
    for f in &files {
        let f = f.to_str().expect("utf-8 path");
        let mut replays: Vec<(String, String, String)> = Vec::new(); // (model, replay, state text)
        let (_, check) = json_of(&["check", "--json", f]);
        for r in check["results"].as_array().expect("results") {
            if let Some(c) = r["counterexample"].as_object() {
                replays.push((
                    r["model"].as_str().unwrap().into(),
                    c["replay"].as_str().unwrap().into(),
                    c["text"].as_str().unwrap().into(),
                ));
            }
        }
        let (_, syncs) = json_of(&["syncs", "--json", f]);
        for m in syncs["models"].as_array().expect("models") {
            for s in m["syncs"].as_array().expect("syncs") {
                for c in s["counterexamples"].as_object().expect("map").values() {
                    replays.push((
                        m["model"].as_str().unwrap().into(),
                        c["replay"].as_str().unwrap().into(),
                        c["text"].as_str().unwrap().into(),
                    ));
                }
            }
        }
        for (model, replay, text) in replays {
            let (code, e) = json_of(&[
                "explain", "--json", f, "--model", &model, "--state", &replay,
            ]);
            assert_eq!(code, 0, "{f} {model} {replay}: {e}");
            assert_eq!(
                e["text"].as_str(),
                Some(text.as_str()),
                "{f} {model} {replay}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 30, "only {checked} replay strings in the corpus");
}

/// `table --format json`: one column per default model, one row per program and property, a
/// counterexample exactly where a property fails; the same input gives the same bytes.
#[test]
fn table_json_shape() {
    let dir = "tests/cmd/table-fixture";
    let (code, v) = json_of(&["table", dir, "--format", "json"]);
    assert_eq!(code, 0, "a table is a report: {v}");
    let models: Vec<String> = unplug_model::ModelSpec::all()
        .iter()
        .map(|m| m.to_string())
        .collect();
    assert_eq!(v["models"], serde_json::json!(models));
    let rows = v["rows"].as_array().expect("rows");
    let keys: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| {
            (
                r["program"].as_str().unwrap(),
                r["property"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        keys,
        [("overwrite", "A"), ("overwrite", "M"), ("rename", "R")]
    );
    for r in rows {
        assert!(r["text"].is_string() && r["question"].is_string(), "{r}");
        let cells = r["cells"].as_object().expect("cells");
        assert_eq!(cells.len(), models.len(), "{r}");
        for m in &models {
            let c = &cells[m];
            let holds = c["holds"].as_bool().expect("holds");
            assert_eq!(holds, c["counterexample"].is_null(), "{m}: {c}");
            if !holds {
                assert!(c["counterexample"]["replay"].is_string(), "{c}");
            }
        }
    }
    let run = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_unplug"))
            .args(["table", dir, "--format", "html"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("unplug runs")
            .stdout
    };
    let html = run();
    assert_eq!(html, run(), "deterministic output");
    let html = String::from_utf8(html).expect("utf-8");
    for external in ["http://", "https://", "<script src", "<link"] {
        assert!(!html.contains(external), "self-contained: found {external}");
    }
}

/// `explain` on the state where an unsynced append to a new file shows zeros at its full size
/// cites the rules that allow that state: delayed allocation under ext4, with the writeback's
/// page-by-page sizes the whole size comes after, and never
/// ext4.overwrite-unordered (blocks allocated before crash point 0), which an appended block is
/// not. Under data=journal there is no such state: each page's handle journals the page's data
/// with the size up to it (ext4.data-journal, ext4.page-handles).
#[test]
fn explain_cites_the_rule_that_allows_append_zeros() {
    let f = "tests/cmd/explain-append-zeros.up";
    for (model, want) in [
        (
            "ext4",
            Some(vec!["ext4.delalloc", "ext4.writeback-page-sizes"]),
        ),
        ("ext4:data=journal", None),
    ] {
        let (code, states) = json_of(&["states", "--json", "--model", model, "--at", "2", f]);
        assert_eq!(code, 0, "{states}");
        let zeros: Vec<&str> = states["crash_points"][0]["states"]
            .as_array()
            .expect("states")
            .iter()
            .filter(|s| s["text"] == "log  file 12KiB  [0, 12KiB) zero")
            .map(|s| s["replay"].as_str().expect("replay"))
            .collect();
        let Some(want) = want else {
            assert!(
                zeros.is_empty(),
                "{model}: no state of 12KiB of zeros: {zeros:?}"
            );
            continue;
        };
        assert_eq!(zeros.len(), 1, "{model}: one state of 12KiB of zeros");
        let (code, e) = json_of(&[
            "explain", "--json", f, "--model", model, "--state", zeros[0],
        ]);
        assert_eq!(code, 0, "{e}");
        let ids: Vec<&str> = e["rules"]
            .as_array()
            .expect("rules")
            .iter()
            .map(|r| r["id"].as_str().expect("id"))
            .collect();
        assert_eq!(ids, want, "{model} {}", zeros[0]);
    }
}

/// Runs `unplug` with `args` from the repository root, standard output going to `/dev/full`
/// (every write fails); returns (exit code, standard error).
fn to_dev_full(args: &[&str]) -> (Option<i32>, String) {
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_unplug"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(full)
        .output()
        .expect("unplug runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A write error on standard output is reported (standard error, exit 2), never a panic, in
/// every command that prints.
#[test]
fn stdout_write_errors_are_reported() {
    let seed = "examples/mmap-rename.up";
    let cases: &[&[&str]] = &[
        &["--help"],
        &["--version"],
        &["help", "check"],
        &["models"],
        &["models", "--json"],
        &["check", seed],
        &["check", "--json", seed],
        &["check", "--json", "nope.up"],
        &["states", "--model", "ext4", "--at", "2", seed],
        &["syncs", "--model", "ext4", seed],
        &["explain", "--model", "ext4", "--state", "2:m1", seed],
        &["table", "tests/cmd/table-fixture", "--model", "ext4"],
        &[
            "search",
            "--model",
            "ext4",
            "--cases",
            "4",
            "litmus/fsync-rename.up",
        ],
        &["workloads", "--ops", "1", "--show", "3"],
        &["completions", "bash"],
        &["man"],
        &["workloads", "--ops", "1", "--limit", "5", "--model", "ext4"],
    ];
    for args in cases {
        let (code, stderr) = to_dev_full(args);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains("cannot write to standard output"),
            "{args:?}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

/// Runs `unplug` with `args` from the repository root; returns (exit code, stdout, stderr).
fn run(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_unplug"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("unplug runs");
    (
        out.status.code().expect("exit code"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `--version`: the version, the commit (a short hash, possibly `-dirty`, or `unknown` outside a
/// git checkout) and the kernels the models were checked against. Only the shape: the commit
/// changes with every build.
#[test]
fn version_names_commit_and_kernels() {
    let (code, out, _) = run(&["--version"]);
    assert_eq!(code, 0);
    let mut lines = out.lines();
    let first = lines.next().expect("a version line");
    let rest = first
        .strip_prefix(concat!("unplug ", env!("CARGO_PKG_VERSION"), " (commit "))
        .and_then(|r| r.strip_suffix(')'))
        .unwrap_or_else(|| panic!("{first}"));
    let hash = rest.strip_suffix("-dirty").unwrap_or(rest);
    assert!(
        hash == "unknown" || (hash.len() >= 7 && hash.chars().all(|c| c.is_ascii_hexdigit())),
        "{first}"
    );
    let kernels = lines.next().expect("a kernels line");
    assert!(
        kernels.starts_with("kernels: ") && kernels.contains("Linux 6."),
        "{kernels}"
    );
    let (code, short, _) = run(&["-V"]);
    assert_eq!((code, short.trim()), (0, first));
}

/// `completions SHELL` and `man`: non-empty output the shell and roff accept.
#[test]
fn completions_and_man_page() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let (code, out, err) = run(&["completions", shell]);
        assert_eq!(code, 0, "{shell}: {err}");
        assert!(out.contains("unplug"), "{shell}: {out}");
    }
    let (_, bash, _) = run(&["completions", "bash"]);
    assert!(bash.contains("_unplug()"), "{bash}");
    for sub in ["check", "syncs", "workloads", "completions"] {
        assert!(bash.contains(sub), "bash completion lacks {sub}");
    }
    // bash parses it (-n: syntax only), where bash is installed.
    if let Ok(mut child) = std::process::Command::new("bash")
        .arg("-n")
        .stdin(std::process::Stdio::piped())
        .spawn()
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(bash.as_bytes())
            .expect("write");
        assert!(child.wait().expect("bash").success(), "bash -n rejects it");
    }
    let (code, man, err) = run(&["man"]);
    assert_eq!(code, 0, "{err}");
    assert!(man.lines().any(|l| l.starts_with(".TH unplug 1")), "{man}");
    for section in [".SH NAME", ".SH SYNOPSIS", ".SH SUBCOMMANDS"] {
        assert!(man.contains(section), "man page lacks {section}");
    }
}

/// The words of docs/LANGUAGE.md's code (inline spans and fenced blocks).
fn code_words(doc: &str) -> std::collections::BTreeSet<String> {
    let mut words = std::collections::BTreeSet::new();
    let mut add = |code: &str| {
        for w in code.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-')) {
            words.insert(w.to_string());
        }
    };
    for (i, block) in doc.split("```").enumerate() {
        if i % 2 == 1 {
            add(block);
        } else {
            for (j, span) in block.split('`').enumerate() {
                if j % 2 == 1 {
                    add(span);
                }
            }
        }
    }
    words
}

/// docs/LANGUAGE.md cannot fall behind the parser: every statement keyword the parser names
/// (its hint for an unknown statement), every op of the litmus corpus, and every predicate
/// keyword appear in its code.
#[test]
fn language_reference_covers_every_keyword() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/LANGUAGE.md"))
        .expect("docs/LANGUAGE.md");
    let words = code_words(&doc);
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    assert!(readme.contains("docs/LANGUAGE.md"), "README links to it");

    // The parser's own list, from its hint for an unknown statement.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_unplug"))
        .args(["check", "--json", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("unplug runs");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(b"frobnicate f\n").expect("write");
    }
    let out = child.wait_with_output().expect("unplug runs");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON errors");
    let hint = v["errors"][0]["hint"].as_str().expect("a hint");
    let list = hint
        .strip_prefix("expected one of: ")
        .unwrap_or_else(|| panic!("{hint}"));
    let mut keywords: Vec<String> = list
        .split(", ")
        .map(|item| {
            item.split_whitespace()
                .next()
                .expect("a keyword")
                .to_string()
        })
        .collect();
    assert!(keywords.len() >= 25, "{keywords:?}");

    // Every op the corpus uses, by the parser's name for it.
    let mut files: Vec<_> = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/litmus"))
        .expect("litmus/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "up"))
        .collect();
    files.push(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/mmap-rename.up").into());
    for f in files {
        let src = std::fs::read_to_string(&f).expect("read");
        let (program, _) = unplug_model::load(&src).unwrap_or_else(|_| panic!("{f:?} loads"));
        keywords.extend(program.ops.iter().map(|op| op.kind.name().to_string()));
    }
    // Predicates, property forms and op modifiers.
    for w in [
        "always",
        "after",
        "exists",
        "size",
        "links",
        "entries",
        "readlink",
        "prefix-of",
        "old",
        "new",
        "empty",
        "not",
        "and",
        "or",
        "implies",
        "checker",
        "hex",
        "at",
        "keep-size",
        "exchange",
        "noreplace",
        "invalidate",
        "async",
        "create",
        "excl",
        "trunc",
        "append",
        "dsync",
        "dir",
        "tmpfile",
        "direct",
        "KiB",
        "MiB",
        "GiB",
        "TiB",
        "PiB",
        "EiB",
    ] {
        keywords.push(w.to_string());
    }
    let missing: Vec<&String> = keywords.iter().filter(|k| !words.contains(*k)).collect();
    assert!(missing.is_empty(), "docs/LANGUAGE.md lacks {missing:?}");
}

/// A checker killed at `--checker-timeout` gets SIGTERM first, so its own clean-up runs: no
/// temporary directory of the checker's, nor of unplug's, is left behind.
#[test]
fn a_checker_past_its_timeout_cleans_up() {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("checker-timeout-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let tmp = dir.join("tmp");
    std::fs::create_dir_all(&tmp).expect("scratch");
    let checker = dir.join("slow-checker");
    std::fs::write(
        &checker,
        "#!/bin/sh\n# Copies the state, then hangs; removes its copy when asked to stop.\n\
         copy=$(mktemp -d)\ntrap 'rm -rf \"$copy\"' EXIT\ntrap 'exit 1' TERM\ncp -a \"$1/.\" \"$copy\"\n\
         sleep 30 &\nwait\n",
    )
    .expect("checker");
    std::fs::set_permissions(
        &checker,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_unplug"))
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/cmd"))
        .env("TMPDIR", &tmp)
        .args([
            "check",
            "--model",
            "seq",
            "--checker-timeout",
            "1",
            "--checker",
        ])
        .arg(format!("{} {{dir}}", checker.display()))
        .arg("checker-uses.up")
        .output()
        .expect("unplug runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("timed out after 1 s"), "{stdout}");
    let left: Vec<_> = std::fs::read_dir(&tmp)
        .expect("tmp")
        .map(|e| e.expect("entry").path())
        .collect();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(left.is_empty(), "left behind: {left:?}");
}
