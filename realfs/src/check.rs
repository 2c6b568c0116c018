//! Holding the model to what the disk shows: crash images from a [`Recording`], recovered by the
//! kernel, read back, and checked against the model's crash states.
//!
//! For each job, the log is cut at its marks: the job's window runs from its `Op(0)` mark to the
//! first flush after its `End` mark (the `syncfs` that ends the job: background writeback of the
//! last crash point, forced). Everything before the window is on the job's base image. The
//! [`crate::crash::plan`] picks crash images in the window, each with the crash points it may
//! stand for (`lo..=hi`); each image is built in a scratch directory (tmpfs), mounted (the
//! kernel's recovery), and the program's tree read back and mapped to the model's state type.
//!
//! An observed state is *sound* when some predicted state class at a crash point in `lo..=hi`
//! contains it ([`unplug_explorer::state::CrashState::contains`]). Anything else is *unsound*:
//! a model bug, or a kernel bug; the image is kept with a command to look at it. An image the
//! kernel cannot mount is unsound too (the model predicts a state for every crash).
//!
//! Tightness: the fraction of the predicted classes (over all crash points of a program) that
//! some image showed.
//!
//! `window.rs` cuts the log into the jobs' windows and rolls the base image forward; `look.rs`
//! looks at one job's images and tallies what each program showed; this file predicts, drives
//! the jobs in order and writes the report.

use crate::child::interrupt;
use crate::crash::{self, CrashImage, PlanOptions};
use crate::record::{BackendKind, Recording};
use crate::session::{salt, Job};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;
use unplug_explorer::{Analysis, CrashState, Limits, ModelRun};
use unplug_model::ModelSpec;

pub mod app;
mod look;
mod window;

use look::{Look, Seen, Tally};
use window::{events, windows, Rolling};

/// How to check.
#[derive(Clone, Debug)]
pub struct CheckOptions {
    pub plan: PlanOptions,
    /// Images recovered at once.
    pub threads: usize,
    /// Where images are built (tmpfs is best): one file per thread at a time.
    pub scratch: PathBuf,
    /// Where the images of unsound states are kept.
    pub keep: PathBuf,
    pub limits: Limits,
}

/// One observed state the model did not predict.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Unsound {
    pub program: String,
    pub schedule: String,
    /// The crash points the image may stand for.
    pub crash_points: (usize, usize),
    /// The log entries on the image past the job's base.
    pub writes: usize,
    pub kind: String,
    /// Why: the observed state (one line per path), or the error the image gave.
    pub observed: String,
    /// The image, kept.
    pub image: Option<PathBuf>,
    /// A command that shows the state again.
    pub reproduce: String,
}

/// What one program showed on one file system.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ProgramReport {
    pub program: String,
    pub jobs: usize,
    pub images_checked: usize,
    pub observed_states: usize,
    pub unsound: usize,
    pub predicted_classes: usize,
    pub predicted_observed: usize,
    /// Jobs whose real run failed (the op and error), and crash points the model left
    /// unexplored (a bound hit).
    pub problems: Vec<String>,
    /// The model hit a bound (`--max-states`) at some crash point: its predicted states there
    /// are incomplete, so the run proves less (`unplug real` exits 3 when nothing is unsound).
    pub model_bound_hit: bool,
    /// Each property of the program, evaluated on every observed state that it applies to.
    pub properties: Vec<PropertySeen>,
}

/// What the disk showed about one property.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct PropertySeen {
    pub property: String,
    /// Images whose state the property applies to (the crash was surely at or after the
    /// property's first crash point).
    pub images: usize,
    /// Of those, images whose state violates it.
    pub violated: usize,
    /// The first violating state seen, one path per line.
    pub example: Option<String>,
}

/// The report of one recording (one file system, options and backend).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunReport {
    pub fs: String,
    pub mount_opts: String,
    pub model: String,
    pub kernel: String,
    pub backend: BackendKind,
    pub programs: Vec<ProgramReport>,
    pub jobs: usize,
    pub images_checked: usize,
    /// Distinct (program, state) pairs observed.
    pub observed_states: usize,
    pub unsound: usize,
    pub unsound_states: Vec<Unsound>,
    /// Predicted classes some image showed / all predicted classes, over the programs.
    pub predicted_observed_fraction: f64,
    pub record_seconds: f64,
    pub check_seconds: f64,
    pub images_per_second: f64,
}

