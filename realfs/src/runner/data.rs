//! The real bytes of a program's data (`data NAME SIZE hex ...` / `file ...`), by name, and the
//! bytes a write or a store of a data writes: the real ones where the run was given them, the
//! self-describing pattern ([`crate::pattern::data_bytes`]) otherwise.

use crate::pattern::data_bytes;
use std::collections::BTreeMap;
use std::io;
use std::sync::Arc;

/// The real content of some of a program's data, by data name. A data without bytes here is
/// written as its pattern, as by [`super::run`] (power-cut runs rely on the patterns to tell
/// where every sector came from).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DataBytes {
    bytes: BTreeMap<String, Arc<[u8]>>,
}

impl DataBytes {
    /// No real bytes: every data is written as its pattern.
    pub fn new() -> Self {
        Self::default()
    }

    /// Gives data `name` the content `bytes` (replacing any it had).
    pub fn insert(&mut self, name: impl Into<String>, bytes: impl Into<Arc<[u8]>>) {
        self.bytes.insert(name.into(), bytes.into());
    }

    /// The real content of data `name`, if it was given.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.bytes.get(name).map(|b| &b[..])
    }

    /// How many data have real bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The data names with real bytes, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.bytes.keys().map(String::as_str)
    }

    /// The `len` bytes a write of data `name` from data offset `data_off` writes:
    /// `bytes[data_off .. data_off + len]` if the data has real bytes (an error if the range
    /// goes past them), its pattern otherwise.
    pub fn slice(&self, name: &str, data_off: u64, len: usize) -> io::Result<Vec<u8>> {
        let Some(bytes) = self.bytes.get(name) else {
            return Ok(data_bytes(name, data_off, len));
        };
        usize::try_from(data_off)
            .ok()
            .and_then(|start| Some((start, start.checked_add(len)?)))
            .and_then(|(start, end)| bytes.get(start..end))
            .map(<[u8]>::to_vec)
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "data `{name}` has {} bytes: [{data_off}, +{len}) is past its end",
                        bytes.len()
                    ),
                )
            })
    }
}

impl<N: Into<String>, B: Into<Arc<[u8]>>> FromIterator<(N, B)> for DataBytes {
    fn from_iter<I: IntoIterator<Item = (N, B)>>(iter: I) -> Self {
        let mut d = DataBytes::new();
        for (name, bytes) in iter {
            d.insert(name, bytes);
        }
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_bytes_or_the_pattern() {
        let d: DataBytes = [("D", vec![1u8, 2, 3, 4, 5])].into_iter().collect();
        assert_eq!(d.slice("D", 1, 3).unwrap(), vec![2, 3, 4]);
        assert_eq!(d.slice("D", 5, 0).unwrap(), Vec::<u8>::new());
        assert!(d.slice("D", 4, 2).is_err());
        assert!(d.slice("D", u64::MAX, 1).is_err());
        assert_eq!(d.slice("E", 512, 100).unwrap(), data_bytes("E", 512, 100));
        assert_eq!(d.get("D"), Some(&[1u8, 2, 3, 4, 5][..]));
        assert_eq!(d.names().collect::<Vec<_>>(), vec!["D"]);
    }
}
