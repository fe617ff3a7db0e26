//! `ngs360-omics`: wires the command line and Lambda mode to the library.

use std::process::ExitCode;

use clap::Parser;
use ngs360_omics::cli::{self, Cli, Command};
use ngs360_omics::logging::{self, Output};
use tracing::level_filters::LevelFilter;

fn main() -> ExitCode {
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
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    logging::init(output);
    match command {
        None => runtime.block_on(ngs360_omics::lambda::run()),
        Some(command) => runtime.block_on(cli::run(command)),
    }
}
