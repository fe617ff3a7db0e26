//! The burst bench (`bench/burst.sh`): N runs finishing at once against HealthOmics' small
//! API quota, and what one reconcile costs over many retained runs.
//!
//!     cargo run --release --example burst -- [--runs N] [--tasks K] [--tps T]
//!         [--concurrency C] [--reserved R] [--delivery direct|queue]
//!         [--latency OMICS,S3,WES] [--binary PATH] [--env K=V]...
//!     cargo run --release --example burst -- --reconcile 1000,10000,100000 [--twice]
//!
//! Everything is on loopback and runs offline:
//!
//! - HealthOmics: GetRun, ListRunTasks (pages of at most 100) and ListRuns behind one token
//!   bucket of T transactions per second (burst T), shared by every call of every
//!   instance, as the service's per-Region quota is; beyond it, HTTP 429
//!   `ThrottlingException`, as the service answers.
//! - S3 (path style, in memory) and the WES API (200 to every callback).
//! - `--latency` (milliseconds): how long HealthOmics, S3 and the WES API take to answer
//!   each request (none by default: loopback).
//! - Lambda's asynchronous invocation, modelled from its documentation: every event is
//!   queued at once; an event starts on an idle instance, or on a new one (a real process of
//!   the function, in Lambda mode, each with its own runtime API: a cold start) while fewer
//!   than min(C, R) run; otherwise it is throttled and Lambda tries it again after 1 s,
//!   then 2, 4, ... up to 5 minutes (each interval jittered by +-J, 50% unless
//!   `--lambda-jitter` says; Lambda documents the growth, not the jitter), for up to 6
//!   hours, without spending its retries. An invocation that fails is retried after 1
//!   minute, then 2 (`MaximumRetryAttempts` 2), then it is a dead letter.
//! - With `--delivery queue`, the template's default: the run event queue and its event
//!   source mapping, modelled from their documentation. Every event is a visible message
//!   at once; the mapping hands one (a batch of one, in SQS's event shape) to an idle
//!   instance, or to a new one, as soon as fewer than min(C, R) invocations run and fewer
//!   than its scaling allows (5 at first, 5 more each second: 300 a minute). A message
//!   whose invocation failed (or named it in `batchItemFailures`) is visible again after
//!   the time the function asked for with ChangeMessageVisibility (served here), else
//!   after the queue's visibility timeout (960 s); at its third receive it is a dead
//!   letter. Nothing is throttled: what waits, waits in the queue.
//!
//! It prints one row: drain time (from the burst to the last event done), the quota's floor
//! (HealthOmics calls served / T), calls per event, throttled calls, failed invocations,
//! dead letters, cold starts, invocation duration p50 and p99, and billed GB-seconds at
//! `--memory` MB (the template's 128 by default; init time not included).

#[allow(dead_code)]
#[path = "../../tests/integration/support/http.rs"]
mod http;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use http::{Request, Response, Server};
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc};

const KEY: &str = "burst-callback-key";

/// The per-Region quota: a token bucket of `rate` per second, `burst` deep.
struct Quota {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
    /// Calls served and throttled, by kind: GetRun, ListRunTasks, ListRuns.
    served: [u64; 3],
    throttled: [u64; 3],
}

impl Quota {
    fn new(rate: f64) -> Quota {
        Quota { rate, burst: rate, tokens: rate, last: Instant::now(), served: [0; 3], throttled: [0; 3] }
    }

    fn take(&mut self, kind: usize) -> bool {
        let now = Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.last).as_secs_f64() * self.rate).min(self.burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            self.served[kind] += 1;
            true
        } else {
            self.throttled[kind] += 1;
            false
        }
    }
}

/// The runs HealthOmics holds.
#[derive(Clone, Copy)]
enum Runs {
    /// `n` COMPLETED runs of `tasks` tasks each, finished a minute ago.
    Burst { n: usize, tasks: usize },
    /// `n` retained runs, of which every `changed_every`-th finished half an hour ago and the
    /// others ten days ago; `tasks` tasks each.
    Retained { n: usize, changed_every: usize, tasks: usize },
}

const FIRST_RUN: usize = 5_000_000;

fn iso(t: SystemTime) -> String {
    aws_sdk_omics::primitives::DateTime::from(t).fmt(aws_sdk_omics::primitives::DateTimeFormat::DateTime).unwrap()
}

