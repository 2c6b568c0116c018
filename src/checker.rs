//! `--checker CMD`: the application's own checker judges crash states. Each state the
//! `checker` predicate is asked about is written as a real directory tree (`checker/tree.rs`),
//! the command runs on it, and exit status 0 means the state is acceptable.
//!
//! What the command gets: `{dir}` in its text replaced by the directory (shell-quoted), and in
//! its environment `UNPLUG_DIR` (the same), `UNPLUG_CRASH_POINT` (k: ops 1..k had returned),
//! `UNPLUG_OPS` (the program's op count), `UNPLUG_LAST_OP` (op k's text, empty at 0) and
//! `UNPLUG_STDOUT` (a file holding what the application had printed by then: its `stdout`
//! lines before op k+1, as ALICE used to require that acknowledged work survives). It runs with
//! `sh -c`, in its own process group, killed at the timeout (a hang is reported as such, and
//! fails the state).
//!
//! Verdicts are cached by the tree and the printed output (a checker must decide from those:
//! the crash point and the last op are for its messages), so a tree that many crash points or
//! sync variants share runs once. Past the budget of runs, a state is accepted without a run
//! and the judgment is unsure: the crash point is then not proven, never "holds".

pub(crate) mod tree;

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use unplug_explorer::state::Judge;
use unplug_explorer::CrashState;
use unplug_model::Program;
use unplug_realfs::DataBytes;

/// The options of every command that can run a checker.
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct CheckerOpts {
    /// The application's checker: a shell command run on each crash state written as a real
    /// directory tree (`{dir}` in the command, and $UNPLUG_DIR); exit 0 = the state is
    /// acceptable. It also gets $UNPLUG_CRASH_POINT, $UNPLUG_LAST_OP and $UNPLUG_STDOUT (a file
    /// with what the application printed before the crash). A program without a `checker`
    /// property gets `property checker: always checker`.
    #[arg(long, value_name = "CMD")]
    pub(crate) checker: Option<String>,
    /// Seconds a checker run may take; past it, it is killed and the state fails ("timed out").
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub(crate) checker_timeout: u64,
    /// Most checker runs (distinct trees); past it, states are accepted unchecked and the
    /// verdicts that rest on them are not proven. 0: no limit.
    #[arg(long, value_name = "N", default_value_t = 2000, value_parser = crate::input::limit)]
    pub(crate) checker_budget: usize,
    /// A path the checker reads (repeat for several; default: the whole tree). The tree it is
    /// given then holds only these paths, and states that differ only elsewhere are one state:
    /// far fewer runs. Same as the property `always checker {PATH, ...}`.
    #[arg(long = "checker-reads", value_name = "PATH", value_parser = parse_path)]
    pub(crate) checker_reads: Vec<unplug_model::Path>,
}

fn parse_path(s: &str) -> Result<unplug_model::Path, String> {
    unplug_model::parse::parse_path(s).map_err(|why| format!("`{s}` is not a program path: {why}"))
}

/// One checker run.
#[derive(Clone, Debug)]
pub(crate) struct Run {
    pub(crate) ok: bool,
    pub(crate) timed_out: bool,
    /// The exit status (None when killed).
    pub(crate) code: Option<i32>,
    /// The start of what it printed (stdout, then stderr).
    pub(crate) output: String,
    pub(crate) seconds: f64,
}

impl Run {
    /// `accepted`, `exit 1`, `timed out after 60 s`, `killed by signal 9`.
    pub(crate) fn verdict(&self, timeout: u64) -> String {
        match (self.ok, self.timed_out, self.code) {
            (true, ..) => "accepted".into(),
            (false, true, _) => format!("timed out after {timeout} s"),
            (false, false, Some(c)) => format!("exit {c}"),
            (false, false, None) => "killed by a signal".into(),
        }
    }
}

/// A cached run, filled by the first thread that asks (the others wait for it).
type Slot = Arc<OnceLock<Run>>;

