//! Reading KDL nodes, shared by the recipe and the lock: arguments,
//! properties and their types, with errors that point at the value.

use kdl::{KdlEntry, KdlNode, KdlValue};
use miette::SourceSpan;

use super::Spanned;

/// A document's text that errors can point into.
pub trait Source {
    type Error;
    /// What the document is, for messages: `recipe`, `lock`.
    const NAME: &str;

    /// An error at `span`: the message, a short label for the underlined
    /// part, and a help line.
    fn error(
        &self,
        span: SourceSpan,
        message: impl Into<String>,
        label: impl Into<String>,
        help: impl Into<Option<String>>,
    ) -> Self::Error;

    /// `line L, column C` of a span's start, for messages that mention a
    /// second place in the file.
    fn position(&self, span: SourceSpan) -> String;
}

/// The one check for what a document may give only once: an error at
/// `span` when `first` holds where the first one is. `what` names the thing
/// (``label `team` ``), `fix` says what to do about it.
pub fn given_twice<S: Source>(
    src: &S,
    span: SourceSpan,
    first: Option<SourceSpan>,
    what: &str,
    fix: &str,
) -> Result<(), S::Error> {
    match first {
        None => Ok(()),
        Some(first) => Err(src.error(
            span,
            format!("{what} is given twice"),
            "again here",
            Some(format!("{fix} (the first is at {})", src.position(first))),
        )),
    }
}

/// A KDL node of a document strata reads, with the document's text to point
/// into when a value is wrong.
pub struct Node<'a, S> {
    pub node: &'a KdlNode,
    pub src: &'a S,
}

impl<'a, S: Source> Node<'a, S> {
    pub fn name(&self) -> &str {
        self.node.name().value()
    }

    pub fn err(
        &self,
        message: impl Into<String>,
        label: impl Into<String>,
        help: impl Into<String>,
    ) -> S::Error {
        self.src
            .error(self.node.span(), message, label, Some(help.into()))
    }

    pub fn unknown(&self, name: &str, known: &[&str], what: &str) -> S::Error {
        let help = match did_you_mean(name, known) {
            Some(close) => format!("did you mean `{close}`?"),
            None => format!("known: {}", known.join(", ")),
        };
        self.src.error(
            self.node.name().span(),
            format!("unknown {what} `{name}`"),
            "unknown",
            Some(help),
        )
    }

