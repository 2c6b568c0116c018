//! The parser of the unplug program language: text in, a [`Program`] or every error out.
//!
//! The language is line-oriented: one statement per line, `#` starts a comment that runs to the
//! end of the line, blank lines are ignored and tokens are separated by whitespace (the
//! punctuation `( ) { } , : = == != < <= > >=` needs no spaces around it). A statement is an op
//! (optionally labelled, `publish: rename tmp final`), a `data NAME SIZE` declaration, a
//! `setup` / `end` pair around the setup ops, or a `property NAME: always|after N:|after LABEL: EXPR`.
//!
//! An error in a line is recorded as a [`Diagnostic`] and parsing goes on with the next line, so
//! one run reports every error. The parser never panics, whatever its input.
//!
//! The parser does not check that handles are opened or that files exist: the volatile execution
//! does that.

use crate::diag::Diagnostic;
use crate::program::{
    Cmp, ContentRef, DataDecl, Expr, MsyncMode, Op, OpKind, OpenFlags, Path, Program, Property,
    RenameMode, Span, When,
};
use std::collections::{HashMap, HashSet};

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
        let code = match line.find('#') {
            Some(i) => line.get(..i).unwrap_or(""),
            None => line,
        };
        let toks = tokenize(code, start);
        parser.line_starts.push(start);
        parser.statement(&toks);
        start = start.saturating_add(raw.len()).saturating_add(1);
    }
    parser.finish()
}

/// Parses a size: a decimal or `0x` hexadecimal integer with an optional unit `B`, `KiB`, `MiB`,
/// `GiB`, `TiB`, `K`, `M` or `G` (`K` = `KiB` and so on), with no space before the unit:
/// `4096`, `4KiB`, `0x1000`, `8M`. Returns `None` if the text is not a size or if it does not
/// fit in a `u64`.
pub fn parse_size(text: &str) -> Option<u64> {
    size_value(text).ok()
}

// ---------------------------------------------------------------------------------------------
// Sizes, names and paths

#[derive(Clone, Debug, PartialEq, Eq)]
enum SizeError {
    NotNumber,
    BadUnit(String),
    Overflow,
}

/// Splits an integer prefix (decimal or `0x` hex) from the rest and returns its value.
fn integer_prefix(text: &str) -> Result<(u64, &str), SizeError> {
    let (digits, rest, radix) = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => {
            let n = hex
                .find(|c: char| !c.is_ascii_hexdigit())
                .unwrap_or(hex.len());
            (
                hex.get(..n).unwrap_or(""),
                hex.get(n..).unwrap_or(""),
                16u32,
            )
        }
        None => {
            let n = text
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(text.len());
            (
                text.get(..n).unwrap_or(""),
                text.get(n..).unwrap_or(""),
                10u32,
            )
        }
    };
    if digits.is_empty() {
        return Err(SizeError::NotNumber);
    }
    let mut value: u64 = 0;
    for c in digits.chars() {
        let d = c.to_digit(radix).ok_or(SizeError::NotNumber)?;
        value = value
            .checked_mul(u64::from(radix))
            .and_then(|v| v.checked_add(u64::from(d)))
            .ok_or(SizeError::Overflow)?;
    }
    Ok((value, rest))
}

fn size_value(text: &str) -> Result<u64, SizeError> {
    let (value, unit) = integer_prefix(text)?;
    let multiplier: u64 = match unit {
        "" | "B" => 1,
        "K" | "KiB" => 1 << 10,
        "M" | "MiB" => 1 << 20,
        "G" | "GiB" => 1 << 30,
        "TiB" => 1 << 40,
        _ => {
            return Err(if unit.starts_with(|c: char| c.is_ascii_alphabetic()) {
                SizeError::BadUnit(unit.to_string())
            } else {
                SizeError::NotNumber
            })
        }
    };
    value.checked_mul(multiplier).ok_or(SizeError::Overflow)
}

