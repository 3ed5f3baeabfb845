//! The typed KDL decoder.
//!
//! Written by hand rather than through serde so that every value keeps its span
//! and every mistake (unknown node, wrong type, duplicate, out-of-range mode)
//! gets a message that points at the exact place and says what to write instead.

use std::path::PathBuf;

use miette::SourceSpan;

use super::document;
use super::node::{Source, given_twice};
use super::{
    BaseRef, CopyDest, DebianSpec, ImagePath, LayerSpec, Login, Metadata, NodeSpan, Op, Owner,
    PYPI, PackageRequest, PythonSpec, Recipe, RecipeError, RecipeSource, Runtime, Spanned,
    UserSpec,
};
use strata_client::credentials::split_login;
use strata_debian::repo::RepositorySpec;
use strata_oci::platform::Platform;
use strata_oci::reference::{TAG_RULE, Tag};

type Result<T> = std::result::Result<T, RecipeError>;

const DEBIAN_MIRROR: &str = "http://deb.debian.org/debian";
const DEBIAN_SECURITY_MIRROR: &str = "http://deb.debian.org/debian-security";

const LAYER_OPS: &[&str] = &["copy", "file", "mkdir", "symlink"];

/// Labels that strata sets from dedicated nodes; a `label` may not set them.
const RESERVED_LABELS: &[(&str, &str)] = &[
    ("org.opencontainers.image.title", "name"),
    ("org.opencontainers.image.version", "version"),
    ("org.opencontainers.image.description", "description"),
    ("org.opencontainers.image.source", "source"),
    ("org.opencontainers.image.url", "url"),
    ("org.opencontainers.image.documentation", "documentation"),
    ("org.opencontainers.image.vendor", "vendor"),
    ("org.opencontainers.image.licenses", "licenses"),
    ("org.opencontainers.image.authors", "authors"),
    ("org.opencontainers.image.created", "SOURCE_DATE_EPOCH"),
    ("org.opencontainers.image.revision", "the git checkout"),
    ("org.opencontainers.image.base.name", "base"),
    ("org.opencontainers.image.base.digest", "base"),
    ("org.opencontainers.image.ref.name", "--tag"),
];

pub(super) fn decode(source: RecipeSource, context: PathBuf) -> Result<Recipe> {
    let doc = document::parse(&source, &source.text)?;
    let mut decoder = Decoder {
        src: &source,
        seen: Vec::new(),
        name: None,
        metadata: Metadata::default(),
        labels: Vec::new(),
        base: None,
        platforms: Vec::new(),
        user: None,
        tre: true,
        layers: Vec::new(),
        runtime: Runtime::default(),
        debian: None,
        python: None,
        lint_allow: Vec::new(),
        nodes: Vec::new(),
        system_users: Vec::new(),
    };
    for node in doc.nodes() {
        decoder.top_level(Node { node, src: &source })?;
    }
    let whole = SourceSpan::from(0..0);
    let name = decoder.name.ok_or_else(|| {
        source.error(
            whole,
            "the recipe has no `name`",
            "expected `name` in this file",
            Some("add a line such as `name \"hello\"`: it becomes the image title".into()),
        )
    })?;
    let base = decoder.base.ok_or_else(|| {
        source.error(
            whole,
            "the recipe has no `base`",
            "expected `base` in this file",
            Some(
                "add `base \"scratch\"` for an empty base, or `base \"oci:PATH@sha256:…\"`".into(),
            ),
        )
    })?;
    let platforms = if decoder.platforms.is_empty() {
        vec![Spanned {
            value: Platform::host(),
            span: whole,
        }]
    } else {
        decoder.platforms
    };
    Ok(Recipe {
        source: source.clone(),
        context,
        name,
        metadata: decoder.metadata,
        labels: decoder.labels,
        base,
        platforms,
        user: decoder.user,
        tre: decoder.tre,
        layers: decoder.layers,
        runtime: decoder.runtime,
        debian: decoder.debian,
        python: decoder.python,
        lint_allow: decoder.lint_allow,
        nodes: decoder.nodes,
        system_users: decoder.system_users,
    })
}

struct Decoder<'a> {
    src: &'a RecipeSource,
    /// Nodes that may appear once, with where they first appeared.
    seen: Vec<(String, SourceSpan)>,
    name: Option<Spanned<String>>,
    metadata: Metadata,
    labels: Vec<(Spanned<String>, Spanned<String>)>,
    base: Option<Spanned<BaseRef>>,
    platforms: Vec<Spanned<Platform>>,
    user: Option<UserSpec>,
    tre: bool,
    layers: Vec<LayerSpec>,
    runtime: Runtime,
    debian: Option<DebianSpec>,
    python: Option<PythonSpec>,
    lint_allow: Vec<Spanned<String>>,
    nodes: Vec<NodeSpan>,
    system_users: Vec<UserSpec>,
}

/// A top-level node: its name, whether a recipe may give it more than once,
/// and how it is decoded. This table is the one list of top-level nodes.
struct NodeDef {
    name: &'static str,
    repeatable: bool,
    decode: fn(&mut Decoder<'_>, &Node<'_>) -> Result<()>,
}

const fn once(
    name: &'static str,
    decode: fn(&mut Decoder<'_>, &Node<'_>) -> Result<()>,
) -> NodeDef {
    NodeDef {
        name,
        repeatable: false,
        decode,
    }
}

const fn many(
    name: &'static str,
    decode: fn(&mut Decoder<'_>, &Node<'_>) -> Result<()>,
) -> NodeDef {
    NodeDef {
        name,
        repeatable: true,
        decode,
    }
}

