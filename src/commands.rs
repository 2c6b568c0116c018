//! The subcommands: load the program, run the explorer, print text or JSON, return the exit code.

use crate::checker::{AppChecker, CheckerOpts};
use crate::input::{
    input_error, load, load_source, parse_models, print_json, HOLDS, INPUT_ERROR, NOT_PROVEN,
};
use crate::out::{out, outln};
use crate::progress::Progress;
use crate::render;
use crate::warnings::{self, Warn, Warning};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use unplug_explorer::syncs::{self, Variant};
use unplug_explorer::{guarantee, replay, Analysis, Limits};
use unplug_model::{ModelSpec, ProgramErrors};

/// What every command that reads a program takes.
#[derive(clap::Args, Debug)]
pub(crate) struct Common {
    /// The program (a `.up` file; `-` reads it from standard input).
    pub(crate) program: PathBuf,
    /// A model: `posix`, `ext4`, `xfs`, `btrfs`, `seq`, with options after a colon, e.g.
    /// `ext4:data=writeback,nodelalloc` or `xfs:atomic=sector,garbage` (`unplug models` lists
    /// them). Repeat for several. Default: posix, ext4, xfs, btrfs and seq.
    #[arg(long = "model", short = 'm', value_name = "MODEL")]
    pub(crate) models: Vec<String>,
    /// Print JSON instead of text (schema: README.md, "JSON output").
    #[arg(long)]
    pub(crate) json: bool,
    /// Most distinct crash-state classes explored per crash point; past it, the crash point is
    /// reported as not proven (never dropped silently). 0: no limit.
    #[arg(long, value_name = "N", value_parser = crate::input::limit, env = "UNPLUG_MAX_STATES", default_value_t = Limits::default().max_states)]
    pub(crate) max_states: usize,
    #[command(flatten)]
    pub(crate) budget: crate::memory::Budget,
}

/// The program and the models a command runs on, and the warnings `which` asks for about the
/// program (printed on stderr here as text; JSON output carries them in `warnings`).
fn prepare(c: &Common, which: Warn) -> Result<(Analysis, Vec<ModelSpec>, Vec<Warning>), u8> {
    prepare_checked(c, None, which).map(|(a, ms, w, _)| (a, ms, w))
}

/// A loaded program, its models, its warnings, and the checker when one was given.
type Prepared = (
    Analysis,
    Vec<ModelSpec>,
    Vec<Warning>,
    Option<Arc<AppChecker>>,
);

/// [`prepare`], with the application's checker when `--checker` is given: the program gets
/// `property checker: always checker` if no property uses `checker`, and the analysis the
/// judge. A program whose properties use `checker` needs `--checker`.
fn prepare_checked(c: &Common, opts: Option<&CheckerOpts>, which: Warn) -> Result<Prepared, u8> {
    let models = parse_models(&c.models, c.json)?;
    let (mut a, src) = load_source(&c.program, c.json)?;
    a.limits.max_states = c.max_states;
    a.limits.max_memory = c.budget.install();
    let uses = a.program.properties.iter().any(|p| uses_checker(&p.expr));
    let judge = match opts.and_then(|o| o.checker.as_deref().map(|cmd| (o, cmd))) {
        None if uses => {
            return Err(input_error(
                c.json,
                "the program's properties use `checker`: give the checker command with \
                 --checker 'CMD' (it runs on each crash state, written as a directory: {dir})",
            ))
        }
        None => None,
        Some((o, cmd)) => {
            let data = crate::input::load_data(&a.program, &c.program, &src, c.json)?;
            let j =
                AppChecker::new(o, cmd, &a.program, data).map_err(|e| input_error(c.json, &e))?;
            if !uses {
                j.add_property(&mut a.program, &o.checker_reads);
            }
            let j = Arc::new(j);
            a.set_judge(Some(j.clone()));
            Some(j)
        }
    };
    let warned = warnings::of(&a.program, &src, which);
    if !c.json {
        warnings::print(&crate::input::shown(&c.program), &warned);
    }
    Ok((a, models, warned, judge))
}

