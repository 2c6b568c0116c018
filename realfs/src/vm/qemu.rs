//! Booting a guest in qemu with its disk behind `blklogwrites`, and making sure qemu dies.
//!
//! No qemu outlives its caller: qemu runs in its own process group (so a Ctrl-C at the
//! terminal reaches the caller, not qemu, and the whole group can be killed at once); a
//! [`QemuGuard`] kills that group when [`boot`] returns, panics or times out; and the child
//! asks the kernel for `SIGKILL` when its parent dies (`prctl(PR_SET_PDEATHSIG)` in
//! `pre_exec`), which covers the caller being killed outright, where no destructor runs.
//! `PR_SET_PDEATHSIG` fires when the *thread* that spawned qemu exits; [`boot`] waits for qemu
//! on that same thread, so this is the caller's lifetime.

use super::{GuestKernel, VmError, BEGIN_MARKER, END_MARKER};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The qemu binary, unless `UNPLUG_QEMU` names another.
pub(crate) const QEMU: &str = "qemu-system-x86_64";

/// One guest boot: what to boot and the disk to log.
#[derive(Clone, Debug)]
pub struct Boot {
    /// The kernel (its `vmlinux` is booted directly, PVH).
    pub kernel: GuestKernel,
    /// The initramfs, from [`super::build_initramfs`].
    pub initramfs: PathBuf,
    /// The raw disk image the guest sees as `/dev/vda` (written in place).
    pub disk: PathBuf,
    /// The `blklogwrites` log: created empty (truncated) before the boot.
    pub log: PathBuf,
    /// Guest memory.
    pub memory_mib: u32,
    /// Wall-clock limit from qemu's start; qemu is killed past it.
    pub timeout: Duration,
    /// Appended to the kernel command line (e.g. `loglevel=7` instead of the default `quiet`).
    pub cmdline_extra: String,
}

impl Boot {
    /// A boot with 256 MiB of memory, a 120 s timeout and no extra command line.
    pub fn new(kernel: GuestKernel, initramfs: &Path, disk: &Path, log: &Path) -> Self {
        Boot {
            kernel,
            initramfs: initramfs.to_path_buf(),
            disk: disk.to_path_buf(),
            log: log.to_path_buf(),
            memory_mib: 256,
            timeout: Duration::from_secs(120),
            cmdline_extra: String::new(),
        }
    }
}

/// What a guest that ran to its end marker left.
#[derive(Clone, Debug)]
pub struct GuestRun {
    /// Everything the guest wrote to its serial console (kernel messages included), with
    /// `\n` line ends (the console's `\r\n` translated back).
    pub serial: String,
    /// From qemu's start to its exit.
    pub elapsed: Duration,
    /// The guest kernel's release.
    pub kernel_version: String,
    /// The exit status of `/guest-cmd`.
    pub status: i32,
}

impl GuestRun {
    /// The serial output between the begin and end markers: what `/guest-cmd` printed (and
    /// any kernel message printed meanwhile).
    pub fn output(&self) -> &str {
        let start = self
            .serial
            .find(BEGIN_MARKER)
            .map_or(0, |i| i + BEGIN_MARKER.len());
        let start = self.serial[start..]
            .find('\n')
            .map_or(start, |i| start + i + 1);
        let end = self.serial[start..]
            .find(END_MARKER)
            .map_or(self.serial.len(), |i| start + i);
        &self.serial[start..end]
    }
}

/// The accelerator: TCG unless `UNPLUG_QEMU_ACCEL` says `kvm`. KVM is not probed: on nested
/// machines such as the one this was measured on, `/dev/kvm` exists but a KVM guest aborts or
/// crawls (see REALFS.md), while TCG boots in about 5 s.
fn accel() -> Result<&'static str, VmError> {
    match std::env::var("UNPLUG_QEMU_ACCEL") {
        Err(_) => Ok("tcg"),
        Ok(v) if v == "tcg" => Ok("tcg"),
        Ok(v) if v == "kvm" => Ok("kvm"),
        Ok(v) => Err(VmError::BadEnv {
            var: "UNPLUG_QEMU_ACCEL",
            value: v,
            expected: "tcg or kvm",
        }),
    }
}

/// The qemu command line of `b`, with the serial console going to `serial`.
pub(crate) fn qemu_args(b: &Boot, serial: &Path) -> Result<Vec<String>, VmError> {
    let accel = accel()?;
    let cpu = if accel == "kvm" { "host" } else { "max" };
    let mut cmdline = String::from("console=ttyS0 quiet panic=-1 rdinit=/init");
    if !b.cmdline_extra.is_empty() {
        cmdline.push(' ');
        cmdline.push_str(&b.cmdline_extra);
    }
    let path = |p: &Path| -> Result<String, VmError> {
        let s = p
            .to_str()
            .ok_or_else(|| VmError::BadPath(p.to_path_buf()))?;
        // qemu's option syntax splits on commas (`,,` escapes one).
        Ok(s.replace(',', ",,"))
    };
    Ok(vec![
        "-accel".into(),
        accel.into(),
        "-cpu".into(),
        cpu.into(),
        "-M".into(),
        "pc".into(),
        "-nodefaults".into(),
        "-no-reboot".into(),
        "-display".into(),
        "none".into(),
        "-m".into(),
        b.memory_mib.to_string(),
        "-kernel".into(),
        b.kernel
            .vmlinux
            .to_str()
            .ok_or_else(|| VmError::BadPath(b.kernel.vmlinux.clone()))?
            .into(),
        "-initrd".into(),
        b.initramfs
            .to_str()
            .ok_or_else(|| VmError::BadPath(b.initramfs.clone()))?
            .into(),
        "-append".into(),
        cmdline,
        "-serial".into(),
        format!(
            "file:{}",
            serial
                .to_str()
                .ok_or_else(|| VmError::BadPath(serial.to_path_buf()))?
        ),
        "-blockdev".into(),
        format!("driver=file,node-name=disk0,filename={}", path(&b.disk)?),
        "-blockdev".into(),
        format!("driver=file,node-name=log0,filename={}", path(&b.log)?),
        "-blockdev".into(),
        "driver=blklogwrites,node-name=lw0,file=disk0,log=log0,log-sector-size=512".into(),
        "-device".into(),
        "virtio-blk-pci,drive=lw0".into(),
    ])
}

