//! `unplug table`: a guarantee table over a directory of programs. One row per program and
//! property, one column per model, each cell `holds` or `fails` (with the first counterexample),
//! written as Markdown (counterexamples as footnotes), one self-contained HTML file
//! (counterexamples a click away) or JSON. Everything is sorted and carries no timestamp: the same
//! programs give the same bytes.

use crate::render;
use crate::shard::{self, Merged, Shard};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use unplug_explorer::syncs::{Counterexample, Variant};
use unplug_explorer::{Analysis, Limits, ModelRun};
use unplug_model::{ModelSpec, ProgramErrors};

mod html;
mod markdown;

/// The arguments of `unplug table`.
#[derive(clap::Args, Debug)]
pub(crate) struct TableArgs {
    /// The directory of programs: every `*.up` file in it (not in subdirectories), by name.
    pub(crate) dir: PathBuf,
    /// A model, e.g. `posix`, `ext4`, `ext4:noauto_da_alloc`: one column each, in this order.
    /// Repeat for several. Default: every model.
    #[arg(long = "model", short = 'm', value_name = "MODEL")]
    pub(crate) models: Vec<String>,
    /// The output format: Markdown (counterexamples as footnotes), one self-contained HTML file
    /// (counterexamples a click away), or JSON.
    #[arg(long, value_enum, default_value_t = Format::Md)]
    pub(crate) format: Format,
    /// The same as `--format json`.
    #[arg(long)]
    pub(crate) json: bool,
    /// Write the table to FILE instead of standard output. Its directory must exist (checked
    /// before any program is run).
    #[arg(long, short = 'o', value_name = "FILE")]
    pub(crate) output: Option<PathBuf>,
    /// Most distinct crash-state classes explored per crash point; past it, the cell says
    /// `unproven` (never dropped silently). 0: no limit.
    #[arg(long, value_name = "N", value_parser = crate::input::limit, env = "UNPLUG_MAX_STATES", default_value_t = Limits::default().max_states)]
    pub(crate) max_states: usize,
    #[command(flatten)]
    pub(crate) budget: crate::memory::Budget,
    /// Also run every program for real (`unplug real`, host backend, every schedule) on each
    /// `--real-fs` file system and add one "observed" column per file system and kernel: how
    /// many recovered crash images each property applied to, and how many violated it.
    #[arg(long)]
    pub(crate) real: bool,
    /// A file system for `--real`: ext4, xfs or btrfs. Repeat for several. Default: all three.
    #[arg(long = "real-fs", value_name = "FS", requires = "real")]
    pub(crate) real_fs: Vec<String>,
    /// Crash images per run for `--real` (see `unplug real --max-images`). 0: no limit.
    #[arg(long, value_name = "N", default_value_t = 32, requires = "real")]
    pub(crate) real_max_images: usize,
    /// Table only shard I of N of the programs (the K-th program by name, from 0, when K is I
    /// modulo N) and write JSON lines for `unplug merge` instead of the table (docs/SWEEP.md).
    #[arg(long, value_name = "I/N", value_parser = crate::shard::parse, conflicts_with = "real")]
    pub(crate) shard: Option<Shard>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    Md,
    Html,
    Json,
}

/// The whole table.
pub(crate) struct Table {
    /// The directory as given on the command line.
    pub(crate) dir: String,
    pub(crate) models: Vec<String>,
    pub(crate) rows: Vec<Row>,
    /// Programs left out because they do not parse or execute, in file order.
    pub(crate) errors: Vec<FileErrors>,
    /// With `--real`: one column per real run (file system, kernel), one cell per row.
    pub(crate) real: Vec<RealColumn>,
}

/// What the crash states a real file system showed say about each row's property.
pub(crate) struct RealColumn {
    /// `observed: ext4 on Linux 6.18.44 (host)`
    pub(crate) title: String,
    pub(crate) cells: Vec<RealCell>,
}

#[derive(Clone, Default, serde::Serialize)]
pub(crate) struct RealCell {
    /// Observed states the property applies to.
    pub(crate) states: usize,
    /// Of those, states that violate it.
    pub(crate) violated: usize,
    /// The first violating state.
    pub(crate) example: Option<String>,
}

impl RealCell {
    pub(crate) fn text(&self) -> String {
        if self.states == 0 {
            "not reached".into()
        } else if self.violated > 0 {
            format!("violated ({} of {} images)", self.violated, self.states)
        } else {
            format!("never violated ({} images)", self.states)
        }
    }
}