impl RunReport {
    /// Adds the report of another session of the same configuration over other programs (a
    /// long job list is recorded in several sessions, so that each job's base image stays
    /// small).
    pub fn merge(&mut self, o: RunReport) {
        self.jobs += o.jobs;
        self.images_checked += o.images_checked;
        self.observed_states += o.observed_states;
        self.unsound += o.unsound;
        self.unsound_states.extend(o.unsound_states);
        self.programs.extend(o.programs);
        self.record_seconds += o.record_seconds;
        self.check_seconds += o.check_seconds;
        self.images_per_second = self.images_checked as f64 / self.check_seconds.max(1e-9);
        let predicted: usize = self.programs.iter().map(|p| p.predicted_classes).sum();
        let hit: usize = self.programs.iter().map(|p| p.predicted_observed).sum();
        self.predicted_observed_fraction = if predicted == 0 {
            0.0
        } else {
            hit as f64 / predicted as f64
        };
    }
}

/// Why checking stopped.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("the model rejects {0} (run `unplug check` on it)")]
    Invalid(String),
    #[error("the log has no marks of job {0}: the recording is incomplete")]
    NoMarks(usize),
    #[error("interrupted")]
    Interrupted,
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> CheckError {
    let what = what.into();
    move |source| CheckError::Io { what, source }
}

/// One program of the recording, with what the model predicts for it.
struct Program<'a> {
    run: ModelRun<'a>,
    /// Every distinct predicted class over all crash points, and the points each is at.
    classes: Vec<(CrashState, BTreeSet<usize>)>,
    data_names: Vec<String>,
}

impl<'a> Program<'a> {
    /// Explores the program under the recording's model and gathers its classes.
    fn predict(a: &'a Analysis, model: &ModelSpec) -> Self {
        let run = a.run(model);
        let mut classes: BTreeMap<CrashState, BTreeSet<usize>> = BTreeMap::new();
        for p in &run.exploration.points {
            for s in &p.states {
                classes.entry(s.state.clone()).or_default().insert(p.at);
            }
        }
        Program {
            classes: classes.into_iter().collect(),
            data_names: crate::data_names(&a.program),
            run,
        }
    }
}

/// A program's name and its analysis.
type Named<'j> = (&'j str, Analysis);

/// One analysis per distinct program (jobs share programs), in the order first met, with its
/// name; and the index into them of each job's program.
fn analyses<'j>(
    jobs: &'j [Job],
    opts: &CheckOptions,
) -> Result<(Vec<Named<'j>>, Vec<usize>), CheckError> {
    let mut analyses: Vec<Named> = Vec::new();
    let mut program_of: Vec<usize> = Vec::with_capacity(jobs.len());
    for job in jobs {
        if let Some(pi) = analyses.iter().position(|(n, _)| *n == job.name) {
            program_of.push(pi);
        } else {
            program_of.push(analyses.len());
            let (p, t) = unplug_model::load(&job.source)
                .map_err(|_| CheckError::Invalid(job.name.clone()))?;
            let mut a = Analysis::from_trace(p, t);
            a.limits = opts.limits;
            analyses.push((&job.name, a));
        }
    }
    Ok((analyses, program_of))
}

