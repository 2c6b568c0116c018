//! unplug as a library, the way an application's own tests would use it.
//!
//! `cargo run --example library` prints the verdicts of a save routine under every default model;
//! `cargo test --example library` runs the tests below (CI runs them with the rest of the suite).
//!
//! The routine under test is the classic "atomic save": write a temporary file, fsync it, rename
//! it over the real name, fsync the directory. The tests ask two questions a programmer asks:
//! is the old content or the new content always there (never a mix, never nothing)? And once the
//! routine returns, is the new content durable?

use unplug::{after, always, prop, Built, Check, Open, ProgramBuilder, PropExt};

/// The save routine, with or without its two syncs. `doc` holds `OLD` (durable) beforehand.
fn save(sync_file: bool, sync_dir: bool) -> Built {
    let mut b = ProgramBuilder::new()
        .setup(|s| {
            s.open("o", "doc", Open::new().create())
                .write("o", 8192, "OLD")
                .close("o")
        })
        .open("f", "doc.tmp", Open::new().create().trunc())
        .write("f", 8192, "NEW");
    if sync_file {
        b = b.fsync("f");
    }
    b = b.close("f").rename("doc.tmp", "doc").label("publish");
    if sync_dir {
        b = b.open("d", ".", Open::new().directory()).fsync("d");
    }
    let last = b.len();
    b.property(
        "old-or-new",
        always(),
        prop::is_old("doc").or(prop::content("doc", "NEW")),
    )
    .property("durable", after(last), prop::content("doc", "NEW"))
    .build()
    .unwrap_or_else(|e| panic!("{}", e.render_plain()))
}

fn main() {
    let report = Check::new(&save(true, true)).run();
    for o in &report.outcomes {
        print!("{o}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With both syncs, the routine is safe on every file system and under POSIX.
    #[test]
    fn the_full_routine_is_safe_everywhere() {
        Check::new(&save(true, true)).run().assert_holds();
    }

    /// Without the file's fsync, ext4 (since the auto_da_alloc rule) may still show zeros for
    /// `doc` after the rename commits; POSIX allows the same. xfs and btrfs are checked too.
    #[test]
    fn without_the_file_fsync_the_content_can_be_lost() {
        let report = Check::new(&save(false, true)).run();
        assert_eq!(report.holds("posix", "old-or-new"), Some(false));
        assert_eq!(report.holds("ext4", "old-or-new"), Some(false));
        assert_eq!(report.holds("seq", "old-or-new"), Some(true));
    }

    /// Without the directory fsync, the rename is not durable under POSIX when the routine
    /// returns; ext4 would need it as well (nothing else commits the rename).
    #[test]
    fn without_the_directory_fsync_the_rename_is_not_durable() {
        let report = Check::new(&save(true, false))
            .models(&["posix", "ext4"])
            .unwrap()
            .run();
        assert_eq!(report.holds("posix", "durable"), Some(false));
        assert_eq!(report.holds("ext4", "durable"), Some(false));
        assert_eq!(report.holds("ext4", "old-or-new"), Some(true));
    }

    /// The panic message of `assert_holds` carries the crash state and its replay string.
    #[test]
    fn a_failure_prints_the_crash_state_and_its_replay() {
        let report = Check::new(&save(true, false))
            .models(&["posix"])
            .unwrap()
            .run();
        let text = report.to_string();
        assert!(text.contains("posix: durable FAILS"), "{text}");
        assert!(text.contains("replay: unplug explain PROG.up --model posix --state '"));
        assert!(text.contains("rename doc.tmp doc"), "{text}");
        let caught = std::panic::catch_unwind(|| report.assert_holds());
        assert!(caught.is_err());
    }
}
