//! An application's run held to account (`unplug real --exec`): the crash images of its one job,
//! each recovered by the kernel, read back byte for byte, judged by the application's checker
//! and matched against the model's states of the traced program.
//!
//! A `.up` job writes self-describing data, so `look.rs` can say which data each block holds.
//! An application writes its own bytes: here a recovered tree is read as raw bytes, and a
//! predicted class contains it when, path by path, its nodes agree and its content reproduces
//! the bytes ([`contains_bytes`]): exact extents byte for byte (from the traced data), gaps and
//! zero extents as zeros, a mixed segment unit by unit with one of its values (each value used),
//! stale and garbage bytes as anything.
//!
//! The checker runs once per distinct tree (by a hash of its paths, kinds, sizes, link structure
//! and bytes) and crash point, on a copy of the recovered tree made while the image is mounted.

use super::{io_err, sanitize, CheckError, CheckOptions, Program, RemoveOnDrop};
use crate::child::interrupt;
use crate::crash::{self, CrashImage};
use crate::record::{BackendKind, Recording};
use crate::runner::DataBytes;
use crate::session::job_dir;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path as StdPath, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;
use unplug_explorer::cone::Reads;
use unplug_explorer::{Analysis, CrashState, Node, Segment};
use unplug_model::{BlockValue, ModelSpec, Origin, Path};

/// The job number of an application's run (it is the session's only job).
pub const APP_JOB: usize = 0;

/// One entry of a tree read back as raw bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawEntry {
    pub path: Path,
    pub kind: crate::Kind,
    pub size: u64,
    pub ino: u64,
    /// A file's bytes (empty for other kinds).
    pub bytes: Vec<u8>,
    pub target: Option<String>,
}

/// A tree read back as raw bytes: the root first, then every entry in path order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RawTree {
    pub entries: Vec<RawEntry>,
}

/// Reads the tree under `root` (symlinks are not followed).
pub fn read_raw(root: &StdPath) -> io::Result<RawTree> {
    let mut entries = Vec::new();
    walk(root, Path::root(), &mut entries)?;
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(RawTree { entries })
}

fn walk(at: &StdPath, path: Path, out: &mut Vec<RawEntry>) -> io::Result<()> {
    let meta = std::fs::symlink_metadata(at)?;
    let t = meta.file_type();
    let kind = if t.is_dir() {
        crate::Kind::Dir
    } else if t.is_file() {
        crate::Kind::File
    } else if t.is_symlink() {
        crate::Kind::Symlink
    } else {
        crate::Kind::Other
    };
    out.push(RawEntry {
        path: path.clone(),
        kind,
        size: meta.len(),
        ino: meta.ino(),
        bytes: if t.is_file() {
            std::fs::read(at)?
        } else {
            Vec::new()
        },
        target: if t.is_symlink() {
            Some(std::fs::read_link(at)?.to_string_lossy().into_owned())
        } else {
            None
        },
    });
    if t.is_dir() {
        for e in std::fs::read_dir(at)? {
            let e = e?;
            let name = e.file_name().to_string_lossy().into_owned();
            walk(&e.path(), path.join(&name), out)?;
        }
    }
    Ok(())
}

impl RawTree {
    /// A hash of what a reader sees: paths, kinds, sizes, bytes, link targets and which names
    /// share a file (not inode numbers, not directory sizes).
    pub fn hash(&self) -> u64 {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        let mut first: HashMap<u64, usize> = HashMap::new();
        for (i, e) in self.entries.iter().enumerate() {
            e.path.hash(&mut h);
            (e.kind as u8).hash(&mut h);
            match e.kind {
                crate::Kind::File => {
                    let f = *first.entry(e.ino).or_insert(i);
                    f.hash(&mut h);
                    if f == i {
                        e.size.hash(&mut h);
                        e.bytes.hash(&mut h);
                    }
                }
                crate::Kind::Symlink => e.target.hash(&mut h),
                _ => {}
            }
        }
        h.finish()
    }

