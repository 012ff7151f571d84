//! The trash: `--from-scratch` and `--overwrite` never delete an image that was paid for.
//! The old images go to `DIR/.genimg/trash/<time>/`, byte for byte, with their manifest
//! records; `genimg trash empty DIR` deletes them.

use serde_json::Value;

use crate::support::*;

/// Every file in `dir`, by its path relative to it, with its bytes: the folder's state.
fn snapshot(ws: &Workspace, dir: &str) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = ws
        .files(dir)
        .into_iter()
        .filter(|n| n != ".genimg")
        .map(|n| {
            let bytes = ws.read(&format!("{dir}/{n}"));
            (n, bytes)
        })
        .collect();
    files.sort();
    files
}

/// Records sorted by their file.
fn by_file(mut records: Vec<Value>) -> Vec<Value> {
    records.sort_by_key(|r| r["file"].as_str().unwrap_or_default().to_owned());
    records
}

/// Whether a trash folder's name is a UTC time, `2026-12-02T031500Z`, or one with `-02`...
/// after it.
fn is_stamp(name: &str) -> bool {
    let (stamp, n) = name.split_at(name.len().min(18));
    let shape = "dddd-dd-ddTddddddZ";
    stamp.len() == shape.len()
        && stamp.chars().zip(shape.chars()).all(|(c, s)| match s {
            'd' => c.is_ascii_digit(),
            s => c == s,
        })
        && (n.is_empty()
            || n.strip_prefix('-')
                .is_some_and(|d| d.len() >= 2 && d.bytes().all(|b| b.is_ascii_digit())))
}

/// The case: HD images #1-#3 and a low-res set beside them. `--from-scratch -n 2`
/// moves every one of them (and nothing else) to the trash, byte for byte, with exactly
/// their records; the summary and `--json` say how many went, and where.
#[test]
fn from_scratch_moves_exactly_the_old_images_with_their_records() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    ws.write("p.txt", "# city\na city\n\n# robot\na robot\n");
    let args = ["--input", "p.txt", "-o", "out"];
    assert_code(
        &genimg(&ws, Some(&server))
            .args(args)
            .args(["-n", "3"])
            .run(),
        0,
    );
    assert_code(
        &genimg(&ws, Some(&server))
            .args(args)
            .args(["-n", "2", "--low-res"])
            .run(),
        0,
    );
    ws.write("out/notes.txt", "the user's notes");
    let before = snapshot(&ws, "out");
    let old_images: Vec<&(String, Vec<u8>)> = before
        .iter()
        .filter(|(n, _)| n.starts_with("image."))
        .collect();
    assert_eq!(old_images.len(), 10);
    let old_records = ws.manifest("out");
    assert_eq!(old_records.len(), 10);

    let run = genimg(&ws, Some(&server))
        .args(args)
        .args(["-n", "2", "--from_scratch", "--json"])
        .run();
    assert_code(&run, 0);
    assert_eq!(server.image_requests().len(), 10 + 4);
    let trash = ws.only_trash("out");
    let folder = trash.rsplit('/').next().unwrap();
    assert!(is_stamp(folder), "{folder}");

    // Exactly the old images, each byte for byte; the user's file stays.
    let moved = snapshot(&ws, &trash);
    let expected: Vec<(String, Vec<u8>)> = old_images.iter().map(|f| (*f).clone()).collect();
    let images_moved: Vec<(String, Vec<u8>)> = moved
        .iter()
        .filter(|(n, _)| n != MANIFEST)
        .cloned()
        .collect();
    assert_eq!(images_moved, expected);
    assert_eq!(ws.read("out/notes.txt"), b"the user's notes");
    // Their records, as they were, are the trash's; the live manifest has the new ones only.
    assert_eq!(ws.manifest(&trash), old_records);
    let records = ws.manifest("out");
    assert_eq!(records.len(), 4, "{records:#?}");
    let new_images: Vec<Vec<u8>> = server.image_requests()[10..]
        .iter()
        .filter_map(|r| r.image.clone())
        .collect();
    for r in &records {
        let bytes = ws.read(&format!("out/{}", r["file"].as_str().unwrap()));
        assert_eq!(r["sha256"], sha256_hex(&bytes));
        assert!(new_images.contains(&bytes), "{r}");
    }

    // The summary line, and the JSON document's field.
    assert!(
        run.stderr.contains(&format!(
            "Moved 10 old image(s) to {trash}/ (`genimg trash empty out` deletes them)."
        )),
        "{}",
        run.stderr
    );
    let doc: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(doc["trash"]["moved"], 10, "{doc:#}");
    assert_eq!(doc["trash"]["records"], 10);
    assert_eq!(doc["trash"]["folder"], trash.as_str());
    let files: Vec<&str> = doc["trash"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    let names: Vec<&str> = expected.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(files, names);
}