/// One program and property.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct Row {
    /// The file name without `.up`.
    pub(crate) program: String,
    /// The path as it is shown (`DIR/NAME.up`): explain commands use it.
    pub(crate) file: String,
    pub(crate) property: String,
    /// The property as written after `property NAME:`.
    pub(crate) text: String,
    /// The program's `# litmus:` header line, if it has one.
    pub(crate) question: Option<String>,
    /// One per model, in the order of `Table::models`.
    pub(crate) cells: Vec<Cell>,
}

#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct Cell {
    pub(crate) holds: bool,
    /// Crash points where a bound was hit: the property is not proven there.
    pub(crate) unproven: Vec<usize>,
    pub(crate) counterexample: Option<Cx>,
}

/// The first crash state that violates a property.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct Cx {
    /// `crash point 3 (after op 3 `close h`; op 4 `...` may have started)`
    pub(crate) point: String,
    /// The state, one path per line.
    pub(crate) state: String,
    /// `unplug explain FILE --model M --state 'REPLAY'`
    pub(crate) explain: String,
    /// The counterexample as `check --json` prints it.
    pub(crate) json: Value,
}

/// A program that could not be analysed, and why.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct FileErrors {
    /// `file:line:col: message`, one per error.
    pub(crate) messages: Vec<String>,
    pub(crate) json: Vec<Value>,
}

impl Cell {
    fn verdict(&self) -> &'static str {
        if self.holds {
            "holds"
        } else if self.counterexample.is_none() {
            "unproven"
        } else {
            "fails"
        }
    }
}

impl FileErrors {
    pub(crate) fn of(e: &ProgramErrors) -> FileErrors {
        let mut messages = Vec::new();
        let mut json = Vec::new();
        for d in &e.errors {
            let (line, col) = e.location(d);
            messages.push(format!("{}:{line}:{col}: {}", e.src.name(), d.message));
            json.push(json!({
                "file": e.src.name(), "line": line, "column": col, "message": d.message, "hint": d.hint,
            }));
        }
        FileErrors { messages, json }
    }
}

/// The `# litmus:` line of a program's source.
pub(crate) fn question(src: &str) -> Option<String> {
    src.lines()
        .find_map(|l| l.strip_prefix("# litmus:"))
        .map(|q| q.trim().to_string())
        .filter(|q| !q.is_empty())
}

/// The rows of one program: each property under each model.
pub(crate) fn rows(a: &Analysis, file: &Path, src: &str, models: &[ModelSpec]) -> Vec<Row> {
    let shown = file.display().to_string();
    let program = file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| shown.clone());
    let runs: Vec<ModelRun> = models.iter().map(|m| a.run(m)).collect();
    let results: Vec<_> = runs.iter().map(|r| r.check()).collect();
    a.program
        .properties
        .iter()
        .enumerate()
        .map(|(i, p)| Row {
            program: program.clone(),
            file: shown.clone(),
            property: p.name.clone(),
            text: p.text.clone(),
            question: question(src),
            cells: runs
                .iter()
                .zip(&results)
                .map(|(run, res)| {
                    let r = &res[i];
                    Cell {
                        holds: r.holds,
                        unproven: r.unproven.clone(),
                        counterexample: r.counterexample.as_ref().map(|v| {
                            let c = Counterexample::of(run, &Variant::default(), v);
                            Cx {
                                point: render::point_str(a, c.at),
                                state: c.state.to_string(),
                                explain: format!(
                                    "unplug explain {shown} --model {} --state '{}'",
                                    run.model, c.replay
                                ),
                                json: render::counterexample_json(a, &c),
                            }
                        }),
                    }
                })
                .collect(),
        })
        .collect()
}

const LEGEND_HOLDS: &str = "no crash state, at any crash point the property covers, violates it";
const LEGEND_FAILS: &str =
    "some crash state violates it; the first one found is given: the crash point, the state after recovery, and the command that replays and explains it";
const LEGEND_UNPROVEN: &str =
    "no violation was found, but a bound was hit (--max-states, --max-memory, an interrupt, or one of the explorer's fixed bounds that `unplug check` names), so the property is not proven";

impl Table {
    pub(crate) fn render(&self, f: Format) -> String {
        match f {
            Format::Md => self.markdown(),
            Format::Html => self.html(),
            Format::Json => {
                let mut s = serde_json::to_string_pretty(&self.json()).expect("json");
                s.push('\n');
                s
            }
        }
    }

    /// Per model: how many properties hold, of how many.
    fn totals(&self) -> Vec<(usize, usize)> {
        (0..self.models.len())
            .map(|j| {
                let holds = self.rows.iter().filter(|r| r.cells[j].holds).count();
                (holds, self.rows.len())
            })
            .collect()
    }

    fn programs(&self) -> usize {
        self.rows
            .iter()
            .map(|r| &r.program)
            .collect::<BTreeSet<_>>()
            .len()
    }

