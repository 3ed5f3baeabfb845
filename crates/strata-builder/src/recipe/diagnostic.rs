//! Errors that point into a recipe file.

use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use miette::{Diagnostic, MietteError, MietteSpanContents, SourceCode, SourceSpan, SpanContents};

/// `line L, column C` of a span's start in `text`.
pub(crate) fn position(text: &str, span: SourceSpan) -> String {
    let before = &text[..span.offset().min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    format!("line {line}, column {column}")
}

/// The text of a recipe, named by its path, so that any later stage can point into it.
#[derive(Debug, Clone)]
pub struct RecipeSource {
    pub path: PathBuf,
    pub text: Arc<String>,
}

#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum RecipeError {
    #[error("cannot read the recipe `{}`", path.display())]
    #[diagnostic(help("check the path; a recipe is a KDL file such as `image.kdl`"))]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    #[diagnostic(transparent)]
    Invalid(Box<Invalid>),
}

/// One problem at one place in a recipe.
#[derive(Debug, thiserror::Error, Diagnostic)]
#[error("{message}")]
pub struct Invalid {
    message: String,
    #[source_code]
    src: Excerpt,
    #[label("{label}")]
    span: SourceSpan,
    label: String,
    #[help]
    help: Option<String>,
}

impl Invalid {
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// Errors that point into the recipe: diagnostics with the recipe's text.
impl super::node::Source for RecipeSource {
    type Error = RecipeError;
    const NAME: &str = "recipe";

    fn error(
        &self,
        span: SourceSpan,
        message: impl Into<String>,
        label: impl Into<String>,
        help: impl Into<Option<String>>,
    ) -> RecipeError {
        let (src, span) = Excerpt::new(self.path.display().to_string(), self.text.clone(), span);
        RecipeError::Invalid(Box::new(Invalid {
            message: message.into(),
            src,
            span,
            label: label.into(),
            help: help.into(),
        }))
    }

    fn position(&self, span: SourceSpan) -> String {
        position(&self.text, span)
    }
}

/// The part of a document a diagnostic shows: all of it, or, when the line
/// at the span is too long for a terminal, a window of that line around the
/// span. miette pads each label out to its column, and a column past 65,535
/// is more than Rust's formatting allows: it panics.
#[derive(Debug, Clone)]
pub struct Excerpt {
    name: String,
    text: Arc<String>,
    /// The bytes of `text` shown.
    shown: Range<usize>,
    /// The 0-based line and column `shown` starts at.
    line: usize,
    column: usize,
}

impl Excerpt {
    /// A line longer than this is shown as a window.
    const LONG_LINE: usize = 400;
    /// How much of a long line is shown before the span, and in all.
    const BEFORE: usize = 80;
    const WIDTH: usize = 200;

    /// What to show of `text` (named `name`) for an error at `span`, and the
    /// span, cut to what is shown.
    pub fn new(name: String, text: Arc<String>, span: SourceSpan) -> (Excerpt, SourceSpan) {
        let at = text.floor_char_boundary(span.offset());
        let end = text.floor_char_boundary(span.offset().saturating_add(span.len()));
        let line_start = text[..at].rfind('\n').map_or(0, |n| n + 1);
        let line_end = text[at..].find('\n').map_or(text.len(), |n| at + n);
        // What miette draws: the span's lines and one line of context on
        // either side.
        let first = text[..line_start.saturating_sub(1)]
            .rfind('\n')
            .map_or(0, |n| n + 1);
        let last = text[end..]
            .match_indices('\n')
            .nth(1)
            .map_or(text.len(), |(n, _)| end + n);
        if text[first..last]
            .split('\n')
            .all(|line| line.len() <= Self::LONG_LINE)
        {
            let excerpt = Excerpt {
                name,
                shown: 0..text.len(),
                text,
                line: 0,
                column: 0,
            };
            return (excerpt, span);
        }
        let start = text.floor_char_boundary(at.saturating_sub(Self::BEFORE).max(line_start));
        let stop = text.floor_char_boundary((start + Self::WIDTH).min(line_end));
        let excerpt = Excerpt {
            name,
            line: text[..line_start].matches('\n').count(),
            column: text[line_start..start].chars().count(),
            shown: start..stop,
            text,
        };
        let len = span.len().min(stop.saturating_sub(at));
        (excerpt, SourceSpan::from(at..at + len))
    }
}

impl SourceCode for Excerpt {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
        let shown = &self.text[self.shown.clone()];
        let offset = span
            .offset()
            .checked_sub(self.shown.start)
            .ok_or(MietteError::OutOfBounds)?;
        let inner = shown.read_span(
            &SourceSpan::from(offset..offset + span.len()),
            context_lines_before,
            context_lines_after,
        )?;
        let column = match inner.line() {
            0 => self.column + inner.column(),
            _ => inner.column(),
        };
        let start = self.shown.start + inner.span().offset();
        let contents = MietteSpanContents::new_named(
            self.name.clone(),
            inner.data(),
            SourceSpan::from(start..start + inner.span().len()),
            self.line + inner.line(),
            column,
            inner.line_count(),
        );
        Ok(Box::new(contents.with_language("kdl")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recipe::node::Source;

    fn rendered(text: &str, span: std::ops::Range<usize>) -> String {
        let source = RecipeSource {
            path: "image.kdl".into(),
            text: Arc::new(text.to_owned()),
        };
        let error = source.error(span.into(), "bad", "here", None);
        let mut out = String::new();
        miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
            .render_report(&mut out, &error)
            .unwrap();
        out
    }

    #[test]
    fn short_lines_are_shown_whole_with_context() {
        let out = rendered("a 1\nb 2\nc 3\n", 4..5);
        assert!(out.contains("[image.kdl:2:1]"), "{out}");
        assert!(out.contains("a 1") && out.contains("c 3"), "{out}");
    }

    #[test]
    fn a_long_line_is_shown_as_a_window_around_the_span() {
        let text = format!("name \"x\"\n{}nope 1\n", " ".repeat(70_000));
        let at = text.find("nope").unwrap();
        let out = rendered(&text, at..at + 4);
        assert!(out.contains("[image.kdl:2:70001]"), "{out}");
        assert!(out.contains("nope 1"), "{out}");
        assert!(out.len() < 2000, "{out}");
    }

    #[test]
    fn a_span_ending_far_along_a_later_line_is_cut() {
        let text = format!("layer \"a\" {{\n{}}}\n", " ".repeat(70_000));
        let out = rendered(&text, 0..text.len() - 1);
        assert!(out.contains("[image.kdl:1:1]"), "{out}");
        assert!(out.len() < 2000, "{out}");
    }

    #[test]
    fn a_long_context_line_is_left_out() {
        let text = format!("{}\nnope 1\n", "#".repeat(70_000));
        let at = text.find("nope").unwrap();
        let out = rendered(&text, at..at + 4);
        assert!(out.contains("[image.kdl:2:1]"), "{out}");
        assert!(out.len() < 2000, "{out}");
    }
}
