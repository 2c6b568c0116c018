//! Runs beyond one machine: `--shard I/N` and `unplug merge`. A command's work is cut into
//! *units* (a workload of `workloads`, a session of `real`, a program of `table`), numbered in
//! the order an unsharded run goes through them; shard I of N does the units k with
//! `k % N == I` and writes JSON lines instead of its report:
//!
//! ```text
//! {"unplug_shard":{"version":..,"command":"table","options":{..},"shard":1,"shards":3,"units":7}}
//! {"unit":1,"data":{..}}          one per result the merge needs, in unit order
//! {"end":{"units":2,"summary":{..}}}   the units this shard covered, and its totals
//! ```
//!
//! `unplug merge` reads every shard's lines ([`read`]: each shard exactly once, all of one run,
//! every unit covered), then the command's own merge turns them back into exactly the report an
//! unsharded run prints. Each command keeps only its part here: what a unit's record holds, and
//! how records become its report; the format, the checks and their errors are this module's.

use crate::input::{input_error, is_stdin};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Shard `index` of `count` (`--shard I/N`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Shard {
    pub(crate) index: u64,
    pub(crate) count: u64,
}

impl Shard {
    /// The whole run (no `--shard`).
    pub(crate) const WHOLE: Shard = Shard { index: 0, count: 1 };

    /// Whether unit `k` is this shard's.
    pub(crate) fn owns(self, k: u64) -> bool {
        k % self.count == self.index
    }

    /// How many of units `0..total` are this shard's.
    pub(crate) fn units_of(self, total: u64) -> u64 {
        if total > self.index {
            (total - self.index - 1) / self.count + 1
        } else {
            0
        }
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// The value of `--shard`: `I/N`, two numbers with `0 <= I < N`.
pub(crate) fn parse(s: &str) -> Result<Shard, String> {
    let bad = |why: &str| {
        format!("`{s}`: {why} (a shard is I/N with 0 <= I < N: 0/4, 1/4, 2/4 and 3/4 are a run in 4 shards)")
    };
    let (i, n) = s.split_once('/').ok_or_else(|| bad("no `/`"))?;
    let num = |x: &str, what: &str| {
        x.trim()
            .parse::<u64>()
            .map_err(|e| bad(&format!("{what} `{x}` is not a number: {e}")))
    };
    let (index, count) = (num(i, "I")?, num(n, "N")?);
    if count == 0 {
        return Err(bad("N is 0"));
    }
    if index >= count {
        return Err(bad(&format!("I must be less than N ({count})")));
    }
    Ok(Shard { index, count })
}

/// The first line of a shard's output: which run (version, command, the options that decide its
/// results) and which part of it.
pub(crate) fn header(command: &str, options: &Value, shard: Shard, units: u64) -> String {
    line(&json!({ "unplug_shard": {
        "version": crate::VERSION,
        "command": command,
        "options": options,
        "shard": shard.index,
        "shards": shard.count,
        "units": units,
    }}))
}

/// A record of unit `unit` (written unit first, for a reader of the lines).
pub(crate) fn record(unit: u64, data: &Value) -> String {
    format!("{{\"unit\":{unit},\"data\":{data}}}\n")
}

/// The last line: the shard finished, covering `units` units, with its totals.
pub(crate) fn end(units: u64, summary: &Value) -> String {
    line(&json!({ "end": { "units": units, "summary": summary } }))
}

fn line(v: &Value) -> String {
    let mut s = serde_json::to_string(v).expect("json");
    s.push('\n');
    s
}

/// Every shard of one run, checked and put together.
pub(crate) struct Merged {
    pub(crate) command: String,
    pub(crate) options: Value,
    /// The run's units (all shards').
    pub(crate) units: u64,
    /// Every record, by unit (the records of one unit in the order they were written).
    pub(crate) records: Vec<(u64, Value)>,
    /// Each shard's summary, by shard index.
    pub(crate) summaries: Vec<Value>,
}

impl Merged {
    /// Checks that every unit has exactly one record (commands whose every unit gives one).
    pub(crate) fn one_record_per_unit(&self) -> Result<(), String> {
        for (i, (k, _)) in (0u64..).zip(&self.records) {
            if *k != i {
                return Err(format!(
                    "unit {i} has {} records",
                    if *k > i { "no" } else { "two" }
                ));
            }
        }
        match self.records.len() as u64 {
            n if n == self.units => Ok(()),
            n => Err(format!("{n} records for a run of {} units", self.units)),
        }
    }
}

/// One shard's output, as read.
struct Part {
    file: String,
    version: String,
    command: String,
    options: Value,
    shard: Shard,
    units: u64,
    records: Vec<(u64, Value)>,
    summary: Value,
}

/// Reads and checks the outputs of every shard of a run (`-`: standard input, once); an error
/// names the file and line.
pub(crate) fn read(files: &[PathBuf]) -> Result<Merged, String> {
    if files.iter().filter(|f| is_stdin(f)).count() > 1 {
        return Err("`-` (standard input) can be given once".into());
    }
    let parts = files
        .iter()
        .map(|f| read_part(f))
        .collect::<Result<Vec<_>, _>>()?;
    let first = parts.first().ok_or("no shard outputs given")?;
    for p in &parts[1..] {
        let differ = differences(first, p);
        if !differ.is_empty() {
            return Err(format!(
                "`{}` and `{}` are shards of different runs: {}",
                first.file,
                p.file,
                differ.join("; ")
            ));
        }
    }
    let count = first.shard.count;
    let mut by_index: BTreeMap<u64, &Part> = BTreeMap::new();
    for p in &parts {
        if let Some(q) = by_index.insert(p.shard.index, p) {
            return Err(format!(
                "shard {} is given twice: `{}` and `{}`",
                p.shard, q.file, p.file
            ));
        }
    }
    let missing: Vec<String> = (0..count)
        .filter(|i| !by_index.contains_key(i))
        .map(|i| format!("{i}/{count}"))
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "missing shard{} {} of the run in {count} shards (each of 0/{count} to {}/{count} must be given once)",
            if missing.len() == 1 { "" } else { "s" },
            missing.join(", "),
            count - 1
        ));
    }
    let mut records: Vec<(u64, Value)> = Vec::new();
    let mut summaries = Vec::new();
    for p in by_index.into_values() {
        records.extend(p.records.iter().cloned());
        summaries.push(p.summary.clone());
    }
    // Stable: the records of one unit keep the order their shard wrote them in.
    records.sort_by_key(|(k, _)| *k);
    Ok(Merged {
        command: first.command.clone(),
        options: first.options.clone(),
        units: first.units,
        records,
        summaries,
    })
}

