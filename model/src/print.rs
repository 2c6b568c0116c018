//! The printer: a [`Program`] (or one op, expression, property) back to `.up` text that the
//! parser reads as the same program.
//!
//! Variants of a program (`unplug search`) and generated programs (`unplug workloads`) are built
//! as data and printed here, so that a slip in spelling an op cannot silently change what is
//! checked: whatever prints is the data, and [`normalized`] says when two programs are the same.
//!
//! **The canonical form.** [`program`] prints, in this order: one `data NAME SIZE` line per
//! declared data, the `setup` block (each op indented by two spaces, then `end`), the ops (with
//! `LABEL: ` before a labelled op), and one `property NAME: WHEN EXPR` line per property. It
//! reads only the data, never the `text` or `span` fields. Sizes are written in `MiB` or `KiB`
//! when they are a whole number of them, else in bytes (`8MiB`, `12KiB`, `1536`, `0`); link
//! counts and op numbers are plain integers. Open flags come in a fixed order (`create excl
//! trunc append sync dsync dir tmpfile direct`); `at DATA_OFFSET` only when the op has one.
//! Expressions use the fewest parentheses the grammar needs (`not` binds tightest, then `and`,
//! `or`, and `implies`, which is right-associative), plus two for reading: the operands of a
//! binary operator that are themselves a different binary operator are parenthesized
//! (`a implies (b or c)`, `(a or b) and c`), and after `always` a binary expression is written
//! in parentheses (`always (exists a implies a == D)`), as the corpus writes them. `not` over a
//! content comparison or a readlink prints as `!=` (`a != D`), which the parser reads back as
//! the same `not`.
//!
//! **As written.** [`as_written`] is the same layout, but an op that has its source text prints
//! that text (`f = open tmp create rdwr`, `ftruncate f 8M`) and a property that has its source
//! text keeps the expression as written, with its `always` / `after` printed from the data.
//! A variant of a user's program reads as the user wrote it; a caller that changes an op's kind
//! must also replace (or empty) its text, and checks it with [`normalized`].
//!
//! **Equality.** A program parsed from text carries spans and the text of each op and property;
//! these locate and spell the program, they are not what it means. Two programs are the same
//! program when their [`normalized`] forms are equal (`==`): spans zeroed, op and property texts
//! emptied, and an `after N` written as a number recorded as the op number itself (`after 02`
//! is `after 2`). A label in `after LABEL` stays: it is part of the program.
//!
//! For every program the parser can produce, `normalized(&parse(&program(&p))?) ==
//! normalized(&p)` (`model/tests/it/print.rs` checks it on generated programs and on every
//! `.up` file of `litmus/` and `examples/`). The printer cannot spell what the parser never
//! produces: a path named like an expression keyword (`exists`, `size`, `not`...) as the subject
//! of `PATH == ...`, or a data named `old`, `new` or `empty`.

use crate::program::{
    ContentRef, DataDecl, DataSource, Expr, MsyncMode, Op, OpKind, OpenFlags, Output, Program,
    Property, RenameMode, Span, When,
};
use std::fmt::Write as _;

/// The whole program as `.up` text in canonical form (see the module docs).
pub fn program(p: &Program) -> String {
    layout(p, false)
}

/// The whole program as `.up` text, each op and property expression as written where it has
/// its source text (see the module docs); the rest in canonical form.
pub fn as_written(p: &Program) -> String {
    layout(p, true)
}

