//! `unplug search PROG`: the cheapest syncs that keep every property, reorderings that let more
//! go, and the smallest programs that break a property when syncs are dropped (proptest, seeded).

use crate::input::{self, input_error, print_json};
use crate::out::out;
use crate::render;
use serde_json::{json, Value};
use std::fmt::Write;
use std::path::{Path, PathBuf};
use unplug_explorer::search::{
    self, Breaking, Broken, Cheapest, Options, Reorders, SearchReport, SyncChoice, Treatment,
};
use unplug_explorer::{Analysis, Limits};
use unplug_model::{ModelSpec, OpNo};

#[derive(clap::Args, Debug)]
pub(crate) struct SearchArgs {
    /// The programs (`.up` files; `-` reads one from standard input).
    #[arg(required = true, value_name = "PROGRAM")]
    pub(crate) programs: Vec<PathBuf>,
    /// A model (as for `check`); repeat for several. Default: posix, ext4, xfs, btrfs and seq.
    #[arg(long = "model", short = 'm', value_name = "MODEL")]
    pub(crate) models: Vec<String>,
    /// The seed of the breaking-program search (hex with 0x, or decimal). Each model and
    /// property gets its own generator derived from it, so `--model M --seed S` reproduces the
    /// answer for M alone.
    #[arg(long, value_name = "SEED", env = "UNPLUG_SEED", value_parser = parse_seed,
          default_value = "0x756e706c7567")]
    pub(crate) seed: u64,
    /// Proptest cases (generated variants) per model and property before shrinking.
    #[arg(long, value_name = "N", env = "UNPLUG_CASES", default_value_t = search::DEFAULT_CASES)]
    pub(crate) cases: u32,
    /// Write each minimal breaking program to DIR/STEM.MODEL.PROPERTY.up (it is always printed).
    /// DIR is created if it does not exist, but its parent must (checked before the search).
    #[arg(long, value_name = "DIR")]
    pub(crate) out: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub(crate) json: bool,
    /// Most distinct crash-state classes explored per crash point (as for `check`). 0: no
    /// limit.
    #[arg(long, value_name = "N", value_parser = crate::input::limit, env = "UNPLUG_MAX_STATES", default_value_t = Limits::default().max_states)]
    pub(crate) max_states: usize,
    #[command(flatten)]
    pub(crate) budget: crate::memory::Budget,
}

fn parse_seed(s: &str) -> Result<u64, String> {
    let r = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16),
        None => s.parse(),
    };
    r.map_err(|e| format!("`{s}` is not a seed (hex with 0x, or decimal): {e}"))
}

