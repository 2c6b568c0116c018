//! Self-describing data: the bytes a program writes say which data they are and from where.
//!
//! A named data (`D`) is an infinite byte stream defined by a pure function of its name. The
//! stream is cut into 512-byte *data sectors*; the data sector at data offset `o` (a multiple of
//! 512) is
//!
//! | bytes     | content                                                   |
//! |-----------|-----------------------------------------------------------|
//! | `0..8`    | the magic `b"UNPLUGv1"`                                   |
//! | `8..16`   | FNV-1a 64 of the name's bytes, little-endian              |
//! | `16..24`  | the data offset `o`, little-endian                        |
//! | `24..32`  | FNV-1a 64 of bytes `0..24`, little-endian (the checksum)  |
//! | `32..512` | a fill drawn from a xorshift64* seeded by (name hash, `o`) |
//!
//! The fill never contains a zero byte, so where written data meets a hole or zeroed blocks the
//! boundary is exact (except inside a tag, whose offset field holds zero bytes).
//!
//! After a crash, [`classify`] reads a file's content back and splits it into maximal extents of
//! zeros, of one data at one displacement (`byte at file offset x == data[x + delta]`), or of
//! unknown bytes (stale blocks, garbage, torn sectors that match nothing).

use serde::Serialize;

mod classify;
#[cfg(test)]
mod tests;

pub use classify::{classify, Extent, Origin};

/// Size of a data sector, the unit a tag describes.
pub const SECTOR: usize = 512;
/// Size of the tag at the start of every data sector.
pub const TAG_LEN: usize = 32;
/// The magic every tag starts with.
pub const MAGIC: &[u8; 8] = b"UNPLUGv1";

/// Shortest run of bytes that [`classify`] attributes to a data (or to zeros) on the strength of
/// a byte comparison alone, when the run is not bounded on both sides by identified content.
/// Shorter coincidental matches inside garbage stay [`Origin::Unknown`].
pub const MIN_MATCH: usize = 8;

/// Shortest run of zeros that [`classify`] takes on its own strength. A data stream never holds
/// this many zeros in a row (the fill has none, a tag's offset field at most 8), so that a tag of
/// a data not asked about does not show up as a hole inside unknown bytes.
pub const MIN_ZEROS: usize = TAG_LEN;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a 64 of `bytes`.
pub(crate) fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h = FNV_OFFSET;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

/// The hash of a data's name that its tags carry.
pub(crate) fn name_hash(name: &str) -> u64 {
    fnv1a64(name.as_bytes())
}

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The whole data sector at data offset `sector_off` (a multiple of [`SECTOR`]) of the data
/// whose name hashes to `hash`.
pub(crate) fn sector_bytes(hash: u64, sector_off: u64) -> [u8; SECTOR] {
    debug_assert_eq!(sector_off % SECTOR as u64, 0);
    let mut s = [0u8; SECTOR];
    s[0..8].copy_from_slice(MAGIC);
    s[8..16].copy_from_slice(&hash.to_le_bytes());
    s[16..24].copy_from_slice(&sector_off.to_le_bytes());
    let sum = fnv1a64(&s[0..24]);
    s[24..32].copy_from_slice(&sum.to_le_bytes());
    // xorshift64*, seeded from (hash, offset); the state must not be zero.
    let mut x = splitmix64(hash ^ splitmix64(sector_off)) | 1;
    for chunk in s[TAG_LEN..].chunks_exact_mut(8) {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        let w = x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes();
        for (d, b) in chunk.iter_mut().zip(w) {
            // Never a zero byte in the fill (see the module doc).
            *d = if b == 0 { 0xa5 } else { b };
        }
    }
    s
}

/// `len` bytes of the data `name` from data offset `data_off` (any offset, aligned or not).
pub fn data_bytes(name: &str, data_off: u64, len: usize) -> Vec<u8> {
    let hash = name_hash(name);
    let mut out = Vec::with_capacity(len);
    let mut off = data_off;
    while out.len() < len {
        let sec = off - off % SECTOR as u64;
        let within = (off - sec) as usize;
        let take = (SECTOR - within).min(len - out.len());
        out.extend_from_slice(&sector_bytes(hash, sec)[within..within + take]);
        off += take as u64;
    }
    out
}

/// What a tag (the first [`TAG_LEN`] bytes of `bytes`) says, if it is a valid tag: the name's
/// hash and the data offset. Valid means: the magic, a matching checksum and an aligned offset.
pub(crate) fn parse_tag(bytes: &[u8]) -> Option<(u64, u64)> {
    if bytes.len() < TAG_LEN || &bytes[0..8] != MAGIC {
        return None;
    }
    let word = |i: usize| u64::from_le_bytes(bytes[i..i + 8].try_into().expect("8 bytes"));
    let (hash, off, sum) = (word(8), word(16), word(24));
    if sum != fnv1a64(&bytes[0..24]) || off % SECTOR as u64 != 0 {
        return None;
    }
    Some((hash, off))
}

/// Where one aligned 512-byte sector came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum SectorOrigin {
    /// All zero bytes.
    Zero,
    /// The whole data sector at `data_off` of data `name`: a valid tag and the whole fill.
    Data { name: String, data_off: u64 },
    /// Anything else: stale content, garbage, a torn or misaligned sector.
    Unknown,
}

/// Classifies one sector that is expected to hold exactly one whole data sector.
pub fn classify_sector(bytes: &[u8; SECTOR], names: &[&str]) -> SectorOrigin {
    if bytes.iter().all(|&b| b == 0) {
        return SectorOrigin::Zero;
    }
    if let Some((hash, off)) = parse_tag(bytes) {
        for name in names {
            if name_hash(name) == hash && sector_bytes(hash, off) == *bytes {
                return SectorOrigin::Data {
                    name: name.to_string(),
                    data_off: off,
                };
            }
        }
    }
    SectorOrigin::Unknown
}
