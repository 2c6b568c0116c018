//! Sizes, predicates and their precedence, labels, whole programs and line endings.
use super::*;

#[test]
fn sizes() {
    for (text, v) in [
        ("0", Some(0)),
        ("100", Some(100)),
        ("100B", Some(100)),
        ("4KiB", Some(4096)),
        ("4K", Some(4096)),
        ("8MiB", Some(8 << 20)),
        ("8M", Some(8 << 20)),
        ("2GiB", Some(2 << 30)),
        ("2G", Some(2 << 30)),
        ("3TiB", Some(3 << 40)),
        ("5PiB", Some(5 << 50)),
        ("15EiB", Some(15 << 60)),
        ("16EiB", None),
        ("0x1000", Some(0x1000)),
        ("0X10", Some(16)),
        ("0xff", Some(255)),
        ("0x1B", Some(0x1b)),
        ("0x10KiB", Some(16 << 10)),
        ("18446744073709551615", Some(u64::MAX)),
        ("0xffffffffffffffff", Some(u64::MAX)),
        ("16777215TiB", Some(16_777_215u64 << 40)),
        ("18446744073709551616", None),
        ("0x10000000000000000", None),
        ("99999999999999TiB", None),
        ("16777216TiB", None),
        ("17179869184GiB", None),
        ("", None),
        ("KiB", None),
        ("0x", None),
        ("4 KiB", None),
        ("4KB", None),
        ("4kib", None),
        ("4T", None),
        ("-1", None),
        ("+1", None),
        ("1.5K", None),
        ("1_000", None),
        ("４", None),
        ("4Ki", None),
        ("0xg", None),
    ] {
        assert_eq!(parse_size(text), v, "{text:?}");
    }
}

#[test]
fn predicates() {
    check_expr("exists final", "(exists final)");
    check_expr("exists .", "(exists .)");
    check_expr("exists size", "(exists size)");
    check_expr("exists a/b/c", "(exists a/b/c)");
    check_expr("size final == 8MiB", "(size final == 8388608)");
    check_expr("size f != 0", "(size f != 0)");
    check_expr("size f < 1", "(size f < 1)");
    check_expr("size f <= 0x10", "(size f <= 16)");
    check_expr("size f > 4K", "(size f > 4096)");
    check_expr("size f >= 2", "(size f >= 2)");
    check_expr("size f>=2", "(size f >= 2)");
    check_expr("links a == 2", "(links a == 2)");
    check_expr("readlink cur == v2", "(readlink cur v2)");
    check_expr("readlink d/l==../x/y", "(readlink d/l ../x/y)");
    check_expr("readlink l != /abs", "(not (readlink l /abs))");
    check_expr(
        "exists l and readlink l == v2",
        "(and (exists l) (readlink l v2))",
    );
    check_expr("links a<2", "(links a < 2)");
    check_expr("links a != 0x1", "(links a != 1)");
    check_expr("entries dir == {a, b}", "(entries dir {a,b})");
    check_expr("entries . == {}", "(entries . {})");
    check_expr("entries d=={x}", "(entries d {x})");
    check_expr(
        "entries d == { a.tmp , b-c , 1 }",
        "(entries d {a.tmp,b-c,1})",
    );
    check_expr("final == D", "(== final D)");
    check_expr("final==D", "(== final D)");
    check_expr("final == old", "(== final old)");
    check_expr("final == new", "(== final new)");
    check_expr("final == empty", "(== final empty)");
    check_expr("final != D", "(not (== final D))");
    check_expr("final != empty", "(not (== final empty))");
    check_expr("a/b prefix-of D", "(prefix-of a/b D)");
    check_expr("prefix-of prefix-of D", "(prefix-of prefix-of D)");
    check_expr("always == D", "(== always D)");
    check_expr("dir/size == D", "(== dir/size D)");
    check_expr("(exists a)", "(exists a)");
    check_expr("((exists a))", "(exists a)");
}