/// A plain integer (decimal or `0x` hex), without unit.
fn integer_value(text: &str) -> Result<u64, SizeError> {
    match integer_prefix(text)? {
        (value, "") => Ok(value),
        _ => Err(SizeError::NotNumber),
    }
}

fn is_ident(text: &str) -> bool {
    let mut chars = text.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// A path component: `[A-Za-z0-9_.-]+`, but not `.` or `..`.
fn is_name(text: &str) -> bool {
    !text.is_empty()
        && text != "."
        && text != ".."
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

fn path_value(text: &str) -> Result<Path, String> {
    if text == "." {
        return Ok(Path::root());
    }
    if text.starts_with('/') {
        return Err(
            "paths are relative to the root of the file system under test and have no \
                    leading `/`"
                .to_string(),
        );
    }
    let mut comps = Vec::new();
    for comp in text.split('/') {
        if comp.is_empty() {
            return Err("empty path component (`//` or a trailing `/`)".to_string());
        }
        if comp == "." || comp == ".." {
            return Err(format!("`{comp}` is not allowed as a path component"));
        }
        if let Some(c) = comp
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
        {
            return Err(format!("invalid character `{}`", show(&c.to_string())));
        }
        comps.push(comp.to_string());
    }
    Ok(Path(comps.into()))
}

/// Makes a token printable in a message: control characters escaped, long tokens cut.
fn show(text: &str) -> String {
    let mut out = String::new();
    for (n, c) in text.chars().enumerate() {
        if n == 40 {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

const SIZE_HINT: &str = "a size is an integer (decimal, or hex with 0x) with an optional unit B, \
                         KiB, MiB, GiB, TiB, K, M or G (K = KiB, M = MiB, G = GiB) and no space \
                         before the unit, e.g. 4096, 4KiB, 0x1000, 8MiB";
const INT_HINT: &str = "expected an integer (decimal, or hex with 0x), without unit, e.g. 2";
const PATH_HINT: &str = "a path is one or more names separated by `/`, each made of letters, \
                         digits, `_`, `.` and `-` (but not `.` or `..`), or `.` alone for the \
                         root directory; paths have no leading `/`";
const IDENT_HINT: &str = "a name starts with a letter or `_` and continues with letters, digits, \
                          `_`, `.` and `-`";
const DATA_HINT: &str = "a data name starts with a letter or `_` and continues with letters, \
                         digits, `_`, `.` and `-`; `old`, `new` and `empty` are reserved";
const FLAGS_HINT: &str = "expected one of: create, excl, trunc, append, sync, dsync, dir, \
                          tmpfile, direct (rdonly, wronly and rdwr are accepted and ignored)";
const TARGET_HINT: &str = "a symlink target is made of letters, digits, `_`, `.`, `-` and `/` \
                           (e.g. `v2`, `../data/v2`, `/etc/x`), at most 4095 bytes; the model \
                           stores it and never follows it";
const STATEMENT_HINT: &str = "expected one of: open (as `f = open PATH ...`), close, write, \
                              pwrite, ftruncate, fallocate, mmap (as `m = mmap f OFFSET LEN`), \
                              store, msync, munmap, fsync, fdatasync, sync, syncfs, \
                              sync_file_range, rename, link, flink, symlink, unlink, mkdir, \
                              rmdir, data, setup, end, property";
const EXPR_HINT: &str = "expected a predicate: `exists PATH`, `size PATH CMP SIZE`, \
                         `links PATH CMP N`, `entries PATH == {a, b}`, `readlink PATH == TARGET`, \
                         `PATH == DATA|old|new|empty`, `PATH != ...`, `PATH prefix-of DATA`, \
                         `not ...` or `( ... )`";
const CMP_HINT: &str = "expected a comparison: one of ==, !=, <, <=, >, >=";
const PROPERTY_USAGE: &str = "usage: `property NAME: always EXPR`, `property NAME: after N: \
                              EXPR` or `property NAME: after LABEL: EXPR`";

const U_OPEN: &str = "usage: HANDLE = open PATH [FLAG...] with FLAG one of: create, excl, \
                      trunc, append, sync, dsync, dir, tmpfile, direct, rdonly, wronly, rdwr";
const U_CLOSE: &str = "usage: close HANDLE";
const U_WRITE: &str = "usage: write HANDLE LEN DATA [at DATA_OFFSET]";
const U_PWRITE: &str = "usage: pwrite HANDLE OFFSET LEN DATA [at DATA_OFFSET]";
const U_FTRUNCATE: &str = "usage: ftruncate HANDLE SIZE";
const U_FALLOCATE: &str = "usage: fallocate HANDLE OFFSET LEN [keep-size]";
const U_SYNC_FILE_RANGE: &str = "usage: sync_file_range HANDLE OFFSET LEN (LEN 0: to the end of \
                                 the file)";
const U_MMAP: &str = "usage: MAP = mmap HANDLE OFFSET LEN";
const U_STORE: &str = "usage: store MAP OFFSET LEN DATA [at DATA_OFFSET]";
const U_MSYNC: &str = "usage: msync MAP [OFFSET LEN] sync|async [invalidate]";
const U_MUNMAP: &str = "usage: munmap MAP";
const U_FSYNC: &str = "usage: fsync HANDLE";
const U_FDATASYNC: &str = "usage: fdatasync HANDLE";
const U_SYNC: &str = "usage: sync (no arguments)";
const U_SYNCFS: &str = "usage: syncfs HANDLE";
const U_RENAME: &str = "usage: rename FROM TO [exchange|noreplace]";
const U_LINK: &str = "usage: link EXISTING NEW";
const U_FLINK: &str = "usage: flink HANDLE NEW (gives the handle's file a name, e.g. a tmpfile)";
const U_SYMLINK: &str = "usage: symlink TARGET PATH";
const U_UNLINK: &str = "usage: unlink PATH";
const U_MKDIR: &str = "usage: mkdir PATH";
const U_RMDIR: &str = "usage: rmdir PATH";
const U_DATA: &str = "usage: data NAME SIZE";

/// How deep an expression may nest (operators and parentheses): bounds the parser's recursion
/// and the depth of the tree every later stage walks.
const MAX_DEPTH: usize = 100;

// ---------------------------------------------------------------------------------------------
// Tokens

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Word,
    LParen,
    RParen,
    LBrace,
    RBrace,
    Comma,
    Colon,
    Assign,
    Bang,
    Cmp(Cmp),
}

#[derive(Clone, Copy, Debug)]
struct Tok<'a> {
    kind: Kind,
    text: &'a str,
    span: Span,
}

impl Tok<'_> {
    fn is_word(&self, w: &str) -> bool {
        self.kind == Kind::Word && self.text == w
    }
}

fn is_punct(c: char) -> bool {
    matches!(c, '(' | ')' | '{' | '}' | ',' | ':' | '=' | '!' | '<' | '>')
}

/// Splits one line (without its comment) into tokens; `base` is the line's byte offset.
fn tokenize(line: &str, base: usize) -> Vec<Tok<'_>> {
    let mut toks = Vec::new();
    let mut chars = line.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c.is_whitespace() {
            continue;
        }
        let mut end = i + c.len_utf8();
        let kind = match c {
            '(' => Kind::LParen,
            ')' => Kind::RParen,
            '{' => Kind::LBrace,
            '}' => Kind::RBrace,
            ',' => Kind::Comma,
            ':' => Kind::Colon,
            '=' | '!' | '<' | '>' => {
                let eq = matches!(chars.peek(), Some(&(_, '=')));
                if eq {
                    chars.next();
                    end += 1;
                }
                match (c, eq) {
                    ('=', true) => Kind::Cmp(Cmp::Eq),
                    ('=', false) => Kind::Assign,
                    ('!', true) => Kind::Cmp(Cmp::Ne),
                    ('!', false) => Kind::Bang,
                    ('<', true) => Kind::Cmp(Cmp::Le),
                    ('<', false) => Kind::Cmp(Cmp::Lt),
                    ('>', true) => Kind::Cmp(Cmp::Ge),
                    _ => Kind::Cmp(Cmp::Gt),
                }
            }
            _ => {
                while let Some(&(j, d)) = chars.peek() {
                    if d.is_whitespace() || is_punct(d) {
                        break;
                    }
                    end = j + d.len_utf8();
                    chars.next();
                }
                Kind::Word
            }
        };
        toks.push(Tok {
            kind,
            text: line.get(i..end).unwrap_or(""),
            span: Span::new(base + i, base + end),
        });
    }
    toks
}

