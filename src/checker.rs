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

pub(crate) mod classify;
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
    /// Most checker runs (distinct trees) per model. When a model's distinct states need more,
    /// a selection is checked: the sequential prefix states (every op up to a point persisted
    /// whole, in order), then ALICE's single-deviation states (one op, or one op's write, left
    /// out), then a sample seeded by --checker-seed; the others are accepted unchecked and the
    /// verdicts that rest on them are not proven. 0: no limit.
    #[arg(long, value_name = "N", default_value_t = 2000, value_parser = crate::input::limit)]
    pub(crate) checker_budget: usize,
    /// A path the checker reads (repeat for several; default: the whole tree); a directory
    /// stands for everything under it. The tree it is given then holds only these paths, and
    /// states that differ only elsewhere are one state: far fewer runs. Same as the property
    /// `always checker {PATH, ...}` with every path listed.
    #[arg(long = "checker-reads", value_name = "PATH", value_parser = parse_path)]
    pub(crate) checker_reads: Vec<unplug_model::Path>,
    /// The seed of the sample checked past the budget (after the prefix and single-deviation
    /// states).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub(crate) checker_seed: u64,
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
    /// Killed because the user asked unplug to stop: no verdict.
    pub(crate) interrupted: bool,
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

/// The states of one model the checker rejected that show one [`classify::Class`].
pub(crate) struct Vulnerability {
    pub(crate) class: classify::Class,
    /// How many rejected states (as the checker reads them) show it.
    pub(crate) states: usize,
    /// The smallest of them (fewest paths, then fewest bytes) as the checker reads it, at its
    /// crash point; `replay` names the whole state.
    pub(crate) at: usize,
    pub(crate) state: CrashState,
    pub(crate) replay: String,
    pub(crate) run: Run,
}

/// What makes two rejected states one vulnerability: their kind and the call sites of the ops
/// involved (the same code path at several crash points, or in several transactions, is one,
/// as ALICE counted them); ops without a call site (a hand-written program) by number and path.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Group {
    kind: classify::Kind,
    sites: Vec<String>,
    ops: Vec<usize>,
    path: Option<unplug_model::Path>,
}

fn group_of(program: &Program, c: &classify::Class) -> Group {
    // A durability vulnerability is the acknowledged op lost, wherever the state starts.
    let ops: Vec<usize> = match c.kind {
        classify::Kind::Durability => c.ops.iter().take(1).copied().collect(),
        _ => c.ops.clone(),
    };
    let sites: Option<Vec<String>> = ops
        .iter()
        .map(|&k| {
            let site = program.ops.get(k.wrapping_sub(1))?.site.as_deref()?;
            // The process id differs from run to run of the same code.
            Some(match site.rfind(" (pid ") {
                Some(i) => site[..i].to_string(),
                None => site.to_string(),
            })
        })
        .collect();
    match sites {
        Some(sites) if !sites.is_empty() => Group {
            kind: c.kind,
            sites,
            ops: Vec::new(),
            path: None,
        },
        _ => Group {
            kind: c.kind,
            sites: Vec::new(),
            ops,
            path: c.path.clone(),
        },
    }
}

/// The smallest rejected state of a group so far, and how many there are.
struct Found {
    states: usize,
    size: (u64, u64),
    at: usize,
    class: classify::Class,
    entry: unplug_explorer::StateEntry,
    run: Run,
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
    /// Runs made since the current model's [`AppChecker::prefetch`] began.
    fresh: AtomicUsize,
    seed: u64,
    /// A selection was made: no more runs (what was not selected stays unchecked).
    full: std::sync::atomic::AtomicBool,
    selections: Mutex<Vec<Selection>>,
    /// The program's sequential states, built once when first asked for (directory reads,
    /// the classification of rejected states).
    sequential: OnceLock<classify::Sequential>,
}

