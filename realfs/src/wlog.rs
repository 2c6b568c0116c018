//! The dm-log-writes log format, as qemu's `blklogwrites` block driver writes it.
//!
//! The log is little-endian and cut into sectors of the log's sector size (`log-sector-size`,
//! 512 in unplug's setups). Sector 0 is the super block: magic (u64, [`MAGIC`]), version (u64,
//! 1), number of entries (u64) and sector size (u32). Entries follow from sector 1, in
//! completion order. Each entry starts with a header sector holding the written sector (u64,
//! in units of the log's sector size), the number of sectors (u64), the flags (u64: [`FLUSH`],
//! [`FUA`], [`DISCARD`], [`MARK`]) and a data length (u64), and is followed by:
//!
//! - for a write (including a write that also carries [`FLUSH`] or [`FUA`], as the kernel's
//!   dm-log-writes logs a `REQ_PREFLUSH` write): its data, `nr_sectors` sectors;
//! - for a flush or a discard: nothing;
//! - for a mark: nothing either; its name (`data_len` bytes) sits in the header sector itself,
//!   right after the 32-byte header, as the kernel writes it (`write_metadata`).
//!
//! The super block's entry count is only rewritten at flushes (and every 4096 entries), so a log
//! whose last entries came after the last flush has more entries than it says: [`parse`] reads
//! entries to the end of the bytes and uses the count only as a lower bound. A trailing entry
//! cut short (the writer was stopped while appending) ends the log cleanly; its bytes are
//! reported in [`Log::ignored_tail_bytes`]. So is a trailing run of all-zero header sectors past
//! the counted entries (a preallocated or reused log file), because no writer logs an entry of
//! zero sectors with no flags.

use std::io;
use std::path::PathBuf;

/// The super block's magic number.
pub const MAGIC: u64 = 0x006a_7366_7773_6872;
/// The only log version there is.
pub(crate) const VERSION: u64 = 1;
/// Entry flag: a cache flush (with no data, or before a write's data).
pub const FLUSH: u64 = 1;
/// Entry flag: a forced-unit-access write, durable when it completes.
pub const FUA: u64 = 2;
/// Entry flag: a discard of `nr_sectors` sectors (no data logged).
pub const DISCARD: u64 = 4;
/// Entry flag: a mark, whose name is logged in the header sector.
pub const MARK: u64 = 8;

/// The size of an entry header (four u64 fields), the rest of its sector is padding or a mark's
/// name.
const HEADER_LEN: usize = 32;
/// The size of the super block's fields.
const SUPER_LEN: usize = 28;

/// One logged request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// First sector written, in units of [`Log::sector_size`].
    pub sector: u64,
    /// Number of sectors written or discarded.
    pub sectors: u64,
    /// The flags ([`FLUSH`], [`FUA`], [`DISCARD`], [`MARK`]; unknown bits are kept).
    pub flags: u64,
    /// For a write: the data, `sectors * sector_size` bytes. For a mark: its name. Otherwise
    /// empty.
    pub data: Vec<u8>,
}

impl Entry {
    /// True when the entry carries written data (not a mark, a discard or a bare flush).
    pub fn is_write(&self) -> bool {
        self.flags & (MARK | DISCARD) == 0 && self.sectors > 0
    }

    /// True when the entry has the [`FLUSH`] flag.
    pub fn is_flush(&self) -> bool {
        self.flags & FLUSH != 0
    }

    /// True when the entry has the [`FUA`] flag.
    pub fn is_fua(&self) -> bool {
        self.flags & FUA != 0
    }

    /// Whether data sectors follow this entry's header in the log.
    fn has_data_sectors(&self) -> bool {
        self.flags & (MARK | DISCARD) == 0
    }
}

/// A parsed log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Log {
    /// The log's sector size in bytes (a power of two, at least 512).
    pub sector_size: u32,
    /// The entries, in completion order.
    pub entries: Vec<Entry>,
    /// Bytes at the end of the log that were not part of a whole entry (a truncated trailing
    /// entry, or zero header sectors past the counted entries).
    pub ignored_tail_bytes: u64,
}