fn layout(p: &Program, written: bool) -> String {
    let mut s = String::new();
    for d in &p.data {
        let _ = writeln!(s, "{}", data(d));
    }
    if !p.setup.is_empty() {
        s.push_str("setup\n");
        for o in &p.setup {
            let _ = writeln!(s, "  {}", op_line(o, written));
        }
        s.push_str("end\n");
    }
    let mut outputs = p.outputs.iter().peekable();
    for (i, o) in p.ops.iter().enumerate() {
        while let Some(out) = outputs.next_if(|out| out.after <= i) {
            let _ = writeln!(s, "{}", output(out));
        }
        let _ = writeln!(s, "{}", op_line(o, written));
    }
    for out in outputs {
        let _ = writeln!(s, "{}", output(out));
    }
    for prop in &p.properties {
        let text = if written {
            property_as_written(prop)
        } else {
            property(prop)
        };
        let _ = writeln!(s, "{text}");
    }
    s
}

/// `stdout hex HEXDIGITS`, with the printable text in a comment.
pub fn output(o: &Output) -> String {
    let hex: String = o.bytes.iter().map(|b| format!("{b:02x}")).collect();
    let text: String = o
        .bytes
        .iter()
        .map(|&b| match b {
            b'\n' => "\\n".to_string(),
            b' '..=b'~' => (b as char).to_string(),
            _ => ".".to_string(),
        })
        .collect();
    let text: String = text.chars().take(60).collect();
    format!("stdout hex {hex}  # {text}")
}

/// `data NAME SIZE`, `data NAME SIZE hex HEXDIGITS` (lowercase) or `data NAME SIZE file RELPATH`.
pub fn data(d: &DataDecl) -> String {
    let head = format!("data {} {}", d.name, size(d.len));
    match &d.source {
        None => head,
        Some(DataSource::Hex(bytes)) if bytes.is_empty() => format!("{head} hex"),
        Some(DataSource::Hex(bytes)) => {
            let mut s = format!("{head} hex ");
            for b in bytes {
                let _ = write!(s, "{b:02x}");
            }
            s
        }
        Some(DataSource::File(path)) => format!("{head} file {path}"),
    }
}

/// One op with its label (`publish: rename tmp final`), in canonical form.
pub fn labelled(o: &Op) -> String {
    op_line(o, false)
}

fn op_line(o: &Op, written: bool) -> String {
    let text = if written && !o.text.is_empty() {
        o.text.clone()
    } else {
        op(&o.kind)
    };
    let line = match &o.label {
        Some(l) => format!("{l}: {text}"),
        None => text,
    };
    match &o.site {
        Some(s) => format!("{line}  # at {s}"),
        None => line,
    }
}

/// A size as the language writes it: `8MiB`, `4KiB`, or bytes (`0`, `1536`).
pub fn size(n: u64) -> String {
    const KIB: u64 = 1024;
    if n > 0 && n.is_multiple_of(KIB * KIB) {
        format!("{}MiB", n / (KIB * KIB))
    } else if n > 0 && n.is_multiple_of(KIB) {
        format!("{}KiB", n / KIB)
    } else {
        n.to_string()
    }
}

fn flags(f: &OpenFlags) -> String {
    let names = [
        (f.create, "create"),
        (f.excl, "excl"),
        (f.trunc, "trunc"),
        (f.append, "append"),
        (f.sync, "sync"),
        (f.dsync, "dsync"),
        (f.directory, "dir"),
        (f.tmpfile, "tmpfile"),
        (f.direct, "direct"),
    ];
    names
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, name)| format!(" {name}"))
        .collect()
}

fn at(data_off: Option<u64>) -> String {
    data_off.map_or(String::new(), |o| format!(" at {}", size(o)))
}