impl Runs {
    fn count(&self) -> usize {
        match *self {
            Runs::Burst { n, .. } | Runs::Retained { n, .. } => n,
        }
    }

    fn tasks(&self) -> usize {
        match *self {
            Runs::Burst { tasks, .. } | Runs::Retained { tasks, .. } => tasks,
        }
    }

    /// When run `i` stopped.
    fn stop(&self, i: usize, epoch: SystemTime) -> SystemTime {
        match *self {
            Runs::Burst { .. } => epoch - Duration::from_secs(60),
            Runs::Retained { changed_every, .. } if i.is_multiple_of(changed_every) => {
                epoch - Duration::from_secs(1800)
            }
            Runs::Retained { .. } => epoch - Duration::from_secs(10 * 86_400),
        }
    }

    fn summary(&self, i: usize, epoch: SystemTime) -> Value {
        let id = (FIRST_RUN + i).to_string();
        let stop = self.stop(i, epoch);
        json!({"arn": format!("arn:aws:omics:eu-west-1:111122223333:run/{id}"), "id": id, "status": "COMPLETED",
               "name": format!("run-{id}"), "workflowId": "1234567",
               "creationTime": iso(stop - Duration::from_secs(7200)), "startTime": iso(stop - Duration::from_secs(7000)),
               "stopTime": iso(stop)})
    }

    fn described(&self, i: usize, epoch: SystemTime) -> Value {
        let mut run = self.summary(i, epoch);
        let id = run["id"].as_str().unwrap().to_owned();
        run["uuid"] = format!("0c9e6a1e-0000-4000-8000-{:012}", i).into();
        run["runOutputUri"] = format!("s3://bench-out/runs/{id}").into();
        run["outputUri"] = "s3://bench-out/runs".into();
        run["tags"] = json!({"WESRunId": format!("{:08x}-0000-4000-8000-000000000022", i), "Project": "burst"});
        run
    }

    fn index(&self, id: &str) -> Option<usize> {
        id.parse::<usize>().ok()?.checked_sub(FIRST_RUN).filter(|i| *i < self.count())
    }
}

fn throttled() -> Response {
    Response::json(429, &json!({"message": "Rate exceeded"})).header("x-amzn-errortype", "ThrottlingException")
}

/// HealthOmics' answer to `req`, behind the quota.
fn omics_answer(req: &Request, runs: Runs, epoch: SystemTime, quota: &Mutex<Quota>) -> Response {
    let path = req.path().to_owned();
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let kind = match parts.as_slice() {
        ["run"] => 2,
        ["run", _] => 0,
        ["run", _, "task"] => 1,
        _ => return Response::json(404, &json!({"message": "no route"})),
    };
    if !quota.lock().unwrap().take(kind) {
        return throttled();
    }
    let size = req.query("maxResults").and_then(|m| m.parse().ok()).unwrap_or(100usize).clamp(1, 100);
    let at: usize = req.query("startingToken").and_then(|t| t.parse().ok()).unwrap_or(0);
    let page = |count: usize, item: &dyn Fn(usize) -> Value| {
        let end = (at + size).min(count);
        let mut body = json!({"items": (at.min(end)..end).map(item).collect::<Vec<_>>()});
        if end < count {
            body["nextToken"] = end.to_string().into();
        }
        Response::json(200, &body)
    };
    if kind == 2 {
        return page(runs.count(), &|i| runs.summary(i, epoch));
    }
    let Some(i) = runs.index(parts[1]) else {
        return Response::json(404, &json!({"message": "run not found"}))
            .header("x-amzn-errortype", "ResourceNotFoundException");
    };
    if kind == 0 {
        return Response::json(200, &runs.described(i, epoch));
    }
    let failed_only = req.query("status").is_some_and(|s| s == "FAILED");
    if failed_only {
        return Response::json(200, &json!({"items": []}));
    }
    let run = FIRST_RUN + i;
    page(
        runs.tasks(),
        &|t| json!({"taskId": format!("{run}{t:05}"), "name": format!("shard_{t}"), "status": "COMPLETED", "cpus": 2, "memory": 4}),
    )
}