    pub fn args(&self) -> Vec<&'a KdlEntry> {
        self.node
            .entries()
            .iter()
            .filter(|e| e.name().is_none())
            .collect()
    }

    pub fn props(&self) -> impl Iterator<Item = (&'a str, &'a KdlEntry)> {
        self.node
            .entries()
            .iter()
            .filter_map(|e| e.name().map(|n| (n.value(), e)))
    }

    pub fn check_props(&self, allowed: &[&str]) -> Result<(), S::Error> {
        for (name, entry) in self.props() {
            if !allowed.contains(&name) {
                let help = match did_you_mean(name, allowed) {
                    Some(close) => format!("did you mean `{close}`?"),
                    None if allowed.is_empty() => format!("`{}` takes no properties", self.name()),
                    None => format!("`{}` takes: {}", self.name(), allowed.join(", ")),
                };
                return Err(self.src.error(
                    entry.span(),
                    format!("unknown property `{name}` on `{}`", self.name()),
                    "unknown property",
                    Some(help),
                ));
            }
            if name != "exclude" {
                let first = self
                    .props()
                    .find(|(n, _)| *n == name)
                    .map(|(_, e)| e.span());
                let what = format!("property `{name}`");
                given_twice(
                    self.src,
                    entry.span(),
                    first.filter(|s| *s != entry.span()),
                    &what,
                    "keep one",
                )?;
            }
        }
        Ok(())
    }

    pub fn no_children(&self) -> Result<(), S::Error> {
        match self.node.children() {
            Some(children) => Err(self.src.error(
                children.span(),
                format!("`{}` takes no block", self.name()),
                "unexpected block",
                Some("remove the braces and what is inside them".to_owned()),
            )),
            None => Ok(()),
        }
    }

    pub fn no_props_or_children(&self) -> Result<(), S::Error> {
        self.check_props(&[])?;
        self.no_children()
    }

    pub fn string(&self, entry: &KdlEntry, what: &str) -> Result<Spanned<String>, S::Error> {
        match entry.value() {
            KdlValue::String(s) => Ok(Spanned {
                value: s.clone(),
                span: entry.span(),
            }),
            other => Err(self.src.error(
                entry.span(),
                format!("the {what} must be a string, not `{other}`"),
                "expected a string",
                Some("put the value in double quotes".to_owned()),
            )),
        }
    }

    /// Exactly `N` string arguments, named for the messages.
    pub fn strings<const N: usize>(
        &self,
        what: [&str; N],
    ) -> Result<[Spanned<String>; N], S::Error> {
        let args = self.args();
        if args.len() != N {
            let expected = what.map(|w| format!("<{w}>")).join(" ");
            let (span, label) = match args.get(N) {
                Some(extra) => (extra.span(), "unexpected value"),
                None => (self.node.span(), "missing value"),
            };
            return Err(self.src.error(
                span,
                format!("`{}` takes {N} value(s), got {}", self.name(), args.len()),
                label,
                Some(format!("write `{} {expected}`", self.name())),
            ));
        }
        let mut out = Vec::with_capacity(N);
        for (entry, what) in args.iter().zip(what) {
            out.push(self.string(entry, what)?);
        }
        Ok(out
            .try_into()
            .unwrap_or_else(|_| unreachable!("length checked above")))
    }

    pub fn single_string(&self, what: &str) -> Result<Spanned<String>, S::Error> {
        let [value] = self.strings::<1>([what])?;
        Ok(value)
    }

    pub fn string_args(&self, what: &str, min: usize) -> Result<Vec<Spanned<String>>, S::Error> {
        let args = self.args();
        if args.len() < min {
            return Err(self.err(
                format!("`{}` needs at least {min} value(s)", self.name()),
                "missing value",
                format!("write `{} <{what}>`", self.name()),
            ));
        }
        args.iter().map(|e| self.string(e, what)).collect()
    }

    pub fn prop(&self, name: &str) -> Option<&'a KdlEntry> {
        self.props().find(|(n, _)| *n == name).map(|(_, e)| e)
    }

    pub fn prop_string(&self, name: &str) -> Result<Option<Spanned<String>>, S::Error> {
        self.prop(name)
            .map(|e| self.string(e, &format!("`{name}` property")))
            .transpose()
    }

    pub fn prop_strings(&self, name: &str) -> Result<Vec<Spanned<String>>, S::Error> {
        self.props()
            .filter(|(n, _)| *n == name)
            .map(|(_, e)| self.string(e, &format!("`{name}` property")))
            .collect()
    }

    pub fn prop_bool(&self, name: &str) -> Result<Option<bool>, S::Error> {
        let Some(entry) = self.prop(name) else {
            return Ok(None);
        };
        entry.value().as_bool().map(Some).ok_or_else(|| {
            self.src.error(
                entry.span(),
                format!("`{name}` must be `#true` or `#false`"),
                "not a boolean",
                Some(format!("write `{name}=#false`")),
            )
        })
    }

    /// A switch node: `NAME` or `NAME #true` is on, `NAME #false` off.
    pub fn flag(&self) -> Result<bool, S::Error> {
        self.check_props(&[])?;
        self.no_children()?;
        let name = self.name();
        match self.args().as_slice() {
            [] => Ok(true),
            [entry] => entry.value().as_bool().ok_or_else(|| {
                self.src.error(
                    entry.span(),
                    format!("`{name}` takes `#true` or `#false`"),
                    "not a boolean",
                    Some(format!("write `{name}` or `{name} #false`")),
                )
            }),
            [_, extra, ..] => Err(self.src.error(
                extra.span(),
                format!("`{name}` takes at most one value"),
                "unexpected",
                Some(format!("write `{name}` or `{name} #false`")),
            )),
        }
    }

    pub fn prop_u32(&self, name: &str) -> Result<Option<u32>, S::Error> {
        let Some(entry) = self.prop(name) else {
            return Ok(None);
        };
        entry
            .value()
            .as_integer()
            .and_then(|i| u32::try_from(i).ok())
            .map(Some)
            .ok_or_else(|| {
                self.src.error(
                    entry.span(),
                    format!("`{name}` must be a whole number from 0 to 4294967295"),
                    "not a valid id",
                    Some(format!("write e.g. `{name}=10001`")),
                )
            })
    }

    /// A property that must be there, as a string.
    pub fn required_prop_string(&self, name: &str) -> Result<Spanned<String>, S::Error> {
        self.prop_string(name)?.ok_or_else(|| {
            self.err(
                format!("`{}` needs `{name}=`", self.name()),
                "missing property",
                format!("add `{name}=\"…\"`"),
            )
        })
    }
}

/// The known name closest to `name`, if one is close enough to be a typo.
pub fn did_you_mean<'a>(name: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (strsim::damerau_levenshtein(name, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min()
        .map(|(_, k)| k)
}
