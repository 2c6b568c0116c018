//! `property NAME: always EXPR` and `property NAME: after N|LABEL: EXPR`, and the resolution of
//! every `after` once all ops and labels are known.

use super::args::{err, ident_of, IDENT_HINT, PROPERTY_USAGE};
use super::expr::parse_expr;
use super::lexer::{is_ident, show, Kind, Tok};
use super::Parser;
use crate::diag::Diagnostic;
use crate::program::{Property, Span, When};

/// What an `after` names: an op number (None: too large to be one) or a label.
pub(super) enum Target {
    Number(Option<usize>),
    Label(String),
}

/// An `after N:` / `after LABEL:` to resolve once every op is known.
pub(super) struct Pending {
    pub(super) prop: Option<usize>,
    pub(super) target: Target,
    pub(super) span: Span,
}

impl Parser<'_> {
    pub(super) fn property(&mut self, rest: &[Tok]) {
        let Some(&kw) = rest.first() else { return };
        if self.setup_open.is_some() {
            self.diags.push(err(
                kw.span,
                "properties are not allowed inside setup",
                "move the property after the `end` of the setup block",
            ));
            return;
        }
        if let Err(d) = self.property_inner(rest) {
            self.diags.push(d);
        }
    }

    fn property_inner(&mut self, rest: &[Tok]) -> Result<(), Diagnostic> {
        let start = rest.first().map(|t| t.span.start).unwrap_or(0);
        let end = rest.last().map(|t| t.span.end).unwrap_or(start);
        let missing = |what: &str| {
            err(
                Span::new(end, end),
                format!("missing {what}"),
                PROPERTY_USAGE,
            )
        };
        let name_tok = *rest.get(1).ok_or_else(|| missing("property name"))?;
        let name = ident_of(name_tok, "property name").map_err(|d| Diagnostic {
            hint: Some(format!("{IDENT_HINT} ({PROPERTY_USAGE})")),
            ..d
        })?;
        if let Some(&first) = self.prop_names.get(&name) {
            return Err(err(
                name_tok.span,
                format!("property `{name}` is defined twice"),
                format!(
                    "first defined on line {}; property names must be unique",
                    self.line_of(first)
                ),
            ));
        }
        self.prop_names.insert(name.clone(), name_tok.span);
        let colon = *rest
            .get(2)
            .ok_or_else(|| missing("`:` after the property name"))?;
        if colon.kind != Kind::Colon {
            return Err(err(
                colon.span,
                format!("expected `:`, found `{}`", show(colon.text)),
                PROPERTY_USAGE,
            ));
        }
        let qual = *rest.get(3).ok_or_else(|| missing("`always` or `after`"))?;
        let (when, expr_start, pending) = if qual.is_word("always") {
            (When::Always, 4, None)
        } else if qual.is_word("after") {
            let t = *rest
                .get(4)
                .ok_or_else(|| missing("op number or label after `after`"))?;
            let target = if t.kind == Kind::Word && t.text.starts_with(|c: char| c.is_ascii_digit())
            {
                if !t.text.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(err(
                        t.span,
                        format!("bad op number `{}`", show(t.text)),
                        "an op number is a decimal integer, counting the program's ops from 1",
                    ));
                }
                Target::Number(t.text.parse::<usize>().ok())
            } else if t.kind == Kind::Word && is_ident(t.text) {
                Target::Label(t.text.to_string())
            } else {
                return Err(err(
                    t.span,
                    format!(
                        "expected an op number or a label after `after`, found `{}`",
                        show(t.text)
                    ),
                    PROPERTY_USAGE,
                ));
            };
            self.pending.push(Pending {
                prop: None,
                target,
                span: t.span,
            });
            let c = *rest
                .get(5)
                .ok_or_else(|| missing("`:` after the op number or label"))?;
            if c.kind != Kind::Colon {
                return Err(err(
                    c.span,
                    format!("expected `:`, found `{}`", show(c.text)),
                    PROPERTY_USAGE,
                ));
            }
            let when = When::After {
                op: 0,
                written: t.text.to_string(),
            };
            (when, 6, Some(self.pending.len() - 1))
        } else {
            return Err(err(
                qual.span,
                format!("expected `always` or `after`, found `{}`", show(qual.text)),
                PROPERTY_USAGE,
            ));
        };
        let expr = parse_expr(rest.get(expr_start..).unwrap_or(&[]), end)?;
        if let Some(i) = pending {
            if let Some(p) = self.pending.get_mut(i) {
                p.prop = Some(self.prog.properties.len());
            }
        }
        self.prog.properties.push(Property {
            name,
            when,
            expr,
            text: self.text(qual.span.start, end),
            span: Span::new(start, end),
        });
        Ok(())
    }

    /// The hint of an unknown label: the labels defined (the first few), in op order.
    fn labels_hint(&self) -> String {
        const SHOWN: usize = 20;
        let mut known: Vec<(&String, usize)> =
            self.labels.iter().map(|(l, &(n, _))| (l, n)).collect();
        if known.is_empty() {
            return "no op has a label; label an op like this: `publish: rename tmp final`"
                .to_string();
        }
        known.sort_by_key(|&(_, n)| n);
        let mut names: Vec<&str> = known.iter().take(SHOWN).map(|(l, _)| l.as_str()).collect();
        let more = known.len().saturating_sub(SHOWN);
        let more = format!("and {more} more");
        if known.len() > SHOWN {
            names.push(&more);
        }
        format!(
            "defined labels: {} (or an op number from 1 to {})",
            names.join(", "),
            self.op_slots
        )
    }

    fn resolve(&self, p: &Pending, labels_hint: &str) -> Result<usize, Diagnostic> {
        match &p.target {
            Target::Number(n) => match n {
                Some(n) if (1..=self.op_slots).contains(n) => Ok(*n),
                _ => {
                    let hint = if self.op_slots == 0 {
                        "the program has no ops".to_string()
                    } else {
                        format!("ops are numbered from 1 to {}", self.op_slots)
                    };
                    let shown = match n {
                        Some(n) => n.to_string(),
                        None => show(self.src.get(p.span.start..p.span.end).unwrap_or("")),
                    };
                    Err(err(p.span, format!("there is no op {shown}"), hint))
                }
            },
            Target::Label(l) => match self.labels.get(l) {
                Some(&(n, _)) => Ok(n),
                None => Err(err(p.span, format!("unknown label `{l}`"), labels_hint)),
            },
        }
    }

    /// Resolves every `after N` / `after LABEL` now that every op and label is known.
    pub(super) fn resolve_pending(&mut self) {
        let pending = std::mem::take(&mut self.pending);
        let labels_hint = if pending.is_empty() {
            String::new()
        } else {
            self.labels_hint()
        };
        for p in &pending {
            match self.resolve(p, &labels_hint) {
                Ok(n) => {
                    if let Some(Property {
                        when: When::After { op, .. },
                        ..
                    }) = p.prop.and_then(|i| self.prog.properties.get_mut(i))
                    {
                        *op = n;
                    }
                }
                Err(d) => self.diags.push(d),
            }
        }
    }
}
