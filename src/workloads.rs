//! `unplug workloads`: every workload of a bounded space (ACE-style), checked under every model
//! against the built-in oracles and the strength order of the models.

use crate::input::{input_error, parse_models, print_json, FAILS, HOLDS};
use crate::out::{out, outln};
use crate::shard::{self, Merged, Shard};
use rayon::prelude::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::time::Instant;
use unplug_explorer::workloads::{self, Checked, Space};
use unplug_explorer::Limits;
use unplug_realfs::child::interrupt;

/// Exit code after Ctrl-C (what was covered is still reported).
const INTERRUPTED: u8 = 130;
/// Workloads checked between two looks at the progress bar and Ctrl-C, in order.
const BLOCK: u64 = 2048;

#[derive(clap::Args, Debug)]
pub(crate) struct WorkloadsArgs {
    /// Core ops per workload (seq-N): 1, 2 or 3 are practical.
    #[arg(long, default_value_t = 2, value_name = "N")]
    pub(crate) ops: usize,
    /// File names per directory (foo, bar, baz, qux); the first exists before the workload.
    /// Default: 2 for --ops 1 and 2, 1 from --ops 3 on (the space grows as steps^ops; ACE
    /// restricts its seq-3 the same way).
    #[arg(long, value_name = "F")]
    pub(crate) files: Option<usize>,
    /// Directories under the root (A, B, ...), each with the same file names. Default: 2 for
    /// --ops 1 and 2, 1 from --ops 3 on.
    #[arg(long, value_name = "D")]
    pub(crate) dirs: Option<usize>,
    /// A model (as for `check`); repeat for several. Default: posix, ext4, xfs, btrfs and seq.
    #[arg(long = "model", short = 'm', value_name = "MODEL")]
    pub(crate) models: Vec<String>,
    /// Check only the first N workloads of the space (in index order). 0: no limit.
    #[arg(long, value_name = "N")]
    pub(crate) limit: Option<u64>,
    /// Print workload number N of the space as a program (its oracles are its properties) and
    /// exit: `unplug check` on it reproduces a finding.
    #[arg(long, value_name = "N")]
    pub(crate) show: Option<u64>,
    /// Write one JSON line per checked workload to FILE (its verdicts per model; the program
    /// text too when something failed). Its directory must exist (checked before the sweep).
    #[arg(long, value_name = "FILE")]
    pub(crate) out: Option<PathBuf>,
    /// Most findings listed per model and oracle (all are counted). 0: no limit.
    #[arg(long, default_value_t = 5, value_name = "N", value_parser = crate::input::limit)]
    pub(crate) max_findings: usize,
    /// The state budget: most distinct crash states per crash point; past it the crash point
    /// is reported as not proven, never dropped. 0: no limit.
    #[arg(long, value_name = "N", default_value_t = 20_000, value_parser = crate::input::limit)]
    pub(crate) max_states: usize,
    #[command(flatten)]
    pub(crate) budget: crate::memory::Budget,
    /// Print the summary as JSON.
    #[arg(long)]
    pub(crate) json: bool,
    /// Check only shard I of N of the workloads (those whose index is I modulo N) and print
    /// JSON lines for `unplug merge` instead of the summary (docs/SWEEP.md).
    #[arg(long, value_name = "I/N", value_parser = crate::shard::parse, conflicts_with = "show")]
    pub(crate) shard: Option<Shard>,
}

/// Per model and oracle: properties checked, violated, not proven.
#[derive(Default, Clone, Copy, serde::Serialize, serde::Deserialize)]
struct Tally {
    checked: u64,
    violated: u64,
    unproven: u64,
}

/// What a sweep found: counts, tallies per model and oracle, the listed findings.
#[derive(Default)]
pub(crate) struct Summary {
    pub(crate) checked: u64,
    pub(crate) skipped: u64,
    pub(crate) crash_states: u64,
    tallies: BTreeMap<(String, String), Tally>,
    /// (model, oracle) -> listed findings, and their total.
    findings: Vec<Value>,
    findings_total: u64,
    listed: BTreeMap<(String, String), usize>,
    unproven: Vec<Value>,
}

