//! Each test traces a real command in a fresh temporary directory (the root) and checks the
//! recorded events.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use unplug_trace::{record, Call, Event, Options, Recording};

/// Runs `argv` with the working directory `dir` (via `sh -c 'cd DIR && exec "$@"'`), root `dir`.
fn trace_in(dir: &Path, argv: &[&str]) -> Recording {
    let mut cmd: Vec<OsString> = vec![
        "sh".into(),
        "-c".into(),
        "cd \"$0\" && exec \"$@\"".into(),
        dir.into(),
    ];
    cmd.extend(argv.iter().map(OsString::from));
    let opts = Options {
        roots: vec![dir.to_path_buf()],
        stack_depth: 4,
        stdout_to_stderr: false,
        cancel: None,
    };
    let rec = record(&cmd, &opts).expect("record");
    for e in &rec.events {
        eprintln!("{}", short(e));
    }
    rec
}

/// An event on one line, long data cut.
fn short(e: &Event) -> String {
    let mut call = format!("{:?}", e.call);
    if call.len() > 300 {
        call.truncate(300);
        call.push_str("...");
    }
    format!("#{} pid {} tid {}: {call}", e.seq, e.pid, e.tid)
}

fn tmp() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = std::fs::canonicalize(dir.path()).expect("canonicalize");
    (dir, path)
}

fn sh(dir: &Path, script: &str) -> Recording {
    trace_in(dir, &["sh", "-c", script])
}

fn python(dir: &Path, script: &str) -> Recording {
    trace_in(dir, &["python3", "-c", script])
}

/// The index of the first event matching `f`, or a panic naming `what`.
fn find(rec: &Recording, what: &str, f: impl Fn(&Call) -> bool) -> usize {
    rec.events
        .iter()
        .position(|e| f(&e.call))
        .unwrap_or_else(|| panic!("no event: {what}"))
}

