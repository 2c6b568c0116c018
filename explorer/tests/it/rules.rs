//! The rule lists are true: each configuration's list is exactly what its builder uses, and every
//! rule matters.
//!
//! `rule_lists_match_the_builders`: for each model configuration, every litmus program is built
//! and the rules on its effects (the rule that made each, and those it carries), edges and floors
//! are collected; that set must equal the
//! configuration's [`ModelSpec::rules`] list, apart from the rules of [`NOT_CARRIED`], which say
//! why they are in a list although no builder puts them on anything.
//!
//! `every_rule_changes_some_litmus_outcome`: for each configuration and each of its rules, the
//! corpus is explored with the rule switched off (`Analysis::set_dropped_rule`: its edges and floors are
//! not made, and the code it gates behaves as if it did not hold); some program must then get a
//! different distinct-state count at some crash point or a different property verdict. A rule
//! that no litmus program exercises fails the test: it would be a rule nobody checks. Rules that
//! describe the absence of an ordering, or why two configurations behave alike, have nothing to
//! switch off; each says why and what shows it instead (`persist::descriptive`), and the test
//! requires that switching it off indeed changes nothing, so the label stays true.

use std::collections::BTreeSet;
use unplug_explorer::{guarantee, Analysis};
use unplug_model::persist::{self, seq};
use unplug_model::{ModelSpec, Program};

fn corpus() -> Vec<(String, Program)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../litmus");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("litmus/ exists")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "up"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let src = std::fs::read_to_string(&p).expect("readable");
            let prog = unplug_model::parse::parse(&src)
                .unwrap_or_else(|e| panic!("{}: {e:?}", p.display()));
            (p.file_name().unwrap().to_string_lossy().into_owned(), prog)
        })
        .collect()
}

/// The ids of the rules `model`'s builder puts on the effects, edges and floors of `prog`, built
/// as the explorer builds it.
fn carried(prog: &Program, model: &ModelSpec) -> BTreeSet<&'static str> {
    let trace = unplug_model::execute(prog).expect("litmus programs run");
    let p = unplug_model::persist::build(model, &trace, model.layout(&trace));
    let effects = p
        .effects
        .iter()
        .flat_map(|e| std::iter::once(e.rule).chain(e.carries.iter().copied()))
        .map(|r| r.id);
    let edges = p.edges.iter().map(|e| e.rule.id);
    let floors = p.floors.iter().map(|f| f.rule.id);
    effects.chain(edges).chain(floors).collect()
}

#[test]
fn rule_lists_match_the_builders() {
    let corpus = corpus();
    let mut failures = Vec::new();
    for m in &ModelSpec::configurations() {
        let listed: BTreeSet<&str> = m.rules().iter().map(|r| r.id).collect();
        let mut used = BTreeSet::new();
        for (_, prog) in &corpus {
            used.extend(carried(prog, m));
        }
        for id in used.difference(&listed) {
            failures.push(format!("{m}: the builder uses {id}, which its list lacks"));
        }
        for id in listed.difference(&used) {
            if persist::descriptive(id).is_none() {
                failures.push(format!(
                    "{m}: {id} is listed but on no effect, edge or floor of the litmus corpus \
                     (use it, drop it, or declare it descriptive with why)"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Every rule a configuration lists is declared by its file system (or the torn wrapper), and
/// every declared rule is listed by some configuration.
#[test]
fn declared_rules_are_used_by_some_configuration() {
    let listed: BTreeSet<&str> = ModelSpec::configurations()
        .iter()
        .flat_map(|m| m.rules().into_iter().map(|r| r.id))
        .collect();
    let declared: BTreeSet<&str> = persist::all_rules().into_iter().map(|r| r.id).collect();
    assert_eq!(listed, declared);
    assert!(seq::RULES.iter().all(|r| declared.contains(r.id)));
}

/// Everything a rule can change, per program: per crash point counts, and property verdicts.
fn outcomes(corpus: &[(String, Program)], model: &ModelSpec, drop: Option<&str>) -> Vec<String> {
    let mut out = Vec::new();
    for (name, prog) in corpus {
        let mut a = Analysis::new(prog).expect("litmus programs run");
        a.set_dropped_rule(drop);
        out.push(format!("{name}: {}", guarantee::outcome(&a, model)));
    }
    out
}

#[test]
fn every_rule_changes_some_litmus_outcome() {
    let corpus = corpus();
    let mut failures = Vec::new();
    for m in &ModelSpec::configurations() {
        let base = outcomes(&corpus, m, None);
        for r in m.rules() {
            let mutated = outcomes(&corpus, m, Some(r.id));
            match (persist::descriptive(r.id), mutated == base) {
                (None, true) => failures.push(format!(
                    "{m}: switching rule {} off changes no litmus outcome",
                    r.id
                )),
                (Some(_), false) => failures.push(format!(
                    "{m}: rule {} is declared descriptive, but switching it off changes a \
                     litmus outcome",
                    r.id
                )),
                _ => {}
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Every rule's source cites something inside this repository (not the research sheet outside
/// it): a file that exists, and for `docs/SEMANTICS.md`, items of its background notes
/// (`docs/notes/semantics.md`) that exist: `P7`, `E10.4` (item E10), `B1r`, `section 6`.
#[test]
fn rule_sources_point_inside_the_repository() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let notes = std::fs::read_to_string(root.join("docs/notes/semantics.md")).expect("notes");
    let item_exists = |id: &str| {
        let base = id.split('.').next().unwrap_or(id);
        notes.lines().any(|l| l.starts_with(&format!("{base}. ")))
    };
    let mut failures = Vec::new();
    for r in persist::all_rules() {
        let src = r.source;
        if src
            .replace("docs/SEMANTICS.md", "")
            .contains("SEMANTICS.md")
        {
            failures.push(format!("{}: cites SEMANTICS.md outside docs/", r.id));
        }
        let paths: Vec<&str> = src
            .split(|c: char| c.is_whitespace() || ";,()".contains(c))
            .filter(|w| w.ends_with(".md") || w.ends_with(".rs"))
            .collect();
        if paths.is_empty() {
            failures.push(format!(
                "{}: its source cites no file of the repository",
                r.id
            ));
        }
        for p in &paths {
            if !root.join(p).exists() && *p != "docs/SEMANTICS.md" {
                failures.push(format!("{}: cites {p}, which the repository lacks", r.id));
            }
        }
        for part in src.split("docs/SEMANTICS.md").skip(1) {
            let cited = part.split(';').next().unwrap_or("");
            let mut words = cited
                .split(|c: char| c.is_whitespace() || ",()".contains(c))
                .filter(|w| !w.is_empty())
                .peekable();
            while let Some(w) = words.next() {
                if w == "section" {
                    let n = words.next().unwrap_or("");
                    if !notes.contains(&format!("\n### {n}. ")) {
                        failures.push(format!(
                            "{}: cites notes section {n}, which is missing",
                            r.id
                        ));
                    }
                    continue;
                }
                let is_item = w.len() >= 2
                    && "PMEXB".contains(&w[..1])
                    && w[1..]
                        .chars()
                        .all(|c| c.is_ascii_digit() || c == '.' || c == 'r');
                if is_item && !item_exists(w) {
                    failures.push(format!("{}: cites notes item {w}, which is missing", r.id));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
