//! The interpreter: control flow, word expansion, redirections and the
//! overlay of files a script writes. Commands themselves are in
//! `commands.rs`.

use std::collections::HashMap;

use brush_parser::ParserOptions;
use brush_parser::ast::SourceLocation;
use brush_parser::ast::{
    self, AndOr, Command, CommandPrefixOrSuffixItem, CompoundCommand, CompoundList,
    IoFileRedirectKind, IoFileRedirectTarget, IoRedirect, Pipeline, SimpleCommand,
};
use brush_parser::word::{self, Parameter, ParameterExpr, SpecialParameter, WordPiece};

use super::{Change, Context, Effect, Evaluation, FileKind, Files, Overlay, Unknown};

/// Commands a script may run before the evaluation gives up: loops over
/// what the script reads are bounded by the input, but a `while :` is not.
const MAX_STEPS: usize = 100_000;
/// Nesting of functions and command substitutions.
const MAX_DEPTH: usize = 64;
/// What one command may write to a pipe or a file.
const MAX_OUTPUT: usize = 16 << 20;
/// Brackets nested deeper than this are not parsed; real scripts nest a
/// handful of levels.
const MAX_NESTING: usize = 200;
/// Scripts larger than this are not parsed: real ones are kilobytes.
const MAX_SCRIPT: usize = 1 << 20;
/// What one script may write to files in all.
const MAX_WRITTEN: usize = 64 << 20;
/// The `PATH` dpkg runs maintainer scripts with.
const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// How a list of commands ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Flow {
    Next,
    Exit,
    Return,
    Break(u32),
    Continue(u32),
}

/// Where a command's standard output goes.
enum Sink {
    Inherit,
    Discard,
    File { path: String, append: bool },
}

pub(crate) struct Shell<'a> {
    pub(super) files: &'a dyn Files,
    pub(super) context: &'a Context<'a>,
    vars: HashMap<String, String>,
    positional: Vec<String>,
    functions: HashMap<String, ast::FunctionBody>,
    pub(super) overlay: Overlay,
    /// Owners given to files the script made: applied after them.
    owners: std::collections::BTreeMap<String, (Option<String>, Option<String>)>,
    pub(super) effects: Vec<Effect>,
    unknown: Vec<Unknown>,
    /// Output captured for pipes and command substitutions, innermost last.
    captures: Vec<Vec<u8>>,
    /// Standard input of the running command, with a read position for
    /// `read` loops; innermost last.
    inputs: Vec<(Vec<u8>, usize)>,
    pub(super) status: i32,
    steps: usize,
    depth: usize,
    pub(super) line: usize,
    /// Lines before the text being run: a command substitution's commands
    /// are reported at the script's line, not the substitution's.
    line_offset: usize,
    pub(super) temp_files: usize,
    /// Bytes written to files so far.
    written: usize,
    /// Permission bits new files and folders do not get.
    pub(super) umask: u32,
    stopped: bool,
}

