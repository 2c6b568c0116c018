//! Runs a program for real: every op becomes the system call it names, inside a root directory.
//!
//! The setup ops run first; then the runner makes their result durable with `syncfs` on the root
//! (the model takes setup as durable before crash point 0); then the program's ops run in order.
//! A hook is called before setup, after setup and after every op, so that a block-recording
//! backend can put a mark in its log between ops.
//!
//! Handles (`f = open ...`) and mappings (`m = mmap ...`) are names mapping to owned file
//! descriptors and [`memmap2::MmapMut`]s; whatever is still open at the end is unmapped and
//! closed. A failing system call ends the run with a [`RunError`] naming the op; nothing panics.
//! The system calls of each op are in `calls.rs`; `data.rs` holds [`DataBytes`], the real bytes
//! of data that have them ([`run_with_data`]; otherwise writes carry patterns); this file runs
//! the ops in order.

use calls::State;
use rustix::fs::{Mode, OFlags};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io;
use std::path::{Path as StdPath, PathBuf};
use unplug_model::Program;

mod calls;
mod data;

pub use data::DataBytes;

/// Where the run is when the hook is called.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Step {
    /// Before the first setup op (the root is open and empty).
    BeforeSetup,
    /// After the setup ops and the `syncfs` that makes them durable: crash point 0.
    AfterSetup,
    /// After op `n` (1-based) returned: crash point `n`.
    AfterOp(usize),
}

/// What one op took.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpRecord {
    /// 1-based: the op number for program ops, the position in the setup block for setup ops.
    pub number: usize,
    /// The op's text as written.
    pub text: String,
    /// Wall-clock time of the op's system calls, in nanoseconds.
    pub elapsed_ns: u64,
}

/// What a run did, op by op.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunLog {
    pub setup: Vec<OpRecord>,
    /// `ops[i]` is op number `i + 1`.
    pub ops: Vec<OpRecord>,
}

/// Why a run stopped.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The root could not be used: it does not exist, is not a directory, is not empty, or could
    /// not be opened or synced.
    #[error("root {}: {source}", path.display())]
    Root {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Setup op `number` (1-based within the setup block) failed.
    #[error("setup op {number} `{text}`: {source}")]
    Setup {
        number: usize,
        text: String,
        #[source]
        source: io::Error,
    },
    /// Op `number` (1-based) failed.
    #[error("op {number} `{text}`: {source}")]
    Op {
        number: usize,
        text: String,
        #[source]
        source: io::Error,
    },
    /// The hook returned an error.
    #[error("hook at {step:?}: {source}")]
    Hook {
        step: Step,
        #[source]
        source: io::Error,
    },
}

impl RunError {
    /// The number of the program op that failed, if it was one.
    pub fn op_number(&self) -> Option<usize> {
        match self {
            RunError::Op { number, .. } => Some(*number),
            _ => None,
        }
    }

    /// The underlying I/O error.
    pub fn io_error(&self) -> &io::Error {
        match self {
            RunError::Root { source, .. }
            | RunError::Setup { source, .. }
            | RunError::Op { source, .. }
            | RunError::Hook { source, .. } => source,
        }
    }
}

/// Runs `program` in the directory `root`, which must exist and be empty. Every data is written
/// as its self-describing pattern (even one whose declaration has a source).
pub fn run(program: &Program, root: &StdPath) -> Result<RunLog, RunError> {
    run_with(program, root, &mut |_| Ok(()))
}

/// Like [`run`], calling `hook` before setup ([`Step::BeforeSetup`]), after setup
/// ([`Step::AfterSetup`]) and after each op returns ([`Step::AfterOp`]). An error from the hook
/// ends the run with [`RunError::Hook`].
pub fn run_with(
    program: &Program,
    root: &StdPath,
    hook: &mut dyn FnMut(Step) -> io::Result<()>,
) -> Result<RunLog, RunError> {
    run_with_data(program, root, &DataBytes::new(), hook)
}