const TOP_LEVEL: &[NodeDef] = &[
    once("name", |d, n| d.name(n)),
    once("version", |d, n| d.metadata(n)),
    once("description", |d, n| d.metadata(n)),
    once("source", |d, n| d.metadata(n)),
    once("url", |d, n| d.metadata(n)),
    once("documentation", |d, n| d.metadata(n)),
    once("vendor", |d, n| d.metadata(n)),
    once("licenses", |d, n| d.metadata(n)),
    once("authors", |d, n| d.metadata(n)),
    many("label", |d, n| d.label(n)),
    once("base", |d, n| d.base(n)),
    many("platform", |d, n| d.platform(n)),
    once("user", |d, node| {
        d.user = Some(decode_user(node, false)?);
        Ok(())
    }),
    many("system-user", |d, n| d.system_user(n)),
    once("tre", |d, n| d.tre(n)),
    many("layer", |d, n| d.layer(n)),
    many("env", |d, n| d.env(n)),
    once("workdir", |d, n| d.workdir(n)),
    once("entrypoint", |d, n| d.command(n)),
    once("cmd", |d, n| d.command(n)),
    many("expose", |d, n| d.expose(n)),
    many("volume", |d, n| d.volume(n)),
    once("stop-signal", |d, n| d.stop_signal(n)),
    once("debian", |d, node| {
        d.debian = Some(decode_debian(node)?);
        Ok(())
    }),
    once("python", |d, node| {
        d.python = Some(decode_python(node)?);
        Ok(())
    }),
    many("lint", |d, node| {
        d.lint_allow.extend(decode_lint(node)?);
        Ok(())
    }),
];