fn err(span: Span, message: impl Into<String>, hint: impl Into<String>) -> Diagnostic {
    Diagnostic::new(span, message).with_hint(hint)
}

fn unexpected(t: Tok, hint: &str) -> Diagnostic {
    err(t.span, format!("unexpected `{}`", show(t.text)), hint)
}

fn ident_of(t: Tok, what: &str) -> Result<String, Diagnostic> {
    if t.kind != Kind::Word {
        return Err(err(
            t.span,
            format!("expected {what}, found `{}`", show(t.text)),
            IDENT_HINT,
        ));
    }
    if is_ident(t.text) {
        Ok(t.text.to_string())
    } else {
        Err(err(
            t.span,
            format!("bad {what} `{}`", show(t.text)),
            IDENT_HINT,
        ))
    }
}

fn data_of(t: Tok) -> Result<String, Diagnostic> {
    if t.kind != Kind::Word {
        return Err(err(
            t.span,
            format!("expected a data name, found `{}`", show(t.text)),
            DATA_HINT,
        ));
    }
    if matches!(t.text, "old" | "new" | "empty") {
        return Err(err(
            t.span,
            format!("`{}` cannot be a data name", t.text),
            "`old`, `new` and `empty` are keywords in properties; pick another name",
        ));
    }
    if is_ident(t.text) {
        Ok(t.text.to_string())
    } else {
        Err(err(
            t.span,
            format!("bad data name `{}`", show(t.text)),
            DATA_HINT,
        ))
    }
}

