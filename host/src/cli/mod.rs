//! The command line (clap): the commands, their help, and dispatch. With no command and
//! `AWS_LAMBDA_RUNTIME_API` set (that is, started by Lambda), the binary runs the Lambda
//! runtime loop instead.
//!
//! - `transform.rs`: one event through a guest, offline;
//! - `check.rs`: every fixture case through a guest (and `cases.rs`: reading cases,
//!   comparing records);
//! - `compile.rs`: precompiling a component;
//! - `process.rs`: one event through the whole pipeline, as Lambda would run it.

mod cases;
mod check;
mod compile;
mod process;
mod transform;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use cases::{Case, Expected, diff_records, load_cases};

/// Archives AWS HealthOmics run status changes and reports them to the NGS360 WES API.
///
/// With no command and AWS_LAMBDA_RUNTIME_API set, runs as the Lambda function.
#[derive(Debug, Parser)]
#[command(name = "ngs360-omics", version, about, long_about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// A command.
#[derive(Debug, Subcommand, PartialEq, Eq)]
pub enum Command {
    /// Shape one event with a guest only, offline.
    ///
    /// The record goes to stdout; the decisions (callback, archive key) to stderr. A foreign
    /// event exits 0 with one `ignored: ...` line; a refused event exits 1 with one
    /// `error: ...` line; unreadable files exit 2.
    Transform {
        /// The event, as EventBridge delivers it (JSON).
        event: PathBuf,
        /// What AWS would return: {"run": <GetRun>, "tasks": [<ListRunTasks items>],
        /// "outputs": <outputs.json>}, every part optional.
        #[arg(long, value_name = "CONTEXT.json")]
        context: Option<PathBuf>,
        /// The component: `bundled` (the default), a .wasm, or a .cwasm pinned by GUEST_SHA256.
        #[arg(long, value_name = "COMPONENT")]
        guest: Option<String>,
    },
    /// Run every fixture case through a component; exit 1 on any difference.
    ///
    /// The gate before uploading a new guest. A case is a folder with event.json, optional
    /// context.json, and expected.json.
    Check {
        /// The component: `bundled`, a .wasm, or a .cwasm pinned by GUEST_SHA256.
        component: String,
        /// The folder of cases.
        #[arg(long, value_name = "DIR", default_value = "fixtures")]
        fixtures: PathBuf,
    },
    /// The whole Lambda pipeline for one event, configured by the environment.
    ///
    /// Prints the Lambda response; exits 0 only when the invocation would have succeeded.
    Process {
        /// The event (JSON).
        event: PathBuf,
    },
    /// Precompile a component for this host version; prints the sha256 to pin.
    Compile {
        /// The component (.wasm).
        component: PathBuf,
        /// Where to write the precompiled component (.cwasm).
        #[arg(short, long, value_name = "OUT.cwasm")]
        output: PathBuf,
        /// The architecture of the function that will load it: aarch64 (arm64) or x86_64.
        #[arg(long, value_name = "ARCH")]
        target: Option<String>,
    },
}

/// Runs a command on the async runtime.
pub async fn run(command: Command) -> ExitCode {
    match command {
        Command::Transform { event, context, guest } => {
            transform::run(&event, context.as_deref(), guest.as_deref()).await
        }
        Command::Check { component, fixtures } => check::run(&component, &fixtures).await,
        Command::Process { event } => process::run(&event).await,
        Command::Compile { component, output, target } => compile::run(&component, &output, target.as_deref()).await,
    }
}

/// Prints a one-line error and gives the exit code for it.
fn fail(code: u8, message: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(code)
}

fn read(path: &std::path::Path, what: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {what} {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Option<Command>, clap::Error> {
        Cli::try_parse_from(std::iter::once("ngs360-omics").chain(args.iter().copied())).map(|c| c.command)
    }

    #[test]
    fn commands_parse_with_either_option_spelling() {
        assert_eq!(
            p(&["transform", "e.json", "--context=c.json"]).unwrap(),
            Some(Command::Transform { event: "e.json".into(), context: Some("c.json".into()), guest: None })
        );
        assert_eq!(
            p(&["check", "g.wasm"]).unwrap(),
            Some(Command::Check { component: "g.wasm".into(), fixtures: "fixtures".into() })
        );
        assert_eq!(
            p(&["compile", "g.wasm", "-o", "g.cwasm", "--target", "aarch64"]).unwrap(),
            Some(Command::Compile {
                component: "g.wasm".into(),
                output: "g.cwasm".into(),
                target: Some("aarch64".into())
            })
        );
        assert_eq!(
            p(&["transform", "--", "-odd-name.json"]).unwrap(),
            Some(Command::Transform { event: "-odd-name.json".into(), context: None, guest: None })
        );
        assert_eq!(p(&[]).unwrap(), None);
    }

    #[test]
    fn mistakes_are_named() {
        let err = |args: &[&str]| p(args).unwrap_err().to_string();
        assert!(err(&["transform"]).contains("<EVENT>"), "{}", err(&["transform"]));
        assert!(err(&["transform", "a", "b"]).contains("unexpected argument 'b'"));
        assert!(err(&["transform", "a", "--fixtures", "x"]).contains("unexpected argument '--fixtures'"));
        assert!(err(&["transform", "a", "--context"]).contains("a value is required for '--context"));
        assert!(err(&["frobnicate"]).contains("unrecognized subcommand 'frobnicate'"));
    }
}
