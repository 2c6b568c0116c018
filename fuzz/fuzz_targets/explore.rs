//! Fuzz target `explore`: a program that parses and executes is explored under every model
//! configuration (`ModelSpec::configurations()`), with small bounds, and its properties checked.
//! Nothing on the way may panic. Large inputs are skipped so that each execution stays fast.
#![no_main]

use libfuzzer_sys::fuzz_target;
use unplug_explorer::{Analysis, Limits};
use unplug_model::ModelSpec;

/// Inputs longer than this are skipped (the litmus programs are well under it).
const MAX_TEXT: usize = 4096;
/// Programs with more ops than this (setup ops included) are skipped.
const MAX_OPS: usize = 12;

fuzz_target!(|data: &[u8]| {
    if data.len() > MAX_TEXT {
        return;
    }
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(program) = unplug_model::parse::parse(src) else {
        return;
    };
    if program.ops.len() + program.setup.len() > MAX_OPS {
        return;
    }
    let Ok(mut analysis) = Analysis::new(&program) else {
        return;
    };
    analysis.limits = Limits {
        max_downsets: 4096,
        max_states: 4096,
        ..Limits::default()
    };
    for model in ModelSpec::configurations() {
        let run = analysis.run(&model);
        let results = run.check();
        assert_eq!(results.len(), program.properties.len());
    }
});
