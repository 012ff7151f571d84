//! The gallery: `index.html` in the destination, as a browser shows it, and the commands
//! that write it or not.

use std::fs::File;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

const CHROMIUM: &str = "/usr/bin/chromium";

/// Long enough for a cold start on a slow CI machine; a hung browser is killed after it.
const CHROMIUM_TIMEOUT: Duration = Duration::from_secs(60);

/// Four prompts, one of which the fake refuses, one with text that needs escaping.
const PROMPTS: &str = "\
# harbour
a harbour at dawn

# market
a busy market, <crowded> & \"loud\" at noon

# nope
something FORBIDDEN

# forest_path
a misty forest path
";

const NAMES: [&str; 4] = ["harbour", "market", "nope", "forest_path"];

/// Runs genimg over [`PROMPTS`] into `out`, two images each, with `args` added; the refused
/// prompt makes it exit 1.
fn run_prompts(ws: &Workspace, server: &FakeServer, args: &[&str]) -> Run {
    ws.write("prompts.txt", PROMPTS);
    let run = genimg(ws, Some(server))
        .args(["--input", "prompts.txt", "-o", "out", "--count", "2"])
        .args(args)
        .run();
    assert_code(&run, 1);
    run
}

/// Whether the browser tests can run: without Chromium they are skipped with a note, unless
/// `GENIMG_REQUIRE_CHROMIUM=1` (as in CI), where a missing browser fails them.
fn chromium_available() -> bool {
    if Path::new(CHROMIUM).is_file() {
        return true;
    }
    assert!(
        std::env::var_os("GENIMG_REQUIRE_CHROMIUM").is_none_or(|v| v != "1"),
        "GENIMG_REQUIRE_CHROMIUM=1 but {CHROMIUM} is not installed"
    );
    eprintln!("note: {CHROMIUM} is not installed; the gallery's browser test is skipped");
    false
}

/// Runs headless Chromium on `page` with `args` added; see [`chromium_at`].
fn chromium(page: &Path, args: &[&str]) -> String {
    chromium_at(&format!("file://{}", page.display()), args)
}

/// Runs headless Chromium on `url` with `args` added, in a fresh profile, killed if it takes
/// longer than [`CHROMIUM_TIMEOUT`]; returns its standard output.
fn chromium_at(url: &str, args: &[&str]) -> String {
    let scratch = tempfile::tempdir().expect("tempdir");
    let profile = scratch.path().join("profile");
    let stdout_path = scratch.path().join("stdout");
    let stderr_path = scratch.path().join("stderr");
    // Output goes to files, not pipes, so a chatty browser cannot block on a full pipe while
    // the test waits for it.
    let mut child = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args([
            "--allow-file-access-from-files",
            "--virtual-time-budget=5000",
        ])
        .args(args)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(File::create(&stdout_path).expect("stdout file"))
        .stderr(File::create(&stderr_path).expect("stderr file"))
        .spawn()
        .expect("spawn chromium");
    let deadline = Instant::now() + CHROMIUM_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for chromium") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "chromium did not finish within {CHROMIUM_TIMEOUT:?} on {url}\n--- stderr\n{}",
                std::fs::read_to_string(&stderr_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stdout = std::fs::read_to_string(&stdout_path).expect("chromium's output");
    assert!(
        status.success(),
        "chromium exited with {status} on {url}\n--- stderr\n{}",
        std::fs::read_to_string(&stderr_path).unwrap_or_default()
    );
    stdout
}

/// How many records of the manifest in `out` are images made.
fn made(ws: &Workspace) -> usize {
    ws.manifest("out")
        .iter()
        .filter(|r| r["status"] == "made")
        .count()
}

#[test]
fn a_browser_shows_every_image_made_and_every_prompt() {
    if !chromium_available() {
        return;
    }
    let server = FakeServer::start();
    let ws = Workspace::new();
    let run = run_prompts(&ws, &server, &[]);
    assert!(run.stderr.contains("Gallery: "), "{}", run.stderr);
    let page = ws
        .join("out")
        .join(GALLERY)
        .canonicalize()
        .expect("index.html");
    let made = made(&ws);
    assert_eq!(made, 6, "three prompts of two images; the fourth refused");

    let dom = chromium(&page, &["--dump-dom"]);
    assert!(
        dom.contains(&format!("data-loaded=\"{made}/{made}\"")),
        "every image loads in the browser:\n{dom}"
    );
    assert!(
        !dom.contains("class=\"broken\""),
        "no image is marked broken:\n{dom}"
    );
    for name in NAMES {
        assert!(
            dom.contains(name),
            "the prompt {name} is on the page:\n{dom}"
        );
    }
    assert!(
        dom.contains("a busy market, &lt;crowded&gt; &amp; \"loud\" at noon"),
        "the prompt text is shown as written:\n{dom}"
    );
    assert_eq!(dom.matches("class=\"refused\"").count(), 2, "{dom}");

    // A screenshot, kept for a person to look at.
    let shot: PathBuf = Path::new(env!("CARGO_TARGET_TMPDIR")).join("gallery.png");
    let _ = std::fs::remove_file(&shot);
    chromium(
        &page,
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1280,2000",
        ],
    );
    let bytes = std::fs::read(&shot).expect("the screenshot");
    assert!(
        bytes.len() > 10_000,
        "{} is only {} bytes",
        shot.display(),
        bytes.len()
    );
    let mut reader = png::Decoder::new(Cursor::new(&bytes))
        .read_info()
        .expect("the screenshot is a PNG");
    let (width, height) = (reader.info().width, reader.info().height);
    assert_eq!((width, height), (1280, 2000));
    let mut pixels = vec![0; reader.output_buffer_size().expect("buffer size")];
    reader
        .next_frame(&mut pixels)
        .expect("the screenshot decodes");
    let colours: std::collections::HashSet<&[u8]> = pixels.chunks(3).collect();
    assert!(
        colours.len() > 100,
        "the screenshot shows more than a blank page"
    );
    eprintln!("screenshot: {}", shot.display());
}

