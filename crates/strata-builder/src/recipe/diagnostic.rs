//! Errors that point into a recipe file.

use std::path::PathBuf;
use std::sync::Arc;

use miette::{Diagnostic, NamedSource, SourceSpan};

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
    src: NamedSource<Arc<String>>,
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

    fn error(
        &self,
        span: SourceSpan,
        message: impl Into<String>,
        label: impl Into<String>,
        help: impl Into<Option<String>>,
    ) -> RecipeError {
        RecipeError::Invalid(Box::new(Invalid {
            message: message.into(),
            src: NamedSource::new(self.path.display().to_string(), self.text.clone())
                .with_language("kdl"),
            span,
            label: label.into(),
            help: help.into(),
        }))
    }

    fn position(&self, span: SourceSpan) -> String {
        position(&self.text, span)
    }
}
