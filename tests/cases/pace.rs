//! How fast requests go: the -j ceiling, AIMD after 429s, rate-limit headers and --ipm.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::*;

/// Image requests in flight at `t`, by the fake's own record.
fn in_flight_at(requests: &[Recorded], t: Instant) -> usize {
    requests
        .iter()
        .filter(|r| r.arrived <= t && r.answered > t)
        .count()
}

#[test]
fn concurrency_drops_after_429s_and_recovers() {
    // Eight slots. The first eight requests are rate limited at once; every other answer
    // takes 150 ms.
    let server = FakeServer::with(Options {
        script: Some(Arc::new(|i: &Incoming| {
            if i.nth < 8 {
                Action::error(429, "rate_limit_exceeded", "Rate limit reached.")
                    .with_header("retry-after-ms", "100")
            } else {
                Action::Delay(Duration::from_millis(150))
            }
        })),
        ..Options::default()
    });
    let ws = Workspace::new();
    let run = genimg(&ws, Some(&server))
        .args(["a fox", "-o", "out", "-n", "40", "-j", "8"])
        .run();
    assert_code(&run, 0);
    assert_eq!(ws.files("out").len(), 40);
    let requests = server.image_requests();
    assert!(requests.len() <= 48, "{} requests", requests.len());

    let limited: Vec<&Recorded> = requests.iter().filter(|r| r.status == 429).collect();
    assert_eq!(limited.len(), 8);
    let last_429 = limited.iter().map(|r| r.answered).max().unwrap();
    let later: Vec<&Recorded> = requests.iter().filter(|r| r.arrived > last_429).collect();
    // Right after the 429s, half the window: at most four in flight.
    let first_wave = &later[..8];
    for r in first_wave {
        let n = in_flight_at(&requests, r.arrived);
        assert!(
            n <= 4,
            "{n} in flight {:?} after the 429s",
            r.arrived - last_429
        );
    }
    // Then successes widen it again.
    let peak_later = later
        .iter()
        .map(|r| in_flight_at(&requests, r.arrived))
        .max()
        .unwrap();
    assert!(peak_later > 4, "the window never grew back: {peak_later}");
    assert!(
        run.stderr
            .contains("rate limited: 4 request(s) in flight at most, down from 8"),
        "{}",
        run.stderr
    );
}

#[test]
fn ipm_spaces_the_requests() {
    let server = FakeServer::start();
    let ws = Workspace::new();
    let run = genimg(&ws, Some(&server))
        .args(["a fox", "-o", "out", "-n", "8", "-j", "8", "--ipm", "600"])
        .run();
    assert_code(&run, 0);
    let arrivals: Vec<Instant> = server.image_requests().iter().map(|r| r.arrived).collect();
    assert_eq!(arrivals.len(), 8);
    // 600 a minute is one every 100 ms; the first may have waited for its connection.
    let slack = Duration::from_millis(20);
    for (k, t) in arrivals.iter().enumerate() {
        let earliest = Duration::from_millis(100) * k as u32;
        assert!(
            *t - arrivals[0] + slack >= earliest,
            "request {k} came {:?} after the first",
            *t - arrivals[0]
        );
    }
}

#[test]
fn concurrency_never_exceeds_j_even_while_recovering() {
    let server = FakeServer::with(Options {
        script: Some(Arc::new(|i: &Incoming| {
            if i.nth % 7 == 3 {
                Action::error(429, "rate_limit_exceeded", "Rate limit reached.")
                    .with_header("retry-after-ms", "20")
            } else {
                Action::Delay(Duration::from_millis(30))
            }
        })),
        ..Options::default()
    });
    let ws = Workspace::new();
    let run = genimg(&ws, Some(&server))
        .args(["a fox", "-o", "out", "-n", "30", "-j", "3"])
        .run();
    assert_code(&run, 0);
    assert!(server.peak_in_flight() <= 3, "{}", server.peak_in_flight());
}