    /// The tree's shape as a crash state: paths, kinds, link counts, sizes, symlink targets and
    /// shared files, with no content (what [`contains_bytes`] compares before the bytes).
    pub fn shape(&self) -> Option<CrashState> {
        if self.entries.iter().any(|e| e.kind == crate::Kind::Other) {
            return None;
        }
        let by_ino: HashMap<u64, &RawEntry> = self.entries.iter().map(|e| (e.ino, e)).collect();
        let paths: Vec<(Path, u64)> = self
            .entries
            .iter()
            .map(|e| (e.path.clone(), e.ino))
            .collect();
        Some(unplug_explorer::state::build_tree_with(
            &paths,
            |i| by_ino[&i].kind == crate::Kind::Dir,
            |i| by_ino[&i].target.clone(),
            |i| (by_ino[&i].size, Vec::new()),
        ))
    }

    fn bytes_at(&self, path: &Path) -> Option<&[u8]> {
        self.entries
            .binary_search_by(|e| e.path.cmp(path))
            .ok()
            .map(|i| &self.entries[i].bytes[..])
    }
}

/// Whether the predicted class `class` contains the tree read back as `tree` (whose shape is
/// `shape`, from [`RawTree::shape`]), with the traced program's bytes `data` (see the module doc).
pub fn contains_bytes(
    class: &CrashState,
    shape: &CrashState,
    tree: &RawTree,
    data: &DataBytes,
) -> bool {
    contains_reading(class, shape, tree, data, None)
}

/// [`contains_bytes`] where the class was built as `reads` read it (`unplug real --exec
/// --checker-reads`): `shape` is then the tree's projection, and a file's bytes are compared
/// only where its content is read.
fn contains_reading(
    class: &CrashState,
    shape: &CrashState,
    tree: &RawTree,
    data: &DataBytes,
    reads: Option<&Reads>,
) -> bool {
    mismatch(class, shape, tree, data, reads).is_none()
}

/// Where `bytes` (a whole file) first departs from the class content `segments`: the byte
/// range of the first segment (or gap, or unit) that does not hold; None if it is a member.
fn content_mismatch(segments: &[Segment], bytes: &[u8], data: &DataBytes) -> Option<(u64, u64)> {
    let at = |lo: u64, hi: u64| bytes.get(lo as usize..hi as usize);
    let zeros =
        |lo: u64, hi: u64| lo >= hi || at(lo, hi).is_some_and(|b| b.iter().all(|&x| x == 0));
    let exact = |e: &unplug_model::Extent| {
        at(e.start, e.end).is_some_and(|b| origin_holds(&e.origin, e.start, b, data))
    };
    let unit =
        |v: &BlockValue, b: u64, e: u64| at(b, e).is_some_and(|o| value_holds(v, b, o, data));
    unplug_explorer::state::departure(segments, bytes.len() as u64, &zeros, &exact, &unit)
}

/// How the tree read back as `tree` (shape `shape`) departs from the class `class`: how many
/// paths agree before the first that does not, and what differs there (None: a member).
fn mismatch(
    class: &CrashState,
    shape: &CrashState,
    tree: &RawTree,
    data: &DataBytes,
    reads: Option<&Reads>,
) -> Option<(usize, String)> {
    let read = |p: &Path| reads.is_none_or(|r| r.contents.contains(p));
    let mut a = class.tree.iter().peekable();
    let mut b = shape.tree.iter().peekable();
    let mut agreed = 0;
    loop {
        let why = match (a.peek(), b.peek()) {
            (None, None) => return None,
            (Some((p, _)), None) => format!("{p}: predicted, but not on disk"),
            (None, Some((q, _))) => format!("{q}: on disk, but not predicted"),
            (Some((p, _)), Some((q, _))) if p < q => format!("{p}: predicted, but not on disk"),
            (Some((p, _)), Some((q, _))) if q < p => format!("{q}: on disk, but not predicted"),
            (Some((p, n)), Some((_, m))) => match (n, m) {
                (
                    Node::File {
                        size,
                        links,
                        content,
                        same_file_as,
                    },
                    Node::File {
                        size: s2,
                        links: l2,
                        same_file_as: f2,
                        ..
                    },
                ) => {
                    if size != s2 {
                        format!("{p}: {s2} bytes on disk, {size} predicted")
                    } else if links != l2 || same_file_as != f2 {
                        format!("{p}: other hard links than predicted")
                    } else if same_file_as.is_some() || !read(p) {
                        String::new()
                    } else {
                        match tree
                            .bytes_at(p)
                            .and_then(|b| content_mismatch(content, b, data))
                        {
                            Some((lo, hi)) => {
                                format!("{p}: bytes [{lo}, {hi}) differ from the prediction")
                            }
                            None => String::new(),
                        }
                    }
                }
                (n, m) if n != m => format!("{p}: {m:?} on disk, {n:?} predicted"),
                _ => String::new(),
            },
        };
        if !why.is_empty() {
            return Some((agreed, why));
        }
        a.next();
        b.next();
        agreed += 1;
    }
}