fn writes_to(rec: &Recording, path: &Path) -> Vec<(u64, Vec<u8>)> {
    rec.events
        .iter()
        .filter_map(|e| match &e.call {
            Call::Write {
                path: p,
                offset,
                data,
                ..
            } if p == path => Some((*offset, data.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn shell_redirect_then_mv() {
    let (_t, d) = tmp();
    let rec = sh(&d, "echo hi > f; mv f g");
    assert_eq!(rec.exit_status, 0);
    let f = d.join("f");
    let open = find(
        &rec,
        "open f created",
        |c| matches!(c, Call::Open { path, created: true, .. } if *path == f),
    );
    let write = find(
        &rec,
        "write hi",
        |c| matches!(c, Call::Write { path, offset: 0, data, .. } if *path == f && data == b"hi\n"),
    );
    let rename = find(
        &rec,
        "rename f g",
        |c| matches!(c, Call::Rename { from, to, .. } if *from == f && *to == d.join("g")),
    );
    assert!(open < write && write < rename);
    assert!(rec.events.iter().enumerate().all(|(i, e)| e.seq == i));
    assert!(rec.events.iter().all(|e| !e.site.is_empty()));
}

#[test]
fn python_atomic_write_fsyncs_the_directory() {
    let (_t, d) = tmp();
    let rec = python(
        &d,
        "import os\n\
         with open('tmp', 'wb') as f:\n    f.write(b'data'); f.flush(); os.fsync(f.fileno())\n\
         os.replace('tmp', 'final')\n\
         fd = os.open('.', os.O_RDONLY | os.O_DIRECTORY)\n\
         os.fsync(fd); os.close(fd)\n",
    );
    assert_eq!(rec.exit_status, 0);
    let tmp = d.join("tmp");
    assert_eq!(writes_to(&rec, &tmp), vec![(0, b"data".to_vec())]);
    let fsync_file = find(
        &rec,
        "fsync tmp",
        |c| matches!(c, Call::Fsync { path, data_only: false, .. } if *path == tmp),
    );
    let rename = find(
        &rec,
        "rename",
        |c| matches!(c, Call::Rename { from, to, .. } if *from == tmp && *to == d.join("final")),
    );
    let fsync_dir = find(
        &rec,
        "fsync dir",
        |c| matches!(c, Call::Fsync { path, .. } if *path == d),
    );
    assert!(fsync_file < rename && rename < fsync_dir);
}

#[test]
fn appends_land_at_the_end() {
    let (_t, d) = tmp();
    let rec = python(
        &d,
        "import os\n\
         fd = os.open('log', os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)\n\
         os.write(fd, b'first line\\n'); os.write(fd, b'second\\n')\n\
         os.pwrite(fd, b'!', 0)\n",
    );
    assert_eq!(rec.exit_status, 0);
    assert_eq!(
        writes_to(&rec, &d.join("log")),
        vec![
            (0, b"first line\n".to_vec()),
            (11, b"second\n".to_vec()),
            // Linux's pwrite on an O_APPEND descriptor appends.
            (18, b"!".to_vec()),
        ]
    );
    find(
        &rec,
        "close log",
        |c| matches!(c, Call::Close { path, .. } if *path == d.join("log")),
    );
}

#[test]
fn mmap_stores_come_before_msync() {
    let (_t, d) = tmp();
    let rec = python(
        &d,
        "import mmap, os\n\
         with open('m', 'wb') as f: f.write(bytes(8192))\n\
         f = open('m', 'r+b')\n\
         m = mmap.mmap(f.fileno(), 8192)\n\
         m[5000:5005] = b'hello'\n\
         m.flush()\n\
         m[10:12] = b'zz'\n\
         m.close()\n",
    );
    assert_eq!(rec.exit_status, 0);
    let path = d.join("m");
    let mmap = find(
        &rec,
        "mmap",
        |c| matches!(c, Call::Mmap { path: p, len: 8192, offset: 0, .. } if *p == path),
    );
    let store = find(
        &rec,
        "store hello",
        |c| matches!(c, Call::Store { path: p, file_offset: 5000, data, .. } if *p == path && data == b"hello"),
    );
    let msync = find(&rec, "msync", |c| matches!(c, Call::Msync { .. }));
    assert!(
        mmap < store && store + 1 == msync,
        "the store comes right before the msync"
    );
    let store2 = find(
        &rec,
        "store zz",
        |c| matches!(c, Call::Store { file_offset: 10, data, .. } if data == b"zz"),
    );
    let munmap = find(&rec, "munmap", |c| {
        matches!(c, Call::Munmap { len: 8192, .. })
    });
    // Seen at the process's next traced call after it (here Python's close of its duplicate
    // descriptor, before the munmap).
    assert!(msync < store2 && store2 < munmap);
    assert!(matches!(rec.events[store2 + 1].call, Call::Close { .. }));
}

#[test]
fn child_processes_are_followed() {
    let (_t, d) = tmp();
    let rec = sh(&d, "echo p > y; (echo a > x) & wait");
    assert_eq!(rec.exit_status, 0);
    let (x, y) = (d.join("x"), d.join("y"));
    assert_eq!(writes_to(&rec, &x), vec![(0, b"a\n".to_vec())]);
    let wx = find(
        &rec,
        "write x",
        |c| matches!(c, Call::Write { path, .. } if *path == x),
    );
    let wy = find(
        &rec,
        "write y",
        |c| matches!(c, Call::Write { path, .. } if *path == y),
    );
    // The subshell is a process of its own, and its exit closes x.
    let child = rec.events[wx].pid;
    assert_ne!(child, rec.events[wy].pid);
    assert!(rec.events[wx + 1..]
        .iter()
        .any(|e| e.pid == child && matches!(&e.call, Call::Close { path, .. } if *path == x)));
}

#[test]
fn writev_gathers_its_buffers() {
    let (_t, d) = tmp();
    let rec = python(
        &d,
        "import os\n\
         fd = os.open('v', os.O_WRONLY | os.O_CREAT, 0o644)\n\
         os.write(fd, b'0123')\n\
         os.writev(fd, [b'ab', b'', b'cde'])\n\
         os.pwritev(fd, [b'X', b'Y'], 1)\n",
    );
    assert_eq!(rec.exit_status, 0);
    assert_eq!(
        writes_to(&rec, &d.join("v")),
        vec![
            (0, b"0123".to_vec()),
            (4, b"abcde".to_vec()),
            (1, b"XY".to_vec())
        ]
    );
}

#[test]
fn writes_through_a_dup() {
    let (_t, d) = tmp();
    let rec = python(
        &d,
        "import os\n\
         fd = os.open('f', os.O_WRONLY | os.O_CREAT, 0o644)\n\
         os.dup2(fd, 10)\n\
         os.close(fd)\n\
         os.write(10, b'via dup')\n",
    );
    assert_eq!(rec.exit_status, 0);
    let f = d.join("f");
    find(
        &rec,
        "dup",
        |c| matches!(c, Call::Dup { new: 10, path, .. } if *path == f),
    );
    find(
        &rec,
        "write via 10",
        |c| matches!(c, Call::Write { fd: 10, path, offset: 0, data } if *path == f && data == b"via dup"),
    );
}

#[test]
fn calls_outside_the_root_are_not_recorded() {
    let (_t, d) = tmp();
    let (_o, outside) = tmp();
    let script = format!(
        "echo out > '{o}/a'; mv '{o}/a' '{o}/b'; rm '{o}/b'; echo in > inside",
        o = outside.display()
    );
    let rec = sh(&d, &script);
    assert_eq!(rec.exit_status, 0);
    for e in &rec.events {
        let text = format!("{:?}", e.call);
        assert!(!text.contains(outside.to_str().unwrap_or("?")), "{text}");
    }
    assert_eq!(
        writes_to(&rec, &d.join("inside")),
        vec![(0, b"in\n".to_vec())]
    );
    // A rename across the root's boundary is unsupported.
    let rec = sh(&d, &format!("mv inside '{}/moved'", outside.display()));
    assert_eq!(rec.unsupported.get("rename across root boundary"), Some(&1));
    assert!(rec.events.iter().any(|e| matches!(
        &e.call,
        Call::Unsupported { kind, path: Some(p) } if kind == "rename across root boundary" && *p == d.join("inside")
    )));
}

#[test]
fn sqlite_runs_under_the_tracer() {
    let (_t, d) = tmp();
    let rec = trace_in(
        &d,
        &[
            "sqlite3",
            "DB",
            "create table t(x); insert into t values(1);",
        ],
    );
    assert_eq!(rec.exit_status, 0);
    let db = d.join("DB");
    let journal = d.join("DB-journal");
    assert!(rec
        .events
        .iter()
        .any(|e| matches!(&e.call, Call::Fsync { .. })));
    assert!(!writes_to(&rec, &db).is_empty() || !writes_to(&rec, &journal).is_empty());
    // The database's file header.
    let header = writes_to(&rec, &db);
    assert!(header
        .iter()
        .any(|(o, data)| *o == 0 && data.starts_with(b"SQLite format 3\0")));
}

#[test]
fn exit_status_is_returned() {
    let (_t, d) = tmp();
    assert_eq!(sh(&d, "exit 7").exit_status, 7);
    assert_eq!(sh(&d, "kill -9 $$").exit_status, 128 + 9);
}

#[test]
fn directory_calls_and_links() {
    let (_t, d) = tmp();
    let rec = python(
        &d,
        "import os\n\
         os.mkdir('dir')\n\
         fd = os.open('dir/a', os.O_WRONLY | os.O_CREAT, 0o644)\n\
         os.ftruncate(fd, 100)\n\
         os.truncate('dir/a', 10)\n\
         os.link('dir/a', 'b')\n\
         os.symlink('dir/a', 's')\n\
         os.unlink('b')\n\
         os.rename('s', 'dir/s2')\n\
         os.unlink('dir/s2'); os.unlink('dir/a')\n\
         os.rmdir('dir')\n\
         t = os.open('.', os.O_TMPFILE | os.O_WRONLY, 0o600)\n\
         os.write(t, b'anon')\n\
         import ctypes\n\
         libc = ctypes.CDLL(None, use_errno=True)\n\
         libc.linkat(t, b'', -100, b'named', 0x1000)\n",
    );
    assert_eq!(rec.exit_status, 0);
    let (dir, a) = (d.join("dir"), d.join("dir/a"));
    let expected = [
        Call::Mkdir { path: dir.clone() },
        Call::Truncate {
            path: a.clone(),
            fd: Some(3),
            size: 100,
        },
        Call::Truncate {
            path: a.clone(),
            fd: None,
            size: 10,
        },
        Call::Link {
            from: a.clone(),
            to: d.join("b"),
        },
        Call::Symlink {
            target: "dir/a".into(),
            path: d.join("s"),
        },
        Call::Unlink { path: d.join("b") },
        Call::Rename {
            from: d.join("s"),
            to: d.join("dir/s2"),
            flags: 0,
        },
        Call::Unlink { path: a.clone() },
        Call::Rmdir { path: dir },
    ];
    let mut at = 0;
    for call in &expected {
        at += rec.events[at..]
            .iter()
            .position(|e| e.call == *call)
            .unwrap_or_else(|| panic!("missing, or out of order: {call:?}"));
    }
    find(
        &rec,
        "O_TMPFILE",
        |c| matches!(c, Call::OpenTmpfile { dir, .. } if *dir == d),
    );
    // linkat(AT_EMPTY_PATH) needs CAP_DAC_READ_SEARCH: it is recorded if it worked.
    let named = rec
        .events
        .iter()
        .any(|e| matches!(&e.call, Call::LinkFd { fd: 4, new } if *new == d.join("named")));
    assert_eq!(named, d.join("named").exists());
}

#[test]
fn copies_into_a_traced_file_are_writes() {
    let (_t, d) = tmp();
    let rec = python(
        &d,
        "import os\n\
         with open('src', 'wb') as f: f.write(b'0123456789')\n\
         s = os.open('src', os.O_RDONLY)\n\
         o = os.open('dst', os.O_WRONLY | os.O_CREAT, 0o644)\n\
         os.copy_file_range(s, o, 4, 2)\n\
         os.sendfile(o, s, 0, 3)\n",
    );
    assert_eq!(rec.exit_status, 0);
    assert_eq!(
        writes_to(&rec, &d.join("dst")),
        vec![(0, b"2345".to_vec()), (4, b"012".to_vec())]
    );
}

#[test]
fn exec_closes_cloexec_descriptors() {
    let (_t, d) = tmp();
    let rec = python(
        &d,
        "import os\n\
         keep = os.open('keep', os.O_WRONLY | os.O_CREAT, 0o644)\n\
         os.set_inheritable(keep, True)\n\
         gone = os.open('gone', os.O_WRONLY | os.O_CREAT, 0o644)\n\
         os.execvp('sh', ['sh', '-c', f'echo kept >&{keep}'])\n",
    );
    assert_eq!(rec.exit_status, 0);
    let close_gone = find(
        &rec,
        "close gone",
        |c| matches!(c, Call::Close { path, .. } if *path == d.join("gone")),
    );
    let write_keep = find(
        &rec,
        "write keep",
        |c| matches!(c, Call::Write { path, data, .. } if *path == d.join("keep") && data == b"kept\n"),
    );
    assert!(close_gone < write_keep);
}

#[test]
fn threads_share_the_descriptor_table() {
    let (_t, d) = tmp();
    let rec = python(
        &d,
        "import os, threading\n\
         fd = os.open('t', os.O_WRONLY | os.O_CREAT, 0o644)\n\
         def work(): os.pwrite(fd, b'thread', 100); os.fsync(fd)\n\
         th = threading.Thread(target=work); th.start(); th.join()\n\
         os.pwrite(fd, b'main', 0)\n",
    );
    assert_eq!(rec.exit_status, 0);
    let w = find(
        &rec,
        "thread write",
        |c| matches!(c, Call::Write { offset: 100, data, .. } if data == b"thread"),
    );
    let e = &rec.events[w];
    assert_eq!(e.pid, rec.events[0].pid);
    assert_ne!(e.tid, e.pid, "written by the other thread");
    assert_eq!(writes_to(&rec, &d.join("t")).len(), 2);
}

#[test]
fn signals_reach_the_command() {
    let (_t, d) = tmp();
    let rec = python(
        &d,
        "import os, signal\n\
         got = []\n\
         signal.signal(signal.SIGUSR1, lambda *a: got.append(1))\n\
         os.kill(os.getpid(), signal.SIGUSR1)\n\
         open('f', 'w').write(str(len(got)))\n",
    );
    assert_eq!(rec.exit_status, 0);
    assert_eq!(writes_to(&rec, &d.join("f")), vec![(0, b"1".to_vec())]);
}

#[test]
fn failed_calls_are_not_recorded() {
    let (_t, d) = tmp();
    let rec = sh(&d, "mkdir x; mkdir x; rmdir nothing; exit 0");
    let mkdirs = rec
        .events
        .iter()
        .filter(|e| matches!(e.call, Call::Mkdir { .. }))
        .count();
    assert_eq!(mkdirs, 1);
    assert!(!rec
        .events
        .iter()
        .any(|e| matches!(e.call, Call::Rmdir { .. })));
}

/// Run by [`killing_the_tracer_kills_the_command`] in a process of its own.
#[test]
#[ignore = "a helper: run by killing_the_tracer_kills_the_command"]
fn helper_trace_a_sleep() {
    let Ok(dir) = std::env::var("UNPLUG_TRACE_HELPER_DIR") else {
        return;
    };
    let cmd: Vec<OsString> = ["sh", "-c", "echo $$ > \"$0/pid\"; exec sleep 1000", &dir]
        .iter()
        .map(OsString::from)
        .collect();
    let _ = record(
        &cmd,
        &Options {
            roots: vec![dir.into()],
            stack_depth: 0,
            stdout_to_stderr: false,
            cancel: None,
        },
    );
}

/// Whether `pid` is running (a zombie is not).
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(false)
}

#[test]
fn killing_the_tracer_kills_the_command() {
    for sig in [nix::sys::signal::SIGTERM, nix::sys::signal::SIGINT] {
        let (_t, d) = tmp();
        let mut helper = std::process::Command::new(std::env::current_exe().expect("exe"))
            .args([
                "--exact",
                "helper_trace_a_sleep",
                "--ignored",
                "--nocapture",
            ])
            .env("UNPLUG_TRACE_HELPER_DIR", &d)
            .spawn()
            .expect("spawn helper");
        let pidfile = d.join("pid");
        let mut waited = 0;
        while !pidfile.exists()
            || std::fs::read_to_string(&pidfile)
                .unwrap_or_default()
                .is_empty()
        {
            std::thread::sleep(std::time::Duration::from_millis(20));
            waited += 1;
            assert!(waited < 500, "the traced command did not start");
        }
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .unwrap_or_default()
            .trim()
            .parse()
            .expect("pid");
        assert!(alive(pid));
        let helper_pid = nix::unistd::Pid::from_raw(helper.id() as i32);
        nix::sys::signal::kill(helper_pid, sig).expect("kill helper");
        let _ = helper.wait();
        let mut waited = 0;
        while alive(pid) {
            std::thread::sleep(std::time::Duration::from_millis(20));
            waited += 1;
            assert!(
                waited < 250,
                "the traced command outlived the tracer ({sig})"
            );
        }
    }
}
