//! A WES API test server that enforces the published contract of the NGS360 WES API's
//! callback, `POST .../internal/callbacks/omics-state-change` (behaviour §3, §7), in either
//! of the service's two generations:
//!
//! - where the route is mounted: the earlier service at its root
//!   (`/internal/callbacks/...`), the current one under its API prefix
//!   (`/ga4gh/wes/v1/internal/callbacks/...`), both below any proxy prefix;
//! - the `X-Internal-API-Key` header: missing is FastAPI's 422, wrong is 401;
//! - a JSON body with the field limits of §3 (422 otherwise; DELETED is not a status);
//!   `event_id` required by the earlier service, optional in the current one;
//! - per WES run, its state and the service's state machine: QUEUED -> INITIALIZING,
//!   RUNNING, CANCELED (and EXECUTOR_ERROR in the current service); INITIALIZING -> RUNNING,
//!   CANCELED, EXECUTOR_ERROR; RUNNING -> COMPLETE, EXECUTOR_ERROR, CANCELED; the same state
//!   is a 200 "No state change", a terminal run a 200 that changes nothing, an event already
//!   processed a 200 (the earlier service remembers every event id, the current one only
//!   the last of each run), any other move a 400; an unknown run a 404 that names it;
//! - any other path: the framework's 404 `{"detail": "Not Found"}`.
//!
//! It can also be told to fail (500) or hang, to play a WES API that is down.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use super::http::{Request, Response, Server};

/// How the server behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Normal,
    /// 500 to everything.
    Broken,
    /// Never answers.
    Hang,
    /// 400 to every state change (a run the server will not move).
    Stuck,
}

pub const PATH: &str = "/internal/callbacks/omics-state-change";
/// The current service's API prefix, which its callback route is under.
pub const API_PREFIX: &str = "/ga4gh/wes/v1";

/// Which generation of the service: where it mounts the route, and its state rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Generation {
    /// The route at the root; QUEUED -> COMPLETE or EXECUTOR_ERROR is a 400; `event_id`
    /// required; every processed event id remembered.
    Earlier,
    /// The route under `/ga4gh/wes/v1`; QUEUED -> EXECUTOR_ERROR allowed; `event_id`
    /// optional; only each run's last event id remembered. It tags runs with
    /// `callback_url` = `{origin}/ga4gh/wes/v1/internal/callbacks/omics-state-change`.
    Current,
}
const STATUSES: [&str; 11] = [
    "COMPLETED",
    "FAILED",
    "CANCELLED",
    "RUNNING",
    "STARTING",
    "PENDING",
    "STOPPING",
    "QUEUED",
    "INITIALIZING",
    "CANCELING",
    "UNKNOWN",
];

#[derive(Default)]
struct State {
    mode: Option<Mode>,
    /// WES run id to its state.
    runs: HashMap<String, &'static str>,
    /// Event ids already processed (the earlier service).
    seen: HashSet<String>,
    /// Each run's last processed event id (the current service).
    last_event: HashMap<String, String>,
    /// Bodies answered with a 2xx.
    accepted: Vec<Value>,
    /// Every state a run went through, in order.
    history: Vec<(String, &'static str)>,
}

pub struct Wes {
    pub server: Server,
    pub generation: Generation,
    prefix: String,
    state: Arc<Mutex<State>>,
}

/// The WES runs the tests' events name (the fixtures' `WESRunId` tags, and the pipeline
/// tests' run).
fn known_runs() -> Vec<String> {
    let mut runs = vec![crate::pipeline::WES_RUN.to_owned()];
    for f in super::Fixture::all() {
        if let Some(id) = f.context.pointer("/run/tags/WESRunId").and_then(Value::as_str) {
            runs.push(id.to_owned());
        }
    }
    runs
}

impl Wes {
    /// The earlier service, its route at the root of its URL, where the tests' WES runs are
    /// RUNNING (as if their RUNNING events had been delivered); `submit` queues a run afresh.
    pub async fn start(key: &str) -> Wes {
        Wes::start_gen(key, Generation::Earlier).await
    }

    /// A service of `generation` at the root of its URL.
    pub async fn start_gen(key: &str, generation: Generation) -> Wes {
        Wes::start_with(key, "", None, generation).await
    }

    /// The earlier service, which a proxy mounts under `prefix` (such as `/wes`).
    pub async fn start_under(key: &str, prefix: &str) -> Wes {
        Wes::start_with(key, prefix, None, Generation::Earlier).await
    }

