//! The workflow's outputs: where `outputs.json` is, and the `output_mapping` made of it
//! (behaviour §5).

#[allow(unused_imports)]
use crate::prelude::*;

use serde_json::{Map, Value};

use crate::context::Run;
use crate::event::Fields;
use crate::json::{self, ParseError};
use crate::model::OutputsLocation;

/// Where `outputs.json` is: under `runOutputUri` from the event, else from the run, else
/// under `{outputUri}/{runId}`. Without the run, `AfterRun` asks the host to come back with it.
pub fn locate(event: &Fields<'_>, run_id: &str, run: Option<&Run>) -> OutputsLocation {
    if let Some(uri) = event.str("runOutputUri") {
        return OutputsLocation::Uri(join(uri, "logs/outputs.json"));
    }
    let Some(run) = run else {
        return OutputsLocation::AfterRun;
    };
    if let Some(uri) = run.str("runOutputUri") {
        OutputsLocation::Uri(join(uri, "logs/outputs.json"))
    } else if let Some(uri) = run.str("outputUri") {
        OutputsLocation::Uri(join(&join(uri, run_id), "logs/outputs.json"))
    } else {
        OutputsLocation::Unknown
    }
}

fn join(base: &str, tail: &str) -> String {
    format!("{}/{tail}", base.trim_end_matches('/'))
}

/// The `output_mapping` of an `outputs.json`: a string stays, `{"location": s, ...}`
/// becomes `s`, an array made only of those becomes an array of strings, and any other value
/// is kept as it is. `Err` says, in a few words, why the file cannot be used.
pub fn mapping(raw: &[u8]) -> Result<Map<String, Value>, String> {
    let value = json::parse(raw).map_err(|e| match e {
        ParseError::TooDeep => "outputs.json nests too deep".to_owned(),
        ParseError::Invalid(m) => format!("outputs.json is not valid JSON ({m})"),
    })?;
    let Value::Object(entries) = value else {
        return Err(format!("outputs.json is a JSON {}, not an object", json::kind(&value)));
    };
    Ok(entries.into_iter().map(|(name, v)| (name, map_value(v))).collect())
}

fn map_value(value: Value) -> Value {
    if let Some(location) = location(&value) {
        return Value::String(location.to_owned());
    }
    if let Value::Array(items) = &value {
        let locations: Option<Vec<Value>> =
            items.iter().map(|item| location(item).map(|s| Value::String(s.to_owned()))).collect();
        if let Some(locations) = locations {
            return Value::Array(locations);
        }
    }
    value
}

/// The location of a single output: a string, or an object's string `location`.
fn location(value: &Value) -> Option<&str> {
    match value {
        Value::String(s) => Some(s),
        Value::Object(o) => o.get("location").and_then(Value::as_str),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;

    fn map(s: &str) -> String {
        serde_json::to_string(&mapping(s.as_bytes()).unwrap()).unwrap()
    }

    #[test]
    fn wdl_strings_stay_and_cwl_files_become_locations() {
        assert_eq!(map(r#"{"wf.bam":"s3://b/x.bam","n":3}"#), r#"{"wf.bam":"s3://b/x.bam","n":3}"#);
        assert_eq!(
            map(
                r#"{"out":{"class":"File","location":"s3://b/o.vcf","size":1},"dir":{"class":"Directory","listing":[]}}"#
            ),
            r#"{"out":"s3://b/o.vcf","dir":{"class":"Directory","listing":[]}}"#
        );
    }

    #[test]
    fn arrays_of_files_become_arrays_of_strings_and_mixed_arrays_stay() {
        assert_eq!(
            map(r#"{"a":[{"location":"s3://1"},"s3://2"],"b":[1,{"location":"s3://3"}],"c":[]}"#),
            r#"{"a":["s3://1","s3://2"],"b":[1,{"location":"s3://3"}],"c":[]}"#
        );
    }

    #[test]
    fn unusable_files_say_why() {
        assert!(mapping(b"[1]").unwrap_err().contains("array"));
        assert!(mapping(b"{").unwrap_err().starts_with("outputs.json is not valid JSON"));
        assert!(mapping(b"\xff").unwrap_err().starts_with("outputs.json is not valid JSON"));
    }

    #[test]
    fn location_comes_from_event_then_run_then_output_uri() {
        let ev = Event::parse(br#"{"runOutputUri":"s3://b/p/1/"}"#).unwrap();
        assert_eq!(locate(&ev.fields(), "1", None), OutputsLocation::Uri("s3://b/p/1/logs/outputs.json".into()));
        let bare = Event::parse(b"{}").unwrap();
        let bare = bare.fields();
        assert_eq!(locate(&bare, "1", None), OutputsLocation::AfterRun);
        let run = Run::parse(r#"{"runOutputUri":"s3://r/1"}"#).unwrap();
        assert_eq!(locate(&bare, "1", Some(&run)), OutputsLocation::Uri("s3://r/1/logs/outputs.json".into()));
        let run = Run::parse(r#"{"outputUri":"s3://o/base"}"#).unwrap();
        assert_eq!(locate(&bare, "1", Some(&run)), OutputsLocation::Uri("s3://o/base/1/logs/outputs.json".into()));
        let run = Run::parse("{}").unwrap();
        assert_eq!(locate(&bare, "1", Some(&run)), OutputsLocation::Unknown);
    }
}
