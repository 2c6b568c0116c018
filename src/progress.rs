//! A progress bar on stderr for long work (`check`, `syncs`, `search`, `table`): it appears
//! only after a second (short runs print nothing), only when stderr is a terminal, and never
//! with `--json`. It counts the command's steps (models, programs) and shows the crash points
//! and program variants the explorer has gone through ([`unplug_explorer::budget`]).

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub(crate) struct Progress {
    bar: ProgressBar,
    done: Arc<AtomicBool>,
}

impl Progress {
    /// A bar of `len` steps of `unit` (e.g. "models"); hidden when `json` or not on a terminal.
    pub(crate) fn new(len: usize, unit: &'static str, json: bool) -> Self {
        let bar = ProgressBar::with_draw_target(Some(len as u64), ProgressDrawTarget::hidden());
        let points = |_: &ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = write!(w, "{}", unplug_explorer::budget::points_explored());
        };
        let runs = |_: &ProgressState, w: &mut dyn std::fmt::Write| {
            let n = crate::checker::runs_so_far();
            if n > 0 {
                let _ = write!(w, ", {n} checker runs");
            }
        };
        bar.set_style(
            ProgressStyle::with_template(&format!(
                "{{spinner}} {{msg}} [{{bar:20}}] {{pos}}/{{len}} {unit}, {{points}} crash points explored{{runs}} ({{elapsed}})"
            ))
            .expect("valid template")
            .with_key("points", points)
            .with_key("runs", runs)
            .progress_chars("=> "),
        );
        let done = Arc::new(AtomicBool::new(false));
        if !json && std::io::stderr().is_terminal() {
            let (bar, done) = (bar.clone(), Arc::clone(&done));
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_secs(1));
                if !done.load(Ordering::Relaxed) {
                    bar.set_draw_target(ProgressDrawTarget::stderr());
                    bar.enable_steady_tick(Duration::from_millis(120));
                }
            });
        }
        Progress { bar, done }
    }

    /// Starts step `what` (shown as the message).
    pub(crate) fn step(&self, what: String) {
        self.bar.set_message(what);
    }

    /// One step done.
    pub(crate) fn inc(&self) {
        self.bar.inc(1);
    }

    /// Removes the bar (before the command prints its report).
    pub(crate) fn finish(&self) {
        self.done.store(true, Ordering::Relaxed);
        self.bar.finish_and_clear();
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}