    /// The earlier service at the root of an `https` URL, with the certificate (chain) of `tls`.
    pub async fn start_tls(key: &str, tls: Arc<rustls::ServerConfig>) -> Wes {
        Wes::start_with(key, "", Some(tls), Generation::Earlier).await
    }

    async fn start_with(
        key: &str,
        prefix: &str,
        tls: Option<Arc<rustls::ServerConfig>>,
        generation: Generation,
    ) -> Wes {
        let state: Arc<Mutex<State>> = Arc::default();
        state.lock().unwrap().runs = known_runs().into_iter().map(|r| (r, "RUNNING")).collect();
        let mount = match generation {
            Generation::Earlier => prefix.to_owned(),
            Generation::Current => format!("{prefix}{API_PREFIX}"),
        };
        let (st, key, route) = (state.clone(), key.to_owned(), format!("{mount}{PATH}"));
        let server = Server::start_with(
            move |req| {
                let (st, key, route) = (st.clone(), key.clone(), route.clone());
                async move {
                    let mode = st.lock().unwrap().mode.unwrap_or(Mode::Normal);
                    if mode == Mode::Hang {
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                    }
                    answer(&req, &key, &route, mode, generation, &mut st.lock().unwrap())
                }
            },
            tls,
        )
        .await;
        Wes { server, generation, prefix: prefix.to_owned(), state }
    }

    /// The `API_SERVER` value its documentation gives: the base URL for the earlier
    /// service, the API's URL (`.../ga4gh/wes/v1`) for the current one.
    pub fn api_server(&self) -> String {
        match self.generation {
            Generation::Earlier => self.root(),
            Generation::Current => format!("{}{API_PREFIX}", self.root()),
        }
    }

    /// The service's base URL, below any proxy prefix.
    pub fn root(&self) -> String {
        format!("{}{}", self.server.url(), self.prefix)
    }

    /// The URL the service answers callbacks at.
    pub fn callback_url(&self) -> String {
        match self.generation {
            Generation::Earlier => format!("{}{PATH}", self.root()),
            Generation::Current => format!("{}{API_PREFIX}{PATH}", self.root()),
        }
    }

    /// The `callback_url` tag the current service puts on the runs it submits
    /// (`{CLIENT_ORIGIN}/ga4gh/wes/v1/internal/callbacks/omics-state-change`); the earlier
    /// service tags none.
    pub fn tag(&self) -> Option<String> {
        (self.generation == Generation::Current).then(|| self.callback_url())
    }

    /// Requests that reached the callback route.
    pub fn callbacks(&self) -> usize {
        let route = self.callback_url();
        let path = route.strip_prefix(&self.server.url()).unwrap_or_default().to_owned();
        self.server.requests().iter().filter(|r| r.path() == path).count()
    }

    /// Submits a WES run: it is QUEUED until a callback moves it.
    pub fn submit(&self, wes_run_id: &str) {
        self.state.lock().unwrap().runs.insert(wes_run_id.to_owned(), "QUEUED");
    }

    /// A run's state.
    pub fn run_state(&self, wes_run_id: &str) -> Option<&'static str> {
        self.state.lock().unwrap().runs.get(wes_run_id).copied()
    }

    /// The states a run went through, in order.
    pub fn history(&self, wes_run_id: &str) -> Vec<&'static str> {
        self.state.lock().unwrap().history.iter().filter(|(r, _)| r == wes_run_id).map(|(_, s)| *s).collect()
    }

    pub fn set_mode(&self, mode: Mode) {
        self.state.lock().unwrap().mode = Some(mode);
    }

    /// Bodies the server answered with a 2xx.
    pub fn accepted(&self) -> Vec<Value> {
        self.state.lock().unwrap().accepted.clone()
    }
}

/// A run status in the service's WES states.
fn wes_state(status: &str) -> Option<&'static str> {
    Some(match status {
        "PENDING" | "STARTING" | "RUNNING" | "STOPPING" => "RUNNING",
        "COMPLETED" => "COMPLETE",
        "FAILED" => "EXECUTOR_ERROR",
        "CANCELLED" => "CANCELED",
        _ => return None,
    })
}

