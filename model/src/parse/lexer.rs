//! The lexical level: a line cut into tokens with their byte spans, and the words a token can
//! carry (sizes, names, paths), each read with the reason it is not one.

use crate::program::{Cmp, Path, Span};

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum SizeError {
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

pub(super) fn size_value(text: &str) -> Result<u64, SizeError> {
    let (value, unit) = integer_prefix(text)?;
    let multiplier: u64 = match unit {
        "" | "B" => 1,
        "K" | "KiB" => 1 << 10,
        "M" | "MiB" => 1 << 20,
        "G" | "GiB" => 1 << 30,
        "TiB" => 1 << 40,
        "PiB" => 1 << 50,
        "EiB" => 1 << 60,
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
pub(super) fn integer_value(text: &str) -> Result<u64, SizeError> {
    match integer_prefix(text)? {
        (value, "") => Ok(value),
        _ => Err(SizeError::NotNumber),
    }
}

pub(super) fn is_ident(text: &str) -> bool {
    let mut chars = text.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// A path component: `[A-Za-z0-9_.-]+`, but not `.` or `..`.
pub(super) fn is_name(text: &str) -> bool {
    !text.is_empty()
        && text != "."
        && text != ".."
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

pub(super) fn path_value(text: &str) -> Result<Path, String> {
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
pub(super) fn show(text: &str) -> String {
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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
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
pub(super) struct Tok<'a> {
    pub(super) kind: Kind,
    pub(super) text: &'a str,
    pub(super) span: Span,
}

impl Tok<'_> {
    pub(super) fn is_word(&self, w: &str) -> bool {
        self.kind == Kind::Word && self.text == w
    }
}

fn is_punct(c: char) -> bool {
    matches!(c, '(' | ')' | '{' | '}' | ',' | ':' | '=' | '!' | '<' | '>')
}

/// Splits one line (without its comment) into tokens; `base` is the line's byte offset.
pub(super) fn tokenize(line: &str, base: usize) -> Vec<Tok<'_>> {
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