/// Checks every job of `rec` (the jobs it ran, in order): per job, its base image rolled
/// forward, its crash images looked at in parallel, then what they showed counted in order.
pub fn check(
    rec: &Recording,
    jobs: &[Job],
    opts: &CheckOptions,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<RunReport, CheckError> {
    let start = Instant::now();
    let model = rec
        .fs
        .model()
        .map_err(|e| CheckError::Invalid(e.to_string()))?;
    let (analyses, program_of) = analyses(jobs, opts)?;
    let programs: Vec<Program> = analyses
        .iter()
        .map(|(_, a)| Program::predict(a, &model))
        .collect();
    let windows = windows(rec, jobs.len())?;
    let mut rolling = Rolling::copy(rec, opts)?;
    let mut tallies: Vec<Tally> = analyses.iter().map(|(n, a)| Tally::new(n, a)).collect();
    let mut unsound = Vec::new();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.threads.max(1))
        .build()
        .map_err(|e| CheckError::Io {
            what: "starting threads".into(),
            source: io::Error::other(e),
        })?;
    let plans: Vec<Vec<CrashImage>> = (0..jobs.len())
        .map(|j| {
            let last = programs[program_of[j]].run.trace.ops.len();
            crash::plan(&rec.log, &events(rec, j, windows[j]), last, &opts.plan)
        })
        .collect();
    let total: usize = plans.iter().map(Vec::len).sum();
    let done = AtomicUsize::new(0);
    for (j, job) in jobs.iter().enumerate() {
        if interrupt::interrupted() {
            return Err(CheckError::Interrupted);
        }
        let pi = program_of[j];
        let prog = &programs[pi];
        let tally = &mut tallies[pi];
        tally.report.jobs += 1;
        if let Some(Err(e)) = rec.jobs.get(j).map(|o| &o.run) {
            tally.report.problems.push(format!(
                "schedule `{}`: the run failed: {e}",
                job.schedule.name()
            ));
        }
        let base = rolling.base_at(rec, windows[j].0)?;
        let salted: Vec<String> = prog.data_names.iter().map(|n| salt(n, j)).collect();
        let salted: Vec<&str> = salted.iter().map(String::as_str).collect();
        let plan = &plans[j];
        let look = Look {
            rec,
            opts,
            j,
            job,
            base: &base,
            salted: &salted,
            prog,
            kept: Mutex::new(Vec::new()),
        };
        let seen: Vec<Result<Seen, CheckError>> = pool.install(|| {
            plan.par_iter()
                .enumerate()
                .map(|(k, img)| {
                    let seen = look.image(k, img)?;
                    let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                    progress(n, total);
                    Ok(seen)
                })
                .collect()
        });
        let kept: HashMap<usize, PathBuf> =
            std::mem::take(&mut *look.kept.lock().unwrap_or_else(|e| e.into_inner()))
                .into_iter()
                .collect();
        for (k, seen) in seen.into_iter().enumerate() {
            if let Some(why) = tally.record(prog, &plan[k], seen?) {
                unsound.push(look.unsound(&plan[k], why, kept.get(&k).cloned()));
            }
        }
    }
    let reports: Vec<ProgramReport> = tallies
        .into_iter()
        .zip(&programs)
        .map(|(t, prog)| t.finish(prog))
        .collect();
    Ok(run_report(rec, &model, jobs.len(), reports, unsound, start))
}

/// The report of the recording, from its programs' reports.
fn run_report(
    rec: &Recording,
    model: &ModelSpec,
    jobs: usize,
    reports: Vec<ProgramReport>,
    unsound: Vec<Unsound>,
    start: Instant,
) -> RunReport {
    let predicted: usize = reports.iter().map(|r| r.predicted_classes).sum();
    let predicted_hit: usize = reports.iter().map(|r| r.predicted_observed).sum();
    let images: usize = reports.iter().map(|r| r.images_checked).sum();
    let check_seconds = start.elapsed().as_secs_f64();
    RunReport {
        fs: rec.fs.fs.name().to_string(),
        mount_opts: rec.fs.mount_opts.clone(),
        model: model.to_string(),
        kernel: rec.kernel.clone(),
        backend: rec.backend,
        jobs,
        images_checked: images,
        observed_states: reports.iter().map(|r| r.observed_states).sum(),
        unsound: unsound.len(),
        unsound_states: unsound,
        predicted_observed_fraction: if predicted == 0 {
            0.0
        } else {
            predicted_hit as f64 / predicted as f64
        },
        programs: reports,
        record_seconds: rec.elapsed.as_secs_f64(),
        check_seconds,
        images_per_second: images as f64 / check_seconds.max(1e-9),
    }
}

fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