/// Whether an expression asks the application's checker.
fn uses_checker(e: &unplug_model::Expr) -> bool {
    use unplug_model::Expr;
    match e {
        Expr::Checker(_) => true,
        Expr::Not(a) => uses_checker(a),
        Expr::And(a, b) | Expr::Or(a, b) | Expr::Implies(a, b) => {
            uses_checker(a) || uses_checker(b)
        }
        _ => false,
    }
}

pub(crate) fn check(c: &Common, opts: &CheckerOpts) -> u8 {
    let (path, json) = (c.program.as_path(), c.json);
    let (a, ms, warned, judge) = match prepare_checked(c, Some(opts), Warn::Properties) {
        Ok(x) => x,
        Err(c) => return c,
    };
    crate::memory::install_interrupt();
    let mut all = Vec::new();
    let mut results = Vec::new();
    let mut text = String::new();
    let progress = Progress::new(ms.len(), "models", json);
    let seq = judge.as_ref().map(|j| j.sequential(&a.program));
    let mut vulnerabilities = Vec::new();
    for m in &ms {
        if a.program.properties.is_empty() {
            // Nothing to check (warned above): no exploration.
            break;
        }
        progress.step(format!("checking under {m}"));
        // Each property is checked on what it reads (its cone of influence).
        let run = a.prepare(m);
        if let Some(j) = &judge {
            // Every distinct state once, in parallel: the check then finds the verdicts cached.
            j.prefetch(&run);
        }
        for i in 0..a.program.properties.len() {
            let r = run.check_in_cone(i);
            let cx = r
                .counterexample
                .as_ref()
                .map(|v| syncs::Counterexample::of(&run, &Variant::default(), v));
            let failed_run = judge
                .as_ref()
                .zip(cx.as_ref())
                .and_then(|(j, cx)| j.failure(&cx.state, cx.at));
            // What a holding property rests on (POSIX, documented, implementation).
            let g = if r.holds && !interrupted() {
                guarantee::guarantee(&a, m, i)
            } else {
                None
            };
            // An interrupt during the mutations leaves them unproven: say nothing of them.
            let g = g.filter(|_| !interrupted());
            text.push_str(&render::check_line(
                &a,
                path,
                m,
                &r,
                cx.as_ref(),
                g.as_ref(),
            ));
            if let (Some(j), Some(run), Some(cx)) = (&judge, &failed_run, &cx) {
                text.push_str(&j.failure_text(run, path, m, &cx.replay));
            }
            results.push(json!({
                "model": m.to_string(),
                "property": r.property,
                "holds": r.holds,
                "verdict": crate::input::verdict(&r),
                "rests_on": g.as_ref().map(|g| g.basis.to_string()),
                "load_bearing_rules": g.as_ref().map(|g| g.load_bearing.iter().map(|r| r.id).collect::<Vec<_>>()),
                "rules_not_settled": g.as_ref().map(|g| g.undetermined.iter().map(|r| r.id).collect::<Vec<_>>()),
                "violating_classes": r.violating_classes,
                "unproven_crash_points": r.unproven,
                "counterexample": cx.map(|c| render::counterexample_json(&a, &c)),
                "checker_run": failed_run.as_ref().zip(judge.as_ref()).map(|(run, j)| j.run_json(run)),
            }));
            all.push(r);
        }
        if let (Some(j), Some(seq)) = (&judge, &seq) {
            let vs = j.vulnerabilities(&run, seq);
            text.push_str(&j.vulnerabilities_text(&a.program, path, m, &vs));
            vulnerabilities.extend(j.vulnerabilities_json(&a.program, m, &vs));
        }
        progress.inc();
    }
    progress.finish();
    let code = crate::input::verdicts_code(&all);
    if json {
        print_json(&json!({
            "program": path.display().to_string(),
            "not_proven": code == NOT_PROVEN,
            "results": results,
            "checker": judge.as_ref().map(|j| j.summary_json()),
            "vulnerabilities": judge.as_ref().map(|_| vulnerabilities),
            "warnings": warnings::json(&warned),
        }));
    } else {
        out!("{text}");
        if let Some(j) = &judge {
            outln!("{}", j.summary_text());
        }
    }
    if interrupted() {
        eprintln!("interrupted: the crash points not explored are reported as not proven");
        return INTERRUPTED;
    }
    code
}

