//! `unplug real --exec`: an application run on a real file system, under the tracer of
//! `unplug trace`, with power cuts replayed from its block-write log; each recovered tree judged
//! by the application's checker and held against the model's states of the traced program.
//!
//! The run: a fresh file system, on the host or in a guest (`record_vm`: the guest runs `unplug
//! __guest-exec`, the same job, and sends back the converted trace); a directory `job0/root` on
//! it; the `--setup` command run there and made durable (`syncfs`); then the `--exec` command
//! under the tracer. The tracer calls back at every traced call while the calling task is
//! stopped at its syscall exit; the callback writes an `O_DIRECT` mark to the device (the marks
//! of `.up` runs, numbered by call) and causes the schedule's background events. The marks go
//! below the file system (the reserved area past its end) and without a flush, so they order
//! nothing the file system does: each only says which calls had returned before the writes
//! after it. After the run, the trace is converted to a program exactly as `unplug trace` does,
//! and the marks are renumbered from calls to the ops the calls became. From there the check is
//! realfs's (`check::app`).

use super::{progress_bar, threads, Scratch, INTERRUPTED};
use crate::checker::{AppChecker, CheckerOpts};
use crate::input::{input_error, print_json, FAILS, HOLDS, NOT_PROVEN};
use crate::out::out;
use rayon::prelude::*;
use serde::Serialize;
use serde_json::json;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use unplug_explorer::{CrashState, Limits};
use unplug_realfs::check::app::{check_app, AppReport, Judged, APP_JOB};
use unplug_realfs::check::{CheckError, CheckOptions};
use unplug_realfs::child::interrupt;
use unplug_realfs::crash::PlanOptions;
use unplug_realfs::record::{FsConfig, Host, RecordError};
use unplug_realfs::session::{self, Event, Schedule};
use unplug_realfs::RunLog;

/// What `--exec` needs from the command line.
pub(crate) struct Exec<'a> {
    pub(crate) exec: &'a str,
    pub(crate) setup: Option<&'a str>,
    pub(crate) checker: &'a CheckerOpts,
    pub(crate) trace_out: Option<&'a Path>,
    /// `--backend vm`, and the files the guest needs (`--vm-file`).
    pub(crate) vm: bool,
    pub(crate) vm_files: &'a [std::path::PathBuf],
    pub(crate) configs: Vec<FsConfig>,
    pub(crate) all_schedules: bool,
    pub(crate) plan: PlanOptions,
    pub(crate) threads: Option<usize>,
    pub(crate) keep: &'a Path,
    pub(crate) limits: Limits,
    pub(crate) json: bool,
}

/// One application run (one configuration, one schedule) and what it showed.
#[derive(Serialize)]
struct AppRun {
    config: String,
    schedule: String,
    /// The application's exit status.
    exit_status: i32,
    calls: usize,
    ops: usize,
    syncs: usize,
    /// The traced program, when kept (`--trace-out`).
    program: Option<String>,
    report: AppReport,
    /// Per rejected tree (in the report's order): the last op that had surely returned and the
    /// first that had surely not started.
    around: Vec<String>,
    /// Per rejected tree (in the report's order): whether the model's `--checker` analysis
    /// of the traced program finds it (a predicted class containing it has a member the
    /// checker rejects), and how.
    model_finds: Vec<String>,
    /// Predicted classes the checker rejects (the model's vulnerabilities), when computed.
    model_rejected_classes: Option<usize>,
    /// Of those, the classes some real image showed.
    model_rejected_seen: Option<usize>,
    /// Why the model's vulnerabilities were not computed.
    model_note: Option<String>,
}