/// How two shards' runs differ (empty: the same run).
fn differences(a: &Part, b: &Part) -> Vec<String> {
    let mut out = Vec::new();
    let mut differ = |what: &str, x: &Value, y: &Value| {
        if x != y {
            out.push(format!("{what} {x} against {y}"));
        }
    };
    differ("command", &json!(a.command), &json!(b.command));
    differ("version", &json!(a.version), &json!(b.version));
    differ("shards", &json!(a.shard.count), &json!(b.shard.count));
    differ("units", &json!(a.units), &json!(b.units));
    if a.command == b.command {
        let empty = serde_json::Map::new();
        let (x, y) = (
            a.options.as_object().unwrap_or(&empty),
            b.options.as_object().unwrap_or(&empty),
        );
        let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
        keys.sort();
        keys.dedup();
        for k in keys {
            let (u, v) = (
                x.get(k).unwrap_or(&Value::Null),
                y.get(k).unwrap_or(&Value::Null),
            );
            differ(&format!("option {k}"), u, v);
        }
    }
    out
}

fn read_part(path: &Path) -> Result<Part, String> {
    let file = crate::input::shown(path);
    let text = if is_stdin(path) {
        std::io::read_to_string(std::io::stdin().lock())
    } else {
        std::fs::read_to_string(path)
    }
    .map_err(|e| format!("cannot read `{file}`: {e}"))?;
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
    let parse = |n: usize, l: &str| -> Result<Value, String> {
        serde_json::from_str(l).map_err(|e| format!("{file}:{n}: not a JSON line: {e}"))
    };
    let not_shard = || {
        format!("{file}:1: not the output of a shard (`--shard I/N`): the first line is not its `unplug_shard` header")
    };
    let (n, l) = lines
        .next()
        .ok_or_else(|| format!("{file}: empty (not the output of a shard)"))?;
    let head = parse(n, l).map_err(|_| not_shard())?;
    let h = head.get("unplug_shard").ok_or_else(not_shard)?;
    let field = |k: &str| {
        h.get(k)
            .ok_or_else(|| format!("{file}:1: the header has no `{k}`"))
    };
    let num = |k: &str| {
        field(k)?
            .as_u64()
            .ok_or_else(|| format!("{file}:1: the header's `{k}` is not a number"))
    };
    let text_of = |k: &str| {
        field(k)?
            .as_str()
            .map(String::from)
            .ok_or_else(|| format!("{file}:1: the header's `{k}` is not a string"))
    };
    let (index, count) = (num("shard")?, num("shards")?);
    if index >= count {
        return Err(format!(
            "{file}:1: shard {index}/{count} is not a shard (I must be less than N)"
        ));
    }
    let shard = Shard { index, count };
    let units = num("units")?;
    let mut part = Part {
        file: file.clone(),
        version: text_of("version")?,
        command: text_of("command")?,
        options: field("options")?.clone(),
        shard,
        units,
        records: Vec::new(),
        summary: Value::Null,
    };
    let mut ended = false;
    let mut last = 0;
    for (n, l) in lines {
        if l.trim().is_empty() {
            continue;
        }
        if ended {
            return Err(format!("{file}:{n}: a line after the end record"));
        }
        let v = parse(n, l)?;
        if let Some(unit) = v.get("unit") {
            let unit = unit
                .as_u64()
                .ok_or_else(|| format!("{file}:{n}: `unit` is not a number"))?;
            if unit >= units || !shard.owns(unit) {
                return Err(format!(
                    "{file}:{n}: unit {unit} is not one of shard {shard}'s (of {units} units)"
                ));
            }
            if unit < last {
                return Err(format!(
                    "{file}:{n}: unit {unit} after unit {last}: out of order"
                ));
            }
            last = unit;
            let data = v
                .get("data")
                .ok_or_else(|| format!("{file}:{n}: a unit record without `data`"))?;
            part.records.push((unit, data.clone()));
        } else if let Some(e) = v.get("end") {
            let done = e
                .get("units")
                .and_then(Value::as_u64)
                .ok_or_else(|| format!("{file}:{n}: the end record has no `units`"))?;
            let owned = shard.units_of(units);
            if done != owned {
                return Err(format!(
                    "{file}:{n}: shard {shard} covered {done} of its {owned} units: run it again"
                ));
            }
            part.summary = e.get("summary").cloned().unwrap_or(Value::Null);
            ended = true;
        } else {
            return Err(format!(
                "{file}:{n}: neither a unit record (`unit`) nor the end record (`end`)"
            ));
        }
    }
    if !ended {
        return Err(format!(
            "{file}: no end record: shard {shard} did not finish (interrupted, failed or cut short): run it again"
        ));
    }
    Ok(part)
}

