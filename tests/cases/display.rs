//! What the user sees: bars on a terminal, plain lines elsewhere, the summary table.

use std::time::Duration;

use crate::support::*;

/// Runs genimg under a pseudo-terminal with `script`, returning what the terminal received;
/// `None` where `script` is not installed.
fn on_a_terminal(ws: &Workspace, server: &FakeServer, args: &str, no_color: bool) -> Option<Run> {
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("note: `script` is not installed; the terminal display is not checked");
        return None;
    }
    let cmd = genimg(ws, Some(server));
    let program = cmd.get_program().to_string_lossy().into_owned();
    let mut script = std::process::Command::new("script");
    script
        .args(["-qec", &format!("{program} {args}"), "/dev/null"])
        .current_dir(ws.path())
        .env_clear()
        .env("TERM", "xterm-256color")
        .env("COLUMNS", "120")
        .env("LINES", "40");
    // The harness's environment, through `script` to genimg.
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            script.env(k, v);
        }
    }
    if no_color {
        script.env("NO_COLOR", "1");
    } else {
        script.env_remove("NO_COLOR");
    }
    Some(script.run())
}

fn slow_server() -> FakeServer {
    FakeServer::with(Options {
        latency: Duration::from_millis(400),
        ..Options::default()
    })
}

#[test]
fn a_terminal_gets_bars_a_line_per_request_and_the_summary() {
    let server = slow_server();
    let ws = Workspace::new();
    ws.write("p.txt", "# fox\na fox\n# owl\nan owl\n");
    let Some(run) = on_a_terminal(&ws, &server, "--input p.txt -o out -n 2 -j 4", true) else {
        return;
    };
    assert_code(&run, 0);
    let screen = &run.stdout;
    assert!(screen.contains("ETA"), "no overall bar:\n{screen}");
    assert!(screen.contains("/4"), "{screen}");
    // A request's line: its prompt and number; the file name only with -v.
    assert!(screen.contains("fox #1"), "{screen}");
    assert!(screen.contains("owl #2"), "{screen}");
    assert!(!screen.contains("(image.fox.01.hd.png)"), "{screen}");
    assert!(screen.contains("Done in"), "{screen}");
    assert!(screen.contains("  made           4"), "{screen}");
    // NO_COLOR: cursor movement, but no colour.
    assert!(
        !screen.contains("\x1b[36m") && !screen.contains("\x1b[34m"),
        "{screen:?}"
    );
    assert_eq!(ws.files("out").len(), 4);
}

/// With -v a request's line names its file too.
#[test]
fn verbose_lines_name_the_file() {
    let server = slow_server();
    let ws = Workspace::new();
    ws.write("p.txt", "# fox\na fox\n");
    let Some(run) = on_a_terminal(&ws, &server, "--input p.txt -o out -n 2 -v", true) else {
        return;
    };
    assert_code(&run, 0);
    assert!(
        run.stdout.contains("fox #1 (image.fox.01.hd.png)"),
        "{}",
        run.stdout
    );
}

#[test]
fn colour_on_a_terminal_unless_no_color() {
    let server = slow_server();
    let ws = Workspace::new();
    let Some(run) = on_a_terminal(&ws, &server, "'a fox' -o out -n 2", false) else {
        return;
    };
    assert_code(&run, 0);
    assert!(run.stdout.contains("\x1b[36m"), "{:?}", run.stdout);
}

#[test]
fn quiet_on_a_terminal_shows_no_bars() {
    let server = slow_server();
    let ws = Workspace::new();
    let Some(run) = on_a_terminal(&ws, &server, "'a fox' -o out -q", true) else {
        return;
    };
    assert_code(&run, 0);
    assert!(!run.stdout.contains("ETA"), "{}", run.stdout);
    assert!(run.stdout.trim().is_empty(), "{:?}", run.stdout);
}

#[test]
fn elsewhere_plain_lines_and_no_escape_codes() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    let run = genimg(&ws, Some(&server))
        .args(["a fox", "-o", "out", "-n", "2"])
        .run();
    assert_code(&run, 0);
    assert!(!run.stderr.contains('\x1b'), "{:?}", run.stderr);
    assert!(run.stderr.contains("] saved image_0"), "{}", run.stderr);
    assert!(
        run.stdout.is_empty(),
        "stdout is for scripts: {:?}",
        run.stdout
    );
    assert_summary(&run, &[("made", "2"), ("failed", "0")]);
}

fn json_of(run: &Run) -> serde_json::Value {
    serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{}", run.stdout))
}

