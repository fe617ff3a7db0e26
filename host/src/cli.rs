//! The command line: `transform`, `check`, `process`, `compile`, and Lambda mode.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::config::DEFAULT_PREFIX;
use crate::fixtures::{ContextFile, load_cases, run_case};
use crate::guest::{Callback, Guest, Limits, Runtime};
use crate::pipeline::{ArchiveTarget, Planned, plan};

pub const USAGE: &str = "\
ngs360-omics: archives AWS HealthOmics run status changes and reports them to the NGS360 WES API

usage:
  ngs360-omics transform EVENT.json [--context CONTEXT.json] [--guest COMPONENT]
      Shape one event with the guest only, offline. The record goes to stdout; the
      decisions (callback, archive key) to stderr. CONTEXT.json holds what AWS would
      return: {\"run\": <GetRun>, \"tasks\": [<ListRunTasks items>], \"outputs\": <outputs.json>}.
  ngs360-omics check COMPONENT|bundled [--fixtures DIR]
      Run every fixture case (default DIR: fixtures) through a component; exit 1 on any
      failure. The gate before uploading a new guest.
  ngs360-omics process EVENT.json
      The whole Lambda pipeline for one event, configured by the environment (replays
      dead-letter events). Exit 0 only when the invocation would have succeeded.
  ngs360-omics compile COMPONENT.wasm -o OUT.cwasm [--target aarch64|x86_64]
      Precompile a component for this host version and prints the sha256 to pin.

With no arguments and AWS_LAMBDA_RUNTIME_API set, runs as the Lambda function.
";

/// A parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Transform { event: PathBuf, context: Option<PathBuf>, guest: Option<String> },
    Check { component: String, fixtures: PathBuf },
    Process { event: PathBuf },
    Compile { component: PathBuf, output: PathBuf, target: Option<String> },
    Lambda,
    Help,
    Version,
}

/// Reads the arguments (without the program name). `lambda` says whether Lambda started us.
pub fn parse(args: &[String], lambda: bool) -> Result<Command, String> {
    let Some((sub, rest)) = args.split_first() else {
        return if lambda { Ok(Command::Lambda) } else { Err("no command given".into()) };
    };
    let mut positional = Vec::new();
    let mut options: Vec<(&str, &str)> = Vec::new();
    let mut it = rest.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--context" | "--guest" | "--fixtures" | "-o" | "--output" | "--target" => {
                let value = it.next().ok_or_else(|| format!("{arg} needs a value"))?;
                options.push((arg.as_str(), value.as_str()));
            }
            a if a.starts_with('-') => return Err(format!("unknown option {a}")),
            _ => positional.push(arg.as_str()),
        }
    }
    let option = |names: &[&str]| options.iter().rev().find(|(n, _)| names.contains(n)).map(|(_, v)| v.to_string());
    let allowed = |names: &[&str]| match options.iter().find(|(n, _)| !names.contains(n)) {
        Some((n, _)) => Err(format!("{sub} does not take {n}")),
        None => Ok(()),
    };
    let one = |what: &str| match positional.as_slice() {
        [p] => Ok(p.to_string()),
        [] => Err(format!("{sub} needs {what}")),
        _ => Err(format!("{sub} takes one {what}")),
    };
    match sub.as_str() {
        "-h" | "--help" | "help" => Ok(Command::Help),
        "-V" | "--version" | "version" => Ok(Command::Version),
        "transform" => {
            allowed(&["--context", "--guest"])?;
            Ok(Command::Transform {
                event: one("EVENT.json")?.into(),
                context: option(&["--context"]).map(PathBuf::from),
                guest: option(&["--guest"]),
            })
        }
        "check" => {
            allowed(&["--fixtures"])?;
            Ok(Command::Check {
                component: one("COMPONENT")?,
                fixtures: option(&["--fixtures"]).unwrap_or_else(|| "fixtures".into()).into(),
            })
        }
        "process" => {
            allowed(&[])?;
            Ok(Command::Process { event: one("EVENT.json")?.into() })
        }
        "compile" => {
            allowed(&["-o", "--output", "--target"])?;
            let output = option(&["-o", "--output"]).ok_or("compile needs -o OUT.cwasm")?;
            Ok(Command::Compile {
                component: one("COMPONENT.wasm")?.into(),
                output: output.into(),
                target: option(&["--target"]),
            })
        }
        other => Err(format!("unknown command `{other}`")),
    }
}

