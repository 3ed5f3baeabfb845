//! Rules that read the planned image: its filesystem (base + packages +
//! recipe layers), its packages and the base's config.

use super::recipe::{Copied, network_at_runtime, no_entrypoint};
use super::*;
use crate::tre::TRE_DIRS;
use strata_oci::entry::{Kind, Source};
use strata_oci::view::ViewKind;

/// Paths Debian packages ship private on purpose; nothing a job reads.
const PRIVATE_BY_DESIGN: &[&str] = &[
    "root",
    "etc/shadow",
    "etc/gshadow",
    "etc/sudoers",
    "etc/sudoers.d",
    "etc/ssl/private",
    "var/cache/ldconfig",
    "var/lib/polkit-1",
    "var/spool/cron/crontabs",
];

/// At most this many paths are listed per finding; the count says the rest.
const MAX_ITEMS: usize = 20;

pub fn check(recipe: &Recipe, base: &BaseImage, plan: &Planned, copied: &[Copied]) -> Vec<Finding> {
    let config = base.config.as_ref().and_then(|c| c.config().as_ref());
    let mut out = Vec::new();
    let passwd = passwd(base, plan);
    let user = plan
        .user
        .clone()
        .or_else(|| config.and_then(|c| c.user().clone()))
        .unwrap_or_default();
    let runtime = parse_ids(&user);
    let root = user.is_empty() || user == "root" || user.starts_with("root:");
    if recipe.user.is_none() && (root || runtime.is_some_and(|(uid, _)| uid == 0)) {
        out.push(
            Finding::new(
                RUNS_AS_ROOT,
                "with `tre #false` and no `user`, the image runs as the base's user: root",
                recipe.node_span("tre", None),
            )
            .level(Level::Warning),
        );
    }
    if let Some((uid, gid)) = runtime.filter(|(uid, _)| *uid != 0) {
        let home = passwd
            .lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find(|f| f.len() >= 6 && f[2].parse() == Ok(uid))
            .map(|f| f[5].trim_start_matches('/').to_owned());
        writable(recipe, plan, uid, gid, home.as_deref(), &mut out);
    }
    unreadable(plan, &mut out);
    setuid(plan, &mut out);
    unevaluated(recipe, plan, &mut out);
    missing_interpreters(recipe, plan, &mut out);
    missing_libraries(recipe, plan, &mut out);

    let env = crate::image::environment(config, &recipe.runtime, recipe.tre, plan.venv.as_deref());
    let packages: Vec<&str> = plan
        .packages
        .iter()
        .map(|p| p.locked.name.as_str())
        .chain(plan.wheels.iter().map(|w| w.name.as_str()))
        .collect();
    out.extend(network_at_runtime(recipe, &env, &packages, copied));
    let has = |v: Option<&Vec<String>>| v.is_some_and(|v| !v.is_empty());
    if recipe.runtime.entrypoint.is_none()
        && recipe.runtime.cmd.is_none()
        && !has(config.and_then(|c| c.entrypoint().as_ref()))
        && !has(config.and_then(|c| c.cmd().as_ref()))
    {
        out.push(no_entrypoint());
    }
    out
}

fn parse_ids(user: &str) -> Option<(u32, u32)> {
    let (uid, gid) = user.split_once(':').unwrap_or((user, "0"));
    Some((uid.parse().ok()?, gid.parse().ok()?))
}

/// The image's `/etc/passwd`: strata's own when it writes one, else the base's.
fn passwd(base: &BaseImage, plan: &Planned) -> String {
    let written = plan
        .plans
        .iter()
        .rev()
        .flat_map(|p| &p.entries)
        .find(|e| e.path.as_str() == "etc/passwd");
    if let Some(entry) = written
        && let Kind::File(content) = &entry.kind
        && let Source::Inline(bytes) = &content.source
    {
        return String::from_utf8_lossy(bytes).into_owned();
    }
    base.lower.text("etc/passwd").unwrap_or_default().to_owned()
}

/// A finding about `items` (none when there are none): the message from
/// their count, and at most `MAX_ITEMS` of them listed.
fn about(
    rule: &'static Rule,
    mut items: Vec<String>,
    message: impl FnOnce(usize) -> String,
    span: Option<SourceSpan>,
) -> Option<Finding> {
    if items.is_empty() {
        return None;
    }
    let message = message(items.len());
    if items.len() > MAX_ITEMS {
        let more = items.len() - MAX_ITEMS;
        items.truncate(MAX_ITEMS);
        items.push(format!("… and {more} more"));
    }
    Some(Finding::new(rule, message, span).items(items))
}

