//! pip's requirements files (`-r requirements.txt`) and the recipe's
//! `install` strings, read into PEP 508 requirements with their `--hash`es.
//!
//! The syntax is pip's (comments, `\` continuations, `${VAR}`, `-r`/`-c`
//! includes), but only what can mean something for an image built from
//! index wheels is accepted: editable installs, URL and path requirements,
//! index options and sdist builds are errors that say what to write instead,
//! rather than being silently dropped.

use std::collections::HashSet;
use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use strata_oci::digest::{Digest, ParseDigestError};
use uv_pep508::{Pep508Error, Pep508ErrorSource, VerbatimUrl, VersionOrUrl};

/// One requirements file is text written or generated for one project: the
/// largest hash-pinned ones are a few hundred KiB. 16 MiB is far past that
/// and still bounds what a wrong path (a log, a device) can make us hold.
const MAX_FILE_SIZE: u64 = 16 << 20;

/// Everything read for one `read`, across includes and after `${VAR}`
/// expansion: a handful of files each under `MAX_FILE_SIZE` in practice, and
/// the bound that keeps expansion (`${A}${A}…`) from growing without limit.
const MAX_TOTAL_SIZE: u64 = 64 << 20;

/// Includes nest a few levels in real projects (base, dev, test); a chain
/// deeper than this is generated or a mistake, and the bound keeps the
/// include stack small.
const MAX_DEPTH: usize = 32;

/// Where a requirement was written: a file and 1-based line, or the recipe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub file: PathBuf,
    pub line: usize,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    pub requirement: uv_pep508::Requirement,
    /// The `--hash=sha256:…` values: a wheel matching any of them is
    /// accepted, as pip does, since each wheel of a release has its own hash.
    pub hashes: Vec<Digest>,
    pub origin: Origin,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Requirements {
    pub requirements: Vec<Requirement>,
    /// From `-c` files: they bound versions but add no package.
    pub constraints: Vec<Requirement>,
    /// `--pre` was seen: pre-releases may be chosen.
    pub pre: bool,
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum RequirementsError {
    #[error("cannot read `{}`{}", file.display(), included_from(origin))]
    #[diagnostic(help("check that the file exists, is readable and is UTF-8 text"))]
    Read {
        file: PathBuf,
        /// The `-r`/`-c` line that named it, when it is an include.
        origin: Option<Origin>,
        #[source]
        source: io::Error,
    },
    #[error("`{}` is larger than 16 MiB", file.display())]
    #[diagnostic(help(
        "requirements files are capped at 16 MiB to bound memory: check that the path names a requirements file"
    ))]
    TooLarge { file: PathBuf },
    #[error("`{}` and the files it includes hold more than 64 MiB of requirements", file.display())]
    #[diagnostic(help(
        "what one recipe reads, includes and expanded `${{VAR}}`s together, is capped at 64 MiB to bound memory: check the includes and the variables"
    ))]
    TooMuch { file: PathBuf },
    #[error("requirements files include each other in a cycle: {chain}")]
    #[diagnostic(help("remove one of the `-r`/`-c` lines of the cycle"))]
    Cycle { chain: String },
    #[error("requirements files are included more than 32 levels deep: {chain}")]
    #[diagnostic(help("include the deepest files from a higher level"))]
    TooDeep { chain: String },
    #[error("`${{{name}}}` at {origin} is not set")]
    #[diagnostic(help(
        "set the environment variable `{name}` (as UTF-8) before running strata, or write its value in the file"
    ))]
    UnsetVariable { name: String, origin: Origin },
    #[error("invalid requirement at {origin}")]
    #[diagnostic(help(
        "write a PEP 508 requirement such as `name[extra]>=1.0; python_version >= \"3.11\"`"
    ))]
    InvalidRequirement {
        origin: Origin,
        #[source]
        source: Box<Pep508Error<VerbatimUrl>>,
    },
    #[error("`{requirement}` at {origin} installs from a URL or a path")]
    #[diagnostic(help(
        "strata installs from indexes only; publish the wheel to an index or a local index and require it by name"
    ))]
    UrlRequirement { requirement: String, origin: Origin },
    #[error("editable install at {origin}")]
    #[diagnostic(help(
        "editable installs run the project's build: build a wheel, publish it to an index and require it by name"
    ))]
    Editable { origin: Origin },
    #[error("`{option}` at {origin} sets an index")]
    #[diagnostic(help("put indexes in the recipe: `index \"URL\"`"))]
    IndexOption { option: String, origin: Origin },
    #[error("`--no-binary` at {origin} asks for a build from source")]
    #[diagnostic(help(
        "strata installs wheels only: building sdists would run code; remove `--no-binary`"
    ))]
    NoBinary { origin: Origin },
    #[error("unknown option `{option}` at {origin}")]
    #[diagnostic(help(
        "strata reads `-r`/`--requirement`, `-c`/`--constraint`, `--pre`, `--only-binary` and `--prefer-binary` on their own lines, and `--hash` after a requirement"
    ))]
    UnknownOption { option: String, origin: Origin },
    #[error("`{option}` at {origin} needs a value")]
    #[diagnostic(help("write the value after the option: `{option} VALUE`"))]
    MissingValue { option: String, origin: Origin },
    #[error("hash `{hash}` at {origin} is not sha256")]
    #[diagnostic(help(
        "strata checks wheels against sha256: write `--hash=sha256:HEX` (pip-compile and uv write these with `--generate-hashes`)"
    ))]
    UnsupportedHash { hash: String, origin: Origin },
    #[error("malformed hash `{hash}` at {origin}")]
    #[diagnostic(help(
        "write `--hash=sha256:` followed by the 64 hex digits of the wheel's sha256"
    ))]
    MalformedHash {
        hash: String,
        origin: Origin,
        #[source]
        source: ParseDigestError,
    },
    #[error("`{text}` at {origin} is an option, not a requirement")]
    #[diagnostic(help(
        "write options such as `-r` and `--pre` in a requirements file and name it with `requirements`"
    ))]
    NotARequirement { text: String, origin: Origin },
}

