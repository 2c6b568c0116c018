//! Child processes that must not outlive unplug: qemu and qemu-storage-daemon.
//!
//! A child is put in its own process group, so that the Ctrl-C a terminal sends to unplug's group
//! does not kill it before unplug has unmounted and detached what depends on it (a FUSE export
//! under a mounted loop device); and it gets `PR_SET_PDEATHSIG(SIGKILL)`, so that it dies with
//! unplug even when unplug is killed outright and no destructor runs. A [`Guard`] kills the
//! group when dropped.

use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};

/// Sets up `cmd` as described in the module doc; spawn it and wrap the child in a [`Guard`].
pub fn contain(cmd: &mut Command) {
    cmd.process_group(0);
    let parent = std::process::id();
    // SAFETY: the closure runs in the forked child before exec and calls only async-signal-safe
    // functions (prctl, getppid, _exit).
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ) != 0
            {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died between fork and prctl: then nobody would kill us.
            if libc::getppid() as u32 != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
}

/// Kills a contained child's process group (and reaps the child) when dropped.
pub struct Guard {
    child: Option<Child>,
}

impl Guard {
    pub fn new(child: Child) -> Guard {
        Guard { child: Some(child) }
    }

    /// The child, while it has not been reaped.
    pub fn child(&mut self) -> Option<&mut Child> {
        self.child.as_mut()
    }

    /// Reaps the child if it has exited (then the guard has nothing left to kill).
    pub fn try_wait(&mut self) -> io::Result<Option<std::process::ExitStatus>> {
        let Some(child) = self.child.as_mut() else {
            return Ok(None);
        };
        let status = child.try_wait()?;
        if status.is_some() {
            self.child = None;
        }
        Ok(status)
    }

    /// Asks the child to stop with `signal`, waits for it, and returns its status.
    pub fn stop(&mut self, signal: i32) -> io::Result<Option<std::process::ExitStatus>> {
        match self.child.take() {
            Some(mut child) => {
                if let Ok(pid) = i32::try_from(child.id()) {
                    // SAFETY: kill(2) on our own child's pid; no memory is involved.
                    unsafe { libc::kill(pid, signal) };
                }
                child.wait().map(Some)
            }
            None => Ok(None),
        }
    }

    /// Asks the whole group to stop (SIGTERM), so that its processes can clean up after
    /// themselves, and kills it if it is still there after `grace`; reaps the child.
    pub fn terminate(&mut self, grace: std::time::Duration) {
        let Some(child) = self.child.as_mut() else {
            return;
        };
        if let Ok(pid) = i32::try_from(child.id()) {
            // SAFETY: kill(2) with a negative pid signals a process group; no memory is
            // involved.
            unsafe { libc::kill(-pid, libc::SIGTERM) };
        }
        let start = std::time::Instant::now();
        while start.elapsed() < grace {
            if matches!(self.try_wait(), Ok(Some(_)) | Err(_)) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        // A leader still running is killed with its group (once reaped, its pid may name
        // another group: nothing is sent then).
        self.kill();
    }

    /// Kills the whole group and reaps the child.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // The child is its group's leader: its pid is the group id.
            if let Ok(pid) = i32::try_from(child.id()) {
                // SAFETY: kill(2) with a negative pid signals a process group; no memory is
                // involved.
                unsafe { libc::kill(-pid, libc::SIGKILL) };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Ctrl-C and SIGTERM: [`install`] makes them set a flag that long work polls with
/// [`interrupted`], so that it stops between steps and its guards clean up (unmount, detach,
/// stop children, remove temporary files). A second signal exits at once.
pub mod interrupt {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, OnceLock};

    static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();

    /// Installs the handlers (once; later calls do nothing).
    pub fn install() -> std::io::Result<()> {
        if FLAG.get().is_some() {
            return Ok(());
        }
        let flag = Arc::new(AtomicBool::new(false));
        for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            // The second signal, with the flag already set, exits with status 130.
            signal_hook::flag::register_conditional_shutdown(sig, 130, Arc::clone(&flag))?;
            signal_hook::flag::register(sig, Arc::clone(&flag))?;
        }
        let _ = FLAG.set(flag);
        Ok(())
    }

    /// Whether Ctrl-C or SIGTERM arrived since [`install`].
    pub fn interrupted() -> bool {
        FLAG.get().is_some_and(|f| f.load(Ordering::Relaxed))
    }
}
