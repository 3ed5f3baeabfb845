//! The three ways findings are printed: for people (miette snippets), as
//! JSON, and as SARIF 2.1.0 for GitHub code scanning.

use std::fmt;

use miette::{
    Diagnostic, GraphicalReportHandler, GraphicalTheme, LabeledSpan, Severity, SourceSpan,
};
use serde_json::{Value, json};

use super::{Finding, Level, RULES};
use crate::recipe::{Excerpt, Recipe};

/// One finding as a miette diagnostic, pointing into the recipe.
#[derive(Debug)]
struct Report<'a> {
    finding: &'a Finding,
    /// The recipe around the finding, and the finding's span in it.
    source: Option<(Excerpt, SourceSpan)>,
}

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.finding.message)
    }
}

impl std::error::Error for Report<'_> {}

impl Diagnostic for Report<'_> {
    fn code<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        let rule = self.finding.rule;
        Some(Box::new(format!("{} {}", rule.id, rule.name)))
    }

    fn severity(&self) -> Option<Severity> {
        Some(match self.finding.level {
            Level::Error => Severity::Error,
            Level::Warning => Severity::Warning,
            Level::Note => Severity::Advice,
        })
    }

    fn help<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        let mut text = (self.finding.help.as_deref())
            .unwrap_or(self.finding.rule.fix)
            .to_owned();
        for item in &self.finding.items {
            text.push_str("\n- ");
            text.push_str(item);
        }
        Some(Box::new(text))
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.source
            .as_ref()
            .map(|(excerpt, _)| excerpt as &dyn miette::SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let (_, span) = self.source.as_ref()?;
        let span = *span;
        let label = LabeledSpan::new_with_span(Some(self.finding.rule.summary.to_owned()), span);
        Some(Box::new(std::iter::once(label)))
    }
}

/// Findings as people read them, then a one-line count.
pub fn human(recipe: &Recipe, findings: &[Finding], color: bool) -> String {
    let theme = if color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let handler = GraphicalReportHandler::new_themed(theme).with_width(100);
    let name = recipe.source.path.display().to_string();
    let mut out = String::new();
    for finding in findings {
        let report = Report {
            finding,
            source: finding
                .span
                .map(|span| Excerpt::new(name.clone(), recipe.source.text.clone(), span)),
        };
        // Writing into a String cannot fail.
        let _ = handler.render_report(&mut out, &report);
        out.push('\n');
    }
    out.push_str(&summary(recipe, findings));
    out.push('\n');
    out
}

fn summary(recipe: &Recipe, findings: &[Finding]) -> String {
    let count = |level| findings.iter().filter(|f| f.level == level).count();
    if findings.is_empty() {
        return format!("{}: no problems found", recipe.source.path.display());
    }
    format!(
        "{}: {} error(s), {} warning(s), {} note(s)",
        recipe.source.path.display(),
        count(Level::Error),
        count(Level::Warning),
        count(Level::Note)
    )
}

/// `(line, column)`, both from 1, of a byte offset in the recipe.
fn position(recipe: &Recipe, offset: usize) -> (usize, usize) {
    let before = &recipe.source.text[..offset.min(recipe.source.text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// The region a finding covers: its span, or the first line of the file.
fn region(recipe: &Recipe, finding: &Finding) -> Value {
    let (start, end) = match finding.span {
        Some(span) => (
            position(recipe, span.offset()),
            position(recipe, span.offset() + span.len()),
        ),
        None => ((1, 1), (1, 1)),
    };
    json!({
        "startLine": start.0,
        "startColumn": start.1,
        "endLine": end.0,
        "endColumn": end.1,
    })
}

pub fn json(recipe: &Recipe, findings: &[Finding]) -> Value {
    let items: Vec<Value> = findings
        .iter()
        .map(|f| {
            let region = region(recipe, f);
            json!({
                "rule": f.rule.id,
                "name": f.rule.name,
                "level": f.level,
                "message": f.message,
                "line": f.span.map(|_| region["startLine"].clone()),
                "column": f.span.map(|_| region["startColumn"].clone()),
                "items": f.items,
                "fix": f.help.as_deref().unwrap_or(f.rule.fix),
            })
        })
        .collect();
    let count = |level| findings.iter().filter(|f| f.level == level).count();
    json!({
        "recipe": recipe.source.path,
        "findings": items,
        "errors": count(Level::Error),
        "warnings": count(Level::Warning),
        "notes": count(Level::Note),
    })
}

/// A SARIF 2.1.0 log with one run: every rule in the driver, one result per
/// finding, located in its recipe (`uri` as given on the command line).
pub fn sarif(results: &[(Recipe, Vec<Finding>)]) -> Value {
    let rules: Vec<Value> = RULES
        .iter()
        .map(|r| {
            json!({
                "id": r.id,
                "name": r.name,
                "shortDescription": {"text": r.summary},
                "help": {"text": r.fix},
                "defaultConfiguration": {"level": r.level.as_str()},
            })
        })
        .collect();
    let mut out = Vec::new();
    for (recipe, findings) in results {
        let uri = recipe.source.path.to_string_lossy().replace('\\', "/");
        for f in findings {
            let mut text = f.message.clone();
            if !f.items.is_empty() {
                text.push_str(": ");
                text.push_str(&f.items.join(", "));
            }
            out.push(json!({
                "ruleId": f.rule.id,
                "ruleIndex": RULES.iter().position(|r| r.id == f.rule.id),
                "level": f.level.as_str(),
                "message": {"text": text},
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": {"uri": uri},
                        "region": region(recipe, f),
                    }
                }],
            }));
        }
    }
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "strata",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules,
            }},
            "results": out,
        }],
    })
}

/// The rule table, for `strata lint --list`.
pub fn list() -> String {
    let mut out = String::new();
    for r in RULES {
        out.push_str(&format!(
            "{}  {:<26} {:<8} {}\n",
            r.id,
            r.name,
            r.level.as_str(),
            r.summary
        ));
    }
    out
}
