//! Diagnostic logging with `tracing`, on stderr. `-v` shows genimg's detail, `-vv` also the
//! HTTP stack's; `GENIMG_LOG` takes a full filter (e.g. `GENIMG_LOG=genimg=trace`).

use std::io::{self, IsTerminal, Write};
use std::sync::OnceLock;

use indicatif::MultiProgress;
use tracing_subscriber::EnvFilter;

use crate::config::Verbosity;

/// The progress bars on the terminal, once there are: log lines go above them.
static BARS: OnceLock<MultiProgress> = OnceLock::new();

/// Prints log lines above `bars` from now on, instead of through them.
pub fn print_above(bars: &MultiProgress) {
    let _ = BARS.set(bars.clone());
}

/// stderr, made to wait while the bars are cleared when there are bars.
struct Stderr;

impl Write for Stderr {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match BARS.get() {
            Some(bars) => bars.suspend(|| io::stderr().write(buf)),
            None => io::stderr().write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

pub fn init(verbosity: Verbosity) {
    let filter = EnvFilter::try_from_env("GENIMG_LOG")
        .unwrap_or_else(|_| EnvFilter::new(default_filter(verbosity)));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| Stderr)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
        .try_init();
}

/// The filter for a verbosity when `GENIMG_LOG` is not set: genimg's own detail first, the
/// HTTP stack's only from `-vv`.
fn default_filter(verbosity: Verbosity) -> &'static str {
    match verbosity {
        Verbosity::Quiet => "error",
        Verbosity::Normal => "warn",
        Verbosity::Verbose => "warn,genimg=info",
        Verbosity::Debug => "info,genimg=debug",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_verbosity_has_a_valid_filter() {
        for v in [
            Verbosity::Quiet,
            Verbosity::Normal,
            Verbosity::Verbose,
            Verbosity::Debug,
        ] {
            assert!(EnvFilter::try_new(default_filter(v)).is_ok(), "{v:?}");
        }
        assert!(default_filter(Verbosity::Verbose).contains("genimg=info"));
        assert_eq!(default_filter(Verbosity::Quiet), "error");
    }
}
