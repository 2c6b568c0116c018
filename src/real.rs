//! `unplug real`: run programs on real file systems under simulated power cuts and hold the
//! model to what the disk shows (the realfs crate does the work; this is the command line).

use crate::input::{input_error, load, print_json, FAILS, HOLDS, INPUT_ERROR};
use crate::out::out;
use crate::shard::{self, Merged, Shard};
use serde_json::json;
use std::path::{Path, PathBuf};
use unplug_explorer::Limits;
use unplug_realfs::check::{self, CheckOptions, RunReport};
use unplug_realfs::child::interrupt;
use unplug_realfs::crash::PlanOptions;
use unplug_realfs::record::{Backend, FsConfig, Host, RecordError, Vm};
use unplug_realfs::session::{FsType, Job, Schedule};

mod exec;

pub(crate) use exec::guest_exec;

#[derive(clap::Args, Debug)]
pub(crate) struct RealArgs {
    /// Programs (`.up` files), or directories whose `*.up` files are all run.
    #[arg(required_unless_present = "exec")]
    pub(crate) programs: Vec<PathBuf>,
    /// Run an application instead of programs: a shell command run under the tracer in a fresh
    /// directory of the recorded file system (its working directory; also `{dir}` in the
    /// command). With `--backend vm`, the files it needs come with --vm-file. With `--schedules all`: a plain run, a run with a journal
    /// commit after every traced call, and one with writeback after every call.
    #[arg(long, value_name = "CMD", conflicts_with = "programs")]
    pub(crate) exec: Option<String>,
    /// With --exec: a shell command that makes the starting tree in the directory (`{dir}`, and
    /// its working directory) before the application runs; not traced, and made durable.
    #[arg(long, value_name = "CMD", requires = "exec")]
    pub(crate) setup: Option<String>,
    /// With --exec: keep the traced program here (its data in `NAME.data/` beside it), to ask
    /// `unplug check` or `unplug syncs` about it. With several runs, each gets the file system
    /// and schedule in its name.
    #[arg(long, value_name = "PROG.up", requires = "exec")]
    pub(crate) trace_out: Option<PathBuf>,
    /// With --exec --backend vm: a file the application needs in the guest, at the same path
    /// (repeat; a directory brings its files). An executable brings the shared libraries it
    /// loads (`ldd`). The guest has busybox in /bin and runs with PATH=/usr/local/bin:/usr/bin:/bin.
    #[arg(long = "vm-file", value_name = "PATH", requires = "exec")]
    pub(crate) vm_files: Vec<PathBuf>,
    #[command(flatten)]
    pub(crate) checker: crate::checker::CheckerOpts,
    #[command(flatten)]
    pub(crate) budget: crate::memory::Budget,
    /// A file system to run on: ext4, xfs or btrfs. Repeat for several. Default: all three.
    #[arg(long = "fs", value_name = "FS")]
    pub(crate) fs: Vec<String>,
    /// ext4 mount options, one configuration per use: e.g. `data=writeback,nodelalloc`,
    /// `data=journal`, `noauto_da_alloc`. Each is compared with the model of the same options
    /// (`ext4:OPTS`). Default: ext4's defaults.
    #[arg(long = "mount-opts", value_name = "OPTS")]
    pub(crate) mount_opts: Vec<String>,
    /// Where programs run: `host` (this machine's kernel, a loop device on a FUSE export of
    /// qemu-storage-daemon's blklogwrites node; fast) or `vm` (a qemu guest with Debian's
    /// kernel, prepared by scripts/guest-kernel; the reference).
    #[arg(long, value_enum, default_value_t = BackendArg::Host)]
    pub(crate) backend: BackendArg,
    /// Which schedules of background events each program runs under: `all` (none; a journal
    /// commit after every op; writeback after every op; and a commit, a writeback, and a
    /// writeback then a commit after each op alone) or `plain` (no events).
    #[arg(long, value_enum, default_value_t = Schedules::All)]
    pub(crate) schedules: Schedules,
    /// Intervals between flushes with at most this many writes get every subset of them as a
    /// crash image; larger ones a seeded sample.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub(crate) exhaustive_up_to: usize,
    /// Random subsets per larger interval.
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub(crate) samples: usize,
    /// At most this many crash images per job (program x schedule): every flush-ended prefix,
    /// then a seeded sample of the others. 0: no limit (a big write under btrfs can give
    /// thousands per job).
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub(crate) max_images: usize,
    /// The seed of every sample.
    #[arg(long, default_value_t = 0)]
    pub(crate) seed: u64,
    /// Crash images recovered at once. Default: the number of CPUs.
    #[arg(long, value_name = "N")]
    pub(crate) threads: Option<usize>,
    /// Where the images of unsound states are kept. DIR is created if it does not exist, but its
    /// parent must (checked before anything runs).
    #[arg(long, value_name = "DIR", default_value = "unplug-unsound")]
    pub(crate) keep: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub(crate) json: bool,
    /// Most distinct crash-state classes the model explores per crash point. 0: no limit.
    #[arg(long, value_name = "N", value_parser = crate::input::limit, env = "UNPLUG_MAX_STATES", default_value_t = Limits::default().max_states)]
    pub(crate) max_states: usize,
    /// Run only shard I of N of the sessions and write JSON lines for `unplug merge` instead
    /// of the report (docs/SWEEP.md). A session is a run of whole programs on one file system
    /// (on the host, up to 32 jobs; in the vm, every program), numbered per configuration
    /// (file system and options) in program order: shard I runs the sessions numbered I modulo N,
    /// exactly as an unsharded run would.
    #[arg(long, value_name = "I/N", value_parser = crate::shard::parse)]
    pub(crate) shard: Option<Shard>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BackendArg {
    Host,
    Vm,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Schedules {
    All,
    Plain,
}

/// Every `.up` file named or in a named directory, sorted within each directory.
fn program_files(args: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for p in args {
        if crate::input::is_stdin(p) {
            return Err(
                "`-` (standard input): `unplug real` runs programs from files; save it first"
                    .to_string(),
            );
        }
        if p.is_dir() {
            let mut v: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(|e| format!("cannot read directory `{}`: {e}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.is_file() && f.extension().is_some_and(|x| x == "up"))
                .collect();
            v.sort();
            if v.is_empty() {
                return Err(format!("no `*.up` programs in `{}`", p.display()));
            }
            out.extend(v);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

/// The configurations of `--fs` and `--mount-opts` (every error at once).
pub(crate) fn configs(fs: &[String], mount_opts: &[String]) -> Result<Vec<FsConfig>, String> {
    let fss: Vec<String> = if fs.is_empty() {
        vec!["ext4".into(), "xfs".into(), "btrfs".into()]
    } else {
        fs.to_vec()
    };
    let mut errs = Vec::new();
    let mut out: Vec<FsConfig> = Vec::new();
    for f in &fss {
        let Some(fs) = FsType::parse(f) else {
            errs.push(format!(
                "--fs {f}: unknown file system (known: ext4, xfs, btrfs)"
            ));
            continue;
        };
        let opts: Vec<&str> = if fs == FsType::Ext4 && !mount_opts.is_empty() {
            mount_opts.iter().map(String::as_str).collect()
        } else {
            vec![""]
        };
        for o in opts {
            match FsConfig::new(fs, o) {
                Ok(c) if !out.contains(&c) => out.push(c),
                Ok(_) => {}
                Err(e) => errs.push(format!("--fs {f} --mount-opts {o}: {e}")),
            }
        }
    }
    if !mount_opts.is_empty() && !fss.iter().any(|f| f == "ext4") {
        errs.push("--mount-opts applies to ext4 only; add --fs ext4".into());
    }
    if errs.is_empty() {
        Ok(out)
    } else {
        Err(errs.join("\n"))
    }
}

/// A scratch directory for images and recordings, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> std::io::Result<Scratch> {
        let shm = Path::new("/dev/shm");
        let parent = if shm.is_dir() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        let dir = parent.join(format!("unplug-real-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What a real run needs besides the programs.
pub(crate) struct Settings<'a> {
    pub(crate) configs: Vec<FsConfig>,
    pub(crate) backend: BackendArg,
    pub(crate) schedules: Schedules,
    pub(crate) plan: PlanOptions,
    pub(crate) threads: usize,
    pub(crate) keep: &'a Path,
    pub(crate) limits: Limits,
    pub(crate) json: bool,
}

/// Runs `files` (already checked by the model) on every configuration; an error is the exit
/// code to return (the message is printed).
pub(crate) fn run_real(files: &[PathBuf], s: &Settings) -> Result<Vec<RunReport>, u8> {
    let (_, sessions) = run_sessions(files, s, Shard::WHOLE)?;
    Ok(fold(sessions.into_iter().map(|(_, c, r)| (c, r))))
}

/// The reports of each configuration's sessions, in order (configuration, then session), made
/// into one report per configuration, as a run prints them.
fn fold(sessions: impl IntoIterator<Item = (usize, RunReport)>) -> Vec<RunReport> {
    let mut reports: Vec<RunReport> = Vec::new();
    let mut current: Option<(usize, RunReport)> = None;
    for (c, r) in sessions {
        match current.as_mut() {
            Some((k, m)) if *k == c => m.merge(r),
            _ => reports.extend(current.replace((c, r)).map(|(_, m)| m)),
        }
    }
    reports.extend(current.map(|(_, m)| m));
    reports
}

/// A session's report: its unit, its configuration's index, the report.
type SessionReport = (u64, usize, RunReport);

/// Runs the sessions of `shard` (unit k is session `k % S` of configuration `k / S`, for S
/// sessions per configuration): the number of units, and per session run its unit, its
/// configuration's index and its report.
fn run_sessions(
    files: &[PathBuf],
    s: &Settings,
    shard: Shard,
) -> Result<(u64, Vec<SessionReport>), u8> {
    let json = s.json;
    let mut jobs = Vec::new();
    for f in files {
        let source = std::fs::read_to_string(f)
            .map_err(|e| input_error(json, &format!("cannot read `{}`: {e}", f.display())))?;
        let ops = unplug_model::load(&source)
            .map(|(p, _)| p.ops.len())
            .map_err(|_| input_error(json, &format!("`{}` has errors", f.display())))?;
        let schedules = match s.schedules {
            Schedules::All => Schedule::all_for(ops),
            Schedules::Plain => vec![Schedule::default()],
        };
        for schedule in schedules {
            jobs.push(Job {
                source: source.clone(),
                name: f.display().to_string(),
                schedule,
            });
        }
    }
    if let Err(e) = interrupt::install() {
        return Err(input_error(
            json,
            &format!("installing the Ctrl-C handler: {e}"),
        ));
    }
    let backend: Box<dyn Backend> = match s.backend {
        BackendArg::Host => Box::new(Host::default()),
        BackendArg::Vm => Box::new(Vm),
    };
    let mut reports = Vec::new();
    let sessions = sessions(&jobs, s.backend);
    let units = (s.configs.len() * sessions.len()) as u64;
    for (c, cfg) in s.configs.iter().enumerate() {
        for (j, jobs) in sessions.iter().copied().enumerate() {
            let unit = (c * sessions.len() + j) as u64;
            if !shard.owns(unit) {
                continue;
            }
            let scratch = Scratch::new()
                .map_err(|e| input_error(json, &format!("creating a scratch directory: {e}")))?;
            let bar = progress_bar(json);
            bar.set_message(format!("{}: recording {} jobs", cfg.label(), jobs.len()));
            bar.set_length(jobs.len() as u64);
            let rec = backend.record(cfg, jobs, &scratch.0, &mut |n| bar.set_position(n as u64));
            bar.finish_and_clear();
            let rec = rec.map_err(|e| recording_failed(e, &cfg.label(), json))?;
            let opts = CheckOptions {
                plan: s.plan.clone(),
                threads: s.threads,
                scratch: scratch.0.clone(),
                keep: s.keep.to_path_buf(),
                limits: s.limits,
            };
            let bar = progress_bar(json);
            bar.set_message(format!("{}: checking crash images", cfg.label()));
            let report = check::check(&rec, jobs, &opts, &|done, total| {
                bar.set_length(total as u64);
                bar.set_position(done as u64);
            });
            bar.finish_and_clear();
            match report {
                Ok(r) => reports.push((unit, c, r)),
                Err(check::CheckError::Interrupted) => {
                    eprintln!("interrupted: everything was cleaned up");
                    return Err(INTERRUPTED);
                }
                Err(e) => {
                    return Err(input_error(
                        json,
                        &format!("{}: checking failed: {e}", cfg.label()),
                    ))
                }
            }
        }
    }
    Ok((units, reports))
}

/// The exit code of a recording that failed (the message is printed).
pub(crate) fn recording_failed(e: RecordError, label: &str, json: bool) -> u8 {
    match e {
        RecordError::Interrupted => {
            eprintln!("interrupted: everything was cleaned up");
            INTERRUPTED
        }
        // A Ctrl-C from a terminal reaches the tools recording runs (losetup, mkfs, in
        // unplug's process group) too: their failure is the interruption.
        e if interrupt::interrupted() => {
            eprintln!("interrupted (while recording: {e}): everything was cleaned up");
            INTERRUPTED
        }
        e => input_error(json, &format!("{label}: recording failed: {e}")),
    }
}

/// The crash-image plan of `--exhaustive-up-to`, `--samples`, `--seed` and `--max-images`.
fn plan_options(a: &RealArgs) -> PlanOptions {
    PlanOptions {
        exhaustive_up_to: a.exhaustive_up_to,
        samples: a.samples,
        seed: a.seed,
        torn: false,
        max_images: (a.max_images > 0).then_some(a.max_images),
    }
}

/// Jobs per host session at most (whole programs are never split): every job's crash images are
/// built on the state the earlier jobs of its session left, which grows with the session (freed
/// blocks keep their data, the log wraps); a fresh file system every few dozen jobs keeps images
/// small (measured: xfs slowed from about 50 to under 3 images/s past 300 jobs in one session).
const SESSION_JOBS: usize = 32;

/// The job list cut into sessions: whole programs, up to [`SESSION_JOBS`] jobs each on the host;
/// one session (one boot) in the vm.
fn sessions(jobs: &[Job], backend: BackendArg) -> Vec<&[Job]> {
    if backend == BackendArg::Vm {
        return vec![jobs];
    }
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..=jobs.len() {
        let boundary = i == jobs.len() || jobs[i].name != jobs[i - 1].name;
        if boundary && (i - start >= SESSION_JOBS || i == jobs.len()) {
            out.push(&jobs[start..i]);
            start = i;
        }
    }
    out
}

/// The exit code of a run stopped by Ctrl-C or SIGTERM.
pub(crate) const INTERRUPTED: u8 = 130;

pub(crate) fn threads(n: Option<usize>) -> usize {
    n.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    })
}

pub(crate) fn real(a: &RealArgs) -> u8 {
    let json = a.json;
    if let Some(cmd) = &a.exec {
        return real_exec(a, cmd);
    }
    if a.checker.checker.is_some() {
        return input_error(
            json,
            "--checker applies to --exec (an application's run); for programs, use a property",
        );
    }
    let files = match program_files(&a.programs) {
        Ok(f) => f,
        Err(e) => return input_error(json, &e),
    };
    let configs = match configs(&a.fs, &a.mount_opts) {
        Ok(c) => c,
        Err(e) => return input_error(json, &e),
    };
    if let Err(e) = crate::input::check_output_dir("--keep", &a.keep) {
        return input_error(json, &e);
    }
    // Every program is checked by the model first; every error is reported before anything runs.
    let bad = files.iter().filter(|f| load(f, json).is_err()).count();
    if bad > 0 {
        return INPUT_ERROR;
    }
    let settings = Settings {
        configs,
        backend: a.backend,
        schedules: a.schedules,
        plan: plan_options(a),
        threads: threads(a.threads),
        keep: &a.keep,
        limits: limits(a),
        json,
    };
    if let Some(shard) = a.shard {
        let (units, sessions) = match run_sessions(&files, &settings, shard) {
            Ok(r) => r,
            Err(code) => return code,
        };
        let options = json!({
            "programs": files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>(),
            "configs": settings.configs.iter().map(FsConfig::label).collect::<Vec<_>>(),
            "backend": format!("{:?}", a.backend).to_lowercase(),
            "schedules": format!("{:?}", a.schedules).to_lowercase(),
            "exhaustive_up_to": a.exhaustive_up_to, "samples": a.samples,
            "max_images": a.max_images, "seed": a.seed, "keep": a.keep.display().to_string(),
            "max_states": a.max_states,
        });
        let mut lines = shard::header("real", &options, shard, units);
        for (unit, c, r) in &sessions {
            lines.push_str(&shard::record(*unit, &json!({ "config": c, "report": r })));
        }
        lines.push_str(&shard::end(shard.units_of(units), &json!({})));
        out!("{lines}");
        return exit_code(sessions.iter().map(|(_, _, r)| r));
    }
    let reports = match run_real(&files, &settings) {
        Ok(r) => r,
        Err(code) => return code,
    };
    print(&reports, json)
}

/// 1 if a state was unsound, else 3 if the model hit a bound, else 0.
fn exit_code<'a>(reports: impl Iterator<Item = &'a RunReport> + Clone) -> u8 {
    let unsound: usize = reports.clone().map(|r| r.unsound).sum();
    let not_proven = reports
        .into_iter()
        .any(|r| r.programs.iter().any(|p| p.model_bound_hit));
    if unsound > 0 {
        FAILS
    } else if not_proven {
        crate::input::NOT_PROVEN
    } else {
        HOLDS
    }
}

/// Prints the report of a run (text or JSON); its exit code.
fn print(reports: &[RunReport], json: bool) -> u8 {
    let not_proven = reports
        .iter()
        .any(|r| r.programs.iter().any(|p| p.model_bound_hit));
    if json {
        print_json(&json!({ "runs": reports, "not_proven": not_proven }));
    } else {
        out!("{}", text(reports));
    }
    exit_code(reports.iter())
}

/// `unplug merge` of `real` shards: the sessions' reports folded per configuration in session
/// order, as the unsharded run folds them. Sessions of one configuration recorded on different
/// kernels are refused.
pub(crate) fn merge(m: &Merged, json: bool) -> Result<u8, String> {
    m.one_record_per_unit()?;
    let mut sessions: Vec<(usize, RunReport)> = Vec::new();
    for (unit, r) in &m.records {
        let c: usize = shard::get(r, "config")?;
        let report: RunReport = shard::get(r, "report")?;
        if let Some((_, first)) = sessions.iter().find(|(k, _)| *k == c) {
            if first.kernel != report.kernel || first.backend != report.backend {
                return Err(format!(
                    "session {unit} of {} ran on Linux {}, an earlier one on Linux {}: shards of one run must run on the same kernel",
                    report.model, report.kernel, first.kernel
                ));
            }
        }
        sessions.push((c, report));
    }
    Ok(print(&fold(sessions), json))
}

fn progress_bar(json: bool) -> indicatif::ProgressBar {
    let target = if json {
        indicatif::ProgressDrawTarget::hidden()
    } else {
        indicatif::ProgressDrawTarget::stderr()
    };
    let bar = indicatif::ProgressBar::with_draw_target(None, target);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg}: {pos}/{len} ({elapsed})")
            .expect("valid template"),
    );
    bar
}

fn text(reports: &[RunReport]) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    for r in reports {
        let opts = if r.mount_opts.is_empty() {
            String::new()
        } else {
            format!(" -o {}", r.mount_opts)
        };
        let _ = writeln!(
            s,
            "{}{} on Linux {} ({} backend), model {}",
            r.fs,
            opts,
            r.kernel,
            match r.backend {
                unplug_realfs::record::BackendKind::Host => "host",
                unplug_realfs::record::BackendKind::Vm => "vm",
            },
            r.model
        );
        let _ = writeln!(
            s,
            "  {} programs, {} runs, {} crash images checked ({:.0}/s), {} distinct states observed",
            r.programs.len(),
            r.jobs,
            r.images_checked,
            r.images_per_second,
            r.observed_states
        );
        let _ = writeln!(s, "  unsound (observed, not predicted): {}", r.unsound);
        let _ = writeln!(
            s,
            "  predicted states observed: {:.1}%  (recording {:.1} s, checking {:.1} s)",
            100.0 * r.predicted_observed_fraction,
            r.record_seconds,
            r.check_seconds
        );
        if r.programs.len() > 1 {
            for p in &r.programs {
                let _ = writeln!(
                    s,
                    "    {:<48} {:>5} images  {:>3} states  {:>3}/{:<3} predicted seen  {} unsound",
                    p.program,
                    p.images_checked,
                    p.observed_states,
                    p.predicted_observed,
                    p.predicted_classes,
                    p.unsound
                );
            }
        }
        for p in &r.programs {
            for pr in &p.problems {
                let _ = writeln!(s, "  note: {}: {pr}", p.program);
            }
        }
        for u in &r.unsound_states {
            let _ = writeln!(
                s,
                "  UNSOUND {} (schedule {}), crash points {}..={}, {} writes ({}):",
                u.program, u.schedule, u.crash_points.0, u.crash_points.1, u.writes, u.kind
            );
            for line in u.observed.lines() {
                let _ = writeln!(s, "      {line}");
            }
            if let Some(i) = &u.image {
                let _ = writeln!(s, "    image kept: {}", i.display());
                let _ = writeln!(s, "    look at it: {}", u.reproduce);
            }
        }
    }
    s
}

/// `unplug real --exec`: checks the options that apply, then runs the application.
fn real_exec(a: &RealArgs, cmd: &str) -> u8 {
    let json = a.json;
    let mut errs = Vec::new();
    if a.backend == BackendArg::Vm && a.vm_files.is_empty() {
        errs.push(
            "--exec --backend vm: give the files the application needs in the guest with --vm-file (its commands, their scripts; shared libraries come with executables)"
                .to_string(),
        );
    }
    if a.shard.is_some() {
        errs.push(
            "--shard does not apply to --exec (one application run per configuration)".to_string(),
        );
    }
    if !a.checker.checker_reads.is_empty() && a.checker.checker.is_none() {
        errs.push("--checker-reads needs --checker".to_string());
    }
    let configs = match configs(&a.fs, &a.mount_opts) {
        Ok(c) => c,
        Err(e) => {
            errs.push(e);
            Vec::new()
        }
    };
    if let Err(e) = crate::input::check_output_dir("--keep", &a.keep) {
        errs.push(e);
    }
    if let Some(p) = &a.trace_out {
        if let Some(parent) = p.parent().filter(|p| !p.as_os_str().is_empty()) {
            if !parent.is_dir() {
                errs.push(format!(
                    "--trace-out: {}: no such directory (it is not created)",
                    parent.display()
                ));
            }
        }
    }
    if !errs.is_empty() {
        return input_error(json, &errs.join("\n"));
    }
    exec::real_exec(&exec::Exec {
        exec: cmd,
        setup: a.setup.as_deref(),
        checker: &a.checker,
        trace_out: a.trace_out.as_deref(),
        vm: a.backend == BackendArg::Vm,
        vm_files: &a.vm_files,
        configs,
        all_schedules: a.schedules == Schedules::All,
        plan: plan_options(a),
        threads: a.threads,
        keep: &a.keep,
        limits: limits(a),
        json,
    })
}

/// The model's limits: `--max-states`, and `--max-memory` (installed here, with Ctrl-C and
/// SIGTERM stopping the model's exploration too).
fn limits(a: &RealArgs) -> Limits {
    crate::memory::install_interrupt();
    Limits {
        max_states: a.max_states,
        max_memory: a.budget.install(),
        ..Limits::default()
    }
}
