//! Errors in a program's text: each with the span it points at, a message and a hint.
//!
//! Every stage that reads a program (the parser, then the volatile execution) collects all of its
//! errors rather than stopping at the first, so a user sees every problem in one run.

use crate::program::Span;
use miette::{Diagnostic as MietteDiagnostic, LabeledSpan, NamedSource, SourceCode};
use std::fmt;

/// One error in a program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub span: Span,
    pub message: String,
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn new(span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            span,
            message: message.into(),
            hint: None,
        }
    }
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// All the errors of one program, with its source, ready for miette to render with
/// file:line:col, the source line and a caret under the span.
#[derive(Debug)]
pub struct ProgramErrors {
    pub src: NamedSource<String>,
    pub errors: Vec<Diagnostic>,
}

/// One rendered error (miette renders a list of these as related diagnostics).
#[derive(Debug)]
struct One {
    src: NamedSource<String>,
    d: Diagnostic,
}

impl fmt::Display for One {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.d.message)
    }
}
impl std::error::Error for One {}
impl MietteDiagnostic for One {
    fn source_code(&self) -> Option<&dyn SourceCode> {
        Some(&self.src)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let len = self.d.span.end.saturating_sub(self.d.span.start);
        Some(Box::new(std::iter::once(LabeledSpan::new(
            Some("here".into()),
            self.d.span.start,
            len,
        ))))
    }
    fn help(&self) -> Option<Box<dyn fmt::Display + '_>> {
        self.d
            .hint
            .as_ref()
            .map(|h| Box::new(h.clone()) as Box<dyn fmt::Display>)
    }
}

impl ProgramErrors {
    pub fn new(name: &str, source: &str, mut errors: Vec<Diagnostic>) -> Self {
        errors.sort_by_key(|d| (d.span.start, d.span.end));
        errors.dedup();
        ProgramErrors {
            src: NamedSource::new(name, source.to_string()),
            errors,
        }
    }

    /// `file:line:col` of an error (1-based line and column, counting characters).
    pub fn location(&self, d: &Diagnostic) -> (usize, usize) {
        line_col(self.src.inner(), d.span.start)
    }

    /// Renders every error as text: `file:line:col: error: message`, the source line, a caret
    /// line and the hint. This is what the CLI prints without colour.
    pub fn render_plain(&self) -> String {
        let text = self.src.inner();
        let mut out = String::new();
        for d in &self.errors {
            let (line, col) = line_col(text, d.span.start);
            out.push_str(&format!(
                "{}:{}:{}: error: {}\n",
                self.src.name(),
                line,
                col,
                d.message
            ));
            let src_line = text.lines().nth(line - 1).unwrap_or("");
            out.push_str(&format!("  {:>4} | {}\n", line, src_line));
            let width = text
                .get(d.span.start..d.span.end)
                .unwrap_or("")
                .lines()
                .next()
                .map(|s| s.chars().count())
                .unwrap_or(0)
                .max(1);
            out.push_str(&format!(
                "       | {}{}\n",
                " ".repeat(col - 1),
                "^".repeat(width)
            ));
            if let Some(h) = &d.hint {
                out.push_str(&format!("       = hint: {}\n", h));
            }
        }
        out.push_str(&format!(
            "{} error{} in {}\n",
            self.errors.len(),
            if self.errors.len() == 1 { "" } else { "s" },
            self.src.name()
        ));
        out
    }

    /// The errors as miette diagnostics (for the fancy renderer).
    pub fn diagnostics(&self) -> Vec<Box<dyn MietteDiagnostic + Send + Sync>> {
        self.errors
            .iter()
            .map(|d| {
                Box::new(One {
                    src: self.src.clone(),
                    d: d.clone(),
                }) as Box<dyn MietteDiagnostic + Send + Sync>
            })
            .collect()
    }
}

impl fmt::Display for ProgramErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render_plain())
    }
}
impl std::error::Error for ProgramErrors {}

/// 1-based line and column (in characters) of a byte offset; offsets past the end or inside a
/// character are clamped, so this never panics.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut off = offset.min(text.len());
    while !text.is_char_boundary(off) {
        off -= 1;
    }
    let before = &text[..off];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let col = text[line_start..off].chars().count() + 1;
    (line, col)
}