/// Why a log could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The bytes are shorter than a super block.
    #[error("the log is {len} bytes, shorter than its super block")]
    TooShort {
        /// The length of the bytes.
        len: usize,
    },
    /// The magic number is wrong: this is no dm-log-writes log.
    #[error("bad magic {found:#x} (expected {MAGIC:#x})")]
    BadMagic {
        /// The magic found.
        found: u64,
    },
    /// The version is not 1.
    #[error("unsupported log version {found}")]
    BadVersion {
        /// The version found.
        found: u64,
    },
    /// The sector size is not a power of two between 512 and 1 MiB.
    #[error("bad log sector size {found}")]
    BadSectorSize {
        /// The sector size found.
        found: u32,
    },
    /// The log holds fewer whole entries than its super block counts.
    #[error("the super block counts {counted} entries but only {found} are whole")]
    MissingEntries {
        /// The super block's count.
        counted: u64,
        /// The whole entries found.
        found: u64,
    },
    /// A mark's name does not fit in its header sector.
    #[error("entry {index}: mark name of {len} bytes does not fit in a sector")]
    BadMark {
        /// The entry's index.
        index: usize,
        /// The name length the header gives.
        len: u64,
    },
    /// The log file could not be read.
    #[error("reading {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(b)
}

/// Parses a whole log. Entries are read to the end of `bytes` (see the module documentation);
/// the super block's count is checked as a lower bound.
pub fn parse(bytes: &[u8]) -> Result<Log, LogError> {
    if bytes.len() < SUPER_LEN {
        return Err(LogError::TooShort { len: bytes.len() });
    }
    let magic = u64_at(bytes, 0);
    if magic != MAGIC {
        return Err(LogError::BadMagic { found: magic });
    }
    let version = u64_at(bytes, 8);
    if version != VERSION {
        return Err(LogError::BadVersion { found: version });
    }
    let counted = u64_at(bytes, 16);
    let sector_size = u32::from_le_bytes([bytes[24], bytes[25], bytes[26], bytes[27]]);
    if !sector_size.is_power_of_two() || !(512..=1 << 20).contains(&sector_size) {
        return Err(LogError::BadSectorSize { found: sector_size });
    }
    let ss = sector_size as usize;
    if bytes.len() < ss {
        return Err(LogError::TooShort { len: bytes.len() });
    }
    let mut entries = Vec::new();
    let mut at = ss;
    while at < bytes.len() {
        let rest = bytes.len() - at;
        if rest < ss {
            break;
        }
        let header = &bytes[at..at + ss];
        let sector = u64_at(header, 0);
        let sectors = u64_at(header, 8);
        let flags = u64_at(header, 16);
        let data_len = u64_at(header, 24);
        if (entries.len() as u64) >= counted && header.iter().all(|&b| b == 0) {
            // A zero header past the counted entries: unused space, not an entry.
            break;
        }
        let mut entry = Entry {
            sector,
            sectors,
            flags,
            data: Vec::new(),
        };
        let mut len = ss;
        if flags & MARK != 0 {
            if data_len > (ss - HEADER_LEN) as u64 {
                return Err(LogError::BadMark {
                    index: entries.len(),
                    len: data_len,
                });
            }
            entry.data = header[HEADER_LEN..HEADER_LEN + data_len as usize].to_vec();
        } else if entry.has_data_sectors() {
            let data = sectors
                .checked_mul(sector_size as u64)
                .and_then(|d| usize::try_from(d).ok())
                .filter(|&d| d <= rest - ss);
            let Some(data) = data else {
                // The data runs past the end: a truncated trailing entry.
                break;
            };
            entry.data = bytes[at + ss..at + ss + data].to_vec();
            len += data;
        }
        entries.push(entry);
        at += len;
    }
    let found = entries.len() as u64;
    if found < counted {
        return Err(LogError::MissingEntries { counted, found });
    }
    Ok(Log {
        sector_size,
        entries,
        ignored_tail_bytes: (bytes.len() - at.min(bytes.len())) as u64,
    })
}

