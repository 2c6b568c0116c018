//! Bounded runs: the memory budget (`--max-memory`) ends an exploration with its crash points
//! unproven instead of growing until the kernel kills it, and Ctrl-C ends `check` and `syncs`
//! with what was proven so far (exit 130).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

/// A program whose later crash points have millions of crash states: `writes` unsynced writes
/// to separate blocks (every subset of them can persist), and a property that reads the
/// file's content (`==`), so that its cone of influence holds all of them.
fn unsynced_writes(name: &str, writes: usize) -> PathBuf {
    let mut src = String::from("f = open a create\n");
    for i in 0..writes {
        src.push_str(&format!("pwrite f {} 4KiB D\n", i * 8192));
    }
    src.push_str("property P: always (exists a or not exists a or a == D)\n");
    let path = std::env::temp_dir().join(format!("unplug-bounds-{}-{name}.up", std::process::id()));
    std::fs::write(&path, src).expect("temporary program");
    path
}

fn unplug() -> Command {
    Command::new(env!("CARGO_BIN_EXE_unplug"))
}

/// Past the budget, the crash points not explored are reported as not proven, with the bound
/// named, and the command says the budget was reached.
#[test]
fn the_memory_budget_ends_an_exploration_with_unproven_points() {
    let prog = unsynced_writes("memory", 24);
    let out = unplug()
        .args(["check", "--model", "ext4", "--max-memory", "48MiB"])
        .arg(&prog)
        .output()
        .expect("unplug runs");
    let _ = std::fs::remove_file(&prog);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    // Not proven (a bound was hit, nothing fails): exit 3.
    assert_eq!(out.status.code(), Some(3), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(
            "ext4: P NOT PROVEN: bound exceeded (--max-memory): not proven for crash points"
        ),
        "{stdout}"
    );
    assert!(stderr.contains("the memory budget was reached"), "{stderr}");
    // A bad size is a usage error.
    let bad = unplug()
        .args(["states", "--max-memory", "lots", "x.up"])
        .output()
        .expect("unplug runs");
    assert_eq!(bad.status.code(), Some(2));
}

/// Runs `unplug ARGS PROGRAM`, sends SIGINT after a second, and returns (exit code, stdout,
/// stderr).
fn interrupted(args: &[&str], prog: &PathBuf) -> (Option<i32>, String, String) {
    let child = unplug()
        .args(args)
        .arg(prog)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("unplug runs");
    std::thread::sleep(Duration::from_secs(1));
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let out = child.wait_with_output().expect("unplug ends");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Ctrl-C during `check`: the properties are reported, the crash points not explored named as
/// not proven, and the exit status is 130.
#[test]
fn ctrl_c_ends_check_with_what_was_proven() {
    let prog = unsynced_writes("check", 24);
    let (code, stdout, stderr) =
        interrupted(&["check", "--model", "ext4", "--model", "xfs"], &prog);
    let _ = std::fs::remove_file(&prog);
    assert_eq!(code, Some(130), "{stdout}\n{stderr}");
    for m in ["ext4", "xfs"] {
        assert!(
            stdout.contains(&format!(
                "{m}: P NOT PROVEN: bound exceeded (interrupted): not proven for crash points"
            )),
            "{stdout}"
        );
    }
    assert!(stderr.contains("interrupted"), "{stderr}");
}

/// Ctrl-C during `syncs`: exit 130, and the models whose analysis was cut short are named.
#[test]
fn ctrl_c_ends_syncs() {
    let prog = unsynced_writes("syncs", 24);
    let (code, stdout, stderr) = interrupted(&["syncs", "--model", "ext4"], &prog);
    let _ = std::fs::remove_file(&prog);
    assert_eq!(code, Some(130), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("interrupted: no sync analysis under ext4 (not proven)"),
        "{stderr}"
    );
}
