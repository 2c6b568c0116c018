//! Recovering a crash image with the real kernel: attach it to a loop device, mount it (the
//! kernel replays the journal or log at mount: that is the recovery), run a closure on the
//! mounted tree, and clean up.
//!
//! Everything is done with system calls (`/dev/loop-control`, the loop ioctls, mount(2),
//! umount2(2)); no process is spawned, so that many images can be checked per second from
//! several threads at once. The loop device is configured with `LO_FLAGS_AUTOCLEAR`, so the
//! kernel detaches it when the last user (the mount, then our descriptor) goes away, and a guard
//! unmounts, closes and removes the mount point on every path out, a panic in the closure
//! included.
//!
//! File-system notes, measured on Linux 6.18:
//! - xfs refuses to mount a second file system with the UUID of a mounted one: pass `nouuid` in
//!   the options when images of one base may be mounted at once.
//! - btrfs: images of one base share an fsid. Since Linux 6.7 btrfs mounts such single-device
//!   clones side by side (it gives the second a temporary fsid), which the tests check; on an
//!   older kernel the second mount fails with `EBUSY` and callers must serialise btrfs mounts.

use rustix::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use rustix::fs::{Mode, OFlags};
use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Why an image could not be recovered, or cleaned up after.
#[derive(Debug, thiserror::Error)]
pub enum RecoverError {
    /// The image could not be opened read-write.
    #[error("opening image {}: {source}", path.display())]
    Image {
        /// The image.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The mount point could not be made.
    #[error("making mount point {}: {source}", path.display())]
    MountPoint {
        /// The directory.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// A loop device operation failed.
    #[error("loop device ({op}): {source}")]
    Loop {
        /// The operation (`open /dev/loop-control`, `LOOP_CTL_GET_FREE`, `LOOP_CONFIGURE`, ...).
        op: &'static str,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The kernel refused the mount (or its recovery failed); `source.raw_os_error()` is the
    /// errno.
    #[error("mounting {} ({fstype}, options {options:?}): {source}", device.display())]
    Mount {
        /// The loop device.
        device: PathBuf,
        /// The file-system type.
        fstype: String,
        /// The options passed.
        options: String,
        /// The kernel's error.
        #[source]
        source: io::Error,
    },
    /// The file system could not be unmounted (it was then detached lazily).
    #[error("unmounting {}: {source}", dir.display())]
    Umount {
        /// The mount point.
        dir: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The type or options hold a NUL byte.
    #[error("bad argument: {0:?} holds a NUL byte")]
    BadArgument(String),
}

// The loop device interface (linux/loop.h); neither libc nor rustix 0.38 has it.
const LOOP_SET_FD: libc::c_ulong = 0x4C00;
const LOOP_CLR_FD: libc::c_ulong = 0x4C01;
const LOOP_SET_STATUS64: libc::c_ulong = 0x4C04;
const LOOP_CONFIGURE: libc::c_ulong = 0x4C0A;
const LOOP_CTL_GET_FREE: libc::c_ulong = 0x4C82;
const LO_FLAGS_AUTOCLEAR: u32 = 4;

/// `struct loop_info64`.
#[repr(C)]
struct LoopInfo64 {
    lo_device: u64,
    lo_inode: u64,
    lo_rdevice: u64,
    lo_offset: u64,
    lo_sizelimit: u64,
    lo_number: u32,
    lo_encrypt_type: u32,
    lo_encrypt_key_size: u32,
    lo_flags: u32,
    lo_file_name: [u8; 64],
    lo_crypt_name: [u8; 64],
    lo_encrypt_key: [u8; 32],
    lo_init: [u64; 2],
}

/// `struct loop_config`.
#[repr(C)]
struct LoopConfig {
    fd: u32,
    block_size: u32,
    info: LoopInfo64,
    reserved: [u64; 8],
}

fn info(flags: u32) -> LoopInfo64 {
    LoopInfo64 {
        lo_device: 0,
        lo_inode: 0,
        lo_rdevice: 0,
        lo_offset: 0,
        lo_sizelimit: 0,
        lo_number: 0,
        lo_encrypt_type: 0,
        lo_encrypt_key_size: 0,
        lo_flags: flags,
        lo_file_name: [0; 64],
        lo_crypt_name: [0; 64],
        lo_encrypt_key: [0; 32],
        lo_init: [0; 2],
    }
}

/// Runs an ioctl whose argument is a pointer or an integer.
fn ioctl(fd: BorrowedFd<'_>, req: libc::c_ulong, arg: usize) -> io::Result<libc::c_int> {
    // SAFETY: the requests used here take either an integer or a pointer to a live, correctly
    // laid out `repr(C)` struct that outlives the call.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), req as _, arg) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn open(path: &Path, flags: OFlags) -> io::Result<OwnedFd> {
    Ok(rustix::fs::open(
        path,
        flags | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

fn loop_err(op: &'static str) -> impl FnOnce(io::Error) -> RecoverError {
    move |source| RecoverError::Loop { op, source }
}

/// Attaches `file` to a free loop device with autoclear; returns the device's descriptor and
/// path. Several threads may race for the same free device: the loser gets `EBUSY` and asks
/// again.
fn attach(file: BorrowedFd<'_>) -> Result<(OwnedFd, PathBuf), RecoverError> {
    let ctl = open(Path::new("/dev/loop-control"), OFlags::RDWR)
        .map_err(loop_err("open /dev/loop-control"))?;
    let mut last = io::Error::from_raw_os_error(libc::EBUSY);
    for _ in 0..1000 {
        let n = ioctl(ctl.as_fd(), LOOP_CTL_GET_FREE, 0).map_err(loop_err("LOOP_CTL_GET_FREE"))?;
        let path = PathBuf::from(format!("/dev/loop{n}"));
        let dev = match open(&path, OFlags::RDWR) {
            Ok(d) => d,
            // The device node may appear a moment after the device.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                std::thread::sleep(Duration::from_millis(1));
                last = e;
                continue;
            }
            Err(e) => return Err(loop_err("open loop device")(e)),
        };
        let config = LoopConfig {
            fd: file.as_raw_fd() as u32,
            block_size: 0,
            info: info(LO_FLAGS_AUTOCLEAR),
            reserved: [0; 8],
        };
        match ioctl(dev.as_fd(), LOOP_CONFIGURE, &config as *const _ as usize) {
            Ok(_) => return Ok((dev, path)),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => last = e,
            // A kernel before 5.8: set the file, then the flags.
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOTTY)) => {
                match ioctl(dev.as_fd(), LOOP_SET_FD, file.as_raw_fd() as usize) {
                    Ok(_) => {}
                    Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                        last = e;
                        continue;
                    }
                    Err(e) => return Err(loop_err("LOOP_SET_FD")(e)),
                }
                let status = info(LO_FLAGS_AUTOCLEAR);
                if let Err(e) = ioctl(dev.as_fd(), LOOP_SET_STATUS64, &status as *const _ as usize)
                {
                    let _ = ioctl(dev.as_fd(), LOOP_CLR_FD, 0);
                    return Err(loop_err("LOOP_SET_STATUS64")(e));
                }
                return Ok((dev, path));
            }
            Err(e) => return Err(loop_err("LOOP_CONFIGURE")(e)),
        }
    }
    Err(loop_err("no free loop device after 1000 tries")(last))
}

/// A fresh, empty directory for a mount point.
fn mount_point() -> Result<PathBuf, RecoverError> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let base = std::env::temp_dir();
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = base.join(format!("unplug-mnt-{}-{n}", std::process::id()));
        match std::fs::create_dir(&path) {
            Ok(()) => return Ok(path),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(source) => return Err(RecoverError::MountPoint { path, source }),
        }
    }
}

fn cstring(s: &[u8]) -> Result<CString, RecoverError> {
    CString::new(s).map_err(|_| RecoverError::BadArgument(String::from_utf8_lossy(s).into()))
}

/// Everything to undo, undone in Drop: unmount, close the loop device (autoclear detaches it),
/// remove the mount point.
struct Guard {
    dir: Option<PathBuf>,
    mounted: bool,
    device: Option<OwnedFd>,
}

impl Guard {
    /// Unmounts, retrying on `EBUSY` for about a second (a reader that just closed a file may
    /// still hold the mount for a moment).
    fn unmount(&mut self) -> io::Result<()> {
        let (Some(dir), true) = (&self.dir, self.mounted) else {
            return Ok(());
        };
        let c = CString::new(dir.as_os_str().as_bytes())?;
        let mut tries = 0;
        loop {
            // SAFETY: `c` is a valid NUL-terminated path.
            if unsafe { libc::umount2(c.as_ptr(), 0) } == 0 {
                self.mounted = false;
                return Ok(());
            }
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EBUSY) || tries >= 100 {
                // Detach lazily so that the device and the directory can still go.
                // SAFETY: as above.
                unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
                self.mounted = false;
                return Err(e);
            }
            tries += 1;
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.unmount();
        self.device = None;
        if let Some(dir) = self.dir.take() {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// Mounts `image` (a file) read-write as `fstype` with `options` (the mount(2) data string,
/// e.g. `nouuid` for xfs; generic flags such as `ro` are understood by the kernel there too) on
/// a fresh directory under the temporary directory, runs `f` on that directory, and unmounts,
/// detaches and removes everything, also when mounting fails or `f` panics. The kernel's
/// journal or log replay at mount is the recovery; it writes to `image`.
pub fn with_mounted<R>(
    image: &Path,
    fstype: &str,
    options: &str,
    f: impl FnOnce(&Path) -> R,
) -> Result<R, RecoverError> {
    let c_fstype = cstring(fstype.as_bytes())?;
    let c_options = cstring(options.as_bytes())?;
    let file = open(image, OFlags::RDWR).map_err(|source| RecoverError::Image {
        path: image.to_path_buf(),
        source,
    })?;
    let mut guard = Guard {
        dir: None,
        mounted: false,
        device: None,
    };
    let dir = mount_point()?;
    guard.dir = Some(dir.clone());
    let (device, device_path) = attach(file.as_fd())?;
    guard.device = Some(device);
    // The loop device holds the file now.
    drop(file);
    let c_device = cstring(device_path.as_os_str().as_bytes())?;
    let c_dir = cstring(dir.as_os_str().as_bytes())?;
    let data = if options.is_empty() {
        std::ptr::null()
    } else {
        c_options.as_ptr() as *const libc::c_void
    };
    // SAFETY: every pointer is a valid NUL-terminated string (or null data) alive for the call.
    let r = unsafe {
        libc::mount(
            c_device.as_ptr(),
            c_dir.as_ptr(),
            c_fstype.as_ptr(),
            0,
            data,
        )
    };
    if r != 0 {
        return Err(RecoverError::Mount {
            device: device_path,
            fstype: fstype.to_string(),
            options: options.to_string(),
            source: io::Error::last_os_error(),
        });
    }
    guard.mounted = true;
    let out = f(&dir);
    guard
        .unmount()
        .map_err(|source| RecoverError::Umount { dir, source })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn struct_layouts_match_the_kernel() {
        assert_eq!(std::mem::size_of::<LoopInfo64>(), 232);
        assert_eq!(std::mem::size_of::<LoopConfig>(), 304);
    }

    #[test]
    fn errors_are_values() {
        let r = with_mounted(Path::new("/nonexistent/img"), "ext4", "", |_| ());
        assert!(matches!(r, Err(RecoverError::Image { .. })), "{r:?}");
        let r = with_mounted(Path::new("/dev/null"), "ext\0", "", |_| ());
        assert!(matches!(r, Err(RecoverError::BadArgument(_))), "{r:?}");
    }

    #[test]
    fn a_mount_failure_carries_the_errno_and_cleans_up() {
        let dir = tempfile::tempdir_in("/dev/shm").unwrap();
        let img = dir.path().join("zero.img");
        std::fs::File::create(&img)
            .unwrap()
            .set_len(8 << 20)
            .unwrap();
        let before = leftover_mount_points();
        let r = with_mounted(&img, "ext4", "", |_| ());
        match r {
            Err(RecoverError::Mount { source, .. }) => {
                assert_eq!(source.raw_os_error(), Some(libc::EINVAL), "{source}")
            }
            other => panic!("expected a mount error, got {other:?}"),
        }
        assert_eq!(leftover_mount_points(), before);
    }

    /// This process's mount points still in the temporary directory.
    fn leftover_mount_points() -> usize {
        let prefix = format!("unplug-mnt-{}-", std::process::id());
        std::fs::read_dir(std::env::temp_dir())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with(&prefix)
            })
            .count()
    }
}
