//! The parser of the unplug program language: text in, a [`Program`] or every error out.
//!
//! The language is line-oriented: one statement per line, `#` starts a comment that runs to the
//! end of the line, blank lines are ignored and tokens are separated by whitespace (the
//! punctuation `( ) { } , : = == != < <= > >=` needs no spaces around it). A statement is an op
//! (optionally labelled, `publish: rename tmp final`), a `data NAME SIZE [hex HEXDIGITS | file
//! RELPATH]` declaration, a `setup` / `end` pair around the setup ops, or a
//! `property NAME: always|after N:|after LABEL: EXPR`.
//!
//! An error in a line is recorded as a [`Diagnostic`] and parsing goes on with the next line, so
//! one run reports every error. The parser never panics, whatever its input.
//!
//! The parser does not check that handles are opened or that files exist: the volatile execution
//! does that.
//!
//! The parser is cut along its levels: `lexer` (tokens, spans, and the sizes, names and paths a
//! token carries), `args` (the hints, the one-token readers and the argument reader every
//! statement shares), `ops` (one file per op family, like the volatile execution), `expr` and
//! `property` (properties and their expressions); this file reads the lines and the statements
//! that shape a program (`setup`, `end`, `data`, labels).

use crate::diag::Diagnostic;
use crate::program::{DataDecl, Op, Program, Span};
use args::{data_of, data_source, err, unexpected, Args, IDENT_HINT};
use lexer::{is_ident, show, size_value, tokenize, Kind, Tok};
use ops::parse_op;
use property::Pending;
use std::collections::HashMap;

mod args;
mod expr;
mod lexer;
mod ops;
mod property;

/// Parses a whole program. On failure, returns every error found (at most one per line, plus
/// the errors found once the whole text is read: unclosed `setup`, unknown `after` targets),
/// sorted by position. Lines may end with `\n` or `\r\n`.
pub fn parse(source: &str) -> Result<Program, Vec<Diagnostic>> {
    let (program, diags) = parse_partial(source);
    if diags.is_empty() {
        Ok(program)
    } else {
        Err(diags)
    }
}

/// Parses what can be parsed: the program without its broken statements, and every error.
/// Used to go on checking the ops before the first error, so one run reports those too.
pub fn parse_partial(source: &str) -> (Program, Vec<Diagnostic>) {
    let mut parser = Parser::new(source);
    let mut start = 0usize;
    for raw in source.split('\n') {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let (code, comment) = match line.find('#') {
            Some(i) => (line.get(..i).unwrap_or(""), line.get(i + 1..)),
            None => (line, None),
        };
        // A trailing `# at SITE`: where an application made the call (written by `unplug trace`).
        parser.site = comment
            .map(str::trim)
            .and_then(|c| c.strip_prefix("at "))
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty());
        let toks = tokenize(code, start);
        parser.line_starts.push(start);
        parser.statement(&toks);
        start = start.saturating_add(raw.len()).saturating_add(1);
    }
    parser.finish()
}

/// Parses a program path (`a/b`: relative, `/`-separated, no empty, `.` or `..` component), as
/// the language writes it; why not, when it is not one.
pub fn parse_path(text: &str) -> Result<crate::Path, String> {
    lexer::path_value(text).map_err(|why| why.to_string())
}

/// Parses a size: a decimal or `0x` hexadecimal integer with an optional unit `B`, `KiB`, `MiB`,
/// `GiB`, `TiB`, `PiB`, `EiB`, `K`, `M` or `G` (`K` = `KiB` and so on), with no space before the unit:
/// `4096`, `4KiB`, `0x1000`, `8M`. Returns `None` if the text is not a size or if it does not
/// fit in a `u64`.
pub fn parse_size(text: &str) -> Option<u64> {
    size_value(text).ok()
}

const U_STDOUT: &str = "usage: stdout hex HEXDIGITS (bytes the application printed to its \
     standard output after the ops above; written by `unplug trace`)";

const U_DATA: &str = "usage: data NAME SIZE, data NAME SIZE hex HEXDIGITS or data NAME SIZE \
     file RELPATH";

