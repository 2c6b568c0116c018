//! Records what a command does to files under some roots: the command runs under ptrace with a
//! seccomp-bpf filter that stops it only at the file-system calls this crate understands, and the
//! tracer turns each successful call on a path or descriptor under a root into an [`Event`] with
//! already-resolved data (absolute paths, real write offsets, the bytes written, the bytes a shared
//! mapping changed).
//!
//! x86_64 Linux only (kernel 4.8 or later, for the seccomp-stop-then-syscall-exit-stop order).
//!
//! How it works, in brief:
//! - `child.rs` forks the command: `PTRACE_TRACEME`, `SIGSTOP`, `PR_SET_NO_NEW_PRIVS`, the
//!   seccomp filter (`SECCOMP_RET_TRACE` for the calls of `child::TRACED`, allow for the rest),
//!   `execvp`. The command runs in its own process group with `PR_SET_PDEATHSIG(SIGKILL)`.
//! - `tracer.rs` is the wait loop (one thread serializes everything): processes and threads,
//!   signals, exec, exit. Every traced task has `PTRACE_O_EXITKILL`, so nothing survives the
//!   tracer; on an error, the tracer kills every task it knows and the process group.
//! - `entry.rs` decodes a call at its seccomp stop (arguments, paths resolved through
//!   `/proc/TID/cwd` and `/proc/TID/fd/DIRFD`); when the call matters, the task is resumed with
//!   `PTRACE_SYSCALL` and `exit.rs` finishes the event at its syscall-exit stop.
//! - `fds.rs` is the per-process descriptor table, `maps.rs` the shared writable mappings and
//!   their snapshots (stores are found by diffing), `mem.rs` reads the tracee (memory, registers,
//!   `/proc`), `site.rs` the call site.

mod child;
mod entry;
mod exit;
mod fds;
mod maps;
mod mem;
mod site;

pub use site::Frame;
mod tracer;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;

/// What to record.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Only calls on paths (or descriptors of files) under one of these directories are recorded.
    /// [`record`] canonicalizes them (symbolic links resolved), so that they compare with the
    /// resolved paths of the calls.
    pub roots: Vec<PathBuf>,
    /// How many return addresses to add to [`Event::site`] by walking the frame-pointer chain
    /// (0: the instruction pointer only). Best effort: most of Debian's binaries and libraries are
    /// built without frame pointers, so the chain usually stops early or at garbage (it stops at
    /// the first unreadable or non-increasing frame).
    pub stack_depth: usize,
    /// The command's standard output goes to the caller's standard error (for a caller whose
    /// own standard output is a report, e.g. JSON).
    pub stdout_to_stderr: bool,
    /// Polled every 20 ms while the command runs: once it returns true, the command's process
    /// group is killed and the trace ends with [`TraceError::Stopped`] (a caller's Ctrl-C, where
    /// the command may be blocked in a call the tracer does not stop at).
    pub cancel: Option<fn() -> bool>,
}

/// What a traced command did under the roots.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recording {
    /// The calls, in the order the tracer saw them return.
    pub events: Vec<Event>,
    /// The command's exit status: its exit code, or 128 + the signal that killed it.
    pub exit_status: i32,
    /// Calls on files under a root that [`Call`] cannot express, by kind, with their count. Each
    /// also has an [`Call::Unsupported`] event in sequence.
    pub unsupported: BTreeMap<String, usize>,
}

/// One recorded call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The index of the event in [`Recording::events`].
    pub seq: usize,
    /// The process (thread group) id.
    pub pid: i32,
    /// The thread id.
    pub tid: i32,
    /// The call, with resolved data.
    pub call: Call,
    /// Where the call was made: the instruction pointer at the system call, then up to
    /// [`Options::stack_depth`] return addresses (the frame-pointer chain, else a scan of the
    /// stack; best effort), each with its object file and offset.
    /// Empty for events no call of the command made at that point: the closes of a process's
    /// descriptors when it exits, and the stores found when a process exits or execs.
    pub site: Vec<Frame>,
}

