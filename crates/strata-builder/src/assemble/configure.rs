//! What `dpkg --configure` would have left in the image, without running
//! anything: each package's `postinst` effects (evaluated by
//! `strata_debian::script`) applied to the package layer, then what the
//! triggers and helpers compute from the final tree: alternatives, system
//! accounts, stat overrides, `/etc/shells`, `/etc/ld.so.cache` and the CA
//! store.

use std::collections::BTreeMap;
use std::io::Read;

use strata_debian::Unpacked;
use strata_debian::script::{self, Alternative, Change, Effect, FileKind, Unknown};
use strata_oci::entry::{Content, Entry, Kind, ReadSeek};
use strata_oci::path::{ImagePath, below};
use strata_oci::view::{View, ViewEntry, ViewKind};

use super::accounts::{AccountFiles, Accounts};
use crate::base::Lower;
use crate::lock::LockedAccount;
use crate::recipe::UserSpec;

/// The package layer being planned: entries by path, each with the index
/// of the package that ships it (`None`: written by strata).
pub(super) type Layer = BTreeMap<ImagePath, (Entry, Option<usize>)>;

/// Files read for scripts and generators are small: templates, account
/// lists, certificates.
const MAX_READ: u64 = 4 << 20;

/// A script's command strata could not evaluate, for `strata lint`.
#[derive(Debug, Clone)]
pub struct Unevaluated {
    pub package: String,
    pub unknown: Unknown,
}

/// What configuring needs to know besides the files.
pub(super) struct Settings<'a> {
    pub architecture: &'a str,
    pub mtime: u64,
    /// debconf answers given in advance (the recipe's `timezone`).
    pub answers: &'a BTreeMap<String, String>,
    /// The recipe's `system-user` accounts: their ids win.
    pub declared_users: &'a [UserSpec],
    /// The packages the recipe installs, in its order.
    pub requested: &'a [String],
    /// Ids the lock recorded for accounts scripts create.
    pub recorded: &'a [LockedAccount],
}

/// What configuring leaves for later stages.
pub(super) struct Configured {
    pub unevaluated: Vec<Unevaluated>,
    /// The account files (`etc/passwd`, `etc/group`, and the shadow files
    /// when used) as the packages left them, when they changed: the
    /// recipe's users are added to these.
    pub accounts: Vec<(String, String)>,
    /// The system accounts the scripts created, with their ids, for the lock.
    pub created: Vec<LockedAccount>,
}

