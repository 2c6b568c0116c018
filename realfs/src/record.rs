//! Recording: run jobs on a real file system whose every block write (with its FLUSH/FUA flags)
//! is logged by qemu's `blklogwrites` driver, on one of two backends behind [`Backend`]:
//!
//! - [`Host`]: `qemu-storage-daemon` exports the `blklogwrites` node as a file over FUSE; a loop
//!   device (direct I/O, so that writes reach the log in the order they complete) sits on it;
//!   the file system is mounted on the loop device and the jobs run on the machine's own kernel.
//! - [`Vm`]: a qemu guest (TCG) with a pinned Debian kernel boots with the disk attached through
//!   `blklogwrites`, and the static `unplug` binary runs the same session inside it
//!   (`unplug __guest`); the results come back on the serial console.
//!
//! Either way the result is a [`Recording`]: the freshly made file-system image (the base of
//! every crash image), the log, and what each job did. Nothing is left behind: a guard unmounts,
//! detaches, stops the daemon and removes the work files on every path out.

use crate::child::{self, interrupt};
use crate::session::{self, FsType, Job, JobOutcome, Marker, MARK_AREA};
use crate::wlog::{FileLog, Log, LogSource};
use serde::Serialize;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use unplug_model::ModelSpec;

/// A file system and its mount options.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FsConfig {
    pub fs: FsType,
    /// Mount options as given (ext4: `data=...`, `[no]delalloc`, `[no]auto_da_alloc`; xfs and
    /// btrfs: none).
    pub mount_opts: String,
}