/// `--overwrite`: each old image goes to the trash as its new one is saved, byte for byte,
/// with its records, which leave the live manifest; `--remake-stale` likewise for a stale
/// one. An image not there yet sends nothing to the trash.
#[test]
fn overwrite_moves_each_replaced_image_to_the_trash_with_its_records() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    let args = ["a lighthouse", "-o", "out", "-n", "2"];
    assert_code(&genimg(&ws, Some(&server)).args(args).run(), 0);
    let before = snapshot(&ws, "out");
    let old_records = ws.manifest("out");

    let run = genimg(&ws, Some(&server))
        .args(args)
        .args(["--overwrite", "--json"])
        .run();
    assert_code(&run, 0);
    assert_eq!(server.image_requests().len(), 4);
    let trash = ws.only_trash("out");
    let moved: Vec<(String, Vec<u8>)> = snapshot(&ws, &trash)
        .into_iter()
        .filter(|(n, _)| n != MANIFEST)
        .collect();
    assert_eq!(moved, before, "the old images, byte for byte");
    // In the order their new images arrived.
    assert_eq!(by_file(ws.manifest(&trash)), by_file(old_records.clone()));
    // In place: the new images, and only their records.
    let records = ws.manifest("out");
    assert_eq!(records.len(), 2, "{records:#?}");
    for r in &records {
        let bytes = ws.read(&format!("out/{}", r["file"].as_str().unwrap()));
        assert_eq!(r["sha256"], sha256_hex(&bytes));
        assert!(!old_records.contains(r));
    }
    assert_ne!(snapshot(&ws, "out"), before);
    assert_images_match(&ws, "out", &server);
    assert!(
        run.stderr.contains(&format!(
            "Moved 2 old image(s) to {trash}/ (`genimg trash empty out` deletes them)."
        )),
        "{}",
        run.stderr
    );
    let doc: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(doc["trash"]["moved"], 2, "{doc:#}");
    assert_eq!(doc["trash"]["records"], 2);
    assert_eq!(doc["trash"]["folder"], trash.as_str());
    let mut files: Vec<&str> = doc["trash"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    files.sort();
    assert_eq!(files, ["image_01_hd.png", "image_02_hd.png"]);

    // --remake-stale replaces a stale image: it goes to the trash too, in a folder of this
    // run's own.
    ws.write("p.txt", "# fox\na fox\n");
    assert_code(
        &genimg(&ws, Some(&server))
            .args(["--input", "p.txt", "-o", "foxes"])
            .run(),
        0,
    );
    let fox = ws.read("foxes/image.fox.01.hd.png");
    ws.write("p.txt", "# fox\na fox at dusk\n");
    let stale = genimg(&ws, Some(&server))
        .args(["--input", "p.txt", "-o", "foxes", "--remake-stale"])
        .run();
    assert_code(&stale, 0);
    let trash = ws.only_trash("foxes");
    assert_eq!(ws.read(&format!("{trash}/image.fox.01.hd.png")), fox);
    assert_eq!(ws.manifest(&trash)[0]["prompt_text"], "a fox");
    assert_eq!(ws.manifest("foxes").len(), 1);

    // Nothing there to replace: no trash at all, and nothing said of one.
    let fresh = genimg(&ws, Some(&server))
        .args(["a lighthouse", "-o", "fresh", "--overwrite", "--json"])
        .run();
    assert_code(&fresh, 0);
    assert!(!ws.join("fresh/.genimg/trash").exists());
    assert!(!fresh.stderr.contains("Moved"), "{}", fresh.stderr);
    let doc: Value = serde_json::from_str(&fresh.stdout).unwrap();
    assert!(doc.get("trash").is_none(), "{doc:#}");
}

