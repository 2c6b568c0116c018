//! The ops on a shared mapping: mmap, store, msync and munmap.

use super::files::write_bytes;
use super::fs::{err, file_handle, within_max_size, Fs, Mapping};
use super::{OpFacts, SyncReq, BLOCK};
use crate::diag::Diagnostic;
use crate::program::{MsyncMode, Op};

/// `MAP = mmap HANDLE OFFSET LEN`: a shared mapping, which holds the handle's open file
/// description until it is unmapped.
pub(super) fn mmap(
    fs: &mut Fs,
    op: &Op,
    name: &str,
    map: &str,
    offset: u64,
    len: u64,
) -> Result<OpFacts, Diagnostic> {
    let h = file_handle(fs, op, name)?;
    if fs.maps.contains_key(map) {
        return Err(err(op, format!("mapping `{map}` already exists"))
            .with_hint("munmap it first, or use another name"));
    }
    if !offset.is_multiple_of(BLOCK) {
        return Err(err(
            op,
            format!("mmap offset {offset} is not a multiple of the page size ({BLOCK})"),
        ));
    }
    if len == 0 {
        return Err(err(op, "mmap of length 0 fails with EINVAL"));
    }
    // The parser checked that the sum fits in 64 bits.
    within_max_size(op, "the mapping", offset.saturating_add(len), "EOVERFLOW")?;
    fs.descs[h.desc] += 1;
    fs.maps.insert(
        map.to_string(),
        Mapping {
            ino: h.ino,
            desc: h.desc,
            offset,
            len,
        },
    );
    Ok(OpFacts::default())
}

/// `store MAP OFFSET LEN DATA`: a write through the mapping, inside the file's size.
pub(super) fn store(
    fs: &mut Fs,
    op: &Op,
    map: &str,
    offset: u64,
    len: u64,
    data: &str,
    data_off: Option<u64>,
) -> Result<OpFacts, Diagnostic> {
    let mut f = OpFacts::default();
    let m = fs
        .maps
        .get(map)
        .cloned()
        .ok_or_else(|| err(op, format!("mapping `{map}` does not exist at this point")))?;
    let end = offset
        .checked_add(len)
        .ok_or_else(|| err(op, "offset + length overflows"))?;
    if end > m.len {
        return Err(err(
            op,
            format!(
                "store ends at {end}, past the end of the {}-byte mapping",
                m.len
            ),
        ));
    }
    let (fstart, fend) = (m.offset + offset, m.offset + end);
    let size = fs.inodes[&m.ino].size;
    if fend > size.div_ceil(BLOCK) * BLOCK {
        return Err(err(op, format!("store touches file offset {fend}, past the last page of the {size}-byte file: SIGBUS"))
            .with_hint("ftruncate the file to its final size before storing through the mapping"));
    }
    if fend > size {
        return Err(err(
            op,
            format!("store past the end of the file ({size} bytes) is not written back"),
        )
        .with_hint("ftruncate the file to its final size first"));
    }
    let doff = data_off.unwrap_or(fstart);
    fs.use_data(data, doff, len).map_err(|m| err(op, m))?;
    write_bytes(fs, &mut f, m.ino, fstart, fend, data, doff);
    if let Some(d) = f.dirtied.last_mut() {
        d.mapped = true;
    }
    Ok(f)
}

/// `msync MAP [OFFSET LEN] sync|async`: MS_SYNC is a ranged fdatasync of the mapped file;
/// MS_ASYNC does nothing (and `invalidate` changes nothing the models see).
pub(super) fn msync(
    fs: &mut Fs,
    op: &Op,
    map: &str,
    range: Option<(u64, u64)>,
    mode: MsyncMode,
) -> Result<OpFacts, Diagnostic> {
    let mut f = OpFacts::default();
    let m = fs
        .maps
        .get(map)
        .cloned()
        .ok_or_else(|| err(op, format!("mapping `{map}` does not exist at this point")))?;
    let (off, len) = range.unwrap_or((0, m.len));
    if off % BLOCK != 0 {
        return Err(err(
            op,
            format!("msync offset {off} is not a multiple of the page size ({BLOCK}): EINVAL"),
        ));
    }
    let end = off
        .checked_add(len)
        .ok_or_else(|| err(op, "offset + length overflows"))?;
    if end > m.len {
        return Err(err(
            op,
            format!(
                "msync range ends at {end}, past the {}-byte mapping: ENOMEM",
                m.len
            ),
        ));
    }
    if mode == MsyncMode::Sync {
        let (s, e) = (m.offset + off, m.offset + end);
        fs.cut(m.ino, s);
        fs.cut(m.ino, e);
        f.sync = Some(SyncReq::Msync {
            ino: m.ino,
            start: s,
            end: e,
        });
    }
    Ok(f)
}

/// `munmap MAP`.
pub(super) fn munmap(fs: &mut Fs, op: &Op, map: &str) -> Result<OpFacts, Diagnostic> {
    let mut f = OpFacts::default();
    let Some(m) = fs.maps.remove(map) else {
        return Err(err(
            op,
            format!("mapping `{map}` does not exist at this point"),
        ));
    };
    fs.unref(&mut f, m.desc, m.ino);
    Ok(f)
}
