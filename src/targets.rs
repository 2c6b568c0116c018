//! `unplug bench --targets`: the speed targets for application-sized programs. Each target
//! program (generated here, written to a temporary directory that is removed afterwards) is
//! answered by `check` and `syncs` under every default model, each run as a child process of
//! this binary, timed, with its peak memory (the child's resident high-water mark).
//! With `--before BIN` the same commands run with another unplug binary in the same session,
//! side by side: before and after a change, measured on the same machine at the same time.

use serde_json::{json, Value};
use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use unplug_explorer::perf;

/// One target program: its name, what it stands for, and its text.
struct Program {
    name: &'static str,
    what: &'static str,
    text: String,
}

/// The target programs (issue 12's shapes).
fn programs() -> Vec<Program> {
    let mut growth = perf::growth_program(12, 2, false);
    growth += "property P: always (not exists a0 or size a0 <= 24576)\n";
    let mut appends =
        String::from("setup\nf = open log create\nclose f\nend\nh = open log append\n");
    appends += &"write h 4KiB D\n".repeat(20);
    appends += "property P: always (size log <= 81920)\n";
    let mut renames = String::from("setup\nf = open a0 create\nclose f\nend\n");
    for i in 0..100 {
        renames += &format!("rename a{i} a{}\n", i + 1);
    }
    renames += "property P: always (exists a0 or exists a100 or exists a50)\n";
    let mut creates = String::from("setup\nmkdir d\nend\n");
    for i in 0..50 {
        creates += &format!("f{i} = open d/f{i} create\nwrite f{i} 4KiB D\nclose f{i}\n");
    }
    creates += "property P: always (not exists d/f7 or d/f7 == D or size d/f7 == 0)\n";
    // A rollback-journal commit, ten times: journal written and synced, the database page
    // written and synced, the journal deleted.
    let mut sqlite = String::from(
        "setup\nd = open db create\nwrite d 16KiB OLD\nfsync d\nclose d\nend\nd = open db\n",
    );
    for t in 0..10 {
        sqlite += &format!(
            "j = open db-journal create\nwrite j 512B H{t}\nwrite j 4KiB J{t}\nfsync j\n\
             pwrite d {} 4KiB N{t}\nfsync d\nclose j\nunlink db-journal\n",
            (t % 4) * 4096
        );
    }
    sqlite += "property P: always (exists db and size db == 16384)\n";
    // Git's loose objects: each written to a temporary name and renamed, none synced; then
    // the index, synced and renamed over.
    let mut git = String::from("setup\nmkdir objects\nend\n");
    for i in 0..2500 {
        git += &format!(
            "h = open objects/tmp{i} create\nwrite h 4KiB D\nclose h\nrename objects/tmp{i} objects/o{i}\n"
        );
    }
    git +=
        "x = open index.lock create\nwrite x 4KiB IDX\nfsync x\nclose x\nrename index.lock index\n";
    git += "property P: always (not exists objects/o7 or objects/o7 == D)\n";
    vec![
        Program {
            name: "growth-12",
            what: "the growth program, 12 unsynced appends to two files with renames; a property on one file's size",
            text: growth,
        },
        Program {
            name: "appends-20",
            what: "20 unsynced 4 KiB appends to one file",
            text: appends,
        },
        Program {
            name: "renames-100",
            what: "one file renamed 100 times",
            text: renames,
        },
        Program {
            name: "creates-50",
            what: "50 files created and written in one directory",
            text: creates,
        },
        Program {
            name: "sqlite-10",
            what: "10 rollback-journal transactions (80 ops, a sync every 4 ops)",
            text: sqlite,
        },
        Program {
            name: "git-10k",
            what: "2,500 loose objects written and renamed, then the index (10,005 ops); a property on one object",
            text: git,
        },
    ]
}

/// One command's measurement: exit status (None: killed at the timeout), seconds, peak MB.
struct Run {
    code: Option<i32>,
    seconds: f64,
    peak_mb: f64,
}