/// Writes `log` in the same format, with the super block counting every entry; a write's data
/// is padded with zeros (or cut) to `sectors * sector_size` bytes. `ignored_tail_bytes` is not
/// written. Used by tests and in-memory fakes.
pub fn encode(log: &Log) -> Vec<u8> {
    let ss = log.sector_size as usize;
    let mut out = vec![0u8; ss];
    out[0..8].copy_from_slice(&MAGIC.to_le_bytes());
    out[8..16].copy_from_slice(&VERSION.to_le_bytes());
    out[16..24].copy_from_slice(&(log.entries.len() as u64).to_le_bytes());
    out[24..28].copy_from_slice(&log.sector_size.to_le_bytes());
    for e in &log.entries {
        let mut header = vec![0u8; ss];
        header[0..8].copy_from_slice(&e.sector.to_le_bytes());
        header[8..16].copy_from_slice(&e.sectors.to_le_bytes());
        header[16..24].copy_from_slice(&e.flags.to_le_bytes());
        if e.flags & MARK != 0 {
            let name = &e.data[..e.data.len().min(ss - HEADER_LEN)];
            header[24..32].copy_from_slice(&(name.len() as u64).to_le_bytes());
            header[HEADER_LEN..HEADER_LEN + name.len()].copy_from_slice(name);
            out.extend_from_slice(&header);
        } else {
            out.extend_from_slice(&header);
            if e.has_data_sectors() {
                let len = e.sectors as usize * ss;
                let start = out.len();
                out.extend_from_slice(&e.data[..e.data.len().min(len)]);
                out.resize(start + len, 0);
            }
        }
    }
    out
}

/// Where a log comes from: a file a run left, or bytes in memory for tests.
pub trait LogSource {
    /// Reads and parses the whole log.
    fn read_log(&self) -> Result<Log, LogError>;
}

/// A log in a file.
#[derive(Clone, Debug)]
pub struct FileLog(pub PathBuf);

impl LogSource for FileLog {
    fn read_log(&self) -> Result<Log, LogError> {
        let bytes = std::fs::read(&self.0).map_err(|source| LogError::Io {
            path: self.0.clone(),
            source,
        })?;
        parse(&bytes)
    }
}

/// A log in memory.
#[derive(Clone, Debug)]
pub struct MemLog(pub Vec<u8>);