#[test]
fn no_gallery_writes_none_and_the_gallery_command_rebuilds_it() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    run_prompts(&ws, &server, &["--no-gallery"]);
    assert!(!ws.join("out").join(GALLERY).exists(), "--no-gallery");
    assert_eq!(ws.files("out").len(), 6);

    let run = genimg(&ws, None).args(["gallery", "out"]).run();
    assert_code(&run, 0);
    assert!(run.stderr.contains("index.html"), "{}", run.stderr);
    let page = String::from_utf8(ws.read("out/index.html")).expect("UTF-8");
    for name in NAMES {
        assert!(page.contains(name), "{name}");
    }

    std::fs::remove_file(ws.join("out").join(GALLERY)).unwrap();
    let run = genimg(&ws, None).args(["gallery", "out"]).run();
    assert_code(&run, 0);
    assert_eq!(String::from_utf8(ws.read("out/index.html")).unwrap(), page);
    assert_eq!(
        ws.all_files("out")
            .iter()
            .filter(|n| n.ends_with(".tmp"))
            .count(),
        0,
        "no temporary file left"
    );
}

#[test]
fn the_gallery_command_needs_a_manifest() {
    let ws = Workspace::new();
    ws.write("empty/picture.png", "not ours");
    let run = genimg(&ws, None).args(["gallery", "empty"]).run();
    assert_code(&run, 2);
    assert!(
        run.stderr
            .contains("no genimg.jsonl in empty: nothing to show"),
        "{}",
        run.stderr
    );
    assert!(!ws.join("empty").join(GALLERY).exists());
}

#[test]
fn the_page_is_self_contained() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    run_prompts(&ws, &server, &[]);
    let page = String::from_utf8(ws.read("out/index.html")).expect("UTF-8");
    for scheme in ["http://", "https://"] {
        assert!(
            !page.contains(scheme),
            "the page refers to {scheme}:\n{page}"
        );
    }
    assert!(!page.contains("<link"), "no stylesheet or icon to fetch");
    assert!(!page.contains("<script src"), "no script to fetch");
    // Each image is linked, and its tile shows its thumbnail, a file in the folder.
    for name in ws.files("out") {
        let tile = format!("<a class=\"thumb\" href=\"{name}\"><img src=\"");
        let at = page.find(&tile).unwrap_or_else(|| panic!("{name}: {page}")) + tile.len();
        let thumb = &page[at..at + page[at..].find('"').unwrap()];
        assert!(thumb.starts_with(".genimg/thumbs/"), "{name}: {thumb}");
        assert!(ws.join("out").join(thumb).is_file(), "{thumb}");
    }
}

/// A destination as a run leaves it when answers came in another format than asked, in none
/// genimg recognises, or could not be saved there: the records say so, and a browser shows
/// each for what it is, with no broken image.
#[test]
fn answers_kept_another_way_are_shown_for_what_they_are() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    let run = genimg(&ws, Some(&server))
        .args(["a cat", "-o", "out", "-n", "3"])
        .run();
    assert_code(&run, 0);
    let out = ws.join("out");
    let unrecognised = ".genimg/unrecognised/image_02_hd.bin";
    std::fs::create_dir_all(out.join(".genimg/unrecognised")).unwrap();
    // Bytes in no format genimg knows, where the image was planned.
    std::fs::remove_file(out.join("image_02_hd.png")).unwrap();
    std::fs::write(out.join(unrecognised), "<svg-ish>not an image genimg knows").unwrap();
    std::fs::create_dir_all(ws.join("rescue")).unwrap();
    let rescued = ws.join("rescue").join("image_03_hd.png");
    std::fs::rename(out.join("image_03_hd.png"), &rescued).unwrap();
    let mut lines = String::new();
    for mut r in ws.manifest("out") {
        match r["file"].as_str().unwrap() {
            "image_01_hd.png" => {
                r["planned_file"] = "image_01_hd.webp".into();
                r["asked_format"] = "webp".into();
                r["received_format"] = "png".into();
            }
            "image_02_hd.png" => {
                r["file"] = unrecognised.into();
                r["planned_file"] = "image_02_hd.png".into();
                r["asked_format"] = "png".into();
                r["received_format"] = "unknown".into();
            }
            "image_03_hd.png" => {
                r["status"] = "failed".into();
                r["error"] = "could not save image_03_hd.png: No space left on device".into();
                r["rescued"] = rescued.display().to_string().into();
            }
            other => panic!("unexpected record of {other}"),
        }
        lines.push_str(&format!("{r}\n"));
    }
    std::fs::write(out.join(MANIFEST), lines).unwrap();

    let run = genimg(&ws, None).args(["gallery", "out"]).run();
    assert_code(&run, 0);
    let page = String::from_utf8(ws.read("out/index.html")).expect("UTF-8");
    assert!(
        page.contains("Format: asked for webp, received png; planned as image_01_hd.webp."),
        "{page}"
    );
    assert!(
        page.contains(&format!("<a href=\"{unrecognised}\">Open the file</a>")),
        "{page}"
    );
    assert!(
        page.contains(&format!(
            "<a href=\"file://{0}\">{0}</a>",
            rescued.display()
        )),
        "{page}"
    );
    assert_eq!(page.matches("<img ").count(), 1, "{page}");

    if !chromium_available() {
        return;
    }
    let dom = chromium(
        &out.join(GALLERY).canonicalize().expect("index.html"),
        &["--dump-dom"],
    );
    assert!(dom.contains("data-loaded=\"1/1\""), "{dom}");
    assert!(!dom.contains("class=\"broken\""), "{dom}");
}

