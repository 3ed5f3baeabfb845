//! deb822 paragraphs (`Packages`, `Release`, `status`, a package's `control`):
//! `Field: value` lines, continuation lines starting with a space, paragraphs
//! separated by blank lines.
//!
//! Written by hand because the index of a Debian suite is ~50 MB of text: this
//! reader streams it, reuses one buffer, and hands out borrowed fields, so
//! parsing keeps pace with decompression.

use std::io::{self, BufRead};

/// One paragraph's fields, borrowed from the reader's buffer.
pub struct Paragraph<'a> {
    text: &'a str,
    fields: &'a [(usize, usize, usize, usize)],
}

impl<'a> Paragraph<'a> {
    /// A field's value with continuation lines joined by `\n`; names are
    /// compared case-insensitively, as Debian policy says.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.fields
            .iter()
            .find(|(ks, ke, _, _)| self.text[*ks..*ke].eq_ignore_ascii_case(name))
            .map(|(_, _, vs, ve)| self.text[*vs..*ve].trim())
    }

    /// The paragraph as written, without its trailing blank line.
    pub fn text(&self) -> &'a str {
        self.text.trim_end_matches('\n')
    }
}

/// Calls `f` for each paragraph read from `reader`.
pub fn for_each_paragraph<R: BufRead>(
    mut reader: R,
    mut f: impl FnMut(&Paragraph) -> io::Result<()>,
) -> io::Result<()> {
    let mut text = String::new();
    let mut fields = Vec::new();
    loop {
        let start = text.len();
        let n = reader.read_line(&mut text)?;
        let line = &text[start..];
        let blank = line.trim().is_empty();
        if n == 0 || blank {
            text.truncate(start);
            if !fields.is_empty() {
                f(&Paragraph {
                    text: &text,
                    fields: &fields,
                })?;
            }
            text.clear();
            fields.clear();
            if n == 0 {
                return Ok(());
            }
            continue;
        }
        if line.starts_with(' ') || line.starts_with('\t') {
            // A continuation extends the previous field's value.
            if let Some(last) = fields.last_mut() {
                last.3 = text.len();
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let Some(colon) = line.find(':') else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("expected `Field: value`, found `{}`", line.trim_end()),
            ));
        };
        fields.push((start, start + colon, start + colon + 1, text.len()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fields_continuations_and_paragraphs() {
        let text = "Package: a\nDescription: short\n long line\n .\nVersion: 1\n\n\nPackage: b\nversion: 2";
        let mut seen = Vec::new();
        for_each_paragraph(text.as_bytes(), |p| {
            seen.push((
                p.get("Package").unwrap().to_owned(),
                p.get("Version").unwrap().to_owned(),
                p.get("Description").map(str::to_owned),
            ));
            Ok(())
        })
        .unwrap();
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0].2.as_deref(), Some("short\n long line\n ."));
        assert_eq!(seen[1], ("b".into(), "2".into(), None));
    }

    #[test]
    fn rejects_lines_without_a_colon() {
        assert!(for_each_paragraph("Package a\n".as_bytes(), |_| Ok(())).is_err());
    }
}
