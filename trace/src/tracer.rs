//! The wait loop: one thread waits for every traced task (`__WALL | __WNOTHREAD`: only its own
//! tracees, so several recordings can run in one process) and dispatches each stop. Tasks are
//! threads; a task holds its process's descriptor table and mappings, shared with the tasks that
//! share them.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use nix::errno::Errno;
use nix::sys::ptrace::{self, Event as PtraceEvent};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::entry::Pending;
use crate::fds::{FdEntry, FdTable, SharedFds};
use crate::maps::{Maps, SharedMaps};
use crate::{mem, Call, Event, Recording, TraceError};

/// One traced thread.
pub(crate) struct Task {
    /// Its process (thread group) id.
    pub tgid: Pid,
    pub fds: SharedFds,
    pub maps: SharedMaps,
    /// The call between its seccomp stop and its syscall-exit stop.
    pub pending: Option<Pending>,
    /// A new task whose first `SIGSTOP` (from the auto-attach) is still to come.
    expect_stop: bool,
}

/// The tracer's state.
pub(crate) struct Tracer<'h> {
    root: Pid,
    pub roots: Vec<PathBuf>,
    pub depth: usize,
    pub tasks: HashMap<Pid, Task>,
    /// New tasks whose first stop came before their parent's fork/clone event: they stay stopped
    /// until that event says which tables they share.
    parked: HashSet<Pid>,
    events: Vec<Event>,
    unsupported: BTreeMap<String, usize>,
    exit_status: i32,
    /// What the command's standard output is (`/proc/PID/fd/1` when it started).
    pub stdout: Option<PathBuf>,
    /// Called with each event as it is made, while the task that made it is stopped; false
    /// stops the trace (see `stopped`).
    hook: Option<&'h mut dyn FnMut(&Event) -> bool>,
    /// The hook asked to stop.
    stopped: bool,
}

fn wait_flags() -> WaitPidFlag {
    WaitPidFlag::__WALL | WaitPidFlag::__WNOTHREAD
}

/// Resumes a task (`PTRACE_SYSCALL` when its syscall-exit stop is wanted); a task that died
/// meanwhile reports its exit to the wait loop.
fn resume(pid: Pid, to_exit: bool, sig: Option<Signal>) -> Result<(), TraceError> {
    let r = if to_exit {
        ptrace::syscall(pid, sig)
    } else {
        ptrace::cont(pid, sig)
    };
    match r {
        Ok(()) | Err(Errno::ESRCH) => Ok(()),
        Err(err) => Err(TraceError::Ptrace {
            what: "resuming a task",
            err,
        }),
    }
}

