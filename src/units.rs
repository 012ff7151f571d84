//! Small helpers every part of genimg uses: money, sizes, hashes, and shortening text.

use std::fmt::Write as _;

use sha2::{Digest, Sha256};

/// An amount of US dollars rounded as genimg shows it everywhere: to a tenth of a cent under
/// a dollar, to the cent from a dollar up. Halves round away from zero. The result is the
/// `f64` nearest that decimal, so JSON writes it as `1.06`, not `1.0600000000000001`.
pub fn round_usd(amount: f64) -> f64 {
    // To a millionth first: sums of prices carry float noise (11 × $0.015 is
    // 0.16499999999999998), and noise must not decide which way a half goes.
    let micros = (amount * 1e6).round();
    let mills = (micros / 1e3).round();
    if mills.abs() < 1000.0 {
        mills / 1e3
    } else {
        (micros / 1e4).round() / 100.0
    }
}

/// `amount` (rounded by [`round_usd`]) split into `n` parts that are rounded the same way
/// and add up to it exactly: a tenth of a cent (or from a dollar a part, a cent) at a time,
/// the first parts taking what does not divide evenly. `$0.632` in three is `$0.211`,
/// `$0.211`, `$0.210`.
pub fn split_usd(amount: f64, n: usize) -> Vec<f64> {
    if n == 0 {
        return Vec::new();
    }
    let mills = (round_usd(amount) * 1e3).round() as i64;
    // Parts of a dollar or more are in cents, as the amount then is.
    let unit: i64 = if mills / n as i64 >= 1000 { 10 } else { 1 };
    let units = mills / unit;
    let (base, rest) = (units / n as i64, units % n as i64);
    (0..n as i64)
        .map(|i| ((base + i64::from(i < rest)) * unit) as f64 / 1e3)
        .collect()
}

/// Dollars as genimg shows them, rounded by [`round_usd`]: `$1.06`, `$0.165`, `$0.034`. Under
/// a dollar a third decimal that is zero is left out (`$0.42`, not `$0.420`).
pub fn usd(amount: f64) -> String {
    let amount = round_usd(amount);
    if amount == 0.0 {
        "$0.00".to_owned()
    } else if amount.abs() < 1.0 {
        let text = format!("{amount:.3}");
        format!("${}", text.strip_suffix('0').unwrap_or(&text))
    } else {
        format!("${amount:.2}")
    }
}

/// Sizes as people read them: binary megabytes, written `MB` as OpenAI does.
pub fn human_bytes(n: u64) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    if n >= 1024 * 1024 {
        let mb = n as f64 / MIB;
        if mb.fract() == 0.0 {
            format!("{mb:.0} MB")
        } else {
            format!("{mb:.1} MB")
        }
    } else if n >= 1024 {
        format!("{:.0} KB", n as f64 / 1024.0)
    } else {
        format!("{n} bytes")
    }
}

/// The sha256 of `bytes`, in lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut hex = String::with_capacity(64);
    for b in digest.iter() {
        let _ = write!(hex, "{b:02x}");
    }
    hex
}

/// How many columns of a terminal `text` takes: a CJK character or an emoji takes two, a
/// combining mark none.
pub fn columns(text: &str) -> usize {
    unicode_width::UnicodeWidthStr::width(text)
}

/// `text` within `max` columns: as it is, or cut with an ellipsis.
pub fn fit(text: &str, max: usize) -> String {
    if columns(text) <= max {
        return text.to_owned();
    }
    let room = max.saturating_sub(1);
    let mut used = 0;
    let mut cut = String::new();
    for c in text.chars() {
        let width = unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
        if used + width > room {
            break;
        }
        used += width;
        cut.push(c);
    }
    format!("{}…", cut.trim_end())
}

/// `text` padded with spaces to `width` columns (as `{:width$}` does for characters).
pub fn pad(text: &str, width: usize) -> String {
    format!("{text}{}", " ".repeat(width.saturating_sub(columns(text))))
}

/// A URL as genimg shows it (in a dry run, in logs): without the user name and password a
/// base URL may carry, which are secrets.
pub fn shown_url(url: &url::Url) -> String {
    let mut url = url.clone();
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.to_string()
}

/// A URL as the user wrote it (it may not parse), for an error: any user name and password
/// before its host replaced by `***`.
pub fn shown_url_text(text: &str) -> String {
    let Some(scheme_end) = text.find("://").map(|at| at + 3) else {
        return text.to_owned();
    };
    let rest = &text[scheme_end..];
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    match authority.rfind('@') {
        Some(at) => format!("{}***{}", &text[..scheme_end], &rest[at..]),
        None => text.to_owned(),
    }
}

/// The start of a prompt on one line, for listings: within `max` columns.
pub fn excerpt(text: &str, max: usize) -> String {
    fit(&text.split_whitespace().collect::<Vec<_>>().join(" "), max)
}

/// `text` with each line wider than `width` columns wrapped between words, its next lines
/// indented two more than it. A word wider than the line (a long path) stays whole, on a line
/// of its own.
pub fn wrap_to(text: &str, width: usize) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let (body, end) = match line.strip_suffix('\n') {
            Some(body) => (body, "\n"),
            None => (line, ""),
        };
        if columns(body) <= width {
            out.push_str(line);
            continue;
        }
        let indent = &body[..body.len() - body.trim_start().len()];
        let more = format!("{indent}  ");
        // Between words only: a path or a model name is never cut at its hyphens.
        let options = textwrap::Options::new(width)
            .initial_indent(indent)
            .subsequent_indent(&more)
            .break_words(false)
            .word_splitter(textwrap::WordSplitter::NoHyphenation);
        out.push_str(&textwrap::fill(body.trim_start(), options));
        out.push_str(end);
    }
    out
}