fn list(v: &[usize]) -> String {
    v.iter()
        .map(|k| k.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `DIR/STEM.MODEL.PROPERTY.up`, with the model's `:` `,` `=` made file-name friendly.
fn out_file(dir: &Path, program: &Path, m: &ModelSpec, prop: &str) -> PathBuf {
    let stem = if input::is_stdin(program) {
        "stdin".into()
    } else {
        program
            .file_stem()
            .map_or("program".into(), |s| s.to_string_lossy())
    };
    let model: String = m
        .to_string()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    dir.join(format!("{stem}.{model}.{prop}.up"))
}

fn treatment(t: Treatment) -> &'static str {
    match t {
        Treatment::Keep => "keep",
        Treatment::Fdatasync => "fdatasync",
        Treatment::Drop => "drop",
    }
}

fn cheapest_table(a: &Analysis, c: &Cheapest) -> String {
    let mut t = crate::out::table();
    let mut h = vec!["cost".to_string()];
    if let Some(v) = c.variants.first() {
        h.extend(v.iter().map(|s| render::op_str(a, s.op.get())));
    }
    t.set_header(h);
    for v in &c.variants {
        let mut row = vec![v.iter().map(|s| s.cost).sum::<u32>().to_string()];
        row.extend(v.iter().map(|s| treatment(s.treatment).to_string()));
        t.add_row(row);
    }
    format!("{t}\n")
}

fn choices_json(v: &[SyncChoice]) -> Value {
    json!(v
        .iter()
        .map(|s| json!({ "op": s.op, "call": s.call, "treatment": treatment(s.treatment), "cost": s.cost }))
        .collect::<Vec<_>>())
}

fn cheapest_json(c: &Cheapest) -> Value {
    json!({
        "cost": c.cost,
        "written_cost": c.written_cost,
        "exhaustive": c.exhaustive,
        "explored": c.explored,
        "variants": c.variants.iter().map(|v| choices_json(v)).collect::<Vec<_>>(),
    })
}

/// The command that reruns this model's search.
fn rerun(path: &Path, m: &ModelSpec, args: &SearchArgs) -> String {
    let mut s = format!(
        "unplug search {} --model {m} --seed {:#x}",
        path.display(),
        args.seed
    );
    if args.cases != search::DEFAULT_CASES {
        let _ = write!(s, " --cases {}", args.cases);
    }
    s
}

fn names(a: &Analysis, idx: &[usize]) -> String {
    let v: Vec<&str> = idx
        .iter()
        .map(|&i| a.program.properties[i].name.as_str())
        .collect();
    match v.len() {
        0 => String::new(),
        1 => v[0].to_string(),
        n => format!("{} and {}", v[..n - 1].join(", "), v[n - 1]),
    }
}

/// One program searched under every model: (text, JSON), or exit code 2 on a write error.
fn one(
    path: &Path,
    a: &Analysis,
    ms: &[ModelSpec],
    args: &SearchArgs,
) -> Result<(String, Value), u8> {
    let opts = Options {
        seed: args.seed,
        cases: args.cases,
    };
    let p = Searched {
        path,
        a,
        args,
        props: a
            .program
            .properties
            .iter()
            .map(|p| p.name.as_str())
            .collect(),
    };
    let syncs = search::sync_ops(a);
    let deps = unplug_explorer::search::dependencies(&a.program, &a.trace);
    let mut text = String::new();
    p.header(&mut text, ms, &syncs);
    let reports: Vec<SearchReport> = ms.iter().map(|m| search::search(a, m, &opts)).collect();
    if let Some(r) = reports.first() {
        dependencies_line(&mut text, &r.reorders);
    }
    let mut models_json = Vec::new();
    for r in &reports {
        models_json.push(p.model(&mut text, r)?);
    }
    let v = json!({
        "program": path.display().to_string(),
        "ops": a.program.ops.len(),
        "sync_calls": syncs.iter().map(|&k| json!({
            "op": k,
            "call": a.program.op(k).text,
            "cost": search::call_cost(a, k, false),
        })).collect::<Vec<_>>(),
        "dependencies": deps.iter().map(|(i, j)| json!([i, j])).collect::<Vec<_>>(),
        "models": models_json,
    });
    Ok((text, v))
}

/// How many pairs of ops must stay in order, and how many other orders were tried (the same
/// for every model: dependencies come from the program).
fn dependencies_line(text: &mut String, ro: &Reorders) {
    let how = if ro.exhaustive {
        "every order that keeps them"
    } else {
        "every order that moves one op and keeps them"
    };
    if ro.orders == 0 {
        let _ = writeln!(
            text,
            "Dependencies: {} pairs of ops that must stay in order; no other order keeps them all.",
            ro.dependencies
        );
    } else {
        let _ = writeln!(
            text,
            "Dependencies: {} pairs of ops that must stay in order; {} other orders tried ({how}).",
            ro.dependencies, ro.orders
        );
    }
}

/// The program being searched, and what its rendering needs.
struct Searched<'a> {
    path: &'a Path,
    a: &'a Analysis,
    args: &'a SearchArgs,
    /// The properties' names, in program order.
    props: Vec<&'a str>,
}

