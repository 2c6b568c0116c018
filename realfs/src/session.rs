//! A recording session: many jobs (a program under one schedule of background events) run one
//! after another on one mounted file system, with marks in the block-write log between ops.
//!
//! The same code runs on the host (the host backend, on a loop device) and inside a guest (the
//! vm backend, on `/dev/vda`): it needs only a mounted directory and the block device under it.
//!
//! ## A job's life
//! 1. `JOB/` with an empty `JOB/root/` (the program's root) and `JOB/aux` (a file outside the
//!    program's tree, used to cause journal commits) are created and made durable (`syncfs`).
//! 2. The runner runs the setup and `syncfs`es it; a mark [`Mark::Op`]`(0)` is written.
//! 3. After op `n` returns: mark `Op(n)`, then the schedule's events for gap `n`.
//! 4. After the last op and closing everything: mark [`Mark::End`], `syncfs` (what the kernel
//!    writes then is still crash point `n`: its background writeback, forced), then the job's
//!    directory is removed and that made durable, outside any job's window.
//!
//! ## Marks
//! A mark is one 512-byte sector written with `O_DIRECT` and no flush to the reserved area past
//! the end of the file system, so it lands in the log exactly between the writes that completed
//! before and after it: it says which op had returned when. Its bytes are [`MARK_MAGIC`], the
//! job index, the step and a sequence number (little-endian u64s).
//!
//! ## Data names
//! Every job writes its data under names salted with the job index (`A` becomes `A~j3`), so that
//! blocks a later job reuses after an earlier one's files were deleted read back as unknown
//! (stale) bytes, not as the later job's own data.

use crate::runner::{run_with, RunError, RunLog, Step};
use rustix::fd::OwnedFd;
use rustix::fs::{Mode, OFlags};
use serde::{Deserialize, Serialize};
use std::io;
use std::path::{Path as StdPath, PathBuf};
use unplug_model::Program;

/// The first 8 bytes of a mark sector.
pub const MARK_MAGIC: &[u8; 8] = b"UNPLUGMK";
/// The size of the reserved area past the end of the file system that marks go to.
pub const MARK_AREA: u64 = 1 << 20;
/// The sector size of marks.
const MARK_SECTOR: usize = 512;

/// A background event a schedule causes between two ops.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Event {
    /// Commit the running journal transaction (ext4, xfs: write and fsync the job's `aux` file,
    /// which commits everything in the transaction with it; btrfs: a transaction commit by
    /// `BTRFS_IOC_START_SYNC` + `BTRFS_IOC_WAIT_SYNC`, which does not flush delalloc data).
    Commit,
    /// Write back the dirty pages of every regular file of the program's tree, without a
    /// journal commit: `sync_file_range(WAIT_BEFORE | WRITE | WAIT_AFTER)`.
    Writeback,
}

impl Event {
    pub fn name(self) -> &'static str {
        match self {
            Event::Commit => "commit",
            Event::Writeback => "writeback",
        }
    }
}

/// Background events to cause after chosen ops: `(n, events)` runs `events` in order after op
/// `n` returned (and its mark was written).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schedule {
    pub at: Vec<(usize, Vec<Event>)>,
    /// Events after every op (`unplug real --exec`, where the number of ops is known only
    /// after the run).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub every: Vec<Event>,
}

