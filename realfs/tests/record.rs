//! The host backend's recording is faithful: the base image plus every logged write, replayed,
//! is byte for byte the disk the run left (this caught qemu's FUSE export mixing up the data of
//! concurrent writes), and marks sit between the ops they separate. Needs root, loop devices and
//! scripts/install-deps.

use unplug_realfs::crash::{Base, CrashImage, ImageKind};
use unplug_realfs::record::{Backend, FsConfig, Host};
use unplug_realfs::session::{decode_mark, FsType, Job, Mark, Schedule};

fn job(name: &str, schedule: Schedule) -> Job {
    let path = format!("{}/../litmus/{name}", env!("CARGO_MANIFEST_DIR"));
    Job {
        source: std::fs::read_to_string(&path).unwrap(),
        name: name.into(),
        schedule,
    }
}

#[test]
fn host_log_replays_to_the_disk_on_every_file_system() {
    for fs in [FsType::Ext4, FsType::Xfs, FsType::Btrfs] {
        let work = tempfile::tempdir_in("/dev/shm").unwrap();
        let cfg = FsConfig::new(fs, "").unwrap();
        let jobs = vec![
            job("seed-mmap-rename.up", Schedule::default()),
            job("two-appends.up", Schedule::all_for(4)[1].clone()),
        ];
        let rec = Host { keep_disk: true }
            .record(&cfg, &jobs, work.path(), &mut |_| {})
            .unwrap();
        assert!(
            rec.jobs.iter().all(|j| j.run.is_ok()),
            "{:?}",
            rec.jobs[0].run
        );
        let writes: Vec<usize> = (0..rec.log.entries.len())
            .filter(|&i| rec.log.entries[i].is_write())
            .collect();
        assert!(writes.len() > 20, "{fs:?}: {} writes", writes.len());
        let replay = work.path().join("replay.img");
        Base::open(&rec.base)
            .unwrap()
            .write_image(
                &rec.log,
                &CrashImage {
                    writes,
                    lo: 0,
                    hi: 0,
                    kind: ImageKind::Prefix,
                },
                &replay,
            )
            .unwrap();
        let a = std::fs::read(&replay).unwrap();
        let b = std::fs::read(rec.disk.as_ref().unwrap()).unwrap();
        assert_eq!(a.len(), b.len());
        let first_diff = a.iter().zip(&b).position(|(x, y)| x != y);
        assert_eq!(
            first_diff, None,
            "{fs:?}: the replayed log differs from the disk"
        );
        // Every job's marks: Op(0), Op(1), ..., Op(n), End, in order.
        let marks: Vec<(usize, Mark)> = rec
            .log
            .entries
            .iter()
            .filter(|e| e.is_write() && e.sector * 512 >= rec.fs_bytes)
            .filter_map(|e| decode_mark(&e.data))
            .collect();
        let ops: Vec<usize> = jobs
            .iter()
            .map(|j| unplug_model::load(&j.source).unwrap().0.ops.len())
            .collect();
        let mut want = Vec::new();
        for (j, n) in ops.iter().enumerate() {
            want.extend((0..=*n).map(|k| (j, Mark::Op(k))));
            want.push((j, Mark::End));
        }
        assert_eq!(marks, want, "{fs:?}");
    }
}