/// S3, path style, in memory; every run's `logs/outputs.json` exists.
fn s3_answer(req: &Request, objects: &Mutex<HashMap<String, Vec<u8>>>) -> Response {
    let path = req.path().to_owned();
    let not_found =
        || Response::new(404, "<Error><Code>NoSuchKey</Code></Error>").header("content-type", "application/xml");
    match req.method.as_str() {
        "GET" | "HEAD" => {
            if path.starts_with("/bench-out/") && path.ends_with("/logs/outputs.json") {
                let body =
                    json!({"bam": {"location": format!("s3:/{}", path.replace("/logs/outputs.json", "/out.bam"))}});
                return Response::new(200, body.to_string()).header("etag", "\"o\"");
            }
            match objects.lock().unwrap().get(&path) {
                Some(body) => Response::new(200, body.clone()).header("etag", "\"e\""),
                None => not_found(),
            }
        }
        "PUT" => {
            let mut objects = objects.lock().unwrap();
            if req.header("if-none-match") == Some("*") && objects.contains_key(&path) {
                return Response::new(412, "<Error><Code>PreconditionFailed</Code></Error>")
                    .header("content-type", "application/xml");
            }
            objects.insert(path, req.body.clone());
            Response::new(200, "").header("etag", "\"e\"")
        }
        _ => Response::new(405, ""),
    }
}

struct Peers {
    omics: Server,
    s3: Server,
    wes: Server,
    /// SQS's ChangeMessageVisibility, for the run event queue.
    sqs: Server,
    quota: Arc<Mutex<Quota>>,
    /// The visibility timeout the function asked for, by receipt handle.
    hidden: Arc<Mutex<HashMap<String, u64>>>,
}

/// SQS's answer to ChangeMessageVisibility (AWS JSON 1.0): the new timeout is noted.
fn sqs_answer(req: &Request, hidden: &Mutex<HashMap<String, u64>>) -> Response {
    let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
    let target = req.header("x-amz-target").unwrap_or_default();
    match (target, body["ReceiptHandle"].as_str(), body["VisibilityTimeout"].as_u64()) {
        ("AmazonSQS.ChangeMessageVisibility", Some(receipt), Some(seconds)) => {
            hidden.lock().unwrap().insert(receipt.to_owned(), seconds);
            Response::new(200, "{}").header("content-type", "application/x-amz-json-1.0")
        }
        _ => Response::json(400, &json!({"__type": "com.amazonaws.sqs#InvalidAction", "message": target}))
            .header("x-amzn-query-error", "InvalidAction;Sender"),
    }
}

/// How long HealthOmics, S3 and the WES API take to answer (zero on loopback; `--latency`
/// gives an AWS region's and a WES service's).
#[derive(Clone, Copy, Default)]
struct Latency {
    omics: Duration,
    s3: Duration,
    wes: Duration,
}

async fn peers(runs: Runs, tps: f64, latency: Latency) -> Peers {
    let epoch = SystemTime::now();
    let quota = Arc::new(Mutex::new(Quota::new(tps)));
    let q = quota.clone();
    let omics = Server::start(move |req| {
        let answer = omics_answer(&req, runs, epoch, &q);
        async move {
            tokio::time::sleep(latency.omics).await;
            answer
        }
    })
    .await;
    let objects: Arc<Mutex<HashMap<String, Vec<u8>>>> = Arc::default();
    let s3 = Server::start(move |req| {
        let answer = s3_answer(&req, &objects);
        async move {
            tokio::time::sleep(latency.s3).await;
            answer
        }
    })
    .await;
    let wes = Server::start(move |_req| async move {
        tokio::time::sleep(latency.wes).await;
        Response::json(200, &json!({"message": "State updated"}))
    })
    .await;
    let hidden: Arc<Mutex<HashMap<String, u64>>> = Arc::default();
    let h = hidden.clone();
    let sqs = Server::start(move |req| {
        let answer = sqs_answer(&req, &h);
        async move { answer }
    })
    .await;
    Peers { omics, s3, wes, sqs, quota, hidden }
}