/// A refusal's moderation details are fields of its manifest record and of its card.
#[test]
fn a_refusal_shows_its_stage_and_categories_in_the_manifest_and_the_gallery() {
    let server = FakeServer::with(Options {
        script: Some(std::sync::Arc::new(|i: &Incoming| {
            if i.prompt.contains("FORBIDDEN") {
                Action::moderation_blocked("output", &["violence", "<self-harm>"])
            } else {
                Action::Answer
            }
        })),
        ..Options::default()
    });
    let ws = Workspace::new();
    ws.write("p.txt", "# fine\na meadow\n\n# nope\nsomething FORBIDDEN\n");
    let run = genimg(&ws, Some(&server))
        .args(["--input", "p.txt", "-o", "out", "--json"])
        .run();
    assert_code(&run, 1);

    let records = ws.manifest("out");
    let refused = records
        .iter()
        .find(|r| r["status"] == "refused")
        .expect("a refused record");
    assert_eq!(
        refused["moderation"],
        serde_json::json!({"stage": "output", "categories": ["violence", "<self-harm>"]}),
        "{refused}"
    );
    let made = records.iter().find(|r| r["status"] == "made").unwrap();
    assert!(made.get("moderation").is_none(), "{made}");

    let html = String::from_utf8(ws.read(&format!("out/{GALLERY}"))).unwrap();
    assert!(
        html.contains(
            "<dl class=\"refusal\"><dt>stage</dt><dd>output</dd><dt>categories</dt><dd>violence, &lt;self-harm&gt;</dd></dl>"
        ),
        "{html}"
    );
    assert!(!html.contains("<self-harm>"), "escaped: {html}");
    assert!(
        html.contains("reword the prompt at p.txt:4"),
        "the hint to reword it: {html}"
    );

    // And --json, for scripts.
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let image = doc["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["status"] == "refused")
        .expect("the refused image");
    assert_eq!(
        image["moderation"],
        serde_json::json!({"stage": "output", "categories": ["violence", "<self-harm>"]}),
        "{image}"
    );
}

/// `genimg gallery DIR` takes the destination's lock as a run does: while a run is writing
/// there it refuses (exit 2) and writes nothing; the run writes its own page when it ends.
#[test]
fn the_gallery_command_refuses_while_a_run_writes_there() {
    let ws = Workspace::new();
    let fast = FakeServer::start();
    assert_code(&genimg(&ws, Some(&fast)).args(["a", "-o", "out"]).run(), 0);
    let before = ws.read("out/index.html");

    let slow = FakeServer::with(Options {
        latency: Duration::from_millis(3000),
        ..Options::default()
    });
    let running = genimg(&ws, Some(&slow))
        .args(["a", "-o", "out", "-n", "2"])
        .start();
    let deadline = Instant::now() + Duration::from_secs(20);
    while slow.image_requests_started() == 0 {
        assert!(Instant::now() < deadline, "the run did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let refused = genimg(&ws, None).args(["gallery", "out"]).run();
    assert_code(&refused, 2);
    assert!(
        refused.stderr.contains(&format!(
            "gallery out: another genimg run (process {}) is writing there; try again when it \
             has finished",
            running.id()
        )),
        "{}",
        refused.stderr
    );
    assert_eq!(
        ws.read("out/index.html"),
        before,
        "the page was not touched"
    );

    let run = wait(running);
    assert_code(&run, 0);
    assert!(run.stderr.contains("Gallery: "), "{}", run.stderr);
    assert!(
        !run.stderr.contains("could not write the gallery"),
        "{}",
        run.stderr
    );
    let page = String::from_utf8(ws.read("out/index.html")).expect("UTF-8");
    assert!(
        page.contains("<a class=\"thumb\" href=\"image_02_hd.png\"><img src=\".genimg/thumbs/"),
        "{page}"
    );

    let again = genimg(&ws, None).args(["gallery", "out"]).run();
    assert_code(&again, 0);
}

/// Images genimg's naming made with no manifest record (the seed script's, or older runs')
/// are shown by what their names say; `genimg gallery DIR` builds a page for such a folder.
#[test]
fn images_without_a_record_are_listed_by_their_names() {
    let ws = Workspace::new();
    ws.write("seed/image_01_hd.png", images::png(1));
    ws.write("seed/image.fox.01.hd.png", images::png(2));
    ws.write("seed/desc_01_image_01_standard.png", images::png(3));
    ws.write("seed/picture.png", images::png(4));
    ws.write("seed/image_02_hd.png", "not an image");
    let run = genimg(&ws, None).args(["gallery", "seed"]).run();
    assert_code(&run, 0);
    let page = String::from_utf8(ws.read("seed/index.html")).unwrap();
    for name in [
        "image_01_hd.png",
        "image.fox.01.hd.png",
        "desc_01_image_01_standard.png",
    ] {
        assert!(page.contains(name), "{name} in the page");
    }
    assert!(!page.contains("picture.png"), "not a name genimg gives");
    assert!(!page.contains("image_02_hd.png"), "not an image");

    // Beside recorded images too.
    let server = FakeServer::start();
    assert_code(
        &genimg(&ws, Some(&server))
            .args(["a cat", "-o", "out"])
            .run(),
        0,
    );
    ws.write("out/image.old.01.hd.png", images::png(5));
    assert_code(&genimg(&ws, None).args(["gallery", "out"]).run(), 0);
    let page = String::from_utf8(ws.read("out/index.html")).unwrap();
    assert!(page.contains("image.old.01.hd.png"));
    assert!(page.contains("image_01_hd.png"));
}

/// An SVG whose scripts, if they ever ran, would say so on the gallery's page and its title.
const HOSTILE_SVG: &str = r##"<?xml version="1.0" encoding="UTF-8"?>
<!-- a model's answer is untrusted markup -->
<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64" onload="top.document.title='PWNED-ONLOAD'">
<script>top.document.title = 'PWNED'; top.document.body.setAttribute('data-pwned', '1');</script>
<rect width="64" height="64" fill="#3a7"/>
</svg>
"##;

#[test]
fn an_svg_is_shown_as_an_image_whose_scripts_never_run_and_is_never_linked_as_a_page() {
    let ws = Workspace::new();
    ws.write("out/image_01_hd.svg", HOSTILE_SVG);
    ws.write("out/image_02_hd.png", images::png(2));
    let run = genimg(&ws, None).args(["gallery", "out"]).run();
    assert_code(&run, 0);
    let html = String::from_utf8(ws.read(&format!("out/{GALLERY}"))).unwrap();
    assert!(html.contains("<img src=\"image_01_hd.svg\""), "{html}");
    // Never inlined, embedded or linked as a document to open.
    assert!(!html.contains("PWNED"), "{html}");
    for tag in ["<object", "<iframe", "<embed"] {
        assert!(!html.contains(tag), "{tag}: {html}");
    }
    for anchor in html.split("<a ").skip(1) {
        let tag = &anchor[..anchor.find('>').unwrap()];
        if tag.contains(".svg\"") {
            assert!(
                tag.contains(" download"),
                "a link to the SVG downloads it: {tag}"
            );
        }
    }
    if !chromium_available() {
        return;
    }
    let page = ws.join("out").join(GALLERY).canonicalize().unwrap();
    let dom = chromium(&page, &["--dump-dom"]);
    assert!(
        dom.contains("data-loaded=\"2/2\""),
        "the SVG loads, as an image:\n{dom}"
    );
    assert!(!dom.contains("PWNED"), "a script of the SVG ran:\n{dom}");
    assert!(
        !dom.contains("data-pwned"),
        "a script of the SVG ran:\n{dom}"
    );
    // Its tile, with no link, is reached with Tab and opened with Enter; the focus is in the
    // lightbox while it is open, and back on the tile once it closes.
    let page = scenario(
        &ws.join("out"),
        &format!(
            "{SCENARIO_HELPERS}{}",
            r#"
var tile = document.querySelector("span.thumb");
var lines = ["focusable " + (tile.tabIndex === 0)];
tile.focus();
tile.dispatchEvent(new KeyboardEvent("keydown", { key: "Enter", bubbles: true }));
var box = document.getElementById("lightbox");
lines.push("open " + !box.hidden + " " + box.dataset.file);
lines.push("focus in the lightbox " + box.contains(document.activeElement));
key("Escape");
lines.push("closed " + box.hidden + ", focus on the tile " + (document.activeElement === tile));
done(lines);
"#
        ),
    );
    let result = result_of(&chromium(&page, &["--dump-dom"]));
    assert_eq!(
        result.lines().collect::<Vec<_>>(),
        [
            "focusable true",
            "open true image_01_hd.svg",
            "focus in the lightbox true",
            "closed true, focus on the tile true",
        ],
        "{result}"
    );
}

/// `dir/index.html` with `script` run after the page's own: a copy, `scenario.html`, in the
/// same folder (so its links and its storage are the page's). The script drives the page as
/// a person would (clicks, key presses) and writes what it saw into the DOM, which
/// `--dump-dom` then prints.
fn scenario(dir: &Path, script: &str) -> PathBuf {
    let page = std::fs::read_to_string(dir.join(GALLERY)).expect("index.html");
    let at = page.rfind("</body>").expect("</body>");
    let copy = format!(
        "{}<script>\n{script}\n</script>\n{}",
        &page[..at],
        &page[at..]
    );
    let path = dir.join("scenario.html");
    std::fs::write(&path, copy).expect("write the scenario");
    path.canonicalize().expect("scenario.html")
}

/// The `src` of every `<img>` in the page's `<main>`.
fn image_sources(html: &str) -> Vec<String> {
    let main = &html[html.find("<main>").expect("<main>")..html.find("</main>").expect("</main>")];
    main.split("<img src=\"")
        .skip(1)
        .map(|rest| rest[..rest.find('"').unwrap()].to_owned())
        .collect()
}

/// Every thumbnail in `dir`, with when it was written.
fn thumbnails(dir: &Path) -> Vec<(String, std::time::SystemTime)> {
    let mut thumbs: Vec<_> = std::fs::read_dir(dir.join(".genimg/thumbs"))
        .expect("the thumbnails' folder")
        .map(|e| {
            let e = e.unwrap();
            let modified = e.metadata().unwrap().modified().unwrap();
            (e.file_name().to_string_lossy().into_owned(), modified)
        })
        .collect();
    thumbs.sort();
    thumbs
}

/// A 1024x1024 PNG with some grain, a few hundred kilobytes: `seq` varies its pixels.
fn large_png(seq: u32) -> Vec<u8> {
    let image = image::RgbImage::from_fn(1024, 1024, |x, y| {
        let noise = (x.wrapping_mul(7919) ^ y.wrapping_mul(104_729) ^ seq.wrapping_mul(31)) % 4;
        image::Rgb([
            ((x / 4 + seq * 40) % 256) as u8,
            ((y / 4) % 256) as u8,
            ((x + y) / 8 % 256) as u8 ^ (noise as u8 * 3),
        ])
    });
    let mut out = Vec::new();
    image::DynamicImage::ImageRgb8(image)
        .write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png)
        .expect("encode");
    out
}

/// 500 images of 50 prompts: the page and the thumbnails its tiles show stay within a few
/// megabytes (the originals weigh hundreds), every thumbnail loads in a browser, and a
/// second `genimg gallery` makes none again.
#[test]
fn five_hundred_images_load_as_thumbnails_within_a_few_megabytes() {
    let ws = Workspace::new();
    // Five originals, each under a hundred names (hard links, to spare the disk): every
    // name is an image of its own to the gallery.
    let originals: Vec<PathBuf> = (0..5)
        .map(|n| ws.write(&format!("originals/{n}.png"), large_png(n)))
        .collect();
    std::fs::create_dir_all(ws.join("many")).unwrap();
    let mut total = 0;
    for p in 0..50 {
        for i in 1..=10 {
            let original = &originals[(p + i) % originals.len()];
            total += std::fs::metadata(original).unwrap().len() as usize;
            let name = ws.join(&format!("many/image.p{p:02}.{i:02}.hd.png"));
            std::fs::hard_link(original, name).expect("hard link");
        }
    }
    let run = genimg(&ws, None).args(["gallery", "many"]).run();
    assert_code(&run, 0);
    let dir = ws.join("many");
    let first = thumbnails(&dir);
    assert_eq!(first.len(), 500, "one thumbnail per image");

    let html = String::from_utf8(ws.read("many/index.html")).unwrap();
    let sources = image_sources(&html);
    assert_eq!(sources.len(), 500);
    let mut loaded = html.len();
    for src in &sources {
        assert!(src.starts_with(".genimg/thumbs/"), "a tile shows {src}");
        loaded += std::fs::metadata(dir.join(src)).expect(src).len() as usize;
    }
    assert!(
        loaded < 5_000_000,
        "the page and its thumbnails weigh {loaded} bytes (the originals {total})"
    );
    assert!(total > 50_000_000, "the originals weigh {total} bytes");
    eprintln!("500 images: page and thumbnails {loaded} bytes, originals {total} bytes");

    // Made once: a second run writes none.
    assert_code(&genimg(&ws, None).args(["gallery", "many"]).run(), 0);
    assert_eq!(thumbnails(&dir), first, "no thumbnail written again");

    if !chromium_available() {
        return;
    }
    // Every tile's image loads (made eager here: a browser loads lazy ones as they scroll
    // into view).
    let page = scenario(
        &dir,
        "document.querySelectorAll('main img').forEach(function (img) { img.loading = 'eager'; });",
    );
    let dom = chromium(&page, &["--dump-dom"]);
    assert!(
        dom.contains("data-loaded=\"500/500\""),
        "{}",
        &dom[..dom.len().min(3000)]
    );
    assert!(!dom.contains("class=\"broken\""));
}

/// An animated GIF's tile shows a thumbnail of its first frame (the fake's: a black pixel,
/// then a white one), and links the GIF itself, which moves.
#[test]
fn an_animated_gifs_thumbnail_is_its_first_frame() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    let run = genimg(&ws, Some(&server))
        .args(["a lighthouse", "-o", "out", "-m", "gpt-image-2.6-flare"])
        .args(["--format", "gif"])
        .run();
    assert_code(&run, 0);
    let html = String::from_utf8(ws.read("out/index.html")).unwrap();
    assert!(html.contains("href=\"image_01_hd.gif\""), "{html}");
    let sources = image_sources(&html);
    assert_eq!(sources.len(), 1, "{sources:?}");
    assert!(
        sources[0].starts_with(".genimg/thumbs/") && sources[0].ends_with(".jpg"),
        "{sources:?}"
    );
    let thumb = image::load_from_memory(&ws.read(&format!("out/{}", sources[0]))).unwrap();
    assert_eq!((thumb.width(), thumb.height()), (1, 1));
    let [r, g, b] = thumb.to_rgb8().get_pixel(0, 0).0;
    assert!(
        r < 40 && g < 40 && b < 40,
        "the first frame, black: {r} {g} {b}"
    );
}

/// Thumbnails are made for the images a run makes, once: a second run making nothing
/// writes none again; an image remade gets a new one and its old one goes.
#[test]
fn thumbnails_are_made_once_and_anew_for_a_remade_image() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    assert_code(
        &genimg(&ws, Some(&server))
            .args(["a cat", "-o", "out", "-n", "2"])
            .run(),
        0,
    );
    let dir = ws.join("out");
    let first = thumbnails(&dir);
    assert_eq!(first.len(), 2);
    assert_code(
        &genimg(&ws, Some(&server))
            .args(["a cat", "-o", "out", "-n", "2"])
            .run(),
        0,
    );
    assert_eq!(thumbnails(&dir), first, "nothing made, nothing written");

    std::thread::sleep(Duration::from_millis(20));
    ws.write("out/image_02_hd.png", images::png(99));
    assert_code(&genimg(&ws, None).args(["gallery", "out"]).run(), 0);
    let after = thumbnails(&dir);
    assert_eq!(
        after.len(),
        2,
        "the old thumbnail of image_02 is gone: {after:?}"
    );
    assert_eq!(
        after.iter().filter(|t| first.contains(t)).count(),
        1,
        "image_01's kept as it was, image_02's new: {first:?} {after:?}"
    );
}

