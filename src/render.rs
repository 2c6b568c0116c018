//! Text and JSON output. Everything here is deterministic: sorted maps, fixed orders.

use serde_json::{json, Value};
use std::fmt::Write;
use std::path::Path;
use unplug_explorer::guarantee::Guarantee;
use unplug_explorer::syncs::{Counterexample, Variant};
use unplug_explorer::{
    explore::Point, state::size_str, Analysis, Count, CrashState, ModelRun, Node, PropertyResult,
    Segment, Witness,
};
use unplug_model::{EffectKind, ModelSpec, Origin};

mod syncs;
pub(crate) use syncs::{syncs_json, syncs_text};

/// `op 7 `rename tmp final`` (the library's [`unplug::op_str`], for an analysis).
pub(crate) fn op_str(a: &Analysis, k: usize) -> String {
    unplug::op_str(&a.program, k)
}

/// What crash point k means for this program ([`unplug::crash_point`]).
pub(crate) fn point_str(a: &Analysis, k: usize) -> String {
    unplug::crash_point(&a.program, k)
}

/// An exact count as a JSON number, however many digits it has (counts of crash states can
/// exceed 64 bits; serde_json's arbitrary_precision keeps every digit). Past a million bits the
/// integer would be too large to print: the exact expression (`"3^4294967296 - ..."`) instead.
/// Crash points as ranges: `1-4, 7`.
pub(crate) fn ranges(at: &[usize]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < at.len() {
        let mut j = i;
        while j + 1 < at.len() && at[j + 1] == at[j] + 1 {
            j += 1;
        }
        out.push(if i == j {
            at[i].to_string()
        } else {
            format!("{}-{}", at[i], at[j])
        });
        i = j + 1;
    }
    out.join(", ")
}

pub(crate) fn count_json(n: &Count) -> Value {
    match n.exact() {
        Some(v) => {
            serde_json::from_str(&v.to_string()).expect("a decimal integer is a JSON number")
        }
        None => Value::String(n.expression()),
    }
}

/// A count: the integer up to 15 digits, else its exact expression and size (`2^2048 + 2
/// (≈ 3.23e616)`).
pub(crate) fn count_str(n: &Count) -> String {
    if n.bits() < 50.0 {
        return n.to_string();
    }
    let digits = n.bits() * std::f64::consts::LN_2 / std::f64::consts::LN_10;
    let mantissa = 10f64.powf(digits.fract());
    format!("{} (≈ {mantissa:.2}e{})", n.expression(), digits.floor())
}

fn indent(text: &str, by: &str) -> String {
    text.lines().map(|l| format!("{by}{l}\n")).collect()
}

fn explain_cmd(path: &Path, m: &ModelSpec, replay: &str) -> String {
    format!(
        "unplug explain {} --model {} --state '{}'",
        path.display(),
        m,
        replay
    )
}

/// The bounds that cut crash points short: an interrupt, the memory budget, and the explorer's
/// own (the state bound, the downset bound, a write too large to step through page by page).
pub(crate) fn bound_name() -> String {
    use unplug_explorer::budget::{self, Bound};
    let mut names: Vec<String> = Vec::new();
    if budget::interrupted() {
        names.push("interrupted".into());
    }
    if budget::memory_hit() {
        names.push("--max-memory".into());
    }
    for b in budget::bounds_hit() {
        names.push(match b {
            Bound::States => "--max-states".into(),
            Bound::Downsets => format!(
                "{} sets of metadata effects per crash point",
                unplug_explorer::Limits::default().max_downsets
            ),
            Bound::Choices => format!(
                "a block with more than {} combinations of versions, or more than 64 versions",
                unplug_explorer::explore::MAX_OPTIONS
            ),
            Bound::Checker => {
                "the checker's budget, or torn states judged on representatives (see the \
                 checker line)"
                    .into()
            }
            Bound::Elided => format!(
                "a write over {} pages, whose page-by-page sizes are not enumerated",
                unplug_model::persist::posix::MAX_SIZE_STEPS
            ),
        });
    }
    if names.is_empty() {
        names.push("--max-states".into());
    }
    names.join("; ")
}

