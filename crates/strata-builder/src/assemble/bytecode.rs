//! Python byte-code for the modules Debian packages ship, as their
//! `postinst` (`py3compile`) would have written it.
//!
//! Without `.pyc` files every container start recompiles every module it
//! imports, on a root that is read-only at run time, so nothing is ever
//! cached: `import pandas, scipy.stats, numpy` takes five times as long.
//! Compiling needs Python's own compiler, so this is the one place strata
//! runs a program from the image: the interpreter of the locked, signed
//! `python3.X` package, from a private temporary folder, on the host's
//! kernel (same architecture only), with a cleared environment, no
//! privileges and no namespaces, and only on files strata lists. No
//! maintainer script is ever run. `debian { bytecode #false }` turns it off.
//!
//! The files are PEP 552 "unchecked-hash" `.pyc`s: they do not record the
//! source's mtime, and the hash seed is fixed, so they are the same bytes on
//! every machine; they are cached by what decides them.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use strata_cache::{Cache, CacheError};
use strata_oci::digest::{Digest, HashingWriter};
use strata_oci::entry::{Content, Entry, Fingerprint, Kind, Source};
use strata_oci::path::{ImagePath, below};
use strata_oci::view::View;

use super::configure::Layer;

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum BytecodeError {
    #[error("cannot prepare Python byte-code in `{}`", path.display())]
    #[diagnostic(help("check that the cache folder is writable and has free space"))]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the image's `{interpreter}` could not compile its modules: {detail}")]
    #[diagnostic(help(
        "set `bytecode #false` in the `debian` block to build without byte-code, and report this"
    ))]
    Compiler { interpreter: String, detail: String },
    #[error(transparent)]
    #[diagnostic(transparent)]
    Cache(#[from] CacheError),
}

/// One architecture's dynamic loader and library folder.
struct Loader {
    triplet: &'static str,
    loader: &'static str,
}

/// Architectures whose image interpreter can run on this host.
fn host_loader(architecture: &str) -> Option<Loader> {
    match (architecture, std::env::consts::ARCH) {
        ("amd64", "x86_64") => Some(Loader {
            triplet: "x86_64-linux-gnu",
            loader: "ld-linux-x86-64.so.2",
        }),
        ("arm64", "aarch64") => Some(Loader {
            triplet: "aarch64-linux-gnu",
            loader: "ld-linux-aarch64.so.1",
        }),
        _ => None,
    }
}

/// What a finished compilation left: one bundle blob of every `.pyc`, and
/// where each is in it.
#[derive(Serialize, Deserialize)]
struct Record {
    bundle: Digest,
    files: Vec<RecordFile>,
}

#[derive(Serialize, Deserialize)]
struct RecordFile {
    path: String,
    /// The `.pyc`'s own sha256: what identifies it in a layer's key.
    digest: Digest,
    size: u64,
    offset: u64,
}

/// The `.pyc` entries for every Python module of the package layer, each
/// with the module it was compiled from.
pub(super) fn bytecode(
    layer: &Layer,
    view: &View,
    architecture: &str,
    cache: &Cache,
    mtime: u64,
) -> Result<Vec<(Entry, ImagePath)>, BytecodeError> {
    let mut out = Vec::new();
    for (version, interpreter) in interpreters(layer) {
        let sources = sources(layer, view, &version);
        if sources.is_empty() {
            continue;
        }
        let Some(loader) = host_loader(architecture) else {
            strata_progress::get().println(format!(
                "warning: no Python byte-code for {architecture}: the image's interpreter cannot run on this host; imports will be slower (build on a {architecture} machine, or set `bytecode #false` to silence this)"
            ));
            return Ok(Vec::new());
        };
        // Each package's modules are compiled and kept apart, so that an
        // upgrade compiles again only the packages that changed.
        let stdlib_dir = format!("usr/lib/python{version}/");
        let stdlib: Vec<(&ImagePath, &Content)> = sources
            .iter()
            .filter(|(p, _)| p.as_str().starts_with(&stdlib_dir))
            .copied()
            .collect();
        let groups = by_package(layer, &sources);
        let mut records = Vec::new();
        let mut missing = Vec::new();
        for group in groups {
            let key = key(&interpreter, &group);
            match cached(cache, &key) {
                Some(found) => records.push(found),
                None => missing.push((key, group)),
            }
        }
        if !missing.is_empty() {
            let groups: Vec<&[(&ImagePath, &Content)]> =
                missing.iter().map(|(_, g)| g.as_slice()).collect();
            let compiled = compile(layer, view, cache, &loader, &version, &stdlib, &groups)?;
            cache.dir("bytecode")?;
            for ((key, _), record) in missing.iter().zip(compiled) {
                cache.write_record("bytecode", key, &record)?;
                let bundle = cache.blob_path(&record.bundle);
                records.push((record, bundle));
            }
        }
        for (record, bundle) in records {
            for file in record.files {
                let Ok(path) = ImagePath::from_relative(&file.path) else {
                    continue;
                };
                let Some(module) = module_of(&path) else {
                    continue;
                };
                out.push((
                    Entry {
                        path,
                        kind: Kind::File(Content {
                            source: Source::Slice {
                                path: bundle.clone(),
                                offset: file.offset,
                            },
                            size: file.size,
                            fingerprint: Fingerprint::Digest(file.digest),
                        }),
                        mode: 0o644,
                        uid: 0,
                        gid: 0,
                        mtime,
                    },
                    module,
                ));
            }
        }
    }
    Ok(out)
}

