//! A fixed workload for instruction counting: explores every litmus program under each default
//! model `REPS` times (no timing); `instructions REPS FILTER [MODEL]` only the programs whose
//! path contains FILTER (under MODEL), and `instructions REPS tiny` (program, model) pairs of a
//! tiny program instead (`tiny-per-block`: with the per-block layout, as `unplug workloads`).
//! Run: `valgrind --tool=callgrind --toggle-collect='instructions::explore_once' \
//!   target/release/examples/instructions [REPS]` and divide by the printed class count.

use unplug_explorer::{explore, Analysis};
use unplug_model::ModelSpec;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// One exploration, dropped as the throughput metric times it; its class count.
#[inline(never)]
fn explore_once(run: &unplug_explorer::ModelRun, a: &Analysis) -> usize {
    let e = explore::explore(&run.trace, &run.persistence, &run.graph, a.limits);
    e.points.iter().map(|p| p.states.len()).sum::<usize>()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let reps: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(3);
    let tiny = args
        .get(2)
        .is_some_and(|s| s == "tiny" || s == "tiny-per-block");
    let per_block = args.get(2).is_some_and(|s| s == "tiny-per-block");
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../litmus");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "up"))
        .filter(|p| {
            tiny || p
                .to_string_lossy()
                .contains(args.get(2).map_or("", String::as_str))
        })
        .collect();
    files.sort();
    if tiny {
        let src = "setup\nf = open a create\nwrite f 4KiB OLD\nclose f\nend\n\nh = open a\npwrite h 0 4KiB NEW\nrename a b\nproperty P: always (exists a or exists b)\n";
        for _ in 0..reps {
            let mut a = Analysis::new(&unplug_model::parse::parse(src).unwrap()).unwrap();
            a.set_per_block(per_block);
            for m in ModelSpec::all() {
                std::hint::black_box(a.run(&m).check());
            }
        }
        println!("{} pairs", reps * ModelSpec::all().len());
        return;
    }
    let mut classes = 0usize;
    for f in &files {
        let src = std::fs::read_to_string(f).unwrap();
        let a = Analysis::new(&unplug_model::parse::parse(&src).unwrap()).unwrap();
        for m in ModelSpec::all() {
            if args.get(3).is_some_and(|x| *x != m.to_string()) {
                continue;
            }
            let run = a.run(&m);
            for _ in 0..reps {
                classes += explore_once(&run, &a);
            }
        }
    }
    println!("{classes} classes");
}
