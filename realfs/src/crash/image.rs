//! Building crash images: the base image held as its non-zero blocks, and a sparse image file
//! per planned crash (the base, then the image's writes in log order).

use super::{CrashImage, ImageKind};
use crate::wlog::Log;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// A base image held in memory as its non-zero blocks, to build many crash images from.
///
/// Only the base's data regions (found with `SEEK_DATA` and `SEEK_HOLE`; a file system without
/// them is read whole) are read, once, and of those only the 4 KiB blocks that are not all
/// zeros are kept: mkfs zeroes large areas (the xfs log, btrfs's chunks) that a sparse image
/// does not need to hold, since a hole reads back as zeros.
#[derive(Clone, Debug)]
pub struct Base {
    len: u64,
    /// Runs of non-zero blocks: (offset, bytes), sorted, not adjacent.
    runs: Vec<(u64, Vec<u8>)>,
}

const BLOCK: usize = 4096;

impl Base {
    /// Reads the base image at `path`.
    pub fn open(path: &Path) -> io::Result<Base> {
        use rustix::fs::{seek, SeekFrom};
        let from = File::open(path)?;
        let len = from.metadata()?.len();
        let mut base = Base {
            len,
            runs: Vec::new(),
        };
        let mut off = 0u64;
        while off < len {
            let data = match seek(&from, SeekFrom::Data(off as i64)) {
                Ok(d) => d,
                Err(rustix::io::Errno::NXIO) => break,
                Err(rustix::io::Errno::INVAL) if off == 0 => 0,
                Err(e) => return Err(e.into()),
            };
            let hole = match seek(&from, SeekFrom::Hole(data as i64)) {
                Ok(h) => h.min(len),
                Err(rustix::io::Errno::INVAL) => len,
                Err(e) => return Err(e.into()),
            };
            base.read_region(&from, data, hole)?;
            off = hole.max(data + 1);
        }
        Ok(base)
    }

    fn read_region(&mut self, from: &File, start: u64, end: u64) -> io::Result<()> {
        let mut buf = vec![0u8; 1 << 20];
        let mut at = start;
        while at < end {
            let n = ((end - at) as usize).min(buf.len());
            from.read_exact_at(&mut buf[..n], at)?;
            for (k, block) in buf[..n].chunks(BLOCK).enumerate() {
                if block.iter().all(|&b| b == 0) {
                    continue;
                }
                let off = at + (k * BLOCK) as u64;
                match self.runs.last_mut() {
                    Some((o, bytes)) if *o + bytes.len() as u64 == off => {
                        bytes.extend_from_slice(block)
                    }
                    _ => self.runs.push((off, block.to_vec())),
                }
            }
            at += n as u64;
        }
        Ok(())
    }

    /// The image's length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True for an empty base image.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes held (the non-zero blocks).
    pub fn held_bytes(&self) -> u64 {
        self.runs.iter().map(|(_, b)| b.len() as u64).sum()
    }

    /// Builds `image` in `out` (created or truncated) as a sparse file: the base's non-zero
    /// blocks, then the image's writes in order at `sector * sector_size`; a torn write writes
    /// only its kept sectors. Discard entries leave the data as it is (a discarded range may
    /// read back as anything, and the old data is one of those things). An entry that is not
    /// in the log, or is neither a write nor a discard, is an `InvalidInput` error.
    pub fn write_image(&self, log: &Log, image: &CrashImage, out: &Path) -> io::Result<()> {
        let to = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(out)?;
        to.set_len(self.len)?;
        for (off, bytes) in &self.runs {
            to.write_all_at(bytes, *off)?;
        }
        let ss = u64::from(log.sector_size);
        for &i in &image.writes {
            let e = log
                .entries
                .get(i)
                .ok_or_else(|| invalid(format!("entry {i} is not in the log")))?;
            if e.flags & crate::wlog::DISCARD != 0 {
                continue;
            }
            if !e.is_write() {
                return Err(invalid(format!("entry {i} is not a write")));
            }
            let mut data = &e.data[..];
            if let ImageKind::Torn {
                entry,
                sectors_kept,
            } = image.kind
            {
                if entry == i {
                    let kept = sectors_kept.saturating_mul(ss).min(data.len() as u64);
                    data = &data[..kept as usize];
                }
            }
            let at = e
                .sector
                .checked_mul(ss)
                .ok_or_else(|| invalid(format!("entry {i}: sector {} overflows", e.sector)))?;
            to.write_all_at(data, at)?;
        }
        Ok(())
    }
}

/// Builds one image from the base image at `base`: [`Base::open`] then [`Base::write_image`].
/// To build many images of one base, open the [`Base`] once.
pub fn write_image(base: &Path, log: &Log, image: &CrashImage, out: &Path) -> io::Result<()> {
    Base::open(base)?.write_image(log, image, out)
}