fn path_of(t: Tok, what: &str) -> Result<Path, Diagnostic> {
    if t.kind != Kind::Word {
        return Err(err(
            t.span,
            format!("expected {what}, found `{}`", show(t.text)),
            PATH_HINT,
        ));
    }
    path_value(t.text).map_err(|why| {
        err(
            t.span,
            format!("bad {what} `{}`: {why}", show(t.text)),
            PATH_HINT,
        )
    })
}

/// A symlink target: a word of path characters (`/` and `..` allowed), at most 4095 bytes.
fn target_of(t: Tok) -> Result<String, Diagnostic> {
    if t.kind != Kind::Word {
        return Err(err(
            t.span,
            format!("expected a symlink target, found `{}`", show(t.text)),
            TARGET_HINT,
        ));
    }
    if let Some(c) = t
        .text
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/')))
    {
        return Err(err(
            t.span,
            format!(
                "bad symlink target `{}`: invalid character `{}`",
                show(t.text),
                show(&c.to_string())
            ),
            TARGET_HINT,
        ));
    }
    if t.text.len() > 4095 {
        return Err(err(
            t.span,
            format!(
                "symlink target of {} bytes is too long: ENAMETOOLONG",
                t.text.len()
            ),
            TARGET_HINT,
        ));
    }
    Ok(t.text.to_string())
}

fn size_of(t: Tok, what: &str, integer: bool) -> Result<u64, Diagnostic> {
    let hint = if integer { INT_HINT } else { SIZE_HINT };
    if t.kind != Kind::Word {
        return Err(err(
            t.span,
            format!("expected {what}, found `{}`", show(t.text)),
            hint,
        ));
    }
    let value = if integer {
        integer_value(t.text)
    } else {
        size_value(t.text)
    };
    value.map_err(|e| {
        let why = match e {
            SizeError::NotNumber if integer => "not an integer".to_string(),
            SizeError::NotNumber => "not a size".to_string(),
            SizeError::BadUnit(u) => format!("unknown unit `{}`", show(&u)),
            SizeError::Overflow => "does not fit in 64 bits".to_string(),
        };
        err(
            t.span,
            format!("bad {what} `{}`: {why}", show(t.text)),
            hint,
        )
    })
}