/// Prints a one-line error and gives the exit code for it.
fn fail(code: u8, message: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(code)
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {what} {}: {e}", path.display()))
}

/// Loads the guest a command names: `None` or `bundled` for the bundled one, else a path
/// (a `.cwasm` only when `GUEST_SHA256` pins it).
fn load_guest(runtime: &Runtime, component: Option<&str>) -> Result<Guest, String> {
    match component {
        None | Some("bundled") => runtime.bundled(Limits::default()).map_err(|e| e.to_string()),
        Some(path) => {
            let bytes = read(Path::new(path), "the component")?;
            let pinned = std::env::var("GUEST_SHA256").ok().filter(|s| !s.is_empty());
            runtime.load(&bytes, path.to_owned(), pinned.as_deref(), Limits::default()).map_err(|e| e.to_string())
        }
    }
}

/// `transform`: one event through the guest, offline.
pub async fn transform(event: &Path, context: Option<&Path>, component: Option<&str>) -> ExitCode {
    let event = match read(event, "the event") {
        Ok(bytes) => bytes,
        Err(e) => return fail(2, e),
    };
    let context = match context.map(|p| {
        read(p, "the context").and_then(|b| ContextFile::parse(&b).map_err(|e| format!("context {}: {e}", p.display())))
    }) {
        None => ContextFile::default(),
        Some(Ok(c)) => c,
        Some(Err(e)) => return fail(2, e),
    };
    let runtime = match Runtime::new() {
        Ok(r) => r,
        Err(e) => return fail(2, e),
    };
    let guest = match load_guest(&runtime, component) {
        Ok(g) => g,
        Err(e) => return fail(2, e),
    };
    let run = match plan(&guest, event.into()).await {
        Ok(Planned::Ignored(why, _)) => {
            eprintln!("ignored: {why}");
            return ExitCode::SUCCESS;
        }
        Ok(Planned::Run(run)) => run,
        Err(e) => return fail(1, e),
    };
    let outcome = match run.shape(&context).await {
        Ok(outcome) => outcome,
        Err(e) => return fail(1, e),
    };
    println!("{}", outcome.record);
    let id = &outcome.identity;
    eprintln!("guest: {} ({})", guest.label(), guest.source());
    eprintln!(
        "event: run {}, status {}, event id {}",
        id.run_id,
        id.status,
        id.event_id.as_deref().unwrap_or("(none)")
    );
    match &outcome.callback {
        Callback::Send => eprintln!("callback: send"),
        Callback::Skip(why) => eprintln!("callback: skip ({why})"),
    }
    let target = ArchiveTarget {
        bucket: std::env::var("DATA_LAKE_BUCKET").unwrap_or_else(|_| "$DATA_LAKE_BUCKET".into()),
        prefix: std::env::var("S3_PREFIX").unwrap_or_else(|_| DEFAULT_PREFIX.into()).trim_matches('/').to_owned(),
    };
    eprintln!("archive: s3://{}/{}", target.bucket, target.key(&outcome.archive_key, std::time::SystemTime::now()));
    for e in &outcome.enrichment_errors {
        eprintln!("enrichment error: {e}");
    }
    for note in &outcome.notes {
        eprintln!("note: {note}");
    }
    ExitCode::SUCCESS
}

