//! Shared writable mappings of traced files. Stores into a mapping are not system calls: the
//! tracer snapshots a mapping's bytes when it is made and, at every traced call of the process
//! (msync, munmap and exec among them) and at its exit, reads it again and reports the changed
//! ranges as [`Call::Store`]s: a store is seen at the first traced call after it.

use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;

use nix::unistd::Pid;

use crate::{mem, Call};

/// Changed ranges closer than this are reported as one store.
const MERGE_GAP: usize = 16;

/// One mapping.
#[derive(Debug, Clone)]
pub(crate) struct SharedMap {
    pub addr: u64,
    pub len: u64,
    pub path: PathBuf,
    pub file_offset: u64,
    /// The bytes as last seen (shorter than `len` where pages could not be read).
    pub snapshot: Vec<u8>,
}

/// The mappings of one address space.
#[derive(Debug, Clone, Default)]
pub(crate) struct Maps {
    maps: Vec<SharedMap>,
}

/// An address space's mappings, shared by the tasks that use it.
pub(crate) type SharedMaps = Rc<RefCell<Maps>>;

fn overlaps(a: u64, alen: u64, b: u64, blen: u64) -> bool {
    a < b.saturating_add(blen) && b < a.saturating_add(alen)
}

impl Maps {
    pub(crate) fn is_empty(&self) -> bool {
        self.maps.is_empty()
    }

    /// Whether a mapping overlaps `addr..addr+len`.
    pub(crate) fn touches(&self, addr: u64, len: u64) -> bool {
        self.maps.iter().any(|m| overlaps(m.addr, m.len, addr, len))
    }

    /// Adds a mapping, snapshotting its bytes now.
    pub(crate) fn add(&mut self, pid: Pid, addr: u64, len: u64, path: PathBuf, file_offset: u64) {
        let snapshot = mem::read_bytes(pid, addr, len as usize);
        self.maps.push(SharedMap {
            addr,
            len,
            path,
            file_offset,
            snapshot,
        });
    }

    /// The stores since the last look into every mapping overlapping `range` (all with None);
    /// the snapshots are updated.
    pub(crate) fn flush(&mut self, pid: Pid, range: Option<(u64, u64)>) -> Vec<Call> {
        let mut out = Vec::new();
        for m in &mut self.maps {
            if let Some((a, l)) = range {
                if !overlaps(m.addr, m.len, a, l) {
                    continue;
                }
            }
            let mut now = mem::read_bytes(pid, m.addr, m.len as usize);
            // Bytes past the end of the file do not reach it.
            if let Ok(meta) = std::fs::metadata(&m.path) {
                let in_file = meta.len().saturating_sub(m.file_offset);
                now.truncate(now.len().min(in_file as usize));
            }
            for (start, end) in diff(&m.snapshot, &now) {
                out.push(Call::Store {
                    path: m.path.clone(),
                    addr: m.addr + start as u64,
                    file_offset: m.file_offset + start as u64,
                    data: now[start..end].to_vec(),
                });
            }
            if now.len() >= m.snapshot.len() {
                m.snapshot = now;
            } else {
                m.snapshot[..now.len()].copy_from_slice(&now);
            }
        }
        out
    }

    /// Forgets `addr..addr+len` (munmap, or a mapping made over it), keeping what is left of
    /// each mapping on either side.
    pub(crate) fn remove(&mut self, addr: u64, len: u64) {
        let end = addr.saturating_add(len);
        let mut kept = Vec::new();
        for m in self.maps.drain(..) {
            let m_end = m.addr + m.len;
            if !overlaps(m.addr, m.len, addr, len) {
                kept.push(m);
                continue;
            }
            if m.addr < addr {
                let n = addr - m.addr;
                kept.push(piece(&m, 0, n));
            }
            if end < m_end {
                kept.push(piece(&m, end - m.addr, m_end - end));
            }
        }
        self.maps = kept;
    }
}

/// The part of `m` from `start` for `len` bytes.
fn piece(m: &SharedMap, start: u64, len: u64) -> SharedMap {
    let s = (start as usize).min(m.snapshot.len());
    let e = ((start + len) as usize).min(m.snapshot.len());
    SharedMap {
        addr: m.addr + start,
        len,
        path: m.path.clone(),
        file_offset: m.file_offset + start,
        snapshot: m.snapshot[s..e].to_vec(),
    }
}

/// The ranges where `now` differs from `old` (bytes `old` lacks compare with zero), merged when
/// closer than [`MERGE_GAP`].
fn diff(old: &[u8], now: &[u8]) -> Vec<(usize, usize)> {
    let mut ranges: Vec<(usize, usize)> = Vec::new();
    for (i, &b) in now.iter().enumerate() {
        if old.get(i).copied().unwrap_or(0) == b {
            continue;
        }
        match ranges.last_mut() {
            Some(last) if i - last.1 < MERGE_GAP => last.1 = i + 1,
            _ => ranges.push((i, i + 1)),
        }
    }
    ranges
}

#[cfg(test)]
mod tests {
    use super::diff;

    #[test]
    fn diff_merges_close_ranges() {
        let old = vec![0u8; 100];
        let mut now = old.clone();
        now[3] = 1;
        now[10] = 1;
        now[60] = 2;
        assert_eq!(diff(&old, &now), vec![(3, 11), (60, 61)]);
        assert_eq!(diff(&old, &old), vec![]);
    }
}