/// STR007: what the runtime user could change. Its home, the TRE mount
/// points, volumes and sticky folders (`/tmp`) are meant to be written.
fn writable(
    recipe: &Recipe,
    plan: &Planned,
    uid: u32,
    gid: u32,
    home: Option<&str>,
    out: &mut Vec<Finding>,
) {
    let volumes: Vec<&str> = recipe
        .runtime
        .volumes
        .iter()
        .map(|v| v.trim_start_matches('/'))
        .collect();
    let expected = |path: &str| {
        let under = |dir: &str| path == dir || path.starts_with(&format!("{dir}/"));
        home.is_some_and(|h| !h.is_empty() && under(h))
            || TRE_DIRS.iter().any(|d| under(d))
            || volumes.iter().any(|v| under(v))
    };
    let mut items = Vec::new();
    for (path, entry) in plan.view.paths() {
        let executable = match entry.kind {
            ViewKind::File => entry.mode & 0o111 != 0,
            ViewKind::Dir => entry.mode & 0o1000 == 0,
            _ => continue,
        };
        let can_write = (entry.uid == uid && entry.mode & 0o200 != 0)
            || (entry.gid == gid && entry.mode & 0o020 != 0)
            || entry.mode & 0o002 != 0;
        if executable && can_write && !expected(path.as_str()) {
            let what = if entry.kind == ViewKind::Dir {
                "folder"
            } else {
                "executable"
            };
            items.push(format!(
                "{path} ({what}, {:04o}, owner {}:{})",
                entry.mode & 0o7777,
                entry.uid,
                entry.gid
            ));
        }
    }
    out.extend(about(
        WRITABLE_BY_USER,
        items,
        |n| format!("{n} path(s) can be changed by uid {uid} at run time"),
        recipe.user.as_ref().map(|u| u.name.span),
    ));
}

/// STR008: what strata adds (packages, its own layer, the recipe's layers)
/// that a host user could not read under Apptainer.
fn unreadable(plan: &Planned, out: &mut Vec<Finding>) {
    let mut items = Vec::new();
    for entry in plan.plans.iter().flat_map(|p| &p.entries) {
        let needs = match entry.kind {
            Kind::File(_) => 0o004,
            Kind::Dir => 0o005,
            _ => continue,
        };
        let path = entry.path.as_str();
        let private = PRIVATE_BY_DESIGN
            .iter()
            .any(|p| path == *p || path.starts_with(&format!("{p}/")));
        if entry.mode & needs != needs && !private && !path.ends_with(".wh..wh..opq") {
            items.push(format!("/{path} ({:04o})", entry.mode & 0o7777));
        }
    }
    out.extend(about(
        UNREADABLE,
        items,
        |n| format!("{n} path(s) are not readable by other users"),
        None,
    ));
}

/// STR009: every setuid or setgid file of the image, base included.
fn setuid(plan: &Planned, out: &mut Vec<Finding>) {
    let items: Vec<String> = plan
        .view
        .paths()
        .filter(|(_, e)| e.kind == ViewKind::File && e.mode & 0o6000 != 0)
        .map(|(path, e)| {
            let bits = match e.mode & 0o6000 {
                0o6000 => "setuid+setgid",
                0o4000 => "setuid",
                _ => "setgid",
            };
            format!("{path} ({bits}, {:04o})", e.mode & 0o7777)
        })
        .collect();
    out.extend(about(
        SETUID,
        items,
        |n| format!("{n} setuid/setgid file(s) in the image"),
        None,
    ));
}

/// STR016: programs whose `#!` interpreter or ELF loader is missing.
fn missing_interpreters(recipe: &Recipe, plan: &Planned, out: &mut Vec<Finding>) {
    let items: Vec<String> = crate::assemble::interpreters::missing(&plan.plans, &plan.view)
        .into_iter()
        .map(|(interpreter, files)| crate::assemble::interpreters::describe(&interpreter, &files))
        .collect();
    out.extend(about(
        MISSING_INTERPRETER,
        items,
        |n| format!("{n} interpreter(s) missing from the image"),
        recipe.debian.as_ref().map(|d| d.span),
    ));
}

/// STR017: shared libraries the installed wheels need and the image lacks.
fn missing_libraries(recipe: &Recipe, plan: &Planned, out: &mut Vec<Finding>) {
    let items: Vec<String> =
        crate::assemble::libraries::missing(&plan.plans, &plan.view, &plan.platform)
            .into_iter()
            .map(|(soname, modules)| crate::assemble::libraries::describe(&soname, &modules))
            .collect();
    out.extend(about(
        MISSING_LIBRARY,
        items,
        |n| format!("{n} shared librar(ies) missing from the image"),
        recipe.python.as_ref().map(|p| p.span),
    ));
}

/// STR011: maintainer-script commands the evaluator could not reproduce.
fn unevaluated(recipe: &Recipe, plan: &Planned, out: &mut Vec<Finding>) {
    let items: Vec<String> = plan
        .unevaluated
        .iter()
        .map(|u| {
            format!(
                "{} postinst line {}: `{}`: {}",
                u.package, u.unknown.line, u.unknown.command, u.unknown.reason
            )
        })
        .collect();
    out.extend(about(
        UNEVALUATED_SCRIPT,
        items,
        |n| format!("{n} maintainer-script command(s) not reproduced"),
        recipe.debian.as_ref().map(|d| d.span),
    ));
}
