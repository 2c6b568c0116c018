//! The `unplug` command line: the only part of unplug that knows about terminals, files given on
//! the command line, exit codes and output formats.

// Standard output goes through `out` (its write errors are reported, not a panic).
#![deny(clippy::print_stdout)]

mod bench;
mod checker;
mod commands;
mod input;
mod memory;
mod out;
mod progress;
mod real;
mod render;
mod replay;
mod search;
mod shard;
mod table;
mod targets;
mod trace;
mod warnings;
mod workloads;

use clap::{CommandFactory, Parser, Subcommand};
use commands::Common;
use std::path::PathBuf;
use std::process::ExitCode;

/// The kernels the models were checked against: the kernel sources the rules cite (docs/SEMANTICS.md)
/// and the kernels `unplug real` held the models to (this machine's, and the vm backend's Debian
/// guest kernel). A macro, for `concat!`.
macro_rules! kernels {
    () => {
        "rule sources read at Linux v6.18; held to real kernels by `unplug real` on Linux 6.18 \
         (host backend) and Debian's 6.1 (6.1.0-56-amd64, vm backend)"
    };
}

/// `unplug -V`: the version and the commit it was built from (build.rs).
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("UNPLUG_GIT_COMMIT"),
    ")"
);

/// `unplug --version`: also the kernels the models were checked against.
const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("UNPLUG_GIT_COMMIT"),
    ")\nkernels: ",
    kernels!()
);

/// mimalloc, counting live bytes for the memory budget (`memory.rs`).
#[global_allocator]
static GLOBAL: memory::Counting = memory::Counting(mimalloc::MiMalloc);