pub(crate) fn check_line(
    a: &Analysis,
    path: &Path,
    m: &ModelSpec,
    r: &PropertyResult,
    cx: Option<&Counterexample>,
    g: Option<&Guarantee>,
) -> String {
    let mut s = String::new();
    let prop = a
        .program
        .properties
        .iter()
        .find(|p| p.name == r.property)
        .expect("property exists");
    if r.holds {
        let _ = writeln!(s, "{m}: {} holds   ({})", r.property, prop.text);
        if let Some(g) = g {
            let rules: Vec<&str> = g.load_bearing.iter().map(|r| r.id).collect();
            let why = if g.basis == unplug_model::Basis::Posix {
                "holds under posix too".to_string()
            } else if rules.is_empty() {
                "no single rule; not a POSIX guarantee".to_string()
            } else {
                rules.join(", ")
            };
            let _ = writeln!(s, "  rests on: {} ({why})", g.basis);
            if !g.undetermined.is_empty() && g.basis != unplug_model::Basis::Posix {
                let ids: Vec<&str> = g.undetermined.iter().map(|r| r.id).collect();
                let _ = writeln!(
                    s,
                    "  not settled (bound exceeded with the rule switched off): {}",
                    ids.join(", ")
                );
            }
        }
    } else if !r.unproven.is_empty() && r.violating_classes == 0 {
        let _ = writeln!(
            s,
            "{m}: {} NOT PROVEN: bound exceeded ({}): not proven for crash points {}",
            r.property,
            bound_name(),
            ranges(&r.unproven)
        );
    } else {
        let _ = writeln!(s, "{m}: {} FAILS   ({})", r.property, prop.text);
        if let Some(c) = cx {
            let _ = writeln!(s, "  counterexample at {}:", point_str(a, c.at));
            s.push_str(&indent(&c.state.to_string(), "    "));
            let _ = writeln!(s, "  replay: {}", explain_cmd(path, m, &c.replay));
        }
    }
    s
}

pub(crate) fn state_json(st: &CrashState) -> Value {
    let entries: Vec<Value> = st
        .tree
        .iter()
        .filter(|(p, _)| !p.0.is_empty())
        .map(|(p, n)| match n {
            Node::Dir { links } => json!({ "path": p.to_string(), "kind": "dir", "links": links }),
            Node::Symlink { target, links } => json!({
                "path": p.to_string(),
                "kind": "symlink",
                "target": target,
                "links": links,
            }),
            Node::File {
                size,
                links,
                content,
                same_file_as,
            } => json!({
                "path": p.to_string(),
                "kind": "file",
                "size": size,
                "links": links,
                "same_file_as": same_file_as.as_ref().map(|x| x.to_string()),
                "content": content.iter().map(segment_json).collect::<Vec<_>>(),
            }),
        })
        .collect();
    Value::Array(entries)
}

fn origin_json(o: &Origin) -> Value {
    match o {
        Origin::Zero => json!({ "zero": true }),
        Origin::Stale => json!({ "stale": true }),
        Origin::Garbage => json!({ "garbage": true }),
        Origin::Data { name, delta } => json!({ "data": name, "delta": delta }),
    }
}

fn segment_json(s: &Segment) -> Value {
    match s {
        Segment::Exact(e) => {
            json!({ "start": e.start, "end": e.end, "origin": origin_json(&e.origin) })
        }
        Segment::Mixed {
            unit,
            start,
            end,
            blocks,
            values,
        } => json!({
            "start": start, "end": end, "blocks": blocks, "unit": unit,
            "each_block_one_of": values.iter().map(|v| v.0.iter().map(|(s, e, o)| json!({
                "start": s, "end": e, "origin": origin_json(o)
            })).collect::<Vec<_>>()).collect::<Vec<_>>(),
        }),
    }
}

pub(crate) fn counterexample_json(a: &Analysis, c: &Counterexample) -> Value {
    json!({
        "crash_point": c.at,
        "crash_point_text": point_str(a, c.at),
        "replay": c.replay,
        "tree": state_json(&c.state),
        "text": c.state.to_string(),
    })
}

/// One crash point of `unplug states`: its count line and its table of classes.
/// One crash point of `unplug states`; with `checker`, each state's checker verdict.
pub(crate) fn point_text(
    a: &Analysis,
    run: &ModelRun,
    p: &Point,
    checker: Option<&[String]>,
) -> String {
    let mut s = String::new();
    let plural = if p.total == Count::one() { "" } else { "s" };
    if p.bound_hit {
        let _ = writeln!(
            s,
            "{}: {} distinct state{plural} found before a bound was hit ({}): INCOMPLETE, properties here are not proven",
            point_str(a, p.at),
            count_str(&p.total),
            bound_name()
        );
    } else {
        let _ = writeln!(
            s,
            "{}: {} distinct state{plural}",
            point_str(a, p.at),
            count_str(&p.total)
        );
    }
    let mut t = crate::out::table();
    let mut header = vec!["#", "count", "state", "replay"];
    if checker.is_some() {
        header.push("checker");
    }
    t.set_header(header);
    for (i, e) in p.states.iter().enumerate() {
        let mut row = vec![
            (i + 1).to_string(),
            count_str(&e.count),
            e.state.to_string(),
            unplug_explorer::replay::format(run, &e.witness),
        ];
        if let Some(c) = checker {
            row.push(c.get(i).cloned().unwrap_or_default());
        }
        t.add_row(row);
    }
    let _ = writeln!(s, "{t}");
    s
}