fn included_from(origin: &Option<Origin>) -> String {
    origin
        .as_ref()
        .map(|origin| format!(" (included at {origin})"))
        .unwrap_or_default()
}

/// Reads `path` and the files it includes with -r/-c (relative to the including file), in order.
pub fn read(path: &Path) -> Result<Requirements, RequirementsError> {
    read_with_env(path, &|name| std::env::var(name).ok())
}

/// Parses requirement text that is not in a file (the recipe's `install` strings): `origin` names the place.
///
/// The text is taken as written: `${VAR}` is not expanded, since the recipe
/// is meant to say the same thing wherever it is built.
pub fn parse_one(text: &str, origin: Origin) -> Result<Requirement, RequirementsError> {
    match parse_line(text.trim(), &origin)? {
        Line::Requirement(requirement) => Ok(*requirement),
        Line::Options(_) => Err(RequirementsError::NotARequirement {
            text: text.to_owned(),
            origin,
        }),
    }
}

/// `read`, with the environment as a function so tests need not change the
/// process's own.
fn read_with_env(
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Requirements, RequirementsError> {
    let mut reader = Reader {
        env,
        root: path.to_owned(),
        stack: Vec::new(),
        done: HashSet::new(),
        budget: MAX_TOTAL_SIZE,
        out: Requirements::default(),
    };
    reader.file(path, Kind::Requirements, None)?;
    Ok(reader.out)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Requirements,
    Constraints,
}

struct Reader<'a> {
    env: &'a dyn Fn(&str) -> Option<String>,
    /// The file `read` was given, to name in the size error.
    root: PathBuf,
    /// The files being read, outermost first: canonical path (to find
    /// cycles) and the path as named (to show them).
    stack: Vec<(PathBuf, PathBuf)>,
    /// Files already read, and as what. A file included twice (`-r base.txt`
    /// from both `dev.txt` and `test.txt`) adds nothing the second time, and
    /// reading it once keeps a diamond of includes from being read 2^depth
    /// times.
    done: HashSet<(PathBuf, Kind)>,
    /// Bytes left of `MAX_TOTAL_SIZE`.
    budget: u64,
    out: Requirements,
}