impl<'a> Shell<'a> {
    pub(super) fn new(files: &'a dyn Files, context: &'a Context<'a>) -> Shell<'a> {
        let mut vars = HashMap::new();
        for (name, value) in [
            ("PATH", PATH),
            ("DPKG_MAINTSCRIPT_ARCH", context.architecture),
            ("DPKG_MAINTSCRIPT_PACKAGE", context.package),
            ("DPKG_MAINTSCRIPT_NAME", "postinst"),
            ("DEBIAN_FRONTEND", "noninteractive"),
            ("IFS", " \t\n"),
            ("HOME", "/root"),
        ] {
            vars.insert(name.to_owned(), value.to_owned());
        }
        Shell {
            files,
            context,
            vars,
            positional: Vec::new(),
            functions: HashMap::new(),
            overlay: Overlay::new(),
            owners: Default::default(),
            effects: Vec::new(),
            unknown: Vec::new(),
            captures: Vec::new(),
            inputs: Vec::new(),
            status: 0,
            steps: 0,
            depth: 0,
            line: 0,
            line_offset: 0,
            temp_files: 0,
            written: 0,
            umask: 0o022,
            stopped: false,
        }
    }

    pub(super) fn run_script(&mut self, script: &str, args: &[String]) {
        self.positional = args.to_vec();
        if let Some(program) = self.parse(script) {
            for list in &program.complete_commands {
                if self.run_list(list) != Flow::Next {
                    break;
                }
            }
        }
    }

    pub(super) fn finish(self) -> Evaluation {
        let mut effects = self.effects;
        for (path, change) in self.overlay {
            if is_temporary(&path) {
                continue;
            }
            let owner = self.owners.get(&path).cloned();
            effects.push(Effect::Path {
                path: path.clone(),
                change,
            });
            if let Some((owner, group)) = owner {
                effects.push(Effect::Path {
                    path,
                    change: Change::Attributes {
                        mode: None,
                        owner,
                        group,
                    },
                });
            }
        }
        Evaluation {
            effects,
            unknown: self.unknown,
        }
    }

    fn parse(&mut self, text: &str) -> Option<ast::Program> {
        let options = ParserOptions {
            sh_mode: true,
            ..ParserOptions::default()
        };
        if text.len() > MAX_SCRIPT {
            self.unknown("the script", "it is over 1 MiB: not evaluated");
            return None;
        }
        // The parser recurses on nesting: a pathologically deep script
        // would overflow the stack, which no one can catch.
        if bracket_depth(text) > MAX_NESTING {
            self.unknown("the script", "its brackets nest too deeply: not evaluated");
            return None;
        }
        let mut parser =
            brush_parser::Parser::new(std::io::BufReader::new(text.as_bytes()), &options);
        // The parser is a dependency that unwraps internally: a script it
        // cannot handle must become a report, not end the build.
        let parsed =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| parser.parse_program()));
        match parsed {
            Ok(Ok(program)) => Some(program),
            Ok(Err(error)) => {
                self.unknown("the script", format!("it cannot be parsed: {error}"));
                None
            }
            Err(_) => {
                self.unknown("the script", "the shell parser failed on it");
                None
            }
        }
    }

    /// Records a command whose effect is not known.
    pub(super) fn unknown(&mut self, command: &str, reason: impl Into<String>) {
        self.unknown.push(Unknown {
            line: self.line,
            command: command.to_owned(),
            reason: reason.into(),
        });
    }

    fn run_list(&mut self, list: &CompoundList) -> Flow {
        for item in &list.0 {
            let flow = self.run_and_or(&item.0);
            if flow != Flow::Next {
                return flow;
            }
        }
        Flow::Next
    }

    fn run_and_or(&mut self, list: &ast::AndOrList) -> Flow {
        let flow = self.run_pipeline(&list.first);
        if flow != Flow::Next {
            return flow;
        }
        for next in &list.additional {
            let (pipeline, wanted) = match next {
                AndOr::And(p) => (p, true),
                AndOr::Or(p) => (p, false),
            };
            if (self.status == 0) == wanted {
                let flow = self.run_pipeline(pipeline);
                if flow != Flow::Next {
                    return flow;
                }
            }
        }
        Flow::Next
    }

    fn run_pipeline(&mut self, pipeline: &Pipeline) -> Flow {
        let mut flow = Flow::Next;
        let last = pipeline.seq.len().saturating_sub(1);
        let mut piped: Option<Vec<u8>> = None;
        for (i, command) in pipeline.seq.iter().enumerate() {
            if let Some(input) = piped.take() {
                self.inputs.push((input, 0));
            }
            let pushed_input = i > 0;
            if i < last {
                self.captures.push(Vec::new());
            }
            flow = self.run_command(command);
            if i < last {
                piped = self.captures.pop();
            }
            if pushed_input {
                self.inputs.pop();
            }
            // `exit` inside a pipeline ends only its subshell.
            if pipeline.seq.len() > 1 && flow == Flow::Exit {
                flow = Flow::Next;
            }
        }
        if pipeline.bang {
            self.status = i32::from(self.status == 0);
        }
        flow
    }

    fn step(&mut self) -> bool {
        self.steps += 1;
        if self.steps > MAX_STEPS {
            self.stop(
                "the script",
                &format!("it ran more than {MAX_STEPS} commands"),
            );
        }
        !self.stopped
    }

    fn run_command(&mut self, command: &Command) -> Flow {
        if !self.step() {
            return Flow::Exit;
        }
        if let Some(line) = command.location().map(|l| l.start.line) {
            self.line = self.line_offset + line;
        }
        match command {
            Command::Simple(simple) => self.run_simple(simple),
            Command::Compound(compound, redirects) => {
                let redirects: Vec<&IoRedirect> =
                    redirects.iter().flat_map(|r| r.0.iter()).collect();
                self.with_redirects(&redirects, |shell| shell.run_compound(compound))
            }
            Command::Function(function) => {
                self.functions
                    .insert(function.fname.value.clone(), function.body.clone());
                self.status = 0;
                Flow::Next
            }
            Command::ExtendedTest(..) => {
                self.unknown("[[ … ]]", "bash's extended test is not evaluated");
                self.status = 1;
                Flow::Next
            }
        }
    }

    fn run_compound(&mut self, compound: &CompoundCommand) -> Flow {
        match compound {
            CompoundCommand::BraceGroup(group) => self.run_list(&group.list),
            CompoundCommand::Subshell(sub) => {
                let saved = (self.vars.clone(), self.positional.clone());
                let flow = self.run_list(&sub.list);
                (self.vars, self.positional) = saved;
                match flow {
                    Flow::Exit | Flow::Return => Flow::Next,
                    other => other,
                }
            }
            CompoundCommand::ForClause(clause) => {
                let values = match &clause.values {
                    Some(words) => words
                        .iter()
                        .flat_map(|w| self.expand_fields(&w.value))
                        .collect(),
                    None => self.positional.clone(),
                };
                self.status = 0;
                for value in values {
                    self.set_var(&clause.variable_name, value);
                    match self.run_list(&clause.body.list) {
                        Flow::Break(n) if n > 1 => return Flow::Break(n - 1),
                        Flow::Break(_) => break,
                        Flow::Continue(n) if n > 1 => return Flow::Continue(n - 1),
                        Flow::Next | Flow::Continue(_) => {}
                        other => return other,
                    }
                }
                Flow::Next
            }
            CompoundCommand::CaseClause(clause) => {
                let value = self.expand_string(&clause.value.value);
                self.status = 0;
                for item in &clause.cases {
                    let matched = item.patterns.iter().any(|p| {
                        let pattern = self.expand_pattern(&p.value);
                        glob_match(&pattern, &value)
                    });
                    if matched {
                        return match &item.cmd {
                            Some(list) => self.run_list(list),
                            None => Flow::Next,
                        };
                    }
                }
                Flow::Next
            }
            CompoundCommand::IfClause(clause) => {
                let flow = self.run_list(&clause.condition);
                if flow != Flow::Next {
                    return flow;
                }
                if self.status == 0 {
                    return self.run_list(&clause.then);
                }
                for branch in clause.elses.iter().flatten() {
                    if let Some(condition) = &branch.condition {
                        let flow = self.run_list(condition);
                        if flow != Flow::Next {
                            return flow;
                        }
                        if self.status != 0 {
                            continue;
                        }
                    }
                    return self.run_list(&branch.body);
                }
                self.status = 0;
                Flow::Next
            }
            CompoundCommand::WhileClause(clause) | CompoundCommand::UntilClause(clause) => {
                let until = matches!(compound, CompoundCommand::UntilClause(_));
                loop {
                    let flow = self.run_list(&clause.0);
                    if flow != Flow::Next {
                        return flow;
                    }
                    if (self.status == 0) == until || self.stopped {
                        break;
                    }
                    match self.run_list(&clause.1.list) {
                        Flow::Break(n) if n > 1 => return Flow::Break(n - 1),
                        Flow::Break(_) => break,
                        Flow::Continue(n) if n > 1 => return Flow::Continue(n - 1),
                        Flow::Next | Flow::Continue(_) => {}
                        other => return other,
                    }
                }
                self.status = 0;
                Flow::Next
            }
            CompoundCommand::Arithmetic(_)
            | CompoundCommand::ArithmeticForClause(_)
            | CompoundCommand::Coprocess(_) => {
                self.unknown("((…))", "arithmetic commands are not evaluated");
                self.status = 1;
                Flow::Next
            }
        }
    }

    fn run_simple(&mut self, simple: &SimpleCommand) -> Flow {
        let mut assignments = Vec::new();
        let mut words = Vec::new();
        let mut redirects = Vec::new();
        let prefix = simple.prefix.iter().flat_map(|p| p.0.iter());
        let suffix = simple.suffix.iter().flat_map(|s| s.0.iter());
        for item in prefix {
            self.simple_item(item, &mut assignments, &mut words, &mut redirects);
        }
        if let Some(name) = &simple.word_or_name {
            words.extend(self.expand_fields(&name.value));
        }
        for item in suffix {
            self.simple_item(item, &mut assignments, &mut words, &mut redirects);
        }
        let mut values = Vec::new();
        for assignment in assignments {
            let value = match &assignment.value {
                ast::AssignmentValue::Scalar(w) => self.expand_string(&w.value),
                ast::AssignmentValue::Array(_) => {
                    self.unknown("an array", "arrays are not evaluated");
                    String::new()
                }
            };
            if let ast::AssignmentName::VariableName(name) = &assignment.name {
                values.push((name.clone(), value, assignment.append));
            }
        }
        if words.is_empty() {
            for (name, value, append) in values {
                let value = if append {
                    format!("{}{value}", self.var(&name))
                } else {
                    value
                };
                self.set_var(&name, value);
            }
            // The status is that of the last command substitution, or 0.
            return self.with_redirects(&redirects, |_| Flow::Next);
        }
        // Assignments before a command only reach its environment, which no
        // command evaluated here reads: they are dropped.
        self.with_redirects(&redirects, |shell| shell.call(&words))
    }

    /// Sorts one item of a simple command into assignments (before the
    /// command word), arguments and redirections.
    fn simple_item<'b>(
        &mut self,
        item: &'b CommandPrefixOrSuffixItem,
        assignments: &mut Vec<&'b ast::Assignment>,
        words: &mut Vec<String>,
        redirects: &mut Vec<&'b IoRedirect>,
    ) {
        match item {
            CommandPrefixOrSuffixItem::IoRedirect(r) => redirects.push(r),
            CommandPrefixOrSuffixItem::AssignmentWord(assignment, word) => {
                if words.is_empty() {
                    assignments.push(assignment);
                } else {
                    // `local x=1`, `export X=1`: an argument.
                    words.extend(self.expand_fields(&word.value));
                }
            }
            CommandPrefixOrSuffixItem::Word(word) => {
                words.extend(self.expand_fields(&word.value));
            }
            CommandPrefixOrSuffixItem::ProcessSubstitution(..) => {
                self.unknown("<(…)", "process substitution is not evaluated");
            }
        }
    }

    /// Runs a function, or a command from `commands.rs`.
    fn call(&mut self, argv: &[String]) -> Flow {
        let Some(name) = argv.first() else {
            return Flow::Next;
        };
        if let Some(body) = self.functions.get(name).cloned() {
            if self.depth >= MAX_DEPTH {
                self.unknown(name, "functions nest too deeply");
                self.status = 1;
                return Flow::Next;
            }
            self.depth += 1;
            let saved = std::mem::replace(&mut self.positional, argv[1..].to_vec());
            let redirects: Vec<&IoRedirect> = body.1.iter().flat_map(|r| r.0.iter()).collect();
            let flow = self.with_redirects(&redirects, |shell| shell.run_compound(&body.0));
            self.positional = saved;
            self.depth -= 1;
            return match flow {
                Flow::Return => Flow::Next,
                other => other,
            };
        }
        self.builtin(argv)
    }

    /// Runs `body` with the redirections applied: standard input from a
    /// file or here-document, standard output to a file or nowhere.
    fn with_redirects(
        &mut self,
        redirects: &[&IoRedirect],
        body: impl FnOnce(&mut Shell<'a>) -> Flow,
    ) -> Flow {
        let mut sink = Sink::Inherit;
        let mut input = None;
        for redirect in redirects {
            match redirect {
                IoRedirect::File(fd, kind, target) => {
                    let target = match target {
                        IoFileRedirectTarget::Filename(w) | IoFileRedirectTarget::Duplicate(w) => {
                            self.expand_string(&w.value)
                        }
                        IoFileRedirectTarget::Fd(n) => n.to_string(),
                        IoFileRedirectTarget::ProcessSubstitution(..) => {
                            self.unknown("<(…)", "process substitution is not evaluated");
                            continue;
                        }
                    };
                    match kind {
                        IoFileRedirectKind::Read | IoFileRedirectKind::ReadAndWrite => {
                            if fd.unwrap_or(0) == 0 {
                                let path = self.absolute(&target);
                                input = Some(self.read_file(&path).unwrap_or_default());
                            }
                        }
                        IoFileRedirectKind::Write
                        | IoFileRedirectKind::Clobber
                        | IoFileRedirectKind::Append => {
                            if fd.unwrap_or(1) == 1 {
                                sink = if target == "/dev/null" {
                                    Sink::Discard
                                } else {
                                    Sink::File {
                                        path: self.absolute(&target),
                                        append: matches!(kind, IoFileRedirectKind::Append),
                                    }
                                };
                            }
                        }
                        IoFileRedirectKind::DuplicateOutput => {
                            // `>&2`: standard output goes to standard error.
                            if fd.unwrap_or(1) == 1 && target != "1" {
                                sink = Sink::Discard;
                            }
                        }
                        IoFileRedirectKind::DuplicateInput => {}
                    }
                }
                IoRedirect::HereDocument(fd, doc) => {
                    if fd.unwrap_or(0) == 0 {
                        let mut text = if doc.requires_expansion {
                            self.expand_heredoc(&doc.doc.value)
                        } else {
                            doc.doc.value.clone()
                        };
                        if doc.remove_tabs {
                            text = text
                                .split_inclusive('\n')
                                .map(|l| l.trim_start_matches('\t'))
                                .collect();
                        }
                        input = Some(text.into_bytes());
                    }
                }
                IoRedirect::HereString(fd, word) => {
                    if fd.unwrap_or(0) == 0 {
                        input = Some(format!("{}\n", self.expand_string(&word.value)).into_bytes());
                    }
                }
                IoRedirect::OutputAndError(word, append) => {
                    let target = self.expand_string(&word.value);
                    sink = if target == "/dev/null" {
                        Sink::Discard
                    } else {
                        Sink::File {
                            path: self.absolute(&target),
                            append: *append,
                        }
                    };
                }
            }
        }
        let has_input = input.is_some();
        if let Some(input) = input {
            self.inputs.push((input, 0));
        }
        let captured = !matches!(sink, Sink::Inherit);
        if captured {
            self.captures.push(Vec::new());
        }
        let flow = body(self);
        if captured {
            let bytes = self.captures.pop().unwrap_or_default();
            if let Sink::File { path, append } = sink {
                let mut content = if append {
                    self.read_file(&path).unwrap_or_default()
                } else {
                    Vec::new()
                };
                content.extend_from_slice(&bytes);
                self.write_file(&path, content, None);
            }
        }
        if has_input {
            self.inputs.pop();
        }
        flow
    }

    /// Writes to the current standard output.
    pub(super) fn emit(&mut self, bytes: &[u8]) {
        if let Some(top) = self.captures.last_mut()
            && top.len() + bytes.len() <= MAX_OUTPUT
        {
            top.extend_from_slice(bytes);
        }
    }

    /// All of the current standard input not read yet.
    pub(super) fn take_input(&mut self) -> Vec<u8> {
        match self.inputs.last_mut() {
            Some((bytes, pos)) => {
                let rest = bytes.get(*pos..).unwrap_or_default().to_vec();
                *pos = bytes.len();
                rest
            }
            None => Vec::new(),
        }
    }

    /// One line of standard input, without its newline; `None` at the end.
    pub(super) fn read_line(&mut self) -> Option<String> {
        let (bytes, pos) = self.inputs.last_mut()?;
        let rest = bytes.get(*pos..)?;
        if rest.is_empty() {
            return None;
        }
        let end = rest.iter().position(|b| *b == b'\n');
        let line = &rest[..end.unwrap_or(rest.len())];
        let text = String::from_utf8_lossy(line).into_owned();
        *pos += end.map_or(rest.len(), |e| e + 1);
        Some(text)
    }

    pub(super) fn var(&self, name: &str) -> String {
        self.vars.get(name).cloned().unwrap_or_default()
    }

    /// Sets a variable; one that grows past [`MAX_OUTPUT`] (a loop doubling
    /// a string) stops the evaluation, so memory stays bounded.
    pub(super) fn set_var(&mut self, name: &str, value: String) {
        if value.len() > MAX_OUTPUT {
            self.stop(&format!("${name}"), "a variable grew past 16 MiB");
            return;
        }
        self.vars.insert(name.to_owned(), value);
    }

    /// Ends the evaluation here, reporting why.
    fn stop(&mut self, command: &str, why: &str) {
        if !self.stopped {
            self.stopped = true;
            self.unknown(command, format!("{why}: evaluation stopped there"));
        }
    }

    pub(super) fn unset_var(&mut self, name: &str) {
        self.vars.remove(name);
        self.functions.remove(name);
    }

    pub(super) fn shift(&mut self, n: usize) -> bool {
        if n > self.positional.len() {
            return false;
        }
        self.positional.drain(..n);
        true
    }

    pub(super) fn replace_positional(&mut self, args: Vec<String>) {
        self.positional = args;
    }

    pub(super) fn has_function(&self, name: &str) -> bool {
        self.functions.contains_key(name)
    }

    /// Runs a string as a script (`eval`, command substitution).
    pub(super) fn run_text(&mut self, text: &str) -> Flow {
        if self.depth >= MAX_DEPTH {
            self.unknown(text, "substitutions nest too deeply");
            return Flow::Next;
        }
        self.depth += 1;
        let line = self.line;
        let offset = std::mem::replace(&mut self.line_offset, line.saturating_sub(1));
        let mut flow = Flow::Next;
        if let Some(program) = self.parse(text) {
            for list in &program.complete_commands {
                flow = self.run_list(list);
                if flow != Flow::Next {
                    break;
                }
            }
        }
        self.line = line;
        self.line_offset = offset;
        self.depth -= 1;
        flow
    }

    fn substitute(&mut self, text: &str) -> String {
        self.captures.push(Vec::new());
        let saved = (self.vars.clone(), self.positional.clone());
        let _ = self.run_text(text);
        (self.vars, self.positional) = saved;
        let out = self.captures.pop().unwrap_or_default();
        let mut text = String::from_utf8_lossy(&out).into_owned();
        while text.ends_with('\n') {
            text.pop();
        }
        text
    }

    // Word expansion.

    /// A word expanded and split into fields, as for command arguments.
    pub(super) fn expand_fields(&mut self, text: &str) -> Vec<String> {
        let segments = self.segments(text, false);
        split_fields(&segments, &self.var("IFS"))
    }

    /// A word expanded without field splitting (assignments, `case`).
    pub(super) fn expand_string(&mut self, text: &str) -> String {
        self.segments(text, false)
            .into_iter()
            .map(Segment::into_text)
            .collect()
    }

    /// A pattern: what was quoted matches literally.
    fn expand_pattern(&mut self, text: &str) -> String {
        self.segments(text, false)
            .into_iter()
            .map(|s| match s {
                Segment::Text(t, true) => escape_glob(&t),
                Segment::Text(t, false) => t,
                Segment::Break => " ".to_owned(),
            })
            .collect()
    }

    fn expand_heredoc(&mut self, text: &str) -> String {
        match word::parse_heredoc(text, &ParserOptions::default()) {
            Ok(pieces) => {
                let mut out = Vec::new();
                for piece in pieces {
                    self.piece(&piece.piece, true, &mut out);
                }
                out.into_iter().map(Segment::into_text).collect()
            }
            Err(_) => text.to_owned(),
        }
    }

    fn segments(&mut self, text: &str, quoted: bool) -> Vec<Segment> {
        let options = ParserOptions {
            sh_mode: true,
            ..ParserOptions::default()
        };
        let mut out = Vec::new();
        // As for scripts: a word the parser fails on is reported.
        let parsed = std::panic::catch_unwind(|| word::parse(text, &options));
        match parsed.ok().and_then(Result::ok) {
            Some(pieces) => {
                for piece in pieces {
                    self.piece(&piece.piece, quoted, &mut out);
                }
            }
            None => {
                self.unknown(text, "this word cannot be parsed");
                out.push(Segment::Text(text.to_owned(), quoted));
            }
        }
        out
    }

    fn piece(&mut self, piece: &WordPiece, quoted: bool, out: &mut Vec<Segment>) {
        match piece {
            WordPiece::Text(t) => out.push(Segment::Text(t.clone(), quoted)),
            WordPiece::SingleQuotedText(t) | WordPiece::AnsiCQuotedText(t) => {
                out.push(Segment::Text(t.clone(), true));
            }
            WordPiece::EscapeSequence(e) => {
                let text = e.strip_prefix('\\').unwrap_or(e);
                // Inside double quotes a backslash only escapes `$ ` " \`
                // and a newline.
                let text = if quoted && !text.starts_with(['$', '`', '"', '\\', '\n']) {
                    e.as_str()
                } else {
                    text
                };
                out.push(Segment::Text(text.to_owned(), true));
            }
            WordPiece::DoubleQuotedSequence(pieces)
            | WordPiece::GettextDoubleQuotedSequence(pieces) => {
                // `""` is an empty field, not nothing.
                out.push(Segment::Text(String::new(), true));
                for p in pieces {
                    self.piece(&p.piece, true, out);
                }
            }
            WordPiece::TildeExpansion(_) => out.push(Segment::Text("/root".into(), quoted)),
            WordPiece::ParameterExpansion(expr) => self.parameter(expr, quoted, out),
            WordPiece::CommandSubstitution(text) => {
                let value = self.substitute(text);
                out.push(Segment::Text(value, quoted));
            }
            WordPiece::BackquotedCommandSubstitution(text) => {
                let text = text
                    .replace("\\`", "`")
                    .replace("\\$", "$")
                    .replace("\\\\", "\\");
                let value = self.substitute(&text);
                out.push(Segment::Text(value, quoted));
            }
            WordPiece::ArithmeticExpression(expr) => {
                let value = self.arithmetic(&expr.value);
                out.push(Segment::Text(value, quoted));
            }
        }
    }

    fn arithmetic(&mut self, expr: &str) -> String {
        let expanded = self.expand_string(expr);
        let mut total: i64 = 0;
        let mut sign = 1;
        for token in expanded.split_whitespace() {
            match token {
                "+" => sign = 1,
                "-" => sign = -1,
                t => match t
                    .parse::<i64>()
                    .ok()
                    .or_else(|| self.var(t).trim().parse().ok())
                {
                    Some(n) => total = total.saturating_add(sign * n),
                    None => {
                        self.unknown(&format!("$(({expr}))"), "only sums are evaluated");
                        return "0".to_owned();
                    }
                },
            }
        }
        total.to_string()
    }

    fn parameter_value(&self, parameter: &Parameter) -> Option<String> {
        match parameter {
            Parameter::Positional(0) => Some("postinst".to_owned()),
            Parameter::Positional(n) => self.positional.get(*n as usize - 1).cloned(),
            Parameter::Named(name) => self.vars.get(name).cloned(),
            Parameter::Special(special) => Some(match special {
                SpecialParameter::AllPositionalParameters { .. } => self.positional.join(" "),
                SpecialParameter::PositionalParameterCount => self.positional.len().to_string(),
                SpecialParameter::LastExitStatus => self.status.to_string(),
                SpecialParameter::CurrentOptionFlags => "e".to_owned(),
                SpecialParameter::ProcessId => "4242".to_owned(),
                SpecialParameter::LastBackgroundProcessId => String::new(),
                SpecialParameter::ShellName => "postinst".to_owned(),
            }),
            Parameter::NamedWithIndex { .. } | Parameter::NamedWithAllIndices { .. } => None,
        }
    }

    fn parameter(&mut self, expr: &ParameterExpr, quoted: bool, out: &mut Vec<Segment>) {
        let is_set = |v: &Option<String>, test: &word::ParameterTestType| match test {
            word::ParameterTestType::UnsetOrNull => v.as_deref().is_some_and(|v| !v.is_empty()),
            word::ParameterTestType::Unset => v.is_some(),
        };
        let value = match expr {
            ParameterExpr::Parameter { parameter, .. } => {
                if let Parameter::Special(SpecialParameter::AllPositionalParameters { .. }) =
                    parameter
                    && quoted
                {
                    // `"$@"`: one field per argument.
                    for (i, arg) in self.positional.clone().into_iter().enumerate() {
                        if i > 0 {
                            out.push(Segment::Break);
                        }
                        out.push(Segment::Text(arg, true));
                    }
                    return;
                }
                self.parameter_value(parameter).unwrap_or_default()
            }
            ParameterExpr::UseDefaultValues {
                parameter,
                test_type,
                default_value,
                ..
            }
            | ParameterExpr::AssignDefaultValues {
                parameter,
                test_type,
                default_value,
                ..
            } => {
                let value = self.parameter_value(parameter);
                if is_set(&value, test_type) {
                    value.unwrap_or_default()
                } else {
                    let value = self.expand_string(default_value.as_deref().unwrap_or_default());
                    // `${x:=default}` also assigns it.
                    if let (ParameterExpr::AssignDefaultValues { .. }, Parameter::Named(name)) =
                        (expr, parameter)
                    {
                        self.set_var(name, value.clone());
                    }
                    value
                }
            }
            ParameterExpr::UseAlternativeValue {
                parameter,
                test_type,
                alternative_value,
                ..
            } => {
                let value = self.parameter_value(parameter);
                if is_set(&value, test_type) {
                    self.expand_string(alternative_value.as_deref().unwrap_or_default())
                } else {
                    String::new()
                }
            }
            ParameterExpr::IndicateErrorIfNullOrUnset { parameter, .. } => {
                self.parameter_value(parameter).unwrap_or_default()
            }
            ParameterExpr::ParameterLength { parameter, .. } => self
                .parameter_value(parameter)
                .unwrap_or_default()
                .chars()
                .count()
                .to_string(),
            ParameterExpr::RemoveSmallestSuffixPattern {
                parameter, pattern, ..
            }
            | ParameterExpr::RemoveLargestSuffixPattern {
                parameter, pattern, ..
            }
            | ParameterExpr::RemoveSmallestPrefixPattern {
                parameter, pattern, ..
            }
            | ParameterExpr::RemoveLargestPrefixPattern {
                parameter, pattern, ..
            } => {
                let value = self.parameter_value(parameter).unwrap_or_default();
                let pattern = self.expand_pattern(pattern.as_deref().unwrap_or_default());
                let largest = matches!(
                    expr,
                    ParameterExpr::RemoveLargestSuffixPattern { .. }
                        | ParameterExpr::RemoveLargestPrefixPattern { .. }
                );
                let suffix = matches!(
                    expr,
                    ParameterExpr::RemoveSmallestSuffixPattern { .. }
                        | ParameterExpr::RemoveLargestSuffixPattern { .. }
                );
                remove_pattern(&value, &pattern, suffix, largest)
            }
            other => {
                self.unknown(
                    &format!("{other:?}"),
                    "this parameter expansion is not evaluated",
                );
                String::new()
            }
        };
        out.push(Segment::Text(value, quoted));
    }

    // The overlay.

    /// A path as the script means it: relative paths start at `/`, the
    /// directory dpkg runs scripts in.
    pub(super) fn absolute(&self, path: &str) -> String {
        let mut parts: Vec<&str> = Vec::new();
        for part in path.split('/') {
            match part {
                "" | "." => {}
                ".." => {
                    parts.pop();
                }
                p => parts.push(p),
            }
        }
        format!("/{}", parts.join("/"))
    }

    /// What the path is now: the overlay first, then the image. Symlinks the
    /// script made are followed.
    pub(super) fn kind(&self, path: &str) -> Option<FileKind> {
        let mut path = self.absolute(path);
        for _ in 0..16 {
            match self.overlay.get(&path) {
                Some(Change::File { mode, .. }) => {
                    return Some(FileKind::File {
                        executable: mode & 0o111 != 0,
                    });
                }
                Some(Change::Dir { .. }) => return Some(FileKind::Dir),
                Some(Change::Removed) => return None,
                Some(Change::Symlink(target)) => {
                    path = if target.starts_with('/') {
                        self.absolute(target)
                    } else {
                        let parent = path.rsplit_once('/').map_or("", |(p, _)| p);
                        self.absolute(&format!("{parent}/{target}"))
                    };
                }
                Some(Change::Attributes { .. }) | None => return self.files.kind(&path),
            }
        }
        None
    }

    pub(super) fn is_symlink(&self, path: &str) -> bool {
        matches!(
            self.overlay.get(&self.absolute(path)),
            Some(Change::Symlink(_))
        )
    }

    pub(super) fn read_file(&self, path: &str) -> Option<Vec<u8>> {
        let path = self.absolute(path);
        match self.overlay.get(&path) {
            Some(Change::File { bytes, .. }) => Some(bytes.clone()),
            Some(Change::Removed | Change::Dir { .. }) => None,
            Some(Change::Symlink(_)) => None,
            Some(Change::Attributes { .. }) | None => self.files.read(&path),
        }
    }

    pub(super) fn write_file(&mut self, path: &str, bytes: Vec<u8>, mode: Option<u32>) {
        let path = self.absolute(path);
        self.written += bytes.len();
        if self.written > MAX_WRITTEN {
            self.stop(&path, "the script wrote more than 64 MiB");
            return;
        }
        let mode = mode.unwrap_or(match self.overlay.get(&path) {
            Some(Change::File { mode, .. }) => *mode,
            _ => 0o666 & !self.umask,
        });
        self.overlay.insert(path, Change::File { bytes, mode });
    }

    pub(super) fn set_change(&mut self, path: &str, change: Change) {
        self.overlay.insert(self.absolute(path), change);
    }

    /// Removes a path: what only the script made is forgotten, what the
    /// image has becomes a removal.
    pub(super) fn remove_path(&mut self, path: &str) {
        let path = self.absolute(path);
        if self.files.kind(&path).is_some() {
            self.overlay.insert(path, Change::Removed);
        } else {
            self.overlay.remove(&path);
        }
    }

    pub(super) fn set_owner(&mut self, path: &str, owner: Option<String>, group: Option<String>) {
        self.owners.insert(self.absolute(path), (owner, group));
    }

    pub(super) fn change(&self, path: &str) -> Option<&Change> {
        self.overlay.get(&self.absolute(path))
    }
}

