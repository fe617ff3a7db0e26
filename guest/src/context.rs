//! What the host fetched, read back from the JSON the host passed (GetRun output, the
//! ListRunTasks items). These documents come from the host, so a shape that breaks the
//! contract is an error, not an enrichment failure.

#[allow(unused_imports)]
use crate::prelude::*;

use serde_json::{Map, Value};

use crate::json::{self, ParseError};
use crate::model::Error;

/// A run as GetRun describes it.
pub struct Run {
    fields: Map<String, Value>,
}

impl Run {
    /// Parses the GetRun JSON.
    pub fn parse(text: &str) -> Result<Run, Error> {
        match parse(text, "run")? {
            Value::Object(fields) => Ok(Run { fields }),
            other => Err(Error::InvalidContext(format!("run is a JSON {}, not an object", json::kind(&other)))),
        }
    }

    /// A non-empty string field.
    pub fn str(&self, key: &str) -> Option<&str> {
        self.fields.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
    }

    /// The run's tags.
    pub fn tags(&self) -> Option<&Map<String, Value>> {
        self.fields.get("tags").and_then(Value::as_object)
    }

    /// The log group named by `logLocation.runLogStream`, an ARN such as
    /// `arn:aws:logs:eu-west-1:1:log-group:/aws/omics/WorkflowLog:log-stream:run/1`.
    pub fn log_group(&self) -> Option<&str> {
        let arn = self.fields.get("logLocation")?.get("runLogStream")?.as_str()?;
        let (_, rest) = arn.split_once(":log-group:")?;
        let group = rest.split_once(":log-stream:").map_or(rest, |(group, _)| group);
        (!group.is_empty()).then_some(group)
    }
}

/// A task from ListRunTasks.
pub struct Task<'a> {
    pub id: &'a str,
    pub name: Option<&'a str>,
}

/// Parses the ListRunTasks items the host collected.
pub fn parse_tasks(text: &str) -> Result<Vec<Value>, Error> {
    match parse(text, "tasks")? {
        Value::Array(items) => Ok(items),
        other => Err(Error::InvalidContext(format!("tasks is a JSON {}, not an array", json::kind(&other)))),
    }
}

/// The tasks that have an id, in list order.
pub fn tasks(items: &[Value]) -> Vec<Task<'_>> {
    items
        .iter()
        .filter_map(|item| {
            let id = item.get("taskId")?.as_str().filter(|s| !s.is_empty())?;
            let name = item.get("name").and_then(Value::as_str).filter(|s| !s.is_empty());
            Some(Task { id, name })
        })
        .collect()
}

fn parse(text: &str, what: &str) -> Result<Value, Error> {
    json::parse(text.as_bytes()).map_err(|e| match e {
        ParseError::TooDeep => Error::InvalidContext(format!("{what} nests too deep")),
        ParseError::Invalid(m) => Error::InvalidContext(format!("{what} is not valid JSON: {m}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_group_comes_from_the_run_log_stream_arn() {
        let run = Run::parse(
            r#"{"logLocation":{"runLogStream":"arn:aws:logs:eu-west-1:1:log-group:/custom/Group:log-stream:run/1"}}"#,
        )
        .unwrap();
        assert_eq!(run.log_group(), Some("/custom/Group"));
        let bare = Run::parse(r#"{"logLocation":{"runLogStream":"arn:aws:logs:eu-west-1:1:log-group:/g"}}"#).unwrap();
        assert_eq!(bare.log_group(), Some("/g"));
        assert_eq!(Run::parse("{}").unwrap().log_group(), None);
    }

    #[test]
    fn contract_breaches_are_context_errors() {
        assert!(matches!(Run::parse("[]"), Err(Error::InvalidContext(_))));
        assert!(matches!(Run::parse("{"), Err(Error::InvalidContext(_))));
        assert!(matches!(parse_tasks("{}"), Err(Error::InvalidContext(_))));
    }

    #[test]
    fn tasks_without_an_id_are_skipped() {
        let items = parse_tasks(r#"[{"taskId":"1","name":"a"},{"name":"b"},{"taskId":"3"}]"#).unwrap();
        let t = tasks(&items);
        assert_eq!(t.len(), 2);
        assert_eq!((t[0].id, t[0].name), ("1", Some("a")));
        assert_eq!((t[1].id, t[1].name), ("3", None));
    }
}