pub(super) fn configure(
    packages: &[Unpacked],
    view: &mut View,
    layer: &mut Layer,
    lower: &Lower,
    options: &Settings,
) -> Configured {
    let requested: Vec<&str> = options.requested.iter().map(String::as_str).collect();
    let order = strata_debian::order::configuration_order(packages, &requested);
    let answers = computed_answers(options.answers, layer);

    let mut unevaluated = Vec::new();
    let mut deferred = Vec::new();
    for index in order {
        let package = &packages[index];
        let script_of = |name: &str| {
            package
                .control
                .maintainer_scripts
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, text)| text.as_str())
        };
        let Some(postinst) = script_of("postinst") else {
            continue;
        };
        let evaluation = script::evaluate(
            postinst,
            &ImageFiles {
                view,
                layer,
                lower,
                packages,
            },
            &script::Context {
                architecture: options.architecture,
                package: &package.locked.name,
                templates: script_of("templates"),
                answers: &answers,
            },
        );
        unevaluated.extend(evaluation.unknown.into_iter().map(|unknown| Unevaluated {
            package: package.locked.name.clone(),
            unknown,
        }));
        for effect in evaluation.effects {
            match effect {
                Effect::Path { path, change } => {
                    if let Some(deferred_change) = apply(view, layer, &path, change, options.mtime)
                    {
                        deferred.push(deferred_change);
                    }
                }
                other => deferred.push((String::new(), Deferred::Effect(other))),
            }
        }
    }

    let (accounts, created) = accounts(view, layer, lower, &deferred, options);
    // Names in chown and stat overrides, as the final account files have them.
    let names = (
        text(layer, lower, "etc/passwd"),
        text(layer, lower, "etc/group"),
    );
    for (path, item) in &deferred {
        match item {
            Deferred::Attributes { mode, owner, group } => {
                set_attributes(view, layer, &names, path, *mode, owner, group);
            }
            Deferred::Effect(Effect::StatOverride {
                owner,
                group,
                mode,
                path,
            }) => {
                set_attributes(
                    view,
                    layer,
                    &names,
                    path,
                    Some(*mode),
                    &Some(owner.clone()),
                    &Some(group.clone()),
                );
            }
            Deferred::Effect(_) => {}
        }
    }
    let alternatives: Vec<&Alternative> = deferred
        .iter()
        .filter_map(|(_, d)| match d {
            Deferred::Effect(Effect::Alternative(a)) => Some(a),
            _ => None,
        })
        .collect();
    for entry in alternative_links(&alternatives, view, options.mtime) {
        insert(view, layer, entry);
    }
    let added_shells: Vec<&str> = deferred
        .iter()
        .filter_map(|(_, d)| match d {
            Deferred::Effect(Effect::Shell(s)) => Some(s.as_str()),
            _ => None,
        })
        .collect();
    if let Some((text, state)) = shells(view, layer, lower, &added_shells) {
        for (at, bytes) in [("etc/shells", text), ("var/lib/shells.state", state)] {
            insert(
                view,
                layer,
                file(path(at), bytes.into_bytes(), options.mtime),
            );
        }
    }
    Configured {
        unevaluated,
        accounts,
        created,
    }
}

/// The debconf answers that packages' `config` scripts would compute from
/// the files they ship (strata runs no config script), added to the
/// recipe's: ca-certificates offers, and trusts, every certificate it ships.
fn computed_answers(given: &BTreeMap<String, String>, layer: &Layer) -> BTreeMap<String, String> {
    let mut answers = given.clone();
    let dir = path("usr/share/ca-certificates");
    let certificates: Vec<&str> = below(layer, &dir)
        .filter_map(|(p, _)| p.as_str().strip_prefix("usr/share/ca-certificates/"))
        .filter(|p| p.ends_with(".crt"))
        .collect();
    if !certificates.is_empty() {
        let list = certificates.join(", ");
        answers
            .entry("ca-certificates/enable_crts".to_owned())
            .or_insert_with(|| list.clone());
        answers.insert("ca-certificates/enable_crts:choices".to_owned(), list);
    }
    answers
}

/// An effect applied once accounts are known.
enum Deferred {
    Attributes {
        mode: Option<u32>,
        owner: Option<String>,
        group: Option<String>,
    },
    Effect(Effect),
}

/// Applies one file-system change; ownership and modes wait for accounts.
fn apply(
    view: &mut View,
    layer: &mut Layer,
    target: &str,
    change: Change,
    mtime: u64,
) -> Option<(String, Deferred)> {
    let Ok(raw) = ImagePath::parse(target) else {
        return None;
    };
    let path = view.resolve_parent(&raw)?;
    let entry = |kind: Kind, mode: u32| Entry {
        path: path.clone(),
        kind,
        mode,
        uid: 0,
        gid: 0,
        mtime,
    };
    match change {
        Change::File { bytes, mode } => {
            insert(view, layer, entry(Kind::File(Content::inline(bytes)), mode));
        }
        Change::Dir { mode } => {
            if !matches!(view.get(&path).map(|e| &e.kind), Some(ViewKind::Dir)) {
                insert(view, layer, entry(Kind::Dir, mode));
            }
        }
        Change::Symlink(link) => insert(view, layer, entry(Kind::Symlink(link), 0o777)),
        Change::Removed => {
            view.remove(&path);
            layer.remove(&path);
            let below: Vec<ImagePath> = below(layer, &path).map(|(p, _)| p.clone()).collect();
            for p in below {
                layer.remove(&p);
            }
        }
        Change::Attributes { mode, owner, group } => {
            return Some((
                format!("/{}", path.as_str()),
                Deferred::Attributes { mode, owner, group },
            ));
        }
    }
    None
}