/// The environment of the function (an instance, or the reconcile command).
fn function_env(peers: &Peers, extra: &[(String, String)]) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = [
        ("PATH", std::env::var("PATH").unwrap_or_default()),
        ("AWS_REGION", "eu-west-1".into()),
        ("AWS_ACCESS_KEY_ID", "bench".into()),
        ("AWS_SECRET_ACCESS_KEY", "bench".into()),
        ("AWS_ENDPOINT_URL_OMICS", peers.omics.url()),
        ("AWS_ENDPOINT_URL_S3", peers.s3.url()),
        ("AWS_ENDPOINT_URL_SQS", peers.sqs.url()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ("AWS_CONFIG_FILE", "/nonexistent".into()),
        ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent".into()),
        ("API_SERVER", peers.wes.url()),
        ("DATA_LAKE_BUCKET", "bench-lake".into()),
        ("AUTH_TOKEN", KEY.into()),
        ("AWS_LAMBDA_LOG_LEVEL", "ERROR".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    env.extend(extra.iter().cloned());
    env
}

/// The invocation an instance is given next: request id and event.
type Slot = Arc<Mutex<Option<(String, Vec<u8>)>>>;

/// One instance's runtime API: `/next` waits for the event the simulator puts in `slot`.
struct Instance {
    _api: Server,
    slot: Slot,
    wake: Arc<Notify>,
    child: Child,
}

/// What instances tell the simulator.
enum Said {
    /// Instance `i` waits for an event.
    Idle(usize),
    /// Instance `i` took request `id`.
    Took(String),
    /// Request `id` ended, successfully or not (with the error's type; a batch's failed
    /// messages count as an error).
    Done { id: String, error: Option<String> },
}

async fn instance(i: usize, binary: &str, env: &[(String, String)], said: mpsc::UnboundedSender<Said>) -> Instance {
    let slot: Slot = Arc::default();
    let wake = Arc::new(Notify::new());
    let (s, w) = (slot.clone(), wake.clone());
    let api = Server::start(move |req: Request| {
        let (slot, wake, said) = (s.clone(), w.clone(), said.clone());
        async move {
            let path = req.path().trim_start_matches("/2018-06-01/runtime").to_owned();
            if path == "/invocation/next" {
                let mut told = false;
                loop {
                    let notified = wake.notified();
                    if let Some((id, body)) = slot.lock().unwrap().take() {
                        let _ = said.send(Said::Took(id.clone()));
                        let deadline = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap()
                            + Duration::from_secs(900);
                        return Response::new(200, body)
                            .header("lambda-runtime-aws-request-id", &id)
                            .header("lambda-runtime-deadline-ms", &deadline.as_millis().to_string())
                            .header(
                                "lambda-runtime-invoked-function-arn",
                                "arn:aws:lambda:eu-west-1:1:function:burst",
                            );
                    }
                    if !told {
                        told = true;
                        let _ = said.send(Said::Idle(i));
                    }
                    notified.await;
                }
            }
            if let Some((id, kind)) = path.trim_start_matches("/invocation/").split_once('/') {
                let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
                let items_failed = body["batchItemFailures"].as_array().is_some_and(|f| !f.is_empty());
                let error =
                    if kind == "response" && items_failed { Some("batchItemFailures".to_owned()) } else { None };
                let error = error.or_else(|| {
                    (kind != "response").then(|| {
                        serde_json::from_slice::<Value>(&req.body)
                            .ok()
                            .and_then(|v| {
                                let message: String = v["errorMessage"].as_str()?.chars().take(140).collect();
                                Some(format!("{}: {message}", v["errorType"].as_str()?))
                            })
                            .unwrap_or_else(|| "unknown".into())
                    })
                });
                let _ = said.send(Said::Done { id: id.to_owned(), error });
            }
            Response::new(202, "{}")
        }
    })
    .await;
    let child = Command::new(binary)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("AWS_LAMBDA_RUNTIME_API", api.addr.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "burst")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the function");
    Instance { _api: api, slot, wake, child }
}

/// A small deterministic generator for the jitter.
struct Rng(u64);

impl Rng {
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// How events reach the function.
#[derive(Clone, Copy, PartialEq)]
enum Delivery {
    /// Asynchronous invocations (the rule invokes the function).
    Direct,
    /// The run event queue and its event source mapping.
    Queue,
}

/// The queue's visibility timeout and receive limit (the template's), and the event source
/// mapping's scaling: concurrent invocations at first, and more per second.
const QUEUE_VISIBILITY_S: u64 = 960;
const QUEUE_MAX_RECEIVES: u32 = 3;
const MAPPING_SCALING: (f64, f64) = (5.0, 5.0);

struct Burst {
    delivery: Delivery,
    runs: usize,
    tasks: usize,
    tps: f64,
    concurrency: usize,
    reserved: Option<usize>,
    binary: String,
    env: Vec<(String, String)>,
    memory_mb: f64,
    jitter: f64,
    latency: Latency,
}

/// An event waiting for its next attempt.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Attempt {
    event: usize,
    /// Failed invocations so far.
    failures: u32,
    /// Throttles so far (for the interval).
    throttles: u32,
}

fn event(i: usize) -> Vec<u8> {
    let id = (FIRST_RUN + i).to_string();
    json!({"version": "0", "id": format!("0b8f{i:08}-burst"), "detail-type": "Run Status Change", "source": "aws.omics",
           "account": "111122223333", "time": iso(SystemTime::now() - Duration::from_secs(60)), "region": "eu-west-1",
           "resources": [format!("arn:aws:omics:eu-west-1:111122223333:run/{id}")],
           "detail": {"arn": format!("arn:aws:omics:eu-west-1:111122223333:run/{id}"), "status": "COMPLETED", "runId": id,
                      "runOutputUri": format!("s3://bench-out/runs/{id}")}})
    .to_string()
    .into_bytes()
}

/// Event `i` as the event source mapping hands it over: a batch of one SQS message, its
/// receipt `receipt`, received `receives` times.
fn queued(i: usize, receipt: &str, receives: u32) -> Vec<u8> {
    let body = String::from_utf8(event(i)).unwrap();
    json!({"Records": [{"messageId": format!("m-{i}"), "receiptHandle": receipt, "body": body,
                        "attributes": {"ApproximateReceiveCount": receives.to_string()}, "messageAttributes": {},
                        "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:eu-west-1:111122223333:run-events",
                        "awsRegion": "eu-west-1"}]})
    .to_string()
    .into_bytes()
}

/// The receipt handle of a queued attempt's message (one per receive).
fn receipt(a: &Attempt) -> String {
    format!("receipt-{}-{}", a.event, a.failures + 1)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 * p).ceil() as usize).saturating_sub(1).min(sorted.len() - 1)]
}

