//! A call at its syscall-exit stop: its return value finishes the event (the descriptor an open
//! made, the bytes a write wrote and where) and updates the descriptor table and mappings.

use std::cell::RefCell;
use std::rc::Rc;

use nix::unistd::Pid;

use crate::entry::{Kind, Offset, Pending};
use crate::fds::{FdEntry, SharedFds};
use crate::maps::SharedMaps;
use crate::tracer::Tracer;
use crate::{mem, Call};

/// `CLOSE_RANGE_UNSHARE`, `CLOSE_RANGE_CLOEXEC`.
const CLOSE_RANGE_UNSHARE: u32 = 1 << 1;
const CLOSE_RANGE_CLOEXEC: u32 = 1 << 2;

impl Tracer<'_> {
    /// Finishes `p` for `tid`, whose call returned `ret`.
    pub(crate) fn exit(&mut self, tid: Pid, p: Pending, ret: i64) {
        let site = p.site;
        for call in p.before {
            self.emit(tid, call, &site);
        }
        // A negative errno (an mmap address is never in the last page).
        if (-4095..0).contains(&ret) {
            return;
        }
        let Some(task) = self.tasks.get(&tid) else {
            return;
        };
        let fds = Rc::clone(&task.fds);
        let maps = Rc::clone(&task.maps);
        let calls = match p.kind {
            Kind::Done(done) => done,
            k @ (Kind::Write { .. } | Kind::CopyInto { .. }) => self.exit_write(tid, k, ret),
            Kind::Stdout { bufs } if ret > 0 => vec![Call::Stdout {
                data: mem::read_buffers(tid, &bufs, ret as u64),
            }],
            k @ (Kind::Mmap { .. }
            | Kind::Msync { .. }
            | Kind::Munmap { .. }
            | Kind::Mremap { .. }) => exit_maps(tid, k, ret, &maps),
            k => self.exit_table(tid, k, ret, fds),
        };
        for call in calls {
            self.emit(tid, call, &site);
        }
    }

    /// The descriptor table: open, close, dup, fcntl.
    fn exit_table(&mut self, tid: Pid, kind: Kind, ret: i64, fds: SharedFds) -> Vec<Call> {
        let mut calls = Vec::new();
        match kind {
            Kind::Open {
                path,
                flags,
                created,
            } => {
                let fd = ret as i32;
                // The path of the file opened (a symbolic link followed).
                let path = mem::fd_path(tid, fd).unwrap_or(path);
                let traced = self.under_root(&path);
                let entry = fd_entry(path.clone(), flags, traced);
                if let Some(old) = fds.borrow_mut().insert(fd, entry) {
                    // A descriptor the tracer missed being closed (by a call it does not stop).
                    if old.traced {
                        calls.push(Call::Close { fd, path: old.path });
                    }
                }
                if traced {
                    calls.push(Call::Open {
                        fd,
                        path,
                        flags,
                        created,
                    });
                }
            }
            Kind::OpenTmpfile { dir, flags } => {
                let fd = ret as i32;
                let path = mem::fd_path(tid, fd).unwrap_or_else(|| dir.clone());
                fds.borrow_mut().insert(fd, fd_entry(path, flags, true));
                calls.push(Call::OpenTmpfile { fd, dir });
            }
            Kind::Close { fd } => {
                if let Some(e) = fds.borrow_mut().remove(fd) {
                    if e.traced {
                        calls.push(Call::Close { fd, path: e.path });
                    }
                }
            }
            Kind::CloseRange { first, last, flags } => {
                let task_fds = if flags & CLOSE_RANGE_UNSHARE != 0 {
                    let copy = Rc::new(RefCell::new(fds.borrow().clone()));
                    if let Some(t) = self.tasks.get_mut(&tid) {
                        t.fds = Rc::clone(&copy);
                    }
                    copy
                } else {
                    fds
                };
                if flags & CLOSE_RANGE_CLOEXEC != 0 {
                    task_fds.borrow_mut().set_cloexec_range(first, last);
                } else {
                    for (fd, e) in task_fds.borrow_mut().remove_range(first, last) {
                        if e.traced {
                            calls.push(Call::Close { fd, path: e.path });
                        }
                    }
                }
            }
            Kind::Dup {
                old,
                entry,
                cloexec,
            } => {
                let new = ret as i32;
                if new != old {
                    let path = entry.path.clone();
                    let traced = entry.traced;
                    let replaced = fds.borrow_mut().insert(new, FdEntry { cloexec, ..entry });
                    if let Some(r) = replaced.filter(|r| r.traced) {
                        calls.push(Call::Close {
                            fd: new,
                            path: r.path,
                        });
                    }
                    if traced {
                        calls.push(Call::Dup { old, new, path });
                    }
                }
            }
            Kind::SetFl { fd, flags } => {
                if let Some(e) = fds.borrow_mut().get_mut(fd) {
                    // F_SETFL changes only these; the access mode stays.
                    let settable = libc::O_APPEND
                        | libc::O_ASYNC
                        | libc::O_DIRECT
                        | libc::O_NOATIME
                        | libc::O_NONBLOCK;
                    e.flags = (e.flags & !settable) | (flags & settable);
                }
            }
            Kind::SetFd { fd, cloexec } => {
                if let Some(e) = fds.borrow_mut().get_mut(fd) {
                    e.cloexec = cloexec;
                }
            }
            _ => {}
        }
        calls
    }

    /// Writes and copies into a traced file (`ret` bytes).
    fn exit_write(&self, tid: Pid, kind: Kind, ret: i64) -> Vec<Call> {
        let n = ret as u64;
        let (fd, path, data, offset) = match kind {
            Kind::Write {
                fd,
                entry,
                bufs,
                offset,
            } if n > 0 => (
                fd,
                entry.path,
                Some(mem::read_buffers(tid, &bufs, n)),
                offset,
            ),
            Kind::CopyInto { fd, entry, offset } if n > 0 => (fd, entry.path, None, offset),
            _ => return Vec::new(),
        };
        let Some(offset) = self.landed_at(tid, fd, offset, n) else {
            return Vec::new();
        };
        // A copy's bytes are read back from the file.
        let data = data.unwrap_or_else(|| mem::pread_fd(tid, fd, offset, n));
        vec![Call::Write {
            fd,
            path,
            offset,
            data,
        }]
    }

    /// The offset where `n` bytes written through `fd` landed.
    fn landed_at(&self, tid: Pid, fd: i32, offset: Offset, n: u64) -> Option<u64> {
        match offset {
            Offset::At(o) => Some(o),
            Offset::Pos => mem::fd_pos(tid, fd).map(|p| p.saturating_sub(n)),
            Offset::End => mem::fd_size(tid, fd).map(|s| s.saturating_sub(n)),
        }
    }
}