/// What a scenario wrote into `<pre id="result">`, unescaped.
fn result_of(dom: &str) -> String {
    let start = dom
        .find("<pre id=\"result\">")
        .unwrap_or_else(|| panic!("the scenario wrote no result:\n{dom}"))
        + "<pre id=\"result\">".len();
    let end = start + dom[start..].find("</pre>").expect("</pre>");
    dom[start..end]
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}

/// Helpers every scenario starts with: `key(k)` presses a key, `done(lines)` writes the result.
const SCENARIO_HELPERS: &str = r#"
function key(k) { document.dispatchEvent(new KeyboardEvent("keydown", { key: k, bubbles: true })); }
function done(lines) {
  var pre = document.createElement("pre");
  pre.id = "result";
  pre.textContent = lines.join("\n");
  document.body.appendChild(pre);
}
"#;

/// The files the page shows as images, in its order.
fn files_shown(html: &str) -> Vec<String> {
    html.split("data-file=\"")
        .skip(1)
        .map(|rest| rest[..rest.find('"').unwrap()].to_owned())
        .collect()
}

#[test]
fn the_lightbox_opens_on_a_click_moves_with_the_arrow_keys_and_closes_with_escape() {
    if !chromium_available() {
        return;
    }
    let server = FakeServer::start();
    let ws = Workspace::new();
    // DALL-E 3's answers carry a revised prompt.
    run_prompts(&ws, &server, &["-m", "dall-e-3"]);
    let dir = ws.join("out");
    let files = files_shown(&String::from_utf8(ws.read("out/index.html")).unwrap());
    assert_eq!(files.len(), 6, "{files:?}");
    let page = scenario(
        &dir,
        &format!(
            "{SCENARIO_HELPERS}{}",
            r##"
function state() {
  var box = document.getElementById("lightbox");
  if (box.hidden) return "closed";
  var text = function (id) { return document.getElementById(id).textContent; };
  return [box.dataset.file, document.getElementById("lb-img").getAttribute("src"), text("lb-prompt"),
    text("lb-revised"), text("lb-meta"), text("lb-pos")].join(" | ");
}
var lines = [state()];
document.querySelector("main img[data-file]").click();
lines.push(state());
key("ArrowRight"); lines.push(state());
key("ArrowRight"); lines.push(state());
key("ArrowLeft"); lines.push(state());
key("ArrowLeft"); key("ArrowLeft"); lines.push(state());
key("Escape"); lines.push(state());
// Enter on a tile's link clicks the link itself: the lightbox opens, the page stays.
document.querySelectorAll("main a.thumb")[1].click();
lines.push(state());
key("Escape");
// Compare: two tiles' boxes, then the button.
var boxes = document.querySelectorAll("input.cmp");
boxes[0].click(); boxes[2].click();
document.getElementById("compare").click();
var shown = [];
document.querySelectorAll("#cmp-row img").forEach(function (i) { shown.push(i.getAttribute("src")); });
lines.push("compare " + shown.join(",") + (document.getElementById("compare-view").hidden ? " hidden" : " shown"));
key("Escape");
lines.push("compare " + (document.getElementById("compare-view").hidden ? "closed" : "open"));
done(lines);
"##
        ),
    );
    let result = result_of(&chromium(&page, &["--dump-dom"]));
    let lines: Vec<&str> = result.lines().collect();
    assert_eq!(lines.len(), 10, "{result}");
    assert_eq!(lines[0], "closed");
    let opened: Vec<Vec<&str>> = lines[1..6]
        .iter()
        .map(|l| l.split(" | ").collect())
        .collect();
    for (line, expected) in opened.iter().zip([0, 1, 2, 1, 5]) {
        let file = files[expected].as_str();
        assert_eq!(line[0], file, "{result}");
        assert_eq!(line[1], file, "the full image, not its thumbnail: {result}");
        assert_eq!(line[5], format!("{} of 6", expected + 1), "{result}");
    }
    assert_eq!(opened[0][2], "a harbour at dawn", "{result}");
    assert_eq!(
        opened[0][3], "A vivid rendering of: a harbour at dawn",
        "{result}"
    );
    assert!(
        opened[0][4].contains("dall-e-3")
            && opened[0][4].contains("1024x1024")
            && opened[0][4].contains('$'),
        "size and cost: {result}"
    );
    assert_eq!(
        opened[2][2], "a busy market, <crowded> & \"loud\" at noon",
        "the next prompt's text, as written: {result}"
    );
    assert_eq!(lines[6], "closed", "Escape closes it: {result}");
    assert!(
        lines[7].starts_with(&format!("{} | ", files[1])),
        "Enter on a tile opens the lightbox: {result}"
    );
    assert_eq!(
        lines[8],
        format!("compare {},{} shown", files[0], files[2]),
        "side by side: {result}"
    );
    assert_eq!(lines[9], "compare closed", "{result}");
}

