//! The commands a maintainer script may run, interpreted: shell builtins,
//! file utilities over the overlay, and the Debian tools whose effects an
//! image needs. A command not listed here is reported, not guessed.

use regex::Regex;

use super::shell::{Flow, Shell, glob_match};
use super::{Alternative, Change, Effect, FileKind, SystemUser};
use crate::version::Version;

const UCF_HASHFILE: &str = "/var/lib/ucf/hashfile";

/// Commands whose effect either does not apply to an image (services,
/// triggers, caches nothing reads offline) or is produced by strata itself
/// from the final tree (`ldconfig`, `update-ca-certificates`,
/// `update-shells`, byte-code): they succeed and do nothing here.
const HANDLED_ELSEWHERE: &[&str] = &[
    "ldconfig",
    "update-ca-certificates",
    "update-shells",
    "py3compile",
    "pycompile",
    "py3clean",
    "pyclean",
    "dpkg-trigger",
    "dpkg-maintscript-helper",
    "deb-systemd-helper",
    "deb-systemd-invoke",
    "systemctl",
    "invoke-rc.d",
    "update-rc.d",
    "systemd-tmpfiles",
    "update-mime-database",
    "update-desktop-database",
    "gtk-update-icon-cache",
    "update-icon-caches",
    "fc-cache",
    "install-info",
    "update-info-dir",
    "mandb",
    "update-menus",
    "update-binfmts",
    "update-initramfs",
    "restorecon",
    "remove-shell",
    "run-parts",
    // usrmerge's converters: strata lays out merged /usr and writes
    // /etc/shells itself.
    "convert-usrmerge",
    "convert-etc-shells",
    "mountpoint",
    "trap",
    "cd",
    "wait",
    "hash",
    "ulimit",
    "set",
    "sync",
    // A machine's identity is made when a container first runs, never
    // baked into an image shared by many.
    "dbus-uuidgen",
    "systemd-machine-id-setup",
];

