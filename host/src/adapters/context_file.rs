//! The offline enricher: what AWS would return for an event, from a JSON file (`transform
//! --context`, fixture cases, captured inputs): `{"run": <GetRun output>, "tasks":
//! [<ListRunTasks items>], "outputs": <outputs.json>}`, every part optional; and the same
//! file written from what the guest saw (`CAPTURE_INPUTS`).

use serde_json::{Map, Value};

use crate::error::FetchError;
use crate::ports::{Enricher, Fetched};
use crate::sandbox::{Context, TaskList, TaskRequest};

/// What AWS would return for an event, from a JSON file:
/// `{"run": <GetRun output>, "tasks": [<ListRunTasks items>], "outputs": <outputs.json>}`,
/// every part optional. `"outputs_raw": "<text>"` stands for an `outputs.json` that is not
/// JSON. A captured case says exactly what the host fetched: `"tasks_more": true` (the run
/// has more tasks than `tasks` lists), `"tasks_failed": [...]` (the FAILED ones, listed
/// apart), and `"errors": {"run"|"tasks"|"outputs": "<permanent failure>"}`.
#[derive(Debug, Clone, Default)]
pub struct ContextFile {
    run: Option<String>,
    tasks: Option<Vec<Value>>,
    tasks_more: bool,
    tasks_failed: Option<Vec<Value>>,
    outputs: Option<Vec<u8>>,
    errors: Map<String, Value>,
}

const PARTS: [&str; 7] = ["run", "tasks", "tasks_more", "tasks_failed", "outputs", "outputs_raw", "errors"];

impl ContextFile {
    pub fn parse(bytes: &[u8]) -> Result<ContextFile, String> {
        let value: Value = serde_json::from_slice(bytes).map_err(|e| format!("not valid JSON: {e}"))?;
        let Value::Object(mut parts) = value else {
            return Err("not a JSON object".into());
        };
        if let Some(unknown) = parts.keys().find(|k| !PARTS.contains(&k.as_str())) {
            return Err(format!("unknown part `{unknown}` (known: {})", PARTS.join(", ")));
        }
        let run = match parts.remove("run") {
            None | Some(Value::Null) => None,
            Some(run @ Value::Object(_)) => Some(run.to_string()),
            Some(_) => return Err("`run` must be an object (GetRun output)".into()),
        };
        let list = |v: Option<Value>, name: &str| match v {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(items)) => Ok(Some(items)),
            Some(_) => Err(format!("`{name}` must be an array (ListRunTasks items)")),
        };
        let tasks = list(parts.remove("tasks"), "tasks")?;
        let tasks_failed = list(parts.remove("tasks_failed"), "tasks_failed")?;
        let tasks_more = match parts.remove("tasks_more") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(more)) => more,
            Some(_) => return Err("`tasks_more` must be true or false".into()),
        };
        let outputs = match (parts.remove("outputs"), parts.remove("outputs_raw")) {
            (Some(_), Some(_)) => return Err("give `outputs` or `outputs_raw`, not both".into()),
            (Some(v), None) => Some(v.to_string().into_bytes()),
            (None, Some(Value::String(raw))) => Some(raw.into_bytes()),
            (None, Some(_)) => return Err("`outputs_raw` must be a string".into()),
            (None, None) => None,
        };
        let errors = match parts.remove("errors") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(errors))
                if errors.iter().all(|(k, v)| ["run", "tasks", "outputs"].contains(&k.as_str()) && v.is_string()) =>
            {
                errors
            }
            Some(_) => return Err("`errors` must map run, tasks or outputs to a string".into()),
        };
        Ok(ContextFile { run, tasks, tasks_more, tasks_failed, outputs, errors })
    }

    /// The file for what a guest saw: its context, and which fetch each of the context's
    /// errors came from (`run`, `tasks`, `outputs`, in order). Loaded again, it gives the
    /// guest the same context.
    pub fn captured(context: &Context, error_parts: &[&str]) -> Vec<u8> {
        let mut file = Map::new();
        if let Some(run) = context.run.as_deref().and_then(|r| serde_json::from_str::<Value>(r).ok()) {
            file.insert("run".into(), run);
        }
        if let Some(tasks) = &context.tasks {
            let array = |text: &str| serde_json::from_str::<Value>(text).unwrap_or(Value::Array(Vec::new()));
            file.insert("tasks".into(), array(&tasks.items));
            if tasks.more {
                file.insert("tasks_more".into(), Value::Bool(true));
            }
            if let Some(failed) = &tasks.failed {
                file.insert("tasks_failed".into(), array(failed));
            }
        }
        if let Some(outputs) = &context.outputs {
            match serde_json::from_slice::<Value>(outputs) {
                Ok(value) => file.insert("outputs".into(), value),
                Err(_) => file.insert("outputs_raw".into(), String::from_utf8_lossy(outputs).into_owned().into()),
            };
        }
        let errors: Map<String, Value> =
            error_parts.iter().zip(&context.errors).map(|(part, e)| ((*part).to_owned(), e.as_str().into())).collect();
        if !errors.is_empty() {
            file.insert("errors".into(), Value::Object(errors));
        }
        let mut bytes = serde_json::to_vec_pretty(&Value::Object(file)).expect("JSON values serialise");
        bytes.push(b'\n');
        bytes
    }

    /// The permanent failure the file gives for `part`, if any.
    fn failure(&self, part: &str) -> Result<(), FetchError> {
        match self.errors.get(part).and_then(Value::as_str) {
            Some(why) => Err(FetchError::Permanent(why.to_owned())),
            None => Ok(()),
        }
    }
}

