//! Reading a stopped tracee: its memory (process_vm_readv), and what `/proc` says about its
//! descriptors and working directory; resolving the paths it names.

use std::ffi::OsString;
use std::io::IoSliceMut;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};

use nix::sys::uio::{process_vm_readv, RemoteIoVec};
use nix::unistd::Pid;

const PAGE: u64 = 4096;
/// The longest path read from a tracee (PATH_MAX).
const PATH_MAX: usize = 4096;

/// Reads `len` bytes at `addr`; shorter if a page on the way cannot be read (unmapped, or beyond
/// the end of a mapped file).
pub(crate) fn read_bytes(pid: Pid, addr: u64, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    let mut done = 0usize;
    while done < len {
        // One remote iovec per page, so that a fault gives a page-granular short read.
        let mut remote = Vec::new();
        let mut at = addr + done as u64;
        let mut want = 0usize;
        while done + want < len && remote.len() < 256 {
            let page_end = (at / PAGE + 1) * PAGE;
            let n = ((page_end - at) as usize).min(len - done - want);
            remote.push(RemoteIoVec {
                base: at as usize,
                len: n,
            });
            at += n as u64;
            want += n;
        }
        let mut local = [IoSliceMut::new(&mut out[done..done + want])];
        match process_vm_readv(pid, &mut local, &remote) {
            Ok(n) if n > 0 => {
                done += n;
                if n < want {
                    break;
                }
            }
            _ => break,
        }
    }
    out.truncate(done);
    out
}

/// Reads a NUL-terminated string at `addr` (None if unreadable or longer than PATH_MAX).
pub(crate) fn read_cstr(pid: Pid, addr: u64) -> Option<OsString> {
    if addr == 0 {
        return None;
    }
    let mut out = Vec::new();
    let mut at = addr;
    while out.len() <= PATH_MAX {
        let n = (PAGE - at % PAGE) as usize;
        let chunk = read_bytes(pid, at, n);
        if chunk.is_empty() {
            return None;
        }
        if let Some(end) = chunk.iter().position(|&b| b == 0) {
            out.extend_from_slice(&chunk[..end]);
            return Some(OsString::from_vec(out));
        }
        out.extend_from_slice(&chunk);
        at += chunk.len() as u64;
    }
    None
}

/// Reads a native-endian u64 at `addr`.
pub(crate) fn read_u64(pid: Pid, addr: u64) -> Option<u64> {
    let b = read_bytes(pid, addr, 8);
    Some(u64::from_ne_bytes(b.try_into().ok()?))
}

/// Reads an iovec array: (base, len) pairs.
pub(crate) fn read_iovecs(pid: Pid, addr: u64, count: u64) -> Vec<(u64, u64)> {
    let count = count.min(1024) as usize;
    let raw = read_bytes(pid, addr, count * 16);
    raw.chunks_exact(16)
        .map(|c| {
            let base = u64::from_ne_bytes(c[..8].try_into().unwrap_or_default());
            let len = u64::from_ne_bytes(c[8..].try_into().unwrap_or_default());
            (base, len)
        })
        .collect()
}

/// The first `total` bytes of the buffers `bufs`, in order.
pub(crate) fn read_buffers(pid: Pid, bufs: &[(u64, u64)], total: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(total as usize);
    let mut left = total;
    for &(base, len) in bufs {
        if left == 0 {
            break;
        }
        let n = len.min(left);
        out.extend(read_bytes(pid, base, n as usize));
        left -= n;
    }
    out
}

/// What `/proc/TID/fd/FD` links to.
pub(crate) fn fd_path(tid: Pid, fd: i32) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/{tid}/fd/{fd}")).ok()
}

/// A field (`pos`, `flags`) of `/proc/TID/fdinfo/FD`, in the radix the kernel prints it in.
fn fdinfo_field(tid: Pid, fd: i32, field: &str, radix: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{tid}/fdinfo/{fd}")).ok()?;
    text.lines().find_map(|l| {
        let v = l.strip_prefix(field)?.strip_prefix(':')?;
        u64::from_str_radix(v.trim(), radix).ok()
    })
}

/// The file position of the tracee's descriptor.
pub(crate) fn fd_pos(tid: Pid, fd: i32) -> Option<u64> {
    fdinfo_field(tid, fd, "pos", 10)
}

/// The open flags of the tracee's descriptor (octal in fdinfo).
pub(crate) fn fd_flags(tid: Pid, fd: i32) -> Option<i32> {
    fdinfo_field(tid, fd, "flags", 8).map(|f| f as i32)
}

/// The size of the file open at the tracee's descriptor.
pub(crate) fn fd_size(tid: Pid, fd: i32) -> Option<u64> {
    std::fs::metadata(format!("/proc/{tid}/fd/{fd}"))
        .ok()
        .map(|m| m.len())
}

/// Reads `len` bytes at `offset` of the file open at the tracee's descriptor (reopened through
/// `/proc/TID/fd/FD`).
pub(crate) fn pread_fd(tid: Pid, fd: i32, offset: u64, len: u64) -> Vec<u8> {
    use std::os::unix::fs::FileExt;
    let Ok(file) = std::fs::File::open(format!("/proc/{tid}/fd/{fd}")) else {
        return Vec::new();
    };
    let mut buf = vec![0u8; len as usize];
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) | Err(_) => break,
            Ok(n) => done += n,
        }
    }
    buf.truncate(done);
    buf
}

/// The directory a relative path is resolved from: the working directory for `AT_FDCWD`, else
/// the directory open at `dirfd`.
fn base_dir(tid: Pid, dirfd: i32) -> Option<PathBuf> {
    if dirfd == libc::AT_FDCWD {
        std::fs::read_link(format!("/proc/{tid}/cwd")).ok()
    } else {
        fd_path(tid, dirfd)
    }
}

/// `raw` as an absolute path: relative to `dirfd`; its parent directory canonicalized (its last
/// component is kept as named: unlink, rename and friends act on a symbolic link itself). With
/// `follow`, the whole path is canonicalized when it exists.
pub(crate) fn resolve(tid: Pid, dirfd: i32, raw: &OsString, follow: bool) -> Option<PathBuf> {
    let raw = Path::new(raw);
    let joined = if raw.is_absolute() {
        // The tracee's /proc/self is not the tracer's.
        match raw
            .strip_prefix("/proc/self")
            .or_else(|_| raw.strip_prefix("/proc/thread-self"))
        {
            Ok(rest) => Path::new("/proc").join(tid.to_string()).join(rest),
            Err(_) => raw.to_path_buf(),
        }
    } else {
        base_dir(tid, dirfd)?.join(raw)
    };
    if follow {
        if let Ok(p) = std::fs::canonicalize(&joined) {
            return Some(p);
        }
    }
    let lexical = normalize(&joined);
    match (lexical.parent(), lexical.file_name()) {
        (Some(parent), Some(name)) => Some(
            std::fs::canonicalize(parent)
                .unwrap_or_else(|_| parent.to_path_buf())
                .join(name),
        ),
        _ => Some(lexical),
    }
}

/// Removes `.` and `..` components without looking at the file system.
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// The bytes of a path as a lossy string (symlink targets).
pub(crate) fn lossy(s: &OsString) -> String {
    String::from_utf8_lossy(s.as_bytes()).into_owned()
}