/// The CLI's [`Judge`]: materializes states and runs the checker, with a cache and a budget.
pub(crate) struct AppChecker {
    cmd: String,
    timeout: Duration,
    budget: usize,
    data: DataBytes,
    /// Per crash point: what the application had printed (the key of the cache with the tree).
    printed: Vec<Arc<[u8]>>,
    last_op: Vec<String>,
    ops: usize,
    tmp: tempfile::TempDir,
    cache: Mutex<HashMap<(u64, u64), Slot>>,
    runs: AtomicUsize,
    unsure: AtomicUsize,
    /// States judged on some of their concrete states only.
    sampled: AtomicUsize,
    unchecked: AtomicUsize,
    next: AtomicUsize,
}

impl AppChecker {
    pub(crate) fn new(
        opts: &CheckerOpts,
        cmd: &str,
        program: &Program,
        data: DataBytes,
    ) -> Result<Self, String> {
        let tmp = tempfile::Builder::new()
            .prefix("unplug-checker-")
            .tempdir()
            .map_err(|e| format!("--checker: cannot make a temporary directory: {e}"))?;
        let n = program.ops.len();
        let printed: Vec<Arc<[u8]>> = (0..=n).map(|k| program.output_before(k).into()).collect();
        Ok(AppChecker {
            cmd: cmd.to_string(),
            timeout: Duration::from_secs(opts.checker_timeout.max(1)),
            budget: opts.checker_budget,
            data,
            printed,
            last_op: std::iter::once(String::new())
                .chain(program.ops.iter().map(|o| {
                    if o.text.is_empty() {
                        unplug_model::print::op(&o.kind)
                    } else {
                        o.text.clone()
                    }
                }))
                .collect(),
            ops: n,
            tmp,
            cache: Mutex::new(HashMap::new()),
            runs: AtomicUsize::new(0),
            unsure: AtomicUsize::new(0),
            sampled: AtomicUsize::new(0),
            unchecked: AtomicUsize::new(0),
            next: AtomicUsize::new(0),
        })
    }

    /// Checker runs made so far.
    pub(crate) fn runs(&self) -> usize {
        self.runs.load(Ordering::Relaxed)
    }

    /// States accepted without a run (past the budget) and states judged on representatives.
    pub(crate) fn gaps(&self) -> (usize, usize) {
        (
            self.unchecked.load(Ordering::Relaxed),
            self.sampled.load(Ordering::Relaxed),
        )
    }

    pub(crate) fn timeout_secs(&self) -> u64 {
        self.timeout.as_secs()
    }

    /// The first failing run among the members of `state` at crash point `at` (running the
    /// checker where no verdict is cached), or None if every member checked is accepted.
    pub(crate) fn failure(&self, state: &CrashState, at: usize) -> Option<Run> {
        let (members, _) = tree::members(state);
        members
            .iter()
            .filter_map(|m| self.run_member(state, m, at))
            .find(|r| !r.ok)
    }

