//! What goes on the wire for each model, and where it goes.

use crate::support::*;

#[test]
fn dalle3_gets_its_own_fields() {
    let server = FakeServer::start();
    let (run, ws) = one_image(&server, &["--model", "dall-e-3"]);
    assert_code(&run, 0);
    let r = &server.image_requests()[0];
    assert_eq!(r.field("model").as_deref(), Some("dall-e-3"));
    assert_eq!(r.field("response_format").as_deref(), Some("b64_json"));
    assert_eq!(r.field("quality").as_deref(), Some("hd"));
    assert_eq!(r.fields["n"], 1);
    assert!(r.field("style").is_none());
    assert_eq!(ws.files("out"), ["image_01_hd.png"]);

    let server = FakeServer::start();
    let (run, ws) = one_image(&server, &["--model", "dall-e-3", "--low-res"]);
    assert_code(&run, 0);
    assert_eq!(
        server.image_requests()[0].field("quality").as_deref(),
        Some("standard")
    );
    assert_eq!(ws.files("out"), ["image_01_standard.png"]);
}

#[test]
fn dalle2_gets_no_quality() {
    let server = FakeServer::start();
    let (run, _ws) = one_image(&server, &["--model", "dall-e-2"]);
    assert_code(&run, 0);
    let r = &server.image_requests()[0];
    assert!(r.field("quality").is_none());
    assert_eq!(r.field("response_format").as_deref(), Some("b64_json"));
}

#[test]
fn gpt_image_models_get_no_dalle_fields() {
    for model in [
        "gpt-image-1.5",
        "gpt-image-2-2026-04-21",
        "gpt-image-2.5-flare",
        "gpt-image-2.6-sunburst",
    ] {
        let server = FakeServer::start();
        let (run, _ws) = one_image(&server, &["--model", model]);
        assert_code(&run, 0);
        let r = &server.image_requests()[0];
        assert_eq!(r.field("model").as_deref(), Some(model));
        assert!(
            r.field("response_format").is_none() && r.field("style").is_none(),
            "{model}"
        );
        assert_eq!(r.field("quality").as_deref(), Some("high"));
    }
}

#[test]
fn an_unknown_model_is_sent_as_given_with_gpt_image_rules() {
    let server = FakeServer::with(Options {
        extra_models: vec!["acme-image-9".into()],
        ..Options::default()
    });
    let (run, ws) = one_image(&server, &["--model", "acme-image-9"]);
    assert_code(&run, 0);
    let r = &server.image_requests()[0];
    assert_eq!(r.field("model").as_deref(), Some("acme-image-9"));
    assert_eq!(r.field("quality").as_deref(), Some("high"));
    assert!(r.field("response_format").is_none());
    assert_eq!(ws.files("out"), ["image_01_hd.png"]);
}

#[test]
fn genimg_model_sets_the_default_and_the_flag_wins() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    let run = genimg(&ws, Some(&server))
        .env("GENIMG_MODEL", "gpt-image-1.5")
        .args(["a", "-o", "x"])
        .run();
    assert_code(&run, 0);
    let run = genimg(&ws, Some(&server))
        .env("GENIMG_MODEL", "gpt-image-1.5")
        .args(["a", "-o", "y", "--model", "gpt-image-2"])
        .run();
    assert_code(&run, 0);
    let models: Vec<String> = server
        .image_requests()
        .iter()
        .filter_map(|r| r.field("model"))
        .collect();
    assert_eq!(models, ["gpt-image-1.5", "gpt-image-2"]);
}

#[test]
fn organization_and_project_headers() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    let run = genimg(&ws, Some(&server))
        .env("OPENAI_ORG_ID", "org-abc")
        .env("OPENAI_PROJECT_ID", "proj_xyz")
        .args(["a", "-o", "out"])
        .run();
    assert_code(&run, 0);
    let r = &server.image_requests()[0];
    assert_eq!(r.header("openai-organization"), Some("org-abc"));
    assert_eq!(r.header("openai-project"), Some("proj_xyz"));

    let server = FakeServer::start();
    let (run, _ws) = one_image(&server, &[]);
    assert_code(&run, 0);
    let r = &server.image_requests()[0];
    assert!(r.header("openai-organization").is_none() && r.header("openai-project").is_none());
}

