//! Fuzz target `load`: the CLI's program loading with size and count extremes. The input is
//! decoded into a `.up` program (not taken as text): ops on a few files and directories whose
//! offsets, lengths and sizes come from a table of extremes (0, one byte, a block, 2^32, 2^63 - 1,
//! 2^63, 1 EiB, u64::MAX and neighbours), repeated up to a few thousand ops. The program is
//! loaded (parse and volatile execution, as every command does), and a program that loads is
//! built and explored under every default model with small bounds and a memory budget (the
//! allocator below counts live bytes, as the CLI's does), so that a program the CLI would end
//! with "bound exceeded" does not reach libFuzzer's own memory limit. Nothing may panic, and a
//! program the parser accepts must either execute or be rejected with diagnostics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::alloc::{GlobalAlloc, Layout, System};
use std::fmt::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use unplug_explorer::{Analysis, Limits};
use unplug_model::ModelSpec;

/// Offsets, lengths and sizes: every boundary the arithmetic could trip on.
const EXTREMES: &[&str] = &[
    "0",
    "1",
    "511",
    "512",
    "4095",
    "4KiB",
    "4097",
    "1MiB",
    "4294967295",
    "4294967296",
    "16TiB",
    "1PiB",
    "1EiB",
    "9223372036854775807",
    "9223372036854775808",
    "18446744073709551615",
    "18446744073709551616",
];

/// The system allocator, counting the bytes allocated and not yet freed.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is passed on to the system allocator unchanged; the wrapper only adds and
// subtracts the sizes of the layouts it is given.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            LIVE.fetch_add(new_size, Ordering::Relaxed);
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// The exploration's memory budget: well under libFuzzer's default limit of 2 GB resident.
const MAX_MEMORY: usize = 512 << 20;

/// Ops are taken from the input in rounds; a round's ops are repeated this many times at most.
const MAX_REPEAT: usize = 400;

fn value(b: u8) -> &'static str {
    EXTREMES[b as usize % EXTREMES.len()]
}

/// One statement from three input bytes; the files `a`, `b` and the directory `d` exist.
fn statement(out: &mut String, op: u8, x: u8, y: u8) {
    let h = if op & 0x80 == 0 { "f" } else { "g" };
    let name = if x & 1 == 0 { "a" } else { "d/b" };
    let _ = match op % 14 {
        0 => writeln!(out, "write {h} {} D", value(x)),
        1 => writeln!(out, "pwrite {h} {} {} D", value(x), value(y)),
        2 => writeln!(out, "ftruncate {h} {}", value(x)),
        3 => writeln!(out, "fallocate {h} {} {}", value(x), value(y)),
        4 => writeln!(out, "fsync {h}"),
        5 => writeln!(out, "fdatasync {h}"),
        6 => writeln!(out, "rename {name} d/c"),
        7 => writeln!(out, "sync"),
        8 => writeln!(out, "m = mmap {h} {} {}", value(x), value(y)),
        9 => writeln!(out, "store m {} {} D", value(x), value(y)),
        10 => writeln!(out, "msync m sync"),
        11 => writeln!(out, "sync_file_range {h} {} {}", value(x), value(y)),
        12 => writeln!(out, "link {name} d/l{}", x % 4),
        _ => writeln!(out, "unlink d/l{}", x % 4),
    };
}

fuzz_target!(|data: &[u8]| {
    let Some((&repeat, ops)) = data.split_first() else {
        return;
    };
    let mut src = String::from("data D 18446744073709551615\nsetup\nmkdir d\nend\n");
    src.push_str("f = open a create\ng = open d/b create\n");
    let mut round = String::new();
    for c in ops.chunks_exact(3).take(64) {
        statement(&mut round, c[0], c[1], c[2]);
    }
    for _ in 0..(repeat as usize % MAX_REPEAT).max(1) {
        src.push_str(&round);
    }
    src.push_str("property A: always exists a\nproperty S: always size a >= 0\n");
    let Ok((program, _trace)) = unplug_model::load(&src) else {
        return;
    };
    let Ok(mut analysis) = Analysis::new(&program) else {
        panic!("a program that loads must execute again");
    };
    unplug_explorer::budget::set_meter(|| LIVE.load(Ordering::Relaxed));
    analysis.limits = Limits {
        max_downsets: 256,
        max_states: 256,
        max_memory: MAX_MEMORY,
    };
    for model in ModelSpec::all() {
        let run = analysis.run(&model);
        assert_eq!(run.check().len(), program.properties.len());
    }
});
