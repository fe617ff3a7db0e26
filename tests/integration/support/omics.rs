//! A HealthOmics test server speaking the service's REST JSON protocol for the calls the
//! processor makes (`GET /run` (ListRuns), `GET /run/{id}`, `GET /run/{id}/task`), driven by the real
//! aws-sdk-omics client. Requests must be SigV4-signed; task lists honour `maxResults` (at
//! most 100, as the service) and the `status` filter, and come in pages with a
//! `nextToken`. A run's tasks can be listed ones or generated on the fly (for runs of
//! 100,000 tasks).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use super::http::{Request, Response, Server};

/// What the server answers for a run.
#[derive(Clone)]
pub enum Run {
    /// GetRun returns `run`; ListRunTasks returns `tasks`.
    Found { run: Value, tasks: Vec<Value> },
    /// GetRun returns `run`; ListRunTasks lists `count` generated tasks, of which every
    /// `failed_every`-th (when not 0) has the status FAILED.
    Generated { run: Value, count: usize, failed_every: usize },
    /// Both calls fail with this HTTP status and error type.
    Fails { status: u16, error: &'static str },
    /// GetRun succeeds, ListRunTasks fails.
    TasksFail { run: Value, status: u16, error: &'static str },
}

/// ListRunTasks' largest page, as the service's.
pub const MAX_PAGE: usize = 100;

pub struct Omics {
    pub server: Server,
    runs: Arc<Mutex<HashMap<String, Run>>>,
    /// Transient faults: every n-th request fails (0: none).
    fail_every: Arc<AtomicUsize>,
    /// The per-Region quota, when one is set.
    quota: Arc<Mutex<Option<Quota>>>,
}

/// A token bucket of `rate` calls per second, `rate` deep, shared by every call, as
/// HealthOmics' quota for GetRun, ListRunTasks and ListRuns is; beyond it, 429
/// `ThrottlingException`.
struct Quota {
    rate: f64,
    tokens: f64,
    last: std::time::Instant,
    throttled: usize,
}

impl Quota {
    fn take(&mut self) -> bool {
        let now = std::time::Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.last).as_secs_f64() * self.rate).min(self.rate);
        self.last = now;
        let ok = self.tokens >= 1.0;
        if ok {
            self.tokens -= 1.0;
        } else {
            self.throttled += 1;
        }
        ok
    }
}

impl Omics {
    pub async fn start() -> Omics {
        let runs: Arc<Mutex<HashMap<String, Run>>> = Arc::default();
        let fail_every: Arc<AtomicUsize> = Arc::default();
        let quota: Arc<Mutex<Option<Quota>>> = Arc::default();
        let (table, every, count, bucket) =
            (runs.clone(), fail_every.clone(), Arc::new(AtomicUsize::new(0)), quota.clone());
        let server = Server::start(move |req| {
            if bucket.lock().unwrap().as_mut().is_some_and(|q| !q.take()) {
                let throttled = error(429, "ThrottlingException", "Rate exceeded");
                return Box::pin(async move { throttled }) as super::http::BoxFuture;
            }
            let n = count.fetch_add(1, Ordering::SeqCst) + 1;
            let every = every.load(Ordering::SeqCst);
            let fault = (every != 0 && n % every == 0).then(|| match (n / every) % 2 {
                0 => error(429, "ThrottlingException", "Rate exceeded"),
                _ => error(500, "InternalServerException", "transient failure"),
            });
            let listed = (req.method == "GET" && req.path() == "/run").then(|| list_runs(&table.lock().unwrap(), &req));
            let run = run_of(&req).and_then(|id| table.lock().unwrap().get(&id).cloned());
            Box::pin(async move { fault.or(listed).unwrap_or_else(|| answer(run.as_ref(), &req)) })
        })
        .await;
        Omics { server, runs, fail_every, quota }
    }

    /// From now on, at most `rate` calls a second are served (a token bucket, `rate` deep);
    /// the others are throttled.
    pub fn set_quota(&self, rate: f64) {
        *self.quota.lock().unwrap() = Some(Quota { rate, tokens: rate, last: std::time::Instant::now(), throttled: 0 });
    }

    /// How many calls the quota throttled.
    pub fn throttled(&self) -> usize {
        self.quota.lock().unwrap().as_ref().map_or(0, |q| q.throttled)
    }

