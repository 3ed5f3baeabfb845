//! Lays an unpacked wheel out on an install scheme, as pip and uv install a
//! wheel (PEP 427 and 491; the `.dist-info` of PEP 376, 610 and 627): the
//! list of files to put in the image, with `#!python` scripts rewritten,
//! launchers generated for entry points and `RECORD` written anew.
//!
//! Nothing is read from or written to a file system: members stay references
//! into the unpacked blob, and only generated files carry their bytes.

use std::collections::BTreeMap;

use base64::Engine as _;
use strata_oci::digest::Digest;

use crate::wheel::{MAX_TEXT, Member, Unpacked, WheelError, csv_field, normalize_name};

/// Where each part of a wheel goes, as image paths relative to the root (no
/// leading `/`), e.g. for a venv at /opt/venv and Python 3.11:
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scheme {
    /// `opt/venv/lib/python3.11/site-packages`
    pub purelib: String,
    pub platlib: String,
    /// `opt/venv/bin`
    pub scripts: String,
    /// `opt/venv/include/site/python3.11` (the dist name is appended)
    pub headers: String,
    /// `opt/venv`
    pub data: String,
}

/// One file to put in the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallFile {
    /// Relative to the image root, normalized.
    pub path: String,
    pub content: FileContent,
    pub executable: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileContent {
    /// A member's bytes, where they are in the unpacked wheel's blob.
    Member {
        offset: u64,
        size: u64,
        sha256: Digest,
    },
    Generated(Vec<u8>),
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum InstallError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Read(#[from] WheelError),
    #[error("install scheme `{field}` = `{value}` has a `..` component")]
    #[diagnostic(help("scheme paths are folders inside the image, relative to its root"))]
    Scheme { field: &'static str, value: String },
    #[error("cannot point scripts at the interpreter `{python}`: {reason}")]
    #[diagnostic(help(
        "use an absolute interpreter path without spaces, short enough for a `#!` line (Linux reads 127 bytes of it)"
    ))]
    Python {
        python: String,
        reason: &'static str,
    },
    #[error("`{wheel}`: `{member}` is in the unknown `.data` folder `{key}`")]
    #[diagnostic(help(
        "a wheel's `.data` folder holds only `purelib`, `platlib`, `scripts`, `headers` and `data` (PEP 427); the wheel is broken"
    ))]
    UnknownDataFolder {
        wheel: String,
        member: String,
        key: String,
    },
    #[error("`{wheel}`: `{member}` is not inside a folder of the `.data` folder")]
    #[diagnostic(help(
        "`.data` holds `<scheme key>/<path>` entries (PEP 427); the wheel is broken"
    ))]
    DataFile { wheel: String, member: String },
    #[error("`{wheel}`: `{member}` is in a `.data` folder of another name than `{expected}`")]
    #[diagnostic(help(
        "installers disagree on where such files go, so strata refuses them; the wheel is broken or hostile"
    ))]
    StrayDataFolder {
        wheel: String,
        member: String,
        expected: String,
    },
    #[error("`{wheel}`: the script `{member}` is in a sub-folder of `scripts`")]
    #[diagnostic(help(
        "scripts go straight into the scripts folder, as uv requires; the wheel is broken"
    ))]
    ScriptInFolder { wheel: String, member: String },
    #[error("`{wheel}`: `entry_points.txt` line {line}: {reason}")]
    #[diagnostic(help(
        "entries read `name = module:attr` (https://packaging.python.org/specifications/entry-points/); the wheel is broken"
    ))]
    EntryPoint {
        wheel: String,
        line: usize,
        reason: String,
    },
    #[error("`{wheel}`: the script name `{name}` {reason}")]
    #[diagnostic(help(
        "script names are plain file names in the scripts folder; the wheel is broken or hostile"
    ))]
    ScriptName {
        wheel: String,
        name: String,
        reason: &'static str,
    },
    #[error("`{wheel}`: `entry_points.txt` has {size} bytes; the limit is {max}")]
    #[diagnostic(help("the wheel is broken or hostile"))]
    EntryPointsTooLarge { wheel: String, size: u64, max: u64 },
    #[error("`{wheel}` installs `{path}` twice: from {first} and from {second}")]
    #[diagnostic(help("one would overwrite the other; the wheel is broken or hostile"))]
    Collision {
        wheel: String,
        path: String,
        first: String,
        second: String,
    },
}

