//! What ends an exploration early besides its limits on downsets and classes: a memory budget
//! ([`crate::Limits::max_memory`], measured by a meter the program installs: the CLI counts the
//! live bytes of its allocator) and an interrupt (Ctrl-C, polled through a function the program
//! installs). Both are polled at crash-point boundaries and while a crash point's classes grow;
//! a crash point cut short is marked `bound_hit` like any other bound, so its properties are
//! reported unproven, never dropped.
//!
//! The meter and the interrupt are process-wide, as the memory and the signal are.

use crate::Limits;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::OnceLock;

static METER: OnceLock<fn() -> usize> = OnceLock::new();
static INTERRUPT: OnceLock<fn() -> bool> = OnceLock::new();
/// Whether some exploration stopped at the memory budget.
static MEMORY_HIT: AtomicBool = AtomicBool::new(false);
/// Which of the explorer's own bounds cut some crash point short (a bit per [`Bound`]).
static BOUNDS: AtomicU8 = AtomicU8::new(0);
/// Crash points explored (or begun) by this process, for progress reports.
static POINTS: AtomicUsize = AtomicUsize::new(0);

/// How many crash points this process has explored (or begun): what a progress bar shows.
pub fn points_explored() -> usize {
    POINTS.load(Ordering::Relaxed)
}

/// Counts one crash point.
#[inline]
pub(crate) fn count_point() {
    POINTS.fetch_add(1, Ordering::Relaxed);
}

/// Installs the memory meter: live bytes of the process (the first one installed stays).
pub fn set_meter(meter: fn() -> usize) {
    let _ = METER.set(meter);
}

/// Installs the interrupt: whether the user asked to stop (the first one installed stays).
pub fn set_interrupt(interrupted: fn() -> bool) {
    let _ = INTERRUPT.set(interrupted);
}

/// The live bytes the meter reads, if one is installed.
pub fn live_bytes() -> Option<usize> {
    METER.get().map(|m| m())
}

/// Whether the user asked to stop.
pub fn interrupted() -> bool {
    INTERRUPT.get().is_some_and(|f| f())
}

/// Whether some exploration of this process stopped at the memory budget.
pub fn memory_hit() -> bool {
    MEMORY_HIT.load(Ordering::Relaxed)
}

/// A bound of the explorer itself (the memory budget and the interrupt are polled above).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bound {
    /// [`Limits::max_states`]: distinct classes per crash point (`--max-states`).
    States = 1,
    /// [`Limits::max_downsets`]: downsets of global effects per crash point.
    Downsets = 2,
    /// A write whose per-page size steps the model elided (`Persistence::elided`).
    Elided = 4,
    /// A chunk with more than [`crate::explore::MAX_OPTIONS`] combinations of block versions,
    /// or more than 64 versions: only one version per block of it was enumerated.
    Choices = 8,
    /// The application's checker accepted a state it did not check fully: past its budget of
    /// runs, or a state with torn blocks judged on some of its concrete states
    /// ([`crate::state::Judge::unsure`]).
    Checker = 16,
}

/// Records that `b` cut a crash point short.
pub(crate) fn note(b: Bound) {
    BOUNDS.fetch_or(b as u8, Ordering::Relaxed);
}

/// The explorer's own bounds that cut some crash point of this process short, in [`Bound`]
/// order.
pub fn bounds_hit() -> Vec<Bound> {
    let bits = BOUNDS.load(Ordering::Relaxed);
    [
        Bound::States,
        Bound::Downsets,
        Bound::Elided,
        Bound::Choices,
        Bound::Checker,
    ]
    .into_iter()
    .filter(|b| bits & *b as u8 != 0)
    .collect()
}

/// Whether an exploration under `limits` must stop now: interrupted, or over its memory budget.
#[inline]
pub(crate) fn must_stop(limits: &Limits) -> bool {
    if interrupted() {
        return true;
    }
    if limits.max_memory == usize::MAX {
        return false;
    }
    match live_bytes() {
        Some(live) if live > limits.max_memory => {
            MEMORY_HIT.store(true, Ordering::Relaxed);
            true
        }
        _ => false,
    }
}