impl Summary {
    fn add(&mut self, c: &Checked, max: usize) {
        self.checked += 1;
        let oracles: Vec<&str> = c
            .program
            .lines()
            .filter_map(|l| l.strip_prefix("property "))
            .filter_map(|l| l.split(':').next())
            .collect();
        for v in &c.verdicts {
            self.crash_states += v.states as u64;
            for o in &oracles {
                let t = self
                    .tallies
                    .entry((v.model.clone(), workloads::oracle_of(o).to_string()))
                    .or_default();
                t.checked += 1;
                if v.violated.iter().any(|x| x == o) {
                    t.violated += 1;
                }
                if v.unproven.iter().any(|(x, _)| x == o) {
                    t.unproven += 1;
                }
            }
            for p in &v.violated {
                self.finding(
                    &v.model,
                    workloads::oracle_of(p),
                    c,
                    json!({ "property": p }),
                    max,
                );
            }
            for (p, at) in &v.unproven {
                if self.unproven.len() < max {
                    self.unproven.push(json!({
                        "model": v.model, "property": p, "workload": c.label, "index": c.index,
                        "verdict": format!("bound exceeded: not proven for crash points {}", crate::render::ranges(at)),
                    }));
                }
            }
        }
        for o in &c.order {
            let extra = json!({
                "weaker": o.weaker,
                "crash_point": o.at,
                "tree": crate::render::state_json(&o.state),
            });
            self.finding(&o.stronger, "order", c, extra, max);
        }
    }

    fn finding(&mut self, model: &str, oracle: &str, c: &Checked, extra: Value, max: usize) {
        self.findings_total += 1;
        let n = self
            .listed
            .entry((model.to_string(), oracle.to_string()))
            .or_default();
        if *n < max {
            *n += 1;
            let mut f = json!({
                "model": model,
                "oracle": oracle,
                "workload": c.label,
                "index": c.index,
                "program": c.program,
            });
            if let (Value::Object(f), Value::Object(e)) = (&mut f, extra) {
                f.extend(e);
            }
            self.findings.push(f);
        }
    }
}

/// The result of checking the first workloads of a space.
pub(crate) struct Sweep {
    pub(crate) sum: Summary,
    /// Workloads 0 to `covered` were checked (or skipped because they do not run).
    pub(crate) covered: u64,
    pub(crate) interrupted: bool,
    pub(crate) seconds: f64,
    /// The first error writing a JSON line (the lines after it may be missing).
    pub(crate) write_error: Option<std::io::Error>,
}

/// Checks the workloads of `shard` among `0..n` of `space` in blocks (in parallel within a
/// block, in index order between blocks, so the JSON lines and the summary are deterministic),
/// with a progress bar on a terminal; Ctrl-C (after [`interrupt::install`]) stops at the end of
/// the current block.
pub(crate) fn sweep(
    space: &Space,
    models: &[unplug_model::ModelSpec],
    limits: Limits,
    (n, shard): (u64, Shard),
    max_findings: usize,
    mut out: Option<&mut dyn std::io::Write>,
) -> Sweep {
    let bar = indicatif::ProgressBar::new(n);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:30} {pos}/{len} workloads ({per_sec}, {elapsed}, ETA {eta})",
        )
        .expect("valid template"),
    );
    let started = Instant::now();
    let first_runs = space.first_steps_that_run();
    let mut sum = Summary::default();
    let mut covered = 0u64;
    let mut interrupted = false;
    let mut sw_error: Option<std::io::Error> = None;
    while covered < n {
        let end = (covered + BLOCK * shard.count).min(n);
        let first = covered + (shard.index + shard.count - covered % shard.count) % shard.count;
        let mine: Vec<u64> = (first..end).step_by(shard.count as usize).collect();
        let block: Vec<Option<Checked>> = mine
            .into_par_iter()
            .map(|i| {
                if interrupt::interrupted() || !first_runs[space.first_step(i)] {
                    return None;
                }
                workloads::check(space, &space.workload(i), models, limits)
            })
            .collect();
        if interrupt::interrupted() {
            interrupted = true;
            break;
        }
        for c in block {
            match c {
                Some(c) => {
                    if let Some(f) = &mut out {
                        if let Err(e) = writeln!(f, "{}", line(&c)) {
                            sw_error.get_or_insert(e);
                        }
                    }
                    sum.add(&c, max_findings);
                }
                None => sum.skipped += 1,
            }
        }
        bar.set_position(end);
        covered = end;
    }
    bar.finish_and_clear();
    Sweep {
        sum,
        covered,
        interrupted,
        seconds: started.elapsed().as_secs_f64(),
        write_error: sw_error,
    }
}