/// Puts an entry in the layer and the view, replacing what was there.
fn insert(view: &mut View, layer: &mut Layer, entry: Entry) {
    if entry.kind != Kind::Dir {
        let below: Vec<ImagePath> = below(layer, &entry.path).map(|(p, _)| p.clone()).collect();
        for p in below {
            layer.remove(&p);
        }
    }
    view.insert(entry.path.clone(), ViewEntry::of(&entry));
    layer.insert(entry.path.clone(), (entry, None));
}

pub(super) fn path(s: &str) -> ImagePath {
    ImagePath::from_relative(s).expect("a constant path")
}

pub(super) fn file(path: ImagePath, bytes: Vec<u8>, mtime: u64) -> Entry {
    Entry {
        path,
        kind: Kind::File(Content::inline(bytes)),
        mode: 0o644,
        uid: 0,
        gid: 0,
        mtime,
    }
}

/// The text of a file in the layer, or in the base.
pub(super) fn text(layer: &Layer, lower: &Lower, at: &str) -> Option<String> {
    match layer.get(&path(at)) {
        Some((entry, _)) => read(entry).map(|b| String::from_utf8_lossy(&b).into_owned()),
        None => lower.text(at).map(str::to_owned),
    }
}

fn read(entry: &Entry) -> Option<Vec<u8>> {
    let Kind::File(content) = &entry.kind else {
        return None;
    };
    if content.size > MAX_READ {
        return None;
    }
    let mut bytes = Vec::new();
    content
        .open()
        .ok()?
        .take(MAX_READ)
        .read_to_end(&mut bytes)
        .ok()?;
    Some(bytes)
}

/// The account files with the system accounts the scripts asked for; ids
/// are assigned in configuration order, so the same lock gives the same
/// ids. Returns the files' texts (path, text) when the packages wrote or
/// changed them.
fn accounts(
    view: &mut View,
    layer: &mut Layer,
    lower: &Lower,
    deferred: &[(String, Deferred)],
    options: &Settings,
) -> (Vec<(String, String)>, Vec<LockedAccount>) {
    let texts: Vec<Option<String>> = ["etc/passwd", "etc/group", "etc/shadow", "etc/gshadow"]
        .iter()
        .map(|at| text(layer, lower, at))
        .collect();
    let from_packages = layer.contains_key(&path("etc/passwd"));
    let mut accounts = Accounts::from_files(
        AccountFiles {
            passwd: texts[0].as_deref(),
            group: texts[1].as_deref(),
            shadow: texts[2].as_deref(),
            gshadow: texts[3].as_deref(),
        },
        options.mtime,
    );
    let recorded = |name: &str, user: bool| {
        options
            .recorded
            .iter()
            .find(|a| a.name == name && a.uid.is_some() == user)
    };
    for account in options.recorded {
        accounts.reserve(account.uid, account.gid);
    }
    let mut created: Vec<LockedAccount> = Vec::new();
    for (_, item) in deferred {
        match item {
            Deferred::Effect(Effect::Group { name, gid }) => {
                let gid = recorded(name, false).map(|a| a.gid).or(*gid);
                let gid = accounts.system_group(name, gid);
                created.push(LockedAccount {
                    name: name.clone(),
                    uid: None,
                    gid,
                });
            }
            Deferred::Effect(Effect::User(user)) => {
                // The recipe's `system-user` first, then the lock's record.
                let declared = options
                    .declared_users
                    .iter()
                    .find(|d| d.name.value == user.name)
                    .map(|d| (d.uid, d.gid))
                    .or_else(|| recorded(&user.name, true).and_then(|a| Some((a.uid?, a.gid))));
                accounts.system_user(user, declared);
                if let Some(account) = accounts.user(&user.name) {
                    created.push(LockedAccount {
                        name: user.name.clone(),
                        uid: Some(account.uid),
                        gid: account.gid,
                    });
                }
            }
            Deferred::Effect(Effect::Member { user, group }) => accounts.add_member(user, group),
            Deferred::Effect(Effect::ShadowPasswords) => accounts.use_shadow(),
            _ => {}
        }
    }
    created.sort_by(|a, b| (a.uid.is_none(), &a.name).cmp(&(b.uid.is_none(), &b.name)));
    created.dedup();
    if !accounts.changed() && !from_packages {
        return (Vec::new(), created);
    }
    let mut out = Vec::new();
    for (at, bytes, mode, gid) in accounts.files() {
        out.push((at.to_owned(), String::from_utf8_lossy(&bytes).into_owned()));
        let entry = Entry {
            mode,
            gid,
            ..file(path(at), bytes, options.mtime)
        };
        insert(view, layer, entry);
    }
    (out, created)
}