/// What was checked of one model's states when they needed more runs than the budget: the
/// sequential prefix states (every op up to a point persisted whole, in order) first, then
/// ALICE's single-deviation states (`explore::deviations`: one op left out, or one op's write
/// one version older, everything else durable), crash point by crash point, then a sample of
/// the others, by a hash of each state mixed with `--checker-seed`.
#[derive(Clone, Debug, serde::Serialize)]
pub(crate) struct Selection {
    pub(crate) model: String,
    /// Distinct states (with what had been printed) over all crash points.
    pub(crate) states: usize,
    pub(crate) prefix: usize,
    pub(crate) prefix_total: usize,
    /// ALICE's single-deviation states (one op, or one op's write, left out or older).
    pub(crate) deviations: usize,
    pub(crate) sampled: usize,
    /// Every state fit in the budget: all were checked (no selection).
    pub(crate) all: bool,
}

/// A 64-bit mixer (splitmix64's finalizer): the seeded order of the sample.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
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
            fresh: AtomicUsize::new(0),
            seed: opts.checker_seed,
            full: std::sync::atomic::AtomicBool::new(false),
            selections: Mutex::new(Vec::new()),
            sequential: OnceLock::new(),
        })
    }

    /// Adds `property checker: always checker {READS}` to `program` (the program this checker
    /// was made for), under a name no property has; a directory in `reads` stands for
    /// everything under it (no reads: the whole tree).
    pub(crate) fn add_property(&self, program: &mut Program, reads: &[unplug_model::Path]) {
        let name = ["checker", "app_checker", "unplug_checker"]
            .into_iter()
            .find(|n| program.properties.iter().all(|p| p.name != *n))
            .unwrap_or("checker");
        let reads: Vec<unplug_model::Path> = if reads.is_empty() {
            Vec::new()
        } else {
            let seq = self.sequential(program);
            let mut all: Vec<unplug_model::Path> =
                reads.iter().flat_map(|p| seq.with_descendants(p)).collect();
            all.sort();
            all.dedup();
            all
        };
        let expr = unplug_model::Expr::Checker(reads);
        program.properties.push(unplug_model::Property {
            name: name.to_string(),
            when: unplug_model::When::Always,
            text: format!("always {}", unplug_model::print::expr(&expr)),
            expr,
            span: Default::default(),
        });
    }

    /// The sequential states of `program` (the program this checker was made for).
    pub(crate) fn sequential(&self, program: &Program) -> &classify::Sequential {
        self.sequential
            .get_or_init(|| classify::Sequential::of(program))
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
        // The report's own runs: past the budget too (a counterexample is shown with them).
        members
            .iter()
            .filter_map(|m| self.run_member_with(state, m, at, true))
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
        self.run_member_with(state, m, at, false)
    }

    fn run_member_with(
        &self,
        state: &CrashState,
        m: &tree::Member,
        at: usize,
        past_budget: bool,
    ) -> Option<Run> {
        let key = (tree::tree_hash(state, m), self.printed_key(at));
        let cell = {
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(c) = cache.get(&key) {
                Arc::clone(c)
            } else {
                if !past_budget
                    && (self.full.load(Ordering::Relaxed)
                        || (self.budget != 0 && self.fresh.load(Ordering::Relaxed) >= self.budget))
                {
                    return None;
                }
                self.fresh.fetch_add(1, Ordering::Relaxed);
                let c = Arc::new(OnceLock::new());
                cache.insert(key, Arc::clone(&c));
                c
            }
        };
        let run = cell.get_or_init(|| self.execute(state, m, at)).clone();
        // A run cut short by Ctrl-C says nothing of the state.
        (!run.interrupted).then_some(run)
    }

    /// Writes the member into a fresh directory, runs the checker on it, removes the directory.
    /// One run on a directory that already holds a tree (a real crash image's, `unplug real
    /// --exec`), at crash point `at`; not cached (the caller caches by tree).
    pub(crate) fn judge_dir(&self, dir: &Path, at: usize) -> Run {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let stdout_file = self.tmp.path().join(format!("r{id}.stdout"));
        if let Err(e) = std::fs::write(&stdout_file, &self.printed[at.min(self.ops)]) {
            return Run {
                ok: false,
                timed_out: false,
                code: None,
                output: format!("unplug could not write the printed output: {e}"),
                interrupted: false,
            };
        }
        let run = self.spawn(dir, &stdout_file, at);
        self.runs.fetch_add(1, Ordering::Relaxed);
        RUNS.fetch_add(1, Ordering::Relaxed);
        let _ = std::fs::remove_file(&stdout_file);
        run
    }

    fn execute(&self, state: &CrashState, m: &tree::Member, at: usize) -> Run {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let dir = self.tmp.path().join(format!("s{id}"));
        let stdout_file = self.tmp.path().join(format!("s{id}.stdout"));
        let failed = |why: String| Run {
            ok: false,
            timed_out: false,
            code: None,
            output: why,
            interrupted: false,
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
        RUNS.fetch_add(1, Ordering::Relaxed);
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
                    interrupted: false,
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
        let (mut timed_out, mut interrupted) = (false, false);
        let status = loop {
            match guard.try_wait() {
                Ok(Some(s)) => break Some(s),
                Ok(None) => {}
                Err(_) => break None,
            }
            if start.elapsed() > self.timeout || unplug_explorer::budget::interrupted() {
                interrupted = unplug_explorer::budget::interrupted();
                timed_out = !interrupted;
                // SIGTERM first: a checker's own clean-up (its temporary copies) runs.
                guard.terminate(Duration::from_secs(1));
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
            interrupted,
        }
    }
}

impl AppChecker {
    /// Judges every distinct state of `run` once, several at a time (the checker runs are
    /// processes: they overlap), so that the enumeration that follows finds them cached.
    ///
    /// When the run's distinct states need more runs than the budget has left, a selection is
    /// checked (see [`Selection`]); the others are left out of the cache, so that the verdicts
    /// that rest on them are not proven.
    pub(crate) fn prefetch(&self, run: &unplug_explorer::ModelRun) {
        use rayon::prelude::*;
        use std::collections::HashSet;
        // The budget is per model: each starts with all of it (states already checked under
        // another model cost nothing).
        self.full.store(false, Ordering::Relaxed);
        self.fresh.store(0, Ordering::Relaxed);
        let n = run.trace.ops.len();
        let props = &run.analysis.program.properties;
        let reads = unplug_explorer::cone::Reads::of_all(props.iter().map(|p| &p.expr));
        // One crash point's states at a time (never the program's: memory stays bounded).
        fn points<'r>(
            r: &'r unplug_explorer::ModelRun<'_>,
            n: usize,
            reads: Option<&'r unplug_explorer::cone::Reads>,
        ) -> impl Iterator<Item = unplug_explorer::Point> + 'r {
            r.points_reading(0..=n, reads)
                .take_while(|_| !unplug_explorer::budget::interrupted())
        }
        // Pass 1: every distinct state (with what had been printed), and the runs it needs.
        let mut need: HashMap<(u64, u64), usize> = HashMap::new();
        for p in points(run, n, reads.as_ref()) {
            let k = run.trace.program_point(p.at);
            for s in &p.states {
                let key = self.state_key(&s.state, k);
                need.entry(key)
                    .or_insert_with(|| self.new_runs(&s.state, k));
            }
        }
        let left = if self.budget == 0 {
            usize::MAX
        } else {
            self.budget
        };
        let total: usize = need.values().sum();
        let selected = (total > left).then(|| {
            // The sequential prefix states first (every op up to some point persisted whole,
            // in order: the `seq` model's states), then a seeded sample of the rest.
            let seq = run.analysis.prepare(&unplug_model::ModelSpec::Seq);
            let mut prefix: Vec<(u64, u64)> = Vec::new();
            for p in points(&seq, n, reads.as_ref()) {
                let k = seq.trace.program_point(p.at);
                for s in &p.states {
                    let key = self.state_key(&s.state, k);
                    if need.contains_key(&key) && !prefix.contains(&key) {
                        prefix.push(key);
                    }
                }
            }
            let mut chosen = HashSet::new();
            let used = std::cell::Cell::new(0usize);
            let take = |key: &(u64, u64), chosen: &mut HashSet<(u64, u64)>| {
                let cost = need[key];
                if chosen.contains(key) || used.get() + cost > left {
                    return false;
                }
                used.set(used.get() + cost);
                chosen.insert(*key)
            };
            let n_prefix = prefix.iter().filter(|k| take(k, &mut chosen)).count();
            // ALICE's single deviations, crash point by crash point, while the budget lasts.
            let mut n_deviation = 0;
            'points: for k in 0..=n {
                let at = run.trace.program_point(k);
                for (_, s, _) in unplug_explorer::explore::deviations(
                    &run.trace,
                    &run.persistence,
                    &run.graph,
                    k,
                ) {
                    if used.get() >= left || unplug_explorer::budget::interrupted() {
                        break 'points;
                    }
                    let s = match &reads {
                        Some(r) => r.project(&s),
                        None => s,
                    };
                    let key = self.state_key(&s, at);
                    if need.contains_key(&key) && take(&key, &mut chosen) {
                        n_deviation += 1;
                    }
                }
            }
            let mut rest: Vec<(u64, u64)> = need
                .keys()
                .filter(|k| !chosen.contains(k))
                .copied()
                .collect();
            rest.sort_by_key(|k| (mix(self.seed ^ k.0 ^ k.1.rotate_left(17)), *k));
            let n_sample = rest.iter().filter(|k| take(k, &mut chosen)).count();
            (chosen, [n_prefix, prefix.len(), n_deviation, n_sample])
        });
        let [prefix, prefix_total, deviations, sampled] = selected.as_ref().map_or([0; 4], |s| s.1);
        self.selections
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Selection {
                model: run.model.to_string(),
                states: need.len(),
                prefix,
                prefix_total,
                deviations,
                sampled,
                all: selected.is_none(),
            });
        let selected = selected.map(|s| s.0);
        // Pass 2: the runs, several at a time.
        for p in points(run, n, reads.as_ref()) {
            let k = run.trace.program_point(p.at);
            p.states.par_iter().for_each(|s| {
                if selected
                    .as_ref()
                    .is_some_and(|c| !c.contains(&self.state_key(&s.state, k)))
                {
                    return;
                }
                let (members, _) = tree::members(&s.state);
                for m in &members {
                    if self.run_member(&s.state, m, k).is_none() {
                        return;
                    }
                }
            });
        }
        if selected.is_some() {
            // Nothing past the selection runs: its verdicts stay unsure.
            self.full.store(true, Ordering::Relaxed);
        }
    }

    /// The states of `run` the checker rejected (from the runs already made: no new ones),
    /// grouped by vulnerability, in kind order.
    pub(crate) fn vulnerabilities(
        &self,
        run: &unplug_explorer::ModelRun,
        seq: &classify::Sequential,
    ) -> Vec<Vulnerability> {
        let n = run.trace.ops.len();
        let props = &run.analysis.program.properties;
        let reads = unplug_explorer::cone::Reads::of_all(props.iter().map(|p| &p.expr));
        let program = &run.analysis.program;
        let mut found: std::collections::BTreeMap<Group, Found> = std::collections::BTreeMap::new();
        for p in run.points_reading(0..=n, reads.as_ref()) {
            let k = run.trace.program_point(p.at);
            for s in &p.states {
                let Some(failed) = self.cached_failure(&s.state, k) else {
                    continue;
                };
                let acked = run
                    .analysis
                    .program
                    .outputs
                    .iter()
                    .map(|o| o.after)
                    .filter(|&a| a <= k)
                    .max();
                let class = seq.classify(&s.state, k, reads.as_ref(), acked);
                let size = (
                    s.state.tree.len() as u64,
                    s.state
                        .tree
                        .values()
                        .map(|n| match n {
                            unplug_explorer::Node::File { size, .. } => *size,
                            _ => 0,
                        })
                        .sum::<u64>(),
                );
                let group = group_of(program, &class);
                let e = found.entry(group).or_insert_with(|| Found {
                    states: 0,
                    size,
                    at: p.at,
                    class: class.clone(),
                    entry: s.clone(),
                    run: failed.clone(),
                });
                e.states += 1;
                if size < e.size {
                    (e.size, e.at, e.class, e.entry, e.run) =
                        (size, p.at, class, s.clone(), failed);
                }
            }
        }
        found
            .into_values()
            .map(|f| {
                let whole = run.whole(&f.entry);
                Vulnerability {
                    class: f.class,
                    states: f.states,
                    at: f.at,
                    replay: unplug_explorer::replay::format(run, &whole.witness),
                    // The paths the checker reads, as the whole state has them.
                    state: CrashState {
                        tree: whole
                            .state
                            .tree
                            .into_iter()
                            .filter(|(p, _)| f.entry.state.tree.contains_key(p))
                            .collect(),
                    },
                    run: f.run,
                }
            })
            .collect()
    }

    /// The report of one model's vulnerabilities: one paragraph each, in kind order.
    pub(crate) fn vulnerabilities_text(
        &self,
        program: &Program,
        path: &Path,
        model: &unplug_model::ModelSpec,
        vs: &[Vulnerability],
    ) -> String {
        let mut s = String::new();
        if vs.is_empty() {
            return s;
        }
        let count = |k: classify::Kind| vs.iter().filter(|v| v.class.kind == k).count();
        let kinds: Vec<String> = [
            classify::Kind::Atomicity,
            classify::Kind::Ordering,
            classify::Kind::Durability,
            classify::Kind::Other,
        ]
        .into_iter()
        .filter(|&k| count(k) > 0)
        .map(|k| format!("{} {}", count(k), k.name()))
        .collect();
        s.push_str(&format!(
            "  vulnerabilities under {model}: {} ({})\n",
            vs.len(),
            kinds.join(", ")
        ));
        for v in vs {
            s.push_str(&format!(
                "  - {}: {} ({} rejected state{})\n",
                v.class.kind.name(),
                describe(program, &v.class),
                v.states,
                if v.states == 1 { "" } else { "s" }
            ));
            for &op in &v.class.ops {
                if let Some(o) = program.ops.get(op.wrapping_sub(1)) {
                    if let Some(site) = &o.site {
                        s.push_str(&format!("      op {op} at {site}\n"));
                    }
                }
            }
            s.push_str(&format!(
                "      smallest at crash point {}: {}; the checker: {}\n",
                v.at,
                v.state.to_string().lines().collect::<Vec<_>>().join("; "),
                v.run.verdict(self.timeout_secs())
            ));
            if let Some(l) = v.run.output.lines().find(|l| !l.trim().is_empty()) {
                s.push_str(&format!("        | {l}\n"));
            }
            s.push_str(&format!(
                "      unplug materialize {} -m {model} --state {} --into DIR\n",
                shell_quote(&path.display().to_string()),
                shell_quote(&v.replay)
            ));
        }
        s
    }

    pub(crate) fn vulnerabilities_json(
        &self,
        program: &Program,
        model: &unplug_model::ModelSpec,
        vs: &[Vulnerability],
    ) -> Vec<serde_json::Value> {
        vs.iter()
            .map(|v| {
                serde_json::json!({
                    "model": model.to_string(),
                    "kind": v.class.kind,
                    "what": describe(program, &v.class),
                    "path": v.class.path.as_ref().map(ToString::to_string),
                    "ops": v.class.ops.iter().map(|&op| {
                        let o = program.ops.get(op.wrapping_sub(1));
                        serde_json::json!({
                            "op": op,
                            "text": o.map(|o| o.text.clone()),
                            "site": o.and_then(|o| o.site.clone()),
                        })
                    }).collect::<Vec<_>>(),
                    "states": v.states,
                    "crash_point": v.at,
                    "state": v.state.to_string(),
                    "replay": v.replay,
                    "checker_run": self.run_json(&v.run),
                })
            })
            .collect()
    }

    /// A failing run cached for some member of `state` at `at`.
    fn cached_failure(&self, state: &CrashState, at: usize) -> Option<Run> {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let printed = self.printed_key(at);
        tree::members(state).0.iter().find_map(|m| {
            cache
                .get(&(tree::tree_hash(state, m), printed))
                .and_then(|c| c.get())
                .filter(|r| !r.ok)
                .cloned()
        })
    }

    /// A state with what had been printed by its crash point.
    fn state_key(&self, state: &CrashState, at: usize) -> (u64, u64) {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        state.tree.hash(&mut h);
        (h.finish(), self.printed_key(at))
    }

    /// How many runs judging `state` at `at` would add (its members not cached yet).
    fn new_runs(&self, state: &CrashState, at: usize) -> usize {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let printed = self.printed_key(at);
        tree::members(state)
            .0
            .iter()
            .filter(|m| !cache.contains_key(&(tree::tree_hash(state, m), printed)))
            .count()
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
                "; {unchecked} judgments accepted a state unchecked past --checker-budget {} (not proven)",
                self.budget
            ));
        }
        for sel in self
            .selections
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|s| !s.all)
        {
            s.push_str(&format!(
                "\n  {}: {} distinct states need more runs than the budget: selected the {} of {} \
                 sequential prefix states that fit, {} single-deviation states, and {} others \
                 sampled (--checker-seed {}); the rest unchecked (not proven)",
                sel.model,
                sel.states,
                sel.prefix,
                sel.prefix_total,
                sel.deviations,
                sel.sampled,
                self.seed
            ));
        }
        if sampled > 0 {
            s.push_str(&format!(
                "; {sampled} states judged on a few representatives of their torn blocks, not on \
                 all (not proven)"
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
            "seed": self.seed,
            "selections": *self.selections.lock().unwrap_or_else(|e| e.into_inner()),
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

/// One vulnerability in words: `op 7 \`rename tmp final\` durable before op 5 \`msync\``.
fn describe(program: &Program, c: &classify::Class) -> String {
    let op = |k: usize| match program.ops.get(k.wrapping_sub(1)) {
        Some(o) => format!("op {k} `{}`", o.text),
        None => format!("op {k}"),
    };
    let on = c
        .path
        .as_ref()
        .map(|p| format!(" ({p})"))
        .unwrap_or_default();
    match (c.kind, c.ops.as_slice()) {
        (classify::Kind::Atomicity, [j, ..]) => format!(
            "{} holds what no op left there whole (torn or partial; last changed by {})",
            c.path.as_ref().map_or("a path".into(), ToString::to_string),
            op(*j)
        ),
        (classify::Kind::Atomicity, []) => format!("a path holds what no op left whole{on}"),
        (classify::Kind::Ordering, [lost, made, ..]) => {
            format!("{} durable before {}{on}", op(*made), op(*lost))
        }
        (classify::Kind::Ordering, _) => format!("ops durable out of order{on}"),
        (classify::Kind::Durability, [last, first]) if last == first => {
            format!("{} lost", op(*last))
        }
        (classify::Kind::Durability, [last, first]) => {
            format!(
                "{} lost, and the ops after it up to {}",
                op(*first),
                op(*last)
            )
        }
        (classify::Kind::Durability, _) => "work lost".into(),
        (classify::Kind::Other, [k]) => {
            format!("the application's own state after op {k}, with no crash, is rejected")
        }
        (classify::Kind::Other, _) => {
            "paths hold versions from different points that no one pair of ops explains".into()
        }
    }
}

/// Checker runs made by this process, for the progress bar.
static RUNS: AtomicUsize = AtomicUsize::new(0);

pub(crate) fn runs_so_far() -> usize {
    RUNS.load(Ordering::Relaxed)
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