#[test]
fn the_filter_hides_the_other_prompts() {
    if !chromium_available() {
        return;
    }
    let server = FakeServer::start();
    let ws = Workspace::new();
    run_prompts(&ws, &server, &[]);
    let page = scenario(
        &ws.join("out"),
        &format!(
            "{SCENARIO_HELPERS}{}",
            r#"
var filter = document.getElementById("filter");
function shown(words) {
  filter.value = words;
  filter.dispatchEvent(new Event("input"));
  var ids = [];
  document.querySelectorAll("main section").forEach(function (s) { if (!s.hidden) ids.push(s.id); });
  var chips = [];
  document.querySelectorAll("nav a").forEach(function (a) { if (!a.hidden) chips.push(a.getAttribute("href")); });
  return words + " => " + ids.join(",") + " | " + chips.join(",") + " | " + document.getElementById("shown").textContent;
}
function escape() {
  filter.dispatchEvent(new KeyboardEvent("keydown", { key: "Escape", bubbles: true }));
  return JSON.stringify(filter.value) + (document.activeElement === filter ? " focused" : " left") + " | " +
    document.getElementById("shown").textContent;
}
var lines = [shown("market"), shown("MISTY path"), shown("forest market"), shown("")];
shown("harbour");
filter.focus();
lines.push(escape(), escape());
done(lines);
"#
        ),
    );
    let result = result_of(&chromium(&page, &["--dump-dom"]));
    let lines: Vec<&str> = result.lines().collect();
    assert_eq!(
        lines,
        [
            "market => p-market | #p-market | 1 of 4 prompts · 2 images shown",
            "MISTY path => p-forest_path | #p-forest_path | 1 of 4 prompts · 2 images shown",
            "forest market =>  |  | 0 of 4 prompts · 0 images shown",
            " => p-harbour,p-market,p-nope,p-forest_path | #p-harbour,#p-market,#p-nope,#p-forest_path | 4 of 4 prompts · 6 images shown",
            // Esc empties the filter, then leaves it.
            "\"\" focused | 4 of 4 prompts · 6 images shown",
            "\"\" left | 4 of 4 prompts · 6 images shown",
        ],
        "{result}"
    );
}

