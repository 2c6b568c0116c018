//! Looking at a job's crash images (recovered by the kernel, read back, matched against the
//! predicted classes) and counting what they showed, per program.

use super::{
    io_err, sanitize, CheckError, CheckOptions, Program, ProgramReport, PropertySeen, RemoveOnDrop,
    Unsound,
};
use crate::child::interrupt;
use crate::crash::{Base, CrashImage};
use crate::readback::read_tree;
use crate::record::Recording;
use crate::session::{job_dir, salt, Job};
use crate::{observe, pattern};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use unplug_explorer::{Analysis, CrashState};

/// What one image showed.
pub(super) enum Seen {
    /// The state, and the predicted classes (by index into the program's class list) that
    /// contain it at a crash point of the image's window.
    State(CrashState, Vec<usize>),
    /// The image could not be mounted or read.
    Error(String),
}

/// What one program showed so far: its report, its distinct observed states, and the
/// predicted classes some image showed.
pub(super) struct Tally {
    pub(super) report: ProgramReport,
    observed: BTreeSet<CrashState>,
    hit: BTreeSet<usize>,
}

impl Tally {
    pub(super) fn new(name: &str, a: &Analysis) -> Tally {
        Tally {
            report: ProgramReport {
                program: name.to_string(),
                properties: a
                    .program
                    .properties
                    .iter()
                    .map(|p| PropertySeen {
                        property: p.name.clone(),
                        ..PropertySeen::default()
                    })
                    .collect(),
                ..ProgramReport::default()
            },
            observed: BTreeSet::new(),
            hit: BTreeSet::new(),
        }
    }

    /// Counts what image `img` showed; why it is unsound (the state, or the error), if it is.
    pub(super) fn record(
        &mut self,
        prog: &Program,
        img: &CrashImage,
        seen: Seen,
    ) -> Option<String> {
        self.report.images_checked += 1;
        if let Seen::State(state, _) = &seen {
            self.properties(prog, img, state);
        }
        let why = match seen {
            Seen::State(state, classes) if !classes.is_empty() => {
                self.hit.extend(classes);
                self.observed.insert(state);
                return None;
            }
            Seen::State(state, _) => {
                let text = state.to_string();
                self.observed.insert(state);
                text
            }
            Seen::Error(e) => e,
        };
        self.report.unsound += 1;
        Some(why)
    }

    /// Evaluates each property that applies at the image's earliest crash point on its state.
    fn properties(&mut self, prog: &Program, img: &CrashImage, state: &CrashState) {
        let cx = unplug_explorer::state::EvalContext {
            old: &prog.run.analysis.old,
            new: &prog.run.analysis.new,
            data_len: &prog.run.trace.data_len,
            judge: None,
            at: img.lo,
        };
        for (p, seen_p) in prog
            .run
            .analysis
            .program
            .properties
            .iter()
            .zip(&mut self.report.properties)
        {
            if img.lo >= prog.run.threshold(&p.when) {
                seen_p.images += 1;
                if !unplug_explorer::state::eval(&p.expr, state, &cx) {
                    seen_p.violated += 1;
                    seen_p.example.get_or_insert_with(|| state.to_string());
                }
            }
        }
    }

    /// The program's report, with its totals and the model's bounds.
    pub(super) fn finish(mut self, prog: &Program) -> ProgramReport {
        let r = &mut self.report;
        r.observed_states = self.observed.len();
        r.predicted_classes = prog.classes.len();
        r.predicted_observed = self.hit.len();
        let unproven = prog.run.exploration.unproven();
        if !unproven.is_empty() {
            r.model_bound_hit = true;
            r.problems.push(format!(
                "the model hit a bound at crash points {unproven:?}: states there are incomplete"
            ));
        }
        self.report
    }
}

/// Looking at the crash images of one job (from many threads at once).
pub(super) struct Look<'a> {
    pub(super) rec: &'a Recording,
    pub(super) opts: &'a CheckOptions,
    pub(super) j: usize,
    pub(super) job: &'a Job,
    pub(super) base: &'a Base,
    /// The job's data names, salted as on its disk.
    pub(super) salted: &'a [&'a str],
    pub(super) prog: &'a Program<'a>,
    /// The unsound images kept: (index in the plan, path).
    pub(super) kept: Mutex<Vec<(usize, PathBuf)>>,
}