impl Reader<'_> {
    fn file(
        &mut self,
        path: &Path,
        kind: Kind,
        origin: Option<&Origin>,
    ) -> Result<(), RequirementsError> {
        let canonical =
            std::fs::canonicalize(path).map_err(|source| read_error(path, origin, source))?;
        if self.stack.iter().any(|(open, _)| *open == canonical) {
            return Err(RequirementsError::Cycle {
                chain: self.chain(path),
            });
        }
        if self.stack.len() > MAX_DEPTH {
            return Err(RequirementsError::TooDeep {
                chain: self.chain(path),
            });
        }
        if !self.done.insert((canonical.clone(), kind)) {
            return Ok(());
        }
        let text = self.load(path, origin)?;
        self.stack.push((canonical, path.to_owned()));
        for (line, logical) in logical_lines(&text) {
            let origin = Origin {
                file: path.to_owned(),
                line,
            };
            let Some(uncommented) = strip_comment(&logical) else {
                continue;
            };
            let limit = uncommented.len() as u64 + self.budget;
            let expanded = expand(uncommented, self.env, limit).map_err(|error| match error {
                Expand::Unset(name) => RequirementsError::UnsetVariable {
                    name,
                    origin: origin.clone(),
                },
                Expand::TooLong => self.too_much(),
            })?;
            self.budget -= expanded.len().saturating_sub(uncommented.len()) as u64;
            match parse_line(&expanded, &origin)? {
                Line::Requirement(requirement) => match kind {
                    Kind::Requirements => self.out.requirements.push(*requirement),
                    Kind::Constraints => self.out.constraints.push(*requirement),
                },
                Line::Options(directives) => {
                    for directive in directives {
                        match directive {
                            Directive::Pre => self.out.pre = true,
                            // As pip does, the option decides what an
                            // include is, not the file it is in: `-r` in a
                            // constraints file adds requirements.
                            Directive::Include(kind, name) => {
                                let included = path.parent().unwrap_or(Path::new("")).join(name);
                                self.file(&included, kind, Some(&origin))?;
                            }
                        }
                    }
                }
            }
        }
        self.stack.pop();
        Ok(())
    }

    /// Reads one file within `MAX_FILE_SIZE` and what is left of the budget.
    fn load(&mut self, path: &Path, origin: Option<&Origin>) -> Result<String, RequirementsError> {
        let io_error = |source| read_error(path, origin, source);
        let file = File::open(path).map_err(io_error)?;
        let mut bytes = Vec::new();
        // Read one byte past the cap rather than trust the size the file
        // system reports: devices and pipes report none.
        file.take(MAX_FILE_SIZE + 1)
            .read_to_end(&mut bytes)
            .map_err(io_error)?;
        if bytes.len() as u64 > MAX_FILE_SIZE {
            return Err(RequirementsError::TooLarge {
                file: path.to_owned(),
            });
        }
        if bytes.len() as u64 > self.budget {
            return Err(self.too_much());
        }
        self.budget -= bytes.len() as u64;
        let mut text = String::from_utf8(bytes)
            .map_err(|error| io_error(io::Error::new(io::ErrorKind::InvalidData, error)))?;
        // Editors on Windows start UTF-8 files with a byte order mark.
        if text.starts_with('\u{feff}') {
            text.remove(0);
        }
        Ok(text)
    }

    fn too_much(&self) -> RequirementsError {
        RequirementsError::TooMuch {
            file: self.root.clone(),
        }
    }

    /// The include chain from the outermost file to `next`.
    fn chain(&self, next: &Path) -> String {
        self.stack
            .iter()
            .map(|(_, named)| named.as_path())
            .chain([next])
            .map(|path| path.display().to_string())
            .collect::<Vec<_>>()
            .join(" -> ")
    }
}

fn read_error(path: &Path, origin: Option<&Origin>, source: io::Error) -> RequirementsError {
    RequirementsError::Read {
        file: path.to_owned(),
        origin: origin.cloned(),
        source,
    }
}

/// Joins `\`-continued physical lines, as pip does: each logical line is
/// numbered by its first physical line, and a comment line ends a
/// continuation rather than being continued itself.
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut lines = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let comment = line.trim_start().starts_with('#');
        match line.strip_suffix('\\') {
            Some(continued) if !comment => {
                pending
                    .get_or_insert_with(|| (number, String::new()))
                    .1
                    .push_str(continued);
            }
            _ => match pending.take() {
                Some((first, mut joined)) => {
                    // The space keeps a comment line a comment once joined.
                    if comment {
                        joined.push(' ');
                    }
                    joined.push_str(line);
                    lines.push((first, joined));
                }
                None => lines.push((number, line.to_owned())),
            },
        }
    }
    lines.extend(pending);
    lines
}

/// The line without its comment (a `#` at the start or after whitespace, so
/// that URL fragments survive), trimmed; `None` if nothing is left.
fn strip_comment(line: &str) -> Option<&str> {
    let mut previous_is_space = true;
    let mut end = line.len();
    for (index, char) in line.char_indices() {
        if char == '#' && previous_is_space {
            end = index;
            break;
        }
        previous_is_space = char.is_whitespace();
    }
    let kept = line[..end].trim();
    (!kept.is_empty()).then_some(kept)
}

enum Expand {
    Unset(String),
    TooLong,
}

/// Expands `${NAME}` (NAME of `A-Z`, `0-9`, `_`), the one form pip expands;
/// anything else, `$NAME` included, stays as written.
fn expand(line: &str, env: &dyn Fn(&str) -> Option<String>, limit: u64) -> Result<String, Expand> {
    let mut out = String::new();
    let mut rest = line;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let name_len = after
            .bytes()
            .take_while(|byte| byte.is_ascii_uppercase() || byte.is_ascii_digit() || *byte == b'_')
            .count();
        if name_len > 0 && after[name_len..].starts_with('}') {
            let name = &after[..name_len];
            out.push_str(&env(name).ok_or_else(|| Expand::Unset(name.to_owned()))?);
            rest = &after[name_len + 1..];
        } else {
            out.push_str("${");
            rest = after;
        }
        if out.len() as u64 > limit {
            return Err(Expand::TooLong);
        }
    }
    out.push_str(rest);
    if out.len() as u64 > limit {
        return Err(Expand::TooLong);
    }
    Ok(out)
}

/// What one logical line says.
enum Line {
    Requirement(Box<Requirement>),
    Options(Vec<Directive>),
}

/// An option line's effect; the options strata accepts and ignores leave none.
enum Directive {
    Include(Kind, String),
    Pre,
}

