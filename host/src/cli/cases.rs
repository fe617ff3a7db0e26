//! Fixture cases (a folder each: `event.json`, optional `context.json`, `expected.json`),
//! running one through a guest, and the differences between two records.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::adapters::context_file::ContextFile;
use crate::config::Layout;
use crate::error::{Error, GuestError};
use crate::pipeline::{Admission, ArchiveTarget, admit};
use crate::sandbox::{Callback, Guest, Outcome};

/// What a fixture case expects.
#[derive(Debug, Clone)]
pub enum Expected {
    /// A record (compared in canonical compact form, so key order counts), and optionally the
    /// callback decision (`send` or `skip`) and the archive key (without prefix).
    Record { record: Map<String, Value>, callback: Option<String>, archive_key: Option<String> },
    /// The event is not a run status change.
    Ignored,
    /// The guest refuses the event with this `transform-error` case (`missing-field`, ...).
    Error(String),
}

/// One fixture case: a directory with `event.json`, optional `context.json`, `expected.json`.
#[derive(Debug, Clone)]
pub struct Case {
    pub name: String,
    pub dir: PathBuf,
    pub event: Vec<u8>,
    pub context: ContextFile,
    pub expected: Expected,
}

/// One input without an expectation: a directory with `event.json` and optional
/// `context.json` (a fixture case, or one that `CAPTURE_INPUTS` wrote).
#[derive(Debug, Clone)]
pub struct Input {
    /// The directory's path below the folder it was found in.
    pub name: String,
    pub event: Vec<u8>,
    pub context: ContextFile,
}

/// Every input at or below `dir` (each directory holding an `event.json`), sorted by path.
pub fn load_inputs(dir: &Path) -> Result<Vec<Input>, String> {
    let mut dirs = Vec::new();
    let mut todo = vec![dir.to_owned()];
    while let Some(d) = todo.pop() {
        if d.join("event.json").is_file() {
            dirs.push(d.clone());
        }
        let entries = std::fs::read_dir(&d).map_err(|e| format!("cannot read {}: {e}", d.display()))?;
        todo.extend(entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_dir()));
    }
    dirs.sort();
    if dirs.is_empty() {
        return Err(format!("no cases under {} (directories with an event.json)", dir.display()));
    }
    dirs.iter()
        .map(|d| {
            let (event, context) = load_event(d)?;
            let name = d.strip_prefix(dir).ok().filter(|p| !p.as_os_str().is_empty()).unwrap_or(d);
            Ok(Input { name: name.display().to_string(), event, context })
        })
        .collect()
}

fn load_event(dir: &Path) -> Result<(Vec<u8>, ContextFile), String> {
    let read = |name: &str| std::fs::read(dir.join(name)).map_err(|e| format!("{}/{name}: {e}", dir.display()));
    let event = read("event.json")?;
    let context = if dir.join("context.json").is_file() {
        ContextFile::parse(&read("context.json")?).map_err(|e| format!("{}/context.json: {e}", dir.display()))?
    } else {
        ContextFile::default()
    };
    Ok((event, context))
}

/// Loads every case under `dir` (each subdirectory with an `expected.json`), sorted by name.
pub fn load_cases(dir: &Path) -> Result<Vec<Case>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let mut dirs: Vec<PathBuf> =
        entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.join("expected.json").is_file()).collect();
    dirs.sort();
    if dirs.is_empty() {
        return Err(format!("no fixture cases under {} (directories with an expected.json)", dir.display()));
    }
    dirs.iter().map(|d| load_case(d)).collect()
}

fn load_case(dir: &Path) -> Result<Case, String> {
    let (event, context) = load_event(dir)?;
    let path = dir.join("expected.json");
    let read = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let expected: Value = serde_json::from_slice(&read).map_err(|e| format!("{}: {e}", path.display()))?;
    let expected = parse_expected(expected).map_err(|e| format!("{}/expected.json: {e}", dir.display()))?;
    Ok(Case {
        name: dir.file_name().unwrap_or_default().to_string_lossy().into_owned(),
        dir: dir.to_owned(),
        event,
        context,
        expected,
    })
}

fn parse_expected(v: Value) -> Result<Expected, String> {
    if v.get("ignored") == Some(&Value::Bool(true)) {
        return Ok(Expected::Ignored);
    }
    if let Some(kind) = v.get("error").and_then(Value::as_str) {
        return Ok(Expected::Error(kind.to_owned()));
    }
    let Some(Value::Object(record)) = v.get("record") else {
        return Err("expects `record` (an object), `ignored: true` or `error`".into());
    };
    let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
    Ok(Expected::Record { record: record.clone(), callback: text("callback"), archive_key: text("archive_key") })
}

/// Runs one case through `guest`; `Ok(())` when it matches, else the differences, one line
/// each.
pub async fn run_case(guest: &Guest, case: &Case) -> Result<(), Vec<String>> {
    let result = shape(guest, &case.event, &case.context).await.map(|s| match s {
        Shaped::Ignored(_) => None,
        Shaped::Record(outcome) => Some(outcome),
    });
    match (&case.expected, result) {
        (Expected::Ignored, Ok(None)) => Ok(()),
        (Expected::Error(kind), Err(Error::Guest(GuestError::Refused(e)))) if e.kind() == kind => Ok(()),
        (Expected::Record { record, callback, archive_key }, Ok(Some(outcome))) => {
            let mut diffs = diff_records(record, &outcome.record);
            let decision = match &outcome.callback {
                Callback::Send => "send",
                Callback::Skip(_) => "skip",
            };
            if let Some(want) = callback.as_deref().filter(|want| *want != decision) {
                diffs.push(format!("callback: expected {want}, got {decision} ({:?})", outcome.callback));
            }
            if let Some(want) = archive_key {
                let target = ArchiveTarget { bucket: String::new(), prefix: String::new(), layout: Layout::Flat };
                let got = target.key(&outcome.archive_key, std::time::SystemTime::now());
                if *want != got {
                    diffs.push(format!("archive key: expected {want}, got {got}"));
                }
            }
            if diffs.is_empty() { Ok(()) } else { Err(diffs) }
        }
        (expected, got) => Err(vec![format!("expected {}, got {}", describe_expected(expected), describe_got(&got))]),
    }
}

