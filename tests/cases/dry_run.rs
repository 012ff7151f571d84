//! The dry run reads at any size: one line per prompt within 100 columns, the prompt's own
//! text, amounts rounded one way that add up, `-v` for every image, rounded JSON.

use serde_json::Value;

use crate::support::*;

/// The widest line a dry run prints, in characters.
const WIDTH: usize = 100;

/// An amount as genimg rounds it: to a tenth of a cent under a dollar, else to the cent.
fn shown(amount: f64) -> f64 {
    let mills = (amount * 1000.0).round();
    if mills < 1000.0 {
        mills / 1000.0
    } else {
        (amount * 100.0).round() / 100.0
    }
}

/// The dollar amounts a line shows, in order.
fn amounts(line: &str) -> Vec<f64> {
    line.match_indices('$')
        .map(|(at, _)| {
            let digits: String = line[at + 1..]
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.')
                .collect();
            digits
                .trim_end_matches('.')
                .parse()
                .unwrap_or_else(|_| panic!("an amount in {line:?}"))
        })
        .collect()
}

/// The line of prompt `name`: the one line that begins with it, as a dry run lists prompts.
fn prompt_line<'a>(out: &'a str, name: &str) -> &'a str {
    let lines: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with(&format!("  {name} ")))
        .collect();
    assert_eq!(lines.len(), 1, "one line for {name} in:\n{out}");
    lines[0]
}

/// Every line of `out` fits [`WIDTH`] columns of a terminal (where a CJK character or an
/// emoji takes two).
fn assert_fits(out: &str) {
    for line in out.lines() {
        assert!(
            columns(line) <= WIDTH,
            "{} columns: {line:?}\nin:\n{out}",
            columns(line)
        );
    }
}

fn columns(line: &str) -> usize {
    unicode_width::UnicodeWidthStr::width(line)
}

fn dry(ws: &Workspace, args: &[&str]) -> Run {
    let run = genimg(ws, None).args(args).arg("--dry-run").run();
    assert_code(&run, 0);
    run
}

#[test]
fn three_hundred_images_are_one_line_per_prompt_within_100_columns() {
    let ws = Workspace::new();
    let mut prompts = String::new();
    for n in 0..100 {
        prompts.push_str(&format!(
            "# p{n:03}\nPrompt number {n}: a very detailed scene with many words, so that its text \
             is far longer than any line of a listing could hold, and then some more.\n\n"
        ));
    }
    ws.write("p.txt", &prompts);
    // p000-p019 are done; p020-p039 have their first image.
    for n in 0..40 {
        for i in 1..=(if n < 20 { 3 } else { 1 }) {
            ws.write(&format!("out/image.p{n:03}.{i:02}.hd.png"), "made before");
        }
    }
    let run = dry(&ws, &["--input", "p.txt", "-o", "out", "-n", "3"]);
    let out = &run.stdout;
    assert_fits(out);
    assert!(!out.contains("image.p0"), "no image is listed: {out}");
    let prompt_lines = out.lines().filter(|l| l.starts_with("  p")).count();
    assert_eq!(prompt_lines, 100, "{out}");
    assert!(
        out.lines().count() <= 100 + 15,
        "{} lines:\n{out}",
        out.lines().count()
    );
    let done = prompt_line(out, "p007");
    assert!(done.contains("3 already there"), "{done}");
    assert!(!done.contains("to make"), "{done}");
    let started = prompt_line(out, "p023");
    assert!(started.contains("2 to make, 1 already there"), "{started}");
    let fresh = prompt_line(out, "p077");
    assert!(fresh.contains("3 to make"), "{fresh}");
    assert!(
        fresh.contains("\"Prompt number 77: a very detailed scene"),
        "{fresh}"
    );
    assert!(fresh.ends_with("…\""), "the text is cut to fit: {fresh}");
    assert!(
        out.contains(
            "Total: 300 image(s) of 100 prompt(s): 220 to make, 80 already there; 220 request(s)."
        ),
        "{out}"
    );
}

#[test]
fn a_prompt_with_nothing_to_make_shows_no_cost() {
    let ws = Workspace::new();
    ws.write("p.txt", "# done\na fox\n# todo\nan owl\n");
    ws.write("out/image.done.01.hd.png", "made before");
    ws.write("out/image.done.02.hd.png", "made before");
    let out = dry(&ws, &["--input", "p.txt", "-o", "out", "-n", "2"]).stdout;
    let done = prompt_line(&out, "done");
    assert!(done.contains("2 already there"), "{done}");
    assert!(!done.contains('$'), "no cost for nothing to make: {done}");
    assert!(!out.contains("$0.00"), "{out}");
    let todo = prompt_line(&out, "todo");
    assert_eq!(amounts(todo).len(), 1, "{todo}");
    assert!(amounts(todo)[0] > 0.4, "{todo}");
}

