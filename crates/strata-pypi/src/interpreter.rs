//! The image's Python interpreter, as facts read from the image's files by
//! the builder (never by running it), and what follows from them: the PEP 508
//! marker environment and where packages are installed.

use std::str::FromStr;

use uv_pep440::Version;
use uv_pep508::{MarkerEnvironment, MarkerEnvironmentBuilder};

use crate::tags::Target;

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum InterpreterError {
    #[error("the image's Python version `{version}` is not a PEP 440 version")]
    #[diagnostic(help("report this: strata read the version from the image's files"))]
    Version { version: String },
}

/// A CPython found in the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interpreter {
    /// The executable's absolute path in the image (`/usr/bin/python3.11`).
    pub path: String,
    /// `3.11.2`; only `3.11.0` when the image says no more than `3.11`.
    pub full_version: String,
    /// Where the interpreter's `lib/python3.X` is (`/usr`, `/usr/local`).
    pub prefix: String,
    /// Debian's build, whose own packages own `/usr/lib/python3/dist-packages`
    /// and which installs others into `/usr/local/lib/python3.X/dist-packages`.
    pub debian: bool,
    /// The platform the wheels must be built for.
    pub target: Target,
}

impl Interpreter {
    /// `python3.11` (or `python3.13t`), the executable's file name.
    pub fn executable_name(&self) -> String {
        let (major, minor) = self.target.python;
        let t = if self.target.free_threaded { "t" } else { "" };
        format!("python{major}.{minor}{t}")
    }

    /// `lib/python3.11` (free-threaded builds: `lib/python3.13t`).
    pub fn lib_dir(&self) -> String {
        format!("lib/{}", self.executable_name())
    }

    /// The site directory packages go to without a venv, relative to the
    /// image root: Debian's local one, else the interpreter's own.
    pub fn system_site_packages(&self) -> String {
        let prefix = self.prefix.trim_start_matches('/');
        if self.debian {
            format!("usr/local/{}/dist-packages", self.lib_dir())
        } else {
            format!("{prefix}/{}/site-packages", self.lib_dir())
        }
    }

    /// `cp311-manylinux_2_36_x86_64`: the target, for messages.
    pub fn describe(&self) -> String {
        let (major, minor) = self.target.python;
        let t = if self.target.free_threaded { "t" } else { "" };
        let platform = match self.target.glibc {
            Some((g1, g2)) => format!("manylinux_{g1}_{g2}_{}", self.target.arch),
            None => format!("{} without glibc", self.target.arch),
        };
        format!("cp{major}{minor}{t}-{platform}")
    }

    /// The interpreter's version as PEP 440 compares it.
    pub fn version(&self) -> Result<Version, InterpreterError> {
        Version::from_str(&self.full_version).map_err(|_| InterpreterError::Version {
            version: self.full_version.clone(),
        })
    }

    /// The marker environment PEP 508 markers are evaluated in, as this
    /// interpreter would report it on Linux.
    pub fn markers(&self) -> Result<MarkerEnvironment, InterpreterError> {
        let (major, minor) = self.target.python;
        let python_version = format!("{major}.{minor}");
        self.version()?;
        MarkerEnvironment::try_from(MarkerEnvironmentBuilder {
            implementation_name: "cpython",
            implementation_version: &self.full_version,
            os_name: "posix",
            platform_machine: &self.target.arch,
            platform_python_implementation: "CPython",
            // The kernel is the TRE host's, unknown at build time; markers on
            // it are vanishingly rare on PyPI.
            platform_release: "",
            platform_system: "Linux",
            platform_version: "",
            python_full_version: &self.full_version,
            python_version: &python_version,
            sys_platform: "linux",
        })
        .map_err(|_| InterpreterError::Version {
            version: self.full_version.clone(),
        })
    }
}

/// The `uname -m` name of a platform's architecture, as wheel tags and the
/// `platform_machine` marker spell it.
pub fn machine(architecture: &str, variant: Option<&str>) -> Option<&'static str> {
    Some(match (architecture, variant) {
        ("amd64", _) => "x86_64",
        ("arm64", _) => "aarch64",
        ("arm", Some("v7")) => "armv7l",
        ("386", _) => "i686",
        ("ppc64le", _) => "ppc64le",
        ("s390x", _) => "s390x",
        _ => return None,
    })
}

/// The upstream part of a Debian package version, without epoch, revision
/// or `~`/`+` suffixes: `1:3.11.2-6+deb12u6` → `3.11.2`.
pub fn upstream_version(version: &str) -> &str {
    let version = version.split_once(':').map_or(version, |(_, v)| v);
    let end = version.find(['-', '~', '+']).unwrap_or(version.len());
    &version[..end]
}

/// The glibc version of a Debian `libc6` package version (`2.36-9+deb12u9`).
pub fn glibc_of_debian_version(version: &str) -> Option<(u16, u16)> {
    let mut parts = upstream_version(version).split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn debian_311() -> Interpreter {
        Interpreter {
            path: "/usr/bin/python3.11".into(),
            full_version: "3.11.2".into(),
            prefix: "/usr".into(),
            debian: true,
            target: Target {
                python: (3, 11),
                free_threaded: false,
                glibc: Some((2, 36)),
                arch: "x86_64".into(),
            },
        }
    }

    #[test]
    fn debian_installs_into_local_dist_packages() {
        let i = debian_311();
        assert_eq!(
            i.system_site_packages(),
            "usr/local/lib/python3.11/dist-packages"
        );
        let official = Interpreter {
            prefix: "/usr/local".into(),
            debian: false,
            ..debian_311()
        };
        assert_eq!(
            official.system_site_packages(),
            "usr/local/lib/python3.11/site-packages"
        );
    }

    #[test]
    fn markers_follow_the_target() {
        let env = debian_311().markers().unwrap();
        let req: uv_pep508::Requirement = "a; python_full_version >= '3.11.1' and platform_machine == 'x86_64' and sys_platform == 'linux'"
            .parse()
            .unwrap();
        assert!(req.evaluate_markers(&env, &[]));
        let req: uv_pep508::Requirement = "a; python_version < '3.11'".parse().unwrap();
        assert!(!req.evaluate_markers(&env, &[]));
    }

    #[test]
    fn reads_glibc_from_libc6_versions() {
        assert_eq!(glibc_of_debian_version("2.36-9+deb12u9"), Some((2, 36)));
        assert_eq!(glibc_of_debian_version("2.41-12"), Some((2, 41)));
        assert_eq!(glibc_of_debian_version("1:2.31-13"), Some((2, 31)));
        assert_eq!(glibc_of_debian_version("x"), None);
        assert_eq!(upstream_version("3.11.2-6+deb12u6"), "3.11.2");
        assert_eq!(upstream_version("3.13.5-2"), "3.13.5");
        assert_eq!(machine("arm", Some("v7")), Some("armv7l"));
        assert_eq!(machine("riscv64", None), None);
    }
}
