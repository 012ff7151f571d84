//! Arbitrary bytes as a prompt file: the parser must never panic, and whatever it accepts must
//! keep the promises of `src/prompts.rs` (valid unique names, non-blank texts, and
//! `parse(&render(p))` giving back `p`).

#![no_main]

use std::collections::HashSet;

use genimg::prompts::{self, ParseError, ParseErrorKind, Prompt};
use libfuzzer_sys::fuzz_target;

const ORIGIN: &str = "fuzz.txt";

fuzz_target!(|data: &[u8]| {
    let result = prompts::parse_bytes(data, ORIGIN);

    // Invalid UTF-8, and only that, is reported as such (a BOM is valid UTF-8 either way).
    let utf8 = std::str::from_utf8(data).ok();
    let invalid = matches!(&result, Err(e) if e.kind == ParseErrorKind::InvalidUtf8);
    assert_eq!(
        invalid,
        utf8.is_none(),
        "InvalidUtf8 iff the bytes are not UTF-8"
    );

    // For text, the two entry points agree, and what `parse` says keeps the same promises.
    if let Some(text) = utf8 {
        let from_text = prompts::parse(text, ORIGIN);
        assert_eq!(
            from_text, result,
            "parse and parse_bytes disagree on {text:?}"
        );
        check(data, &from_text);
    }
    check(data, &result);
});

fn check(data: &[u8], result: &Result<Vec<Prompt>, ParseError>) {
    match result {
        Ok(parsed) => check_accepted(data, parsed),
        Err(e) => {
            // An error names the origin and a line that exists, and displays without panicking.
            assert_eq!(e.origin, ORIGIN);
            let lines = 1 + data.iter().filter(|&&b| b == b'\n').count();
            assert!(
                (1..=lines).contains(&e.line),
                "error line {} outside 1..={lines}: {e:?}",
                e.line
            );
            let shown = e.to_string();
            assert!(
                shown.starts_with(&format!("{ORIGIN}:{}: ", e.line)),
                "{shown}"
            );
        }
    }
}

fn check_accepted(data: &[u8], parsed: &[Prompt]) {
    assert!(!parsed.is_empty(), "Ok with no prompts");

    let lines = 1 + data.iter().filter(|&&b| b == b'\n').count();
    let mut folded = HashSet::new();
    let mut last_line = 0;
    for p in parsed {
        assert!(!p.name.is_empty(), "empty name: {p:?}");
        assert!(prompts::check_name(&p.name).is_ok(), "bad name kept: {p:?}");
        assert!(
            folded.insert(p.name.to_lowercase()),
            "names collide ignoring case: {p:?}"
        );

        assert!(!p.text.trim().is_empty(), "blank text kept: {p:?}");
        for line in p.text.split('\n') {
            assert!(!line.starts_with('#'), "a header inside a text: {p:?}");
            assert!(!line.ends_with('\r'), "a CR kept at a line end: {p:?}");
        }
        let first = p.text.split('\n').next().unwrap_or_default();
        let last = p.text.split('\n').next_back().unwrap_or_default();
        assert!(
            !first.trim().is_empty() && !last.trim().is_empty(),
            "blank lines around a text: {p:?}"
        );

        assert!(
            p.line > last_line && p.line <= lines,
            "header line {} not increasing or out of range",
            p.line
        );
        last_line = p.line;
    }

    // The documented round trip: `parse(&render(p))` gives back `p` (header lines aside, since
    // rendering drops the blank lines the input had), and rendering is then a fixed point.
    let rendered = prompts::render(parsed);
    let again = match prompts::parse(&rendered, ORIGIN) {
        Ok(again) => again,
        Err(e) => panic!("rendered prompts do not parse: {e}\n{rendered:?}"),
    };
    let strip = |ps: &[Prompt]| {
        ps.iter()
            .map(|p| (p.name.clone(), p.text.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        strip(&again),
        strip(parsed),
        "round trip changed the prompts"
    );
    assert_eq!(
        prompts::render(&again),
        rendered,
        "render is not a fixed point"
    );
}
