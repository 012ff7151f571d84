//! What a run will cost, what it did cost, and `--max-cost`.

use crate::support::*;

#[test]
fn a_dry_run_estimates_per_prompt_and_in_total() {
    let ws = Workspace::new();
    ws.write(
        "p.txt",
        "# fox\na fox\n# owl quality=low\nan owl\n# mini model=gpt-image-1.5 size=1536x1024\nx\n",
    );
    let run = genimg(&ws, None)
        .args(["--input", "p.txt", "-o", "out", "-n", "10", "--dry-run"])
        .run();
    assert_code(&run, 0);
    let out = &run.stdout;
    assert!(out.contains("Estimated cost"), "{out}");
    // Each prompt's line: its images to make and what they cost.
    for (name, amount) in [("fox", "$2.11"), ("owl", "$0.059"), ("mini", "$2.00")] {
        let line = out
            .lines()
            .find(|l| l.starts_with(&format!("  {name} ")))
            .unwrap_or_else(|| panic!("{name} in:\n{out}"));
        assert!(line.contains(" 10 to make "), "{line}");
        assert!(line.contains(&format!("  {amount}  ")), "{amount}: {line}");
    }
    assert!(out.contains("Total: $4.17\n"), "{out}");

    // The price of each image, in --json.
    let run = genimg(&ws, None)
        .args([
            "--input",
            "p.txt",
            "-o",
            "out",
            "-n",
            "10",
            "--dry-run",
            "--json",
        ])
        .run();
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).expect("a JSON document");
    for (prompt, each) in [("fox", 0.211), ("owl", 0.006), ("mini", 0.2)] {
        let image = doc["images"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["prompt"] == prompt)
            .unwrap_or_else(|| panic!("{prompt} in {doc}"));
        assert_eq!(image["estimate_usd"].as_f64(), Some(each), "{image}");
    }
}

#[test]
fn ten_high_square_gpt_image_2_images_cost_2_11() {
    let ws = Workspace::new();
    let run = genimg(&ws, None)
        .args(["a fox", "-n", "10", "--dry-run"])
        .run();
    assert!(run.stdout.contains("Total: $2.11"), "{}", run.stdout);
}

#[test]
fn a_run_records_each_images_cost_from_usage_and_reports_the_total() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    let run = genimg(&ws, Some(&server))
        .args(["a fox", "-o", "out", "-n", "2"])
        .run();
    assert_code(&run, 0);
    // The fake reports 50 text tokens in and 7024 image tokens out.
    let each = (50.0 * 5.0 + 7024.0 * 30.0) / 1e6;
    for r in ws.manifest("out") {
        let cost = r["cost_usd"].as_f64().unwrap();
        assert!((cost - each).abs() < 1e-9, "{cost}");
    }
    assert_summary(&run, &[("made", "2"), ("cost", "$0.422")]);
}

#[test]
fn max_cost_refuses_a_run_estimated_over_it_before_any_request() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    let run = genimg(&ws, Some(&server))
        .args(["a fox", "-o", "out", "-n", "10", "--max-cost", "2"])
        .run();
    assert_code(&run, 2);
    assert!(
        run.stderr
            .contains("--max-cost $2.00: this run is estimated at $2.11; nothing was sent"),
        "{}",
        run.stderr
    );
    assert!(server.requests().is_empty());

    // Only the images still to make count.
    let first = genimg(&ws, Some(&server))
        .args(["a fox", "-o", "out", "-n", "2"])
        .run();
    assert_code(&first, 0);
    let rest = genimg(&ws, Some(&server))
        .args(["a fox", "-o", "out", "-n", "10", "--max-cost", "2"])
        .run();
    assert_code(&rest, 0);
    assert_eq!(server.image_requests().len(), 10);

    let dry = genimg(&ws, None)
        .args([
            "a fox",
            "-o",
            "elsewhere",
            "-n",
            "10",
            "--max-cost",
            "2",
            "--dry-run",
        ])
        .run();
    assert!(
        dry.stdout
            .contains("--max-cost $2.00: a real run would be refused"),
        "{}",
        dry.stdout
    );
}

