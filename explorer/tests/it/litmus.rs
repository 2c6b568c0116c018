//! The litmus corpus: every `litmus/*.up` program, checked against the verdicts its header
//! promises, and its crash states snapshotted.
//!
//! A program's header says what each model must answer:
//!
//! ```text
//! # expect posix: A=holds B=fails
//! # expect ext4: A=holds B=holds
//! # expect ext4:noauto_da_alloc: A=fails B=holds
//! ```
//!
//! Every program has a `posix` and an `ext4` line, and every line names every property. Each
//! program runs under every model of `ModelSpec::configurations()` and every model an expect line
//! names.
//! The golden text (`tests/snapshots/litmus__NAME.snap`) lists, per model and crash point, the
//! number of distinct concrete states, the number of classes and every class with its count.
//! Update goldens with `INSTA_UPDATE=always cargo test -p unplug-explorer --test litmus` and
//! review the diff.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use unplug_explorer::{Analysis, ModelRun};
use unplug_model::ModelSpec;

/// The corpus must not shrink below this.
const MIN_PROGRAMS: usize = 15;

#[test]
fn corpus_is_big_enough() {
    let n = programs().len();
    assert!(
        n >= MIN_PROGRAMS,
        "litmus corpus has {n} programs, want at least {MIN_PROGRAMS}"
    );
}