fn allowed(generation: Generation, from: &str, to: &str) -> bool {
    matches!(
        (from, to),
        ("QUEUED", "INITIALIZING" | "RUNNING" | "CANCELED")
            | ("INITIALIZING", "RUNNING" | "CANCELED" | "EXECUTOR_ERROR")
            | ("RUNNING", "COMPLETE" | "EXECUTOR_ERROR" | "CANCELED")
    ) || (generation == Generation::Current && (from, to) == ("QUEUED", "EXECUTOR_ERROR"))
}

fn answer(req: &Request, key: &str, route: &str, mode: Mode, generation: Generation, st: &mut State) -> Response {
    if req.method != "POST" || req.path() != route {
        return Response::json(404, &json!({"detail": "Not Found"}));
    }
    match req.header("x-internal-api-key") {
        None => {
            return Response::json(
                422,
                &json!({"detail": [{"type": "missing", "loc": ["header", "x-internal-api-key"], "msg": "Field required"}]}),
            );
        }
        Some(k) if k != key => return Response::json(401, &json!({"detail": "Invalid internal API key"})),
        Some(_) => {}
    }
    if mode == Mode::Broken {
        return Response::json(500, &json!({"detail": "Internal Server Error"}));
    }
    if !req.header("content-type").is_some_and(|c| c.starts_with("application/json")) {
        return Response::json(415, &json!({"detail": "expected application/json"}));
    }
    let body: Value = match serde_json::from_slice(&req.body) {
        Ok(v @ Value::Object(_)) => v,
        _ => return Response::json(422, &json!({"detail": "body is not a JSON object"})),
    };
    if generation == Generation::Earlier && body.get("event_id").is_none() {
        return Response::json(422, &json!({"detail": [{"msg": "event_id: Field required"}]}));
    }
    if let Err(problem) = validate(&body) {
        return Response::json(422, &json!({"detail": [{"msg": problem}]}));
    }
    let run = body["wes_run_id"].as_str().unwrap().to_owned();
    let Some(current) = st.runs.get(&run).copied() else {
        return Response::json(404, &json!({"detail": format!("Workflow run {run} not found")}));
    };
    let event_id = body.get("event_id").and_then(Value::as_str).map(str::to_owned);
    let repeat = event_id.as_ref().is_some_and(|e| match generation {
        Generation::Earlier => st.seen.contains(e),
        Generation::Current => st.last_event.get(&run) == Some(e),
    });
    if repeat {
        st.accepted.push(body);
        return Response::json(200, &json!({"message": "Event already processed"}));
    }
    if mode == Mode::Stuck {
        return Response::json(400, &json!({"detail": format!("Invalid state transition from {current} (stuck)")}));
    }
    let Some(to) = wes_state(body["status"].as_str().unwrap()) else {
        return Response::json(422, &json!({"detail": [{"msg": "status: not a run status the service maps"}]}));
    };
    let message = if matches!(current, "COMPLETE" | "EXECUTOR_ERROR" | "CANCELED") {
        "Run already in a terminal state"
    } else if current == to {
        "No state change"
    } else if allowed(generation, current, to) {
        st.runs.insert(run.clone(), to);
        st.history.push((run.clone(), to));
        "State updated"
    } else {
        return Response::json(400, &json!({"detail": format!("Invalid state transition from {current} to {to}")}));
    };
    if let Some(e) = event_id {
        st.last_event.insert(run.clone(), e.clone());
        st.seen.insert(e);
    }
    st.accepted.push(body);
    Response::json(200, &json!({"message": message, "state": st.runs[&run]}))
}

fn validate(body: &Value) -> Result<(), String> {
    let text = |k: &str| body.get(k).and_then(Value::as_str);
    let len = |k: &str| text(k).map(|s| s.chars().count());
    match len("omics_run_id") {
        Some(1..=50) => {}
        _ => return Err("omics_run_id: 1 to 50 characters".into()),
    }
    if len("wes_run_id") != Some(36) {
        return Err("wes_run_id: exactly 36 characters".into());
    }
    if body.get("event_id").is_some() && !matches!(len("event_id"), Some(1..=100)) {
        return Err("event_id: 1 to 100 characters".into());
    }
    if !text("status").is_some_and(|s| STATUSES.contains(&s)) {
        return Err(format!("status: not one of {STATUSES:?}"));
    }
    if body.get("status_message").is_some() && !matches!(len("status_message"), Some(0..=1000)) {
        return Err("status_message: at most 1000 characters".into());
    }
    if body.get("failure_reason").is_some() && !matches!(len("failure_reason"), Some(0..=2000)) {
        return Err("failure_reason: at most 2000 characters".into());
    }
    Ok(())
}