#[test]
fn long_names_texts_and_model_names_still_fit_100_columns() {
    let ws = Workspace::new();
    let long_name = format!("ünïcödé_{}", "name_".repeat(14));
    ws.write(
        "p.txt",
        format!(
            "# {long_name}\n{}\n# short model=house-model-whose-name-goes-on-and-on-and-on-and-on-and-on-and-on quality=low\nan owl\n# x\nx\n",
            "é".repeat(300)
        ),
    );
    let run = dry(&ws, &["--input", "p.txt", "-o", "out", "-n", "2"]);
    let out = &run.stdout;
    // Every line, the heading (which names the models in full, wrapped) included.
    assert_fits(out);
    let listed: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("  ") && l.ends_with('"'))
        .collect();
    assert_eq!(listed.len(), 3, "the prompts' lines: {out}");
    // Characters are counted, not bytes: the line of é's fills the width.
    assert_eq!(listed[0].chars().count(), WIDTH, "{}", listed[0]);
    assert!(listed[0].ends_with("éé…\""), "{}", listed[0]);
    assert!(out.contains("  ünïcödé_name_"), "{out}");
    let short = prompt_line(out, "short");
    assert!(short.contains("  price unknown  \"an owl\""), "{short}");
    assert!(out.contains("\"éééé"), "{out}");
    // An unknown model has no price: said, and counted.
    assert!(out.contains("price unknown"), "{out}");
    assert!(out.contains("plus 2 image(s) of unknown price"), "{out}");
    // -v keeps the full names, and fits too.
    let verbose = dry(&ws, &["--input", "p.txt", "-o", "out", "-n", "2", "-v"]).stdout;
    assert!(
        verbose.contains(&format!("image.{long_name}.01.hd.png")),
        "{verbose}"
    );
    assert_fits(&verbose);
}

/// Chinese text and emoji take two columns a character: their lines are cut by columns, not
/// characters, and still fit; so does `-v`.
#[test]
fn wide_characters_are_counted_by_the_columns_they_take() {
    let ws = Workspace::new();
    ws.write(
        "p.txt",
        format!(
            "# 港口_黎明
{}
# fox
{}
",
            "港口的黎明，渔船归来，海鸥在天空中飞翔。".repeat(10),
            "🦊 in the snow ".repeat(20)
        ),
    );
    let args = ["--input", "p.txt", "-o", "out", "-n", "2"];
    let out = dry(&ws, &args).stdout;
    assert_fits(&out);
    let harbour = prompt_line(&out, "港口_黎明");
    assert!(harbour.contains("\"港口的黎明，渔船归来"), "{harbour}");
    assert!(harbour.ends_with("…\""), "cut to fit: {harbour}");
    assert!(
        columns(harbour) >= WIDTH - 2,
        "and filling the line: {harbour}"
    );
    let fox = prompt_line(&out, "fox");
    assert!(fox.contains("\"🦊 in the snow 🦊"), "{fox}");
    assert!(columns(fox) >= WIDTH - 2, "{fox}");
    let verbose = dry(&ws, &[&args[..], &["-v"]].concat()).stdout;
    assert_fits(&verbose);
    assert!(verbose.contains("image.港口_黎明.02.hd.png"), "{verbose}");
}

#[test]
fn with_a_style_the_prompt_text_is_shown_not_the_style() {
    let ws = Workspace::new();
    ws.write("p.txt", "# fox\nA red fox in the snow\n");
    let style = "Ukiyo-e woodblock print, flat colours, bold outlines";
    for extra in [&[][..], &["-v"][..]] {
        let run = dry(
            &ws,
            &[
                &["--input", "p.txt", "-o", "out", "--style", style][..],
                extra,
            ]
            .concat(),
        );
        let out = &run.stdout;
        let line = prompt_line(out, "fox");
        assert!(line.contains("\"A red fox in the snow\""), "{line}");
        for l in out.lines().filter(|l| l.contains("fox")) {
            assert!(!l.contains("Ukiyo-e"), "the style is not the preview: {l}");
        }
        // The style is said once, as the style.
        assert_eq!(out.matches(style).count(), 1, "{out}");
        assert!(out.contains(&format!("Style, before every prompt: \"{style}\"")));
    }
}