/// `a + b` must fit in 64 bits (the end of a byte range).
fn range_fits(a: u64, b: u64, span: Span, what: &str) -> Result<(), Diagnostic> {
    match a.checked_add(b) {
        Some(_) => Ok(()),
        None => Err(err(
            span,
            format!("{what} ends past 2^64 bytes ({a} + {b} overflows)"),
            "offsets and lengths must add up to less than 2^64",
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// Arguments of one statement

struct Args<'a, 't> {
    toks: &'t [Tok<'a>],
    pos: usize,
    end: usize,
    usage: &'static str,
}

impl<'a, 't> Args<'a, 't> {
    fn new(toks: &'t [Tok<'a>], pos: usize, usage: &'static str) -> Self {
        let end = toks.last().map(|t| t.span.end).unwrap_or(0);
        Args {
            toks,
            pos,
            end,
            usage,
        }
    }

    fn peek(&self) -> Option<Tok<'a>> {
        self.toks.get(self.pos).copied()
    }

    fn next(&mut self, what: &str) -> Result<Tok<'a>, Diagnostic> {
        match self.peek() {
            Some(t) => {
                self.pos += 1;
                Ok(t)
            }
            None => Err(err(
                Span::new(self.end, self.end),
                format!("missing {what}"),
                self.usage,
            )),
        }
    }

    fn ident(&mut self, what: &str) -> Result<String, Diagnostic> {
        let t = self.next(what)?;
        ident_of(t, what).map_err(|d| self.with_usage(d))
    }

    fn data(&mut self) -> Result<String, Diagnostic> {
        let t = self.next("data name")?;
        data_of(t).map_err(|d| self.with_usage(d))
    }

    fn size(&mut self, what: &str) -> Result<(u64, Span), Diagnostic> {
        let t = self.next(what)?;
        size_of(t, what, false)
            .map(|v| (v, t.span))
            .map_err(|d| self.with_usage(d))
    }

    fn path(&mut self, what: &str) -> Result<Path, Diagnostic> {
        let t = self.next(what)?;
        path_of(t, what).map_err(|d| self.with_usage(d))
    }

    /// The optional `at DATA_OFFSET`; checks that `DATA_OFFSET + len` fits.
    fn at(&mut self, len: u64) -> Result<Option<u64>, Diagnostic> {
        match self.peek() {
            Some(t) if t.is_word("at") => {
                self.pos += 1;
                let (off, span) = self.size("data offset")?;
                range_fits(off, len, span, "the data range")?;
                Ok(Some(off))
            }
            _ => Ok(None),
        }
    }

    fn finish(&self) -> Result<(), Diagnostic> {
        match self.peek() {
            Some(t) => Err(unexpected(t, self.usage)),
            None => Ok(()),
        }
    }

    fn with_usage(&self, d: Diagnostic) -> Diagnostic {
        let hint = match d.hint {
            Some(h) => format!("{h} ({})", self.usage),
            None => self.usage.to_string(),
        };
        Diagnostic {
            hint: Some(hint),
            ..d
        }
    }
}

