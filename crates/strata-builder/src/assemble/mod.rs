//! Assembly: from a recipe and the view of its base to the ordered entry lists
//! of the layers strata writes.
//!
//! Layers come out in this order: the package layers (`debian`: unpacked
//! packages laid out as dpkg would, grouped by `layering`), strata's own layer (accounts and the TRE
//! layout), then one per recipe `layer` block, in recipe order. Nothing
//! touches the host here beyond reading the files `copy` names.

pub mod accounts;
pub mod bytecode;
pub mod configure;
pub(crate) mod copy;
pub mod debian;
pub mod interpreters;
pub mod layering;
pub mod libraries;
pub mod python;

use std::collections::BTreeMap;
use std::path::PathBuf;

use miette::SourceSpan;

use self::accounts::{AccountFiles, Accounts};
use crate::recipe::node::Source;
use crate::tre;
use strata_debian::BasePackage;
use strata_debian::facts::PackageFacts;
use strata_oci::digest::Digest;
use strata_oci::entry::{Content, Entry, Kind, LayerPlan};
use strata_oci::platform::Platform;
use strata_oci::view::{View, ViewEntry, ViewKind};

use crate::base::Lower;
use crate::recipe::{Op, Owner, Recipe, RecipeError, Spanned};
use strata_oci::path::ImagePath;