/// One crash point of `unplug states --json`, serialized one state at a time (a crash point
/// can hold up to the memory budget of states: its JSON is never built whole). Keys in sorted
/// order, as `serde_json::Value` prints them.
pub(crate) struct PointJson<'a> {
    pub(crate) run: &'a ModelRun<'a>,
    pub(crate) p: &'a Point,
    /// Each state's checker verdict (`--checker`).
    pub(crate) checker: Option<&'a [String]>,
}

impl serde::Serialize for PointJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(6))?;
        m.serialize_entry("at", &self.p.at)?;
        m.serialize_entry("bound_hit", &self.p.bound_hit)?;
        m.serialize_entry("classes", &self.p.states.len())?;
        m.serialize_entry("distinct_states", &count_json(&self.p.total))?;
        m.serialize_entry("model", &self.run.model.to_string())?;
        m.serialize_entry("states", &StatesJson(self))?;
        m.end()
    }
}

struct StatesJson<'a>(&'a PointJson<'a>);

impl serde::Serialize for StatesJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let PointJson { run, p, checker } = self.0;
        let mut seq = s.serialize_seq(Some(p.states.len()))?;
        for (i, e) in p.states.iter().enumerate() {
            let mut v = json!({
                "count": count_json(&e.count),
                "tree": state_json(&e.state),
                "text": e.state.to_string(),
                "replay": unplug_explorer::replay::format(run, &e.witness),
            });
            if let Some(c) = checker {
                v["checker"] = json!(c.get(i));
            }
            seq.serialize_element(&v)?;
        }
        seq.end()
    }
}

pub(crate) struct Explanation {
    pub(crate) text: String,
    pub(crate) json: Value,
}

pub(crate) fn explanation(
    a: &Analysis,
    run: &ModelRun,
    variant: &Variant,
    w: &Witness,
    state: &CrashState,
) -> Explanation {
    let p = &run.persistence;
    let floor = unplug_explorer::explore::floor_at(p, &run.graph, w.at);
    let mut t = String::new();
    let _ = writeln!(t, "Model {} at {}", run.model, point_str(a, w.at));
    variant_lines(&mut t, a, variant);
    let _ = writeln!(t, "\nThe state after recovery:");
    t.push_str(&indent(&state.to_string(), "  "));
    let persisted = persisted_section(&mut t, a, run, w, &floor);
    let lost = lost_section(&mut t, a, run, w, &floor);
    let floors = floors_section(&mut t, a, run, w);
    let rules = rules_section(&mut t, run, w, &floor);
    let json = json!({
        "model": run.model.to_string(),
        "crash_point": w.at,
        "tree": state_json(state),
        "text": state.to_string(),
        "persisted": persisted,
        "not_persisted": lost,
        "syncs_in_force": floors,
        "rules": rules,
    });
    Explanation { text: t, json }
}

