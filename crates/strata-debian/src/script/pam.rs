//! `pam-auth-update --package` on a first install: the `common-*` PAM
//! configs from the profiles in `/usr/share/pam-configs` and the templates
//! in `/usr/share/pam`, and the tool's state in `/var/lib/pam`, as
//! libpam-runtime's Perl script writes them when there are no local edits
//! to merge. Written here because the script is the only implementation.

use std::collections::BTreeMap;

use regex::Regex;

use super::shell::Shell;

const KINDS: [&str; 5] = [
    "auth",
    "account",
    "password",
    "session",
    "session-noninteractive",
];

/// One profile's fields (`Name`, `Default`, `Auth-Type`, `Auth`, …).
type Profile = BTreeMap<String, String>;

impl Shell<'_> {
    pub(super) fn pam_auth_update(&mut self, command: &str) -> i32 {
        let mut profiles: Vec<(String, Profile)> = Vec::new();
        for name in self.files.list("/usr/share/pam-configs") {
            if let Some(text) = self.read_file(&format!("/usr/share/pam-configs/{name}")) {
                profiles.push((name, parse_profile(&String::from_utf8_lossy(&text))));
            }
        }
        // By priority, highest first; ties by name, last first, as the
        // script sorts them.
        let priority = |p: &Profile| {
            p.get("Priority")
                .and_then(|v| v.trim().parse::<i64>().ok())
                .unwrap_or(0)
        };
        profiles.sort_by(|(an, a), (bn, b)| priority(b).cmp(&priority(a)).then(bn.cmp(an)));
        let enabled: Vec<&(String, Profile)> = profiles
            .iter()
            .filter(|(_, p)| p.get("Default").map(String::as_str) == Some("yes"))
            .collect();
        for kind in KINDS {
            let Some(template) = self.read_file(&format!("/usr/share/pam/common-{kind}")) else {
                self.unknown(
                    command,
                    format!("`/usr/share/pam/common-{kind}` is missing"),
                );
                return 0;
            };
            let Some(config) = config(&String::from_utf8_lossy(&template), kind, &enabled) else {
                self.unknown(
                    command,
                    format!("the `common-{kind}` template has no markers"),
                );
                return 0;
            };
            self.write_file(
                &format!("/etc/pam.d/common-{kind}"),
                config.into_bytes(),
                Some(0o644),
            );
            self.write_file(
                &format!("/var/lib/pam/{kind}"),
                state(kind, &enabled).into_bytes(),
                Some(0o644),
            );
        }
        let seen: String = profiles.iter().map(|(n, _)| format!("{n}\n")).collect();
        self.write_file("/var/lib/pam/seen", seen.into_bytes(), Some(0o644));
        0
    }
}

/// The profile's pseudo-RFC 822 fields: a `Field: value` line, then
/// continuation lines, trimmed, joined by newlines.
fn parse_profile(text: &str) -> Profile {
    let mut profile = Profile::new();
    let mut field = String::new();
    for line in text.lines() {
        let header = line
            .split_once(':')
            .filter(|(name, _)| !name.is_empty() && !name.contains(char::is_whitespace));
        match header {
            Some((name, value)) if value.is_empty() || value.starts_with(char::is_whitespace) => {
                field = name.trim_end_matches("-Final").to_owned();
                profile.insert(field.clone(), value.trim().to_owned());
            }
            _ => {
                let value = line.trim();
                if let Some(current) = profile.get_mut(&field)
                    && !value.is_empty()
                {
                    if !current.is_empty() {
                        current.push('\n');
                    }
                    current.push_str(value);
                }
            }
        }
    }
    if !profile.contains_key("Session-Interactive-Only") {
        for suffix in ["-Type", "", "-Initial"] {
            if let Some(value) = profile.get(&format!("Session{suffix}")).cloned() {
                profile.insert(format!("Session-noninteractive{suffix}"), value);
            }
        }
    }
    profile
}