/// Whether the unit at file offset `base` holding `observed` is the value `v` (its extents are
/// relative to the unit; gaps read as zeros).
fn value_holds(v: &BlockValue, base: u64, observed: &[u8], data: &DataBytes) -> bool {
    let len = observed.len() as u64;
    let mut pos = 0;
    for (s, t, origin) in &v.0 {
        let (s, t) = ((*s).min(len), (*t).min(len));
        if observed[pos as usize..s as usize].iter().any(|&x| x != 0)
            || !origin_holds(origin, base + s, &observed[s as usize..t as usize], data)
        {
            return false;
        }
        pos = pos.max(t);
    }
    observed[pos as usize..].iter().all(|&x| x == 0)
}

/// Whether `observed`, the bytes at file offset `at`, come from `origin`.
fn origin_holds(origin: &Origin, at: u64, observed: &[u8], data: &DataBytes) -> bool {
    match origin {
        Origin::Zero => observed.iter().all(|&x| x == 0),
        Origin::Data { name, delta } => {
            let off = at as i64 + delta;
            off >= 0
                && data
                    .slice(name, off as u64, observed.len())
                    .is_ok_and(|b| b == observed)
        }
        // What the block held before, or a unit caught mid-write: any bytes.
        Origin::Stale | Origin::Garbage => true,
    }
}

/// The checker's verdict on one tree.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Judged {
    Accepted,
    /// Rejected, with why (its verdict and the start of what it printed).
    Rejected(String),
    /// No verdict (interrupted, or the tree could not be copied).
    Unknown(String),
}

/// Judges a recovered tree: `(dir, tree hash, crash point)`; `dir` is a copy of the tree that
/// is removed after the call. Called from several threads at once.
pub type Judge<'a> = dyn Fn(&StdPath, u64, usize) -> Judged + Sync + 'a;

/// A tree the checker rejected (the first image that showed it).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AppFailure {
    /// The crash points the image may stand for: ops 1..=lo had surely returned, op hi+1
    /// surely had not started.
    pub crash_points: (usize, usize),
    pub kind: String,
    pub writes: usize,
    pub tree: String,
    pub reason: String,
    /// Images that showed this tree.
    pub images: usize,
    /// The predicted classes that contain the tree (indexes into [`AppReport::classes`]);
    /// empty: the model did not predict it (it is also in `unsound`).
    pub classes: Vec<usize>,
    pub image: Option<PathBuf>,
    pub reproduce: String,
}

/// A tree no predicted class contains.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AppUnsound {
    pub crash_points: (usize, usize),
    pub kind: String,
    pub writes: usize,
    /// The tree (paths, kinds, sizes), or why it could not be read.
    pub observed: String,
    /// Where the tree departs from the closest predicted class at these crash points (the one
    /// that agrees on the most paths first).
    pub closest: Option<String>,
    /// Images that showed this tree.
    pub images: usize,
    pub image: Option<PathBuf>,
    pub reproduce: String,
}