#[test]
fn json_prints_the_plan_each_image_and_the_totals_on_stdout() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    ws.write("p.txt", "# fox\na fox\n# nope\nFORBIDDEN\n");
    ws.write("out/image.fox.01.hd.png", images::png(7));
    let run = genimg(&ws, Some(&server))
        .args(["--input", "p.txt", "-o", "out", "-n", "2", "--json"])
        .run();
    assert_code(&run, 1);
    let doc = json_of(&run);
    assert_eq!(doc["status"], "some_failed");
    assert_eq!(doc["exit_code"], 1);
    assert_eq!(doc["dry_run"], false);
    assert_eq!(doc["models"], serde_json::json!(["gpt-image-2"]));
    let totals = &doc["totals"];
    assert_eq!(totals["planned"], 4);
    assert_eq!(totals["made"], 1);
    assert_eq!(totals["failed"], 2);
    assert_eq!(totals["refused"], 2);
    assert_eq!(totals["skipped"], 1);
    let images = doc["images"].as_array().unwrap();
    let status_of = |file: &str| {
        images
            .iter()
            .find(|i| i["file"] == file)
            .unwrap_or_else(|| panic!("{file} not listed"))
    };
    assert_eq!(status_of("image.fox.01.hd.png")["status"], "skipped");
    let made = status_of("image.fox.02.hd.png");
    assert_eq!(made["status"], "made");
    assert_eq!(made["path"], "out/image.fox.02.hd.png");
    assert!(ws.join(made["path"].as_str().unwrap()).is_file());
    assert_eq!(made["sha256"].as_str().unwrap().len(), 64);
    let refused = status_of("image.nope.01.hd.png");
    assert_eq!(refused["status"], "refused");
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains("moderation_blocked")
    );
    // The people's output stays on stderr.
    assert!(run.stderr.contains("Failed (2):"), "{}", run.stderr);
}

#[test]
fn json_names_the_file_an_image_in_another_format_was_kept_as() {
    let server = FakeServer::with(Options {
        script: Some(std::sync::Arc::new(|_: &Incoming| Action::WrongFormat)),
        ..Options::default()
    });
    let ws = Workspace::new();
    let run = genimg(&ws, Some(&server))
        .args(["a fox", "-o", "out", "--format", "webp", "--json"])
        .run();
    assert_code(&run, 0);
    let doc = json_of(&run);
    assert_eq!(doc["totals"]["made"], 1);
    assert!(doc["totals"]["cost_usd"].as_f64().unwrap() > 0.0);
    let image = &doc["images"][0];
    assert_eq!(image["status"], "made");
    assert_eq!(image["file"], "image_01_hd.png");
    assert_eq!(image["path"], "out/image_01_hd.png");
    assert_eq!(image["received_format"], "png");
    assert!(ws.join("out/image_01_hd.png").is_file());
}

#[test]
fn json_for_a_dry_run_and_for_an_error() {
    let ws = Workspace::new();
    let run = genimg(&ws, None)
        .args(["a fox", "-n", "3", "--dry-run", "--json"])
        .run();
    assert_code(&run, 0);
    let doc = json_of(&run);
    assert_eq!(doc["dry_run"], true);
    assert_eq!(doc["totals"]["to_make"], 3);
    let each = doc["images"][0]["estimate_usd"].as_f64().unwrap();
    assert!((each - 0.2107).abs() < 0.001, "{each}");
    assert!(
        doc["images"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["status"] == "to_make")
    );

    let run = genimg(&ws, None)
        .args(["a fox", "--size", "7x7", "--json"])
        .run();
    assert_code(&run, 2);
    let doc = json_of(&run);
    assert_eq!(doc["status"], "usage_error");
    assert_eq!(doc["exit_code"], 2);
    assert!(
        doc["error"].as_str().unwrap().contains("--size 7x7"),
        "{doc}"
    );
}

#[test]
fn a_prompt_named_like_a_subcommand_goes_after_a_double_dash() {
    let server = FakeServer::start();
    for word in ["models", "gallery", "completions", "man", "help"] {
        let ws = Workspace::new();
        let run = genimg(&ws, Some(&server))
            .args(["-o", "out", "--", word])
            .run();
        assert_code(&run, 0);
        assert_eq!(ws.files("out"), ["image_01_hd.png"], "{word}");
    }
    let prompts = server.prompts();
    assert_eq!(prompts, ["completions", "gallery", "help", "man", "models"]);
}