async fn burst(b: &Burst) -> Value {
    let peers = peers(Runs::Burst { n: b.runs, tasks: b.tasks }, b.tps, b.latency).await;
    let env = function_env(&peers, &b.env);
    let limit = b.reserved.map_or(b.concurrency, |r| r.min(b.concurrency));
    let (tx, mut said) = mpsc::unbounded_channel();
    let mut instances: Vec<Instance> = Vec::new();
    let mut idle: Vec<usize> = Vec::new();
    let mut due: BinaryHeap<Reverse<(Instant, u64, Attempt)>> = BinaryHeap::new();
    let started = Instant::now();
    let mut seq = 0u64;
    for e in 0..b.runs {
        seq += 1;
        due.push(Reverse((started, seq, Attempt { event: e, failures: 0, throttles: 0 })));
    }
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut running: HashMap<String, (Attempt, Option<Instant>)> = HashMap::new();
    let (mut done, mut dead, mut failed, mut lambda_throttles) = (0usize, 0usize, 0usize, 0usize);
    let mut durations: Vec<f64> = Vec::new();
    let mut errors: HashMap<String, usize> = HashMap::new();
    let mut last_done = started;
    let mut next_request = 0u64;
    let queue = b.delivery == Delivery::Queue;
    // The event source mapping's concurrency at `t`; direct delivery's is the limit.
    let allowed = |t: Instant| -> usize {
        let (first, per_s) = MAPPING_SCALING;
        if queue { limit.min((first + per_s * t.duration_since(started).as_secs_f64()) as usize) } else { limit }
    };
    while done + dead < b.runs {
        let now = Instant::now();
        let wake_at = match due.peek().map(|Reverse((t, _, _))| *t) {
            // A queued message waits for a free slot: the next instance's message, or the
            // mapping's next step up.
            Some(t) if queue && !(running.len() < allowed(now) && (!idle.is_empty() || instances.len() < limit)) => {
                (allowed(now) < limit).then(|| now + Duration::from_secs_f64(1.0 / MAPPING_SCALING.1)).map(|s| s.max(t))
            }
            head => head,
        };
        tokio::select! {
            message = said.recv() => match message.expect("the instances' channel stays open") {
                Said::Idle(i) => idle.push(i),
                Said::Took(id) => if let Some(r) = running.get_mut(&id) { r.1 = Some(Instant::now()) },
                Said::Done { id, error } => {
                    let Some((attempt, took)) = running.remove(&id) else { continue };
                    if let Some(t) = took {
                        durations.push(t.elapsed().as_secs_f64());
                    }
                    last_done = Instant::now();
                    match error {
                        None => done += 1,
                        Some(kind) => {
                            failed += 1;
                            *errors.entry(kind).or_default() += 1;
                            let receives = attempt.failures + 1;
                            let wait = if queue {
                                (receives < QUEUE_MAX_RECEIVES).then(|| {
                                    let asked = peers.hidden.lock().unwrap().get(&receipt(&attempt)).copied();
                                    Duration::from_secs(asked.unwrap_or(QUEUE_VISIBILITY_S))
                                })
                            } else {
                                (attempt.failures < 2).then(|| Duration::from_secs(60 * (attempt.failures as u64 + 1)))
                            };
                            match wait {
                                Some(wait) => {
                                    seq += 1;
                                    due.push(Reverse((Instant::now() + wait, seq, Attempt { failures: receives, ..attempt })));
                                }
                                None => dead += 1,
                            }
                        }
                    }
                }
            },
            _ = async { match wake_at { Some(t) => tokio::time::sleep_until(t.into()).await, None => std::future::pending().await } } => {
                if queue && !(running.len() < allowed(Instant::now()) && (!idle.is_empty() || instances.len() < limit)) {
                    continue;
                }
                let Reverse((_, _, attempt)) = due.pop().expect("an attempt is due");
                let target = if let Some(i) = idle.pop() {
                    Some(i)
                } else if instances.len() < limit {
                    instances.push(instance(instances.len(), &b.binary, &env, tx.clone()).await);
                    Some(instances.len() - 1)
                } else {
                    None
                };
                match target {
                    Some(i) => {
                        next_request += 1;
                        let id = format!("req-{next_request}");
                        let payload = if queue {
                            queued(attempt.event, &receipt(&attempt), attempt.failures + 1)
                        } else {
                            event(attempt.event)
                        };
                        *instances[i].slot.lock().unwrap() = Some((id.clone(), payload));
                        instances[i].wake.notify_waiters();
                        running.insert(id, (attempt, None));
                    }
                    None => {
                        lambda_throttles += 1;
                        let interval = 2f64.powi(attempt.throttles.min(9) as i32).min(300.0);
                        let jittered = interval * (1.0 - b.jitter + 2.0 * b.jitter * rng.unit());
                        seq += 1;
                        due.push(Reverse((
                            Instant::now() + Duration::from_secs_f64(jittered),
                            seq,
                            Attempt { throttles: attempt.throttles + 1, ..attempt },
                        )));
                    }
                }
            }
        }
    }
    let drain = last_done.duration_since(started).as_secs_f64();
    let cold_starts = instances.len();
    for mut i in instances {
        let _ = i.child.kill();
        let _ = i.child.wait();
    }
    let q = peers.quota.lock().unwrap();
    let served: u64 = q.served.iter().sum();
    let throttled: u64 = q.throttled.iter().sum();
    durations.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let gb_s: f64 = durations.iter().map(|d| (d * 1000.0).ceil() / 1000.0).sum::<f64>() * b.memory_mb / 1024.0;
    json!({
        "delivery": if queue { "queue" } else { "direct" },
        "latency_ms": [b.latency.omics.as_millis() as u64, b.latency.s3.as_millis() as u64, b.latency.wes.as_millis() as u64],
        "runs": b.runs, "tasks": b.tasks, "tps": b.tps, "concurrency": b.concurrency, "reserved": b.reserved,
        "drain_s": drain, "floor_s": served as f64 / b.tps, "drain_over_floor": drain / (served as f64 / b.tps),
        "calls_per_event": served as f64 / b.runs as f64,
        "calls": {"GetRun": q.served[0], "ListRunTasks": q.served[1]},
        "throttled_calls": throttled, "invocations": durations.len(), "failed_invocations": failed,
        "errors": errors, "dead_letters": dead, "lambda_throttles": lambda_throttles, "cold_starts": cold_starts,
        "p50_s": percentile(&durations, 0.5), "p99_s": percentile(&durations, 0.99), "gb_s": gb_s,
    })
}