/// The module a `.pyc` was compiled from: `DIR/__pycache__/NAME.TAG.pyc`
/// comes from `DIR/NAME.py` (PEP 3147).
fn module_of(pyc: &ImagePath) -> Option<ImagePath> {
    let (cache_dir, file) = pyc.as_str().rsplit_once('/')?;
    let dir = cache_dir.strip_suffix("__pycache__")?.trim_end_matches('/');
    let stem = file.strip_suffix(".pyc")?.rsplit_once('.')?.0;
    let module = if dir.is_empty() {
        format!("{stem}.py")
    } else {
        format!("{dir}/{stem}.py")
    };
    ImagePath::from_relative(&module).ok()
}

/// The sources, by the package that ships them (in path order within each).
fn by_package<'a>(
    layer: &Layer,
    sources: &[(&'a ImagePath, &'a Content)],
) -> Vec<Vec<(&'a ImagePath, &'a Content)>> {
    let mut groups: BTreeMap<Option<usize>, Vec<(&ImagePath, &Content)>> = BTreeMap::new();
    for &(path, content) in sources {
        let owner = layer.get(path).and_then(|(_, owner)| *owner);
        groups.entry(owner).or_default().push((path, content));
    }
    groups.into_values().collect()
}

/// `usr/bin/python3.X` interpreters the layer ships, by version.
fn interpreters(layer: &Layer) -> Vec<(String, Content)> {
    let bin = ImagePath::from_relative("usr/bin").expect("a constant path");
    below(layer, &bin)
        .filter_map(|(path, (entry, _))| {
            let version = path.file_name().strip_prefix("python")?;
            let (major, minor) = version.split_once('.')?;
            let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
            if major != "3" || !numeric(minor) {
                return None;
            }
            match &entry.kind {
                Kind::File(content) => Some((version.to_owned(), content.clone())),
                _ => None,
            }
        })
        .collect()
}

/// The modules the version compiles, as py3compile does: its standard
/// library, the shared `dist-packages` and Debian's own helpers in
/// `/usr/share/python3`. Links to modules count (`sitecustomize.py`).
fn sources<'a>(layer: &'a Layer, view: &View, version: &str) -> Vec<(&'a ImagePath, &'a Content)> {
    let roots = [
        format!("usr/lib/python{version}"),
        "usr/lib/python3/dist-packages".to_owned(),
        "usr/share/python3".to_owned(),
    ];
    let mut out = Vec::new();
    for root in &roots {
        let Ok(root) = ImagePath::from_relative(root) else {
            continue;
        };
        for (path, _) in below(layer, &root) {
            if !path.as_str().ends_with(".py") {
                continue;
            }
            if let Some(content) = file_content(layer, view, path) {
                out.push((path, content));
            }
        }
    }
    out
}

