//! Newtypes for numbers that are easy to mix up.

use serde::Serialize;
use std::fmt;

/// An op number: 1-based, as users see it (op 1 is `program.ops[0]`). [`OpNo::index`] is the
/// 0-based position in `Program::ops`, `Trace::ops` and `Trace::contents`.
///
/// Serialises, prints and parses as the plain 1-based number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct OpNo(usize);

impl OpNo {
    /// Op number `n` (1-based).
    ///
    /// # Panics
    /// If `n` is 0 (no op has number 0: crash point 0 is before op 1).
    pub fn new(n: usize) -> Self {
        assert!(n >= 1, "op numbers are 1-based");
        OpNo(n)
    }
    /// Op number `n`, or None for 0.
    pub fn try_new(n: usize) -> Option<Self> {
        (n >= 1).then_some(OpNo(n))
    }
    /// The op at 0-based position `i`.
    pub fn from_index(i: usize) -> Self {
        OpNo(i + 1)
    }
    /// The 1-based number.
    pub fn get(self) -> usize {
        self.0
    }
    /// The 0-based position.
    pub fn index(self) -> usize {
        self.0 - 1
    }
}

impl fmt::Display for OpNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::OpNo;

    #[test]
    fn op_numbers_are_one_based() {
        let k = OpNo::new(3);
        assert_eq!((k.get(), k.index(), k.to_string()), (3, 2, "3".to_string()));
        assert_eq!(OpNo::from_index(0), OpNo::new(1));
        assert_eq!(OpNo::try_new(0), None);
        assert_eq!(OpNo::try_new(1), Some(OpNo::new(1)));
    }
}