/// What a guest made of an event.
pub enum Shaped {
    /// Not a run status change; the guest's reason.
    Ignored(String),
    /// The outcome.
    Record(Box<Outcome>),
}

/// Runs an event through `guest` the way the pipeline does (plan, fetch from `context`,
/// transform).
pub async fn shape(guest: &Guest, event: &[u8], context: &ContextFile) -> Result<Shaped, Error> {
    match admit(guest, event.to_vec().into()).await? {
        Admission::Ignored { reason, .. } => Ok(Shaped::Ignored(reason)),
        Admission::Run(run) => Ok(Shaped::Record(Box::new(run.shape(context).await?))),
    }
}

fn describe_expected(e: &Expected) -> String {
    match e {
        Expected::Record { .. } => "a record".into(),
        Expected::Ignored => "the event to be ignored".into(),
        Expected::Error(kind) => format!("the guest to refuse it with {kind}"),
    }
}

fn describe_got(got: &Result<Option<Box<Outcome>>, Error>) -> String {
    match got {
        Ok(Some(_)) => "a record".into(),
        Ok(None) => "the event ignored".into(),
        Err(Error::Guest(GuestError::Refused(e))) => format!("a refusal ({}: {e})", e.kind()),
        Err(e) => format!("an error: {e}"),
    }
}

/// How a record difference is worded: against a fixture's expectation (`check`), or
/// between two guests (`diff`, A the current one, B the candidate).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wording {
    Check,
    Diff,
}

/// The differences between the expected record and the guest's, key by key, then in order.
pub fn diff_records(expected: &Map<String, Value>, actual: &str) -> Vec<String> {
    diff_worded(expected, actual, Wording::Check)
}

/// [`diff_records`], worded for `check` or for `diff`.
pub fn diff_worded(expected: &Map<String, Value>, actual: &str, wording: Wording) -> Vec<String> {
    let actual: Map<String, Value> = match serde_json::from_str(actual) {
        Ok(Value::Object(m)) => m,
        _ => return vec![format!("the record is not a JSON object: {}", excerpt(actual))],
    };
    let (a, b) = match wording {
        Wording::Check => ("expected", "got"),
        Wording::Diff => ("A", "B"),
    };
    let mut diffs = Vec::new();
    for (key, want) in expected {
        let want_text = excerpt(&want.to_string());
        match actual.get(key) {
            None if wording == Wording::Check => diffs.push(format!("- {key}: missing (expected {want_text})")),
            None => diffs.push(format!("- {key}: removed by B (A has {want_text})")),
            Some(got) if got != want => {
                diffs.push(format!("~ {key}: {a} {want_text}, {b} {}", excerpt(&got.to_string())))
            }
            Some(_) => {}
        }
    }
    for (key, got) in &actual {
        if !expected.contains_key(key) {
            let got = excerpt(&got.to_string());
            diffs.push(match wording {
                Wording::Check => format!("+ {key}: unexpected {got}"),
                Wording::Diff => format!("+ {key}: added by B ({got})"),
            });
        }
    }
    if diffs.is_empty() {
        let want: Vec<&String> = expected.keys().collect();
        let got: Vec<&String> = actual.keys().collect();
        if want != got {
            let at = want.iter().zip(&got).position(|(a, b)| a != b).unwrap_or(0);
            diffs.push(format!(
                "key order differs from position {at}: {a} [{}], {b} [{}]",
                join(&want[at..]),
                join(&got[at..])
            ));
        } else if serde_json::to_string(expected).ok() != serde_json::to_string(&actual).ok() {
            diffs.push("the records are equal as JSON but not byte for byte".into());
        }
    }
    diffs
}

fn join(keys: &[&String]) -> String {
    let mut s: Vec<&str> = keys.iter().take(6).map(|k| k.as_str()).collect();
    if keys.len() > 6 {
        s.push("...");
    }
    s.join(", ")
}

fn excerpt(s: &str) -> String {
    if s.chars().count() <= 120 {
        s.to_owned()
    } else {
        format!("{}... ({} bytes)", s.chars().take(120).collect::<String>(), s.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_names_missing_unexpected_changed_and_reordered_keys() {
        let want: Map<String, Value> = serde_json::from_str(r#"{"a":1,"b":2,"c":3}"#).unwrap();
        let d = diff_records(&want, r#"{"a":1,"b":5,"d":4}"#);
        assert_eq!(d, ["~ b: expected 2, got 5", "- c: missing (expected 3)", "+ d: unexpected 4"]);
        let d = diff_records(&want, r#"{"a":1,"c":3,"b":2}"#);
        assert_eq!(d, ["key order differs from position 1: expected [b, c], got [c, b]"]);
        assert!(diff_records(&want, r#"{"a":1,"b":2,"c":3}"#).is_empty());
    }
}
