//! `unplug workloads`: the JSON contract, findings that reproduce with `unplug check`,
//! deterministic output, bad usage, and Ctrl-C reporting what was covered.

use serde_json::Value;
use std::process::{Command, Output};

fn unplug(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_unplug"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("unplug runs")
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

const SMALL: [&str; 7] = ["workloads", "--ops", "1", "--files", "2", "--dirs", "1"];

#[test]
fn json_summary_has_the_contract_fields_and_findings_reproduce() {
    let mut args = SMALL.to_vec();
    args.extend(["--json", "--max-findings", "2"]);
    let out = unplug(&args);
    let v = json(&out);
    let space = v["space"]["size"].as_u64().unwrap();
    let checked = v["workloads"].as_u64().unwrap();
    let skipped = v["skipped"].as_u64().unwrap();
    assert_eq!(
        checked + skipped,
        space,
        "every workload checked or skipped: {v}"
    );
    assert!(checked > 100, "{v}");
    let models: Vec<&str> = v["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    assert_eq!(models, ["posix", "ext4", "xfs", "btrfs", "seq"]);
    assert!(v["crash_states"].as_u64().unwrap() > checked);
    assert!(v["seconds"].as_f64().is_some());
    let findings = v["findings"].as_array().unwrap();
    assert!(!findings.is_empty(), "posix promises little: {v}");
    let order = findings.iter().filter(|f| f["oracle"] == "order").count();
    let code = if order > 0 {
        1
    } else if v["not_proven"] == true {
        3
    } else {
        0
    };
    assert_eq!(out.status.code(), Some(code));
    let dir = std::env::temp_dir().join(format!("unplug-workloads-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut reproduced = 0;
    for f in findings {
        let (model, oracle) = (f["model"].as_str().unwrap(), f["oracle"].as_str().unwrap());
        let program = f["program"].as_str().unwrap();
        let file = dir.join(format!("w{}.up", f["index"]));
        std::fs::write(&file, program).unwrap();
        let file = file.to_str().unwrap();
        if oracle == "order" {
            // The state the stronger model allows and the weaker does not: `states` of each
            // model on the program shows it under one only.
            continue;
        }
        let c = json(&unplug(&["check", "--json", "-m", model, file]));
        let property = f["property"].as_str().unwrap();
        let r = c["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["property"] == property)
            .unwrap_or_else(|| panic!("{property} in {program}"));
        assert_eq!(r["holds"], false, "{model} {oracle}: {program}");
        assert!(
            property.starts_with(oracle),
            "{property} is an oracle {oracle}"
        );
        reproduced += 1;
    }
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(reproduced >= 3, "{reproduced}");
}

#[test]
fn posix_loses_a_new_fsynced_file_and_ext4_does_not() {
    // Workload 6 of this space: `creat bar; fsync bar` (README's answer: POSIX's fsync of a file
    // does not make its directory entry durable; ext4's journal commit does).
    let show = unplug(&[SMALL.as_slice(), &["--show", "6"]].concat());
    let text = String::from_utf8(show.stdout).unwrap();
    assert!(
        text.starts_with("# workload 6: creat bar; fsync bar\n"),
        "{text}"
    );
    let file = std::env::temp_dir().join(format!("unplug-w6-{}.up", std::process::id()));
    std::fs::write(&file, &text).unwrap();
    let c = json(&unplug(&["check", "--json", file.to_str().unwrap()]));
    std::fs::remove_file(&file).unwrap();
    let holds = |m: &str| {
        c["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["model"] == m && r["property"] == "fsync_3")
            .unwrap_or_else(|| panic!("{c}"))["holds"]
            .as_bool()
            .unwrap()
    };
    assert!(!holds("posix"));
    for m in ["ext4", "xfs", "btrfs", "seq"] {
        assert!(holds(m), "{m}");
    }
}

#[test]
fn output_is_deterministic_and_json_lines_cover_every_checked_workload() {
    let dir = std::env::temp_dir().join(format!("unplug-wl-det-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let run = |name: &str| {
        let out = dir.join(name);
        let mut args = SMALL.to_vec();
        let o = out.to_str().unwrap().to_string();
        args.extend(["--json", "--out", &o]);
        let mut v = json(&unplug(&args));
        v["seconds"] = Value::Null;
        (v, std::fs::read_to_string(out).unwrap())
    };
    let (a, la) = run("a.jsonl");
    let (b, lb) = run("b.jsonl");
    assert_eq!(a, b);
    assert_eq!(la, lb);
    let lines: Vec<Value> = la
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len() as u64, a["workloads"].as_u64().unwrap());
    let mut last = None;
    for l in &lines {
        let i = l["index"].as_u64().unwrap();
        assert!(last < Some(i), "in index order");
        last = Some(i);
        assert_eq!(l["verdicts"].as_object().unwrap().len(), 5, "{l}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_bounds_are_usage_errors() {
    let out = unplug(&["workloads", "--files", "9", "--json"]);
    assert_eq!(out.status.code(), Some(2));
    let v = json(&out);
    assert!(v["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("--files must be 1 to 4"));
    let out = unplug(&[SMALL.as_slice(), &["--show", "999999"]].concat());
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("the space has 316 workloads"));
    let out = unplug(&["workloads", "--model", "zfs"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn ctrl_c_stops_and_reports_what_was_covered() {
    let child = Command::new(env!("CARGO_BIN_EXE_unplug"))
        .args(["workloads", "--ops", "2", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("unplug runs");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    // SAFETY: kill(2) on our own child's pid.
    #[allow(unsafe_code)]
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    let v = json(&out);
    assert_eq!(v["interrupted"], true);
    let covered = v["covered"].as_u64().unwrap();
    assert!(covered < v["space"]["size"].as_u64().unwrap());
    assert_eq!(
        covered,
        v["workloads"].as_u64().unwrap() + v["skipped"].as_u64().unwrap()
    );
}

#[test]
fn bench_prints_throughput_growth_and_the_markdown_it_writes() {
    let md = std::env::temp_dir().join(format!("unplug-perf-{}.md", std::process::id()));
    let out = unplug(&[
        "bench",
        "--dir",
        "tests/cmd/table-fixture",
        "--min-ms",
        "1",
        "--no-workloads",
        "--growth-max-seconds",
        "0.02",
        "--max-length",
        "30",
        "--json",
        "--out",
        md.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let v = json(&out);
    let rows = v["throughput"].as_array().unwrap();
    assert_eq!(rows.len(), 2 * 5, "2 programs x 5 models: {v}");
    for r in rows {
        assert!(r["classes"].as_u64().unwrap() > 0, "{r}");
        assert!(r["classes_per_second"].as_f64().unwrap() > 0.0, "{r}");
    }
    for m in ["posix", "ext4", "xfs", "btrfs", "seq"] {
        assert!(v["median_classes_per_second"][m].as_f64().unwrap() > 0.0);
    }
    let growth = v["growth"].as_array().unwrap();
    assert_eq!(growth.len(), 3);
    for g in growth {
        let rows = g["rows"].as_array().unwrap();
        assert!(rows.len() >= 2, "{g}");
        let classes: Vec<u64> = rows
            .iter()
            .map(|r| r["classes"].as_u64().unwrap())
            .collect();
        assert!(
            classes.windows(2).all(|w| w[0] <= w[1]),
            "states grow: {classes:?}"
        );
    }
    // The length table: two lengths per shape, every state counted, within the bound.
    let lengths = v["lengths"]["rows"].as_array().unwrap();
    assert_eq!(lengths.len(), 2 * 5, "{v}");
    assert!(lengths
        .iter()
        .all(|r| r["classes"].as_u64().unwrap() > 0 && r["bound_hit"] == false));
    let text = std::fs::read_to_string(&md).unwrap();
    std::fs::remove_file(&md).unwrap();
    assert!(text.contains("## Output-sensitive enumeration"));
    assert!(text.starts_with("# Performance\n"));
    assert!(
        text.contains("| overwrite |") && text.contains("## How cost grows"),
        "{text}"
    );
}