pub(crate) fn real_exec(x: &Exec) -> u8 {
    let json = x.json;
    if let Err(e) = interrupt::install() {
        return input_error(json, &format!("installing the Ctrl-C handler: {e}"));
    }
    let schedules: Vec<Schedule> = if x.all_schedules {
        vec![
            Schedule::default(),
            Schedule {
                at: Vec::new(),
                every: vec![Event::Commit],
            },
            Schedule {
                at: Vec::new(),
                every: vec![Event::Writeback],
            },
        ]
    } else {
        vec![Schedule::default()]
    };
    let mut runs = Vec::new();
    for cfg in &x.configs {
        for schedule in &schedules {
            match run_one(x, cfg, schedule) {
                Ok(r) => runs.push(r),
                Err(code) => return code,
            }
        }
    }
    let code = exit_code(&runs);
    if json {
        print_json(&json!({ "runs": runs, "exit": code }));
    } else {
        out!("{}", text(&runs));
    }
    code
}

fn exit_code(runs: &[AppRun]) -> u8 {
    if runs
        .iter()
        .any(|r| !r.report.failures.is_empty() || !r.report.unsound.is_empty())
    {
        FAILS
    } else if runs.iter().any(|r| r.report.model_bound_hit) {
        NOT_PROVEN
    } else {
        HOLDS
    }
}

/// Runs the application once on a fresh `cfg` file system under `schedule`, recording its block
/// writes: the recording and the traced run.
fn record(
    x: &Exec,
    cfg: &FsConfig,
    schedule: &Schedule,
    scratch: &Path,
    label: &str,
) -> Result<(unplug_realfs::record::Recording, Traced), u8> {
    let json = x.json;
    let bar = progress_bar(json);
    bar.set_message(format!("{label}: running the application"));
    let app = App {
        setup: x.setup,
        exec: x.exec,
        cancel: Some(interrupt::interrupted),
    };
    let recorded = if x.vm {
        record_vm(x, &app, cfg, schedule, scratch)
    } else {
        let mut traced: Option<Result<Traced, String>> = None;
        Host::default()
            .record_with(cfg, scratch, &mut |mnt, marker| {
                let (outcome, t) = app.job(cfg.fs, mnt, marker, schedule, &|n| {
                    bar.set_position(n as u64)
                })?;
                traced = Some(t);
                Ok(vec![outcome])
            })
            .map(|rec| {
                (
                    rec,
                    traced.unwrap_or(Err("the application did not run".into())),
                )
            })
    };
    bar.finish_and_clear();
    let (rec, traced) = recorded.map_err(|e| super::recording_failed(e, label, json))?;
    traced
        .map(|t| (rec, t))
        .map_err(|e| input_error(json, &format!("{label}: {e}")))
}

/// The traced run: its calls, the application's exit status and the program it became.
#[derive(serde::Serialize, serde::Deserialize)]
struct Traced {
    calls: usize,
    exit_status: i32,
    conv: crate::trace::convert::Converted,
}

/// An application's run, where the job runs (the host, or a guest).
struct App<'a> {
    setup: Option<&'a str>,
    exec: &'a str,
    /// Polled to stop the application (the host's Ctrl-C).
    cancel: Option<fn() -> bool>,
}

impl App<'_> {
    /// The job on the file system mounted at `mnt`: its outcome, and the traced run or why the
    /// application could not run (an error of the session itself is the error).
    fn job(
        &self,
        fs: unplug_realfs::session::FsType,
        mnt: &Path,
        marker: &mut unplug_realfs::session::Marker,
        schedule: &Schedule,
        on_call: &dyn Fn(usize),
    ) -> std::io::Result<(unplug_realfs::session::JobOutcome, Result<Traced, String>)> {
        let mut traced = Err("the application did not run".to_string());
        let outcome = session::run_job_with(
            fs,
            mnt,
            marker,
            APP_JOB,
            schedule,
            &mut |root, step| match self.run(root, step, on_call) {
                Ok(t) => {
                    traced = Ok(t);
                    Ok(Ok(RunLog::default()))
                }
                Err(AppError::Session(e)) => Err(e),
                Err(AppError::App(e)) => {
                    traced = Err(e.clone());
                    Ok(Err(e))
                }
            },
        )?;
        Ok((outcome, traced))
    }
}

