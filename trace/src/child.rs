//! The traced child: the seccomp filter (built with seccompiler before the fork, so that the
//! child only installs it) and the fork that sets up tracing and runs the command.

use std::collections::BTreeMap;
use std::ffi::{CString, OsString};
use std::os::unix::ffi::OsStrExt;

use nix::sys::signal::{raise, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use seccompiler::{BpfProgram, SeccompAction, SeccompFilter};

use crate::TraceError;

/// The system calls that stop the tracee (`SECCOMP_RET_TRACE`); every other call runs without
/// the tracer seeing it.
pub(crate) const TRACED: &[i64] = &[
    libc::SYS_open,
    libc::SYS_openat,
    libc::SYS_openat2,
    libc::SYS_creat,
    libc::SYS_close,
    libc::SYS_close_range,
    libc::SYS_dup,
    libc::SYS_dup2,
    libc::SYS_dup3,
    libc::SYS_fcntl,
    libc::SYS_write,
    libc::SYS_pwrite64,
    libc::SYS_writev,
    libc::SYS_pwritev,
    libc::SYS_pwritev2,
    libc::SYS_truncate,
    libc::SYS_ftruncate,
    libc::SYS_fallocate,
    libc::SYS_mkdir,
    libc::SYS_mkdirat,
    libc::SYS_rmdir,
    libc::SYS_unlink,
    libc::SYS_unlinkat,
    libc::SYS_rename,
    libc::SYS_renameat,
    libc::SYS_renameat2,
    libc::SYS_link,
    libc::SYS_linkat,
    libc::SYS_symlink,
    libc::SYS_symlinkat,
    libc::SYS_fsync,
    libc::SYS_fdatasync,
    libc::SYS_sync,
    libc::SYS_syncfs,
    libc::SYS_sync_file_range,
    libc::SYS_mmap,
    libc::SYS_msync,
    libc::SYS_munmap,
    libc::SYS_mremap,
    libc::SYS_copy_file_range,
    libc::SYS_sendfile,
    libc::SYS_splice,
    libc::SYS_execve,
    libc::SYS_execveat,
    libc::SYS_ioctl,
    libc::SYS_setxattr,
    libc::SYS_lsetxattr,
    libc::SYS_fsetxattr,
    libc::SYS_removexattr,
    libc::SYS_lremovexattr,
    libc::SYS_fremovexattr,
    libc::SYS_mknod,
    libc::SYS_mknodat,
    libc::SYS_io_uring_setup,
];

/// The filter: `Trace` for [`TRACED`], `Allow` for the rest (seccompiler also kills a process
/// that calls with another architecture's convention, e.g. int 0x80).
pub(crate) fn filter() -> Result<BpfProgram, TraceError> {
    let rules = TRACED
        .iter()
        .map(|&nr| (nr, vec![]))
        .collect::<BTreeMap<_, _>>();
    let arch = std::env::consts::ARCH
        .try_into()
        .map_err(|e: seccompiler::BackendError| TraceError::Filter(e.to_string()))?;
    let filter = SeccompFilter::new(rules, SeccompAction::Allow, SeccompAction::Trace(0), arch)
        .map_err(|e| TraceError::Filter(e.to_string()))?;
    filter
        .try_into()
        .map_err(|e: seccompiler::BackendError| TraceError::Filter(e.to_string()))
}

/// The command as `execvp` wants it, built before the fork so that the child does not allocate.
pub(crate) struct Argv {
    args: Vec<CString>,
    ptrs: Vec<*const libc::c_char>,
}

impl Argv {
    pub(crate) fn new(cmd: &[OsString]) -> Result<Argv, TraceError> {
        let args = cmd
            .iter()
            .map(|a| CString::new(a.as_bytes()).map_err(|_| TraceError::Nul(a.clone())))
            .collect::<Result<Vec<_>, _>>()?;
        let mut ptrs: Vec<_> = args.iter().map(|a| a.as_ptr()).collect();
        ptrs.push(std::ptr::null());
        Ok(Argv { args, ptrs })
    }
}

/// Forks the child, waits for its `SIGSTOP` (it is then traced) and sets the ptrace options.
/// The child then installs the filter and runs the command once resumed.
pub(crate) fn spawn(
    argv: &Argv,
    filter: &BpfProgram,
    stdout_to_stderr: bool,
) -> Result<Pid, TraceError> {
    let parent = nix::unistd::getpid();
    let pid = fork_child(argv, filter, parent, stdout_to_stderr)?;
    let ptrace_err = |what| move |err| TraceError::Ptrace { what, err };
    let status = waitpid(pid, Some(WaitPidFlag::__WALL | WaitPidFlag::__WNOTHREAD))
        .map_err(ptrace_err("waiting for the child"))?;
    match status {
        WaitStatus::Stopped(_, Signal::SIGSTOP) => {}
        other => return Err(TraceError::Setup(format!("{other:?}"))),
    }
    use nix::sys::ptrace::Options as O;
    let options = O::PTRACE_O_TRACESECCOMP
        | O::PTRACE_O_TRACESYSGOOD
        | O::PTRACE_O_TRACEFORK
        | O::PTRACE_O_TRACEVFORK
        | O::PTRACE_O_TRACECLONE
        | O::PTRACE_O_TRACEEXEC
        | O::PTRACE_O_TRACEEXIT
        | O::PTRACE_O_EXITKILL;
    if let Err(err) = nix::sys::ptrace::setoptions(pid, options) {
        let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
        let _ = waitpid(pid, Some(WaitPidFlag::__WALL | WaitPidFlag::__WNOTHREAD));
        return Err(TraceError::Ptrace {
            what: "setting the ptrace options",
            err,
        });
    }
    Ok(pid)
}

#[allow(
    unsafe_code,
    reason = "fork, and in the child only async-signal-safe calls until execvp"
)]
fn fork_child(
    argv: &Argv,
    filter: &BpfProgram,
    parent: Pid,
    stdout_to_stderr: bool,
) -> Result<Pid, TraceError> {
    // SAFETY: the child calls only async-signal-safe functions (setpgid, prctl, dup2, ptrace,
    // getppid, raise, seccomp, execvp, _exit) on memory allocated before the fork, and never returns.
    match unsafe { nix::unistd::fork() }.map_err(TraceError::Spawn)? {
        nix::unistd::ForkResult::Parent { child } => Ok(child),
        nix::unistd::ForkResult::Child => unsafe {
            // SAFETY (whole block): see above; `argv.ptrs` is a NULL-terminated array of
            // pointers into `argv.args`, alive for the duration of the call.
            libc::setpgid(0, 0);
            if stdout_to_stderr {
                libc::dup2(2, 1);
            }
            libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            );
            if libc::getppid() != parent.as_raw()
                || libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0) != 0
                || raise(Signal::SIGSTOP).is_err()
                // apply_filter sets PR_SET_NO_NEW_PRIVS first.
                || seccompiler::apply_filter(filter).is_err()
            {
                libc::_exit(126);
            }
            libc::execvp(argv.args[0].as_ptr(), argv.ptrs.as_ptr());
            libc::_exit(127)
        },
    }
}