/// What an application's run showed on one file system.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AppReport {
    pub fs: String,
    pub mount_opts: String,
    pub model: String,
    pub kernel: String,
    pub backend: BackendKind,
    pub images_checked: usize,
    /// Distinct recovered trees (by content).
    pub distinct_trees: usize,
    pub checker_runs: usize,
    /// Distinct trees the checker rejected.
    pub failures: Vec<AppFailure>,
    /// Distinct trees the model did not predict (or images that could not be recovered).
    pub unsound: Vec<AppUnsound>,
    /// Images whose tree no predicted class contains, at crash points where the model hit a
    /// bound (its states there are incomplete): neither sound nor unsound.
    pub not_judged: usize,
    pub predicted_classes: usize,
    pub predicted_observed: usize,
    /// The model hit a bound: its predicted states are incomplete at some crash points.
    pub model_bound_hit: bool,
    /// Those crash points.
    pub unproven_points: Vec<usize>,
    pub record_seconds: f64,
    pub check_seconds: f64,
    pub images_per_second: f64,
    /// The predicted classes and their crash points (not in JSON: the CLI asks its own
    /// questions of them).
    #[serde(skip)]
    pub classes: Vec<(CrashState, BTreeSet<usize>)>,
    /// The predicted classes some image showed (indexes into `classes`).
    #[serde(skip)]
    pub observed: BTreeSet<usize>,
}

/// What one image showed.
struct Look {
    tree: Result<(u64, String), String>,
    classes: Vec<usize>,
    verdict: Option<Judged>,
    /// With no class: how the tree departs from the closest one.
    closest: Option<String>,
}

/// One verdict per (tree, crash point), made once (by the first thread that needs it).
type Verdicts = Mutex<HashMap<(u64, usize), Arc<OnceLock<Judged>>>>;

/// Checks the one job of `rec`, an application's run traced as `analysis` (its data's bytes
/// in `data`): its crash images, recovered, judged by `judge` and matched against the model.
/// When `analysis` enumerates only what its properties read ([`Analysis::cone`]), the trees
/// read back are compared as those reads see them.
pub fn check_app(
    rec: &Recording,
    analysis: &Analysis,
    data: &DataBytes,
    opts: &CheckOptions,
    judge: &Judge,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<AppReport, CheckError> {
    let start = Instant::now();
    let model: ModelSpec = rec
        .fs
        .model()
        .map_err(|e| CheckError::Invalid(e.to_string()))?;
    let prog = Program::predict(analysis, &model);
    let windows = super::window::windows(rec, 1)?;
    let events = super::window::events(rec, APP_JOB, windows[0]);
    let plan = crash::plan(&rec.log, &events, prog.run.trace.ops.len(), &opts.plan);
    let mut rolling = super::window::Rolling::copy(rec, opts)?;
    let base = rolling.base_at(rec, windows[0].0)?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.threads.max(1))
        .build()
        .map_err(|e| CheckError::Io {
            what: "starting threads".into(),
            source: io::Error::other(e),
        })?;
    let looker = Looker {
        rec,
        opts,
        base: &base,
        prog: &prog,
        data,
        reads: analysis.cone(),
        judge,
        verdicts: Mutex::new(HashMap::new()),
        runs: AtomicUsize::new(0),
        done: AtomicUsize::new(0),
        root: job_dir(StdPath::new(""), APP_JOB).join("root"),
    };
    let looks: Vec<Result<Look, CheckError>> = pool.install(|| {
        plan.par_iter()
            .enumerate()
            .map(|(k, img)| {
                let l = looker.image(k, img)?;
                progress(looker.done.fetch_add(1, Ordering::Relaxed) + 1, plan.len());
                Ok(l)
            })
            .collect()
    });
    let mut report = looker.tally(&model, &plan, looks)?;
    report.checker_runs = looker.runs.load(Ordering::Relaxed);
    report.check_seconds = start.elapsed().as_secs_f64();
    report.images_per_second = report.images_checked as f64 / report.check_seconds.max(1e-9);
    report.classes = prog.classes;
    Ok(report)
}

/// Looking at an application's crash images (from many threads at once).
struct Looker<'a> {
    rec: &'a Recording,
    opts: &'a CheckOptions,
    base: &'a crate::crash::Base,
    prog: &'a Program<'a>,
    data: &'a DataBytes,
    reads: Option<&'a Reads>,
    judge: &'a Judge<'a>,
    verdicts: Verdicts,
    runs: AtomicUsize,
    done: AtomicUsize,
    /// The application's directory, relative to the file system's root.
    root: PathBuf,
}

