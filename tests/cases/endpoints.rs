//! Endpoints beyond api.openai.com: any compatible base URL, Azure OpenAI in both path forms,
//! proxies from the environment, and defaults from a config file.

use crate::support::*;

/// genimg with a cleared environment and no server settings at all.
fn bare(ws: &Workspace) -> std::process::Command {
    let mut cmd = genimg(ws, None);
    cmd.env_remove("OPENAI_BASE_URL");
    cmd
}

#[test]
fn any_compatible_base_url_with_a_path_of_its_own() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    // A trailing slash or not, the operation path is joined on.
    let run = bare(&ws)
        .env("OPENAI_API_KEY", KEY)
        .args(["a cat", "-o", "out", "--base-url"])
        .arg(format!("{}/", server.base_url()))
        .run();
    assert_code(&run, 0);
    let r = &server.image_requests()[0];
    assert_eq!(r.path, "/v1/images/generations");
    assert_eq!(
        r.header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
}

#[test]
fn azure_v1_path_with_the_api_key_header() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    let run = bare(&ws)
        .env("AZURE_OPENAI_ENDPOINT", server.azure_endpoint())
        .env("AZURE_OPENAI_API_KEY", KEY)
        .args(["a cat", "-o", "out"])
        .run();
    assert_code(&run, 0);
    let r = &server.image_requests()[0];
    assert_eq!(r.path, "/openai/v1/images/generations");
    assert_eq!(r.header("api-key"), Some(KEY));
    assert_eq!(r.header("authorization"), None, "no bearer token to Azure");
    assert_eq!(r.field("model").as_deref(), Some("gpt-image-2"));
    assert_eq!(ws.files("out"), ["image_01_hd.png"]);
}

#[test]
fn azure_deployment_path_with_an_api_version() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    ws.write("ref.png", images::fixture("reference.png"));
    let run = bare(&ws)
        .args(["a cat", "-o", "out", "--azure-endpoint"])
        .arg(server.azure_endpoint())
        .args(["--api-key", KEY, "--api-version", "2025-04-01-preview"])
        .args(["-m", "gpt-image-1.5", "--reference-image", "ref.png"])
        .run();
    assert_code(&run, 0);
    let r = &server.image_requests()[0];
    assert_eq!(r.path, "/openai/deployments/gpt-image-1.5/images/edits");
    assert_eq!(
        r.query_param("api-version").as_deref(),
        Some("2025-04-01-preview")
    );
    assert_eq!(r.header("api-key"), Some(KEY));
    assert_eq!(r.field("model"), None, "the deployment names the model");
    assert_images_match(&ws, "out", &server);
}

#[test]
fn azure_needs_its_own_key() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    let run = bare(&ws)
        .env("AZURE_OPENAI_ENDPOINT", server.azure_endpoint())
        .env("OPENAI_API_KEY", KEY)
        .args(["a cat", "-o", "out"])
        .run();
    assert_code(&run, 2);
    assert!(
        run.stderr.contains("AZURE_OPENAI_API_KEY"),
        "{}",
        run.stderr
    );
    assert!(server.requests().is_empty());
}

#[test]
fn requests_go_through_the_proxy_from_the_environment() {
    let server = FakeServer::start();
    let proxy = proxy::Proxy::start();
    let ws = Workspace::new();
    let run = genimg(&ws, Some(&server))
        .env("HTTP_PROXY", proxy.url())
        .args(["a cat", "-o", "out", "-n", "2"])
        .run();
    assert_code(&run, 0);
    let seen = proxy.seen();
    let expected = format!("POST {}/images/generations HTTP/1.1", server.base_url());
    assert_eq!(
        seen.iter().filter(|l| **l == expected).count(),
        2,
        "{seen:?}"
    );
    assert_images_match(&ws, "out", &server);
}

#[test]
fn https_requests_use_https_proxy_unless_no_proxy_says_otherwise() {
    let proxy = proxy::Proxy::start();
    let ws = Workspace::new();
    let run = bare(&ws)
        .env("OPENAI_API_KEY", KEY)
        .env("HTTPS_PROXY", proxy.url())
        .args(["a cat", "-o", "out", "--max-retries", "0"])
        .args(["--base-url", "https://api.genimg-test.invalid/v1"])
        .run();
    assert_code(&run, 1);
    assert_eq!(
        proxy.seen(),
        ["CONNECT api.genimg-test.invalid:443 HTTP/1.1"],
        "the proxy was asked for a tunnel"
    );

    let direct = proxy::Proxy::start();
    let run = bare(&ws)
        .env("OPENAI_API_KEY", KEY)
        .env("HTTPS_PROXY", direct.url())
        .env("NO_PROXY", "genimg-test.invalid")
        .args(["a cat", "-o", "out", "--max-retries", "0"])
        .args(["--base-url", "https://api.genimg-test.invalid/v1"])
        .run();
    assert_code(&run, 1);
    assert!(direct.seen().is_empty(), "{:?}", direct.seen());
}

