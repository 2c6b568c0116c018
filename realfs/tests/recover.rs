//! End to end on real file systems: a workload's block writes are recorded with
//! `qemu-storage-daemon`'s `blklogwrites` driver (the host backend of REALFS.md), the log is
//! parsed, crash images are planned and built, and each is recovered by the kernel and read.
//!
//! These tests need root, loop devices, `/dev/fuse`, `qemu-storage-daemon` and
//! mkfs.{ext4,xfs,btrfs}, as the project's machines and CI have. They print the images per
//! second they reach with two threads (the target: 100 per second for small images in
//! tmpfs).

use rayon::prelude::*;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use unplug_realfs::crash::{plan, write_image, Base, CrashImage, Event, ImageKind, PlanOptions};
use unplug_realfs::recover::{with_mounted, RecoverError};
use unplug_realfs::wlog::{FileLog, Log, LogSource};

struct Fs {
    name: &'static str,
    size: u64,
    options: &'static str,
}

const EXT4: Fs = Fs {
    name: "ext4",
    size: 32 << 20,
    options: "",
};
const XFS: Fs = Fs {
    name: "xfs",
    size: 64 << 20,
    options: "nouuid",
};
const BTRFS: Fs = Fs {
    name: "btrfs",
    size: 128 << 20,
    options: "",
};

fn mkfs(fs: &Fs, img: &Path) {
    File::create(img).unwrap().set_len(fs.size).unwrap();
    let mut cmd = Command::new(format!("mkfs.{}", fs.name));
    match fs.name {
        "ext4" => cmd.args(["-q", "-F"]),
        // mkfs.xfs refuses file systems under 300 MB without these.
        "xfs" => cmd
            .args(["-q", "-f"])
            .env("TEST_DIR", "1")
            .env("TEST_DEV", "1")
            .env("QA_CHECK_FS", "1"),
        _ => cmd.args(["-q", "-f"]),
    };
    let out = cmd.arg(img).output().unwrap();
    assert!(out.status.success(), "mkfs.{}: {:?}", fs.name, out);
}

/// The data of file `name`: every byte says which file and offset it is.
fn pattern(name: &str, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| name.as_bytes()[0].wrapping_add((i / 512) as u8) ^ (i as u8))
        .collect()
}

const F_LEN: usize = 256 << 10;
const G_LEN: usize = 8 << 10;

/// Writes f.tmp, fsyncs it, renames it to f, fsyncs the directory; then writes g with no sync.
fn workload(root: &Path) {
    let mut f = File::create(root.join("f.tmp")).unwrap();
    f.write_all(&pattern("f", F_LEN)).unwrap();
    f.sync_all().unwrap();
    std::fs::rename(root.join("f.tmp"), root.join("f")).unwrap();
    File::open(root).unwrap().sync_all().unwrap();
    std::fs::write(root.join("g"), pattern("g", G_LEN)).unwrap();
}

struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        // SIGTERM lets the daemon unmount its FUSE export and finish the log.
        // SAFETY: kill(2) on our own child's pid.
        #[allow(unsafe_code)]
        unsafe {
            libc::kill(self.0.id() as i32, libc::SIGTERM)
        };
        let _ = self.0.wait();
    }
}

/// Records the workload on a fresh `fs` in `dir`; returns the base image, the disk after the
/// run, and the log.
fn record(fs: &Fs, dir: &Path) -> (PathBuf, PathBuf, Log) {
    let base = dir.join("base.img");
    let disk = dir.join("disk.img");
    let wlog = dir.join("run.wlog");
    let export = dir.join("export");
    mkfs(fs, &base);
    std::fs::copy(&base, &disk).unwrap();
    File::create(&wlog).unwrap();
    File::create(&export).unwrap();
    let child = Command::new("qemu-storage-daemon")
        .arg("--blockdev")
        .arg(format!(
            "driver=file,node-name=disk0,filename={}",
            disk.display()
        ))
        .arg("--blockdev")
        .arg(format!(
            "driver=file,node-name=log0,filename={}",
            wlog.display()
        ))
        .arg("--blockdev")
        .arg("driver=blklogwrites,node-name=lw0,file=disk0,log=log0,log-sector-size=512")
        .arg("--export")
        .arg(format!(
            "type=fuse,id=exp0,node-name=lw0,mountpoint={},writable=on",
            export.display()
        ))
        .stdout(Stdio::null())
        .spawn()
        .expect("qemu-storage-daemon");
    let mut daemon = Daemon(child);
    let t = Instant::now();
    while std::fs::metadata(&export).unwrap().len() != fs.size {
        assert!(
            daemon.0.try_wait().unwrap().is_none(),
            "qemu-storage-daemon exited"
        );
        assert!(t.elapsed() < Duration::from_secs(20), "no FUSE export");
        std::thread::sleep(Duration::from_millis(10));
    }
    with_mounted(&export, fs.name, fs.options, workload).unwrap();
    drop(daemon);
    let log = FileLog(wlog).read_log().unwrap();
    (base, disk, log)
}

