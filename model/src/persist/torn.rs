//! The torn wrapper: any model with writes torn at a finer unit than a 4 KiB block
//! (`atomic=sector`: 512-byte sectors, each old or new), and optionally garbage in a unit being
//! written when the power fails (`garbage`). It changes the layout's unit and the explorer's
//! candidate values, not the effects, edges or floors, which the wrapped model builds.

use super::ModelSpec;
use crate::rules::Rule;
use crate::volatile::BLOCK;
use std::fmt;

crate::rules! {
    RULES;
    TORN_SECTOR = "torn-sector", Assumption,
        "atomic=sector: a write reaches the disk in 512-byte sectors, each of which holds its old or its new content after a crash; the block layer promises no more.",
        "Documentation/block/writeback_cache_control.rst; docs/SEMANTICS.md B3 (sector atomicity is a device property ALICE relies on)";
    TORN_GARBAGE = "torn-garbage", Assumption,
        "garbage: a unit with a write not yet durable may hold garbage after a crash (the write in flight when the power failed); over-approximated as any such unit.",
        "docs/SEMANTICS.md B3 (the stricter mode), section 6 (ALICE)";
}

/// Neither rule adds an edge or floor: see [`crate::persist::FsModel::descriptive`].
pub const DESCRIPTIVE: &[(&Rule, &str)] = &[
    (
        &TORN_SECTOR,
        "it is the layout's unit (512-byte sectors), not an ordering; the `# expect ext4:atomic=sector` lines (alice-a1, alice-a3) and the golden snapshots of the torn configurations show it",
    ),
    (
        &TORN_GARBAGE,
        "it is the explorer's candidate values (garbage in a unit being written), not an ordering; the `# expect ext4:atomic=sector,garbage` line of alice-a1 and the golden snapshots show it",
    ),
];

/// The options every model takes: the unit of atomic writes and garbage in a torn unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Torn {
    unit: u64,
    garbage: bool,
}

impl Torn {
    pub fn new(unit: u64, garbage: bool) -> Self {
        Torn { unit, garbage }
    }

    /// Takes `atomic=` and `garbage` out of a comma-separated option list; the rest are the file
    /// system's own. `atomic=sector,atomic=block` contradicts itself and is an error (the last
    /// one does not silently win); the errors come back beside what was understood, so that the
    /// caller can report them with its own.
    pub fn split(opts: &str) -> (Torn, Vec<&str>, Vec<String>) {
        let mut t = Torn::new(BLOCK, false);
        let mut own = Vec::new();
        let mut errs = Vec::new();
        let mut atomic_said: Option<&str> = None;
        for o in opts.split(',').filter(|o| !o.is_empty()) {
            let unit = match o {
                "atomic=sector" => 512,
                "atomic=block" => BLOCK,
                "garbage" => {
                    t.garbage = true;
                    continue;
                }
                o if o.starts_with("atomic=") => {
                    errs.push(format!(
                        "unknown atomicity `{o}` (known: atomic=sector, atomic=block)"
                    ));
                    continue;
                }
                o => {
                    own.push(o);
                    continue;
                }
            };
            match atomic_said {
                Some(first) if first != o => errs.push(format!(
                    "options `{first}` and `{o}` contradict each other: give one of them"
                )),
                _ => {
                    atomic_said = Some(o);
                    t.unit = unit;
                }
            }
        }
        (t, own, errs)
    }

    /// Whether these options ask for anything: a unit finer than a block, or garbage.
    pub fn tears(&self) -> bool {
        self.unit != BLOCK || self.garbage
    }

    /// `base`, torn if these options ask for it.
    pub fn wrap(self, base: ModelSpec) -> ModelSpec {
        if self.unit == BLOCK && !self.garbage {
            base
        } else {
            ModelSpec::Torn {
                base: Box::new(base),
                unit: self.unit,
                garbage: self.garbage,
            }
        }
    }

    /// The options printed after the base model's name.
    fn options(&self) -> Vec<&'static str> {
        let mut opts = Vec::new();
        if self.unit < BLOCK {
            opts.push("atomic=sector");
        }
        if self.garbage {
            opts.push("garbage");
        }
        opts
    }

    /// The rules the wrapper adds to its base's.
    pub fn rules(&self) -> Vec<&'static Rule> {
        let mut v = Vec::new();
        if self.unit < BLOCK {
            v.push(&TORN_SECTOR);
        }
        if self.garbage {
            v.push(&TORN_GARBAGE);
        }
        v
    }

    /// Writes `base` with these options appended (`ext4:atomic=sector`, `ext4:data=journal,garbage`).
    pub fn fmt_wrapping(&self, base: &ModelSpec, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = base.to_string();
        write!(
            f,
            "{b}{}{}",
            if b.contains(':') { "," } else { ":" },
            self.options().join(",")
        )
    }
}

/// The torn configurations the litmus corpus runs.
pub fn configurations() -> Vec<ModelSpec> {
    [
        "posix:atomic=sector",
        "ext4:atomic=sector",
        "ext4:atomic=sector,garbage",
    ]
    .into_iter()
    .map(|m| ModelSpec::parse(m).expect("a valid model"))
    .collect()
}
