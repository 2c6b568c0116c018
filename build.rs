//! Build script of the `unplug` binary: the git commit it was built from, for `--version`
//! (`UNPLUG_GIT_COMMIT`: `git rev-parse --short HEAD`, with `-dirty` when tracked files differ
//! from it, or `unknown` outside a git checkout, e.g. a packaged crate).

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() {
    let commit = match git(&["rev-parse", "--short", "HEAD"]) {
        Some(c) if !c.is_empty() => {
            let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty());
            if dirty {
                format!("{c}-dirty")
            } else {
                c
            }
        }
        _ => "unknown".to_string(),
    };
    println!("cargo:rustc-env=UNPLUG_GIT_COMMIT={commit}");
    // Rerun when HEAD moves (a commit, a checkout) or the index changes, and when the sources
    // change (they may make the checkout dirty).
    // (Only paths that exist: cargo reruns the script on every build for a missing one.)
    let mut git_paths = vec!["HEAD".to_string(), "index".into(), "packed-refs".into()];
    git_paths.extend(git(&["symbolic-ref", "-q", "HEAD"]));
    for p in git_paths {
        if let Some(path) = git(&["rev-parse", "--git-path", &p]) {
            if std::path::Path::new(&path).exists() {
                println!("cargo:rerun-if-changed={path}");
            }
        }
    }
    for p in [
        "build.rs",
        "Cargo.toml",
        "Cargo.lock",
        "src",
        "model",
        "explorer",
        "realfs",
    ] {
        println!("cargo:rerun-if-changed={p}");
    }
}