fn line(c: &Checked) -> Value {
    let failed = c
        .verdicts
        .iter()
        .any(|v| !v.violated.is_empty() || !v.unproven.is_empty())
        || !c.order.is_empty();
    let verdicts: serde_json::Map<String, Value> = c
        .verdicts
        .iter()
        .map(|v| {
            (
                v.model.clone(),
                json!({ "violated": v.violated, "unproven": v.unproven, "states": v.states }),
            )
        })
        .collect();
    let mut l = json!({ "index": c.index, "workload": c.label, "verdicts": verdicts });
    if failed {
        l["program"] = json!(c.program);
        l["order"] = json!(c
            .order
            .iter()
            .map(|o| json!({ "stronger": o.stronger, "weaker": o.weaker, "crash_point": o.at }))
            .collect::<Vec<_>>());
    }
    l
}

pub(crate) fn run(a: &WorkloadsArgs) -> u8 {
    let json_out = a.json;
    let small = a.ops >= 3;
    let (files, dirs) = (
        a.files.unwrap_or(if small { 1 } else { 2 }),
        a.dirs.unwrap_or(if small { 1 } else { 2 }),
    );
    let space = match Space::new(a.ops, files, dirs) {
        Ok(s) => s,
        Err(e) => return input_error(json_out, &e),
    };
    let total = space.len().expect("Space::new checks the size");
    if let Some(i) = a.show {
        if i >= total {
            return input_error(
                json_out,
                &format!(
                    "--show {i}: the space has {total} workloads (0 to {})",
                    total - 1
                ),
            );
        }
        let w = space.workload(i);
        return match w.program(&space) {
            Some(p) => {
                out!("# workload {i}: {}\n{p}", w.label());
                HOLDS
            }
            None => input_error(
                json_out,
                &format!(
                    "workload {i} ({}) does not run: an op fails on the running system",
                    w.label()
                ),
            ),
        };
    }
    let models = match parse_models(&a.models, json_out) {
        Ok(m) => m,
        Err(code) => return code,
    };
    let limits = Limits {
        max_states: a.max_states,
        max_memory: a.budget.install(),
        ..Limits::default()
    };
    let mut out = match &a.out {
        Some(p) => match crate::input::check_output_file("--out", p).and_then(|()| {
            std::fs::File::create(p).map_err(|e| format!("cannot write `{}`: {e}", p.display()))
        }) {
            Ok(f) => Some(std::io::BufWriter::new(f)),
            Err(e) => return input_error(json_out, &e),
        },
        None => None,
    };
    if let Err(e) = interrupt::install() {
        return input_error(json_out, &format!("cannot install the Ctrl-C handler: {e}"));
    }
    let n = a.limit.filter(|&l| l > 0).map_or(total, |l| l.min(total));
    let shard = a.shard.unwrap_or(Shard::WHOLE);
    let sw = sweep(
        &space,
        &models,
        limits,
        (n, shard),
        a.max_findings,
        out.as_mut().map(|f| f as &mut dyn std::io::Write),
    );
    if let Some(e) = &sw.write_error {
        return input_error(json_out, &format!("cannot write the JSON lines: {e}"));
    }
    if let Some(mut f) = out {
        if let Err(e) = f.flush() {
            return input_error(json_out, &format!("cannot write the JSON lines: {e}"));
        }
    }
    let model_names: Vec<String> = models.iter().map(|m| m.to_string()).collect();
    if let Some(shard) = a.shard {
        let options = json!({
            "ops": a.ops, "files": files, "dirs": dirs, "models": model_names, "workloads": n,
            "max_findings": a.max_findings, "max_states": a.max_states,
            "max_memory": a.budget.max_memory,
        });
        return shard_lines(&options, shard, n, &sw);
    }
    let r = Report {
        space: &space,
        models: &model_names,
        n,
        seconds: sw.seconds,
    };
    r.print(&sw.sum, sw.covered, sw.interrupted, json_out)
}

/// What the report of a sweep shows besides its summary.
struct Report<'a> {
    space: &'a Space,
    models: &'a [String],
    /// The workloads asked for (`--limit`, else the space).
    n: u64,
    seconds: f64,
}