#[test]
fn a_429_without_retry_after_waits_for_the_rate_limit_window() {
    // No retry-after: the x-ratelimit headers say the window is used up, one request comes
    // back a second from now (60 a minute), and the whole window in 700 ms.
    let server = FakeServer::with(Options {
        script: Some(Arc::new(|i: &Incoming| {
            if i.nth == 0 {
                Action::error(429, "rate_limit_exceeded", "Rate limit reached.")
                    .with_header("x-ratelimit-limit-requests", "60")
                    .with_header("x-ratelimit-remaining-requests", "0")
                    .with_header("x-ratelimit-reset-requests", "700ms")
            } else {
                Action::Answer
            }
        })),
        ..Options::default()
    });
    let ws = Workspace::new();
    let run = genimg(&ws, Some(&server))
        .args(["a fox", "-o", "out"])
        .run();
    assert_code(&run, 0);
    let r = server.image_requests();
    assert_eq!(r.len(), 2);
    let gap = r[1].arrived - r[0].answered;
    assert!(gap >= Duration::from_millis(700), "retried after {gap:?}");
    assert!(
        run.stderr.contains("retrying image_01_hd.png in 0.7 s"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_limit_that_counts_rejections_is_learned_and_fails_no_image() {
    // 120 a minute, one at a time, and every refused request counts against the limit. Six
    // images at -j 6 with a single retry each: hammering, or retrying all at once after the
    // pause, would fail most of them.
    let server = FakeServer::with(Options {
        rate_limit: Some(RateLimit {
            per_minute: 120,
            burst: 1,
        }),
        ..Options::default()
    });
    let ws = Workspace::new();
    let run = genimg(&ws, Some(&server))
        .args([
            "a fox",
            "-o",
            "out",
            "-n",
            "6",
            "-j",
            "6",
            "--max-retries",
            "1",
        ])
        .run();
    assert_code(&run, 0);
    assert_eq!(ws.files("out").len(), 6);
    assert_summary(&run, &[("made", "6")]);
    assert!(
        run.stderr.contains(
            "the service allows 120 request(s) a minute: new requests go at 114 a minute"
        ),
        "{}",
        run.stderr
    );
    let refused = server.rate_limited();
    assert!(refused <= 2, "{refused} requests refused:\n{}", run.stderr);
    // Once learned, the successes are paced: none closer than the limit allows.
    let ok: Vec<Instant> = server
        .image_requests()
        .iter()
        .filter(|r| r.status == 200)
        .map(|r| r.arrived)
        .collect();
    for pair in ok.windows(2) {
        assert!(
            pair[1] - pair[0] >= Duration::from_millis(480),
            "{:?}",
            pair[1] - pair[0]
        );
    }
}

#[test]
fn requests_that_waited_on_a_pause_leave_it_one_at_a_time() {
    // Six requests in flight are all told to wait 300 ms, with nothing to say what the limit
    // is: their retries leave the pause spaced, not all together.
    let server = FakeServer::with(Options {
        script: Some(Arc::new(|i: &Incoming| {
            if i.nth < 6 {
                Action::error(429, "rate_limit_exceeded", "Rate limit reached.")
                    .with_header("retry-after-ms", "300")
            } else {
                Action::Answer
            }
        })),
        latency: Duration::from_millis(100),
        ..Options::default()
    });
    let ws = Workspace::new();
    let run = genimg(&ws, Some(&server))
        .args(["a fox", "-o", "out", "-n", "6", "-j", "6"])
        .run();
    assert_code(&run, 0);
    let requests = server.image_requests();
    assert_eq!(requests.len(), 12, "{}", run.stderr);
    let mut sorted: Vec<Instant> = requests
        .iter()
        .filter(|r| r.status == 200)
        .map(|r| r.arrived)
        .collect();
    sorted.sort();
    assert_eq!(sorted.len(), 6);
    for pair in sorted.windows(2) {
        assert!(
            pair[1] - pair[0] >= Duration::from_millis(40),
            "retries {:?} apart",
            pair[1] - pair[0]
        );
    }
}