impl Looker<'_> {
    /// Builds image `k`, lets the kernel recover it, reads the tree back (and copies it for the
    /// checker when its verdict is still to be made), judges it and finds the predicted
    /// classes that contain it.
    fn image(&self, k: usize, img: &CrashImage) -> Result<Look, CheckError> {
        if interrupt::interrupted() {
            return Err(CheckError::Interrupted);
        }
        let (rec, opts) = (self.rec, self.opts);
        let path = opts.scratch.join(format!("app-img{k}.img"));
        let _cleanup = RemoveOnDrop(path.clone());
        self.base
            .write_image(&rec.log, img, &path)
            .map_err(io_err("building a crash image"))?;
        let copy = opts.scratch.join(format!("app-tree{k}"));
        let read =
            crate::recover::with_mounted(&path, rec.fs.fs.name(), &rec.fs.mount_data(), |dir| {
                let raw = read_raw(&dir.join(&self.root))?;
                let hash = raw.hash();
                let slot = {
                    let mut v = self.verdicts.lock().unwrap_or_else(|e| e.into_inner());
                    Arc::clone(v.entry((hash, img.lo)).or_default())
                };
                // Copy the tree out for the checker only when no verdict is made yet.
                if slot.get().is_none() {
                    let _ = std::fs::remove_dir_all(&copy);
                    crate::record::run(
                        std::process::Command::new("cp")
                            .arg("-a")
                            .arg(dir.join(&self.root))
                            .arg(&copy),
                    )
                    .map_err(|e| io::Error::other(e.to_string()))?;
                }
                Ok::<_, io::Error>((raw, hash, slot))
            });
        let failed = |why: String| Look {
            tree: Err(why),
            classes: Vec::new(),
            verdict: None,
            closest: None,
        };
        let (raw, hash, slot) = match read {
            Err(e) => return Ok(failed(format!("recovery failed: {e}"))),
            Ok(Err(e)) => {
                let _ = std::fs::remove_dir_all(&copy);
                return Ok(failed(format!("reading the tree back: {e}")));
            }
            Ok(Ok(x)) => x,
        };
        // A slot found set was set before the copy was skipped; an empty one is set here (this
        // thread copied the tree) or by another thread that copied it too (this one waits).
        let verdict = slot
            .get_or_init(|| {
                self.runs.fetch_add(1, Ordering::Relaxed);
                (self.judge)(&copy, hash, img.lo)
            })
            .clone();
        let _ = std::fs::remove_dir_all(&copy);
        let (classes, closest) = self.predicted(img, &raw);
        Ok(Look {
            tree: Ok((hash, describe(&raw))),
            classes,
            verdict: Some(verdict),
            closest,
        })
    }

    /// The predicted classes at the image's crash points that contain `raw`; with none, how it
    /// departs from the closest one.
    fn predicted(&self, img: &CrashImage, raw: &RawTree) -> (Vec<usize>, Option<String>) {
        let (data, reads) = (self.data, self.reads);
        let Some(shape) = raw.shape().map(|s| match reads {
            Some(r) => r.project(&s),
            None => s,
        }) else {
            let why = "a node that is neither a file, a directory nor a symlink";
            return (Vec::new(), Some(why.into()));
        };
        let in_window = |at: &BTreeSet<usize>| at.range(img.lo..=img.hi).next().is_some();
        let window = || {
            self.prog
                .classes
                .iter()
                .enumerate()
                .filter(|(_, (_, at))| in_window(at))
        };
        let classes: Vec<usize> = window()
            .filter(|(_, (c, _))| contains_reading(c, &shape, raw, data, reads))
            .map(|(i, _)| i)
            .collect();
        let closest = classes.is_empty().then(|| {
            window()
                .filter_map(|(i, (c, _))| mismatch(c, &shape, raw, data, reads).map(|m| (m, i)))
                .max_by_key(|((agreed, _), i)| (*agreed, std::cmp::Reverse(*i)))
                .map(|((_, why), i)| format!("class #{}: {why}", i + 1))
        });
        (classes, closest.flatten())
    }

    /// Keeps image `k` under `--keep` (built again: the recovery changed the one looked at);
    /// its path and a command to look at it.
    fn keep(
        &self,
        k: usize,
        img: &CrashImage,
        what: &str,
    ) -> Result<(PathBuf, String), CheckError> {
        let (opts, rec) = (self.opts, self.rec);
        std::fs::create_dir_all(&opts.keep)
            .map_err(io_err("creating the directory for kept images"))?;
        let p = opts.keep.join(format!(
            "{}-{}-img{k}.img",
            rec.fs.fs.name(),
            sanitize(what)
        ));
        self.base
            .write_image(&rec.log, img, &p)
            .map_err(io_err("keeping an image"))?;
        let reproduce = reproduce_command(rec, &p);
        Ok((p, reproduce))
    }

    /// The report of what the images showed, in plan order: distinct trees, the trees the
    /// checker rejected and those the model did not predict (one image kept for each).
    fn tally(
        &self,
        model: &ModelSpec,
        plan: &[CrashImage],
        looks: Vec<Result<Look, CheckError>>,
    ) -> Result<AppReport, CheckError> {
        let (rec, prog) = (self.rec, self.prog);
        let unproven = prog.run.exploration.unproven();
        let mut report = AppReport {
            fs: rec.fs.fs.name().to_string(),
            mount_opts: rec.fs.mount_opts.clone(),
            model: model.to_string(),
            kernel: rec.kernel.clone(),
            backend: rec.backend,
            images_checked: 0,
            distinct_trees: 0,
            checker_runs: 0,
            failures: Vec::new(),
            unsound: Vec::new(),
            not_judged: 0,
            predicted_classes: prog.classes.len(),
            predicted_observed: 0,
            model_bound_hit: !unproven.is_empty(),
            unproven_points: unproven.clone(),
            record_seconds: rec.elapsed.as_secs_f64(),
            check_seconds: 0.0,
            images_per_second: 0.0,
            classes: Vec::new(),
            observed: BTreeSet::new(),
        };
        let unproven: BTreeSet<usize> = unproven.into_iter().collect();
        let mut trees: BTreeSet<u64> = BTreeSet::new();
        let mut failed: BTreeMap<u64, usize> = BTreeMap::new();
        let mut unsound_of: BTreeMap<u64, usize> = BTreeMap::new();
        for (k, l) in looks.into_iter().enumerate() {
            let l = l?;
            let img = &plan[k];
            report.images_checked += 1;
            report.observed.extend(l.classes.iter().copied());
            let (hash, text) = match &l.tree {
                Ok((h, t)) => (Some(*h), t.clone()),
                Err(e) => (None, e.clone()),
            };
            trees.extend(hash);
            if l.classes.is_empty() && unproven.range(img.lo..=img.hi).next().is_some() {
                report.not_judged += 1;
            } else if l.classes.is_empty() {
                // One entry per distinct tree (an image that could not be read is its own).
                match hash.and_then(|h| unsound_of.get(&h)) {
                    Some(&i) => report.unsound[i].images += 1,
                    None => {
                        if let Some(h) = hash {
                            unsound_of.insert(h, report.unsound.len());
                        }
                        let (image, reproduce) = self.keep(k, img, "unsound")?;
                        report.unsound.push(AppUnsound {
                            crash_points: (img.lo, img.hi),
                            kind: format!("{:?}", img.kind),
                            writes: img.writes.len(),
                            observed: text.clone(),
                            closest: l.closest.clone(),
                            images: 1,
                            image: Some(image),
                            reproduce,
                        });
                    }
                }
            }
            if let (Some(h), Some(Judged::Rejected(why))) = (hash, &l.verdict) {
                if let Some(&i) = failed.get(&h) {
                    report.failures[i].images += 1;
                    continue;
                }
                let (image, reproduce) = self.keep(k, img, "rejected")?;
                failed.insert(h, report.failures.len());
                report.failures.push(AppFailure {
                    crash_points: (img.lo, img.hi),
                    kind: format!("{:?}", img.kind),
                    writes: img.writes.len(),
                    tree: text,
                    reason: why.clone(),
                    images: 1,
                    classes: l.classes.clone(),
                    image: Some(image),
                    reproduce,
                });
            }
        }
        report.distinct_trees = trees.len();
        report.predicted_observed = report.observed.len();
        Ok(report)
    }
}

