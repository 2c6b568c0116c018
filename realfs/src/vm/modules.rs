//! Which kernel modules a guest loads, and in which order, resolved from the files `depmod`
//! wrote (`modules.dep`, `modules.softdep`, `modules.alias`, `modules.builtin`,
//! `modules.builtin.modinfo`) the way `modprobe --show-depends` does, without running it.
//!
//! For each name: an alias is resolved to every module it names (as modprobe does; a name
//! built into the kernel needs nothing), then the module's `softdep ... pre:` modules, its
//! `modules.dep` dependencies (loaded last-listed first), the module itself and its `post:`
//! modules. A module appears once, at its first place. Unlike modprobe, every `softdep` line
//! of a module counts (modprobe reads only the first): btrfs's checksum drivers are then all
//! loaded, which costs a few milliseconds and avoids a mount failing for want of `modprobe`
//! in the guest.

use super::{GuestKernel, VmError};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The modules every guest loads first: the virtio block device on the PCI transport.
const BLOCK: &[&str] = &["virtio_blk", "virtio_pci"];

/// The module each supported file system is (its chain follows from the dependency files).
fn fs_module(fs: &str) -> Result<&'static str, VmError> {
    match fs {
        "ext4" => Ok("ext4"),
        "xfs" => Ok("xfs"),
        "btrfs" => Ok("btrfs"),
        other => Err(VmError::UnknownFs(other.to_string())),
    }
}

/// The `.ko` files (absolute paths, possibly compressed `.ko.xz`, `.ko.zst` or `.ko.gz`) to
/// load in this order for a guest that mounts `fs` (`ext4`, `xfs` or `btrfs`) on a virtio
/// block device: the virtio chain, then the file system's chain.
pub fn modules_for(kernel: &GuestKernel, fs: &str) -> Result<Vec<PathBuf>, VmError> {
    let fs = fs_module(fs)?;
    let db = ModuleDb::load(&kernel.modules)?;
    let mut order = Vec::new();
    for name in BLOCK.iter().chain([&fs]) {
        db.resolve(name, true, &mut order, &mut BTreeSet::new())?;
    }
    Ok(order
        .into_iter()
        .map(|rel| kernel.modules.join(rel))
        .collect())
}

/// A module's name as the kernel knows it: the file name without `.ko[.xz]`, `-` as `_`.
pub(crate) fn module_name(path: &str) -> String {
    let file = path.rsplit('/').next().unwrap_or(path);
    let stem = file.split(".ko").next().unwrap_or(file);
    normalize(stem)
}

fn normalize(name: &str) -> String {
    name.replace('-', "_")
}

/// The parsed dependency files of one kernel.
#[derive(Debug, Default)]
pub(crate) struct ModuleDb {
    /// Module name -> (path relative to lib/modules/<version>, its dependencies' paths).
    deps: BTreeMap<String, (String, Vec<String>)>,
    /// Module name -> (pre, post) soft dependencies (names or aliases), every line merged.
    softdeps: BTreeMap<String, (Vec<String>, Vec<String>)>,
    /// (pattern, module name) from modules.alias, in file order.
    aliases: Vec<(String, String)>,
    /// Names and aliases of modules built into the kernel.
    builtin: BTreeSet<String>,
}

impl ModuleDb {
    /// Reads the dependency files in `dir` (lib/modules/<version>); modules.dep must exist,
    /// the others are optional.
    pub(crate) fn load(dir: &Path) -> Result<Self, VmError> {
        let read = |name: &str, required: bool| -> Result<Vec<u8>, VmError> {
            let path = dir.join(name);
            match std::fs::read(&path) {
                Ok(bytes) => Ok(bytes),
                Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
                Err(source) => Err(VmError::Io {
                    what: "reading the module list",
                    path,
                    source,
                }),
            }
        };
        let text = |bytes: Vec<u8>| String::from_utf8_lossy(&bytes).into_owned();
        Ok(Self::parse(
            &text(read("modules.dep", true)?),
            &text(read("modules.softdep", false)?),
            &text(read("modules.alias", false)?),
            &text(read("modules.builtin", false)?),
            &read("modules.builtin.modinfo", false)?,
        ))
    }

    /// Parses the files' contents (the unit of the tests).
    pub(crate) fn parse(
        dep: &str,
        softdep: &str,
        alias: &str,
        builtin: &str,
        builtin_modinfo: &[u8],
    ) -> Self {
        let mut db = ModuleDb::default();
        for line in dep.lines() {
            let Some((path, rest)) = line.split_once(':') else {
                continue;
            };
            let deps = rest.split_whitespace().map(str::to_string).collect();
            db.deps
                .insert(module_name(path), (path.trim().to_string(), deps));
        }
        for line in softdep.lines() {
            let mut words = line.split_whitespace();
            if words.next() != Some("softdep") {
                continue;
            }
            let Some(module) = words.next() else { continue };
            let entry = db.softdeps.entry(normalize(module)).or_default();
            let mut post = false;
            for word in words {
                match word {
                    "pre:" => post = false,
                    "post:" => post = true,
                    name if post => entry.1.push(name.to_string()),
                    name => entry.0.push(name.to_string()),
                }
            }
        }
        for line in alias.lines() {
            let mut words = line.split_whitespace();
            if let (Some("alias"), Some(pattern), Some(module)) =
                (words.next(), words.next(), words.next())
            {
                db.aliases.push((pattern.to_string(), normalize(module)));
            }
        }
        db.builtin
            .extend(builtin.lines().map(module_name).filter(|n| !n.is_empty()));
        // modules.builtin.modinfo: NUL-separated `module.key=value`; the aliases are what
        // modprobe checks before saying a name is unknown.
        for field in builtin_modinfo.split(|&b| b == 0) {
            let field = String::from_utf8_lossy(field);
            if let Some((module, value)) = field.split_once(".alias=") {
                db.builtin.insert(normalize(value));
                db.builtin.insert(normalize(module));
            }
        }
        db
    }

