//! The command line (clap): the commands, their help, and dispatch. With no command and
//! `AWS_LAMBDA_RUNTIME_API` set (that is, started by Lambda), the binary runs the Lambda
//! runtime loop instead.
//!
//! - `transform.rs`: one event through a guest, offline;
//! - `check.rs`: every fixture case through a guest (and `cases.rs`: reading cases,
//!   comparing records);
//! - `compile.rs`: precompiling a component;
//! - `process.rs`: one event through the whole pipeline, as Lambda would run it;
//! - `reconcile.rs`: runs' current status rebuilt from HealthOmics and processed;
//! - `replay.rs`: dead letters (the queue, or saved files) through the pipeline.

mod cases;
mod check;
mod compile;
mod diff;
mod process;
mod reconcile;
mod replay;
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
        /// The component: `bundled` (the default), a .wasm, or a .cwasm pinned by GUEST_SHA256;
        /// a path or s3://bucket/key[?versionId=V].
        #[arg(long, value_name = "COMPONENT")]
        guest: Option<String>,
    },
    /// Run every fixture case through a component; exit 1 on any difference.
    ///
    /// The gate before uploading a new guest. A case is a folder with event.json, optional
    /// context.json, and expected.json.
    Check {
        /// The component: `bundled`, a .wasm, or a .cwasm pinned by GUEST_SHA256; a path or
        /// s3://bucket/key[?versionId=V].
        component: String,
        /// The folder of cases.
        #[arg(long, value_name = "DIR", default_value = "fixtures")]
        fixtures: PathBuf,
    },
    /// Run two components over the same cases and print what differs, case by case: record
    /// keys added, removed or changed, key order, the callback decision, ignore versus process,
    /// refusals and failures. Exit 0 when they agree on every case, 1 on any difference (the
    /// gate before a swap), 2 on a usage error. Errors agree when they are the same refusal
    /// (`missing-field`, ...), whatever the wording.
    Diff {
        /// A component, twice: the current one (A), then the candidate (B). Each is `bundled`,
        /// a .wasm, or a .cwasm pinned by GUEST_SHA256; a path or s3://bucket/key[?versionId=V]
        /// (the deployed one, say).
        #[arg(long = "guest", value_name = "COMPONENT", required = true, num_args = 1)]
        guests: Vec<String>,
        /// A folder of cases (each a folder with `event.json` and optional `context.json`, at
        /// any depth: fixtures, or a sync of CAPTURE_INPUTS); repeat for more.
        #[arg(long = "cases", value_name = "DIR")]
        cases: Vec<PathBuf>,
    },
    /// The whole Lambda pipeline for one event, configured by the environment.
    ///
    /// Prints the Lambda response; exits 0 only when the invocation would have succeeded.
    Process {
        /// The event (JSON).
        event: PathBuf,
    },
    /// Replay dead letters through the same pipeline as the function.
    ///
    /// From the dead-letter queue (`--queue`), or saved files (a file, or a directory of
    /// `.json` files): Lambda's on-failure records, SNS notifications, or events. Oldest
    /// event time first. A message is deleted only once its event succeeded; the others
    /// stay in the queue and are printed with their error. Configured by the same
    /// environment as `process`. Exits 1 if any remain.
    Replay {
        /// The dead-letter queue's URL.
        #[arg(long, value_name = "QUEUE_URL", conflicts_with = "files", required_unless_present = "files")]
        queue: Option<String>,
        /// Saved dead letters: files, or directories of .json files.
        #[arg(value_name = "FILE|DIR")]
        files: Vec<PathBuf>,
        /// List the dead letters; replay and delete nothing.
        #[arg(long)]
        dry_run: bool,
        /// At most this many.
        #[arg(long, value_name = "N")]
        max: Option<usize>,
    },
    /// Rebuild runs' current status from HealthOmics and process it (behaviour §9).
    ///
    /// Lists every run (ListRuns, every page); for each whose status dates from within the
    /// window, reads it (GetRun) and processes it as an `ngs360.reconcile` event, like the
    /// function would: archived, and reported to the WES API. Reconciling twice changes
    /// nothing. Configured by the same environment as `process`. Prints one line per run on
    /// stderr and a summary on stdout; exits 1 if any run failed.
    Reconcile {
        /// How far back: 26h, 90m, 7d, 3600s.
        #[arg(long, value_name = "DURATION")]
        since: String,
        /// The window's end, an RFC 3339 time (default: now).
        #[arg(long, value_name = "TIME")]
        until: Option<String>,
        /// List what would be processed; archive and call back nothing.
        #[arg(long)]
        dry_run: bool,
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
        Command::Diff { guests, cases } => diff::run(&guests, &cases).await,
        Command::Process { event } => process::run(&event).await,
        Command::Replay { queue, files, dry_run, max } => {
            let source = match queue {
                Some(url) => replay::Source::Queue(url),
                None => replay::Source::Paths(files),
            };
            replay::run(source, dry_run, max).await
        }
        Command::Reconcile { since, until, dry_run } => reconcile::run(&since, until.as_deref(), dry_run).await,
        Command::Compile { component, output, target } => compile::run(&component, &output, target.as_deref()).await,
    }
}

/// Prints a one-line error and gives the exit code for it.
fn fail(code: u8, message: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(code)
}

/// The sandbox a command loads guests in, under `GUEST_MEMORY_MB` and `GUEST_TIMEOUT_MS`
/// as in the function; a usage error (exit 2) when they are out of range.
fn command_sandbox() -> Result<(crate::sandbox::Runtime, crate::sandbox::Limits), ExitCode> {
    let limits = crate::config::GuestLimits::from_env().map_err(|e| fail(2, e))?;
    crate::lambda::sandbox(&limits).map_err(|e| fail(2, e))
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