/// Owner, group and mode from `chown`/`chmod` and `dpkg-statoverride`, on
/// a file of the package layer.
fn set_attributes(
    view: &mut View,
    layer: &mut Layer,
    accounts: &(Option<String>, Option<String>),
    at: &str,
    mode: Option<u32>,
    owner: &Option<String>,
    group: &Option<String>,
) {
    let Some(target) = ImagePath::parse(at)
        .ok()
        .and_then(|p| view.resolve_parent(&p))
    else {
        return;
    };
    let Some((entry, _)) = layer.get_mut(&target) else {
        tracing::info!(
            path = at,
            "owner or mode of a file outside the package layer left as it is"
        );
        return;
    };
    let id = |name: &Option<String>, file: Option<&str>, field: usize| -> Option<u32> {
        let name = name.as_deref()?;
        name.parse().ok().or_else(|| {
            file?.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.first() == Some(&name)).then(|| f.get(field)?.parse().ok())?
            })
        })
    };
    let (passwd, groups) = (accounts.0.as_deref(), accounts.1.as_deref());
    if let Some(mode) = mode {
        entry.mode = mode;
    }
    if let Some(uid) = id(owner, passwd, 2) {
        entry.uid = uid;
    }
    if let Some(gid) = id(group, groups, 2) {
        entry.gid = gid;
    }
    view.insert(target, ViewEntry::of(entry));
}

/// `update-alternatives --install` as dpkg resolves it: for each name, the
/// highest-priority alternative whose path exists gets
/// `LINK -> /etc/alternatives/NAME -> PATH`; a slave whose path is missing
/// gets no link.
fn alternative_links(alternatives: &[&Alternative], view: &View, mtime: u64) -> Vec<Entry> {
    let exists = |p: &str| {
        ImagePath::parse(p)
            .ok()
            .and_then(|p| view.resolve(&p))
            .is_some()
    };
    let mut best: BTreeMap<&str, &Alternative> = BTreeMap::new();
    for alternative in alternatives {
        if !exists(&alternative.path) {
            continue;
        }
        if best
            .get(alternative.name.as_str())
            .is_none_or(|b| alternative.priority > b.priority)
        {
            best.insert(&alternative.name, alternative);
        }
    }
    let symlink = |path: ImagePath, target: String| Entry {
        path,
        kind: Kind::Symlink(target),
        mode: 0o777,
        uid: 0,
        gid: 0,
        mtime,
    };
    let mut out = Vec::new();
    for alternative in best.values() {
        let master = (&alternative.link, &alternative.name, &alternative.path);
        let slaves = alternative.slaves.iter().map(|(l, n, p)| (l, n, p));
        for (i, (link, name, target)) in std::iter::once(master).chain(slaves).enumerate() {
            if i > 0 && !exists(target) {
                continue;
            }
            let (Ok(link), Ok(managed)) = (
                ImagePath::parse(link).map(|l| view.resolve_parent(&l).unwrap_or(l)),
                ImagePath::from_relative(&format!("etc/alternatives/{name}")),
            ) else {
                continue;
            };
            out.push(symlink(link, format!("/etc/alternatives/{name}")));
            out.push(symlink(managed, target.clone()));
        }
    }
    out
}

