//! Log output: `tracing` to stdout in Lambda (JSON when Lambda's log format asks for it),
//! to stderr on the command line. The level comes from Lambda's advanced logging controls
//! (`AWS_LAMBDA_LOG_LEVEL`) when they set one, else `VERBOSE_LOGGING=true` gives DEBUG, else
//! INFO (WARN for the offline commands). Dependencies (AWS SDK, HTTP, wasmtime) log only at
//! WARN, so that nothing they print about requests can carry a payload or the key.

use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Where logs go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// Lambda: stdout, JSON when `AWS_LAMBDA_LOG_FORMAT=JSON`.
    Lambda,
    /// The command line: stderr, at this level unless the environment says otherwise.
    Cli(LevelFilter),
}

/// The level for `output`, from `VERBOSE_LOGGING` and `AWS_LAMBDA_LOG_LEVEL`.
///
/// Lambda filters JSON log lines below `AWS_LAMBDA_LOG_LEVEL` itself, so when it is set it
/// decides (FATAL, which `tracing` does not have, counts as ERROR); an unknown value is
/// ignored. `VERBOSE_LOGGING=true` is the Python function's switch for DEBUG.
pub fn level(verbose: Option<&str>, lambda_level: Option<&str>, output: Output) -> LevelFilter {
    let from_lambda = lambda_level.and_then(|l| match l.trim().to_ascii_uppercase().as_str() {
        "TRACE" => Some(LevelFilter::TRACE),
        "DEBUG" => Some(LevelFilter::DEBUG),
        "INFO" => Some(LevelFilter::INFO),
        "WARN" | "WARNING" => Some(LevelFilter::WARN),
        "ERROR" | "FATAL" => Some(LevelFilter::ERROR),
        _ => None,
    });
    if let Some(level) = from_lambda {
        return level;
    }
    if verbose.is_some_and(|v| v.trim().eq_ignore_ascii_case("true")) {
        return LevelFilter::DEBUG;
    }
    match output {
        Output::Lambda => LevelFilter::INFO,
        Output::Cli(level) => level,
    }
}

/// This crate's events at `level`, every other crate's at WARN at most.
fn filter(level: LevelFilter) -> Targets {
    Targets::new().with_default(LevelFilter::WARN.min(level)).with_target("ngs360_omics", level)
}

/// Installs the global subscriber, with the level the environment asks for.
pub fn init(output: Output) {
    let env = |name: &str| std::env::var(name).ok();
    let level = level(env("VERBOSE_LOGGING").as_deref(), env("AWS_LAMBDA_LOG_LEVEL").as_deref(), output);
    let filter = filter(level);
    let builder = tracing_subscriber::fmt().with_max_level(level).with_target(false);
    match output {
        Output::Lambda => {
            let json = env("AWS_LAMBDA_LOG_FORMAT").is_some_and(|f| f.eq_ignore_ascii_case("json"));
            // Lambda stamps every line itself.
            let builder = builder.without_time().with_ansi(false);
            if json {
                builder
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false)
                    .finish()
                    .with(filter)
                    .init();
            } else {
                builder.finish().with(filter).init();
            }
        }
        Output::Cli(_) => builder.with_writer(std::io::stderr).with_ansi(false).finish().with(filter).init(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lambda_log_level_decides_then_verbose_then_the_default() {
        let cli = Output::Cli(LevelFilter::WARN);
        assert_eq!(level(None, None, Output::Lambda), LevelFilter::INFO);
        assert_eq!(level(None, None, cli), LevelFilter::WARN);
        assert_eq!(level(Some("TRUE"), None, Output::Lambda), LevelFilter::DEBUG);
        assert_eq!(level(Some("false"), None, Output::Lambda), LevelFilter::INFO);
        assert_eq!(level(Some("true"), Some("WARN"), Output::Lambda), LevelFilter::WARN);
        assert_eq!(level(None, Some("debug"), Output::Lambda), LevelFilter::DEBUG);
        assert_eq!(level(None, Some("FATAL"), Output::Lambda), LevelFilter::ERROR);
        assert_eq!(level(None, Some("TRACE"), cli), LevelFilter::TRACE);
        assert_eq!(level(Some("true"), Some("loud"), Output::Lambda), LevelFilter::DEBUG);
    }
}
