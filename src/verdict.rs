//! Checking a program from Rust: [`Check`] (models and bounds), [`Report`] (every property under
//! every model) and [`Report::assert_holds`], which panics with each counterexample's crash-state
//! tree and the replay string that `unplug explain` takes back.

use crate::builder::Built;
use std::fmt::{self, Write};
use unplug_explorer::{Analysis, CrashState, Limits};
use unplug_model::{ModelSpec, OpNo, Program};

/// A check of one program under some models, ready to run.
///
/// ```
/// use unplug::{after, prop, Open, ProgramBuilder};
/// let built = ProgramBuilder::new()
///     .open("f", "a", Open::new().create())
///     .write("f", 4096, "D")
///     .fsync("f")
///     .property("P", after(3), prop::content("a", "D"))
///     .build()
///     .unwrap();
/// let report = unplug::Check::new(&built).models(&["ext4", "posix"]).unwrap().run();
/// // ext4 commits the create with the fsync; POSIX does not promise the directory entry.
/// assert_eq!(report.holds("ext4", "P"), Some(true));
/// assert_eq!(report.holds("posix", "P"), Some(false));
/// ```
pub struct Check<'a> {
    built: &'a Built,
    models: Vec<ModelSpec>,
    limits: Limits,
}

/// What a property came to under one model.
#[derive(Clone, Debug)]
pub enum Verdict {
    /// No crash state at any crash point where the property applies violates it.
    Holds,
    /// A crash state violates it: the first one found, at crash point `at`.
    Fails {
        at: usize,
        /// What crash point `at` means: `crash point 5 (after op 5 `rename tmp doc`, the last op)`.
        point: String,
        state: CrashState,
        /// The replay string of that state (`unplug explain PROG --model M --state REPLAY`).
        replay: String,
        /// How many distinct crash-state classes violate it, over all crash points.
        violating_classes: usize,
    },
    /// The state bound was hit at these crash points before a violation was found.
    NotProven { points: Vec<usize> },
}

/// One property under one model.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub model: ModelSpec,
    pub property: String,
    /// The property's text (`always (exists final implies final == D)`).
    pub text: String,
    pub verdict: Verdict,
}

/// Every property of a program under every model checked, in model order then property order.
#[derive(Clone, Debug)]
pub struct Report {
    pub outcomes: Vec<Outcome>,
    /// The program's `.up` text, printed with a failure so that it can be replayed.
    pub source: String,
}

impl<'a> Check<'a> {
    /// A check under the default models (posix, each file system's defaults, seq).
    pub fn new(built: &'a Built) -> Check<'a> {
        Check {
            built,
            models: ModelSpec::all(),
            limits: Limits::default(),
        }
    }

    /// The models to check under, as `--model` spells them (`ext4:data=writeback`, `xfs`).
    pub fn models(mut self, names: &[&str]) -> Result<Check<'a>, String> {
        self.models = names
            .iter()
            .map(|n| ModelSpec::parse(n))
            .collect::<Result<_, _>>()?;
        Ok(self)
    }

    /// At most `n` crash-state classes per crash point; past it the point is not proven. 0: no
    /// limit (as on the command line).
    pub fn max_states(mut self, n: usize) -> Check<'a> {
        self.limits.max_states = if n == 0 { usize::MAX } else { n };
        self
    }

    /// Explores the program under each model and checks every property.
    pub fn run(&self) -> Report {
        let mut analysis =
            Analysis::from_trace(self.built.program.clone(), self.built.trace.clone());
        analysis.limits = self.limits;
        let mut outcomes = Vec::new();
        for model in &self.models {
            let run = analysis.run(model);
            for (r, p) in run.check().into_iter().zip(&analysis.program.properties) {
                let verdict = match (&r.counterexample, r.holds) {
                    (_, true) => Verdict::Holds,
                    (Some(c), false) => Verdict::Fails {
                        at: c.at,
                        point: crash_point(&analysis.program, c.at),
                        state: c.state.state.clone(),
                        replay: unplug_explorer::replay::format(&run, &c.state.witness),
                        violating_classes: r.violating_classes,
                    },
                    (None, false) => Verdict::NotProven {
                        points: r.unproven.clone(),
                    },
                };
                outcomes.push(Outcome {
                    model: model.clone(),
                    property: r.property,
                    text: p.text.clone(),
                    verdict,
                });
            }
        }
        Report {
            outcomes,
            source: self.built.source.clone(),
        }
    }
}