#[test]
fn the_total_is_the_prompts_amounts_added_up() {
    let ws = Workspace::new();
    ws.write(
        "p.txt",
        "# fox\na fox\n# owl quality=low\nan owl\n# mini model=gpt-image-1.5 size=1536x1024\nx\n\
         # a\nlighthouse\n# b\nrobot chef\n# c\ncity\n",
    );
    let check = |out: &str, total_label: &str| {
        let parts: Vec<f64> = ["fox", "owl", "mini", "a", "b", "c"]
            .iter()
            .flat_map(|name| amounts(prompt_line(out, name)))
            .collect();
        assert_eq!(parts.len(), 6, "{out}");
        let total_line = out
            .lines()
            .find(|l| l.starts_with(total_label))
            .unwrap_or_else(|| panic!("{total_label} in:\n{out}"));
        let total = amounts(total_line)[0];
        let sum: f64 = parts.iter().sum();
        assert_eq!(
            total,
            shown(sum),
            "{parts:?} add up to {sum}, shown as {total_line:?}"
        );
        (parts, total)
    };
    let live = dry(&ws, &["--input", "p.txt", "-o", "out", "-n", "10"]).stdout;
    let (parts, total) = check(&live, "Total: $");
    assert_eq!(parts, [2.11, 0.059, 2.0, 2.11, 2.11, 2.11], "{live}");
    assert_eq!(total, 10.5, "{live}");
    assert!(live.contains("Total: $10.50\n"), "{live}");

    // At batch prices: the same amounts, which add up to the live total; the batch total is
    // half of it.
    let batch = dry(
        &ws,
        &["--input", "p.txt", "-o", "out", "-n", "10", "--batch"],
    )
    .stdout;
    let line = batch
        .lines()
        .find(|l| l.starts_with("Total at batch prices: $"))
        .unwrap_or_else(|| panic!("{batch}"));
    let parts: Vec<f64> = ["fox", "owl", "mini", "a", "b", "c"]
        .iter()
        .flat_map(|name| amounts(prompt_line(&batch, name)))
        .collect();
    assert_eq!(parts, [2.11, 0.059, 2.0, 2.11, 2.11, 2.11], "{batch}");
    assert_eq!(amounts(line), [5.25, 10.5], "{line}");
}

#[test]
fn amounts_are_rounded_one_way_to_a_tenth_of_a_cent_under_a_dollar() {
    let ws = Workspace::new();
    // 11 images at $0.015: $0.165, which an amount rounded to the cent would show as $0.16
    // or $0.17.
    let args = [
        "a fox",
        "-o",
        "out",
        "-m",
        "gpt-image-1-mini",
        "--size",
        "1536x1024",
        "--quality",
        "medium",
        "-n",
        "11",
    ];
    let out = dry(&ws, &args).stdout;
    let line = prompt_line(&out, "image");
    assert!(line.contains("  $0.165  "), "{line}");
    assert!(out.contains("Total: $0.165\n"), "{out}");

    let doc: Value = serde_json::from_str(
        &genimg(&ws, None)
            .args(args)
            .args(["--dry-run", "--json"])
            .run()
            .stdout,
    )
    .expect("a JSON document");
    assert_eq!(doc["totals"]["estimate_usd"].to_string(), "0.165");

    // 71 of them: $1.065, a half cent that float arithmetic puts just under (1.0649999...):
    // it rounds up, as every half does.
    let args = [&args[..10], &["71"]].concat();
    let out = dry(&ws, &args).stdout;
    assert!(prompt_line(&out, "image").contains("  $1.07  "), "{out}");
    assert!(out.contains("Total: $1.07\n"), "{out}");
}

#[test]
fn verbose_lists_every_image_under_its_prompt() {
    let ws = Workspace::new();
    ws.write("p.txt", "# fox\na fox\n# owl\nan owl\n");
    ws.write("out/image.fox.02.hd.png", "made before");
    let args = ["--input", "p.txt", "-o", "out", "-n", "3"];
    let plain = dry(&ws, &args).stdout;
    assert!(!plain.contains("image.fox.01.hd.png"), "{plain}");
    let out = dry(&ws, &[&args[..], &["-v"]].concat()).stdout;
    let lines: Vec<&str> = out.lines().collect();
    let at = |needle: &str| {
        lines
            .iter()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("{needle} in:\n{out}"))
    };
    let fox = at("  fox ");
    let owl = at("  owl ");
    for (i, file) in [
        "image.fox.01.hd.png",
        "image.fox.02.hd.png",
        "image.fox.03.hd.png",
    ]
    .iter()
    .enumerate()
    {
        assert_eq!(at(file), fox + 1 + i, "{file} under its prompt:\n{out}");
    }
    assert!(
        lines[at("image.fox.02.hd.png")].contains("already there, skipped"),
        "{out}"
    );
    let first = lines[at("image.fox.01.hd.png")];
    for part in [
        "gpt-image-2 1024x1024 high /images/generations",
        "\"a fox\"",
    ] {
        assert!(first.contains(part), "{part} in {first}");
    }
    for i in 1..=3 {
        assert_eq!(at(&format!("image.owl.0{i}.hd.png")), owl + i, "{out}");
    }
}