    fn printed_key(&self, at: usize) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.printed[at.min(self.ops)].hash(&mut h);
        h.finish()
    }

    /// The run of one member (cached), or None past the budget.
    fn run_member(&self, state: &CrashState, m: &tree::Member, at: usize) -> Option<Run> {
        let key = (tree::tree_hash(state, m), self.printed_key(at));
        let cell = {
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(c) = cache.get(&key) {
                Arc::clone(c)
            } else {
                if self.budget != 0 && cache.len() >= self.budget {
                    return None;
                }
                let c = Arc::new(OnceLock::new());
                cache.insert(key, Arc::clone(&c));
                c
            }
        };
        Some(cell.get_or_init(|| self.execute(state, m, at)).clone())
    }

    /// Writes the member into a fresh directory, runs the checker on it, removes the directory.
    fn execute(&self, state: &CrashState, m: &tree::Member, at: usize) -> Run {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let dir = self.tmp.path().join(format!("s{id}"));
        let stdout_file = self.tmp.path().join(format!("s{id}.stdout"));
        let failed = |why: String| Run {
            ok: false,
            timed_out: false,
            code: None,
            output: why,
            seconds: 0.0,
        };
        if let Err(e) = std::fs::create_dir(&dir)
            .and_then(|()| tree::write(state, m, &self.data, &dir))
            .and_then(|()| std::fs::write(&stdout_file, &self.printed[at.min(self.ops)]))
        {
            let _ = std::fs::remove_dir_all(&dir);
            return failed(format!("unplug could not write the crash state: {e}"));
        }
        let run = self.spawn(&dir, &stdout_file, at);
        self.runs.fetch_add(1, Ordering::Relaxed);
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_file(&stdout_file);
        run
    }

    fn spawn(&self, dir: &Path, stdout_file: &Path, at: usize) -> Run {
        let start = Instant::now();
        let quoted = shell_quote(&dir.display().to_string());
        let mut cmd = std::process::Command::new("sh");
        cmd.arg("-c")
            .arg(self.cmd.replace("{dir}", &quoted))
            .env("UNPLUG_DIR", dir)
            .env("UNPLUG_CRASH_POINT", at.to_string())
            .env("UNPLUG_OPS", self.ops.to_string())
            .env("UNPLUG_LAST_OP", &self.last_op[at.min(self.ops)])
            .env("UNPLUG_STDOUT", stdout_file)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        unplug_realfs::child::contain(&mut cmd);
        let child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                return Run {
                    ok: false,
                    timed_out: false,
                    code: None,
                    output: format!("cannot run sh: {e}"),
                    seconds: 0.0,
                }
            }
        };
        let mut guard = unplug_realfs::child::Guard::new(child);
        // The output is read on threads, so that a checker that prints much does not block.
        let readers: Vec<_> = {
            let c = guard.child().expect("a running child");
            let out = c.stdout.take();
            let err = c.stderr.take();
            [
                out.map(|o| Box::new(o) as Box<dyn Read + Send>),
                err.map(|e| Box::new(e) as Box<dyn Read + Send>),
            ]
            .into_iter()
            .flatten()
            .map(|mut r| {
                std::thread::spawn(move || {
                    let mut kept = Vec::new();
                    let mut buf = [0u8; 8192];
                    while let Ok(n) = r.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        if kept.len() < 4096 {
                            kept.extend_from_slice(&buf[..n.min(4096 - kept.len())]);
                        }
                    }
                    kept
                })
            })
            .collect()
        };
        let mut timed_out = false;
        let status = loop {
            match guard.try_wait() {
                Ok(Some(s)) => break Some(s),
                Ok(None) => {}
                Err(_) => break None,
            }
            if start.elapsed() > self.timeout || unplug_explorer::budget::interrupted() {
                timed_out = !unplug_explorer::budget::interrupted();
                guard.kill();
                break None;
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        let mut output = Vec::new();
        for r in readers {
            output.extend(r.join().unwrap_or_default());
        }
        let code = status.and_then(|s| s.code());
        Run {
            ok: code == Some(0),
            timed_out,
            code,
            output: String::from_utf8_lossy(&output).into_owned(),
            seconds: start.elapsed().as_secs_f64(),
        }
    }
}

impl AppChecker {
    /// Judges every distinct state of `run` once, several at a time (the checker runs are
    /// processes: they overlap), so that the enumeration that follows finds them cached.
    pub(crate) fn prefetch(&self, run: &unplug_explorer::ModelRun) {
        use rayon::prelude::*;
        let n = run.trace.ops.len();
        let props = &run.analysis.program.properties;
        let reads = unplug_explorer::cone::Reads::of_all(props.iter().map(|p| &p.expr));
        for p in run.points_reading(0..=n, reads.as_ref()) {
            if unplug_explorer::budget::interrupted() {
                return;
            }
            let k = run.trace.program_point(p.at);
            p.states.par_iter().for_each(|s| {
                let (members, _) = tree::members(&s.state);
                for m in &members {
                    if self.run_member(&s.state, m, k).is_none() {
                        return;
                    }
                }
            });
        }
    }