/// Part of an expanded word: text (quoted or not) or a forced field break
/// (between the arguments of `"$@"`).
#[derive(Debug)]
enum Segment {
    Text(String, bool),
    Break,
}

impl Segment {
    /// The text, where no fields are split: a break is a space, as `"$*"`.
    fn into_text(self) -> String {
        match self {
            Segment::Text(t, _) => t,
            Segment::Break => " ".to_owned(),
        }
    }
}

/// Field splitting: unquoted text splits at IFS characters; quoted text
/// (even empty) makes a field.
fn split_fields(segments: &[Segment], ifs: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut current = String::new();
    let mut has_field = false;
    for segment in segments {
        match segment {
            Segment::Break => {
                fields.push(std::mem::take(&mut current));
                has_field = false;
            }
            Segment::Text(text, true) => {
                current.push_str(text);
                has_field = true;
            }
            Segment::Text(text, false) => {
                for c in text.chars() {
                    if ifs.contains(c) {
                        if has_field {
                            fields.push(std::mem::take(&mut current));
                            has_field = false;
                        }
                    } else {
                        current.push(c);
                        has_field = true;
                    }
                }
            }
        }
    }
    if has_field {
        fields.push(current);
    }
    fields
}

fn escape_glob(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Shell pattern matching (`*`, `?`, `[…]`, `\x`) over the whole text.
pub(super) fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    glob_at(&p, &t)
}

