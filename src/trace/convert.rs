//! A recording as a `.up` program: the starting tree as its setup, each call as an op on named
//! handles and mappings, each distinct content written as a named data with its real bytes
//! (inline hex when small, else a file of the sidecar directory, by content).

use super::tree::{Entry, Tree};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use unplug_trace::{Call, Event, Frame, Recording};

/// Data of at most this many bytes is written inline (`hex`); larger data goes to the sidecar.
const INLINE_MAX: usize = 64;

/// A root and the directory of the program's file system that stands for it (empty: the
/// program's root itself, when there is one root).
pub(crate) struct Root {
    pub(crate) real: PathBuf,
    pub(crate) prefix: Vec<String>,
}

/// The program and what goes beside it.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct Converted {
    pub(crate) text: String,
    /// Sidecar files: (file name, content).
    pub(crate) sidecar: Vec<(String, Vec<u8>)>,
    pub(crate) ops: usize,
    /// Per event of the recording: how many ops the program has once it is converted (an
    /// event makes none, one or several ops).
    pub(crate) ops_after: Vec<usize>,
    pub(crate) syncs: usize,
    /// Calls the program cannot express, by kind (the tracer's and the conversion's).
    pub(crate) unsupported: BTreeMap<String, usize>,
}

/// An open descriptor of the program: its handle name and how many (pid, fd) refer to it.
struct Handle {
    name: String,
    refs: usize,
    /// The real path it was opened by (for descriptors a child inherited).
    path: PathBuf,
}

struct Mapping {
    name: String,
    addr: u64,
    len: u64,
    file_offset: u64,
}

struct Conv<'a> {
    roots: &'a [Root],
    sidecar_dir: String,
    lines: Vec<String>,
    data_lines: Vec<String>,
    data: HashMap<u64, Vec<(String, usize)>>,
    blobs: Vec<Vec<u8>>,
    sidecar: Vec<(String, Vec<u8>)>,
    fds: HashMap<(i32, i32), usize>,
    handles: Vec<Handle>,
    maps: HashMap<i32, Vec<Mapping>>,
    next_handle: usize,
    next_map: usize,
    ops: usize,
    syncs: usize,
    unsupported: BTreeMap<String, usize>,
    dirs: std::collections::HashSet<Vec<String>>,
    sites: super::sites::Sites,
    /// Standard output since the last op (one `stdout` line per gap between ops), and how much
    /// was kept in all (at most [`STDOUT_KEPT`]).
    stdout: Vec<u8>,
    stdout_kept: usize,
}

/// The most standard output a program keeps (a checker needs the acknowledgements, not a log).
const STDOUT_KEPT: usize = 1 << 20;

