fn main() {
    let path = std::env::args().nth(1).unwrap();
    let src = std::fs::read_to_string(&path).unwrap();
    let prog = unplug_model::parse::parse(&src).unwrap_or_else(|e| panic!("{e:?}"));
    let a = unplug_explorer::Analysis::new(&prog).unwrap_or_else(|e| panic!("{e:?}"));
    for m in unplug_model::ModelSpec::all() {
        let t = std::time::Instant::now();
        let run = a.run(&m);
        println!(
            "== {m}: {} effects {} edges, {:?}",
            run.persistence.effects.len(),
            run.persistence.edges.len(),
            t.elapsed()
        );
        for pt in &run.exploration.points {
            println!(
                "  point {}: {} classes, total {}",
                pt.at,
                pt.states.len(),
                pt.total
            );
        }
        for r in run.check() {
            println!(
                "  {} holds={} violating={}",
                r.property, r.holds, r.violating_classes
            );
            if let Some(v) = &r.counterexample {
                println!(
                    "    at {}: {}  [{}]",
                    v.at,
                    v.state.state,
                    unplug_explorer::replay::format(&run, &v.state.witness)
                );
            }
        }
        let t = std::time::Instant::now();
        let rep = unplug_explorer::syncs::analyse(&a, &m);
        println!("  syncs ({:?}):", t.elapsed());
        for s in &rep.syncs {
            println!(
                "    op {} {:<20} {:?} fdatasync_ok={:?}",
                s.op, s.call, s.verdicts, s.fdatasync_suffices
            );
            for (p, c) in &s.counterexamples {
                println!("       {p}: at {} {} [{}]", c.at, c.state, c.replay);
            }
        }
        println!("    minimal {:?}", rep.minimal_sets);
        for (p, r) in &rep.repairs {
            println!(
                "    repair {p}: {:?}",
                r.iter()
                    .map(|x| (x.after, x.target_kind, x.path.clone()))
                    .collect::<Vec<_>>()
            );
        }
    }
}