/// unplug: what a power cut can leave on disk after a sequence of file-system calls, and which of
/// your fsync / fdatasync / msync calls you actually need.
///
/// Write the calls in a small `.up` program (see README.md), state the properties you need
/// (`always (exists final implies final == D)`), and ask:
///
///   unplug syncs prog.up     which syncs are needed, per file system, with counterexamples
///   unplug check prog.up     does each property hold under each model
///   unplug states prog.up    every distinct crash state at every crash point
///   unplug explain prog.up --state REPLAY   one crash state and the rules that allowed it
///   unplug models            the models and their rules, with sources
///   unplug table DIR         a guarantee table: every program of DIR under every model
///   unplug workloads --ops 2 every workload of a bounded space against built-in oracles
///   unplug search prog.up    the cheapest syncs, and minimal programs that break a property
///   unplug replay prog.up --dir DIR   run a (traced) program for real, with its data's bytes
///   unplug merge s*.jsonl    the report of a run split by --shard I/N (workloads, real, table)
///
/// Exit status (every command):
///   0  every property holds (a report: done)
///   1  a property fails (a counterexample is printed)
///   2  bad usage, a bad program, or output that cannot be written
///   3  not proven: nothing fails, but a bound was hit somewhere (--max-states,
///      --max-memory, ...; the verdict names it)
///      (JSON output says "not_proven": true, and each such verdict is "not_proven")
///   130  interrupted by Ctrl-C or SIGTERM (what was proven so far is printed)
#[derive(Parser, Debug)]
#[command(
    name = "unplug",
    version = VERSION,
    long_version = LONG_VERSION,
    verbatim_doc_comment,
    propagate_version = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Draw tables in ASCII (`+`, `-`, `|`) instead of box drawing. Automatic when standard
    /// output is a terminal that cannot show box drawing: TERM=dumb, or a locale (the first of
    /// LC_ALL, LC_CTYPE, LANG that is set; none means the C locale) that does not name UTF-8.
    /// Output to a file or a pipe does not depend on the environment.
    #[arg(long, global = true)]
    ascii: bool,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Check each property under each model: holds, or a counterexample (the crash point, what
    /// persisted, the resulting tree with sizes and content origins, and a replay string).
    Check {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        checker: checker::CheckerOpts,
    },
    /// List the distinct crash states at each crash point, with counts.
    ///
    /// Crash point K means ops 1..K have returned and op K+1 may have started. A row can stand
    /// for many concrete states (blocks of one write that persisted or not independently); its
    /// count says how many.
    States {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        checker: checker::CheckerOpts,
        /// Only this crash point.
        #[arg(long, value_name = "K")]
        at: Option<usize>,
    },
    /// For each sync call (fsync, fdatasync, msync MS_SYNC, sync, syncfs), each model and each
    /// property: needed (with the crash state that breaks the property without it) or redundant.
    /// Also the minimal sets of syncs that keep every property, cheaper calls that do the same
    /// job (fsync -> fdatasync), and a repair where a property fails as written.
    Syncs {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        checker: checker::CheckerOpts,
    },
    /// Show one crash state (from a replay string printed by check or syncs) and the rules, with
    /// their sources, that allowed it.
    Explain {
        #[command(flatten)]
        common: Common,
        /// The replay string, e.g. `no8@8:m1,m2` (variant @ crash point : persisted effects).
        #[arg(long, value_name = "REPLAY")]
        state: String,
    },
    /// Write one crash state (a replay string printed by check, syncs or states) as a real
    /// directory tree: the program's data with their real bytes (traced programs carry them),
    /// sizes, holes, hard links and symlinks. Look at it, or run the application on it.
    ///
    /// A state with torn blocks stands for many concrete states: `--member K` picks one.
    ///
    ///   unplug materialize app.up -m ext4 --state '12:m1,m4' --into /tmp/crash
    Materialize {
        #[command(flatten)]
        common: Common,
        /// The replay string, e.g. `12:m1,m4` or `no8@8:m1,m2`.
        #[arg(long, value_name = "REPLAY")]
        state: String,
        /// The directory to write (created if missing; it must be empty).
        #[arg(long, value_name = "DIR")]
        into: PathBuf,
        /// Which concrete state of a state with torn blocks to write (0: the first).
        #[arg(long, value_name = "K", default_value_t = 0)]
        member: usize,
    },
    /// List every model, its options and its rules with their sources.
    Models {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Print docs/SEMANTICS.md instead: every rule as Markdown with its source, the model
        /// configurations that use it and the programs of LITMUS_DIR that show it (switching the
        /// rule off changes their outcome), then the background notes the sources cite.
        #[arg(long, value_name = "LITMUS_DIR", conflicts_with = "json")]
        markdown: Option<PathBuf>,
    },
    /// A guarantee table: every `*.up` program of DIR (by name), each property under each model,
    /// holds or fails, with each failure's counterexample (Markdown footnotes, a click away in
    /// HTML, or JSON).
    ///
    /// Exit status: 0 (a table is a report, not a check), 3 if a cell is not proven (a bound was
    /// hit), 2 if a program has errors (they are reported and the program is left out; the
    /// others are still tabled) or on bad usage.
    Table(table::TableArgs),
    /// Run programs for real on ext4, xfs and btrfs under simulated power cuts, and check every
    /// crash state the disk shows against the model with the same mount options.
    ///
    /// Every block write is recorded (qemu's blklogwrites) with marks between ops; background
    /// journal commits and writeback are caused on purpose between ops (schedules); crash images
    /// are built from every flush-ended prefix of the write log plus subsets of the writes since
    /// the last flush, recovered by the kernel (mount), read back, and checked: each observed
    /// state must be one the model predicts at a crash point consistent with when it was
    /// recorded. Needs root, loop devices, qemu-system-common, xfsprogs and btrfs-progs
    /// (`scripts/install-deps`), and for `--backend vm` the guest kernel (`scripts/guest-kernel`).
    ///
    /// With `--exec 'CMD'` it runs an application instead (in a guest too: `--backend vm` with
    /// `--vm-file` for what it needs there): in a fresh
    /// directory of the recorded file system (its working directory, and `{dir}`), after
    /// `--setup 'CMD'` made the starting tree durable, under the tracer of `unplug trace`, with a
    /// mark in the write log after every traced call. Each crash image's recovered tree is judged
    /// by `--checker 'CMD'` (as `unplug check --checker` judges the model's states) and must be a
    /// state the model predicts for the traced program; a rejected tree names the calls around
    /// the crash, and says whether the model's own `--checker` analysis finds it.
    ///
    /// Example: unplug real --fs ext4 --setup 'apps/sqlite-rollback/setup .' \
    ///   --exec 'apps/sqlite-rollback/workload .' --checker 'apps/sqlite-rollback/checker {dir}'
    ///
    /// Exit status: 0 no unsound state (and with --exec, no tree the checker rejected), 1 an
    /// observed state the model did not predict or a rejected tree (its image is kept), 2 bad
    /// usage, a bad program or a failed run, 3 none of those but the model hit a bound (its
    /// predictions are incomplete), 130 interrupted (cleaned up).
    Real(real::RealArgs),
    /// Run a command under a tracer (ptrace with a seccomp filter, every child process and
    /// thread followed) and write what it did to the files under the roots as a `.up` program:
    /// the starting tree as its setup, each call as an op, the bytes it wrote as data with their
    /// real content. Add properties, then ask `unplug check` or `unplug syncs` about the
    /// application's own save routine.
    ///
    /// Examples:
    ///   unplug trace --root db --out commit.up -- sqlite3 db/app.db 'insert into t values(1)'
    ///   unplug trace --out save.up -- python3 save.py
    ///
    /// Exit status: 0 traced and written (whatever the command's own status, which is
    /// reported), 2 bad usage, a failed trace, or with --strict a call the language cannot
    /// express.
    #[command(verbatim_doc_comment)]
    Trace(trace::TraceArgs),
    /// Every workload of a bounded space (ACE's seq-1/seq-2/seq-3: Mohan et al., OSDI 2018),
    /// checked under every model against built-in oracles and the strength order of the models.
    ///
    /// A workload is N core ops (creat, mkdir, write, overwrite, append, mmap write + msync,
    /// fallocate, fallocate keep-size, truncate, link, unlink, rename) over F file names in the
    /// root and in D directories, each op followed by a persistence point: none, fsync or
    /// fdatasync of a file it touched, fsync of a directory whose entries it changed, or sync.
    /// The first file of each directory exists (8 KiB) before the workload.
    ///
    /// Oracles, the properties each workload gets from its volatile states: fsync (a synced file
    /// is there with its content), fdatasync (if it is there, its content), dirsync (a synced
    /// directory's entries), sync (every path nothing later changes is as it was), rename (a
    /// file the workload made, renamed over an existing one: the target is old or new, never
    /// torn or empty). A violation under a model says the model does not promise it (POSIX
    /// promises little); a violation of the strength order (a state `seq` allows that a file
    /// system does not, or a file system's state `posix` does not allow) is a model bug unless
    /// a documented exception covers it (docs/ORDER.md).
    ///
    /// Examples:
    ///   unplug workloads --ops 1                   seq-1, every model, a summary table
    ///   unplug workloads --ops 2 --json            seq-2: the JSON summary with findings
    ///   unplug workloads --ops 2 --out w.jsonl     one JSON line per workload
    ///   unplug workloads --ops 2 --show 1234       workload 1234 as a program (then `unplug check`)
    ///
    /// Exit status: 0 the models keep their strength order, 1 a model-order violation, 2 bad
    /// usage, 3 no violation but a bound (--max-states, --max-memory) was hit (not proven), 130 interrupted
    /// (what was covered is reported).
    #[command(verbatim_doc_comment)]
    Workloads(workloads::WorkloadsArgs),
    /// Combine the JSON lines of the shards of one run (`workloads`, `real` or `table` with
    /// `--shard I/N`) into exactly the report the run without `--shard` prints, with its exit
    /// status.
    ///
    /// Every shard 0/N to N-1/N must be given once, each finished (its last line is the end
    /// record), all of the same command, options and unplug version; the first problem is an
    /// error naming the file (and line). A sweep on a batch engine: docs/SWEEP.md.
    ///
    /// Examples:
    ///   for i in 0 1 2; do unplug workloads --ops 2 --shard $i/3 > w$i.jsonl; done
    ///   unplug merge w0.jsonl w1.jsonl w2.jsonl          the summary table
    ///   unplug merge --json w*.jsonl                      the `--json` summary
    ///
    /// Exit status: that of the unsharded run (e.g. for workloads 1 on a model-order
    /// violation), 2 bad usage or shards that do not make one run.
    #[command(verbatim_doc_comment)]
    Merge(shard::MergeArgs),
    /// Measure the explorer and print the figures (docs/PERFORMANCE.md is this command's output):
    /// enumeration throughput per program of DIR and model, with the medians; the cost of one
    /// tiny (program, model) pair; how states and time grow with program length; and the time of
    /// whole workload spaces (seq-1, seq-2, and with --seq3 a seq-3 space).
    ///
    /// Example: unplug bench --out docs/PERFORMANCE.md
    Bench(bench::BenchArgs),
    /// Search variants of a program: the cheapest syncs, better orders, minimal breaking programs.
    ///
    /// The cheapest syncs that keep every property, reorderings that let more go, and the
    /// smallest program that breaks each property without its syncs.
    ///
    /// A variant drops sync calls, weakens fsync to fdatasync, reorders ops that do not depend
    /// on each other (they depend on each other when they share a handle, a mapping, a path or
    /// an inode; `sync` and `syncfs` depend on everything), and drops other ops. Per model:
    ///
    ///   - the cheapest variants (by the cost of their sync calls) that keep every property that
    ///     holds as written: exhaustive over keep / fdatasync / drop when there are at most 10
    ///     sync calls, greedy (a local minimum, and said so) otherwise;
    ///   - whether some order that keeps every dependency lets a further sync go (every such
    ///     order when there are at most 120, else every order that moves one op);
    ///   - for each property that needs a sync, a minimal program that breaks it: proptest
    ///     generates variants from the seed and shrinks the first that breaks the property (while
    ///     the same ops with every sync restored keep it) to the fewest ops; then no single op
    ///     can be dropped. The program is printed (and written under --out), with its crash
    ///     state and the commands that reproduce it.
    ///
    /// Cost of a call: sync 100, syncfs 50, fsync 10, fdatasync 6, msync MS_SYNC 6, and 10 more
    /// for an fsync or fdatasync of a directory; other ops cost nothing.
    ///
    /// The same program, models, seed and cases give the same output byte for byte.
    ///
    /// Exit status: 0 searched (a search is a report, not a check), 2 bad usage or a bad program,
    /// 3 a property's verdict as written is not proven (a bound was hit).
    #[command(verbatim_doc_comment)]
    Search(search::SearchArgs),
    /// Run a program for real in an empty directory, writing its data's real bytes: check that a
    /// traced program reproduces what the application did.
    ///
    /// `unplug trace` records an application's file-system calls as a `.up` program whose data
    /// carry their content (`data NAME SIZE hex HEXDIGITS`, or `data NAME SIZE file RELPATH` with
    /// RELPATH relative to the program's directory). Replay runs the setup ops, then the ops, as
    /// the system calls they name, in DIR (no crash, no recording), and a write of LEN bytes of
    /// data D from data offset DOFF writes bytes DOFF..DOFF+LEN of D's content. Compare DIR with
    /// what the application left (e.g. `diff -r`): a difference means the trace missed something.
    /// A data without content is written as unplug's self-describing pattern (a note says which).
    ///
    /// Every `file` is checked before anything runs: it must exist and hold exactly SIZE bytes
    /// (every bad one is reported, at its line).
    ///
    /// Examples:
    ///   mkdir /tmp/r && unplug replay app.up --dir /tmp/r
    ///   unplug replay app.up --dir /tmp/r --json     {"ops": N, "dir": "/tmp/r"}
    ///
    /// Exit status: 0 replayed, 2 bad usage, a bad program, a bad data file, a DIR that does not
    /// exist or is not empty, or an op that failed (named).
    #[command(verbatim_doc_comment)]
    Replay(replay::ReplayArgs),
    /// Print a shell completion script for SHELL to standard output.
    ///
    /// Examples:
    ///   unplug completions bash > ~/.local/share/bash-completion/completions/unplug
    ///   unplug completions zsh > ~/.zfunc/_unplug
    ///   unplug completions fish > ~/.config/fish/completions/unplug.fish
    #[command(verbatim_doc_comment)]
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff) to standard output, e.g. `unplug man > unplug.1`.
    Man,
    /// The guest side of `unplug real --backend vm` (runs inside the VM).
    #[command(name = "__guest", hide = true)]
    Guest { spec: std::path::PathBuf },
    /// The guest side of `unplug real --exec --backend vm` (runs inside the VM).
    #[command(name = "__guest-exec", hide = true)]
    GuestExec { spec: std::path::PathBuf },
}