#[test]
fn verdicts_match_expectations() {
    let failures: Vec<String> = programs().iter().flat_map(|p| check(p)).collect();
    assert!(
        failures.is_empty(),
        "{} litmus failure(s):\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

#[test]
fn crash_states_match_goldens() {
    for path in programs() {
        let program = load(&path);
        let text = golden(&program);
        insta::assert_snapshot!(stem(&path), text);
    }
}

/// Every class's witness, printed as a replay string and read back, rebuilds the class's state
/// (what `unplug explain` does with the strings `check` and `syncs` print): witnesses stay
/// downsets of the graph with choices the crash point allows, folding included.
#[test]
fn every_witness_replays_to_its_state() {
    for path in programs() {
        let l = load(&path);
        for m in ModelSpec::configurations() {
            let run = l.analysis.run(&m);
            for point in &run.exploration.points {
                for entry in &point.states {
                    let text = unplug_explorer::replay::format(&run, &entry.witness);
                    let w = unplug_explorer::replay::parse(&run, &text)
                        .unwrap_or_else(|e| panic!("{} {m} `{text}`: {e}", l.name));
                    let state = unplug_explorer::replay::state_of(&run, &w)
                        .unwrap_or_else(|e| panic!("{} {m} `{text}`: {e}", l.name));
                    assert_eq!(state, entry.state, "{} {m} `{text}`", l.name);
                }
            }
        }
    }
}

/// The first and last lines of the table in litmus/README.md that [`readme_table`] writes.
const README_BEGIN: &str = "<!-- BEGIN generated from each program's `# litmus` and `# expect` lines by explorer/tests/it/litmus.rs; do not edit: run scripts/docs -->";
const README_END: &str = "<!-- END generated -->";

/// litmus/README.md's table of programs is the corpus's own `# expect` lines, so that the two
/// cannot disagree. With `UNPLUG_WRITE_LITMUS_README=1` (what `scripts/docs` sets) the test
/// writes the table instead of comparing it.
#[test]
fn readme_table_is_current() {
    let path = corpus_dir().join("README.md");
    let readme =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let (before, rest) = readme
        .split_once(README_BEGIN)
        .unwrap_or_else(|| panic!("litmus/README.md: no line `{README_BEGIN}`"));
    let (_, after) = rest
        .split_once(README_END)
        .unwrap_or_else(|| panic!("litmus/README.md: no line `{README_END}`"));
    let want = format!(
        "{before}{README_BEGIN}\n{}{README_END}{after}",
        readme_table()
    );
    if std::env::var_os("UNPLUG_WRITE_LITMUS_README").is_some() {
        std::fs::write(&path, &want).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        return;
    }
    if let Some((old, new)) = readme.lines().zip(want.lines()).find(|(a, b)| a != b) {
        panic!(
            "litmus/README.md is not current (run scripts/docs):\n  it has: {old}\n  want:   {new}"
        );
    }
    assert_eq!(
        readme, want,
        "litmus/README.md is not current (run scripts/docs)"
    );
}

/// The table of programs: the question (`# litmus:`), each property's expected answer under
/// posix and ext4, and every other model an expect line names, in the order of the lines.
fn readme_table() -> String {
    let verdicts = |e: &Expect| {
        e.verdicts
            .iter()
            .map(|(p, holds)| format!("{p} {}", if *holds { "holds" } else { "FAILS" }))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut t = String::from(
        "| program | question | posix | ext4 | other models |\n|---|---|---|---|---|\n",
    );
    for path in programs() {
        let name = stem(&path);
        let source = std::fs::read_to_string(&path).expect("readable program");
        let question = source
            .lines()
            .find_map(|l| l.strip_prefix("# litmus: "))
            .unwrap_or("")
            .replace('|', "\\|");
        let expects = expectations(&source).unwrap_or_else(|e| panic!("litmus/{name}.up: {e}"));
        let cell = |model: &str| {
            let m = ModelSpec::parse(model).expect("a known model");
            expects
                .iter()
                .find(|e| e.model == m)
                .map(verdicts)
                .unwrap_or_default()
        };
        let others: Vec<String> = expects
            .iter()
            .filter(|e| !["posix", "ext4"].contains(&e.model.to_string().as_str()))
            .map(|e| format!("`{}`: {}", e.written, verdicts(e)))
            .collect();
        let _ = writeln!(
            t,
            "| [{name}]({name}.up) | {question} | {} | {} | {} |",
            cell("posix"),
            cell("ext4"),
            others.join("; ")
        );
    }
    t
}

// ---------------------------------------------------------------------------------------------
// The corpus

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../litmus")
}

/// Every `*.up` file of the corpus, sorted by name.
fn programs() -> Vec<PathBuf> {
    let dir = corpus_dir();
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut v: Vec<PathBuf> = entries
        .map(|e| e.expect("readable directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "up"))
        .collect();
    v.sort();
    v
}

fn stem(path: &Path) -> String {
    path.file_stem()
        .expect("a file name")
        .to_string_lossy()
        .into_owned()
}

/// A program of the corpus: its name, source and analysis.
struct Litmus {
    /// `litmus/NAME.up`, for messages.
    name: String,
    source: String,
    analysis: Analysis,
}

fn load(path: &Path) -> Litmus {
    let name = format!("litmus/{}.up", stem(path));
    let source = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{name}: {e}"));
    let program = unplug_model::parse::parse(&source)
        .unwrap_or_else(|d| panic!("{name}: does not parse: {d:?}"));
    let analysis =
        Analysis::new(&program).unwrap_or_else(|d| panic!("{name}: does not execute: {d:?}"));
    Litmus {
        name,
        source,
        analysis,
    }
}

/// Every configuration of `ModelSpec::configurations()`, then every other model the
/// expectations name.
fn models(expects: &[Expect]) -> Vec<ModelSpec> {
    let mut v = ModelSpec::configurations();
    for e in expects {
        if !v.contains(&e.model) {
            v.push(e.model.clone());
        }
    }
    v
}

// ---------------------------------------------------------------------------------------------
// Expectations

/// One `# expect MODEL: NAME=holds|fails ...` line.
struct Expect {
    written: String,
    model: ModelSpec,
    verdicts: Vec<(String, bool)>,
}

/// Parses the `# expect` lines of a header.
fn expectations(source: &str) -> Result<Vec<Expect>, String> {
    let mut out: Vec<Expect> = Vec::new();
    for line in source.lines() {
        let Some(rest) = line.strip_prefix("# expect ") else {
            continue;
        };
        let (written, verdicts) = rest
            .split_once(": ")
            .ok_or_else(|| format!("`{line}`: want `# expect MODEL: NAME=holds|fails ...`"))?;
        let model = ModelSpec::parse(written).map_err(|e| format!("`{line}`: {e}"))?;
        if out.iter().any(|e| e.model == model) {
            return Err(format!("`{line}`: a second expect line for model {model}"));
        }
        let verdicts = verdicts
            .split_whitespace()
            .map(|v| match v.split_once('=') {
                Some((p, "holds")) => Ok((p.to_string(), true)),
                Some((p, "fails")) => Ok((p.to_string(), false)),
                _ => Err(format!("`{line}`: `{v}` is not NAME=holds or NAME=fails")),
            })
            .collect::<Result<_, _>>()?;
        out.push(Expect {
            written: written.to_string(),
            model,
            verdicts,
        });
    }
    Ok(out)
}

/// Checks one program against its header; returns one message per mismatch.
fn check(path: &Path) -> Vec<String> {
    let l = load(path);
    let expects = match expectations(&l.source) {
        Ok(e) => e,
        Err(e) => return vec![format!("{}: {e}", l.name)],
    };
    let mut errors = header_errors(&l, &expects);
    for e in &expects {
        let run = l.analysis.run(&e.model);
        errors.extend(verdict_errors(&l.name, e, &run));
    }
    errors
}

/// The header's shape: posix and ext4 lines, and every property on every line, once.
fn header_errors(l: &Litmus, expects: &[Expect]) -> Vec<String> {
    let mut errors = Vec::new();
    for required in ["posix", "ext4"] {
        let m = ModelSpec::parse(required).expect("a known model");
        if !expects.iter().any(|e| e.model == m) {
            errors.push(format!("{}: no `# expect {required}:` line", l.name));
        }
    }
    for key in ["# litmus: ", "# why: "] {
        if !l.source.lines().any(|line| line.starts_with(key)) {
            errors.push(format!("{}: no `{}` line", l.name, key.trim_end()));
        }
    }
    errors.extend(
        unknown_rules(&l.source)
            .map(|id| format!("{}: `# why:` cites unknown rule `{id}`", l.name)),
    );
    let props: Vec<&str> = l
        .analysis
        .program
        .properties
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    for e in expects {
        let named: Vec<&str> = e.verdicts.iter().map(|(p, _)| p.as_str()).collect();
        let mut sorted = named.clone();
        sorted.sort();
        let mut want = props.clone();
        want.sort();
        if sorted != want {
            errors.push(format!(
                "{}: `# expect {}:` names properties {named:?}, the program has {props:?}",
                l.name, e.written
            ));
        }
    }
    errors
}

/// Rule ids cited in `# why:` lines (the dotted ones: `posix.*`, `ext4.*`, `xfs.*`,
/// `btrfs.*`) that do not exist.
fn unknown_rules(source: &str) -> impl Iterator<Item = String> + '_ {
    source
        .lines()
        .filter_map(|line| line.strip_prefix("# why: "))
        .flat_map(|why| why.split(|c: char| c.is_whitespace() || ",;()".contains(c)))
        .filter(|w| {
            ["posix.", "ext4.", "xfs.", "btrfs."]
                .iter()
                .any(|p| w.starts_with(p))
        })
        .filter(|id| unplug_model::persist::rule(id).is_none())
        .map(str::to_string)
}

/// The verdicts of one model against one expect line.
fn verdict_errors(name: &str, e: &Expect, run: &ModelRun<'_>) -> Vec<String> {
    let results = run.check();
    let mut errors = Vec::new();
    for (prop, want) in &e.verdicts {
        let Some(r) = results.iter().find(|r| &r.property == prop) else {
            continue; // reported by header_errors
        };
        if r.holds == *want {
            continue;
        }
        let mut msg = format!(
            "{name}: model {}: property {prop}: expected {}, got {}",
            e.model,
            verdict(*want),
            verdict(r.holds)
        );
        if let Some(v) = &r.counterexample {
            let _ = write!(
                msg,
                "\n  counterexample at crash point {}:\n    {}",
                v.at,
                indent(&v.state.state.to_string())
            );
        }
        if !r.unproven.is_empty() {
            let _ = write!(
                msg,
                "\n  unproven at crash points {:?} (a bound was hit)",
                r.unproven
            );
        }
        errors.push(msg);
    }
    errors
}

fn verdict(holds: bool) -> &'static str {
    if holds {
        "holds"
    } else {
        "fails"
    }
}

fn indent(text: &str) -> String {
    text.replace('\n', "\n    ")
}

// ---------------------------------------------------------------------------------------------
// Goldens

/// The golden text of one program: per model, its verdicts, and per crash point the total of
/// distinct concrete states, the number of classes and each class (count, then state).
fn golden(l: &Litmus) -> String {
    let expects = expectations(&l.source).unwrap_or_default();
    let mut out = String::new();
    for model in models(&expects) {
        let run = l.analysis.run(&model);
        let _ = writeln!(out, "== {model} ==");
        let verdicts: Vec<String> = run
            .check()
            .iter()
            .map(|r| format!("{}={}", r.property, verdict(r.holds)))
            .collect();
        let _ = writeln!(out, "verdicts: {}", verdicts.join(" "));
        for point in &run.exploration.points {
            out.push_str(&point_text(point));
        }
    }
    out
}

fn point_text(point: &unplug_explorer::Point) -> String {
    let mut states: Vec<(String, String)> = point
        .states
        .iter()
        .map(|s| {
            (
                s.state.to_string().replace('\n', " ; "),
                s.count.to_string(),
            )
        })
        .collect();
    states.sort();
    let bound = if point.bound_hit { " (bound hit)" } else { "" };
    let mut out = format!(
        "at {}: total {}, {} classes{bound}\n",
        point.at,
        point.total,
        point.states.len()
    );
    for (state, count) in states {
        let _ = writeln!(out, "  {count}  {state}");
    }
    out
}
