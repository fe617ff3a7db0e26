//! The incoming event: parsing, and telling run status changes from the rest
//! (behaviour §1).

#[allow(unused_imports)]
use crate::prelude::*;

use serde_json::{Map, Value};

use crate::flatten::{Flat, flatten};
use crate::json::{self, MAX_DEPTH, ParseError};
use crate::model::{Error, Identity};

/// The EventBridge source of HealthOmics events.
pub const SOURCE: &str = "aws.omics";
/// The source of the processor's own reconciled events (behaviour §9).
pub const RECONCILE_SOURCE: &str = "ngs360.reconcile";
/// The detail-type of a run status change.
pub const DETAIL_TYPE: &str = "Run Status Change";

/// A parsed event: the object as delivered (nested or already flattened).
pub struct Event {
    top: Map<String, Value>,
}

/// An event's fields: the top level as delivered, and the flattened view (behaviour §2).
pub struct Fields<'a> {
    pub top: &'a Map<String, Value>,
    pub flat: Flat<'a>,
}

/// What an event is.
pub enum Kind {
    /// Not a HealthOmics run status change: why, in one line.
    Foreign(String),
    /// A run status change.
    Run(Identity),
}

impl Event {
    /// Parses an event.
    pub fn parse(bytes: &[u8]) -> Result<Event, Error> {
        let value = json::parse(bytes).map_err(|e| match e {
            ParseError::TooDeep => Error::TooDeep(MAX_DEPTH),
            ParseError::Invalid(m) => Error::InvalidJson(m),
        })?;
        match value {
            Value::Object(top) => Ok(Event { top }),
            other => Err(Error::NotAnObject(json::kind(&other))),
        }
    }

    /// The event's fields, flattened.
    pub fn fields(&self) -> Fields<'_> {
        Fields { top: &self.top, flat: flatten(&self.top) }
    }
}

impl<'a> Fields<'a> {
    /// A string field of the flattened event; `None` when absent, empty or not a string.
    pub fn str(&self, key: &str) -> Option<&'a str> {
        self.flat.get(key).and_then(|v| v.as_str()).filter(|s| !s.is_empty())
    }

    /// The envelope's `id`, when it is a non-empty string.
    pub fn id(&self) -> Option<&'a str> {
        self.top.get("id").and_then(Value::as_str).filter(|s| !s.is_empty())
    }

    /// The envelope's `time`, as delivered.
    pub fn time(&self) -> Option<&'a Value> {
        self.top.get("time").filter(|t| !t.is_null())
    }

    /// Tells a run status change from anything else, and names the run.
    pub fn classify(&self) -> Result<Kind, Error> {
        let source = self.required_str("source")?;
        let detail_type = self.required_str("detail-type")?;
        if !(source == SOURCE || source == RECONCILE_SOURCE) || detail_type != DETAIL_TYPE {
            return Ok(Kind::Foreign(format!(
                "source `{source}`, detail-type `{detail_type}` is not a HealthOmics run status change"
            )));
        }
        let run_id = self.required_id("runId")?;
        let status = self.required_str("status")?.to_owned();
        Ok(Kind::Run(Identity { run_id, status, event_id: self.id().map(str::to_owned) }))
    }

    fn required_str(&self, key: &str) -> Result<&'a str, Error> {
        match self.flat.get(key).copied() {
            None | Some(Value::Null) => Err(Error::MissingField(key.to_owned())),
            Some(Value::String(s)) if s.is_empty() => Err(invalid(key, "is empty")),
            Some(Value::String(s)) => Ok(s),
            Some(other) => Err(invalid(key, &format!("is a {}, not a string", json::kind(other)))),
        }
    }

    /// A run id: a string, or a number as written.
    fn required_id(&self, key: &str) -> Result<String, Error> {
        match self.flat.get(key).copied() {
            Some(Value::Number(n)) => Ok(n.to_string()),
            _ => self.required_str(key).map(str::to_owned),
        }
    }
}

fn invalid(field: &str, reason: &str) -> Error {
    Error::InvalidField { field: field.to_owned(), reason: reason.to_owned() }
}

/// True for the statuses after which a run has logs and tasks to link.
pub fn is_finished(status: &str) -> bool {
    matches!(status, "COMPLETED" | "FAILED" | "CANCELLED")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classify(s: &str) -> Result<Kind, Error> {
        Event::parse(s.as_bytes())?.fields().classify()
    }

    #[test]
    fn run_event_is_named() {
        let Kind::Run(id) = classify(
            r#"{"id":"e","source":"aws.omics","detail-type":"Run Status Change","detail":{"runId":"7","status":"RUNNING"}}"#,
        )
        .unwrap() else {
            panic!("not a run")
        };
        assert_eq!(id, Identity { run_id: "7".into(), status: "RUNNING".into(), event_id: Some("e".into()) });
    }

    #[test]
    fn numeric_run_id_is_kept_as_written() {
        let Kind::Run(id) =
            classify(r#"{"source":"aws.omics","detail-type":"Run Status Change","runId":4417021,"status":"RUNNING"}"#)
                .unwrap()
        else {
            panic!("not a run")
        };
        assert_eq!(id.run_id, "4417021");
        assert_eq!(id.event_id, None);
    }

    #[test]
    fn reconciled_events_are_run_events_too() {
        let Kind::Run(id) = classify(
            r#"{"id":"r","source":"ngs360.reconcile","detail-type":"Run Status Change","detail":{"runId":"7","status":"COMPLETED"}}"#,
        )
        .unwrap() else {
            panic!("not a run")
        };
        assert_eq!(id.status, "COMPLETED");
    }

    #[test]
    fn foreign_events_are_recognised() {
        let Kind::Foreign(why) = classify(r#"{"source":"aws.s3","detail-type":"Object Created","detail":{}}"#).unwrap()
        else {
            panic!("not foreign")
        };
        assert!(why.contains("aws.s3") && why.contains("Object Created"), "{why}");
    }

    #[test]
    fn missing_and_unusable_fields_are_named() {
        let base = r#""source":"aws.omics","detail-type":"Run Status Change""#;
        assert_eq!(
            classify(&format!(r#"{{{base},"detail":{{"status":"RUNNING"}}}}"#)).err(),
            Some(Error::MissingField("runId".into()))
        );
        assert_eq!(
            classify(&format!(r#"{{{base},"detail":{{"runId":"1"}}}}"#)).err(),
            Some(Error::MissingField("status".into()))
        );
        assert_eq!(
            classify(&format!(r#"{{{base},"detail":{{"runId":"1","status":3}}}}"#)).err(),
            Some(invalid("status", "is a number, not a string"))
        );
        assert_eq!(classify(r#"{"detail":{}}"#).err(), Some(Error::MissingField("source".into())));
    }

    #[test]
    fn non_objects_are_named() {
        assert_eq!(classify("[1]").err(), Some(Error::NotAnObject("array")));
        assert_eq!(classify("\"x\"").err(), Some(Error::NotAnObject("string")));
        assert!(matches!(classify("{").err(), Some(Error::InvalidJson(_))));
    }
}
