//! `ngs360-omics`: wires the command line and Lambda mode to the library.

// The Lambda loop's future nests the cold start's and the handler's deeply.
#![recursion_limit = "256"]

use std::process::ExitCode;

use clap::Parser;
use ngs360_omics::cli::{self, Cli, Command};
use ngs360_omics::logging::{self, Output};
use tracing::level_filters::LevelFilter;

fn main() -> ExitCode {
    let _ = ngs360_omics::lambda::MAIN_STARTED.set((std::time::Instant::now(), std::time::SystemTime::now()));
    let lambda = std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some();
    // Lambda starts the function without arguments: skip the parser's work then.
    let command = if lambda && std::env::args_os().len() == 1 { None } else { Cli::parse().command };
    let output = match &command {
        None if lambda => Output::Lambda,
        None => {
            eprintln!("error: no command given\n\nRun `ngs360-omics --help` for the commands.");
            return ExitCode::from(2);
        }
        Some(Command::Process { .. }) => Output::Cli(LevelFilter::INFO),
        Some(_) => Output::Cli(LevelFilter::WARN),
    };
    match command {
        Some(command) => with_runtime(output, None, cli::run(command)),
        None => {
            // The configuration is read, and the sandbox made on its own thread, from here
            // on, beside the async runtime and logging (lambda::Early).
            let early = ngs360_omics::lambda::Early::start();
            // Two workers: one event at a time, its calls concurrent (a fixed count spares
            // the cold start reading the cgroup's CPU quota).
            with_runtime(output, Some(2), ngs360_omics::lambda::run(early))
        }
    }
}

/// Runs `main` on a multi-threaded tokio runtime (`workers` threads, else one per CPU),
/// with logging to `output`.
fn with_runtime(output: Output, workers: Option<usize>, main: impl std::future::Future<Output = ExitCode>) -> ExitCode {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = workers {
        builder.worker_threads(n);
    }
    let runtime = match builder.enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    logging::init(output);
    runtime.block_on(main)
}