/// Every number of dollars in `doc`, by where it is.
fn dollar_numbers(doc: &Value, at: &str, found: &mut Vec<(String, f64)>) {
    match doc {
        Value::Object(map) => {
            for (key, value) in map {
                let at = format!("{at}.{key}");
                if key.ends_with("_usd")
                    && let Some(n) = value.as_f64()
                {
                    found.push((at.clone(), n));
                }
                dollar_numbers(value, &at, found);
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                dollar_numbers(item, &format!("{at}[{i}]"), found);
            }
        }
        _ => {}
    }
}

/// Each number is as the text rounds it, and written as that decimal (`1.06`, not
/// `1.0600000000000001`).
fn assert_rounded(stdout: &str, expected: usize) {
    let doc: Value = serde_json::from_str(stdout).expect("a JSON document");
    let mut found = Vec::new();
    dollar_numbers(&doc, "", &mut found);
    assert!(found.len() >= expected, "{found:?}");
    for (at, n) in found {
        assert_eq!(n, shown(n), "{at} is {n}");
    }
    for (at, _) in stdout.match_indices("_usd\": ") {
        let number: String = stdout[at + 7..]
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .collect();
        let decimals = number.find('.').map_or(0, |dot| number.len() - dot - 1);
        assert!(decimals <= 3, "{number} in:\n{stdout}");
    }
}

#[test]
fn json_amounts_are_rounded_as_the_text_shows_them() {
    let ws = Workspace::new();
    ws.write(
        "p.txt",
        "# fox\na fox\n# owl quality=low\nan owl\n# tall size=1024x1536 quality=medium\na tower\n",
    );
    let run = genimg(&ws, None)
        .args([
            "--input",
            "p.txt",
            "-o",
            "out",
            "-n",
            "7",
            "--dry-run",
            "--json",
        ])
        .run();
    assert_code(&run, 0);
    assert_rounded(&run.stdout, 22);
    let doc: Value = serde_json::from_str(&run.stdout).unwrap();
    let text = dry(&ws, &["--input", "p.txt", "-o", "out", "-n", "7"]).stdout;
    let total_line = text.lines().find(|l| l.starts_with("Total: $")).unwrap();
    assert_eq!(
        doc["totals"]["estimate_usd"].as_f64(),
        Some(amounts(total_line)[0]),
        "the JSON's total is the text's: {total_line}"
    );
    // Each prompt's images add up to the amount its line shows, to the tenth of a cent.
    let mills = |usd: f64| (usd * 1000.0).round() as i64;
    for name in ["fox", "owl", "tall"] {
        let shown = amounts(prompt_line(&text, name))[0];
        let images: i64 = doc["images"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["prompt"] == name)
            .map(|i| mills(i["estimate_usd"].as_f64().unwrap()))
            .sum();
        assert_eq!(images, mills(shown), "{name}: {doc}");
    }

    // What a real run cost, too: the fake bills $0.21097 an image.
    let server = FakeServer::start();
    let run = genimg(&ws, Some(&server))
        .args(["a fox", "-o", "live", "-n", "3", "--json"])
        .run();
    assert_code(&run, 0);
    assert_rounded(&run.stdout, 4);
    let doc: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(doc["totals"]["cost_usd"].as_f64(), Some(0.633), "{doc}");
    assert_eq!(doc["images"][0]["cost_usd"].as_f64(), Some(0.211), "{doc}");
}

#[test]
fn only_a_later_prompt_of_the_file_is_listed_with_its_cost() {
    // --only keeps each prompt's number in the file: the third prompt alone is number 3.
    let ws = Workspace::new();
    ws.write("p.txt", "# a\nx\n# b\ny\n# c\na fox\n");
    let out = dry(&ws, &["--input", "p.txt", "-o", "out", "--only", "c"]).stdout;
    let line = prompt_line(&out, "c");
    assert!(line.contains("1 to make"), "{line}");
    assert_eq!(amounts(line).len(), 1, "{line}");
    assert!(!out.contains("\n  a "), "{out}");
}
