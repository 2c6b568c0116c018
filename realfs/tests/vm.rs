//! The vm backend end to end: a Debian guest kernel boots in qemu (TCG) with a file system image
//! behind `blklogwrites`, mounts it, writes and syncs a file, prints it, and powers off; the
//! host then checks the serial output and the write log (dm-log-writes format: magic, entries,
//! at least one FLUSH).
//!
//! These tests need `scripts/guest-kernel` to have been run (CI runs it first), qemu-system-x86,
//! busybox-static, e2fsprogs, xfsprogs and btrfs-progs. A missing kernel fails the tests with
//! the message to run the script: nothing is skipped.
//!
//! `static_unplug_runs_in_the_guest` also needs a statically linked `unplug`: from
//! `UNPLUG_STATIC_BIN`, or built by `vm::static_binary` (a release build in `target/static`,
//! minutes on two cores the first time). It runs only when `UNPLUG_VM_STATIC=1` (or
//! `UNPLUG_STATIC_BIN`) is set, and says so on stderr otherwise.

use std::path::Path;
use std::process::Command;
use std::time::Duration;
use unplug_realfs::vm::{self, Boot, GuestRun, VmError};

const MIB: u64 = 1 << 20;

/// Makes a 64 MiB image holding a 60 MiB file system of type `fs` (the rest is the reserved
/// area a runner writes its sentinels in).
fn make_image(fs: &str, path: &Path) {
    let file = std::fs::File::create(path).unwrap();
    let (disk, size) = if fs == "btrfs" { (128, 120) } else { (64, 60) };
    file.set_len(disk * MIB).unwrap();
    drop(file);
    let mut cmd = match fs {
        "ext4" => {
            let mut c = Command::new("mkfs.ext4");
            c.args(["-F", "-q"]).arg(path).arg(format!("{size}M"));
            c
        }
        "xfs" => {
            // mkfs.xfs refuses file systems under 300 MB unless it believes it runs in xfstests.
            let mut c = Command::new("mkfs.xfs");
            c.args(["-f", "-q", "-d"])
                .arg(format!("size={size}m"))
                .arg(path)
                .envs([("TEST_DIR", "1"), ("TEST_DEV", "1"), ("QA_CHECK_FS", "1")]);
            c
        }
        "btrfs" => {
            let mut c = Command::new("mkfs.btrfs");
            c.args(["-f", "-q", "-b"])
                .arg(format!("{}", size * MIB))
                .arg(path);
            c
        }
        other => panic!("no mkfs for {other}"),
    };
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("mkfs for {fs}: {e}"));
    assert!(
        out.status.success(),
        "mkfs for {fs}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One parsed entry header of a dm-log-writes log.
#[derive(Debug)]
struct Entry {
    sector: u64,
    nr_sectors: u64,
    flags: u64,
}

const FLUSH: u64 = 1;

/// Parses the log written by blklogwrites: the super block at sector 0, entries from sector 1,
/// each a header sector followed by its data sectors, read to the end of the file (the count in
/// the super block lags behind the last flush).
fn parse_log(log: &[u8]) -> Vec<Entry> {
    let u64_at = |off: usize| u64::from_le_bytes(log[off..off + 8].try_into().unwrap());
    assert!(log.len() >= 1024, "log of {} bytes", log.len());
    assert_eq!(u64_at(0), 0x6a736677736872, "log magic");
    assert_eq!(u64_at(8), 1, "log version");
    let mut entries = Vec::new();
    let mut off = 512;
    while off + 512 <= log.len() {
        let entry = Entry {
            sector: u64_at(off),
            nr_sectors: u64_at(off + 8),
            flags: u64_at(off + 16),
        };
        if entry.sector == 0 && entry.nr_sectors == 0 && entry.flags == 0 {
            break;
        }
        off += 512 * (1 + entry.nr_sectors as usize);
        entries.push(entry);
    }
    entries
}

fn kernel() -> vm::GuestKernel {
    match vm::find_kernel() {
        Ok(k) => k,
        Err(e) => panic!("{e}"),
    }
}

/// A guest ready to boot: its files live in `dir`.
struct Prepared {
    boot: Boot,
    initramfs_size: u64,
    _dir: tempfile::TempDir,
}

/// Prepares a guest on a fresh `fs` image that runs `script`, with `extra` files.
fn prepare(fs: &str, script: &str, extra: &[(String, Vec<u8>, u32)]) -> Prepared {
    let kernel = kernel();
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("disk.img");
    let log = dir.path().join("disk.wlog");
    let initramfs = dir.path().join("initramfs.cpio");
    make_image(fs, &disk);
    let mut files = vec![("/guest-cmd".to_string(), script.as_bytes().to_vec(), 0o644)];
    files.extend_from_slice(extra);
    let start = std::time::Instant::now();
    vm::build_initramfs(&kernel, fs, &files, &initramfs).unwrap();
    eprintln!("{fs}: initramfs built in {:?}", start.elapsed());
    let initramfs_size = std::fs::metadata(&initramfs).unwrap().len();
    let mut boot = Boot::new(kernel, &initramfs, &disk, &log);
    boot.timeout = Duration::from_secs(180);
    Prepared {
        boot,
        initramfs_size,
        _dir: dir,
    }
}

/// Boots a guest on a fresh `fs` image running `script` and returns its run and the log.
fn boot_with(fs: &str, script: &str, extra: &[(String, Vec<u8>, u32)]) -> (GuestRun, Vec<u8>) {
    let p = prepare(fs, script, extra);
    let run = vm::boot(&p.boot).unwrap_or_else(|e| panic!("{fs} guest: {e}"));
    eprintln!(
        "{fs}: boot to exit {:.2} s, initramfs {:.1} MiB, kernel {}",
        run.elapsed.as_secs_f64(),
        p.initramfs_size as f64 / MIB as f64,
        run.kernel_version
    );
    (run, std::fs::read(&p.boot.log).unwrap())
}

/// The data check shared by the file systems: mount, write, sync, read back, unmount.
fn check_fs(fs: &str) {
    let script = format!(
        "set -e\n\
         mount -t {fs} /dev/vda /mnt\n\
         echo 'written in the guest on {fs}' > /mnt/f\n\
         sync\n\
         cat /mnt/f\n\
         umount /mnt\n"
    );
    let (run, log) = boot_with(fs, &script, &[]);
    assert_eq!(run.status, 0, "guest-cmd failed; serial:\n{}", run.serial);
    // /init reports every module that failed to load and a missing /dev/vda.
    assert!(
        !run.serial.contains("unplug-init:"),
        "serial:\n{}",
        run.serial
    );
    assert!(
        run.output()
            .contains(&format!("written in the guest on {fs}\n")),
        "serial:\n{}",
        run.serial
    );
    let entries = parse_log(&log);
    let flushes = entries.iter().filter(|e| e.flags & FLUSH != 0).count();
    let writes = entries.iter().filter(|e| e.nr_sectors > 0).count();
    eprintln!(
        "{fs}: log {} KiB, {} entries, {writes} writes, {flushes} flushes",
        log.len() / 1024,
        entries.len()
    );
    assert!(flushes >= 1, "no FLUSH among {entries:?}");
    assert!(writes >= 1, "no write among {entries:?}");
}

#[test]
fn ext4_guest_writes_are_logged() {
    check_fs("ext4");
}

#[test]
fn xfs_guest_writes_are_logged() {
    check_fs("xfs");
}

#[test]
fn btrfs_guest_writes_are_logged() {
    check_fs("btrfs");
}

#[test]
fn a_failing_guest_command_reports_its_status() {
    let (run, _) = boot_with("ext4", "echo about to fail\nexit 3\n", &[]);
    assert_eq!(run.status, 3);
    assert_eq!(run.output(), "about to fail\n");
}

#[test]
fn a_guest_past_its_timeout_is_killed() {
    let mut p = prepare("ext4", "sleep 1000\n", &[]);
    p.boot.timeout = Duration::from_secs(1);
    let start = std::time::Instant::now();
    let err = vm::boot(&p.boot).unwrap_err();
    assert!(matches!(err, VmError::Timeout { .. }), "{err}");
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn a_guest_that_stops_early_has_no_end_marker() {
    let p = prepare("ext4", "echo o > /proc/sysrq-trigger\nsleep 10\n", &[]);
    let err = vm::boot(&p.boot).unwrap_err();
    assert!(matches!(err, VmError::NoEndMarker { .. }), "{err}");
    assert!(err.to_string().contains("unplug-guest: begin"), "{err}");
}

#[test]
fn unknown_file_system_is_an_error() {
    let err = vm::modules_for(&kernel(), "zfs").unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown file system \"zfs\": expected ext4, xfs or btrfs"
    );
}

#[test]
fn missing_kernel_says_to_run_the_script() {
    let dir = tempfile::tempdir().unwrap();
    let err = vm::find_kernel_in(&dir.path().join("none")).unwrap_err();
    assert!(
        err.to_string().contains("run scripts/guest-kernel"),
        "{err}"
    );
}

#[test]
fn static_unplug_runs_in_the_guest() {
    let wanted = std::env::var_os("UNPLUG_VM_STATIC").is_some_and(|v| v == "1")
        || std::env::var_os("UNPLUG_STATIC_BIN").is_some();
    if !wanted {
        eprintln!(
            "static_unplug_runs_in_the_guest: not run; set UNPLUG_VM_STATIC=1 or UNPLUG_STATIC_BIN"
        );
        return;
    }
    let bin = vm::static_binary().unwrap_or_else(|e| panic!("{e}"));
    let files = [("/unplug".to_string(), std::fs::read(&bin).unwrap(), 0o755)];
    let (run, _) = boot_with("ext4", "/unplug --version\n", &files);
    assert_eq!(run.status, 0, "serial:\n{}", run.serial);
    assert!(
        run.output().starts_with("unplug "),
        "serial:\n{}",
        run.serial
    );
}

#[test]
fn serial_carries_every_line() {
    let (run, _) = boot_with("ext4", "seq 1 10000\n", &[]);
    assert_eq!(run.status, 0);
    let out = run.output();
    assert_eq!(
        out.lines().count(),
        10000,
        "{}",
        &out[out.len().saturating_sub(300)..]
    );
    assert!(out.ends_with("\n10000\n"));
}
