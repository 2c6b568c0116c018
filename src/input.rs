//! What every command shares at its edges: loading its input (a program, its data's real bytes,
//! models) with every error reported as text or JSON, printing JSON, and the exit codes.
//! Commands depend on this module, never on each other for it.

use crate::out::outln;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use unplug_explorer::Analysis;
use unplug_model::{DataSource, Diagnostic, ModelSpec, Program, ProgramErrors};
use unplug_realfs::DataBytes;

/// Exit codes.
pub(crate) const HOLDS: u8 = 0;
pub(crate) const FAILS: u8 = 1;
pub(crate) const INPUT_ERROR: u8 = 2;
/// Nothing fails, but a bound (`--max-states`) was hit somewhere: not proven.
pub(crate) const NOT_PROVEN: u8 = 3;

/// A property's verdict as JSON gives it: `holds`, `fails` (a violating state was found) or
/// `not_proven` (none was found, but a bound was hit).
pub(crate) fn verdict(r: &unplug_explorer::PropertyResult) -> &'static str {
    if r.holds {
        "holds"
    } else if r.violating_classes == 0 {
        "not_proven"
    } else {
        "fails"
    }
}

/// The exit code of a set of verdicts: 1 if one fails, else 3 if one is not proven, else 0.
pub(crate) fn verdicts_code<'a>(
    rs: impl IntoIterator<Item = &'a unplug_explorer::PropertyResult>,
) -> u8 {
    rs.into_iter().fold(HOLDS, |code, r| match verdict(r) {
        "fails" => FAILS,
        "not_proven" if code == HOLDS => NOT_PROVEN,
        _ => code,
    })
}

/// A usage or input problem: printed (as JSON with `--json`) and turned into exit code 2.
pub(crate) fn input_error(json: bool, msg: &str) -> u8 {
    if json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&json!({ "errors": [{ "message": msg }] })).expect("json")
        );
    } else {
        eprintln!("error: {msg}");
    }
    INPUT_ERROR
}

fn program_errors(json: bool, e: &ProgramErrors) -> u8 {
    if json {
        let errors: Vec<Value> = e
            .errors
            .iter()
            .map(|d| {
                let (line, col) = e.location(d);
                json!({ "file": e.src.name(), "line": line, "column": col, "message": d.message, "hint": d.hint })
            })
            .collect();
        outln!(
            "{}",
            serde_json::to_string_pretty(&json!({ "errors": errors })).expect("json")
        );
    } else {
        eprint!("{}", e.render_plain());
    }
    INPUT_ERROR
}

/// The value of a limit flag (`--max-states`, `--max-findings`, ...): a number, where 0 means
/// no limit, as it does for every limit of every command.
pub(crate) fn limit(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Ok(usize::MAX),
        Ok(n) => Ok(n),
        Err(e) => Err(format!("`{s}` is not a number: {e}")),
    }
}