fn main() -> ExitCode {
    // Like other Unix tools, end quietly when the reader of our output goes away
    // (`unplug models | head`) instead of failing a write to a closed pipe.
    // SAFETY: setting a signal's disposition to the default before any thread starts.
    #[allow(unsafe_code)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // --help and --version (on standard output) or a usage error (on standard error), with
        // a failed write reported like every other.
        Err(e) => {
            let code = u8::try_from(e.exit_code()).unwrap_or(input::INPUT_ERROR);
            if let Err(w) = e.print() {
                eprintln!("error: cannot write to standard output: {w}");
                return ExitCode::from(input::INPUT_ERROR);
            }
            return ExitCode::from(out::finish(code));
        }
    };
    out::set_ascii(cli.ascii);
    let code = match cli.command {
        Command::Check { common, checker } => commands::check(&common, &checker),
        Command::States {
            common,
            checker,
            at,
        } => commands::states(&common, &checker, at),
        Command::Syncs { common, checker } => commands::syncs(&common, &checker),
        Command::Explain { common: c, state } => commands::explain(&c, &state),
        Command::Materialize {
            common,
            state,
            into,
            member,
        } => commands::materialize(&common, &state, &into, member),
        Command::Models { json, markdown } => commands::models(json, markdown.as_deref()),
        Command::Table(t) => commands::table(&t),
        Command::Real(r) => real::real(&r),
        Command::Trace(t) => trace::trace(&t),
        Command::Workloads(w) => workloads::run(&w),
        Command::Merge(m) => shard::merge(&m),
        Command::Bench(b) => bench::run(&b),
        Command::Search(s) => search::search(&s),
        Command::Replay(r) => replay::replay(&r),
        Command::Completions { shell } => {
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "unplug", &mut buf);
            out::print(&String::from_utf8_lossy(&buf));
            input::HOLDS
        }
        Command::Man => {
            let mut buf = Vec::new();
            match clap_mangen::Man::new(Cli::command()).render(&mut buf) {
                Ok(()) => {
                    out::print(&String::from_utf8_lossy(&buf));
                    input::HOLDS
                }
                Err(e) => input::input_error(false, &format!("cannot render the manual page: {e}")),
            }
        }
        Command::GuestExec { spec } => match real::guest_exec(&spec) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("unplug __guest-exec: {e}");
                1
            }
        },
        Command::Guest { spec } => match unplug_realfs::record::guest_main(&spec) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("unplug __guest: {e}");
                1
            }
        },
    };
    if let Some(note) = memory::note() {
        eprintln!("{note}");
    }
    ExitCode::from(out::finish(code))
}