/// Why recording failed.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("`{command}` failed: {detail}")]
    Command { command: String, detail: String },
    #[error("interrupted")]
    Interrupted,
    #[error("the write log: {0}")]
    Log(#[from] crate::wlog::LogError),
    #[error("the vm backend: {0}")]
    Vm(#[from] crate::vm::VmError),
    #[error("the guest: {0}")]
    Guest(String),
    #[error("{0}")]
    Config(String),
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> RecordError {
    let what = what.into();
    move |source| RecordError::Io { what, source }
}

impl FsConfig {
    /// Checks the options against the model (each maps to one model configuration).
    pub fn new(fs: FsType, mount_opts: &str) -> Result<FsConfig, RecordError> {
        let c = FsConfig {
            fs,
            mount_opts: mount_opts.trim().to_string(),
        };
        if fs != FsType::Ext4 && !c.mount_opts.is_empty() {
            return Err(RecordError::Config(format!(
                "{} takes no mount options here (got `{}`): the model has one configuration of it",
                fs.name(),
                c.mount_opts
            )));
        }
        c.model().map_err(RecordError::Config)?;
        Ok(c)
    }

    /// The model configuration with the same options.
    pub fn model(&self) -> Result<ModelSpec, String> {
        let s = if self.mount_opts.is_empty() {
            self.fs.name().to_string()
        } else {
            format!("{}:{}", self.fs.name(), self.mount_opts)
        };
        ModelSpec::parse(&s)
    }

    /// `ext4`, or `ext4 data=writeback,nodelalloc`.
    pub fn label(&self) -> String {
        if self.mount_opts.is_empty() {
            self.fs.name().to_string()
        } else {
            format!("{} {}", self.fs.name(), self.mount_opts)
        }
    }

    /// The size of the file system (the disk has [`MARK_AREA`] more, for marks).
    pub fn fs_bytes(&self) -> u64 {
        match self.fs {
            FsType::Ext4 | FsType::Xfs => 64 << 20,
            // mkfs.btrfs wants about 110 MiB without --mixed.
            FsType::Btrfs => 128 << 20,
        }
    }

    /// The mount(2) data string: the options, minus `fast_commit` (a mkfs feature), plus
    /// `nouuid` for xfs (images of one base are mounted side by side when checking).
    pub fn mount_data(&self) -> String {
        let mut v: Vec<&str> = self
            .mount_opts
            .split(',')
            .filter(|o| !o.is_empty() && *o != "fast_commit" && *o != "nofast_commit")
            .collect();
        if self.fs == FsType::Xfs {
            v.push("nouuid");
        }
        v.join(",")
    }

    /// Makes the file system on `image` (an existing file of the disk's size).
    pub fn mkfs(&self, image: &Path) -> Result<(), RecordError> {
        let size = self.fs_bytes();
        let mut cmd = match self.fs {
            FsType::Ext4 => {
                let mut c = Command::new("mkfs.ext4");
                c.args(["-q", "-F", "-b", "4096"]);
                if self.mount_opts.split(',').any(|o| o == "fast_commit") {
                    c.args(["-O", "fast_commit"]);
                }
                c.arg(image).arg(format!("{}k", size >> 10));
                c
            }
            FsType::Xfs => {
                let mut c = Command::new("mkfs.xfs");
                // mkfs.xfs refuses file systems under 300 MB unless it believes it runs under
                // xfstests.
                c.envs([("TEST_DIR", "1"), ("TEST_DEV", "1"), ("QA_CHECK_FS", "1")])
                    .args(["-q", "-f", "-d"])
                    .arg(format!("size={size}"))
                    .arg(image);
                c
            }
            FsType::Btrfs => {
                let mut c = Command::new("mkfs.btrfs");
                c.args(["-q", "-f", "-b"]).arg(size.to_string()).arg(image);
                c
            }
        };
        run(&mut cmd)
    }
}

/// Runs a short command; its stderr goes into the error.
pub fn run(cmd: &mut Command) -> Result<(), RecordError> {
    let text = format!("{cmd:?}").replace('"', "");
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| RecordError::Command {
            command: text.clone(),
            detail: e.to_string(),
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(RecordError::Command {
            command: text,
            detail: format!(
                "{}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        })
    }
}

/// Which backend recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    Host,
    Vm,
}

/// What a recording session left.
pub struct Recording {
    pub fs: FsConfig,
    pub backend: BackendKind,
    /// The kernel the jobs ran on (`uname -r` of the host or the guest).
    pub kernel: String,
    /// The file-system image as mkfs left it: every crash image starts from it.
    pub base: PathBuf,
    pub log: Log,
    /// The size of the file system: log writes at or past it are marks.
    pub fs_bytes: u64,
    pub jobs: Vec<JobOutcome>,
    /// The disk as the run left it, when the backend was asked to keep it.
    pub disk: Option<PathBuf>,
    /// Wall time of the session (mkfs to the log parsed).
    pub elapsed: Duration,
}

impl Recording {
    /// Renumbers job `job`'s marks: `Op(n)` becomes `Op(op_of(n))`, and a mark that names the
    /// same op as the job's mark before it is dropped (the log then has one mark per op
    /// boundary it saw; ops with no mark between them share a window). `unplug real --exec`
    /// marks after each traced call and numbers the marks by the ops the calls became.
    pub fn renumber_marks(&mut self, job: usize, op_of: &dyn Fn(usize) -> usize) {
        let fs_bytes = self.fs_bytes;
        let mut last: Option<usize> = None;
        self.log.entries.retain_mut(|e| {
            if !(e.is_write() && e.sector * 512 >= fs_bytes) {
                return true;
            }
            let Some((j, session::Mark::Op(n))) = session::decode_mark(&e.data) else {
                return true;
            };
            if j != job {
                return true;
            }
            let op = op_of(n);
            if last == Some(op) {
                return false;
            }
            last = Some(op);
            let seq = u64::from_le_bytes(e.data[24..32].try_into().unwrap_or([0; 8]));
            e.data[..512].copy_from_slice(&session::encode_mark(j, session::Mark::Op(op), seq));
            true
        });
    }
}

/// A way to record jobs.
pub trait Backend {
    fn kind(&self) -> BackendKind;
    /// Runs `jobs` on a fresh `cfg` file system in `work` (an existing directory that the
    /// recording's files go to), calling `progress` with the number of jobs done.
    fn record(
        &self,
        cfg: &FsConfig,
        jobs: &[Job],
        work: &Path,
        progress: &mut dyn FnMut(usize),
    ) -> Result<Recording, RecordError>;
}

/// Parses every job's program (the caller checked them with the model first).
fn programs(jobs: &[Job]) -> Result<Vec<(unplug_model::Program, session::Schedule)>, RecordError> {
    jobs.iter()
        .map(|j| {
            unplug_model::load(&j.source)
                .map(|(p, _)| (p, j.schedule.clone()))
                .map_err(|d| {
                    RecordError::Config(format!("{}: {} error(s) in the program", j.name, d.len()))
                })
        })
        .collect()
}

/// Creates `work/disk.img` with a fresh file system and keeps a copy as `work/base.img`.
fn make_disk(cfg: &FsConfig, work: &Path) -> Result<(PathBuf, PathBuf), RecordError> {
    let disk = work.join("disk.img");
    let base = work.join("base.img");
    let f = std::fs::File::create(&disk).map_err(io_err(format!("creating {}", disk.display())))?;
    f.set_len(cfg.fs_bytes() + MARK_AREA)
        .map_err(io_err("sizing the disk"))?;
    drop(f);
    cfg.mkfs(&disk)?;
    run(Command::new("cp")
        .arg("--sparse=always")
        .arg(&disk)
        .arg(&base))?;
    Ok((disk, base))
}

/// `uname -r`.
pub(crate) fn host_kernel() -> String {
    rustix::system::uname()
        .release()
        .to_string_lossy()
        .into_owned()
}

/// The host backend (see the module doc).
#[derive(Default)]
pub struct Host {
    /// Keep the disk as the run left it (in [`Recording::disk`]): the tests compare it with the
    /// base image plus the whole log replayed.
    pub keep_disk: bool,
}

/// Undoes the host backend's set-up in reverse order, on every path out.
#[derive(Default)]
struct HostGuard {
    daemon: Option<child::Guard>,
    export: Option<PathBuf>,
    loop_dev: Option<String>,
    mnt: Option<PathBuf>,
    mounted: bool,
}

impl HostGuard {
    fn teardown(&mut self) -> Result<(), RecordError> {
        let mut first_err = None;
        let mut note = |r: Result<(), RecordError>| {
            if let Err(e) = r {
                first_err.get_or_insert(e);
            }
        };
        if self.mounted {
            if let Some(m) = &self.mnt {
                note(umount(m));
            }
            self.mounted = false;
        }
        if let Some(m) = self.mnt.take() {
            let _ = std::fs::remove_dir(&m);
        }
        if let Some(dev) = self.loop_dev.take() {
            note(run(Command::new("losetup").arg("-d").arg(&dev)));
        }
        if let Some(mut d) = self.daemon.take() {
            // SIGTERM lets the daemon flush the log and unmount its FUSE export.
            if let Err(e) = d.stop(libc::SIGTERM) {
                note(Err(RecordError::Io {
                    what: "stopping qemu-storage-daemon".into(),
                    source: e,
                }));
            }
        }
        if let Some(e) = self.export.take() {
            let _ = std::fs::remove_file(e);
        }
        first_err.map_or(Ok(()), Err)
    }
}

impl Drop for HostGuard {
    fn drop(&mut self) {
        let _ = self.teardown();
    }
}

fn umount(m: &Path) -> Result<(), RecordError> {
    for _ in 0..50 {
        match rustix::mount::unmount(m, rustix::mount::UnmountFlags::empty()) {
            Ok(()) => return Ok(()),
            Err(rustix::io::Errno::BUSY) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(io_err(format!("unmounting {}", m.display()))(e.into())),
        }
    }
    Err(RecordError::Command {
        command: format!("umount {}", m.display()),
        detail: "still busy after 1 s".into(),
    })
}

/// Makes the kernel send the FUSE export one request at a time.
///
/// qemu-storage-daemon's FUSE export (seen with qemu 7.2 and 10.0) mixes up the data of
/// concurrent writes in the blklogwrites log: the disk gets the right bytes but a log entry can
/// carry another request's data (a replayed log then differs from the disk; measured: a
/// superblock write logged with a bitmap's bytes). With the connection's `max_background` at 1
/// the replay equals the disk (test `host_log_replays_to_the_disk`).
fn serialise_fuse(export: &Path) -> Result<(), RecordError> {
    use std::os::unix::fs::MetadataExt;
    let conns = Path::new("/sys/fs/fuse/connections");
    if std::fs::read_dir(conns)
        .map(|mut d| d.next().is_none())
        .unwrap_or(true)
    {
        // fusectl is not mounted (or the directory is empty because it is not).
        let _ = rustix::mount::mount(
            "fusectl",
            conns,
            "fusectl",
            rustix::mount::MountFlags::empty(),
            "",
        );
    }
    let dev = std::fs::metadata(export)
        .map_err(io_err("reading the FUSE export"))?
        .dev();
    let minor = rustix::fs::minor(dev);
    let knob = conns.join(minor.to_string()).join("max_background");
    std::fs::write(&knob, "1").map_err(io_err(format!(
        "setting {} (mount fusectl on /sys/fs/fuse/connections)",
        knob.display()
    )))
}

/// Waits until `export` is the FUSE export (it takes the disk's size).
fn wait_for_export(export: &Path, size: u64, daemon: &mut child::Guard) -> Result<(), RecordError> {
    let start = Instant::now();
    loop {
        if std::fs::metadata(export).map(|m| m.len()).unwrap_or(0) == size {
            return Ok(());
        }
        if let Some(c) = daemon.child() {
            if let Ok(Some(status)) = c.try_wait() {
                return Err(RecordError::Command {
                    command: "qemu-storage-daemon".into(),
                    detail: format!("exited early: {status}"),
                });
            }
        }
        if start.elapsed() > Duration::from_secs(10) {
            return Err(RecordError::Command {
                command: "qemu-storage-daemon".into(),
                detail: "its FUSE export did not appear within 10 s".into(),
            });
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

impl Backend for Host {
    fn kind(&self) -> BackendKind {
        BackendKind::Host
    }

    fn record(
        &self,
        cfg: &FsConfig,
        jobs: &[Job],
        work: &Path,
        progress: &mut dyn FnMut(usize),
    ) -> Result<Recording, RecordError> {
        let programs = programs(jobs)?;
        self.record_with(cfg, work, &mut |mnt, marker| {
            session::run_jobs(
                cfg.fs,
                mnt,
                marker,
                &programs,
                &interrupt::interrupted,
                progress,
            )
        })
    }
}

/// What runs on the mounted file system of a host recording: given the mount point and the
/// marker of its device, the jobs' outcomes (an error of kind `Interrupted` is an interruption).
pub type SessionFn<'a> = dyn FnMut(&Path, &mut Marker) -> io::Result<Vec<JobOutcome>> + 'a;

impl Host {
    /// Records whatever `session` does on a fresh `cfg` file system in `work` (see
    /// [`Backend::record`], which runs `.up` jobs this way; `unplug real --exec` runs an
    /// application).
    pub fn record_with(
        &self,
        cfg: &FsConfig,
        work: &Path,
        session: &mut SessionFn,
    ) -> Result<Recording, RecordError> {
        let start = Instant::now();
        let (disk, base) = make_disk(cfg, work)?;
        let log_path = work.join("write.log");
        let export = work.join("export");
        for p in [&log_path, &export] {
            std::fs::File::create(p).map_err(io_err(format!("creating {}", p.display())))?;
        }
        let mut g = HostGuard::default();
        g.export = Some(export.clone());
        let blockdev = |s: String| ["--blockdev".to_string(), s];
        let esc = |p: &Path| p.display().to_string().replace(',', ",,");
        let mut cmd = Command::new("qemu-storage-daemon");
        cmd.args(blockdev(format!(
            "driver=file,node-name=disk0,filename={}",
            esc(&disk)
        )))
        .args(blockdev(format!(
            "driver=file,node-name=log0,filename={}",
            esc(&log_path)
        )))
        .args(blockdev(
            "driver=blklogwrites,node-name=lw0,file=disk0,log=log0,log-sector-size=512".into(),
        ))
        .arg("--export")
        .arg(format!(
            "type=fuse,id=exp0,node-name=lw0,mountpoint={},writable=on",
            esc(&export)
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        child::contain(&mut cmd);
        let daemon = cmd.spawn().map_err(io_err(
            "starting qemu-storage-daemon (apt install qemu-system-common)",
        ))?;
        let daemon = g.daemon.insert(child::Guard::new(daemon));
        wait_for_export(&export, cfg.fs_bytes() + MARK_AREA, daemon)?;
        serialise_fuse(&export)?;
        let out = Command::new("losetup")
            .args(["-f", "--show", "--direct-io=on"])
            .arg(&export)
            .output()
            .map_err(io_err("running losetup"))?;
        if !out.status.success() {
            return Err(RecordError::Command {
                command: "losetup -f --show --direct-io=on".into(),
                detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        let dev = String::from_utf8_lossy(&out.stdout).trim().to_string();
        g.loop_dev = Some(dev.clone());
        let mnt = work.join("mnt");
        std::fs::create_dir_all(&mnt).map_err(io_err("creating the mount point"))?;
        g.mnt = Some(mnt.clone());
        let mut mount = Command::new("mount");
        mount.args(["-t", cfg.fs.name()]);
        let data = cfg.mount_data();
        if !data.is_empty() {
            mount.args(["-o", &data]);
        }
        run(mount.arg(&dev).arg(&mnt))?;
        g.mounted = true;
        let mut marker = Marker::open(Path::new(&dev), cfg.fs_bytes())
            .map_err(io_err(format!("opening {dev} for marks")))?;
        let outcomes = session(&mnt, &mut marker).map_err(|e| {
            if e.kind() == io::ErrorKind::Interrupted {
                RecordError::Interrupted
            } else {
                RecordError::Io {
                    what: "running the jobs".into(),
                    source: e,
                }
            }
        })?;
        drop(marker);
        g.teardown()?;
        let log = FileLog(log_path.clone()).read_log()?;
        // The disk itself is not needed any more: crash images start from the base.
        let _ = std::fs::remove_file(&log_path);
        let disk = if self.keep_disk {
            Some(disk)
        } else {
            let _ = std::fs::remove_file(&disk);
            None
        };
        Ok(Recording {
            disk,
            fs: cfg.clone(),
            backend: BackendKind::Host,
            kernel: host_kernel(),
            base,
            log,
            fs_bytes: cfg.fs_bytes(),
            jobs: outcomes,
            elapsed: start.elapsed(),
        })
    }
}

/// What the guest runs: the jobs and where they go. Travels as `/jobs.json` in the initramfs.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct GuestSpec {
    pub fs: FsType,
    /// The mount(2) data string.
    pub mount_data: String,
    pub fs_bytes: u64,
    pub jobs: Vec<Job>,
}

/// The prefix of the guest's result line on the serial console.
pub const GUEST_RESULT: &str = "UNPLUG-RESULT ";

/// The guest side of the vm backend (`unplug __guest SPEC`): mounts `/dev/vda`, runs the
/// session, unmounts, and prints one result line ([`GUEST_RESULT`] and the outcomes as JSON).
pub fn guest_main(spec_path: &Path) -> Result<(), RecordError> {
    let text = std::fs::read_to_string(spec_path)
        .map_err(io_err(format!("reading {}", spec_path.display())))?;
    let spec: GuestSpec =
        serde_json::from_str(&text).map_err(|e| RecordError::Guest(format!("bad spec: {e}")))?;
    let programs = programs(&spec.jobs)?;
    let outcomes = guest_session(
        spec.fs,
        &spec.mount_data,
        spec.fs_bytes,
        &mut |mnt, marker| {
            session::run_jobs(spec.fs, mnt, marker, &programs, &|| false, &mut |_| {})
        },
    )?;
    let line = serde_json::to_string(&outcomes).map_err(|e| RecordError::Guest(e.to_string()))?;
    println!("{GUEST_RESULT}{line}");
    Ok(())
}

/// In the guest: mounts `/dev/vda` (an `fs` file system of `fs_bytes` bytes, mount data
/// `mount_data`) on `/mnt`, runs `session` there with the device's marker, and unmounts.
pub fn guest_session<T>(
    fs: FsType,
    mount_data: &str,
    fs_bytes: u64,
    session: &mut dyn FnMut(&Path, &mut Marker) -> io::Result<T>,
) -> Result<T, RecordError> {
    let dev = Path::new("/dev/vda");
    let mnt = Path::new("/mnt");
    std::fs::create_dir_all(mnt).map_err(io_err("creating /mnt"))?;
    rustix::mount::mount(
        dev,
        mnt,
        fs.name(),
        rustix::mount::MountFlags::empty(),
        mount_data,
    )
    .map_err(|e| io_err("mounting /dev/vda")(e.into()))?;
    let mut marker = Marker::open(dev, fs_bytes).map_err(io_err("opening /dev/vda for marks"))?;
    let out = session(mnt, &mut marker).map_err(io_err("running the jobs"));
    drop(marker);
    let unmounted = umount(mnt);
    let out = out?;
    unmounted?;
    Ok(out)
}

/// The vm backend (see the module doc).
pub struct Vm;

impl Backend for Vm {
    fn kind(&self) -> BackendKind {
        BackendKind::Vm
    }

    fn record(
        &self,
        cfg: &FsConfig,
        jobs: &[Job],
        work: &Path,
        progress: &mut dyn FnMut(usize),
    ) -> Result<Recording, RecordError> {
        programs(jobs)?;
        let spec = GuestSpec {
            fs: cfg.fs,
            mount_data: cfg.mount_data(),
            fs_bytes: cfg.fs_bytes(),
            jobs: jobs.to_vec(),
        };
        let spec = serde_json::to_vec(&spec).map_err(|e| RecordError::Guest(e.to_string()))?;
        let guest = GuestRun {
            files: vec![("/jobs.json".into(), spec, 0o644)],
            command: "/unplug __guest /jobs.json".into(),
            // TCG runs about 10x slower than the host; give long job lists room.
            timeout: Duration::from_secs(120 + 2 * jobs.len() as u64),
        };
        let (mut rec, line) = self.record_with(cfg, work, guest)?;
        rec.jobs = serde_json::from_str(&line)
            .map_err(|e| RecordError::Guest(format!("bad result: {e}")))?;
        progress(rec.jobs.len());
        Ok(rec)
    }
}

/// What a guest runs besides the static unplug (`/unplug`): files to add to its initramfs
/// (absolute guest path, content, mode), its command (run by `sh` after the devices are up),
/// which must print one line starting with [`GUEST_RESULT`], and how long it may take.
pub struct GuestRun {
    pub files: Vec<(String, Vec<u8>, u32)>,
    pub command: String,
    pub timeout: Duration,
}

impl Vm {
    /// Boots a guest on a fresh `cfg` file system (`/dev/vda`, every write logged) that runs
    /// `guest`: the recording (with no job outcomes) and the guest's result line (after
    /// [`GUEST_RESULT`]). `unplug real --exec --backend vm` runs an application this way.
    pub fn record_with(
        &self,
        cfg: &FsConfig,
        work: &Path,
        guest: GuestRun,
    ) -> Result<(Recording, String), RecordError> {
        let start = Instant::now();
        let kernel = crate::vm::find_kernel()?;
        let unplug = crate::vm::static_binary()?;
        let (disk, base) = make_disk(cfg, work)?;
        let binary =
            std::fs::read(&unplug).map_err(io_err(format!("reading {}", unplug.display())))?;
        let initramfs = work.join("initramfs.cpio");
        let mut files = guest.files;
        files.push(("/unplug".into(), binary, 0o755));
        files.push((
            "/guest-cmd".into(),
            format!("{}\n", guest.command).into_bytes(),
            0o755,
        ));
        crate::vm::build_initramfs(&kernel, cfg.fs.name(), &files, &initramfs)?;
        let log_path = work.join("write.log");
        let mut boot = crate::vm::Boot::new(kernel, &initramfs, &disk, &log_path);
        boot.timeout = guest.timeout;
        let run = crate::vm::boot(&boot)?;
        let _ = std::fs::remove_file(&initramfs);
        let out = run.output();
        let Some(line) = out
            .lines()
            .find_map(|l| l.trim().strip_prefix(GUEST_RESULT))
        else {
            let tail: Vec<&str> = out.lines().rev().take(20).collect();
            return Err(RecordError::Guest(format!(
                "no result line (status {}); last output:\n{}",
                run.status,
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            )));
        };
        let line = line.to_string();
        let log = FileLog(log_path.clone()).read_log()?;
        let _ = std::fs::remove_file(&disk);
        let _ = std::fs::remove_file(&log_path);
        let rec = Recording {
            disk: None,
            fs: cfg.clone(),
            backend: BackendKind::Vm,
            kernel: run.kernel_version,
            base,
            log,
            fs_bytes: cfg.fs_bytes(),
            jobs: Vec::new(),
            elapsed: start.elapsed(),
        };
        Ok((rec, line))
    }
}