#[test]
fn precedence() {
    check_expr(
        "exists a or exists b and exists c",
        "(or (exists a) (and (exists b) (exists c)))",
    );
    check_expr(
        "exists a and exists b or exists c",
        "(or (and (exists a) (exists b)) (exists c))",
    );
    check_expr(
        "not exists x implies exists y",
        "(implies (not (exists x)) (exists y))",
    );
    check_expr(
        "not exists x and exists y",
        "(and (not (exists x)) (exists y))",
    );
    check_expr("not not exists x", "(not (not (exists x)))");
    check_expr(
        "not (exists x and exists y)",
        "(not (and (exists x) (exists y)))",
    );
    check_expr(
        "exists a implies exists b implies exists c",
        "(implies (exists a) (implies (exists b) (exists c)))",
    );
    check_expr(
        "exists a or exists b or exists c",
        "(or (or (exists a) (exists b)) (exists c))",
    );
    check_expr(
        "exists a and exists b and exists c",
        "(and (and (exists a) (exists b)) (exists c))",
    );
    check_expr(
        "exists a or exists b implies exists c and exists d",
        "(implies (or (exists a) (exists b)) (and (exists c) (exists d)))",
    );
    check_expr(
        "(exists a or exists b) and exists c",
        "(and (or (exists a) (exists b)) (exists c))",
    );
    check_expr(
        "(exists final implies final==D)",
        "(implies (exists final) (== final D))",
    );
    check_expr(
        "exists final implies final == D",
        "(implies (exists final) (== final D))",
    );
    check_expr(
        "a != D and not b == old",
        "(and (not (== a D)) (not (== b old)))",
    );
    check_expr(
        "(exists a implies exists b) implies exists c",
        "(implies (implies (exists a) (exists b)) (exists c))",
    );
}

#[test]
fn deep_expressions_are_bounded() {
    let deep = format!("{}exists a{}", "(".repeat(5000), ")".repeat(5000));
    check_err(
        &format!("property A: always {deep}"),
        &["1:120: nested too deeply"],
    );
    let nots = "not ".repeat(100_000);
    check_err(
        &format!("property A: always {nots} exists a"),
        &["1:420: nested too deeply"],
    );
    let ors = "exists a or ".repeat(100_000);
    check_err(
        &format!("property A: always {ors} exists a"),
        &["1:1217: nested too deeply"],
    );
    let implies = "exists a implies ".repeat(100_000);
    check_err(
        &format!("property A: always {implies} exists a"),
        &["1:1698329: nested too deeply"],
    );
    // Moderate nesting is fine.
    let ok = format!("{}exists a{}", "(".repeat(50), ")".repeat(50));
    check_expr(&ok, "(exists a)");
    check_expr(
        &format!("{}exists a", "not ".repeat(50)),
        &format!("{}(exists a){}", "(not ".repeat(50), ")".repeat(50)),
    );
}

#[test]
fn whole_program() {
    let src = "\
# an atomic replace
data D 8MiB
data OLD 4KiB

setup
  f = open old create
  write f 4KiB OLD
  close f
end

f = open tmp create rdwr   # the new version
write f 8MiB D
fsync f
close f
publish: rename tmp final
property A: always (exists final implies final == D)
property B: after 5: final == D
property C: after publish: size final == 8MiB
property E: after publish: entries . == {final, old}
";
    let prog = parse(src).unwrap_or_else(|e| panic!("{e:#?}"));
    assert_eq!(prog.data.len(), 2);
    assert_eq!(prog.data[0].name, "D");
    assert_eq!(prog.data[0].len, 8 << 20);
    assert_eq!(
        &src[prog.data[0].span.start..prog.data[0].span.end],
        "data D 8MiB"
    );
    assert_eq!(prog.setup.len(), 3);
    assert_eq!(prog.setup[1].text, "write f 4KiB OLD");
    assert_eq!(prog.ops.len(), 5);
    assert_eq!(prog.ops[0].text, "f = open tmp create rdwr");
    assert_eq!(prog.ops[4].text, "rename tmp final");
    assert_eq!(prog.ops[4].label.as_deref(), Some("publish"));
    assert_eq!(
        &src[prog.ops[4].span.start..prog.ops[4].span.end],
        "rename tmp final"
    );
    let props = &prog.properties;
    assert_eq!(props.len(), 4);
    assert_eq!(props[0].name, "A");
    assert_eq!(props[0].when, When::Always);
    assert_eq!(props[0].text, "always (exists final implies final == D)");
    assert_eq!(
        &src[props[0].span.start..props[0].span.end],
        "property A: always (exists final implies final == D)"
    );
    assert_eq!(
        props[1].when,
        When::After {
            op: 5,
            written: s("5")
        }
    );
    assert_eq!(props[1].text, "after 5: final == D");
    assert_eq!(
        props[2].when,
        When::After {
            op: 5,
            written: s("publish")
        }
    );
    assert_eq!(sx(&props[2].expr), "(size final == 8388608)");
    assert_eq!(sx(&props[3].expr), "(entries . {final,old})");
}