/// One reconcile (`reconcile --since 26h`) over `n` retained runs, 1% of them changed in the
/// window; with `twice`, a second one right after.
async fn reconcile(
    binary: &str,
    n: usize,
    tps: f64,
    tasks: usize,
    extra: &[(String, String)],
    twice: bool,
) -> Vec<Value> {
    let peers = peers(Runs::Retained { n, changed_every: 100, tasks }, tps, Latency::default()).await;
    let env = function_env(&peers, extra);
    let mut rows = Vec::new();
    for pass in 1..=(1 + usize::from(twice)) {
        let before = {
            let q = peers.quota.lock().unwrap();
            (q.served, q.throttled)
        };
        let t = Instant::now();
        let out = tokio::task::spawn_blocking({
            let (binary, env) = (binary.to_owned(), env.clone());
            move || {
                Command::new(binary)
                    .args(["reconcile", "--since", "26h"])
                    .env_clear()
                    .envs(env.iter().map(|(k, v)| (k, v)))
                    .output()
                    .expect("run reconcile")
            }
        })
        .await
        .unwrap();
        let seconds = t.elapsed().as_secs_f64();
        let q = peers.quota.lock().unwrap();
        let served: Vec<u64> = (0..3).map(|k| q.served[k] - before.0[k]).collect();
        let throttled: u64 = (0..3).map(|k| q.throttled[k] - before.1[k]).sum();
        let summary: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        let rate = served.iter().sum::<u64>() as f64 / seconds;
        rows.push(json!({
            "retained": n, "changed": n.div_ceil(100), "pass": pass, "exit": out.status.code(),
            "calls": {"ListRuns": served[2], "GetRun": served[0], "ListRunTasks": served[1]},
            "throttled_calls": throttled, "seconds": seconds, "rate_tps": rate, "quota_left_tps": tps - rate,
            "summary": summary,
        }));
    }
    rows
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let number = |name: &str, default: f64| arg(name).and_then(|v| v.parse::<f64>().ok()).unwrap_or(default);
    let binary =
        arg("--binary").unwrap_or_else(|| format!("{}/../target/release/ngs360-omics", env!("CARGO_MANIFEST_DIR")));
    let env: Vec<(String, String)> = args
        .windows(2)
        .filter(|w| w[0] == "--env")
        .filter_map(|w| w[1].split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
        .collect();
    let tps = number("--tps", 10.0);
    let tasks = number("--tasks", 150.0) as usize;
    if let Some(list) = arg("--reconcile") {
        for n in list.split(',').filter_map(|n| n.trim().parse::<usize>().ok()) {
            for row in reconcile(&binary, n, tps, tasks, &env, args.iter().any(|a| a == "--twice")).await {
                println!("{row}");
            }
        }
        return;
    }
    let b = Burst {
        delivery: match arg("--delivery").as_deref() {
            None | Some("direct") => Delivery::Direct,
            Some("queue") => Delivery::Queue,
            Some(other) => panic!("--delivery is direct or queue, not {other}"),
        },
        runs: number("--runs", 200.0) as usize,
        tasks,
        tps,
        concurrency: number("--concurrency", 1000.0) as usize,
        reserved: arg("--reserved").and_then(|r| r.parse().ok()),
        binary,
        env,
        memory_mb: number("--memory", 128.0),
        jitter: number("--lambda-jitter", 0.5),
        latency: match arg("--latency") {
            None => Latency::default(),
            Some(list) => {
                let ms: Vec<u64> =
                    list.split(',').map(|v| v.trim().parse().expect("--latency OMICS,S3,WES (ms)")).collect();
                let [omics, s3, wes] = ms[..] else { panic!("--latency OMICS,S3,WES (ms)") };
                Latency {
                    omics: Duration::from_millis(omics),
                    s3: Duration::from_millis(s3),
                    wes: Duration::from_millis(wes),
                }
            }
        },
    };
    println!("{}", burst(&b).await);
}
