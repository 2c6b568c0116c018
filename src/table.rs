//! `unplug table`: a guarantee table over a directory of programs. One row per program and
//! property, one column per model, each cell `holds` or `fails` (with the first counterexample),
//! written as Markdown (counterexamples as footnotes), one self-contained HTML file
//! (counterexamples a click away) or JSON. Everything is sorted and carries no timestamp: the same
//! programs give the same bytes.

use crate::render;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::fmt::Write;
use std::path::{Path, PathBuf};
use unplug_explorer::syncs::{Counterexample, Variant};
use unplug_explorer::{Analysis, Limits, ModelRun};
use unplug_model::{ModelSpec, ProgramErrors};

/// The arguments of `unplug table`.
#[derive(clap::Args, Debug)]
pub struct TableArgs {
    /// The directory of programs: every `*.up` file in it (not in subdirectories), by name.
    pub dir: PathBuf,
    /// A model, e.g. `posix`, `ext4`, `ext4:noauto_da_alloc`: one column each, in this order.
    /// Repeat for several. Default: every model.
    #[arg(long = "model", short = 'm', value_name = "MODEL")]
    pub models: Vec<String>,
    /// The output format: Markdown (counterexamples as footnotes), one self-contained HTML file
    /// (counterexamples a click away), or JSON.
    #[arg(long, value_enum, default_value_t = Format::Md)]
    pub format: Format,
    /// The same as `--format json`.
    #[arg(long)]
    pub json: bool,
    /// Write the table to FILE instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Most distinct crash-state classes explored per crash point; past it, the cell says
    /// `unproven` (never dropped silently).
    #[arg(long, value_name = "N", env = "UNPLUG_MAX_STATES", default_value_t = Limits::default().max_states)]
    pub max_states: usize,
    /// Also run every program for real (`unplug real`, host backend, every schedule) on each
    /// `--real-fs` file system and add one "observed" column per file system and kernel: how
    /// many recovered crash images each property applied to, and how many violated it.
    #[arg(long)]
    pub real: bool,
    /// A file system for `--real`: ext4, xfs or btrfs. Repeat for several. Default: all three.
    #[arg(long = "real-fs", value_name = "FS", requires = "real")]
    pub real_fs: Vec<String>,
    /// Crash images per run for `--real` (see `unplug real --max-images`).
    #[arg(long, value_name = "N", default_value_t = 32, requires = "real")]
    pub real_max_images: usize,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Md,
    Html,
    Json,
}

/// The whole table.
pub struct Table {
    /// The directory as given on the command line.
    pub dir: String,
    pub models: Vec<String>,
    pub rows: Vec<Row>,
    /// Programs left out because they do not parse or execute, in file order.
    pub errors: Vec<FileErrors>,
    /// With `--real`: one column per real run (file system, kernel), one cell per row.
    pub real: Vec<RealColumn>,
}

/// What the crash states a real file system showed say about each row's property.
pub struct RealColumn {
    /// `observed: ext4 on Linux 6.18.44 (host)`
    pub title: String,
    pub cells: Vec<RealCell>,
}

#[derive(Clone, Default, serde::Serialize)]
pub struct RealCell {
    /// Observed states the property applies to.
    pub states: usize,
    /// Of those, states that violate it.
    pub violated: usize,
    /// The first violating state.
    pub example: Option<String>,
}