/// `op 7 `rename tmp final``, or `op 7` past the program's ops; with the call site of a traced
/// op: `op 7 `fsync h2` at sqlite3PagerSync+0x52 (libsqlite3.so.0)`.
pub fn op_str(program: &Program, k: usize) -> String {
    match OpNo::try_new(k).and_then(|k| program.get_op(k)) {
        Some(op) => match op.site_short() {
            Some(site) => format!("op {k} `{}` at {site}", op.text),
            None => format!("op {k} `{}`", op.text),
        },
        None => format!("op {k}"),
    }
}

/// What crash point `k` means for this program: `crash point 3 (after op 3 `fsync f`; op 4
/// `rename tmp final` may have started)`.
pub fn crash_point(program: &Program, k: usize) -> String {
    let n = program.ops.len();
    if n == 0 {
        return format!("crash point {k} (the program has no ops: the state after setup)");
    }
    let done = match k {
        0 => "before op 1".to_string(),
        _ => format!("after {}", op_str(program, k)),
    };
    if k < n {
        format!(
            "crash point {k} ({done}; {} may have started)",
            op_str(program, k + 1)
        )
    } else {
        format!("crash point {k} ({done}, the last op)")
    }
}

impl Report {
    /// Whether `property` holds under `model` (`None`: no such property or model was checked;
    /// not proven counts as not holding).
    pub fn holds(&self, model: &str, property: &str) -> Option<bool> {
        let model = ModelSpec::parse(model).ok()?;
        self.outcomes
            .iter()
            .find(|o| o.model == model && o.property == property)
            .map(|o| matches!(o.verdict, Verdict::Holds))
    }

    /// The outcomes where a property fails or is not proven.
    pub fn failures(&self) -> impl Iterator<Item = &Outcome> {
        self.outcomes
            .iter()
            .filter(|o| !matches!(o.verdict, Verdict::Holds))
    }

    /// Panics unless every property holds under every model checked. The message gives, for each
    /// failure, the crash point, the crash-state tree, the replay string, and the program's text.
    #[track_caller]
    pub fn assert_holds(&self) {
        if self.failures().next().is_some() {
            panic!("{self}");
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (m, p, t) = (&self.model, &self.property, &self.text);
        match &self.verdict {
            Verdict::Holds => writeln!(f, "{m}: {p} holds   ({t})"),
            Verdict::NotProven { points } => writeln!(
                f,
                "{m}: {p} NOT PROVEN: the state bound was hit at crash points {points:?}"
            ),
            Verdict::Fails {
                point,
                state,
                replay,
                ..
            } => {
                writeln!(f, "{m}: {p} FAILS   ({t})")?;
                writeln!(f, "  counterexample at {point}:")?;
                let mut tree = String::new();
                for line in state.to_string().lines() {
                    let _ = writeln!(tree, "    {line}");
                }
                f.write_str(&tree)?;
                writeln!(
                    f,
                    "  replay: unplug explain PROG.up --model {m} --state '{replay}'"
                )
            }
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let failures: Vec<&Outcome> = self.failures().collect();
        if failures.is_empty() {
            return writeln!(f, "every property holds under every model checked");
        }
        writeln!(f, "{} property verdict(s) do not hold:", failures.len())?;
        for o in failures {
            write!(f, "{o}")?;
        }
        writeln!(f, "PROG.up, the program checked:")?;
        for line in self.source.lines() {
            writeln!(f, "  {line}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::builder::{always, prop, Open, ProgramBuilder, PropExt};

    /// A violation found at the state bound is a failure, not "not proven": with one class per
    /// crash point, the empty `a` of crash point 0 is the state found at the bound.
    #[test]
    fn a_violation_at_the_bound_fails() {
        let built = ProgramBuilder::new()
            .open("f", "a", Open::new().create())
            .write("f", 4096, "D")
            .property(
                "P",
                always(),
                prop::exists("a").implies(prop::content("a", "D")),
            )
            .build()
            .expect("a valid program");
        let report = super::Check::new(&built)
            .models(&["ext4"])
            .expect("a model")
            .max_states(1)
            .run();
        match &report.outcomes[0].verdict {
            super::Verdict::Fails { at, .. } => assert_eq!(*at, 0),
            v => panic!("want Fails at crash point 0, got {v:?}"),
        }
        // A property that holds is still only not proven under the bound.
        let built = ProgramBuilder::new()
            .open("f", "a", Open::new().create())
            .write("f", 4096, "D")
            .property(
                "Q",
                always(),
                prop::exists("a").or(prop::not(prop::exists("a"))),
            )
            .build()
            .expect("a valid program");
        let report = super::Check::new(&built)
            .models(&["ext4"])
            .expect("a model")
            .max_states(1)
            .run();
        assert!(
            matches!(report.outcomes[0].verdict, super::Verdict::NotProven { .. }),
            "{:?}",
            report.outcomes[0].verdict
        );
    }
}
