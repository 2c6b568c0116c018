//! Call sites as names: each address of a site symbolized in its object file (blazesym: the
//! ELF symbol table, and DWARF where debug information is installed), `function+0xOFF (object)`;
//! an address without a symbol (a stripped binary's internal function) as `object+0xOFF`.

use blazesym::symbolize::source::{Elf, Source};
use blazesym::symbolize::{Input, Symbolized, Symbolizer};
use std::collections::HashMap;
use std::path::PathBuf;
use unplug_trace::Frame;

/// Frames named per site: at most this many.
const SHOWN: usize = 4;

pub(crate) struct Sites {
    sym: Symbolizer,
    cache: HashMap<(PathBuf, u64), String>,
}

impl Sites {
    pub(crate) fn new() -> Sites {
        Sites {
            sym: Symbolizer::new(),
            cache: HashMap::new(),
        }
    }

    /// The site as `f < caller < ...` (innermost first), from the first frame outside the C
    /// library (its system-call wrappers say nothing about the application).
    pub(crate) fn describe(&mut self, frames: &[Frame]) -> String {
        let libc = |f: &Frame| {
            f.object
                .as_ref()
                .and_then(|o| o.file_name())
                .is_some_and(|n| n.to_string_lossy().starts_with("libc.so"))
        };
        let skip = frames.iter().take_while(|f| libc(f)).count();
        let from = if skip < frames.len() { skip } else { 0 };
        let names: Vec<String> = frames[from..]
            .iter()
            .take(SHOWN)
            .map(|f| self.name(f))
            .collect();
        names.join(" < ")
    }

    fn name(&mut self, f: &Frame) -> String {
        let Some(obj) = &f.object else {
            return format!("{:#x}", f.addr);
        };
        let key = (obj.clone(), f.offset);
        if let Some(n) = self.cache.get(&key) {
            return n.clone();
        }
        let base = obj
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let src = Source::Elf(Elf::new(obj));
        let name = match self.sym.symbolize_single(&src, Input::FileOffset(f.offset)) {
            Ok(Symbolized::Sym(s)) => format!("{}+{:#x} ({base})", s.name, s.offset),
            _ => format!("{base}+{:#x}", f.offset),
        };
        self.cache.insert(key, name.clone());
        name
    }
}