/// A dry run says what `--from-scratch` or `--overwrite` would move, and moves nothing.
#[test]
fn a_dry_run_says_what_would_go_to_the_trash_and_moves_nothing() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    let args = ["a lighthouse", "-o", "out", "-n", "2"];
    assert_code(&genimg(&ws, Some(&server)).args(args).run(), 0);
    let before = snapshot(&ws, "out");
    let manifest = ws.read("out/genimg.jsonl");
    let requests = server.requests().len();

    let scratch = genimg(&ws, None)
        .args(args)
        .args(["--from-scratch", "--dry-run"])
        .run();
    assert_code(&scratch, 0);
    assert!(
        scratch.stdout.contains(
            "--from-scratch would first move 2 file(s), with their records, to \
             out/.genimg/trash/:\n  image_01_hd.png\n  image_02_hd.png\n"
        ),
        "{}",
        scratch.stdout
    );
    let overwrite = genimg(&ws, None)
        .args(args)
        .args(["--overwrite", "--dry-run"])
        .run();
    assert_code(&overwrite, 0);
    assert!(
        overwrite.stdout.contains(
            "--overwrite would remake 2 image(s); each old one goes to out/.genimg/trash/ once \
             replaced:\n  image_01_hd.png\n  image_02_hd.png\n"
        ),
        "{}",
        overwrite.stdout
    );
    for flag in ["--from-scratch", "--overwrite"] {
        let json = genimg(&ws, None)
            .args(args)
            .args([flag, "--dry-run", "--json"])
            .run();
        assert_code(&json, 0);
        let doc: Value = serde_json::from_str(&json.stdout).unwrap();
        assert_eq!(
            doc["trash"],
            serde_json::json!({
                "would_move": 2,
                "files": ["image_01_hd.png", "image_02_hd.png"]
            }),
            "{flag}"
        );
    }
    // Nothing moved, nothing written, nothing sent.
    assert!(!ws.join("out/.genimg/trash").exists());
    assert_eq!(snapshot(&ws, "out"), before);
    assert_eq!(ws.read("out/genimg.jsonl"), manifest);
    assert_eq!(server.requests().len(), requests);
}

/// `genimg trash list DIR` shows each run's folder; `genimg trash empty DIR` deletes the
/// trash, saying how much, and nothing else.
#[test]
fn trash_empty_deletes_the_trash_and_says_how_much() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    let args = ["a lighthouse", "-o", "out"];
    assert_code(&genimg(&ws, Some(&server)).args(args).run(), 0);
    let old = ws.read("out/image_01_hd.png");
    assert_code(
        &genimg(&ws, Some(&server))
            .args(args)
            .arg("--overwrite")
            .run(),
        0,
    );
    let trash = ws.only_trash("out");
    let folder = trash.rsplit('/').next().unwrap().to_owned();
    let bytes = old.len() + ws.read(&format!("{trash}/{MANIFEST}")).len();
    let kept = snapshot(&ws, "out");

    let list = genimg(&ws, None).args(["trash", "list", "out"]).run();
    assert_code(&list, 0);
    assert!(
        list.stdout.starts_with("out/.genimg/trash:\n"),
        "{}",
        list.stdout
    );
    assert!(
        list.stdout
            .lines()
            .any(|l| l.trim_start().starts_with(&folder) && l.contains("2 file(s)")),
        "{}",
        list.stdout
    );

    let empty = genimg(&ws, None).args(["trash", "empty", "out"]).run();
    assert_code(&empty, 0);
    // As genimg writes sizes: bytes, then KB, then MB.
    let size = match bytes {
        0..1024 => format!("{bytes} bytes"),
        1024..1048576 => format!("{:.0} KB", bytes as f64 / 1024.0),
        _ => panic!("the fake's images are small: {bytes} bytes"),
    };
    assert_eq!(
        empty.stderr,
        format!("Deleted out/.genimg/trash with 2 file(s), {size}.\n")
    );
    assert!(!ws.join("out/.genimg/trash").exists());
    assert_eq!(snapshot(&ws, "out"), kept, "the images in place stay");

    let again = genimg(&ws, None).args(["trash", "empty", "out"]).run();
    assert_code(&again, 0);
    assert!(
        again.stderr.contains("is empty: nothing to delete"),
        "{}",
        again.stderr
    );
    let list = genimg(&ws, None).args(["trash", "list", "out"]).run();
    assert_eq!(list.stdout, "out/.genimg/trash is empty.\n");

    let nowhere = genimg(&ws, None).args(["trash", "empty", "nowhere"]).run();
    assert_code(&nowhere, 2);
    assert!(
        nowhere.stderr.contains("nowhere: is not a folder"),
        "{}",
        nowhere.stderr
    );
    assert!(!ws.join("nowhere").exists());
}