/// One platform's image before its layers are written: what `strata lint`
/// inspects and what `build` compresses.
pub struct Planned {
    pub platform: Platform,
    /// strata's layers, in order: packages, accounts and TRE, the recipe's.
    pub plans: Vec<LayerPlan>,
    /// `uid:gid` for the config's `User`.
    pub user: Option<String>,
    pub packages: Vec<PackageFacts>,
    /// Maintainer-script commands strata could not evaluate (for lint).
    pub unevaluated: Vec<configure::Unevaluated>,
    /// The system accounts the packages' scripts created (for the lock).
    pub created_accounts: Vec<crate::lock::LockedAccount>,
    /// The Python wheels installed (for the lock and the SBOM).
    pub wheels: Vec<strata_pypi::locked::LockedWheel>,
    /// The venv they went into, for `VIRTUAL_ENV` and `PATH`.
    pub venv: Option<String>,
    /// The finished image's filesystem: the base's, then every plan's.
    pub view: View,
    /// The base's reference and manifest digest; `None` for scratch.
    pub base: Option<(String, Digest)>,
    /// The packages of the base's dpkg database.
    pub base_packages: Vec<BasePackage>,
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum AssembleError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Recipe(#[from] RecipeError),
    #[error("cannot read `{}`", path.display())]
    #[diagnostic(help("check that the file exists and is readable by the user running strata"))]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The layers to write and the user the image runs as.
#[derive(Debug, Clone)]
pub struct Assembly {
    pub layers: Vec<LayerPlan>,
    /// `uid:gid` for the config's `User`, when the image has a user.
    pub user: Option<String>,
}

pub fn assemble(recipe: &Recipe, lower: &Lower, mtime: u64) -> Result<Assembly, AssembleError> {
    let mut accounts = Accounts::from_files(
        AccountFiles {
            passwd: lower.text("etc/passwd"),
            group: lower.text("etc/group"),
            shadow: lower.text("etc/shadow"),
            gshadow: lower.text("etc/gshadow"),
        },
        mtime,
    );
    let user = image_user(recipe, lower, &mut accounts)?;
    for system in &recipe.system_users {
        accounts
            .ensure_user(
                &system.name,
                system.uid,
                system.gid,
                &system.home.to_string(),
                &system.shell,
            )
            .map_err(|e| {
                recipe.error(
                    system.name.span,
                    e.to_string(),
                    "conflicts with an existing account",
                    Some("use the name and uid the base already has, or free ones".into()),
                )
            })?;
    }

    // Expand the recipe first: strata's own layer leaves alone what it writes.
    let mut recipe_layers = Vec::new();
    for layer in &recipe.layers {
        let mut entries = Vec::new();
        for op in &layer.ops {
            for entry in expand_op(recipe, &accounts, op, mtime)? {
                entries.push((entry, op.span));
            }
        }
        recipe_layers.push((layer, entries));
    }
    let recipe_paths: Vec<&ImagePath> = recipe_layers
        .iter()
        .flat_map(|(_, entries)| entries.iter().map(|(e, _)| &e.path))
        .collect();

    let mut view = lower.view.clone();
    let mut layers = Vec::new();

    let mut own = LayerBuilder::new(recipe, &view);
    if accounts.changed() {
        for (path, bytes, mode, gid) in accounts.files() {
            let path = ImagePath::from_relative(path).expect("a constant path");
            if let Some(span) = recipe_spans(&recipe_layers, &path).next() {
                return Err(recipe
                    .error(
                        span,
                        format!("strata writes `{path}` from the recipe's users"),
                        "conflicts with the generated file",
                        Some("declare users with `user` instead of writing the file".into()),
                    )
                    .into());
            }
            let entry = Entry {
                gid,
                ..file(path, bytes, mode, mtime)
            };
            own.add(entry, None)?;
        }
    }
    if let Some(account) = user.as_ref().and_then(|(name, _)| accounts.user(name))
        && let Ok(home) = ImagePath::parse(&account.home)
        && !home.is_root()
        && view.get(&home).is_none()
        && !recipe_paths.contains(&&home)
    {
        own.add(
            Entry::dir(home, 0o755, account.uid, account.gid, mtime),
            None,
        )?;
    }
    // As Docker's WORKDIR does, the working directory exists.
    if let Some(dir) = recipe
        .runtime
        .workdir
        .as_deref()
        .and_then(|d| ImagePath::parse(d).ok())
        && !dir.is_root()
        && view.get(&dir).is_none()
        && !recipe_paths.iter().any(|p| p.starts_with(&dir))
    {
        own.add(Entry::dir(dir, 0o755, 0, 0, mtime), None)?;
    }
    if recipe.tre {
        for entry in tre::entries(&view, &recipe_paths, mtime) {
            own.add(entry, None)?;
        }
    }
    let own = own.finish("strata", "strata: accounts and TRE layout")?;
    if !own.entries.is_empty() {
        view.apply(&own);
        layers.push(own);
    }

    let mut written: BTreeMap<ImagePath, SourceSpan> = BTreeMap::new();
    for (spec, entries) in recipe_layers {
        let mut builder = LayerBuilder::new(recipe, &view);
        for (entry, span) in entries {
            let path = builder.add(entry, Some(span))?;
            if let Some(path) = path
                && let Some(first) = written.insert(path.clone(), span)
            {
                return Err(recipe
                    .error(
                        span,
                        format!("`{path}` is written twice"),
                        "written again here",
                        Some(format!(
                            "an earlier line ({}) already writes it: keep one",
                            recipe.source.position(first)
                        )),
                    )
                    .into());
            }
        }
        let plan = builder.finish(
            &spec.name.value,
            &format!("strata: layer {}", spec.name.value),
        )?;
        view.apply(&plan);
        layers.push(plan);
    }

    Ok(Assembly {
        layers,
        user: user.map(|(_, ids)| ids),
    })
}

fn lower_user_is_non_root(lower: &Lower) -> bool {
    lower.user.as_deref().is_some_and(|u| {
        let name = u.split(':').next().unwrap_or(u);
        !name.is_empty() && name != "0" && name != "root"
    })
}

/// The user the image runs as: the recipe's, or `nonroot` under the TRE preset.
fn image_user(
    recipe: &Recipe,
    lower: &Lower,
    accounts: &mut Accounts,
) -> Result<Option<(String, String)>, AssembleError> {
    let (name, uid, gid, home, shell, span) = match &recipe.user {
        Some(u) => {
            if recipe.tre && u.uid == 0 {
                return Err(recipe
                    .error(
                        u.name.span,
                        "the TRE preset needs a non-root user",
                        "uid 0 is root",
                        Some(
                            "give the user another uid, or turn the preset off with `tre #false`"
                                .into(),
                        ),
                    )
                    .into());
            }
            (
                u.name.value.clone(),
                u.uid,
                u.gid,
                u.home.to_string(),
                u.shell.clone(),
                u.name.span,
            )
        }
        // A base that already runs as a non-root user keeps that user.
        None if recipe.tre && lower_user_is_non_root(lower) => return Ok(None),
        None if recipe.tre => (
            tre::DEFAULT_USER.to_owned(),
            tre::DEFAULT_UID,
            tre::DEFAULT_UID,
            format!("/home/{}", tre::DEFAULT_USER),
            "/sbin/nologin".to_owned(),
            SourceSpan::from(0..0),
        ),
        None => return Ok(None),
    };
    accounts
        .ensure_user(&name, uid, gid, &home, &shell)
        .map_err(|e| {
            recipe.error(
                span,
                e.to_string(),
                "conflicts with the base",
                Some("pick a name and uid the base does not use, or reuse the base's user".into()),
            )
        })?;
    Ok(Some((name, format!("{uid}:{gid}"))))
}

fn expand_op(
    recipe: &Recipe,
    accounts: &Accounts,
    op: &Spanned<Op>,
    mtime: u64,
) -> Result<Vec<Entry>, AssembleError> {
    let ids = |owner: &Option<Spanned<Owner>>| -> Result<(u32, u32), AssembleError> {
        match owner {
            None => Ok((0, 0)),
            Some(Spanned {
                value: Owner::Ids(u, g),
                ..
            }) => Ok((*u, *g)),
            Some(Spanned {
                value: Owner::Name(name),
                span,
            }) => accounts.user(name).map(|a| (a.uid, a.gid)).ok_or_else(|| {
                recipe
                    .error(
                        *span,
                        format!("there is no user `{name}`"),
                        "unknown user",
                        Some("declare it with `user`, or write `UID:GID`".into()),
                    )
                    .into()
            }),
        }
    };
    Ok(match &op.value {
        Op::Copy {
            src,
            dest,
            mode,
            owner,
            exclude,
        } => {
            let (uid, gid) = ids(owner)?;
            copy::expand(
                recipe,
                &copy::CopyRequest {
                    src,
                    dest,
                    mode: *mode,
                    uid,
                    gid,
                    exclude,
                    mtime,
                },
            )?
        }
        Op::File {
            dest,
            content,
            mode,
            owner,
        } => {
            let (uid, gid) = ids(owner)?;
            let mut entry = file(
                dest.value.clone(),
                content.as_bytes().to_vec(),
                mode.unwrap_or(0o444),
                mtime,
            );
            (entry.uid, entry.gid) = (uid, gid);
            vec![entry]
        }
        Op::Mkdir { dest, mode, owner } => {
            let (uid, gid) = ids(owner)?;
            vec![Entry::dir(
                dest.value.clone(),
                mode.unwrap_or(0o755),
                uid,
                gid,
                mtime,
            )]
        }
        Op::Symlink { link, target } => vec![Entry {
            path: link.value.clone(),
            kind: Kind::Symlink(target.clone()),
            mode: 0o777,
            uid: 0,
            gid: 0,
            mtime,
        }],
    })
}

fn file(path: ImagePath, bytes: Vec<u8>, mode: u32, mtime: u64) -> Entry {
    Entry {
        path,
        kind: Kind::File(Content::inline(bytes)),
        mode,
        uid: 0,
        gid: 0,
        mtime,
    }
}

fn recipe_spans<'a>(
    layers: &'a [(&crate::recipe::LayerSpec, Vec<(Entry, SourceSpan)>)],
    path: &'a ImagePath,
) -> impl Iterator<Item = SourceSpan> + 'a {
    layers
        .iter()
        .flat_map(|(_, entries)| entries.iter())
        .filter(move |(e, _)| &e.path == path)
        .map(|(_, span)| *span)
}

