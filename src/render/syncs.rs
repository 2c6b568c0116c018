//! `unplug syncs` as text and JSON: the verdicts as written, each sync call under each model,
//! and per model what each sync is needed for, the alternatives, minimal sets, fdatasync and
//! repairs.

use super::{counterexample_json, explain_cmd, indent, op_str, point_str, ranges};
use comfy_table::Table;
use serde_json::{json, Value};
use std::fmt::Write;
use std::path::Path;
use unplug_explorer::syncs::{Need, NoRepair, SyncReport};
use unplug_explorer::Analysis;
use unplug_model::{ModelSpec, OpNo, When};

/// The weakest model (posix first, seq last) under which sync `k` is redundant for `prop` (and
/// the property holds), or `-` where it is needed everywhere.
fn weakest_redundant(reports: &[SyncReport], k: usize, prop: &str) -> String {
    let strength = |m: &str| match m.split(':').next() {
        Some("posix") => 0,
        Some("seq") => 2,
        _ => 1,
    };
    let mut redundant: Vec<&SyncReport> = reports
        .iter()
        .filter(|r| r.results.iter().any(|x| x.property == prop && x.holds))
        .filter(|r| {
            r.syncs
                .iter()
                .any(|e| e.op == k && e.verdicts[prop] == Need::Redundant)
        })
        .collect();
    redundant.sort_by_key(|r| strength(&r.model));
    match redundant.first() {
        None => "-".into(),
        Some(r) if strength(&r.model) == 0 => format!("{} (POSIX)", r.model),
        Some(r) => {
            let same: Vec<&str> = redundant
                .iter()
                .filter(|x| strength(&x.model) == strength(&r.model))
                .map(|x| x.model.as_str())
                .collect();
            same.join(", ")
        }
    }
}