/// The caller's side of [`plan`]: entries to events, with a mark before and after the run.
fn events(log: &Log) -> Vec<Event> {
    let mut ev = vec![Event::Mark(0)];
    for (i, e) in log.entries.iter().enumerate() {
        if e.is_write() {
            ev.push(Event::Write {
                entry: i,
                fua: e.is_fua(),
            });
        }
        if e.is_flush() {
            ev.push(Event::Flush);
        }
    }
    ev.push(Event::Mark(1));
    ev
}

/// What an image holds: f (None when absent), g.
fn read(root: &Path) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
    (
        std::fs::read(root.join("f")).ok(),
        std::fs::read(root.join("g")).ok(),
    )
}

fn shm() -> tempfile::TempDir {
    tempfile::tempdir_in("/dev/shm").unwrap()
}

/// Records, plans, recovers every image with two threads, checks what each holds, prints the
/// rate.
fn end_to_end(fs: &Fs) {
    let dir = shm();
    let (base, disk, log) = record(fs, dir.path());
    assert_eq!(log.sector_size, 512);
    assert_eq!(log.ignored_tail_bytes, 0);
    let flushes = log.entries.iter().filter(|e| e.is_flush()).count();
    let writes = log.entries.iter().filter(|e| e.is_write()).count();
    let fua = log.entries.iter().filter(|e| e.is_fua()).count();
    assert!(
        flushes >= 2 && writes >= 4,
        "{flushes} flushes, {writes} writes"
    );

    // Every write replayed on the base gives the disk the run left, byte for byte.
    let ev = events(&log);
    let all: Vec<usize> = (0..log.entries.len())
        .filter(|&i| log.entries[i].is_write())
        .collect();
    let full = CrashImage {
        writes: all,
        lo: 1,
        hi: 1,
        kind: ImageKind::Prefix,
    };
    let replayed = dir.path().join("replayed.img");
    write_image(&base, &log, &full, &replayed).unwrap();
    assert!(
        std::fs::read(&replayed).unwrap() == std::fs::read(&disk).unwrap(),
        "{}: replayed log differs from the disk",
        fs.name
    );
    let (f, g) = with_mounted(&replayed, fs.name, fs.options, read).unwrap();
    assert_eq!(f.as_deref(), Some(&pattern("f", F_LEN)[..]));
    assert_eq!(g.as_deref(), Some(&pattern("g", G_LEN)[..]));

    let opts = PlanOptions {
        max_images: Some(400),
        torn: true,
        ..PlanOptions::default()
    };
    let images = plan(&log, &ev, 1, &opts);
    assert!(images.iter().any(|i| i.writes.is_empty()));
    // At least 100 recoveries for the rate: cycle through the plan.
    let runs = images.len().max(100);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    let scratch = shm();
    let base = Base::open(&base).unwrap();
    let t = Instant::now();
    let results: Vec<(usize, Result<_, RecoverError>, Duration)> = pool.install(|| {
        (0..runs)
            .into_par_iter()
            .map(|k| {
                let i = k % images.len();
                let out = scratch.path().join(format!("{k}.img"));
                let w = Instant::now();
                base.write_image(&log, &images[i], &out).unwrap();
                let built = w.elapsed();
                let r = with_mounted(&out, fs.name, fs.options, read);
                std::fs::remove_file(&out).unwrap();
                (i, r, built)
            })
            .collect()
    });
    let elapsed = t.elapsed();
    let build: Duration = results.iter().map(|r| r.2).sum();
    let mut with_f = 0;
    let mut torn_refused = 0;
    for (i, r, _) in &results {
        let (f, _) = match (r, images[*i].kind) {
            (Ok(read), _) => read,
            // A torn metadata block fails its checksum and the kernel may refuse the file
            // system (ext4: EBADMSG, btrfs: EINVAL): what a torn write can do to it, not a
            // fault here. Every untorn state must mount.
            (Err(RecoverError::Mount { .. }), ImageKind::Torn { .. }) => {
                torn_refused += 1;
                continue;
            }
            (Err(e), _) => panic!("{}: image {:?}: {e}", fs.name, images[*i]),
        };
        // f was fsynced before the rename and the rename was fsynced: no image shows f with
        // other data.
        if let Some(f) = f {
            assert!(
                f == &pattern("f", F_LEN),
                "{}: f torn in {:?}",
                fs.name,
                images[*i]
            );
            with_f += 1;
        }
    }
    assert!(with_f > 0);
    println!(
        "{}: {} entries ({writes} writes, {fua} FUA, {flushes} flushes), {} images planned, {runs} recovered \
         and read in {:.2} s with 2 threads: {:.0} images/s (write_image {:.3} ms each); \
         {torn_refused} torn images refused by the kernel",
        fs.name,
        log.entries.len(),
        images.len(),
        elapsed.as_secs_f64(),
        runs as f64 / elapsed.as_secs_f64(),
        build.as_secs_f64() * 1e3 / runs as f64,
    );
}

