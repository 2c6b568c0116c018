//! Fuzz target `parse`: arbitrary text through the parser, and every error it reports through
//! the renderer the CLI uses (`file:line:col`, the source line, a caret, the hint). Neither may
//! panic, whatever the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use unplug_model::ProgramErrors;

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    match unplug_model::parse::parse(src) {
        Ok(program) => {
            // Numbering and display of what was parsed (used by every report).
            for op in program.setup.iter().chain(&program.ops) {
                let _ = format!("{op:?}");
            }
        }
        Err(errs) => {
            assert!(!errs.is_empty(), "parse failed without a diagnostic");
            let e = ProgramErrors::new("fuzz.up", src, errs);
            // As `unplug` prints them without --json ...
            let text = e.render_plain();
            assert!(text.starts_with("fuzz.up:"), "{text}");
            // ... and with --json (file, line, column).
            for d in &e.errors {
                let (line, col) = e.location(d);
                assert!(line >= 1 && col >= 1);
            }
        }
    }
});
