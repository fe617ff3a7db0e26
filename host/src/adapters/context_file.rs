//! The offline enricher: what AWS would return for an event, from a JSON file (`transform
//! --context`, fixture cases): `{"run": <GetRun output>, "tasks": [<ListRunTasks items>],
//! "outputs": <outputs.json>}`, every part optional.

use serde_json::Value;

use crate::ports::{Enricher, Fetched};
use crate::sandbox::{TaskList, TaskRequest};

/// What AWS would return for an event, from a JSON file:
/// `{"run": <GetRun output>, "tasks": [<ListRunTasks items>], "outputs": <outputs.json>}`,
/// every part optional. `"outputs_raw": "<text>"` stands for an `outputs.json` that is not
/// JSON at all.
#[derive(Debug, Clone, Default)]
pub struct ContextFile {
    run: Option<String>,
    /// Every task of the run, as ListRunTasks would list them (over all pages).
    tasks: Option<Vec<Value>>,
    outputs: Option<Vec<u8>>,
}

impl ContextFile {
    /// Reads a context document.
    pub fn parse(bytes: &[u8]) -> Result<ContextFile, String> {
        let value: Value = serde_json::from_slice(bytes).map_err(|e| format!("not valid JSON: {e}"))?;
        let Value::Object(mut parts) = value else {
            return Err("not a JSON object".into());
        };
        let known = ["run", "tasks", "outputs", "outputs_raw"];
        if let Some(unknown) = parts.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(format!("unknown part `{unknown}` (known: run, tasks, outputs, outputs_raw)"));
        }
        let run = match parts.remove("run") {
            None | Some(Value::Null) => None,
            Some(run @ Value::Object(_)) => Some(run.to_string()),
            Some(_) => return Err("`run` must be an object (GetRun output)".into()),
        };
        let tasks = match parts.remove("tasks") {
            None | Some(Value::Null) => None,
            Some(Value::Array(tasks)) => Some(tasks),
            Some(_) => return Err("`tasks` must be an array (ListRunTasks items)".into()),
        };
        let outputs = match (parts.remove("outputs"), parts.remove("outputs_raw")) {
            (Some(_), Some(_)) => return Err("give `outputs` or `outputs_raw`, not both".into()),
            (Some(v), None) => Some(v.to_string().into_bytes()),
            (None, Some(Value::String(raw))) => Some(raw.into_bytes()),
            (None, Some(_)) => return Err("`outputs_raw` must be a string".into()),
            (None, None) => None,
        };
        Ok(ContextFile { run, tasks, outputs })
    }
}

impl Enricher for ContextFile {
    async fn run(&self, _run_id: &str) -> Fetched<String> {
        Ok(self.run.clone())
    }
    /// The same bounds as HealthOmics' adapter: the first `limit` tasks, whether there are
    /// more, and (when asked and there are more) the first `limit` FAILED ones.
    async fn tasks(&self, _run_id: &str, request: TaskRequest) -> Fetched<TaskList> {
        let Some(all) = &self.tasks else { return Ok(None) };
        let limit = request.limit as usize;
        let more = all.len() > limit;
        let first = Value::Array(all.iter().take(limit).cloned().collect());
        let failed = (more && request.failed).then(|| {
            let failed = all.iter().filter(|t| t.get("status").and_then(Value::as_str) == Some("FAILED"));
            Value::Array(failed.take(limit).cloned().collect()).to_string()
        });
        Ok(Some(TaskList { items: first.to_string(), more, failed }))
    }
    async fn outputs(&self, _uri: &str) -> Fetched<Vec<u8>> {
        Ok(self.outputs.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_parts_are_optional_and_checked() {
        let c = ContextFile::parse(br#"{"run":{"tags":{}},"tasks":[],"outputs":{"a":"s3://x"}}"#).unwrap();
        assert_eq!(c.run.as_deref(), Some(r#"{"tags":{}}"#));
        assert_eq!(c.tasks, Some(vec![]));
        assert_eq!(c.outputs.as_deref(), Some(&br#"{"a":"s3://x"}"#[..]));
        assert!(ContextFile::parse(b"{}").unwrap().run.is_none());
        assert!(ContextFile::parse(br#"{"runs":{}}"#).unwrap_err().contains("unknown part `runs`"));
        assert!(ContextFile::parse(br#"{"tasks":{}}"#).is_err());
        assert!(ContextFile::parse(b"[]").is_err());
        let raw = ContextFile::parse(br#"{"outputs_raw":"not json"}"#).unwrap();
        assert_eq!(raw.outputs.as_deref(), Some(&b"not json"[..]));
    }

    #[tokio::test]
    async fn tasks_are_bounded_like_healthomics_lists_them() {
        let tasks: Vec<Value> = (0..5)
            .map(|i| serde_json::json!({"taskId": i.to_string(), "status": if i % 2 == 1 { "FAILED" } else { "COMPLETED" }}))
            .collect();
        let c = ContextFile { tasks: Some(tasks), ..ContextFile::default() };
        let list = c.tasks("1", TaskRequest { limit: 2, failed: true }).await.unwrap().unwrap();
        assert_eq!(list.items, r#"[{"taskId":"0","status":"COMPLETED"},{"taskId":"1","status":"FAILED"}]"#);
        assert!(list.more);
        assert_eq!(
            list.failed.as_deref(),
            Some(r#"[{"taskId":"1","status":"FAILED"},{"taskId":"3","status":"FAILED"}]"#)
        );
        let all = c.tasks("1", TaskRequest { limit: 5, failed: true }).await.unwrap().unwrap();
        assert!(!all.more && all.failed.is_none());
    }
}