fn key(interpreter: &Content, sources: &[(&ImagePath, &Content)]) -> Digest {
    let mut h = Sha256::new();
    h.update(b"strata-bytecode-v3\0");
    let fingerprint = |f: &Fingerprint| match f {
        Fingerprint::Digest(d) => d.to_string(),
        Fingerprint::Stat {
            dev,
            ino,
            mtime_ns,
            ctime_ns,
        } => format!("{dev}:{ino}:{mtime_ns}:{ctime_ns}"),
    };
    h.update(fingerprint(&interpreter.fingerprint));
    for (path, content) in sources {
        h.update(format!(
            "\n{}\0{}",
            path.as_str(),
            fingerprint(&content.fingerprint)
        ));
    }
    Digest::from_hasher(h)
}

/// The record of `key` and its bundle's path, when the bundle is intact.
fn cached(cache: &Cache, key: &Digest) -> Option<(Record, PathBuf)> {
    let record: Record = cache.read_record("bytecode", key)?;
    let bundle = cache.verified_blob(&record.bundle)?;
    Some((record, bundle))
}

/// Lays the interpreter, its libraries, its standard library and the
/// groups' sources out in a temporary folder, runs the compiler there, and
/// moves each group's results into the cache as a bundle of its own.
fn compile(
    layer: &Layer,
    view: &View,
    cache: &Cache,
    loader: &Loader,
    version: &str,
    stdlib: &[(&ImagePath, &Content)],
    groups: &[&[(&ImagePath, &Content)]],
) -> Result<Vec<Record>, BytecodeError> {
    let dir = cache.temp_dir()?;
    let root = dir.path();
    let write = |path: &str, content: &Content| -> Result<(), BytecodeError> {
        let target = root.join(path);
        let io = |source| BytecodeError::Io {
            path: target.clone(),
            source,
        };
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        let mut reader = content.open().map_err(io)?;
        let mut file = std::fs::File::create(&target).map_err(io)?;
        std::io::copy(&mut reader, &mut file).map_err(io)?;
        // The loader is run; the rest only read.
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o755))
            .map_err(io)?;
        Ok(())
    };
    // The interpreter, the libraries it may load (the folder's files,
    // links resolved) and its standard library.
    let interpreter = format!("usr/bin/python{version}");
    let libdir =
        ImagePath::from_relative(&format!("usr/lib/{}", loader.triplet)).expect("a constant path");
    let mut needed: BTreeMap<String, &Content> = BTreeMap::new();
    for (path, _) in below(layer, &libdir) {
        if path.parent().as_ref() != Some(&libdir) {
            continue;
        }
        if let Some(content) = file_content(layer, view, path) {
            needed.insert(path.as_str().to_owned(), content);
        }
    }
    for (path, content) in stdlib.iter().chain(groups.iter().flat_map(|g| g.iter())) {
        needed.insert(path.as_str().to_owned(), content);
    }
    if let Some(content) = ImagePath::from_relative(&interpreter)
        .ok()
        .and_then(|p| file_content(layer, view, &p))
    {
        needed.insert(interpreter.clone(), content);
    }
    // Thousands of small files: written (and read back below) on every
    // core, as the filesystem's bookkeeping, not the bytes, is the cost.
    needed
        .par_iter()
        .try_for_each(|(path, content)| write(path, content))?;

    // One compiler per core, each given every n-th module: neighbours in
    // the list are alike (a package's tests, a big library), so a split
    // into halves leaves one core idle for seconds while the other ends.
    // Each module compiles alone, so the split does not change the result.
    let list: Vec<&str> = groups
        .iter()
        .flat_map(|g| g.iter().map(|(p, _)| p.as_str()))
        .collect();
    let parts = rayon::current_num_threads().clamp(1, list.len().max(1));
    let shares: Vec<Vec<&str>> = (0..parts)
        .map(|i| list.iter().skip(i).step_by(parts).copied().collect())
        .collect();
    shares
        .par_iter()
        .map(|share| run_compiler(root, loader, &interpreter, share))
        .collect::<Result<Vec<()>, _>>()?;

    let tag = format!("cpython-{}", version.replace('.', ""));
    groups
        .iter()
        .map(|group| bundle(root, cache, &tag, group))
        .collect()
}