/// `check`: every fixture case through a component.
pub async fn check(component: &str, fixtures: &Path) -> ExitCode {
    let runtime = match Runtime::new() {
        Ok(r) => r,
        Err(e) => return fail(2, e),
    };
    let guest = match load_guest(&runtime, Some(component)) {
        Ok(g) => g,
        Err(e) => return fail(1, e),
    };
    let cases = match load_cases(fixtures) {
        Ok(c) => c,
        Err(e) => return fail(2, e),
    };
    println!("checking {} ({}) against {} cases in {}", guest.label(), guest.source(), cases.len(), fixtures.display());
    let mut failed = 0;
    for case in &cases {
        match run_case(&guest, case).await {
            Ok(()) => println!("ok    {}", case.name),
            Err(diffs) => {
                failed += 1;
                println!("FAIL  {}", case.name);
                for d in diffs {
                    println!("      {d}");
                }
            }
        }
    }
    println!("{} cases: {} passed, {failed} failed", cases.len(), cases.len() - failed);
    if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

/// The target triple for `compile --target`.
pub fn target_triple(arch: &str) -> Result<&'static str, String> {
    match arch {
        "aarch64" | "arm64" => Ok("aarch64-unknown-linux-gnu"),
        "x86_64" | "amd64" => Ok("x86_64-unknown-linux-gnu"),
        other => Err(format!("unknown target `{other}` (aarch64 or x86_64)")),
    }
}

/// `compile`: precompiles a component for this host version and engine settings, for the
/// given architecture, and prints the sha256 to pin with `GUEST_SHA256`.
pub fn compile(component: &Path, output: &Path, arch: Option<&str>) -> ExitCode {
    let triple = match arch.map(target_triple).transpose() {
        Ok(t) => t.unwrap_or(crate::guest::BUNDLED_TARGET),
        Err(e) => return fail(2, e),
    };
    let bytes = match read(component, "the component") {
        Ok(b) => b,
        Err(e) => return fail(2, e),
    };
    let cwasm = match crate::guest::precompile(&bytes, triple, &component.display().to_string()) {
        Ok(c) => c,
        Err(e) => return fail(1, e),
    };
    if let Err(e) = std::fs::write(output, &cwasm) {
        return fail(2, format!("cannot write {}: {e}", output.display()));
    }
    eprintln!("compiled {} for {triple} ({} bytes) to {}", component.display(), cwasm.len(), output.display());
    println!("{}", crate::guest::sha256_hex(&cwasm));
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Command, String> {
        parse(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>(), false)
    }

    #[test]
    fn commands_parse() {
        assert_eq!(
            p(&["transform", "e.json", "--context", "c.json"]).unwrap(),
            Command::Transform { event: "e.json".into(), context: Some("c.json".into()), guest: None }
        );
        assert_eq!(
            p(&["check", "g.wasm"]).unwrap(),
            Command::Check { component: "g.wasm".into(), fixtures: "fixtures".into() }
        );
        assert_eq!(
            p(&["compile", "g.wasm", "-o", "g.cwasm", "--target", "aarch64"]).unwrap(),
            Command::Compile { component: "g.wasm".into(), output: "g.cwasm".into(), target: Some("aarch64".into()) }
        );
        assert_eq!(parse(&[], true).unwrap(), Command::Lambda);
    }

    #[test]
    fn mistakes_are_named() {
        assert_eq!(p(&[]).unwrap_err(), "no command given");
        assert_eq!(p(&["transform"]).unwrap_err(), "transform needs EVENT.json");
        assert_eq!(p(&["transform", "a", "b"]).unwrap_err(), "transform takes one EVENT.json");
        assert_eq!(p(&["transform", "a", "--fixtures", "x"]).unwrap_err(), "transform does not take --fixtures");
        assert_eq!(p(&["transform", "a", "--context"]).unwrap_err(), "--context needs a value");
        assert_eq!(p(&["frobnicate"]).unwrap_err(), "unknown command `frobnicate`");
        assert_eq!(p(&["check", "x", "--bogus"]).unwrap_err(), "unknown option --bogus");
    }
}