impl Report<'_> {
    /// Prints the summary (text or JSON); the exit code.
    fn print(&self, sum: &Summary, covered: u64, interrupted: bool, json_out: bool) -> u8 {
        let (space, seconds, n) = (self.space, self.seconds, self.n);
        let total = space.len().expect("Space::new checks the size");
        let order_total = sum.listed.iter().filter(|((_, o), _)| o == "order").count();
        let not_proven = sum.tallies.values().any(|t| t.unproven > 0);
        if json_out {
            let oracles: Vec<Value> = sum
                .tallies
                .iter()
                .map(|((m, o), t)| json!({ "model": m, "oracle": o, "checked": t.checked, "violated": t.violated, "unproven": t.unproven }))
                .collect();
            print_json(&json!({
                "space": { "ops": space.ops, "files": space.files, "dirs": space.dirs, "size": total, "steps_per_op": space.steps().len() },
                "covered": covered,
                "interrupted": interrupted,
                "workloads": sum.checked,
                "skipped": sum.skipped,
                "models": self.models,
                "crash_states": sum.crash_states,
                "seconds": (seconds * 1000.0).round() / 1000.0,
                "oracles": oracles,
                "findings_total": sum.findings_total,
                "findings": sum.findings,
                "unproven": sum.unproven,
                "not_proven": not_proven,
            }));
        } else {
            out!("{}", text(space, sum, self.models, covered, total, seconds));
            if interrupted {
                outln!(
                    "interrupted: workloads 0 to {covered} of {n} were checked; the rest were not"
                );
            }
        }
        if interrupted {
            INTERRUPTED
        } else if order_total > 0 {
            FAILS
        } else if not_proven {
            crate::input::NOT_PROVEN
        } else {
            HOLDS
        }
    }
}

/// `--shard`: the shard's lines (docs/SWEEP.md). A unit is a workload; a record is a finding or
/// a verdict not proven that this shard lists (at most `--max-findings` per model and oracle,
/// as an unsharded run lists them: the merge keeps the first ones over all shards); the end
/// record carries the shard's counts and tallies. A shard stopped by Ctrl-C writes no end
/// record (merge then asks for it again) and exits 130.
fn shard_lines(options: &Value, shard: Shard, n: u64, sw: &Sweep) -> u8 {
    let sum = &sw.sum;
    let mut s = shard::header("workloads", options, shard, n);
    let mut records: Vec<(u64, Value)> = sum
        .findings
        .iter()
        .map(|f| (f["index"].as_u64().unwrap_or(0), json!({ "finding": f })))
        .chain(
            sum.unproven
                .iter()
                .map(|u| (u["index"].as_u64().unwrap_or(0), json!({ "unproven": u }))),
        )
        .collect();
    records.sort_by_key(|(k, _)| *k);
    for (k, r) in &records {
        s.push_str(&shard::record(*k, r));
    }
    let mut code = HOLDS;
    if sw.interrupted {
        code = INTERRUPTED;
    } else {
        let tallies: Vec<Value> = sum
            .tallies
            .iter()
            .map(|((m, o), t)| json!([m, o, t]))
            .collect();
        s.push_str(&shard::end(
            shard.units_of(n),
            &json!({
                "checked": sum.checked, "skipped": sum.skipped, "crash_states": sum.crash_states,
                "findings_total": sum.findings_total, "tallies": tallies, "seconds": sw.seconds,
            }),
        ));
        if sum.listed.keys().any(|(_, o)| o == "order") {
            code = FAILS;
        } else if sum.tallies.values().any(|t| t.unproven > 0) {
            code = crate::input::NOT_PROVEN;
        }
    }
    out!("{s}");
    code
}

