//! A filtered call at its seccomp stop: its arguments read and resolved into a [`Pending`] when
//! it touches a root (or the descriptor table), else nothing and the task runs on without a
//! syscall-exit stop.

use std::path::PathBuf;
use std::rc::Rc;

use libc::user_regs_struct;
use nix::unistd::Pid;

use crate::fds::FdEntry;
use crate::tracer::Tracer;
use crate::{mem, site, Call};

/// A call between its entry and its exit.
pub(crate) struct Pending {
    pub site: Vec<crate::Frame>,
    /// Events due whatever the call returns (the stores found before a munmap).
    pub before: Vec<Call>,
    pub kind: Kind,
}

/// Where a write lands.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Offset {
    /// At this offset.
    At(u64),
    /// Before the descriptor's file position at exit (write, writev; O_APPEND included).
    Pos,
    /// Before the file's end at exit (pwrite on an O_APPEND descriptor, RWF_APPEND).
    End,
}

/// What the exit of a call needs.
pub(crate) enum Kind {
    /// Events fully known at entry, recorded if the call succeeds.
    Done(Vec<Call>),
    Open {
        path: PathBuf,
        flags: i32,
        created: bool,
    },
    OpenTmpfile {
        dir: PathBuf,
        flags: i32,
    },
    Close {
        fd: i32,
    },
    CloseRange {
        first: i32,
        last: i32,
        flags: u32,
    },
    Dup {
        old: i32,
        entry: FdEntry,
        cloexec: bool,
    },
    SetFl {
        fd: i32,
        flags: i32,
    },
    SetFd {
        fd: i32,
        cloexec: bool,
    },
    Write {
        fd: i32,
        entry: FdEntry,
        bufs: Vec<(u64, u64)>,
        offset: Offset,
    },
    /// A write to the command's standard output.
    Stdout {
        bufs: Vec<(u64, u64)>,
    },
    /// copy_file_range, sendfile, splice into a traced file: the bytes are read back from it.
    CopyInto {
        fd: i32,
        entry: FdEntry,
        offset: Offset,
    },
    Mmap {
        file: Option<(i32, PathBuf)>,
        offset: u64,
        len: u64,
        /// A MAP_FIXED mapping replaces what was there.
        replaces: Option<(u64, u64)>,
    },
    Msync {
        addr: u64,
        len: u64,
        flags: i32,
    },
    Munmap {
        addr: u64,
        len: u64,
    },
    Mremap {
        addr: u64,
        len: u64,
    },
}

/// FICLONE, FICLONERANGE, FIDEDUPERANGE, FS_IOC_SETFLAGS: the ioctls that change a file.
const IOCTLS: &[(u64, &str)] = &[
    (0x4004_9409, "ioctl FICLONE"),
    (0x4020_940d, "ioctl FICLONERANGE"),
    (0xc018_9436, "ioctl FIDEDUPERANGE"),
    (0x4008_6602, "ioctl FS_IOC_SETFLAGS"),
];
const RWF_APPEND: u64 = 0x10;

fn round_page(n: u64) -> u64 {
    n.div_ceil(4096) * 4096
}

