//! What every statement shares: the hints of its errors, the readers of one token as an
//! identifier, data name, path, symlink target or size (each error with its span and hint), and
//! `Args`, which reads a statement's arguments in order and adds the statement's usage to the
//! hint of an error.

use super::lexer::{integer_value, is_ident, path_value, show, size_value, Kind, SizeError, Tok};
use crate::diag::Diagnostic;
use crate::program::{DataSource, Path, Span};

const SIZE_HINT: &str = "a size is an integer (decimal, or hex with 0x) with an optional unit B, \
     KiB, MiB, GiB, TiB, PiB, EiB, K, M or G (K = KiB, M = MiB, G = GiB) and no space \
     before the unit, e.g. 4096, 4KiB, 0x1000, 8MiB";
const INT_HINT: &str = "expected an integer (decimal, or hex with 0x), without unit, e.g. 2";
const PATH_HINT: &str = "a path is one or more names separated by `/`, each made of letters, \
     digits, `_`, `.` and `-` (but not `.` or `..`), or `.` alone for the \
     root directory; paths have no leading `/`";
pub(super) const IDENT_HINT: &str =
    "a name starts with a letter or `_` and continues with letters, digits, \
     `_`, `.` and `-`";
pub(super) const DATA_HINT: &str =
    "a data name starts with a letter or `_` and continues with letters, \
     digits, `_`, `.` and `-`; `old`, `new` and `empty` are reserved";
const TARGET_HINT: &str = "a symlink target is made of letters, digits, `_`, `.`, `-` and `/` \
     (e.g. `v2`, `../data/v2`, `/etc/x`), at most 4095 bytes; the model \
     stores it and never follows it";
pub(super) const STATEMENT_HINT: &str =
    "expected one of: open (as `f = open PATH ...`), close, write, \
     pwrite, ftruncate, fallocate, mmap (as `m = mmap f OFFSET LEN`), \
     store, msync, munmap, fsync, fdatasync, sync, syncfs, \
     sync_file_range, rename, link, flink, symlink, unlink, mkdir, \
     rmdir, data, setup, end, property, stdout";
pub(super) const EXPR_HINT: &str = "expected a predicate: `exists PATH`, `size PATH CMP SIZE`, \
     `links PATH CMP N`, `entries PATH == {a, b}`, `readlink PATH == TARGET`, \
     `PATH == DATA|old|new|empty`, `PATH != ...`, `PATH prefix-of DATA`, \
     `checker`, `checker {PATH, ...}`, `not ...` or `( ... )`";
pub(super) const CMP_HINT: &str = "expected a comparison: one of ==, !=, <, <=, >, >=";
pub(super) const PROPERTY_USAGE: &str =
    "usage: `property NAME: always EXPR`, `property NAME: after N: \
     EXPR` or `property NAME: after LABEL: EXPR`";

pub(super) fn err(span: Span, message: impl Into<String>, hint: impl Into<String>) -> Diagnostic {
    Diagnostic::new(span, message).with_hint(hint)
}

pub(super) fn unexpected(t: Tok, hint: &str) -> Diagnostic {
    err(t.span, format!("unexpected `{}`", show(t.text)), hint)
}

