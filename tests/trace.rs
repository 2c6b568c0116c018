//! `unplug trace` on real applications: each runs under the tracer in a fresh directory, and the
//! program written, replayed by `unplug replay` in another fresh directory, must leave exactly the
//! application's final tree (names, kinds, sizes, bytes, hard links, symlink targets). Then
//! `unplug check` and `unplug syncs` must run on the program under every default model.
//!
//! The applications come from Debian's packages (scripts/install-deps): sqlite3, git,
//! redis-server, python3-plyvel, python3-lmdb, rocksdb-tools.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

fn unplug() -> Command {
    Command::new(env!("CARGO_BIN_EXE_unplug"))
}

/// A fresh directory under the target directory, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let p = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("trace-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(p.join("root")).expect("scratch");
        std::fs::create_dir_all(p.join("replay")).expect("scratch");
        Scratch(p)
    }
    fn root(&self) -> PathBuf {
        self.0.join("root")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What a tree holds, by path: kind and content (a file's bytes, a symlink's target), and for
/// files with several names, the first path of the inode.
fn tree(root: &Path) -> BTreeMap<String, String> {
    fn walk(
        dir: &Path,
        rel: &str,
        out: &mut BTreeMap<String, String>,
        inodes: &mut BTreeMap<u64, String>,
    ) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .expect("read_dir")
            .map(|e| e.expect("entry"))
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = e.file_name().to_string_lossy().into_owned();
            let path = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            let meta = std::fs::symlink_metadata(e.path()).expect("stat");
            if meta.is_dir() {
                out.insert(path.clone(), "dir".into());
                walk(&e.path(), &path, out, inodes);
            } else if meta.file_type().is_symlink() {
                out.insert(
                    path,
                    format!(
                        "symlink {}",
                        std::fs::read_link(e.path()).expect("readlink").display()
                    ),
                );
            } else {
                let bytes = std::fs::read(e.path()).expect("read");
                let link = if meta.nlink() > 1 {
                    inodes
                        .entry(meta.ino())
                        .or_insert_with(|| path.clone())
                        .clone()
                } else {
                    path.clone()
                };
                let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
                    (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
                });
                out.insert(
                    path,
                    format!("file {} bytes {hash:016x} inode-of {link}", bytes.len()),
                );
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, "", &mut out, &mut BTreeMap::new());
    out
}

