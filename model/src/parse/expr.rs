//! Property expressions: `exists PATH`, sizes, link counts, entries, readlink, contents, and
//! `not` / `and` / `or` / `implies` with parentheses, nested at most `MAX_DEPTH` deep.

use super::args::{
    data_of, err, path_of, size_of, target_of, unexpected, CMP_HINT, DATA_HINT, EXPR_HINT,
};
use super::lexer::{is_ident, is_name, show, Kind, Tok};
use crate::diag::Diagnostic;
use crate::program::{Cmp, ContentRef, Expr, Path, Span};
use std::collections::HashSet;

/// How deep an expression may nest (operators and parentheses): bounds the parser's recursion
/// and the depth of the tree every later stage walks.
const MAX_DEPTH: usize = 100;

type Node = (Expr, usize);

struct ExprParser<'a, 't> {
    toks: &'t [Tok<'a>],
    pos: usize,
    end: usize,
    nesting: usize,
}

fn too_deep(span: Span) -> Diagnostic {
    err(
        span,
        "expression is nested too deeply",
        format!(
            "at most {MAX_DEPTH} levels of operators and parentheses; split it into several \
             properties"
        ),
    )
}

fn is_expr_keyword(w: &str) -> bool {
    matches!(
        w,
        "exists"
            | "size"
            | "links"
            | "entries"
            | "readlink"
            | "not"
            | "and"
            | "or"
            | "implies"
            | "checker"
    )
}