fn glob_at(p: &[char], t: &[char]) -> bool {
    // Iterative with one backtrack point for `*`, so it is linear-ish and
    // cannot recurse deeply on hostile patterns.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
                continue;
            }
            Some(c) => {
                if let Some((matched, len)) = match_one(&p[pi..], t[ti]) {
                    if matched {
                        pi += len;
                        ti += 1;
                        continue;
                    }
                } else if *c == t[ti] {
                    pi += 1;
                    ti += 1;
                    continue;
                }
            }
            None => {}
        }
        match star {
            Some((sp, st)) => {
                pi = sp + 1;
                ti = st + 1;
                star = Some((sp, st + 1));
            }
            None => return false,
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Matches one character against the pattern's first item (`?`, `[…]`,
/// `\x` or a literal): (matched, pattern length). `None` for a plain
/// character, compared by the caller.
fn match_one(p: &[char], c: char) -> Option<(bool, usize)> {
    match p.first()? {
        '?' => Some((true, 1)),
        '\\' => Some((p.get(1) == Some(&c), 2.min(p.len()))),
        '[' => {
            let mut i = 1;
            let negate = matches!(p.get(1), Some('!' | '^'));
            if negate {
                i += 1;
            }
            let mut matched = false;
            let mut first = true;
            while i < p.len() && (p[i] != ']' || first) {
                first = false;
                if p.get(i + 1) == Some(&'-') && p.get(i + 2).is_some_and(|e| *e != ']') {
                    if p[i] <= c && c <= p[i + 2] {
                        matched = true;
                    }
                    i += 3;
                } else {
                    if p[i] == c {
                        matched = true;
                    }
                    i += 1;
                }
            }
            if i >= p.len() {
                // No closing bracket: a literal `[`.
                return Some((c == '[', 1));
            }
            Some((matched != negate, i + 1))
        }
        _ => None,
    }
}

fn remove_pattern(value: &str, pattern: &str, suffix: bool, largest: bool) -> String {
    let bounds: Vec<usize> = value
        .char_indices()
        .map(|(i, _)| i)
        .chain([value.len()])
        .collect();
    let candidates: Box<dyn Iterator<Item = &usize>> = match (suffix, largest) {
        // Prefixes: shortest first, or longest first.
        (false, false) => Box::new(bounds.iter()),
        (false, true) => Box::new(bounds.iter().rev()),
        // Suffixes start at the end for the shortest.
        (true, false) => Box::new(bounds.iter().rev()),
        (true, true) => Box::new(bounds.iter()),
    };
    for &i in candidates {
        let (head, tail) = value.split_at(i);
        if suffix && glob_match(pattern, tail) {
            return head.to_owned();
        }
        if !suffix && glob_match(pattern, head) {
            return tail.to_owned();
        }
    }
    value.to_owned()
}

/// The deepest nesting of `(`, `{` and `[` in the text, quotes ignored: an
/// upper bound of what the parser will recurse into.
fn bracket_depth(text: &str) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    for b in text.bytes() {
        match b {
            b'(' | b'{' | b'[' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b')' | b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// Where scripts put their scratch files: never an effect on the image.
fn is_temporary(path: &str) -> bool {
    path.starts_with("/tmp/") || path.starts_with("/var/tmp/") || path.starts_with("/dev/")
}
