//! The vm backend's plumbing: boot a Debian guest kernel in qemu with one disk attached through
//! qemu's `blklogwrites` driver (every guest write lands, with its FLUSH/FUA flags, in a log
//! file on the host), run a command inside the guest, collect its serial output, power off.
//!
//! The pieces, in the order a run uses them:
//! 1. [`find_kernel`]: the guest kernel that `scripts/guest-kernel` prepared (Debian's current
//!    `linux-image-*-amd64`, its `vmlinux` extracted for a fast PVH boot, `depmod` run).
//! 2. [`modules_for`]: the modules a file system needs, in load order, from `modules.dep` and
//!    friends (parsed here; nothing runs `modprobe`).
//! 3. [`build_initramfs`]: a newc cpio with busybox, those modules, a generated `/init` and the
//!    caller's files, among them `/guest-cmd`, the shell script the guest runs (typically
//!    `/unplug __guest ...`, with the binary of [`static_binary`]).
//! 4. [`boot`]: qemu (TCG by default; see [`qemu`] for `UNPLUG_QEMU_ACCEL`), its serial console
//!    in a file, killed on timeout, on drop and when the caller dies.
//!
//! Environment: `UNPLUG_KERNEL_DIR` (the kernel cache, see [`kernel_dir`]), `UNPLUG_STATIC_BIN`
//! (a prebuilt static `unplug`), `UNPLUG_QEMU` (the qemu binary), `UNPLUG_QEMU_ACCEL`
//! (`tcg`, the default, or `kvm`).

mod initramfs;
mod modules;
pub mod qemu;

pub use initramfs::{build_initramfs, init_script, Cpio, BUSYBOX};
pub use modules::modules_for;
pub use qemu::{boot, Boot, GuestRun, QemuGuard};

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Printed by `/init` on the serial console just before it runs `/guest-cmd`.
pub(crate) const BEGIN_MARKER: &str = "=== unplug-guest: begin ===";
/// Printed by `/init` after `/guest-cmd`, followed by its exit status and a newline. A serial
/// log without it means the guest did not finish (panic, hang, crash).
pub(crate) const END_MARKER: &str = "=== unplug-guest: end, status ";

/// Why the vm backend failed.
#[derive(Debug, thiserror::Error)]
pub enum VmError {
    /// No prepared guest kernel.
    #[error("no guest kernel in {}: run scripts/guest-kernel (it downloads Debian's kernel package with apt and prepares it there){}", dir.display(), detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    NoKernel {
        /// The cache directory looked in.
        dir: PathBuf,
        /// What was missing or wrong, if more than the directory.
        detail: Option<String>,
    },
    /// A file system the vm backend does not know.
    #[error("unknown file system {0:?}: expected ext4, xfs or btrfs")]
    UnknownFs(String),
    /// A module name that modules.dep, modules.alias and modules.builtin do not know.
    #[error("kernel module {0:?} is not in modules.dep, modules.alias or modules.builtin")]
    UnknownModule(String),
    /// An I/O error, with what was being done and on which path.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// The path it was done on.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A compressed module that its decompressor could not read.
    #[error("decompressing {} with {tool}: {stderr}", path.display())]
    Decompress {
        /// The module.
        path: PathBuf,
        /// The decompressor run.
        tool: &'static str,
        /// What it said.
        stderr: String,
    },
    /// The caller's files lack `/guest-cmd`.
    #[error("the initramfs files must include /guest-cmd, the script the guest runs")]
    NoGuestCmd,
    /// A guest path that is not absolute, names a directory or climbs with `..`.
    #[error("bad guest path {0:?}: expected an absolute file path without ..")]
    BadGuestPath(String),
    /// A host path qemu cannot be given (not UTF-8).
    #[error("path {} is not UTF-8: qemu cannot be given it", .0.display())]
    BadPath(PathBuf),
    /// An input file that does not exist.
    #[error("{what} {} does not exist", path.display())]
    Missing {
        /// Which input.
        what: &'static str,
        /// Its path.
        path: PathBuf,
    },
    /// A program that could not be started or waited for.
    #[error("running {program}: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// qemu exited with an error.
    #[error("qemu failed ({status}): {stderr}\nserial console tail:\n{serial_tail}")]
    QemuFailed {
        /// Its exit status.
        status: String,
        /// Its standard error and output.
        stderr: String,
        /// The end of the guest's serial output.
        serial_tail: String,
    },
    /// The guest ran past the timeout and was killed.
    #[error("the guest did not power off within {timeout:?}; killed. serial console tail:\n{serial_tail}")]
    Timeout {
        /// The timeout.
        timeout: Duration,
        /// The end of the guest's serial output.
        serial_tail: String,
    },
    /// The guest powered off without printing the end marker.
    #[error("the guest stopped without its end marker (kernel panic or /init failure). serial console tail:\n{serial_tail}")]
    NoEndMarker {
        /// The end of the guest's serial output.
        serial_tail: String,
    },
    /// An environment variable with a value that means nothing.
    #[error("{var}={value:?}: expected {expected}")]
    BadEnv {
        /// The variable.
        var: &'static str,
        /// Its value.
        value: String,
        /// What it may be.
        expected: &'static str,
    },
    /// Building the static `unplug` binary failed.
    #[error("building the static unplug binary ({command}) failed: {detail}")]
    StaticBuild {
        /// The command run.
        command: String,
        /// Its status and the end of its output.
        detail: String,
    },
}

