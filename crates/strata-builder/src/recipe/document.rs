//! The one way strata turns the bytes of a KDL file (a recipe, a lock) into a
//! document: UTF-8 checked, nesting bounded, then parsed.
//!
//! The `kdl` parser recurses once per nested block, block comment and `/-`,
//! so a few kilobytes of `{` or `/*` overflow the stack and abort the
//! process. A cheap scan of the text refuses such nesting first, at the
//! place where it goes too deep, so the parser only ever sees shallow input.

use std::sync::Arc;

use kdl::KdlDocument;
use miette::SourceSpan;

use super::node::Source;

/// How deep blocks, block comments and runs of `/-` may nest, together.
/// Recipes nest three or four levels; 64 keeps the parser's recursion far
/// from the main thread's stack in debug and release builds alike.
pub const MAX_NESTING: usize = 64;

/// The document `make` builds over `bytes`, or an error at the first byte
/// that is not UTF-8 (shown over the text with that byte replaced).
pub fn text<S: Source>(bytes: Vec<u8>, make: impl FnOnce(Arc<String>) -> S) -> Result<S, S::Error> {
    match String::from_utf8(bytes) {
        Ok(text) => Ok(make(Arc::new(text))),
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            let byte = e.as_bytes()[at];
            let src = make(Arc::new(String::from_utf8_lossy(e.as_bytes()).into_owned()));
            let span = SourceSpan::from(at..at + char::REPLACEMENT_CHARACTER.len_utf8());
            let position = src.position(span);
            Err(src.error(
                span,
                format!(
                    "the {} is not UTF-8: byte `{byte:#04x}` at {position}",
                    S::NAME
                ),
                "not UTF-8",
                Some(format!("save the {} as UTF-8", S::NAME)),
            ))
        }
    }
}

/// `text` parsed as KDL 2.0, once its nesting is known to be shallow.
pub fn parse<S: Source>(src: &S, text: &str) -> Result<KdlDocument, S::Error> {
    check_nesting(text).map_err(|too_deep| {
        let (message, label, help) = match too_deep.kind {
            Deep::Unopened => (
                "`}` closes no block".to_owned(),
                "nothing to close",
                "remove it, or add the `{` it should close".to_owned(),
            ),
            Deep::Glued => (
                format!(
                    "the {} is not valid KDL: a string must be followed by a space",
                    S::NAME
                ),
                "expected a space",
                "separate the values with a space, or quote the whole text".to_owned(),
            ),
            Deep::Disallowed(c) => (
                format!(
                    "the {} is not valid KDL: it holds the character U+{:04X}, which KDL does not allow",
                    S::NAME,
                    u32::from(c)
                ),
                "not allowed",
                "remove it: KDL allows no control or text-direction characters".to_owned(),
            ),
            Deep::Equals => (
                format!(
                    "the {} is not valid KDL: `=` twice in one property",
                    S::NAME
                ),
                "second `=`",
                "write properties as `key=value`, separated by spaces".to_owned(),
            ),
            Deep::Nested => (
                format!(
                    "the {} nests blocks, comments and `/-` more than {MAX_NESTING} deep",
                    S::NAME
                ),
                "too deep",
                format!("keep blocks and comments within {MAX_NESTING} levels"),
            ),
        };
        src.error(
            SourceSpan::from(too_deep.at..too_deep.at + too_deep.len),
            message,
            label,
            Some(help),
        )
    })?;
    KdlDocument::parse_v2(text).map_err(|e| {
        let first = e.diagnostics.first();
        let span = first.map_or(SourceSpan::from(0..0), |d| d.span);
        let detail = first
            .and_then(|d| d.message.clone())
            .unwrap_or_else(|| "syntax error".to_owned());
        let label = first
            .and_then(|d| d.label.clone())
            .unwrap_or_else(|| "here".to_owned());
        let help = first.and_then(|d| d.help.clone()).or_else(|| {
            Some(format!(
                "{}s are KDL 2.0: strings are quoted, booleans are `#true`/`#false`",
                S::NAME
            ))
        });
        src.error(
            span,
            format!("the {} is not valid KDL: {detail}", S::NAME),
            label,
            help,
        )
    })
}

/// Where the scan stopped, and why.
#[derive(Debug, PartialEq, Eq)]
struct TooDeep {
    at: usize,
    len: usize,
    kind: Deep,
}

#[derive(Debug, PartialEq, Eq)]
enum Deep {
    /// A `}` with no open block.
    Unopened,
    /// More than `MAX_NESTING` levels.
    Nested,
    /// A string with something other than a space or a delimiter after it.
    Glued,
    /// A second `=` in one property (`a=b=c`), which the parser follows
    /// recursively.
    Equals,
    /// A character KDL allows nowhere; the parser's error recovery then
    /// reads `/*` in the string it sits in as nested comments.
    Disallowed(char),
}