/// `--max-cost` weighs the total the dry run shows: 77 images at $0.013 are $1.001, shown as
/// $1.00, which a budget of $1.00 takes, in the dry run and in a real run alike; a budget of
/// $0.99 takes neither, and the refusal names the same $1.00.
#[test]
fn max_cost_weighs_the_total_as_shown() {
    let ws = Workspace::new();
    const ASK: [&str; 11] = [
        "a fox",
        "-o",
        "out",
        "-n",
        "77",
        "-m",
        "gpt-image-1.5",
        "--size",
        "1536x1024",
        "--quality",
        "low",
    ];
    let dry = |max: &str| {
        genimg(&ws, None)
            .args(ASK)
            .args(["--max-cost", max, "--dry-run"])
            .run()
            .stdout
    };
    let within = dry("1");
    assert!(within.contains("Total: $1.00\n"), "{within}");
    assert!(within.contains("--max-cost $1.00: within it"), "{within}");
    let over = dry("0.99");
    assert!(
        over.contains("--max-cost $0.99: a real run would be refused"),
        "{over}"
    );
    let server = FakeServer::start();
    let refused = genimg(&ws, Some(&server))
        .args(ASK)
        .args(["--max-cost", "0.99"])
        .run();
    assert_code(&refused, 2);
    assert!(
        refused
            .stderr
            .contains("--max-cost $0.99: this run is estimated at $1.00"),
        "{}",
        refused.stderr
    );
    assert!(server.requests().is_empty());
    let run = genimg(&ws, Some(&server))
        .args(ASK)
        .args(["--max-cost", "1"])
        .run();
    // Nor stopped on its way by the same rounding: every image is made.
    assert_code(&run, 0);
    assert_eq!(server.image_requests().len(), 77, "{}", run.stderr);
}

#[test]
fn max_cost_refuses_a_model_without_a_price() {
    let server = FakeServer::with(Options {
        extra_models: vec!["house-model".into()],
        ..Options::default()
    });
    let ws = Workspace::new();
    let run = genimg(&ws, Some(&server))
        .args(["a fox", "-o", "out", "-m", "house-model", "--max-cost", "5"])
        .run();
    assert_code(&run, 2);
    assert!(
        run.stderr.contains("the price of 1 image(s) is unknown"),
        "{}",
        run.stderr
    );
    assert!(server.requests().is_empty());
}

#[test]
fn max_cost_stops_starting_images_once_the_spend_reaches_it() {
    // Low quality is estimated at under a cent, but the fake's usage bills $0.21 an image:
    // the estimate passes, and the actual spend stops the run.
    let server = FakeServer::start();
    let ws = Workspace::new();
    let run = genimg(&ws, Some(&server))
        .args(["a fox", "-o", "out", "-n", "10", "-j", "1"])
        .args(["--quality", "low", "--max-cost", "1"])
        .run();
    assert_code(&run, 4);
    assert_eq!(server.image_requests().len(), 5);
    assert_eq!(ws.files("out").len(), 5);
    assert!(
        run.stderr.contains("Stopping at --max-cost $1.00"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(
            "genimg stopped at --max-cost $1.00: the images made cost $1.05, and the next \
             could pass the limit."
        ),
        "{}",
        run.stderr
    );
}

#[test]
fn the_output_tokens_split_into_image_and_text_are_recorded_and_priced() {
    let server = FakeServer::start();
    let (run, ws) = one_image(&server, &["-m", "gpt-image-2.6-flare"]);
    assert_code(&run, 0);
    let records = ws.manifest("out");
    let usage = &records[0]["usage"];
    assert_eq!(usage["output_tokens_details"]["image_tokens"], 7000);
    assert_eq!(usage["output_tokens_details"]["text_tokens"], 24);
    // Text in at $5/M; image tokens out at $30/M; text tokens out at the image price, as no
    // other is published.
    let expected = (50.0 * 5.0 + 7000.0 * 30.0 + 24.0 * 30.0) / 1e6;
    let cost = records[0]["cost_usd"].as_f64().unwrap();
    assert!((cost - expected).abs() < 1e-9, "{cost} vs {expected}");
}