    /// Each state's verdict, `accepted` or why not (the states judged several at a time).
    pub(crate) fn verdicts(
        &self,
        states: &[unplug_explorer::StateEntry],
        at: usize,
    ) -> Vec<String> {
        use rayon::prelude::*;
        states
            .par_iter()
            .map(|s| {
                let (members, exhaustive) = tree::members(&s.state);
                let mut out = "accepted".to_string();
                for m in &members {
                    match self.run_member(&s.state, m, at) {
                        None => {
                            self.unchecked.fetch_add(1, Ordering::Relaxed);
                            return "unchecked (budget)".to_string();
                        }
                        Some(r) if !r.ok => return r.verdict(self.timeout_secs()),
                        Some(_) => {}
                    }
                }
                if !exhaustive {
                    self.sampled.fetch_add(1, Ordering::Relaxed);
                    out = format!("accepted ({} of its states)", members.len());
                }
                out
            })
            .collect()
    }

    /// The lines under a failing property: the checker's verdict and output on the
    /// counterexample, and how to look at the state.
    pub(crate) fn failure_text(
        &self,
        run: &Run,
        program: &Path,
        model: &unplug_model::ModelSpec,
        replay: &str,
    ) -> String {
        let mut s = format!(
            "    the checker on that state: {}\n",
            run.verdict(self.timeout_secs())
        );
        for l in run.output.lines().take(6) {
            s.push_str(&format!("      | {l}\n"));
        }
        s.push_str(&format!(
            "    look at it: unplug materialize {} -m {model} --state {replay} --into DIR\n",
            shell_quote(&program.display().to_string())
        ));
        s
    }

    pub(crate) fn run_json(&self, run: &Run) -> serde_json::Value {
        serde_json::json!({
            "verdict": run.verdict(self.timeout_secs()),
            "exit_code": run.code,
            "timed_out": run.timed_out,
            "output": run.output,
            "seconds": run.seconds,
        })
    }

    /// `checker: 42 runs (distinct trees); 3 states accepted unchecked past --checker-budget ...`
    pub(crate) fn summary_text(&self) -> String {
        let (unchecked, sampled) = self.gaps();
        let mut s = format!(
            "checker `{}`: {} run{} (one per distinct tree and printed output)",
            self.cmd,
            self.runs(),
            if self.runs() == 1 { "" } else { "s" }
        );
        if unchecked > 0 {
            s.push_str(&format!(
                "; {unchecked} states accepted unchecked past --checker-budget {} (not proven)",
                self.budget
            ));
        }
        if sampled > 0 {
            s.push_str(&format!(
                "; {sampled} states judged on {} representatives of their torn blocks, not on all \
                 (not proven)",
                "a few"
            ));
        }
        s
    }

    pub(crate) fn summary_json(&self) -> serde_json::Value {
        let (unchecked, sampled) = self.gaps();
        serde_json::json!({
            "command": self.cmd,
            "runs": self.runs(),
            "unchecked_past_budget": unchecked,
            "judged_on_representatives": sampled,
            "budget": self.budget,
            "timeout_seconds": self.timeout_secs(),
        })
    }
}

impl Judge for AppChecker {
    fn accepts(&self, state: &CrashState, at: usize) -> bool {
        let (members, exhaustive) = tree::members(state);
        for m in &members {
            match self.run_member(state, m, at) {
                Some(r) if !r.ok => return false,
                Some(_) => {}
                None => {
                    self.unchecked.fetch_add(1, Ordering::Relaxed);
                    self.unsure.fetch_add(1, Ordering::Relaxed);
                    return true;
                }
            }
        }
        if !exhaustive {
            self.sampled.fetch_add(1, Ordering::Relaxed);
            self.unsure.fetch_add(1, Ordering::Relaxed);
        }
        true
    }

    fn unsure(&self) -> usize {
        self.unsure.load(Ordering::Relaxed)
    }
}

/// `s` as one shell word.
pub(crate) fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+=:,@".contains(&b))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}
