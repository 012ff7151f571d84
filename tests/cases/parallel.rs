//! The concurrency limit holds exactly.

use std::time::Duration;

use crate::support::*;

fn peak(args: &[&str], images: usize) -> usize {
    let server = FakeServer::with(Options {
        latency: Duration::from_millis(300),
        ..Options::default()
    });
    let ws = Workspace::new();
    let run = genimg(&ws, Some(&server))
        .args(["a cat", "--dst-dir", "out", "--count", &images.to_string()])
        .args(args)
        .run();
    assert_code(&run, 0);
    assert_eq!(ws.files("out").len(), images);
    server.peak_in_flight()
}

#[test]
fn four_at_a_time_by_default() {
    assert_eq!(peak(&[], 9), 4);
}

#[test]
fn one_means_one_at_a_time() {
    assert_eq!(peak(&["-j", "1"], 3), 1);
    assert_eq!(peak(&["--num_threads", "1"], 3), 1);
}

#[test]
fn the_limit_is_a_ceiling_with_any_spelling() {
    assert_eq!(peak(&["--jobs", "3"], 7), 3);
    assert_eq!(peak(&["--num-threads", "5"], 11), 5);
}

#[test]
fn fewer_images_than_the_limit() {
    assert_eq!(peak(&["-j", "16"], 5), 5);
}
