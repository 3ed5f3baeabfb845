//! `copy`: host files and folders into entries, without trusting the host.
//!
//! Host modes, owners, mtimes and xattrs never reach the image: files become
//! 0444 (0555 if any execute bit is set), directories 0755, everything
//! root-owned unless the recipe says otherwise. Folders are walked in byte
//! order, symlinks are kept as links and never followed, and `.git` is skipped.

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use globset::{GlobBuilder, GlobMatcher};

use super::AssembleError;
use crate::recipe::{CopyDest, Recipe, Spanned};
use strata_oci::entry::{Content, Entry, Fingerprint, Kind, Source};
use strata_oci::path::ImagePath;

/// What one `copy` line asks for, with owner already resolved to ids.
pub struct CopyRequest<'a> {
    pub src: &'a Spanned<String>,
    pub dest: &'a Spanned<CopyDest>,
    pub mode: Option<u32>,
    pub uid: u32,
    pub gid: u32,
    pub exclude: &'a [Spanned<String>],
    pub mtime: u64,
}

struct Exclude {
    matcher: GlobMatcher,
    /// Patterns with a `/` match the path below the copied folder; others match a name.
    anchored: bool,
    dirs_only: bool,
}

pub fn expand(recipe: &Recipe, req: &CopyRequest) -> Result<Vec<Entry>, AssembleError> {
    let context = fs::canonicalize(&recipe.context).map_err(|source| AssembleError::Io {
        path: recipe.context.clone(),
        source,
    })?;
    let written = recipe.context.join(&req.src.value);
    let host = match fs::canonicalize(&written) {
        Ok(host) => host,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(recipe
                .error(
                    req.src.span,
                    format!("`{}` does not exist", req.src.value),
                    "no such file or folder",
                    Some(format!(
                        "host paths are relative to the recipe's folder `{}`",
                        recipe.context.display()
                    )),
                )
                .into());
        }
        Err(source) => {
            return Err(AssembleError::Io {
                path: written,
                source,
            });
        }
    };
    if !host.starts_with(&context) {
        return Err(recipe
            .error(
                req.src.span,
                format!(
                    "`{}` leads outside the recipe's folder (to `{}`)",
                    req.src.value,
                    host.display()
                ),
                "escapes the recipe folder",
                Some("copy only what lies inside the recipe's folder: move the file there, or the recipe up".into()),
            )
            .into());
    }
    let excludes = compile_excludes(recipe, req.exclude)?;
    let meta = fs::metadata(&host).map_err(|source| AssembleError::Io {
        path: host.clone(),
        source,
    })?;
    let dest = req.dest.value.path.clone();
    let mut out = Vec::new();
    if meta.is_dir() {
        if !dest.is_root() {
            out.push(Entry::dir(dest.clone(), 0o755, req.uid, req.gid, req.mtime));
        }
        walk(recipe, req, &excludes, &host, "", &dest, &mut out)?;
    } else if meta.is_file() {
        let path = if req.dest.value.into {
            let name = Path::new(&req.src.value)
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            dest.join(name)
        } else {
            dest
        };
        out.push(file_entry(req, path, host, &meta));
    } else {
        return Err(special_file(recipe, req, &host));
    }
    Ok(out)
}

fn file_entry(req: &CopyRequest, path: ImagePath, host: PathBuf, meta: &fs::Metadata) -> Entry {
    let host_exec = meta.permissions().mode() & 0o111 != 0;
    let mode = req.mode.unwrap_or(if host_exec { 0o555 } else { 0o444 });
    Entry {
        path,
        kind: Kind::File(Content {
            source: Source::Host(host),
            size: meta.len(),
            fingerprint: Fingerprint::of_metadata(meta),
        }),
        mode,
        uid: req.uid,
        gid: req.gid,
        mtime: req.mtime,
    }
}

