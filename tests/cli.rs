//! CLI transcripts (trycmd): each `tests/cmd/*.toml` runs `unplug` with arguments and compares
//! its exit code, stdout and stderr with the files beside it. Regenerate after a reviewed change
//! with `TRYCMD=overwrite cargo test --test cli`.

#[test]
fn cli_transcripts() {
    trycmd::TestCases::new().case("tests/cmd/*.toml");
}
