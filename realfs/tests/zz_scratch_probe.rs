#[test]
fn probes() {
    let progs: &[(&str, &str)] = &[
        ("rmdir-nonempty", "mkdir d\nf = open d/a create\nrmdir d\n"),
        ("link-dir", "mkdir d\nlink d e\n"),
        ("unlink-dir", "mkdir d\nunlink d\n"),
        ("open-dir-rdwr", "mkdir d\nf = open d\n"),
        ("mkdir-existing", "mkdir d\nmkdir d\n"),
        ("rename-file-over-dir", "mkdir d\nf = open a create\nrename a d\n"),
        ("rename-dir-over-file", "mkdir d\nf = open a create\nrename d a\n"),
        ("rename-dir-over-nonempty", "mkdir d\nmkdir e\nf = open e/a create\nrename d e\n"),
        ("rename-into-self", "mkdir d\nrename d d/x\n"),
        ("rename-self", "f = open a create\nrename a a\n"),
        ("rename-dir-self", "mkdir d\nrename d d\n"),
        ("open-file-as-dir", "f = open a create\ng = open a dir\n"),
        ("write-dir-handle", "mkdir d\nf = open d dir\nwrite f 10 D\n"),
        ("file-as-parent", "f = open a create\ng = open a/b create\n"),
        ("excl-no-create", "f = open a create\ng = open a excl\n"),
        ("excl-create-existing", "f = open a create\ng = open a create excl\n"),
        ("open-missing", "f = open a\n"),
        ("trunc-dir", "mkdir d\nf = open d dir trunc\n"),
        ("create-dir-flag", "f = open a create dir\n"),
        ("ftruncate-dir", "mkdir d\nf = open d dir\nftruncate f 0\n"),
        ("mmap-dir", "mkdir d\nf = open d dir\nm = mmap f 0 4KiB\n"),
        ("mmap-past-eof-then-store", "f = open a create\nm = mmap f 0 8KiB\nftruncate f 8KiB\nstore m 0 8KiB D\n"),
        ("fsync-closed", "f = open a create\nclose f\nfsync f\n"),
        ("msync-after-munmap", "f = open a create\nftruncate f 4KiB\nm = mmap f 0 4KiB\nmunmap m\nmsync m sync\n"),
        ("store-after-close", "f = open a create\nftruncate f 4KiB\nm = mmap f 0 4KiB\nclose f\nstore m 0 4KiB D\n"),
        ("rmdir-root", "rmdir .\n"),
        ("unlink-missing", "unlink a\n"),
        ("link-existing", "f = open a create\ng = open b create\nlink a b\n"),
        ("rename-missing", "rename a b\n"),
        ("rename-missing-parent", "f = open a create\nrename a x/b\n"),
        ("mkdir-missing-parent", "mkdir x/y\n"),
        ("rename-dir-over-empty-dir", "mkdir d\nmkdir e\nrename d e\n"),
        ("rmdir-file", "f = open a create\nrmdir a\n"),

        ("open-trunc-no-create-missing", "f = open a trunc\n"),
        ("rename-parent-into-child-file", "mkdir d\nf = open d/a create\nrename d/a d\n"),
        ("syncfs-dir", "d = open . dir\nsyncfs d\nfdatasync d\n"),
        ("rename-file-to-trailing", "f = open a create\nmkdir d\nrename d/.. b\n"),
    ];
    let mut out = String::new();
    for (name, src) in progs {
        let program = match unplug_model::parse::parse(src) { Ok(p) => p, Err(e) => { out += &format!("{name}: PARSE {}\n", e[0].message); continue } };
        let model = unplug_explorer::Analysis::new(&program);
        let root = tempfile::tempdir().unwrap();
        let real = unplug_realfs::run(&program, root.path());
        let m = match &model { Ok(_) => "ok".to_string(), Err(d) => format!("rejects: {}", d.iter().map(|d| d.message.clone()).collect::<Vec<_>>().join("; ")) };
        let r = match &real { Ok(_) => "ok".to_string(), Err(e) => format!("fails: {e}") };
        let flag = if model.is_ok() != real.is_ok() { "MISMATCH" } else { "" };
        out += &format!("{name}: {flag}\n  model {m}\n  kernel {r}\n");
        if model.is_ok() && real.is_ok() {
            let names = unplug_realfs::data_names(&program);
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            let tree = unplug_realfs::read_tree(root.path(), &names).unwrap();
            match unplug_realfs::to_state(&tree) {
                Ok(o) => { let c = unplug_realfs::Comparison::new(o, model.unwrap().new); if !c.equal { out += &format!("  STATE DIFF {:?}\n", c.differences) } }
                Err(e) => out += &format!("  unmapped {e}\n"),
            }
        }
    }
    println!("{out}");
}