/// A guest kernel prepared by `scripts/guest-kernel`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GuestKernel {
    /// The kernel release (`uname -r` in the guest), e.g. `6.1.0-56-amd64`.
    pub version: String,
    /// The uncompressed ELF kernel, which qemu boots directly (PVH).
    pub vmlinux: PathBuf,
    /// `lib/modules/<version>`, with the files `depmod` wrote.
    pub modules: PathBuf,
}

/// The kernel cache directory: `$UNPLUG_KERNEL_DIR` if set, else
/// `$XDG_CACHE_HOME/unplug/kernel`, else `$HOME/.cache/unplug/kernel` (the order
/// `scripts/guest-kernel` uses when given no argument).
pub fn kernel_dir() -> PathBuf {
    let var = |name| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = var("UNPLUG_KERNEL_DIR") {
        return PathBuf::from(dir);
    }
    let cache = var("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| var("HOME").map(|h| Path::new(&h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".cache"));
    cache.join("unplug").join("kernel")
}

/// The guest kernel that `scripts/guest-kernel` prepared in [`kernel_dir`]: the directory that
/// `current` points to, holding `release`, `vmlinux` and `lib/modules/<release>/modules.dep`.
pub fn find_kernel() -> Result<GuestKernel, VmError> {
    find_kernel_in(&kernel_dir())
}

/// [`find_kernel`] in a given cache directory.
pub fn find_kernel_in(dir: &Path) -> Result<GuestKernel, VmError> {
    let missing = |detail: String| VmError::NoKernel {
        dir: dir.to_path_buf(),
        detail: Some(detail),
    };
    if !dir.is_dir() {
        return Err(VmError::NoKernel {
            dir: dir.to_path_buf(),
            detail: None,
        });
    }
    let current = dir.join("current");
    let release_file = current.join("release");
    let version = std::fs::read_to_string(&release_file)
        .map_err(|e| missing(format!("{}: {e}", release_file.display())))?
        .trim()
        .to_string();
    if version.is_empty() || version.contains('/') {
        return Err(missing(format!(
            "{} names no release",
            release_file.display()
        )));
    }
    let vmlinux = current.join("vmlinux");
    let modules = current.join("lib/modules").join(&version);
    for path in [&vmlinux, &modules.join("modules.dep")] {
        if !path.is_file() {
            return Err(missing(format!("{} is missing", path.display())));
        }
    }
    // Resolve `current` now, so that a later run of the script does not change this kernel
    // under the caller's feet.
    let resolve = |p: PathBuf| std::fs::canonicalize(&p).unwrap_or(p);
    Ok(GuestKernel {
        version,
        vmlinux: resolve(vmlinux),
        modules: resolve(modules),
    })
}

/// The workspace root, from this crate's manifest directory at compile time.
pub(crate) fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// How the guest's `unplug` is built: statically linked, and without debug information (the
/// guest unpacks its initramfs into 256 MiB of memory; with debug information the binary is
/// 75 MB and the archive no longer fits). scripts/test builds it with the same flags.
pub const STATIC_RUSTFLAGS: &str = "-C target-feature=+crt-static -C strip=debuginfo";

/// A statically linked `unplug` binary to put in the guest: `$UNPLUG_STATIC_BIN` if set, else
/// the one built (or brought up to date) by
/// `cargo build --release --bin unplug --target x86_64-unknown-linux-gnu` with
/// `RUSTFLAGS=`[`STATIC_RUSTFLAGS`] and `CARGO_TARGET_DIR=<workspace>/target/static`
/// (its own target directory, so that it neither invalidates nor waits on the usual build).
/// Cargo is `$CARGO` (set when running under cargo) or `cargo`.
pub fn static_binary() -> Result<PathBuf, VmError> {
    if let Some(bin) = std::env::var_os("UNPLUG_STATIC_BIN").filter(|v| !v.is_empty()) {
        let bin = PathBuf::from(bin);
        if !bin.is_file() {
            return Err(VmError::Missing {
                what: "UNPLUG_STATIC_BIN",
                path: bin,
            });
        }
        return Ok(bin);
    }
    let root = workspace_root();
    let target_dir = root.join("target/static");
    let target = "x86_64-unknown-linux-gnu";
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let args = [
        "build",
        "--release",
        "--quiet",
        "--bin",
        "unplug",
        "--target",
        target,
    ];
    let command = format!(
        "RUSTFLAGS='{STATIC_RUSTFLAGS}' CARGO_TARGET_DIR={} {cargo} {}",
        target_dir.display(),
        args.join(" ")
    );
    let out = Command::new(&cargo)
        .args(args)
        .current_dir(&root)
        .env("RUSTFLAGS", STATIC_RUSTFLAGS)
        .env("CARGO_TARGET_DIR", &target_dir)
        .output()
        .map_err(|source| VmError::Spawn {
            program: cargo.clone(),
            source,
        })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(VmError::StaticBuild {
            command,
            detail: format!("{}: {}", out.status, output_tail(&stderr)),
        });
    }
    let bin = target_dir.join(target).join("release/unplug");
    if !bin.is_file() {
        return Err(VmError::StaticBuild {
            command,
            detail: format!("{} was not produced", bin.display()),
        });
    }
    Ok(bin)
}

fn output_tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}
