//! `diff`: two components over the same cases, and every way their answers differ. The gate
//! before a swap: exit 0 only when the candidate (B) does what the current guest (A) does.

use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::Value;

use super::cases::{Input, Shaped, Wording, diff_worded, load_inputs, shape};
use super::{command_sandbox, fail};
use crate::adapters::refresh::load_named;
use crate::error::{Error, GuestError};
use crate::sandbox::{ArchiveKey, Callback, EventIdentity, Outcome};

pub async fn run(guests: &[String], dirs: &[PathBuf]) -> ExitCode {
    let [a, b] = guests else {
        return fail(2, "diff compares two components: give --guest twice (the current one, then the candidate)");
    };
    let (runtime, limits) = match command_sandbox() {
        Ok(r) => r,
        Err(code) => return code,
    };
    let mut loaded = Vec::new();
    for (side, name) in [("A", a), ("B", b)] {
        match load_named(&runtime, name, limits).await {
            Ok(g) => loaded.push(g),
            Err(e) => return fail(1, format!("guest {side} ({name}): {e}")),
        }
    }
    let default = [PathBuf::from("fixtures")];
    let dirs = if dirs.is_empty() { &default[..] } else { dirs };
    let mut inputs: Vec<Input> = Vec::new();
    for dir in dirs {
        match load_inputs(dir) {
            Ok(found) => inputs.extend(found.into_iter().map(|mut i| {
                i.name = format!("{}/{}", dir.display(), i.name);
                i
            })),
            Err(e) => return fail(2, e),
        }
    }
    let (ga, gb) = (&loaded[0], &loaded[1]);
    println!("A: {} ({})", ga.label(), ga.origin());
    println!("B: {} ({})", gb.label(), gb.origin());
    let mut differ = 0;
    for input in &inputs {
        let shaped_a = shape(ga, &input.event, &input.context).await;
        let shaped_b = shape(gb, &input.event, &input.context).await;
        let diffs = differences(&shaped_a, &shaped_b);
        if diffs.is_empty() {
            println!("same  {}", input.name);
        } else {
            differ += 1;
            println!("DIFF  {}", input.name);
            for d in diffs {
                println!("      {d}");
            }
        }
    }
    println!("{} cases: {} the same, {differ} differ", inputs.len(), inputs.len() - differ);
    if differ == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

/// Every way two answers to the same event differ, one line each (empty when they agree).
fn differences(a: &Result<Shaped, Error>, b: &Result<Shaped, Error>) -> Vec<String> {
    match (a, b) {
        (Ok(Shaped::Record(a)), Ok(Shaped::Record(b))) => outcome_differences(a, b),
        (Ok(Shaped::Ignored(_)), Ok(Shaped::Ignored(_))) => Vec::new(),
        (Err(ea), Err(eb)) => match (refusal_kind(ea), refusal_kind(eb)) {
            (Some(ka), Some(kb)) if ka == kb => Vec::new(),
            _ if ea.to_string() == eb.to_string() => Vec::new(),
            _ => vec![format!("error: A {}; B {}", answer(a), answer(b))],
        },
        (Ok(Shaped::Ignored(_)), Ok(Shaped::Record(_))) | (Ok(Shaped::Record(_)), Ok(Shaped::Ignored(_))) => {
            vec![format!("ignore vs process: A {}; B {}", answer(a), answer(b))]
        }
        _ => vec![format!("error: A {}; B {}", answer(a), answer(b))],
    }
}

fn refusal_kind(e: &Error) -> Option<&'static str> {
    match e {
        Error::Guest(GuestError::Refused(r)) => Some(r.kind()),
        _ => None,
    }
}

fn answer(shaped: &Result<Shaped, Error>) -> String {
    match shaped {
        Ok(Shaped::Ignored(reason)) => format!("ignores it ({reason})"),
        Ok(Shaped::Record(_)) => "makes a record".into(),
        Err(Error::Guest(GuestError::Refused(r))) => format!("refuses it with {} ({r})", r.kind()),
        Err(e) => format!("fails: {e}"),
    }
}

fn outcome_differences(a: &Outcome, b: &Outcome) -> Vec<String> {
    let mut diffs = match serde_json::from_str::<Value>(&a.record) {
        Ok(Value::Object(record)) => diff_worded(&record, &b.record, Wording::Diff),
        _ => vec!["A's record is not a JSON object".into()],
    };
    let decision = |c: &Callback| match c {
        Callback::Send => "send".to_owned(),
        Callback::Skip(why) => format!("skip ({why})"),
    };
    if std::mem::discriminant(&a.callback) != std::mem::discriminant(&b.callback) {
        diffs.push(format!("callback: A {}, B {}", decision(&a.callback), decision(&b.callback)));
    }
    if a.archive_key != b.archive_key {
        diffs.push(format!("archive key: A {}, B {}", key(&a.archive_key), key(&b.archive_key)));
    }
    if a.identity != b.identity {
        diffs.push(format!("identity: A {}, B {}", who(&a.identity), who(&b.identity)));
    }
    diffs
}

fn key(k: &ArchiveKey) -> String {
    let timestamp = k.timestamp.as_deref().unwrap_or("{now}");
    format!("event_{timestamp}_{}.json", k.id.as_deref().unwrap_or("{fresh uuid}"))
}

fn who(i: &EventIdentity) -> String {
    format!("run {} {} (event {})", i.run_id, i.status, i.event_id.as_deref().unwrap_or("without id"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Refusal;

    fn outcome(record: &str, callback: Callback) -> Result<Shaped, Error> {
        Ok(Shaped::Record(Box::new(Outcome {
            identity: EventIdentity { run_id: "1".into(), status: "COMPLETED".into(), event_id: None },
            record: record.into(),
            callback,
            archive_key: ArchiveKey { timestamp: None, id: None },
            enrichment_errors: vec![],
            notes: vec![],
        })))
    }

    #[test]
    fn every_kind_of_difference_is_named() {
        let same = outcome(r#"{"a":1,"b":2}"#, Callback::Send);
        assert!(differences(&same, &outcome(r#"{"a":1,"b":2}"#, Callback::Send)).is_empty());
        assert_eq!(
            differences(&same, &outcome(r#"{"a":1,"c":2}"#, Callback::Skip("no tag".into()))),
            ["- b: removed by B (A has 2)", "+ c: added by B (2)", "callback: A send, B skip (no tag)"]
        );
        assert_eq!(
            differences(&same, &outcome(r#"{"b":2,"a":1}"#, Callback::Send)),
            ["key order differs from position 0: A [a, b], B [b, a]"]
        );
        let ignored: Result<Shaped, Error> = Ok(Shaped::Ignored("not a run".into()));
        assert_eq!(differences(&ignored, &same), ["ignore vs process: A ignores it (not a run); B makes a record"]);
        let refused = |field: &str| -> Result<Shaped, Error> {
            Err(Error::Guest(GuestError::Refused(Refusal::MissingField(field.into()))))
        };
        assert!(differences(&refused("runId"), &refused("runId")).is_empty());
        assert_eq!(differences(&refused("runId"), &same).len(), 1);
        assert!(differences(&refused("runId"), &same)[0].starts_with("error: A refuses it with missing-field"));
    }
}