fn walk(
    recipe: &Recipe,
    req: &CopyRequest,
    excludes: &[Exclude],
    dir: &Path,
    rel: &str,
    dest: &ImagePath,
    out: &mut Vec<Entry>,
) -> Result<(), AssembleError> {
    let io = |source| AssembleError::Io {
        path: dir.to_owned(),
        source,
    };
    let mut children: Vec<fs::DirEntry> = fs::read_dir(dir)
        .map_err(io)?
        .collect::<Result<_, _>>()
        .map_err(io)?;
    children.sort_by(|a, b| a.file_name().as_bytes().cmp(b.file_name().as_bytes()));
    for child in children {
        let os_name = child.file_name();
        if os_name == ".git" {
            continue;
        }
        let host = child.path();
        let Some(name) = os_name.to_str() else {
            return Err(recipe
                .error(
                    req.src.span,
                    format!("`{}` is not a UTF-8 file name", host.display()),
                    "in this copy",
                    Some("rename the file, or exclude it with `exclude=`".into()),
                )
                .into());
        };
        let child_rel = if rel.is_empty() {
            name.to_owned()
        } else {
            format!("{rel}/{name}")
        };
        let meta = fs::symlink_metadata(&host).map_err(|source| AssembleError::Io {
            path: host.clone(),
            source,
        })?;
        let is_dir = meta.is_dir();
        if excludes.iter().any(|e| {
            (!e.dirs_only || is_dir)
                && e.matcher
                    .is_match(if e.anchored { child_rel.as_str() } else { name })
        }) {
            continue;
        }
        let path = dest.join(name);
        if meta.file_type().is_symlink() {
            let target = fs::read_link(&host).map_err(|source| AssembleError::Io {
                path: host.clone(),
                source,
            })?;
            let Some(target) = target.to_str() else {
                return Err(special_file(recipe, req, &host));
            };
            out.push(Entry {
                path,
                kind: Kind::Symlink(target.to_owned()),
                mode: 0o777,
                uid: req.uid,
                gid: req.gid,
                mtime: req.mtime,
            });
        } else if is_dir {
            out.push(Entry::dir(path.clone(), 0o755, req.uid, req.gid, req.mtime));
            walk(recipe, req, excludes, &host, &child_rel, &path, out)?;
        } else if meta.is_file() {
            out.push(file_entry(req, path, host, &meta));
        } else {
            return Err(special_file(recipe, req, &host));
        }
    }
    Ok(())
}

fn special_file(recipe: &Recipe, req: &CopyRequest, host: &Path) -> AssembleError {
    recipe
        .error(
            req.src.span,
            format!(
                "`{}` is not a regular file, folder or symlink",
                host.display()
            ),
            "in this copy",
            Some("sockets, pipes and devices cannot be copied: exclude it with `exclude=`".into()),
        )
        .into()
}

fn compile_excludes(
    recipe: &Recipe,
    patterns: &[Spanned<String>],
) -> Result<Vec<Exclude>, AssembleError> {
    patterns
        .iter()
        .map(|pattern| {
            let dirs_only = pattern.ends_with('/');
            // `./x` and `/x` both mean "x at the top of the copied folder".
            let explicit_root = pattern.starts_with("./") || pattern.starts_with('/');
            let trimmed = pattern
                .trim_end_matches('/')
                .trim_start_matches("./")
                .trim_start_matches('/');
            let anchored = explicit_root || trimmed.contains('/');
            // As in .gitignore, `*` stops at `/`; `**` crosses folders.
            let glob = GlobBuilder::new(trimmed)
                .literal_separator(true)
                .build()
                .map_err(|e| {
                    recipe.error(
                        pattern.span,
                        format!("`{}` is not a valid glob: {}", pattern.value, e.kind()),
                        "invalid glob",
                        Some("globs use `*`, `?`, `[abc]` and `**`".into()),
                    )
                })?;
            Ok(Exclude {
                matcher: glob.compile_matcher(),
                anchored,
                dirs_only,
            })
        })
        .collect()
}