/// The variant of the program the state belongs to (syncs removed, fsyncs weakened), if any.
fn variant_lines(t: &mut String, a: &Analysis, variant: &Variant) {
    let ops = |v: &std::collections::BTreeSet<usize>| {
        v.iter()
            .map(|&o| op_str(a, o))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !variant.removed.is_empty() {
        let _ = writeln!(
            t,
            "Variant: the program without the sync of {}",
            ops(&variant.removed)
        );
    }
    if !variant.datasync.is_empty() {
        let _ = writeln!(
            t,
            "Variant: fdatasync in place of {}",
            ops(&variant.datasync)
        );
    }
}

/// An effect as explanations name it: its name, what it is, its op, and whether it was in flight.
fn describe(a: &Analysis, run: &ModelRun, w: &Witness, e: usize) -> String {
    let eff = &run.persistence.effects[e];
    let what = match &eff.kind {
        EffectKind::Meta(_) => "metadata of",
        EffectKind::Writeback(_) => "writeback-time size of",
        EffectKind::Block { .. } => "data written by",
    };
    let in_flight = if eff.op == w.at + 1 {
        ", in flight: the op had started but not returned"
    } else {
        ""
    };
    format!("{} ({what} {}{in_flight})", eff.name, op_str(a, eff.op))
}

/// The persisted metadata effects, each forced or allowed, with the edges it respects.
fn persisted_section(
    t: &mut String,
    a: &Analysis,
    run: &ModelRun,
    w: &Witness,
    floor: &[bool],
) -> Vec<Value> {
    let p = &run.persistence;
    let mut persisted = Vec::new();
    let _ = writeln!(t, "\nPersisted metadata effects:");
    if w.persisted.is_empty() {
        let _ = writeln!(t, "  none");
    }
    for &e in &w.persisted {
        let why = if floor[e] {
            "forced by a completed sync"
        } else {
            "may persist: nothing forbids it"
        };
        let _ = writeln!(t, "  {}: {why}", describe(a, run, w, e));
        for (f, r) in run.graph.edges_into(e) {
            let _ = writeln!(
                t,
                "      requires {} by {}: {}",
                p.effects[f].name, r.id, r.summary
            );
        }
        persisted.push(
            json!({ "effect": p.effects[e].name, "op": p.effects[e].op, "forced": floor[e] }),
        );
    }
    persisted
}

/// The effects issued by the crash point (or in flight) that did not persist.
fn lost_section(
    t: &mut String,
    a: &Analysis,
    run: &ModelRun,
    w: &Witness,
    floor: &[bool],
) -> Vec<Value> {
    let _ = writeln!(
        t,
        "\nNot persisted (issued by crash point {} or in flight):",
        w.at
    );
    let mut lost = Vec::new();
    for (e, eff) in run.persistence.effects.iter().enumerate() {
        if eff.op > w.at + 1 || w.persisted.contains(&e) || floor[e] {
            continue;
        }
        if eff.is_block() && w.chunks.iter().any(|(_, srcs)| srcs.contains(&Some(e))) {
            continue;
        }
        let _ = writeln!(
            t,
            "  {}: no completed sync forces it, and no persisted effect requires it",
            describe(a, run, w, e)
        );
        lost.push(json!({ "effect": eff.name, "op": eff.op }));
    }
    lost
}

/// The completed syncs in force at the crash point, with their rules.
fn floors_section(t: &mut String, a: &Analysis, run: &ModelRun, w: &Witness) -> Vec<Value> {
    let _ = writeln!(t, "\nSyncs in force at this crash point:");
    let mut floors = Vec::new();
    for f in run.persistence.floors.iter().filter(|f| f.op <= w.at) {
        let _ = writeln!(
            t,
            "  {}: {} — {}\n      source: {}",
            op_str(a, f.op),
            f.rule.id,
            f.rule.summary,
            f.rule.source
        );
        floors.push(json!({ "op": f.op, "rule": f.rule.id }));
    }
    if floors.is_empty() {
        let _ = writeln!(t, "  none");
    }
    floors
}

/// The rules behind the state: the edges it respects, the syncs in force, and the rule each
/// effect that did not persist carries (the one that lets it be lost).
fn rules_section(t: &mut String, run: &ModelRun, w: &Witness, floor: &[bool]) -> Vec<Value> {
    let p = &run.persistence;
    let mut used: Vec<&'static unplug_model::Rule> = Vec::new();
    for &e in &w.persisted {
        used.extend(run.graph.edges_into(e).into_iter().map(|(_, r)| r));
    }
    used.extend(p.floors.iter().filter(|f| f.op <= w.at).map(|f| f.rule));
    for (e, eff) in p.effects.iter().enumerate() {
        if eff.op <= w.at + 1 && !w.persisted.contains(&e) && !floor[e] {
            used.push(eff.rule);
        }
    }
    used.sort_by_key(|r| r.id);
    used.dedup_by_key(|r| r.id);
    let _ = writeln!(t, "\nRules of {} behind this state:", run.model);
    let mut rules = Vec::new();
    for r in used {
        let _ = writeln!(
            t,
            "  {} ({}): {}\n      source: {}",
            r.id, r.basis, r.summary, r.source
        );
        rules.push(json!({ "id": r.id, "summary": r.summary, "source": r.source, "basis": r.basis.to_string() }));
    }
    rules
}

/// The options `--model` takes, per file system (and for every model).
pub(crate) const MODEL_OPTIONS: &[(&str, &str)] = &[
    ("ext4", "data=ordered|writeback|journal, delalloc|nodelalloc, auto_da_alloc|noauto_da_alloc, fast_commit|nofast_commit"),
    ("xfs, btrfs, posix, seq", "none of their own"),
    ("posix, ext4, xfs, btrfs (not seq, which keeps every op whole)", "atomic=sector|block (the unit of atomic writes), garbage (a unit caught mid-write)"),
];

pub(crate) fn models_text(all: &[ModelSpec]) -> String {
    let mut s = String::new();
    let defaults = ModelSpec::all();
    for m in all {
        let tag = if defaults.contains(m) {
            " (default)"
        } else {
            ""
        };
        let _ = writeln!(s, "{m}{tag}");
        for r in m.rules() {
            let _ = writeln!(
                s,
                "  {} ({}; not yet observed by realfs)\n      {}\n      source: {}",
                r.id, r.basis, r.summary, r.source
            );
        }
        s.push('\n');
    }
    let _ = writeln!(s, "Options (`--model FS:OPT,OPT`):");
    for (fs, opts) in MODEL_OPTIONS {
        let _ = writeln!(s, "  {fs}: {opts}");
    }
    let _ = writeln!(
        s,
        "Sizes are shown in the largest exact unit: {}.",
        size_str(8 << 20)
    );
    let _ = writeln!(
        s,
        "Every rule with its source, and the notes the sources cite: docs/SEMANTICS.md in the unplug repository."
    );
    s
}

/// The background notes rule sources cite (`docs/SEMANTICS.md E5`), kept by hand.
const NOTES: &str = include_str!("../docs/notes/semantics.md");

/// docs/SEMANTICS.md: every rule, grouped by the model that declares it, with its basis, summary,
/// source, the configurations of `all` that use it and the programs that show it, then the
/// background notes.
pub(crate) fn semantics_md(
    all: &[ModelSpec],
    shown_by: &std::collections::BTreeMap<&'static str, std::collections::BTreeSet<String>>,
) -> String {
    use unplug_model::persist::{torn, FILE_SYSTEMS};
    use unplug_model::rules::SHARED;
    let mut s = String::new();
    s.push_str(SEMANTICS_HEADER);
    let is_shared = |id: &str| SHARED.iter().any(|r| r.id == id);
    let mut groups: Vec<(String, Vec<&'static unplug_model::Rule>)> = vec![(
        "Shared rules (several models use them)".to_string(),
        SHARED.iter().collect(),
    )];
    for fs in FILE_SYSTEMS {
        let own = fs
            .rules()
            .iter()
            .map(|u| u.rule)
            .filter(|r| !is_shared(r.id));
        groups.push((format!("`{}`", fs.name()), own.collect()));
    }
    groups.push((
        "Torn writes (`atomic=sector`, `garbage`: any file system model; not seq, which keeps every op whole)".to_string(),
        torn::RULES.iter().collect(),
    ));
    for (title, rules) in groups {
        let _ = writeln!(s, "## {title}\n");
        for r in rules {
            let users: Vec<String> = all
                .iter()
                .filter(|m| m.rules().iter().any(|x| x.id == r.id))
                .map(|m| format!("`{m}`"))
                .collect();
            let shows = match shown_by.get(r.id) {
                Some(files) => files
                    .iter()
                    .map(|f| format!("[`{f}`](../litmus/{f})"))
                    .collect::<Vec<_>>()
                    .join(", "),
                None => match unplug_model::persist::descriptive(r.id) {
                    Some(why) => format!("no program changes when it is switched off: {why}"),
                    None => "no program".to_string(),
                },
            };
            let _ = writeln!(
                s,
                "### `{}`\n\n*{}.* {}\n\n- **Source:** {}\n- **Used by:** {}\n- **Shown by:** {}\n",
                r.id,
                r.basis,
                r.summary,
                r.source,
                users.join(", "),
                shows
            );
        }
    }
    s.push_str(NOTES);
    s
}

const SEMANTICS_HEADER: &str = "# Persistence rules and their sources

Generated by `scripts/docs` (`unplug models --markdown litmus`) from the rules in the models' code
(`model/src/rules.rs` and each file system's module under `model/src/persist/`), followed by the
background notes kept in `docs/notes/semantics.md`. Do not edit it: change a rule in the code, or
the notes, and run `scripts/docs`.

Each rule has an id (what `unplug explain` and `unplug models` print), its basis (required by
POSIX, documented, implementation behaviour of the cited kernel code, or a model assumption), what
it says, and its source: the kernel file and function it was checked against and the background
note it rests on (`docs/SEMANTICS.md E5` is item E5 of the notes at the end of this file). *Used
by* lists the model configurations whose rule list holds it (`unplug models`); *shown by* lists the
litmus programs whose outcome (a crash point's count of distinct states, or a property's verdict)
changes when the rule is switched off under one of those configurations.

";