/// A file-system call with its resolved data. Paths are absolute and resolved by the tracer (the
/// parent directory canonicalized; for `open`, the path of the opened file). Descriptors are the
/// process's own (key them by [`Event::pid`]: a child inherits its parent's descriptors).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// open, openat, openat2, creat. `flags` are the raw `O_*` flags; `created` says the file did
    /// not exist before the call.
    Open {
        fd: i32,
        path: PathBuf,
        flags: i32,
        created: bool,
    },
    /// An open with `O_TMPFILE`: an unnamed file in `dir`.
    OpenTmpfile { fd: i32, dir: PathBuf },
    /// A traced descriptor closed: close, close_range, dup2/dup3 onto it, exec (`O_CLOEXEC`), or
    /// the exit of the last process using the descriptor table.
    Close { fd: i32, path: PathBuf },
    /// dup, dup2, dup3, fcntl(F_DUPFD, F_DUPFD_CLOEXEC) of a traced descriptor: `new` now refers
    /// to the same open file as `old`.
    Dup { old: i32, new: i32, path: PathBuf },
    /// write, pwrite64, writev, pwritev, pwritev2, and the bytes copy_file_range, sendfile and
    /// splice put into a traced file: `data` landed at `offset`.
    Write {
        fd: i32,
        path: PathBuf,
        offset: u64,
        data: Vec<u8>,
    },
    /// truncate (`fd` is None) or ftruncate.
    Truncate {
        path: PathBuf,
        fd: Option<i32>,
        size: u64,
    },
    /// fallocate, with its raw mode (punching holes included).
    Fallocate {
        fd: i32,
        path: PathBuf,
        mode: i32,
        offset: u64,
        len: u64,
    },
    /// mkdir, mkdirat.
    Mkdir { path: PathBuf },
    /// rmdir, unlinkat(AT_REMOVEDIR).
    Rmdir { path: PathBuf },
    /// unlink, unlinkat.
    Unlink { path: PathBuf },
    /// rename, renameat, renameat2 (raw `RENAME_*` flags).
    Rename {
        from: PathBuf,
        to: PathBuf,
        flags: u32,
    },
    /// link, linkat.
    Link { from: PathBuf, to: PathBuf },
    /// linkat(fd, "", ..., AT_EMPTY_PATH): a name for the file open at `fd`.
    LinkFd { fd: i32, new: PathBuf },
    /// symlink, symlinkat: `path` now holds a link to `target` (as given).
    Symlink { target: String, path: PathBuf },
    /// fsync, fdatasync (`data_only`).
    Fsync {
        fd: i32,
        path: PathBuf,
        data_only: bool,
    },
    /// sync (recorded whatever the roots: it syncs them too).
    Sync,
    /// syncfs on a traced descriptor.
    Syncfs { fd: i32, path: PathBuf },
    /// sync_file_range, with its raw flags.
    SyncFileRange {
        fd: i32,
        path: PathBuf,
        offset: u64,
        len: u64,
        flags: u32,
    },
    /// A shared writable mapping of a traced file (`MAP_SHARED`, `PROT_WRITE`): `len` bytes
    /// (rounded up to pages) from `offset` in the file, at `addr`.
    Mmap {
        fd: i32,
        path: PathBuf,
        addr: u64,
        offset: u64,
        len: u64,
    },
    /// Bytes the process changed through a shared mapping since the previous look: found by
    /// diffing the mapping at msync, munmap, exec and exit against a snapshot (ranges closer than
    /// 16 bytes merged). Emitted before the Msync or Munmap that made the tracer look.
    Store {
        path: PathBuf,
        addr: u64,
        file_offset: u64,
        data: Vec<u8>,
    },
    /// msync of a range that holds a traced mapping.
    Msync { addr: u64, len: u64, flags: i32 },
    /// munmap of a range that holds a traced mapping.
    Munmap { addr: u64, len: u64 },
    /// Bytes the command wrote to its standard output: a write to descriptor 1 of any of its
    /// processes while that descriptor is the command's own standard output (not a pipe
    /// between its processes). What it told its user, in order with the calls: a checker can
    /// require that work the application acknowledged survives a crash.
    Stdout { data: Vec<u8> },
    /// A call on a traced file that the other variants cannot express (counted in
    /// [`Recording::unsupported`] too). `path` is None when the call names no file (io_uring).
    Unsupported { kind: String, path: Option<PathBuf> },
}