#[test]
fn ext4_end_to_end() {
    end_to_end(&EXT4);
}

#[test]
fn xfs_end_to_end() {
    end_to_end(&XFS);
}

#[test]
fn btrfs_end_to_end() {
    end_to_end(&BTRFS);
}

/// Two images of one base mounted at once (the case of parallel checking): btrfs shares the
/// fsid, xfs the UUID.
fn two_at_once(fs: &Fs) {
    let dir = shm();
    let a = dir.path().join("a.img");
    mkfs(fs, &a);
    with_mounted(&a, fs.name, fs.options, |root| {
        std::fs::write(root.join("x"), b"a").unwrap()
    })
    .unwrap();
    let b = dir.path().join("b.img");
    std::fs::copy(&a, &b).unwrap();
    let got = with_mounted(&a, fs.name, fs.options, |ra| {
        std::fs::write(ra.join("x"), b"A").unwrap();
        with_mounted(&b, fs.name, fs.options, |rb| {
            std::fs::read(rb.join("x")).unwrap()
        })
    })
    .unwrap()
    .unwrap();
    assert_eq!(got, b"a");
}

#[test]
fn btrfs_clones_mount_side_by_side() {
    two_at_once(&BTRFS);
}

#[test]
fn xfs_clones_mount_side_by_side_with_nouuid() {
    two_at_once(&XFS);
    // Without nouuid the second mount is refused.
    let dir = shm();
    let a = dir.path().join("a.img");
    mkfs(&XFS, &a);
    let b = dir.path().join("b.img");
    std::fs::copy(&a, &b).unwrap();
    let r = with_mounted(&a, "xfs", "", |_| with_mounted(&b, "xfs", "", |_| ())).unwrap();
    assert!(matches!(r, Err(RecoverError::Mount { .. })), "{r:?}");
}

#[test]
fn a_panicking_closure_leaves_nothing_mounted() {
    let dir = shm();
    let a = dir.path().join("a.img");
    mkfs(&EXT4, &a);
    let mut seen = PathBuf::new();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        with_mounted(&a, "ext4", "", |root| {
            seen = root.to_path_buf();
            panic!("boom")
        })
    }));
    assert!(r.is_err());
    assert!(!seen.as_os_str().is_empty());
    assert!(!seen.exists(), "{} left behind", seen.display());
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    assert!(!mounts.contains(seen.to_str().unwrap()));
    // The image is free again: writable and mountable.
    File::options()
        .write(true)
        .open(&a)
        .unwrap()
        .write_all_at(&[0], 0)
        .unwrap();
    with_mounted(&a, "ext4", "", |_| ()).unwrap();
}