/// FNV-1a 64: the sidecar's content names.
fn fnv(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Whether `name` can be a path component of the language.
fn component_ok(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

fn show(path: &[String]) -> String {
    if path.is_empty() {
        ".".into()
    } else {
        path.join("/")
    }
}

impl Conv<'_> {
    /// The program path of a real path under a root, or why not.
    fn rel(&self, real: &Path) -> Result<Vec<String>, String> {
        for r in self.roots {
            if let Ok(rest) = real.strip_prefix(&r.real) {
                let mut out = r.prefix.clone();
                for c in rest.components() {
                    let c = c.as_os_str().to_string_lossy().into_owned();
                    if !component_ok(&c) {
                        return Err(format!("name `{c}` the language cannot write"));
                    }
                    out.push(c);
                }
                return Ok(out);
            }
        }
        Err(format!("{} is outside the roots", real.display()))
    }

    fn op(&mut self, line: String, site: &[Frame], pid: i32) {
        self.flush_stdout();
        self.ops += 1;
        let site = if site.is_empty() {
            format!("  # pid {pid}")
        } else {
            format!("  # at {} (pid {pid})", self.sites.describe(site))
        };
        self.lines.push(format!("{line}{site}"));
    }

    /// Standard output, kept up to [`STDOUT_KEPT`] bytes in all.
    fn print(&mut self, data: &[u8]) {
        let room = STDOUT_KEPT.saturating_sub(self.stdout_kept);
        let keep = &data[..data.len().min(room)];
        self.stdout.extend_from_slice(keep);
        self.stdout_kept += keep.len();
        if keep.len() < data.len() {
            let dropped = data.len() - keep.len();
            self.flush_stdout();
            self.lines
                .push(format!("# stdout: {dropped} more bytes not kept"));
        }
    }

    fn flush_stdout(&mut self) {
        if !self.stdout.is_empty() {
            let o = unplug_model::program::Output {
                after: 0,
                bytes: std::mem::take(&mut self.stdout),
                span: Default::default(),
            };
            self.lines.push(unplug_model::print::output(&o));
        }
    }

    fn not_expressible(&mut self, kind: &str, what: &str) {
        *self.unsupported.entry(kind.to_string()).or_default() += 1;
        self.lines
            .push(format!("# not expressible here: {kind}: {what}"));
    }

    /// The name of a data with exactly these bytes (declared on first use).
    fn data(&mut self, bytes: &[u8]) -> String {
        let h = fnv(bytes);
        let same = self.data.entry(h).or_default();
        if let Some((name, _)) = same.iter().find(|(_, i)| self.blobs[*i] == bytes) {
            return name.clone();
        }
        let name = if same.is_empty() {
            format!("d{h:016x}")
        } else {
            format!("d{h:016x}_{}", same.len())
        };
        same.push((name.clone(), self.blobs.len()));
        self.blobs.push(bytes.to_vec());
        let line = if bytes.len() <= INLINE_MAX {
            let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            format!("data {name} {} hex {hex}", bytes.len())
        } else {
            self.sidecar.push((name.clone(), bytes.to_vec()));
            format!(
                "data {name} {} file {}/{name}",
                bytes.len(),
                self.sidecar_dir
            )
        };
        self.data_lines.push(line);
        name
    }

    fn new_handle(&mut self, pid: i32, fd: i32, path: &Path) -> String {
        self.next_handle += 1;
        let name = format!("h{}", self.next_handle);
        self.handles.push(Handle {
            name: name.clone(),
            refs: 1,
            path: path.to_path_buf(),
        });
        self.fds.insert((pid, fd), self.handles.len() - 1);
        name
    }

    /// The handle of descriptor `fd` of `pid`: its own, or one another process (its parent)
    /// holds on the same file with the same number, or a new one opened on the file now.
    fn handle(&mut self, pid: i32, fd: i32, path: &Path, site: &[Frame]) -> Option<String> {
        if let Some(&h) = self.fds.get(&(pid, fd)) {
            return Some(self.handles[h].name.clone());
        }
        let inherited = self
            .fds
            .iter()
            .filter(|((_, f), h)| *f == fd && self.handles[**h].refs > 0)
            .find(|(_, h)| self.handles[**h].path == path)
            .map(|(_, h)| *h);
        if let Some(h) = inherited {
            self.handles[h].refs += 1;
            self.fds.insert((pid, fd), h);
            return Some(self.handles[h].name.clone());
        }
        let rel = match self.rel(path) {
            Ok(r) => r,
            Err(why) => {
                self.not_expressible("descriptor", &why);
                return None;
            }
        };
        let name = self.new_handle(pid, fd, path);
        let dir = if self.dirs.contains(&rel) { " dir" } else { "" };
        self.op(format!("{name} = open {}{dir}", show(&rel)), site, pid);
        Some(name)
    }

    fn close(&mut self, pid: i32, fd: i32, site: &[Frame]) {
        let Some(h) = self.fds.remove(&(pid, fd)) else {
            return;
        };
        self.handles[h].refs -= 1;
        if self.handles[h].refs == 0 {
            let name = self.handles[h].name.clone();
            self.op(format!("close {name}"), site, pid);
        }
    }
}

/// Converts `rec` into a program. `sidecar_dir` is the sidecar's path relative to the program.
pub(crate) fn convert(
    roots: &[Root],
    start: &[(usize, Tree)],
    rec: &Recording,
    sidecar_dir: &str,
    header: &str,
) -> Converted {
    let mut c = Conv {
        roots,
        sidecar_dir: sidecar_dir.to_string(),
        lines: Vec::new(),
        data_lines: Vec::new(),
        data: HashMap::new(),
        blobs: Vec::new(),
        sidecar: Vec::new(),
        fds: HashMap::new(),
        handles: Vec::new(),
        maps: HashMap::new(),
        next_handle: 0,
        next_map: 0,
        ops: 0,
        syncs: 0,
        unsupported: rec.unsupported.clone(),
        dirs: Default::default(),
        sites: super::sites::Sites::new(),
        stdout: Vec::new(),
        stdout_kept: 0,
    };
    let setup = setup(&mut c, start);
    c.lines.clear();
    c.ops = 0;
    let mut ops_after = Vec::with_capacity(rec.events.len());
    for e in &rec.events {
        event(&mut c, e);
        ops_after.push(c.ops);
    }
    c.flush_stdout();
    let mut text = String::from(header);
    for l in &c.data_lines {
        let _ = writeln!(text, "{l}");
    }
    if !setup.is_empty() {
        text.push_str("setup\n");
        for l in &setup {
            let _ = writeln!(text, "{l}");
        }
        text.push_str("end\n");
    }
    for l in &c.lines {
        let _ = writeln!(text, "{l}");
    }
    Converted {
        text,
        sidecar: c.sidecar,
        ops: c.ops,
        ops_after,
        syncs: c.syncs,
        unsupported: c.unsupported,
    }
}

/// The setup: the starting tree of each root (directories, files with their content, hard
/// links, symlinks).
fn setup(c: &mut Conv, start: &[(usize, Tree)]) -> Vec<String> {
    let mut out = Vec::new();
    for (root, entries) in start {
        let prefix = c.roots[*root].prefix.clone();
        if !prefix.is_empty() {
            out.push(format!("mkdir {}", show(&prefix)));
            c.dirs.insert(prefix.clone());
        }
        for (rel, entry) in entries {
            let path: Vec<String> = prefix.iter().chain(rel).cloned().collect();
            if !rel.iter().all(|x| component_ok(x)) {
                c.not_expressible("name", &show(&path));
                out.append(&mut c.lines);
                continue;
            }
            let p = show(&path);
            match entry {
                Entry::Dir => {
                    c.dirs.insert(path.clone());
                    out.push(format!("mkdir {p}"));
                }
                Entry::File {
                    link_of: Some(first),
                    ..
                } => {
                    let first: Vec<String> = prefix.iter().chain(first).cloned().collect();
                    out.push(format!("link {} {p}", show(&first)));
                }
                Entry::File { content, .. } => {
                    c.next_handle += 1;
                    let h = format!("s{}", c.next_handle);
                    out.push(format!("{h} = open {p} create"));
                    if !content.is_empty() {
                        let d = c.data(content);
                        out.push(format!("write {h} {} {d} at 0", content.len()));
                    }
                    out.push(format!("close {h}"));
                }
                Entry::Symlink(target) if symlink_target_ok(target) => {
                    out.push(format!("symlink {target} {p}"));
                }
                Entry::Symlink(target) => {
                    c.not_expressible("symlink target", &format!("{p} -> {target}"));
                    out.append(&mut c.lines);
                }
                Entry::Other => {
                    c.not_expressible("special file", &p);
                    out.append(&mut c.lines);
                }
            }
        }
    }
    out
}

fn symlink_target_ok(t: &str) -> bool {
    !t.is_empty()
        && !t.starts_with('/')
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'/'))
}