/// Parses one uncommented, expanded line. As pip does, the requirement is
/// the words before the first one starting with `-`, and options follow.
fn parse_line(line: &str, origin: &Origin) -> Result<Line, RequirementsError> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let split = words
        .iter()
        .position(|word| word.starts_with('-'))
        .unwrap_or(words.len());
    let (requirement, options) = words.split_at(split);
    let mut options = Options {
        words: options.iter(),
        origin,
        after_requirement: !requirement.is_empty(),
        directives: Vec::new(),
        hashes: Vec::new(),
    };
    options.parse()?;
    if requirement.is_empty() {
        return Ok(Line::Options(options.directives));
    }
    let text = requirement.join(" ");
    Ok(Line::Requirement(Box::new(Requirement {
        requirement: parse_requirement(&text, origin)?,
        hashes: options.hashes,
        origin: origin.clone(),
    })))
}

fn parse_requirement(
    text: &str,
    origin: &Origin,
) -> Result<uv_pep508::Requirement, RequirementsError> {
    let url_error = || RequirementsError::UrlRequirement {
        requirement: text.to_owned(),
        origin: origin.clone(),
    };
    if looks_like_url_or_path(text) {
        return Err(url_error());
    }
    let requirement = match uv_pep508::Requirement::<VerbatimUrl>::from_str(text) {
        Ok(requirement) => requirement,
        // `name @ ./pkg`: a URL the parser could not make absolute is still
        // a URL requirement, and saying so tells the user more.
        Err(error) if matches!(error.message, Pep508ErrorSource::UrlError(_)) => {
            return Err(url_error());
        }
        Err(source) => {
            return Err(RequirementsError::InvalidRequirement {
                origin: origin.clone(),
                source: Box::new(source),
            });
        }
    };
    if let Some(VersionOrUrl::Url(_)) = requirement.version_or_url {
        return Err(url_error());
    }
    Ok(requirement)
}

/// pip's file extensions for archives it installs from a path.
const ARCHIVE_EXTENSIONS: [&str; 9] = [
    ".whl", ".zip", ".tar.gz", ".tgz", ".tar", ".tar.bz2", ".tbz", ".tar.xz", ".txz",
];

/// What pip would take for a URL or a path rather than a name: a scheme
/// (`https://`, `git+https://`, `file:`), a path separator or leading `.`,
/// or an archive's name. PEP 508 would reject most of these as names, with
/// a message that does not say why.
fn looks_like_url_or_path(text: &str) -> bool {
    let first = text
        .split(|char: char| char.is_whitespace() || char == ';')
        .next()
        .unwrap_or_default();
    let lower = first.to_ascii_lowercase();
    first.contains(['/', '\\'])
        || first.starts_with(['.', '~'])
        || lower.starts_with("file:")
        || ARCHIVE_EXTENSIONS
            .iter()
            .any(|extension| lower.ends_with(extension))
}

struct Options<'a> {
    words: std::slice::Iter<'a, &'a str>,
    origin: &'a Origin,
    after_requirement: bool,
    directives: Vec<Directive>,
    hashes: Vec<Digest>,
}

impl<'a> Options<'a> {
    fn parse(&mut self) -> Result<(), RequirementsError> {
        while let Some(word) = self.words.next() {
            // `--name=value`, `--name value`, `-rVALUE` and `-r value`.
            let (name, attached) = match word.split_once('=') {
                Some((name, value)) if name.starts_with("--") => (name, Some(value)),
                _ if !word.starts_with("--") && word.len() > 2 && word.is_char_boundary(2) => {
                    (&word[..2], Some(&word[2..]))
                }
                _ => (*word, None),
            };
            match (name, self.after_requirement) {
                ("--hash", true) => {
                    let hash = self.value(name, attached)?;
                    self.hashes.push(parse_hash(hash, self.origin)?);
                }
                ("-e" | "--editable", _) => {
                    return Err(RequirementsError::Editable {
                        origin: self.origin.clone(),
                    });
                }
                (
                    "-i" | "--index-url" | "--extra-index-url" | "-f" | "--find-links"
                    | "--no-index" | "--trusted-host",
                    _,
                ) => {
                    return Err(RequirementsError::IndexOption {
                        option: name.to_owned(),
                        origin: self.origin.clone(),
                    });
                }
                ("--no-binary", _) => {
                    return Err(RequirementsError::NoBinary {
                        origin: self.origin.clone(),
                    });
                }
                ("-r" | "--requirement", false) => {
                    let file = self.value(name, attached)?;
                    self.directives
                        .push(Directive::Include(Kind::Requirements, file.to_owned()));
                }
                ("-c" | "--constraint", false) => {
                    let file = self.value(name, attached)?;
                    self.directives
                        .push(Directive::Include(Kind::Constraints, file.to_owned()));
                }
                ("--pre", false) if attached.is_none() => self.directives.push(Directive::Pre),
                // strata installs wheels only, so asking for binaries changes
                // nothing.
                ("--prefer-binary", false) if attached.is_none() => {}
                ("--only-binary", false) => {
                    self.value(name, attached)?;
                }
                _ => {
                    return Err(RequirementsError::UnknownOption {
                        option: word.to_string(),
                        origin: self.origin.clone(),
                    });
                }
            }
        }
        Ok(())
    }