/// The state of a parse: the program so far, the errors, and what later lines are checked
/// against (the open setup block, labels, data and property names, `after`s to resolve).
struct Parser<'s> {
    src: &'s str,
    diags: Vec<Diagnostic>,
    prog: Program,
    /// The `setup` token of the block being read.
    setup_open: Option<Span>,
    first_setup: Option<Span>,
    first_op: Option<Span>,
    /// Program op lines seen so far, including those with errors (so that errors in ops do not
    /// also make `after N` out of range).
    op_slots: usize,
    labels: HashMap<String, (usize, Span)>,
    data_names: HashMap<String, Span>,
    prop_names: HashMap<String, Span>,
    pending: Vec<Pending>,
    /// The byte offset of each line read so far.
    line_starts: Vec<usize>,
    /// The `# at SITE` comment of the line being read.
    site: Option<String>,
}

impl<'s> Parser<'s> {
    fn new(src: &'s str) -> Self {
        Parser {
            src,
            diags: Vec::new(),
            prog: Program::default(),
            setup_open: None,
            first_setup: None,
            first_op: None,
            op_slots: 0,
            labels: HashMap::new(),
            data_names: HashMap::new(),
            prop_names: HashMap::new(),
            pending: Vec::new(),
            line_starts: Vec::new(),
            site: None,
        }
    }

    /// The 1-based line of a span (of a line already read).
    fn line_of(&self, span: Span) -> usize {
        self.line_starts
            .partition_point(|&s| s <= span.start)
            .max(1)
    }

    fn text(&self, start: usize, end: usize) -> String {
        self.src.get(start..end).unwrap_or("").to_string()
    }

    fn statement(&mut self, toks: &[Tok]) {
        if toks.is_empty() {
            return;
        }
        let (label, rest) = match toks {
            [l, c, rest @ ..]
                if l.kind == Kind::Word && c.kind == Kind::Colon && l.text != "property" =>
            {
                (Some(*l), rest)
            }
            _ => (None, toks),
        };
        let Some(head) = rest.first() else {
            if let Some(l) = label {
                self.diags.push(err(
                    l.span,
                    format!("label `{}` is not followed by an op", show(l.text)),
                    "write the op on the same line as its label, e.g. `publish: rename tmp final`",
                ));
            }
            return;
        };
        let assignment = rest.get(1).is_some_and(|t| t.kind == Kind::Assign);
        let keyword = if head.kind == Kind::Word && !assignment {
            head.text
        } else {
            ""
        };
        if matches!(keyword, "setup" | "end" | "data" | "property" | "stdout") {
            if let Some(l) = label {
                self.diags.push(err(
                    l.span,
                    format!("`{keyword}` cannot have a label"),
                    "labels name ops, e.g. `publish: rename tmp final`",
                ));
            }
            match keyword {
                "setup" => self.setup(rest),
                "end" => self.end(rest),
                "data" => self.data(rest),
                "stdout" => self.stdout(rest),
                _ => self.property(rest),
            }
        } else {
            self.op(label, rest);
        }
    }

    fn setup(&mut self, rest: &[Tok]) {
        let Some(&kw) = rest.first() else { return };
        if let Some(open) = self.setup_open {
            self.diags.push(err(
                kw.span,
                "setup blocks cannot be nested",
                format!(
                    "close the setup block opened on line {} with `end` first",
                    self.line_of(open)
                ),
            ));
            return;
        }
        if let Some(first) = self.first_setup {
            self.diags.push(err(
                kw.span,
                "a program has at most one setup block",
                format!(
                    "move these ops into the setup block on line {}",
                    self.line_of(first)
                ),
            ));
        } else if let Some(op) = self.first_op {
            self.diags.push(err(
                kw.span,
                "setup must come before the program's ops",
                format!(
                    "move the setup block before op 1 (line {})",
                    self.line_of(op)
                ),
            ));
        }
        if let Some(&extra) = rest.get(1) {
            self.diags.push(unexpected(
                extra,
                "`setup` stands alone on its line; the setup ops follow on the next lines, up to \
                 a line `end`",
            ));
        }
        self.first_setup.get_or_insert(kw.span);
        self.setup_open = Some(kw.span);
    }

    fn end(&mut self, rest: &[Tok]) {
        let Some(&kw) = rest.first() else { return };
        if self.setup_open.take().is_none() {
            self.diags.push(err(
                kw.span,
                "`end` without `setup`",
                "`end` closes a `setup` block; remove it or add `setup` before the setup ops",
            ));
            return;
        }
        if let Some(&extra) = rest.get(1) {
            self.diags
                .push(unexpected(extra, "`end` stands alone on its line"));
        }
    }