impl Schedule {
    /// Short text: `plain`, or e.g. `commit@2 writeback+commit@3`.
    pub fn name(&self) -> String {
        if !self.every.is_empty() {
            let names: Vec<&str> = self.every.iter().map(|e| e.name()).collect();
            return format!("{} after every call", names.join("+"));
        }
        if self.at.iter().all(|(_, e)| e.is_empty()) {
            return "plain".into();
        }
        self.at
            .iter()
            .filter(|(_, e)| !e.is_empty())
            .map(|(n, e)| {
                let names: Vec<&str> = e.iter().map(|e| e.name()).collect();
                format!("{}@{n}", names.join("+"))
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn events_after(&self, n: usize) -> impl Iterator<Item = Event> + '_ {
        self.at
            .iter()
            .filter(move |(m, _)| *m == n)
            .flat_map(|(_, e)| e.iter().copied())
            .chain(self.every.iter().copied().filter(move |_| n > 0))
    }

    /// The schedules a program of `ops` ops is run under: no events; a commit after every op;
    /// writeback after every op; and for each op, a commit, a writeback, and a writeback then a
    /// commit after that op alone. A commit alone makes metadata durable before the data
    /// (the states a rename-before-data bug shows); writeback alone makes data durable before
    /// metadata; both in turn give the states in between.
    pub fn all_for(ops: usize) -> Vec<Schedule> {
        let every = |e: Vec<Event>| Schedule {
            at: (1..=ops).map(|n| (n, e.clone())).collect(),
            every: Vec::new(),
        };
        let mut out = vec![Schedule::default()];
        if ops == 0 {
            return out;
        }
        out.push(every(vec![Event::Commit]));
        out.push(every(vec![Event::Writeback]));
        for n in 1..=ops {
            for e in [
                vec![Event::Commit],
                vec![Event::Writeback],
                vec![Event::Writeback, Event::Commit],
            ] {
                out.push(Schedule {
                    at: vec![(n, e)],
                    every: Vec::new(),
                });
            }
        }
        out
    }
}

/// A program to run under a schedule. `source` is the program text (jobs travel to a guest as
/// JSON).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Job {
    /// The program's text.
    pub source: String,
    /// A name for reports (the program's file name).
    pub name: String,
    pub schedule: Schedule,
}

/// Which file system a session runs on (the events differ).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FsType {
    Ext4,
    Xfs,
    Btrfs,
}

impl FsType {
    pub fn name(self) -> &'static str {
        match self {
            FsType::Ext4 => "ext4",
            FsType::Xfs => "xfs",
            FsType::Btrfs => "btrfs",
        }
    }
    pub fn parse(s: &str) -> Option<FsType> {
        match s {
            "ext4" => Some(FsType::Ext4),
            "xfs" => Some(FsType::Xfs),
            "btrfs" => Some(FsType::Btrfs),
            _ => None,
        }
    }
}

/// A step a mark records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mark {
    /// Op `n` of the job had returned (`0`: the setup was durable).
    Op(usize),
    /// The job's last op had returned and everything was closed; the `syncfs` that follows is
    /// still the job's last crash point.
    End,
}

const END_STEP: u64 = u64::MAX;

/// The bytes of a mark sector.
pub(crate) fn encode_mark(job: usize, mark: Mark, seq: u64) -> [u8; MARK_SECTOR] {
    let mut b = [0u8; MARK_SECTOR];
    b[..8].copy_from_slice(MARK_MAGIC);
    b[8..16].copy_from_slice(&(job as u64).to_le_bytes());
    let step = match mark {
        Mark::Op(n) => n as u64,
        Mark::End => END_STEP,
    };
    b[16..24].copy_from_slice(&step.to_le_bytes());
    b[24..32].copy_from_slice(&seq.to_le_bytes());
    b
}

/// The job and step of a mark sector's bytes; `None` for anything else.
pub fn decode_mark(bytes: &[u8]) -> Option<(usize, Mark)> {
    if bytes.len() < 32 || &bytes[..8] != MARK_MAGIC {
        return None;
    }
    let u = |r: std::ops::Range<usize>| u64::from_le_bytes(bytes[r].try_into().unwrap_or([0; 8]));
    let job = usize::try_from(u(8..16)).ok()?;
    let step = u(16..24);
    let mark = if step == END_STEP {
        Mark::End
    } else {
        Mark::Op(usize::try_from(step).ok()?)
    };
    Some((job, mark))
}

/// What one job did.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct JobOutcome {
    /// Timings of the real run, or why it failed.
    pub run: Result<RunLog, String>,
}

/// Writes marks to the block device under the file system.
pub struct Marker {
    dev: OwnedFd,
    /// The byte offset of the reserved area (the file system's size).
    area: u64,
    seq: u64,
    buf: Vec<u8>,
    at: usize,
}