/// Follows KDL's lexical structure just enough to count nesting: strings
/// (quoted, multi-line, raw with any number of `#`), line comments and block
/// comments (which nest) are skipped, so a `{` inside them counts for nothing.
fn check_nesting(text: &str) -> Result<(), TooDeep> {
    if let Some((at, c)) = text.char_indices().find(|&(at, c)| disallowed(at, c)) {
        return Err(TooDeep {
            at,
            len: c.len_utf8(),
            kind: Deep::Disallowed(c),
        });
    }
    let bytes = text.as_bytes();
    let mut blocks = 0usize;
    // Consecutive `/-` not yet followed by what they comment out.
    let mut slashdashes = 0usize;
    // Whether the text since the last space holds an `=`.
    let mut property = false;
    let mut i = 0;
    let deeper = |at: usize, len: usize, depth: usize| {
        if depth > MAX_NESTING {
            Err(TooDeep {
                at,
                len,
                kind: Deep::Nested,
            })
        } else {
            Ok(())
        }
    };
    while i < bytes.len() {
        match bytes[i] {
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                i = find(bytes, i, b"\n").unwrap_or(bytes.len());
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                property = false;
                i = skip_comment(bytes, i, blocks + slashdashes)?;
            }
            b'/' if bytes.get(i + 1) == Some(&b'-') => {
                slashdashes += 1;
                deeper(i, 2, blocks + slashdashes)?;
                i += 2;
            }
            b'{' => {
                property = false;
                blocks += 1;
                slashdashes = 0;
                deeper(i, 1, blocks)?;
                i += 1;
            }
            b'}' => {
                property = false;
                blocks = blocks.checked_sub(1).ok_or(TooDeep {
                    at: i,
                    len: 1,
                    kind: Deep::Unopened,
                })?;
                slashdashes = 0;
                i += 1;
            }
            b'"' | b'#' => {
                slashdashes = 0;
                let string = bytes[i..].iter().find(|&&b| b != b'#') == Some(&b'"');
                i = skip_string(bytes, i);
                // KDL wants a space or a delimiter after a string. Without
                // one the parser's error recovery reads the rest differently
                // from this scan (a `{` inside the next string opens a
                // block), so stop here, where the text stops being KDL.
                if string && !bytes.get(i).is_none_or(|&b| ends_string(b)) {
                    return Err(TooDeep {
                        at: i,
                        len: 1,
                        kind: Deep::Glued,
                    });
                }
            }
            b'=' => {
                if property {
                    return Err(TooDeep {
                        at: i,
                        len: 1,
                        kind: Deep::Equals,
                    });
                }
                property = true;
                slashdashes = 0;
                i += 1;
            }
            b if b.is_ascii_whitespace() || b == b'\\' || b == b';' => {
                property = false;
                i += 1;
            }
            _ => {
                slashdashes = 0;
                i += 1;
            }
        }
    }
    Ok(())
}