impl Enricher for ContextFile {
    async fn run(&self, _run_id: &str) -> Fetched<String> {
        self.failure("run")?;
        Ok(self.run.clone())
    }
    async fn tasks(&self, _run_id: &str, request: TaskRequest) -> Fetched<TaskList> {
        self.failure("tasks")?;
        let Some(all) = &self.tasks else { return Ok(None) };
        let limit = request.limit as usize;
        let more = self.tasks_more || all.len() > limit;
        let first = Value::Array(all.iter().take(limit).cloned().collect());
        let failed = (more && request.failed).then(|| {
            let listed = self.tasks_failed.as_ref().unwrap_or(all);
            let failed = listed.iter().filter(|t| t.get("status").and_then(Value::as_str) == Some("FAILED"));
            Value::Array(failed.take(limit).cloned().collect()).to_string()
        });
        Ok(Some(TaskList { items: first.to_string(), more, failed }))
    }
    async fn outputs(&self, _uri: &str) -> Fetched<Vec<u8>> {
        self.failure("outputs")?;
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

    #[tokio::test]
    async fn a_captured_context_gives_the_guest_the_same_context_again() {
        let context = Context {
            run: Some(r#"{"id":"7","tags":{"WESRunId":"w"}}"#.into()),
            tasks: Some(TaskList {
                items: r#"[{"taskId":"1","status":"COMPLETED"}]"#.into(),
                more: true,
                failed: Some(r#"[{"taskId":"9","status":"FAILED"}]"#.into()),
            }),
            outputs: Some(b"{not json".to_vec()),
            errors: vec!["outputs: access denied".into()],
        };
        let file = ContextFile::parse(&ContextFile::captured(&context, &["outputs"])).unwrap();
        assert_eq!(file.run("7").await.unwrap(), context.run);
        let tasks = file.tasks("7", TaskRequest { limit: 1, failed: true }).await.unwrap().unwrap();
        let want = context.tasks.as_ref().unwrap();
        assert_eq!(
            (tasks.items.as_str(), tasks.more, tasks.failed.as_deref()),
            (want.items.as_str(), true, want.failed.as_deref())
        );
        match file.outputs("s3://b/o").await {
            Err(FetchError::Permanent(why)) => assert_eq!(why, "outputs: access denied"),
            other => panic!("{other:?}"),
        }
        let raw = ContextFile::parse(&ContextFile::captured(&Context { errors: vec![], ..context }, &[])).unwrap();
        assert_eq!(raw.outputs("s3://b/o").await.unwrap().as_deref(), Some(&b"{not json"[..]));
    }
}
