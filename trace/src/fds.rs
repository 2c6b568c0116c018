//! The per-process descriptor table: what each descriptor the tracer has seen refers to. Threads
//! (and `CLONE_FILES` children) share one table; a forked child gets a copy; exec drops the
//! `O_CLOEXEC` descriptors.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::rc::Rc;

/// One descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FdEntry {
    /// The file's absolute path when it was opened.
    pub path: PathBuf,
    /// The `O_*` status flags (`O_APPEND` is what matters), without `O_CLOEXEC`.
    pub flags: i32,
    /// Whether the file is under a root (calls on it are recorded).
    pub traced: bool,
    /// `FD_CLOEXEC`.
    pub cloexec: bool,
}

/// A descriptor table.
#[derive(Debug, Clone, Default)]
pub(crate) struct FdTable {
    fds: BTreeMap<i32, FdEntry>,
}

/// A table shared by the tasks that use it.
pub(crate) type SharedFds = Rc<RefCell<FdTable>>;

impl FdTable {
    pub(crate) fn get(&self, fd: i32) -> Option<&FdEntry> {
        self.fds.get(&fd)
    }

    pub(crate) fn get_mut(&mut self, fd: i32) -> Option<&mut FdEntry> {
        self.fds.get_mut(&fd)
    }

    /// Sets `fd`, returning what it replaced.
    pub(crate) fn insert(&mut self, fd: i32, entry: FdEntry) -> Option<FdEntry> {
        self.fds.insert(fd, entry)
    }

    pub(crate) fn remove(&mut self, fd: i32) -> Option<FdEntry> {
        self.fds.remove(&fd)
    }

    /// Removes the descriptors in `first..=last`, returning them.
    pub(crate) fn remove_range(&mut self, first: i32, last: i32) -> Vec<(i32, FdEntry)> {
        let keys: Vec<i32> = self.fds.range(first..=last).map(|(&k, _)| k).collect();
        keys.into_iter()
            .filter_map(|k| self.fds.remove(&k).map(|e| (k, e)))
            .collect()
    }

    /// Sets `FD_CLOEXEC` on the descriptors in `first..=last`.
    pub(crate) fn set_cloexec_range(&mut self, first: i32, last: i32) {
        for e in self.fds.range_mut(first..=last) {
            e.1.cloexec = true;
        }
    }

    /// Removes the `O_CLOEXEC` descriptors (exec), returning them.
    pub(crate) fn exec(&mut self) -> Vec<(i32, FdEntry)> {
        let keys: Vec<i32> = self
            .fds
            .iter()
            .filter(|(_, e)| e.cloexec)
            .map(|(&k, _)| k)
            .collect();
        keys.into_iter()
            .filter_map(|k| self.fds.remove(&k).map(|e| (k, e)))
            .collect()
    }

    /// Empties the table (the last process using it exited), returning the descriptors.
    pub(crate) fn drain(&mut self) -> Vec<(i32, FdEntry)> {
        std::mem::take(&mut self.fds).into_iter().collect()
    }
}
