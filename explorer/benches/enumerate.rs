//! Enumeration throughput: `explore` (every crash point, one thread) on a few litmus programs
//! and a synthetic longer program, per default model; criterion reports time per exploration,
//! and the throughput in crash-state classes per second (`Throughput::Elements` = classes).
//! Also the cost of one (program, model) pair for a tiny program (parse, execute, build,
//! explore, check). Run: `cargo bench -p unplug-explorer --bench enumerate`.
//! The whole-corpus table: `cargo run --release -p unplug-explorer --example throughput`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use unplug_explorer::{explore, perf, Analysis};
use unplug_model::ModelSpec;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn analysis(src: &str) -> Analysis {
    Analysis::new(&unplug_model::parse::parse(src).expect("parses")).expect("runs")
}

fn bench(c: &mut Criterion) {
    let programs = [
        (
            "append-rename",
            include_str!("../../litmus/append-rename.up").to_string(),
        ),
        (
            "btrfs-rename-relog",
            include_str!("../../litmus/btrfs-rename-relog.up").to_string(),
        ),
        (
            "mkdir-rmdir",
            include_str!("../../litmus/mkdir-rmdir.up").to_string(),
        ),
        (
            "seed-mmap-rename",
            include_str!("../../litmus/seed-mmap-rename.up").to_string(),
        ),
        ("synthetic-6-appends", perf::growth_program(6, 2, false)),
    ];
    let mut g = c.benchmark_group("explore");
    for (name, src) in &programs {
        let a = analysis(src);
        for m in ModelSpec::all() {
            let run = a.run(&m);
            let classes: usize = run.exploration.points.iter().map(|p| p.states.len()).sum();
            g.throughput(Throughput::Elements(classes as u64));
            g.bench_function(format!("{name} {m}"), |b| {
                b.iter(|| explore::explore(&run.trace, &run.persistence, &run.graph, a.limits))
            });
        }
    }
    g.finish();
    let tiny = "setup\nf = open a create\nwrite f 4KiB OLD\nclose f\nend\n\nh = open a\npwrite h 0 4KiB NEW\nrename a b\nproperty P: always (exists a or exists b)\n";
    let mut g = c.benchmark_group("tiny program, five models");
    g.throughput(Throughput::Elements(ModelSpec::all().len() as u64));
    g.bench_function("parse+execute+run+check", |b| {
        b.iter(|| {
            let a = analysis(tiny);
            ModelSpec::all()
                .iter()
                .map(|m| a.run(m).check().len())
                .sum::<usize>()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