/// One op's text as a `.up` file writes it, without its label: `f = open a create`,
/// `pwrite f 0 4KiB D`, `msync m 0 4KiB sync invalidate`.
pub fn op(kind: &OpKind) -> String {
    match kind {
        OpKind::Open {
            handle,
            path,
            flags: f,
        } => format!("{handle} = open {path}{}", flags(f)),
        OpKind::Close { handle } => format!("close {handle}"),
        OpKind::Write {
            handle,
            offset: None,
            len,
            data,
            data_off,
        } => format!("write {handle} {} {data}{}", size(*len), at(*data_off)),
        OpKind::Write {
            handle,
            offset: Some(off),
            len,
            data,
            data_off,
        } => format!(
            "pwrite {handle} {} {} {data}{}",
            size(*off),
            size(*len),
            at(*data_off)
        ),
        OpKind::Ftruncate { handle, size: n } => format!("ftruncate {handle} {}", size(*n)),
        OpKind::Fallocate {
            handle,
            offset,
            len,
            keep_size,
        } => format!(
            "fallocate {handle} {} {}{}",
            size(*offset),
            size(*len),
            if *keep_size { " keep-size" } else { "" }
        ),
        OpKind::SyncFileRange {
            handle,
            offset,
            len,
        } => format!("sync_file_range {handle} {} {}", size(*offset), size(*len)),
        OpKind::Mmap {
            handle,
            map,
            offset,
            len,
        } => format!("{map} = mmap {handle} {} {}", size(*offset), size(*len)),
        OpKind::Store {
            map,
            offset,
            len,
            data,
            data_off,
        } => format!(
            "store {map} {} {} {data}{}",
            size(*offset),
            size(*len),
            at(*data_off)
        ),
        OpKind::Msync {
            map,
            range,
            mode,
            invalidate,
        } => {
            let range = range.map_or(String::new(), |(o, l)| format!(" {} {}", size(o), size(l)));
            let mode = match mode {
                MsyncMode::Sync => "sync",
                MsyncMode::Async => "async",
            };
            let inv = if *invalidate { " invalidate" } else { "" };
            format!("msync {map}{range} {mode}{inv}")
        }
        OpKind::Munmap { map } => format!("munmap {map}"),
        OpKind::Fsync { handle } => format!("fsync {handle}"),
        OpKind::Fdatasync { handle } => format!("fdatasync {handle}"),
        OpKind::Sync => "sync".to_string(),
        OpKind::Syncfs { handle } => format!("syncfs {handle}"),
        OpKind::Rename { from, to, mode } => {
            let mode = match mode {
                RenameMode::Replace => "",
                RenameMode::Exchange => " exchange",
                RenameMode::NoReplace => " noreplace",
            };
            format!("rename {from} {to}{mode}")
        }
        OpKind::Link { from, to } => format!("link {from} {to}"),
        OpKind::Flink { handle, path } => format!("flink {handle} {path}"),
        OpKind::Symlink { target, path } => format!("symlink {target} {path}"),
        OpKind::Unlink { path } => format!("unlink {path}"),
        OpKind::Mkdir { path } => format!("mkdir {path}"),
        OpKind::Rmdir { path } => format!("rmdir {path}"),
    }
}

/// When a property holds, as written before its expression: `always`, `after 5:` or
/// `after publish:` (a label when `written` is one, else the op number).
pub fn when(w: &When) -> String {
    match w {
        When::Always => "always".to_string(),
        When::After { written, .. } if is_label(written) => format!("after {written}:"),
        When::After { op, .. } => format!("after {op}:"),
    }
}

/// Whether `after` names a label (an identifier), rather than an op number.
fn is_label(written: &str) -> bool {
    written
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
}

/// `property NAME: WHEN EXPR` in canonical form.
pub fn property(p: &Property) -> String {
    let e = match (&p.when, &p.expr) {
        (When::Always, e) if binary(e) => format!("({})", expr(e)),
        (_, e) => expr(e),
    };
    format!("property {}: {} {e}", p.name, when(&p.when))
}

/// `property NAME: WHEN EXPR` with the expression as written when the property has its source
/// text (whose expression follows `always` or `after N:`). The `WHEN` is printed from the data
/// (a variant may move it), whatever the text says.
fn property_as_written(p: &Property) -> String {
    let written = if let Some(rest) = p.text.strip_prefix("always") {
        Some(rest)
    } else if p.text.starts_with("after") {
        p.text.split_once(':').map(|x| x.1)
    } else {
        None
    };
    match written.map(str::trim).filter(|e| !e.is_empty()) {
        Some(e) => format!("property {}: {} {e}", p.name, when(&p.when)),
        None => property(p),
    }
}