impl RealCell {
    pub fn text(&self) -> String {
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
pub struct Row {
    /// The file name without `.up`.
    pub program: String,
    /// The path as it is shown (`DIR/NAME.up`): explain commands use it.
    pub file: String,
    pub property: String,
    /// The property as written after `property NAME:`.
    pub text: String,
    /// The program's `# litmus:` header line, if it has one.
    pub question: Option<String>,
    /// One per model, in the order of `Table::models`.
    pub cells: Vec<Cell>,
}

pub struct Cell {
    pub holds: bool,
    /// Crash points where a bound was hit: the property is not proven there.
    pub unproven: Vec<usize>,
    pub counterexample: Option<Cx>,
}

/// The first crash state that violates a property.
pub struct Cx {
    /// `crash point 3 (after op 3 `close h`; op 4 `...` may have started)`
    pub point: String,
    /// The state, one path per line.
    pub state: String,
    /// `unplug explain FILE --model M --state 'REPLAY'`
    pub explain: String,
    /// The counterexample as `check --json` prints it.
    pub json: Value,
}

/// A program that could not be analysed, and why.
pub struct FileErrors {
    /// `file:line:col: message`, one per error.
    pub messages: Vec<String>,
    pub json: Vec<Value>,
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
    pub fn of(e: &ProgramErrors) -> FileErrors {
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
pub fn question(src: &str) -> Option<String> {
    src.lines()
        .find_map(|l| l.strip_prefix("# litmus:"))
        .map(|q| q.trim().to_string())
        .filter(|q| !q.is_empty())
}

/// The rows of one program: each property under each model.
pub fn rows(a: &Analysis, file: &Path, src: &str, models: &[ModelSpec]) -> Vec<Row> {
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
    "no violation was found, but a bound (--max-states) was hit, so the property is not proven";

impl Table {
    pub fn render(&self, f: Format) -> String {
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

    pub fn json(&self) -> Value {
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
        json!({ "dir": self.dir, "models": self.models, "rows": rows, "errors": errors })
    }

    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# Guarantees of the programs in `{}`\n", self.dir);
        let _ = writeln!(
            s,
            "Generated by `unplug table {}` from {} and {}, under {} {}. \
             Each row is one property of one program; each model column says whether it holds after a \
             power cut at any point.\n",
            self.dir,
            plural(self.programs(), "program"),
            plural(self.rows.len(), "property"),
            if self.models.len() == 1 { "the model" } else { "the models" },
            self.models
                .iter()
                .map(|m| format!("`{m}`"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let _ = writeln!(s, "- **holds**: {LEGEND_HOLDS}.");
        let _ = writeln!(s, "- **fails**: {LEGEND_FAILS} (the footnote).");
        let _ = writeln!(s, "- **unproven**: {LEGEND_UNPROVEN}.\n");

        let mut header = vec!["program", "property", "text"];
        header.extend(self.models.iter().map(String::as_str));
        header.extend(self.real.iter().map(|c| c.title.as_str()));
        header.push("question");
        let _ = writeln!(s, "| {} |", header.join(" | "));
        let _ = writeln!(s, "|{}", "---|".repeat(header.len()));
        let mut notes = String::new();
        let mut labels = BTreeSet::new();
        let mut last = None;
        for (i, r) in self.rows.iter().enumerate() {
            let first = last != Some(&r.program);
            last = Some(&r.program);
            let mut row = vec![
                if first {
                    format!("`{}`", r.program)
                } else {
                    String::new()
                },
                md_cell(&r.property),
                format!("`{}`", md_cell(&r.text)),
            ];
            for (m, c) in self.models.iter().zip(&r.cells) {
                if c.holds {
                    row.push("holds".into());
                    continue;
                }
                let mut label = format!("{}-{}-{}", r.program, r.property, m)
                    .chars()
                    .map(|ch| if ch.is_ascii_alphanumeric() { ch } else { '-' })
                    .collect::<String>();
                while !labels.insert(label.clone()) {
                    label.push('-');
                }
                row.push(format!("{} [^{label}]", c.verdict()));
                let _ = write!(
                    notes,
                    "[^{label}]: `{}` {} under **{m}**: ",
                    r.program, r.property
                );
                match &c.counterexample {
                    Some(x) => {
                        let _ = writeln!(notes, "{}:\n", x.point);
                        let _ = writeln!(notes, "    ```");
                        for l in x.state.lines() {
                            let _ = writeln!(notes, "    {l}");
                        }
                        let _ = writeln!(notes, "    ```\n");
                        let _ = writeln!(notes, "    `{}`\n", x.explain);
                    }
                    None => {
                        let _ = writeln!(
                            notes,
                            "bound exceeded: not proven for crash points {}; no violation found before it.\n",
                            crate::render::ranges(&c.unproven)
                        );
                    }
                }
            }
            row.extend(self.real.iter().map(|c| c.cells[i].text()));
            row.push(match (&r.question, first) {
                (Some(q), true) => md_cell(q),
                _ => String::new(),
            });
            let _ = writeln!(s, "| {} |", row.join(" | "));
        }
        let _ = writeln!(s);
        let totals: Vec<String> = self
            .models
            .iter()
            .zip(self.totals())
            .map(|(m, (h, n))| format!("`{m}` {h} of {n}"))
            .collect();
        let _ = writeln!(s, "Properties that hold: {}.\n", totals.join(", "));
        if !self.errors.is_empty() {
            let _ = writeln!(s, "## Programs left out (errors)\n");
            for e in &self.errors {
                for m in &e.messages {
                    let _ = writeln!(s, "- {m}");
                }
            }
            let _ = writeln!(s);
        }
        if !notes.is_empty() {
            let _ = writeln!(s, "## Counterexamples\n");
            s.push_str(&notes);
        }
        while s.ends_with("\n\n") {
            s.pop();
        }
        s
    }

    pub fn html(&self) -> String {
        let mut s = String::new();
        let title = format!("Guarantees of the programs in {}", self.dir);
        let _ = writeln!(
            s,
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <title>{}</title>\n<style>\n{CSS}</style>\n</head>\n<body>",
            esc(&title)
        );
        let _ = writeln!(s, "<h1>{}</h1>", esc(&title));
        let _ = writeln!(
            s,
            "<p>Generated by <code>unplug table {}</code> from {} and {}. \
             Each row is one property of one program; each model column says whether it holds after \
             a power cut at any point. Programs are grouped under their name and question.</p>",
            esc(&self.dir),
            plural(self.programs(), "program"),
            plural(self.rows.len(), "property")
        );
        let _ = writeln!(s, "<dl class=\"legend\">");
        for (class, word, text) in [
            ("holds", "holds", LEGEND_HOLDS),
            ("fails", "fails", LEGEND_FAILS),
            ("unproven", "unproven", LEGEND_UNPROVEN),
        ] {
            let _ = writeln!(
                s,
                "<dt><span class=\"v {class}\">{}</span></dt><dd>{}{}.</dd>",
                esc(word),
                esc(text),
                if class == "fails" {
                    " (hover over the cell for the state; click it for the whole counterexample, listed below the table)"
                } else {
                    ""
                }
            );
        }
        let _ = writeln!(s, "</dl>");
        let ncols = 2 + self.models.len() + self.real.len();
        let _ = writeln!(s, "<table>\n<thead><tr><th>property</th><th>text</th>");
        for m in &self.models {
            let _ = writeln!(s, "<th class=\"model\">{}</th>", esc(m));
        }
        for c in &self.real {
            let _ = writeln!(s, "<th class=\"model\">{}</th>", esc(&c.title));
        }
        let _ = writeln!(s, "</tr></thead>\n<tbody>");
        let mut notes = String::new();
        let mut last = None;
        for (i, r) in self.rows.iter().enumerate() {
            if last != Some(&r.program) {
                last = Some(&r.program);
                let id = format!("p-{}", anchor(&r.program));
                let _ = writeln!(
                    s,
                    "<tr class=\"program\" id=\"{id}\"><th colspan=\"{ncols}\"><a href=\"#{id}\">{}</a>{}</th></tr>",
                    esc(&r.program),
                    r.question
                        .as_ref()
                        .map(|q| format!(" <span class=\"q\">{}</span>", esc_code(q)))
                        .unwrap_or_default()
                );
            }
            let row_id = format!("r-{}", anchor(&format!("{}-{}", r.program, r.property)));
            let _ = writeln!(
                s,
                "<tr id=\"{row_id}\"><td class=\"prop\">{}</td><td><code>{}</code></td>",
                esc(&r.property),
                esc(&r.text)
            );
            for (m, c) in self.models.iter().zip(&r.cells) {
                let class = c.verdict();
                if c.holds {
                    let _ = writeln!(s, "<td class=\"v holds\">holds</td>");
                    continue;
                }
                let id = format!(
                    "cx-{}",
                    anchor(&format!("{}-{}-{m}", r.program, r.property))
                );
                let (tip, body) = match &c.counterexample {
                    Some(x) => (
                        format!("{}\n{}", x.point, x.state.trim_end()),
                        format!(
                            "fails at {}:</p>\n<pre>{}</pre>\n<pre class=\"cmd\">{}</pre>",
                            esc_code(&x.point),
                            esc(x.state.trim_end()),
                            esc(&x.explain)
                        ),
                    ),
                    None => {
                        let t = format!(
                            "bound exceeded: not proven for crash points {}; no violation found before it",
                            crate::render::ranges(&c.unproven)
                        );
                        let b = format!("unproven: {}.</p>", esc(&t));
                        (t, b)
                    }
                };
                let _ = writeln!(
                    s,
                    "<td class=\"v {class}\"><a href=\"#{id}\" title=\"{}\">{class}</a></td>",
                    esc(&tip)
                );
                let _ = writeln!(
                    notes,
                    "<li id=\"{id}\"><p><b>{}</b> property {} under <b>{}</b> {body}\n\
                     <p><a href=\"#{row_id}\">back to the table</a></p></li>",
                    esc(&r.program),
                    esc(&r.property),
                    esc(m),
                );
            }
            for c in &self.real {
                let cell = &c.cells[i];
                let _ = writeln!(
                    s,
                    "<td title=\"{}\">{}</td>",
                    esc(cell.example.as_deref().unwrap_or("")),
                    esc(&cell.text())
                );
            }
            let _ = writeln!(s, "</tr>");
        }
        let _ = writeln!(
            s,
            "</tbody>\n<tfoot><tr><th colspan=\"2\">properties that hold</th>"
        );
        for (h, n) in self.totals() {
            let _ = writeln!(s, "<td>{h} of {n}</td>");
        }
        for _ in &self.real {
            let _ = writeln!(s, "<td></td>");
        }
        let _ = writeln!(s, "</tr></tfoot>\n</table>");
        if !self.errors.is_empty() {
            let _ = writeln!(s, "<h2>Programs left out (errors)</h2>\n<ul>");
            for e in &self.errors {
                for m in &e.messages {
                    let _ = writeln!(s, "<li><code>{}</code></li>", esc(m));
                }
            }
            let _ = writeln!(s, "</ul>");
        }
        if !notes.is_empty() {
            let _ = writeln!(
                s,
                "<h2 id=\"counterexamples\">Counterexamples</h2>\n<ol class=\"cxs\">\n{notes}</ol>"
            );
        }
        let _ = writeln!(s, "</body>\n</html>");
        s
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

/// Text for a Markdown table cell: no line breaks, `|` escaped.
fn md_cell(s: &str) -> String {
    s.replace('\n', " ").replace('|', "\\|")
}

/// HTML-escaped text.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(ch),
        }
    }
    out
}

/// HTML-escaped text where each `code` span becomes <code>code</code>.
fn esc_code(s: &str) -> String {
    let parts: Vec<&str> = s.split('`').collect();
    if parts.len().is_multiple_of(2) {
        return esc(s); // an unmatched backtick: leave the text as it is
    }
    parts
        .iter()
        .enumerate()
        .map(|(i, p)| {
            if i % 2 == 1 {
                format!("<code>{}</code>", esc(p))
            } else {
                esc(p)
            }
        })
        .collect()
}

/// An HTML id: letters, digits and `-`.
fn anchor(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

const CSS: &str = r#"body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 90em; padding: 0 1em; color: #1d1d1f; background: #fff; }
h1 { font-size: 1.5em; }
h2 { font-size: 1.2em; margin-top: 2em; }
code, pre { font: 13px/1.4 ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; }
.legend { display: grid; grid-template-columns: max-content 1fr; gap: .3em 1em; margin: 1em 0 1.5em; }
.legend dd { margin: 0; }
table { border-collapse: collapse; width: 100%; }
th, td { border: 1px solid #d0d0d5; padding: .3em .5em; text-align: left; vertical-align: top; }
thead th { position: sticky; top: 0; background: #f3f3f6; z-index: 1; }
tr.program th { background: #fafafc; font-weight: normal; padding-top: .6em; }
tr.program a { font-weight: 600; color: inherit; text-decoration: none; font-family: ui-monospace, Menlo, Consolas, monospace; }
tr.program .q { color: #555; margin-left: .5em; }
td.prop { font-weight: 600; white-space: nowrap; }
.v { white-space: nowrap; font-weight: 600; text-align: center; }
.v a { color: inherit; }
span.v { display: inline-block; min-width: 5em; padding: .1em .5em; border-radius: .3em; }
.holds { background: #e3f4e6; color: #17652b; }
.fails { background: #fbe4e4; color: #a11b1b; }
.unproven { background: #fff4d6; color: #7a5a00; }
tr:target td, tr:target th { outline: 2px solid #4a6ee0; }
tfoot td, tfoot th { background: #f3f3f6; font-weight: 600; }
tfoot td { text-align: center; }
ol.cxs { padding-left: 0; list-style: none; }
ol.cxs li { border: 1px solid #d0d0d5; border-left: 4px solid #a11b1b; border-radius: .3em; padding: .2em 1em; margin: .8em 0; }
ol.cxs li:target { background: #fff8f8; border-color: #4a6ee0; }
ol.cxs pre { background: #f6f6f8; padding: .4em .6em; overflow-x: auto; }
ol.cxs pre.cmd { white-space: pre-wrap; word-break: break-all; }
"#;
