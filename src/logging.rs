//! Diagnostic logging with `tracing`, on stderr. `-v` shows genimg's detail, `-vv` also the
//! HTTP stack's; `GENIMG_LOG` takes a full filter (e.g. `GENIMG_LOG=genimg=trace`).

use tracing_subscriber::EnvFilter;

use crate::config::Verbosity;

pub fn init(verbosity: Verbosity) {
    let default = match verbosity {
        Verbosity::Quiet => "error",
        Verbosity::Normal => "warn",
        Verbosity::Verbose => "warn,genimg=info",
        Verbosity::Debug => "info,genimg=debug",
    };
    let filter = EnvFilter::try_from_env("GENIMG_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::env::var_os("NO_COLOR").is_none())
        .try_init();
}