/// The exit status of a command stopped by Ctrl-C or SIGTERM.
const INTERRUPTED: u8 = 130;

/// Whether Ctrl-C or SIGTERM arrived (see [`crate::memory::install_interrupt`]).
fn interrupted() -> bool {
    unplug_explorer::budget::interrupted()
}

pub(crate) fn states(c: &Common, opts: &CheckerOpts, at: Option<usize>) -> u8 {
    let json = c.json;
    let (a, ms, warned, judge) = match prepare_checked(c, Some(opts), Warn::Ops) {
        Ok(x) => x,
        Err(c) => return c,
    };
    if let Some(k) = at {
        if k > a.program.ops.len() {
            return input_error(
                json,
                &format!(
                    "--at {k}: the program has crash points 0 to {}",
                    a.program.ops.len()
                ),
            );
        }
    }
    crate::memory::install_interrupt();
    // Each crash point is printed as soon as it is explored and then dropped: memory holds one
    // crash point's states, however long the program.
    let ks = at.map_or(0..=a.program.ops.len(), |k| k..=k);
    let progress = Progress::new(ms.len() * ks.clone().count(), "crash points", json);
    let mut doc = json.then(|| {
        let models: Vec<String> = ms.iter().map(|m| m.to_string()).collect();
        JsonStream::start(
            &json!({
                "program": c.program.display().to_string(),
                "models": models,
                "crash_points": [],
                "warnings": warnings::json(&warned),
            }),
            "crash_points",
        )
    });
    let mut incomplete = false;
    'models: for m in &ms {
        progress.step(format!("crash states under {m}"));
        let run = a.prepare(m);
        if !json {
            out!("== {} ==\n", run.model);
        }
        for p in run.points(ks.clone()) {
            if interrupted() {
                break 'models;
            }
            incomplete |= p.bound_hit;
            let verdicts = judge.as_ref().map(|j| j.verdicts(&p.states, p.at));
            let checker = verdicts.as_deref();
            match &mut doc {
                Some(doc) => doc.push(&render::PointJson {
                    run: &run,
                    p: &p,
                    checker,
                }),
                None => out!("{}", render::point_text(&a, &run, &p, checker)),
            }
            progress.inc();
        }
    }
    progress.finish();
    if let Some(doc) = doc {
        doc.end();
    }
    if let Some(j) = &judge {
        // On stderr: standard output is the states (or one JSON document).
        eprintln!("{}", j.summary_text());
        incomplete |= j.gaps() != (0, 0);
    }
    if interrupted() {
        eprintln!("interrupted: the crash points not listed were not explored");
        return INTERRUPTED;
    }
    if incomplete {
        NOT_PROVEN
    } else {
        HOLDS
    }
}

/// A JSON document printed while it is made: exactly what [`print_json`] prints for the whole
/// document, with the list under `key` (empty in the document given, and its first key in
/// sorted order) filled one item at a time.
struct JsonStream {
    /// What follows the list.
    tail: String,
    items: usize,
}

impl JsonStream {
    fn start(doc: &Value, key: &str) -> JsonStream {
        let text = serde_json::to_string_pretty(doc).expect("json");
        let mark = format!("\"{key}\": []");
        let (head, tail) = text.split_once(&mark).expect("the list is in the document");
        out!("{head}\"{key}\": [");
        JsonStream {
            tail: tail.to_string(),
            items: 0,
        }
    }