impl Shell<'_> {
    pub(super) fn builtin(&mut self, argv: &[String]) -> Flow {
        let name = argv[0].rsplit('/').next().unwrap_or(&argv[0]).to_owned();
        let args = &argv[1..];
        let status = match name.as_str() {
            ":" | "true" => 0,
            "false" => 1,
            "exit" | "return" | "break" | "continue" => {
                let n = args.first().and_then(|a| a.parse::<i32>().ok());
                return match name.as_str() {
                    "exit" => {
                        self.status = n.unwrap_or(self.status);
                        Flow::Exit
                    }
                    "return" => {
                        self.status = n.unwrap_or(self.status);
                        Flow::Return
                    }
                    "break" => Flow::Break(n.unwrap_or(1).max(1) as u32),
                    _ => Flow::Continue(n.unwrap_or(1).max(1) as u32),
                };
            }
            "set" if args.first().is_some_and(|a| a == "--") => {
                self.replace_positional(args[1..].to_vec());
                0
            }
            "shift" => {
                let n = args.first().and_then(|a| a.parse().ok()).unwrap_or(1);
                i32::from(!self.shift(n))
            }
            "local" | "export" | "readonly" => {
                for arg in args {
                    if let Some((name, value)) = arg.split_once('=') {
                        self.set_var(name, value.to_owned());
                    }
                }
                0
            }
            "unset" => {
                for arg in args.iter().filter(|a| !a.starts_with('-')) {
                    self.unset_var(arg);
                }
                0
            }
            "echo" => self.echo(args),
            "printf" => self.printf(args),
            "test" => self.test(args),
            "[" => match args.split_last() {
                Some((last, rest)) if last == "]" => self.test(rest),
                _ => 2,
            },
            "." | "source" => self.source(args),
            "read" => self.read(args),
            "eval" => return self.run_text(&args.join(" ")),
            "command" | "type" => match args.first().map(String::as_str) {
                Some("-v") | Some("-V") => self.which(&args[1..], true),
                Some(_) if name == "command" => return self.call_command(args),
                _ => self.which(args, true),
            },
            "which" => self.which(args, false),
            "getent" => self.getent(args),
            "id" => self.id(args),
            "cat" => self.cat(args),
            "cp" | "mv" | "install" => self.copy(&name, args),
            "rm" | "rmdir" => self.remove(args),
            "mkdir" => self.mkdir(args),
            "ln" => self.ln(args),
            "touch" => self.touch(args),
            "chmod" => self.chmod(args),
            "chown" | "chgrp" => self.chown(&name, args),
            "mktemp" => self.mktemp(args),
            "basename" | "dirname" | "realpath" | "readlink" | "dpkg-realpath" => {
                self.path_tool(&name, args)
            }
            "sed" => self.sed(args),
            "tr" => self.tr(args),
            "md5sum" => self.md5sum(args),
            "awk" | "mawk" | "gawk" => self.awk(args),
            "sort" | "uniq" => self.sort(&name, args),
            // Only ever shown to the person installing: the epoch will do.
            "date" => {
                self.emit(b"Thu Jan  1 00:00:00 UTC 1970\n");
                0
            }
            "ls" => {
                let mut status = 0;
                for path in args.iter().filter(|a| !a.starts_with('-')) {
                    if self.kind(path).is_some() {
                        self.emit(format!("{path}\n").as_bytes());
                    } else {
                        status = 2;
                    }
                }
                status
            }
            "uname" => {
                let machine = machine(self.context.architecture);
                let out = match args.first().map(String::as_str) {
                    Some("-m" | "-p") => machine,
                    // The kernel is the host's at run time: nothing to say.
                    Some("-r" | "-v" | "-a") => {
                        self.unknown(
                            &format!("uname {}", args.join(" ")),
                            "the kernel is only known at run time",
                        );
                        ""
                    }
                    _ => "Linux",
                };
                self.emit(format!("{out}\n").as_bytes());
                0
            }
            // dpkg configures images as mmdebstrap does, in a chroot.
            "ischroot" => 0,
            "umask" => {
                if let Some(mask) = args.first().and_then(|m| parse_octal(m)) {
                    self.umask = mask & 0o777;
                }
                0
            }
            "dpkg-query" => self.dpkg_query(args),
            "grep" => self.grep(args),
            "expr" => self.expr(args),
            "dpkg" => self.dpkg(args),
            "dpkg-divert" => self.dpkg_divert(args),
            "update-alternatives" => self.update_alternatives(args),
            "ucf" => self.ucf(args),
            // `ucfr PACKAGE FILE`: the package owns the config file.
            "ucfr" => {
                let words: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
                if let [package, file] = words.as_slice() {
                    let file = self.absolute(file);
                    let mut registry = self.read_file("/var/lib/ucf/registry").unwrap_or_default();
                    let line = format!("{package}\t{file}\n");
                    if !String::from_utf8_lossy(&registry).contains(line.as_str()) {
                        registry.extend_from_slice(line.as_bytes());
                        self.write_file("/var/lib/ucf/registry", registry, Some(0o644));
                    }
                }
                0
            }
            "stat" => self.stat(args),
            "dpkg-statoverride" => self.statoverride(args),
            "adduser" | "addgroup" | "useradd" | "groupadd" => self.account(&name, args),
            "pam-auth-update" => self.pam_auth_update(&argv.join(" ")),
            "shadowconfig" => {
                if args.first().is_some_and(|a| a == "on") {
                    self.effects.push(Effect::ShadowPasswords);
                }
                0
            }
            "add-shell" => {
                for shell in args {
                    self.effects.push(Effect::Shell(shell.clone()));
                }
                0
            }
            "paperconf" => {
                let size = self
                    .read_file("/etc/papersize")
                    .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| "letter".to_owned());
                self.emit(format!("{size}\n").as_bytes());
                0
            }
            debconf if debconf.starts_with("db_") => self.debconf(debconf, args),
            // python3.X-minimal compiles its standard library this way:
            // strata's byte-code does the same (see `bytecode #false`).
            python
                if python.starts_with("python3")
                    && args
                        .iter()
                        .any(|a| a.ends_with("py_compile.py") || a == "py_compile") =>
            {
                0
            }
            known if HANDLED_ELSEWHERE.contains(&known) => 0,
            _ => {
                self.unknown(&argv.join(" "), format!("`{name}` is not evaluated"));
                0
            }
        };
        self.status = status;
        Flow::Next
    }

    /// `command NAME ARGS`: the command, skipping functions.
    fn call_command(&mut self, args: &[String]) -> Flow {
        if args.is_empty() {
            self.status = 0;
            return Flow::Next;
        }
        self.builtin(args)
    }

    fn echo(&mut self, args: &[String]) -> i32 {
        let mut newline = true;
        let mut words = args;
        while let Some(first) = words.first() {
            match first.as_str() {
                "-n" => newline = false,
                "-e" | "-E" => {}
                _ => break,
            }
            words = &words[1..];
        }
        let mut text = unescape(&words.join(" "));
        if newline {
            text.push('\n');
        }
        self.emit(text.as_bytes());
        0
    }

    fn printf(&mut self, args: &[String]) -> i32 {
        let Some((format, mut rest)) = args.split_first() else {
            return 1;
        };
        let format = unescape(format);
        let mut out = String::new();
        loop {
            let mut chars = format.chars().peekable();
            let mut used = false;
            while let Some(c) = chars.next() {
                if c != '%' {
                    out.push(c);
                    continue;
                }
                // Flags and width are rare in scripts; they are skipped.
                while chars.peek().is_some_and(|c| "-+ 0#123456789.".contains(*c)) {
                    chars.next();
                }
                match chars.next() {
                    Some('%') => out.push('%'),
                    Some('s' | 'd' | 'i' | 'u' | 'b' | 'x' | 'o' | 'c') => {
                        used = true;
                        if let Some((arg, tail)) = rest.split_first() {
                            out.push_str(arg);
                            rest = tail;
                        }
                    }
                    _ => {}
                }
            }
            if !used || rest.is_empty() {
                break;
            }
        }
        self.emit(out.as_bytes());
        0
    }

    fn test(&mut self, args: &[String]) -> i32 {
        match brush_parser::test_command::parse(args) {
            Ok(expr) => i32::from(!self.test_expr(&expr)),
            Err(_) => {
                self.unknown(
                    &format!("test {}", args.join(" ")),
                    "this test cannot be parsed",
                );
                2
            }
        }
    }

    fn test_expr(&mut self, expr: &brush_parser::ast::TestExpr) -> bool {
        use brush_parser::ast::{BinaryPredicate as B, TestExpr as T, UnaryPredicate as U};
        match expr {
            T::False => false,
            T::Literal(s) => !s.is_empty(),
            T::And(a, b) => self.test_expr(a) && self.test_expr(b),
            T::Or(a, b) => self.test_expr(a) || self.test_expr(b),
            T::Not(a) => !self.test_expr(a),
            T::Parenthesized(a) => self.test_expr(a),
            T::UnaryTest(op, operand) => match op {
                U::StringHasZeroLength => operand.is_empty(),
                U::StringHasNonZeroLength => !operand.is_empty(),
                U::FileExists | U::FileExistsAndIsReadable | U::FileExistsAndIsWritable => {
                    self.kind(operand).is_some()
                }
                U::FileExistsAndIsDir => self.kind(operand) == Some(FileKind::Dir),
                U::FileExistsAndIsRegularFile => {
                    matches!(self.kind(operand), Some(FileKind::File { .. }))
                }
                U::FileExistsAndIsExecutable => matches!(
                    self.kind(operand),
                    Some(FileKind::File { executable: true } | FileKind::Dir)
                ),
                U::FileExistsAndIsNotZeroLength => {
                    self.read_file(operand).is_some_and(|b| !b.is_empty())
                }
                // Only links the script made: `Files` follows the image's.
                U::FileExistsAndIsSymlink => self.is_symlink(operand),
                U::ShellVariableIsSetAndAssigned => !self.var(operand).is_empty(),
                // Devices, sockets, terminals, setuid bits: none in a fresh
                // image as a script would see them.
                _ => false,
            },
            T::BinaryTest(op, left, right) => {
                let numbers = || {
                    (
                        left.trim().parse::<i64>().ok(),
                        right.trim().parse::<i64>().ok(),
                    )
                };
                match op {
                    B::StringExactlyMatchesString | B::StringExactlyMatchesPattern => left == right,
                    B::StringDoesNotExactlyMatchString | B::StringDoesNotExactlyMatchPattern => {
                        left != right
                    }
                    B::LeftSortsBeforeRight => left < right,
                    B::LeftSortsAfterRight => left > right,
                    B::ArithmeticEqualTo
                    | B::ArithmeticNotEqualTo
                    | B::ArithmeticLessThan
                    | B::ArithmeticLessThanOrEqualTo
                    | B::ArithmeticGreaterThan
                    | B::ArithmeticGreaterThanOrEqualTo => match numbers() {
                        (Some(a), Some(b)) => match op {
                            B::ArithmeticEqualTo => a == b,
                            B::ArithmeticNotEqualTo => a != b,
                            B::ArithmeticLessThan => a < b,
                            B::ArithmeticLessThanOrEqualTo => a <= b,
                            B::ArithmeticGreaterThan => a > b,
                            _ => a >= b,
                        },
                        _ => false,
                    },
                    _ => {
                        self.unknown(&format!("test {left} {op:?} {right}"), "not evaluated");
                        false
                    }
                }
            }
        }
    }

    fn source(&mut self, args: &[String]) -> i32 {
        match args.first().map(String::as_str) {
            // debconf's shell library: its commands are `db_*`, below.
            Some("/usr/share/debconf/confmodule") | None => 0,
            Some(path) => match self.read_file(path) {
                Some(bytes) => {
                    let text = String::from_utf8_lossy(&bytes).into_owned();
                    let _ = self.run_text(&text);
                    self.status
                }
                None => {
                    self.unknown(&format!(". {path}"), "the file is not in the image");
                    1
                }
            },
        }
    }

    fn read(&mut self, args: &[String]) -> i32 {
        let names: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
        let Some(line) = self.read_line() else {
            return 1;
        };
        let ifs = self.var("IFS");
        let mut rest = line.trim_start_matches(|c| ifs.contains(c));
        for (i, name) in names.iter().enumerate() {
            let value = if i + 1 == names.len() {
                rest.trim_end_matches(|c| ifs.contains(c)).to_owned()
            } else {
                let end = rest.find(|c| ifs.contains(c)).unwrap_or(rest.len());
                let (word, tail) = rest.split_at(end);
                rest = tail.trim_start_matches(|c| ifs.contains(c));
                word.to_owned()
            };
            self.set_var(name, value);
        }
        if names.is_empty() {
            self.set_var("REPLY", line);
        }
        0
    }

    /// `which`, `command -v`: a name on `PATH`, as the image has it.
    fn which(&mut self, args: &[String], builtins: bool) -> i32 {
        let mut status = 1;
        for name in args.iter().filter(|a| !a.starts_with('-')) {
            if builtins && (self.has_function(name) || is_shell_builtin(name)) {
                self.emit(format!("{name}\n").as_bytes());
                status = 0;
                continue;
            }
            let candidates: Vec<String> = if name.contains('/') {
                vec![name.clone()]
            } else {
                self.var("PATH")
                    .split(':')
                    .map(|dir| format!("{dir}/{name}"))
                    .collect()
            };
            if let Some(found) = candidates
                .into_iter()
                .find(|p| matches!(self.kind(p), Some(FileKind::File { executable: true })))
            {
                self.emit(format!("{found}\n").as_bytes());
                status = 0;
            }
        }
        status
    }

    /// `getent passwd|group NAME`, from the image's files and the accounts
    /// the script asked for so far.
    fn getent(&mut self, args: &[String]) -> i32 {
        let (Some(database), Some(key)) = (args.first(), args.get(1)) else {
            return 2;
        };
        let file = match database.as_str() {
            "passwd" => "/etc/passwd",
            "group" => "/etc/group",
            _ => {
                self.unknown(
                    &format!("getent {database}"),
                    "only passwd and group are known",
                );
                return 2;
            }
        };
        let text = self
            .read_file(file)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        if let Some(line) = text
            .lines()
            .find(|l| l.split(':').next() == Some(key.as_str()))
        {
            self.emit(format!("{line}\n").as_bytes());
            return 0;
        }
        let requested = self.effects.iter().any(|e| match e {
            Effect::User(u) => database == "passwd" && &u.name == key,
            Effect::Group { name, .. } => database == "group" && name == key,
            _ => false,
        });
        if requested {
            // The id is assigned later; scripts test existence only.
            self.emit(format!("{key}:x:::\n").as_bytes());
            return 0;
        }
        2
    }

    fn id(&mut self, args: &[String]) -> i32 {
        let Some(user) = args.iter().find(|a| !a.starts_with('-')) else {
            self.emit(b"0\n");
            return 0;
        };
        let found = self.getent(&["passwd".to_owned(), user.clone()]);
        i32::from(found != 0)
    }

    fn cat(&mut self, args: &[String]) -> i32 {
        let files: Vec<&String> = args
            .iter()
            .filter(|a| !a.starts_with('-') || *a == "-")
            .collect();
        if files.is_empty() {
            let input = self.take_input();
            self.emit(&input);
            return 0;
        }
        let mut status = 0;
        for file in files {
            let bytes = if file == "-" {
                Some(self.take_input())
            } else {
                self.read_file(file)
            };
            match bytes {
                Some(bytes) => self.emit(&bytes),
                None => status = 1,
            }
        }
        status
    }

    /// `cp`, `mv` and `install SRC DEST` / `install -d DIR…`.
    fn copy(&mut self, name: &str, args: &[String]) -> i32 {
        let mut mode = None;
        let mut directories = false;
        let mut paths = Vec::new();
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            match arg.as_str() {
                "-m" | "--mode" => mode = it.next().and_then(|m| parse_octal(m)),
                "-o" | "-g" | "--owner" | "--group" | "-t" => {
                    it.next();
                }
                "-d" if name == "install" => directories = true,
                a if a.starts_with('-') => {}
                a => paths.push(a.to_owned()),
            }
        }
        if directories {
            for dir in paths {
                self.set_change(
                    &dir,
                    Change::Dir {
                        mode: mode.unwrap_or(0o755),
                    },
                );
            }
            return 0;
        }
        let Some((dest, sources)) = paths.split_last() else {
            return 1;
        };
        let into_dir = self.kind(dest) == Some(FileKind::Dir);
        for source in sources {
            let target = if into_dir {
                format!("{dest}/{}", basename(source))
            } else {
                dest.clone()
            };
            if let Some(Change::Symlink(link)) = self.change(source).cloned() {
                self.set_change(&target, Change::Symlink(link));
            } else {
                let Some(bytes) = self.read_file(source) else {
                    self.unknown(
                        &format!("{name} {source} {dest}"),
                        "the source is not a file the evaluation can read",
                    );
                    return 1;
                };
                let mode = mode.or(match self.change(source) {
                    Some(Change::File { mode, .. }) => Some(*mode),
                    _ => match self.kind(source) {
                        Some(FileKind::File { executable: true }) => Some(0o755),
                        _ => Some(0o644),
                    },
                });
                self.write_file(&target, bytes, mode);
            }
            if name == "mv" {
                self.remove_path(source);
            }
        }
        0
    }

    fn remove(&mut self, args: &[String]) -> i32 {
        for path in args.iter().filter(|a| !a.starts_with('-')) {
            self.remove_path(path);
        }
        0
    }

    fn mkdir(&mut self, args: &[String]) -> i32 {
        let mut mode = 0o777 & !self.umask;
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            match arg.as_str() {
                "-m" | "--mode" => mode = it.next().and_then(|m| parse_octal(m)).unwrap_or(mode),
                a if a.starts_with('-') => {}
                dir => {
                    if self.kind(dir).is_none() {
                        self.set_change(dir, Change::Dir { mode });
                    }
                }
            }
        }
        0
    }

    fn ln(&mut self, args: &[String]) -> i32 {
        let mut symbolic = false;
        let mut no_deref = false;
        let mut paths = Vec::new();
        for arg in args {
            if let Some(flags) = arg.strip_prefix('-').filter(|f| !f.starts_with('-')) {
                symbolic |= flags.contains('s');
                no_deref |= flags.contains('n') || flags.contains('T');
            } else if arg == "--symbolic" {
                symbolic = true;
            } else if arg == "--no-dereference" || arg == "--no-target-directory" {
                no_deref = true;
            } else if !arg.starts_with('-') {
                paths.push(arg.clone());
            }
        }
        let (Some(target), Some(link), true) = (paths.first(), paths.get(1), symbolic) else {
            self.unknown(
                &format!("ln {}", args.join(" ")),
                "only `ln -s TARGET LINK` is evaluated",
            );
            return 1;
        };
        let link = if !no_deref && self.kind(link) == Some(FileKind::Dir) && !self.is_symlink(link)
        {
            format!("{link}/{}", basename(target))
        } else {
            link.clone()
        };
        self.set_change(&link, Change::Symlink(target.clone()));
        0
    }

    fn touch(&mut self, args: &[String]) -> i32 {
        for path in args.iter().filter(|a| !a.starts_with('-')) {
            if self.kind(path).is_none() {
                self.write_file(path, Vec::new(), Some(0o666 & !self.umask));
            }
        }
        0
    }

    fn chmod(&mut self, args: &[String]) -> i32 {
        // `-w`, `-x` are modes, not options.
        let words: Vec<&String> = args
            .iter()
            .filter(|a| !matches!(a.as_str(), "-R" | "-f" | "-v" | "-c") && !a.starts_with("--"))
            .collect();
        let Some((mode, paths)) = words.split_first() else {
            return 1;
        };
        if args.iter().any(|a| a == "-R") {
            self.unknown(
                &format!("chmod {}", args.join(" ")),
                "recursive changes are not evaluated",
            );
            return 0;
        }
        for path in paths {
            let current = match self.change(path) {
                Some(Change::File { mode, .. } | Change::Dir { mode }) => Some(*mode),
                _ => None,
            };
            let Some(new) = apply_mode(mode, current) else {
                self.unknown(
                    &format!("chmod {mode} {path}"),
                    "a symbolic mode of a packaged file is not evaluated",
                );
                continue;
            };
            match self.change(path).cloned() {
                Some(Change::File { bytes, .. }) => {
                    self.set_change(path, Change::File { bytes, mode: new });
                }
                Some(Change::Dir { .. }) => self.set_change(path, Change::Dir { mode: new }),
                Some(Change::Attributes { owner, group, .. }) => self.set_change(
                    path,
                    Change::Attributes {
                        mode: Some(new),
                        owner,
                        group,
                    },
                ),
                _ if self.kind(path).is_some() => self.set_change(
                    path,
                    Change::Attributes {
                        mode: Some(new),
                        owner: None,
                        group: None,
                    },
                ),
                _ => return 1,
            }
        }
        0
    }

    fn chown(&mut self, name: &str, args: &[String]) -> i32 {
        let words: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
        let Some((spec, paths)) = words.split_first() else {
            return 1;
        };
        let (owner, group) = if name == "chgrp" {
            (None, Some(spec.to_string()))
        } else {
            match spec.split_once([':', '.']) {
                Some((o, g)) => (
                    Some(o.to_owned()).filter(|o| !o.is_empty()),
                    Some(g.to_owned()).filter(|g| !g.is_empty()),
                ),
                None => (Some(spec.to_string()), None),
            }
        };
        let is_root = |v: &Option<String>| v.as_deref().is_none_or(|v| v == "root" || v == "0");
        for path in paths {
            match self.change(path).cloned() {
                Some(Change::Attributes { mode, .. }) => self.set_change(
                    path,
                    Change::Attributes {
                        mode,
                        owner: owner.clone(),
                        group: group.clone(),
                    },
                ),
                // What the script made is root's unless it says otherwise.
                Some(Change::File { .. } | Change::Dir { .. })
                    if !(is_root(&owner) && is_root(&group)) =>
                {
                    self.set_owner(path, owner.clone(), group.clone());
                }
                Some(Change::File { .. } | Change::Dir { .. }) => {}
                None if self.kind(path).is_some() => self.set_change(
                    path,
                    Change::Attributes {
                        mode: None,
                        owner: owner.clone(),
                        group: group.clone(),
                    },
                ),
                _ => {}
            }
        }
        0
    }

    fn mktemp(&mut self, args: &[String]) -> i32 {
        self.temp_files += 1;
        let path = format!("/tmp/strata-script.{}", self.temp_files);
        if args.iter().any(|a| a == "-d" || a == "--directory") {
            self.set_change(&path, Change::Dir { mode: 0o700 });
        } else {
            self.write_file(&path, Vec::new(), Some(0o600));
        }
        self.emit(format!("{path}\n").as_bytes());
        0
    }

    fn path_tool(&mut self, name: &str, args: &[String]) -> i32 {
        let words: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
        let Some(path) = words.first() else {
            return 1;
        };
        let out = match name {
            "basename" => {
                let base = basename(path);
                match words.get(1) {
                    Some(suffix) => base
                        .strip_suffix(suffix.as_str())
                        .unwrap_or(base)
                        .to_owned(),
                    None => base.to_owned(),
                }
            }
            "dirname" => match path.trim_end_matches('/').rsplit_once('/') {
                Some(("", _)) => "/".to_owned(),
                Some((dir, _)) => dir.to_owned(),
                None => ".".to_owned(),
            },
            "readlink"
                if !args
                    .iter()
                    .any(|a| a.starts_with("-f") || a.starts_with("-m") || a.starts_with("-e")) =>
            {
                match self.change(path) {
                    Some(Change::Symlink(target)) => target.clone(),
                    _ => return 1,
                }
            }
            "dpkg-realpath" => self.absolute(path),
            _ => match self.change(path) {
                Some(Change::Symlink(target)) => {
                    let parent = path.rsplit_once('/').map_or("", |(p, _)| p);
                    let target = if target.starts_with('/') {
                        target.clone()
                    } else {
                        format!("{parent}/{target}")
                    };
                    self.files.canonical(&self.absolute(&target))
                }
                _ => self.files.canonical(&self.absolute(path)),
            },
        };
        self.emit(format!("{out}\n").as_bytes());
        0
    }

    fn md5sum(&mut self, args: &[String]) -> i32 {
        use md5::{Digest, Md5};
        let files: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
        if files.is_empty() {
            let input = self.take_input();
            self.emit(format!("{}  -\n", hex(&Md5::digest(&input))).as_bytes());
            return 0;
        }
        let mut status = 0;
        for file in files {
            match self.read_file(file) {
                Some(bytes) => {
                    self.emit(format!("{}  {file}\n", hex(&Md5::digest(&bytes))).as_bytes());
                }
                None => status = 1,
            }
        }
        status
    }

    /// `awk '{print $N}'`, the one program scripts use to cut a field.
    fn awk(&mut self, args: &[String]) -> i32 {
        let words: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
        let field = words.first().and_then(|p| {
            p.trim()
                .strip_prefix("{print $")?
                .strip_suffix('}')?
                .trim()
                .parse::<usize>()
                .ok()
        });
        let Some(field) = field else {
            self.unknown(
                &format!("awk {}", args.join(" ")),
                "only `{print $N}` is evaluated",
            );
            return 0;
        };
        let text = match words.get(1) {
            Some(file) => self.read_file(file).unwrap_or_default(),
            None => self.take_input(),
        };
        let mut out = String::new();
        for line in String::from_utf8_lossy(&text).lines() {
            let value = if field == 0 {
                line
            } else {
                line.split_whitespace().nth(field - 1).unwrap_or_default()
            };
            out.push_str(value);
            out.push('\n');
        }
        self.emit(out.as_bytes());
        0
    }

    /// `sort [-u]` and `uniq [-c]` on standard input, in the C locale.
    fn sort(&mut self, name: &str, args: &[String]) -> i32 {
        let input = String::from_utf8_lossy(&self.take_input()).into_owned();
        let mut lines: Vec<&str> = input.lines().collect();
        let mut out = String::new();
        if name == "sort" {
            lines.sort_unstable();
            if args.iter().any(|a| a == "-u") {
                lines.dedup();
            }
            for line in lines {
                out.push_str(line);
                out.push('\n');
            }
        } else {
            let count = args.iter().any(|a| a == "-c");
            let mut runs: Vec<(usize, &str)> = Vec::new();
            for line in lines {
                match runs.last_mut() {
                    Some((n, last)) if *last == line => *n += 1,
                    _ => runs.push((1, line)),
                }
            }
            for (n, line) in runs {
                if count {
                    out.push_str(&format!("{n:>7} {line}\n"));
                } else {
                    out.push_str(line);
                    out.push('\n');
                }
            }
        }
        self.emit(out.as_bytes());
        0
    }

    /// `stat -c FORMAT PATH` for the mode and numeric owner (`%a %u %g`).
    fn stat(&mut self, args: &[String]) -> i32 {
        let mut format = None;
        let mut paths = Vec::new();
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            match arg.as_str() {
                "-c" | "--format" => format = it.next().cloned(),
                a if a.starts_with("--format=") => format = Some(a["--format=".len()..].to_owned()),
                a if a.starts_with('-') => {}
                a => paths.push(a.to_owned()),
            }
        }
        let (Some(format), [path]) = (format, paths.as_slice()) else {
            self.unknown(
                &format!("stat {}", args.join(" ")),
                "only `stat -c FORMAT PATH` is evaluated",
            );
            return 1;
        };
        let Some((mode, uid, gid)) = self.files.attributes(&self.absolute(path)) else {
            return 1;
        };
        let mut out = String::new();
        let mut chars = format.chars();
        while let Some(c) = chars.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            match chars.next() {
                Some('a') => out.push_str(&format!("{:o}", mode & 0o7777)),
                Some('u') => out.push_str(&uid.to_string()),
                Some('g') => out.push_str(&gid.to_string()),
                other => {
                    self.unknown(
                        &format!("stat -c {format} {path}"),
                        format!("`%{}` is not evaluated", other.unwrap_or(' ')),
                    );
                    return 1;
                }
            }
        }
        out.push('\n');
        self.emit(out.as_bytes());
        0
    }

    /// `tr SET1 SET2` with ranges and `[:upper:]`/`[:lower:]`; `tr -d SET`.
    fn tr(&mut self, args: &[String]) -> i32 {
        let expand = |set: &str| -> Vec<char> {
            let set = unescape(set)
                .replace("[:upper:]", "A-Z")
                .replace("[:lower:]", "a-z")
                .replace("[:digit:]", "0-9");
            let chars: Vec<char> = set.chars().collect();
            let mut out = Vec::new();
            let mut i = 0;
            while i < chars.len() {
                if chars.get(i + 1) == Some(&'-') && i + 2 < chars.len() {
                    out.extend(chars[i]..=chars[i + 2]);
                    i += 3;
                } else {
                    out.push(chars[i]);
                    i += 1;
                }
            }
            out
        };
        let input = String::from_utf8_lossy(&self.take_input()).into_owned();
        let out: String = match args {
            [flag, set] if flag == "-d" => {
                let set = expand(set);
                input.chars().filter(|c| !set.contains(c)).collect()
            }
            [from, to] if !from.starts_with('-') => {
                let (from, to) = (expand(from), expand(to));
                input
                    .chars()
                    .map(|c| match from.iter().position(|f| *f == c) {
                        Some(i) => *to.get(i).or(to.last()).unwrap_or(&c),
                        None => c,
                    })
                    .collect()
            }
            _ => {
                self.unknown(&format!("tr {}", args.join(" ")), "not evaluated");
                input
            }
        };
        self.emit(out.as_bytes());
        0
    }

    /// `sed` with `s///` and `/re/d` commands, on files (`-i`) or input.
    fn sed(&mut self, args: &[String]) -> i32 {
        let mut scripts = Vec::new();
        let mut in_place = false;
        let mut extended = false;
        let mut quiet = false;
        let mut files = Vec::new();
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            match arg.as_str() {
                "-e" | "--expression" => scripts.extend(it.next().cloned()),
                "-E" | "-r" | "--regexp-extended" => extended = true,
                "-n" | "--quiet" | "--silent" => quiet = true,
                a if a.starts_with("-i") || a == "--in-place" => in_place = true,
                a if a.starts_with('-') && a.len() > 1 => {
                    for flag in a[1..].chars() {
                        match flag {
                            'i' => in_place = true,
                            'E' | 'r' => extended = true,
                            'n' => quiet = true,
                            // `-ne SCRIPT`: the script follows.
                            'e' => scripts.extend(it.next().cloned()),
                            _ => {}
                        }
                    }
                }
                a if scripts.is_empty() => scripts.push(a.to_owned()),
                a => files.push(a.to_owned()),
            }
        }
        let mut commands = Vec::new();
        for script in &scripts {
            for part in script.split(['\n', ';']).filter(|p| !p.trim().is_empty()) {
                match SedCommand::parse(part.trim(), extended) {
                    Some(c) => commands.push(c),
                    None => {
                        self.unknown(
                            &format!("sed {script}"),
                            "only `s///` and `/re/d` are evaluated",
                        );
                        return 0;
                    }
                }
            }
        }
        let apply = |text: &str| -> String {
            let mut out = String::new();
            for line in text.split_inclusive('\n') {
                let (body, newline) = match line.strip_suffix('\n') {
                    Some(b) => (b, "\n"),
                    None => (line, ""),
                };
                let mut body = body.to_owned();
                let mut deleted = false;
                for command in &commands {
                    match command {
                        SedCommand::Substitute {
                            re,
                            replacement,
                            global,
                            print,
                        } => {
                            if re.is_match(&body) {
                                body = if *global {
                                    re.replace_all(&body, replacement.as_str()).into_owned()
                                } else {
                                    re.replace(&body, replacement.as_str()).into_owned()
                                };
                                if *print {
                                    out.push_str(&body);
                                    out.push('\n');
                                }
                            }
                        }
                        SedCommand::Delete { re, unless } => {
                            if re.is_match(&body) != *unless {
                                deleted = true;
                                break;
                            }
                        }
                        SedCommand::Print(re) => {
                            if re.is_match(&body) {
                                out.push_str(&body);
                                out.push('\n');
                            }
                        }
                    }
                }
                if !deleted && !quiet {
                    out.push_str(&body);
                    out.push_str(newline);
                }
            }
            out
        };
        if files.is_empty() {
            let input = String::from_utf8_lossy(&self.take_input()).into_owned();
            let out = apply(&input);
            self.emit(out.as_bytes());
            return 0;
        }
        for file in files {
            let Some(bytes) = self.read_file(&file) else {
                return 2;
            };
            let out = apply(&String::from_utf8_lossy(&bytes));
            if in_place {
                self.write_file(&file, out.into_bytes(), None);
            } else {
                self.emit(out.as_bytes());
            }
        }
        0
    }

    fn grep(&mut self, args: &[String]) -> i32 {
        let (mut quiet, mut invert, mut extended, mut fixed, mut whole) =
            (false, false, false, false, false);
        let mut words = Vec::new();
        for arg in args {
            match arg
                .strip_prefix('-')
                .filter(|a| !a.is_empty() && !a.starts_with('-'))
            {
                Some(flags) => {
                    for f in flags.chars() {
                        match f {
                            'q' | 's' => quiet |= f == 'q',
                            'v' => invert = true,
                            'E' => extended = true,
                            'F' => fixed = true,
                            'x' => whole = true,
                            _ => {}
                        }
                    }
                }
                None => words.push(arg.clone()),
            }
        }
        let Some((pattern, files)) = words.split_first() else {
            return 2;
        };
        let mut source = if fixed {
            regex::escape(pattern)
        } else if extended {
            pattern.clone()
        } else {
            basic_to_regex(pattern)
        };
        if whole {
            source = format!("^(?:{source})$");
        }
        let Ok(re) = Regex::new(&source) else {
            self.unknown(&format!("grep {pattern}"), "the pattern is not understood");
            return 2;
        };
        let text = if files.is_empty() {
            String::from_utf8_lossy(&self.take_input()).into_owned()
        } else {
            files
                .iter()
                .filter_map(|f| self.read_file(f))
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .collect()
        };
        let mut found = false;
        for line in text.lines() {
            if re.is_match(line) != invert {
                found = true;
                if !quiet {
                    self.emit(format!("{line}\n").as_bytes());
                }
            }
        }
        i32::from(!found)
    }

    fn expr(&mut self, args: &[String]) -> i32 {
        let value = match args {
            [a, op, b] => {
                let (x, y) = (a.parse::<i64>(), b.parse::<i64>());
                match (op.as_str(), x, y) {
                    ("+", Ok(x), Ok(y)) => x.saturating_add(y).to_string(),
                    ("-", Ok(x), Ok(y)) => x.saturating_sub(y).to_string(),
                    ("*", Ok(x), Ok(y)) => x.saturating_mul(y).to_string(),
                    ("/", Ok(x), Ok(y)) if y != 0 => (x / y).to_string(),
                    ("%", Ok(x), Ok(y)) if y != 0 => (x % y).to_string(),
                    ("=", ..) => u8::from(a == b).to_string(),
                    ("!=", ..) => u8::from(a != b).to_string(),
                    _ => {
                        self.unknown(&format!("expr {}", args.join(" ")), "not evaluated");
                        return 2;
                    }
                }
            }
            [a] => a.clone(),
            _ => {
                self.unknown(&format!("expr {}", args.join(" ")), "not evaluated");
                return 2;
            }
        };
        let status = i32::from(value == "0" || value.is_empty());
        self.emit(format!("{value}\n").as_bytes());
        status
    }

    fn dpkg(&mut self, args: &[String]) -> i32 {
        match args.first().map(String::as_str) {
            Some("--print-architecture") => {
                let arch = self.context.architecture.to_owned();
                self.emit(format!("{arch}\n").as_bytes());
                0
            }
            Some("--compare-versions") => match args {
                [_, a, op, b] => i32::from(!compare_versions(a, op, b)),
                _ => 2,
            },
            Some(a) if a.starts_with("--assert-") || a.starts_with("--validate-") => 0,
            Some("-L" | "--listfiles") => {
                let mut status = 0;
                for package in &args[1..] {
                    let name = package.split(':').next().unwrap_or(package);
                    match self.files.package_files(name) {
                        Some(paths) => {
                            for path in paths {
                                self.emit(format!("{path}\n").as_bytes());
                            }
                        }
                        None => status = 1,
                    }
                }
                status
            }
            _ => {
                self.unknown(&format!("dpkg {}", args.join(" ")), "not evaluated");
                0
            }
        }
    }

    /// `dpkg-query`: whether packages are installed (its status); the
    /// output formats are not reproduced.
    fn dpkg_query(&mut self, args: &[String]) -> i32 {
        let packages: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
        let listing = args.iter().any(|a| {
            matches!(
                a.as_str(),
                "-l" | "--list" | "-s" | "--status" | "-W" | "--show"
            )
        });
        if !listing
            || args
                .iter()
                .any(|a| a.starts_with("-f") || a.starts_with("--showformat"))
        {
            self.unknown(
                &format!("dpkg-query {}", args.join(" ")),
                "its output is not reproduced",
            );
            return 0;
        }
        let all = packages.iter().all(|p| {
            let name = p.split(':').next().unwrap_or(p);
            self.files.package_files(name).is_some()
        });
        i32::from(!all)
    }

    /// No diversions exist in an image strata builds: listing prints
    /// nothing, the true name is the name, adding and removing change
    /// nothing (packages ship their files where dpkg would leave them).
    fn dpkg_divert(&mut self, args: &[String]) -> i32 {
        if let Some(i) = args.iter().position(|a| a == "--truename")
            && let Some(path) = args.get(i + 1)
        {
            self.emit(format!("{path}\n").as_bytes());
        }
        0
    }

    fn update_alternatives(&mut self, args: &[String]) -> i32 {
        let args: Vec<&String> = args
            .iter()
            .filter(|a| !matches!(a.as_str(), "--quiet" | "--force" | "--verbose"))
            .collect();
        match args.first().map(|a| a.as_str()) {
            Some("--install") => {
                let [link, name, path, priority, rest @ ..] = &args[1..] else {
                    self.unknown("update-alternatives --install", "it has too few arguments");
                    return 2;
                };
                let Ok(priority) = priority.parse::<i64>() else {
                    self.unknown(
                        &format!("update-alternatives --install {link} {name} {path} {priority}"),
                        "the priority is not a number",
                    );
                    return 2;
                };
                let mut slaves = Vec::new();
                let mut rest = rest;
                while let [flag, l, n, p, tail @ ..] = rest {
                    if flag.as_str() != "--slave" {
                        break;
                    }
                    slaves.push(((*l).clone(), (*n).clone(), (*p).clone()));
                    rest = tail;
                }
                if !rest.is_empty() {
                    self.unknown(
                        &format!("update-alternatives --install {link} {name}"),
                        "arguments after the slaves are not understood",
                    );
                }
                self.effects.push(Effect::Alternative(Alternative {
                    link: (*link).clone(),
                    name: (*name).clone(),
                    path: (*path).clone(),
                    priority,
                    slaves,
                }));
                0
            }
            Some("--list" | "--query") => {
                let name = args.get(1).map(|s| s.as_str()).unwrap_or_default();
                let paths: Vec<String> = self
                    .effects
                    .iter()
                    .filter_map(|e| match e {
                        Effect::Alternative(a) if a.name == name => Some(a.path.clone()),
                        _ => None,
                    })
                    .collect();
                if paths.is_empty() {
                    return 2;
                }
                if args[0] == "--list" {
                    for p in paths {
                        self.emit(format!("{p}\n").as_bytes());
                    }
                }
                0
            }
            // --remove, --auto, --set on a fresh install: dpkg's choice by
            // priority stands.
            _ => 0,
        }
    }

    /// `ucf NEW DEST`: the config file DEST gets NEW's content, as on a
    /// first install.
    fn ucf(&mut self, args: &[String]) -> i32 {
        let words: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
        if args.iter().any(|a| a == "--purge" || a == "-p") {
            return 0;
        }
        let [new, dest] = words.as_slice() else {
            self.unknown(
                &format!("ucf {}", args.join(" ")),
                "expected `ucf NEW DEST`",
            );
            return 1;
        };
        match self.read_file(new) {
            Some(bytes) => {
                use md5::{Digest, Md5};
                let mode = match self.change(new) {
                    Some(Change::File { mode, .. }) => Some(*mode),
                    _ => Some(0o644),
                };
                // ucf's own state: the file's hash, and a copy it merges
                // future versions against.
                let dest = self.absolute(dest);
                let line = format!("{}  {dest}\n", hex(&Md5::digest(&bytes)));
                let mut hashfile = self.read_file(UCF_HASHFILE).unwrap_or_default();
                hashfile.extend_from_slice(line.as_bytes());
                self.write_file(UCF_HASHFILE, hashfile, Some(0o644));
                let cached = format!("/var/lib/ucf/cache/{}", dest.replace('/', ":"));
                self.set_change("/var/lib/ucf/cache", Change::Dir { mode: 0o755 });
                self.write_file(&cached, bytes.clone(), Some(0o644));
                self.write_file(&dest, bytes, mode);
                0
            }
            None => {
                self.unknown(&format!("ucf {new} {dest}"), "the new file cannot be read");
                1
            }
        }
    }

    fn statoverride(&mut self, args: &[String]) -> i32 {
        let words: Vec<&String> = args
            .iter()
            .filter(|a| {
                !matches!(
                    a.as_str(),
                    "--update" | "--quiet" | "--force" | "--force-all"
                )
            })
            .collect();
        match words.first().map(|a| a.as_str()) {
            Some("--list") => {
                let path = words.get(1).map(|s| s.as_str()).unwrap_or("*");
                let found: Vec<String> = self
                    .effects
                    .iter()
                    .filter_map(|e| match e {
                        Effect::StatOverride {
                            owner,
                            group,
                            mode,
                            path: p,
                        } if glob_match(path, p) => Some(format!("{owner} {group} {mode:o} {p}\n")),
                        _ => None,
                    })
                    .collect();
                for line in &found {
                    self.emit(line.as_bytes());
                }
                i32::from(found.is_empty())
            }
            Some("--add") => {
                let [_, owner, group, mode, path] = words.as_slice() else {
                    self.unknown("dpkg-statoverride --add", "expected USER GROUP MODE PATH");
                    return 2;
                };
                let Some(mode) = parse_octal(mode) else {
                    self.unknown("dpkg-statoverride --add", "the mode is not octal");
                    return 2;
                };
                self.effects.push(Effect::StatOverride {
                    owner: (*owner).clone(),
                    group: (*group).clone(),
                    mode,
                    path: (*path).clone(),
                });
                0
            }
            _ => 0,
        }
    }

    /// `adduser`/`addgroup`/`useradd`/`groupadd` for system accounts.
    fn account(&mut self, name: &str, args: &[String]) -> i32 {
        let mut user = SystemUser {
            name: String::new(),
            home: None,
            shell: None,
            gecos: None,
            own_group: false,
            group: None,
            uid: None,
        };
        let mut system = false;
        let mut group_only = name == "addgroup" || name == "groupadd";
        let mut gid = None;
        let mut names = Vec::new();
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let mut value = || it.next().cloned();
            match arg.as_str() {
                "--system" | "-r" => system = true,
                "--group" if name == "adduser" => user.own_group = true,
                "--group" => group_only = true,
                "-U" | "--user-group" => user.own_group = true,
                "--home" | "-d" | "--home-dir" => user.home = value(),
                "--shell" | "-s" => user.shell = value(),
                "--gecos" | "--comment" | "-c" => user.gecos = value(),
                "--ingroup" | "-g" | "--gid" if !group_only => {
                    let v = value();
                    match v.as_deref().map(str::parse::<u32>) {
                        Some(Ok(_)) => {}
                        _ => user.group = v,
                    }
                }
                "--gid" | "-g" => gid = value().and_then(|v| v.parse().ok()),
                "--uid" | "-u" => user.uid = value().and_then(|v| v.parse().ok()),
                "-G" | "--groups" | "--add-extra-groups" | "--firstuid" | "--lastuid"
                | "--firstgid" | "--lastgid" | "--conf" | "-K" | "-k" | "-e" | "-f" | "-p" => {
                    value();
                }
                a if a.starts_with('-') => {}
                a => names.push(a.to_owned()),
            }
        }
        match names.as_slice() {
            [account] if group_only => {
                if !system {
                    self.unknown(
                        &format!("{name} {account}"),
                        "only system groups are created",
                    );
                }
                self.effects.push(Effect::Group {
                    name: account.clone(),
                    gid,
                });
            }
            [account] if system => {
                user.name = account.clone();
                self.effects.push(Effect::User(user));
            }
            [account, group] if name == "adduser" => self.effects.push(Effect::Member {
                user: account.clone(),
                group: group.clone(),
            }),
            _ => self.unknown(
                &format!("{name} {}", args.join(" ")),
                "only system accounts and group membership are created",
            ),
        }
        0
    }

    /// debconf: `db_get` answers from preseeding, else the template's
    /// default, as the noninteractive frontend would.
    fn debconf(&mut self, command: &str, args: &[String]) -> i32 {
        match command {
            "db_get" => {
                let Some(question) = args.first() else {
                    return 10;
                };
                let answer = self
                    .context
                    .answers
                    .get(question)
                    .cloned()
                    .or_else(|| template_default(self.context.templates?, question));
                match answer {
                    Some(value) => {
                        self.set_var("RET", value);
                        0
                    }
                    None => {
                        self.set_var("RET", String::new());
                        10
                    }
                }
            }
            // `db_metaget QUESTION FIELD` answers from `QUESTION:FIELD`.
            "db_metaget" => {
                let key = args.join(":");
                let value = self.context.answers.get(&key).cloned().unwrap_or_default();
                self.set_var("RET", value);
                0
            }
            _ => 0,
        }
    }
}