/// What the guest of `--backend vm` runs (`unplug __guest-exec SPEC`).
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct GuestExec {
    fs: unplug_realfs::session::FsType,
    mount_data: String,
    fs_bytes: u64,
    setup: Option<String>,
    exec: String,
    schedule: Schedule,
}

/// The guest's side of `--exec --backend vm`: the job on `/dev/vda`, then one result line with
/// the traced run (converted here, in the guest, where the application's files are).
pub(crate) fn guest_exec(spec: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(spec).map_err(|e| format!("{}: {e}", spec.display()))?;
    let g: GuestExec = serde_json::from_str(&text).map_err(|e| format!("bad spec: {e}"))?;
    let app = App {
        setup: g.setup.as_deref(),
        exec: &g.exec,
        cancel: None,
    };
    let (outcome, traced) = unplug_realfs::record::guest_session(
        g.fs,
        &g.mount_data,
        g.fs_bytes,
        &mut |mnt, marker| app.job(g.fs, mnt, marker, &g.schedule, &|_| {}),
    )
    .map_err(|e| e.to_string())?;
    let line = serde_json::to_string(&(outcome, traced)).map_err(|e| e.to_string())?;
    crate::out::print(&format!("{}{line}\n", unplug_realfs::record::GUEST_RESULT));
    Ok(())
}

/// `--backend vm`: the application runs in a guest booting Debian's kernel, with the files of
/// `--vm-file` (and the shared libraries the executables among them load).
fn record_vm(
    x: &Exec,
    app: &App,
    cfg: &FsConfig,
    schedule: &Schedule,
    scratch: &Path,
) -> Result<(unplug_realfs::record::Recording, Result<Traced, String>), RecordError> {
    let spec = GuestExec {
        fs: cfg.fs,
        mount_data: cfg.mount_data(),
        fs_bytes: cfg.fs_bytes(),
        setup: app.setup.map(str::to_string),
        exec: app.exec.to_string(),
        schedule: schedule.clone(),
    };
    let mut files = vm_files(x.vm_files).map_err(RecordError::Config)?;
    files.push((
        "/exec.json".into(),
        serde_json::to_vec(&spec).map_err(|e| RecordError::Guest(e.to_string()))?,
        0o644,
    ));
    let guest = unplug_realfs::record::GuestRun {
        files,
        command: "PATH=/usr/local/bin:/usr/bin:/bin /unplug __guest-exec /exec.json".into(),
        timeout: std::time::Duration::from_secs(600),
    };
    let (rec, line) = unplug_realfs::record::Vm.record_with(cfg, scratch, guest)?;
    let (_outcome, traced): (unplug_realfs::session::JobOutcome, Result<Traced, String>) =
        serde_json::from_str(&line).map_err(|e| RecordError::Guest(format!("bad result: {e}")))?;
    Ok((rec, traced))
}

/// The guest's copies of `paths` (each file at its own absolute path; a directory's files,
/// recursively) and of every shared library the executables among them load (`ldd`).
fn vm_files(paths: &[std::path::PathBuf]) -> Result<Vec<(String, Vec<u8>, u32)>, String> {
    use std::os::unix::fs::PermissionsExt;
    let mut todo: Vec<std::path::PathBuf> = Vec::new();
    for p in paths {
        let p = std::path::absolute(p).map_err(|e| format!("--vm-file {}: {e}", p.display()))?;
        if p.is_dir() {
            let mut stack = vec![p];
            while let Some(d) = stack.pop() {
                for e in std::fs::read_dir(&d).map_err(|e| format!("{}: {e}", d.display()))? {
                    let e = e.map_err(|e| e.to_string())?.path();
                    if e.is_dir() {
                        stack.push(e);
                    } else {
                        todo.push(e);
                    }
                }
            }
        } else {
            todo.push(p);
        }
    }
    let mut out: std::collections::BTreeMap<String, (Vec<u8>, u32)> = Default::default();
    while let Some(p) = todo.pop() {
        let key = p.display().to_string();
        if out.contains_key(&key) {
            continue;
        }
        let bytes = std::fs::read(&p).map_err(|e| format!("--vm-file {key}: {e}"))?;
        let mode = std::fs::metadata(&p)
            .map_err(|e| format!("--vm-file {key}: {e}"))?
            .permissions()
            .mode();
        if bytes.starts_with(b"\x7fELF") {
            let ldd = std::process::Command::new("ldd")
                .arg(&p)
                .output()
                .map_err(|e| format!("ldd {key}: {e}"))?;
            for line in String::from_utf8_lossy(&ldd.stdout).lines() {
                // `libz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x...)`, or the loader:
                // `/lib64/ld-linux-x86-64.so.2 (0x...)`.
                let lib = line
                    .split("=>")
                    .nth(1)
                    .unwrap_or(line)
                    .split_whitespace()
                    .next()
                    .filter(|l| l.starts_with('/'));
                if let Some(lib) = lib {
                    todo.push(lib.into());
                }
            }
        }
        out.insert(key, (bytes, mode));
    }
    Ok(out.into_iter().map(|(k, (b, m))| (k, b, m)).collect())
}