/// Installs `unpacked` on `scheme`.
///
/// `python` is the absolute image path launchers and `#!python` scripts point
/// at (e.g. "/opt/venv/bin/python"). `installer` goes into
/// `*.dist-info/INSTALLER` ("strata").
///
/// `REQUESTED` (PEP 376) is not written: it marks what a user asked for,
/// and strata's lock records that. `direct_url.json` (PEP 610) is not
/// either: it describes installs from a URL or path, never from an index.
pub fn install(
    unpacked: &Unpacked,
    read: impl Fn(&str) -> Result<Vec<u8>, WheelError>,
    scheme: &Scheme,
    python: &str,
    installer: &str,
) -> Result<Vec<InstallFile>, InstallError> {
    let shebang = shebang(python)?;
    let dirs = Scheme {
        purelib: normalize_dir("purelib", &scheme.purelib)?,
        platlib: normalize_dir("platlib", &scheme.platlib)?,
        scripts: normalize_dir("scripts", &scheme.scripts)?,
        headers: normalize_dir("headers", &scheme.headers)?,
        data: normalize_dir("data", &scheme.data)?,
    };
    let wheel = unpacked.dist_info.as_str();
    let lib = if unpacked.root_is_purelib {
        &dirs.purelib
    } else {
        &dirs.platlib
    };
    let stem = wheel.strip_suffix(".dist-info").unwrap_or(wheel);
    let data = format!("{stem}.data");
    // uv's choice: the normalized name. pip uses the name as the user spelled
    // it, which a lock does not keep.
    let headers = join(
        &dirs.headers,
        &normalize_name(stem.split_once('-').map_or(stem, |(name, _)| name)),
    );

    let mut files = Files {
        wheel,
        files: BTreeMap::new(),
    };
    for member in &unpacked.members {
        let origin = format!("`{}`", member.path);
        let (top, rest) = member.path.split_once('/').unwrap_or(("", &member.path));
        if top == wheel && matches!(rest, "RECORD" | "RECORD.jws" | "RECORD.p7s") {
            // RECORD is written anew below; its signatures sign the old one,
            // which no longer matches. pip installs them anyway (listed
            // without a hash in its RECORD); a signature that cannot verify
            // is worse than none.
            continue;
        }
        if top != data {
            if top.ends_with(".data") {
                return Err(InstallError::StrayDataFolder {
                    wheel: wheel.to_owned(),
                    member: member.path.clone(),
                    expected: data,
                });
            }
            files.add(join(lib, &member.path), reference(member), &origin)?;
            continue;
        }
        let data_error = || InstallError::DataFile {
            wheel: wheel.to_owned(),
            member: member.path.clone(),
        };
        let (key, sub) = rest.split_once('/').ok_or_else(data_error)?;
        let (path, content) = match key {
            "purelib" => (join(&dirs.purelib, sub), reference(member)),
            "platlib" => (join(&dirs.platlib, sub), reference(member)),
            "headers" => (join(&headers, sub), reference(member)),
            "data" => (join(&dirs.data, sub), reference(member)),
            "scripts" if sub.contains('/') => {
                return Err(InstallError::ScriptInFolder {
                    wheel: wheel.to_owned(),
                    member: member.path.clone(),
                });
            }
            "scripts" => {
                // `#!python` scripts are text; binaries (ruff and uv ship
                // theirs here, tens of MB) are left unread rather than read
                // whole to look at their first bytes.
                let rewritten = if member.size <= MAX_TEXT {
                    let bytes = read(&member.path)?;
                    after_placeholder(&bytes).map(|rest| [shebang.as_bytes(), rest].concat())
                } else {
                    None
                };
                let content = match rewritten {
                    Some(bytes) => FileContent::Generated(bytes),
                    None => reference(member).0,
                };
                // Executable whatever the zip says: PEP 427 asks installers to
                // add the x bit to scripts from wheels built on Windows.
                (join(&dirs.scripts, sub), (content, true))
            }
            key => {
                return Err(InstallError::UnknownDataFolder {
                    wheel: wheel.to_owned(),
                    member: member.path.clone(),
                    key: key.to_owned(),
                });
            }
        };
        files.add(path, content, &origin)?;
    }

    let entry_points_path = format!("{wheel}/entry_points.txt");
    if let Some(member) = find(unpacked, &entry_points_path) {
        if member.size > MAX_TEXT {
            return Err(InstallError::EntryPointsTooLarge {
                wheel: wheel.to_owned(),
                size: member.size,
                max: MAX_TEXT,
            });
        }
        let text = read(&entry_points_path)?;
        for script in scripts(wheel, &text)? {
            let origin = format!("the {} `{}`", script.group, script.name);
            let launcher = launcher(&shebang, &script);
            files.add(
                join(&dirs.scripts, &script.name),
                generated(launcher.into_bytes(), true),
                &origin,
            )?;
        }
    }

    let dist_info = join(lib, wheel);
    files.add(
        join(&dist_info, "INSTALLER"),
        generated(format!("{installer}\n").into_bytes(), false),
        "strata's `INSTALLER`",
    )?;
    let record_path = join(&dist_info, "RECORD");
    let record = record(lib, &record_path, &files.files);
    files.add(
        record_path,
        generated(record.into_bytes(), false),
        "strata's `RECORD`",
    )?;
    Ok(files
        .files
        .into_values()
        .map(|(file, _origin)| file)
        .collect())
}

