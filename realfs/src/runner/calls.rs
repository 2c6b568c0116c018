//! Each op as the system call it names, on the run's state (its root directory, handles and
//! mappings): rustix for the calls, memmap2 for the mappings, libc where rustix has no wrapper.

use super::DataBytes;
use memmap2::{MmapMut, MmapOptions};
use rustix::fd::{AsRawFd, OwnedFd};
use rustix::fs::{AtFlags, FallocateFlags, Mode, OFlags, RenameFlags};
use std::collections::HashMap;
use std::io;
use std::time::Instant;
use unplug_model::{MsyncMode, Op, OpKind, OpenFlags, Path, RenameMode};

/// An open handle.
pub(super) struct Handle {
    fd: OwnedFd,
    append: bool,
    /// O_DIRECT: writes go from a buffer aligned to [`DIRECT_BUF_ALIGN`].
    direct: bool,
}

/// The buffer alignment of O_DIRECT writes: 4096 satisfies every device (512 is the minimum).
const DIRECT_BUF_ALIGN: usize = 4096;

/// A live mapping.
pub(super) struct Map {
    mmap: MmapMut,
    /// The file offset of mapping offset 0.
    file_off: u64,
    /// A duplicate of the file's descriptor, to check the file's size before a store (a store
    /// past the page holding the end of the file would raise SIGBUS).
    fd: OwnedFd,
}

/// The run's root and its live handles and mappings, by name.
pub(super) struct State {
    pub(super) root: OwnedFd,
    pub(super) handles: HashMap<String, Handle>,
    pub(super) maps: HashMap<String, Map>,
    /// The real bytes of the data that have them (the others are written as patterns).
    pub(super) data: DataBytes,
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// The path relative to the root as given to the `*at` calls (`.` for the root itself).
pub(super) fn rel(path: &Path) -> String {
    if path.0.is_empty() {
        ".".to_string()
    } else {
        path.0.join("/")
    }
}

pub(super) fn open_flags(flags: &OpenFlags) -> (OFlags, Mode) {
    let mut o = OFlags::CLOEXEC;
    let mode = if flags.tmpfile {
        // O_TMPFILE (which includes O_DIRECTORY) needs write access; the path is the directory.
        o |= OFlags::RDWR | OFlags::TMPFILE;
        Mode::from_raw_mode(0o644)
    } else if flags.directory {
        o |= OFlags::RDONLY | OFlags::DIRECTORY;
        Mode::from_raw_mode(0o755)
    } else {
        o |= OFlags::RDWR;
        Mode::from_raw_mode(0o644)
    };
    for (set, f) in [
        (flags.create, OFlags::CREATE),
        (flags.excl, OFlags::EXCL),
        (flags.trunc, OFlags::TRUNC),
        (flags.append, OFlags::APPEND),
        (flags.sync, OFlags::SYNC),
        (flags.dsync, OFlags::DSYNC),
        (flags.direct, OFlags::DIRECT),
    ] {
        if set {
            o |= f;
        }
    }
    (o, mode)
}

/// `bytes` copied into a buffer whose start is aligned to [`DIRECT_BUF_ALIGN`] (O_DIRECT needs
/// the memory aligned to the device's logical block size): the returned vector holds the bytes
/// at the returned offset.
fn aligned(bytes: &[u8]) -> (Vec<u8>, usize) {
    let mut buf = vec![0u8; bytes.len() + DIRECT_BUF_ALIGN];
    let at = buf.as_ptr().align_offset(DIRECT_BUF_ALIGN);
    buf[at..at + bytes.len()].copy_from_slice(bytes);
    (buf, at)
}

/// Writes all of `buf`, at `offset` (pwrite) or at the file position (write).
fn write_all(fd: &OwnedFd, mut buf: &[u8], offset: Option<u64>) -> io::Result<()> {
    let mut offset = offset;
    while !buf.is_empty() {
        let n = match offset {
            Some(off) => rustix::io::pwrite(fd, buf, off)?,
            None => rustix::io::write(fd, buf)?,
        };
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::WriteZero, "write returned 0"));
        }
        buf = &buf[n..];
        if let Some(off) = offset.as_mut() {
            *off += n as u64;
        }
    }
    Ok(())
}

