//! `unplug bench`: the speed figures of the explorer, printed and written to docs/PERFORMANCE.md:
//! enumeration throughput per litmus program and model (and the medians), the cost of one tiny
//! (program, model) pair, how the state space and time grow with program length, and the time
//! of whole workload spaces (seq-1, seq-2, and optionally a seq-3 space).

use crate::input::{input_error, print_json, HOLDS};
use crate::out::out;
use crate::workloads::sweep;
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;
use unplug_explorer::workloads::Space;
use unplug_explorer::{perf, Analysis, Limits};
use unplug_model::ModelSpec;

#[derive(clap::Args, Debug)]
pub(crate) struct BenchArgs {
    /// The directory of programs to measure the enumeration on.
    #[arg(long, default_value = "litmus", value_name = "DIR")]
    pub(crate) dir: PathBuf,
    /// Repeat each exploration for at least this many milliseconds (the mean is reported).
    #[arg(long, default_value_t = 200, value_name = "MS")]
    pub(crate) min_ms: u64,
    /// Also time the seq-3 workload space (`--ops 3`, one file name, one directory: 1.6 million
    /// workloads; many minutes).
    #[arg(long)]
    pub seq3: bool,
    /// Stop a growth table after the first row whose exploration takes longer than this.
    #[arg(long, default_value_t = 2.0, value_name = "SECONDS")]
    pub(crate) growth_max_seconds: f64,
    /// Skip the workload spaces (only the enumeration figures).
    #[arg(long)]
    pub(crate) no_workloads: bool,
    /// The longest program of the length table (programs of five shapes, a sync every 8 ops,
    /// at 10, 30, 100, 300 and 1,000 ops, up to this length; 0: no table).
    #[arg(long, default_value_t = 1000, value_name = "OPS")]
    pub(crate) max_length: usize,
    /// Also measure the targets for application-sized programs: `check` and `syncs` of six
    /// programs (up to 10,005 ops) under every default model, each a child process with its
    /// time and peak memory.
    #[arg(long)]
    pub(crate) targets: bool,
    /// With --targets: run the same commands with this other unplug binary too, side by side
    /// (before and after a change, in one run).
    #[arg(long, value_name = "BIN", requires = "targets")]
    pub(crate) before: Option<PathBuf>,
    /// With --targets: kill a command after this many seconds.
    #[arg(long, default_value_t = 120, value_name = "SECONDS")]
    pub(crate) target_timeout: u64,
    /// Write the figures as Markdown to FILE (docs/PERFORMANCE.md is made this way). Its
    /// directory must exist (checked before the benchmark starts).
    #[arg(long, value_name = "FILE")]
    pub(crate) out: Option<PathBuf>,
    /// Print the figures as JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

struct Row {
    program: String,
    model: String,
    t: perf::Throughput,
}

fn rate(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2} M", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.0} k", x / 1e3)
    } else {
        format!("{x:.0}")
    }
}

