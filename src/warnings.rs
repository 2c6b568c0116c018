//! Warnings about a program that loads but whose verdicts could mislead: a program with no ops
//! (its only crash point is the state after setup), one with no properties (nothing is checked,
//! yet every command would pass), and a property about a path that neither an op nor setup names
//! (most likely a typo, which would otherwise read as a property that holds).

use serde_json::{json, Value};
use unplug_model::{Expr, Path, Program};

/// One warning, with the line and column of the property it is about, if any.
pub(crate) struct Warning {
    message: String,
    at: Option<(usize, usize)>,
}

/// Which warnings a command gives: those about properties only where it checks them.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Warn {
    /// check and syncs: every warning.
    Properties,
    /// states: only that there are no ops.
    Ops,
    /// explain: none (it shows one state it was asked for).
    Nothing,
}

/// The warnings of `program` (whose source is `src`) for a command that gives `which`.
pub(crate) fn of(program: &Program, src: &str, which: Warn) -> Vec<Warning> {
    let mut v = Vec::new();
    if which == Warn::Nothing {
        return v;
    }
    if program.ops.is_empty() {
        v.push(Warning {
            message: "the program has no ops: its only crash point, 0, is the state after setup"
                .into(),
            at: None,
        });
    }
    if which == Warn::Ops {
        return v;
    }
    if program.properties.is_empty() {
        v.push(Warning {
            message: "the program has no properties: nothing to check".into(),
            at: None,
        });
    }
    let named: Vec<&Path> = program
        .setup
        .iter()
        .chain(&program.ops)
        .flat_map(|op| op.kind.paths())
        .collect();
    for p in &program.properties {
        let mut paths = Vec::new();
        expr_paths(&p.expr, &mut paths);
        let mut reported: Vec<&Path> = Vec::new();
        for path in paths {
            if reported.contains(&path) || named.iter().any(|n| related(n, path)) {
                continue;
            }
            reported.push(path);
            v.push(Warning {
                message: format!(
                    "no op touches `{path}`: property {} is about a path that no op or setup names, nor one above or below it (a typo?)",
                    p.name
                ),
                at: Some(unplug_model::diag::line_col(src, p.span.start)),
            });
        }
    }
    v
}

/// Whether one path is the other or lies under it (an op on `d` touches `d/f`, and one on
/// `d/f` touches the entries of `d`).
fn related(a: &Path, b: &Path) -> bool {
    let n = a.0.len().min(b.0.len());
    a.0[..n] == b.0[..n]
}

/// Every path a property's predicate names, in order.
fn expr_paths<'e>(e: &'e Expr, out: &mut Vec<&'e Path>) {
    match e {
        Expr::Exists(p)
        | Expr::Size(p, ..)
        | Expr::ContentEq(p, _)
        | Expr::PrefixOf(p, _)
        | Expr::Entries(p, _)
        | Expr::Links(p, ..)
        | Expr::Readlink(p, _) => out.push(p),
        Expr::Checker(paths) => out.extend(paths),
        Expr::Not(x) => expr_paths(x, out),
        Expr::And(x, y) | Expr::Or(x, y) | Expr::Implies(x, y) => {
            expr_paths(x, out);
            expr_paths(y, out);
        }
    }
}

/// Prints the warnings on stderr, each as `warning: FILE[:LINE:COL]: MESSAGE`.
pub(crate) fn print(file: &str, warnings: &[Warning]) {
    for w in warnings {
        match w.at {
            Some((line, col)) => eprintln!("warning: {file}:{line}:{col}: {}", w.message),
            None => eprintln!("warning: {file}: {}", w.message),
        }
    }
}

/// The `warnings` array of JSON output: `{"message", "line", "column"}` (null where the warning
/// is about the whole program).
pub(crate) fn json(warnings: &[Warning]) -> Value {
    Value::Array(
        warnings
            .iter()
            .map(|w| {
                json!({
                    "message": w.message,
                    "line": w.at.map(|a| a.0),
                    "column": w.at.map(|a| a.1),
                })
            })
            .collect(),
    )
}
