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
    assert!(screen.contains("fox #1 (image.fox.01.hd.png)"), "{screen}");
    assert!(screen.contains("owl #2 (image.owl.02.hd.png)"), "{screen}");
    assert!(screen.contains("Done in"), "{screen}");
    assert!(screen.contains("  made           4"), "{screen}");
    // NO_COLOR: cursor movement, but no colour.
    assert!(
        !screen.contains("\x1b[36m") && !screen.contains("\x1b[34m"),
        "{screen:?}"
    );
    assert_eq!(ws.files("out").len(), 4);
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
