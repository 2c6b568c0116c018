//! `unplug trace`: runs a command under the tracer (the `unplug-trace` crate: ptrace with a
//! seccomp filter) and writes what it did to the files under the roots as a `.up` program: the
//! starting tree as its setup, each call as an op, the bytes written as named data with their real
//! content (`PROG.data/` beside the program for all but small data).

pub(crate) mod convert;
mod sites;
pub(crate) mod tree;

use crate::input;
use crate::out;
use serde_json::json;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug)]
pub(crate) struct TraceArgs {
    /// A directory whose files the command's calls are recorded on (repeat for several; each
    /// becomes a top-level directory of the program named after it). Default: the current
    /// directory. Calls outside every root are ignored.
    #[arg(long = "root", value_name = "DIR")]
    pub(crate) roots: Vec<PathBuf>,
    /// The program to write. Its data go to the directory beside it with the extension
    /// `.data` (e.g. `trace.data/`), named by content.
    #[arg(long, value_name = "PROG.up", default_value = "trace.up")]
    pub(crate) out: PathBuf,
    /// Fail (exit 2, nothing written) if the command made a call the language cannot express
    /// (io_uring, xattrs, reflinks, fallocate modes other than keep-size, ...). Without it each
    /// is a warning, counted, and a comment in the program where it happened.
    #[arg(long)]
    pub(crate) strict: bool,
    /// Return addresses to record per call (walking frame pointers, best effort: Debian's
    /// binaries mostly have none, so often only the address of the system call is known).
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub(crate) stack_depth: usize,
    /// Print a JSON summary instead of text.
    #[arg(long)]
    pub(crate) json: bool,
    /// The command and its arguments (after `--`).
    #[arg(required = true, last = true, value_name = "CMD")]
    pub(crate) cmd: Vec<OsString>,
}

/// The roots, canonical, each with the program directory that stands for it.
fn roots(args: &TraceArgs) -> Result<Vec<convert::Root>, String> {
    let given = if args.roots.is_empty() {
        vec![PathBuf::from(".")]
    } else {
        args.roots.clone()
    };
    let mut out: Vec<convert::Root> = Vec::new();
    for r in &given {
        let real = std::fs::canonicalize(r).map_err(|e| format!("root {}: {e}", r.display()))?;
        if !real.is_dir() {
            return Err(format!("root {} is not a directory", r.display()));
        }
        let prefix = if given.len() == 1 {
            Vec::new()
        } else {
            let name = real
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "root".into());
            if out.iter().any(|o| o.prefix == [name.clone()]) {
                return Err(format!(
                    "two roots are named `{name}`: each root becomes a top-level directory of the program named after it"
                ));
            }
            vec![name]
        };
        out.push(convert::Root { real, prefix });
    }
    Ok(out)
}

/// `PROG.data` beside `PROG.up`: its path, and its name relative to the program's directory.
fn sidecar(out: &Path) -> (PathBuf, String) {
    let stem = out
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "trace".into());
    let name = format!("{stem}.data");
    (out.with_file_name(&name), name)
}

pub(crate) fn trace(args: &TraceArgs) -> u8 {
    let json = args.json;
    let roots = match roots(args) {
        Ok(r) => r,
        Err(e) => return input::input_error(json, &e),
    };
    if let Some(parent) = args.out.parent().filter(|p| !p.as_os_str().is_empty()) {
        if !parent.is_dir() {
            return input::input_error(
                json,
                &format!(
                    "{}: no such directory (it is not created)",
                    parent.display()
                ),
            );
        }
    }
    let mut start = Vec::new();
    for (i, r) in roots.iter().enumerate() {
        match tree::snapshot(&r.real) {
            Ok(entries) => start.push((i, entries)),
            Err(e) => {
                return input::input_error(json, &format!("reading {}: {e}", r.real.display()))
            }
        }
    }
    let opts = unplug_trace::Options {
        roots: roots.iter().map(|r| r.real.clone()).collect(),
        stack_depth: args.stack_depth,
        // With --json, standard output is the report.
        stdout_to_stderr: json,
        cancel: None,
    };
    let started = std::time::Instant::now();
    let rec = match unplug_trace::record(&args.cmd, &opts) {
        Ok(r) => r,
        Err(e) => return input::input_error(json, &format!("tracing failed: {e}")),
    };
    let seconds = started.elapsed().as_secs_f64();
    let (sidecar_path, sidecar_name) = sidecar(&args.out);
    // One line of the header comment: arguments with spaces or newlines quoted.
    let cmdline: Vec<String> = args
        .cmd
        .iter()
        .map(|a| {
            let a = a.to_string_lossy();
            if a.chars()
                .any(|c| c.is_whitespace() || c == '\'' || c == '"')
            {
                format!("{a:?}")
            } else {
                a.into_owned()
            }
        })
        .collect();
    let header = format!(
        "# traced by `unplug trace` from: {}\n# roots: {}\n# the command exited with status {}\n# add properties (docs/LANGUAGE.md), then: unplug syncs {}\n",
        cmdline.join(" "),
        roots
            .iter()
            .map(|r| r.real.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        rec.exit_status,
        args.out.display()
    );
    let conv = convert::convert(&roots, &start, &rec, &sidecar_name, &header);
    if args.strict && !conv.unsupported.is_empty() {
        let kinds: Vec<String> = conv
            .unsupported
            .iter()
            .map(|(k, n)| format!("{k} ({n})"))
            .collect();
        return input::input_error(
            json,
            &format!(
                "--strict: calls the language cannot express: {}; nothing written",
                kinds.join(", ")
            ),
        );
    }
    if let Err(e) = write(&args.out, &sidecar_path, &conv) {
        return input::input_error(json, &e);
    }
    report(args, &rec, &conv, seconds)
}

fn write(out: &Path, sidecar: &Path, conv: &convert::Converted) -> Result<(), String> {
    if !conv.sidecar.is_empty() {
        std::fs::create_dir_all(sidecar).map_err(|e| format!("{}: {e}", sidecar.display()))?;
        for (name, bytes) in &conv.sidecar {
            let p = sidecar.join(name);
            std::fs::write(&p, bytes).map_err(|e| format!("{}: {e}", p.display()))?;
        }
    }
    std::fs::write(out, &conv.text).map_err(|e| format!("{}: {e}", out.display()))
}

fn report(
    args: &TraceArgs,
    rec: &unplug_trace::Recording,
    conv: &convert::Converted,
    seconds: f64,
) -> u8 {
    if args.json {
        out::print(&format!(
            "{}\n",
            json!({
                "program": args.out.display().to_string(),
                "ops": conv.ops,
                "syncs": conv.syncs,
                "events": rec.events.len(),
                "data_files": conv.sidecar.len(),
                "unsupported": conv.unsupported,
                "exit_status": rec.exit_status,
                "seconds": seconds,
            })
        ));
    } else {
        out::print(&format!(
            "{}: {} ops ({} syncs) from {} calls in {seconds:.2} s; {} data files; the command exited with status {}\n",
            args.out.display(),
            conv.ops,
            conv.syncs,
            rec.events.len(),
            conv.sidecar.len(),
            rec.exit_status
        ));
        if rec.exit_status != 0 {
            let hint = if rec.exit_status == 127 {
                " (not found?)"
            } else {
                ""
            };
            eprintln!(
                "warning: the command exited with status {}{hint}: the program holds what it did until then",
                rec.exit_status
            );
        }
        for (kind, n) in &conv.unsupported {
            eprintln!("warning: {n} call(s) the language cannot express: {kind} (a comment marks each in the program)");
        }
    }
    input::HOLDS
}