impl Decoder<'_> {
    fn top_level(&mut self, node: Node) -> Result<()> {
        let name = node.name();
        self.nodes.push(NodeSpan {
            name: name.to_owned(),
            key: node
                .args()
                .first()
                .and_then(|a| a.value().as_string())
                .map(str::to_owned),
            span: node.node.span(),
        });
        let Some(def) = TOP_LEVEL.iter().find(|d| d.name == name) else {
            let known: Vec<&str> = TOP_LEVEL.iter().map(|d| d.name).collect();
            return Err(node.unknown(name, &known, "top-level node"));
        };
        if !def.repeatable {
            let first = self.seen.iter().find(|(n, _)| n == name).map(|(_, s)| *s);
            let span = node.node.name().span();
            given_twice(self.src, span, first, &format!("`{name}`"), "keep one")?;
            self.seen.push((name.to_owned(), span));
        }
        (def.decode)(self, &node)
    }

    fn name(&mut self, node: &Node) -> Result<()> {
        node.no_props_or_children()?;
        let value = node.single_string("image name")?;
        check_name(node, &value, "image name")?;
        self.name = Some(value);
        Ok(())
    }

    fn metadata(&mut self, node: &Node) -> Result<()> {
        let name = node.name();
        node.no_props_or_children()?;
        let spanned = node.single_string(name)?;
        if name == "version" && spanned.parse::<Tag>().is_err() {
            return Err(self.src.error(
                spanned.span,
                format!("`{}` cannot be an image tag", spanned.value),
                "invalid tag",
                Some(format!("the version becomes the tag: {TAG_RULE}")),
            ));
        }
        let value = spanned.value;
        let slot = match name {
            "version" => &mut self.metadata.version,
            "description" => &mut self.metadata.description,
            "source" => &mut self.metadata.source,
            "url" => &mut self.metadata.url,
            "documentation" => &mut self.metadata.documentation,
            "vendor" => &mut self.metadata.vendor,
            "licenses" => &mut self.metadata.licenses,
            _ => &mut self.metadata.authors,
        };
        *slot = Some(value);
        Ok(())
    }

    fn label(&mut self, node: &Node) -> Result<()> {
        node.no_props_or_children()?;
        let [key, value] = node.strings::<2>(["label key", "label value"])?;
        if let Some((_, node_name)) = RESERVED_LABELS.iter().find(|(k, _)| *k == *key) {
            return Err(self.src.error(
                key.span,
                format!("`{}` is set by strata", key.value),
                "reserved label",
                Some(format!("strata fills this label from `{node_name}`")),
            ));
        }
        if key.is_empty() {
            return Err(node.err("a label key is empty", "here", "name the label"));
        }
        let first = self.labels.iter().find(|(k, _)| k.value == key.value);
        let what = format!("label `{}`", key.value);
        given_twice(
            self.src,
            key.span,
            first.map(|(k, _)| k.span),
            &what,
            "keep one",
        )?;
        self.labels.push((key, value));
        Ok(())
    }

    fn base(&mut self, node: &Node) -> Result<()> {
        node.no_props_or_children()?;
        let value = node.single_string("base image")?;
        self.base = Some(Spanned {
            value: parse_base(node, &value)?,
            span: value.span,
        });
        Ok(())
    }

    fn platform(&mut self, node: &Node) -> Result<()> {
        node.no_props_or_children()?;
        for arg in node.string_args("platform", 1)? {
            let platform = arg.value.parse::<Platform>().map_err(|e| {
                self.src.error(
                    arg.span,
                    e.to_string(),
                    "not a platform",
                    Some("e.g. `platform \"linux/amd64\" \"linux/arm64\"`".into()),
                )
            })?;
            let first = self.platforms.iter().find(|p| p.value == platform);
            let what = format!("platform `{platform}`");
            given_twice(self.src, arg.span, first.map(|p| p.span), &what, "keep one")?;
            self.platforms.push(Spanned {
                value: platform,
                span: arg.span,
            });
        }
        Ok(())
    }

    fn system_user(&mut self, node: &Node) -> Result<()> {
        let user = decode_user(node, true)?;
        let first = self
            .system_users
            .iter()
            .find(|u| u.name.value == user.name.value);
        let what = format!("system user `{}`", user.name.value);
        given_twice(
            self.src,
            user.name.span,
            first.map(|u| u.name.span),
            &what,
            "keep one",
        )?;
        self.system_users.push(user);
        Ok(())
    }

    fn tre(&mut self, node: &Node) -> Result<()> {
        self.tre = node.flag()?;
        Ok(())
    }

    fn layer(&mut self, node: &Node) -> Result<()> {
        let layer = decode_layer(node)?;
        let first = self
            .layers
            .iter()
            .find(|l| l.name.value == layer.name.value);
        let what = format!("the layer name `{}`", layer.name.value);
        let fix = "rename one of the layers";
        given_twice(
            self.src,
            layer.name.span,
            first.map(|l| l.name.span),
            &what,
            fix,
        )?;
        self.layers.push(layer);
        Ok(())
    }

    fn env(&mut self, node: &Node) -> Result<()> {
        node.no_props_or_children()?;
        let [key, value] = node.strings::<2>(["variable name", "value"])?;
        if key.is_empty() || key.contains('=') || key.contains('\0') {
            return Err(self.src.error(
                key.span,
                format!("`{}` is not an environment variable name", key.value),
                "invalid name",
                Some("names are non-empty and contain no `=`".into()),
            ));
        }
        // The first `env` node naming the key, when the key is already set.
        let first = self
            .nodes
            .iter()
            .find(|n| n.name == "env" && n.key.as_deref() == Some(&key.value))
            .filter(|_| self.runtime.env.iter().any(|(k, _)| *k == key.value));
        let what = format!("variable `{}`", key.value);
        given_twice(self.src, key.span, first.map(|n| n.span), &what, "keep one")?;
        self.runtime.env.push((key.value, value.value));
        Ok(())
    }

    fn workdir(&mut self, node: &Node) -> Result<()> {
        node.no_props_or_children()?;
        let dir = node.single_string("working directory")?;
        self.runtime.workdir = Some(image_path(node, &dir)?.to_string());
        Ok(())
    }

    fn command(&mut self, node: &Node) -> Result<()> {
        let name = node.name();
        node.no_props_or_children()?;
        let args = node
            .string_args(name, 1)?
            .into_iter()
            .map(|a| a.value)
            .collect();
        if name == "entrypoint" {
            self.runtime.entrypoint = Some(args);
        } else {
            self.runtime.cmd = Some(args);
        }
        Ok(())
    }

    fn expose(&mut self, node: &Node) -> Result<()> {
        node.no_props_or_children()?;
        for port in node.string_args("port", 1)? {
            let normalised = parse_port(&port.value).ok_or_else(|| {
                self.src.error(
                    port.span,
                    format!("`{}` is not a port", port.value),
                    "invalid port",
                    Some("write `PORT` or `PORT/tcp`, `PORT/udp`, `PORT/sctp`".into()),
                )
            })?;
            self.runtime.expose.push(normalised);
        }
        Ok(())
    }

    fn volume(&mut self, node: &Node) -> Result<()> {
        node.no_props_or_children()?;
        for volume in node.string_args("volume", 1)? {
            let path = image_path(node, &volume)?.to_string();
            self.runtime.volumes.push(path);
        }
        Ok(())
    }

    fn stop_signal(&mut self, node: &Node) -> Result<()> {
        node.no_props_or_children()?;
        let signal = node.single_string("signal")?;
        let valid = (!signal.is_empty() && signal.bytes().all(|b| b.is_ascii_digit()))
            || (signal.starts_with("SIG")
                && signal.len() > 3
                && signal[3..].bytes().all(|b| {
                    b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'+' || b == b'-'
                }));
        if !valid {
            return Err(self.src.error(
                signal.span,
                format!("`{}` is not a signal", signal.value),
                "invalid signal",
                Some("write a name such as `SIGTERM` or a number".into()),
            ));
        }
        self.runtime.stop_signal = Some(signal.value);
        Ok(())
    }
}

/// `lint { allow "STR004" … }`: rule ids the recipe silences. Whether an id
/// names a rule is checked by `strata lint`, which knows the rules.
fn decode_lint(node: &Node) -> Result<Vec<Spanned<String>>> {
    node.check_props(&[])?;
    if !node.args().is_empty() {
        return Err(node.err(
            "`lint` takes a block, not values",
            "here",
            "write `lint { allow \"STR004\" }`",
        ));
    }
    let mut allow = Vec::new();
    for child in node.node.children().map(|c| c.nodes()).unwrap_or_default() {
        let child = Node {
            node: child,
            src: node.src,
        };
        match child.name() {
            "allow" => {
                child.no_props_or_children()?;
                for id in child.string_args("rule id", 1)? {
                    let valid = id.len() == 6
                        && id.starts_with("STR")
                        && id[3..].bytes().all(|b| b.is_ascii_digit());
                    if !valid {
                        return Err(child.src.error(
                            id.span,
                            format!("`{}` is not a lint rule id", id.value),
                            "not STRnnn",
                            Some(
                                "rule ids look like `STR004`; `strata lint --list` shows them"
                                    .into(),
                            ),
                        ));
                    }
                    allow.push(id);
                }
            }
            other => return Err(child.unknown(other, &["allow"], "`lint` entry")),
        }
    }
    Ok(allow)
}

