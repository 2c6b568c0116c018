//! A variant of a program as written ([`Edit`]), built as a [`Program`] value and printed with
//! [`unplug_model::print`], then loaded again from that text: what is printed is what is checked.

use crate::Analysis;
use serde::Serialize;
use std::collections::BTreeSet;
use unplug_model::{print, DataDecl, Op, OpKind, OpNo, Program, Property, Span, When};

/// A variant of the program as written: the op numbers kept, in their new order, and the kept
/// fsyncs weakened to fdatasync.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Edit {
    pub order: Vec<usize>,
    pub datasync: BTreeSet<usize>,
}

impl Edit {
    /// The program as written.
    pub fn identity(n: usize) -> Edit {
        Edit {
            order: (1..=n).collect(),
            datasync: BTreeSet::new(),
        }
    }

    /// The crash point from which `after op` must hold in the variant: the new position of the
    /// op (the property means "once that op returned"); when the op was dropped, the position
    /// of the last kept op that came before it (a dropped op does nothing: the crash point after
    /// it is the one after the op before it). 0 when none.
    pub fn threshold(&self, op: usize) -> usize {
        if let Some(p) = self.order.iter().position(|&k| k == op) {
            return p + 1;
        }
        self.order
            .iter()
            .enumerate()
            .filter(|(_, &k)| k < op)
            .map(|(p, _)| p + 1)
            .max()
            .unwrap_or(0)
    }

    /// The variant as a program: every named data declared with its length in the program as
    /// written (so that `== D` keeps its meaning when a write is dropped), the setup, the kept
    /// ops in their new order (with their labels and source text; a weakened fsync becomes an
    /// `fdatasync` with no source text, so it prints as one), and every property with its
    /// `after` moved to the op's new position ([`Edit::threshold`]; `always` when that is 0,
    /// the label when the labelled op is kept).
    pub fn program(&self, a: &Analysis) -> Program {
        let p = &a.program;
        let data = a
            .trace
            .data_len
            .iter()
            .map(|(name, &len)| DataDecl {
                name: name.clone(),
                len,
                source: p
                    .data
                    .iter()
                    .find(|d| d.name == *name)
                    .and_then(|d| d.source.clone()),
                span: Span::default(),
            })
            .collect();
        let ops = self
            .order
            .iter()
            .map(|&k| {
                let op = p.op(OpNo::new(k));
                match &op.kind {
                    OpKind::Fsync { handle } if self.datasync.contains(&k) => Op {
                        kind: OpKind::Fdatasync {
                            handle: handle.clone(),
                        },
                        text: String::new(),
                        ..op.clone()
                    },
                    _ => op.clone(),
                }
            })
            .collect();
        let properties = p
            .properties
            .iter()
            .map(|prop| Property {
                when: self.when(&prop.when),
                ..prop.clone()
            })
            .collect();
        Program {
            setup: p.setup.clone(),
            ops,
            data,
            properties,
            // What the application printed stays after the same op count (a search edits
            // only syncs, which a traced application did not print around).
            outputs: p.outputs.clone(),
        }
    }

    /// A property's `after` in the variant.
    fn when(&self, w: &When) -> When {
        match w {
            When::Always => When::Always,
            When::After { op, written } => {
                let t = self.threshold(*op);
                let labelled = written.parse::<usize>().is_err() && self.order.contains(op);
                if t == 0 {
                    When::Always
                } else if labelled {
                    When::After {
                        op: t,
                        written: written.clone(),
                    }
                } else {
                    When::After {
                        op: t,
                        written: t.to_string(),
                    }
                }
            }
        }
    }

    /// The variant as `.up` text: `header` lines as comments, then [`Edit::program`] as written
    /// ([`print::as_written`]: each kept op and each property's expression in the user's own
    /// words).
    pub fn source(&self, a: &Analysis, header: &[String]) -> String {
        let mut s: String = header.iter().map(|h| format!("# {h}\n")).collect();
        s.push_str(&print::as_written(&self.program(a)));
        s
    }

    /// Loads the variant's text (parse and execute): None when it does not execute (an op uses
    /// a handle whose open was dropped, a store past the end of a file no longer truncated).
    /// The text is the one [`Edit::source`] shows (without the header); it always parses, and
    /// debug builds check that it parses to the variant built as data.
    pub fn load(&self, a: &Analysis) -> Option<Analysis> {
        let built = self.program(a);
        let text = print::as_written(&built);
        // A variant that does not parse is a printing slip, never a variant that "does not
        // execute": it must not silently drop out of the search.
        let program = unplug_model::parse::parse(&text)
            .unwrap_or_else(|e| panic!("a printed variant parses: {e:?}\n{text}"));
        debug_assert_eq!(
            print::normalized(&program),
            print::normalized(&built),
            "the variant's text is the variant"
        );
        let trace = unplug_model::execute(&program).ok()?;
        let mut v = Analysis::from_trace(program, trace);
        v.limits = a.limits;
        Some(v)
    }
}
