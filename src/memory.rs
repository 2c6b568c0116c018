//! The memory budget of every exploring command: the global allocator counts its live bytes (a
//! wrapper around mimalloc), the explorer reads the count through
//! [`unplug_explorer::budget::set_meter`], and `--max-memory` (default: half the memory
//! available, at most [`DEFAULT_CAP`]) says where it stops. An exploration past the budget ends
//! with its crash points unproven ("bound exceeded"), never with the kernel's OOM killer.

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicUsize, Ordering};

/// mimalloc, counting the bytes allocated and not yet freed.
pub(crate) struct Counting(pub(crate) mimalloc::MiMalloc);

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is passed on to mimalloc unchanged; the wrapper only adds and subtracts
// the sizes of the layouts it is given, which are the sizes mimalloc allocates and frees.
#[allow(unsafe_code, reason = "a GlobalAlloc wrapper is unsafe to implement")]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = self.0.alloc(layout);
        if !p.is_null() {
            LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = self.0.alloc_zeroed(layout);
        if !p.is_null() {
            LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        self.0.dealloc(ptr, layout);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = self.0.realloc(ptr, layout, new_size);
        if !p.is_null() {
            LIVE.fetch_add(new_size, Ordering::Relaxed);
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        p
    }
}

/// Live bytes allocated now.
pub(crate) fn live() -> usize {
    LIVE.load(Ordering::Relaxed)
}

/// The default budget never exceeds this (live bytes; the resident set is somewhat larger):
/// what one command may take on a shared machine before it says "bound exceeded".
pub(crate) const DEFAULT_CAP: u64 = 1 << 30;

/// Half of `MemAvailable` (/proc/meminfo), at most [`DEFAULT_CAP`]; the cap if it cannot be read.
pub(crate) fn default_budget() -> u64 {
    let available = std::fs::read_to_string("/proc/meminfo").ok().and_then(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("MemAvailable:"))
            .and_then(|v| v.trim().strip_suffix("kB"))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(|kib| kib * 1024)
    });
    available.map_or(DEFAULT_CAP, |a| (a / 2).min(DEFAULT_CAP))
}

/// `--max-memory SIZE`: a size as programs write it (`512MiB`, `2GiB`, `1073741824`).
pub(crate) fn parse_budget(s: &str) -> Result<u64, String> {
    match unplug_model::parse::parse_size(s) {
        Some(0) | None => Err(format!(
            "`{s}` is not a memory size (a positive size such as 512MiB or 2GiB)"
        )),
        Some(n) => Ok(n),
    }
}

/// Makes the explorer stop at `budget` live bytes; the budget as a `Limits::max_memory`.
pub(crate) fn install(budget: u64) -> usize {
    unplug_explorer::budget::set_meter(live);
    usize::try_from(budget).unwrap_or(usize::MAX)
}

/// Makes the explorer stop at Ctrl-C or SIGTERM (the flag of
/// `unplug_realfs::child::interrupt`, installed here): the crash points not yet explored are
/// then unproven, and the command reports what it proved and exits 130.
pub(crate) fn install_interrupt() {
    let _ = unplug_realfs::child::interrupt::install();
    unplug_explorer::budget::set_interrupt(unplug_realfs::child::interrupt::interrupted);
}

/// The note a command prints (on stderr) when an exploration stopped at the budget.
pub(crate) fn note() -> Option<String> {
    unplug_explorer::budget::memory_hit().then(|| {
        "unplug: the memory budget was reached: the crash points it cut short are reported as \
         not proven (raise it with --max-memory)"
            .to_string()
    })
}

/// `--max-memory`, shared by every exploring command.
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct Budget {
    /// Most memory the exploration may hold (live bytes, e.g. 512MiB, 2GiB); past it, the crash
    /// points not yet explored are reported as not proven. Default: half the memory available,
    /// at most 1GiB.
    #[arg(long, value_name = "SIZE", env = "UNPLUG_MAX_MEMORY", value_parser = parse_budget)]
    pub(crate) max_memory: Option<u64>,
}

impl Budget {
    /// Installs the meter; the budget in bytes, for [`unplug_explorer::Limits`].
    pub(crate) fn install(&self) -> usize {
        install(self.max_memory.unwrap_or_else(default_budget))
    }
}