/// `user` (the image's user) or `system-user` (an account a package expects,
/// which a postinst would have created): the same properties, with system
/// defaults (no home, no shell) and an explicit uid for the latter.
fn decode_user(node: &Node, system: bool) -> Result<UserSpec> {
    node.check_props(&["uid", "gid", "home", "shell"])?;
    node.no_children()?;
    let name = node.single_string("user name")?;
    let valid = !name.is_empty()
        && name.len() <= 32
        && !name.starts_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
    if !valid {
        return Err(node.src.error(
            name.span,
            format!("`{}` is not a valid user name", name.value),
            "invalid name",
            Some("use up to 32 letters, digits, `_`, `-` or `.`, not starting with `-`".into()),
        ));
    }
    let uid = match node.prop_u32("uid")? {
        Some(uid) => uid,
        None if system => {
            return Err(node.err(
                format!("system user `{}` has no `uid`", name.value),
                "no uid",
                format!(
                    "give the id the package expects, e.g. `system-user \"{}\" uid=101`",
                    name.value
                ),
            ));
        }
        None => 10001,
    };
    let gid = node.prop_u32("gid")?.unwrap_or(uid);
    let home = match node.prop_string("home")? {
        Some(home) => image_path(node, &home)?,
        None if system => ImagePath::root().join("nonexistent"),
        None => ImagePath::root().join("home").join(&name),
    };
    let default_shell = if system {
        "/usr/sbin/nologin"
    } else {
        "/sbin/nologin"
    };
    let shell = node
        .prop_string("shell")?
        .map_or_else(|| default_shell.to_owned(), |s| s.value);
    Ok(UserSpec {
        name,
        uid,
        gid,
        home,
        shell,
    })
}

