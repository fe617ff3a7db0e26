//! Log output: `tracing` to stdout in Lambda (JSON when Lambda's log format asks for it),
//! to stderr on the command line. INFO by default, DEBUG with `VERBOSE_LOGGING=true`;
//! dependencies (AWS SDK, HTTP, wasmtime) only at WARN, so that nothing they print about
//! requests can carry a payload or the key.

use tracing::level_filters::LevelFilter;
use tracing_subscriber::EnvFilter;

/// Where logs go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// Lambda: stdout, JSON when `AWS_LAMBDA_LOG_FORMAT=JSON`.
    Lambda,
    /// The command line: stderr, at `level` unless verbose.
    Cli(LevelFilter),
}

/// Installs the global subscriber.
pub fn init(verbose: bool, output: Output) {
    let level = match (verbose, output) {
        (true, _) => LevelFilter::DEBUG,
        (false, Output::Lambda) => LevelFilter::INFO,
        (false, Output::Cli(level)) => level,
    };
    let filter = EnvFilter::builder()
        .with_default_directive(LevelFilter::WARN.into())
        .parse_lossy(format!("ngs360_omics={level}"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false);
    match output {
        Output::Lambda => {
            let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
            // Lambda stamps every line itself.
            let builder = builder.without_time().with_ansi(false);
            if json {
                builder.json().flatten_event(true).with_current_span(true).with_span_list(false).init();
            } else {
                builder.init();
            }
        }
        Output::Cli(_) => builder.with_writer(std::io::stderr).with_ansi(false).init(),
    }
}
