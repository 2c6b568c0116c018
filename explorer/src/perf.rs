//! Measuring the enumeration: throughput in distinct crash-state classes per second, the fixed
//! cost of one (program, model) pair, and how the state space grows with a program's length.
//!
//! The metric: *distinct crash states* are the crash-state classes the explorer emits, summed
//! over crash points (`Point::states.len()`); the throughput is that number divided by the wall
//! time of [`crate::explore::explore`] alone (one thread; the persistence graph is built
//! beforehand and timed separately as `setup_seconds`). Concrete states (`Point::total`, the
//! members of the classes) are reported apart: they can be astronomically larger, and counting
//! them costs nothing per member.

use crate::count::Count;
use crate::explore;
use crate::Analysis;
use std::time::{Duration, Instant};
use unplug_model::ModelSpec;

/// The throughput of the enumeration of one program under one model.
#[derive(Clone, Debug)]
pub struct Throughput {
    /// Crash points explored.
    pub points: usize,
    /// Distinct crash-state classes, summed over crash points.
    pub classes: usize,
    /// Concrete crash states, summed over crash points.
    pub concrete: Count,
    /// Downward-closed sets of global effects visited, summed over crash points.
    pub downsets: usize,
    /// Some crash point hit a limit (the counts are of what was explored).
    pub bound_hit: bool,
    /// How many times the exploration ran to fill the minimum time.
    pub runs: usize,
    /// Wall time of one exploration (mean over the runs).
    pub seconds: f64,
    /// Wall time of building the persistence and its graph once (mean).
    pub setup_seconds: f64,
    /// `classes / seconds`.
    pub classes_per_sec: f64,
}

/// Runs `f` until `min_time` has passed (at least once); the mean seconds per run and the runs.
fn repeat(min_time: Duration, mut f: impl FnMut()) -> (f64, usize) {
    let start = Instant::now();
    let mut runs = 0;
    loop {
        f();
        runs += 1;
        let t = start.elapsed();
        if t >= min_time {
            return (t.as_secs_f64() / runs as f64, runs);
        }
    }
}

/// Explores every crash point of `a` under `model`, repeatedly until `min_time` has passed, and
/// measures it (see the module docs for the metric).
pub fn throughput(a: &Analysis, model: &ModelSpec, min_time: Duration) -> Throughput {
    let trace = &a.trace;
    let (setup_seconds, _) = repeat(min_time / 10, || {
        std::hint::black_box(a.build(model, trace));
    });
    let (p, g) = a.build(model, trace);
    let mut points = 0;
    let mut classes = 0;
    let mut downsets = 0;
    let mut concrete = Count::zero();
    let mut bound_hit = false;
    for k in 0..=trace.ops.len() {
        let (pt, d) = explore::explore_point_counted(trace, &p, &g, k, a.limits);
        debug_assert_eq!(
            pt.states.len(),
            explore::Explorer::new(trace, &p, &g)
                .point(k, a.limits)
                .states
                .len()
        );
        points += 1;
        classes += pt.states.len();
        downsets += d;
        concrete = concrete.add(&pt.total);
        bound_hit |= pt.bound_hit;
    }
    let (seconds, runs) = repeat(min_time, || {
        std::hint::black_box(explore::explore(trace, &p, &g, a.limits));
    });
    Throughput {
        points,
        classes,
        concrete,
        downsets,
        bound_hit,
        runs,
        seconds,
        setup_seconds,
        classes_per_sec: classes as f64 / seconds,
    }
}

/// The cost of one (program, model) pair as a checker of many small programs pays it: parse,
/// execute, then per model build, explore and check every property. Returns seconds per pair
/// (the parse and execution are shared by the models and spread over them).
pub fn pair_seconds(src: &str, models: &[ModelSpec], min_time: Duration) -> f64 {
    let (s, _) = repeat(min_time, || {
        let program = unplug_model::parse::parse(src).expect("the program parses");
        let a = Analysis::new(&program).expect("the program runs");
        for m in models {
            std::hint::black_box(a.run(m).check());
        }
    });
    s / models.len().max(1) as f64
}