/// `debian "bookworm" mirror=… updates=#true security=#true components="main" { … }`
fn decode_debian(node: &Node) -> Result<DebianSpec> {
    node.check_props(&[
        "mirror",
        "security-mirror",
        "updates",
        "security",
        "components",
        "keyring",
    ])?;
    let suite = node.single_string("release codename")?;
    if suite.is_empty()
        || !suite
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        return Err(node.src.error(
            suite.span,
            format!("`{}` is not a Debian release name", suite.value),
            "invalid suite",
            Some("write a codename such as `bookworm`".into()),
        ));
    }
    let mut logins = Vec::new();
    let mut url = |name: &str, default: &str| -> Result<String> {
        let value = node.prop_string(name)?;
        match value {
            None => Ok(default.to_owned()),
            Some(v) => source_url(node, &v, &mut logins),
        }
    };
    let mirror = url("mirror", DEBIAN_MIRROR)?;
    let security_mirror = url("security-mirror", DEBIAN_SECURITY_MIRROR)?;
    let components = match node.prop_string("components")? {
        Some(c) => c.split_whitespace().map(str::to_owned).collect(),
        None => vec!["main".to_owned()],
    };
    let keyring = node.prop_string("keyring")?.map(|k| PathBuf::from(k.value));
    let mut repositories = Vec::new();
    let default_repo = |suite: String, url: &str| RepositorySpec {
        url: url.to_owned(),
        suite,
        components: components.clone(),
        keyring: keyring.clone(),
    };
    repositories.push(default_repo(suite.value.clone(), &mirror));
    if node.prop_bool("updates")?.unwrap_or(true) {
        repositories.push(default_repo(format!("{}-updates", suite.value), &mirror));
    }
    if node.prop_bool("security")?.unwrap_or(true) {
        repositories.push(default_repo(
            format!("{}-security", suite.value),
            &security_mirror,
        ));
    }
    let mut install: Vec<Spanned<PackageRequest>> = Vec::new();
    let mut keep_docs = false;
    let mut essential = true;
    let mut bytecode = true;
    let mut layers = None;
    let mut timezone = None;
    let mut ca_certificates = Vec::new();
    for child in node.node.children().map(|c| c.nodes()).unwrap_or_default() {
        let child = Node {
            node: child,
            src: node.src,
        };
        match child.name() {
            "install" => decode_install(&child, &mut install)?,
            "repository" => repositories.push(decode_repository(&child, &mut logins)?),
            "keep-docs" => keep_docs = child.flag()?,
            "essential" => essential = child.flag()?,
            "bytecode" => bytecode = child.flag()?,
            "layers" => {
                given_twice(
                    child.src,
                    child.node.span(),
                    layers.map(|(_, span)| span),
                    "`layers`",
                    "keep one",
                )?;
                layers = Some((child.layer_budget()?, child.node.span()));
            }
            "timezone" => {
                child.no_props_or_children()?;
                let zone = child.single_string("time zone")?;
                let valid = zone.value.split_once('/').is_some_and(|(a, z)| {
                    !a.is_empty()
                        && !z.is_empty()
                        && zone
                            .value
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"/_+-".contains(&b))
                });
                if !valid {
                    return Err(child.src.error(
                        zone.span,
                        format!("`{}` is not a time zone", zone.value),
                        "expected Area/Zone",
                        Some(
                            "write a zone of the tz database, e.g. `Etc/UTC` or `Europe/London`"
                                .into(),
                        ),
                    ));
                }
                timezone = Some(zone);
            }
            "ca-certificate" => {
                child.no_props_or_children()?;
                ca_certificates.extend(child.string_args("certificate file", 1)?);
            }
            other => {
                return Err(child.unknown(
                    other,
                    &[
                        "install",
                        "repository",
                        "keep-docs",
                        "essential",
                        "bytecode",
                        "layers",
                        "timezone",
                        "ca-certificate",
                    ],
                    "`debian` entry",
                ));
            }
        }
    }
    if install.is_empty() {
        return Err(node.err(
            "the `debian` block installs nothing",
            "no `install` line",
            "add `install \"package\"` lines in braces, or remove the block",
        ));
    }
    Ok(DebianSpec {
        span: node.node.span(),
        suite,
        repositories,
        logins,
        install,
        keep_docs,
        essential,
        bytecode,
        layers: layers.map_or(crate::assemble::layering::DEFAULT_LAYERS, |(n, _)| n),
        timezone: timezone.unwrap_or_else(|| Spanned {
            value: "Etc/UTC".to_owned(),
            span: node.node.span(),
        }),
        ca_certificates,
    })
}
fn decode_python(node: &Node) -> Result<PythonSpec> {
    node.check_props(&[])?;
    if !node.args().is_empty() {
        return Err(node.err(
            "`python` takes no value",
            "unexpected",
            "write the packages in braces: `python { install \"pandas>=2.2\" }`",
        ));
    }
    let mut spec = PythonSpec {
        span: node.node.span(),
        requirements: Vec::new(),
        install: Vec::new(),
        lock_file: None,
        indexes: Vec::new(),
        logins: Vec::new(),
        venv: Some(ImagePath::from_relative("opt/venv").expect("a constant path")),
    };
    for child in node.node.children().map(|c| c.nodes()).unwrap_or_default() {
        let child = Node {
            node: child,
            src: node.src,
        };
        match child.name() {
            "requirements" => {
                child.no_props_or_children()?;
                spec.requirements
                    .extend(child.string_args("requirements file", 1)?);
            }
            "install" => {
                child.no_props_or_children()?;
                for arg in child.string_args("requirement", 1)? {
                    let origin = strata_pypi::requirements::Origin {
                        file: node.src.path.clone(),
                        line: super::line_of(&node.src.text, arg.span),
                    };
                    if let Err(e) = strata_pypi::requirements::parse_one(&arg.value, origin) {
                        return Err(child.src.error(
                            arg.span,
                            format!("`{}` is not a requirement strata can install", arg.value),
                            e.to_string(),
                            Some(
                                "write a PEP 508 requirement such as `pandas>=2.2` or `scikit-learn==1.5.*`"
                                    .into(),
                            ),
                        ));
                    }
                    spec.install.push(arg);
                }
            }
            "lock-file" => {
                child.no_props_or_children()?;
                let given = child.single_string("lock file")?;
                given_twice(
                    child.src,
                    given.span,
                    spec.lock_file.as_ref().map(|l| l.span),
                    "`lock-file`",
                    "keep one",
                )?;
                spec.lock_file = Some(given);
            }
            "index" => {
                child.no_props_or_children()?;
                for url in child.string_args("index URL", 1)? {
                    spec.indexes
                        .push(source_url(&child, &url, &mut spec.logins)?);
                }
            }
            "venv" => {
                child.check_props(&[])?;
                child.no_children()?;
                spec.venv = match child.args().as_slice() {
                    [one] if one.value().as_bool() == Some(false) => None,
                    [_] => Some(image_path(&child, &child.single_string("venv folder")?)?),
                    _ => {
                        return Err(child.err(
                            "`venv` takes one folder or `#false`",
                            "expected one value",
                            "write `venv \"/opt/venv\"`, or `venv #false` to install into the interpreter's own site-packages",
                        ));
                    }
                };
            }
            other => {
                return Err(child.unknown(
                    other,
                    &["requirements", "install", "lock-file", "index", "venv"],
                    "`python` entry",
                ));
            }
        }
    }
    if spec.lock_file.is_some() && !(spec.requirements.is_empty() && spec.install.is_empty()) {
        return Err(node.err(
            "the `python` block has both a `lock-file` and requirements",
            "both given",
            "a lock file is installed exactly as it is: drop `requirements`/`install`, or drop `lock-file` to resolve them",
        ));
    }
    if spec.lock_file.is_none() && spec.requirements.is_empty() && spec.install.is_empty() {
        return Err(node.err(
            "the `python` block installs nothing",
            "no `install`, `requirements` or `lock-file`",
            "add `install \"package\"`, `requirements \"requirements.txt\"` or `lock-file \"pylock.toml\"` in braces",
        ));
    }
    if spec.indexes.is_empty() {
        spec.indexes.push(PYPI.to_owned());
    }
    Ok(spec)
}

/// `install "curl" "python3=3.11.2-1+b1"` inside `debian`.
fn decode_install(child: &Node, install: &mut Vec<Spanned<PackageRequest>>) -> Result<()> {
    child.no_props_or_children()?;
    for arg in child.string_args("package", 1)? {
        let (name, version) = match arg.split_once('=') {
            Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
            None => (arg.value.clone(), None),
        };
        if !strata_debian::valid_package_name(&name)
            || version.as_ref().is_some_and(|v| v.is_empty())
        {
            return Err(child.src.error(
                arg.span,
                format!("`{}` is not a package name", arg.value),
                "invalid package",
                Some("write `name` or `name=version`, e.g. `curl=7.88.1-10+deb12u14`".into()),
            ));
        }
        let first = install.iter().find(|p| p.name == name).map(|p| p.span);
        let what = format!("package `{name}`");
        given_twice(child.src, arg.span, first, &what, "keep one")?;
        install.push(Spanned {
            value: PackageRequest { name, version },
            span: arg.span,
        });
    }
    Ok(())
}