/// Whether a program path means standard input (`-`).
pub(crate) fn is_stdin(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// The name errors give a program file: its path, or `<stdin>` for `-`.
pub(crate) fn shown(path: &Path) -> String {
    if is_stdin(path) {
        "<stdin>".to_string()
    } else {
        path.display().to_string()
    }
}

/// Reads, parses and executes a program (`-`: standard input); on failure prints every error
/// and returns exit code 2.
pub(crate) fn load(path: &Path, json: bool) -> Result<Analysis, u8> {
    load_source(path, json).map(|(a, _)| a)
}

/// [`load`], with the program's source (for the line and column of a warning).
pub(crate) fn load_source(path: &Path, json: bool) -> Result<(Analysis, String), u8> {
    let name = shown(path);
    let read = if is_stdin(path) {
        std::io::read_to_string(std::io::stdin().lock())
    } else {
        std::fs::read_to_string(path)
    };
    let src = read.map_err(|e| input_error(json, &format!("cannot read `{name}`: {e}")))?;
    let (program, trace) = unplug_model::load(&src)
        .map_err(|errs| program_errors(json, &ProgramErrors::new(&name, &src, errs)))?;
    Ok((Analysis::from_trace(program, trace), src))
}

/// The real bytes of `program`'s data that have a source, read for a run: `hex` content as
/// written, `file` content from its path relative to the directory of the program file `path`
/// (the current directory for `-`). A file that cannot be read, or whose length is not the
/// declared `SIZE`, is an error at the data's line; every such error is returned, in order. A
/// data without a source has no bytes here (a run writes its pattern).
pub(crate) fn read_data(program: &Program, path: &Path) -> Result<DataBytes, Vec<Diagnostic>> {
    // An empty directory: relative to the current one (`dir.join(rel)` is `rel`).
    let dir = match path.parent() {
        Some(d) if !is_stdin(path) => d.to_path_buf(),
        _ => PathBuf::new(),
    };
    let mut bytes = DataBytes::new();
    let mut errors = Vec::new();
    for d in &program.data {
        match &d.source {
            None => {}
            Some(DataSource::Hex(b)) => bytes.insert(d.name.clone(), b.clone()),
            Some(DataSource::File(rel)) => match read_data_file(&dir.join(rel), d.len) {
                Ok(b) => bytes.insert(d.name.clone(), b),
                Err(why) => errors.push(
                    Diagnostic::new(
                        d.span,
                        format!(
                            "data `{}`: file `{}` {why}",
                            d.name,
                            dir.join(rel).display()
                        ),
                    )
                    .with_hint(
                        "a `file` data's content is read from RELPATH, relative to the \
                         directory of the .up file, and must be exactly SIZE bytes",
                    ),
                ),
            },
        }
    }
    if errors.is_empty() {
        Ok(bytes)
    } else {
        Err(errors)
    }
}

/// A data file of exactly `len` bytes (its length checked before it is read), or why not.
fn read_data_file(file: &Path, len: u64) -> Result<Vec<u8>, String> {
    let meta = std::fs::metadata(file).map_err(|e| format!("cannot be read: {e}"))?;
    if !meta.is_file() {
        return Err("is not a file".to_string());
    }
    let wrong = |n: u64| {
        let s = if n == 1 { "" } else { "s" };
        format!("has {n} byte{s}, but the data is declared {len} bytes (SIZE)")
    };
    if meta.len() != len {
        return Err(wrong(meta.len()));
    }
    let b = std::fs::read(file).map_err(|e| format!("cannot be read: {e}"))?;
    if b.len() as u64 != len {
        return Err(wrong(b.len() as u64));
    }
    Ok(b)
}

/// [`read_data`] for a command: its errors printed (as JSON with `--json`, with the program's
/// `src` for their lines and columns), exit code 2.
pub(crate) fn load_data(
    program: &Program,
    path: &Path,
    src: &str,
    json: bool,
) -> Result<DataBytes, u8> {
    read_data(program, path)
        .map_err(|errs| program_errors(json, &ProgramErrors::new(&shown(path), src, errs)))
}

pub(crate) fn parse_models(names: &[String], json: bool) -> Result<Vec<ModelSpec>, u8> {
    if names.is_empty() {
        return Ok(ModelSpec::all());
    }
    let mut out = Vec::new();
    let mut errs = Vec::new();
    for n in names {
        match ModelSpec::parse(n) {
            Ok(m) if !out.contains(&m) => out.push(m),
            Ok(_) => {}
            // One line per error, each naming the value it is about.
            Err(e) => errs.extend(e.lines().map(|l| format!("--model {n}: {l}"))),
        }
    }
    if errs.is_empty() {
        Ok(out)
    } else {
        Err(input_error(json, &errs.join("\n")))
    }
}

pub(crate) fn print_json(v: &Value) {
    outln!("{}", serde_json::to_string_pretty(v).expect("json"));
}

/// Checks, before any work, that the output file `path` (given as `flag`) can be written: its
/// directory exists (it is never created) and, if the file exists, it is a file open for writing
/// (it is not changed here). Every command with an output file checks it this way.
pub(crate) fn check_output_file(flag: &str, path: &Path) -> Result<(), String> {
    let shown = path.display();
    check_parent(flag, path)?;
    if path.is_dir() {
        return Err(format!("{flag} {shown}: is a directory, not a file"));
    }
    if path.exists() {
        std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(|e| format!("{flag} {shown}: cannot write: {e}"))?;
    }
    Ok(())
}

/// Checks, before any work, that the output directory `path` (given as `flag`) exists or can be
/// made: it is a directory, or it does not exist and its parent does (only the last component
/// is created, when the first file is written).
pub(crate) fn check_output_dir(flag: &str, path: &Path) -> Result<(), String> {
    if path.exists() {
        if path.is_dir() {
            return Ok(());
        }
        return Err(format!("{flag} {}: is not a directory", path.display()));
    }
    check_parent(flag, path)
}

/// The directory `path` would be in exists.
fn check_parent(flag: &str, path: &Path) -> Result<(), String> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() && !dir.is_dir() => Err(format!(
            "{flag} {}: the directory `{}` does not exist (output directories are not created)",
            path.display(),
            dir.display()
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    /// 0 means no limit for every limit flag.
    #[test]
    fn zero_means_no_limit() {
        assert_eq!(super::limit("0"), Ok(usize::MAX));
        assert_eq!(super::limit("7"), Ok(7));
        assert!(super::limit("-1").is_err());
    }
}