impl Tracer<'_> {
    /// Decodes the call `tid` is stopped at.
    pub(crate) fn entry(&mut self, tid: Pid, regs: &user_regs_struct) -> Option<Pending> {
        let a = [regs.rdi, regs.rsi, regs.rdx, regs.r10, regs.r8, regs.r9];
        let nr = regs.orig_rax as i64;
        let mut before = Vec::new();
        let kind = match nr {
            libc::SYS_open => self.open(tid, libc::AT_FDCWD, a[0], a[1] as i32),
            libc::SYS_openat => self.open(tid, a[0] as i32, a[1], a[2] as i32),
            libc::SYS_openat2 => {
                let flags = mem::read_u64(tid, a[2])? as i32;
                self.open(tid, a[0] as i32, a[1], flags)
            }
            libc::SYS_creat => self.open(
                tid,
                libc::AT_FDCWD,
                a[0],
                libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC,
            ),
            libc::SYS_execve | libc::SYS_execveat => {
                self.flush_maps(tid);
                None
            }
            libc::SYS_mmap
            | libc::SYS_msync
            | libc::SYS_munmap
            | libc::SYS_mremap
            | libc::SYS_ioctl
            | libc::SYS_fsetxattr
            | libc::SYS_fremovexattr
            | libc::SYS_io_uring_setup => self.memory_and_misc(tid, nr, a, &mut before),
            _ => self
                .fd_call(tid, nr, a)
                .or_else(|| self.path_call(tid, nr, a)),
        };
        if kind.is_none() && before.is_empty() {
            return None;
        }
        Some(Pending {
            site: site::site(tid, regs, self.depth),
            before,
            kind: kind.unwrap_or(Kind::Done(Vec::new())),
        })
    }

    fn open(&mut self, tid: Pid, dirfd: i32, path: u64, flags: i32) -> Option<Kind> {
        let raw = mem::read_cstr(tid, path)?;
        let path = mem::resolve(tid, dirfd, &raw, true)?;
        if !self.under_root(&path) {
            return None;
        }
        if flags & libc::O_TMPFILE == libc::O_TMPFILE {
            return Some(Kind::OpenTmpfile { dir: path, flags });
        }
        let created = flags & libc::O_CREAT != 0 && std::fs::metadata(&path).is_err();
        Some(Kind::Open {
            path,
            flags,
            created,
        })
    }

    /// Calls on a descriptor: the table, writes, syncs, sizes.
    fn fd_call(&mut self, tid: Pid, nr: i64, a: [u64; 6]) -> Option<Kind> {
        let fd = a[0] as i32;
        let done = |call| Some(Kind::Done(vec![call]));
        match nr {
            libc::SYS_close => {
                let fds = Rc::clone(&self.tasks.get(&tid)?.fds);
                let traced = fds.borrow().get(fd)?.traced;
                if traced {
                    return Some(Kind::Close { fd });
                }
                fds.borrow_mut().remove(fd);
                None
            }
            libc::SYS_close_range => Some(Kind::CloseRange {
                first: a[0] as u32 as i32,
                last: a[1].min(i32::MAX as u64) as i32,
                flags: a[2] as u32,
            }),
            libc::SYS_dup | libc::SYS_dup2 | libc::SYS_dup3 => Some(Kind::Dup {
                old: fd,
                entry: self.fd_entry(tid, fd)?,
                cloexec: nr == libc::SYS_dup3 && a[2] as i32 & libc::O_CLOEXEC != 0,
            }),
            libc::SYS_fcntl => self.fcntl(tid, fd, a[1] as i32, a[2]),
            libc::SYS_write if self.is_stdout(tid, fd) => Some(Kind::Stdout {
                bufs: vec![(a[1], a[2])],
            }),
            libc::SYS_writev if self.is_stdout(tid, fd) => Some(Kind::Stdout {
                bufs: mem::read_iovecs(tid, a[1], a[2]),
            }),
            libc::SYS_write | libc::SYS_pwrite64 => {
                let entry = self.traced_fd(tid, fd)?;
                let offset = write_offset(&entry, (nr == libc::SYS_pwrite64).then_some(a[3]));
                Some(Kind::Write {
                    fd,
                    entry,
                    bufs: vec![(a[1], a[2])],
                    offset,
                })
            }
            libc::SYS_writev | libc::SYS_pwritev | libc::SYS_pwritev2 => {
                let entry = self.traced_fd(tid, fd)?;
                let at = (nr != libc::SYS_writev && a[3] as i64 != -1).then_some(a[3]);
                let mut offset = write_offset(&entry, at);
                if nr == libc::SYS_pwritev2 && a[5] & RWF_APPEND != 0 {
                    offset = Offset::End;
                }
                Some(Kind::Write {
                    fd,
                    entry,
                    bufs: mem::read_iovecs(tid, a[1], a[2]),
                    offset,
                })
            }
            libc::SYS_copy_file_range | libc::SYS_splice => {
                let out = a[2] as i32;
                let entry = self.traced_fd(tid, out)?;
                let offset = if a[3] != 0 {
                    Offset::At(mem::read_u64(tid, a[3])?)
                } else {
                    write_offset(&entry, None)
                };
                Some(Kind::CopyInto {
                    fd: out,
                    entry,
                    offset,
                })
            }
            libc::SYS_sendfile => {
                let entry = self.traced_fd(tid, fd)?;
                let offset = write_offset(&entry, None);
                Some(Kind::CopyInto { fd, entry, offset })
            }
            libc::SYS_ftruncate => {
                let path = self.traced_fd(tid, fd)?.path;
                done(Call::Truncate {
                    path,
                    fd: Some(fd),
                    size: a[1],
                })
            }
            libc::SYS_fallocate => {
                let path = self.traced_fd(tid, fd)?.path;
                done(Call::Fallocate {
                    fd,
                    path,
                    mode: a[1] as i32,
                    offset: a[2],
                    len: a[3],
                })
            }
            libc::SYS_fsync | libc::SYS_fdatasync => {
                let path = self.traced_fd(tid, fd)?.path;
                done(Call::Fsync {
                    fd,
                    path,
                    data_only: nr == libc::SYS_fdatasync,
                })
            }
            libc::SYS_sync => done(Call::Sync),
            libc::SYS_syncfs => {
                let path = self.traced_fd(tid, fd)?.path;
                done(Call::Syncfs { fd, path })
            }
            libc::SYS_sync_file_range => {
                let path = self.traced_fd(tid, fd)?.path;
                done(Call::SyncFileRange {
                    fd,
                    path,
                    offset: a[1],
                    len: a[2],
                    flags: a[3] as u32,
                })
            }
            _ => None,
        }
    }

    fn fcntl(&mut self, tid: Pid, fd: i32, cmd: i32, arg: u64) -> Option<Kind> {
        match cmd {
            libc::F_DUPFD | libc::F_DUPFD_CLOEXEC => Some(Kind::Dup {
                old: fd,
                entry: self.fd_entry(tid, fd)?,
                cloexec: cmd == libc::F_DUPFD_CLOEXEC,
            }),
            libc::F_SETFL => {
                self.fd_entry(tid, fd)?;
                Some(Kind::SetFl {
                    fd,
                    flags: arg as i32,
                })
            }
            libc::F_SETFD => {
                self.fd_entry(tid, fd)?;
                Some(Kind::SetFd {
                    fd,
                    cloexec: arg as i32 & libc::FD_CLOEXEC != 0,
                })
            }
            _ => None,
        }
    }

    /// A path argument, resolved; `follow` for calls that follow a final symbolic link.
    fn path_arg(&self, tid: Pid, dirfd: u64, addr: u64, follow: bool) -> Option<PathBuf> {
        let raw = mem::read_cstr(tid, addr)?;
        mem::resolve(tid, dirfd as i32, &raw, follow)
    }

    /// Calls that name paths.
    fn path_call(&mut self, tid: Pid, nr: i64, a: [u64; 6]) -> Option<Kind> {
        const CWD: u64 = libc::AT_FDCWD as u64;
        let one = |p: PathBuf, call: Call| self.under_root(&p).then(|| Kind::Done(vec![call]));
        match nr {
            libc::SYS_truncate => {
                let path = self.path_arg(tid, CWD, a[0], true)?;
                one(
                    path.clone(),
                    Call::Truncate {
                        path,
                        fd: None,
                        size: a[1],
                    },
                )
            }
            libc::SYS_mkdir | libc::SYS_mkdirat => {
                let (d, p) = if nr == libc::SYS_mkdir {
                    (CWD, a[0])
                } else {
                    (a[0], a[1])
                };
                let path = self.path_arg(tid, d, p, false)?;
                one(path.clone(), Call::Mkdir { path })
            }
            libc::SYS_rmdir => {
                let path = self.path_arg(tid, CWD, a[0], false)?;
                one(path.clone(), Call::Rmdir { path })
            }
            libc::SYS_unlink => {
                let path = self.path_arg(tid, CWD, a[0], false)?;
                one(path.clone(), Call::Unlink { path })
            }
            libc::SYS_unlinkat => {
                let path = self.path_arg(tid, a[0], a[1], false)?;
                if a[2] as i32 & libc::AT_REMOVEDIR != 0 {
                    one(path.clone(), Call::Rmdir { path })
                } else {
                    one(path.clone(), Call::Unlink { path })
                }
            }
            libc::SYS_rename | libc::SYS_renameat | libc::SYS_renameat2 => {
                let (from, to) = if nr == libc::SYS_rename {
                    (
                        self.path_arg(tid, CWD, a[0], false)?,
                        self.path_arg(tid, CWD, a[1], false)?,
                    )
                } else {
                    (
                        self.path_arg(tid, a[0], a[1], false)?,
                        self.path_arg(tid, a[2], a[3], false)?,
                    )
                };
                let flags = if nr == libc::SYS_renameat2 {
                    a[4] as u32
                } else {
                    0
                };
                self.two_paths("rename", from, to, |from, to| Call::Rename {
                    from,
                    to,
                    flags,
                })
            }
            libc::SYS_link | libc::SYS_linkat => self.link(tid, nr, a),
            libc::SYS_symlink | libc::SYS_symlinkat => {
                let target = mem::lossy(&mem::read_cstr(tid, a[0])?);
                let path = if nr == libc::SYS_symlink {
                    self.path_arg(tid, CWD, a[1], false)?
                } else {
                    self.path_arg(tid, a[1], a[2], false)?
                };
                one(path.clone(), Call::Symlink { target, path })
            }
            libc::SYS_setxattr
            | libc::SYS_lsetxattr
            | libc::SYS_removexattr
            | libc::SYS_lremovexattr => {
                let path = self.path_arg(
                    tid,
                    CWD,
                    a[0],
                    nr == libc::SYS_setxattr || nr == libc::SYS_removexattr,
                )?;
                let kind = if nr == libc::SYS_setxattr || nr == libc::SYS_lsetxattr {
                    "setxattr"
                } else {
                    "removexattr"
                };
                one(path.clone(), unsupported(kind, Some(path)))
            }
            libc::SYS_mknod | libc::SYS_mknodat => {
                let path = if nr == libc::SYS_mknod {
                    self.path_arg(tid, CWD, a[0], false)?
                } else {
                    self.path_arg(tid, a[0], a[1], false)?
                };
                one(path.clone(), unsupported("mknod", Some(path)))
            }
            _ => None,
        }
    }

    fn link(&mut self, tid: Pid, nr: i64, a: [u64; 6]) -> Option<Kind> {
        const CWD: u64 = libc::AT_FDCWD as u64;
        if nr == libc::SYS_link {
            let from = self.path_arg(tid, CWD, a[0], false)?;
            let to = self.path_arg(tid, CWD, a[1], false)?;
            return self.two_paths("link", from, to, |from, to| Call::Link { from, to });
        }
        let to = self.path_arg(tid, a[2], a[3], false)?;
        let empty = mem::read_cstr(tid, a[1]).is_some_and(|s| s.is_empty());
        if a[4] as i32 & libc::AT_EMPTY_PATH != 0 && empty {
            let fd = a[0] as i32;
            let from = self.fd_entry(tid, fd)?;
            return self.two_paths("link", from.path, to, |_, new| Call::LinkFd { fd, new });
        }
        let from = self.path_arg(tid, a[0], a[1], a[4] as i32 & libc::AT_SYMLINK_FOLLOW != 0)?;
        self.two_paths("link", from, to, |from, to| Call::Link { from, to })
    }

    /// A call on two paths: recorded if both are under a root, unsupported if only one is.
    fn two_paths(
        &self,
        what: &str,
        from: PathBuf,
        to: PathBuf,
        call: impl FnOnce(PathBuf, PathBuf) -> Call,
    ) -> Option<Kind> {
        match (self.under_root(&from), self.under_root(&to)) {
            (true, true) => Some(Kind::Done(vec![call(from, to)])),
            (false, false) => None,
            (f, _) => {
                let kind = format!("{what} across root boundary");
                Some(Kind::Done(vec![unsupported(
                    &kind,
                    Some(if f { from } else { to }),
                )]))
            }
        }
    }

    /// mmap, msync, munmap, mremap; ioctl, the fd xattr calls, io_uring_setup.
    fn memory_and_misc(
        &mut self,
        tid: Pid,
        nr: i64,
        a: [u64; 6],
        before: &mut Vec<Call>,
    ) -> Option<Kind> {
        let maps = Rc::clone(&self.tasks.get(&tid)?.maps);
        let touches = maps.borrow().touches(a[0], a[1]);
        match nr {
            libc::SYS_mmap => {
                let (prot, flags, fd) = (a[2] as i32, a[3] as i32, a[4] as i32);
                let shared = matches!(flags & 0x0f, libc::MAP_SHARED | libc::MAP_SHARED_VALIDATE);
                let file =
                    if flags & libc::MAP_ANONYMOUS == 0 && shared && prot & libc::PROT_WRITE != 0 {
                        self.traced_fd(tid, fd).map(|e| (fd, e.path))
                    } else {
                        None
                    };
                let replaces =
                    (flags & libc::MAP_FIXED != 0 && touches).then_some((a[0], round_page(a[1])));
                if replaces.is_some() {
                    before.extend(maps.borrow_mut().flush(tid, Some((a[0], a[1]))));
                }
                (file.is_some() || replaces.is_some()).then_some(Kind::Mmap {
                    file,
                    offset: a[5],
                    len: round_page(a[1]),
                    replaces,
                })
            }
            libc::SYS_msync => touches.then_some(Kind::Msync {
                addr: a[0],
                len: a[1],
                flags: a[2] as i32,
            }),
            libc::SYS_munmap | libc::SYS_mremap => {
                if !touches {
                    return None;
                }
                before.extend(maps.borrow_mut().flush(tid, Some((a[0], a[1]))));
                let (addr, len) = (a[0], round_page(a[1]));
                Some(if nr == libc::SYS_munmap {
                    Kind::Munmap { addr, len }
                } else {
                    Kind::Mremap { addr, len }
                })
            }
            libc::SYS_ioctl => {
                let (_, name) = IOCTLS.iter().find(|(req, _)| *req == a[1] & 0xffff_ffff)?;
                let path = self.traced_fd(tid, a[0] as i32)?.path;
                Some(Kind::Done(vec![unsupported(name, Some(path))]))
            }
            libc::SYS_fsetxattr | libc::SYS_fremovexattr => {
                let path = self.traced_fd(tid, a[0] as i32)?.path;
                let kind = if nr == libc::SYS_fsetxattr {
                    "setxattr"
                } else {
                    "removexattr"
                };
                Some(Kind::Done(vec![unsupported(kind, Some(path))]))
            }
            libc::SYS_io_uring_setup => Some(Kind::Done(vec![unsupported("io_uring_setup", None)])),
            _ => None,
        }
    }
}

/// Where a write through `entry` lands, given the pwrite offset if any. Linux's pwrite on an
/// O_APPEND descriptor appends.
fn write_offset(entry: &FdEntry, at: Option<u64>) -> Offset {
    match at {
        Some(_) if entry.flags & libc::O_APPEND != 0 => Offset::End,
        Some(o) => Offset::At(o),
        None => Offset::Pos,
    }
}

fn unsupported(kind: &str, path: Option<PathBuf>) -> Call {
    Call::Unsupported {
        kind: kind.to_string(),
        path,
    }
}