/// Collects one layer's entries: maps them through the lower symlinks, rejects
/// clashes, and adds the parent directories the lower layers lack.
struct LayerBuilder<'a> {
    recipe: &'a Recipe,
    lower: &'a View,
    /// The lower layers plus what this layer added so far: paths resolve
    /// through symlinks made earlier in the same layer too.
    view: View,
    entries: BTreeMap<ImagePath, (Entry, Option<SourceSpan>)>,
}

impl<'a> LayerBuilder<'a> {
    fn new(recipe: &'a Recipe, view: &'a View) -> Self {
        LayerBuilder {
            recipe,
            lower: view,
            view: view.clone(),
            entries: BTreeMap::new(),
        }
    }

    /// Adds an entry where the lower symlinks lead it. Recipe entries (those
    /// with a span) may not land in a TRE mount point, however they get
    /// there. Returns the final path of a non-directory entry.
    fn add(
        &mut self,
        mut entry: Entry,
        span: Option<SourceSpan>,
    ) -> Result<Option<ImagePath>, AssembleError> {
        let span_or_top = span.unwrap_or(SourceSpan::from(0..0));
        entry.path = self.view.resolve_parent(&entry.path).ok_or_else(|| {
            self.recipe.error(
                span_or_top,
                format!("`{}` goes through a symlink loop in the base", entry.path),
                "cannot be placed",
                Some("choose a destination whose folders are not looping symlinks".into()),
            )
        })?;
        if self.recipe.tre
            && span.is_some()
            && let Some(dir) = tre::TRE_DIRS
                .iter()
                .find(|d| entry.path.starts_with(&tre::dir(d)))
        {
            return Err(self
                .recipe
                .error(
                    span_or_top,
                    format!("`{}` lies inside the TRE folder `/{dir}`", entry.path),
                    "writes into a TRE mount point",
                    Some(format!(
                        "the TRE mounts `/{dir}` over the image at run time, hiding anything put there: choose another destination"
                    )),
                )
                .into());
        }
        if span.is_some()
            && !entry.is_dir()
            && !self.entries.contains_key(&entry.path)
            && self
                .view
                .get(&entry.path)
                .is_some_and(|e| e.kind == ViewKind::Dir)
            && self.view.has_children(&entry.path)
        {
            return Err(self
                .recipe
                .error(
                    span_or_top,
                    format!(
                        "`{}` is a folder with contents in a lower layer",
                        entry.path
                    ),
                    "would hide that folder",
                    Some("write into the folder, or choose another path".into()),
                )
                .into());
        }
        if let Some((existing, existing_span)) = self.entries.get(&entry.path) {
            if existing.is_dir() && entry.is_dir() && existing == &entry {
                return Ok(None);
            }
            let help = match existing_span {
                Some(s) => format!(
                    "an earlier line (byte {}) writes it differently: keep one",
                    s.offset()
                ),
                None => "strata writes this path itself: choose another".to_owned(),
            };
            return Err(self
                .recipe
                .error(
                    span_or_top,
                    format!("`{}` is written twice", entry.path),
                    "clashes",
                    Some(help),
                )
                .into());
        }
        let written = (!entry.is_dir()).then(|| entry.path.clone());
        self.view.insert(entry.path.clone(), ViewEntry::of(&entry));
        self.entries.insert(entry.path.clone(), (entry, span));
        Ok(written)
    }

