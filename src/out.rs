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
