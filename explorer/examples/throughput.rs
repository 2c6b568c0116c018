//! Prints the enumeration throughput of every litmus program under each default model, the
//! median per model, and the cost of one (program, model) pair for tiny programs.
//! Run: `cargo run --release -p unplug-explorer --example throughput [MIN_MS] [FILTER]`.

use std::time::Duration;
use unplug_explorer::{perf, Analysis};
use unplug_model::ModelSpec;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let ms: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(200);
    let filter = args.get(2).cloned().unwrap_or_default();
    let min = Duration::from_millis(ms);
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../litmus");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "up"))
        .filter(|p| p.to_string_lossy().contains(&filter))
        .collect();
    files.sort();
    let models = ModelSpec::all();
    let mut per_model: Vec<Vec<f64>> = vec![Vec::new(); models.len()];
    let mut setup: Vec<Vec<f64>> = vec![Vec::new(); models.len()];
    let (mut all_classes, mut all_secs) = (0usize, 0.0f64);
    println!(
        "{:<44} {:<6} {:>8} {:>9} {:>12} {:>10} {:>12} {:>9}",
        "program",
        "model",
        "classes",
        "downsets",
        "concrete",
        "µs/explore",
        "classes/s",
        "setup µs"
    );
    for f in &files {
        let src = std::fs::read_to_string(f).unwrap();
        let a = Analysis::new(&unplug_model::parse::parse(&src).unwrap()).unwrap();
        let name = f.file_stem().unwrap().to_string_lossy();
        for (i, m) in models.iter().enumerate() {
            let t = perf::throughput(&a, m, min);
            per_model[i].push(t.classes_per_sec);
            setup[i].push(t.setup_seconds);
            all_classes += t.classes;
            all_secs += t.seconds;
            println!(
                "{:<44} {:<6} {:>8} {:>9} {:>12} {:>10.1} {:>12.0} {:>9.1}{}",
                name,
                m.to_string(),
                t.classes,
                t.downsets,
                t.concrete.expression(),
                t.seconds * 1e6,
                t.classes_per_sec,
                t.setup_seconds * 1e6,
                if t.bound_hit { "  (bound hit)" } else { "" }
            );
        }
    }
    let mut all = Vec::new();
    for (i, m) in models.iter().enumerate() {
        println!(
            "median {:<6} classes/s {:>12.0}   median setup µs {:>7.1}",
            m.to_string(),
            perf::median(&per_model[i]),
            perf::median(&setup[i]) * 1e6
        );
        all.extend(per_model[i].iter().copied());
    }
    println!(
        "median over all (program, model) pairs: {:.0} classes/s",
        perf::median(&all)
    );
    println!(
        "aggregate: {} classes in {:.3} s = {:.0} classes/s",
        all_classes,
        all_secs,
        all_classes as f64 / all_secs
    );
    // Tiny workloads: a setup block and two or three ops, under the five default models.
    let tiny = [
        "setup\nf = open a create\nwrite f 4KiB OLD\nclose f\nend\n\nh = open a\npwrite h 0 4KiB NEW\nrename a b\nproperty P: always (exists a or exists b)\n",
        "setup\nf = open a create\nclose f\nend\n\nh = open a append\nwrite h 4KiB D\nfsync h\nproperty P: after 3: a == D\n",
        "setup\nmkdir d\nend\n\nf = open d/x create\nwrite f 4KiB D\nrename d/x d/y\nproperty P: always (d/y == D or not exists d/y)\n",
    ];
    for src in tiny {
        let s = perf::pair_seconds(src, &models, min);
        println!("tiny program: {:.1} µs per (program, model) pair", s * 1e6);
    }
}