pub(crate) fn run(b: &BenchArgs) -> u8 {
    if let Some(out) = &b.out {
        if let Err(e) = crate::input::check_output_file("--out", out) {
            return input_error(b.json, &e);
        }
    }
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&b.dir) {
        Ok(d) => d
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "up"))
            .collect(),
        Err(e) => return input_error(b.json, &format!("cannot read `{}`: {e}", b.dir.display())),
    };
    files.sort();
    let _ = unplug_realfs::child::interrupt::install();
    let min = Duration::from_millis(b.min_ms);
    let models = ModelSpec::all();
    let bar = indicatif::ProgressBar::new((files.len() * models.len()) as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:30} {pos}/{len} explorations timed ({elapsed})",
        )
        .expect("valid template"),
    );
    let mut rows = Vec::new();
    for f in &files {
        let src = match std::fs::read_to_string(f) {
            Ok(s) => s,
            Err(e) => return input_error(b.json, &format!("cannot read `{}`: {e}", f.display())),
        };
        let Ok(program) = unplug_model::parse::parse(&src) else {
            return input_error(
                b.json,
                &format!("`{}` does not parse (unplug check it)", f.display()),
            );
        };
        let Ok(a) = Analysis::new(&program) else {
            return input_error(
                b.json,
                &format!("`{}` does not run (unplug check it)", f.display()),
            );
        };
        for m in &models {
            if unplug_realfs::child::interrupt::interrupted() {
                return 130;
            }
            rows.push(Row {
                program: f
                    .file_stem()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned(),
                model: m.to_string(),
                t: perf::throughput(&a, m, min),
            });
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    // Tiny workloads, as `unplug workloads` checks them.
    let tiny: Vec<(String, f64)> = TINY
        .iter()
        .map(|(name, src)| (name.to_string(), perf::pair_seconds(src, &models, min)))
        .collect();
    let growth = growth_tables(b, min);
    let (lengths, targets) = match lengths_and_targets(b, min, &bar) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let mut spaces = Vec::new();
    if !b.no_workloads {
        let mut sizes = vec![(1usize, 2usize, 2usize), (2, 2, 2)];
        if b.seq3 {
            sizes.push((3, 1, 1));
        }
        for (ops, files, dirs) in sizes {
            let space = Space::new(ops, files, dirs).expect("a valid space");
            let n = space.len().expect("a small space");
            let sw = sweep(
                &space,
                &models,
                Limits {
                    max_states: 20_000,
                    ..Limits::default()
                },
                (n, crate::shard::Shard::WHOLE),
                0,
                None,
            );
            if sw.interrupted {
                return 130;
            }
            spaces.push(json!({
                "ops": ops, "files": files, "dirs": dirs, "workloads": n,
                "checked": sw.sum.checked, "skipped": sw.sum.skipped,
                "crash_states": sw.sum.crash_states, "seconds": sw.seconds,
                "threads": rayon::current_num_threads(),
            }));
        }
    }
    let mut v = to_json(&rows, &tiny, &growth, &spaces);
    v["lengths"] = lengths;
    v["targets"] = targets;
    if let Some(out) = &b.out {
        if let Err(e) = std::fs::write(out, markdown(&v)) {
            return input_error(b.json, &format!("cannot write `{}`: {e}", out.display()));
        }
    }
    if b.json {
        print_json(&v);
    } else {
        out!("{}", markdown(&v));
    }
    HOLDS
}

/// The growth tables: posix and ext4 without syncs, ext4 with an fsync after each append.
fn growth_tables(b: &BenchArgs, min: Duration) -> Vec<(String, bool, Vec<perf::GrowthRow>)> {
    [
        (ModelSpec::Posix, false),
        (ModelSpec::Ext4(Default::default()), false),
        (ModelSpec::Ext4(Default::default()), true),
    ]
    .into_iter()
    .map(|(m, fsync)| {
        let rows = perf::growth(&m, 24, 2, fsync, min / 4, b.growth_max_seconds);
        (m.to_string(), fsync, rows)
    })
    .collect()
}

/// The length table (JSON) and, with `--targets`, the targets (JSON; null without); an exit
/// code when they cannot run or were interrupted.
fn lengths_and_targets(
    b: &BenchArgs,
    min: Duration,
    bar: &indicatif::ProgressBar,
) -> Result<(Value, Value), u8> {
    bar.set_message("length table");
    let lengths: Vec<usize> = [10, 30, 100, 300, 1000]
        .into_iter()
        .filter(|&n| n <= b.max_length)
        .collect();
    let ext4 = ModelSpec::Ext4(Default::default());
    let rows = perf::lengths(&ext4, &lengths, 8, min / 4);
    let lengths = json!({
        "model": ext4.to_string(), "sync_every": 8,
        "rows": rows.iter().map(|r| json!({
            "shape": r.shape, "ops": r.ops, "classes": r.classes, "seconds": r.seconds,
            "classes_per_second": r.classes as f64 / r.seconds.max(1e-12), "bound_hit": r.bound_hit,
        })).collect::<Vec<_>>(),
    });
    if !b.targets {
        return Ok((lengths, Value::Null));
    }
    crate::memory::install_interrupt();
    let now = std::env::current_exe()
        .map_err(|e| input_error(b.json, &format!("cannot find this binary: {e}")))?;
    let timeout = Duration::from_secs(b.target_timeout);
    match crate::targets::run(&now, b.before.as_deref(), timeout, bar) {
        Ok(Some(v)) => Ok((lengths, v)),
        Ok(None) => Err(130),
        Err(e) => Err(input_error(b.json, &format!("cannot run the targets: {e}"))),
    }
}

/// Tiny workloads (a setup block and two or three ops), for the cost of one (program, model)
/// pair: parse, execute, build, explore and check.
const TINY: [(&str, &str); 3] = [
    (
        "overwrite, rename",
        "setup\nf = open a create\nwrite f 4KiB OLD\nclose f\nend\nh = open a\npwrite h 0 4KiB NEW\nrename a b\nproperty P: always (exists a or exists b)\n",
    ),
    (
        "append, fsync",
        "setup\nf = open a create\nclose f\nend\nh = open a append\nwrite h 4KiB D\nfsync h\nproperty P: after 3: a == D\n",
    ),
    (
        "create in a directory, rename",
        "setup\nmkdir d\nend\nf = open d/x create\nwrite f 4KiB D\nrename d/x d/y\nproperty P: always (d/y == D or not exists d/y)\n",
    ),
];

fn to_json(
    rows: &[Row],
    tiny: &[(String, f64)],
    growth: &[(String, bool, Vec<perf::GrowthRow>)],
    spaces: &[Value],
) -> Value {
    let models: Vec<String> = ModelSpec::all().iter().map(|m| m.to_string()).collect();
    let medians: serde_json::Map<String, Value> = models
        .iter()
        .map(|m| {
            let v: Vec<f64> = rows
                .iter()
                .filter(|r| &r.model == m)
                .map(|r| r.t.classes_per_sec)
                .collect();
            (m.clone(), json!(perf::median(&v)))
        })
        .collect();
    let all: Vec<f64> = rows.iter().map(|r| r.t.classes_per_sec).collect();
    let (classes, secs) = rows.iter().fold((0usize, 0.0f64), |(c, s), r| {
        (c + r.t.classes, s + r.t.seconds)
    });
    json!({
        "machine": {
            "threads": rayon::current_num_threads(),
            "kernel": std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim(),
        },
        "throughput": rows.iter().map(|r| json!({
            "program": r.program, "model": r.model, "classes": r.t.classes, "downsets": r.t.downsets,
            "concrete": r.t.concrete.expression(), "seconds": r.t.seconds, "classes_per_second": r.t.classes_per_sec,
            "setup_seconds": r.t.setup_seconds, "bound_hit": r.t.bound_hit,
        })).collect::<Vec<_>>(),
        "median_classes_per_second": medians,
        "median_classes_per_second_all": perf::median(&all),
        "aggregate_classes_per_second": if secs > 0.0 { classes as f64 / secs } else { 0.0 },
        "tiny_pair_seconds": tiny.iter().map(|(n, s)| json!({ "program": n, "seconds_per_pair": s })).collect::<Vec<_>>(),
        "growth": growth.iter().map(|(m, fsync, rows)| json!({
            "model": m, "fsync_after_each_write": fsync,
            "rows": rows.iter().map(|g| json!({
                "ops": g.ops, "writes": g.writes, "unsynced_writes": g.unsynced_writes,
                "classes": g.classes, "concrete": g.concrete.expression(), "seconds": g.seconds, "bound_hit": g.bound_hit,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "workload_spaces": spaces,
    })
}

fn markdown(v: &Value) -> String {
    let mut s = String::new();
    md_header(&mut s, v);
    md_throughput(&mut s, v);
    md_tiny(&mut s, v);
    md_growth(&mut s, v);
    md_lengths(&mut s, v);
    crate::targets::markdown(&mut s, &v["targets"]);
    md_spaces(&mut s, v);
    s
}

/// The length table: per shape and length, distinct states and states per second.
fn md_lengths(s: &mut String, v: &Value) {
    let rows = v["lengths"]["rows"].as_array().cloned().unwrap_or_default();
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "\n## Output-sensitive enumeration: programs up to {} ops\n\n\
         Programs of five shapes (`perf::length_program`: appends to one file, creates in one \
         directory, renames of one file, overwrites of a 64 KiB file, the four mixed) with a \
         sync every {} ops, every crash point explored under **{}**. Each cell: distinct \
         crash states (summed over crash points), and states per second. Time per state should \
         not grow with the length, only with the size of each state (a state of the creates \
         shape lists every file made so far).\n",
        rows.iter()
            .filter_map(|r| r["ops"].as_u64())
            .max()
            .unwrap_or(0),
        v["lengths"]["sync_every"],
        v["lengths"]["model"].as_str().unwrap_or("")
    );
    let mut lens: Vec<u64> = rows.iter().filter_map(|r| r["ops"].as_u64()).collect();
    lens.sort_unstable();
    lens.dedup();
    let shapes: Vec<&str> = perf::SHAPES.to_vec();
    let _ = writeln!(s, "| | {} |", shapes.join(" | "));
    let _ = writeln!(s, "|---|{}", "---|".repeat(shapes.len()));
    // One line per length step (the i-th length of each shape).
    let per_shape = rows.len() / shapes.len().max(1);
    for i in 0..per_shape {
        let cells: Vec<String> = shapes
            .iter()
            .enumerate()
            .map(|(j, _)| {
                let r = &rows[j * per_shape + i];
                format!(
                    "{} ops: {}{} ({}/s)",
                    r["ops"],
                    r["classes"],
                    if r["bound_hit"] == true {
                        " (budget hit)"
                    } else {
                        ""
                    },
                    rate(num(&r["classes_per_second"]))
                )
            })
            .collect();
        let _ = writeln!(s, "| {} | {} |", i + 1, cells.join(" | "));
    }
}

/// A JSON number as f64 (0 when absent).
fn num(x: &Value) -> f64 {
    x.as_f64().unwrap_or(0.0)
}

/// The title and how the figures were made.
fn md_header(s: &mut String, v: &Value) {
    let _ = writeln!(s, "# Performance\n");
    let _ = writeln!(
        s,
        "Generated by `unplug bench{} --out docs/PERFORMANCE.md` (release build; {} threads; kernel {}). \
         Figures are wall-clock times on a shared machine: compare them with care.\n",
        if v["workload_spaces"].as_array().is_some_and(|w| w.len() > 2) { " --seq3" } else { "" },
        v["machine"]["threads"], v["machine"]["kernel"].as_str().unwrap_or("?")
    );
}

/// Classes per second: the medians per model, then per program.
fn md_throughput(s: &mut String, v: &Value) {
    let _ = writeln!(s, "## Enumeration throughput\n");
    let _ = writeln!(
        s,
        "Distinct crash states per second on one core: the crash-state classes `explore` emits, summed \
         over crash points, divided by the time of one exploration (the persistence graph built \
         beforehand; the mean over repeated runs). A class can stand for many concrete states; those \
         are counted exactly but not enumerated.\n"
    );
    let models: Vec<String> = ModelSpec::all().iter().map(|m| m.to_string()).collect();
    let _ = writeln!(
        s,
        "| median classes/s | {} | all pairs | aggregate |\n|---|{}---|---|",
        models.join(" | "),
        "---|".repeat(models.len())
    );
    let _ = writeln!(
        s,
        "| | {} | {} | {} |\n",
        models
            .iter()
            .map(|m| rate(num(&v["median_classes_per_second"][m])))
            .collect::<Vec<_>>()
            .join(" | "),
        rate(num(&v["median_classes_per_second_all"])),
        rate(num(&v["aggregate_classes_per_second"]))
    );
    let _ = writeln!(
        s,
        "Per program (classes summed over crash points; classes/s):\n\n| program | {} |\n|---|{}",
        models.join(" | "),
        "---|".repeat(models.len())
    );
    let rows = v["throughput"].as_array().cloned().unwrap_or_default();
    for chunk in rows.chunks(models.len()) {
        let _ = writeln!(
            s,
            "| {} | {} |",
            chunk[0]["program"].as_str().unwrap_or(""),
            chunk
                .iter()
                .map(|r| format!("{} ({})", r["classes"], rate(num(&r["classes_per_second"]))))
                .collect::<Vec<_>>()
                .join(" | ")
        );
    }
}

/// The cost of one tiny (program, model) pair.
fn md_tiny(s: &mut String, v: &Value) {
    let _ = writeln!(s, "\n## One tiny (program, model) pair\n");
    let _ = writeln!(
        s,
        "Parse, execute, then per model build the persistence graph, explore every crash point and check \
         the property (what `unplug workloads` pays per workload and model):\n\n| program | µs per pair |\n|---|---|"
    );
    for t in v["tiny_pair_seconds"].as_array().into_iter().flatten() {
        let _ = writeln!(
            s,
            "| {} | {:.1} |",
            t["program"].as_str().unwrap_or(""),
            num(&t["seconds_per_pair"]) * 1e6
        );
    }
}

/// How the cost grows with program length, per model, with and without syncs.
fn md_growth(s: &mut String, v: &Value) {
    let _ = writeln!(s, "\n## How cost grows with program length\n");
    let _ = writeln!(
        s,
        "Synthetic programs: two files, n 4 KiB appends round-robin, every third followed by a rename of \
         its file; with or without an fsync after each append. Stops after a row that takes over `--growth-max-seconds` \
         or hits the state budget."
    );
    for g in v["growth"].as_array().into_iter().flatten() {
        let _ = writeln!(
            s,
            "\n**{}**, {}:\n\n| ops | appends | unsynced appends | distinct states | concrete states | seconds |\n|---|---|---|---|---|---|",
            g["model"].as_str().unwrap_or(""),
            if g["fsync_after_each_write"] == true { "an fsync after each append" } else { "no syncs" }
        );
        for r in g["rows"].as_array().into_iter().flatten() {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {}{} | {} | {:.6} |",
                r["ops"],
                r["writes"],
                r["unsynced_writes"],
                r["classes"],
                if r["bound_hit"] == true {
                    " (budget hit)"
                } else {
                    ""
                },
                r["concrete"].as_str().unwrap_or(""),
                num(&r["seconds"])
            );
        }
    }
}

/// The workload spaces swept (with `--seq3`, the larger ones too).
fn md_spaces(s: &mut String, v: &Value) {
    let spaces = v["workload_spaces"].as_array().cloned().unwrap_or_default();
    if !spaces.is_empty() {
        let _ = writeln!(s, "\n## Workload spaces (`unplug workloads`)\n");
        let _ = writeln!(
            s,
            "Every workload of the space under the five default models, in parallel (rayon).\n\n\
             | space | workloads | run (checked) | do not run | distinct crash states | seconds | workloads/s |\n|---|---|---|---|---|---|---|"
        );
        for w in &spaces {
            let _ = writeln!(
                s,
                "| `--ops {} --files {} --dirs {}` | {} | {} | {} | {} | {:.1} | {:.0} |",
                w["ops"],
                w["files"],
                w["dirs"],
                w["workloads"],
                w["checked"],
                w["skipped"],
                w["crash_states"],
                num(&w["seconds"]),
                num(&w["workloads"]) / num(&w["seconds"]).max(1e-9)
            );
        }
    }
}
