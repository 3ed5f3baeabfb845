//! Installing packages by extraction: the packages' files become one layer's
//! entries, plus what configuring them would have left (`configure.rs`).
//!
//! Also written here: the merged-/usr layout (Debian 12's `bin -> usr/bin`
//! links, or the base's own layout), the dpkg database that scanners read
//! (`status.d/<pkg>` + `.md5sums`, or the base's `status`), the CA store
//! when `ca-certificates` is installed, `/etc/ld.so.cache`, and
//! `/etc/os-release` + `/etc/debian_version` when `base-files` is absent.
//! See `spec/packages.md` for every emulated effect.

use std::collections::BTreeMap;
use std::io::Read;

use rayon::prelude::*;
use strata_client::fetch::Fetcher;
use strata_debian::deb::{DataEntry, DataKind};
use strata_debian::facts::PackageFacts;
use strata_debian::{DebianError, Unpacked};
use strata_oci::digest::Digest;
use strata_oci::entry::{Content, Entry, Fingerprint, Kind, LayerPlan, Source};
use strata_oci::path::ImagePath;
use strata_oci::platform::Platform;
use strata_oci::view::{View, ViewEntry, ViewKind};

use crate::assemble::bytecode::{self, BytecodeError};
use crate::assemble::configure::{self, Layer, Unevaluated};
use crate::assemble::layering;
use crate::base::Lower;
use crate::lock::{Lock, LockError, LockedAccount};
use crate::recipe::{Recipe, UserSpec};

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum InstallError {
    #[error("packages `{first}` and `{second}` both ship `/{path}` with different content")]
    #[diagnostic(help("they cannot be installed together: drop or replace one of them"))]
    Clash {
        path: String,
        first: String,
        second: String,
    },
    #[error("cannot read the unpacked files of `{package}`")]
    Read {
        package: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    #[diagnostic(transparent)]
    Debian(#[from] DebianError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Lock(#[from] LockError),
    #[error("cannot read the site CA certificate `{}`", path.display())]
    #[diagnostic(help("the path of `ca-certificate` is relative to the recipe's folder"))]
    SiteCertificate {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("a CA certificate cannot be used")]
    #[diagnostic(help("a site CA must be one PEM certificate (`-----BEGIN CERTIFICATE-----`)"))]
    Certificate(#[from] strata_certs::CertError),
    #[error("cannot write `/etc/ld.so.cache`")]
    LdCache(#[from] strata_ldconfig::LdconfigError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Bytecode(#[from] BytecodeError),
}

/// The package layer and what each package says about itself.
pub struct PackageLayer {
    /// Bottom first (see [`layering`](super::layering)).
    pub plans: Vec<LayerPlan>,
    pub packages: Vec<PackageFacts>,
    /// Maintainer-script commands strata could not evaluate.
    pub unevaluated: Vec<Unevaluated>,
    /// The account files as the packages left them (path, text), when they
    /// wrote them: the recipe's users are added to these.
    pub accounts: Vec<(String, String)>,
    /// The system accounts the scripts created, with their ids, for the lock.
    pub created: Vec<LockedAccount>,
}

/// Fetches and unpacks the platform's locked packages and plans their layer.
pub fn layer(
    recipe: &Recipe,
    lock: &Lock,
    platform: &Platform,
    lower: &Lower,
    fetcher: &Fetcher,
    mtime: u64,
) -> Result<Option<PackageLayer>, InstallError> {
    let Some(debian) = &recipe.debian else {
        return Ok(None);
    };
    let packages = lock
        .platforms
        .get(&platform.to_string())
        .ok_or_else(|| LockError::NoPlatform(platform.to_string()))?;
    let unpacked = strata_debian::unpack(packages, fetcher)?;
    let release_version = lock
        .repositories
        .iter()
        .find(|r| r.suite == debian.suite.value)
        .and_then(|r| r.version.as_deref());
    let answers = debian.debconf_answers();
    let requested: Vec<String> = debian.install.iter().map(|p| p.name.clone()).collect();
    let site_certificates = debian
        .ca_certificates
        .iter()
        .map(|c| {
            let path = recipe.context.join(&c.value);
            std::fs::read(&path)
                .map(|bytes| (c.value.clone(), bytes))
                .map_err(|source| InstallError::SiteCertificate { path, source })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let planned = plan(
        &unpacked,
        lower,
        &Options {
            architecture: strata_debian::debian_arch(platform)?,
            suite: &debian.suite,
            release_version,
            keep_docs: debian.keep_docs,
            mtime,
            answers: &answers,
            site_certificates: &site_certificates,
            declared_users: &recipe.system_users,
            bytecode: debian.bytecode.then(|| fetcher.cache()),
            requested: &requested,
            recorded: lock
                .accounts
                .get(&platform.to_string())
                .map_or(&[][..], Vec::as_slice),
            layers: debian.layers,
        },
    )?;
    let packages = unpacked
        .par_iter()
        .map(|p| {
            strata_debian::facts::facts(p).map_err(|source| InstallError::Read {
                package: p.locked.name.clone(),
                source,
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(Some(PackageLayer {
        plans: planned.plans,
        packages,
        unevaluated: planned.unevaluated,
        accounts: planned.accounts,
        created: planned.created,
    }))
}

/// Settings that shape the package layer.
pub struct Options<'a> {
    pub architecture: &'a str,
    pub suite: &'a str,
    /// The main release's version (`12.15`), for `/etc/debian_version`.
    pub release_version: Option<&'a str>,
    pub keep_docs: bool,
    pub mtime: u64,
    /// debconf answers (`timezone` → tzdata's questions).
    pub answers: &'a BTreeMap<String, String>,
    /// Site CAs from the recipe: (name as written, PEM bytes).
    pub site_certificates: &'a [(String, Vec<u8>)],
    /// The recipe's `system-user` accounts: their ids win over the ones
    /// strata would pick for a package's `adduser --system`.
    pub declared_users: &'a [UserSpec],
    /// Where compiled byte-code is cached; `None` when `bytecode #false`.
    pub bytecode: Option<&'a strata_cache::Cache>,
    /// The packages the recipe installs, in its order.
    pub requested: &'a [String],
    /// Ids the lock recorded for accounts scripts create.
    pub recorded: &'a [LockedAccount],
    /// How many layers the packages take (`layers` in the recipe).
    pub layers: u32,
}

/// A planned package layer and what configuring left for later stages.
pub struct Planned {
    /// The packages' layers, bottom first: one per group, then the
    /// configuration.
    pub plans: Vec<LayerPlan>,
    pub unevaluated: Vec<Unevaluated>,
    pub accounts: Vec<(String, String)>,
    pub created: Vec<LockedAccount>,
}

/// Debian 12's merged-/usr links, created when the base has neither the link
/// nor a real directory there.
fn merged_usr(architecture: &str) -> Vec<(&'static str, &'static str)> {
    let mut links = vec![("bin", "usr/bin"), ("lib", "usr/lib"), ("sbin", "usr/sbin")];
    if architecture == "amd64" {
        links.push(("lib64", "usr/lib64"));
    }
    links
}

pub fn plan(
    packages: &[Unpacked],
    lower: &Lower,
    options: &Options,
) -> Result<Planned, InstallError> {
    let mut view = lower.view.clone();
    // Each entry with the index of the package that ships it; `None` for
    // what strata writes itself (links, the dpkg database, the CA bundle).
    let mut layer: BTreeMap<ImagePath, (Entry, Option<usize>)> = BTreeMap::new();
    let path = |s: &str| ImagePath::from_relative(s).expect("a constant path");

    for (link, target) in merged_usr(options.architecture) {
        let link = path(link);
        if view.get(&link).is_none() {
            let entry = Entry {
                path: link.clone(),
                kind: Kind::Symlink(target.to_owned()),
                mode: 0o777,
                uid: 0,
                gid: 0,
                mtime: options.mtime,
            };
            view.insert(link.clone(), ViewEntry::of(&entry));
            layer.insert(link, (entry, None));
        }
    }

    for (index, package) in packages.iter().enumerate() {
        let md5 = md5_map(package.control.md5sums.as_deref());
        for data in &package.entries {
            let Some((raw, entry)) = place(package, data, &view, options) else {
                continue;
            };
            let target = entry.path.clone();
            if let Some((existing, other)) = layer.get(&target) {
                let other = other.and_then(|i| packages.get(i));
                if same_content(existing, &entry, other, &raw, &md5) {
                    continue;
                }
                return Err(InstallError::Clash {
                    path: target.as_str().to_owned(),
                    first: other.map_or("strata".to_owned(), |p| p.locked.name.clone()),
                    second: package.locked.name.clone(),
                });
            }
            view.insert(target.clone(), ViewEntry::of(&entry));
            layer.insert(target, (entry, Some(index)));
        }
    }

    for (name, pem) in options.site_certificates {
        let base = name.rsplit('/').next().unwrap_or(name);
        let base = base.strip_suffix(".crt").unwrap_or(base);
        let entry = configure::file(
            path("usr/local/share/ca-certificates").join(&format!("{base}.crt")),
            pem.clone(),
            options.mtime,
        );
        view.insert(entry.path.clone(), ViewEntry::of(&entry));
        layer.insert(entry.path.clone(), (entry, None));
    }

    let configured = configure::configure(
        packages,
        &mut view,
        &mut layer,
        lower,
        &configure::Settings {
            architecture: options.architecture,
            mtime: options.mtime,
            answers: options.answers,
            declared_users: options.declared_users,
            requested: options.requested,
            recorded: options.recorded,
        },
    );

    // What strata generates, each with the package it belongs to: a
    // module's byte-code and a package's status file go in its layer.
    let mut generated: Vec<(Entry, Option<usize>)> = Vec::new();
    if let Some(cache) = options.bytecode {
        for (entry, module) in
            bytecode::bytecode(&layer, &view, options.architecture, cache, options.mtime)?
        {
            let owner = layer.get(&module).and_then(|(_, owner)| *owner);
            generated.push((entry, owner));
        }
    }
    generated.extend(dpkg_database(packages, lower, options.mtime));
    if packages.iter().any(|p| p.locked.name == "ca-certificates") {
        generated.extend(
            ca_store(&layer, lower, options)?
                .into_iter()
                .map(|e| (e, None)),
        );
    }
    if let Some(cache) = configure::ld_so_cache(&view, &layer, lower, options.architecture)? {
        generated.push((
            configure::file(path("etc/ld.so.cache"), cache, options.mtime),
            None,
        ));
    }
    let has_base_files = packages.iter().any(|p| p.locked.name == "base-files");
    if !has_base_files && view.get(&path("etc/os-release")).is_none() {
        generated.extend(os_release(options).into_iter().map(|(p, text)| {
            (
                configure::file(path(p), text.into_bytes(), options.mtime),
                None,
            )
        }));
    }
    for (entry, owner) in generated {
        let target = view
            .resolve_parent(&entry.path)
            .unwrap_or(entry.path.clone());
        layer.insert(
            target.clone(),
            (
                Entry {
                    path: target,
                    ..entry
                },
                owner,
            ),
        );
    }

    Ok(Planned {
        plans: split(layer, packages, options.layers, &lower.view, options.mtime),
        unevaluated: configured.unevaluated,
        accounts: configured.accounts,
        created: configured.created,
    })
}

/// The planned entries, split into the layers of the packages' groups and
/// the configuration layer (what no package ships: the dpkg status,
/// `ld.so.cache`, alternatives, edited files). Each layer carries every
/// folder its entries need that the base lacks, with the same owner, mode
/// and time in every layer, so the image's tree does not depend on the
/// order of the layers, and a group's layer does not depend on the others.
fn split(
    layer: Layer,
    packages: &[Unpacked],
    budget: u32,
    lower: &View,
    mtime: u64,
) -> Vec<LayerPlan> {
    let locked: Vec<&strata_debian::locked::LockedPackage> =
        packages.iter().map(|p| &p.locked).collect();
    let groups = layering::layers(&locked, budget);
    let mut slot_of = vec![0; packages.len()];
    for (slot, group) in groups.iter().enumerate() {
        for &member in &group.members {
            slot_of[member] = slot;
        }
    }
    // With one layer, the configuration joins the only group.
    let configuration = if budget <= 1 { 0 } else { groups.len() };
    let mut slots: Vec<BTreeMap<ImagePath, Entry>> = vec![BTreeMap::new(); configuration + 1];
    // Folders are looked up from every layer: the few thousand of them are
    // kept aside rather than the whole tree.
    let mut dirs: BTreeMap<ImagePath, Entry> = BTreeMap::new();
    for (path, (entry, owner)) in layer {
        if entry.is_dir() {
            dirs.insert(path.clone(), entry.clone());
        }
        slots[owner.map_or(configuration, |i| slot_of[i])].insert(path, entry);
    }
    // A hard link needs its target in the same layer: one whose target went
    // to another layer (two packages shipping the same file) is a copy of it.
    let mut copies: Vec<(usize, ImagePath, Entry)> = Vec::new();
    for (slot, entries) in slots.iter().enumerate() {
        for (path, entry) in entries {
            if let Kind::Hardlink(target) = &entry.kind
                && !entries.contains_key(target)
                && let Some(file) = slots
                    .iter()
                    .find_map(|other| other.get(target))
                    .filter(|t| matches!(t.kind, Kind::File(_)))
            {
                copies.push((
                    slot,
                    path.clone(),
                    Entry {
                        path: path.clone(),
                        ..file.clone()
                    },
                ));
            }
        }
    }
    for (slot, path, entry) in copies {
        slots[slot].insert(path, entry);
    }

    let names = |members: &[usize]| {
        members
            .iter()
            .map(|&i| packages[i].locked.name.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut plans = Vec::new();
    for (slot, mut entries) in slots.into_iter().enumerate() {
        let mut parents: BTreeMap<ImagePath, Entry> = BTreeMap::new();
        for path in entries.keys() {
            let mut current = path.parent();
            while let Some(dir) = current.filter(|d| !d.is_root()) {
                if entries.contains_key(&dir) || parents.contains_key(&dir) {
                    break;
                }
                let entry = match dirs.get(&dir) {
                    Some(entry) => entry.clone(),
                    None if lower.get(&dir).is_some_and(|e| e.kind == ViewKind::Dir) => break,
                    None => Entry::dir(dir.clone(), 0o755, 0, 0, mtime),
                };
                current = dir.parent();
                parents.insert(dir, entry);
            }
        }
        entries.extend(parents);
        if entries.is_empty() {
            continue;
        }
        let (name, created_by) = match groups.get(slot) {
            Some(group) if slot != configuration || budget <= 1 => (
                group.name.clone(),
                format!("strata: debian packages {}", names(&group.members)),
            ),
            _ => (
                "configuration".to_owned(),
                "strata: configuration of the debian packages (dpkg status, ld.so.cache, alternatives, accounts)".to_owned(),
            ),
        };
        plans.push(LayerPlan {
            name,
            created_by,
            entries: entries.into_values().collect(),
        });
    }
    plans
}

/// Where one of a package's files goes in the image, as an entry; `None`
/// when it has no place there (logged at `-v`, except for the
/// documentation left out on purpose and folders that the base has as
/// links).
fn place(
    package: &Unpacked,
    data: &DataEntry,
    view: &View,
    options: &Options,
) -> Option<(ImagePath, Entry)> {
    let skip = |why: &str| {
        tracing::info!(package = %package.locked.name, path = %data.path, "file not installed: {why}");
    };
    let Ok(raw) = ImagePath::from_relative(&data.path) else {
        skip("not a valid image path");
        return None;
    };
    if raw.is_root() || (!options.keep_docs && excluded_doc(&raw)) {
        return None;
    }
    let Some(target) = view.resolve_parent(&raw) else {
        skip("its folder leads nowhere in the image (a dangling or looping link)");
        return None;
    };
    // A directory the lower layers have as a symlink stays a symlink.
    if matches!(data.kind, DataKind::Dir)
        && matches!(
            view.get(&target).map(|e| &e.kind),
            Some(ViewKind::Symlink(_))
        )
    {
        return None;
    }
    let kind = match &data.kind {
        DataKind::Dir => Kind::Dir,
        DataKind::File => Kind::File(Content {
            source: Source::Slice {
                path: package.data_tar.clone(),
                offset: data.offset,
            },
            size: data.size,
            fingerprint: Fingerprint::Digest(Digest::of(
                format!("{}:{}", package.locked.sha256, data.offset).as_bytes(),
            )),
        }),
        DataKind::Symlink(t) => Kind::Symlink(t.clone()),
        DataKind::Hardlink(t) => match ImagePath::from_relative(t)
            .ok()
            .and_then(|t| view.resolve_parent(&t))
        {
            Some(t) => Kind::Hardlink(t),
            None => {
                skip("its hard link target cannot be placed");
                return None;
            }
        },
        // Device nodes and FIFOs: runtimes provide `/dev`, and OCI
        // layers from packages carry none.
        DataKind::Other => {
            skip("a device node or FIFO");
            return None;
        }
    };
    let entry = Entry {
        path: target,
        kind,
        mode: data.mode & 0o7777,
        uid: data.uid,
        gid: data.gid,
        mtime: data.mtime.min(options.mtime),
    };
    Some((raw, entry))
}

/// Two packages may ship the same directory, the same symlink, or a file
/// with the same content (as `Multi-Arch: same` packages do).
fn same_content(
    a: &Entry,
    b: &Entry,
    a_owner: Option<&Unpacked>,
    raw: &ImagePath,
    b_md5: &BTreeMap<String, String>,
) -> bool {
    match (&a.kind, &b.kind) {
        (Kind::Dir, Kind::Dir) => true,
        (Kind::Symlink(x), Kind::Symlink(y)) => x == y,
        (Kind::File(x), Kind::File(y)) if x.size == y.size => {
            let Some(a_pkg) = a_owner else {
                return false;
            };
            let a_md5 = md5_map(a_pkg.control.md5sums.as_deref());
            matches!((a_md5.get(raw.as_str()), b_md5.get(raw.as_str())), (Some(x), Some(y)) if x == y)
        }
        _ => false,
    }
}

/// `md5sums` lines are `<md5>  <path without leading />`.
fn md5_map(text: Option<&str>) -> BTreeMap<String, String> {
    text.unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once(char::is_whitespace))
        .map(|(sum, path)| {
            (
                path.trim().trim_start_matches("./").to_owned(),
                sum.to_owned(),
            )
        })
        .collect()
}

/// What slim images drop: documentation (but not the copyright files
/// licences require), manual pages, info, translations, lintian overrides.
fn excluded_doc(path: &ImagePath) -> bool {
    let p = path.as_str();
    let under = |dir: &str| p == dir || p.starts_with(&format!("{dir}/"));
    if under("usr/share/man")
        || under("usr/share/info")
        || under("usr/share/locale")
        || under("usr/share/lintian")
    {
        return true;
    }
    if let Some(rest) = p.strip_prefix("usr/share/doc/") {
        // Keep `usr/share/doc/<pkg>` itself and its `copyright`.
        return rest.contains('/') && !rest.ends_with("/copyright");
    }
    false
}

/// The dpkg database scanners read: the base's `status` with our packages
/// appended when the base has one, else distroless-style `status.d` files.
fn dpkg_database(packages: &[Unpacked], lower: &Lower, mtime: u64) -> Vec<(Entry, Option<usize>)> {
    let path = |s: &str| ImagePath::from_relative(s).expect("a constant path");
    let status_d = path("var/lib/dpkg/status.d");
    let stanza = |p: &Unpacked| {
        let text = p.control.text.trim_end();
        // dpkg's status carries a Status field right after Package.
        match text.split_once('\n') {
            Some((first, rest)) if first.starts_with("Package:") => {
                format!("{first}\nStatus: install ok installed\n{rest}\n")
            }
            _ => format!("{text}\nStatus: install ok installed\n"),
        }
    };
    if let Some(status) = lower.text("var/lib/dpkg/status") {
        let mut text = status.trim_end().to_owned();
        for p in packages {
            text.push_str("\n\n");
            text.push_str(stanza(p).trim_end());
        }
        text.push('\n');
        return vec![(
            configure::file(path("var/lib/dpkg/status"), text.into_bytes(), mtime),
            None,
        )];
    }
    let mut out = Vec::new();
    for (index, p) in packages.iter().enumerate() {
        let name = &p.locked.name;
        out.push((
            configure::file(status_d.join(name), stanza(p).into_bytes(), mtime),
            Some(index),
        ));
        if let Some(md5) = &p.control.md5sums {
            out.push((
                configure::file(
                    status_d.join(&format!("{name}.md5sums")),
                    md5.clone().into_bytes(),
                    mtime,
                ),
                Some(index),
            ));
        }
    }
    out
}

/// What `update-ca-certificates` (and, with a JRE, its Java hook) makes:
/// the bundle, `/etc/ssl/certs/*.pem` and hash links, Java's `cacerts`.
fn ca_store(layer: &Layer, lower: &Lower, options: &Options) -> Result<Vec<Entry>, InstallError> {
    let path = configure::path;
    let certificates = |dir: &str| -> Result<Vec<strata_certs::CertFile>, InstallError> {
        let dir = path(dir);
        let mut out = Vec::new();
        for (p, (entry, _)) in strata_oci::path::below(layer, &dir) {
            let Kind::File(content) = &entry.kind else {
                continue;
            };
            if !p.as_str().ends_with(".crt") {
                continue;
            }
            let mut pem = Vec::new();
            content
                .open()
                .and_then(|mut r| r.read_to_end(&mut pem))
                .map_err(|source| InstallError::Read {
                    package: "ca-certificates".into(),
                    source,
                })?;
            out.push(strata_certs::CertFile {
                path: format!("/{}", p.as_str()),
                pem,
            });
        }
        Ok(out)
    };
    let shared = certificates("usr/share/ca-certificates")?;
    let local = certificates("usr/local/share/ca-certificates")?;
    let conf = configure::text(layer, lower, "etc/ca-certificates.conf");
    let store = strata_certs::update_ca_certificates(conf.as_deref(), &shared, &local)?;
    let mut out = vec![configure::file(
        path("etc/ssl/certs/ca-certificates.crt"),
        store.bundle.clone(),
        options.mtime,
    )];
    for (link, target) in &store.links {
        let Ok(link) = ImagePath::parse(link) else {
            continue;
        };
        out.push(Entry {
            path: link,
            kind: Kind::Symlink(target.clone()),
            mode: 0o777,
            uid: 0,
            gid: 0,
            mtime: options.mtime,
        });
    }
    if layer.contains_key(&path("etc/ca-certificates/update.d/jks-keystore")) {
        out.push(configure::file(
            path("etc/ssl/certs/java/cacerts"),
            strata_certs::java_cacerts(&store)?,
            options.mtime,
        ));
    }
    Ok(out)
}

/// What `base-files` would provide for tools (Trivy among them) that detect
/// the distribution.
fn os_release(options: &Options) -> Vec<(&'static str, String)> {
    let suite = options
        .suite
        .trim_end_matches("-updates")
        .trim_end_matches("-security");
    let major = options
        .release_version
        .and_then(|v| v.split('.').next())
        .filter(|m| !m.is_empty());
    let mut os = String::from("PRETTY_NAME=\"Debian GNU/Linux");
    if let Some(major) = major {
        os.push_str(&format!(" {major} ({suite})\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"{major}\"\nVERSION=\"{major} ({suite})\"\n"));
    } else {
        os.push_str(&format!(" ({suite})\"\nNAME=\"Debian GNU/Linux\"\n"));
    }
    os.push_str(&format!(
        "VERSION_CODENAME={suite}\nID=debian\nHOME_URL=\"https://www.debian.org/\"\nSUPPORT_URL=\"https://www.debian.org/support\"\nBUG_REPORT_URL=\"https://bugs.debian.org/\"\n"
    ));
    let debian_version = options
        .release_version
        .map_or_else(|| format!("{suite}/sid"), str::to_owned);
    vec![
        ("etc/os-release", os),
        ("etc/debian_version", format!("{debian_version}\n")),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_copyright_and_drops_docs() {
        let p = |s: &str| ImagePath::from_relative(s).unwrap();
        assert!(excluded_doc(&p("usr/share/doc/curl/changelog.gz")));
        assert!(!excluded_doc(&p("usr/share/doc/curl/copyright")));
        assert!(!excluded_doc(&p("usr/share/doc/curl")));
        assert!(excluded_doc(&p("usr/share/man/man1/curl.1.gz")));
        assert!(excluded_doc(&p("usr/share/locale")));
        assert!(!excluded_doc(&p("usr/share/localeX")));
        assert!(!excluded_doc(&p("usr/bin/curl")));
    }

    #[test]
    fn os_release_names_the_release() {
        let files = os_release(&Options {
            architecture: "amd64",
            suite: "bookworm",
            release_version: Some("12.15"),
            keep_docs: false,
            mtime: 0,
            answers: &BTreeMap::new(),
            site_certificates: &[],
            declared_users: &[],
            bytecode: None,
            requested: &[],
            recorded: &[],
            layers: 1,
        });
        assert!(files[0].1.contains("VERSION_ID=\"12\"") && files[0].1.contains("ID=debian"));
        assert_eq!(files[1].1, "12.15\n");
    }
}