impl Searched<'_> {
    /// The program's summary line and the cost of each call.
    fn header(&self, text: &mut String, ms: &[ModelSpec], syncs: &[OpNo]) {
        let (a, args) = (self.a, self.args);
        let _ = writeln!(
            text,
            "{}: {} ops, {} sync calls ({}), properties {}; models {}; seed {:#x}, {} cases\n",
            self.path.display(),
            a.program.ops.len(),
            syncs.len(),
            syncs
                .iter()
                .map(|&k| render::op_str(a, k.get()))
                .collect::<Vec<_>>()
                .join(", "),
            self.props.join(", "),
            ms.iter()
                .map(|m| m.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            args.seed,
            args.cases
        );
        let written: u32 = syncs.iter().map(|&k| search::call_cost(a, k, false)).sum();
        let _ = writeln!(
            text,
            "Cost of a call: {}; as written: {written}.",
            search::COSTS
                .iter()
                .map(|(c, n)| match *c {
                    "directory" => format!("{n} more for a directory"),
                    _ => format!("{c} {n}"),
                })
                .collect::<Vec<_>>()
                .join(", ")
        );
    }

    /// One model's section: what fails as written, the cheapest variants, the reorderings that
    /// help, and a breaking program per property; its JSON.
    fn model(&self, text: &mut String, r: &SearchReport) -> Result<Value, u8> {
        let (a, props) = (self.a, &self.props);
        let m = &r.model;
        let _ = writeln!(text, "\n== {m} ==");
        let holding: Vec<usize> = (0..r.holds.len()).filter(|&i| r.holds[i]).collect();
        let not_holding: Vec<usize> = (0..r.holds.len()).filter(|&i| !r.holds[i]).collect();
        // A property that does not hold as written fails, or is not proven (a bound was hit).
        let written = if not_holding.is_empty() {
            Vec::new()
        } else {
            a.run(m).check()
        };
        let (not_proven, failing): (Vec<usize>, Vec<usize>) = not_holding
            .iter()
            .partition(|&&i| input::verdict(&written[i]) == "not_proven");
        if !not_proven.is_empty() {
            let _ = writeln!(
                text,
                "{} NOT PROVEN as written: a bound was hit ({}).",
                names(a, &not_proven),
                crate::render::bound_name()
            );
        }
        if !failing.is_empty() {
            let _ = writeln!(
                text,
                "{} {} as written, even with every sync: no variant keeps every property.",
                names(a, &failing),
                if failing.len() == 1 { "FAILS" } else { "FAIL" }
            );
        }
        match &r.cheapest {
            Some(c) => cheapest_lines(text, a, c, &holding),
            None => {
                let _ = writeln!(text, "No property holds as written: nothing to keep.");
            }
        }
        let ro = &r.reorders;
        if r.cheapest.is_some() && ro.orders > 0 {
            reorder_lines(text, ro);
        }
        let mut breaking_json = serde_json::Map::new();
        for (i, b) in r.breaking.iter().enumerate() {
            let p = props[i];
            breaking_json.insert(p.to_string(), self.breaking(text, m, p, b)?);
        }
        Ok(json!({
            "model": m.to_string(),
            "holds": props.iter().zip(&r.holds).map(|(p, h)| (p.to_string(), json!(h))).collect::<serde_json::Map<_, _>>(),
            "keeps": holding.iter().map(|&i| props[i]).collect::<Vec<_>>(),
            "not_proven": not_proven.iter().map(|&i| props[i]).collect::<Vec<_>>(),
            "cheapest": r.cheapest.as_ref().map(cheapest_json),
            "reorders": {
                "dependencies": ro.dependencies,
                "orders": ro.orders,
                "exhaustive": ro.exhaustive,
                "better": ro.better.iter().map(|b| json!({
                    "order": b.order,
                    "cheapest": cheapest_json(&b.cheapest),
                })).collect::<Vec<_>>(),
            },
            "breaking": breaking_json,
        }))
    }

    /// What the search for a program that breaks property `p` under model `m` found.
    fn breaking(
        &self,
        text: &mut String,
        m: &ModelSpec,
        p: &str,
        b: &Breaking,
    ) -> Result<Value, u8> {
        Ok(match b {
            Breaking::FailsAsWritten => {
                let _ = writeln!(text, "{p}: fails as written; nothing to break.");
                json!({ "outcome": "fails_as_written" })
            }
            Breaking::NoSyncNeeded => {
                let _ = writeln!(
                    text,
                    "{p}: holds with every sync dropped; no sync to break it with."
                );
                json!({ "outcome": "no_sync_needed" })
            }
            Breaking::NotFound => {
                let _ = writeln!(
                    text,
                    "{p}: no breaking variant among {} generated cases (try more --cases or another --seed).",
                    self.args.cases
                );
                json!({ "outcome": "not_found" })
            }
            Breaking::Found(x) => self.found(text, m, p, x)?,
        })
    }

    /// A minimal breaking program: printed (and written under `--out`), with the commands that
    /// reproduce, check and explain it.
    fn found(&self, text: &mut String, m: &ModelSpec, p: &str, x: &Broken) -> Result<Value, u8> {
        let (path, a, args) = (self.path, self.a, self.args);
        let file = match &args.out {
            Some(dir) => {
                let f = out_file(dir, path, m, p);
                std::fs::create_dir(dir)
                    .or_else(|e| match e.kind() {
                        std::io::ErrorKind::AlreadyExists => Ok(()),
                        _ => Err(e),
                    })
                    .and_then(|()| std::fs::write(&f, &x.source))
                    .map_err(|e| {
                        input_error(args.json, &format!("cannot write `{}`: {e}", f.display()))
                    })?;
                Some(f)
            }
            None => None,
        };
        let shown = file
            .as_ref()
            .map_or("min.up".to_string(), |f| f.display().to_string());
        let _ = writeln!(
            text,
            "{p}: a minimal program that breaks it ({} of {} ops; no op can be dropped further):",
            x.edit.order.len(),
            a.program.ops.len()
        );
        for line in x.source.lines() {
            let _ = writeln!(text, "    {line}");
        }
        if let Some(c) = &x.counterexample {
            let _ = writeln!(text, "  at {}:", render::point_str(&x.analysis, c.at));
            for line in c.state.to_string().lines() {
                let _ = writeln!(text, "    {line}");
            }
        }
        let _ = writeln!(text, "  reproduce: {}", rerun(path, m, args));
        let save = if file.is_some() {
            String::new()
        } else {
            "save the program above as min.up, then ".to_string()
        };
        let _ = writeln!(text, "  check it: {save}unplug check {shown} --model {m}");
        if let Some(c) = &x.counterexample {
            let _ = writeln!(
                text,
                "  explain it: unplug explain {shown} --model {m} --state '{}'",
                c.replay
            );
        }
        Ok(json!({
            "outcome": "found",
            "program": x.source,
            "kept_ops": x.edit.order,
            "dropped_syncs": x.dropped_syncs,
            "weakened": x.weakened,
            "dropped_ops": x.dropped_ops,
            "restored_by": x.restores,
            "file": file.map(|f| f.display().to_string()),
            "counterexample": x.counterexample.as_ref().map(|c| render::counterexample_json(&x.analysis, c)),
            "reproduce": rerun(path, m, args),
        }))
    }
}

