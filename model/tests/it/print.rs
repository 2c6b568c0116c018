//! The printer's round trip: printing a program and parsing the text gives the same program
//! (equal once [`print::normalized`]: spans and source texts aside), in canonical form and as
//! written, for generated programs and for every `.up` file of the corpus.

use proptest::prelude::*;
use unplug_model::parse::parse;
use unplug_model::{print, strategy, Program};

/// Prints `p` both ways and requires each text to parse back to `p`; the canonical text is also
/// a fixed point (printing what it parses to gives it again).
fn round_trip(p: &Program) -> Result<(), TestCaseError> {
    let text = print::program(p);
    let back = parse(&text).map_err(|e| TestCaseError::fail(format!("{e:?}\n{text}")))?;
    prop_assert_eq!(print::normalized(&back), print::normalized(p), "{}", text);
    prop_assert_eq!(print::program(&back), text);
    let written = print::as_written(p);
    let back = parse(&written).map_err(|e| TestCaseError::fail(format!("{e:?}\n{written}")))?;
    prop_assert_eq!(
        print::normalized(&back),
        print::normalized(p),
        "{}",
        written
    );
    Ok(())
}

fn corpus() -> Vec<std::path::PathBuf> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    for dir in ["litmus", "examples"] {
        for entry in std::fs::read_dir(root.join(dir)).expect("corpus dir") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "up") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

#[test]
fn every_corpus_program_prints_back_to_itself() {
    let files = corpus();
    assert!(files.len() > 50, "{} files", files.len());
    for f in files {
        let src = std::fs::read_to_string(&f).expect("read");
        let p = parse(&src).unwrap_or_else(|e| panic!("{}: {e:?}", f.display()));
        if let Err(e) = round_trip(&p) {
            panic!("{}: {e}", f.display());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Programs of the op strategy (every op family, data declarations, setup, properties).
    #[test]
    fn generated_programs_print_back_to_themselves(p in strategy::program(1..12)) {
        round_trip(&p)?;
    }

    /// Programs over every form of the language, built as values (see `strategy::syntax`).
    #[test]
    fn every_form_prints_back_to_itself(p in strategy::syntax::program(0..8)) {
        round_trip(&p)?;
    }
}
