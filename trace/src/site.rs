//! Where a call was made: the instruction pointer, then return addresses, each with the object
//! file it lies in and its offset in that file (so that the site can be symbolized after the
//! process is gone). Return addresses come from the frame-pointer chain (`rbp` -> saved `rbp`,
//! return address) and, where that chain stops early (most of Debian's code is built without
//! frame pointers), from a scan of the stack: a word that points into an executable mapping just
//! after a call instruction is taken as a return address. The scan is a heuristic: a stale
//! return address left on the stack can show up as a frame.

use libc::user_regs_struct;
use nix::unistd::Pid;
use std::path::PathBuf;

use crate::mem;

/// One address of a call site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The address in the process.
    pub addr: u64,
    /// The file mapped there (an executable or a shared library), if any.
    pub object: Option<PathBuf>,
    /// The offset of `addr` in that file.
    pub offset: u64,
}

/// How far above the stack pointer the scan looks for return addresses.
const SCAN: u64 = 16 << 10;

thread_local! {
    /// The executable mappings of each task, read from /proc once and again only when an address
    /// falls outside them (a library loaded since).
    static MAPS: std::cell::RefCell<std::collections::HashMap<i32, std::rc::Rc<Vec<Exec>>>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

/// The executable mappings of `pid` (cached), re-read when `addr` is in none of them.
fn maps_for(pid: Pid, addr: u64) -> std::rc::Rc<Vec<Exec>> {
    MAPS.with(|m| {
        let mut m = m.borrow_mut();
        if let Some(v) = m.get(&pid.as_raw()) {
            if v.iter().any(|e| e.start <= addr && addr < e.end) {
                return v.clone();
            }
        }
        let v = std::rc::Rc::new(exec_maps(pid));
        m.insert(pid.as_raw(), v.clone());
        v
    })
}

/// An executable mapping of the process: [start, end), its file offset and file.
struct Exec {
    start: u64,
    end: u64,
    offset: u64,
    path: Option<PathBuf>,
}

fn exec_maps(pid: Pid) -> Vec<Exec> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (range, perms, off) = (f.next()?, f.next()?, f.next()?);
            if !perms.contains('x') {
                return None;
            }
            let (a, b) = range.split_once('-')?;
            let path = f.nth(2).filter(|p| p.starts_with('/')).map(PathBuf::from);
            Some(Exec {
                start: u64::from_str_radix(a, 16).ok()?,
                end: u64::from_str_radix(b, 16).ok()?,
                offset: u64::from_str_radix(off, 16).ok()?,
                path,
            })
        })
        .collect()
}

/// Whether the bytes before `ret` end with a call instruction (call rel32, or an indirect call
/// `FF /2` through a register or memory operand of 2, 3, 6 or 7 bytes).
fn after_call(pid: Pid, ret: u64) -> bool {
    let code = mem::read_bytes(pid, ret.saturating_sub(7), 7);
    if code.len() < 7 {
        return false;
    }
    let at = |back: usize| code[7 - back];
    let modrm_call = |b: u8| b & 0x38 == 0x10;
    at(5) == 0xe8
        || (at(2) == 0xff && modrm_call(at(1)))
        || (at(3) == 0xff && modrm_call(at(2)))
        || (at(6) == 0xff && modrm_call(at(5)))
        || (at(7) == 0xff && modrm_call(at(6)))
}

/// The site of the call `regs` stopped at: `rip`, then at most `depth` return addresses.
pub(crate) fn site(pid: Pid, regs: &user_regs_struct, depth: usize) -> Vec<Frame> {
    let maps = maps_for(pid, regs.rip);
    let find = |a: u64| maps.iter().find(|m| m.start <= a && a < m.end);
    let frame = |a: u64| {
        let m = find(a);
        Frame {
            addr: a,
            object: m.and_then(|m| m.path.clone()),
            offset: m.map_or(a, |m| a - m.start + m.offset),
        }
    };
    let mut addrs = vec![regs.rip];
    let mut fp = regs.rbp;
    // A frame lies above the stack pointer, and not absurdly far above it.
    let mut floor = regs.rsp;
    while addrs.len() <= depth {
        if fp < floor || fp & 7 != 0 || fp - regs.rsp > (64 << 20) {
            break;
        }
        let bytes = mem::read_bytes(pid, fp, 16);
        if bytes.len() < 16 {
            break;
        }
        let next = u64::from_ne_bytes(bytes[..8].try_into().unwrap_or_default());
        let ret = u64::from_ne_bytes(bytes[8..].try_into().unwrap_or_default());
        if find(ret).is_none() {
            break;
        }
        addrs.push(ret);
        floor = fp + 16;
        fp = next;
    }
    if addrs.len() <= depth {
        // The chain stopped early: scan the stack instead.
        addrs.truncate(1);
        let stack = mem::read_bytes(pid, regs.rsp, SCAN as usize);
        for w in stack.chunks_exact(8) {
            if addrs.len() > depth {
                break;
            }
            let a = u64::from_ne_bytes(w.try_into().unwrap_or_default());
            if find(a).is_some() && after_call(pid, a) {
                addrs.push(a);
            }
        }
    }
    addrs.into_iter().map(frame).collect()
}
