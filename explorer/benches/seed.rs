//! The seed program (examples/mmap-rename.up) at 4 KiB and at its real size, 8 MiB: full sync
//! analysis (every sync removed, weakened, every subset, repairs) under every model.
//! Targets (DESIGN.md): under 100 ms in total, and 8 MiB no slower than 1.5x the 4 KiB case.
//! Run: `cargo bench -p unplug-explorer --bench seed`.

use criterion::{criterion_group, criterion_main, Criterion};
use unplug_explorer::{syncs, Analysis};
use unplug_model::ModelSpec;

fn seed(size: &str) -> Analysis {
    let src = include_str!("../../examples/mmap-rename.up").replace("8MiB", size);
    let program = unplug_model::parse::parse(&src).expect("the seed parses");
    Analysis::new(&program).expect("the seed runs")
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("seed full sync analysis, every model");
    for size in ["4KiB", "8MiB"] {
        let a = seed(size);
        g.bench_function(size, |b| {
            b.iter(|| {
                ModelSpec::all()
                    .iter()
                    .map(|m| syncs::analyse(&a, m).syncs.len())
                    .sum::<usize>()
            })
        });
    }
    g.finish();
    // Each model on its own, to see which grows with the size.
    let mut g = c.benchmark_group("seed full sync analysis, per model");
    for m in ModelSpec::all() {
        for size in ["4KiB", "8MiB"] {
            let a = seed(size);
            g.bench_function(format!("{m} {size}"), |b| {
                b.iter(|| syncs::analyse(&a, &m).syncs.len())
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
