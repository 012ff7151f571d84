//! The prompt-file format, parsed by pure functions with errors that name the line.
//!
//! ```text
//! # prompt_name
//! text describing the image...
//! more text...
//!
//! # another_prompt_name
//! more text for another image...
//! ```
//!
//! A line that starts with `#` is a header naming the prompt that follows; the prompt runs to
//! the next header. Its text is kept as written, newlines included, without the blank lines
//! around it. A line that starts with `//` is a comment, and a line `## Title` starts a
//! section, which the prompts after it belong to (a bare `##` ends it); neither is ever a
//! prompt or part of one.

use std::collections::HashMap;
use std::fmt;

use thiserror::Error;

/// The one header key that may be given more than once: each `ref=` adds a reference image.
pub const REPEATABLE_KEY: &str = "ref";

/// File names carry the prompt name, and most file systems stop at 255 bytes per name.
pub const MAX_NAME_BYTES: usize = 128;

/// One named prompt from a prompt file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    pub name: String,
    pub text: String,
    /// The line of the header, 1-based, so later checks can point at it.
    pub line: usize,
    /// Options after the name on the header line, in order: `# wide size=1536x1024`.
    pub options: Vec<HeaderOption>,
    /// The title of the `## Title` section it is in, if any.
    pub section: Option<String>,
}

/// A `key=value` word on a header line. The parser checks only the shape; what keys and
/// values mean is `config`'s business.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderOption {
    pub key: String,
    pub value: String,
}

/// A prompt-file error: `origin:line: what is wrong`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{origin}:{line}: {kind}")]
pub struct ParseError {
    pub origin: String,
    pub line: usize,
    pub kind: ParseErrorKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseErrorKind {
    InvalidUtf8,
    TextBeforeFirstHeader,
    /// Text right after a `## Title` line: a section starts no prompt.
    TextAfterSection {
        title: String,
        line: usize,
    },
    MissingName,
    MoreThanOneWord {
        header: String,
    },
    BadOption {
        word: String,
    },
    RepeatedOption {
        key: String,
        words: [String; 2],
    },
    BadName {
        name: String,
        bad: char,
    },
    ReservedName {
        name: String,
    },
    NameTooLong {
        name: String,
    },
    DuplicateName {
        name: String,
        first_line: usize,
    },
    NoText {
        name: String,
    },
    NoPrompts,
}

impl fmt::Display for ParseErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ParseErrorKind::*;
        match self {
            InvalidUtf8 => write!(f, "the file is not valid UTF-8 text"),
            TextBeforeFirstHeader => write!(
                f,
                "text before the first header; every prompt starts with a line `# name`"
            ),
            TextAfterSection { title, line } => write!(
                f,
                "text after the section `## {title}` (line {line}) that belongs to no prompt; a \
                 section is a heading, and each prompt under it starts with a line `# name`"
            ),
            MissingName => write!(f, "a header needs a name, as in `# sunset_city`"),
            MoreThanOneWord { header } => write!(
                f,
                "the header `{header}` has more than one word; a prompt name is one word of \
                 letters, digits, `_` and `-`, and may be followed only by options written \
                 key=value (e.g. `# wide size=1536x1024`)"
            ),
            BadOption { word } => write!(
                f,
                "`{word}` is not an option: write key=value, with a value in double quotes if \
                 it has spaces"
            ),
            // Only `ref` may repeat: each adds a reference image.
            RepeatedOption { key, words } => write!(
                f,
                "the option `{key}` is given twice in this header (`{}`, then `{}`); give \
                 each option once (only `{REPEATABLE_KEY}` may repeat)",
                words[0], words[1]
            ),
            BadName { name, bad } => write!(
                f,
                "the prompt name `{name}` contains {}; names may use only letters, digits, `_` \
                 and `-`, since they become part of file names",
                describe_char(*bad)
            ),
            ReservedName { name } => write!(
                f,
                "`{name}` cannot be a prompt name; names may use only letters, digits, `_` and `-`"
            ),
            NameTooLong { name } => write!(
                f,
                "the prompt name `{}…` is longer than {MAX_NAME_BYTES} bytes",
                name.chars().take(24).collect::<String>()
            ),
            DuplicateName { name, first_line } => write!(
                f,
                "the prompt name `{name}` is already used at line {first_line} (names must \
                 differ in more than letter case, or their files would collide)"
            ),
            NoText { name } => write!(f, "the prompt `{name}` has no text"),
            NoPrompts => write!(f, "no prompts; a prompt starts with a line `# name`"),
        }
    }
}