#[test]
fn a_config_file_sets_defaults_that_flags_override() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    ws.write("conf/brand.png", images::fixture("reference.png"));
    ws.write("conf/style.txt", "Flat vector art.");
    let config = ws.write(
        "conf/genimg.toml",
        "model = \"gpt-image-2.5-flare\"\ncount = 2\nquality = \"xhigh\"\n\
         dst_dir = \"from-file\"\nstyle = \"@style.txt\"\nreference-image = [\"brand.png\"]\n",
    );
    let run = genimg(&ws, Some(&server))
        .env("GENIMG_CONFIG", &config)
        .args(["a fox", "--count", "1"])
        .run();
    assert_code(&run, 0);
    assert_eq!(
        ws.files("from-file"),
        ["image_01_xhigh.png"],
        "count from the flag"
    );
    let r = &server.image_requests()[0];
    assert_eq!(r.field("model").as_deref(), Some("gpt-image-2.5-flare"));
    assert_eq!(r.field("quality").as_deref(), Some("xhigh"));
    assert_eq!(r.prompt(), "Flat vector art.\n\na fox");
    assert_eq!(r.files[0].bytes, images::fixture("reference.png"));

    // The default location, under XDG_CONFIG_HOME, and its errors name file and line.
    ws.write("xdg/genimg/config.toml", "count = 1\nquality = \"ultra\"\n");
    let run = genimg(&ws, Some(&server))
        .env("XDG_CONFIG_HOME", ws.join("xdg"))
        .args(["a fox", "-o", "out"])
        .run();
    assert_code(&run, 2);
    assert!(
        run.stderr
            .contains("config.toml: quality = \"ultra\": `ultra` is not one of"),
        "{}",
        run.stderr
    );
    ws.write("xdg/genimg/config.toml", "count = 1\ncolour = \"red\"\n");
    let run = genimg(&ws, Some(&server))
        .env("XDG_CONFIG_HOME", ws.join("xdg"))
        .args(["a fox", "-o", "out"])
        .run();
    assert_code(&run, 2);
    assert!(
        run.stderr
            .contains("config.toml: line 2: unknown field `colour`"),
        "{}",
        run.stderr
    );
    assert_eq!(server.image_requests().len(), 1);
}

#[test]
fn config_file_values_are_checked_like_flags() {
    let ws = Workspace::new();
    let cases = [
        (
            "max-cost = nan\n",
            "max-cost = \"NaN\": `NaN` is not an amount of US dollars",
        ),
        (
            "max-cost = -1.0\n",
            "max-cost = \"-1\": `-1` is not an amount of US dollars",
        ),
        (
            "ipm = 0\n",
            "ipm = \"0\": `0` is not a whole number of 1 or more",
        ),
        (
            "jobs = 0\n",
            "jobs = \"0\": `0` is not a whole number of 1 or more",
        ),
        (
            "count = 0\n",
            "count = \"0\": `0` is not a whole number of 1 or more",
        ),
        (
            "timeout = 0\n",
            "timeout = \"0\": `0` is not a whole number of 1 or more",
        ),
    ];
    for (text, needle) in cases {
        let config = ws.write("genimg.toml", text);
        let run = genimg(&ws, None)
            .env("GENIMG_CONFIG", &config)
            .args(["a fox", "--dry-run"])
            .run();
        assert_code(&run, 2);
        assert!(run.stderr.contains("genimg.toml: "), "{}", run.stderr);
        assert!(
            run.stderr.contains(needle),
            "{needle:?} not in {}",
            run.stderr
        );
    }
}

#[test]
fn low_res_on_the_command_line_wins_over_a_quality_in_the_file() {
    let ws = Workspace::new();
    let config = ws.write("genimg.toml", "quality = \"high\"\n");
    let run = genimg(&ws, None)
        .env("GENIMG_CONFIG", &config)
        // -v: the dry run names each image.
        .args(["a fox", "--low-res", "--dry-run", "-v"])
        .run();
    assert_code(&run, 0);
    assert!(
        run.stdout.contains("image_01_standard.png"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("1024x1024 medium"), "{}", run.stdout);
}

#[test]
fn a_count_beyond_reason_is_refused() {
    let ws = Workspace::new();
    let run = genimg(&ws, None)
        .args(["a fox", "-n", "100000000", "--dry-run"])
        .run();
    assert_code(&run, 2);
    assert!(
        run.stderr
            .contains("is more than 10000 images of one prompt"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_flag_overrides_the_config_file_without_reading_its_value() {
    let ws = Workspace::new();
    let config = ws.write("genimg.toml", "quality = \"ultra\"\n");
    let run = genimg(&ws, None)
        .env("GENIMG_CONFIG", &config)
        // -v: the dry run names each image.
        .args(["a fox", "--quality", "low", "--dry-run", "-v"])
        .run();
    assert_code(&run, 0);
    assert!(run.stdout.contains("image_01_low.png"), "{}", run.stdout);
}
