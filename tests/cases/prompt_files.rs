//! Prompt files end to end: every error names file and line, exits 2, and sends nothing.

use crate::support::*;

/// Runs genimg on a prompt file and checks it was refused before any request.
fn refused(contents: &[u8]) -> String {
    let server = FakeServer::start();
    let ws = Workspace::new();
    ws.write("prompts.txt", contents);
    let run = genimg(&ws, Some(&server))
        .args(["--input", "prompts.txt", "--dst-dir", "out"])
        .run();
    assert_code(&run, 2);
    assert!(server.requests().is_empty(), "no request on bad input");
    assert!(!ws.join("out").exists(), "nothing written on bad input");
    assert!(run.stdout.is_empty());
    run.stderr
}

#[test]
fn text_before_the_first_header() {
    let err = refused(b"\nsome text\n# a\nx\n");
    assert!(
        err.contains("prompts.txt:2: text before the first header"),
        "{err}"
    );
}

#[test]
fn a_header_without_a_name() {
    let err = refused(b"# a\nx\n\n#\ny\n");
    assert!(
        err.contains("prompts.txt:4: a header needs a name"),
        "{err}"
    );
}

#[test]
fn a_header_with_more_than_one_word() {
    let err = refused(b"# a\nx\n# sunset city\ny\n");
    assert!(
        err.contains("prompts.txt:3: the header `# sunset city` has more than one word"),
        "{err}"
    );
}

#[test]
fn a_name_used_twice_points_at_the_second() {
    let err = refused(b"# a\nx\n# b\ny\n\n# a\nz\n");
    assert!(
        err.contains("prompts.txt:6: the prompt name `a` is already used at line 1"),
        "{err}"
    );
}

#[test]
fn a_header_without_text() {
    let err = refused(b"# a\n\n# b\ny\n");
    assert!(
        err.contains("prompts.txt:1: the prompt `a` has no text"),
        "{err}"
    );
}

#[test]
fn names_that_would_escape_the_folder() {
    for (name, line) in [
        ("../evil", 1),
        ("a/b", 1),
        ("..", 1),
        ("a\\b", 1),
        ("a.b", 1),
    ] {
        let err = refused(format!("# {name}\nx\n").as_bytes());
        assert!(
            err.contains(&format!(
                "prompts.txt:{line}: the prompt name `{name}` contains"
            )),
            "{err}"
        );
    }
}

#[test]
fn invalid_utf8_is_named() {
    let err = refused(b"# a\nfine\n# b\ncaf\xe9\n");
    assert!(
        err.contains("prompts.txt:4: the file is not valid UTF-8 text"),
        "{err}"
    );
}

#[test]
fn an_empty_file() {
    let err = refused(b"\n\n");
    assert!(err.contains("prompts.txt:1: no prompts"), "{err}");
}

#[test]
fn a_missing_prompt_file() {
    let ws = Workspace::new();
    let run = genimg(&ws, None)
        .args(["--input", "nope.txt"])
        .env("OPENAI_API_KEY", "k")
        .run();
    assert_code(&run, 2);
    assert!(
        run.stderr.contains("cannot read the prompt file nope.txt"),
        "{}",
        run.stderr
    );
}

#[test]
fn crlf_and_a_bom_are_accepted() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    ws.write(
        "prompts.txt",
        b"\xEF\xBB\xBF# first\r\nline one\r\nline two\r\n\r\n# second\r\nz\r\n",
    );
    let run = genimg(&ws, Some(&server))
        .args(["--input", "prompts.txt", "--dst-dir", "out"])
        .run();
    assert_code(&run, 0);
    assert_eq!(
        ws.files("out"),
        ["image.first.01.hd.png", "image.second.01.hd.png"]
    );
    assert_eq!(server.prompts(), ["line one\nline two", "z"]);
}