/// Parses the op of one line (the tokens after the label).
fn parse_op(toks: &[Tok]) -> Result<OpKind, Diagnostic> {
    let Some(&head) = toks.first() else {
        return Err(err(Span::default(), "missing op", STATEMENT_HINT));
    };
    if let Some(eq) = toks.get(1).filter(|t| t.kind == Kind::Assign) {
        return match toks.get(2) {
            Some(v) if v.is_word("open") => parse_open(toks),
            Some(v) if v.is_word("mmap") => parse_mmap(toks),
            Some(&v) => Err(err(
                v.span,
                format!(
                    "only `open` and `mmap` return a handle, found `{}`",
                    show(v.text)
                ),
                "usage: `f = open PATH [FLAG...]` or `m = mmap f OFFSET LEN`",
            )),
            None => Err(err(
                Span::new(eq.span.end, eq.span.end),
                "missing `open` or `mmap` after `=`",
                "usage: `f = open PATH [FLAG...]` or `m = mmap f OFFSET LEN`",
            )),
        };
    }
    if head.kind != Kind::Word {
        return Err(err(
            head.span,
            format!("expected a statement, found `{}`", show(head.text)),
            STATEMENT_HINT,
        ));
    }
    let simple = |usage: &'static str, what: &str| -> Result<String, Diagnostic> {
        let mut a = Args::new(toks, 1, usage);
        let name = a.ident(what)?;
        a.finish()?;
        Ok(name)
    };
    let one_path = |usage: &'static str| -> Result<Path, Diagnostic> {
        let mut a = Args::new(toks, 1, usage);
        let path = a.path("path")?;
        a.finish()?;
        Ok(path)
    };
    let two_paths = |usage: &'static str, first: &str, second: &str| {
        let mut a = Args::new(toks, 1, usage);
        let from = a.path(first)?;
        let to = a.path(second)?;
        a.finish()?;
        Ok::<_, Diagnostic>((from, to))
    };
    match head.text {
        "open" | "mmap" => Err(err(
            head.span,
            format!("`{}` must assign its result to a name", head.text),
            if head.text == "open" { U_OPEN } else { U_MMAP },
        )),
        "close" => Ok(OpKind::Close {
            handle: simple(U_CLOSE, "handle")?,
        }),
        "write" | "pwrite" => {
            let usage = if head.text == "write" {
                U_WRITE
            } else {
                U_PWRITE
            };
            let mut a = Args::new(toks, 1, usage);
            let handle = a.ident("handle")?;
            let offset = if head.text == "pwrite" {
                Some(a.size("offset")?.0)
            } else {
                None
            };
            let (len, len_span) = a.size("length")?;
            if let Some(off) = offset {
                range_fits(off, len, len_span, "the write")?;
            }
            let data = a.data()?;
            let data_off = a.at(len)?;
            a.finish()?;
            Ok(OpKind::Write {
                handle,
                offset,
                len,
                data,
                data_off,
            })
        }
        "ftruncate" => {
            let mut a = Args::new(toks, 1, U_FTRUNCATE);
            let handle = a.ident("handle")?;
            let (size, _) = a.size("size")?;
            a.finish()?;
            Ok(OpKind::Ftruncate { handle, size })
        }
        "fallocate" => {
            let mut a = Args::new(toks, 1, U_FALLOCATE);
            let handle = a.ident("handle")?;
            let (offset, _) = a.size("offset")?;
            let (len, len_span) = a.size("length")?;
            range_fits(offset, len, len_span, "the fallocate range")?;
            let keep_size = match a.peek() {
                Some(t) if t.is_word("keep-size") => {
                    a.pos += 1;
                    true
                }
                _ => false,
            };
            a.finish()?;
            Ok(OpKind::Fallocate {
                handle,
                offset,
                len,
                keep_size,
            })
        }
        "sync_file_range" => {
            let mut a = Args::new(toks, 1, U_SYNC_FILE_RANGE);
            let handle = a.ident("handle")?;
            let (offset, _) = a.size("offset")?;
            let (len, len_span) = a.size("length")?;
            range_fits(offset, len, len_span, "the range")?;
            a.finish()?;
            Ok(OpKind::SyncFileRange {
                handle,
                offset,
                len,
            })
        }
        "store" => {
            let mut a = Args::new(toks, 1, U_STORE);
            let map = a.ident("mapping name")?;
            let (offset, _) = a.size("offset")?;
            let (len, len_span) = a.size("length")?;
            range_fits(offset, len, len_span, "the store")?;
            let data = a.data()?;
            let data_off = a.at(len)?;
            a.finish()?;
            Ok(OpKind::Store {
                map,
                offset,
                len,
                data,
                data_off,
            })
        }
        "msync" => parse_msync(toks),
        "munmap" => Ok(OpKind::Munmap {
            map: simple(U_MUNMAP, "mapping name")?,
        }),
        "fsync" => Ok(OpKind::Fsync {
            handle: simple(U_FSYNC, "handle")?,
        }),
        "fdatasync" => Ok(OpKind::Fdatasync {
            handle: simple(U_FDATASYNC, "handle")?,
        }),
        "syncfs" => Ok(OpKind::Syncfs {
            handle: simple(U_SYNCFS, "handle")?,
        }),
        "sync" => {
            Args::new(toks, 1, U_SYNC).finish()?;
            Ok(OpKind::Sync)
        }
        "rename" => {
            let mut a = Args::new(toks, 1, U_RENAME);
            let from = a.path("source path")?;
            let to = a.path("target path")?;
            let mode = match a.peek() {
                Some(t) if t.is_word("exchange") => RenameMode::Exchange,
                Some(t) if t.is_word("noreplace") => RenameMode::NoReplace,
                _ => RenameMode::Replace,
            };
            if mode != RenameMode::Replace {
                a.pos += 1;
            }
            a.finish()?;
            Ok(OpKind::Rename { from, to, mode })
        }
        "link" => {
            let (from, to) = two_paths(U_LINK, "existing path", "new path")?;
            Ok(OpKind::Link { from, to })
        }
        "flink" => {
            let mut a = Args::new(toks, 1, U_FLINK);
            let handle = a.ident("handle")?;
            let path = a.path("new path")?;
            a.finish()?;
            Ok(OpKind::Flink { handle, path })
        }
        "symlink" => {
            let mut a = Args::new(toks, 1, U_SYMLINK);
            let t = a.next("symlink target")?;
            let target = target_of(t).map_err(|d| a.with_usage(d))?;
            let path = a.path("path")?;
            a.finish()?;
            Ok(OpKind::Symlink { target, path })
        }
        "unlink" => Ok(OpKind::Unlink {
            path: one_path(U_UNLINK)?,
        }),
        "mkdir" => Ok(OpKind::Mkdir {
            path: one_path(U_MKDIR)?,
        }),
        "rmdir" => Ok(OpKind::Rmdir {
            path: one_path(U_RMDIR)?,
        }),
        _ => Err(err(
            head.span,
            format!("unknown statement `{}`", show(head.text)),
            STATEMENT_HINT,
        )),
    }
}

