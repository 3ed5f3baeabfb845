//! When and from what commit an image is built: `SOURCE_DATE_EPOCH`, else the
//! commit time of the recipe's git checkout, else 0; and the commit itself.

use std::path::Path;
use std::process::Command;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("`SOURCE_DATE_EPOCH={0}` is not a number of seconds since 1970")]
#[diagnostic(help("set it to e.g. `$(git log -1 --format=%ct)`, or unset it"))]
pub struct EpochError(String);

pub fn epoch(context: &Path) -> Result<u64, EpochError> {
    if let Some(value) = std::env::var_os("SOURCE_DATE_EPOCH") {
        let value = value.to_string_lossy().into_owned();
        return value.trim().parse().map_err(|_| EpochError(value));
    }
    Ok(git(context, &["log", "-1", "--format=%ct"])
        .and_then(|s| s.parse().ok())
        .unwrap_or(0))
}

/// The commit of the recipe's checkout, when it is in one.
pub fn revision(context: &Path) -> Option<String> {
    git(context, &["rev-parse", "HEAD"])
}

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    // `safe.directory=*`: a checkout owned by another user (a CI cache, a
    // build run as `nobody`) must give the same answer as for its owner.
    let out = Command::new("git")
        .args(["-c", "safe.directory=*", "-C"])
        .arg(dir)
        .args(args)
        .env("LC_ALL", "C")
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (out.status.success() && !text.is_empty()).then_some(text)
}

pub fn rfc3339(epoch: u64) -> String {
    OffsetDateTime::from_unix_timestamp(epoch.min(253_402_300_799) as i64)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_owned())
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_utc() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    }
}