    /// Prints one item of the list as it serializes (never the whole item's text at once).
    fn push(&mut self, item: &impl serde::Serialize) {
        out!("{}", if self.items == 0 { "\n" } else { ",\n" });
        let mut w = Indented {
            buf: String::from("    "),
        };
        serde_json::to_writer_pretty(&mut w, item).expect("json");
        out!("{}", w.buf);
        self.items += 1;
    }

    fn end(self) {
        let close = if self.items == 0 { "]" } else { "\n  ]" };
        outln!("{close}{}", self.tail);
    }
}

/// Standard output, each line indented by four spaces (an item of a top-level JSON list),
/// written in pieces of at most 64 KiB. JSON text has no raw newline inside a string.
struct Indented {
    buf: String,
}

impl std::io::Write for Indented {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        let text = std::str::from_utf8(b).map_err(std::io::Error::other)?;
        for (i, part) in text.split('\n').enumerate() {
            if i > 0 {
                self.buf.push_str("\n    ");
            }
            self.buf.push_str(part);
        }
        if self.buf.len() > 1 << 16 {
            out!("{}", std::mem::take(&mut self.buf));
        }
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub(crate) fn syncs(c: &Common, opts: &CheckerOpts) -> u8 {
    let (path, json) = (c.program.as_path(), c.json);
    let (a, ms, warned, judge) = match prepare_checked(c, Some(opts), Warn::Properties) {
        Ok(x) => x,
        Err(c) => return c,
    };
    crate::memory::install_interrupt();
    let progress = Progress::new(ms.len(), "models", json);
    let mut reports: Vec<syncs::SyncReport> = Vec::new();
    for m in &ms {
        progress.step(format!("sync analysis under {m}"));
        if let Some(j) = &judge {
            // The program's own states once, in parallel: most variants' states are among them.
            j.prefetch(&a.prepare(m));
        }
        let report = syncs::analyse(&a, m);
        progress.inc();
        if interrupted() {
            // The analysis under `m` was cut short: its verdicts are not proven. Report the
            // models finished before it.
            progress.finish();
            let rest: Vec<String> = ms[reports.len()..].iter().map(|m| m.to_string()).collect();
            if json && !reports.is_empty() {
                print_json(&render::syncs_json(&a, path, &reports));
            } else if !reports.is_empty() {
                out!("{}", render::syncs_text(&a, path, &reports));
            }
            eprintln!(
                "interrupted: no sync analysis under {} (not proven)",
                rest.join(", ")
            );
            return INTERRUPTED;
        }
        reports.push(report);
    }
    progress.finish();
    let code = crate::input::verdicts_code(reports.iter().flat_map(|r| &r.results));
    if json {
        let mut v = render::syncs_json(&a, path, &reports);
        v["warnings"] = warnings::json(&warned);
        v["not_proven"] = json!(code == NOT_PROVEN);
        if let Some(j) = &judge {
            v["checker"] = j.summary_json();
        }
        print_json(&v);
    } else {
        out!("{}", render::syncs_text(&a, path, &reports));
        if let Some(j) = &judge {
            outln!("{}", j.summary_text());
        }
    }
    code
}

/// The program and the one model a command about a replay string needs (`what`: the command).
fn with_one_model(c: &Common, what: &str) -> Result<(Analysis, ModelSpec), u8> {
    let (a, mut ms, _) = prepare(c, Warn::Nothing)?;
    if ms.len() != 1 {
        return Err(input_error(
            c.json,
            &format!("{what} needs exactly one --model (the one the replay string came from)"),
        ));
    }
    Ok((a, ms.remove(0)))
}

pub(crate) fn explain(c: &Common, text: &str) -> u8 {
    let json = c.json;
    let (a, m) = match with_one_model(c, "explain") {
        Ok(x) => x,
        Err(code) => return code,
    };
    let (variant, run, w, state) = match replayed(&a, &m, text, json) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let e = render::explanation(&a, &run, &variant, &w, &state);
    if json {
        print_json(&e.json);
    } else {
        out!("{}", e.text);
    }
    HOLDS
}

/// The crash state a replay string names under `m`: its variant, the variant's run, the
/// witness and the state; an input error (exit 2) when the string does not name one.
fn replayed<'a>(
    a: &'a Analysis,
    m: &ModelSpec,
    text: &str,
    json: bool,
) -> Result<
    (
        Variant,
        unplug_explorer::ModelRun<'a>,
        unplug_explorer::Witness,
        unplug_explorer::CrashState,
    ),
    u8,