/// `/etc/shells` as debianutils' `update-shells` writes it: the template,
/// then each `shells.d` file's shells, then their merged-/usr spellings;
/// `add-shell` lines after; and its state file.
fn shells(view: &View, layer: &Layer, lower: &Lower, added: &[&str]) -> Option<(String, String)> {
    let template = text(layer, lower, "usr/share/debianutils/shells")?;
    let mut lines: Vec<String> = template.lines().map(str::to_owned).collect();
    let mut shells: Vec<String> = Vec::new();
    let dir = path("usr/share/debianutils/shells.d");
    let listed: Vec<ImagePath> = below(layer, &dir)
        .filter(|(p, _)| p.parent().as_ref() == Some(&dir))
        .map(|(p, _)| p.clone())
        .collect();
    for file in listed {
        if let Some(text) = text(layer, lower, file.as_str()) {
            shells.extend(
                text.lines()
                    .map(|l| l.split('#').next().unwrap_or_default().trim().to_owned())
                    .filter(|l| !l.is_empty()),
            );
        }
    }
    let template_shells: Vec<String> = lines
        .iter()
        .filter(|l| l.starts_with('/'))
        .cloned()
        .collect();
    // Each shell with its merged-/usr spelling, as update-shells records
    // them in its state file.
    let pairs: Vec<(String, Option<String>)> = template_shells
        .into_iter()
        .chain(shells)
        .map(|shell| {
            let real = ImagePath::parse(&shell)
                .ok()
                .and_then(|p| {
                    Some(format!(
                        "/{}",
                        view.resolve(&p.parent()?)?.join(p.file_name()).as_str()
                    ))
                })
                .filter(|real| *real != shell);
            (shell, real)
        })
        .collect();
    let state: String = pairs
        .iter()
        .flat_map(|(shell, real)| std::iter::once(shell).chain(real))
        .map(|l| format!("{l}\n"))
        .collect();
    let all = pairs
        .iter()
        .map(|(shell, _)| shell)
        .chain(pairs.iter().filter_map(|(_, real)| real.as_ref()))
        .cloned()
        .chain(added.iter().map(|s| (*s).to_owned()));
    for shell in all {
        if !lines.contains(&shell) {
            lines.push(shell);
        }
    }
    Some((lines.iter().map(|l| format!("{l}\n")).collect(), state))
}

/// What scripts see of the image: the view for kinds, the layer and the
/// base for content.
struct ImageFiles<'a> {
    view: &'a View,
    layer: &'a Layer,
    lower: &'a Lower,
    packages: &'a [Unpacked],
}

impl ImageFiles<'_> {
    fn entry(&self, at: &str) -> Option<(ImagePath, &ViewEntry)> {
        // The root has no entry of its own in a view.
        static ROOT: ViewEntry = ViewEntry {
            kind: ViewKind::Dir,
            mode: 0o755,
            uid: 0,
            gid: 0,
        };
        let resolved = self.view.resolve(&ImagePath::parse(at).ok()?)?;
        if resolved.is_root() {
            return Some((resolved, &ROOT));
        }
        let entry = self.view.get(&resolved)?;
        Some((resolved, entry))
    }
}

impl ImageFiles<'_> {
    /// A directory's entries by name, symlinks to it followed; `None` when
    /// it is not a directory.
    fn children(&self, at: &str) -> Option<Vec<(String, &ViewKind)>> {
        let (dir, entry) = self.entry(at)?;
        if entry.kind != ViewKind::Dir {
            return None;
        }
        Some(
            self.view
                .paths_below(&dir)
                .filter(|(p, _)| p.parent().as_ref() == Some(&dir))
                .map(|(p, e)| (p.file_name().to_owned(), &e.kind))
                .collect(),
        )
    }
}