#[test]
fn base_url_flag_wins_over_the_environment() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    let run = genimg(&ws, None)
        .env("OPENAI_API_KEY", KEY)
        .env("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
        .args(["a", "-o", "out", "--base-url", &server.base_url()])
        .run();
    assert_code(&run, 0);
    assert_eq!(server.image_requests().len(), 1);

    // With a trailing slash too.
    let run = genimg(&ws, None)
        .env("OPENAI_API_KEY", KEY)
        .args([
            "b",
            "-o",
            "out2",
            "--base_url",
            &format!("{}/", server.base_url()),
        ])
        .run();
    assert_code(&run, 0);
    assert_eq!(server.image_requests()[1].path, "/v1/images/generations");
}

#[test]
fn a_url_answer_is_downloaded_without_the_key() {
    let server = FakeServer::with(Options {
        url_answers: true,
        ..Options::default()
    });
    let (run, ws) = one_image(&server, &["--count", "2"]);
    assert_code(&run, 0);
    assert_eq!(ws.files("out"), ["image_01_hd.png", "image_02_hd.png"]);
    assert_images_match(&ws, "out", &server);
    let downloads: Vec<Recorded> = server
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET")
        .collect();
    assert_eq!(downloads.len(), 2);
    for d in downloads {
        assert!(d.path.starts_with("/files/"));
        assert!(
            d.header("authorization").is_none(),
            "the key stays with the API"
        );
    }
}

#[test]
fn an_expired_image_link_fails_that_image_without_stopping_the_run() {
    let server = FakeServer::with(Options {
        url_answers: true,
        links_expire: true,
        ..Options::default()
    });
    let (run, ws) = one_image(&server, &["--count", "2"]);
    assert_code(&run, 1);
    assert_eq!(ws.files("out"), Vec::<String>::new());
    assert_eq!(
        server.image_requests().len(),
        2,
        "a dead link is not worth a new image"
    );
    assert!(
        run.stderr.contains(
            "image_01_hd.png: downloading the image from its link failed: HTTP 403 (request req_fake_"
        ),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("genimg stopped"), "{}", run.stderr);
}

#[test]
fn the_timeout_fails_a_slow_image_and_the_others_go_on() {
    let server = FakeServer::with(Options {
        script: Some(std::sync::Arc::new(|i: &Incoming| {
            if i.prompt.contains("slow") {
                Action::Delay(std::time::Duration::from_secs(4))
            } else {
                Action::Answer
            }
        })),
        ..Options::default()
    });
    let ws = Workspace::new();
    ws.write("p.txt", "# slow\nslow one\n# quick\nquick one\n");
    let run = genimg(&ws, Some(&server))
        .args(["--input", "p.txt", "-o", "out", "--timeout", "1"])
        .args(["--max-retries", "1"])
        .run();
    assert_code(&run, 1);
    assert_eq!(ws.files("out"), ["image.quick.01.hd.png"]);
    assert!(
        run.stderr.contains(
            "image.slow.01.hd.png [slow]: no complete answer within 1 s (see --timeout) \
             (gave up after 2 attempts)"
        ),
        "{}",
        run.stderr
    );
    // The fake records an answer only once it is sent, so count arrivals: one quick request,
    // and the slow one twice.
    assert_eq!(server.image_requests_started(), 3, "a timeout is retried");
}

#[test]
fn a_stumbling_image_link_is_fetched_again_not_bought_again() {
    let server = FakeServer::with(Options {
        url_answers: true,
        link_faults: 2,
        ..Options::default()
    });
    let (run, ws) = one_image(&server, &[]);
    assert_code(&run, 0);
    assert_eq!(server.image_requests().len(), 1, "one image paid for");
    let fetches = server
        .requests()
        .iter()
        .filter(|r| r.method == "GET")
        .count();
    assert_eq!(fetches, 3, "the link was fetched until it worked");
    assert_eq!(ws.files("out"), ["image_01_hd.png"]);
    assert_images_match(&ws, "out", &server);
}