/// One event as ops (or a comment saying why it cannot be one).
#[allow(
    clippy::too_many_lines,
    reason = "one arm per call kind of the tracer, each a few lines: the table of the translation"
)]
fn event(c: &mut Conv, e: &Event) {
    let (pid, site) = (e.pid, e.site.as_slice());
    match &e.call {
        Call::Open {
            fd, path, flags, ..
        } => match c.rel(path) {
            Ok(rel) => {
                let f = open_flags(*flags, c.dirs.contains(&rel) || path.is_dir());
                let name = c.new_handle(pid, *fd, path);
                c.op(format!("{name} = open {}{f}", show(&rel)), site, pid);
            }
            Err(why) => c.not_expressible("open", &why),
        },
        Call::OpenTmpfile { fd, dir } => match c.rel(dir) {
            Ok(rel) => {
                let name = c.new_handle(pid, *fd, dir);
                c.op(format!("{name} = open {} tmpfile", show(&rel)), site, pid);
            }
            Err(why) => c.not_expressible("open", &why),
        },
        Call::Close { fd, .. } => c.close(pid, *fd, site),
        Call::Dup { old, new, path } => {
            if let Some(h) = c.handle(pid, *old, path, site) {
                let i = c.handles.iter().position(|x| x.name == h).expect("known");
                c.close(pid, *new, site);
                c.handles[i].refs += 1;
                c.fds.insert((pid, *new), i);
            }
        }
        Call::Write {
            fd,
            path,
            offset,
            data,
        } => {
            if data.is_empty() {
                return;
            }
            if let Some(h) = c.handle(pid, *fd, path, site) {
                let d = c.data(data);
                c.op(
                    format!("pwrite {h} {offset} {} {d} at 0", data.len()),
                    site,
                    pid,
                );
            }
        }
        Call::Truncate { path, fd, size } => match fd {
            Some(fd) => {
                if let Some(h) = c.handle(pid, *fd, path, site) {
                    c.op(format!("ftruncate {h} {size}"), site, pid);
                }
            }
            None => match c.rel(path) {
                Ok(rel) => {
                    c.next_handle += 1;
                    let h = format!("t{}", c.next_handle);
                    c.op(format!("{h} = open {}", show(&rel)), site, pid);
                    c.op(format!("ftruncate {h} {size}"), site, pid);
                    c.op(format!("close {h}"), site, pid);
                }
                Err(why) => c.not_expressible("truncate", &why),
            },
        },
        Call::Fallocate {
            fd,
            path,
            mode,
            offset,
            len,
        } => {
            let keep = match mode {
                0 => "",
                1 => " keep-size",
                _ => {
                    return c.not_expressible(
                        &format!("fallocate mode {mode:#x}"),
                        &path.display().to_string(),
                    )
                }
            };
            if let Some(h) = c.handle(pid, *fd, path, site) {
                c.op(format!("fallocate {h} {offset} {len}{keep}"), site, pid);
            }
        }
        Call::Mkdir { path } => path_op(c, "mkdir", path, site, pid, true),
        Call::Rmdir { path } => {
            if let Ok(rel) = c.rel(path) {
                c.dirs.remove(&rel);
            }
            path_op(c, "rmdir", path, site, pid, false);
        }
        Call::Unlink { path } => path_op(c, "unlink", path, site, pid, false),
        Call::Rename { from, to, flags } => {
            let how = match flags {
                0 => "",
                1 => " noreplace",
                2 => " exchange",
                _ => {
                    return c.not_expressible(
                        &format!("rename flags {flags:#x}"),
                        &to.display().to_string(),
                    )
                }
            };
            match (c.rel(from), c.rel(to)) {
                (Ok(a), Ok(b)) => {
                    if c.dirs.remove(&a) {
                        c.dirs.insert(b.clone());
                    }
                    c.op(format!("rename {} {}{how}", show(&a), show(&b)), site, pid);
                }
                (Err(why), _) | (_, Err(why)) => c.not_expressible("rename", &why),
            }
        }
        Call::Link { from, to } => match (c.rel(from), c.rel(to)) {
            (Ok(a), Ok(b)) => c.op(format!("link {} {}", show(&a), show(&b)), site, pid),
            (Err(why), _) | (_, Err(why)) => c.not_expressible("link", &why),
        },
        Call::LinkFd { fd, new } => {
            let target = c.rel(new);
            match target {
                Ok(b) => {
                    if let Some(h) = c.handle(pid, *fd, new, site) {
                        c.op(format!("flink {h} {}", show(&b)), site, pid);
                    }
                }
                Err(why) => c.not_expressible("linkat", &why),
            }
        }
        Call::Symlink { target, path } => match c.rel(path) {
            Ok(rel) if symlink_target_ok(target) => {
                c.op(format!("symlink {target} {}", show(&rel)), site, pid);
            }
            Ok(rel) => c.not_expressible("symlink target", &format!("{} -> {target}", show(&rel))),
            Err(why) => c.not_expressible("symlink", &why),
        },
        Call::Fsync {
            fd,
            path,
            data_only,
        } => {
            if let Some(h) = c.handle(pid, *fd, path, site) {
                let call = if *data_only { "fdatasync" } else { "fsync" };
                c.syncs += 1;
                c.op(format!("{call} {h}"), site, pid);
            }
        }
        Call::Sync => {
            c.syncs += 1;
            c.op("sync".into(), site, pid);
        }
        Call::Syncfs { fd, path } => {
            if let Some(h) = c.handle(pid, *fd, path, site) {
                c.syncs += 1;
                c.op(format!("syncfs {h}"), site, pid);
            }
        }
        Call::SyncFileRange {
            fd,
            path,
            offset,
            len,
            ..
        } => {
            if let Some(h) = c.handle(pid, *fd, path, site) {
                c.op(format!("sync_file_range {h} {offset} {len}"), site, pid);
            }
        }
        Call::Mmap {
            fd,
            path,
            addr,
            offset,
            len,
        } => {
            if let Some(h) = c.handle(pid, *fd, path, site) {
                c.next_map += 1;
                let name = format!("m{}", c.next_map);
                c.op(format!("{name} = mmap {h} {offset} {len}"), site, pid);
                c.maps.entry(pid).or_default().push(Mapping {
                    name,
                    addr: *addr,
                    len: *len,
                    file_offset: *offset,
                });
            }
        }
        Call::Store {
            addr,
            file_offset,
            data,
            path,
        } => {
            let found = c.maps.get(&pid).and_then(|v| {
                v.iter()
                    .find(|m| m.addr <= *addr && *addr < m.addr + m.len)
                    .map(|m| (m.name.clone(), file_offset - m.file_offset))
            });
            match found {
                Some((m, off)) => {
                    let d = c.data(data);
                    c.op(
                        format!("store {m} {off} {} {d} at 0", data.len()),
                        site,
                        pid,
                    );
                }
                None => c.not_expressible("store", &path.display().to_string()),
            }
        }
        Call::Msync { addr, len, flags } => {
            let how = if flags & 4 != 0 { "sync" } else { "async" };
            let inv = if flags & 2 != 0 { " invalidate" } else { "" };
            for (name, whole, off, l) in overlapping(c, pid, *addr, *len) {
                if how == "sync" {
                    c.syncs += 1;
                }
                let range = if whole {
                    String::new()
                } else {
                    format!(" {off} {l}")
                };
                c.op(format!("msync {name}{range} {how}{inv}"), site, pid);
            }
        }
        Call::Munmap { addr, len } => {
            for (name, whole, _, _) in overlapping(c, pid, *addr, *len) {
                if whole {
                    c.op(format!("munmap {name}"), site, pid);
                    if let Some(v) = c.maps.get_mut(&pid) {
                        v.retain(|m| m.name != name);
                    }
                } else {
                    c.not_expressible("partial munmap", &name);
                }
            }
        }
        Call::Stdout { data } => c.print(data),
        Call::Unsupported { kind, path } => {
            let what = path
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            c.lines
                .push(format!("# not expressible here: {kind}: {what}"));
        }
    }
}