    fn finish(self, name: &str, created_by: &str) -> Result<LayerPlan, AssembleError> {
        let mut entries: BTreeMap<ImagePath, Entry> =
            self.entries.into_iter().map(|(p, (e, _))| (p, e)).collect();
        add_parents(&mut entries, self.lower);
        Ok(LayerPlan {
            name: name.to_owned(),
            created_by: created_by.to_owned(),
            entries: entries.into_values().collect(),
        })
    }
}

/// Adds the directories a layer's entries need that neither the layer nor
/// the layers below have (root-owned, 0755, as `mkdir -p` would make them).
/// Each folder is looked at once, however many entries lie below it, and a
/// walk up stops at a folder this layer already has: the work is linear in
/// the number of folders, not in entries times depth.
pub fn add_parents(entries: &mut BTreeMap<ImagePath, Entry>, view: &View) {
    let mut parents: BTreeMap<ImagePath, Entry> = BTreeMap::new();
    let mut in_lower: std::collections::HashSet<ImagePath> = std::collections::HashSet::new();
    for (path, entry) in entries.iter() {
        let mut current = path.parent();
        while let Some(dir) = current.filter(|d| !d.is_root()) {
            if entries.contains_key(&dir) || parents.contains_key(&dir) || in_lower.contains(&dir) {
                break;
            }
            current = dir.parent();
            if view.get(&dir).is_some_and(|e| e.kind == ViewKind::Dir) {
                in_lower.insert(dir);
            } else {
                parents.insert(dir.clone(), Entry::dir(dir, 0o755, 0, 0, entry.mtime));
            }
        }
    }
    entries.extend(parents);
}