/// `HANDLE = open PATH [FLAG...]`
fn parse_open(toks: &[Tok]) -> Result<OpKind, Diagnostic> {
    let mut a = Args::new(toks, 0, U_OPEN);
    let handle = a.ident("handle name")?;
    a.pos = 3;
    let path = a.path("path")?;
    let mut flags = OpenFlags::default();
    while let Some(t) = a.peek() {
        a.pos += 1;
        let word = if t.kind == Kind::Word { t.text } else { "" };
        match word {
            "create" => flags.create = true,
            "excl" => flags.excl = true,
            "trunc" => flags.trunc = true,
            "append" => flags.append = true,
            "sync" => flags.sync = true,
            "dsync" => flags.dsync = true,
            "dir" => flags.directory = true,
            "tmpfile" => flags.tmpfile = true,
            "direct" => flags.direct = true,
            "rdonly" | "wronly" | "rdwr" => {}
            _ => {
                return Err(err(
                    t.span,
                    format!("unknown open flag `{}`", show(t.text)),
                    FLAGS_HINT,
                ))
            }
        }
    }
    Ok(OpKind::Open {
        handle,
        path,
        flags,
    })
}

/// `MAP = mmap HANDLE OFFSET LEN`
fn parse_mmap(toks: &[Tok]) -> Result<OpKind, Diagnostic> {
    let mut a = Args::new(toks, 0, U_MMAP);
    let map = a.ident("mapping name")?;
    a.pos = 3;
    let handle = a.ident("handle")?;
    let (offset, _) = a.size("offset")?;
    let (len, len_span) = a.size("length")?;
    range_fits(offset, len, len_span, "the mapping")?;
    a.finish()?;
    Ok(OpKind::Mmap {
        handle,
        map,
        offset,
        len,
    })
}