    fn value(
        &mut self,
        name: &str,
        attached: Option<&'a str>,
    ) -> Result<&'a str, RequirementsError> {
        attached
            .or_else(|| self.words.next().copied())
            .filter(|value| !value.is_empty())
            .ok_or_else(|| RequirementsError::MissingValue {
                option: name.to_owned(),
                origin: self.origin.clone(),
            })
    }
}

fn parse_hash(hash: &str, origin: &Origin) -> Result<Digest, RequirementsError> {
    let Some((algorithm, _)) = hash.split_once(':') else {
        return Err(RequirementsError::MalformedHash {
            hash: hash.to_owned(),
            origin: origin.clone(),
            source: ParseDigestError(hash.to_owned()),
        });
    };
    if algorithm != "sha256" {
        return Err(RequirementsError::UnsupportedHash {
            hash: hash.to_owned(),
            origin: origin.clone(),
        });
    }
    // pip compares hex digests as written; uppercase is the same hash.
    Digest::from_str(&hash.to_ascii_lowercase()).map_err(|source| {
        RequirementsError::MalformedHash {
            hash: hash.to_owned(),
            origin: origin.clone(),
            source,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use miette::Diagnostic;

    const SHA_A: &str = "4721f391ed90541fddacab5acf947aa0d3dc7d27b2e1e8eda2be8970586c3274";
    const SHA_B: &str = "ff70335d468e7eb6ec65b95b99d3a2836546063f63acc5171de367e834932a81";

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }

    fn env(name: &str) -> Option<String> {
        match name {
            "SIX_VERSION" => Some("1.17.0".to_owned()),
            "PY" => Some("3.11".to_owned()),
            "BIG" => Some("x".repeat(1 << 20)),
            _ => None,
        }
    }

    fn read_text(text: &str) -> Result<Requirements, RequirementsError> {
        let dir = tempfile::tempdir().unwrap();
        read_with_env(&write(dir.path(), "requirements.txt", text), &env)
    }

    fn error_of(text: &str) -> RequirementsError {
        read_text(text).unwrap_err()
    }

    fn help(error: &RequirementsError) -> String {
        error.help().unwrap().to_string()
    }

    fn names(requirements: &[Requirement]) -> Vec<String> {
        requirements
            .iter()
            .map(|requirement| requirement.requirement.name.to_string())
            .collect()
    }

    fn lines(requirements: &[Requirement]) -> Vec<usize> {
        requirements
            .iter()
            .map(|requirement| requirement.origin.line)
            .collect()
    }

    #[test]
    fn requirements_comments_blank_lines_and_markers() {
        let read = read_text(
            "# a comment\n\
             \n\
             pandas>=2.2  # inline comment\n\
             scikit-learn==1.5.*\n\
             \x20  # indented comment\n\
             Requests[socks] ; python_version < \"3.12\"\n",
        )
        .unwrap();
        assert_eq!(
            names(&read.requirements),
            ["pandas", "scikit-learn", "requests"]
        );
        assert_eq!(lines(&read.requirements), [3, 4, 6]);
        let requests = &read.requirements[2].requirement;
        assert_eq!(requests.extras.len(), 1);
        assert_eq!(
            requests.marker.try_to_string().unwrap(),
            "python_full_version < '3.12'"
        );
        assert!(read.constraints.is_empty());
        assert!(!read.pre);
    }

    #[test]
    fn a_hash_sign_inside_a_word_is_not_a_comment() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "r.txt", "six#egg\n");
        let error = read_with_env(&path, &env).unwrap_err();
        assert!(
            matches!(error, RequirementsError::InvalidRequirement { .. }),
            "{error:?}"
        );
    }

    #[test]
    fn continuation_lines_join_and_keep_the_first_line_number() {
        let read = read_text(&format!(
            "six \\\n    ==1.17.0 \\\n    --hash=sha256:{SHA_A}\n\
             packaging \\\n# a comment ends the continuation\n\
             attrs\n"
        ))
        .unwrap();
        assert_eq!(names(&read.requirements), ["six", "packaging", "attrs"]);
        assert_eq!(lines(&read.requirements), [1, 4, 6]);
        assert_eq!(
            read.requirements[0]
                .requirement
                .version_or_url
                .as_ref()
                .unwrap()
                .to_string(),
            "==1.17.0"
        );
        assert_eq!(
            read.requirements[0].hashes,
            [Digest::from_str(&format!("sha256:{SHA_A}")).unwrap()]
        );
    }

    #[test]
    fn crlf_and_a_byte_order_mark_are_read() {
        let read = read_text("\u{feff}six\r\npackaging\r\n").unwrap();
        assert_eq!(names(&read.requirements), ["six", "packaging"]);
    }

    #[test]
    fn environment_variables_are_expanded() {
        let read = read_text("six==${SIX_VERSION}; python_version >= \"${PY}\"\n").unwrap();
        let six = &read.requirements[0].requirement;
        assert_eq!(six.version_or_url.as_ref().unwrap().to_string(), "==1.17.0");
        assert_eq!(
            six.marker.try_to_string().unwrap(),
            "python_full_version >= '3.11'"
        );
    }

    #[test]
    fn only_the_braced_form_is_expanded() {
        // `$SIX_VERSION` and `${lower}` are left as written, as pip leaves
        // them, and so fail as requirements.
        for text in ["six==$SIX_VERSION\n", "six==${lower}\n"] {
            let error = error_of(text);
            assert!(
                matches!(error, RequirementsError::InvalidRequirement { .. }),
                "{error:?}"
            );
        }
    }

    #[test]
    fn an_unset_variable_is_an_error_naming_it() {
        let error = error_of("six\npackaging==${NOT_SET_ANYWHERE}\n");
        assert!(
            matches!(&error, RequirementsError::UnsetVariable { name, origin } if name == "NOT_SET_ANYWHERE" && origin.line == 2),
            "{error:?}"
        );
        assert!(
            error.to_string().contains("`${NOT_SET_ANYWHERE}`"),
            "{error}"
        );
        assert!(error.to_string().contains("requirements.txt:2"), "{error}");
        assert!(help(&error).contains("set the environment variable `NOT_SET_ANYWHERE`"));
    }

    #[test]
    fn expansion_is_bounded() {
        let error = error_of(&format!("six=={}\n", "${BIG}".repeat(70)));
        assert!(
            matches!(error, RequirementsError::TooMuch { .. }),
            "{error:?}"
        );
        assert!(help(&error).contains("64 MiB"));
    }

    #[test]
    fn includes_are_read_relative_to_the_including_file_in_order() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "reqs/base.txt",
            "six\n-c ../constraints/pins.txt\n",
        );
        write(dir.path(), "reqs/extra.txt", "attrs\n");
        write(dir.path(), "reqs/more.txt", "idna\n");
        write(
            dir.path(),
            "constraints/pins.txt",
            "six==1.17.0\n# -r inside a constraints file adds requirements, as in pip\n-r ../reqs/more.txt\n",
        );
        let root = write(
            dir.path(),
            "requirements.txt",
            "first\n-r reqs/base.txt\n--requirement=reqs/extra.txt\n-rreqs/more.txt\nlast\n",
        );
        let read = read_with_env(&root, &env).unwrap();
        assert_eq!(
            names(&read.requirements),
            ["first", "six", "idna", "attrs", "last"]
        );
        assert_eq!(names(&read.constraints), ["six"]);
        let pin = &read.constraints[0].origin;
        assert_eq!(pin.file, dir.path().join("reqs/../constraints/pins.txt"));
        assert_eq!(pin.line, 1);
        assert_eq!(
            read.requirements[1].origin.file,
            dir.path().join("reqs/base.txt")
        );
    }

    #[test]
    fn constraint_options_in_both_spellings() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "c1.txt", "six<2\n");
        write(dir.path(), "c2.txt", "attrs<30\n");
        write(dir.path(), "c3.txt", "idna<4\n");
        let root = write(
            dir.path(),
            "r.txt",
            "-c c1.txt\n--constraint c2.txt\n--constraint=c3.txt\nsix\n",
        );
        let read = read_with_env(&root, &env).unwrap();
        assert_eq!(names(&read.constraints), ["six", "attrs", "idna"]);
        assert_eq!(names(&read.requirements), ["six"]);
    }

    #[test]
    fn a_file_included_twice_is_read_once() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "base.txt", "six\n");
        write(dir.path(), "dev.txt", "-r base.txt\npytest\n");
        write(dir.path(), "test.txt", "-r base.txt\ncoverage\n");
        let root = write(dir.path(), "all.txt", "-r dev.txt\n-r test.txt\n");
        let read = read_with_env(&root, &env).unwrap();
        assert_eq!(names(&read.requirements), ["six", "pytest", "coverage"]);
    }

    #[test]
    fn a_cycle_is_an_error_naming_the_chain() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "b.txt", "attrs\n-r c.txt\n");
        write(dir.path(), "c.txt", "-c a.txt\n");
        let root = write(dir.path(), "a.txt", "six\n-r b.txt\n");
        let error = read_with_env(&root, &env).unwrap_err();
        let RequirementsError::Cycle { chain } = &error else {
            panic!("{error:?}");
        };
        let a = dir.path().join("a.txt");
        let b = dir.path().join("b.txt");
        let c = dir.path().join("c.txt");
        assert_eq!(
            *chain,
            format!(
                "{} -> {} -> {} -> {}",
                a.display(),
                b.display(),
                c.display(),
                a.display()
            )
        );
    }

    #[test]
    fn includes_nest_at_most_32_deep() {
        let dir = tempfile::tempdir().unwrap();
        let chain = |files: usize| {
            for level in 0..files {
                let next = if level + 1 < files {
                    format!("-r {}.txt\n", level + 1)
                } else {
                    String::new()
                };
                write(
                    dir.path(),
                    &format!("{level}.txt"),
                    &format!("p{level}\n{next}"),
                );
            }
            read_with_env(&dir.path().join("0.txt"), &env)
        };
        // 33 files: the deepest is included 32 levels down.
        assert_eq!(chain(33).unwrap().requirements.len(), 33);
        let error = chain(34).unwrap_err();
        let RequirementsError::TooDeep { chain } = &error else {
            panic!("{error:?}");
        };
        assert!(chain.ends_with("33.txt"), "{chain}");
    }

    #[test]
    fn a_file_over_16_mib_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("huge.txt");
        std::fs::File::create(&path)
            .unwrap()
            .set_len(MAX_FILE_SIZE + 1)
            .unwrap();
        let error = read_with_env(&path, &env).unwrap_err();
        assert!(
            matches!(&error, RequirementsError::TooLarge { file } if *file == path),
            "{error:?}"
        );
        assert!(help(&error).contains("capped at 16 MiB"));
    }

    #[test]
    fn a_missing_include_names_the_line_that_includes_it() {
        let error = error_of("six\n-r missing.txt\n");
        assert!(
            matches!(&error, RequirementsError::Read { origin: Some(origin), .. } if origin.line == 2),
            "{error:?}"
        );
        assert!(error.to_string().contains("missing.txt"), "{error}");
        assert!(error.to_string().contains("(included at "), "{error}");
        let missing = read(Path::new("/nonexistent/requirements.txt")).unwrap_err();
        assert!(
            matches!(missing, RequirementsError::Read { origin: None, .. }),
            "{missing:?}"
        );
    }

    #[test]
    fn a_file_that_is_not_utf8_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("latin1.txt");
        std::fs::write(&path, b"caf\xe9\n").unwrap();
        let error = read_with_env(&path, &env).unwrap_err();
        assert!(matches!(error, RequirementsError::Read { .. }), "{error:?}");
    }

    #[test]
    fn hashes_several_per_requirement_in_both_spellings() {
        let read = read_text(&format!(
            "six==1.17.0 --hash=sha256:{SHA_A} --hash sha256:{}\n",
            SHA_B.to_ascii_uppercase()
        ))
        .unwrap();
        let expected: Vec<Digest> = [SHA_A, SHA_B]
            .iter()
            .map(|hex| Digest::from_str(&format!("sha256:{hex}")).unwrap())
            .collect();
        assert_eq!(read.requirements[0].hashes, expected);
    }

    #[test]
    fn a_hash_of_another_algorithm_is_an_error() {
        let error = error_of("six\nattrs --hash=sha512:abcd\n");
        assert!(
            matches!(&error, RequirementsError::UnsupportedHash { hash, origin } if hash == "sha512:abcd" && origin.line == 2),
            "{error:?}"
        );
        assert!(help(&error).contains("sha256"));
    }

    #[test]
    fn a_malformed_hash_is_an_error() {
        for hash in [
            "sha256:abc",
            "sha256:",
            "deadbeef",
            &format!("sha256:{}zz", &SHA_A[..62]),
        ] {
            let error = error_of(&format!("six --hash={hash}\n"));
            assert!(
                matches!(&error, RequirementsError::MalformedHash { hash: found, .. } if found == hash),
                "{hash}: {error:?}"
            );
            assert!(error.to_string().contains("requirements.txt:1"), "{error}");
        }
        let error = error_of("six --hash\n");
        assert!(
            matches!(&error, RequirementsError::MissingValue { option, .. } if option == "--hash"),
            "{error:?}"
        );
    }

    #[test]
    fn a_hash_without_a_requirement_is_an_unknown_option() {
        let error = error_of(&format!("--hash=sha256:{SHA_A}\n"));
        assert!(
            matches!(error, RequirementsError::UnknownOption { .. }),
            "{error:?}"
        );
    }

    #[test]
    fn binary_options_are_accepted_and_pre_is_recorded() {
        let read =
            read_text("--only-binary :all:\n--only-binary=:all:\n--prefer-binary\nsix\n").unwrap();
        assert!(!read.pre);
        assert_eq!(names(&read.requirements), ["six"]);
        let read = read_text("--pre --prefer-binary\nsix\n").unwrap();
        assert!(read.pre);
    }

    #[test]
    fn a_markered_requirement_is_kept() {
        let read = read_text("pywin32; sys_platform == \"win32\"\n").unwrap();
        assert_eq!(names(&read.requirements), ["pywin32"]);
        assert!(!read.requirements[0].requirement.marker.is_true());
    }

    #[test]
    fn editable_installs_are_errors() {
        for line in ["-e .", "--editable ./pkg", "--editable=./pkg", "-e./pkg"] {
            let error = error_of(&format!("six\n{line}\n"));
            assert!(
                matches!(&error, RequirementsError::Editable { origin } if origin.line == 2),
                "{line}: {error:?}"
            );
            assert!(error.to_string().contains("requirements.txt:2"), "{error}");
            assert!(help(&error).contains("editable installs run the project's build"));
        }
    }

    #[test]
    fn url_and_path_requirements_are_errors() {
        for line in [
            "name @ https://example.com/name-1.0-py3-none-any.whl",
            "name@https://example.com/name-1.0-py3-none-any.whl",
            "name @ ./pkg",
            "name @ file:///abs/pkg",
            "name[extra] @ git+https://github.com/owner/name ; python_version >= \"3.11\"",
            "./pkg",
            "../pkg[extra]",
            "/abs/pkg",
            "https://example.com/name-1.0-py3-none-any.whl",
            "git+https://github.com/owner/name",
            "name-1.0-py3-none-any.whl",
            "name-1.0.tar.gz",
            "file:pkg",
        ] {
            let error = error_of(&format!("six\n\n{line}\n"));
            assert!(
                matches!(&error, RequirementsError::UrlRequirement { requirement, origin } if requirement == line && origin.line == 3),
                "{line}: {error:?}"
            );
            assert!(help(&error).contains("strata installs from indexes only"));
        }
    }

    #[test]
    fn index_options_are_errors() {
        for (line, option) in [
            ("-i https://example.com/simple", "-i"),
            ("--index-url https://example.com/simple", "--index-url"),
            ("--index-url=https://example.com/simple", "--index-url"),
            (
                "--extra-index-url https://example.com/simple",
                "--extra-index-url",
            ),
            ("-f https://example.com/wheels", "-f"),
            ("--find-links ./wheels", "--find-links"),
            ("--no-index", "--no-index"),
            ("--trusted-host example.com", "--trusted-host"),
        ] {
            let error = error_of(&format!("{line}\n"));
            assert!(
                matches!(&error, RequirementsError::IndexOption { option: found, origin } if found == option && origin.line == 1),
                "{line}: {error:?}"
            );
            assert!(help(&error).contains("put indexes in the recipe: `index \"URL\"`"));
        }
    }

    #[test]
    fn no_binary_is_an_error() {
        for line in ["--no-binary :all:", "six --no-binary six"] {
            let error = error_of(&format!("{line}\n"));
            assert!(
                matches!(error, RequirementsError::NoBinary { .. }),
                "{line}: {error:?}"
            );
            assert!(
                help(&error)
                    .contains("strata installs wheels only: building sdists would run code")
            );
        }
    }

    #[test]
    fn other_options_are_unknown() {
        for (line, option) in [
            ("--use-feature=truststore", "--use-feature=truststore"),
            ("-x", "-x"),
            ("six --config-settings key=value", "--config-settings"),
            ("six -r other.txt", "-r"),
            ("--pre=yes", "--pre=yes"),
        ] {
            let error = error_of(&format!("six\n{line}\n"));
            assert!(
                matches!(&error, RequirementsError::UnknownOption { option: found, origin } if found == option && origin.line == 2),
                "{line}: {error:?}"
            );
            assert!(error.to_string().contains("requirements.txt:2"), "{error}");
        }
    }

    #[test]
    fn an_include_without_a_file_is_an_error() {
        let error = error_of("-r\n");
        assert!(
            matches!(&error, RequirementsError::MissingValue { option, .. } if option == "-r"),
            "{error:?}"
        );
        let error = error_of("--constraint=\n");
        assert!(
            matches!(&error, RequirementsError::MissingValue { option, .. } if option == "--constraint"),
            "{error:?}"
        );
    }

    #[test]
    fn an_invalid_requirement_names_its_line() {
        let error = error_of("six\nnot a requirement ===\n");
        assert!(
            matches!(&error, RequirementsError::InvalidRequirement { origin, .. } if origin.line == 2),
            "{error:?}"
        );
        assert!(error.to_string().contains("requirements.txt:2"), "{error}");
        assert!(std::error::Error::source(&error).is_some());
    }

    fn recipe() -> Origin {
        Origin {
            file: PathBuf::from("strata.kdl"),
            line: 7,
        }
    }

    #[test]
    fn parse_one_reads_a_recipe_string() {
        let requirement = parse_one("scikit-learn==1.5.*", recipe()).unwrap();
        assert_eq!(requirement.requirement.name.to_string(), "scikit-learn");
        assert_eq!(requirement.origin, recipe());
        assert!(requirement.hashes.is_empty());
        let hashed = parse_one(&format!(" six --hash=sha256:{SHA_A} "), recipe()).unwrap();
        assert_eq!(hashed.hashes.len(), 1);
    }

    #[test]
    fn parse_one_refuses_options_urls_and_variables() {
        let error = parse_one("-r requirements.txt", recipe()).unwrap_err();
        assert!(
            matches!(error, RequirementsError::NotARequirement { .. }),
            "{error:?}"
        );
        assert!(error.to_string().contains("strata.kdl:7"), "{error}");
        let error = parse_one("-e .", recipe()).unwrap_err();
        assert!(
            matches!(error, RequirementsError::Editable { .. }),
            "{error:?}"
        );
        let error = parse_one("pkg @ https://example.com/pkg.whl", recipe()).unwrap_err();
        assert!(
            matches!(error, RequirementsError::UrlRequirement { .. }),
            "{error:?}"
        );
        let error = parse_one("six==${SIX_VERSION}", recipe()).unwrap_err();
        assert!(
            matches!(error, RequirementsError::InvalidRequirement { .. }),
            "{error:?}"
        );
    }
}
