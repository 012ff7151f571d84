use std::io::{IsTerminal, Write as _};
use std::process::ExitCode;
use std::sync::Arc;

use genimg::config::Verbosity;
use genimg::engine::live::Stop;
use genimg::progress::{PlainReporter, Reporter, TerminalReporter};
use genimg::{Env, Invocation, Status, cli};

fn main() -> ExitCode {
    let cli = cli::parse();
    // Logging starts before the configuration is read, so its errors can be logged too.
    genimg::logging::init(Verbosity::from_flags(cli.quiet, cli.verbose));
    let json = cli.json;

    let invocation = match Invocation::from_cli(cli, &Env::from_process()) {
        Ok(invocation) => invocation,
        Err(e) => return fail(&e, json, Status::Usage),
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => return fail(&e, json, Status::Usage),
    };
    // Bars on a terminal; plain lines for a log file, a pipe, --quiet or a subcommand.
    let verbosity = match &invocation {
        Invocation::Run(config) => config.verbosity,
        Invocation::Batch(batch) => batch.verbosity,
        _ => Verbosity::Quiet,
    };
    let reporter: Arc<dyn Reporter> =
        if std::io::stderr().is_terminal() && verbosity > Verbosity::Quiet {
            let bars = TerminalReporter::stderr(verbosity);
            genimg::logging::print_above(bars.bars());
            Arc::new(bars)
        } else {
            Arc::new(PlainReporter::stderr(verbosity))
        };
    let outcome = runtime.block_on(async {
        let stop = Stop::new();
        // Only a run that sends requests has anything to finish on a signal: elsewhere a
        // signal ends genimg at once, as it does any program.
        if matches!(&invocation, Invocation::Run(config) if !config.dry_run)
            || matches!(&invocation, Invocation::Batch(_))
        {
            stop.watch_signals(reporter.clone());
        }
        genimg::run(&invocation, reporter, &stop).await
    });
    match outcome {
        Ok(outcome) => outcome.status().into(),
        Err(e) => fail(&e, json, e.status()),
    }
}

/// Reports an error that stopped genimg: before any request (exit code 2), or a call to
/// the Batch API the service refused (exit code 3).
fn fail(error: &dyn std::fmt::Display, json: bool, status: Status) -> ExitCode {
    let message = format!("{error:#}");
    let _ = writeln!(std::io::stderr(), "genimg: error: {message}");
    if json {
        genimg::print_json(&genimg::report::json::error_document(&message));
    }
    status.into()
}