    /// Every `n`-th request from now on fails transiently (throttled, or a 500, in turn), as
    /// a service under load does; 0 turns that off.
    pub fn fail_every(&self, n: usize) {
        self.fail_every.store(n, Ordering::SeqCst);
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

/// A generated task.
pub fn task(i: usize, failed: bool) -> Value {
    json!({"taskId": format!("{}", 70_000_000 + i), "status": if failed { "FAILED" } else { "COMPLETED" },
           "name": format!("shard_{i}"), "cpus": 2, "memory": 4,
           "creationTime": "2026-03-02T13:03:00Z", "startTime": "2026-03-02T13:05:00Z"})
}

fn error(status: u16, kind: &str, message: &str) -> Response {
    Response::json(status, &json!({ "message": message })).header("x-amzn-errortype", kind)
}

/// ListRuns' items: the runs' ids, statuses, names and times, in pages of `maxResults`
/// (at most 100).
fn list_runs(runs: &HashMap<String, Run>, req: &Request) -> Response {
    let mut listed: Vec<Value> = runs
        .iter()
        .filter_map(|(id, run)| {
            let run = match run {
                Run::Found { run, .. } | Run::Generated { run, .. } | Run::TasksFail { run, .. } => run,
                Run::Fails { .. } => return None,
            };
            let mut item = json!({"id": id});
            for key in ["arn", "status", "name", "workflowId", "creationTime", "startTime", "stopTime"] {
                if let Some(v) = run.get(key) {
                    item[key] = v.clone();
                }
            }
            Some(item)
        })
        .collect();
    listed.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    let size = req.query("maxResults").and_then(|m| m.parse().ok()).unwrap_or(MAX_PAGE).clamp(1, MAX_PAGE);
    let at: usize = req.query("startingToken").and_then(|t| t.parse().ok()).unwrap_or(0);
    let end = (at + size).min(listed.len());
    let mut page = json!({ "items": listed[at.min(end)..end] });
    if end < listed.len() {
        page["nextToken"] = Value::from(end.to_string());
    }
    Response::json(200, &page)
}

fn run_of(req: &Request) -> Option<String> {
    let parts: Vec<&str> = req.path().trim_start_matches('/').split('/').collect();
    match parts.as_slice() {
        ["run", id] | ["run", id, "task"] => Some((*id).to_owned()),
        _ => None,
    }
}

fn answer(run: Option<&Run>, req: &Request) -> Response {
    if req.method != "GET" {
        return error(405, "ValidationException", "method not allowed");
    }
    if !req.header("authorization").is_some_and(|a| a.starts_with("AWS4-HMAC-SHA256 ")) {
        return error(403, "UnrecognizedClientException", "the request is not signed");
    }
    let tasks = req.path().ends_with("/task");
    let Some(id) = run_of(req) else { return error(404, "ResourceNotFoundException", "no such route") };
    match (run, tasks) {
        (None, _) => error(404, "ResourceNotFoundException", &format!("run {id} not found")),
        (Some(Run::Fails { status, error: kind }), _) => error(*status, kind, "failure on request"),
        (Some(Run::TasksFail { status, error: kind, .. }), true) => error(*status, kind, "failure on request"),
        (Some(Run::Found { run, .. } | Run::TasksFail { run, .. } | Run::Generated { run, .. }), false) => {
            Response::json(200, run)
        }
        (Some(Run::Found { tasks, .. }), true) => page(req, tasks.len(), |i| tasks[i].clone()),
        (Some(Run::Generated { count, failed_every, .. }), true) => {
            let failed = |i: usize| *failed_every != 0 && i % failed_every == failed_every - 1;
            page(req, *count, |i| task(i, failed(i)))
        }
    }
}

/// One page of `count` tasks (`item(i)` gives the i-th), filtered by `status` when asked.
fn page(req: &Request, count: usize, item: impl Fn(usize) -> Value) -> Response {
    let size = req.query("maxResults").and_then(|m| m.parse().ok()).unwrap_or(MAX_PAGE).clamp(1, MAX_PAGE);
    let status = req.query("status");
    let mut at: usize = req.query("startingToken").and_then(|t| t.parse().ok()).unwrap_or(0);
    let mut items = Vec::new();
    while at < count && items.len() < size {
        let task = item(at);
        at += 1;
        if status.as_deref().is_none_or(|s| task["status"] == s) {
            items.push(task);
        }
    }
    // The next page starts after the last task looked at; a filtered list that ran out
    // of matches in this page still says where to go on.
    let mut body = json!({ "items": items });
    if at < count {
        body["nextToken"] = Value::from(at.to_string());
    }
    Response::json(200, &body)
}