/// Traces `cmd` (run in the scratch directory, the root is `root/`), replays the program into a
/// fresh directory, and compares the trees; then checks and syncs the program. Returns the
/// trace's JSON summary.
fn trace_and_replay(name: &str, cmd: &[&str]) -> serde_json::Value {
    let s = Scratch::new(name);
    let prog = s.0.join("prog.up");
    let out = unplug()
        .current_dir(&s.0)
        .args(["trace", "--json", "--root", "root", "--out"])
        .arg(&prog)
        .arg("--")
        .args(cmd)
        .output()
        .expect("unplug trace runs");
    assert!(
        out.status.success(),
        "{name}: trace failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON summary");
    assert_eq!(
        summary["exit_status"], 0,
        "{name}: the command failed under the tracer: {summary}"
    );
    let out = unplug()
        .args(["replay"])
        .arg(&prog)
        .arg("--dir")
        .arg(s.0.join("replay"))
        .output()
        .expect("unplug replay runs");
    let text = std::fs::read_to_string(&prog).unwrap_or_default();
    assert!(
        out.status.success(),
        "{name}: replay failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        text
    );
    let (real, replayed) = (tree(&s.root()), tree(&s.0.join("replay")));
    assert_eq!(
        real, replayed,
        "{name}: the replay differs from the application's tree\n{text}"
    );
    for cmd in ["check", "syncs"] {
        let out = unplug().arg(cmd).arg(&prog).output().expect("unplug runs");
        let code = out.status.code().expect("exit code");
        assert!(
            code == 0 || code == 1 || code == 3,
            "{name}: {cmd} exit {code}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    summary
}

fn syncs(v: &serde_json::Value) -> u64 {
    v["syncs"].as_u64().expect("syncs")
}

#[test]
fn cp_then_mv() {
    let v = trace_and_replay("cpmv", &["sh", "-c", "echo x > root/src && cp root/src root/tmp && mv root/tmp root/dst && ln root/dst root/hard && ln -s dst root/soft"]);
    assert!(v["ops"].as_u64().expect("ops") >= 6, "{v}");
}

/// The classic atomic save, traced: with properties added, `unplug syncs` names each fsync by
/// its call site (frames outside the C library) and finds the file's fsync needed for "old or new" on ext4.
#[test]
fn python_atomic_write() {
    let script = "import os\n\
        def save(path, data):\n    tmp = path + '.tmp'\n    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)\n    os.write(fd, data)\n    os.fsync(fd)\n    os.close(fd)\n    os.replace(tmp, path)\n    d = os.open(os.path.dirname(path), os.O_RDONLY)\n    os.fsync(d)\n    os.close(d)\n\
        save('root/doc', b'new content ' * 1000)\n";
    let s = Scratch::new("pysave-syncs");
    std::fs::write(s.root().join("doc"), b"old").expect("old doc");
    let prog = s.0.join("save.up");
    let out = unplug()
        .current_dir(&s.0)
        .args(["trace", "--root", "root", "--out"])
        .arg(&prog)
        .args(["--", "/usr/bin/python3", "-c", script])
        .output()
        .expect("unplug trace runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&prog).expect("program");
    // The data names of the old and the new content: the setup's write and the op's pwrite.
    let name_in = |prefix: &str| {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| {
                l.split_whitespace()
                    .nth(if prefix == "write" { 3 } else { 4 })
            })
            .unwrap_or_else(|| panic!("no {prefix} line:\n{text}"))
            .to_string()
    };
    let (old, new) = (name_in("write"), name_in("pwrite"));
    let last = text.lines().filter(|l| l.contains("# at ")).count();
    let props = format!("property old_or_new: always (doc == {old} or doc == {new})\nproperty durable: after {last}: doc == {new}\n");
    std::fs::write(&prog, format!("{text}{props}")).expect("properties");
    let out = unplug()
        .args(["syncs", "--json"])
        .arg(&prog)
        .output()
        .expect("syncs runs");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let ext4 = v["models"]
        .as_array()
        .expect("models")
        .iter()
        .find(|m| m["model"] == "ext4")
        .expect("ext4");
    let first = &ext4["syncs"][0];
    assert_eq!(first["call"], "fsync h2", "{first}");
    // Debian's python3 is a stripped executable: its frames are `python3.11+0xOFF` (a Python
    // built with symbols names them, e.g. `os_fsync+0x63 (libpython3.11.so.1.0)`).
    assert!(
        first["site"].as_str().expect("a site").contains("python3"),
        "{first}"
    );
    assert_eq!(first["verdicts"]["old_or_new"], "needed", "{first}");
    // The tree replays as the application left it.
    let v = trace_and_replay(
        "pysave",
        &[
            "/usr/bin/python3",
            "-c",
            &script.replace(
                "save('root/doc'",
                "open('root/doc', 'wb').write(b'old')\nsave('root/doc'",
            ),
        ],
    );
    assert_eq!(syncs(&v), 2, "{v}");
}

#[test]
fn sqlite_rollback_journal() {
    let v = trace_and_replay("sqlite", &["sqlite3", "root/t.db", "create table t(x); insert into t values(1); begin; insert into t values(2); insert into t values(3); commit;"]);
    assert!(syncs(&v) > 0, "{v}");
}

#[test]
fn sqlite_wal() {
    let v = trace_and_replay("sqlite-wal", &["sqlite3", "root/w.db", "pragma journal_mode=wal; create table t(x); insert into t values(1); insert into t values(2);"]);
    assert!(syncs(&v) > 0, "{v}");
}

#[test]
fn git_init_add_commit() {
    let v = trace_and_replay("git", &["sh", "-c", "cd root && git init -q . && echo hi > f && mkdir d && echo there > d/g && git add f d && git -c user.name=u -c user.email=u@example.com commit -qm first"]);
    assert!(v["ops"].as_u64().expect("ops") > 50, "{v}");
}

#[test]
fn leveldb_puts_then_close() {
    let v = trace_and_replay("leveldb", &["/usr/bin/python3", "-c", "import plyvel\ndb = plyvel.DB('root/db', create_if_missing=True)\nfor i in range(100):\n    db.put(b'k%d' % i, b'v' * 100, sync=(i % 10 == 0))\ndb.close()\n"]);
    assert!(syncs(&v) > 0, "{v}");
}

#[test]
fn lmdb_commit() {
    let v = trace_and_replay("lmdb", &["/usr/bin/python3", "-c", "import lmdb\ne = lmdb.open('root/db')\nfor i in range(3):\n    with e.begin(write=True) as t:\n        t.put(b'k%d' % i, b'v' * 100)\ne.close()\n"]);
    assert!(syncs(&v) > 0, "{v}");
}

#[test]
fn rocksdb_ldb_put() {
    let v = trace_and_replay(
        "rocksdb",
        &[
            "ldb",
            "--db=root/db",
            "--create_if_missing",
            "put",
            "k",
            "v",
        ],
    );
    assert!(v["ops"].as_u64().expect("ops") > 10, "{v}");
}

#[test]
fn redis_save_and_appendonly() {
    let sock = format!("/tmp/unplug-trace-redis-{}.sock", std::process::id());
    let script = format!(
        "redis-server --port 0 --unixsocket {sock} --dir root --appendonly yes --appendfsync always --save '' --daemonize no & \
         for i in $(seq 50); do redis-cli -s {sock} ping >/dev/null 2>&1 && break; sleep 0.1; done; \
         redis-cli -s {sock} set k v >/dev/null && redis-cli -s {sock} save >/dev/null && redis-cli -s {sock} shutdown nosave >/dev/null; wait"
    );
    let v = trace_and_replay("redis", &["sh", "-c", &script]);
    let _ = std::fs::remove_file(&sock);
    assert!(syncs(&v) > 0, "{v}");
}

/// The seed routine in Rust (std::fs and memmap2): a temporary file sized with set_len, mapped,
/// filled through the mapping, flushed (msync), fsynced, renamed over the real name, and the
/// directory fsynced. Run by [`rust_std_fs_and_memmap2`] under the tracer: this test binary
/// re-executes itself with `--ignored --exact helper_seed_routine`.
#[test]
#[ignore = "run under the tracer by rust_std_fs_and_memmap2"]
fn helper_seed_routine() {
    let Ok(dir) = std::env::var("UNPLUG_SEED_DIR") else {
        return;
    };
    let dir = PathBuf::from(dir);
    let tmp = dir.join("final.tmp");
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .expect("create");
    f.set_len(64 << 10).expect("ftruncate");
    // SAFETY: the file is ours, open, and nothing else maps or truncates it meanwhile.
    #[allow(
        unsafe_code,
        reason = "memmap2's map_mut is unsafe: the mapping must not be truncated under it"
    )]
    let mut map = unsafe { memmap2::MmapMut::map_mut(&f) }.expect("mmap");
    for (i, b) in map.iter_mut().enumerate() {
        *b = (i % 251) as u8 + 1;
    }
    map.flush().expect("msync");
    drop(map);
    f.sync_all().expect("fsync");
    drop(f);
    std::fs::rename(&tmp, dir.join("final")).expect("rename");
    std::fs::File::open(&dir)
        .expect("open dir")
        .sync_all()
        .expect("fsync dir");
    std::fs::write(dir.join("log"), b"saved\n").expect("std::fs::write");
}

