//! Where a call was made: the instruction pointer, then return addresses from the frame-pointer
//! chain (`rbp` -> saved `rbp`, return address). Best effort: code built without frame pointers
//! (most of Debian's) leaves `rbp` as a general register, and the walk stops at the first frame
//! that is unreadable, misaligned or does not move up the stack.

use libc::user_regs_struct;
use nix::unistd::Pid;

use crate::mem;

/// `[rip, return addresses...]`, at most `depth` return addresses.
pub(crate) fn site(pid: Pid, regs: &user_regs_struct, depth: usize) -> Vec<u64> {
    let mut out = vec![regs.rip];
    let mut fp = regs.rbp;
    // A frame lies above the stack pointer, and not absurdly far above it.
    let mut floor = regs.rsp;
    for _ in 0..depth {
        if fp < floor || fp & 7 != 0 || fp - regs.rsp > (64 << 20) {
            break;
        }
        let frame = mem::read_bytes(pid, fp, 16);
        if frame.len() < 16 {
            break;
        }
        let next = u64::from_ne_bytes(frame[..8].try_into().unwrap_or_default());
        let ret = u64::from_ne_bytes(frame[8..].try_into().unwrap_or_default());
        if ret < 4096 {
            break;
        }
        out.push(ret);
        floor = fp + 16;
        fp = next;
    }
    out
}