impl script::Files for ImageFiles<'_> {
    fn kind(&self, at: &str) -> Option<FileKind> {
        let (_, entry) = self.entry(at)?;
        match entry.kind {
            ViewKind::Dir => Some(FileKind::Dir),
            ViewKind::File => Some(FileKind::File {
                executable: entry.mode & 0o111 != 0,
            }),
            _ => None,
        }
    }

    fn read(&self, at: &str) -> Option<Vec<u8>> {
        let (resolved, _) = self.entry(at)?;
        match self.layer.get(&resolved) {
            Some((entry, _)) => read(entry),
            None => self
                .lower
                .text(resolved.as_str())
                .map(|t| t.as_bytes().to_vec()),
        }
    }

    fn attributes(&self, at: &str) -> Option<(u32, u32, u32)> {
        let (_, entry) = self.entry(at)?;
        Some((entry.mode, entry.uid, entry.gid))
    }

    fn list(&self, at: &str) -> Vec<String> {
        self.children(at)
            .into_iter()
            .flatten()
            .map(|(name, _)| name)
            .collect()
    }

    fn canonical(&self, at: &str) -> String {
        let Ok(path) = ImagePath::parse(at) else {
            return at.to_owned();
        };
        let resolved = self
            .view
            .resolve(&path)
            .or_else(|| self.view.resolve_parent(&path))
            .unwrap_or(path);
        format!("/{}", resolved.as_str())
    }

    fn package_files(&self, package: &str) -> Option<Vec<String>> {
        let unpacked = self.packages.iter().find(|p| p.locked.name == package)?;
        Some(
            unpacked
                .entries
                .iter()
                .map(|e| {
                    format!(
                        "/{}",
                        e.path.trim_start_matches("./").trim_start_matches('/')
                    )
                })
                .collect(),
        )
    }
}

impl strata_ldconfig::Tree for ImageFiles<'_> {
    type File = Box<dyn ReadSeek>;

    fn read_dir(&self, dir: &str) -> Option<Vec<strata_ldconfig::DirEntry>> {
        let children = self.children(dir)?;
        Some(
            children
                .into_iter()
                .filter_map(|(name, kind)| {
                    let kind = match kind {
                        ViewKind::Dir => strata_ldconfig::Kind::Dir,
                        ViewKind::File => strata_ldconfig::Kind::File,
                        ViewKind::Symlink(t) => strata_ldconfig::Kind::Symlink(t.clone()),
                        ViewKind::Other => return None,
                    };
                    Some(strata_ldconfig::DirEntry { name, kind })
                })
                .collect(),
        )
    }

    fn open(&self, at: &str) -> Option<std::io::Result<Self::File>> {
        let (resolved, _) = self.entry(at)?;
        let (entry, _) = self.layer.get(&resolved)?;
        let Kind::File(content) = &entry.kind else {
            return None;
        };
        Some(content.open_seekable())
    }

    fn read_text(&self, at: &str) -> Option<String> {
        script::Files::read(self, at).map(|b| String::from_utf8_lossy(&b).into_owned())
    }
}

/// `/etc/ld.so.cache` from the final tree, when it has a dynamic loader's
/// configuration.
pub(super) fn ld_so_cache(
    view: &View,
    layer: &Layer,
    lower: &Lower,
    architecture: &str,
) -> Result<Option<Vec<u8>>, strata_ldconfig::LdconfigError> {
    if view.get(&path("etc/ld.so.conf")).is_none() {
        return Ok(None);
    }
    let files = ImageFiles {
        view,
        layer,
        lower,
        packages: &[],
    };
    strata_ldconfig::ld_so_cache(&files, architecture).map(Some)
}