/// Traces this test binary running the ignored test `helper` (with the scratch root in
/// UNPLUG_SEED_DIR, its standard output not captured) into `prog`; returns the trace's output
/// (a JSON summary).
fn trace_helper(s: &Scratch, prog: &Path, helper: &str) -> std::process::Output {
    let me = std::env::current_exe().expect("test binary");
    let out = unplug()
        .current_dir(&s.0)
        .env("UNPLUG_SEED_DIR", s.root())
        .args(["trace", "--json", "--root", "root", "--out"])
        .arg(prog)
        .arg("--")
        .arg(&me)
        .args([
            "--ignored",
            "--exact",
            helper,
            "--test-threads=1",
            "--nocapture",
        ])
        .output()
        .expect("unplug trace runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A Rust program using std::fs and memmap2 + msync (the seed routine): its stores through the
/// mapping are recorded, and the replay leaves its tree byte for byte.
#[test]
fn rust_std_fs_and_memmap2() {
    let s = Scratch::new("rust-seed");
    let prog = s.0.join("seed.up");
    let out = trace_helper(&s, &prog, "helper_seed_routine");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["exit_status"], 0, "{v}");
    let text = std::fs::read_to_string(&prog).expect("program");
    for op in [
        "ftruncate",
        "mmap",
        "store",
        "msync",
        "fsync",
        "rename",
        "munmap",
    ] {
        assert!(
            text.lines()
                .any(|l| l.starts_with(op) || l.contains(&format!("= {op} "))),
            "no {op}:\n{text}"
        );
    }
    let out = unplug()
        .arg("replay")
        .arg(&prog)
        .arg("--dir")
        .arg(s.0.join("replay"))
        .output()
        .expect("replay runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(tree(&s.root()), tree(&s.0.join("replay")), "{text}");
}

/// The seed routine exactly as examples/mmap-rename.up writes it (open, ftruncate 8 MiB, mmap,
/// stores, msync, fsync, rename, fsync), then "saved" on standard output: run under the tracer
/// by [`checker_answers_the_seed_question`].
#[test]
#[ignore = "run under the tracer by checker_answers_the_seed_question"]
fn helper_bligh_routine() {
    use std::io::Write;
    let Ok(dir) = std::env::var("UNPLUG_SEED_DIR") else {
        return;
    };
    let dir = PathBuf::from(dir);
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(dir.join("tmp"))
        .expect("open tmp create rdwr");
    f.set_len(8 << 20).expect("ftruncate");
    // SAFETY: the file is ours, open, and nothing else maps or truncates it meanwhile.
    #[allow(
        unsafe_code,
        reason = "memmap2's map_mut is unsafe: the mapping must not be truncated under it"
    )]
    let mut map = unsafe { memmap2::MmapMut::map_mut(&f) }.expect("mmap");
    map.copy_from_slice(&seed_bytes());
    map.flush().expect("msync");
    f.sync_all().expect("fsync");
    std::fs::rename(dir.join("tmp"), dir.join("final")).expect("rename");
    f.sync_all().expect("fsync again");
    let mut out = std::io::stdout().lock();
    out.write_all(b"saved\n").expect("stdout");
    out.flush().expect("stdout");
}

