//! A job's part of the log: its window between its marks, the planner's events in it, and the
//! base image rolled forward to where the window starts.

use super::{io_err, CheckError, CheckOptions, RemoveOnDrop};
use crate::crash::{Base, Event};
use crate::record::Recording;
use crate::session::{decode_mark, Mark};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

/// Where job `j`'s window starts and ends (inclusive) in the log.
pub(super) fn windows(rec: &Recording, jobs: usize) -> Result<Vec<(usize, usize)>, CheckError> {
    let mut start: Vec<Option<usize>> = vec![None; jobs];
    let mut end: Vec<Option<usize>> = vec![None; jobs];
    let mut open: Option<usize> = None;
    for (i, e) in rec.log.entries.iter().enumerate() {
        if let Some((j, m)) = mark_of(rec, i) {
            if j < jobs {
                match m {
                    Mark::Op(0) => start[j] = start[j].or(Some(i)),
                    Mark::End => open = Some(j),
                    Mark::Op(_) => {}
                }
            }
        } else if e.is_flush() {
            if let Some(j) = open.take() {
                end[j] = Some(i);
            }
        }
    }
    (0..jobs)
        .map(|j| match (start[j], end[j]) {
            (Some(s), Some(e)) => Ok((s, e)),
            _ => Err(CheckError::NoMarks(j)),
        })
        .collect()
}

/// The mark entry `i` is, if it is one.
fn mark_of(rec: &Recording, i: usize) -> Option<(usize, Mark)> {
    let e = &rec.log.entries[i];
    (e.is_write() && e.sector * 512 >= rec.fs_bytes)
        .then(|| decode_mark(&e.data))
        .flatten()
}

/// The planner's events of job `j`'s window.
pub(super) fn events(rec: &Recording, j: usize, (s, t): (usize, usize)) -> Vec<Event> {
    let mut out = Vec::new();
    for i in s..=t {
        let e = &rec.log.entries[i];
        if let Some((job, m)) = mark_of(rec, i) {
            if let (true, Mark::Op(n)) = (job == j, m) {
                out.push(Event::Mark(n));
            }
            continue;
        }
        if e.is_write() {
            out.push(Event::Write {
                entry: i,
                fua: e.is_fua(),
            });
        }
        if e.is_flush() {
            out.push(Event::Flush);
        }
    }
    out
}

/// Applies the writes of entries `range` to the image file `f`.
fn apply(rec: &Recording, f: &std::fs::File, range: std::ops::Range<usize>) -> io::Result<()> {
    for e in &rec.log.entries[range] {
        if e.is_write() {
            f.write_all_at(&e.data, e.sector * 512)?;
        }
    }
    Ok(())
}

/// A copy of the base image rolled forward through the log, job by job: each job's base.
pub(super) struct Rolling {
    path: PathBuf,
    file: std::fs::File,
    /// The log entries applied so far.
    applied: usize,
    _cleanup: RemoveOnDrop,
}

impl Rolling {
    pub(super) fn copy(rec: &Recording, opts: &CheckOptions) -> Result<Rolling, CheckError> {
        let path = opts.scratch.join("rolling.img");
        // A sparse copy: each job's base is read back with SEEK_DATA, only where data is.
        crate::record::run(
            std::process::Command::new("cp")
                .arg("--sparse=always")
                .arg(&rec.base)
                .arg(&path),
        )
        .map_err(|e| CheckError::Io {
            what: "copying the base image".into(),
            source: io::Error::other(e.to_string()),
        })?;
        let cleanup = RemoveOnDrop(path.clone());
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(io_err("opening the rolling image"))?;
        Ok(Rolling {
            path,
            file,
            applied: 0,
            _cleanup: cleanup,
        })
    }

    /// The base of a job whose window starts at log entry `s`.
    pub(super) fn base_at(&mut self, rec: &Recording, s: usize) -> Result<Base, CheckError> {
        apply(rec, &self.file, self.applied..s)
            .map_err(io_err("rolling the base image forward"))?;
        self.applied = s;
        Base::open(&self.path).map_err(io_err("reading the job's base image"))
    }
}