/// A group's `.pyc` files as one bundle blob in the cache, each at its
/// offset: one file to create, sync and check instead of hundreds.
fn bundle(
    root: &Path,
    cache: &Cache,
    tag: &str,
    group: &[(&ImagePath, &Content)],
) -> Result<Record, BytecodeError> {
    let tmp = cache.temp_file()?;
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| BytecodeError::Io { path, source }
    };
    let mut bundle = HashingWriter::new(std::io::BufWriter::new(
        tmp.reopen().map_err(io(tmp.path()))?,
    ));
    let mut files = Vec::new();
    let mut offset = 0;
    for (source, _) in group {
        let source = source.as_str();
        let (dir, name) = source.rsplit_once('/').unwrap_or(("", source));
        let stem = name.trim_end_matches(".py");
        let pyc = format!("{dir}/__pycache__/{stem}.{tag}.pyc");
        // A module that does not compile (Python 2 syntax in an example)
        // has no byte-code, as with py3compile.
        let Ok(bytes) = std::fs::read(root.join(&pyc)) else {
            continue;
        };
        bundle.write_all(&bytes).map_err(io(tmp.path()))?;
        files.push(RecordFile {
            path: pyc,
            digest: Digest::of(&bytes),
            size: bytes.len() as u64,
            offset,
        });
        offset += bytes.len() as u64;
    }
    let (buffered, digest, _) = bundle.finish();
    buffered
        .into_inner()
        .map_err(|e| e.into_error())
        .and_then(|file| file.sync_all())
        .map_err(io(tmp.path()))?;
    cache.commit_blob(tmp, &digest)?;
    Ok(Record {
        bundle: digest,
        files,
    })
}

/// The content at a path of the layer, symlinks followed.
fn file_content<'a>(layer: &'a Layer, view: &View, path: &ImagePath) -> Option<&'a Content> {
    match &layer.get(&view.resolve(path)?)?.0.kind {
        Kind::File(content) => Some(content),
        _ => None,
    }
}

/// The compiler's script: each listed file, recorded under its image path.
const COMPILE: &str = "
import compileall, py_compile, sys
root = sys.argv[1]
mode = py_compile.PycInvalidationMode.UNCHECKED_HASH
for line in sys.stdin:
    path = line.rstrip('\\n')
    compileall.compile_file(root + '/' + path, stripdir=root, prependdir='/',
                            force=True, quiet=2, invalidation_mode=mode)
";

fn run_compiler(
    root: &Path,
    loader: &Loader,
    interpreter: &str,
    files: &[&str],
) -> Result<(), BytecodeError> {
    let failed = |detail: String| BytecodeError::Compiler {
        interpreter: format!("/{interpreter}"),
        detail,
    };
    let libdir = root.join("usr/lib").join(loader.triplet);
    let mut child = Command::new(libdir.join(loader.loader))
        .arg("--library-path")
        .arg(&libdir)
        .arg(root.join(interpreter))
        .args(["-S", "-s", "-B", "-c", COMPILE])
        .arg(root)
        .env_clear()
        .env("PYTHONHASHSEED", "0")
        .env("LC_ALL", "C.UTF-8")
        .current_dir(root)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| failed(e.to_string()))?;
    if let Some(mut stdin) = child.stdin.take() {
        let list: String = files.iter().map(|f| format!("{f}\n")).collect();
        stdin
            .write_all(list.as_bytes())
            .map_err(|e| failed(e.to_string()))?;
    }
    let output = child
        .wait_with_output()
        .map_err(|e| failed(e.to_string()))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last = stderr.lines().last().unwrap_or("no message").to_owned();
        return Err(failed(format!("{} ({last})", output.status)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pyc_names_its_module() {
        let p = |s: &str| ImagePath::from_relative(s).unwrap();
        assert_eq!(
            module_of(&p("usr/lib/python3.11/__pycache__/os.cpython-311.pyc")),
            Some(p("usr/lib/python3.11/os.py"))
        );
        assert_eq!(
            module_of(&p(
                "usr/lib/python3/dist-packages/a/__pycache__/b.c.cpython-311.pyc"
            )),
            Some(p("usr/lib/python3/dist-packages/a/b.c.py"))
        );
        assert_eq!(module_of(&p("usr/lib/x/os.pyc")), None);
    }
}