fn to_usize(x: u64, what: &str) -> io::Result<usize> {
    usize::try_from(x).map_err(|_| invalid(format!("{what} {x} does not fit in memory")))
}

fn page_size() -> u64 {
    rustix::param::page_size() as u64
}

impl State {
    pub(super) fn timed(&mut self, op: &Op) -> io::Result<u64> {
        let t = Instant::now();
        self.exec(&op.kind)?;
        Ok(u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX))
    }

    fn handle(&self, name: &str) -> io::Result<&Handle> {
        self.handles
            .get(name)
            .ok_or_else(|| invalid(format!("no open handle `{name}`")))
    }

    fn map(&self, name: &str) -> io::Result<&Map> {
        self.maps
            .get(name)
            .ok_or_else(|| invalid(format!("no live mapping `{name}`")))
    }

    /// Runs one op: the system call it names (the ops that take more than one call, or
    /// checks before it, have their own method below).
    fn exec(&mut self, kind: &OpKind) -> io::Result<()> {
        match kind {
            OpKind::Open {
                handle,
                path,
                flags,
            } => self.open(handle, path, flags)?,
            OpKind::Close { handle } => {
                let h = self
                    .handles
                    .remove(handle)
                    .ok_or_else(|| invalid(format!("no open handle `{handle}`")))?;
                drop(h.fd);
            }
            OpKind::Write {
                handle,
                offset,
                len,
                data,
                data_off,
            } => self.write(handle, *offset, *len, data, *data_off)?,
            OpKind::Ftruncate { handle, size } => {
                rustix::fs::ftruncate(&self.handle(handle)?.fd, *size)?;
            }
            OpKind::Fallocate {
                handle,
                offset,
                len,
                keep_size,
            } => {
                let mode = if *keep_size {
                    FallocateFlags::KEEP_SIZE
                } else {
                    FallocateFlags::empty()
                };
                rustix::fs::fallocate(&self.handle(handle)?.fd, mode, *offset, *len)?;
            }
            OpKind::SyncFileRange {
                handle,
                offset,
                len,
            } => self.sync_file_range(handle, *offset, *len)?,
            OpKind::Mmap {
                handle,
                map,
                offset,
                len,
            } => self.mmap(handle, map, *offset, *len)?,
            OpKind::Store {
                map,
                offset,
                len,
                data,
                data_off,
            } => self.store(map, *offset, *len, data, *data_off)?,
            OpKind::Msync {
                map,
                range,
                mode,
                invalidate,
            } => self.msync(map, *range, *mode, *invalidate)?,
            OpKind::Munmap { map } => {
                let m = self
                    .maps
                    .remove(map)
                    .ok_or_else(|| invalid(format!("no live mapping `{map}`")))?;
                drop(m.mmap);
            }
            OpKind::Fsync { handle } => rustix::fs::fsync(&self.handle(handle)?.fd)?,
            OpKind::Fdatasync { handle } => rustix::fs::fdatasync(&self.handle(handle)?.fd)?,
            OpKind::Sync => rustix::fs::sync(),
            OpKind::Syncfs { handle } => rustix::fs::syncfs(&self.handle(handle)?.fd)?,
            OpKind::Rename { from, to, mode } => {
                let flags = match mode {
                    RenameMode::Replace => RenameFlags::empty(),
                    RenameMode::Exchange => RenameFlags::EXCHANGE,
                    RenameMode::NoReplace => RenameFlags::NOREPLACE,
                };
                rustix::fs::renameat_with(&self.root, rel(from), &self.root, rel(to), flags)?
            }
            OpKind::Flink { handle, path } => self.flink(handle, path)?,
            OpKind::Symlink { target, path } => {
                rustix::fs::symlinkat(target.as_str(), &self.root, rel(path))?
            }
            OpKind::Link { from, to } => {
                rustix::fs::linkat(&self.root, rel(from), &self.root, rel(to), AtFlags::empty())?
            }
            OpKind::Unlink { path } => {
                rustix::fs::unlinkat(&self.root, rel(path), AtFlags::empty())?
            }
            OpKind::Mkdir { path } => {
                rustix::fs::mkdirat(&self.root, rel(path), Mode::from_raw_mode(0o755))?
            }
            OpKind::Rmdir { path } => {
                rustix::fs::unlinkat(&self.root, rel(path), AtFlags::REMOVEDIR)?
            }
        }
        Ok(())
    }

    /// `f = open PATH FLAGS`: a new handle.
    fn open(&mut self, handle: &str, path: &Path, flags: &OpenFlags) -> io::Result<()> {
        if self.handles.contains_key(handle) {
            return Err(invalid(format!("handle `{handle}` is already open")));
        }
        let (oflags, mode) = open_flags(flags);
        let fd = rustix::fs::openat(&self.root, rel(path), oflags, mode)?;
        self.handles.insert(
            handle.to_string(),
            Handle {
                fd,
                append: flags.append,
                direct: flags.direct,
            },
        );
        Ok(())
    }

    /// `write f [OFF] LEN DATA`: the data's bytes for where they land, from an aligned buffer
    /// with O_DIRECT.
    fn write(
        &self,
        handle: &str,
        offset: Option<u64>,
        len: u64,
        data: &str,
        data_off: Option<u64>,
    ) -> io::Result<()> {
        let h = self.handle(handle)?;
        // Where the bytes land: with O_APPEND at the end of the file (Linux ignores
        // pwrite's offset then too), else at the given offset or the handle's position
        // (the position of its open file description, which only this handle uses).
        let lands_at = if h.append {
            rustix::fs::fstat(&h.fd)?.st_size as u64
        } else {
            match offset {
                Some(off) => off,
                None => rustix::fs::tell(&h.fd)?,
            }
        };
        let bytes = self
            .data
            .slice(data, data_off.unwrap_or(lands_at), to_usize(len, "len")?)?;
        if h.direct {
            let (buf, at) = aligned(&bytes);
            write_all(&h.fd, &buf[at..at + bytes.len()], offset)
        } else {
            write_all(&h.fd, &bytes, offset)
        }
    }

    /// `sync_file_range f OFF LEN` (write, no wait): through libc, which rustix does not wrap.
    fn sync_file_range(&self, handle: &str, offset: u64, len: u64) -> io::Result<()> {
        let fd = self.handle(handle)?.fd.as_raw_fd();
        let off =
            |x: u64| i64::try_from(x).map_err(|_| invalid(format!("{x} does not fit in off64_t")));
        let (offset, len) = (off(offset)?, off(len)?);
        // SAFETY: `fd` is an open descriptor owned by this run; no memory is passed.
        let r = unsafe { libc::sync_file_range(fd, offset, len, libc::SYNC_FILE_RANGE_WRITE) };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// `m = mmap f OFF LEN`: a new shared mapping, with its own descriptor of the file.
    fn mmap(&mut self, handle: &str, map: &str, offset: u64, len: u64) -> io::Result<()> {
        if self.maps.contains_key(map) {
            return Err(invalid(format!("mapping `{map}` is already live")));
        }
        let h = self.handle(handle)?;
        let len = to_usize(len, "mapping length")?;
        // SAFETY: the mapping is of a file in the run's own private directory, which
        // nothing else truncates behind our back; stores check the file size first (see
        // `Store`), so no access of ours goes past the end of the file.
        let mmap = unsafe { MmapOptions::new().offset(offset).len(len).map_mut(&h.fd)? };
        let fd = h.fd.try_clone()?;
        self.maps.insert(
            map.to_string(),
            Map {
                mmap,
                file_off: offset,
                fd,
            },
        );
        Ok(())
    }

    /// `store m OFF LEN DATA`: the bytes copied into the mapping, after checking that no page
    /// they touch lies past the file's last page (which would raise SIGBUS).
    fn store(
        &mut self,
        map: &str,
        offset: u64,
        len: u64,
        data: &str,
        data_off: Option<u64>,
    ) -> io::Result<()> {
        let m = self
            .maps
            .get_mut(map)
            .ok_or_else(|| invalid(format!("no live mapping `{map}`")))?;
        let start = to_usize(offset, "store offset")?;
        let n = to_usize(len, "store length")?;
        let end = start
            .checked_add(n)
            .filter(|&e| e <= m.mmap.len())
            .ok_or_else(|| invalid(format!("store [{start}, +{n}) outside the mapping")))?;
        let file_at = m.file_off + offset;
        let size = rustix::fs::fstat(&m.fd)?.st_size as u64;
        let ps = page_size();
        let mapped_end = size.div_ceil(ps) * ps;
        if n > 0 && file_at + n as u64 > mapped_end {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "store at file offset {file_at} + {n} goes past the last page of the \
                     file (size {size}): it would raise SIGBUS"
                ),
            ));
        }
        let bytes = self.data.slice(data, data_off.unwrap_or(file_at), n)?;
        m.mmap[start..end].copy_from_slice(&bytes);
        Ok(())
    }

    /// `msync m [OFF LEN] sync|async [invalidate]`.
    fn msync(
        &self,
        map: &str,
        range: Option<(u64, u64)>,
        mode: MsyncMode,
        invalidate: bool,
    ) -> io::Result<()> {
        let m = self.map(map)?;
        let (off, len) = match range {
            Some((off, len)) => (
                to_usize(off, "msync offset")?,
                to_usize(len, "msync length")?,
            ),
            None => (0, m.mmap.len()),
        };
        match (mode, invalidate) {
            (MsyncMode::Sync, false) => m.mmap.flush_range(off, len),
            (MsyncMode::Async, false) => m.mmap.flush_async_range(off, len),
            (mode, true) => msync_invalidate(&m.mmap, off, len, mode),
        }
    }

    /// `flink f PATH`: a name for the handle's file (an O_TMPFILE one, say).
    fn flink(&self, handle: &str, path: &Path) -> io::Result<()> {
        let fd = &self.handle(handle)?.fd;
        // linkat(fd, "", ..., AT_EMPTY_PATH) needs CAP_DAC_READ_SEARCH (before Linux
        // 6.10, and still without the open-file relaxation); linking /proc/self/fd/N with
        // AT_SYMLINK_FOLLOW is the unprivileged way (open(2), O_TMPFILE).
        match rustix::fs::linkat(fd, "", &self.root, rel(path), AtFlags::EMPTY_PATH) {
            Err(rustix::io::Errno::NOENT | rustix::io::Errno::PERM) => rustix::fs::linkat(
                rustix::fs::CWD,
                format!("/proc/self/fd/{}", fd.as_raw_fd()),
                &self.root,
                rel(path),
                AtFlags::SYMLINK_FOLLOW,
            )?,
            r => r?,
        }
        Ok(())
    }
}

/// `msync(MS_SYNC | MS_INVALIDATE)` or `msync(MS_ASYNC | MS_INVALIDATE)` of a range of a mapping
/// (memmap2 has no invalidate).
fn msync_invalidate(mmap: &MmapMut, off: usize, len: usize, mode: MsyncMode) -> io::Result<()> {
    if off > mmap.len() || len > mmap.len() - off {
        return Err(invalid(format!(
            "msync [{off}, +{len}) outside the mapping"
        )));
    }
    let ps = page_size() as usize;
    let addr = mmap.as_ptr() as usize + off;
    let align = addr % ps;
    let flags = rustix::mm::MsyncFlags::INVALIDATE
        | match mode {
            MsyncMode::Sync => rustix::mm::MsyncFlags::SYNC,
            MsyncMode::Async => rustix::mm::MsyncFlags::ASYNC,
        };
    // SAFETY: the range, extended down to its page boundary, lies within the live mapping
    // (memmap2 maps from the page boundary below the requested offset); msync reads no memory.
    unsafe { rustix::mm::msync((addr - align) as *mut _, len + align, flags)? };
    Ok(())
}