/// Like [`run_with`], writing the real bytes of the data `data` has: a write or store of `LEN`
/// bytes of data `D` from data offset `DOFF` writes `data[D][DOFF .. DOFF + LEN]` (a range past
/// its end fails the op). Data `data` has no bytes for are written as their patterns.
pub fn run_with_data(
    program: &Program,
    root: &StdPath,
    data: &DataBytes,
    hook: &mut dyn FnMut(Step) -> io::Result<()>,
) -> Result<RunLog, RunError> {
    let root_err = |source| RunError::Root {
        path: root.to_path_buf(),
        source,
    };
    let mut entries = std::fs::read_dir(root).map_err(root_err)?;
    if entries.next().is_some() {
        return Err(root_err(io::Error::other(
            "the root directory is not empty",
        )));
    }
    let root_fd = rustix::fs::open(
        root,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| root_err(e.into()))?;

    let mut state = State {
        root: root_fd,
        handles: HashMap::new(),
        maps: HashMap::new(),
        data: data.clone(),
    };
    let mut log = RunLog::default();
    let call = |step: Step, hook: &mut dyn FnMut(Step) -> io::Result<()>| {
        hook(step).map_err(|source| RunError::Hook { step, source })
    };

    call(Step::BeforeSetup, hook)?;
    for (i, op) in program.setup.iter().enumerate() {
        let elapsed_ns = state.timed(op).map_err(|source| RunError::Setup {
            number: i + 1,
            text: op.text.clone(),
            source,
        })?;
        log.setup.push(OpRecord {
            number: i + 1,
            text: op.text.clone(),
            elapsed_ns,
        });
    }
    rustix::fs::syncfs(&state.root).map_err(|e| root_err(e.into()))?;
    call(Step::AfterSetup, hook)?;
    for (i, op) in program.ops.iter().enumerate() {
        let number = i + 1;
        let elapsed_ns = state.timed(op).map_err(|source| RunError::Op {
            number,
            text: op.text.clone(),
            source,
        })?;
        log.ops.push(OpRecord {
            number,
            text: op.text.clone(),
            elapsed_ns,
        });
        call(Step::AfterOp(number), hook)?;
    }
    // Mappings go before the descriptors (dropping either is enough; this is the natural order).
    state.maps.clear();
    state.handles.clear();
    Ok(log)
}

#[cfg(test)]
mod tests {
    use super::calls::{open_flags, rel};
    use super::*;
    use unplug_model::{OpenFlags, Path};

    #[test]
    fn relative_paths() {
        assert_eq!(rel(&Path::root()), ".");
        assert_eq!(rel(&Path(vec!["d".into(), "f".into()].into())), "d/f");
    }

    #[test]
    fn flags() {
        let (o, m) = open_flags(&OpenFlags {
            create: true,
            trunc: true,
            ..Default::default()
        });
        assert_eq!(
            o,
            OFlags::CLOEXEC | OFlags::RDWR | OFlags::CREATE | OFlags::TRUNC
        );
        assert_eq!(m.as_raw_mode(), 0o644);
        let (o, _) = open_flags(&OpenFlags {
            directory: true,
            ..Default::default()
        });
        assert_eq!(o, OFlags::CLOEXEC | OFlags::RDONLY | OFlags::DIRECTORY);
    }

    #[test]
    fn root_must_be_empty() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("root");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("x"), b"").unwrap();
        let err = run(&Program::default(), &dir).unwrap_err();
        assert!(matches!(err, RunError::Root { .. }), "{err}");
        assert_eq!(err.op_number(), None);
        std::fs::remove_dir_all(&dir).unwrap();
        let err = run(&Program::default(), &dir).unwrap_err();
        assert_eq!(err.io_error().kind(), io::ErrorKind::NotFound, "{err}");
        // An empty root with an empty program: nothing to do, no error.
        std::fs::create_dir(&dir).unwrap();
        assert_eq!(run(&Program::default(), &dir).unwrap(), RunLog::default());
    }
}