/// A command that mounts a kept image and lists the application's tree.
fn reproduce_command(rec: &Recording, image: &StdPath) -> String {
    let data = rec.fs.mount_data();
    format!(
        "mkdir -p /tmp/unplug-look && mount -t {} -o loop{}{} {} /tmp/unplug-look && find /tmp/unplug-look/job{APP_JOB}/root -ls; umount /tmp/unplug-look",
        rec.fs.fs.name(),
        if data.is_empty() { "" } else { "," },
        data,
        image.display()
    )
}

/// One line per path: kind, size (files), target (symlinks).
fn describe(t: &RawTree) -> String {
    t.entries
        .iter()
        .filter(|e| !e.path.0.is_empty())
        .map(|e| match e.kind {
            crate::Kind::File => format!("{}  file {}", e.path, e.size),
            crate::Kind::Dir => format!("{}/  dir", e.path),
            crate::Kind::Symlink => {
                format!(
                    "{}  symlink -> {}",
                    e.path,
                    e.target.as_deref().unwrap_or("")
                )
            }
            crate::Kind::Other => format!("{}  other", e.path),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use unplug_model::Extent;

    fn raw(files: &[(&str, Vec<u8>)]) -> RawTree {
        let mut entries = vec![RawEntry {
            path: Path::root(),
            kind: crate::Kind::Dir,
            size: 0,
            ino: 1,
            bytes: Vec::new(),
            target: None,
        }];
        for (i, (name, b)) in files.iter().enumerate() {
            entries.push(RawEntry {
                path: Path(vec![name.to_string()].into()),
                kind: crate::Kind::File,
                size: b.len() as u64,
                ino: 10 + i as u64,
                bytes: b.clone(),
                target: None,
            });
        }
        RawTree { entries }
    }

    fn class(name: &str, size: u64, content: Vec<Segment>) -> CrashState {
        let mut s = CrashState::default();
        s.tree.insert(Path::root(), Node::Dir { links: 2 });
        s.tree.insert(
            Path(vec![name.to_string()].into()),
            Node::File {
                size,
                links: 1,
                content,
                same_file_as: None,
            },
        );
        s
    }

    #[test]
    fn exact_and_mixed_content_match_bytes() {
        let data: DataBytes = [("D", vec![7u8; 8]), ("E", vec![9u8; 8])]
            .into_iter()
            .collect();
        let exact = class(
            "f",
            8,
            vec![Segment::Exact(Extent {
                start: 2,
                end: 6,
                origin: Origin::Data {
                    name: "D".into(),
                    delta: 0,
                },
            })],
        );
        let good = raw(&[("f", vec![0, 0, 7, 7, 7, 7, 0, 0])]);
        let bad = raw(&[("f", vec![0, 0, 7, 7, 9, 7, 0, 0])]);
        let shape = good.shape().unwrap();
        assert!(contains_bytes(&exact, &shape, &good, &data));
        assert!(!contains_bytes(&exact, &bad.shape().unwrap(), &bad, &data));
        // Two 4-byte units, each D or E, both used.
        let v = |n: &str| {
            BlockValue(vec![(
                0,
                4,
                Origin::Data {
                    name: n.into(),
                    delta: 0,
                },
            )])
        };
        let mixed = class(
            "f",
            8,
            vec![Segment::Mixed {
                unit: 4,
                start: 0,
                end: 8,
                blocks: 2,
                values: [v("D"), v("E")].into_iter().collect(),
            }],
        );
        let torn = raw(&[("f", vec![7, 7, 7, 7, 9, 9, 9, 9])]);
        let whole = raw(&[("f", vec![7; 8])]);
        assert!(contains_bytes(&mixed, &torn.shape().unwrap(), &torn, &data));
        // Every value must be held by some unit.
        assert!(!contains_bytes(
            &mixed,
            &whole.shape().unwrap(),
            &whole,
            &data
        ));
        // Another size is another node.
        let short = raw(&[("f", vec![7; 4])]);
        assert!(!contains_bytes(
            &exact,
            &short.shape().unwrap(),
            &short,
            &data
        ));
    }

    #[test]
    fn the_hash_sees_bytes_and_names_not_inodes() {
        let a = raw(&[("f", vec![1, 2])]);
        let mut b = a.clone();
        b.entries[1].ino = 99;
        assert_eq!(a.hash(), b.hash());
        let c = raw(&[("f", vec![1, 3])]);
        assert_ne!(a.hash(), c.hash());
        let d = raw(&[("g", vec![1, 2])]);
        assert_ne!(a.hash(), d.hash());
    }
}
