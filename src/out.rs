//! Standard output for every command. A failed write (a full disk, `> /dev/full`, a closed
//! descriptor) is kept, not a panic: the command finishes, and `finish` reports the first error
//! on standard error and turns the exit code into 2. `print!` and `println!` are denied in the
//! binary (`clippy::print_stdout`) so that every write goes through here.

use std::io::Write;
use std::sync::Mutex;

/// The first error writing to standard output, if any.
static ERROR: Mutex<Option<std::io::Error>> = Mutex::new(None);

/// Writes `s` to standard output; after an error, writes nothing more.
pub(crate) fn print(s: &str) {
    let mut error = ERROR
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if error.is_none() {
        if let Err(e) = std::io::stdout().lock().write_all(s.as_bytes()) {
            *error = Some(e);
        }
    }
}

/// `print!` to standard output, its errors kept for `finish`.
macro_rules! out {
    ($($arg:tt)*) => { $crate::out::print(&format!($($arg)*)) };
}

/// `println!` to standard output, its errors kept for `finish`.
macro_rules! outln {
    ($($arg:tt)*) => {{
        let mut s = format!($($arg)*);
        s.push('\n');
        $crate::out::print(&s)
    }};
}

pub(crate) use {out, outln};

/// Flushes standard output; on a write error (now or before) reports it on standard error and
/// returns exit code 2 instead of `code`.
pub(crate) fn finish(code: u8) -> u8 {
    let mut error = ERROR
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if error.is_none() {
        if let Err(e) = std::io::stdout().lock().flush() {
            *error = Some(e);
        }
    }
    match error.take() {
        Some(e) => {
            eprintln!("error: cannot write to standard output: {e}");
            crate::input::INPUT_ERROR
        }
        None => code,
    }
}

/// Whether tables are drawn in ASCII (`--ascii`, or a terminal that cannot show box drawing).
static ASCII: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Decides how tables are drawn, once, before any is made: ASCII when `flag` (`--ascii`) is
/// given, or when standard output is a terminal that cannot show box drawing: `TERM=dumb`, or
/// a locale (the first of `LC_ALL`, `LC_CTYPE`, `LANG` that is set and not empty; none is the
/// C locale) that does not name UTF-8. Output to a file or a pipe is the same everywhere.
pub(crate) fn set_ascii(flag: bool) {
    use std::io::IsTerminal;
    let var = |k: &str| std::env::var(k).ok();
    let ascii = flag
        || (std::io::stdout().is_terminal()
            && cannot_draw_boxes(
                var("TERM").as_deref(),
                &[var("LC_ALL"), var("LC_CTYPE"), var("LANG")],
            ));
    ASCII.store(ascii, std::sync::atomic::Ordering::Relaxed);
}

/// Whether a terminal with this `TERM` and these locale variables (`LC_ALL`, `LC_CTYPE`,
/// `LANG`, in that order of precedence) cannot show box drawing.
fn cannot_draw_boxes(term: Option<&str>, locale: &[Option<String>]) -> bool {
    let locale = locale
        .iter()
        .flatten()
        .find(|v| !v.is_empty())
        .map_or(String::new(), |v| v.to_ascii_lowercase());
    term == Some("dumb") || !(locale.contains("utf-8") || locale.contains("utf8"))
}

/// A new table in the chosen style: box drawing (`UTF8_FULL_CONDENSED`), or its ASCII form.
pub(crate) fn table() -> comfy_table::Table {
    use comfy_table::presets::{ASCII_FULL_CONDENSED, UTF8_FULL_CONDENSED};
    let mut t = comfy_table::Table::new();
    t.load_preset(if ASCII.load(std::sync::atomic::Ordering::Relaxed) {
        ASCII_FULL_CONDENSED
    } else {
        UTF8_FULL_CONDENSED
    });
    t
}

#[cfg(test)]
mod tests {
    use super::cannot_draw_boxes;

    #[test]
    fn ascii_when_the_terminal_cannot_draw_boxes() {
        let l = |v: &[Option<&str>]| v.iter().map(|x| x.map(String::from)).collect::<Vec<_>>();
        let utf8 = l(&[None, None, Some("en_US.UTF-8")]);
        assert!(!cannot_draw_boxes(Some("xterm-256color"), &utf8));
        assert!(!cannot_draw_boxes(None, &l(&[None, Some("C.utf8"), None])));
        assert!(cannot_draw_boxes(Some("dumb"), &utf8), "TERM=dumb");
        assert!(
            cannot_draw_boxes(Some("xterm"), &l(&[None, None, None])),
            "C locale"
        );
        assert!(
            cannot_draw_boxes(Some("xterm"), &l(&[Some("C"), None, Some("en_US.UTF-8")])),
            "LC_ALL wins"
        );
        assert!(
            !cannot_draw_boxes(Some("xterm"), &l(&[Some(""), None, Some("en_US.UTF-8")])),
            "an empty variable is not set"
        );
    }
}
