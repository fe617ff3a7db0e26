//! Your rules: changes to the standard outcome (docs/behaviour.md), in one place.
//!
//! With no rule, this guest does exactly what the bundled one does, and
//! `ngs360-omics diff --guest bundled --guest <this .wasm>` exits 0. Add a rule, test it here
//! (`cargo test`), then let `diff` show every record it changes before you ship it.

use ngs360_omics_guest::model::{Error, Outcome};
use serde_json::{Map, Value};

/// Applies the rules to an outcome of the standard shaping.
pub fn apply(outcome: &mut Outcome) -> Result<(), Error> {
    if cfg!(feature = "example-change") {
        flag_failed_runs(outcome)?;
    }
    Ok(())
}

/// An example rule: the record of a FAILED run says `needs_attention: true`, after the
/// standard fields.
fn flag_failed_runs(outcome: &mut Outcome) -> Result<(), Error> {
    if outcome.identity.status != "FAILED" {
        return Ok(());
    }
    let mut record = record(outcome)?;
    record.insert("needs_attention".into(), Value::Bool(true));
    outcome.record = Value::Object(record).to_string();
    Ok(())
}

/// The outcome's record as an ordered map (key order is part of the record).
fn record(outcome: &Outcome) -> Result<Map<String, Value>, Error> {
    match serde_json::from_str(&outcome.record) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(Error::InvalidContext("the standard record is not a JSON object".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ngs360_omics_guest::{Context, Event};

    fn shape(status: &str) -> Outcome {
        let event = format!(
            r#"{{"id":"e1","source":"aws.omics","detail-type":"Run Status Change","time":"2026-03-02T14:05:09Z","region":"eu-west-1","detail":{{"runId":"7","status":"{status}"}}}}"#
        );
        let run = r#"{"tags":{"WESRunId":"w-1"}}"#;
        let ctx = Context { run: Some(run), ..Context::default() };
        Event::parse(event.as_bytes()).unwrap().transform(&ctx).unwrap()
    }

    #[test]
    fn without_rules_the_outcome_is_the_standard_one() {
        if cfg!(feature = "example-change") {
            return;
        }
        let standard = shape("FAILED");
        let mut ours = standard.clone();
        apply(&mut ours).unwrap();
        assert_eq!(ours, standard);
    }

    #[test]
    fn the_example_rule_flags_failed_runs_only() {
        let mut failed = shape("FAILED");
        flag_failed_runs(&mut failed).unwrap();
        assert!(failed.record.ends_with(r#","needs_attention":true}"#), "{}", failed.record);
        let mut running = shape("RUNNING");
        let before = running.record.clone();
        flag_failed_runs(&mut running).unwrap();
        assert_eq!(running.record, before);
    }
}