/// Text on one line, cut after `max` characters with an ellipsis: for messages a server sent.
pub fn shorten(s: &str, max: usize) -> String {
    let flat: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > max {
        format!("{}…", flat.chars().take(max).collect::<String>())
    } else {
        flat
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_are_one_line_and_short() {
        assert_eq!(excerpt("a  cat\n\non a mat", 40), "a cat on a mat");
        assert_eq!(excerpt("abcdefghij", 5), "abcd…");
        assert_eq!(excerpt("ééééééé", 3), "éé…");
        // Wide characters take two columns each.
        assert_eq!(excerpt("港口的黎明时分", 7), "港口的…");
        assert_eq!(columns(&excerpt("港口的黎明时分", 6)), 5);
        assert_eq!(excerpt("🦊🦊🦊🦊", 5), "🦊🦊…");
        assert_eq!(pad("港口", 6), "港口  ");
        assert_eq!(fit("abc", 3), "abc");
    }

    #[test]
    fn shown_urls_carry_no_credentials() {
        let url = url::Url::parse("https://user:sk-secret@proxy.example/v1/").unwrap();
        assert_eq!(shown_url(&url), "https://proxy.example/v1/");
        assert_eq!(
            shown_url_text("https://user:sk-secret@proxy.example/v1?k=1"),
            "https://***@proxy.example/v1?k=1"
        );
        assert_eq!(shown_url_text("https://h/a@b"), "https://h/a@b");
        assert_eq!(shown_url_text("not a url"), "not a url");
    }

    #[test]
    fn wrapped_lines_fit_and_keep_their_indent() {
        let text = "short\n  one two three four five six seven\nlast";
        assert_eq!(
            wrap_to(text, 16),
            "short\n  one two three\n    four five\n    six seven\nlast"
        );
        // A path wider than the line stays whole.
        assert_eq!(
            wrap_to("into /a/very/long/path/indeed now\n", 10),
            "into\n  /a/very/long/path/indeed\n  now\n"
        );
        assert_eq!(wrap_to("港口的黎明 时分\n", 8), "港口的黎明\n  时分\n");
        // Nor cut at its hyphens.
        assert_eq!(
            wrap_to("into /tmp/out-with-many-hyphens now\n", 20),
            "into\n  /tmp/out-with-many-hyphens\n  now\n"
        );
    }

    #[test]
    fn amounts_round_to_the_cent_or_under_a_dollar_to_a_tenth_of_one() {
        for (amount, shown) in [
            (0.165, "$0.165"),
            (11.0 * 0.015, "$0.165"),
            (1.0611300000000001, "$1.06"),
            (0.0336, "$0.034"),
            (0.0335, "$0.034"),
            (0.0334, "$0.033"),
            (0.42194, "$0.422"),
            (0.42, "$0.42"),
            (0.5, "$0.50"),
            (0.0059, "$0.006"),
            (0.0004, "$0.00"),
            (0.0, "$0.00"),
            (0.9994, "$0.999"),
            (0.9996, "$1.00"),
            (1.005, "$1.01"),
            (2.11, "$2.11"),
            (4.169, "$4.17"),
            (1234.5678, "$1234.57"),
        ] {
            assert_eq!(usd(amount), shown, "{amount}");
        }
    }

    #[test]
    fn split_amounts_add_up_and_are_rounded_the_same_way() {
        assert_eq!(split_usd(0.632, 3), [0.211, 0.211, 0.21]);
        assert_eq!(split_usd(0.633, 3), [0.211, 0.211, 0.211]);
        assert_eq!(split_usd(4.64, 2), [2.32, 2.32]);
        assert_eq!(split_usd(2.11, 2), [1.06, 1.05]);
        assert!(split_usd(1.0, 0).is_empty());
        for (amount, n) in [(3.79, 18), (0.001, 4), (12.35, 7), (0.999, 2)] {
            let parts = split_usd(amount, n);
            let mills: i64 = parts.iter().map(|p| (p * 1e3).round() as i64).sum();
            assert_eq!(
                mills,
                (amount * 1e3).round() as i64,
                "{amount} in {n}: {parts:?}"
            );
            for part in parts {
                assert_eq!(round_usd(part), part, "{amount} in {n}");
            }
        }
    }

    #[test]
    fn rounded_amounts_are_the_nearest_floats_of_their_decimals() {
        for (amount, rounded) in [
            (1.0611300000000001, "1.06"),
            (0.16499999999999998, "0.165"),
            (0.0336, "0.034"),
            (3.0 * 0.1, "0.3"),
            (0.42194 * 3.0, "1.27"),
            (0.0, "0"),
        ] {
            let json = serde_json::to_string(&round_usd(amount)).unwrap();
            assert_eq!(json.trim_end_matches(".0"), rounded, "{amount}");
        }
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human_bytes(50 * 1024 * 1024), "50 MB");
        assert_eq!(human_bytes(52_428_801), "50.0 MB");
        assert_eq!(human_bytes(2048), "2 KB");
        assert_eq!(human_bytes(12), "12 bytes");
    }

    #[test]
    fn sha256_of_known_input() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