/// Each run has a folder of its own: one in the same second as an earlier one gets `-02`,
/// and the earlier folder is left as it was.
#[test]
fn a_second_run_in_the_same_second_gets_a_folder_of_its_own() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    let args = ["a lighthouse", "-o", "out"];
    assert_code(&genimg(&ws, Some(&server)).args(args).run(), 0);
    // Folders already there for this second and the next few, as an earlier run in the
    // same second would have left them.
    let now = jiff::Timestamp::now();
    let stamps: Vec<String> = (0..30)
        .map(|s| {
            (now + jiff::SignedDuration::from_secs(s))
                .strftime("%Y-%m-%dT%H%M%SZ")
                .to_string()
        })
        .collect();
    for stamp in &stamps {
        ws.write(&format!("out/{TRASH}/{stamp}/mark"), stamp);
    }
    let old = ws.read("out/image_01_hd.png");
    let run = genimg(&ws, Some(&server))
        .args(args)
        .arg("--overwrite")
        .run();
    assert_code(&run, 0);
    let folders = ws.trash_folders("out");
    assert_eq!(folders.len(), stamps.len() + 1, "{folders:?}");
    let new: Vec<&String> = folders.iter().filter(|f| !stamps.contains(f)).collect();
    assert_eq!(new.len(), 1);
    assert!(
        new[0].ends_with("-02") && stamps.contains(&new[0][..new[0].len() - 3].to_owned()),
        "{new:?}"
    );
    assert!(is_stamp(new[0]), "{}", new[0]);
    assert_eq!(
        ws.read(&format!("out/{TRASH}/{}/image_01_hd.png", new[0])),
        old
    );
    for stamp in &stamps {
        assert_eq!(ws.files(&format!("out/{TRASH}/{stamp}")), ["mark"]);
    }

    // Two runs one after the other: two folders, each with its own old image.
    let ws = Workspace::new();
    assert_code(&genimg(&ws, Some(&server)).args(args).run(), 0);
    let mut olds = Vec::new();
    for _ in 0..2 {
        olds.push(ws.read("out/image_01_hd.png"));
        let run = genimg(&ws, Some(&server))
            .args(args)
            .arg("--overwrite")
            .run();
        assert_code(&run, 0);
    }
    let folders = ws.trash_folders("out");
    assert_eq!(folders.len(), 2, "{folders:?}");
    for (folder, old) in folders.iter().zip(&olds) {
        assert_eq!(
            ws.read(&format!("out/{TRASH}/{folder}/image_01_hd.png")),
            *old
        );
    }
}