/// `repository URL suite=… components=… keyring=…` inside `debian`.
fn decode_repository(child: &Node, logins: &mut Vec<Login>) -> Result<RepositorySpec> {
    child.check_props(&["suite", "components", "keyring"])?;
    child.no_children()?;
    let url = source_url(child, &child.single_string("repository URL")?, logins)?;
    let suite = child.prop_string("suite")?.ok_or_else(|| {
        child.err(
            "a repository needs a `suite`",
            "no suite",
            "add `suite=\"stable\"` (the folder under `dists/`)",
        )
    })?;
    let components = child.prop_string("components")?.map_or_else(
        || vec!["main".to_owned()],
        |c| c.split_whitespace().map(str::to_owned).collect(),
    );
    Ok(RepositorySpec {
        url,
        suite: suite.value,
        components,
        keyring: child
            .prop_string("keyring")?
            .map(|k| PathBuf::from(k.value)),
    })
}

/// A package source's URL: http(s), with any login taken out into `logins`
/// (see [`Login`]).
fn source_url(node: &Node, value: &Spanned<String>, logins: &mut Vec<Login>) -> Result<String> {
    let (url, login) = split_login(value);
    let ok = (url.starts_with("http://") || url.starts_with("https://")) && url.len() > 8;
    if !ok {
        return Err(node.src.error(
            value.span,
            format!("`{url}` is not an http(s) URL"),
            "invalid URL",
            Some("write e.g. `http://deb.debian.org/debian`".into()),
        ));
    }
    let url = url.trim_end_matches('/').to_owned();
    if let Some(basic) = login {
        logins.push(Login {
            url: url.clone(),
            basic,
        });
    }
    Ok(url)
}

fn decode_layer(node: &Node) -> Result<LayerSpec> {
    node.check_props(&[])?;
    let name = node.single_string("layer name")?;
    check_name(node, &name, "layer name")?;
    let children = node.node.children().ok_or_else(|| {
        node.err(
            format!("layer `{}` has no body", name.value),
            "expected `{ … }`",
            "add the files in braces: `layer \"app\" { copy \"app/\" \"/opt/app/\" }`",
        )
    })?;
    let mut ops = Vec::new();
    for child in children.nodes() {
        let child = Node {
            node: child,
            src: node.src,
        };
        ops.push(Spanned {
            value: decode_op(&child)?,
            span: child.node.span(),
        });
    }
    if ops.is_empty() {
        return Err(node.err(
            format!("layer `{}` is empty", name.value),
            "nothing in this layer",
            "add `copy`, `file`, `mkdir` or `symlink` lines, or remove the layer",
        ));
    }
    Ok(LayerSpec { name, ops })
}

fn decode_op(node: &Node) -> Result<Op> {
    node.no_children()?;
    match node.name() {
        "copy" => {
            node.check_props(&["mode", "owner", "exclude"])?;
            let [src, dest] = node.strings::<2>(["source path", "destination"])?;
            if src.starts_with('/') {
                return Err(node.src.error(
                    src.span,
                    format!("`{}` is an absolute host path", src.value),
                    "absolute path",
                    Some("host paths are relative to the recipe's folder, e.g. `app/`".into()),
                ));
            }
            let dest = Spanned {
                value: CopyDest {
                    path: image_path(node, &dest)?,
                    into: dest.ends_with('/'),
                },
                span: dest.span,
            };
            Ok(Op::Copy {
                src,
                dest,
                mode: node.prop_mode()?,
                owner: node.prop_owner()?,
                exclude: node.prop_strings("exclude")?,
            })
        }
        "file" => {
            node.check_props(&["mode", "owner"])?;
            let [dest, content] = node.strings::<2>(["destination", "content"])?;
            Ok(Op::File {
                dest: spanned_path(node, &dest)?,
                content: content.value,
                mode: node.prop_mode()?,
                owner: node.prop_owner()?,
            })
        }
        "mkdir" => {
            node.check_props(&["mode", "owner"])?;
            let dest = node.single_string("directory")?;
            if image_path(node, &dest)?.is_root() {
                return Err(node.src.error(
                    dest.span,
                    "`/` always exists",
                    "nothing to make",
                    Some("name a folder below `/`".into()),
                ));
            }
            Ok(Op::Mkdir {
                dest: spanned_path(node, &dest)?,
                mode: node.prop_mode()?,
                owner: node.prop_owner()?,
            })
        }
        "symlink" => {
            node.check_props(&[])?;
            let [link, target] = node.strings::<2>(["link path", "link target"])?;
            if target.is_empty() {
                return Err(node.src.error(
                    target.span,
                    "a symlink target is empty",
                    "empty",
                    Some("write the path the link points to".into()),
                ));
            }
            Ok(Op::Symlink {
                link: spanned_path(node, &link)?,
                target: target.value,
            })
        }
        other => Err(node.unknown(other, LAYER_OPS, "layer operation")),
    }
}