impl Marker {
    /// Opens `device` for `O_DIRECT` writes; marks go to `[fs_bytes, fs_bytes + MARK_AREA)`.
    pub fn open(device: &StdPath, fs_bytes: u64) -> io::Result<Marker> {
        let dev = rustix::fs::open(
            device,
            OFlags::WRONLY | OFlags::DIRECT | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let buf = vec![0u8; 2 * 4096];
        let at = buf.as_ptr().align_offset(4096);
        Ok(Marker {
            dev,
            area: fs_bytes,
            seq: 0,
            buf,
            at,
        })
    }

    /// Writes one mark (and waits for it: `O_DIRECT` without `O_SYNC` completes the write on the
    /// device, with no flush).
    pub fn mark(&mut self, job: usize, mark: Mark) -> io::Result<()> {
        let sector = encode_mark(job, mark, self.seq);
        let slot = self.seq % (MARK_AREA / MARK_SECTOR as u64);
        self.seq += 1;
        let buf = &mut self.buf[self.at..self.at + MARK_SECTOR];
        buf.copy_from_slice(&sector);
        let n = rustix::io::pwrite(&self.dev, buf, self.area + slot * MARK_SECTOR as u64)?;
        if n != MARK_SECTOR {
            return Err(io::Error::new(io::ErrorKind::WriteZero, "short mark write"));
        }
        Ok(())
    }
}

/// The program with every data name salted for job `job` (see the module doc).
pub fn salted(program: &Program, job: usize) -> Program {
    let mut p = program.clone();
    for op in p.setup.iter_mut().chain(p.ops.iter_mut()) {
        if let Some(data) = op.kind.data_mut() {
            *data = salt(data, job);
        }
    }
    p
}

/// A data name salted for job `job`.
pub(crate) fn salt(name: &str, job: usize) -> String {
    format!("{name}~j{job}")
}

/// The directory of job `job` under the mount point.
pub(crate) fn job_dir(mnt: &StdPath, job: usize) -> PathBuf {
    mnt.join(format!("job{job}"))
}

/// Runs every job in turn on the file system mounted at `mnt`, whose block device `marker`
/// writes to. `parse` turns a job's source into a program (jobs were checked before).
/// `interrupted` is polled between jobs; when it says so, the session stops early with
/// [`io::ErrorKind::Interrupted`].
pub(crate) fn run_jobs(
    fs: FsType,
    mnt: &StdPath,
    marker: &mut Marker,
    jobs: &[(Program, Schedule)],
    interrupted: &dyn Fn() -> bool,
    progress: &mut dyn FnMut(usize),
) -> io::Result<Vec<JobOutcome>> {
    let mut out = Vec::with_capacity(jobs.len());
    for (j, (program, schedule)) in jobs.iter().enumerate() {
        if interrupted() {
            return Err(io::Error::new(io::ErrorKind::Interrupted, "interrupted"));
        }
        out.push(run_job(fs, mnt, marker, j, program, schedule)?);
        progress(j + 1);
    }
    Ok(out)
}

fn syncfs(dir: &StdPath) -> io::Result<()> {
    let fd = rustix::fs::open(dir, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty())?;
    rustix::fs::syncfs(&fd)?;
    Ok(())
}

/// Runs one job; an error of the program's run is the job's outcome, an error of the session's
/// own work (marks, directories) ends the session.
fn run_job(
    fs: FsType,
    mnt: &StdPath,
    marker: &mut Marker,
    j: usize,
    program: &Program,
    schedule: &Schedule,
) -> io::Result<JobOutcome> {
    let program = salted(program, j);
    run_job_with(fs, mnt, marker, j, schedule, &mut |root, step| {
        let run = run_with(&program, root, &mut |s| match s {
            Step::BeforeSetup => Ok(()),
            Step::AfterSetup => step(0),
            Step::AfterOp(n) => step(n),
        });
        match run {
            // A failing mark or event is the session's failure, not the program's.
            Err(RunError::Hook { source, .. }) => Err(source),
            run => Ok(run.map_err(|e| e.to_string())),
        }
    })
}

/// What a job does in its root: it calls `step(0)` once its starting tree is durable (after a
/// `syncfs`) and `step(n)` after its op `n` returned (each writes the mark and causes the
/// schedule's events; an error from `step` must be returned as the session's error), and says
/// how its own run went.
pub type JobBody<'a> = dyn FnMut(&StdPath, &mut dyn FnMut(usize) -> io::Result<()>) -> io::Result<Result<RunLog, String>>
    + 'a;

/// Runs one job whose ops are whatever `body` does in the job's root (a program's ops, or an
/// application under the tracer: `unplug real --exec`), as the module doc says.
pub fn run_job_with(
    fs: FsType,
    mnt: &StdPath,
    marker: &mut Marker,
    j: usize,
    schedule: &Schedule,
    body: &mut JobBody,
) -> io::Result<JobOutcome> {
    let dir = job_dir(mnt, j);
    let root = dir.join("root");
    let aux = dir.join("aux");
    std::fs::create_dir(&dir)?;
    std::fs::create_dir(&root)?;
    std::fs::write(&aux, b"aux")?;
    syncfs(mnt)?;
    let run = body(&root, &mut |n| {
        marker.mark(j, Mark::Op(n))?;
        for e in schedule.events_after(n) {
            cause(fs, e, &root, &aux)?;
        }
        Ok(())
    })?;
    marker.mark(j, Mark::End)?;
    syncfs(mnt)?;
    std::fs::remove_dir_all(&dir)?;
    syncfs(mnt)?;
    Ok(JobOutcome { run })
}

/// `syncfs` of the file system holding `dir`.
pub fn syncfs_of(dir: &StdPath) -> io::Result<()> {
    syncfs(dir)
}

// BTRFS_IOC_START_SYNC = _IOR(0x94, 24, __u64); BTRFS_IOC_WAIT_SYNC = _IOW(0x94, 22, __u64)
// (include/uapi/linux/btrfs.h).
const BTRFS_IOC_START_SYNC: libc::c_ulong = 0x8008_9418;
const BTRFS_IOC_WAIT_SYNC: libc::c_ulong = 0x4008_9416;

/// Causes one background event.
fn cause(fs: FsType, e: Event, root: &StdPath, aux: &StdPath) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    match e {
        Event::Commit => {
            let f = std::fs::OpenOptions::new().write(true).open(aux)?;
            if fs == FsType::Btrfs {
                let mut transid: u64 = 0;
                // SAFETY: the ioctls take a pointer to a u64 that lives across the calls.
                let r = unsafe {
                    libc::ioctl(
                        f.as_raw_fd(),
                        BTRFS_IOC_START_SYNC,
                        &mut transid as *mut u64,
                    )
                };
                if r != 0 {
                    return Err(io::Error::last_os_error());
                }
                // SAFETY: as above.
                let r = unsafe {
                    libc::ioctl(f.as_raw_fd(), BTRFS_IOC_WAIT_SYNC, &transid as *const u64)
                };
                if r != 0 {
                    return Err(io::Error::last_os_error());
                }
            } else {
                use std::os::unix::fs::FileExt;
                f.write_all_at(b"A", 0)?;
                f.sync_all()?;
            }
        }
        Event::Writeback => {
            for path in regular_files(root)? {
                let f = std::fs::File::open(&path)?;
                let flags = libc::SYNC_FILE_RANGE_WAIT_BEFORE
                    | libc::SYNC_FILE_RANGE_WRITE
                    | libc::SYNC_FILE_RANGE_WAIT_AFTER;
                // SAFETY: `f` is open; no memory is passed.
                let r = unsafe { libc::sync_file_range(f.as_raw_fd(), 0, 0, flags) };
                if r != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
        }
    }
    Ok(())
}

/// Every regular file under `dir`, in path order (symlinks are not followed).
fn regular_files(dir: &StdPath) -> io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let t = e.file_type()?;
        if t.is_dir() {
            out.extend(regular_files(&e.path())?);
        } else if t.is_file() {
            out.push(e.path());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_round_trip_and_nothing_else_decodes() {
        for (job, mark) in [(0, Mark::Op(0)), (7, Mark::Op(12)), (3, Mark::End)] {
            assert_eq!(decode_mark(&encode_mark(job, mark, 99)), Some((job, mark)));
        }
        assert_eq!(decode_mark(&[0u8; 512]), None);
        assert_eq!(decode_mark(b"UNPLUGMK"), None);
    }

    #[test]
    fn schedules_cover_every_gap_once_per_kind() {
        let s = Schedule::all_for(3);
        assert_eq!(s.len(), 3 + 3 * 3);
        let names: Vec<String> = s.iter().map(Schedule::name).collect();
        assert_eq!(names[0], "plain");
        assert_eq!(names[1], "commit@1 commit@2 commit@3");
        assert!(names.contains(&"writeback+commit@2".to_string()));
        let unique: std::collections::BTreeSet<_> = names.iter().collect();
        assert_eq!(unique.len(), names.len());
        assert_eq!(Schedule::all_for(0).len(), 1);
    }

    #[test]
    fn salting_renames_every_data_and_nothing_else() {
        let (p, _) = unplug_model::load(
            "setup\n  f = open a create\n  write f 10 X\nend\ng = open b create\npwrite g 0 5 Y\nfsync g\n",
        )
        .unwrap();
        let s = salted(&p, 4);
        let names: Vec<String> = s
            .setup
            .iter()
            .chain(&s.ops)
            .filter_map(|o| o.kind.data().map(str::to_string))
            .collect();
        assert_eq!(names, ["X~j4", "Y~j4"]);
        assert_eq!(s.ops.len(), p.ops.len());
    }
}