impl<'h> Tracer<'h> {
    pub(crate) fn new(
        root: Pid,
        roots: Vec<PathBuf>,
        depth: usize,
        hook: Option<&'h mut dyn FnMut(&Event) -> bool>,
    ) -> Tracer<'h> {
        let mut tasks = HashMap::new();
        tasks.insert(
            root,
            Task {
                tgid: root,
                fds: Rc::new(RefCell::new(FdTable::default())),
                maps: Rc::new(RefCell::new(Maps::default())),
                pending: None,
                expect_stop: false,
            },
        );
        Tracer {
            root,
            roots,
            depth,
            tasks,
            parked: HashSet::new(),
            events: Vec::new(),
            unsupported: BTreeMap::new(),
            exit_status: 0,
            stdout: mem::fd_path(root, 1),
            hook,
            stopped: false,
        }
    }

    pub(crate) fn into_recording(mut self) -> Recording {
        Recording {
            events: std::mem::take(&mut self.events),
            exit_status: self.exit_status,
            unsupported: std::mem::take(&mut self.unsupported),
        }
    }

    /// Runs the command (stopped at its `SIGSTOP`, before exec) until every task has exited.
    pub(crate) fn run(&mut self) -> Result<(), TraceError> {
        resume(self.root, false, None)?;
        while !self.tasks.is_empty() || !self.parked.is_empty() {
            let status = match waitpid(None, Some(wait_flags())) {
                Ok(s) => s,
                Err(Errno::EINTR) => continue,
                Err(Errno::ECHILD) => break,
                Err(err) => {
                    return Err(TraceError::Ptrace {
                        what: "waiting for the traced tasks",
                        err,
                    })
                }
            };
            self.handle(status)?;
            if self.stopped {
                return Err(TraceError::Stopped);
            }
            if self.tasks.is_empty() && !self.parked.is_empty() {
                // Their parent died before its clone event: trace them on their own.
                for pid in std::mem::take(&mut self.parked) {
                    self.adopt(pid);
                    resume(pid, false, None)?;
                }
            }
        }
        Ok(())
    }

    fn adopt(&mut self, pid: Pid) {
        self.tasks.insert(
            pid,
            Task {
                tgid: pid,
                fds: Rc::new(RefCell::new(FdTable::default())),
                maps: Rc::new(RefCell::new(Maps::default())),
                pending: None,
                expect_stop: false,
            },
        );
    }

    fn handle(&mut self, status: WaitStatus) -> Result<(), TraceError> {
        match status {
            WaitStatus::Exited(pid, code) => self.gone(pid, code),
            WaitStatus::Signaled(pid, sig, _) => self.gone(pid, 128 + sig as i32),
            WaitStatus::PtraceEvent(pid, _, ev) => {
                if !self.tasks.contains_key(&pid) {
                    return resume(pid, false, None);
                }
                match ev {
                    e if e == PtraceEvent::PTRACE_EVENT_SECCOMP as i32 => {
                        let to_exit = self.on_seccomp(pid);
                        return resume(pid, to_exit, None);
                    }
                    e if e == PtraceEvent::PTRACE_EVENT_FORK as i32
                        || e == PtraceEvent::PTRACE_EVENT_VFORK as i32
                        || e == PtraceEvent::PTRACE_EVENT_CLONE as i32 =>
                    {
                        self.on_clone(pid)?;
                    }
                    e if e == PtraceEvent::PTRACE_EVENT_EXEC as i32 => self.on_exec(pid),
                    e if e == PtraceEvent::PTRACE_EVENT_EXIT as i32 => self.flush_maps(pid),
                    _ => {}
                }
                resume(pid, false, None)?;
            }
            WaitStatus::PtraceSyscall(pid) => {
                let pending = self.tasks.get_mut(&pid).and_then(|t| t.pending.take());
                if let Some(p) = pending {
                    if let Ok(regs) = ptrace::getregs(pid) {
                        self.exit(pid, p, regs.rax as i64);
                    }
                }
                resume(pid, false, None)?;
            }
            WaitStatus::Stopped(pid, sig) => self.on_stop(pid, sig)?,
            _ => {}
        }
        Ok(())
    }

    /// A signal stop: a new task's first stop, a signal to deliver, or a group-stop.
    fn on_stop(&mut self, pid: Pid, sig: Signal) -> Result<(), TraceError> {
        let Some(task) = self.tasks.get_mut(&pid) else {
            self.parked.insert(pid);
            return Ok(());
        };
        if task.expect_stop && sig == Signal::SIGSTOP {
            task.expect_stop = false;
            return resume(pid, false, None);
        }
        // A group-stop has no siginfo: resume without a signal. Otherwise deliver it.
        let deliver = ptrace::getsiginfo(pid).is_ok();
        resume(pid, false, deliver.then_some(sig))
    }

    /// The seccomp stop of a filtered call: returns whether its exit is wanted.
    fn on_seccomp(&mut self, tid: Pid) -> bool {
        let Ok(regs) = ptrace::getregs(tid) else {
            return false;
        };
        // Stores to shared mappings since the process's last traced call come before this one:
        // a caller that acts between calls (`unplug real --exec` writes back dirty pages after a
        // call) must know every store made by then.
        self.flush_maps(tid);
        let pending = self.entry(tid, &regs);
        let to_exit = pending.is_some();
        if let Some(task) = self.tasks.get_mut(&tid) {
            task.pending = pending;
        }
        to_exit
    }

    /// A fork, vfork or clone event of `parent` (stopped in the call): the new task's tables.
    fn on_clone(&mut self, parent: Pid) -> Result<(), TraceError> {
        let new = Pid::from_raw(ptrace::getevent(parent).map_err(|err| TraceError::Ptrace {
            what: "reading a new task's id",
            err,
        })? as i32);
        let flags = clone_flags(parent);
        let p = &self.tasks[&parent];
        let task = Task {
            tgid: if flags & libc::CLONE_THREAD as u64 != 0 {
                p.tgid
            } else {
                new
            },
            fds: if flags & libc::CLONE_FILES as u64 != 0 {
                Rc::clone(&p.fds)
            } else {
                Rc::new(RefCell::new(p.fds.borrow().clone()))
            },
            // A forked child's copies of the shared mappings are not followed (stores through
            // them show in the parent's mapping when it is next read).
            maps: if flags & libc::CLONE_VM as u64 != 0 {
                Rc::clone(&p.maps)
            } else {
                Rc::new(RefCell::new(Maps::default()))
            },
            pending: None,
            expect_stop: true,
        };
        self.tasks.insert(new, task);
        if self.parked.remove(&new) {
            if let Some(t) = self.tasks.get_mut(&new) {
                t.expect_stop = false;
            }
            resume(new, false, None)?;
        }
        Ok(())
    }

    /// An exec succeeded in `pid` (the thread group's id; a non-leader thread that called exec
    /// has taken it over): the other threads are gone, the table is unshared and loses its
    /// `O_CLOEXEC` descriptors, and the mappings are gone (flushed at the exec call).
    fn on_exec(&mut self, pid: Pid) {
        let former = ptrace::getevent(pid).map_or(pid, |f| Pid::from_raw(f as i32));
        let Some(mut task) = self
            .tasks
            .remove(&former)
            .or_else(|| self.tasks.remove(&pid))
        else {
            return;
        };
        let tgid = task.tgid;
        self.tasks.retain(|_, t| t.tgid != tgid);
        let mut table = task.fds.borrow().clone();
        let closed = table.exec();
        task.fds = Rc::new(RefCell::new(table));
        task.maps = Rc::new(RefCell::new(Maps::default()));
        task.pending = None;
        task.tgid = pid;
        self.tasks.insert(pid, task);
        self.emit_closes(pid, closed);
    }

    /// Reads `tid`'s mappings and emits the stores since the last look (exec, exit).
    pub(crate) fn flush_maps(&mut self, tid: Pid) {
        let Some(task) = self.tasks.get(&tid) else {
            return;
        };
        let maps = Rc::clone(&task.maps);
        if maps.borrow().is_empty() {
            return;
        }
        let stores = maps.borrow_mut().flush(tid, None);
        for s in stores {
            self.emit(tid, s, &[]);
        }
    }

    /// A task exited: the last user of a descriptor table closes its descriptors.
    fn gone(&mut self, pid: Pid, status: i32) {
        self.parked.remove(&pid);
        if pid == self.root {
            self.exit_status = status;
        }
        let Some(task) = self.tasks.remove(&pid) else {
            return;
        };
        if Rc::strong_count(&task.fds) == 1 {
            let closed = task.fds.borrow_mut().drain();
            self.tasks.insert(pid, task);
            self.emit_closes(pid, closed);
            self.tasks.remove(&pid);
        }
    }

    fn emit_closes(&mut self, tid: Pid, closed: Vec<(i32, FdEntry)>) {
        for (fd, e) in closed {
            if e.traced {
                self.emit(tid, Call::Close { fd, path: e.path }, &[]);
            }
        }
    }

    /// Appends an event (counting it if unsupported).
    pub(crate) fn emit(&mut self, tid: Pid, call: Call, site: &[crate::Frame]) {
        let pid = self.tasks.get(&tid).map_or(tid, |t| t.tgid);
        if let Call::Unsupported { kind, .. } = &call {
            *self.unsupported.entry(kind.clone()).or_default() += 1;
        }
        let event = Event {
            seq: self.events.len(),
            pid: pid.as_raw(),
            tid: tid.as_raw(),
            call,
            site: site.to_vec(),
        };
        if let Some(hook) = &mut self.hook {
            self.stopped |= !hook(&event);
        }
        self.events.push(event);
    }

    /// Whether `path` is under a root.
    pub(crate) fn under_root(&self, path: &Path) -> bool {
        self.roots.iter().any(|r| path.starts_with(r))
    }

    /// What `fd` of `tid` refers to; a descriptor the tracer has not seen opened (inherited, or
    /// made by a call it does not stop at) is looked up in `/proc` once and remembered.
    pub(crate) fn fd_entry(&mut self, tid: Pid, fd: i32) -> Option<FdEntry> {
        let fds = Rc::clone(&self.tasks.get(&tid)?.fds);
        if let Some(e) = fds.borrow().get(fd) {
            return Some(e.clone());
        }
        let path = mem::fd_path(tid, fd)?;
        let entry = FdEntry {
            traced: self.under_root(&path),
            path,
            flags: mem::fd_flags(tid, fd).unwrap_or(0) & !libc::O_CLOEXEC,
            cloexec: false,
        };
        fds.borrow_mut().insert(fd, entry.clone());
        Some(entry)
    }

    /// [`Tracer::fd_entry`], only when the descriptor's file is under a root.
    /// Whether `fd` of `tid` is descriptor 1 and the command's own standard output.
    pub(crate) fn is_stdout(&mut self, tid: Pid, fd: i32) -> bool {
        fd == 1
            && self.stdout.is_some()
            && self
                .fd_entry(tid, fd)
                .is_some_and(|e| !e.traced && Some(&e.path) == self.stdout.as_ref())
    }

    pub(crate) fn traced_fd(&mut self, tid: Pid, fd: i32) -> Option<FdEntry> {
        self.fd_entry(tid, fd).filter(|e| e.traced)
    }

    /// Kills every task (the error path): each known task, and the command's process group
    /// (for a task the tracer has not seen yet); then reaps them.
    pub(crate) fn kill_all(&mut self) {
        let pids: Vec<Pid> = self
            .tasks
            .keys()
            .chain(self.parked.iter())
            .copied()
            .collect();
        for &pid in &pids {
            let _ = kill(pid, Signal::SIGKILL);
        }
        let _ = nix::sys::signal::killpg(self.root, Signal::SIGKILL);
        self.tasks.clear();
        self.parked.clear();
        // Reap the tasks it knows, each until it is gone: not any child (the caller may have
        // children of its own that live on, e.g. `unplug real`'s storage daemon). Every tracee
        // dies of SIGKILL; bound the loops anyway.
        for pid in pids {
            for _ in 0..1_000 {
                match waitpid(pid, Some(wait_flags())) {
                    Err(Errno::EINTR) => {}
                    Ok(WaitStatus::Exited(..) | WaitStatus::Signaled(..)) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        }
    }
}

impl Drop for Tracer<'_> {
    fn drop(&mut self) {
        if !self.tasks.is_empty() || !self.parked.is_empty() {
            self.kill_all();
        }
    }
}

/// The clone flags of the fork, vfork, clone or clone3 call `parent` is stopped in.
fn clone_flags(parent: Pid) -> u64 {
    let Ok(regs) = ptrace::getregs(parent) else {
        return 0;
    };
    match regs.orig_rax as i64 {
        libc::SYS_clone => regs.rdi,
        libc::SYS_clone3 => mem::read_u64(parent, regs.rdi).unwrap_or(0),
        libc::SYS_vfork => (libc::CLONE_VM | libc::CLONE_VFORK) as u64,
        _ => 0,
    }
}