/// The arguments of `unplug merge`.
#[derive(clap::Args, Debug)]
pub(crate) struct MergeArgs {
    /// The JSON lines of every shard of one run (`--shard I/N`), in any order; `-` reads one
    /// from standard input.
    #[arg(required = true, value_name = "FILE")]
    pub(crate) files: Vec<PathBuf>,
    /// Print the report as the command's `--json` prints it.
    #[arg(long)]
    pub(crate) json: bool,
}

/// `unplug merge`: the report (and exit status) of the unsharded run.
pub(crate) fn merge(a: &MergeArgs) -> u8 {
    let m = match read(&a.files) {
        Ok(m) => m,
        Err(e) => return input_error(a.json, &e),
    };
    let result = match m.command.as_str() {
        "workloads" => crate::workloads::merge(&m, a.json),
        "table" => crate::table::merge(&m, a.json),
        "real" => crate::real::merge(&m, a.json),
        other => Err(format!(
            "shards of `unplug {other}`, which merge does not know"
        )),
    };
    result.unwrap_or_else(|e| input_error(a.json, &e))
}

/// A record's field that a merge needs, or the error that says it is missing.
pub(crate) fn get<T: serde::de::DeserializeOwned>(v: &Value, key: &str) -> Result<T, String> {
    let x = v
        .get(key)
        .ok_or_else(|| format!("a shard record has no `{key}`"))?;
    serde_json::from_value(x.clone()).map_err(|e| format!("a shard record's `{key}`: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_parse_and_cover_every_unit_once() {
        assert_eq!(parse("2/3"), Ok(Shard { index: 2, count: 3 }));
        for bad in ["3/3", "1", "a/2", "0/0", "-1/2", "1/2/3"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        for total in 0..20 {
            for n in 1..6 {
                let mut covered = 0;
                for i in 0..n {
                    let s = Shard { index: i, count: n };
                    let owned = (0..total).filter(|&k| s.owns(k)).count() as u64;
                    assert_eq!(owned, s.units_of(total), "{s} of {total}");
                    covered += owned;
                }
                assert_eq!(covered, total);
            }
        }
    }
}