    pub(crate) fn json(&self) -> Value {
        let rows: Vec<Value> = self
            .rows
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let cells: serde_json::Map<String, Value> = self
                    .models
                    .iter()
                    .zip(&r.cells)
                    .map(|(m, c)| {
                        let mut cx = c.counterexample.as_ref().map(|x| x.json.clone());
                        if let Some(Value::Object(o)) = cx.as_mut() {
                            o.insert("explain".into(), Value::String(x_explain(c)));
                        }
                        (
                            m.clone(),
                            json!({
                                "holds": c.holds,
                                "verdict": if c.verdict() == "unproven" { "not_proven" } else { c.verdict() },
                                "unproven_crash_points": c.unproven,
                                "counterexample": cx,
                            }),
                        )
                    })
                    .collect();
                let observed: serde_json::Map<String, Value> = self
                    .real
                    .iter()
                    .map(|c| (c.title.clone(), json!(c.cells[i])))
                    .collect();
                json!({
                    "program": r.program,
                    "file": r.file,
                    "property": r.property,
                    "text": r.text,
                    "question": r.question,
                    "cells": cells,
                    "observed": observed,
                })
            })
            .collect();
        let errors: Vec<Value> = self.errors.iter().flat_map(|e| e.json.clone()).collect();
        let not_proven = self
            .rows
            .iter()
            .any(|r| r.cells.iter().any(|c| c.verdict() == "unproven"));
        json!({ "dir": self.dir, "models": self.models, "not_proven": not_proven, "rows": rows, "errors": errors })
    }
}

fn x_explain(c: &Cell) -> String {
    c.counterexample
        .as_ref()
        .map(|x| x.explain.clone())
        .unwrap_or_default()
}

/// `1 program`, `2 programs`, `2 properties`.
fn plural(n: usize, word: &str) -> String {
    match (n, word.strip_suffix('y')) {
        (1, _) => format!("1 {word}"),
        (_, Some(stem)) => format!("{n} {stem}ies"),
        _ => format!("{n} {word}s"),
    }
}

/// The options of a `table` run that decide its rows: a shard's header carries them, and a merge
/// refuses shards whose options differ.
pub(crate) fn shard_options(t: &TableArgs, models: &[String]) -> Value {
    json!({
        "dir": t.dir.display().to_string(), "models": models, "max_states": t.max_states,
        "max_memory": t.budget.max_memory,
    })
}

/// A program's record in a shard's lines: its rows, or its errors with what was printed about
/// them on standard error.
pub(crate) fn shard_record(rows: &[Row], errors: &[FileErrors], stderr: &str) -> Value {
    json!({ "rows": rows, "errors": errors, "stderr": stderr })
}

/// `unplug merge` of `table` shards: the table of the unsharded run (Markdown, or JSON), its
/// errors printed again on standard error, its exit code.
pub(crate) fn merge(m: &Merged, json_out: bool) -> Result<u8, String> {
    m.one_record_per_unit()?;
    let o = &m.options;
    let mut table = Table {
        dir: shard::get(o, "dir")?,
        models: shard::get(o, "models")?,
        rows: Vec::new(),
        errors: Vec::new(),
        real: Vec::new(),
    };
    let mut code = crate::input::HOLDS;
    for (_, r) in &m.records {
        let errors: Vec<FileErrors> = shard::get(r, "errors")?;
        if !errors.is_empty() {
            code = crate::input::INPUT_ERROR;
        }
        eprint!("{}", shard::get::<String>(r, "stderr")?);
        table.rows.extend(shard::get::<Vec<Row>>(r, "rows")?);
        table.errors.extend(errors);
    }
    Ok(table.print(code, if json_out { Format::Json } else { Format::Md }, None))
}

impl Table {
    /// The exit code of a table: `code` (0, or 2 if a program had errors), or 3 if it is 0 and
    /// a cell is not proven (a complete table exits 0: it is a report, not a check).
    pub(crate) fn exit_code(&self, code: u8) -> u8 {
        if code == crate::input::HOLDS
            && self.rows.iter().any(|r| {
                r.cells
                    .iter()
                    .any(|c| !c.holds && c.counterexample.is_none())
            })
        {
            crate::input::NOT_PROVEN
        } else {
            code
        }
    }

    /// Prints the table (to `output`, else standard output); the exit code ([`Table::exit_code`]).
    pub(crate) fn print(&self, code: u8, f: Format, output: Option<&Path>) -> u8 {
        let code = self.exit_code(code);
        let text = self.render(f);
        match output {
            Some(path) => {
                if let Err(e) = std::fs::write(path, text) {
                    return crate::input::input_error(
                        false,
                        &format!("cannot write `{}`: {e}", path.display()),
                    );
                }
            }
            None => crate::out::out!("{text}"),
        }
        code
    }
}