/// A template's `Default:` in a debconf templates file.
fn template_default(templates: &str, question: &str) -> Option<String> {
    let mut current = false;
    for line in templates.lines() {
        if let Some(name) = line.strip_prefix("Template:") {
            current = name.trim() == question;
        } else if current && let Some(value) = line.strip_prefix("Default:") {
            return Some(value.trim().to_owned());
        }
    }
    None
}

/// `uname -m` for a Debian architecture.
fn machine(architecture: &str) -> &'static str {
    match architecture {
        "amd64" => "x86_64",
        "arm64" => "aarch64",
        "armhf" | "armel" => "armv7l",
        "i386" => "i686",
        "ppc64el" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        _ => "unknown",
    }
}

fn is_shell_builtin(name: &str) -> bool {
    matches!(
        name,
        ":" | "true"
            | "false"
            | "echo"
            | "printf"
            | "test"
            | "["
            | "read"
            | "set"
            | "unset"
            | "export"
            | "local"
            | "eval"
            | "exit"
            | "return"
            | "shift"
            | "command"
            | "type"
            | "cd"
            | "umask"
            | "trap"
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn basename(path: &str) -> &str {
    path.trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(path)
}

fn parse_octal(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return None;
    }
    u32::from_str_radix(text, 8).ok().filter(|m| *m <= 0o7777)
}

/// An octal mode, or a symbolic one applied to a known current mode.
fn apply_mode(spec: &str, current: Option<u32>) -> Option<u32> {
    if let Some(mode) = parse_octal(spec) {
        return Some(mode);
    }
    let mut mode = current?;
    for clause in spec.split(',') {
        let op_at = clause.find(['+', '-', '='])?;
        let (who, rest) = clause.split_at(op_at);
        let (op, perms) = rest.split_at(1);
        let mut mask = 0;
        for w in if who.is_empty() {
            "a".chars()
        } else {
            who.chars()
        } {
            mask |= match w {
                'u' => 0o4700,
                'g' => 0o2070,
                'o' => 0o0007,
                'a' => 0o6777,
                _ => return None,
            };
        }
        let mut bits = 0;
        for p in perms.chars() {
            bits |= match p {
                'r' => 0o444,
                'w' => 0o222,
                'x' => 0o111,
                's' => 0o6000,
                't' => 0o1000,
                _ => return None,
            };
        }
        bits &= mask;
        mode = match op {
            "+" => mode | bits,
            "-" => mode & !bits,
            _ => (mode & !mask) | bits,
        };
    }
    Some(mode)
}

/// `dpkg --compare-versions`: an empty version is earlier than any other,
/// except for the `-nl` operators where it is later.
fn compare_versions(a: &str, op: &str, b: &str) -> bool {
    use std::cmp::Ordering;
    let empty_last = op.ends_with("-nl");
    let order = match (a.is_empty(), b.is_empty()) {
        (true, true) => Ordering::Equal,
        (true, false) if empty_last => Ordering::Greater,
        (true, false) => Ordering::Less,
        (false, true) if empty_last => Ordering::Less,
        (false, true) => Ordering::Greater,
        (false, false) => match (Version::parse(a), Version::parse(b)) {
            (Ok(x), Ok(y)) => x.cmp(&y),
            _ => return false,
        },
    };
    match op.trim_end_matches("-nl") {
        "lt" | "<<" | "<" => order == Ordering::Less,
        "le" | "<=" => order != Ordering::Greater,
        "eq" | "=" => order == Ordering::Equal,
        "ne" => order != Ordering::Equal,
        "ge" | ">=" => order != Ordering::Less,
        "gt" | ">>" | ">" => order == Ordering::Greater,
        _ => false,
    }
}

/// `echo`'s and `printf`'s backslash escapes.
fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('\\') => out.push('\\'),
            Some('c') => break,
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// A POSIX basic regular expression in the `regex` crate's syntax: in a
/// BRE, `\( \) \{ \} \+ \? \|` are operators and the bare characters are
/// literals.
fn basic_to_regex(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(op @ ('(' | ')' | '{' | '}' | '+' | '?' | '|')) => out.push(op),
                Some(other) => {
                    out.push('\\');
                    out.push(other);
                }
                None => out.push_str("\\\\"),
            },
            '(' | ')' | '{' | '}' | '+' | '?' | '|' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

enum SedCommand {
    Substitute {
        re: Regex,
        replacement: String,
        global: bool,
        print: bool,
    },
    /// `/re/d`, or `/re/!d` (`unless`).
    Delete { re: Regex, unless: bool },
    /// `/re/p`.
    Print(Regex),
}

impl SedCommand {
    fn parse(text: &str, extended: bool) -> Option<SedCommand> {
        let regex = |source: &str| {
            let source = if extended {
                source.to_owned()
            } else {
                basic_to_regex(source)
            };
            Regex::new(&source).ok()
        };
        if let Some(rest) = text.strip_prefix('s') {
            let delimiter = rest.chars().next()?;
            let parts = split_unescaped(&rest[delimiter.len_utf8()..], delimiter);
            let [pattern, replacement, flags] = parts.as_slice() else {
                return None;
            };
            if !flags.chars().all(|f| f == 'g' || f == 'p') {
                return None;
            }
            return Some(SedCommand::Substitute {
                re: regex(pattern)?,
                replacement: sed_replacement(replacement),
                global: flags.contains('g'),
                print: flags.contains('p'),
            });
        }
        let (address, command) = text.strip_prefix('/')?.rsplit_once('/')?;
        let re = regex(&address.replace("\\/", "/"))?;
        match command.trim() {
            "d" => Some(SedCommand::Delete { re, unless: false }),
            "!d" => Some(SedCommand::Delete { re, unless: true }),
            "p" => Some(SedCommand::Print(re)),
            _ => None,
        }
    }
}

/// Splits at an unescaped delimiter; an escaped delimiter becomes literal.
fn split_unescaped(text: &str, delimiter: char) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some(d) if d == delimiter => parts.last_mut().map(|p| p.push(d)).unwrap_or(()),
                Some(other) => {
                    if let Some(p) = parts.last_mut() {
                        p.push('\\');
                        p.push(other);
                    }
                }
                None => {}
            }
        } else if c == delimiter {
            parts.push(String::new());
        } else if let Some(p) = parts.last_mut() {
            p.push(c);
        }
    }
    parts
}

/// sed's replacement (`&`, `\1`, `\x`) in the `regex` crate's syntax.
fn sed_replacement(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '&' => out.push_str("${0}"),
            '$' => out.push_str("$$"),
            '\\' => match chars.next() {
                Some(d) if d.is_ascii_digit() => out.push_str(&format!("${{{d}}}")),
                Some('n') => out.push('\n'),
                Some('$') => out.push_str("$$"),
                Some(other) => out.push(other),
                None => {}
            },
            c => out.push(c),
        }
    }
    out
}