fn run_one(x: &Exec, cfg: &FsConfig, schedule: &Schedule) -> Result<AppRun, u8> {
    let json = x.json;
    let scratch = Scratch::new()
        .map_err(|e| input_error(json, &format!("creating a scratch directory: {e}")))?;
    let label = format!("{} ({})", cfg.label(), schedule.name());
    let (mut rec, t) = record(x, cfg, schedule, &scratch.0, &label)?;
    // The program, written where the checker and the user can load it.
    let prog_path = scratch.0.join("app.up");
    write_program(&prog_path, &t.conv).map_err(|e| input_error(json, &e))?;
    let kept = match x.trace_out {
        Some(p) => {
            let p = kept_name(p, cfg, schedule, x.configs.len(), x.all_schedules);
            write_program(&p, &t.conv).map_err(|e| input_error(json, &e))?;
            Some(p.display().to_string())
        }
        None => None,
    };
    let (mut analysis, src) = crate::input::load_source(&prog_path, json)?;
    analysis.limits = x.limits;
    let data = crate::input::load_data(&analysis.program, &prog_path, &src, json)?;
    let ops_after = t.conv.ops_after.clone();
    rec.renumber_marks(APP_JOB, &|n| {
        if n == 0 {
            0
        } else {
            ops_after.get(n - 1).copied().unwrap_or(0)
        }
    });
    let checker = match x.checker.checker.as_deref() {
        Some(cmd) => Some(
            AppChecker::new(x.checker, cmd, &analysis.program, data.clone())
                .map_err(|e| input_error(json, &e))?,
        ),
        None => None,
    };
    if let (Some(c), false) = (&checker, x.checker.checker_reads.is_empty()) {
        // The model enumerates only what the checker reads; the trees read back are compared
        // as it reads them.
        c.add_property(&mut analysis.program, &x.checker.checker_reads);
        analysis.set_cone(true);
    }
    let opts = CheckOptions {
        plan: x.plan.clone(),
        threads: threads(x.threads),
        scratch: scratch.0.clone(),
        // One directory per run: the runs of one command (file systems, options, schedules)
        // number their images alike.
        keep: x.keep.join(run_dir_name(cfg, schedule)),
        limits: x.limits,
    };
    let bar = progress_bar(json);
    bar.set_message(format!("{label}: checking crash images"));
    let judge = |dir: &Path, _hash: u64, at: usize| match &checker {
        None => Judged::Accepted,
        Some(c) => {
            let run = c.judge_dir(dir, at);
            if run.interrupted {
                Judged::Unknown("interrupted".into())
            } else if run.ok {
                Judged::Accepted
            } else {
                let out = run.output.trim();
                let first = out.lines().next().unwrap_or("");
                Judged::Rejected(format!(
                    "{}{}{first}",
                    run.verdict(c.timeout_secs()),
                    if first.is_empty() { "" } else { ": " }
                ))
            }
        }
    };
    let report = check_app(&rec, &analysis, &data, &opts, &judge, &|done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    });
    bar.finish_and_clear();
    let report = match report {
        Ok(r) => r,
        Err(CheckError::Interrupted) => {
            eprintln!("interrupted: everything was cleaned up");
            return Err(INTERRUPTED);
        }
        Err(e) => return Err(input_error(json, &format!("{label}: checking failed: {e}"))),
    };
    if interrupt::interrupted() {
        eprintln!("interrupted: everything was cleaned up");
        return Err(INTERRUPTED);
    }
    let around = report
        .failures
        .iter()
        .map(|f| calls_around(&analysis.program, f.crash_points))
        .collect();
    let mut run = AppRun {
        around,
        config: cfg.label(),
        schedule: schedule.name(),
        exit_status: t.exit_status,
        calls: t.calls,
        ops: t.conv.ops,
        syncs: t.conv.syncs,
        program: kept,
        model_finds: Vec::new(),
        model_rejected_classes: None,
        model_rejected_seen: None,
        model_note: None,
        report,
    };
    if let Some(c) = &checker {
        model_side(x, c, &mut run);
    }
    Ok(run)
}