#[test]
fn labels_and_after() {
    let prog = parse("property P: after b: exists x\na: sync\nb: sync\nsync\nc:sync").unwrap();
    assert_eq!(
        prog.properties[0].when,
        When::After {
            op: 2,
            written: s("b")
        }
    );
    assert_eq!(prog.ops[3].label.as_deref(), Some("c"));
    assert_eq!(prog.ops[3].text, "sync");
    let prog =
        parse("sync\nsync\nproperty P: after 1: exists x\nproperty Q: after 2 : exists x").unwrap();
    assert_eq!(
        prog.properties[0].when,
        When::After {
            op: 1,
            written: s("1")
        }
    );
    assert_eq!(
        prog.properties[1].when,
        When::After {
            op: 2,
            written: s("2")
        }
    );
    // A label may be a statement keyword.
    let prog = parse("sync: sync\nend: close f\nproperty P: after end: exists x").unwrap();
    assert_eq!(
        prog.properties[0].when,
        When::After {
            op: 2,
            written: s("end")
        }
    );
}

#[test]
fn line_endings_and_comments() {
    let src = "f = open a create\r\nwrite f 1 D   \r\n# only a comment\r\n\r\nclose f\r\nproperty P: after 3: a == D\r\n";
    let prog = parse(src).unwrap();
    assert_eq!(prog.ops.len(), 3);
    assert_eq!(prog.ops[1].text, "write f 1 D");
    assert_eq!(prog.ops[2].text, "close f");
    assert_eq!(prog.properties[0].text, "after 3: a == D");
    check_err("sync\r\nfsync\r\n", &["2:6: missing handle"]);
    assert_eq!(parse("").unwrap(), Program::default());
    assert_eq!(parse("\n\n  # x\n\t\n").unwrap(), Program::default());
    assert_eq!(parse("\u{a0}sync\u{3000}").unwrap().ops[0].text, "sync");
}

/// A trailing `# at SITE` (what `unplug trace` writes) is the op's call site, printed back; any
/// other comment is not.
#[test]
fn call_sites_of_traced_ops() {
    let src = "h1 = open a create  # at open_db+0x12 (libapp.so) < main+0x5 (app) (pid 7)\n\
               fsync h1 # not a site\n\
               close h1\n";
    let p = parse(src).expect("parses");
    assert_eq!(
        p.ops[0].site.as_deref(),
        Some("open_db+0x12 (libapp.so) < main+0x5 (app) (pid 7)")
    );
    assert_eq!(p.ops[0].site_short(), Some("open_db+0x12 (libapp.so)"));
    assert_eq!(p.ops[1].site, None);
    let printed = crate::print::program(&p);
    assert!(
        printed
            .contains("h1 = open a create  # at open_db+0x12 (libapp.so) < main+0x5 (app) (pid 7)"),
        "{printed}"
    );
    assert_eq!(
        parse(&printed).expect("parses back").ops[0].site,
        p.ops[0].site
    );
}