/// `Auth`, `Session-noninteractive`: the profiles' field names for a kind.
fn field_name(kind: &str) -> String {
    let mut chars = kind.chars();
    chars
        .next()
        .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

/// The enabled profiles of one block (`Primary` or `Additional`) with the
/// lines each contributes: the `-Initial` variant for the first module.
fn block<'a>(
    kind: &str,
    block: &str,
    enabled: &[&'a (String, Profile)],
) -> Vec<(&'a str, &'a str)> {
    let field = field_name(kind);
    let mut out = Vec::new();
    for (name, profile) in enabled {
        if profile.get(&format!("{field}-Type")).map(String::as_str) != Some(block) {
            continue;
        }
        let initial = profile.get(&format!("{field}-Initial"));
        let lines = match initial {
            Some(lines) if out.is_empty() => lines,
            _ => match profile.get(&field) {
                Some(lines) => lines,
                None => continue,
            },
        };
        out.push((name.as_str(), lines.as_str()));
    }
    out
}

/// The `common-KIND` file: the template with its two blocks filled in, the
/// jumps (`success=end`) counted to the end of each block.
fn config(template: &str, kind: &str, enabled: &[&(String, Profile)]) -> Option<String> {
    let prefix = kind.trim_end_matches("-noninteractive");
    let mut out = String::new();
    let mut state = 0;
    for line in template.split_inclusive('\n') {
        if state == 1 || state == 3 {
            let end = if state == 1 {
                "# here's the fallback if no module succeeds"
            } else {
                "# end of pam-auth-update config"
            };
            if line.starts_with(end) {
                out.push_str(line);
                state += 1;
            }
            continue;
        }
        out.push_str(line);
        let which = match state {
            0 if line.starts_with("# here are the per-package modules (the \"Primary\" block)") => {
                "Primary"
            }
            2 if line.starts_with(
                "# and here are more per-package modules (the \"Additional\" block)",
            ) =>
            {
                "Additional"
            }
            _ => continue,
        };
        let modules = block(kind, which, enabled);
        let mut count: i64 = modules
            .iter()
            .map(|(_, lines)| lines.split('\n').filter(|l| !l.is_empty()).count() as i64)
            .sum();
        // Nothing in the additional block may jump off the stack.
        if which == "Additional" {
            count -= 1;
        }
        if which == "Primary" && count == 0 {
            out.push_str(&format!("{prefix}\t[default=1]\t\t\tpam_permit.so\n"));
        }
        for (_, lines) in modules {
            for line in lines.split('\n') {
                out.push_str(&format!("{prefix}\t{}", module_line(line, count)));
                count -= 1;
            }
        }
        state += 1;
    }
    (state == 4).then_some(out)
}

/// `merge_one_line` without local edits: the control and module with
/// `end` replaced by the jump count, then the options.
fn module_line(line: &str, count: i64) -> String {
    static SHAPE: std::sync::OnceLock<Option<Regex>> = std::sync::OnceLock::new();
    let shape = SHAPE.get_or_init(|| Regex::new(r"^((\[[^\]]+\]|\w+)\s+\S+)\s*(.*)").ok());
    let Some(captures) = shape.as_ref().and_then(|re| re.captures(line)) else {
        return format!("{line}\n");
    };
    let module = captures[1].replace("end", &count.to_string());
    let options: Vec<&str> = captures[3].split_whitespace().collect();
    format!("{module} {}\n", options.join(" "))
}

/// `/var/lib/pam/KIND`: which module gave which lines, for later merges.
fn state(kind: &str, enabled: &[&(String, Profile)]) -> String {
    let mut out = String::new();
    let primary = block(kind, "Primary", enabled);
    if primary.is_empty() {
        out.push_str("Module: null\n[default=1]\t\t\tpam_permit.so\n");
    }
    for (name, lines) in primary
        .into_iter()
        .chain(block(kind, "Additional", enabled))
    {
        out.push_str(&format!("Module: {name}\n{lines}\n"));
    }
    out
}