/// `msync MAP [OFFSET LEN] sync|async [invalidate]`
fn parse_msync(toks: &[Tok]) -> Result<OpKind, Diagnostic> {
    let mut a = Args::new(toks, 1, U_MSYNC);
    let map = a.ident("mapping name")?;
    let mode_of = |t: Tok| match (t.kind, t.text) {
        (Kind::Word, "sync") => Some(MsyncMode::Sync),
        (Kind::Word, "async") => Some(MsyncMode::Async),
        _ => None,
    };
    let bad_mode = |t: Tok| {
        err(
            t.span,
            format!("expected `sync` or `async`, found `{}`", show(t.text)),
            U_MSYNC,
        )
    };
    let first = a.next("msync mode `sync` or `async`")?;
    let (range, mode) = match mode_of(first) {
        Some(mode) => (None, mode),
        None => {
            if first.kind == Kind::Word && size_value(first.text) == Err(SizeError::NotNumber) {
                return Err(bad_mode(first));
            }
            let offset = size_of(first, "offset", false).map_err(|d| a.with_usage(d))?;
            let (len, len_span) = a.size("length")?;
            range_fits(offset, len, len_span, "the msync range")?;
            let t = a.next("msync mode `sync` or `async`")?;
            let mode = mode_of(t).ok_or_else(|| bad_mode(t))?;
            (Some((offset, len)), mode)
        }
    };
    let invalidate = match a.peek() {
        Some(t) if t.is_word("invalidate") => {
            a.pos += 1;
            true
        }
        _ => false,
    };
    a.finish()?;
    Ok(OpKind::Msync {
        map,
        range,
        mode,
        invalidate,
    })
}

// ---------------------------------------------------------------------------------------------
// Expressions

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
        "exists" | "size" | "links" | "entries" | "readlink" | "not" | "and" | "or" | "implies"
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
        let unclosed = || err(open.span, "unclosed `{`", "add a matching `}`");
        let mut names: Vec<String> = Vec::new();
        let mut seen: HashSet<&str> = HashSet::new();
        if self.peek().is_some_and(|t| t.kind == Kind::RBrace) {
            self.pos += 1;
            return Ok((Expr::Entries(p, names), 1));
        }
        loop {
            let t = self.bump().ok_or_else(unclosed)?;
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
            names.push(t.text.to_string());
            let sep = self.bump().ok_or_else(unclosed)?;
            match sep.kind {
                Kind::Comma => {}
                Kind::RBrace => break,
                _ => {
                    return Err(err(
                        sep.span,
                        format!("expected `,` or `}}`, found `{}`", show(sep.text)),
                        HINT,
                    ))
                }
            }
        }
        Ok((Expr::Entries(p, names), 1))
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
fn parse_expr(toks: &[Tok], end: usize) -> Result<Expr, Diagnostic> {
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

// ---------------------------------------------------------------------------------------------
// Statements

enum Target {
    Number(Option<usize>),
    Label(String),
}

/// An `after N:` / `after LABEL:` to resolve once every op is known.
struct Pending {
    prop: Option<usize>,
    target: Target,
    span: Span,
}

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
        if matches!(keyword, "setup" | "end" | "data" | "property") {
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
            a.finish()?;
            Ok::<_, Diagnostic>((name, name_tok.span, len))
        })();
        let (name, name_span, len) = match parsed {
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

    fn property(&mut self, rest: &[Tok]) {
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

    fn finish(mut self) -> (Program, Vec<Diagnostic>) {
        if let Some(open) = self.setup_open {
            self.diags.push(err(
                open,
                "`setup` is not closed by `end`",
                "add a line `end` after the setup ops",
            ));
        }
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
        self.diags.sort_by_key(|d| (d.span.start, d.span.end));
        (self.prog, self.diags)
    }
}

#[cfg(test)]
mod tests;