    /// Appends to `order` the paths that load `name` (a module name or alias), dependencies
    /// first. `required`: an unknown name is an error (for soft dependencies it is skipped, as
    /// modprobe does). `visiting` breaks soft-dependency cycles.
    pub(crate) fn resolve(
        &self,
        name: &str,
        required: bool,
        order: &mut Vec<String>,
        visiting: &mut BTreeSet<String>,
    ) -> Result<(), VmError> {
        let modules = self.lookup(name);
        if modules.is_empty() {
            if required && !self.builtin.contains(&normalize(name)) {
                return Err(VmError::UnknownModule(name.to_string()));
            }
            return Ok(());
        }
        for module in modules {
            if !visiting.insert(module.clone()) {
                continue;
            }
            let (path, deps) = &self.deps[&module];
            let (pre, post) = self.softdeps.get(&module).cloned().unwrap_or_default();
            for soft in &pre {
                self.resolve(soft, false, order, visiting)?;
            }
            // modules.dep lists a module's dependencies so that the last is loaded first.
            for dep in deps.iter().rev() {
                self.resolve(&module_name(dep), required, order, visiting)?;
            }
            if !order.contains(path) {
                order.push(path.clone());
            }
            for soft in &post {
                self.resolve(soft, false, order, visiting)?;
            }
        }
        Ok(())
    }

    /// The modules `name` stands for: itself if it is a module (and not built in), else every
    /// module whose alias pattern matches it.
    fn lookup(&self, name: &str) -> Vec<String> {
        let normalized = normalize(name);
        if self.deps.contains_key(&normalized) {
            return vec![normalized];
        }
        if self.builtin.contains(&normalized) {
            return Vec::new();
        }
        let mut found: Vec<String> = Vec::new();
        for (pattern, module) in &self.aliases {
            if (pattern == name || glob(pattern.as_bytes(), name.as_bytes()))
                && self.deps.contains_key(module)
                && !found.contains(module)
            {
                found.push(module.clone());
            }
        }
        found
    }
}

/// fnmatch with `*` and `?` (the wildcards of modules.alias that matter for plain names).
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some((b'*', rest)) => (0..=text.len()).any(|i| glob(rest, &text[i..])),
        Some((b'?', rest)) => !text.is_empty() && glob(rest, &text[1..]),
        Some((c, rest)) => text.first() == Some(c) && glob(rest, &text[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEP: &str = "\
kernel/fs/ext4/ext4.ko: kernel/lib/crc16.ko kernel/fs/mbcache.ko kernel/fs/jbd2/jbd2.ko
kernel/fs/jbd2/jbd2.ko:
kernel/fs/mbcache.ko:
kernel/lib/crc16.ko:
kernel/arch/x86/crypto/crc32c-intel.ko:
kernel/crypto/crc32c_generic.ko:
kernel/drivers/virtio/virtio.ko:
kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_pci_modern_dev.ko:
kernel/drivers/virtio/virtio_pci_legacy_dev.ko:
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_legacy_dev.ko kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
";
    const SOFTDEP: &str = "softdep ext4 pre: crypto-crc32c\nsoftdep jbd2 pre: crypto-crc32c\n";
    const ALIAS: &str = "alias crypto-crc32c crc32c_intel\nalias crypto-crc32c crc32c_generic\n\
                         alias cpu:type:x86,ven*fam*mod*:feature:*0094* crc32c_intel\n";

    fn order(db: &ModuleDb, names: &[&str]) -> Vec<String> {
        let mut order = Vec::new();
        for name in names {
            db.resolve(name, true, &mut order, &mut BTreeSet::new())
                .unwrap();
        }
        order.iter().map(|p| module_name(p)).collect()
    }

    #[test]
    fn ext4_and_virtio_load_in_modprobe_order() {
        let db = ModuleDb::parse(DEP, SOFTDEP, ALIAS, "kernel/lib/crc32.ko\n", b"");
        assert_eq!(
            order(&db, &["virtio_blk", "virtio_pci", "ext4"]),
            [
                "virtio_ring",
                "virtio",
                "virtio_blk",
                "virtio_pci_modern_dev",
                "virtio_pci_legacy_dev",
                "virtio_pci",
                "crc32c_intel",
                "crc32c_generic",
                "jbd2",
                "mbcache",
                "crc16",
                "ext4"
            ]
        );
    }

    #[test]
    fn builtin_names_need_nothing_and_unknown_names_fail() {
        let db = ModuleDb::parse(
            DEP,
            "",
            "",
            "kernel/lib/crc32.ko\n",
            b"sha256_generic.alias=sha256\0",
        );
        assert!(order(&db, &["crc32", "sha256"]).is_empty());
        let err = db
            .resolve("nosuchfs", true, &mut Vec::new(), &mut BTreeSet::new())
            .unwrap_err();
        assert!(matches!(err, VmError::UnknownModule(name) if name == "nosuchfs"));
    }

    #[test]
    fn alias_patterns_glob() {
        assert!(glob(b"ven*fam*:x", b"ven1fam2:x"));
        assert!(!glob(b"ven*fam*:x", b"ven1fam2:y"));
        assert!(glob(b"a?c", b"abc"));
    }
}