fn describe_char(c: char) -> String {
    match c {
        ' ' => "a space".to_owned(),
        '/' | '\\' => format!("a path separator `{c}`"),
        '.' => "a dot `.`".to_owned(),
        c if c.is_control() => format!("the control character U+{:04X}", u32::from(c)),
        c => format!("`{c}`"),
    }
}

/// Parses a prompt file from raw bytes: invalid UTF-8 is an error pointing at its line, and
/// the text is read as [`parse`] reads it (one leading BOM skipped).
pub fn parse_bytes(bytes: &[u8], origin: &str) -> Result<Vec<Prompt>, ParseError> {
    match std::str::from_utf8(bytes) {
        Ok(text) => parse(text, origin),
        Err(e) => {
            let good = &bytes[..e.valid_up_to()];
            let line = 1 + good.iter().filter(|&&b| b == b'\n').count();
            Err(ParseError {
                origin: origin.to_owned(),
                line,
                kind: ParseErrorKind::InvalidUtf8,
            })
        }
    }
}

/// Parses the text of a prompt file. `origin` names the file in errors.
pub fn parse(text: &str, origin: &str) -> Result<Vec<Prompt>, ParseError> {
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
    let err = |line: usize, kind: ParseErrorKind| ParseError {
        origin: origin.to_owned(),
        line,
        kind,
    };

    let mut prompts: Vec<Prompt> = Vec::new();
    // The header line of the prompt being read, and its body lines.
    let mut current: Option<(String, usize, Vec<HeaderOption>)> = None;
    // The section the next prompts belong to, and where it began until a prompt comes.
    let mut section: Option<String> = None;
    let mut opened: Option<usize> = None;
    // A comment that followed a blank line takes one blank line after it along, so that
    // commenting a paragraph out leaves the prompt's text as it was.
    let mut drop_blank = false;
    let mut body: Vec<&str> = Vec::new();
    // Each name so far, folded to lower case, with its header's line.
    let mut seen: HashMap<String, usize> = HashMap::new();

    for (i, raw) in text.split('\n').enumerate() {
        let line_no = i + 1;
        let line = raw.trim_end_matches('\r');
        if line.starts_with("//") {
            drop_blank = current.is_some() && body.last().is_some_and(|l| l.trim().is_empty());
            continue;
        }
        if std::mem::take(&mut drop_blank) && line.trim().is_empty() {
            continue;
        }
        if let Some(title) = line.strip_prefix("##") {
            finish(current.take(), &mut body, &mut prompts, &section)
                .map_err(|(l, k)| err(l, k))?;
            let title = title.trim_start_matches('#').trim();
            section = (!title.is_empty()).then(|| title.to_owned());
            opened = Some(line_no);
            continue;
        }
        if let Some(rest) = line.strip_prefix('#') {
            finish(current.take(), &mut body, &mut prompts, &section)
                .map_err(|(l, k)| err(l, k))?;
            let (name, options) = header(rest, line).map_err(|k| err(line_no, k))?;
            // Names that differ only in case collide on case-insensitive disks.
            if let Some(&first_line) = seen.get(&name.to_lowercase()) {
                return Err(err(
                    line_no,
                    ParseErrorKind::DuplicateName { name, first_line },
                ));
            }
            seen.insert(name.to_lowercase(), line_no);
            current = Some((name, line_no, options));
            opened = None;
        } else if current.is_some() {
            body.push(line);
        } else if !line.trim().is_empty() {
            return Err(err(
                line_no,
                match (opened, &section) {
                    (Some(at), Some(title)) => ParseErrorKind::TextAfterSection {
                        title: title.clone(),
                        line: at,
                    },
                    _ => ParseErrorKind::TextBeforeFirstHeader,
                },
            ));
        }
    }
    finish(current.take(), &mut body, &mut prompts, &section).map_err(|(l, k)| err(l, k))?;

    if prompts.is_empty() {
        return Err(err(1, ParseErrorKind::NoPrompts));
    }
    Ok(prompts)
}

/// Closes the prompt being read, if any: its text is the body without surrounding blank lines.
fn finish(
    current: Option<(String, usize, Vec<HeaderOption>)>,
    body: &mut Vec<&str>,
    prompts: &mut Vec<Prompt>,
    section: &Option<String>,
) -> Result<(), (usize, ParseErrorKind)> {
    if let Some((name, line, options)) = current {
        let text = trim_blank_lines(body);
        if text.is_empty() {
            return Err((line, ParseErrorKind::NoText { name }));
        }
        prompts.push(Prompt {
            name,
            text,
            line,
            options,
            section: section.clone(),
        });
    }
    body.clear();
    Ok(())
}