/// The mappings of `pid` that `[addr, addr+len)` overlaps: (name, covers it whole, offset and
/// length of the overlap inside the mapping).
fn overlapping(c: &Conv, pid: i32, addr: u64, len: u64) -> Vec<(String, bool, u64, u64)> {
    let end = addr.saturating_add(len);
    c.maps
        .get(&pid)
        .into_iter()
        .flatten()
        .filter(|m| m.addr < end && addr < m.addr + m.len)
        .map(|m| {
            let from = addr.max(m.addr);
            let to = end.min(m.addr + m.len);
            (
                m.name.clone(),
                from == m.addr && to == m.addr + m.len,
                from - m.addr,
                to - from,
            )
        })
        .collect()
}

fn path_op(c: &mut Conv, op: &str, path: &Path, site: &[Frame], pid: i32, dir: bool) {
    match c.rel(path) {
        Ok(rel) => {
            if dir {
                c.dirs.insert(rel.clone());
            }
            c.op(format!("{op} {}", show(&rel)), site, pid);
        }
        Err(why) => c.not_expressible(op, &why),
    }
}

/// The language's words for an open's flags.
fn open_flags(flags: i32, dir: bool) -> String {
    let mut out = String::new();
    let has = |f: i32| flags & f == f;
    for (f, w) in [
        (libc::O_CREAT, " create"),
        (libc::O_EXCL, " excl"),
        (libc::O_TRUNC, " trunc"),
        (libc::O_APPEND, " append"),
        (libc::O_DIRECT, " direct"),
    ] {
        if has(f) {
            out.push_str(w);
        }
    }
    if has(libc::O_SYNC) {
        out.push_str(" sync");
    } else if has(libc::O_DSYNC) {
        out.push_str(" dsync");
    }
    if dir || has(libc::O_DIRECTORY) {
        out.push_str(" dir");
    }
    out
}