impl LogSource for MemLog {
    fn read_log(&self) -> Result<Log, LogError> {
        parse(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(sector: u64, sectors: u64, flags: u64, fill: u8) -> Entry {
        Entry {
            sector,
            sectors,
            flags,
            data: vec![fill; sectors as usize * 512],
        }
    }

    fn sample() -> Log {
        Log {
            sector_size: 512,
            entries: vec![
                write(8, 2, 0, 0xaa),
                Entry {
                    sector: 0,
                    sectors: 0,
                    flags: FLUSH,
                    data: vec![],
                },
                write(100, 1, FUA, 0xbb),
                Entry {
                    sector: 0,
                    sectors: 0,
                    flags: MARK,
                    data: b"op-3".to_vec(),
                },
                Entry {
                    sector: 40,
                    sectors: 16,
                    flags: DISCARD,
                    data: vec![],
                },
                write(3, 1, FLUSH | FUA, 0xcc),
            ],
            ignored_tail_bytes: 0,
        }
    }

    #[test]
    fn round_trip() {
        let log = sample();
        let bytes = encode(&log);
        // Super block + 6 headers + 2 + 1 + 1 data sectors.
        assert_eq!(bytes.len(), 512 * (1 + 6 + 4));
        assert_eq!(parse(&bytes).unwrap(), log);
        assert_eq!(MemLog(bytes).read_log().unwrap(), log);
    }

    #[test]
    fn hand_built_bytes() {
        let mut b = vec![0u8; 512 * 4];
        b[0..8].copy_from_slice(&0x6a736677736872u64.to_le_bytes());
        b[8..16].copy_from_slice(&1u64.to_le_bytes());
        b[16..24].copy_from_slice(&2u64.to_le_bytes());
        b[24..28].copy_from_slice(&512u32.to_le_bytes());
        // Entry 0 at sector 1: write of 1 sector at sector 77, FUA.
        b[512..520].copy_from_slice(&77u64.to_le_bytes());
        b[520..528].copy_from_slice(&1u64.to_le_bytes());
        b[528..536].copy_from_slice(&2u64.to_le_bytes());
        b[1024..1536].fill(0x5a);
        // Entry 1 at sector 3: a flush.
        b[1536 + 16..1536 + 24].copy_from_slice(&1u64.to_le_bytes());
        let log = parse(&b).unwrap();
        assert_eq!(log.sector_size, 512);
        assert_eq!(log.ignored_tail_bytes, 0);
        assert_eq!(log.entries.len(), 2);
        let e = &log.entries[0];
        assert_eq!((e.sector, e.sectors, e.flags), (77, 1, FUA));
        assert!(e.is_write() && e.is_fua() && !e.is_flush());
        assert_eq!(e.data, vec![0x5a; 512]);
        let f = &log.entries[1];
        assert!(f.is_flush() && !f.is_write() && f.data.is_empty());
        // encode writes exactly these bytes back.
        assert_eq!(encode(&log), b);
    }

    #[test]
    fn entries_past_the_count_are_read() {
        let log = sample();
        let mut bytes = encode(&log);
        // The count as of the first flush only.
        bytes[16..24].copy_from_slice(&2u64.to_le_bytes());
        assert_eq!(parse(&bytes).unwrap().entries, log.entries);
    }

    #[test]
    fn truncated_tail_is_ignored_and_counted() {
        let log = sample();
        let full = encode(&log);
        let mut bytes = full.clone();
        bytes[16..24].copy_from_slice(&2u64.to_le_bytes());
        // Cut the last entry (header + 1 data sector) in its data sector.
        let cut = full.len() - 100;
        let got = parse(&bytes[..cut]).unwrap();
        assert_eq!(got.entries, log.entries[..5]);
        assert_eq!(got.ignored_tail_bytes, 512 + 412);
        // Cut in a header.
        let got = parse(&bytes[..full.len() - 1024 + 10]).unwrap();
        assert_eq!(got.entries, log.entries[..5]);
        assert_eq!(got.ignored_tail_bytes, 10);
        // Trailing zero sectors past the count.
        let mut padded = full.clone();
        padded.resize(full.len() + 2048, 0);
        let got = parse(&padded).unwrap();
        assert_eq!(got.entries, log.entries);
        assert_eq!(got.ignored_tail_bytes, 2048);
    }

    #[test]
    fn bad_input_is_an_error() {
        let full = encode(&sample());
        assert!(matches!(parse(&full[..20]), Err(LogError::TooShort { .. })));
        let mut b = full.clone();
        b[0] ^= 1;
        assert!(matches!(parse(&b), Err(LogError::BadMagic { .. })));
        let mut b = full.clone();
        b[8] = 2;
        assert!(matches!(parse(&b), Err(LogError::BadVersion { found: 2 })));
        let mut b = full.clone();
        b[24..28].copy_from_slice(&500u32.to_le_bytes());
        assert!(matches!(parse(&b), Err(LogError::BadSectorSize { .. })));
        let mut b = full.clone();
        b[16..24].copy_from_slice(&7u64.to_le_bytes());
        assert!(matches!(
            parse(&b),
            Err(LogError::MissingEntries {
                counted: 7,
                found: 6
            })
        ));
        // A huge sector count is a truncated tail, not a panic or an allocation.
        let mut b = full.clone();
        b[16..24].copy_from_slice(&0u64.to_le_bytes());
        b[512 + 8..512 + 16].copy_from_slice(&u64::MAX.to_le_bytes());
        let got = parse(&b).unwrap();
        assert!(got.entries.is_empty());
        assert_eq!(got.ignored_tail_bytes, (full.len() - 512) as u64);
        // A mark name longer than its sector.
        let mut b = full.clone();
        let mark = 512 * (1 + 1 + 2 + 1 + 1 + 1);
        b[mark + 24..mark + 32].copy_from_slice(&600u64.to_le_bytes());
        assert!(matches!(parse(&b), Err(LogError::BadMark { index: 3, .. })));
        let missing = FileLog(PathBuf::from("/nonexistent/unplug.wlog")).read_log();
        assert!(matches!(missing, Err(LogError::Io { .. })));
    }

    #[test]
    fn larger_sector_size() {
        let log = Log {
            sector_size: 4096,
            entries: vec![Entry {
                sector: 2,
                sectors: 1,
                flags: 0,
                data: vec![7; 4096],
            }],
            ignored_tail_bytes: 0,
        };
        let bytes = encode(&log);
        assert_eq!(bytes.len(), 3 * 4096);
        assert_eq!(parse(&bytes).unwrap(), log);
    }
}
