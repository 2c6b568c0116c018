//! `unplug real` end to end: the JSON contract, the vm backend, and that an interrupted run
//! leaves nothing behind. Needs root, loop devices and what scripts/install-deps installs.

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn unplug() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_unplug"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

fn run_json(args: &[&str]) -> (i32, Value) {
    let out = unplug().args(args).arg("--json").output().expect("runs");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), v)
}

#[test]
fn the_json_report_has_the_contract_fields() {
    let (code, v) = run_json(&[
        "real",
        "litmus/fsync-rename.up",
        "--fs",
        "ext4",
        "--mount-opts",
        "data=journal",
        "--fs",
        "xfs",
    ]);
    assert_eq!(code, 0, "{v:#}");
    let runs = v["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 2);
    for r in runs {
        for k in [
            "fs",
            "mount_opts",
            "kernel",
            "backend",
            "images_checked",
            "observed_states",
            "unsound",
            "predicted_observed_fraction",
        ] {
            assert!(!r[k].is_null(), "{k} missing in {r:#}");
        }
        assert_eq!(r["backend"], "host");
        assert_eq!(r["unsound"], 0);
        assert!(r["images_checked"].as_u64().unwrap() > 10, "{r:#}");
        let f = r["predicted_observed_fraction"].as_f64().unwrap();
        assert!(f > 0.0 && f <= 1.0, "{f}");
    }
    assert_eq!(runs[0]["fs"], "ext4");
    assert_eq!(runs[0]["mount_opts"], "data=journal");
    assert_eq!(runs[0]["model"], "ext4:data=journal");
    assert_eq!(runs[1]["fs"], "xfs");
}

#[test]
fn bad_options_are_usage_errors_reported_together() {
    let out = unplug()
        .args([
            "real",
            "litmus/fsync-rename.up",
            "--fs",
            "zfs",
            "--fs",
            "ext4",
            "--mount-opts",
            "data=bogus",
        ])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--fs zfs: unknown file system"), "{err}");
    assert!(err.contains("unknown ext4 option `data=bogus`"), "{err}");
}

/// Whatever a run of pid `pid` could have left: its scratch directory, mounts under it, loop
/// devices on files in it, qemu-storage-daemon processes serving it.
fn leftovers(pid: u32) -> Vec<String> {
    let scratch = format!("/dev/shm/unplug-real-{pid}");
    let mut out = Vec::new();
    if Path::new(&scratch).exists() {
        out.push(format!("{scratch} exists"));
    }
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    out.extend(
        mounts
            .lines()
            .filter(|l| l.contains(&scratch))
            .map(|l| format!("mounted: {l}")),
    );
    let loops = Command::new("losetup")
        .arg("-l")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    out.extend(
        loops
            .lines()
            .filter(|l| l.contains(&scratch))
            .map(|l| format!("loop device: {l}")),
    );
    let ps = Command::new("pgrep")
        .args(["-a", "-f", &scratch])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    out.extend(
        ps.lines()
            .filter(|l| !l.contains("pgrep"))
            .map(|l| format!("process: {l}")),
    );
    out
}

/// Ctrl-C (SIGINT to the whole process group, as a terminal sends it) while recording and while
/// checking: exit 130, and nothing left behind.
#[test]
fn an_interrupted_run_leaves_nothing_behind() {
    for wait_ms in [300, 2500] {
        let mut child =
            spawn_in_own_group(&["real", "litmus", "--fs", "btrfs", "--max-images", "0"]);
        let pid = child.id();
        std::thread::sleep(Duration::from_millis(wait_ms));
        let (status, err) = interrupt(&mut child, 60);
        assert_eq!(status.code(), Some(130), "after {wait_ms} ms: {err}");
        let left = leftovers(pid);
        assert!(left.is_empty(), "after {wait_ms} ms: {left:#?}");
    }
}

use std::os::unix::process::CommandExt;

/// `unplug ARGS` in a process group of its own (as a terminal runs a command), its standard
/// error piped for [`interrupt`].
fn spawn_in_own_group(args: &[&str]) -> std::process::Child {
    unplug()
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("spawns")
}

/// Sends SIGINT to the process group of `child` (as a terminal's Ctrl-C does) and waits for it
/// to exit, at most `limit_s` seconds: its status and standard error.
fn interrupt(child: &mut std::process::Child, limit_s: u64) -> (std::process::ExitStatus, String) {
    // SAFETY: kill(2) on the child's own process group; no memory is involved.
    #[allow(unsafe_code)]
    unsafe {
        libc::kill(-(child.id() as i32), libc::SIGINT)
    };
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("waits") {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(limit_s),
            "no exit {limit_s} s after Ctrl-C"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    use std::io::Read;
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (status, err)
}

/// The vm backend: a Debian kernel in qemu runs the program; the report names that kernel.
/// Needs scripts/guest-kernel and a static unplug (UNPLUG_STATIC_BIN, or it is built).
#[test]
fn the_vm_backend_runs_programs_in_a_guest() {
    let (code, v) = run_json(&[
        "real",
        "litmus/fsync-rename.up",
        "litmus/append-rename.up",
        "--backend",
        "vm",
        "--fs",
        "ext4",
    ]);
    assert_eq!(code, 0, "{v:#}");
    let r = &v["runs"][0];
    assert_eq!(r["backend"], "vm");
    let host = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    let kernel = r["kernel"].as_str().unwrap();
    assert_ne!(kernel, host.trim(), "the guest's kernel, not the host's");
    assert!(kernel.ends_with("-amd64"), "{kernel}");
    assert_eq!(r["unsound"], 0, "{r:#}");
    assert!(r["images_checked"].as_u64().unwrap() > 20, "{r:#}");
}

/// The realfs suite: the whole litmus corpus, every schedule, on ext4, xfs and btrfs (at most 8
/// crash images per run, to bound CI time): no observed state may be one the model does not
/// predict. Prints the figures the closing notes quote.
#[test]
fn the_litmus_corpus_is_sound_on_real_file_systems() {
    let (code, v) = run_json(&["real", "litmus", "--max-images", "8"]);
    for r in v["runs"].as_array().expect("runs") {
        eprintln!(
            "realfs suite: {} on {}: {} programs, {} runs, {} images ({:.0}/s), {} states, {} unsound, {:.1}% of predicted states observed",
            r["fs"],
            r["kernel"],
            r["programs"].as_array().map_or(0, Vec::len),
            r["jobs"],
            r["images_checked"],
            r["images_per_second"].as_f64().unwrap_or(0.0),
            r["observed_states"],
            r["unsound"],
            100.0 * r["predicted_observed_fraction"].as_f64().unwrap_or(0.0)
        );
        for u in r["unsound_states"].as_array().into_iter().flatten() {
            eprintln!("UNSOUND {u:#}");
        }
        assert_eq!(r["unsound"], 0, "{}", r["fs"]);
    }
    assert_eq!(code, 0);
}

/// `unplug real --exec`: SQLite (rollback journal) traced and run on each file system (and on
/// ext4 in a guest with Debian's kernel), its crash images judged by its checker. Every
/// recovered tree must be one the model predicts for the traced program, and every tree the
/// checker rejects must be found by the model's own `--checker` analysis. The rollback
/// journal's deletion is not made durable (no fsync of the directory), so a crash can bring back
/// the journal of a committed transaction and roll it back: every run shows an acknowledged
/// transaction lost.
fn sqlite_rollback_runs(extra: &[&str], configs: usize) -> Value {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = Path::new(env!("CARGO_MANIFEST_DIR")).join("apps/sqlite-rollback");
    let keep = dir.path().join("kept");
    let prog = dir.path().join("app.up");
    let mut args = vec![
        "real".to_string(),
        "--schedules".into(),
        "plain".into(),
        "--setup".into(),
        format!("{}/setup .", app.display()),
        "--exec".into(),
        format!("{}/workload .", app.display()),
        "--checker".into(),
        format!("{}/checker {{dir}}", app.display()),
        "--keep".into(),
        keep.display().to_string(),
        "--trace-out".into(),
        prog.display().to_string(),
    ];
    args.extend(extra.iter().map(|a| a.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, v) = run_json(&args);
    let runs = v["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), configs, "{v:#}");
    for r in runs {
        let rep = &r["report"];
        let fs = rep["fs"].as_str().unwrap();
        assert_eq!(r["exit_status"], 0, "{fs}: the workload failed: {r:#}");
        let ops = r["ops"].as_u64().unwrap();
        assert!(
            ops >= 60 && r["calls"].as_u64().unwrap() >= ops,
            "{fs}: {r:#}"
        );
        assert!(rep["images_checked"].as_u64().unwrap() > 0, "{fs}");
        assert!(rep["predicted_observed"].as_u64().unwrap() > 0, "{fs}");
        assert_eq!(rep["unsound"], serde_json::json!([]), "{fs}: {rep:#}");
        let failures = rep["failures"].as_array().unwrap();
        assert!(!failures.is_empty(), "{fs}: no rejected tree: {rep:#}");
        for (f, found) in failures.iter().zip(r["model_finds"].as_array().unwrap()) {
            assert!(
                f["reason"]
                    .as_str()
                    .unwrap()
                    .contains("acknowledged but is lost"),
                "{fs}: {f:#}"
            );
            assert!(Path::new(f["image"].as_str().unwrap()).exists(), "{fs}");
            assert!(found.as_str().unwrap().starts_with("yes"), "{fs}: {found}");
        }
        let kept = r["program"].as_str().expect("the traced program is kept");
        assert!(Path::new(kept).exists(), "{kept}");
    }
    assert_eq!(code, 1);
    v
}

#[test]
fn an_application_runs_end_to_end_on_each_file_system() {
    let v = sqlite_rollback_runs(&["--fs", "ext4", "--fs", "xfs", "--fs", "btrfs"], 3);
    assert_eq!(v["runs"][0]["report"]["backend"], "host");
}

/// The same in a guest (`--backend vm`): the application, its scripts and its libraries are
/// copied in (`--vm-file`), and the report names the guest's kernel.
#[test]
fn an_application_runs_in_a_guest() {
    let app = Path::new(env!("CARGO_MANIFEST_DIR")).join("apps/sqlite-rollback");
    let app = app.display().to_string();
    let v = sqlite_rollback_runs(
        &[
            "--backend",
            "vm",
            "--fs",
            "ext4",
            "--vm-file",
            &app,
            "--vm-file",
            "/usr/bin/sqlite3",
        ],
        1,
    );
    let rep = &v["runs"][0]["report"];
    assert_eq!(rep["backend"], "vm");
    let host = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    let kernel = rep["kernel"].as_str().unwrap();
    assert_ne!(kernel, host.trim(), "the guest's kernel, not the host's");
    assert!(kernel.ends_with("-amd64"), "{kernel}");
}

/// Ctrl-C while an application runs under `--exec`, blocked in a call the tracer does not stop
/// at (`sleep`): the application is killed at once, exit 130, nothing left behind.
#[test]
fn an_interrupted_application_run_leaves_nothing_behind() {
    let mut child = spawn_in_own_group(&[
        "real",
        "--fs",
        "ext4",
        "--schedules",
        "plain",
        "--exec",
        "echo a > a; sleep 60; echo b > b",
    ]);
    let pid = child.id();
    // Until the application runs (its shell, in the run's scratch directory), and a little
    // more for its `sleep` to start.
    let start = Instant::now();
    let shell = format!("unplug-real-{pid}/mnt/job0/root && echo a");
    while !Command::new("pgrep")
        .args(["-f", &shell])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
    {
        assert!(start.elapsed() < Duration::from_secs(60), "never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    // Within 30 s: the application's sleep (60 s) must be killed, not waited for.
    let (status, err) = interrupt(&mut child, 30);
    assert_eq!(status.code(), Some(130), "{err}");
    let left = leftovers(pid);
    assert!(left.is_empty(), "{left:#?}");
}

/// ext4 data=journal: a write of several pages takes a handle per page, each journaling the
/// page's data with the size up to it (ext4.data-journal with ext4.page-handles), so the model
/// predicts only prefixes of pages, and a rename after the write commits after all of them. The
/// real kernel must show nothing else: no image of these programs is unsound, and their
/// properties (a prefix of the data; the renamed file whole) hold on every image.
#[test]
fn ext4_data_journal_long_writes_persist_page_by_page() {
    let (code, v) = run_json(&[
        "real",
        "litmus/alice-a6-multiblock-prefix.up",
        "litmus/journal-long-write-rename.up",
        "--fs",
        "ext4",
        "--mount-opts",
        "data=journal",
    ]);
    let r = &v["runs"][0];
    assert_eq!(r["mount_opts"], "data=journal", "{v:#}");
    assert_eq!(r["unsound"], 0, "{r:#}");
    assert!(r["images_checked"].as_u64().unwrap() > 100, "{r:#}");
    for p in r["programs"].as_array().unwrap() {
        for prop in p["properties"].as_array().unwrap() {
            assert!(prop["images"].as_u64().unwrap() > 0, "{prop:#}");
            assert_eq!(prop["violated"], 0, "{}: {prop:#}", p["program"]);
        }
    }
    assert_eq!(code, 0);
}

/// ext4 with delalloc: writeback moves the on-disk size after each extent it submits, so an
/// append of two pages can be cut at the page boundary inside it, ahead of its data
/// (ext4.writeback-page-sizes). The real kernel shows that state (the model without the rule
/// did not predict it: unsound); with the rule, nothing the disk shows is unsound.
#[test]
fn ext4_writeback_moves_the_size_page_by_page() {
    let (code, v) = run_json(&["real", "litmus/ext4-writeback-page-size.up", "--fs", "ext4"]);
    let r = &v["runs"][0];
    assert_eq!(r["unsound"], 0, "{r:#}");
    assert!(r["images_checked"].as_u64().unwrap() > 100, "{r:#}");
    let seen = &r["programs"][0]["properties"][0];
    eprintln!(
        "ext4-writeback-page-size: property S violated on {} of {} images",
        seen["violated"], seen["images"]
    );
    assert_eq!(code, 0);
}
