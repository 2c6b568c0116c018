//! `unplug replay`: a program run for real, with the real bytes of its data, in an empty
//! directory (setup, then the ops; no crash), to check that a traced program reproduces what the
//! application did.

use crate::input::{self, input_error};
use crate::out::outln;
use serde_json::json;
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug)]
pub(crate) struct ReplayArgs {
    /// The program (`.up` file; `-` for standard input, its `file` data then relative to the
    /// current directory).
    program: PathBuf,
    /// The directory to run in, as the program's root: it must exist and be empty.
    #[arg(long, value_name = "DIR")]
    dir: PathBuf,
    /// Print JSON: `{"ops": N, "dir": "DIR"}`.
    #[arg(long)]
    json: bool,
}

/// Why `dir` cannot be the root of a replay: it does not exist, is not a directory, or is not
/// empty.
fn check_dir(dir: &Path) -> Result<(), String> {
    let shown = dir.display();
    let mut entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(_) if !dir.exists() => {
            return Err(format!(
                "--dir {shown}: does not exist (replay does not create it; make an empty \
                 directory)"
            ))
        }
        Err(_) if !dir.is_dir() => return Err(format!("--dir {shown}: is not a directory")),
        Err(e) => return Err(format!("--dir {shown}: cannot be read: {e}")),
    };
    if entries.next().is_some() {
        return Err(format!(
            "--dir {shown}: is not empty (a program runs from an empty root, as it was \
             recorded; give an empty directory)"
        ));
    }
    Ok(())
}

pub(crate) fn replay(a: &ReplayArgs) -> u8 {
    let (analysis, src) = match input::load_source(&a.program, a.json) {
        Ok(v) => v,
        Err(code) => return code,
    };
    let program = &analysis.program;
    let data = match input::load_data(program, &a.program, &src, a.json) {
        Ok(d) => d,
        Err(code) => return code,
    };
    if let Err(msg) = check_dir(&a.dir) {
        return input_error(a.json, &msg);
    }
    if let Err(e) = unplug_realfs::run_with_data(program, &a.dir, &data, &mut |_| Ok(())) {
        return input_error(a.json, &format!("replay failed: {e}"));
    }
    // Every data a write uses or a line declares (in name order), without real bytes.
    let patterns: Vec<&str> = analysis
        .trace
        .data_len
        .keys()
        .map(String::as_str)
        .filter(|n| data.get(n).is_none())
        .collect();
    let ops = program.ops.len();
    if a.json {
        input::print_json(&json!({ "ops": ops, "dir": a.dir.display().to_string() }));
    } else {
        let setup = match program.setup.len() {
            0 => String::new(),
            n => format!(" after {n} setup op{}", if n == 1 { "" } else { "s" }),
        };
        outln!(
            "replayed {ops} op{}{setup} in {}",
            if ops == 1 { "" } else { "s" },
            a.dir.display()
        );
        if !patterns.is_empty() {
            eprintln!(
                "note: data without content in the program ({}) were written as unplug's \
                 self-describing patterns",
                patterns.join(", ")
            );
        }
    }
    input::HOLDS
}