/// A config file cannot ask for what would move images on every run, remake them, send
/// nothing, or hold the key: each of the four keys, in either spelling, is refused with
/// exit code 2 naming it, and nothing in the destination moves.
#[test]
fn a_config_file_cannot_set_the_keys_meant_for_one_run() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    assert_code(
        &genimg(&ws, Some(&server))
            .args(["a fox", "-o", "out"])
            .run(),
        0,
    );
    let before = snapshot(&ws, "out");
    let requests = server.requests().len();
    for (key, text) in [
        ("from-scratch", "from-scratch = true\n"),
        ("from-scratch", "from_scratch = true\n"),
        ("overwrite", "overwrite = true\n"),
        ("dry-run", "dry-run = true\n"),
        ("dry-run", "dry_run = false\n"),
        ("api-key", "api-key = \"sk-in-a-file\"\n"),
        ("api-key", "api_key = \"sk-in-a-file\"\n"),
    ] {
        let config = ws.write("genimg.toml", format!("count = 1\n{text}"));
        let run = genimg(&ws, Some(&server))
            .env("GENIMG_CONFIG", &config)
            .args(["a fox", "-o", "out"])
            .run();
        assert_code(&run, 2);
        assert!(
            run.stderr
                .contains(&format!("line 2: `{key}` cannot be set in a config file")),
            "{text:?}: {}",
            run.stderr
        );
        assert!(!run.stderr.contains("sk-in-a-file"), "{}", run.stderr);
    }
    assert_eq!(server.requests().len(), requests, "nothing was sent");
    assert!(!ws.join("out/.genimg/trash").exists());
    assert_eq!(snapshot(&ws, "out"), before);
}

/// The gallery shows what is in the destination: never an image in the trash.
#[test]
fn the_gallery_never_shows_the_trash() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    let args = ["a lighthouse", "-o", "out"];
    assert_code(
        &genimg(&ws, Some(&server))
            .args(args)
            .args(["-n", "2"])
            .run(),
        0,
    );
    let run = genimg(&ws, Some(&server))
        .args(args)
        .args(["-n", "1", "--from-scratch"])
        .run();
    assert_code(&run, 0);
    let trash = ws.only_trash("out");
    assert_eq!(ws.files(&trash), ["image_01_hd.png", "image_02_hd.png"]);
    assert_eq!(ws.manifest(&trash).len(), 2);
    for page in [String::from_utf8(ws.read("out/index.html")).unwrap(), {
        let rebuilt = genimg(&ws, None).args(["gallery", "out"]).run();
        assert_code(&rebuilt, 0);
        String::from_utf8(ws.read("out/index.html")).unwrap()
    }] {
        assert!(!page.contains(".genimg/trash"), "{page}");
        assert!(page.contains("image_01_hd.png"));
        assert!(!page.contains("image_02_hd.png"), "{page}");
    }
}

/// An old image that cannot go to the trash is not replaced: it stays, and the new one is
/// kept elsewhere, as any image the destination will not take.
#[test]
fn an_image_that_cannot_go_to_the_trash_is_not_replaced() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    let args = ["a lighthouse", "-o", "out"];
    assert_code(&genimg(&ws, Some(&server)).args(args).run(), 0);
    let old = ws.read("out/image_01_hd.png");
    // A file where the trash would be: no folder can be made there.
    ws.write("out/.genimg/trash", "in the way");
    let run = genimg(&ws, Some(&server))
        .env("TMPDIR", ws.join("tmp"))
        .args(args)
        .arg("--overwrite")
        .run();
    assert_code(&run, 3);
    assert_eq!(ws.read("out/image_01_hd.png"), old, "the old image stays");
    assert!(
        run.stderr.contains("could not go to the trash"),
        "{}",
        run.stderr
    );
    let rescued = ws.files("tmp/genimg-rescue");
    assert_eq!(rescued.len(), 1, "{rescued:?}");
    let records = ws.manifest("out");
    let lost = record(&records, "image_01_hd.png");
    assert_eq!(lost["status"], "failed");
    let rescue = lost["rescued"].as_str().unwrap().to_owned();
    let sent = server
        .image_requests()
        .last()
        .unwrap()
        .image
        .clone()
        .unwrap();
    assert_eq!(std::fs::read(rescue).unwrap(), sent, "the new image, kept");
}