/// KDL 2.0's disallowed code points: control characters other than
/// whitespace and newlines, text-direction marks, and a byte-order mark
/// anywhere but at the start.
fn disallowed(at: usize, c: char) -> bool {
    matches!(c, '\u{0}'..='\u{8}' | '\u{E}'..='\u{1F}' | '\u{7F}')
        || matches!(c, '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
        || (c == '\u{FEFF}' && at > 0)
}

/// Whether `b` may follow a string: whitespace, a delimiter, or any
/// non-ASCII byte (KDL's other whitespace characters).
fn ends_string(b: u8) -> bool {
    b.is_ascii_whitespace() || b"{}();=/\\".contains(&b) || !b.is_ascii()
}

/// The offset just past the block comment opening at `start`, which nests
/// inside `outer` levels.
fn skip_comment(bytes: &[u8], start: usize, outer: usize) -> Result<usize, TooDeep> {
    let mut depth = 0usize;
    let mut i = start;
    while i < bytes.len() {
        match (bytes[i], bytes.get(i + 1)) {
            (b'/', Some(b'*')) => {
                depth += 1;
                if outer + depth > MAX_NESTING {
                    return Err(TooDeep {
                        at: i,
                        len: 2,
                        kind: Deep::Nested,
                    });
                }
                i += 2;
            }
            (b'*', Some(b'/')) => {
                depth -= 1;
                i += 2;
                if depth == 0 {
                    return Ok(i);
                }
            }
            _ => i += 1,
        }
    }
    Ok(bytes.len())
}

/// The offset just past the string (or `#` keyword) starting at `start`:
/// `"…"` and `"""…"""` with backslash escapes, `#"…"#` and `#"""…"""#` raw
/// with as many `#` as opened them. An unterminated string runs to the end;
/// a single-line string ends at a newline, where the parser stops it too
/// (its error recovery then reads what follows as nodes, so the scan must
/// count the braces there). A backslash followed by whitespace (KDL's
/// whitespace escape) carries a string over newlines.
fn skip_string(bytes: &[u8], start: usize) -> usize {
    let hashes = bytes[start..].iter().take_while(|&&b| b == b'#').count();
    let quote = start + hashes;
    if bytes.get(quote) != Some(&b'"') {
        // `#true`, `#null`, …: a keyword, not a string.
        return quote.max(start + 1);
    }
    let multi = bytes[quote..].starts_with(b"\"\"\"");
    let body = quote + if multi { 3 } else { 1 };
    let mut close = Vec::with_capacity(3 + hashes);
    close.extend_from_slice(if multi { b"\"\"\"" } else { b"\"" });
    close.extend(std::iter::repeat_n(b'#', hashes));
    let mut i = body;
    while i < bytes.len() {
        if hashes == 0 && bytes[i] == b'\\' {
            i += 1;
            let spaces = bytes[i..]
                .iter()
                .take_while(|b| b.is_ascii_whitespace())
                .count();
            i += spaces.max(1);
        } else if bytes[i..].starts_with(&close) {
            return i + close.len();
        } else if !multi && newline_at(bytes, i) {
            return i;
        } else {
            i += 1;
        }
    }
    bytes.len()
}

/// Whether one of KDL's newlines starts at `i`: CR, LF, form feed, NEL,
/// and the line and paragraph separators.
fn newline_at(bytes: &[u8], i: usize) -> bool {
    let rest = &bytes[i..];
    matches!(rest.first(), Some(b'\n' | b'\r' | 0x0C))
        || rest.starts_with("\u{85}".as_bytes())
        || rest.starts_with("\u{2028}".as_bytes())
        || rest.starts_with("\u{2029}".as_bytes())
}

/// The offset of the first `needle` at or after `from`.
fn find(bytes: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    bytes[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| from + p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deep(text: &str) -> Option<(usize, Deep)> {
        check_nesting(text).err().map(|e| (e.at, e.kind))
    }

    #[test]
    fn shallow_documents_pass() {
        assert_eq!(deep("a {\n b { c; }\n}\n/* x /* y */ */ d /- e"), None);
        assert_eq!(deep(&"a {".repeat(MAX_NESTING)), None);
    }

    #[test]
    fn braces_in_strings_and_comments_count_for_nothing() {
        let text = concat!(
            "a \"}}}\" \"\\\"}\" #\"}\"# ##\"\"#}\"## \"\"\"\n}}\n\"\"\"\n",
            "// }}}\n/* } /* } */ } */ b #true {}\n"
        );
        assert_eq!(deep(text), None);
    }

    #[test]
    fn a_single_line_string_ends_at_a_newline() {
        // Found by the fuzzer: an unclosed string, then nested blocks that
        // the parser's error recovery followed until the stack ran out.
        let text = format!("a \"x\nb {}", "c {".repeat(MAX_NESTING + 1));
        assert_eq!(deep(&text).map(|(_, kind)| kind), Some(Deep::Nested));
        // A whitespace escape carries the string over the newline.
        assert_eq!(deep("a \"x \\\n  } y\" b"), None);
        assert_eq!(deep("a \"\"\"\n}\n\"\"\"\n"), None);
    }

    #[test]
    fn a_stray_brace_is_found_where_it_is() {
        assert_eq!(deep("a\n}}}"), Some((2, Deep::Unopened)));
    }

    #[test]
    fn too_deep_is_found_at_the_first_level_too_many() {
        let blocks = "a {".repeat(MAX_NESTING + 1);
        assert_eq!(deep(&blocks), Some((3 * MAX_NESTING + 2, Deep::Nested)));
        let comments = "/*".repeat(MAX_NESTING + 1);
        assert_eq!(deep(&comments), Some((2 * MAX_NESTING, Deep::Nested)));
        let slashdashes = "a ".to_owned() + &"/- ".repeat(MAX_NESTING + 1);
        assert_eq!(
            deep(&slashdashes),
            Some((2 + 3 * MAX_NESTING, Deep::Nested))
        );
        // Levels of different kinds add up.
        let mixed = "a {".repeat(MAX_NESTING) + "/*";
        assert_eq!(deep(&mixed), Some((3 * MAX_NESTING, Deep::Nested)));
    }

    #[test]
    fn a_string_glued_to_what_follows_stops_the_scan() {
        // Read as KDL's error recovery would, the `{` in the strings nest.
        let text = "a x=\"b\"c".to_owned() + &"\" {d".repeat(3 * MAX_NESTING);
        assert_eq!(deep(&text), Some((7, Deep::Glued)));
        assert_eq!(deep("a \"b\"=\"c\";\"d\"{}\n(\"t\")\"e\"\n"), None);
    }

    #[test]
    fn a_second_equals_sign_in_a_property_stops_the_scan() {
        assert_eq!(
            deep(&("a ".to_owned() + &"x=".repeat(1000))),
            Some((5, Deep::Equals))
        );
        assert_eq!(deep("a x=1 \"y\"=\"=\" z=#\"=\"#\nb k=v"), None);
    }

    #[test]
    fn a_disallowed_character_stops_the_scan() {
        let path = "/*".repeat(5000);
        assert_eq!(
            deep(&format!("entrypoint \"/usr/\u{f}{path}\"")),
            Some((17, Deep::Disallowed('\u{f}')))
        );
        assert_eq!(deep("\u{feff}name \"x\"\tversion \"1\"\r\n"), None);
    }

    #[test]
    fn slashdashes_reset_once_something_follows() {
        assert_eq!(deep(&"/- a ".repeat(10 * MAX_NESTING)), None);
    }
}