> {
    let (variant, rest) =
        Variant::split(text).map_err(|e| input_error(json, &format!("--state: {e}")))?;
    let run = variant
        .run(a, m)
        .map_err(|e| input_error(json, &format!("--state: {e}")))?;
    let w = replay::parse(&run, rest)
        .map_err(|e| input_error(json, &format!("--state `{text}` under {m}: {e}")))?;
    let state = replay::state_of(&run, &w).expect("parse checked it");
    Ok((variant, run, w, state))
}

/// `unplug materialize`: one crash state (a replay string) written as a directory tree with
/// the real bytes of the program's data, to look at or to run the application on.
pub(crate) fn materialize(c: &Common, text: &str, into: &Path, member: usize) -> u8 {
    let json = c.json;
    let (a, m) = match with_one_model(c, "materialize") {
        Ok(x) => x,
        Err(code) => return code,
    };
    let m = &m;
    let (_, _, w, state) = match replayed(&a, m, text, json) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let (_, src) = match load_source(&c.program, json) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let data = match crate::input::load_data(&a.program, &c.program, &src, json) {
        Ok(d) => d,
        Err(code) => return code,
    };
    let (members, exhaustive) = crate::checker::tree::members(&state);
    let Some(chosen) = members.get(member) else {
        return input_error(
            json,
            &format!(
                "--member {member}: this state has {} member{} to write (0 to {})",
                members.len(),
                if members.len() == 1 { "" } else { "s" },
                members.len() - 1
            ),
        );
    };
    match std::fs::read_dir(into) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return input_error(
                    json,
                    &format!(
                        "--into {}: is not empty (give a new or an empty directory)",
                        into.display()
                    ),
                );
            }
        }
        Err(_) if !into.exists() => {
            if let Err(e) = std::fs::create_dir_all(into) {
                return input_error(
                    json,
                    &format!("--into {}: cannot create it: {e}", into.display()),
                );
            }
        }
        Err(e) => return input_error(json, &format!("--into {}: {e}", into.display())),
    }
    if let Err(e) = crate::checker::tree::write(&state, chosen, &data, into) {
        return input_error(
            json,
            &format!("cannot write the state into {}: {e}", into.display()),
        );
    }
    let torn = members.len() > 1 || !exhaustive;
    if json {
        print_json(&json!({
            "into": into.display().to_string(),
            "crash_point": w.at,
            "paths": state.tree.len().saturating_sub(1),
            "member": member,
            "members": members.len(),
            "all_members": exhaustive,
            "concrete_states": render::count_json(&state.concrete_count()),
        }));
    } else {
        outln!(
            "wrote the crash state {text} under {m} into {} ({} path{}, crash point {})",
            into.display(),
            state.tree.len().saturating_sub(1),
            if state.tree.len() == 2 { "" } else { "s" },
            w.at
        );
        if torn {
            outln!(
                "it has torn blocks: it stands for {} concrete states; this is member {member} of \
                 the {} {} (--member K picks another)",
                render::count_str(&state.concrete_count()),
                members.len(),
                if exhaustive {
                    "states"
                } else {
                    "representatives (a write torn at its start or its end)"
                }
            );
        }
    }
    HOLDS
}