/// The install files by path, each with what it came from (for errors).
struct Files<'a> {
    wheel: &'a str,
    files: BTreeMap<String, (InstallFile, String)>,
}

impl Files<'_> {
    fn add(
        &mut self,
        path: String,
        (content, executable): (FileContent, bool),
        origin: &str,
    ) -> Result<(), InstallError> {
        if let Some((_, first)) = self.files.get(&path) {
            return Err(InstallError::Collision {
                wheel: self.wheel.to_owned(),
                path,
                first: first.clone(),
                second: origin.to_owned(),
            });
        }
        let file = InstallFile {
            path: path.clone(),
            content,
            executable,
        };
        self.files.insert(path, (file, origin.to_owned()));
        Ok(())
    }
}

fn reference(member: &Member) -> (FileContent, bool) {
    (
        FileContent::Member {
            offset: member.offset,
            size: member.size,
            sha256: member.sha256,
        },
        member.executable,
    )
}

fn generated(bytes: Vec<u8>, executable: bool) -> (FileContent, bool) {
    (FileContent::Generated(bytes), executable)
}

fn find<'a>(unpacked: &'a Unpacked, path: &str) -> Option<&'a Member> {
    unpacked
        .members
        .binary_search_by(|m| m.path.as_str().cmp(path))
        .ok()
        .map(|i| &unpacked.members[i])
}

/// `#!{python}`, checked to work as a `#!` line.
fn shebang(python: &str) -> Result<String, InstallError> {
    let bad = |reason| InstallError::Python {
        python: python.to_owned(),
        reason,
    };
    if !python.starts_with('/') {
        return Err(bad("it is not absolute"));
    }
    if python.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("it contains a space or control character"));
    }
    // Kernels before 5.1 read 128 bytes of a `#!` line, newline included;
    // pip and uv fall back to a `/bin/sh` wrapper past it, which strata's
    // images may not have.
    if 2 + python.len() + 1 > 127 {
        return Err(bad("the `#!` line would be longer than 127 bytes"));
    }
    Ok(format!("#!{python}"))
}

/// What follows `#!python` or `#!pythonw` on a script's first line, when the
/// script starts with one of them followed by a space or the line's end
/// (PEP 427: rewrite `#!python` to the interpreter). Arguments after it are
/// kept, as uv does; pip drops them.
fn after_placeholder(script: &[u8]) -> Option<&[u8]> {
    let rest = script.strip_prefix(b"#!python")?;
    let rest = rest.strip_prefix(b"w").unwrap_or(rest);
    match rest.first() {
        None | Some(b' ' | b'\t' | b'\r' | b'\n') => Some(rest),
        Some(_) => None,
    }
}

/// A normalized scheme folder: no empty or `.` components; `..` refused.
fn normalize_dir(field: &'static str, value: &str) -> Result<String, InstallError> {
    let mut parts = Vec::new();
    for part in value.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                return Err(InstallError::Scheme {
                    field,
                    value: value.to_owned(),
                });
            }
            part => parts.push(part),
        }
    }
    Ok(parts.join("/"))
}