/// Prompts from the command line are told apart (each text a section the filter can find),
/// and a prompt of a non-ASCII name has its chip hidden with its section.
#[test]
fn the_filter_tells_command_line_prompts_and_non_ascii_names_apart() {
    if !chromium_available() {
        return;
    }
    let server = FakeServer::start();
    let ws = Workspace::new();
    for prompt in ["a watercolor astronaut", "a red fox in snow"] {
        let run = genimg(&ws, Some(&server))
            .args([prompt, "-o", "refs", "-n", "2"])
            .run();
        assert_code(&run, 0);
    }
    ws.write("p.txt", "# 猫\na cat on a mat\n");
    let run = genimg(&ws, Some(&server))
        .args(["--input", "p.txt", "-o", "refs", "-n", "1"])
        .run();
    assert_code(&run, 0);
    let page = scenario(
        &ws.join("refs"),
        &format!(
            "{SCENARIO_HELPERS}{}",
            r#"
var filter = document.getElementById("filter");
function shown(words) {
  filter.value = words;
  filter.dispatchEvent(new Event("input"));
  var ids = [], chips = [];
  document.querySelectorAll("main section").forEach(function (s) { if (!s.hidden) ids.push(s.id); });
  document.querySelectorAll("nav a").forEach(function (a) { if (!a.hidden) chips.push(a.dataset.section); });
  return words + " => " + ids.join(",") + " | " + chips.join(",");
}
done([shown("fox"), shown("astronaut"), shown("cat"), shown("")]);
"#
        ),
    );
    let result = result_of(&chromium(&page, &["--dump-dom"]));
    assert_eq!(
        result.lines().collect::<Vec<_>>(),
        [
            "fox => command-line-2 | command-line-2",
            "astronaut => command-line | command-line",
            "cat => p-猫 | p-猫",
            // The file's prompts first, then the command line's.
            " => p-猫,command-line,command-line-2 | p-猫,command-line,command-line-2",
        ],
        "{result}"
    );
}

#[test]
fn a_pick_survives_a_reload_and_is_exported_as_picks_txt_and_a_shell_line() {
    if !chromium_available() {
        return;
    }
    let server = FakeServer::start();
    let ws = Workspace::new();
    run_prompts(&ws, &server, &[]);
    let dir = ws.join("out");
    let files = files_shown(&String::from_utf8(ws.read("out/index.html")).unwrap());
    let page = scenario(
        &dir,
        &format!(
            "{SCENARIO_HELPERS}{}",
            r#"
if (!sessionStorage.getItem("reloaded")) {
  // Pick the second image with the key in the lightbox, the last with its tile's button.
  document.querySelector("main img[data-file]").click();
  key("ArrowRight"); key("p"); key("Escape");
  var buttons = document.querySelectorAll("button.pick");
  buttons[buttons.length - 1].click();
  sessionStorage.setItem("reloaded", "1");
  location.reload();
} else {
  var picked = [];
  document.querySelectorAll("figure.picked img").forEach(function (i) { picked.push(i.dataset.file); });
  var link = document.getElementById("picks-download");
  fetch(link.href).then(function (r) { return r.text(); }).then(function (text) {
    done(["picked " + picked.join(","), "count " + document.getElementById("pick-count").textContent,
      "name " + link.getAttribute("download"), "file " + JSON.stringify(text),
      "shell " + document.getElementById("picks-shell").value]);
  });
}
"#
        ),
    );
    let result = result_of(&chromium(&page, &["--dump-dom"]));
    let (second, last) = (&files[1], &files[5]);
    assert_eq!(
        result.lines().collect::<Vec<_>>(),
        [
            format!("picked {second},{last}"),
            "count 2".to_owned(),
            "name picks.txt".to_owned(),
            format!("file \"{second}\\n{last}\\n\""),
            format!("shell mkdir -p picked && cp -- '{second}' '{last}' picked/"),
        ],
        "{result}"
    );
}

