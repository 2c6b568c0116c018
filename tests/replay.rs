//! `unplug replay`: a program with a `hex` data and a `file` data run for real into an empty
//! directory; the files it leaves hold exactly the bytes the program says.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A scratch directory removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("unplug-replay-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn unplug(args: &[&str], cwd: &Path) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_unplug"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("unplug runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// 3000 bytes that are not a pattern: every byte value, in an order no pattern has.
fn file_content() -> Vec<u8> {
    (0..3000u32).map(|i| (i * 7 + i / 256) as u8).collect()
}

const PROGRAM: &str = "\
# hex content inline, file content beside the program
data H 6 hex 00fF10aB7e80
data F 3000 file prog.data/3f2a9c
setup
mkdir d
f = open d/old create
write f 2 H at 4
close f
end
f = open a create
write f 6 H
pwrite f 6 3000 F at 0
close f
g = open d/b create
pwrite g 100 1000 F at 2000
write g 3 H at 1
fsync g
close g
rename d/old d/new
";

#[test]
fn replay_writes_the_real_bytes() {
    let s = Scratch::new("bytes");
    std::fs::create_dir(s.0.join("prog.data")).expect("mkdir");
    std::fs::write(s.0.join("prog.data/3f2a9c"), file_content()).expect("data file");
    std::fs::write(s.0.join("prog.up"), PROGRAM).expect("program");
    std::fs::create_dir(s.0.join("out")).expect("mkdir out");

    // From another directory: `file` sources are relative to the program's directory.
    let prog = s.0.join("prog.up");
    let out = s.0.join("out");
    let (code, stdout, stderr) = unplug(
        &[
            "replay",
            prog.to_str().expect("utf-8"),
            "--dir",
            out.to_str().expect("utf-8"),
            "--json",
        ],
        Path::new("/"),
    );
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(v["ops"], 10, "{v}");
    assert_eq!(v["dir"], out.to_str().expect("utf-8"), "{v}");

    let hex = [0x00u8, 0xff, 0x10, 0xab, 0x7e, 0x80];
    let f = file_content();
    let mut a = hex.to_vec();
    a.extend_from_slice(&f);
    assert_eq!(std::fs::read(out.join("a")).expect("a"), a);

    // `pwrite g 100 1000 F at 2000` then `write g 3 H at 1` at the handle's position (0).
    let mut b = vec![0u8; 1100];
    b[100..].copy_from_slice(&f[2000..3000]);
    b[..3].copy_from_slice(&hex[1..4]);
    assert_eq!(std::fs::read(out.join("d/b")).expect("d/b"), b);

    // Setup ran too: `write f 2 H at 4` at offset 0, renamed by op 10.
    assert_eq!(std::fs::read(out.join("d/new")).expect("d/new"), &hex[4..6]);
    assert!(!out.join("d/old").exists());
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .expect("out")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["a", "d"]);

    // The text summary, and the same directory again: not empty.
    let (code, stdout, stderr) = unplug(&["replay", "prog.up", "--dir", "out"], &s.0);
    assert_eq!(code, 2, "{stdout}");
    assert!(stderr.contains("--dir out: is not empty"), "{stderr}");
    std::fs::create_dir(s.0.join("out2")).expect("mkdir out2");
    let (code, stdout, stderr) = unplug(&["replay", "prog.up", "--dir", "out2"], &s.0);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, "replayed 10 ops after 4 setup ops in out2\n");
    assert_eq!(std::fs::read(s.0.join("out2/a")).expect("a"), a);
}

/// Every bad data file is reported at its line, and nothing runs.
#[test]
fn bad_data_files_are_all_reported() {
    let s = Scratch::new("bad");
    std::fs::create_dir(s.0.join("prog.data")).expect("mkdir");
    std::fs::write(s.0.join("prog.data/3f2a9c"), [1u8, 2, 3]).expect("data file");
    let program = PROGRAM.replace("data H 6", "data M 4 file prog.data/none\ndata H 6");
    std::fs::write(s.0.join("prog.up"), program).expect("program");
    std::fs::create_dir(s.0.join("out")).expect("mkdir out");
    let (code, stdout, stderr) = unplug(&["replay", "prog.up", "--dir", "out"], &s.0);
    assert_eq!(code, 2, "{stdout}");
    assert!(
        stderr.contains("prog.up:2:1: error: data `M`: file `prog.data/none` cannot be read"),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "prog.up:4:1: error: data `F`: file `prog.data/3f2a9c` has 3 bytes, but the data \
             is declared 3000 bytes"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("2 errors in prog.up"), "{stderr}");
    assert_eq!(std::fs::read_dir(s.0.join("out")).expect("out").count(), 0);
}