/// The model's side of the checker's verdicts: for each tree the checker rejected on a real
/// image, whether a predicted class that contains it has a member the checker rejects (what
/// `unplug check --checker` on the traced program reports); and the predicted classes the
/// checker rejects, with how many of them real images showed (the coverage of the model's
/// vulnerabilities by the real run).
fn model_side(x: &Exec, c: &AppChecker, run: &mut AppRun) {
    let classes = &run.report.classes;
    let rejects = |(state, points): &(CrashState, std::collections::BTreeSet<usize>),
                   range: std::ops::RangeInclusive<usize>|
     -> bool {
        points
            .range(range)
            .any(|&at| c.failure(state, at).is_some())
    };
    run.model_finds = run
        .report
        .failures
        .iter()
        .map(|f| {
            let (lo, hi) = f.crash_points;
            let unproven = &run.report.unproven_points;
            if f.classes.is_empty() && unproven.iter().any(|k| (lo..=hi).contains(k)) {
                return "not judged: no predicted class contains the tree, and the model hit a bound at these crash points (raise --max-memory or --max-states)".to_string();
            }
            if f.classes.is_empty() {
                return "no: the model did not predict this tree (unsound, below)".to_string();
            }
            match f.classes.iter().find(|&&i| rejects(&classes[i], lo..=hi)) {
                Some(i) => format!("yes: predicted class #{} (a member the checker rejects)", i + 1),
                None => "no: the predicted classes that contain it have no member the checker rejects (the tree is not among the members checked)".to_string(),
            }
        })
        .collect();
    let budget = x.checker.checker_budget;
    if budget > 0 && classes.len() > budget {
        run.model_note = Some(format!(
            "not computed: {} predicted classes, more than --checker-budget {budget}",
            classes.len()
        ));
        return;
    }
    let bar = progress_bar(x.json);
    bar.set_message(format!(
        "{}: the checker on the model's {} predicted classes",
        run.config,
        classes.len()
    ));
    bar.set_length(classes.len() as u64);
    let rejected: Vec<usize> = (0..classes.len())
        .into_par_iter()
        .filter(|&i| {
            let r = !interrupt::interrupted() && rejects(&classes[i], 0..=usize::MAX);
            bar.inc(1);
            r
        })
        .collect();
    bar.finish_and_clear();
    let seen = &run.report.observed;
    run.model_rejected_seen = Some(rejected.iter().filter(|i| seen.contains(i)).count());
    run.model_rejected_classes = Some(rejected.len());
}

/// Why the application's part of a job failed.
enum AppError {
    /// The session's own work (a mark, an event): ends the recording.
    Session(std::io::Error),
    /// The setup or the tracer: the run's outcome.
    App(String),
}