/// The reference images and the mask of an edit are shown with its prompt, by name and as
/// thumbnails in the folder; the files themselves, outside it, are neither copied nor linked.
#[test]
fn references_and_masks_are_shown_with_their_prompt() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    ws.write("inputs/ref.png", images::fixture("reference.png"));
    ws.write("inputs/mask.png", images::mask_png(32, 32));
    let run = genimg(&ws, Some(&server))
        .args([
            "a cat",
            "--reference-image",
            "inputs/ref.png",
            "--mask",
            "inputs/mask.png",
        ])
        .args(["-o", "out", "-n", "2"])
        .run();
    assert_code(&run, 0);
    let html = String::from_utf8(ws.read("out/index.html")).unwrap();
    let inputs: Vec<&str> = html.split("<span class=\"input ").skip(1).collect();
    assert_eq!(inputs.len(), 2, "each input once, for both images: {html}");
    for (input, kind, name) in [
        (inputs[0], "reference", "inputs/ref.png"),
        (inputs[1], "mask", "inputs/mask.png"),
    ] {
        assert!(
            input.starts_with(&format!("{kind}\"><img src=\".genimg/thumbs/")),
            "{input}"
        );
        assert!(
            input.contains(&format!("<span>{kind}: {name}</span>")),
            "{input}"
        );
        let src = input.split("src=\"").nth(1).unwrap();
        let src = &src[..src.find('"').unwrap()];
        assert!(ws.join("out").join(src).is_file(), "{src}");
        assert!(!html.contains(&format!("href=\"{name}")) && !html.contains("../inputs"));
    }
    let mut names = ws.all_files("out/.genimg/thumbs");
    names.retain(|n| n.ends_with(".jpg"));
    assert_eq!(
        names.len(),
        4,
        "two images, a reference and a mask: {names:?}"
    );

    // Rebuilt from elsewhere, where the paths lead nowhere: the thumbnails made stay shown.
    std::fs::remove_dir_all(ws.join("inputs")).unwrap();
    assert_code(&genimg(&ws, None).args(["gallery", "out"]).run(), 0);
    let again = String::from_utf8(ws.read("out/index.html")).unwrap();
    assert_eq!(again.matches("<span class=\"input ").count(), 2);
    assert_eq!(
        again.matches("<img src=\".genimg/thumbs/").count(),
        4,
        "{again}"
    );

    if !chromium_available() {
        return;
    }
    let dom = chromium(
        &ws.join("out").join(GALLERY).canonicalize().unwrap(),
        &["--dump-dom"],
    );
    assert!(dom.contains("data-loaded=\"4/4\""), "{dom}");
}

/// Sends one raw HTTP/1.1 request to `addr` and gives back the whole answer as text.
fn raw_http(addr: &str, request: &str) -> String {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

/// `genimg gallery DIR --serve` running, with the address it printed first; killed when
/// dropped.
struct Served {
    child: std::process::Child,
    addr: String,
}

impl Served {
    fn start(ws: &Workspace, dir: &str) -> Served {
        let mut child = genimg(ws, None).args(["gallery", dir, "--serve"]).start();
        let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        std::io::BufRead::read_line(&mut stdout, &mut first).unwrap();
        let addr = first
            .trim()
            .strip_prefix("http://")
            .and_then(|a| a.strip_suffix('/'))
            .unwrap_or_else(|| panic!("the address: {first}"))
            .to_owned();
        Served { child, addr }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn serve_shows_the_folder_on_localhost_and_saves_picks_into_it() {
    let ws = Workspace::new();
    ws.write("out/image_01_hd.png", images::png(1));
    ws.write("out/image_02_hd.svg", HOSTILE_SVG);
    ws.write("secret.txt", "outside the folder");
    let mut served = Served::start(&ws, "out");
    let addr = served.addr.clone();
    assert!(addr.starts_with("127.0.0.1:"), "localhost only: {addr}");
    let get = |path: &str| {
        raw_http(
            &addr,
            &format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"),
        )
    };
    let page = get("/");
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains("<html"), "{page}");
    assert!(get("/image_01_hd.png").starts_with("HTTP/1.1 200"));
    // HEAD: the headers (the file's length among them), no body.
    let head = raw_http(
        &addr,
        &format!("HEAD /image_01_hd.png HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"),
    );
    let length = images::png(1).len();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.contains(&format!("content-length: {length}\r\n")),
        "{head}"
    );
    assert!(head.ends_with("\r\n\r\n"), "no body: {head}");
    // Only what the page shows: not a file of the user's beside the images.
    ws.write("out/.env", "OPENAI_API_KEY=sk-not-for-the-web");
    let env = get("/.env");
    assert!(env.starts_with("HTTP/1.1 404"), "{env}");
    assert!(!env.contains("sk-not"), "{env}");
    // Another site embedding the folder's images (the browser says it is cross-site).
    let embedded = raw_http(
        &addr,
        &format!(
            "GET /image_01_hd.png HTTP/1.1\r\nHost: {addr}\r\nSec-Fetch-Site: cross-site\r\n\
             Connection: close\r\n\r\n"
        ),
    );
    assert!(embedded.starts_with("HTTP/1.1 403"), "{embedded}");
    // A link to the gallery followed from another page (say, a notebook on another port).
    let followed = raw_http(
        &addr,
        &format!(
            "GET / HTTP/1.1\r\nHost: {addr}\r\nSec-Fetch-Site: same-site\r\n\
             Sec-Fetch-Mode: navigate\r\nSec-Fetch-Dest: document\r\nConnection: close\r\n\r\n"
        ),
    );
    assert!(followed.starts_with("HTTP/1.1 200"), "{followed}");
    // Not the trash, nor anything else of genimg's own the page does not show.
    ws.write(
        "out/.genimg/trash/20260101T000000Z/image_01_hd.png",
        images::png(2),
    );
    assert!(get("/.genimg/trash/20260101T000000Z/image_01_hd.png").starts_with("HTTP/1.1 404"));
    // An SVG opened as a page runs no script.
    let svg = get("/image_02_hd.svg");
    assert!(
        svg.contains("content-security-policy: script-src 'none'; sandbox"),
        "{svg}"
    );
    // Nothing outside the folder.
    for outside in ["/../secret.txt", "/%2e%2e/secret.txt", "/..%2fsecret.txt"] {
        let answer = get(outside);
        assert!(answer.starts_with("HTTP/1.1 404"), "{outside}: {answer}");
        assert!(!answer.contains("outside the folder"), "{outside}");
    }
    // The page saves picks as it would: a POST of picks.txt.
    let picks = "image_01_hd.png\nimage_02_hd.svg\n";
    let saved = raw_http(
        &addr,
        &format!(
            "POST /picks.txt HTTP/1.1\r\nHost: {addr}\r\nOrigin: http://{addr}\r\n\
             Content-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{picks}",
            picks.len()
        ),
    );
    assert!(saved.starts_with("HTTP/1.1 200"), "{saved}");
    assert_eq!(ws.read("out/picks.txt"), picks.as_bytes());
    // A file like any other the user makes there, not a temporary file's owner-only one.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        ws.write("mine.txt", "x");
        let mode = |p: &str| std::fs::metadata(ws.join(p)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode("out/picks.txt"), mode("mine.txt"));
    }
    // Another web page (or one that rebinds its name to 127.0.0.1) may neither write nor read.
    let forged = raw_http(
        &addr,
        &format!(
            "POST /picks.txt HTTP/1.1\r\nHost: {addr}\r\nOrigin: http://evil.example\r\n\
             Content-Length: 4\r\nConnection: close\r\n\r\nnope"
        ),
    );
    assert!(forged.starts_with("HTTP/1.1 403"), "{forged}");
    let rebound = raw_http(
        &addr,
        "GET /image_01_hd.png HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n",
    );
    assert!(rebound.starts_with("HTTP/1.1 403"), "{rebound}");
    assert_eq!(ws.read("out/picks.txt"), picks.as_bytes(), "unchanged");
    assert!(get("/picks.txt").ends_with(picks), "read back on load");
    // Ctrl-C stops it.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(served.child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = served.child.wait().unwrap();
    // Ended by the signal, or by genimg on it.
    assert!(matches!(status.code(), None | Some(0 | 130)), "{status:?}");
}