pub(crate) fn models(json: bool, markdown: Option<&Path>) -> u8 {
    let all = ModelSpec::configurations();
    if let Some(dir) = markdown {
        return models_markdown(&all, dir);
    }
    if json {
        let v: Vec<Value> = all
            .iter()
            .map(|m| {
                json!({
                    "model": m.to_string(),
                    "default": ModelSpec::all().contains(m),
                    "rules": m.rules().iter().map(|r| json!({
                        "id": r.id, "summary": r.summary, "source": r.source, "basis": r.basis.to_string(),
                        // No rule is backed by a realfs observation yet (the realfs issue).
                        "observed": Value::Null,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        print_json(&json!({ "models": v, "options": render::MODEL_OPTIONS }));
    } else {
        out!("{}", render::models_text(&all));
    }
    HOLDS
}

/// `unplug models --markdown DIR`: docs/SEMANTICS.md, with the programs of DIR that show each
/// rule (switching it off changes their outcome under a configuration that uses it).
fn models_markdown(all: &[ModelSpec], dir: &Path) -> u8 {
    let name = dir.display().to_string();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => return input_error(false, &format!("cannot read directory `{name}`: {e}")),
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "up"))
        .collect();
    files.sort();
    let mut programs = Vec::new();
    for f in &files {
        match load(f, false) {
            Ok(a) => programs.push((
                f.file_name()
                    .expect("a file")
                    .to_string_lossy()
                    .into_owned(),
                a,
            )),
            Err(code) => return code,
        }
    }
    let mut shown_by: BTreeMap<&'static str, BTreeSet<String>> = BTreeMap::new();
    for m in all {
        for (file, a) in &programs {
            let base = guarantee::outcome(a, m);
            for r in m.rules() {
                let mut mutated = a.clone();
                mutated.set_dropped_rule(Some(r.id));
                if guarantee::outcome(&mutated, m) != base {
                    shown_by.entry(r.id).or_default().insert(file.clone());
                }
            }
        }
    }
    out!("{}", render::semantics_md(all, &shown_by));
    HOLDS
}

/// `unplug table DIR`: every `*.up` program of DIR (by name) under every model, as a guarantee
/// table. A program with errors is reported (file:line:col) and left out; the others are still
/// tabled, and the exit code is then 2. Otherwise 0: a table is a report, not a check.
pub(crate) fn table(t: &crate::table::TableArgs) -> u8 {
    use crate::table::{self, FileErrors, Table};
    let models = match parse_models(&t.models, false) {
        Ok(m) => m,
        Err(c) => return c,
    };
    if let Some(path) = &t.output {
        if let Err(e) = crate::input::check_output_file("--output", path) {
            return input_error(false, &e);
        }
    }
    let dir = t.dir.display().to_string();
    let entries = match std::fs::read_dir(&t.dir) {
        Ok(e) => e,
        Err(e) => return input_error(false, &format!("cannot read directory `{dir}`: {e}")),
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "up"))
        .filter_map(|p| p.file_name().map(|n| t.dir.join(n)))
        .collect();
    files.sort();
    if files.is_empty() {
        return input_error(false, &format!("no `*.up` programs in `{dir}`"));
    }
    let mut out = Table {
        dir,
        models: models.iter().map(|m| m.to_string()).collect(),
        rows: Vec::new(),
        errors: Vec::new(),
        real: Vec::new(),
    };
    let mut code = HOLDS;
    let json = t.json || matches!(t.format, table::Format::Json);
    let shard = t.shard.unwrap_or(crate::shard::Shard::WHOLE);
    let mine: Vec<(u64, &PathBuf)> = (0u64..)
        .zip(&files)
        .filter(|(k, _)| shard.owns(*k))
        .collect();
    // With --shard: the header, then one record per program.
    let mut lines = crate::shard::header(
        "table",
        &table::shard_options(t, &out.models),
        shard,
        files.len() as u64,
    );
    let progress = Progress::new(mine.len(), "programs", json);
    for (k, f) in mine {
        progress.inc();
        let (rows, errors) = (out.rows.len(), out.errors.len());
        let mut stderr = String::new();
        let name = f.display().to_string();
        match std::fs::read_to_string(f) {
            Ok(src) => match unplug_model::load(&src) {
                Ok((program, trace)) => {
                    let mut a = Analysis::from_trace(program, trace);
                    a.limits.max_states = t.max_states;
                    a.limits.max_memory = t.budget.install();
                    progress.step(name.clone());
                    out.rows.extend(table::rows(&a, f, &src, &models));
                }
                Err(errs) => {
                    let e = ProgramErrors::new(&name, &src, errs);
                    stderr = e.render_plain();
                    eprint!("{stderr}");
                    out.errors.push(FileErrors::of(&e));
                    code = INPUT_ERROR;
                }
            },
            Err(e) => {
                stderr = format!("error: cannot read `{name}`: {e}\n");
                code = input_error(false, &format!("cannot read `{name}`: {e}"));
                out.errors.push(FileErrors {
                    messages: vec![format!("{name}: cannot read: {e}")],
                    json: vec![json!({ "file": name, "message": format!("cannot read: {e}") })],
                });
            }
        }
        lines.push_str(&crate::shard::record(
            k,
            &table::shard_record(&out.rows[rows..], &out.errors[errors..], &stderr),
        ));
    }
    progress.finish();
    if t.shard.is_some() {
        lines.push_str(&crate::shard::end(
            shard.units_of(files.len() as u64),
            &json!({}),
        ));
        let code = out.exit_code(code);
        return match &t.output {
            Some(path) => match std::fs::write(path, lines) {
                Ok(()) => code,
                Err(e) => input_error(false, &format!("cannot write `{}`: {e}", path.display())),
            },
            None => {
                out!("{lines}");
                code
            }
        };
    }
    if t.real {
        match real_columns(t, &files, &out) {
            Ok(cols) => out.real = cols,
            Err(c) => return c,
        }
    }
    let format = if t.json {
        table::Format::Json
    } else {
        t.format
    };
    out.print(code, format, t.output.as_deref())
}

/// `table --real`: every program that loaded, run for real on each `--real-fs`; one column per
/// run.
fn real_columns(
    t: &crate::table::TableArgs,
    files: &[PathBuf],
    out: &crate::table::Table,
) -> Result<Vec<crate::table::RealColumn>, u8> {
    use crate::real::{self, BackendArg, Schedules, Settings};
    use crate::table::{RealCell, RealColumn};
    let configs = real::configs(&t.real_fs, &[]).map_err(|e| input_error(false, &e))?;
    let loaded: Vec<PathBuf> = files
        .iter()
        .filter(|f| out.rows.iter().any(|r| r.file == f.display().to_string()))
        .cloned()
        .collect();
    let keep = PathBuf::from("unplug-unsound");
    let settings = Settings {
        configs,
        backend: BackendArg::Host,
        schedules: Schedules::All,
        plan: unplug_realfs::crash::PlanOptions {
            max_images: (t.real_max_images > 0).then_some(t.real_max_images),
            ..Default::default()
        },
        threads: real::threads(None),
        keep: &keep,
        limits: Limits {
            max_states: t.max_states,
            ..Limits::default()
        },
        json: false,
    };
    let reports = real::run_real(&loaded, &settings)?;
    Ok(reports
        .iter()
        .map(|r| RealColumn {
            title: format!("observed: {} on Linux {}", r.fs, r.kernel),
            cells: out
                .rows
                .iter()
                .map(|row| {
                    r.programs
                        .iter()
                        .find(|p| p.program == row.file)
                        .and_then(|p| p.properties.iter().find(|q| q.property == row.property))
                        .map(|q| RealCell {
                            states: q.images,
                            violated: q.violated,
                            example: q.example.clone(),
                        })
                        .unwrap_or_default()
                })
                .collect(),
        })
        .collect())
}
