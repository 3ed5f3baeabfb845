//! Commands that talk to registries: `push`, `login`, `resolve-base`; and
//! the push report that `build --push` prints too.

use std::path::{Path, PathBuf};

use miette::{IntoDiagnostic, Report, WrapErr};

use strata_builder::push::{self, Destination, Image};
use strata_oci::layout::Layout;
use strata_oci::reference::Reference;
use strata_registry::{self as registry, Client, auth::Credential};

use super::args::{RegistryArgs, TlsArgs};
use super::{print, say, split_image};

pub fn push_command(
    image: &str,
    destinations: &[String],
    mut tags: Vec<String>,
    digest_file: Option<PathBuf>,
    registry: RegistryArgs,
) -> Result<(), Report> {
    let (dir, tag) = split_image(image);
    let layout = Layout::open(Path::new(dir))?;
    let top = layout.find(tag)?;
    if tags.is_empty() {
        tags.extend(tag.map(str::to_owned));
    }
    let destinations = destinations
        .iter()
        .map(|d| Destination::parse(d, &tags))
        .collect::<Result<Vec<_>, _>>()?;
    let image = Image::from_layout(&layout, top)?;
    let client = Client::new(registry.options()?)?;
    let reports = push::push(&client, &image, &destinations)?;
    print_pushed(&reports);
    if let Some(path) = digest_file {
        push::write_digest_file(&path, &image.digest())?;
    }
    Ok(())
}

/// The push report for people, on stderr.
pub fn print_pushed(reports: &[push::PushReport]) {
    for r in reports {
        say(format!(
            "pushed {}:{} @ {} ({} uploaded, {} bytes; {} mounted; {} already there)",
            r.destination.name(),
            r.tags.join(","),
            r.digest,
            r.uploaded,
            r.uploaded_bytes,
            r.mounted,
            r.present
        ));
        for how in &r.referrers {
            say(format!("  attached {how}"));
        }
    }
}

/// One destination's push report, for `build --json`.
pub fn push_json(r: &push::PushReport) -> serde_json::Value {
    serde_json::json!({
        "destination": r.destination.name(),
        "tags": r.tags,
        "digest": r.digest,
        "uploaded": r.uploaded,
        "uploadedBytes": r.uploaded_bytes,
        "mounted": r.mounted,
        "present": r.present,
        "referrers": r.referrers,
    })
}

pub fn resolve_base_command(reference: &str, registry: RegistryArgs) -> Result<(), Report> {
    let reference = Reference::parse(reference)
        .into_diagnostic()
        .wrap_err("cannot read the reference")?;
    let client = Client::new(registry.options()?)?;
    let digest = client.resolve(&reference)?;
    let pinned = Reference {
        digest: Some(digest),
        ..reference
    };
    Ok(print(format_args!("{pinned}\n"))?)
}

pub fn login_command(
    registry: &str,
    username: String,
    password_stdin: bool,
    password: Option<String>,
    tls: TlsArgs,
) -> Result<(), Report> {
    let secret = match (password_stdin, password) {
        (true, _) => {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
                .into_diagnostic()
                .wrap_err("cannot read the password from standard input")?;
            text.trim_end_matches(['\n', '\r']).to_owned()
        }
        (false, Some(p)) => p,
        (false, None) => {
            return Err(miette::miette!(
                help = "pipe it in with `--password-stdin`, or pass `--password`",
                "no password given"
            ));
        }
    };
    let credential = Credential {
        username,
        secret,
        source: "the login command line".to_owned(),
    };
    let file = registry::auth::login_file().ok_or_else(|| {
        miette::miette!(
            help = "set `REGISTRY_AUTH_FILE` to the file to write",
            "no place for the auth file: none of REGISTRY_AUTH_FILE, XDG_RUNTIME_DIR, XDG_CONFIG_HOME or HOME is set"
        )
    })?;
    Client::new(tls.options()?)?.check_login(registry, credential.clone())?;
    registry::auth::save(&file, registry, &credential)?;
    say(format!(
        "login to {registry} succeeded; saved in {}",
        file.display()
    ));
    Ok(())
}