pub(super) fn ident_of(t: Tok, what: &str) -> Result<String, Diagnostic> {
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

pub(super) fn data_of(t: Tok) -> Result<String, Diagnostic> {
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

pub(super) fn path_of(t: Tok, what: &str) -> Result<Path, Diagnostic> {
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
pub(super) fn target_of(t: Tok) -> Result<String, Diagnostic> {
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

pub(super) const HEX_HINT: &str = "`hex` gives a data's content inline: two hex digits per \
     byte (0-9, a-f or A-F), exactly SIZE bytes, in one word without spaces, e.g. \
     `data D 4 hex 00ff10ab`";
pub(super) const RELPATH_HINT: &str = "`file` names a file holding the data's content (exactly \
     SIZE bytes), relative to the directory of the .up file: letters, digits, `_`, `.`, `-` and \
     `/`, no spaces and no leading `/`, e.g. `data D 4096 file prog.data/3f2a9c`";

/// The content of `hex HEXDIGITS` for a data of `len` bytes: an even number of hex digits
/// giving exactly `len` bytes. A non-hex character is pointed at.
pub(super) fn hex_of(t: Tok, len: u64) -> Result<Vec<u8>, Diagnostic> {
    if t.kind != Kind::Word {
        return Err(err(
            t.span,
            format!("expected hex digits, found `{}`", show(t.text)),
            HEX_HINT,
        ));
    }
    if let Some((i, c)) = t.text.char_indices().find(|(_, c)| !c.is_ascii_hexdigit()) {
        let at = t.span.start + i;
        return Err(err(
            Span::new(at, at + c.len_utf8()),
            format!(
                "`{}` is not a hex digit (in the content of the data)",
                show(&c.to_string())
            ),
            HEX_HINT,
        ));
    }
    let digits = t.text.as_bytes();
    if digits.len() % 2 == 1 {
        return Err(err(
            t.span,
            format!(
                "odd number of hex digits ({}): each byte takes two",
                digits.len()
            ),
            HEX_HINT,
        ));
    }
    let bytes: Vec<u8> = digits
        .chunks(2)
        .map(|pair| {
            let d = |b: u8| char::from(b).to_digit(16).unwrap_or(0) as u8;
            d(pair[0]) << 4 | d(pair[1])
        })
        .collect();
    if bytes.len() as u64 != len {
        return Err(err(
            t.span,
            format!(
                "the hex content is {} bytes, but the data is declared {len} bytes",
                bytes.len()
            ),
            HEX_HINT,
        ));
    }
    Ok(bytes)
}

/// The path of `file RELPATH`: relative, made of path characters, no empty component.
pub(super) fn relpath_of(t: Tok) -> Result<String, Diagnostic> {
    let bad = |why: String| {
        err(
            t.span,
            format!("bad data file `{}`: {why}", show(t.text)),
            RELPATH_HINT,
        )
    };
    if t.kind != Kind::Word {
        return Err(err(
            t.span,
            format!("expected a data file path, found `{}`", show(t.text)),
            RELPATH_HINT,
        ));
    }
    if let Some(c) = t
        .text
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/')))
    {
        return Err(bad(format!("invalid character `{}`", show(&c.to_string()))));
    }
    if t.text.starts_with('/') {
        return Err(bad(
            "the path is relative to the directory of the .up file and has no leading `/`"
                .to_string(),
        ));
    }
    if t.text.split('/').any(str::is_empty) {
        return Err(bad(
            "empty path component (`//` or a trailing `/`)".to_string()
        ));
    }
    Ok(t.text.to_string())
}

/// What follows `data NAME SIZE`: nothing, `hex HEXDIGITS` or `file RELPATH`. A data of 0
/// bytes may be `hex` with no digits.
pub(super) fn data_source(a: &mut Args, len: u64) -> Result<Option<DataSource>, Diagnostic> {
    let Some(kw) = a.peek() else {
        return Ok(None);
    };
    a.pos += 1;
    if kw.is_word("hex") {
        if len == 0 && a.peek().is_none() {
            return Ok(Some(DataSource::Hex(Vec::new())));
        }
        let t = a.next("hex digits")?;
        return hex_of(t, len).map(|b| Some(DataSource::Hex(b)));
    }
    if kw.is_word("file") {
        let t = a.next("data file path")?;
        return relpath_of(t).map(|p| Some(DataSource::File(p)));
    }
    Err(err(
        kw.span,
        format!("unexpected `{}` after the data's size", show(kw.text)),
        "after `data NAME SIZE` comes nothing, `hex HEXDIGITS` (the content inline) or \
         `file RELPATH` (the content in a file beside the program)",
    ))
}

pub(super) fn size_of(t: Tok, what: &str, integer: bool) -> Result<u64, Diagnostic> {
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
pub(super) fn range_fits(a: u64, b: u64, span: Span, what: &str) -> Result<(), Diagnostic> {
    match a.checked_add(b) {
        Some(_) => Ok(()),
        None => Err(err(
            span,
            format!("{what} ends past 2^64 bytes ({a} + {b} overflows)"),
            "offsets and lengths must add up to less than 2^64",
        )),
    }
}

pub(super) struct Args<'a, 't> {
    pub(super) toks: &'t [Tok<'a>],
    pub(super) pos: usize,
    pub(super) end: usize,
    pub(super) usage: &'static str,
}

impl<'a, 't> Args<'a, 't> {
    pub(super) fn new(toks: &'t [Tok<'a>], pos: usize, usage: &'static str) -> Self {
        let end = toks.last().map(|t| t.span.end).unwrap_or(0);
        Args {
            toks,
            pos,
            end,
            usage,
        }
    }

    pub(super) fn peek(&self) -> Option<Tok<'a>> {
        self.toks.get(self.pos).copied()
    }

    pub(super) fn next(&mut self, what: &str) -> Result<Tok<'a>, Diagnostic> {
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

    pub(super) fn ident(&mut self, what: &str) -> Result<String, Diagnostic> {
        let t = self.next(what)?;
        ident_of(t, what).map_err(|d| self.with_usage(d))
    }

    pub(super) fn data(&mut self) -> Result<String, Diagnostic> {
        let t = self.next("data name")?;
        data_of(t).map_err(|d| self.with_usage(d))
    }

    pub(super) fn size(&mut self, what: &str) -> Result<(u64, Span), Diagnostic> {
        let t = self.next(what)?;
        size_of(t, what, false)
            .map(|v| (v, t.span))
            .map_err(|d| self.with_usage(d))
    }

    pub(super) fn path(&mut self, what: &str) -> Result<Path, Diagnostic> {
        let t = self.next(what)?;
        path_of(t, what).map_err(|d| self.with_usage(d))
    }

    /// The optional `at DATA_OFFSET`; checks that `DATA_OFFSET + len` fits.
    pub(super) fn at(&mut self, len: u64) -> Result<Option<u64>, Diagnostic> {
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

    pub(super) fn finish(&self) -> Result<(), Diagnostic> {
        match self.peek() {
            Some(t) => Err(unexpected(t, self.usage)),
            None => Ok(()),
        }
    }

    pub(super) fn with_usage(&self, d: Diagnostic) -> Diagnostic {
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