/// Runs `bin args` with its output discarded, killing it after `timeout`. The peak memory is
/// the child's VmHWM (its resident high-water mark), read from /proc every few milliseconds
/// while it runs (the last reading before it exits).
fn measure(bin: &Path, args: &[&str], timeout: Duration) -> std::io::Result<Run> {
    let start = Instant::now();
    let mut child = Command::new(bin)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak_kb = 0u64;
    let mut killed = false;
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break s;
        }
        if let Ok(text) = std::fs::read_to_string(&status_file) {
            let hwm = text
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
            peak_kb = peak_kb.max(hwm.unwrap_or(0));
        }
        if !killed && (unplug_explorer::budget::interrupted() || start.elapsed() > timeout) {
            child.kill()?;
            killed = true;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Ok(Run {
        code: if killed { None } else { status.code() },
        seconds: start.elapsed().as_secs_f64(),
        peak_mb: peak_kb as f64 / 1024.0,
    })
}

/// Every target command under `now` (and `before`), as JSON; None when interrupted.
pub(crate) fn run(
    now: &Path,
    before: Option<&Path>,
    timeout: Duration,
    bar: &indicatif::ProgressBar,
) -> std::io::Result<Option<Value>> {
    let dir = tempfile::Builder::new()
        .prefix("unplug-targets")
        .tempdir()?;
    let mut rows = Vec::new();
    for p in programs() {
        let file = dir.path().join(format!("{}.up", p.name));
        std::fs::write(&file, &p.text)?;
        let ops = unplug_model::parse::parse(&p.text)
            .map(|prog| prog.ops.len())
            .unwrap_or(0);
        for cmd in ["check", "syncs"] {
            bar.set_message(format!("target {} {cmd}", p.name));
            let args = [cmd, file.to_str().unwrap_or_default()];
            let now_run = measure(now, &args, timeout)?;
            let before_run = match before {
                Some(b) => Some(measure(b, &args, timeout)?),
                None => None,
            };
            if unplug_explorer::budget::interrupted() {
                return Ok(None);
            }
            let j = |r: &Run| json!({"exit": r.code, "seconds": r.seconds, "peak_mb": r.peak_mb});
            rows.push(json!({
                "program": p.name, "what": p.what, "ops": ops, "command": cmd,
                "now": j(&now_run), "before": before_run.as_ref().map(j),
            }));
        }
    }
    Ok(Some(json!({
        "timeout_seconds": timeout.as_secs_f64(),
        "before": before.map(|b| b.display().to_string()),
        "rows": rows,
    })))
}

/// The targets as a Markdown section.
pub(crate) fn markdown(s: &mut String, v: &Value) {
    let Some(rows) = v["rows"].as_array() else {
        return;
    };
    let _ = writeln!(s, "\n## Targets: application-sized programs\n");
    let _ = writeln!(
        s,
        "`unplug check` and `unplug syncs` under all five default models, each a child process \
         timed with its peak resident memory; killed after {:.0} s. The goal for each: under 1 s \
         and 500 MB (the 10,000-op program: `check` under 30 s and 2 GB).{}\n",
        v["timeout_seconds"].as_f64().unwrap_or(0.0),
        match v["before"].as_str() {
            Some(b) => format!(" *Before*: the same commands with `{b}`, in the same run."),
            None => String::new(),
        }
    );
    let cell = |r: &Value| -> String {
        if r.is_null() {
            return "-".into();
        }
        match r["exit"].as_i64() {
            None => format!("killed at {:.0} s", r["seconds"].as_f64().unwrap_or(0.0)),
            Some(code) => format!(
                "{:.2} s, {:.0} MB (exit {code})",
                r["seconds"].as_f64().unwrap_or(0.0),
                r["peak_mb"].as_f64().unwrap_or(0.0)
            ),
        }
    };
    let _ = writeln!(
        s,
        "| program | ops | command | before | now |\n|---|---|---|---|---|"
    );
    for r in rows {
        let _ = writeln!(
            s,
            "| {} | {} | `{}` | {} | {} |",
            r["program"].as_str().unwrap_or(""),
            r["ops"],
            r["command"].as_str().unwrap_or(""),
            cell(&r["before"]),
            cell(&r["now"])
        );
    }
    let _ = writeln!(s);
    for r in rows.iter().filter(|r| r["command"] == "check") {
        let _ = writeln!(
            s,
            "- `{}`: {}.",
            r["program"].as_str().unwrap_or(""),
            r["what"].as_str().unwrap_or("")
        );
    }
}