impl App<'_> {
    /// Runs the setup, then the command under the tracer with a mark after every call.
    fn run(
        &self,
        root: &Path,
        step: &mut dyn FnMut(usize) -> std::io::Result<()>,
        on_call: &dyn Fn(usize),
    ) -> Result<Traced, AppError> {
        let root = std::fs::canonicalize(root).map_err(AppError::Session)?;
        let quoted = crate::checker::shell_quote(&root.display().to_string());
        if let Some(setup) = self.setup {
            let status = std::process::Command::new("sh")
                .arg("-c")
                .arg(setup.replace("{dir}", &quoted))
                .current_dir(&root)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .status()
                .map_err(|e| AppError::App(format!("--setup: cannot run sh: {e}")))?;
            if !status.success() {
                return Err(AppError::App(format!("--setup failed: {status}")));
            }
        }
        session::syncfs_of(&root).map_err(AppError::Session)?;
        let start = crate::trace::tree::snapshot(&root)
            .map_err(|e| AppError::App(format!("reading the starting tree: {e}")))?;
        step(0).map_err(AppError::Session)?;
        let cmd: Vec<OsString> = vec![
            "sh".into(),
            "-c".into(),
            format!("cd {quoted} && {}", self.exec.replace("{dir}", &quoted)).into(),
        ];
        let opts = unplug_trace::Options {
            roots: vec![root.clone()],
            stack_depth: 8,
            // Standard output is the report.
            stdout_to_stderr: true,
            cancel: self.cancel,
        };
        let mut calls = 0usize;
        let mut session_err: Option<std::io::Error> = None;
        let rec = unplug_trace::record_with(&cmd, &opts, &mut |_event| {
            calls += 1;
            on_call(calls);
            if let Err(e) = step(calls) {
                session_err = Some(e);
                return false;
            }
            !self.cancel.is_some_and(|c| c())
        });
        if let Some(e) = session_err {
            return Err(AppError::Session(e));
        }
        let rec = match rec {
            Ok(r) => r,
            Err(unplug_trace::TraceError::Stopped) => {
                return Err(AppError::Session(std::io::Error::new(
                    std::io::ErrorKind::Interrupted,
                    "interrupted",
                )))
            }
            Err(e) => return Err(AppError::App(format!("tracing failed: {e}"))),
        };
        let roots = [crate::trace::convert::Root {
            real: root.clone(),
            prefix: Vec::new(),
        }];
        let header = format!(
            "# traced by `unplug real --exec` from: {}\n# the command exited with status {}\n",
            self.exec.replace('\n', " "),
            rec.exit_status
        );
        let conv = crate::trace::convert::convert(&roots, &[(0, start)], &rec, "app.data", &header);
        Ok(Traced {
            calls: rec.events.len(),
            exit_status: rec.exit_status,
            conv,
        })
    }
}

/// Writes the program and its data directory (`NAME.data` beside it).
fn write_program(path: &Path, conv: &crate::trace::convert::Converted) -> Result<(), String> {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "app".into());
    let data_name = format!("{stem}.data");
    let dir = path.parent().unwrap_or(Path::new("")).join(&data_name);
    let text = conv.text.replace("app.data/", &format!("{data_name}/"));
    if !conv.sidecar.is_empty() {
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for (name, bytes) in &conv.sidecar {
            let p = dir.join(name);
            std::fs::write(&p, bytes).map_err(|e| format!("{}: {e}", p.display()))?;
        }
    }
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

/// The name of a run's directory of kept images: its configuration and schedule, e.g.
/// `ext4-data-journal-commit-after-every-call`.
fn run_dir_name(cfg: &FsConfig, s: &Schedule) -> String {
    format!("{}-{}", cfg.label(), s.name())
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

/// The file a run's traced program is kept in: `--trace-out` itself for a single run, else
/// with the configuration and schedule in its name.
fn kept_name(p: &Path, cfg: &FsConfig, s: &Schedule, configs: usize, all: bool) -> PathBuf {
    if configs == 1 && !all {
        return p.to_path_buf();
    }
    let stem = p
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "app".into());
    p.with_file_name(format!("{stem}-{}.up", run_dir_name(cfg, s)))
}