/// Why a command could not be traced.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// The command is empty.
    #[error("no command to trace")]
    EmptyCommand,
    /// An argument holds a NUL byte.
    #[error("argument {0:?} holds a NUL byte")]
    Nul(OsString),
    /// The seccomp filter could not be built.
    #[error("building the seccomp filter: {0}")]
    Filter(String),
    /// fork failed.
    #[error("starting the command: {0}")]
    Spawn(nix::Error),
    /// The child stopped tracing before it ran the command (ptrace, prctl or seccomp refused).
    #[error("the child could not set up tracing (status {0})")]
    Setup(String),
    /// A ptrace or wait call failed.
    #[error("stopped by the caller")]
    Stopped,
    #[error("{what}: {err}")]
    Ptrace {
        /// What the tracer was doing.
        what: &'static str,
        /// The error.
        err: nix::Error,
    },
}

/// Runs `cmd` (looked up in `PATH` like `execvp`) under the tracer, waits until it and every
/// process it started have exited, and returns what they did under `opts.roots`.
///
/// The command inherits the caller's standard streams and environment and runs in its own process
/// group (so a terminal's Ctrl-C reaches only the caller). If this function fails midway, every
/// traced process is killed before it returns; if the calling thread dies (SIGINT or SIGTERM with
/// their default action included), `PTRACE_O_EXITKILL` kills them. A caller that catches SIGINT
/// and wants to stop the command must itself signal it (or exit).
///
/// Limits: a stopped (group-stop) tracee is resumed at once, so job control does not work under
/// the tracer; calls made through the x32 ABI are not seen (seccompiler's filter kills calls made
/// with another architecture's convention); the copies of shared mappings a forked child inherits
/// are not followed, and `mprotect` making a shared read-only mapping writable is not seen.
pub fn record(cmd: &[OsString], opts: &Options) -> Result<Recording, TraceError> {
    run(cmd, opts, None)
}

/// [`record`], calling `on_event` with each event as it is made, while the task that made it is
/// stopped (for a call, at its syscall-exit stop: the call has returned and the task has not yet
/// run on). Returning false stops the trace: every traced process is killed and the result is
/// [`TraceError::Stopped`].
///
/// `unplug real --exec` writes a mark into a block-write log here, so that the log says which
/// calls had returned before each write.
pub fn record_with(
    cmd: &[OsString],
    opts: &Options,
    on_event: &mut dyn FnMut(&Event) -> bool,
) -> Result<Recording, TraceError> {
    run(cmd, opts, Some(on_event))
}

fn run(
    cmd: &[OsString],
    opts: &Options,
    hook: Option<&mut dyn FnMut(&Event) -> bool>,
) -> Result<Recording, TraceError> {
    if cmd.is_empty() {
        return Err(TraceError::EmptyCommand);
    }
    let roots = opts
        .roots
        .iter()
        .map(|r| std::fs::canonicalize(r).unwrap_or_else(|_| r.clone()))
        .collect();
    let filter = child::filter()?;
    let argv = child::Argv::new(cmd)?;
    let pid = child::spawn(&argv, &filter, opts.stdout_to_stderr)?;
    let mut tracer = tracer::Tracer::new(pid, roots, opts.stack_depth, hook);
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let cancelled = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = opts.cancel.map(|cancel| {
        let (done, cancelled) = (done.clone(), cancelled.clone());
        std::thread::spawn(move || {
            use std::sync::atomic::Ordering::SeqCst;
            while !done.load(SeqCst) {
                if cancel() {
                    cancelled.store(true, SeqCst);
                    let _ = nix::sys::signal::killpg(pid, nix::sys::signal::Signal::SIGKILL);
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        })
    });
    let result = tracer.run();
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    if let Some(w) = watcher {
        let _ = w.join();
    }
    match result {
        Ok(()) if !cancelled.load(std::sync::atomic::Ordering::SeqCst) => {
            Ok(tracer.into_recording())
        }
        Ok(()) => Err(TraceError::Stopped),
        Err(e) => {
            tracer.kill_all();
            Err(e)
        }
    }
}