    fn data(&mut self, rest: &[Tok]) {
        let mut a = Args::new(rest, 1, U_DATA);
        let parsed = (|| {
            let name_tok = a.next("data name")?;
            let name = data_of(name_tok).map_err(|d| a.with_usage(d))?;
            let (len, _) = a.size("data length")?;
            let source = data_source(&mut a, len)?;
            a.finish()?;
            Ok::<_, Diagnostic>((name, name_tok.span, len, source))
        })();
        let (name, name_span, len, source) = match parsed {
            Ok(v) => v,
            Err(d) => return self.diags.push(d),
        };
        if let Some(&first) = self.data_names.get(&name) {
            self.diags.push(err(
                name_span,
                format!("data `{name}` is declared twice"),
                format!("first declared on line {}", self.line_of(first)),
            ));
            return;
        }
        self.data_names.insert(name.clone(), name_span);
        let start = rest.first().map(|t| t.span.start).unwrap_or(0);
        let end = rest.last().map(|t| t.span.end).unwrap_or(start);
        self.prog.data.push(DataDecl {
            name,
            len,
            source,
            span: Span::new(start, end),
        });
    }

    /// `stdout hex HEXDIGITS`: what the application printed after the ops so far.
    fn stdout(&mut self, rest: &[Tok]) {
        let mut a = Args::new(rest, 1, U_STDOUT);
        let parsed = (|| {
            let kw = a.next("`hex`")?;
            if !kw.is_word("hex") {
                return Err(err(
                    kw.span,
                    format!("expected `hex`, found `{}`", show(kw.text)),
                    U_STDOUT,
                ));
            }
            let t = a.next("hex digits")?;
            let bytes = args::hex_of(t, t.text.len() as u64 / 2)?;
            a.finish()?;
            Ok::<_, Diagnostic>(bytes)
        })();
        let bytes = match parsed {
            Ok(b) => b,
            Err(d) => return self.diags.push(d),
        };
        let start = rest.first().map(|t| t.span.start).unwrap_or(0);
        let end = rest.last().map(|t| t.span.end).unwrap_or(start);
        if self.setup_open.is_some() {
            self.diags.push(err(
                Span::new(start, end),
                "`stdout` is not allowed inside setup",
                "setup is the tree before the application ran; move the line after `end`",
            ));
            return;
        }
        self.prog.outputs.push(crate::program::Output {
            after: self.op_slots,
            bytes,
            span: Span::new(start, end),
        });
    }

    fn op(&mut self, label: Option<Tok>, rest: &[Tok]) {
        let (Some(first), Some(last)) = (rest.first(), rest.last()) else {
            return;
        };
        let span = Span::new(first.span.start, last.span.end);
        let in_setup = self.setup_open.is_some();
        if !in_setup {
            self.op_slots += 1;
            self.first_op.get_or_insert(span);
        }
        let number = self.op_slots;
        let label_name = match label {
            None => None,
            Some(l) if in_setup => {
                self.diags.push(err(
                    l.span,
                    "labels are not allowed inside setup",
                    "setup ops happen before crash point 0, so no property can refer to them; \
                     remove the label",
                ));
                None
            }
            Some(l) if !is_ident(l.text) => {
                self.diags.push(err(
                    l.span,
                    format!("bad label `{}`", show(l.text)),
                    IDENT_HINT,
                ));
                None
            }
            Some(l) => {
                if let Some(&(n, first)) = self.labels.get(l.text) {
                    self.diags.push(err(
                        l.span,
                        format!("label `{}` is defined twice", l.text),
                        format!(
                            "it already names op {n} (line {}); labels must be unique",
                            self.line_of(first)
                        ),
                    ));
                    None
                } else {
                    self.labels.insert(l.text.to_string(), (number, l.span));
                    Some(l.text.to_string())
                }
            }
        };
        match parse_op(rest) {
            Ok(kind) => {
                let op = Op {
                    kind,
                    label: label_name,
                    text: self.text(span.start, span.end),
                    span,
                    site: self.site.take(),
                };
                if in_setup {
                    self.prog.setup.push(op);
                } else {
                    self.prog.ops.push(op);
                }
            }
            Err(d) => self.diags.push(d),
        }
    }

    fn finish(mut self) -> (Program, Vec<Diagnostic>) {
        if let Some(open) = self.setup_open {
            self.diags.push(err(
                open,
                "`setup` is not closed by `end`",
                "add a line `end` after the setup ops",
            ));
        }
        self.resolve_pending();
        self.diags.sort_by_key(|d| (d.span.start, d.span.end));
        (self.prog, self.diags)
    }
}

#[cfg(test)]
mod tests;
