//! What a maintainer script would do, found without running it.
//!
//! strata never executes anything from a package, yet Debian packages rely
//! on their `postinst` to finish installing them: alternatives, config files
//! written with `ucf`, system users, `/etc/shells`, stat overrides. This
//! module parses the script (POSIX shell, with `brush-parser`) and evaluates
//! it as `dpkg --configure` would on a first install (`$1 = configure`, no
//! previous version) against a read-only picture of the image plus an
//! overlay of what the script itself wrote. It runs nothing: variables,
//! functions, `if`/`case`/`for`/`while read`, command substitution and a set
//! of known commands are interpreted here, and every command it does not
//! know is reported as [`Unknown`] (for `strata lint`) instead of guessed.
//!
//! Effects come back as data ([`Effect`]); the builder decides how they
//! become files in the package layer.

mod commands;
mod pam;
mod shell;

use std::collections::BTreeMap;

/// What the evaluator may read of the image being assembled.
pub trait Files {
    /// The kind of the file at an absolute path, following symlinks;
    /// `None` when it does not exist.
    fn kind(&self, path: &str) -> Option<FileKind>;
    /// The content of a regular file (small files only: config templates,
    /// account lists); `None` when absent or too large.
    fn read(&self, path: &str) -> Option<Vec<u8>>;
    /// Mode bits, uid and gid of what is at the path, symlinks followed.
    fn attributes(&self, path: &str) -> Option<(u32, u32, u32)>;
    /// The names in a directory, sorted; empty when it is not one.
    fn list(&self, dir: &str) -> Vec<String>;
    /// The path with every symlink resolved (`realpath -m`).
    fn canonical(&self, path: &str) -> String;
    /// The paths an installed package ships (`dpkg -L`); `None` when it is
    /// not installed.
    fn package_files(&self, package: &str) -> Option<Vec<String>>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    File { executable: bool },
    Dir,
}

/// One link group of `update-alternatives --install`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alternative {
    /// The master: (link, name, path).
    pub link: String,
    pub name: String,
    pub path: String,
    pub priority: i64,
    /// `--slave LINK NAME PATH`.
    pub slaves: Vec<(String, String, String)>,
}

/// A system account `adduser --system`, `useradd -r`, `addgroup --system`
/// or `groupadd -r` asks for. Ids are not chosen here: the builder assigns
/// them deterministically across all packages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemUser {
    pub name: String,
    pub home: Option<String>,
    pub shell: Option<String>,
    pub gecos: Option<String>,
    /// A group of the same name is created for it (`--group`, `-U`).
    pub own_group: bool,
    /// Its primary group when given by name (`--ingroup`, `-g`).
    pub group: Option<String>,
    pub uid: Option<u32>,
}

/// A file-system change, as the script left it (temporary files excluded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    File {
        bytes: Vec<u8>,
        mode: u32,
    },
    Dir {
        mode: u32,
    },
    Symlink(String),
    /// New mode or owner of a file the packages ship.
    Attributes {
        mode: Option<u32>,
        owner: Option<String>,
        group: Option<String>,
    },
    Removed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    Alternative(Alternative),
    User(SystemUser),
    Group {
        name: String,
        gid: Option<u32>,
    },
    /// `adduser USER GROUP`: membership of an existing group.
    Member {
        user: String,
        group: String,
    },
    /// `add-shell PATH`.
    Shell(String),
    /// `shadowconfig on`: passwords move to `/etc/shadow` and `/etc/gshadow`.
    ShadowPasswords,
    /// `dpkg-statoverride --add USER GROUP MODE PATH`.
    StatOverride {
        owner: String,
        group: String,
        mode: u32,
        path: String,
    },
    /// A file written, linked, created or changed, by absolute path.
    Path {
        path: String,
        change: Change,
    },
}

/// A command whose effect could not be determined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unknown {
    /// 1-based line in the script.
    pub line: usize,
    pub command: String,
    pub reason: String,
}

#[derive(Debug, Default)]
pub struct Evaluation {
    pub effects: Vec<Effect>,
    pub unknown: Vec<Unknown>,
}

/// The context dpkg gives a script.
pub struct Context<'a> {
    /// `DPKG_MAINTSCRIPT_ARCH` and `dpkg --print-architecture`.
    pub architecture: &'a str,
    pub package: &'a str,
    /// The package's debconf `templates`: `db_get` answers with their
    /// `Default`, as the noninteractive frontend does.
    pub templates: Option<&'a str>,
    /// Answers given in advance (preseeding), ahead of template defaults.
    pub answers: &'a BTreeMap<String, String>,
}

/// Evaluates a `postinst` as `postinst configure` on a first install.
pub fn evaluate(script: &str, files: &dyn Files, context: &Context) -> Evaluation {
    let mut shell = shell::Shell::new(files, context);
    shell.run_script(script, &["configure".to_owned(), String::new()]);
    shell.finish()
}

/// Paths the script wrote, in order, with their final state.
pub(crate) type Overlay = BTreeMap<String, Change>;

#[cfg(test)]
mod tests;