/// Kills qemu's process group (and reaps qemu) when dropped, unless qemu has been reaped.
pub type QemuGuard = crate::child::Guard;

/// The last `lines` lines of `text`.
fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Boots `b` and waits for the guest to power off: the guest's `/init` runs `/guest-cmd` and
/// prints the end marker with its status. Fails if qemu cannot start, exits with an error, runs
/// past `b.timeout` (it is killed), or exits without the end marker; each error carries the
/// serial output's tail. The serial console and qemu's own output go to hidden files next to
/// `b.log` (`.unplug-vm-<pid>-<n>.*`), removed before returning.
pub fn boot(b: &Boot) -> Result<GuestRun, VmError> {
    std::fs::File::create(&b.log).map_err(|source| VmError::Io {
        what: "creating the write log",
        path: b.log.clone(),
        source,
    })?;
    for (what, path) in [
        ("the guest kernel", &b.kernel.vmlinux),
        ("the initramfs", &b.initramfs),
        ("the disk image", &b.disk),
    ] {
        if !path.is_file() {
            return Err(VmError::Missing {
                what,
                path: path.clone(),
            });
        }
    }
    let dir = b.log.parent().unwrap_or(Path::new("."));
    let serial = tempfile_in(dir, "serial");
    let qemu_log = tempfile_in(dir, "qemu-stderr");
    let cleanup = TempFiles(vec![serial.clone(), qemu_log.clone()]);
    let stderr = std::fs::File::create(&qemu_log).map_err(|source| VmError::Io {
        what: "creating",
        path: qemu_log.clone(),
        source,
    })?;
    let qemu = std::env::var("UNPLUG_QEMU").unwrap_or_else(|_| QEMU.to_string());
    let mut cmd = Command::new(&qemu);
    cmd.args(qemu_args(b, &serial)?)
        .stdin(Stdio::null())
        .stdout(stderr.try_clone().map_err(|source| VmError::Io {
            what: "duplicating",
            path: qemu_log.clone(),
            source,
        })?)
        .stderr(stderr);
    crate::child::contain(&mut cmd);
    let start = Instant::now();
    let child = cmd.spawn().map_err(|source| VmError::Spawn {
        program: qemu.clone(),
        source,
    })?;
    let mut guard = QemuGuard::new(child);
    let status = loop {
        match guard.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(source) => {
                return Err(VmError::Spawn {
                    program: qemu,
                    source,
                })
            }
        }
        if start.elapsed() > b.timeout {
            guard.kill();
            let serial = read_lossy(&serial);
            return Err(VmError::Timeout {
                timeout: b.timeout,
                serial_tail: tail(&serial, 30),
            });
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let elapsed = start.elapsed();
    let serial_text = read_lossy(&serial);
    let stderr_text = read_lossy(&qemu_log);
    drop(cleanup);
    if !status.success() {
        return Err(VmError::QemuFailed {
            status: status.to_string(),
            stderr: stderr_text,
            serial_tail: tail(&serial_text, 30),
        });
    }
    let Some(at) = serial_text.rfind(END_MARKER) else {
        return Err(VmError::NoEndMarker {
            serial_tail: tail(&serial_text, 30),
        });
    };
    let rest = &serial_text[at + END_MARKER.len()..];
    let digits: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '-')
        .collect();
    let status = digits.parse().map_err(|_| VmError::NoEndMarker {
        serial_tail: tail(&serial_text, 30),
    })?;
    Ok(GuestRun {
        serial: serial_text,
        elapsed,
        kernel_version: b.kernel.version.clone(),
        status,
    })
}

/// A file's text (lossy UTF-8; empty if unreadable), with the serial console's `\r\n` line
/// ends made `\n`.
fn read_lossy(path: &Path) -> String {
    String::from_utf8_lossy(&std::fs::read(path).unwrap_or_default()).replace("\r\n", "\n")
}

/// A fresh file name in `dir` (the file is not created).
fn tempfile_in(dir: &Path, what: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    dir.join(format!(".unplug-vm-{}-{n}.{what}", std::process::id()))
}

/// Removes its files when dropped.
struct TempFiles(Vec<PathBuf>);

impl Drop for TempFiles {
    fn drop(&mut self) {
        for path in &self.0 {
            let _ = std::fs::remove_file(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_what_lies_between_the_markers() {
        let run = GuestRun {
            serial: format!("boot\n{BEGIN_MARKER}\nhello\nworld\n{END_MARKER}0\n"),
            elapsed: Duration::ZERO,
            kernel_version: String::new(),
            status: 0,
        };
        assert_eq!(run.output(), "hello\nworld\n");
    }

    #[test]
    fn commas_in_paths_are_escaped_for_blockdev() {
        let kernel = GuestKernel {
            version: "v".into(),
            vmlinux: "/k/vmlinux".into(),
            modules: "/k/lib/modules/v".into(),
        };
        let b = Boot::new(
            kernel,
            Path::new("/i"),
            Path::new("/a,b.img"),
            Path::new("/l"),
        );
        let args = qemu_args(&b, Path::new("/s")).unwrap();
        assert!(args.contains(&"driver=file,node-name=disk0,filename=/a,,b.img".to_string()));
    }
}
