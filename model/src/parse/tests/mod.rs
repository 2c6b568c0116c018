//! Unit tests of the parser: one-line, data-driven checks of every op, flag and predicate, and
//! of the errors (line:col, message, hint). `ops`: every op and flag; `programs`: sizes,
//! predicates, whole programs; `errors`: every error, with its position and message.
use super::lexer::path_value;
use super::{parse, parse_size};
use crate::diag::line_col;
use crate::program::ContentRef as C;
use crate::program::{Expr, MsyncMode, OpKind, OpenFlags, Path, Program, RenameMode, When};

mod errors;
mod ops;
mod programs;

fn p(s: &str) -> Path {
    path_value(s).expect("test path")
}
fn s(x: &str) -> String {
    x.to_string()
}

/// Parses `src`, which must hold exactly one program op, and compares the op.
#[track_caller]
fn check_ok(src: &str, expected: OpKind) {
    let prog = parse(src).unwrap_or_else(|e| panic!("{src:?} failed: {e:#?}"));
    assert_eq!(prog.ops.len(), 1, "{src:?}");
    assert_eq!(prog.ops[0].kind, expected, "{src:?}");
    let span = prog.ops[0].span;
    assert_eq!(&src[span.start..span.end], prog.ops[0].text, "{src:?}");
}

/// Renders an expression as an s-expression, to compare trees in one line.
fn sx(e: &Expr) -> String {
    match e {
        Expr::Exists(p) => format!("(exists {p})"),
        Expr::Size(p, c, n) => format!("(size {p} {} {n})", c.symbol()),
        Expr::Links(p, c, n) => format!("(links {p} {} {n})", c.symbol()),
        Expr::Readlink(p, t) => format!("(readlink {p} {t})"),
        Expr::ContentEq(p, r) => {
            let r = match r {
                C::Data(d) => d.as_str(),
                C::Old => "old",
                C::New => "new",
                C::Empty => "empty",
            };
            format!("(== {p} {r})")
        }
        Expr::PrefixOf(p, d) => format!("(prefix-of {p} {d})"),
        Expr::Entries(p, names) => format!("(entries {p} {{{}}})", names.join(",")),
        Expr::Checker(p) => format!(
            "(checker {})",
            p.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",")
        ),
        Expr::Not(a) => format!("(not {})", sx(a)),
        Expr::And(a, b) => format!("(and {} {})", sx(a), sx(b)),
        Expr::Or(a, b) => format!("(or {} {})", sx(a), sx(b)),
        Expr::Implies(a, b) => format!("(implies {} {})", sx(a), sx(b)),
    }
}

/// Parses `property P: always EXPR` and compares the expression's s-expression.
#[track_caller]
fn check_expr(expr: &str, expected: &str) {
    let src = format!("property P: always {expr}");
    let prog = parse(&src).unwrap_or_else(|e| panic!("{src:?} failed: {e:#?}"));
    assert_eq!(sx(&prog.properties[0].expr), expected, "{src:?}");
    assert_eq!(prog.properties[0].text, format!("always {}", expr.trim()));
}

/// Parses `src`, which must fail with exactly the expected errors, each written
/// `"line:col: message substring"`. Every error must have a hint.
#[track_caller]
fn check_err(src: &str, expected: &[&str]) {
    let diags = match parse(src) {
        Ok(prog) => panic!("{src:?} parsed: {prog:#?}"),
        Err(d) => d,
    };
    let got: Vec<String> = diags
        .iter()
        .map(|d| {
            let (l, c) = line_col(src, d.span.start);
            format!("{l}:{c}: {}", d.message)
        })
        .collect();
    for d in &diags {
        assert!(d.hint.is_some(), "{src:?}: no hint for {d:?}");
        assert!(d.span.end <= src.len() && d.span.start <= d.span.end);
    }
    assert_eq!(got.len(), expected.len(), "{src:?}: got {got:#?}");
    for e in expected {
        let (loc, msg) = e.split_once(": ").expect("`line:col: message`");
        assert!(
            got.iter().any(|g| g
                .split_once(": ")
                .is_some_and(|(l, m)| l == loc && m.contains(msg))),
            "{src:?}: expected {e:?}, got {got:#?}"
        );
    }
}

fn write(h: &str, offset: Option<u64>, len: u64, data: &str, data_off: Option<u64>) -> OpKind {
    OpKind::Write {
        handle: s(h),
        offset,
        len,
        data: s(data),
        data_off,
    }
}
fn open(h: &str, path: &str, f: impl FnOnce(&mut OpenFlags)) -> OpKind {
    let mut flags = OpenFlags::default();
    f(&mut flags);
    OpKind::Open {
        handle: s(h),
        path: p(path),
        flags,
    }
}