fn fd_entry(path: std::path::PathBuf, flags: i32, traced: bool) -> FdEntry {
    FdEntry {
        path,
        flags: flags & !libc::O_CLOEXEC,
        traced,
        cloexec: flags & libc::O_CLOEXEC != 0,
    }
}

/// Mappings: mmap, msync, munmap, mremap.
fn exit_maps(tid: Pid, kind: Kind, ret: i64, maps: &SharedMaps) -> Vec<Call> {
    let mut calls = Vec::new();
    match kind {
        Kind::Mmap {
            file,
            offset,
            len,
            replaces,
        } => {
            if let Some((a, l)) = replaces {
                maps.borrow_mut().remove(a, l);
            }
            if let Some((fd, path)) = file {
                let addr = ret as u64;
                maps.borrow_mut().remove(addr, len);
                maps.borrow_mut().add(tid, addr, len, path.clone(), offset);
                calls.push(Call::Mmap {
                    fd,
                    path,
                    addr,
                    offset,
                    len,
                });
            }
        }
        Kind::Msync { addr, len, flags } => {
            calls = maps.borrow_mut().flush(tid, Some((addr, len)));
            calls.push(Call::Msync { addr, len, flags });
        }
        Kind::Munmap { addr, len } => {
            maps.borrow_mut().remove(addr, len);
            calls.push(Call::Munmap { addr, len });
        }
        Kind::Mremap { addr, len } => {
            maps.borrow_mut().remove(addr, len);
            calls.push(Call::Unsupported {
                kind: "mremap of a shared mapping".into(),
                path: None,
            });
        }
        _ => {}
    }
    calls
}