/// `unplug merge` of `workloads` shards: the summary of the unsharded sweep. Its `seconds` is
/// the sum of the shards' (the work's time, not the wall clock of any one run).
pub(crate) fn merge(m: &Merged, json_out: bool) -> Result<u8, String> {
    let o = &m.options;
    let (ops, files, dirs): (usize, usize, usize) = (
        shard::get(o, "ops")?,
        shard::get(o, "files")?,
        shard::get(o, "dirs")?,
    );
    let models: Vec<String> = shard::get(o, "models")?;
    let max: usize = shard::get(o, "max_findings")?;
    let space = Space::new(ops, files, dirs)?;
    let mut sum = Summary::default();
    let mut seconds = 0.0;
    for s in &m.summaries {
        sum.checked += shard::get::<u64>(s, "checked")?;
        sum.skipped += shard::get::<u64>(s, "skipped")?;
        sum.crash_states += shard::get::<u64>(s, "crash_states")?;
        sum.findings_total += shard::get::<u64>(s, "findings_total")?;
        seconds += shard::get::<f64>(s, "seconds")?;
        for (model, oracle, t) in shard::get::<Vec<(String, String, Tally)>>(s, "tallies")? {
            let e = sum.tallies.entry((model, oracle)).or_default();
            e.checked += t.checked;
            e.violated += t.violated;
            e.unproven += t.unproven;
        }
    }
    // The records in workload order: the first `max` findings per model and oracle, and the
    // first `max` verdicts not proven, are the ones an unsharded sweep lists.
    for (_, r) in &m.records {
        if let Some(f) = r.get("finding") {
            let key = (
                shard::get::<String>(f, "model")?,
                shard::get::<String>(f, "oracle")?,
            );
            let n = sum.listed.entry(key).or_default();
            if *n < max {
                *n += 1;
                sum.findings.push(f.clone());
            }
        } else if let Some(u) = r.get("unproven") {
            if sum.unproven.len() < max {
                sum.unproven.push(u.clone());
            }
        } else {
            return Err(
                "a `workloads` shard record that is neither a finding nor a verdict not proven"
                    .into(),
            );
        }
    }
    let r = Report {
        space: &space,
        models: &models,
        n: m.units,
        seconds,
    };
    Ok(r.print(&sum, m.units, false, json_out))
}

fn text(
    space: &Space,
    sum: &Summary,
    models: &[String],
    covered: u64,
    total: u64,
    seconds: f64,
) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "space: {} core op(s) x {} steps each (op and persistence point) over {} file paths in {} directories (the root too): {total} workloads",
        space.ops,
        space.steps().len(),
        space.file_paths().len(),
        space.dir_paths().len()
    );
    let _ = writeln!(
        s,
        "checked {} workloads ({} of the first {covered} do not run) under {} models: {} distinct crash states in {seconds:.1} s",
        sum.checked,
        sum.skipped,
        models.len(),
        sum.crash_states
    );
    let oracles: Vec<&str> = {
        let mut v: Vec<&str> = sum.tallies.keys().map(|(_, o)| o.as_str()).collect();
        v.sort();
        v.dedup();
        v
    };
    let mut t = crate::out::table();
    let mut head = vec!["model".to_string()];
    head.extend(oracles.iter().map(|o| format!("{o}: violated/checked")));
    head.push("order".to_string());
    t.set_header(head);
    for m in models {
        let mut row = vec![m.clone()];
        for o in &oracles {
            let t = sum
                .tallies
                .get(&(m.clone(), o.to_string()))
                .copied()
                .unwrap_or_default();
            let mut cell = format!("{}/{}", t.violated, t.checked);
            if t.unproven > 0 {
                cell.push_str(&format!(" ({} not proven)", t.unproven));
            }
            row.push(cell);
        }
        row.push(
            sum.listed
                .get(&(m.clone(), "order".to_string()))
                .map_or("ok".to_string(), |_| "VIOLATED".to_string()),
        );
        t.add_row(row);
    }
    let _ = writeln!(s, "{t}");
    let _ = writeln!(
        s,
        "oracles: fsync (a synced file is there with its content), fdatasync (if there, its content), \
         dirsync (a synced directory's entries), sync (everything unchanged since), rename (a new file \
         renamed over an existing one: old or new); order: every state of seq is one of each file system's, and each file \
         system's is one of posix's"
    );
    let mut shown = BTreeMap::new();
    for f in &sum.findings {
        let key = (
            f["model"].as_str().unwrap_or(""),
            f["oracle"].as_str().unwrap_or(""),
        );
        if shown.insert(key, ()).is_some() {
            continue;
        }
        let _ = writeln!(
            s,
            "\n{} violates {} in workload {} ({}); reproduce: unplug workloads --ops {} --files {} --dirs {} --show {} > w.up && unplug check w.up -m {}",
            key.0, key.1, f["index"], f["workload"].as_str().unwrap_or(""), space.ops, space.files, space.dirs, f["index"], key.0
        );
    }
    for u in &sum.unproven {
        let _ = writeln!(
            s,
            "{} {} in workload {}: {}",
            u["model"].as_str().unwrap_or(""),
            u["property"].as_str().unwrap_or(""),
            u["index"],
            u["verdict"].as_str().unwrap_or("")
        );
    }
    s
}
