//! `ngs360-omics`: wires the command line and Lambda mode to the library.

use std::process::ExitCode;

use ngs360_omics::cli::{self, Command};
use ngs360_omics::logging::{self, Output};
use tracing::level_filters::LevelFilter;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let lambda = std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some();
    let command = match cli::parse(&args, lambda) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}\n\n{}", cli::USAGE);
            return ExitCode::from(2);
        }
    };
    let verbose = std::env::var("VERBOSE_LOGGING").is_ok_and(|v| v.trim().eq_ignore_ascii_case("true"));
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match command {
        Command::Help => {
            print!("{}", cli::USAGE);
            ExitCode::SUCCESS
        }
        Command::Version => {
            println!(
                "ngs360-omics {} (guest interface {})",
                env!("CARGO_PKG_VERSION"),
                ngs360_omics::guest::WIT_VERSION
            );
            ExitCode::SUCCESS
        }
        Command::Transform { event, context, guest } => {
            logging::init(verbose, Output::Cli(LevelFilter::WARN));
            runtime.block_on(cli::transform(&event, context.as_deref(), guest.as_deref()))
        }
        Command::Check { component, fixtures } => {
            logging::init(verbose, Output::Cli(LevelFilter::WARN));
            runtime.block_on(cli::check(&component, &fixtures))
        }
        Command::Process { event } => {
            logging::init(verbose, Output::Cli(LevelFilter::INFO));
            runtime.block_on(ngs360_omics::lambda::process(&event))
        }
        Command::Lambda => {
            logging::init(verbose, Output::Lambda);
            runtime.block_on(ngs360_omics::lambda::run())
        }
        Command::Compile { component, output, target } => {
            logging::init(verbose, Output::Cli(LevelFilter::WARN));
            cli::compile(&component, &output, target.as_deref())
        }
    }
}