/// The cheapest variants that keep the properties holding as written, as a table.
fn cheapest_lines(text: &mut String, a: &Analysis, c: &Cheapest, holding: &[usize]) {
    let how = if c.exhaustive {
        format!("exhaustive, {} variants checked", c.explored)
    } else {
        format!(
            "greedy: more than {} sync calls, a local minimum after {} rounds",
            search::MAX_EXHAUSTIVE_SYNCS,
            c.explored
        )
    };
    let _ = writeln!(
        text,
        "Cheapest variants that keep {}: cost {} (as written {}; {how}):",
        names(a, holding),
        c.cost,
        c.written_cost
    );
    text.push_str(&cheapest_table(a, c));
}

/// The reorderings that let a further sync go (the first five), or that none does.
fn reorder_lines(text: &mut String, ro: &Reorders) {
    if ro.better.is_empty() {
        let _ = writeln!(
            text,
            "Reorderings: none of the {} other orders lets a further sync go.",
            ro.orders
        );
        return;
    }
    for b in ro.better.iter().take(5) {
        let _ = writeln!(
            text,
            "Reordered as ops {}: cost {} with {}.",
            list(&b.order),
            b.cheapest.cost,
            b.cheapest.variants[0]
                .iter()
                .map(|s| format!("op {} {}", s.op, treatment(s.treatment)))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if ro.better.len() > 5 {
        let _ = writeln!(
            text,
            "... and {} more orders that let a further sync go (--json lists them).",
            ro.better.len() - 5
        );
    }
}

pub(crate) fn search(args: &SearchArgs) -> u8 {
    let ms = match input::parse_models(&args.models, args.json) {
        Ok(m) => m,
        Err(c) => return c,
    };
    if let Some(dir) = &args.out {
        if let Err(e) = input::check_output_dir("--out", dir) {
            return input_error(args.json, &e);
        }
    }
    if args.programs.iter().filter(|p| input::is_stdin(p)).count() > 1 {
        return input_error(args.json, "`-` (standard input) can be given once");
    }
    let mut loaded = Vec::new();
    for p in &args.programs {
        match input::load(p, args.json) {
            Ok(mut a) => {
                a.limits.max_states = args.max_states;
                a.limits.max_memory = args.budget.install();
                loaded.push((p, a));
            }
            Err(c) => return c,
        }
    }
    let mut texts = Vec::new();
    let mut programs = Vec::new();
    let progress = crate::progress::Progress::new(loaded.len(), "programs", args.json);
    for (p, a) in &loaded {
        progress.step(p.display().to_string());
        let r = one(p, a, &ms, args);
        progress.inc();
        match r {
            Ok((t, v)) => {
                texts.push(t);
                programs.push(v);
            }
            Err(c) => return c,
        }
    }
    progress.finish();
    if args.json {
        let costs: serde_json::Map<String, Value> = search::COSTS
            .iter()
            .map(|(c, n)| (c.to_string(), json!(n)))
            .collect();
        print_json(&json!({
            "seed": format!("{:#x}", args.seed),
            "cases": args.cases,
            "costs": costs,
            "programs": programs,
        }));
    } else {
        out!("{}", texts.join("\n"));
    }
    // A report: 0, or 3 when a property's verdict as written is not proven.
    let not_proven = programs.iter().any(|p| {
        p["models"].as_array().is_some_and(|ms| {
            ms.iter()
                .any(|m| m["not_proven"].as_array().is_some_and(|v| !v.is_empty()))
        })
    });
    if not_proven {
        input::NOT_PROVEN
    } else {
        input::HOLDS
    }
}