#[test]
fn serve_beside_a_page_of_the_users_own_serves_the_gallery_with_its_script() {
    let ws = Workspace::new();
    ws.write("out/image_01_hd.png", images::png(1));
    ws.write("out/index.html", "<html>my own site</html>");
    let served = Served::start(&ws, "out");
    let addr = &served.addr;
    let page = raw_http(
        addr,
        &format!("GET / HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"),
    );
    drop(served);
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(
        !page.contains("my own site"),
        "the gallery, not the user's page: {page}"
    );
    assert!(
        !page.to_lowercase().contains("content-security-policy"),
        "the gallery's own script runs: {page}"
    );
    assert_eq!(ws.read("out/index.html"), b"<html>my own site</html>");
}

/// The gallery of [`PROMPTS`] in `out`, its files listed in the page's order, with
/// `picks.txt` holding `picks`; then served by `genimg gallery out --serve` with `script`
/// run after the page's own (the scenario takes the page's place, which the server reads on
/// each request), in headless Chromium over http; what the script wrote.
fn served_scenario(
    picks: &dyn Fn(&[String]) -> String,
    script: &str,
) -> (Workspace, Vec<String>, String) {
    let server = FakeServer::start();
    let ws = Workspace::new();
    run_prompts(&ws, &server, &[]);
    let files = files_shown(&String::from_utf8(ws.read("out/index.html")).unwrap());
    ws.write("out/picks.txt", picks(&files));
    let served = Served::start(&ws, "out");
    let dir = ws.join("out");
    let page = scenario(&dir, &format!("{SCENARIO_HELPERS}{SERVED_HELPERS}{script}"));
    std::fs::rename(&page, dir.join(GALLERY)).unwrap();
    let result = result_of(&chromium_at(
        &format!("http://{}/", served.addr),
        &["--dump-dom"],
    ));
    drop(served);
    (ws, files, result)
}

/// Helpers of a served page's scenario: `when(test, then)` waits for `test`, `saved()` is
/// what the page says of picks.txt.
const SERVED_HELPERS: &str = r#"
function when(test, then) { if (test()) then(); else setTimeout(function () { when(test, then); }, 20); }
function saved() { return document.getElementById("picks-saved").textContent; }
"#;

/// The page itself, served: a pick made on it (even before the folder's picks.txt has
/// arrived) is saved into the folder together with the picks already there (a hand-edited
/// file with CRLF line ends included), and a reload shows the folder's picks, not only the
/// browser's.
#[test]
fn serve_saves_picks_made_on_the_page_into_the_folder() {
    if !chromium_available() {
        return;
    }
    let (ws, files, result) = served_scenario(
        &|files| format!("{}\r\n", files[0]),
        r#"
if (!sessionStorage.getItem("reloaded")) {
  // At once, before the folder's picks.txt has arrived.
  var buttons = document.querySelectorAll("button.pick");
  buttons[buttons.length - 1].click();
  when(function () { return saved().indexOf("saved") === 0; }, function () {
    sessionStorage.setItem("reloaded", "1");
    localStorage.clear();
    location.reload();
  });
} else {
  when(function () { return saved().indexOf("read") === 0; }, function () {
    var picked = [];
    document.querySelectorAll("figure.picked img").forEach(function (i) { picked.push(i.dataset.file); });
    done(["picked " + picked.join(","), "count " + document.getElementById("pick-count").textContent, saved()]);
  });
}
"#,
    );
    let (first, last) = (&files[0], &files[5]);
    assert_eq!(
        result.lines().collect::<Vec<_>>(),
        [
            format!("picked {first},{last}"),
            "count 2".to_owned(),
            "read from picks.txt in the folder".to_owned(),
        ],
        "{result}"
    );
    assert_eq!(
        String::from_utf8(ws.read("out/picks.txt")).unwrap(),
        format!("{first}\n{last}\n")
    );
}

/// Served: "clear" pressed before the folder's picks.txt has arrived clears those too, and a
/// pick made after it stays.
#[test]
fn serve_clear_before_the_folders_picks_arrive_clears_them_too() {
    if !chromium_available() {
        return;
    }
    let (ws, files, result) = served_scenario(
        &|files| format!("{}\n", files[0]),
        r#"
document.getElementById("clear-picks").click();
var buttons = document.querySelectorAll("button.pick");
buttons[buttons.length - 1].click();
when(function () { return saved().indexOf("saved") === 0; }, function () {
  var picked = [];
  document.querySelectorAll("figure.picked img").forEach(function (i) { picked.push(i.dataset.file); });
  done(["picked " + picked.join(",")]);
});
"#,
    );
    let last = &files[5];
    assert_eq!(result.trim(), format!("picked {last}"), "{result}");
    assert_eq!(
        String::from_utf8(ws.read("out/picks.txt")).unwrap(),
        format!("{last}\n")
    );
}