fn join(dir: &str, path: &str) -> String {
    if dir.is_empty() {
        path.to_owned()
    } else {
        format!("{dir}/{path}")
    }
}

/// `to` relative to the folder `from`, both normalized: `../../../bin/foo`
/// for a script seen from site-packages, as pip writes RECORD.
fn relative(from: &str, to: &str) -> String {
    let from: Vec<&str> = from.split('/').filter(|p| !p.is_empty()).collect();
    let to: Vec<&str> = to.split('/').collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut parts = vec![".."; from.len() - common];
    parts.extend(&to[common..]);
    parts.join("/")
}

/// RECORD for the installed files (PEP 376): paths relative to the folder
/// holding the dist-info, `sha256=<urlsafe base64, no padding>` and size for
/// every file but RECORD itself, rows sorted by path so the bytes are
/// reproducible, `\n`-terminated as the wheel builders write it.
fn record(lib: &str, record_path: &str, files: &BTreeMap<String, (InstallFile, String)>) -> String {
    let mut rows: Vec<(String, String)> = files
        .values()
        .map(|(file, _)| {
            let (sha256, size) = match &file.content {
                FileContent::Member { size, sha256, .. } => (*sha256, *size),
                FileContent::Generated(bytes) => (Digest::of(bytes), bytes.len() as u64),
            };
            let hash = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha256.as_bytes());
            (relative(lib, &file.path), format!("sha256={hash},{size}"))
        })
        .collect();
    rows.push((relative(lib, record_path), ",".to_owned()));
    rows.sort();
    rows.iter()
        .map(|(path, rest)| format!("{},{rest}\n", csv_field(path)))
        .collect()
}

/// An entry of `[console_scripts]` or `[gui_scripts]`.
struct Script {
    group: &'static str,
    name: String,
    module: String,
    /// `attr.sub`: the object to call, imported by its first part.
    attr: String,
}

/// The scripts in `entry_points.txt`, an INI file read as
/// `importlib.metadata` reads it: `[group]` headers, `name = value` lines,
/// `#` and `;` comments. Other groups are not looked at.
fn scripts(wheel: &str, bytes: &[u8]) -> Result<Vec<Script>, InstallError> {
    let syntax = |line: usize, reason: String| InstallError::EntryPoint {
        wheel: wheel.to_owned(),
        line,
        reason,
    };
    let text =
        std::str::from_utf8(bytes).map_err(|_| syntax(1, "the file is not UTF-8".to_owned()))?;
    let mut group = None;
    let mut scripts = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with(['#', ';']) {
            continue;
        }
        if let Some(header) = line.strip_prefix('[') {
            let name = header
                .strip_suffix(']')
                .ok_or_else(|| syntax(number, format!("`{line}` is not a `[group]` header")))?;
            group = match name.trim() {
                "console_scripts" => Some("console script"),
                "gui_scripts" => Some("GUI script"),
                _ => None,
            };
            continue;
        }
        let Some(group) = group else { continue };
        let (name, value) = line
            .split_once('=')
            .ok_or_else(|| syntax(number, format!("`{line}` is not `name = module:attr`")))?;
        let name = name.trim();
        // `module:attr [extra, ...]`: extras only gate the entry's
        // dependencies, which the lock already resolved.
        let value = match value.split_once('[') {
            Some((value, extras)) if extras.trim_end().ends_with(']') => value,
            Some(_) => return Err(syntax(number, format!("`{line}` has an unclosed `[`"))),
            None => value,
        };
        let (module, attr) = value
            .split_once(':')
            .map(|(module, attr)| (module.trim(), attr.trim()))
            .ok_or_else(|| {
                syntax(
                    number,
                    format!("`{name}` names no callable: scripts need `module:attr`"),
                )
            })?;
        // Both are pasted into the launcher's Python source.
        for (what, dotted) in [("module", module), ("callable", attr)] {
            if !is_dotted_identifier(dotted) {
                return Err(syntax(
                    number,
                    format!("the {what} `{dotted}` is not a dotted Python name"),
                ));
            }
        }
        check_script_name(wheel, name)?;
        scripts.push(Script {
            group,
            name: name.to_owned(),
            module: module.to_owned(),
            attr: attr.to_owned(),
        });
    }
    Ok(scripts)
}