/// The 8 MiB the seed routine writes.
fn seed_bytes() -> Vec<u8> {
    (0..8usize << 20).map(|i| (i % 251) as u8 + 1).collect()
}

/// Per model, what `unplug syncs --json` says of property `prop`: its verdict as written, each
/// sync's verdict in order, and the minimal sets of syncs (as sync ordinals, so that programs
/// with other ops between the syncs compare).
fn sync_verdicts(v: &serde_json::Value, prop: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for m in v["models"].as_array().expect("models") {
        let syncs = m["syncs"].as_array().expect("syncs");
        let ordinal = |op: &serde_json::Value| {
            syncs
                .iter()
                .position(|s| s["op"] == *op)
                .map_or("?".to_string(), |i| i.to_string())
        };
        let holds = m["results"]
            .as_array()
            .expect("results")
            .iter()
            .find(|r| r["property"] == prop)
            .map(|r| r["verdict"].to_string());
        let verdicts: Vec<String> = syncs
            .iter()
            .map(|s| s["verdicts"][prop].to_string())
            .collect();
        let sets: Vec<String> = m["minimal_sets"][prop]
            .as_array()
            .map(|sets| {
                sets.iter()
                    .map(|set| {
                        let ops: Vec<String> =
                            set.as_array().expect("a set").iter().map(ordinal).collect();
                        format!("{{{}}}", ops.join(","))
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.push((
            m["model"].as_str().expect("model").to_string(),
            format!("{holds:?} {verdicts:?} {sets:?}"),
        ));
    }
    out
}

/// The seed question for a real program: the routine of examples/mmap-rename.up compiled (Rust,
/// memmap2) and traced, then judged by checkers that say what the example's properties say. A:
/// a file under the final name holds all the data (`--checker` alone, a property added). B:
/// once the routine returned, the final name holds the data (a property `after N: checker
/// {final}` added to the traced program, N its last fsync). `unplug syncs` must give each sync
/// the verdicts the example's properties get, per model.
#[test]
fn checker_answers_the_seed_question() {
    let s = Scratch::new("bligh");
    let prog = s.0.join("seed.up");
    trace_helper(&s, &prog, "helper_bligh_routine");
    let text = std::fs::read_to_string(&prog).expect("program");
    // What the routine printed is in the program, after the op it followed.
    assert!(text.contains("stdout hex 73617665640a"), "{text}");
    let expected = s.0.join("expected");
    std::fs::write(&expected, seed_bytes()).expect("expected bytes");
    let e = expected.display();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/mmap-rename.up");
    let out = unplug()
        .args(["syncs", "--json"])
        .arg(&example)
        .output()
        .expect("syncs runs");
    let want: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");

    // A: the checker alone (the CLI adds `property checker: always checker {final}`).
    let a = format!("test ! -e {{dir}}/final || cmp -s {{dir}}/final {e}");
    let out = unplug()
        .args([
            "syncs",
            "--json",
            "--checker-reads",
            "final",
            "--checker",
            &a,
        ])
        .arg(&prog)
        .output()
        .expect("syncs runs");
    let got: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
    assert!(got["checker"]["runs"].as_u64().expect("runs") > 0, "{got}");
    assert_eq!(
        sync_verdicts(&got, "checker"),
        sync_verdicts(&want, "A"),
        "checker for A on\n{text}"
    );

    // B: from the last fsync on (the op before the "saved" line).
    let ops: Vec<&str> = text
        .lines()
        .filter(|l| {
            !l.is_empty()
                && !l.starts_with(['#', ' '])
                && !l.starts_with("data ")
                && !l.starts_with("stdout ")
        })
        .collect();
    let last_fsync = ops
        .iter()
        .rposition(|l| l.starts_with("fsync "))
        .expect("an fsync")
        + 1;
    std::fs::write(
        &prog,
        format!("{text}property B: after {last_fsync}: checker {{final}}\n"),
    )
    .expect("property B");
    let b = format!("cmp -s {{dir}}/final {e}");
    let out = unplug()
        .args(["syncs", "--json", "--checker", &b])
        .arg(&prog)
        .output()
        .expect("syncs runs");
    let got: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(
        sync_verdicts(&got, "B"),
        sync_verdicts(&want, "B"),
        "checker for B on\n{text}"
    );
}

/// The application study (scripts/applications) end to end on SQLite's rollback journal and
/// on `OTHER_APP`: each traced, then judged by its own checker (apps/*/checker) under posix,
/// ext4 and seq. The checker accepts the application's own states (no "other"); `seq` (ops in
/// order, a prefix persisted) shows only durability; SQLite loses an acknowledged commit on
/// every model, because the unlink of its journal is not durable when sqlite3 returns (ALICE's
/// SQLite-Roll vulnerability).
#[test]
fn application_study_sqlite_and_other() {
    let out = std::env::temp_dir().join(format!("unplug-apps-{}", std::process::id()));
    std::fs::create_dir_all(&out).expect("out dir");
    let md = out.join("applications.md");
    let js = out.join("applications.json");
    let run = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/applications"))
        .args([
            "--apps",
            &format!("sqlite-rollback,{OTHER_APP}"),
            "--models",
            "posix,ext4,seq",
        ])
        .arg("--unplug")
        .arg(env!("CARGO_BIN_EXE_unplug"))
        .arg("--out")
        .arg(&md)
        .arg("--json")
        .arg(&js)
        .output()
        .expect("scripts/applications runs");
    let text = std::fs::read_to_string(&md).unwrap_or_default();
    assert!(
        run.status.success(),
        "{}\n{text}",
        String::from_utf8_lossy(&run.stderr)
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&js).expect("JSON")).expect("JSON");
    let _ = std::fs::remove_dir_all(&out);
    let apps = v.as_array().expect("apps");
    assert_eq!(apps.len(), 2, "{v}");
    for app in apps {
        let name = app["app"].as_str().expect("name");
        assert!(app["checker"]["runs"].as_u64().expect("runs") > 0, "{name}");
        let vs = app["vulnerabilities"].as_array().expect("vulnerabilities");
        assert!(
            vs.iter().all(|x| x["kind"] != "other"),
            "{name}: the checker rejects the application's own state: {vs:?}"
        );
        assert!(
            vs.iter()
                .filter(|x| x["model"] == "seq")
                .all(|x| x["kind"] == "durability"),
            "{name}: seq shows only lost tails: {vs:?}"
        );
    }
    let sqlite = &apps[0];
    for model in ["posix", "ext4", "seq"] {
        let lost: Vec<&serde_json::Value> = sqlite["vulnerabilities"]
            .as_array()
            .expect("vulnerabilities")
            .iter()
            .filter(|x| x["model"] == model && x["kind"] == "durability")
            .collect();
        assert!(
            lost.iter().any(|x| x["what"]
                .as_str()
                .is_some_and(|w| w.contains("unlink t.db-journal"))),
            "{model}: {lost:?}\n{text}"
        );
    }
}

/// The second application of [`application_study_sqlite_and_other`].
const OTHER_APP: &str = "lmdb";