impl Look<'_> {
    /// Builds image `k`, lets the kernel recover it, reads the job's tree back and finds the
    /// predicted classes that contain it; an unsound image is built again and kept.
    pub(super) fn image(&self, k: usize, img: &CrashImage) -> Result<Seen, CheckError> {
        if interrupt::interrupted() {
            return Err(CheckError::Interrupted);
        }
        let (rec, j) = (self.rec, self.j);
        let path = self.opts.scratch.join(format!("job{j}-img{k}.img"));
        let _cleanup = RemoveOnDrop(path.clone());
        self.base
            .write_image(&rec.log, img, &path)
            .map_err(io_err("building a crash image"))?;
        let root = job_dir(Path::new(""), j).join("root");
        let read =
            crate::recover::with_mounted(&path, rec.fs.fs.name(), &rec.fs.mount_data(), |dir| {
                read_tree(&dir.join(&root), self.salted)
            });
        let seen = match read {
            Err(e) => Seen::Error(format!("recovery failed: {e}")),
            Ok(Err(e)) => Seen::Error(format!("reading the tree back: {e}")),
            Ok(Ok(mut tree)) => {
                unsalt(&mut tree, j);
                match observe::to_crash_state(&tree) {
                    Err(e) => Seen::Error(e.to_string()),
                    Ok(state) => {
                        let classes = self.containing(img, &state);
                        Seen::State(state, classes)
                    }
                }
            }
        };
        let unsound = match &seen {
            Seen::State(_, c) => c.is_empty(),
            Seen::Error(_) => true,
        };
        if unsound {
            self.keep(k, img)?;
        }
        Ok(seen)
    }

    /// The predicted classes at a crash point of the image's window that contain `state`.
    fn containing(&self, img: &CrashImage, state: &CrashState) -> Vec<usize> {
        self.prog
            .classes
            .iter()
            .enumerate()
            .filter(|(_, (c, at))| at.range(img.lo..=img.hi).next().is_some() && c.contains(state))
            .map(|(i, _)| i)
            .collect()
    }

    /// Keeps image `k` (built again: the recovery changed the one looked at).
    fn keep(&self, k: usize, img: &CrashImage) -> Result<(), CheckError> {
        let (opts, rec, j) = (self.opts, self.rec, self.j);
        std::fs::create_dir_all(&opts.keep)
            .map_err(io_err("creating the directory for kept images"))?;
        let keep = opts.keep.join(format!(
            "{}-{}-job{j}-img{k}.img",
            rec.fs.fs.name(),
            sanitize(&self.job.name)
        ));
        self.base
            .write_image(&rec.log, img, &keep)
            .map_err(io_err("keeping an unsound image"))?;
        self.kept
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((k, keep));
        Ok(())
    }

    /// The unsound entry of image `img`, which showed `why`.
    pub(super) fn unsound(&self, img: &CrashImage, why: String, image: Option<PathBuf>) -> Unsound {
        let (rec, j) = (self.rec, self.j);
        let reproduce = image.as_ref().map_or_else(String::new, |p| {
            let data = rec.fs.mount_data();
            format!(
                "mkdir -p /tmp/unplug-look && mount -t {} -o loop{}{} {} /tmp/unplug-look && find /tmp/unplug-look/job{j}/root -ls; umount /tmp/unplug-look",
                rec.fs.fs.name(),
                if data.is_empty() { "" } else { "," },
                data,
                p.display()
            )
        });
        Unsound {
            program: self.job.name.clone(),
            schedule: self.job.schedule.name(),
            crash_points: (img.lo, img.hi),
            writes: img.writes.len(),
            kind: format!("{:?}", img.kind),
            observed: why,
            image,
            reproduce,
        }
    }
}

/// Data names of the tree read back: a job's salted names back to the program's.
fn unsalt(tree: &mut crate::ObservedTree, j: usize) {
    let suffix = salt("", j);
    for e in &mut tree.entries {
        for x in &mut e.extents {
            if let pattern::Origin::Data { name, .. } = &mut x.origin {
                if let Some(n) = name.strip_suffix(&suffix) {
                    *name = n.to_string();
                }
            }
        }
    }
}
