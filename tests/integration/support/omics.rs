//! A HealthOmics test server speaking the service's REST JSON protocol for the two calls
//! the processor makes (`GET /run/{id}`, `GET /run/{id}/task`), driven by the real
//! aws-sdk-omics client. Requests must be SigV4-signed; task lists come in pages of two.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use super::http::{Request, Response, Server};

/// What the server answers for a run.
#[derive(Clone)]
pub enum Run {
    /// GetRun returns `run`; ListRunTasks returns `tasks`.
    Found { run: Value, tasks: Vec<Value> },
    /// Both calls fail with this HTTP status and error type.
    Fails { status: u16, error: &'static str },
    /// GetRun succeeds, ListRunTasks fails.
    TasksFail { run: Value, status: u16, error: &'static str },
}

/// Page size of ListRunTasks.
pub const PAGE: usize = 2;

pub struct Omics {
    pub server: Server,
    runs: Arc<Mutex<HashMap<String, Run>>>,
}

impl Omics {
    pub async fn start() -> Omics {
        let runs: Arc<Mutex<HashMap<String, Run>>> = Arc::default();
        let table = runs.clone();
        let server = Server::start(move |req| {
            let answer = answer(&table.lock().unwrap(), &req);
            async move { answer }
        })
        .await;
        Omics { server, runs }
    }

    pub fn url(&self) -> String {
        self.server.url()
    }

    pub fn set(&self, id: &str, run: Run) {
        self.runs.lock().unwrap().insert(id.to_owned(), run);
    }

    /// The requests made so far for a path.
    pub fn calls(&self, path: &str) -> usize {
        self.server.requests().iter().filter(|r| r.path() == path).count()
    }
}

fn error(status: u16, kind: &str, message: &str) -> Response {
    Response::json(status, &json!({ "message": message })).header("x-amzn-errortype", kind)
}

fn answer(runs: &HashMap<String, Run>, req: &Request) -> Response {
    if req.method != "GET" {
        return error(405, "ValidationException", "method not allowed");
    }
    if !req.header("authorization").is_some_and(|a| a.starts_with("AWS4-HMAC-SHA256 ")) {
        return error(403, "UnrecognizedClientException", "the request is not signed");
    }
    let parts: Vec<&str> = req.path().trim_start_matches('/').split('/').collect();
    let (id, tasks) = match parts.as_slice() {
        ["run", id] => (*id, false),
        ["run", id, "task"] => (*id, true),
        _ => return error(404, "ResourceNotFoundException", "no such route"),
    };
    match (runs.get(id), tasks) {
        (None, _) => error(404, "ResourceNotFoundException", &format!("run {id} not found")),
        (Some(Run::Fails { status, error: kind }), _) => error(*status, kind, "failure on request"),
        (Some(Run::TasksFail { status, error: kind, .. }), true) => error(*status, kind, "failure on request"),
        (Some(Run::Found { run, .. } | Run::TasksFail { run, .. }), false) => Response::json(200, run),
        (Some(Run::Found { tasks, .. }), true) => {
            let start: usize = req.query("startingToken").and_then(|t| t.parse().ok()).unwrap_or(0);
            let end = (start + PAGE).min(tasks.len());
            let mut page = json!({ "items": tasks[start.min(end)..end] });
            if end < tasks.len() {
                page["nextToken"] = Value::from(end.to_string());
            }
            Response::json(200, &page)
        }
    }
}