/// Reads the name, and the options after it, from what follows `#` on a header line.
///
/// A seed file's headers are one word, so every valid seed file reads as before. A second
/// word that is not `key=value` is the old error, since the user most likely meant a name.
fn header(rest: &str, header: &str) -> Result<(String, Vec<HeaderOption>), ParseErrorKind> {
    let rest = rest.trim();
    let (name, mut tail) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    if name.is_empty() {
        return Err(ParseErrorKind::MissingName);
    }
    check_name(name)?;
    let mut options = Vec::new();
    loop {
        tail = tail.trim_start();
        if tail.is_empty() {
            break;
        }
        let (word, rest) = next_word(tail);
        let Some((key, value)) = word.split_once('=') else {
            return Err(if options.is_empty() {
                ParseErrorKind::MoreThanOneWord {
                    header: header.trim_end().to_owned(),
                }
            } else {
                ParseErrorKind::BadOption {
                    word: word.to_owned(),
                }
            });
        };
        // A param's key names a field of the request (`param.frame_count`), and its value is
        // read as JSON, quotes and all: `param.x={"a":1}`, `param.x="a b"` (a string).
        let param = key.starts_with("param.");
        let value = match value.strip_prefix('"') {
            _ if param => Some(value),
            Some(quoted) => quoted.strip_suffix('"').filter(|v| !v.contains('"')),
            None => (!value.contains('"')).then_some(value),
        };
        let key_ok = !key.is_empty()
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || (param && c == '.'));
        let value = match value {
            Some(value) if key_ok && !value.is_empty() => value,
            _ => {
                return Err(ParseErrorKind::BadOption {
                    word: word.to_owned(),
                });
            }
        };
        // `input-fidelity` and `input_fidelity` are one key.
        let same_key = |o: &&HeaderOption| {
            o.key == key || (!param && o.key.replace('-', "_") == key.replace('-', "_"))
        };
        if key != REPEATABLE_KEY
            && let Some(earlier) = options.iter().find(same_key)
        {
            return Err(ParseErrorKind::RepeatedOption {
                key: key.to_owned(),
                words: [
                    format!("{}={}", earlier.key, earlier.value),
                    format!("{key}={value}"),
                ],
            });
        }
        options.push(HeaderOption {
            key: key.to_owned(),
            value: value.to_owned(),
        });
        tail = rest;
    }
    Ok((name.to_owned(), options))
}

/// Splits off the next word: up to whitespace, or for `key="..."` up to the closing quote.
fn next_word(s: &str) -> (&str, &str) {
    if let Some(eq) = s.find('=')
        && s[..eq].chars().all(|c| !c.is_whitespace())
        && s[eq + 1..].starts_with('"')
        && let Some(close) = s[eq + 2..].find('"')
    {
        let end = eq + 2 + close + 1;
        return (&s[..end], &s[end..]);
    }
    let end = s.find(char::is_whitespace).unwrap_or(s.len());
    (&s[..end], &s[end..])
}

/// A name is one word of letters, digits, `_` and `-`: it becomes part of file names.
pub fn check_name(name: &str) -> Result<(), ParseErrorKind> {
    if name.is_empty() {
        return Err(ParseErrorKind::MissingName);
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(ParseErrorKind::NameTooLong {
            name: name.to_owned(),
        });
    }
    if let Some(bad) = name.chars().find(|c| !is_name_char(*c)) {
        return Err(ParseErrorKind::BadName {
            name: name.to_owned(),
            bad,
        });
    }
    if name.chars().all(|c| c == '-') {
        // `-` alone reads as an option wherever the name is echoed back.
        return Err(ParseErrorKind::ReservedName {
            name: name.to_owned(),
        });
    }
    Ok(())
}

pub fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '-'
}

fn trim_blank_lines(lines: &[&str]) -> String {
    let is_blank = |l: &&str| l.trim().is_empty();
    let start = lines.iter().position(|l| !is_blank(l));
    let end = lines.iter().rposition(|l| !is_blank(l));
    match (start, end) {
        (Some(s), Some(e)) => lines[s..=e].join("\n"),
        _ => String::new(),
    }
}