fn verdict_cell(r: &SyncReport, k: usize, prop: &str) -> String {
    let held = r
        .results
        .iter()
        .find(|x| x.property == prop)
        .map(|x| x.holds)
        .unwrap_or(false);
    let e = r.syncs.iter().find(|x| x.op == k).expect("sync listed");
    let alt = r.alternatives.get(prop).filter(|al| al.ops.contains(&k));
    match (e.verdicts[prop], alt) {
        (Need::Needed, _) => "NEEDED".to_string(),
        (Need::Redundant, Some(al)) => {
            let mut ops = al.ops.clone();
            ops.sort_unstable();
            format!(
                "one of {}",
                ops.iter()
                    .map(|o| format!("op {o}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
        (Need::Redundant, None) if !held => "redundant (fails anyway)".to_string(),
        (Need::Redundant, None) => "redundant".to_string(),
    }
}

fn sets_str(sets: &[Vec<usize>]) -> String {
    if sets.is_empty() {
        return "none".into();
    }
    sets.iter()
        .map(|s| {
            if s.is_empty() {
                "{} (no sync at all)".to_string()
            } else {
                format!(
                    "{{{}}}",
                    s.iter()
                        .map(|x| x.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        })
        .collect::<Vec<_>>()
        .join(" or ")
}

pub(crate) fn syncs_text(a: &Analysis, path: &Path, reports: &[SyncReport]) -> String {
    let mut s = String::new();
    let props: Vec<&str> = a
        .program
        .properties
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    let sync_ops: Vec<usize> = reports
        .first()
        .map(|r| r.syncs.iter().map(|x| x.op).collect())
        .unwrap_or_default();
    // Counted in the program: with no properties, the reports list none.
    let calls = a
        .program
        .op_nos()
        .filter(|&k| a.program.op(k).kind.is_sync())
        .count();
    let _ = writeln!(
        s,
        "{}: {} ops, {} sync call{}, {}; models {}\n",
        path.display(),
        a.program.ops.len(),
        calls,
        if calls == 1 { "" } else { "s" },
        if props.is_empty() {
            "no properties".to_string()
        } else {
            format!("properties {}", props.join(", "))
        },
        reports
            .iter()
            .map(|r| r.model.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    for p in &a.program.properties {
        let _ = writeln!(s, "  property {}: {}", p.name, p.text);
    }
    if props.is_empty() {
        // Every table would be empty: say why instead.
        let _ = writeln!(
            s,
            "The program has no properties: no sync can be needed for anything (add a `property` line)."
        );
        return s;
    }
    let _ = writeln!(s, "\nAs written:");
    let _ = writeln!(s, "{}", as_written_table(reports, &props));

    if sync_ops.is_empty() {
        let _ = writeln!(
            s,
            "\nThe program has no sync calls: none to keep, drop or weaken; a failing property's repairs (added fsyncs) follow."
        );
    } else {
        let _ = writeln!(
            s,
            "\nEach sync call (NEEDED: the property breaks without it; weakest: the weakest model under which it is still redundant):"
        );
        let _ = writeln!(s, "{}", sync_calls_table(a, reports, &props, &sync_ops));
    }

    for r in reports {
        let m = ModelSpec::parse(&r.model).expect("model name round-trips");
        let _ = writeln!(s, "\n== {} ==", r.model);
        needed_text(&mut s, a, path, &m, r);
        minimal_sets_text(&mut s, r);
        fdatasync_text(&mut s, a, path, &m, r);
        repairs_text(&mut s, a, r);
    }
    s.push_str("\nIn short:\n");
    for r in reports {
        let _ = writeln!(s, "  {}: {}", r.model, summary(r));
    }
    s
}

/// Each model's verdict on each property, as written.
fn as_written_table(reports: &[SyncReport], props: &[&str]) -> Table {
    let mut t = crate::out::table();
    let mut h = vec!["model".to_string()];
    h.extend(props.iter().map(|p| p.to_string()));
    t.set_header(h);
    for r in reports {
        let mut row = vec![r.model.clone()];
        for x in &r.results {
            row.push(if x.holds {
                "holds".into()
            } else if x.violating_classes == 0 {
                format!("not proven (bound exceeded at {})", ranges(&x.unproven))
            } else {
                "FAILS".into()
            });
        }
        t.add_row(row);
    }
    t
}

/// Per sync call and property: the verdict under each model, and the weakest model under
/// which the call is redundant.
fn sync_calls_table(
    a: &Analysis,
    reports: &[SyncReport],
    props: &[&str],
    sync_ops: &[usize],
) -> Table {
    let mut t = crate::out::table();
    // A traced program's syncs are named by their call sites too.
    let sites = sync_ops
        .iter()
        .any(|&k| a.program.op(OpNo::new(k)).site.is_some());
    let mut h = vec!["op".to_string(), "call".to_string()];
    if sites {
        h.push("site".to_string());
    }
    h.push("property".to_string());
    h.extend(reports.iter().map(|r| r.model.clone()));
    h.push("weakest".to_string());
    t.set_header(h);
    for &k in sync_ops {
        for p in props {
            let op = a.program.op(OpNo::new(k));
            let mut row = vec![k.to_string(), op.text.clone()];
            if sites {
                row.push(op.site_short().unwrap_or("").to_string());
            }
            row.push(p.to_string());
            row.extend(reports.iter().map(|r| verdict_cell(r, k, p)));
            row.push(weakest_redundant(reports, k, p));
            t.add_row(row);
        }
    }
    t
}

/// Under one model: each sync a property needs, with the state that shows it, and the sets of
/// syncs of which any one is enough.
fn needed_text(s: &mut String, a: &Analysis, path: &Path, m: &ModelSpec, r: &SyncReport) {
    for e in &r.syncs {
        for (p, c) in &e.counterexamples {
            let _ = writeln!(
                s,
                "{} is NEEDED for {p}: without it, at {}:",
                op_str(a, e.op),
                point_str(a, c.at)
            );
            s.push_str(&indent(&c.state.to_string(), "    "));
            let _ = writeln!(s, "  replay: {}", explain_cmd(path, m, &c.replay));
        }
    }
    for (p, al) in &r.alternatives {
        let ops: Vec<String> = al.ops.iter().map(|&o| op_str(a, o)).collect();
        let _ = writeln!(
            s,
            "For {p}, any one of {} is enough, but not none of them:",
            ops.join(", ")
        );
        if let Some(c) = &al.counterexample {
            let _ = writeln!(s, "  without all of them, at {}:", point_str(a, c.at));
            s.push_str(&indent(&c.state.to_string(), "    "));
            let _ = writeln!(s, "  replay: {}", explain_cmd(path, m, &c.replay));
        }
    }
}

/// Under one model: the minimal sets of syncs that keep each property, or why they were not
/// computed.
fn minimal_sets_text(s: &mut String, r: &SyncReport) {
    if r.minimal_sets_computed {
        for (p, sets) in &r.minimal_sets {
            let what = if p == "*" {
                "every property that holds".to_string()
            } else {
                format!("property {p}")
            };
            let _ = writeln!(
                s,
                "Minimal sets of syncs that keep {what}: {}",
                sets_str(sets)
            );
        }
    } else {
        let _ = writeln!(
            s,
            "Minimal sets not computed: more than {} sync calls.",
            unplug_explorer::syncs::MAX_SUBSET_SYNCS
        );
    }
}

/// Under one model: which fsyncs can be fdatasync, and the state that shows it for those that
/// cannot.
fn fdatasync_text(s: &mut String, a: &Analysis, path: &Path, m: &ModelSpec, r: &SyncReport) {
    for e in &r.syncs {
        match (e.fdatasync_suffices, &e.fdatasync_counterexample) {
            (Some(true), _) => {
                let _ = writeln!(
                    s,
                    "{} can be fdatasync: every result stays the same.",
                    op_str(a, e.op)
                );
            }
            (Some(false), Some(c)) => {
                let _ = writeln!(
                    s,
                    "{} must stay fsync: with fdatasync, at {}:",
                    op_str(a, e.op),
                    point_str(a, c.at)
                );
                s.push_str(&indent(&c.state.to_string(), "    "));
                let _ = writeln!(s, "  replay: {}", explain_cmd(path, m, &c.replay));
            }
            _ => {}
        }
    }
}

/// Under one model: for each failing property, the added fsyncs that repair it.
fn repairs_text(s: &mut String, a: &Analysis, r: &SyncReport) {
    for (p, reps) in &r.repairs {
        if reps.is_empty() {
            let _ = writeln!(s, "{}", no_repair_text(a, p, r.no_repair.get(p)));
            continue;
        }
        let _ = writeln!(s, "{p} FAILS as written. It holds with:");
        for rep in reps {
            let after = if rep.after == 0 {
                "setup".to_string()
            } else {
                op_str(a, rep.after)
            };
            let _ = writeln!(s, "  after {after}: {}:", fsync_str(&rep.fsync));
            s.push_str(&indent(&rep.code, "      "));
        }
    }
}

/// Why a failing property has no repair: its `after` pins a crash point before any added sync
/// could run, it fails with everything before it durable, or it needs more than two fsyncs.
fn no_repair_text(a: &Analysis, p: &str, why: Option<&NoRepair>) -> String {
    let when = a
        .program
        .properties
        .iter()
        .find(|x| x.name == p)
        .map(|x| match &x.when {
            When::Always => "`always`".to_string(),
            When::After { written, .. } => format!("`after {written}`"),
        })
        .unwrap_or_default();
    match why {
        Some(NoRepair::Pinned { at }) => format!(
            "{p} FAILS, and no added fsync can repair it: {when} makes it hold at {}, and it fails there even with a sync after every op. It asks for {} to be durable the moment it returns, but an added sync runs only after that; hold the property after a later op (after a sync) instead.",
            point_str(a, *at),
            op_str(a, *at)
        ),
        Some(NoRepair::NotDurability { at }) => format!(
            "{p} FAILS, and no added fsync can repair it: it fails at {} even with everything before it synced, so it is not about durability (the program has not done what it asks for there, durable or not).",
            point_str(a, *at)
        ),
        Some(NoRepair::MoreSyncs) | None => format!(
            "{p} FAILS, and neither one nor two added fsyncs (of files or directories, after any op) repair it."
        ),
    }
}

/// `an fsync of the directory `.`` or `fsyncs of the directory `d` and the directory `.``.
fn fsync_str(targets: &[unplug_explorer::syncs::Target]) -> String {
    let each: Vec<String> = targets
        .iter()
        .map(|t| format!("the {} `{}`", t.kind, t.path))
        .collect();
    if each.len() == 1 {
        format!("an fsync of {}", each[0])
    } else {
        format!("fsyncs of {}", each.join(" and "))
    }
}

/// One sentence per model: what each property needs.
fn summary(r: &SyncReport) -> String {
    let ops = |v: &[usize]| v.iter().map(|o| format!("op {o}")).collect::<Vec<_>>();
    let mut parts = Vec::new();
    for res in &r.results {
        let p = &res.property;
        if !res.holds {
            match r.repairs.get(p).and_then(|v| v.first()) {
                Some(rep) => parts.push(format!(
                    "{p} fails as written; {} after {} repairs it",
                    fsync_str(&rep.fsync),
                    if rep.after == 0 {
                        "setup".to_string()
                    } else {
                        format!("op {}", rep.after)
                    }
                )),
                None => parts.push(match r.no_repair.get(p) {
                    Some(NoRepair::Pinned { at }) => format!(
                        "{p} fails, and no added fsync repairs it (its first crash point, {at}, comes before any added sync could run)"
                    ),
                    Some(NoRepair::NotDurability { at }) => format!(
                        "{p} fails, and no added fsync repairs it (it fails at crash point {at} with everything before it synced)"
                    ),
                    _ => format!("{p} fails, and no one or two added fsyncs repair it"),
                }),
            }
            continue;
        }
        let needed: Vec<usize> = r
            .syncs
            .iter()
            .filter(|e| e.verdicts[p] == Need::Needed)
            .map(|e| e.op)
            .collect();
        let mut needs = Vec::new();
        if !needed.is_empty() {
            needs.push(ops(&needed).join(" and "));
        }
        if let Some(al) = r.alternatives.get(p) {
            needs.push(format!("one of {}", ops(&al.ops).join(", ")));
        }
        if needs.is_empty() {
            parts.push(format!("{p} holds with no sync at all"));
        } else {
            parts.push(format!("{p} needs {}", needs.join(" and ")));
        }
    }
    let redundant: Vec<usize> = r
        .syncs
        .iter()
        .filter(|e| e.verdicts.values().all(|v| *v == Need::Redundant))
        .filter(|e| !r.alternatives.values().any(|al| al.ops.contains(&e.op)))
        .map(|e| e.op)
        .collect();
    let cheaper: Vec<usize> = r
        .syncs
        .iter()
        .filter(|e| e.fdatasync_suffices == Some(true) && !redundant.contains(&e.op))
        .map(|e| e.op)
        .collect();
    let mut out = parts.join("; ");
    if !redundant.is_empty() {
        out.push_str(&format!("; {} can go", ops(&redundant).join(", ")));
    }
    if !cheaper.is_empty() {
        out.push_str(&format!("; {} can be fdatasync", ops(&cheaper).join(", ")));
    }
    out.push('.');
    out
}

pub(crate) fn syncs_json(a: &Analysis, path: &Path, reports: &[SyncReport]) -> Value {
    let models: Vec<Value> = reports
        .iter()
        .map(|r| {
            json!({
                "model": r.model,
                "results": r.results.iter().map(|x| json!({
                    "property": x.property, "holds": x.holds, "verdict": crate::input::verdict(x), "violating_classes": x.violating_classes,
                    "unproven_crash_points": x.unproven,
                })).collect::<Vec<_>>(),
                "syncs": r.syncs.iter().map(|e| json!({
                    "op": e.op,
                    "call": e.call,
                    "site": a.program.op(OpNo::new(e.op)).site,
                    "verdicts": e.verdicts,
                    "counterexamples": e.counterexamples.iter().map(|(p, c)| (p.clone(), counterexample_json(a, c))).collect::<serde_json::Map<_, _>>(),
                    "fdatasync_suffices": e.fdatasync_suffices,
                    "fdatasync_counterexample": e.fdatasync_counterexample.as_ref().map(|c| counterexample_json(a, c)),
                })).collect::<Vec<_>>(),
                "minimal_sets": if r.minimal_sets_computed { json!(r.minimal_sets) } else { Value::Null },
                "alternatives": r.alternatives.iter().map(|(p, al)| (p.clone(), json!({
                    "ops": al.ops,
                    "counterexample": al.counterexample.as_ref().map(|c| counterexample_json(a, c)),
                }))).collect::<serde_json::Map<_, _>>(),
                "repairs": r.repairs.iter().map(|(p, reps)| (p.clone(), json!(reps.iter().map(|x| json!({
                    "after_op": x.after,
                    "fsync": x.fsync.iter().map(|t| json!({ "kind": t.kind, "path": t.path })).collect::<Vec<_>>(),
                    "code": x.code,
                })).collect::<Vec<_>>()))).collect::<serde_json::Map<_, _>>(),
                "no_repair": r.no_repair,
            })
        })
        .collect();
    json!({ "program": path.display().to_string(), "models": models })
}