impl<'a> ExprParser<'a, '_> {
    fn peek(&self) -> Option<Tok<'a>> {
        self.toks.get(self.pos).copied()
    }

    fn bump(&mut self) -> Option<Tok<'a>> {
        let t = self.peek()?;
        self.pos += 1;
        Some(t)
    }

    fn eat_word(&mut self, w: &str) -> Option<Tok<'a>> {
        let t = self.peek().filter(|t| t.is_word(w))?;
        self.pos += 1;
        Some(t)
    }

    fn at_end(&self, what: &str) -> Diagnostic {
        err(
            Span::new(self.end, self.end),
            format!("missing {what} at the end of the property"),
            EXPR_HINT,
        )
    }

    /// The whole expression: it must use every token.
    fn top(&mut self) -> Result<Expr, Diagnostic> {
        let (e, _) = self.implies()?;
        match self.peek() {
            None => Ok(e),
            Some(t) if t.kind == Kind::RParen => Err(err(
                t.span,
                "unmatched `)`",
                "remove it or add a matching `(` before it",
            )),
            Some(t) => Err(unexpected(
                t,
                "expected `and`, `or`, `implies` or the end of the property",
            )),
        }
    }

    /// `implies` is right-associative: `a implies b implies c` is `a implies (b implies c)`.
    fn implies(&mut self) -> Result<Node, Diagnostic> {
        let mut operands = vec![self.or()?];
        let mut ops = Vec::new();
        while let Some(t) = self.eat_word("implies") {
            ops.push(t.span);
            operands.push(self.or()?);
        }
        let Some(mut acc) = operands.pop() else {
            return Err(self.at_end("predicate"));
        };
        while let Some(lhs) = operands.pop() {
            let span = ops.pop().unwrap_or_default();
            let depth = lhs.1.max(acc.1) + 1;
            if depth > MAX_DEPTH {
                return Err(too_deep(span));
            }
            acc = (Expr::Implies(Box::new(lhs.0), Box::new(acc.0)), depth);
        }
        Ok(acc)
    }

    fn or(&mut self) -> Result<Node, Diagnostic> {
        let mut acc = self.and()?;
        while let Some(t) = self.eat_word("or") {
            let rhs = self.and()?;
            let depth = acc.1.max(rhs.1) + 1;
            if depth > MAX_DEPTH {
                return Err(too_deep(t.span));
            }
            acc = (Expr::Or(Box::new(acc.0), Box::new(rhs.0)), depth);
        }
        Ok(acc)
    }

    fn and(&mut self) -> Result<Node, Diagnostic> {
        let mut acc = self.not()?;
        while let Some(t) = self.eat_word("and") {
            let rhs = self.not()?;
            let depth = acc.1.max(rhs.1) + 1;
            if depth > MAX_DEPTH {
                return Err(too_deep(t.span));
            }
            acc = (Expr::And(Box::new(acc.0), Box::new(rhs.0)), depth);
        }
        Ok(acc)
    }

    fn not(&mut self) -> Result<Node, Diagnostic> {
        let mut nots = Vec::new();
        while let Some(t) = self.eat_word("not") {
            nots.push(t.span);
            if nots.len() > MAX_DEPTH {
                return Err(too_deep(t.span));
            }
        }
        let (mut e, mut depth) = self.atom()?;
        while let Some(span) = nots.pop() {
            depth += 1;
            if depth > MAX_DEPTH {
                return Err(too_deep(span));
            }
            e = Expr::Not(Box::new(e));
        }
        Ok((e, depth))
    }

    fn path(&mut self, after: &str) -> Result<Path, Diagnostic> {
        let t = self
            .bump()
            .ok_or_else(|| self.at_end(&format!("path after `{after}`")))?;
        path_of(t, "path")
    }

    fn cmp(&mut self) -> Result<Cmp, Diagnostic> {
        let t = self.bump().ok_or_else(|| self.at_end("comparison"))?;
        match t.kind {
            Kind::Cmp(c) => Ok(c),
            _ => Err(err(
                t.span,
                format!("expected a comparison, found `{}`", show(t.text)),
                CMP_HINT,
            )),
        }
    }

    fn number(&mut self, what: &str, integer: bool) -> Result<u64, Diagnostic> {
        let t = self.bump().ok_or_else(|| self.at_end(what))?;
        size_of(t, what, integer)
    }

    fn atom(&mut self) -> Result<Node, Diagnostic> {
        let t = self.bump().ok_or_else(|| self.at_end("predicate"))?;
        match t.kind {
            Kind::LParen => {
                self.nesting += 1;
                if self.nesting > MAX_DEPTH {
                    return Err(too_deep(t.span));
                }
                let inner = self.implies()?;
                self.nesting -= 1;
                match self.bump() {
                    Some(c) if c.kind == Kind::RParen => Ok(inner),
                    None => Err(err(t.span, "unclosed `(`", "add a matching `)`")),
                    Some(o) => Err(unexpected(o, "expected `)`, `and`, `or` or `implies`")),
                }
            }
            Kind::Word => match t.text {
                "exists" => Ok((Expr::Exists(self.path("exists")?), 1)),
                "size" => {
                    let p = self.path("size")?;
                    let c = self.cmp()?;
                    let n = self.number("size", false)?;
                    Ok((Expr::Size(p, c, n), 1))
                }
                "links" => {
                    let p = self.path("links")?;
                    let c = self.cmp()?;
                    let n = self.number("link count", true)?;
                    Ok((Expr::Links(p, c, n), 1))
                }
                "entries" => self.entries(),
                "readlink" => self.readlink(),
                "checker" => self.checker(),
                w if is_expr_keyword(w) => Err(err(
                    t.span,
                    format!("expected a predicate, found `{w}`"),
                    EXPR_HINT,
                )),
                _ => self.path_predicate(t),
            },
            Kind::RParen => Err(err(t.span, "expected a predicate, found `)`", EXPR_HINT)),
            _ => Err(err(
                t.span,
                format!("expected a predicate, found `{}`", show(t.text)),
                EXPR_HINT,
            )),
        }
    }

    /// `entries PATH == { name, ... }`
    fn entries(&mut self) -> Result<Node, Diagnostic> {
        const HINT: &str = "usage: entries PATH == {name, name, ...}";
        let p = self.path("entries")?;
        let eq = self.bump().ok_or_else(|| self.at_end("`==`"))?;
        if eq.kind != Kind::Cmp(Cmp::Eq) {
            return Err(err(
                eq.span,
                format!("expected `==`, found `{}`", show(eq.text)),
                HINT,
            ));
        }
        let open = self.bump().ok_or_else(|| self.at_end("`{`"))?;
        if open.kind != Kind::LBrace {
            return Err(err(
                open.span,
                format!("expected `{{`, found `{}`", show(open.text)),
                HINT,
            ));
        }
        let mut seen: HashSet<&str> = HashSet::new();
        if self.peek().is_some_and(|t| t.kind == Kind::RBrace) {
            self.pos += 1;
            return Ok((Expr::Entries(p, Vec::new()), 1));
        }
        let names = self.braced(open, HINT, |t| {
            if t.kind != Kind::Word || !is_name(t.text) {
                return Err(err(
                    t.span,
                    format!("bad entry name `{}`", show(t.text)),
                    "an entry name is made of letters, digits, `_`, `.` and `-` (not `.` or `..`)",
                ));
            }
            if !seen.insert(t.text) {
                return Err(err(
                    t.span,
                    format!("entry `{}` is listed twice", t.text),
                    "list each name once",
                ));
            }
            Ok(t.text.to_string())
        })?;
        Ok((Expr::Entries(p, names), 1))
    }

    /// The items of a `{A, B, ...}` list whose `{` (`open`) was read, each read by `item`,
    /// up to the closing `}`.
    fn braced<T>(
        &mut self,
        open: Tok<'a>,
        hint: &str,
        mut item: impl FnMut(Tok<'a>) -> Result<T, Diagnostic>,
    ) -> Result<Vec<T>, Diagnostic> {
        let unclosed = || err(open.span, "unclosed `{`", "add a matching `}`");
        let mut out = Vec::new();
        loop {
            let t = self.bump().ok_or_else(unclosed)?;
            out.push(item(t)?);
            let sep = self.bump().ok_or_else(unclosed)?;
            match sep.kind {
                Kind::Comma => {}
                Kind::RBrace => return Ok(out),
                _ => {
                    return Err(err(
                        sep.span,
                        format!("expected `,` or `}}`, found `{}`", show(sep.text)),
                        hint,
                    ))
                }
            }
        }
    }

    /// `checker` or `checker {PATH, PATH, ...}`
    fn checker(&mut self) -> Result<Node, Diagnostic> {
        const HINT: &str = "usage: checker, or checker {PATH, PATH, ...} (the paths it reads)";
        let Some(open) = self.peek().filter(|t| t.kind == Kind::LBrace) else {
            return Ok((Expr::Checker(Vec::new()), 1));
        };
        self.pos += 1;
        let mut seen: Vec<Path> = Vec::new();
        let paths = self.braced(open, HINT, |t| {
            let p = path_of(t, "path")?;
            if seen.contains(&p) {
                return Err(err(
                    t.span,
                    format!("path `{p}` is listed twice"),
                    "list each path once",
                ));
            }
            seen.push(p.clone());
            Ok(p)
        })?;
        Ok((Expr::Checker(paths), 1))
    }

    /// `readlink PATH == TARGET` (or `!=`)
    fn readlink(&mut self) -> Result<Node, Diagnostic> {
        const HINT: &str = "usage: readlink PATH == TARGET (or !=): PATH is a symlink to TARGET";
        let p = self.path("readlink")?;
        let op = self.bump().ok_or_else(|| self.at_end("`==` or `!=`"))?;
        let negate = match op.kind {
            Kind::Cmp(Cmp::Eq) => false,
            Kind::Cmp(Cmp::Ne) => true,
            _ => {
                return Err(err(
                    op.span,
                    format!("expected `==` or `!=`, found `{}`", show(op.text)),
                    HINT,
                ))
            }
        };
        let t = self.bump().ok_or_else(|| self.at_end("symlink target"))?;
        let e = Expr::Readlink(p, target_of(t)?);
        Ok(if negate {
            (Expr::Not(Box::new(e)), 2)
        } else {
            (e, 1)
        })
    }

    /// `PATH == D|old|new|empty`, `PATH != ...`, `PATH prefix-of D`
    fn path_predicate(&mut self, t: Tok) -> Result<Node, Diagnostic> {
        let p = path_of(t, "path")?;
        let hint = "after a path, expected `== DATA|old|new|empty`, `!= DATA|old|new|empty` or \
                    `prefix-of DATA` (keywords: exists, size, links, entries, readlink, not)";
        let Some(op) = self.bump() else {
            return Err(err(
                Span::new(self.end, self.end),
                format!(
                    "missing `==`, `!=` or `prefix-of` after path `{}`",
                    show(t.text)
                ),
                hint,
            ));
        };
        match op.kind {
            Kind::Cmp(c @ (Cmp::Eq | Cmp::Ne)) => {
                let r = self.bump().ok_or_else(|| self.at_end("data name, `old`, `new` or `empty`"))?;
                let content = match (r.kind, r.text) {
                    (Kind::Word, "old") => ContentRef::Old,
                    (Kind::Word, "new") => ContentRef::New,
                    (Kind::Word, "empty") => ContentRef::Empty,
                    (Kind::Word, name) if is_ident(name) => ContentRef::Data(name.to_string()),
                    _ => {
                        return Err(err(
                            r.span,
                            format!("expected a data name, `old`, `new` or `empty`, found `{}`", show(r.text)),
                            DATA_HINT,
                        ))
                    }
                };
                let e = Expr::ContentEq(p, content);
                Ok(if c == Cmp::Ne { (Expr::Not(Box::new(e)), 2) } else { (e, 1) })
            }
            Kind::Word if op.text == "prefix-of" => {
                let d = self.bump().ok_or_else(|| self.at_end("data name after `prefix-of`"))?;
                Ok((Expr::PrefixOf(p, data_of(d)?), 1))
            }
            Kind::Cmp(c) => Err(err(
                op.span,
                format!("`{}` cannot compare a file's content", c.symbol()),
                "contents are compared with `==` or `!=`; to compare sizes write `size PATH < SIZE`",
            )),
            _ => Err(err(
                op.span,
                format!(
                    "expected `==`, `!=` or `prefix-of` after path `{}`, found `{}`",
                    show(t.text),
                    show(op.text)
                ),
                hint,
            )),
        }
    }
}

/// Parses a property's expression from its tokens; `end` is where the property's text ends.
pub(super) fn parse_expr(toks: &[Tok], end: usize) -> Result<Expr, Diagnostic> {
    if toks.is_empty() {
        return Err(err(
            Span::new(end, end),
            "the property has no expression",
            EXPR_HINT,
        ));
    }
    ExprParser {
        toks,
        pos: 0,
        end,
        nesting: 0,
    }
    .top()
}
