//! What an installed package says about itself beyond its control stanza:
//! its licences (from `/usr/share/doc/PKG/copyright`, for the SBOM) and the
//! system users its `postinst` would create (which strata, running no
//! script, does not create: `strata lint` reports them).

use std::fs::File;
use std::io::{self, Read, Seek};

use crate::Unpacked;
use crate::deb::DataKind;
use crate::locked::LockedPackage;

/// Facts about one installed package.
#[derive(Debug, Clone)]
pub struct PackageFacts {
    pub locked: LockedPackage,
    /// The `License:` short names of a machine-readable (DEP-5) copyright
    /// file, in order of first appearance; empty when it has none.
    pub licenses: Vec<String>,
    /// Users `adduser --system` / `useradd --system` lines of its `postinst`
    /// create.
    pub system_users: Vec<String>,
}

/// Copyright files over this size are not read: the licence list is near the
/// top of any real one, and a huge file is not worth holding in memory.
const MAX_COPYRIGHT: u64 = 4 << 20;

pub fn facts(package: &Unpacked) -> io::Result<PackageFacts> {
    let copyright = format!("usr/share/doc/{}/copyright", package.locked.name);
    let licenses = match package
        .entries
        .iter()
        .find(|e| e.path == copyright && matches!(e.kind, DataKind::File))
    {
        Some(entry) if entry.size <= MAX_COPYRIGHT => {
            let mut file = File::open(&package.data_tar)?;
            file.seek(io::SeekFrom::Start(entry.offset))?;
            let mut bytes = Vec::new();
            file.take(entry.size).read_to_end(&mut bytes)?;
            copyright_licenses(&String::from_utf8_lossy(&bytes))
        }
        _ => Vec::new(),
    };
    let system_users = package
        .control
        .maintainer_scripts
        .iter()
        .filter(|(name, _)| name == "postinst")
        .flat_map(|(_, text)| system_users(text))
        .collect();
    Ok(PackageFacts {
        locked: package.locked.clone(),
        licenses,
        system_users,
    })
}

/// The licence names of a DEP-5 copyright file: each `License:` field's first
/// line, split at `or`/`and` as Debian writes alternatives (`GPL-2+ or
/// Artistic`). A free-form copyright file has no such fields.
pub fn copyright_licenses(text: &str) -> Vec<String> {
    if !text.starts_with("Format:") {
        return Vec::new();
    }
    let mut out: Vec<String> = Vec::new();
    for line in text.lines() {
        let Some(value) = line.strip_prefix("License:") else {
            continue;
        };
        // `GPL-2+ with Autoconf exception`: the exception is not a licence.
        let value = value.split(" with ").next().unwrap_or(value);
        for name in value
            .split([' ', ','])
            .filter(|w| !w.is_empty() && *w != "or" && *w != "and")
        {
            let name = name.trim_matches(|c| c == '(' || c == ')');
            if !name.is_empty() && !out.iter().any(|n| n == name) {
                out.push(name.to_owned());
            }
        }
    }
    out
}

/// Options of `adduser` and `useradd` that take a value, so that the value is
/// not mistaken for the user's name.
const VALUED_OPTIONS: &[&str] = &[
    "--home",
    "--shell",
    "--uid",
    "--gid",
    "--ingroup",
    "--gecos",
    "--comment",
    "--firstuid",
    "--lastuid",
    "--add-extra-groups",
    "--conf",
    "-d",
    "-s",
    "-u",
    "-g",
    "-G",
    "-c",
    "-K",
    "-k",
];

/// The names given to `adduser --system` and `useradd -r/--system` in a
/// script. Lines whose name is a shell variable are skipped: the value is
/// only known when the script runs.
pub fn system_users(script: &str) -> Vec<String> {
    let joined = script.replace("\\\n", " ");
    let mut users = Vec::new();
    for line in joined.lines() {
        for command in line.split([';', '|', '&']) {
            let tokens: Vec<&str> = command.split_whitespace().collect();
            let Some(start) = tokens
                .iter()
                .position(|t| *t == "adduser" || *t == "useradd" || t.ends_with("/adduser"))
            else {
                continue;
            };
            let args = &tokens[start + 1..];
            let system = args
                .iter()
                .any(|a| *a == "--system" || (tokens[start] == "useradd" && *a == "-r"));
            if !system {
                continue;
            }
            let mut name = None;
            let mut skip = false;
            for arg in args {
                if skip {
                    skip = false;
                } else if VALUED_OPTIONS.contains(arg) {
                    skip = true;
                } else if !arg.starts_with('-') && !arg.starts_with('>') {
                    name = Some(*arg);
                    // `adduser --system NAME GROUP` would add to a group; the
                    // first plain word is the user.
                    break;
                }
            }
            if let Some(name) = name.map(|n| n.trim_matches(['"', '\'']))
                && !name.is_empty()
                && !name.contains('$')
                && !users.iter().any(|u| u == name)
            {
                users.push(name.to_owned());
            }
        }
    }
    users
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adduser_and_useradd_system_lines() {
        let script = "#!/bin/sh\nset -e\nif ! getent passwd messagebus >/dev/null; then\n  adduser --system --quiet --home /nonexistent --no-create-home \\\n    --disabled-password --group messagebus\nfi\nuseradd -r -s /usr/sbin/nologin -d /var/lib/x _x\nadduser --system \"$USER\"\nadduser alice\n";
        assert_eq!(system_users(script), ["messagebus", "_x"]);
    }

    #[test]
    fn dep5_licences_split_alternatives() {
        let text = "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\nFiles: *\nLicense: GPL-2+ or Artistic\n\nFiles: debian/*\nLicense: GPL-2+\nLicense: BSD-3-clause\n";
        assert_eq!(
            copyright_licenses(text),
            ["GPL-2+", "Artistic", "BSD-3-clause"]
        );
        assert!(copyright_licenses("This package was debianized by …\nLicense: GPL\n").is_empty());
    }
}