#[test]
fn completions_and_the_man_page() {
    let ws = Workspace::new();
    for (shell, marker, flag) in [
        ("bash", "_genimg()", "--dst-dir"),
        ("zsh", "#compdef genimg", "--dst-dir"),
        ("fish", "complete -c genimg", "-l dst-dir"),
        ("powershell", "Register-ArgumentCompleter", "--dst-dir"),
    ] {
        let run = genimg(&ws, None).args(["completions", shell]).run();
        assert_code(&run, 0);
        assert!(run.stdout.contains(marker), "{shell}");
        assert!(run.stdout.contains(flag), "{shell}: no {flag}");
    }
    let run = genimg(&ws, None).arg("man").run();
    assert_code(&run, 0);
    assert!(
        run.stdout.starts_with(".ie") || run.stdout.contains(".TH genimg"),
        "{}",
        &run.stdout[..200]
    );
    assert!(
        run.stdout.contains("max\\-cost"),
        "every flag is in the man page"
    );
}

#[test]
fn closed_choices_are_offered_by_help_and_completions() {
    let ws = Workspace::new();
    let choices = [
        ("--quality", "hd standard low medium high xhigh max auto"),
        ("--format", "png jpeg webp gif svg"),
        ("--background", "transparent opaque auto"),
        ("--moderation", "low auto"),
        ("--input-fidelity", "high low"),
        ("--complexity", "low medium high"),
        ("--naming", "seed legacy"),
    ];
    // bash completes each flag's values, not file names.
    let bash = genimg(&ws, None).args(["completions", "bash"]).run();
    assert_code(&bash, 0);
    for (flag, values) in choices {
        let arm = format!("{flag})\n                    COMPREPLY=($(compgen -W \"{values}\" --");
        assert!(bash.stdout.contains(&arm), "{flag} in:\n{}", bash.stdout);
    }
    let fish = genimg(&ws, None).args(["completions", "fish"]).run();
    assert!(
        fish.stdout.contains("-l quality") && fish.stdout.contains("xhigh\\t''"),
        "{}",
        fish.stdout
    );
    // --help lists them.
    let help = genimg(&ws, None).arg("--help").run();
    assert_code(&help, 0);
    for (flag, values) in choices.into_iter().filter(|(f, _)| *f != "--naming") {
        let listed = format!("[possible values: {}]", values.replace(' ', ", "));
        let section = help
            .stdout
            .split(&format!("      {flag} <"))
            .nth(1)
            .unwrap();
        let section = section.split("\n\n      --").next().unwrap();
        assert!(
            section.contains(&listed),
            "{flag}: {listed} not in {section}"
        );
    }
    // A value outside the set is still refused with the flag named, before any request.
    let run = genimg(&ws, None)
        .args(["a fox", "--quality", "ultra"])
        .run();
    assert_code(&run, 2);
    assert!(
        run.stderr.contains(
            "invalid value 'ultra' for '--quality <Q>': `ultra` is not one of hd, standard, low"
        ),
        "{}",
        run.stderr
    );
}

#[test]
fn verbose_shows_each_request_and_the_log_the_pace() {
    let server = FakeServer::with(Options {
        script: Some(std::sync::Arc::new(|i: &Incoming| {
            if i.nth == 0 {
                Action::error(429, "rate_limit_exceeded", "Rate limit reached.")
                    .with_header("retry-after-ms", "50")
            } else {
                Action::Answer
            }
        })),
        ..Options::default()
    });
    let ws = Workspace::new();
    let run = genimg(&ws, Some(&server))
        .args(["a fox", "-o", "out", "-n", "2", "-j", "2", "-v"])
        .run();
    assert_code(&run, 0);
    assert!(
        run.stderr.contains("started image_01_hd.png"),
        "{}",
        run.stderr
    );
    // The log (tracing) says when the window moves, and each wait.
    assert!(
        run.stderr.contains("concurrency changed from=2 to=1"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("retrying file="), "{}", run.stderr);

    let quiet = genimg(&ws, Some(&server))
        .args(["a fox", "-o", "out2", "-q"])
        .run();
    assert_code(&quiet, 0);
    assert!(quiet.stderr.is_empty(), "{:?}", quiet.stderr);

    let debug = genimg(&ws, Some(&server))
        .args(["a fox", "-o", "out3", "-vv"])
        .run();
    assert!(
        debug.stderr.contains("sending an image request"),
        "{}",
        debug.stderr
    );
}

/// With `-q` a failed image is said once: in the closing summary, not also as it happens.
#[test]
fn quiet_says_each_failure_once() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    ws.write("p.txt", "# ok\na fox\n\n# no\nFORBIDDEN things\n");
    let run = genimg(&ws, Some(&server))
        .args(["--input", "p.txt", "-o", "out", "-q"])
        .run();
    assert_code(&run, 1);
    assert_eq!(
        run.stderr.matches("image.no.01.hd.png").count(),
        1,
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("Failed (1):"), "{}", run.stderr);
    assert!(!run.stderr.contains("image.ok.01.hd.png"), "{}", run.stderr);
}