fn text(runs: &[AppRun]) -> String {
    let mut s = String::new();
    for r in runs {
        let rep = &r.report;
        s += &format!(
            "{} ({} backend, kernel {}), schedule {}: the application made {} traced calls ({} ops, {} syncs) and exited with status {}\n",
            r.config,
            format!("{:?}", rep.backend).to_lowercase(),
            rep.kernel,
            r.schedule,
            r.calls,
            r.ops,
            r.syncs,
            r.exit_status
        );
        if let Some(p) = &r.program {
            s += &format!("  traced program: {p}\n");
        }
        s += &format!(
            "  {} crash images, {} distinct trees, {} checker runs: {} tree(s) rejected; {} image(s) unsound (the model did not predict them); {}/{} predicted classes seen; {:.1} images/s\n",
            rep.images_checked,
            rep.distinct_trees,
            rep.checker_runs,
            rep.failures.len(),
            rep.unsound.len(),
            rep.predicted_observed,
            rep.predicted_classes,
            rep.images_per_second
        );
        if rep.model_bound_hit {
            s += "  the model hit a bound (--max-states): its predictions are incomplete (not proven)\n";
        }
        for (i, f) in rep.failures.iter().enumerate() {
            s += &format!(
                "  rejected tree {}: crash points {}..={} ({} image(s)): {}\n",
                i + 1,
                f.crash_points.0,
                f.crash_points.1,
                f.images,
                f.reason
            );
            if let Some(a) = r.around.get(i) {
                s += &format!("    {a}\n");
            }
            if let Some(m) = r.model_finds.get(i) {
                s += &format!("    found by the model: {m}\n");
            }
            if let Some(img) = &f.image {
                s += &format!("    kept: {}\n    look: {}\n", img.display(), f.reproduce);
            }
        }
        if rep.not_judged > 0 {
            s += &format!(
                "  {} image(s) not judged: no predicted class contains their tree, at crash points where the model hit a bound\n",
                rep.not_judged
            );
        }
        for u in &rep.unsound {
            s += &format!(
                "  UNSOUND at crash points {}..={} ({} image(s)): the model predicts no such tree\n",
                u.crash_points.0, u.crash_points.1, u.images
            );
            for l in u.observed.lines() {
                s += &format!("    {l}\n");
            }
            if let Some(c) = &u.closest {
                s += &format!("    closest prediction: {c}\n");
            }
            if let Some(img) = &u.image {
                s += &format!("    kept: {}\n    look: {}\n", img.display(), u.reproduce);
            }
        }
        match (r.model_rejected_classes, r.model_rejected_seen, &r.model_note) {
            (Some(n), Some(seen), _) => {
                s += &format!(
                    "  the model's vulnerabilities: the checker rejects {n} predicted class(es); real images showed {seen} of them\n"
                )
            }
            (_, _, Some(note)) => s += &format!("  the model's vulnerabilities: {note}\n"),
            _ => {}
        }
    }
    s
}

/// The last op that had surely returned at a crash in `lo..=hi`, and the first that had surely
/// not started, with their text and call site.
fn calls_around(p: &unplug_model::Program, (lo, hi): (usize, usize)) -> String {
    let op = |k: usize| {
        p.ops.get(k - 1).map_or_else(String::new, |o| {
            let text = if o.text.is_empty() {
                unplug_model::print::op(&o.kind)
            } else {
                o.text.clone()
            };
            match &o.site {
                Some(site) => format!("op {k} `{text}` (at {site})"),
                None => format!("op {k} `{text}`"),
            }
        })
    };
    let after = if lo == 0 {
        "no op had returned".to_string()
    } else {
        format!("after {} had returned", op(lo))
    };
    let before = if hi < p.ops.len() {
        format!("; {} had not started", op(hi + 1))
    } else {
        String::new()
    };
    format!("{after}{before}")
}
