//! Package relationships (`Depends`, `Pre-Depends`, `Provides`, `Conflicts`,
//! `Breaks`): `a (>= 1.0) | b:any, c`.

use std::fmt;

use crate::version::Version;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
}

impl Op {
    pub fn matches(self, have: &Version, want: &Version) -> bool {
        let ord = have.cmp(want);
        match self {
            Op::Lt => ord.is_lt(),
            Op::Le => ord.is_le(),
            Op::Eq => ord.is_eq(),
            Op::Ge => ord.is_ge(),
            Op::Gt => ord.is_gt(),
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::Lt => "<<",
            Op::Le => "<=",
            Op::Eq => "=",
            Op::Ge => ">=",
            Op::Gt => ">>",
        })
    }
}

/// One package named in a relationship, maybe with a version constraint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    pub name: String,
    /// `:any`, `:native` or an architecture, when given.
    pub arch: Option<String>,
    pub constraint: Option<(Op, Version)>,
}

impl Relation {
    pub fn accepts(&self, version: &Version) -> bool {
        self.constraint
            .as_ref()
            .is_none_or(|(op, want)| op.matches(version, want))
    }
}

impl fmt::Display for Relation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if let Some(arch) = &self.arch {
            write!(f, ":{arch}")?;
        }
        if let Some((op, v)) = &self.constraint {
            write!(f, " ({op} {v})")?;
        }
        Ok(())
    }
}

/// Alternatives: any one of them satisfies the dependency.
pub type Alternatives = Vec<Relation>;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("cannot read the relationship `{0}`")]
pub struct ParseRelationError(pub String);

/// Parses a comma-separated list of alternatives.
pub fn parse_list(text: &str) -> Result<Vec<Alternatives>, ParseRelationError> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|group| group.split('|').map(parse_one).collect())
        .collect()
}

fn parse_one(text: &str) -> Result<Relation, ParseRelationError> {
    let err = || ParseRelationError(text.trim().to_owned());
    // Architecture lists and build profiles only appear in source packages:
    // drop them rather than fail.
    let mut rest = text.trim();
    for (open, close) in [('[', ']'), ('<', '>')] {
        if let (Some(a), Some(b)) = (rest.find(open), rest.rfind(close))
            && a < b
            && !rest[a..].starts_with("<<")
            && !rest[a..].starts_with("<=")
        {
            rest = rest[..a].trim_end();
        }
    }
    let (head, constraint) = match rest.find('(') {
        Some(i) => {
            let inner = rest[i + 1..].strip_suffix(')').ok_or_else(err)?.trim();
            let op_len = inner.find(|c: char| !"<>=".contains(c)).ok_or_else(err)?;
            let op = match &inner[..op_len] {
                "<<" | "<" => Op::Lt,
                "<=" => Op::Le,
                "=" => Op::Eq,
                ">=" => Op::Ge,
                ">>" | ">" => Op::Gt,
                _ => return Err(err()),
            };
            let version = Version::parse(inner[op_len..].trim()).map_err(|_| err())?;
            (rest[..i].trim(), Some((op, version)))
        }
        None => (rest, None),
    };
    let (name, arch) = match head.split_once(':') {
        Some((n, a)) => (n, Some(a.to_owned())),
        None => (head, None),
    };
    if name.is_empty() || name.contains(char::is_whitespace) {
        return Err(err());
    }
    Ok(Relation {
        name: name.to_owned(),
        arch,
        constraint,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_alternatives_constraints_and_qualifiers() {
        let list = parse_list(
            "libc6 (>= 2.34), debconf (>= 0.5) | debconf-2.0, python3:any (<< 3.12), perl:native",
        )
        .unwrap();
        assert_eq!(list.len(), 4);
        assert_eq!(list[1].len(), 2);
        assert_eq!(list[1][1].name, "debconf-2.0");
        assert_eq!(list[2][0].arch.as_deref(), Some("any"));
        let (op, v) = list[0][0].constraint.clone().unwrap();
        assert_eq!((op, v.as_str()), (Op::Ge, "2.34"));
        assert!(list[0][0].accepts(&Version::parse("2.36-9").unwrap()));
        assert!(!list[2][0].accepts(&Version::parse("3.12.1").unwrap()));
        assert_eq!(list[2][0].to_string(), "python3:any (<< 3.12)");
    }

    #[test]
    fn drops_source_only_syntax() {
        let list = parse_list("foo [amd64] <!nocheck>, bar (<= 1)").unwrap();
        assert_eq!(list[0][0].name, "foo");
        assert_eq!(list[1][0].constraint.as_ref().unwrap().0, Op::Le);
    }

    #[test]
    fn rejects_broken_constraints() {
        assert!(parse_list("foo (>= )").is_err());
        assert!(parse_list("foo (~ 1)").is_err());
    }
}