/// Writes prompts in the file format; `parse(&render(p))` gives back `p`.
pub fn render(prompts: &[Prompt]) -> String {
    let mut out = String::new();
    let mut section: Option<&str> = None;
    for p in prompts {
        if p.section.as_deref() != section {
            section = p.section.as_deref();
            match section {
                Some(title) => out.push_str(&format!("## {title}\n\n")),
                None => out.push_str("##\n\n"),
            }
        }
        out.push_str("# ");
        out.push_str(&p.name);
        for o in &p.options {
            // A param's value keeps its own quotes (see `header`).
            if o.value.contains(char::is_whitespace) && !o.key.starts_with("param.") {
                out.push_str(&format!(" {}=\"{}\"", o.key, o.value));
            } else {
                out.push_str(&format!(" {}={}", o.key, o.value));
            }
        }
        out.push('\n');
        out.push_str(&p.text);
        out.push_str("\n\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ok(text: &str) -> Vec<(String, String)> {
        parse(text, "p.txt")
            .unwrap()
            .into_iter()
            .map(|p| (p.name, p.text))
            .collect()
    }

    fn fails(text: &str) -> ParseError {
        parse(text, "prompts.txt").unwrap_err()
    }

    fn pair(name: &str, text: &str) -> (String, String) {
        (name.to_owned(), text.to_owned())
    }

    #[test]
    fn reads_the_seed_example() {
        let text = "# prompt_name\ntext describing the image...\nmore text...\n\n# another_prompt_name\nmore text for another image...\n";
        assert_eq!(
            ok(text),
            vec![
                pair("prompt_name", "text describing the image...\nmore text..."),
                pair("another_prompt_name", "more text for another image..."),
            ]
        );
    }

    #[test]
    fn keeps_paragraphs_and_inner_whitespace_but_trims_surrounding_blank_lines() {
        let text = "# a\n\n\n  indented line\n\nsecond paragraph  \n\n  \n# b\nx";
        assert_eq!(
            ok(text),
            vec![
                pair("a", "  indented line\n\nsecond paragraph  "),
                pair("b", "x")
            ]
        );
    }

    #[test]
    fn header_lines_are_recorded() {
        let p = parse("\n\n# a\nx\n# b\ny", "f").unwrap();
        assert_eq!((p[0].line, p[1].line), (3, 5));
    }

    #[test]
    fn header_without_space_and_names_with_dash_digits_unicode() {
        assert_eq!(
            ok("#a-1_B\nx\n#   café  \ny"),
            vec![pair("a-1_B", "x"), pair("café", "y")]
        );
    }

    #[test]
    fn hash_inside_text_is_text() {
        assert_eq!(
            ok("# a\nline with # inside\n  # indented hash"),
            vec![pair("a", "line with # inside\n  # indented hash")]
        );
    }

    #[test]
    fn accepts_crlf_and_bom() {
        assert_eq!(
            ok("\u{FEFF}# a\r\nline one\r\nline two\r\n\r\n# b\r\nz\r\n"),
            vec![pair("a", "line one\nline two"), pair("b", "z")]
        );
        let bytes = b"\xEF\xBB\xBF# a\r\nx\r\n";
        assert_eq!(parse_bytes(bytes, "f").unwrap()[0].text, "x");
    }

    #[test]
    fn only_one_bom_is_skipped_from_bytes_as_from_text() {
        // Found by the fuzzer: bytes and text once read a doubled BOM differently.
        let bytes = b"\xEF\xBB\xBF\xEF\xBB\xBF# a\nx\n";
        let text = std::str::from_utf8(bytes).unwrap();
        assert_eq!(parse_bytes(bytes, "f"), parse(text, "f"));
        assert_eq!(
            parse_bytes(bytes, "f").unwrap_err().kind,
            ParseErrorKind::TextBeforeFirstHeader
        );
    }

    fn opts(text: &str) -> Vec<(String, String)> {
        parse(text, "p.txt").unwrap()[0]
            .options
            .iter()
            .map(|o| (o.key.clone(), o.value.clone()))
            .collect()
    }

    #[test]
    fn headers_may_carry_options() {
        assert_eq!(
            opts("# wide size=1536x1024 quality=low count=2 ref=style.png\nx\n"),
            [
                ("size", "1536x1024"),
                ("quality", "low"),
                ("count", "2"),
                ("ref", "style.png")
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
        assert_eq!(
            opts("# a style=\"in the style of a woodcut\"  ref=\"my refs/a b.png\"\nx\n"),
            [
                ("style", "in the style of a woodcut"),
                ("ref", "my refs/a b.png")
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
        assert!(opts("# plain\nx\n").is_empty());
    }

    #[test]
    fn bad_options_name_the_word() {
        let e = fails("# a size=1024x1024 wide\nx\n");
        assert_eq!(
            e.kind,
            ParseErrorKind::BadOption {
                word: "wide".into()
            }
        );
        for bad in ["=x", "size=", "size=\"open", "k!y=v", "a=b\"c"] {
            let e = fails(&format!("# a {bad}\nx\n"));
            assert!(
                matches!(e.kind, ParseErrorKind::BadOption { .. }),
                "{bad}: {e}"
            );
            assert_eq!(e.line, 1);
        }
        // A second plain word is still read as a name with a space in it.
        let e = fails("# sunset city\nx\n");
        assert!(e.to_string().contains("key=value"), "{e}");
    }

    #[test]
    fn a_key_given_twice_in_one_header_names_the_line_and_the_key() {
        let e = fails("# a\nx\n# b count=2 count=3\ny\n");
        assert_eq!(e.line, 3);
        assert_eq!(
            e.kind,
            ParseErrorKind::RepeatedOption {
                key: "count".into(),
                words: ["count=2".into(), "count=3".into()],
            }
        );
        assert_eq!(
            e.to_string(),
            "prompts.txt:3: the option `count` is given twice in this header (`count=2`, then \
             `count=3`); give each option once (only `ref` may repeat)"
        );
        // The same value twice is still a slip, and both spellings of a key are one key.
        let repeated = |text: &str| match fails(text).kind {
            ParseErrorKind::RepeatedOption { key, .. } => key,
            other => panic!("{other}"),
        };
        assert_eq!(
            repeated("# a quality=low size=auto quality=low\nx\n"),
            "quality"
        );
        assert_eq!(
            repeated("# a input-fidelity=high input_fidelity=low\nx\n"),
            "input_fidelity"
        );
        // `ref` adds a reference image each time.
        assert_eq!(opts("# a ref=x.png ref=y.png\nx\n").len(), 2);
    }

    #[test]
    fn params_name_a_field_and_keep_their_json() {
        assert_eq!(
            opts("# a param.frame_count=8 param.x={\"a\":[1,2]} param.y=\"two words\"\nx\n"),
            [
                ("param.frame_count", "8"),
                ("param.x", "{\"a\":[1,2]}"),
                ("param.y", "\"two words\"")
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
        // Each key once; keys differ by any character, `-` and `_` too.
        let e = fails("# a param.x=1 param.x=2\nx\n");
        assert!(
            matches!(e.kind, ParseErrorKind::RepeatedOption { .. }),
            "{e}"
        );
        assert_eq!(opts("# a param.a-b=1 param.a_b=2\nx\n").len(), 2);
        for bad in ["param.x=", "par.am=1"] {
            let e = fails(&format!("# a {bad}\nx\n"));
            assert!(
                matches!(e.kind, ParseErrorKind::BadOption { .. }),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn options_survive_a_render() {
        let text = "# a size=1536x1024 style=\"two words\" param.y=\"two words\"\nx\n";
        let prompts = parse(text, "p").unwrap();
        assert_eq!(parse(&render(&prompts), "p").unwrap(), prompts);
    }

    #[test]
    fn invalid_utf8_names_its_line() {
        let e = parse_bytes(b"# a\nok\nbad \xFF byte\n", "prompts.txt").unwrap_err();
        assert_eq!(e.line, 3);
        assert_eq!(e.kind, ParseErrorKind::InvalidUtf8);
        assert!(e.to_string().starts_with("prompts.txt:3: "), "{e}");
    }

    #[test]
    fn text_before_the_first_header() {
        let e = fails("\n\nstray text\n# a\nx");
        assert_eq!(
            (e.line, e.kind.clone()),
            (3, ParseErrorKind::TextBeforeFirstHeader)
        );
        assert!(
            e.to_string().starts_with("prompts.txt:3: text before"),
            "{e}"
        );
        // Blank lines before the first header are fine.
        assert_eq!(ok("\n \t\n# a\nx").len(), 1);
    }

    #[test]
    fn header_without_a_name() {
        for text in ["# a\nx\n#\ny", "# a\nx\n#   \ny"] {
            let e = fails(text);
            assert_eq!((e.line, e.kind), (3, ParseErrorKind::MissingName));
        }
    }

    #[test]
    fn header_with_more_than_one_word() {
        let e = fails("# a\nx\n\n# two words\ny");
        assert_eq!(e.line, 4);
        assert!(matches!(e.kind, ParseErrorKind::MoreThanOneWord { .. }));
        assert!(e.to_string().contains("`# two words`"), "{e}");
    }

    #[test]
    fn names_that_are_not_safe_in_file_names() {
        for (name, bad) in [
            ("a/b", '/'),
            ("a\\b", '\\'),
            ("a.b", '.'),
            ("..", '.'),
            (".", '.'),
            ("a\u{7}b", '\u{7}'),
            ("a:b", ':'),
            ("a*", '*'),
        ] {
            let e = fails(&format!("# {name}\nx"));
            assert_eq!(e.line, 1);
            assert_eq!(
                e.kind,
                ParseErrorKind::BadName {
                    name: name.to_owned(),
                    bad
                },
                "{name}"
            );
        }
        assert!(matches!(
            fails("# -\nx").kind,
            ParseErrorKind::ReservedName { .. }
        ));
        let long = "n".repeat(MAX_NAME_BYTES + 1);
        assert!(matches!(
            fails(&format!("# {long}\nx")).kind,
            ParseErrorKind::NameTooLong { .. }
        ));
        assert!(parse(&format!("# {}\nx", "n".repeat(MAX_NAME_BYTES)), "f").is_ok());
    }

    #[test]
    fn a_name_used_twice_points_at_the_second() {
        let e = fails("# a\nx\n# b\ny\n# a\nz");
        assert_eq!(
            (e.line, e.kind),
            (
                5,
                ParseErrorKind::DuplicateName {
                    name: "a".into(),
                    first_line: 1
                }
            )
        );
        let e = fails("# Sun\nx\n# sun\ny");
        assert_eq!(
            e.line, 3,
            "names differing only in case collide on some disks"
        );
    }

    #[test]
    fn header_with_no_text() {
        for text in ["# a\n# b\ny", "# a\n\n  \n# b\ny"] {
            let e = fails(text);
            assert_eq!(
                (e.line, e.kind),
                (1, ParseErrorKind::NoText { name: "a".into() })
            );
        }
        let e = fails("# a\nx\n# last\n\n");
        assert_eq!(
            (e.line, e.kind),
            (
                3,
                ParseErrorKind::NoText {
                    name: "last".into()
                }
            )
        );
    }

    #[test]
    fn a_file_without_prompts() {
        for text in ["", "\n\n", "\u{FEFF}"] {
            assert_eq!(fails(text).kind, ParseErrorKind::NoPrompts);
        }
    }

    #[test]
    fn comments_and_sections_are_never_prompts() {
        let text = "// a comment before anything\n## Title slides\n# hero\nA hero shot\n// not part of it\nof a mug\n\n## Diagrams\n# flow\nA flow chart\n##\n# last\nno section\n";
        let p = parse(text, "f").unwrap();
        let got: Vec<(&str, &str, Option<&str>)> = p
            .iter()
            .map(|p| (p.name.as_str(), p.text.as_str(), p.section.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                ("hero", "A hero shot\nof a mug", Some("Title slides")),
                ("flow", "A flow chart", Some("Diagrams")),
                ("last", "no section", None),
            ]
        );
        assert_eq!(p[1].line, 9, "lines still count the comments");
        let again = parse(&render(&p), "f").unwrap();
        assert_eq!(
            again.iter().map(|p| &p.section).collect::<Vec<_>>(),
            p.iter().map(|p| &p.section).collect::<Vec<_>>()
        );
        // Commenting out a paragraph leaves the text as it was.
        let plain = parse("# a\np1\n\np2\n", "f").unwrap();
        let commented = parse("# a\np1\n\n// a note\n\np2\n", "f").unwrap();
        assert_eq!(commented[0].text, plain[0].text);
        let inline = parse("# a\np1\n// a note\np2\n", "f").unwrap();
        assert_eq!(inline[0].text, "p1\np2");
        // Text under a section that no header starts says so.
        let e = fails("# a\nx\n## Part two\nstray text\n");
        assert_eq!(
            e.kind,
            ParseErrorKind::TextAfterSection {
                title: "Part two".into(),
                line: 3
            }
        );
        assert_eq!(e.line, 4);
        // A section with no prompt under it is no prompt either.
        assert_eq!(
            fails("## Only a title\n// and a comment\n").kind,
            ParseErrorKind::NoPrompts
        );
    }

    #[test]
    fn render_writes_the_format() {
        let p = parse("# a\nx\n\ny\n# b\nz", "f").unwrap();
        assert_eq!(render(&p), "# a\nx\n\ny\n\n# b\nz\n\n");
    }

    /// Prompts with sections: some under a title, some under none.
    fn sectioned_strategy() -> impl Strategy<Value = Vec<(String, String, Option<String>)>> {
        let title = proptest::option::of("[A-Za-z][A-Za-z0-9 ]{0,12}[A-Za-z0-9]");
        (prompt_strategy(), proptest::collection::vec(title, 6)).prop_map(|(pairs, titles)| {
            pairs
                .into_iter()
                .zip(titles)
                .map(|((n, t), s)| (n, t, s))
                .collect()
        })
    }

    /// The lines of a prompt's text. A text line never starts with `#` (a header or a
    /// section) nor with `//` (a comment), but may start with one `/`, or with `//` after a
    /// space (neither is a comment); the first and last lines have something on them.
    fn text_lines_strategy() -> impl Strategy<Value = Vec<String>> {
        let solid = prop_oneof!["[^#/\r\n\\s][^\r\n]{0,30}", "/[^/\r\n\\s][^\r\n]{0,29}"];
        let any_line = prop_oneof![
            "",
            "[ \t]{0,3}",
            "[^#/\r\n][^\r\n]{0,30}",
            "/[^/\r\n][^\r\n]{0,29}",
            "[ \t]{1,2}//[^\r\n]{0,12}",
        ];
        (
            solid.clone(),
            proptest::collection::vec(any_line, 0..4),
            proptest::option::of(solid),
        )
            .prop_map(|(first, middle, last)| {
                let mut lines = vec![first];
                if let Some(last) = last {
                    lines.extend(middle);
                    lines.push(last);
                }
                lines
            })
    }

    fn prompt_strategy() -> impl Strategy<Value = Vec<(String, String)>> {
        let name = "[A-Za-z0-9_][A-Za-z0-9_-]{0,15}";
        let text = text_lines_strategy().prop_map(|lines| lines.join("\n"));
        proptest::collection::vec((name, text), 1..6).prop_map(|mut v| {
            let mut seen = std::collections::HashSet::new();
            v.retain(|(n, _)| seen.insert(n.to_lowercase()));
            v
        })
    }

    /// A prompt file as a person writes one: prompts under `## Title` sections (and back
    /// under none after a bare `##`), with `//` comments before everything, around section
    /// lines and headers, between prompts and between the lines of a prompt's text.
    #[derive(Debug, Clone)]
    struct Commented {
        file: String,
        /// Each prompt's name, text and section, as the file means them.
        prompts: Vec<(String, String, Option<String>)>,
        /// The comment lines in the file.
        comments: Vec<String>,
    }

    fn commented_strategy() -> impl Strategy<Value = Commented> {
        let name = "[A-Za-z0-9_][A-Za-z0-9_-]{0,15}";
        let title = proptest::option::of("[A-Za-z][A-Za-z0-9 #/]{0,12}[A-Za-z0-9]");
        // `## Title`, `##Title`, `###  Title ` all start the section `Title`; `##` and
        // `## ` end one.
        let section_line = ("#{0,2}", "[ \t]{0,2}", "[ \t]{0,2}");
        let prompt = (
            name,
            text_lines_strategy(),
            title,
            section_line,
            any::<bool>(),
        );
        let comment = proptest::option::weighted(0.4, "//[^\r\n]{0,20}");
        (
            proptest::collection::vec(prompt, 1..6),
            proptest::collection::vec(comment, 1..48),
        )
            .prop_map(|(mut prompts, drawn)| {
                let mut seen = std::collections::HashSet::new();
                prompts.retain(|(n, ..)| seen.insert(n.to_lowercase()));
                let blank = |l: &str| l.trim().is_empty();
                // Whether a comment goes in each gap between lines, and which, in turn.
                let mut gaps = drawn.iter().cycle();
                let mut file: Vec<String> = Vec::new();
                let mut comments = Vec::new();
                // Writes the comment drawn for the next gap, if any: whether there was one.
                let mut gap = |file: &mut Vec<String>, comments: &mut Vec<String>| {
                    let comment = gaps.next().cloned().flatten();
                    if let Some(comment) = &comment {
                        file.push(comment.clone());
                        comments.push(comment.clone());
                    }
                    comment.is_some()
                };
                gap(&mut file, &mut comments);
                let mut section: Option<String> = None;
                let mut expected = Vec::new();
                for (name, lines, title, (hashes, lead, trail), restate) in prompts {
                    if title != section || restate {
                        file.push(match &title {
                            Some(t) => format!("##{hashes}{lead}{t}{trail}"),
                            None => format!("##{trail}"),
                        });
                        gap(&mut file, &mut comments);
                        file.push(String::new());
                        gap(&mut file, &mut comments);
                        section = title.clone();
                    }
                    file.push(format!("# {name}"));
                    gap(&mut file, &mut comments);
                    // A comment after a blank line takes the blank line after it along (so
                    // that commenting a paragraph out leaves the text as it was).
                    let mut text: Vec<&str> = Vec::new();
                    for (j, line) in lines.iter().enumerate() {
                        let commented = j > 0 && gap(&mut file, &mut comments);
                        file.push(line.clone());
                        if !(commented && text.last().is_some_and(|l| blank(l)) && blank(line)) {
                            text.push(line);
                        }
                    }
                    gap(&mut file, &mut comments);
                    file.push(String::new());
                    gap(&mut file, &mut comments);
                    expected.push((name, text.join("\n"), title));
                }
                Commented {
                    file: file.join("\n"),
                    prompts: expected,
                    comments,
                }
            })
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_bytes(&bytes, "f");
        }

        #[test]
        fn arbitrary_text_never_panics_and_what_parses_round_trips(text in "(#[^\n]{0,8}\n|##[^\n]{0,8}\n|//[^\n]{0,8}\n|[^\n]{0,12}\n){0,12}") {
            if let Ok(prompts) = parse(&text, "f") {
                let again = parse(&render(&prompts), "f").unwrap();
                let strip = |p: Vec<Prompt>| p.into_iter().map(|p| (p.name, p.text, p.section)).collect::<Vec<_>>();
                prop_assert_eq!(strip(again), strip(prompts));
            }
        }

        #[test]
        fn rendered_prompts_parse_back(pairs in prompt_strategy()) {
            let prompts: Vec<Prompt> = pairs
                .iter()
                .map(|(name, text)| Prompt { name: name.clone(), text: text.clone(), line: 0, options: Vec::new(), section: None })
                .collect();
            let parsed = parse(&render(&prompts), "f").unwrap();
            let got: Vec<(String, String)> = parsed.into_iter().map(|p| (p.name, p.text)).collect();
            prop_assert_eq!(got, pairs);
        }

        #[test]
        fn sections_round_trip(items in sectioned_strategy()) {
            let prompts: Vec<Prompt> = items
                .iter()
                .map(|(name, text, section)| Prompt { name: name.clone(), text: text.clone(), line: 0, options: Vec::new(), section: section.clone() })
                .collect();
            let parsed = parse(&render(&prompts), "f").unwrap();
            let got: Vec<(String, String, Option<String>)> =
                parsed.into_iter().map(|p| (p.name, p.text, p.section)).collect();
            prop_assert_eq!(got, items);
        }

        /// `//` comments and `## Title` lines, wherever they are, are never a prompt nor part
        /// of one: the prompts are those written, with their text and section, and they
        /// survive a render.
        #[test]
        fn comments_and_sections_are_kept_out_of_prompts(c in commented_strategy()) {
            let parsed = parse(&c.file, "f").unwrap();
            for p in &parsed {
                for line in p.text.split('\n') {
                    prop_assert!(!line.starts_with("//"), "a comment in {}'s text: {:?}", p.name, line);
                    prop_assert!(!line.starts_with('#'), "a header or section in {}'s text: {:?}", p.name, line);
                }
                prop_assert!(
                    !c.comments.iter().any(|comment| p.name.contains(comment.as_str())),
                    "a comment in a name: {}", p.name
                );
            }
            let got: Vec<(String, String, Option<String>)> =
                parsed.iter().map(|p| (p.name.clone(), p.text.clone(), p.section.clone())).collect();
            prop_assert_eq!(&got, &c.prompts);
            // What parses renders back to the same prompts, comments gone.
            let again: Vec<(String, String, Option<String>)> = parse(&render(&parsed), "f")
                .unwrap()
                .into_iter()
                .map(|p| (p.name, p.text, p.section))
                .collect();
            prop_assert_eq!(&again, &c.prompts);
            // And CRLF reads the same.
            prop_assert_eq!(parse(&c.file.replace('\n', "\r\n"), "f").unwrap(), parsed);
        }

        #[test]
        fn crlf_parses_like_lf(pairs in prompt_strategy()) {
            let prompts: Vec<Prompt> = pairs
                .iter()
                .map(|(name, text)| Prompt { name: name.clone(), text: text.clone(), line: 0, options: Vec::new(), section: None })
                .collect();
            let lf = render(&prompts);
            let crlf = lf.replace('\n', "\r\n");
            prop_assert_eq!(parse(&lf, "f").unwrap(), parse(&crlf, "f").unwrap());
        }
    }
}
