//! A Lambda runtime API server (`/2018-06-01/runtime/...`): hands out queued events to the
//! real lambda_runtime loop in the function's process and records what comes back.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::Notify;

use super::http::{Response, Server};

/// What the function answered for one invocation.
#[derive(Debug, Clone)]
pub enum Answer {
    Response(Value),
    Error(Value),
}

#[derive(Default)]
struct State {
    queue: VecDeque<(String, Vec<u8>)>,
    answers: HashMap<String, Answer>,
    init_error: Option<Value>,
    first_next: Option<Instant>,
}

pub struct RuntimeApi {
    pub server: Server,
    state: Arc<Mutex<State>>,
    changed: Arc<Notify>,
}

const PREFIX: &str = "/2018-06-01/runtime";

impl RuntimeApi {
    pub async fn start() -> RuntimeApi {
        let state: Arc<Mutex<State>> = Arc::default();
        let changed = Arc::new(Notify::new());
        let (s, c) = (state.clone(), changed.clone());
        let server = Server::start(move |req| {
            let (state, changed) = (s.clone(), c.clone());
            async move {
                let path = req.path().strip_prefix(PREFIX).unwrap_or_default().to_owned();
                if req.method == "GET" && path == "/invocation/next" {
                    loop {
                        let notified = changed.notified();
                        {
                            let mut st = state.lock().unwrap();
                            st.first_next.get_or_insert_with(Instant::now);
                            if let Some((id, body)) = st.queue.pop_front() {
                                let deadline = std::time::SystemTime::now()
                                    .duration_since(std::time::UNIX_EPOCH)
                                    .unwrap()
                                    .as_millis()
                                    + 900_000;
                                return Response::new(200, body)
                                    .header("content-type", "application/json")
                                    .header("lambda-runtime-aws-request-id", &id)
                                    .header("lambda-runtime-deadline-ms", &deadline.to_string())
                                    .header(
                                        "lambda-runtime-invoked-function-arn",
                                        "arn:aws:lambda:eu-west-1:111122223333:function:omics-run-event-processor",
                                    )
                                    .header(
                                        "lambda-runtime-trace-id",
                                        "Root=1-00000000-000000000000000000000000;Sampled=0",
                                    );
                            }
                        }
                        notified.await;
                    }
                }
                let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
                let mut st = state.lock().unwrap();
                if path == "/init/error" {
                    st.init_error = Some(body);
                } else if let Some(rest) = path.strip_prefix("/invocation/") {
                    match rest.split_once('/') {
                        Some((id, "response")) => {
                            st.answers.insert(id.to_owned(), Answer::Response(body));
                        }
                        Some((id, "error")) => {
                            st.answers.insert(id.to_owned(), Answer::Error(body));
                        }
                        _ => return Response::new(404, "unknown route"),
                    }
                } else {
                    return Response::new(404, "unknown route");
                }
                drop(st);
                changed.notify_waiters();
                Response::new(202, r#"{"status":"OK"}"#)
            }
        })
        .await;
        RuntimeApi { server, state, changed }
    }

    /// `AWS_LAMBDA_RUNTIME_API`: host and port.
    pub fn address(&self) -> String {
        self.server.addr.to_string()
    }

    /// Queues an event under a request id.
    pub fn invoke(&self, id: &str, event: &[u8]) {
        self.state.lock().unwrap().queue.push_back((id.to_owned(), event.to_vec()));
        self.changed.notify_waiters();
    }

    /// Waits for the function's answer to a request.
    pub async fn answer(&self, id: &str, within: Duration) -> Answer {
        let until = Instant::now() + within;
        loop {
            let notified = self.changed.notified();
            if let Some(a) = self.state.lock().unwrap().answers.get(id) {
                return a.clone();
            }
            if tokio::time::timeout_at(until.into(), notified).await.is_err() {
                panic!("no answer for request {id} within {within:?}");
            }
        }
    }

    /// Waits for an init error report.
    pub async fn init_error(&self, within: Duration) -> Option<Value> {
        let until = Instant::now() + within;
        loop {
            let notified = self.changed.notified();
            if let Some(e) = self.state.lock().unwrap().init_error.clone() {
                return Some(e);
            }
            if tokio::time::timeout_at(until.into(), notified).await.is_err() {
                return None;
            }
        }
    }

    /// When the function first asked for an event.
    pub fn first_next(&self) -> Option<Instant> {
        self.state.lock().unwrap().first_next
    }
}