fn binary(e: &Expr) -> bool {
    matches!(e, Expr::And(..) | Expr::Or(..) | Expr::Implies(..))
}

fn content(r: &ContentRef) -> &str {
    match r {
        ContentRef::Data(d) => d,
        ContentRef::Old => "old",
        ContentRef::New => "new",
        ContentRef::Empty => "empty",
    }
}

/// A property's expression (see the module docs for its parentheses).
pub fn expr(e: &Expr) -> String {
    match e {
        Expr::Exists(p) => format!("exists {p}"),
        Expr::Size(p, c, n) => format!("size {p} {} {}", c.symbol(), size(*n)),
        Expr::ContentEq(p, r) => format!("{p} == {}", content(r)),
        Expr::PrefixOf(p, d) => format!("{p} prefix-of {d}"),
        Expr::Entries(p, names) => format!("entries {p} == {{{}}}", names.join(", ")),
        Expr::Links(p, c, n) => format!("links {p} {} {n}", c.symbol()),
        Expr::Readlink(p, t) => format!("readlink {p} == {t}"),
        Expr::Checker(paths) if paths.is_empty() => "checker".to_string(),
        Expr::Checker(paths) => format!(
            "checker {{{}}}",
            paths
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Expr::Not(inner) => match &**inner {
            Expr::ContentEq(p, r) => format!("{p} != {}", content(r)),
            Expr::Readlink(p, t) => format!("readlink {p} != {t}"),
            e if binary(e) => format!("not ({})", expr(e)),
            e => format!("not {}", expr(e)),
        },
        Expr::And(a, b) => chain("and", a, b, |x| matches!(x, Expr::And(..))),
        Expr::Or(a, b) => chain("or", a, b, |x| matches!(x, Expr::Or(..))),
        Expr::Implies(a, b) => {
            let lhs = operand(a);
            let rhs = if matches!(**b, Expr::Implies(..)) {
                expr(b)
            } else {
                operand(b)
            };
            format!("{lhs} implies {rhs}")
        }
    }
}

/// A left-associative `and` / `or`: the left operand may be the same operator unparenthesized.
fn chain(word: &str, a: &Expr, b: &Expr, same: fn(&Expr) -> bool) -> String {
    let lhs = if same(a) { expr(a) } else { operand(a) };
    format!("{lhs} {word} {}", operand(b))
}

/// An operand of a binary operator: parenthesized when it is itself a binary expression.
fn operand(e: &Expr) -> String {
    if binary(e) {
        format!("({})", expr(e))
    } else {
        expr(e)
    }
}

/// The program without what only locates or spells it: spans zeroed, op and property texts
/// emptied, and an `after N` written as a number recorded as `op`'s own number. Two programs
/// are the same program when their normalized forms are equal.
pub fn normalized(p: &Program) -> Program {
    let op = |o: &Op| Op {
        text: String::new(),
        span: Span::default(),
        ..o.clone()
    };
    Program {
        setup: p.setup.iter().map(op).collect(),
        ops: p.ops.iter().map(op).collect(),
        data: p
            .data
            .iter()
            .map(|d| DataDecl {
                span: Span::default(),
                ..d.clone()
            })
            .collect(),
        properties: p
            .properties
            .iter()
            .map(|q| Property {
                when: match &q.when {
                    When::After { op, written } if !is_label(written) => When::After {
                        op: *op,
                        written: op.to_string(),
                    },
                    w => w.clone(),
                },
                text: String::new(),
                span: Span::default(),
                ..q.clone()
            })
            .collect(),
        outputs: p
            .outputs
            .iter()
            .map(|o| Output {
                span: Span::default(),
                ..o.clone()
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse;

    fn round(src: &str) -> String {
        program(&parse(src).expect("parses"))
    }

    #[test]
    fn canonical_forms() {
        assert_eq!(
            round("data D 8M\nf = open tmp create rdwr\nftruncate f 8388608\nm = mmap f 0 8MiB\n"),
            "data D 8MiB\nf = open tmp create\nftruncate f 8MiB\nm = mmap f 0 8MiB\n"
        );
        assert_eq!(
            round("f = open a direct excl create\npwrite f 0x200 1536 D at 4K\nmsync m 0 4096 async invalidate\n"),
            "f = open a create excl direct\npwrite f 512 1536 D at 4KiB\nmsync m 0 4KiB async invalidate\n"
        );
        assert_eq!(
            round("setup\nmkdir d\nend\np: rename a b noreplace\nproperty A: after p: a!=D\n"),
            "setup\n  mkdir d\nend\np: rename a b noreplace\nproperty A: after p: a != D\n"
        );
    }

    #[test]
    fn parentheses() {
        let cases = [
            (
                "always exists a implies a == D",
                "always (exists a implies a == D)",
            ),
            (
                "after 1: exists a implies a == D",
                "after 1: exists a implies a == D",
            ),
            (
                "always (exists a implies (a == D or size a == 0))",
                "always (exists a implies (a == D or size a == 0))",
            ),
            (
                "always ((exists a or exists b) and not (exists a and exists b))",
                "always ((exists a or exists b) and not (exists a and exists b))",
            ),
            (
                "after 1: a == D and b == D and c == D",
                "after 1: a == D and b == D and c == D",
            ),
            (
                "after 1: a == D and (b == D and c == D)",
                "after 1: a == D and (b == D and c == D)",
            ),
            (
                "after 1: (a == D implies b == D) implies c == D",
                "after 1: (a == D implies b == D) implies c == D",
            ),
            (
                "after 1: a == D implies b == D implies c == D",
                "after 1: a == D implies b == D implies c == D",
            ),
            (
                "after 1: not not exists a or links a >= 2",
                "after 1: not not exists a or links a >= 2",
            ),
            (
                "after 1: readlink l != x/../y and entries . == {}",
                "after 1: readlink l != x/../y and entries . == {}",
            ),
        ];
        for (src, want) in cases {
            let text = format!("mkdir x\nproperty P: {src}\n");
            assert_eq!(
                round(&text),
                format!("mkdir x\nproperty P: {want}\n"),
                "{src}"
            );
        }
    }

    #[test]
    fn as_written_keeps_the_users_spelling() {
        let p =
            parse("f = open tmp create rdwr\nftruncate f 8M\nproperty B: after 2: (exists tmp)\n")
                .expect("parses");
        assert_eq!(
            as_written(&p),
            "f = open tmp create rdwr\nftruncate f 8M\nproperty B: after 2: (exists tmp)\n"
        );
        // A changed op with its text emptied prints in canonical form.
        let mut q = p.clone();
        q.ops[1].kind = OpKind::Fsync { handle: "f".into() };
        q.ops[1].text.clear();
        assert!(as_written(&q).contains("\nfsync f\n"));
        // A property moved from `after 2` to `always` keeps its expression as written.
        q.properties[0].when = When::Always;
        assert!(as_written(&q).ends_with("\nproperty B: always (exists tmp)\n"));
    }

    #[test]
    fn normalized_ignores_spans_texts_and_number_spelling() {
        let a = parse("mkdir a\nproperty P: after 01: exists a\n").expect("parses");
        let b = parse("mkdir   a # c\nproperty P: after 1:   exists a\n").expect("parses");
        assert_ne!(a, b);
        assert_eq!(normalized(&a), normalized(&b));
        let c = parse("x: mkdir a\nproperty P: after x: exists a\n").expect("parses");
        assert_ne!(normalized(&a), normalized(&c));
    }
}