fn parse_base(node: &Node, value: &Spanned<String>) -> Result<BaseRef> {
    if value.value == "scratch" {
        return Ok(BaseRef::Scratch);
    }
    let local = [
        ("oci:", "a layout folder"),
        ("oci-archive:", "an archive file"),
    ]
    .into_iter()
    .find_map(|(prefix, what)| value.strip_prefix(prefix).map(|rest| (prefix, what, rest)));
    let Some((prefix, what, rest)) = local else {
        let reference = strata_oci::reference::Reference::parse(&value.value).map_err(|e| {
            node.src.error(
                value.span,
                e.to_string(),
                "not an image reference",
                Some(
                    "write `scratch`, `REGISTRY/REPO[:TAG]@sha256:…`, `oci:PATH@sha256:…` or `oci-archive:FILE@sha256:…`"
                        .into(),
                ),
            )
        })?;
        return Ok(BaseRef::Registry(reference));
    };
    let Some((path, digest)) = rest.rsplit_once('@') else {
        let look = if prefix == "oci:" {
            format!("`strata inspect {rest}` prints the digest")
        } else {
            format!("`skopeo inspect {prefix}{rest}` prints the digest")
        };
        return Err(node.src.error(
            value.span,
            format!("the base `{}` is not pinned by digest", value.value),
            "no digest",
            Some(format!(
                "pin it: `base \"{prefix}{rest}@sha256:…\"`; {look}"
            )),
        ));
    };
    let digest = digest
        .parse()
        .map_err(|e: strata_oci::digest::ParseDigestError| {
            node.src.error(
                value.span,
                e.to_string(),
                "bad digest",
                Some("copy the digest from `strata inspect`".into()),
            )
        })?;
    if path.is_empty() {
        return Err(node.err(
            format!("the base names no {what}"),
            "empty path",
            format!("write `{prefix}PATH@sha256:…`"),
        ));
    }
    let path = PathBuf::from(path);
    Ok(if prefix == "oci:" {
        BaseRef::OciLayout { path, digest }
    } else {
        BaseRef::OciArchive { path, digest }
    })
}

fn parse_port(s: &str) -> Option<String> {
    let (port, proto) = s.split_once('/').unwrap_or((s, "tcp"));
    let port: u16 = port.parse().ok().filter(|p| *p > 0)?;
    matches!(proto, "tcp" | "udp" | "sctp").then(|| format!("{port}/{proto}"))
}

fn check_name(node: &Node, value: &Spanned<String>, what: &str) -> Result<()> {
    let valid = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        && value.as_bytes()[0].is_ascii_alphanumeric();
    if valid {
        Ok(())
    } else {
        Err(node.src.error(
            value.span,
            format!("`{}` is not a valid {what}", value.value),
            "invalid",
            Some(
                "use lowercase letters, digits, `.`, `_` and `-`, starting with a letter or digit"
                    .into(),
            ),
        ))
    }
}

fn image_path(node: &Node, value: &Spanned<String>) -> Result<ImagePath> {
    ImagePath::parse(value).map_err(|e| {
        node.src.error(
            value.span,
            e.to_string(),
            "invalid image path",
            Some("write an absolute path inside the image, such as `/opt/app`".into()),
        )
    })
}

fn spanned_path(node: &Node, value: &Spanned<String>) -> Result<Spanned<ImagePath>> {
    Ok(Spanned {
        value: image_path(node, value)?,
        span: value.span,
    })
}

/// A KDL node with the helpers every decoder needs.
type Node<'a> = super::node::Node<'a, RecipeSource>;