/// One row of a growth table: a synthetic program and the size of its state space.
#[derive(Clone, Debug)]
pub struct GrowthRow {
    /// Ops in the program (after its setup block).
    pub ops: usize,
    /// 4 KiB appends in the program.
    pub writes: usize,
    /// Appends not followed by a sync of their file before the program ends.
    pub unsynced_writes: usize,
    /// Distinct crash-state classes, summed over crash points.
    pub classes: usize,
    /// Concrete crash states, summed over crash points.
    pub concrete: Count,
    pub bound_hit: bool,
    /// Wall time of one exploration.
    pub seconds: f64,
}

/// The synthetic program of a growth table: `files` files created in the setup, then `writes`
/// 4 KiB appends round-robin over them, every third one followed by a rename of its file (back
/// and forth between two names), and with `fsync`, each append followed by an fsync of its file.
pub fn growth_program(writes: usize, files: usize, fsync: bool) -> String {
    let files = files.max(1);
    let mut s = String::from("setup\n");
    for j in 0..files {
        s += &format!("s{j} = open a{j} create\nclose s{j}\n");
    }
    s += "end\n\n";
    for j in 0..files {
        s += &format!("h{j} = open a{j} append\n");
    }
    let mut renamed = vec![false; files];
    for i in 0..writes {
        let j = i % files;
        s += &format!("write h{j} 4KiB D{i}\n");
        if fsync {
            s += &format!("fsync h{j}\n");
        }
        if i % 3 == 2 {
            let (from, to) = if renamed[j] { ("b", "a") } else { ("a", "b") };
            s += &format!("rename {from}{j} {to}{j}\n");
            renamed[j] = !renamed[j];
        }
    }
    s
}

/// The growth of the state space with program length under `model`: one row per number of
/// appends from 1 to `max_writes` (see [`growth_program`]), stopping after the first row that
/// hits a limit or takes longer than `max_seconds` to explore once.
pub fn growth(
    model: &ModelSpec,
    max_writes: usize,
    files: usize,
    fsync: bool,
    min_time: Duration,
    max_seconds: f64,
) -> Vec<GrowthRow> {
    let mut rows = Vec::new();
    for writes in 1..=max_writes {
        let src = growth_program(writes, files, fsync);
        let program = unplug_model::parse::parse(&src).expect("the growth program parses");
        let a = Analysis::new(&program).expect("the growth program runs");
        let t = throughput(&a, model, min_time);
        rows.push(GrowthRow {
            ops: a.trace.ops.len(),
            writes,
            unsynced_writes: if fsync { 0 } else { writes },
            classes: t.classes,
            concrete: t.concrete,
            bound_hit: t.bound_hit,
            seconds: t.seconds,
        });
        if t.bound_hit || t.seconds > max_seconds {
            break;
        }
    }
    rows
}

/// The program shapes of the length table ([`length_program`]).
pub const SHAPES: [&str; 5] = ["appends", "creates", "renames", "overwrites", "mixed"];

/// A synthetic program of `ops` ops (after its setup) of one `shape`, with a `sync` every
/// `sync_every` ops (0: none), so that what is unsynced at any crash point stays bounded:
/// - `appends`: 4 KiB appends to one file;
/// - `creates`: files created in one directory (open, write 4 KiB, close);
/// - `renames`: one file renamed from name to name;
/// - `overwrites`: 4 KiB overwrites of a 64 KiB file, one block after another;
/// - `mixed`: the four in turn (an append to a log, a create, a rename, an overwrite).
pub fn length_program(shape: &str, ops: usize, sync_every: usize) -> String {
    let mut s = String::from(
        "setup\nmkdir d\nb = open big create\nwrite b 64KiB OLD\nclose b\n\
         l = open log create\nclose l\nr = open d/r0 create\nclose r\nend\n\
         h = open log append\nbh = open big\n",
    );
    let mut n = 2;
    let (mut files, mut renamed) = (0usize, 0usize);
    let mut since_sync = 0;
    while n < ops {
        let step = match shape {
            "appends" => 0,
            "creates" => 1,
            "renames" => 2,
            "overwrites" => 3,
            _ => n % 4,
        };
        let at = n;
        match step {
            0 => {
                s += &format!("write h 4KiB D{n}\n");
                n += 1;
            }
            1 => {
                s += &format!("f = open d/f{files} create\nwrite f 4KiB D{n}\nclose f\n");
                files += 1;
                n += 3;
            }
            2 => {
                s += &format!("rename d/r{renamed} d/r{}\n", renamed + 1);
                renamed += 1;
                n += 1;
            }
            _ => {
                s += &format!("pwrite bh {} 4KiB D{n}\n", (n % 16) * 4096);
                n += 1;
            }
        }
        since_sync += n - at;
        if sync_every > 0 && since_sync >= sync_every && n < ops {
            s += "sync\n";
            since_sync = 0;
            n += 1;
        }
    }
    s
}