fn is_dotted_identifier(dotted: &str) -> bool {
    dotted.split('.').all(|part| {
        let mut chars = part.chars();
        chars.next().is_some_and(|c| c == '_' || c.is_alphabetic())
            && chars.all(|c| c == '_' || c.is_alphanumeric())
    })
}

fn check_script_name(wheel: &str, name: &str) -> Result<(), InstallError> {
    let reason = if name.is_empty() || name == "." || name == ".." {
        Some("is not a file name")
    } else if name.contains(['/', '\\']) {
        Some("contains a path separator")
    } else if name.chars().any(char::is_control) {
        Some("contains a control character")
    } else if matches!(name, "python" | "pythonw" | "python3")
        || name
            .strip_prefix("python3.")
            .is_some_and(|minor| minor.parse::<u8>().is_ok())
    {
        // Would replace the interpreter in the scripts folder, which is not
        // one of the wheel's files and so no collision catches it.
        Some("is reserved for the interpreter")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(InstallError::ScriptName {
            wheel: wheel.to_owned(),
            name: name.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

/// uv's launcher (`get_script_launcher` in uv-install-wheel): pip's distlib
/// template without its `import re`, so a strata venv looks like a uv one.
/// For `module:attr.sub` it imports `attr` and calls `attr.sub()`.
fn launcher(shebang: &str, script: &Script) -> String {
    let Script { module, attr, .. } = script;
    let import = attr.split('.').next().unwrap_or(attr);
    format!(
        r#"{shebang}
# -*- coding: utf-8 -*-
import sys
from {module} import {import}
if __name__ == "__main__":
    if sys.argv[0].endswith("-script.pyw"):
        sys.argv[0] = sys.argv[0][:-11]
    elif sys.argv[0].endswith(".exe"):
        sys.argv[0] = sys.argv[0][:-4]
    sys.exit({attr}())
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wheel::tests::{deflated_zip, env, file, minimal, record_hash, with_record};
    use crate::wheel::{Limits, read_member};

    const PYTHON: &str = "/opt/venv/bin/python";

    fn venv() -> Scheme {
        Scheme {
            purelib: "opt/venv/lib/python3.11/site-packages".to_owned(),
            platlib: "opt/venv/lib/python3.11/site-packages".to_owned(),
            scripts: "opt/venv/bin".to_owned(),
            headers: "opt/venv/include/site/python3.11".to_owned(),
            data: "opt/venv".to_owned(),
        }
    }

    const ENTRY_POINTS: &[u8] = b"\
# comment
[console_scripts]
demo = demo.cli:main.run

[gui_scripts]
demo-gui = demo.gui : start [gui]
[demo.plugins]
anything goes here
";

    fn launcher_text(module: &str, import: &str, call: &str) -> String {
        format!(
            "#!/opt/venv/bin/python
# -*- coding: utf-8 -*-
import sys
from {module} import {import}
if __name__ == \"__main__\":
    if sys.argv[0].endswith(\"-script.pyw\"):
        sys.argv[0] = sys.argv[0][:-11]
    elif sys.argv[0].endswith(\".exe\"):
        sys.argv[0] = sys.argv[0][:-4]
    sys.exit({call}())
"
        )
    }

    #[test]
    fn installs_a_wheel_as_pip_does() {
        let env = env();
        let mut specs = minimal();
        let mut native = file("demo/_native.so", b"\x7fELF native\n");
        native.mode = 0o100_755;
        specs.extend([
            native,
            file("demo-1.0.data/scripts/tool", b"#!python -u\nimport demo\n"),
            file("demo-1.0.data/scripts/gui", b"#!pythonw\r\nimport demo\r\n"),
            file("demo-1.0.data/scripts/py3", b"#!python3\n"),
            file("demo-1.0.data/scripts/bin-tool", b"\x7fELF binary\n"),
            file("demo-1.0.data/headers/demo.h", b"int demo;\n"),
            file("demo-1.0.data/data/share/demo/read me,1.txt", b"read me\n"),
            file("demo-1.0.dist-info/entry_points.txt", ENTRY_POINTS),
            file("demo-1.0.dist-info/RECORD.jws", b"signature"),
        ]);
        let zip = deflated_zip(&with_record(specs));
        let unpacked = env.unpack(&zip, &Limits::default()).unwrap();
        let blob = std::fs::read(env.cache.blob_path(&unpacked.blob)).unwrap();
        let read = |path: &str| read_member(&env.cache, &unpacked, path, MAX_TEXT);
        let files = install(&unpacked, read, &venv(), PYTHON, "strata").unwrap();

        let contents = |file: &InstallFile| match &file.content {
            FileContent::Member {
                offset,
                size,
                sha256,
            } => {
                let bytes = blob[*offset as usize..][..*size as usize].to_vec();
                assert_eq!(Digest::of(&bytes), *sha256);
                bytes
            }
            FileContent::Generated(bytes) => bytes.clone(),
        };
        let got: Vec<(&str, bool, Vec<u8>)> = files
            .iter()
            .map(|f| (f.path.as_str(), f.executable, contents(f)))
            .collect();
        let site = "opt/venv/lib/python3.11/site-packages";
        let record_path = format!("{site}/demo-1.0.dist-info/RECORD");
        let record = got
            .iter()
            .find(|(path, ..)| *path == record_path)
            .map(|(_, _, bytes)| String::from_utf8(bytes.clone()).unwrap())
            .unwrap();
        let launcher = launcher_text("demo.cli", "main", "main.run");
        let gui_launcher = launcher_text("demo.gui", "start", "start");
        let metadata = minimal()[1].data.clone();
        let expected: Vec<(String, bool, Vec<u8>)> = vec![
            ("opt/venv/bin/bin-tool", true, b"\x7fELF binary\n".to_vec()),
            ("opt/venv/bin/demo", true, launcher.clone().into_bytes()),
            (
                "opt/venv/bin/demo-gui",
                true,
                gui_launcher.clone().into_bytes(),
            ),
            (
                "opt/venv/bin/gui",
                true,
                b"#!/opt/venv/bin/python\r\nimport demo\r\n".to_vec(),
            ),
            ("opt/venv/bin/py3", true, b"#!python3\n".to_vec()),
            (
                "opt/venv/bin/tool",
                true,
                b"#!/opt/venv/bin/python -u\nimport demo\n".to_vec(),
            ),
            (
                "opt/venv/include/site/python3.11/demo/demo.h",
                false,
                b"int demo;\n".to_vec(),
            ),
            (
                &format!("{site}/demo-1.0.dist-info/INSTALLER"),
                false,
                b"strata\n".to_vec(),
            ),
            (
                &format!("{site}/demo-1.0.dist-info/METADATA"),
                false,
                metadata.clone(),
            ),
            (&record_path, false, record.clone().into_bytes()),
            (
                &format!("{site}/demo-1.0.dist-info/WHEEL"),
                false,
                crate::wheel::tests::WHEEL.to_vec(),
            ),
            (
                &format!("{site}/demo-1.0.dist-info/entry_points.txt"),
                false,
                ENTRY_POINTS.to_vec(),
            ),
            (
                &format!("{site}/demo/__init__.py"),
                false,
                b"print('hi')\n".to_vec(),
            ),
            (
                &format!("{site}/demo/_native.so"),
                true,
                b"\x7fELF native\n".to_vec(),
            ),
            (
                "opt/venv/share/demo/read me,1.txt",
                false,
                b"read me\n".to_vec(),
            ),
        ]
        .into_iter()
        .map(|(path, executable, bytes)| (path.to_owned(), executable, bytes))
        .collect();
        let got_owned: Vec<(String, bool, Vec<u8>)> = got
            .into_iter()
            .map(|(path, executable, bytes)| (path.to_owned(), executable, bytes))
            .collect();
        assert_eq!(got_owned, expected);

        let row =
            |path: &str, bytes: &[u8]| format!("{path},{},{}\n", record_hash(bytes), bytes.len());
        let expected_record = [
            row("../../../bin/bin-tool", b"\x7fELF binary\n"),
            row("../../../bin/demo", launcher.as_bytes()),
            row("../../../bin/demo-gui", gui_launcher.as_bytes()),
            row(
                "../../../bin/gui",
                b"#!/opt/venv/bin/python\r\nimport demo\r\n",
            ),
            row("../../../bin/py3", b"#!python3\n"),
            row(
                "../../../bin/tool",
                b"#!/opt/venv/bin/python -u\nimport demo\n",
            ),
            row(
                "../../../include/site/python3.11/demo/demo.h",
                b"int demo;\n",
            ),
            row("\"../../../share/demo/read me,1.txt\"", b"read me\n"),
            "demo-1.0.dist-info/INSTALLER,sha256=LfoLqwjn6IHFPTZZtLRVe73TZm8HE7sjWYJS8f9Lwd8,7\n"
                .to_owned(),
            row("demo-1.0.dist-info/METADATA", &metadata),
            "demo-1.0.dist-info/RECORD,,\n".to_owned(),
            row("demo-1.0.dist-info/WHEEL", crate::wheel::tests::WHEEL),
            row("demo-1.0.dist-info/entry_points.txt", ENTRY_POINTS),
            row("demo/__init__.py", b"print('hi')\n"),
            row("demo/_native.so", b"\x7fELF native\n"),
        ]
        .concat();
        assert_eq!(record, expected_record);
    }

    /// An unpacked wheel made by hand: `(path, bytes)` members, no blob.
    fn unpacked(members: &[(&str, &[u8])]) -> (Unpacked, BTreeMap<String, Vec<u8>>) {
        let mut offset = 0;
        let mut list = Vec::new();
        let mut bytes = BTreeMap::new();
        for (path, data) in members {
            list.push(Member {
                path: (*path).to_owned(),
                offset,
                size: data.len() as u64,
                sha256: Digest::of(data),
                executable: false,
            });
            bytes.insert((*path).to_owned(), data.to_vec());
            offset += data.len() as u64;
        }
        list.sort_by(|a, b| a.path.cmp(&b.path));
        let unpacked = Unpacked {
            dist_info: "demo-1.0.dist-info".to_owned(),
            root_is_purelib: false,
            wheel_version: "1.0".to_owned(),
            members: list,
            blob: Digest::of(b""),
        };
        (unpacked, bytes)
    }

    fn try_install(members: &[(&str, &[u8])]) -> Result<Vec<InstallFile>, InstallError> {
        let (unpacked, bytes) = unpacked(members);
        let read = |path: &str| {
            bytes.get(path).cloned().ok_or(WheelError::NoSuchMember {
                wheel: "demo".to_owned(),
                member: path.to_owned(),
            })
        };
        install(&unpacked, read, &venv(), PYTHON, "strata")
    }

    #[test]
    fn installs_platlib_wheels_and_drops_signatures() {
        let mut scheme = venv();
        scheme.platlib = "/opt/venv/./lib64/python3.11/site-packages/".to_owned();
        let (unpacked, _) = unpacked(&[
            ("demo/_x.so", b"x"),
            ("demo-1.0.dist-info/RECORD", b"old"),
            ("demo-1.0.dist-info/RECORD.p7s", b"sig"),
            ("demo-1.0.data/purelib/pure.py", b"p"),
        ]);
        let read = |_: &str| -> Result<Vec<u8>, WheelError> { unreachable!() };
        let files = install(&unpacked, read, &scheme, PYTHON, "strata").unwrap();
        let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "opt/venv/lib/python3.11/site-packages/pure.py",
                "opt/venv/lib64/python3.11/site-packages/demo-1.0.dist-info/INSTALLER",
                "opt/venv/lib64/python3.11/site-packages/demo-1.0.dist-info/RECORD",
                "opt/venv/lib64/python3.11/site-packages/demo/_x.so",
            ]
        );
        let FileContent::Generated(record) = &files[2].content else {
            panic!("RECORD is generated")
        };
        let record = String::from_utf8(record.clone()).unwrap();
        assert!(record.starts_with("../../../lib/python3.11/site-packages/pure.py,sha256="));
        assert!(!record.contains("p7s"));
    }

    #[test]
    fn refuses_unknown_and_stray_data_folders() {
        assert!(matches!(
            try_install(&[("demo-1.0.data/etc/passwd", b"x")]),
            Err(InstallError::UnknownDataFolder { key, .. }) if key == "etc"
        ));
        assert!(matches!(
            try_install(&[("demo-1.0.data/scripts", b"x")]),
            Err(InstallError::DataFile { .. })
        ));
        assert!(matches!(
            try_install(&[("other-1.0.data/data/x", b"x")]),
            Err(InstallError::StrayDataFolder { .. })
        ));
        assert!(matches!(
            try_install(&[("demo-1.0.data/scripts/sub/tool", b"x")]),
            Err(InstallError::ScriptInFolder { .. })
        ));
    }

    #[test]
    fn refuses_launchers_and_scripts_that_overwrite_files() {
        let entry_points: &[u8] = b"[console_scripts]\ntool = demo:main\n";
        let err = try_install(&[
            ("demo-1.0.data/data/bin/tool", b"x"),
            ("demo-1.0.dist-info/entry_points.txt", entry_points),
        ])
        .unwrap_err();
        match err {
            InstallError::Collision {
                path,
                first,
                second,
                ..
            } => {
                assert_eq!(path, "opt/venv/bin/tool");
                assert_eq!(first, "`demo-1.0.data/data/bin/tool`");
                assert_eq!(second, "the console script `tool`");
            }
            err => panic!("{err}"),
        }
        assert!(matches!(
            try_install(&[
                ("demo-1.0.data/scripts/tool", b"#!python\n"),
                ("demo-1.0.dist-info/entry_points.txt", entry_points),
            ]),
            Err(InstallError::Collision { .. })
        ));
        assert!(matches!(
            try_install(&[
                ("demo-1.0.data/scripts/tool", b"x"),
                ("demo-1.0.data/data/bin/tool", b"y"),
            ]),
            Err(InstallError::Collision { .. })
        ));
        assert!(matches!(
            try_install(&[
                ("demo/x.py", b"x"),
                ("demo-1.0.data/platlib/demo/x.py", b"y"),
            ]),
            Err(InstallError::Collision { .. })
        ));
    }

    #[test]
    fn refuses_bad_entry_points() {
        for (text, name) in [
            ("[console_scripts]\n../evil = demo:main\n", "../evil"),
            ("[gui_scripts]\na/b = demo:main\n", "a/b"),
            ("[console_scripts]\n = demo:main\n", ""),
            ("[console_scripts]\n.. = demo:main\n", ".."),
            ("[console_scripts]\npython3.11 = demo:main\n", "python3.11"),
        ] {
            match try_install(&[("demo-1.0.dist-info/entry_points.txt", text.as_bytes())]) {
                Err(InstallError::ScriptName { name: n, .. }) => assert_eq!(n, name),
                other => panic!("{text}: {other:?}"),
            }
        }
        for (text, line) in [
            ("[console_scripts]\ntool = demo\n", 2),
            ("[console_scripts]\ntool = os;evil():main\n", 2),
            ("[console_scripts]\n\ntool = demo:main()\n", 3),
            ("[console_scripts]\ntool\n", 2),
            ("[console_scripts\n", 1),
        ] {
            match try_install(&[("demo-1.0.dist-info/entry_points.txt", text.as_bytes())]) {
                Err(InstallError::EntryPoint { line: l, .. }) => assert_eq!(l, line, "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn refuses_bad_schemes_and_interpreters() {
        let (unpacked, _) = unpacked(&[("demo/x.py", b"x")]);
        let read = |_: &str| -> Result<Vec<u8>, WheelError> { unreachable!() };
        let mut scheme = venv();
        scheme.data = "opt/../etc".to_owned();
        assert!(matches!(
            install(&unpacked, read, &scheme, PYTHON, "strata"),
            Err(InstallError::Scheme { field: "data", .. })
        ));
        for python in [
            "python",
            "/opt/my venv/bin/python",
            &format!("/{}", "a".repeat(130)),
        ] {
            assert!(matches!(
                install(&unpacked, read, &venv(), python, "strata"),
                Err(InstallError::Python { .. })
            ));
        }
    }

    #[test]
    fn finds_the_python_placeholder() {
        assert_eq!(after_placeholder(b"#!python"), Some(&b""[..]));
        assert_eq!(after_placeholder(b"#!pythonw -E\n"), Some(&b" -E\n"[..]));
        assert_eq!(after_placeholder(b"#!python3\n"), None);
        assert_eq!(after_placeholder(b"#!/usr/bin/python\n"), None);
        assert_eq!(relative("a/b/c", "a/x/y"), "../../x/y");
        assert_eq!(relative("", "a"), "a");
    }
}
