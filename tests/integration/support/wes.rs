//! A WES API test server that enforces the published contract of
//! `POST {prefix}/internal/callbacks/omics-state-change`: the `X-Internal-API-Key` header
//! (403 on a wrong or missing key), a JSON body, and the field limits of behaviour §3
//! (422 when broken). It can be told to answer 400, 404, 500, or to hang.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use super::http::{Request, Response, Server};

/// How the server behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Normal,
    /// 400: invalid state transition.
    Transition,
    /// 404: unknown WES run.
    NotFound,
    /// 500.
    Broken,
    /// Never answers.
    Hang,
}

pub const PREFIX: &str = "/ga4gh/wes/v1";
pub const PATH: &str = "/ga4gh/wes/v1/internal/callbacks/omics-state-change";
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

pub struct Wes {
    pub server: Server,
    mode: Arc<Mutex<Mode>>,
    accepted: Arc<Mutex<Vec<Value>>>,
}

impl Wes {
    pub async fn start(key: &str) -> Wes {
        let mode = Arc::new(Mutex::new(Mode::Normal));
        let accepted: Arc<Mutex<Vec<Value>>> = Arc::default();
        let (m, a, key) = (mode.clone(), accepted.clone(), key.to_owned());
        let server = Server::start(move |req| {
            let (m, a, key) = (m.clone(), a.clone(), key.clone());
            async move {
                let mode = *m.lock().unwrap();
                if mode == Mode::Hang {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                }
                answer(&req, &key, mode, &a)
            }
        })
        .await;
        Wes { server, mode, accepted }
    }

    /// The `API_SERVER` value: the server's URL with the WES path prefix.
    pub fn api_server(&self) -> String {
        format!("{}{PREFIX}", self.server.url())
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    /// Bodies the server accepted (2xx).
    pub fn accepted(&self) -> Vec<Value> {
        self.accepted.lock().unwrap().clone()
    }
}

fn answer(req: &Request, key: &str, mode: Mode, accepted: &Mutex<Vec<Value>>) -> Response {
    if req.method != "POST" || req.path() != PATH {
        return Response::json(404, &json!({"detail": "Not Found"}));
    }
    if req.header("x-internal-api-key") != Some(key) {
        return Response::json(403, &json!({"detail": "Invalid or missing internal API key"}));
    }
    if !req.header("content-type").is_some_and(|c| c.starts_with("application/json")) {
        return Response::json(415, &json!({"detail": "expected application/json"}));
    }
    let body: Value = match serde_json::from_slice(&req.body) {
        Ok(v @ Value::Object(_)) => v,
        _ => return Response::json(422, &json!({"detail": "body is not a JSON object"})),
    };
    if let Err(problem) = validate(&body) {
        return Response::json(422, &json!({"detail": [{"msg": problem}]}));
    }
    match mode {
        Mode::Normal => {
            accepted.lock().unwrap().push(body);
            Response::json(200, &json!({"status": "ok"}))
        }
        Mode::Transition => {
            Response::json(400, &json!({"detail": "Invalid state transition from COMPLETED to RUNNING"}))
        }
        Mode::NotFound => Response::json(404, &json!({"detail": "WES run not found"})),
        Mode::Broken => Response::json(500, &json!({"detail": "Internal Server Error"})),
        Mode::Hang => unreachable!(),
    }
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
