//! Shared libraries the installed wheels need that the image lacks. A
//! manylinux wheel bundles what its policy does not let it expect from the
//! system (in `NAME.libs`, found through its `RUNPATH`), and expects the rest
//! (glibc, the C++ runtime, libGL, glib…) from the image: an image without
//! them builds, and fails at `import`.

use std::collections::BTreeMap;

use strata_oci::entry::{Kind, LayerPlan};
use strata_oci::path::ImagePath;
use strata_oci::platform::Platform;
use strata_oci::view::{View, ViewKind, lexical_join};

/// Missing library → the modules of `plans` that need it, in path order;
/// `view` is the finished image's filesystem.
pub fn missing(
    plans: &[LayerPlan],
    view: &View,
    platform: &Platform,
) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let system = system_folders(platform);
    for layer in plans.iter().filter(|p| is_python_layer(&p.name)) {
        for entry in &layer.entries {
            let Kind::File(content) = &entry.kind else {
                continue;
            };
            let name = entry.path.as_str();
            if !(name.ends_with(".so") || name.contains(".so.")) {
                continue;
            }
            let Some(needs) = content
                .open_seekable()
                .ok()
                .and_then(|file| strata_ldconfig::elf_needs(file).ok().flatten())
            else {
                continue;
            };
            let origin = entry.path.parent().unwrap_or_else(ImagePath::root);
            let mut folders: Vec<ImagePath> = needs
                .runpath
                .iter()
                .map(|p| {
                    let p = String::from_utf8_lossy(p);
                    let p = p.replace("${ORIGIN}", "$ORIGIN");
                    match p.strip_prefix("$ORIGIN") {
                        Some(rest) => lexical_join(&origin, rest.trim_start_matches('/')),
                        None => lexical_join(&ImagePath::root(), &p),
                    }
                })
                .collect();
            // auditwheel bundles a wheel's libraries side by side in
            // `NAME.libs`, and a bundled one finds its siblings already
            // loaded by the module that needed it first: its own folder
            // stands for that.
            folders.push(origin.clone());
            folders.extend(system.iter().cloned());
            for needed in &needs.needed {
                let soname = String::from_utf8_lossy(needed).into_owned();
                if !found(view, &folders, &soname) {
                    out.entry(soname)
                        .or_default()
                        .push(format!("/{}", entry.path.as_str()));
                }
            }
        }
    }
    for modules in out.values_mut() {
        modules.sort();
        modules.dedup();
    }
    out
}

/// The layers `assemble::python` writes.
fn is_python_layer(name: &str) -> bool {
    name == "python" || name.starts_with("python-")
}

/// Where the loader looks after `RUNPATH`, for a Debian-style image: the
/// system folders strata-ldconfig searches, `/usr/local/lib` (Debian's
/// `ld.so.conf.d/libc.conf`, where official images keep `libpython`), and
/// the lib64 folders.
fn system_folders(platform: &Platform) -> Vec<ImagePath> {
    let system = strata_debian::debian_arch(platform)
        .ok()
        .and_then(strata_ldconfig::system_dirs)
        .into_iter()
        .flatten();
    ["/usr/local/lib", "/lib64", "/usr/lib64"]
        .into_iter()
        .map(str::to_owned)
        .chain(system)
        .filter_map(|p| ImagePath::parse(&p).ok())
        .collect()
}

fn found(view: &View, folders: &[ImagePath], soname: &str) -> bool {
    folders.iter().any(|folder| {
        view.resolve(&lexical_join(folder, soname))
            .is_some_and(|p| matches!(view.get(&p).map(|e| &e.kind), Some(ViewKind::File)))
    })
}

/// `libGL.so.1, needed by 2 module(s): /opt/venv/…/cv2.so, …`.
pub fn describe(soname: &str, modules: &[String]) -> String {
    super::interpreters::needed_by(soname, modules, "module(s)")
}