/// The recipe's own property readers, on top of the shared ones.
impl Node<'_> {
    /// `layers N`: how many layers the Debian packages take.
    fn layer_budget(&self) -> Result<u32> {
        use crate::assemble::layering::MAX_LAYERS;
        self.check_props(&[])?;
        self.no_children()?;
        let help =
            format!("write a whole number from 1 (one layer) to {MAX_LAYERS}, e.g. `layers 10`");
        match self.args().as_slice() {
            [entry] => entry
                .value()
                .as_integer()
                .and_then(|n| u32::try_from(n).ok())
                .filter(|n| (1..=MAX_LAYERS).contains(n))
                .ok_or_else(|| {
                    self.src.error(
                        entry.span(),
                        format!("`layers` must be from 1 to {MAX_LAYERS}"),
                        "not a layer count",
                        Some(help.clone()),
                    )
                }),
            _ => Err(self.err("`layers` takes one number", "expected one number", &help)),
        }
    }

    fn prop_mode(&self) -> Result<Option<u32>> {
        let Some(entry) = self.prop("mode") else {
            return Ok(None);
        };
        let written_in_octal = entry
            .format()
            .is_none_or(|f| f.value_repr.starts_with("0o"));
        match entry.value().as_integer() {
            Some(mode) if (0..=0o7777).contains(&mode) && (written_in_octal || mode == 0) => {
                Ok(Some(mode as u32))
            }
            Some(mode) if (0..=0o7777).contains(&mode) => {
                let repr = entry
                    .format()
                    .map(|f| f.value_repr.clone())
                    .unwrap_or_default();
                let hint = if repr.bytes().all(|b| b.is_ascii_digit()) {
                    format!("write `mode=0o{repr}` if you meant those digits as octal")
                } else {
                    format!("this is `0o{mode:o}` in octal: write `mode=0o{mode:o}`")
                };
                Err(self.src.error(
                    entry.span(),
                    "modes are written in octal",
                    "not octal",
                    Some(hint),
                ))
            }
            Some(_) => Err(self.src.error(
                entry.span(),
                "the mode is out of range",
                "out of range",
                Some("modes go from `0o0` to `0o7777`".into()),
            )),
            None => Err(self.src.error(
                entry.span(),
                "the mode must be an octal number",
                "not a number",
                Some("write e.g. `mode=0o755` (no quotes)".into()),
            )),
        }
    }

    fn prop_owner(&self) -> Result<Option<Spanned<Owner>>> {
        let Some(owner) = self.prop_string("owner")? else {
            return Ok(None);
        };
        let ids = |s: &str| -> Option<Owner> {
            let (u, g) = s.split_once(':').unwrap_or((s, s));
            Some(Owner::Ids(u.parse().ok()?, g.parse().ok()?))
        };
        let value = if owner.bytes().next().is_some_and(|b| b.is_ascii_digit()) {
            ids(&owner).ok_or_else(|| {
                self.src.error(
                    owner.span,
                    format!("`{}` is not an owner", owner.value),
                    "invalid owner",
                    Some("write a user name, `UID` or `UID:GID`".into()),
                )
            })?
        } else {
            Owner::Name(owner.value.clone())
        };
        Ok(Some(Spanned {
            value,
            span: owner.span,
        }))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn decode_str(text: &str) -> Result<Recipe> {
        let source = RecipeSource {
            path: "image.kdl".into(),
            text: Arc::new(text.to_owned()),
        };
        decode(source, ".".into())
    }

    fn message(text: &str) -> String {
        match decode_str(text) {
            Ok(_) => panic!("expected an error for {text:?}"),
            Err(RecipeError::Invalid(e)) => e.message().to_owned(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn decodes_the_full_example() {
        let recipe = decode_str(
            r#"
name "hello"
version "1.0.0"
label "uk.ac.example.project" "p123"
base "scratch"
platform "linux/amd64"
user "analyst" uid=10001 gid=10001
tre
layer "app" {
    copy "app/" "/opt/app/" exclude="*.pyc" exclude="tmp/"
    copy "run.sh" "/usr/local/bin/run" mode=0o555
    file "/etc/app.conf" "key=value\n" mode=0o444
    mkdir "/var/lib/app" owner="analyst" mode=0o750
    symlink "/usr/local/bin/py" "/usr/bin/python3"
}
env "PYTHONUNBUFFERED" "1"
workdir "/opt/app"
entrypoint "/usr/local/bin/run"
cmd "--help"
expose "8080/tcp"
volume "/data"
stop-signal "SIGTERM"
"#,
        )
        .unwrap();
        assert_eq!(recipe.name.value, "hello");
        assert_eq!(recipe.tag(), "1.0.0");
        assert!(recipe.tre);
        let user = recipe.user.unwrap();
        assert_eq!((user.uid, user.gid), (10001, 10001));
        assert_eq!(user.home.as_str(), "home/analyst");
        assert_eq!(recipe.layers[0].ops.len(), 5);
        match &recipe.layers[0].ops[0].value {
            Op::Copy { exclude, .. } => assert_eq!(exclude.len(), 2),
            other => panic!("{other:?}"),
        }
        match &recipe.layers[0].ops[3].value {
            Op::Mkdir { mode, owner, .. } => {
                assert_eq!(*mode, Some(0o750));
                assert_eq!(owner.as_ref().unwrap().value, Owner::Name("analyst".into()));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(recipe.runtime.expose, ["8080/tcp"]);
    }

    #[test]
    fn explains_mistakes() {
        let base = "name \"x\"\nbase \"scratch\"\n";
        let cases = [
            ("naem \"x\"", "unknown top-level node `naem`"),
            (
                &format!("{base}tre \"no\""),
                "`tre` takes `#true` or `#false`",
            ),
            (
                &format!("{base}layer \"a\" {{ copy \"a\" \"/a\" mode=755 }}"),
                "modes are written in octal",
            ),
            (
                &format!("{base}layer \"a\" {{ copy \"a\" \"/a\" mode=0o17777 }}"),
                "the mode is out of range",
            ),
            (
                &format!("{base}layer \"a\" {{ copy \"a\" \"/a\" mdoe=0o644 }}"),
                "unknown property `mdoe` on `copy`",
            ),
            (
                &format!("{base}layer \"a\" {{ copy \"/etc/passwd\" \"/a\" }}"),
                "`/etc/passwd` is an absolute host path",
            ),
            (
                &format!("{base}layer \"a\" {{ file \"etc/x\" \"y\" }}"),
                "image paths are absolute: `etc/x` must start with `/`",
            ),
            (
                &format!("{base}layer \"a\" {{ cpy \"a\" \"/a\" }}"),
                "unknown layer operation `cpy`",
            ),
            (
                "name \"x\"\nbase \"oci:../base\"",
                "the base `oci:../base` is not pinned by digest",
            ),
            (
                "name \"x\"\nbase \"Python:3.12\"",
                "the repository `library/Python` may only hold lowercase letters",
            ),
            (
                "name \"x\"\nname \"y\"\nbase \"scratch\"",
                "`name` is given twice",
            ),
            ("base \"scratch\"", "the recipe has no `name`"),
            ("name \"x\" {", "the recipe is not valid KDL"),
            (
                &format!("{base}user \"analyst\" uid=-1"),
                "`uid` must be a whole number",
            ),
            (&format!("{base}expose \"http\""), "`http` is not a port"),
        ];
        for (text, expected) in cases {
            let got = message(text);
            assert!(
                got.contains(expected),
                "for {text:?}\n  expected {expected:?}\n  got {got:?}"
            );
        }
    }

    #[test]
    fn suggests_close_names() {
        match decode_str("name \"x\"\nbase \"scratch\"\nworkidr \"/a\"") {
            Err(RecipeError::Invalid(e)) => {
                let help = miette::Diagnostic::help(&*e).unwrap().to_string();
                assert_eq!(help, "did you mean `workdir`?");
            }
            other => panic!("{other:?}"),
        }
    }
}