#[test]
fn prompts_from_standard_input() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    let run = genimg(&ws, Some(&server))
        .args(["--input", "-", "--dst-dir", "out"])
        .run_with_stdin(b"# piped\nfrom stdin\n");
    assert_code(&run, 0);
    assert_eq!(ws.files("out"), ["image.piped.01.hd.png"]);
}

#[test]
fn errors_from_standard_input_name_it() {
    let ws = Workspace::new();
    let run = genimg(&ws, None)
        .args(["--input", "-", "--dry-run"])
        .run_with_stdin(b"# a b\nx\n");
    assert_code(&run, 2);
    assert!(
        run.stderr.contains("<stdin>:1: the header"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_prompt_too_long_for_the_model_is_refused_before_any_request() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    ws.write(
        "prompts.txt",
        format!("# ok\nfine\n\n# long\n{}\n", "word ".repeat(900)),
    );
    let run = genimg(&ws, Some(&server))
        .args(["--input", "prompts.txt", "--model", "dall-e-3"])
        .run();
    assert_code(&run, 2);
    assert!(
        run.stderr.contains(
            "prompts.txt:4: the prompt `long` has 4500 characters; dall-e-3 takes at most 4000"
        ),
        "{}",
        run.stderr
    );
    assert!(server.requests().is_empty());
}

/// `//` comments and `## Title` sections: never a prompt or part of one; the dry run and the
/// gallery show each section as a heading, and the manifest records it.
#[test]
fn comments_and_sections_shape_the_file_but_never_the_prompts() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    ws.write(
        "slides.txt",
        "// Deck for the launch\n## Title slides\n# hero\nA hero shot of a mug\n// TODO: warmer?\n\n## Diagrams\n# flow\nA flow chart\n##\n# extra\nAn extra slide\n",
    );
    let dry = genimg(&ws, None)
        .args(["--input", "slides.txt", "-o", "out", "--dry-run"])
        .run();
    assert_code(&dry, 0);
    let title = dry.stdout.find("## Title slides").expect("a heading");
    // Each prompt's line.
    let hero = dry.stdout.find("\n  hero  ").expect("the hero");
    let diagrams = dry.stdout.find("## Diagrams").expect("a heading");
    let flow = dry.stdout.find("\n  flow  ").expect("the flow");
    // A bare `##` ends the section: what follows is in none, and said so.
    let none = dry.stdout.find("## (no section)").expect("a heading");
    let extra = dry.stdout.find("\n  extra  ").expect("the extra");
    assert!(
        title < hero && hero < diagrams && diagrams < flow && flow < none && none < extra,
        "{}",
        dry.stdout
    );

    let run = genimg(&ws, Some(&server))
        .args(["--input", "slides.txt", "-o", "out"])
        .run();
    assert_code(&run, 0);
    let mut prompts = server.prompts();
    prompts.sort();
    assert_eq!(
        prompts,
        ["A flow chart", "A hero shot of a mug", "An extra slide"]
    );
    let records = ws.manifest("out");
    let section_of = |file: &str| {
        records
            .iter()
            .find(|r| r["file"] == file)
            .map(|r| r["section"].clone())
            .unwrap()
    };
    assert_eq!(section_of("image.hero.01.hd.png"), "Title slides");
    assert_eq!(section_of("image.flow.01.hd.png"), "Diagrams");
    assert!(section_of("image.extra.01.hd.png").is_null());
    let gallery = String::from_utf8(ws.read("out/index.html")).unwrap();
    let title = gallery
        .find("<h2 class=\"part\">Title slides</h2>")
        .expect("a heading");
    let diagrams = gallery
        .find("<h2 class=\"part\">Diagrams</h2>")
        .expect("a heading");
    let none = gallery
        .find("<h2 class=\"part\">(no section)</h2>")
        .expect("a heading");
    let extra = gallery.find("id=\"p-extra\"").expect("the extra");
    assert!(title < diagrams && diagrams < none && none < extra);
}