/// One row of a length table: a program of one shape and length, explored once.
#[derive(Clone, Debug)]
pub struct LengthRow {
    pub shape: &'static str,
    pub ops: usize,
    /// Distinct crash-state classes, summed over crash points.
    pub classes: usize,
    pub bound_hit: bool,
    /// Wall time of one exploration of every crash point.
    pub seconds: f64,
}

/// The cost of every crash state of programs of each shape and each length in `lengths`, with
/// a sync every `sync_every` ops, under `model`: time per distinct state should not grow with
/// the length (the enumeration is output-sensitive), only with the size of each state.
pub fn lengths(
    model: &ModelSpec,
    lengths: &[usize],
    sync_every: usize,
    min_time: Duration,
) -> Vec<LengthRow> {
    let mut rows = Vec::new();
    for shape in SHAPES {
        for &ops in lengths {
            let src = length_program(shape, ops, sync_every);
            let program = unplug_model::parse::parse(&src).expect("the length program parses");
            let a = Analysis::new(&program).expect("the length program runs");
            let t = throughput(&a, model, min_time);
            rows.push(LengthRow {
                shape,
                ops: a.trace.ops.len(),
                classes: t.classes,
                bound_hit: t.bound_hit,
                seconds: t.seconds,
            });
        }
    }
    rows
}

/// The median of some figures (the mean of the middle two for an even count; 0 for none).
pub fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_programs_run_and_grow() {
        for fsync in [false, true] {
            let rows = growth(&ModelSpec::Posix, 3, 2, fsync, Duration::ZERO, 10.0);
            assert_eq!(rows.len(), 3);
            assert!(rows.windows(2).all(|w| w[0].classes <= w[1].classes));
        }
    }

    #[test]
    fn length_programs_have_the_length_asked_for() {
        for shape in SHAPES {
            for (ops, k) in [(10, 0), (40, 8), (101, 8)] {
                let src = length_program(shape, ops, k);
                let a = Analysis::new(&unplug_model::parse::parse(&src).unwrap()).unwrap();
                let n = a.trace.ops.len();
                assert!((ops..ops + 3).contains(&n), "{shape} {ops}: {n} ops");
                let syncs = a.program.ops.iter().filter(|o| o.kind.is_sync()).count();
                assert_eq!(syncs > 0, k > 0, "{shape} {ops} {k}");
            }
        }
        let rows = lengths(&ModelSpec::Posix, &[12, 24], 6, Duration::ZERO);
        assert_eq!(rows.len(), 2 * SHAPES.len());
        assert!(rows.iter().all(|r| r.classes > 0 && !r.bound_hit));
    }

    #[test]
    fn throughput_counts_the_classes_of_an_exploration() {
        let src = growth_program(2, 1, false);
        let a = Analysis::new(&unplug_model::parse::parse(&src).unwrap()).unwrap();
        let t = throughput(&a, &ModelSpec::Posix, Duration::ZERO);
        let run = a.run(&ModelSpec::Posix);
        let classes: usize = run.exploration.points.iter().map(|p| p.states.len()).sum();
        assert_eq!(t.classes, classes);
        assert_eq!(t.points, run.exploration.points.len());
        assert!(t.runs >= 1 && t.classes_per_sec > 0.0);
        assert!(pair_seconds(&src, &ModelSpec::all(), Duration::ZERO) > 0.0);
    }
}
