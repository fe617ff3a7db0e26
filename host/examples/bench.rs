//! The performance table (`bench/run.sh`): cold start, one COMPLETED event end to end
//! against loopback peers with and without a fixed delay each, the guest per event beside
//! the native build, peak RSS over 1,000 events, and the sizes of what ships.
//!
//!     cargo run --release --example bench -- [--binary PATH] [--zip PATH] [--runs N]
//!
//! The function is the real binary in Lambda mode, driven by a runtime API server; its
//! peers (Secrets Manager, HealthOmics, S3, the WES API) are small fakes on 127.0.0.1 that
//! answer after a configurable delay. Figures are medians of repeated runs.

#[allow(dead_code)]
#[path = "../../tests/integration/support/http.rs"]
mod http;

use std::collections::{HashMap, VecDeque};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use http::{Request, Response, Server};
use ngs360_omics::sandbox::{self as guest, Context, EventPlan, Limits, Runtime};
use serde_json::{Value, json};
use tokio::sync::Notify;

const KEY: &str = "bench-callback-key";
const DELAY: Duration = Duration::from_millis(20);

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/../fixtures/eventbridge-omics-run-completed/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// The AWS and WES fakes, each answering after `delay`.
struct Peers {
    aws: Server,
    wes: Server,
    delay: Arc<Mutex<Duration>>,
}

/// The run id of a generated run of `tasks` tasks (the cost curve).
fn generated_run(tasks: usize) -> String {
    (1_000_000_000 + tasks).to_string()
}

/// A generated run's task list page: `maxResults` (at most 100) from `startingToken`,
/// filtered by `status`; every 1,000th task failed.
fn generated_tasks(req: &Request, count: usize) -> Value {
    let size: usize = req.query("maxResults").and_then(|m| m.parse().ok()).unwrap_or(100).clamp(1, 100);
    let status = req.query("status");
    let mut at: usize = req.query("startingToken").and_then(|t| t.parse().ok()).unwrap_or(0);
    let mut items = Vec::new();
    while at < count && items.len() < size {
        let failed = at % 1000 == 999;
        at += 1;
        if status.as_deref().is_some_and(|s| s == "FAILED") && !failed {
            continue;
        }
        items.push(json!({"taskId": (50_000_000 + at).to_string(), "name": format!("shard_{at}"),
                          "status": if failed { "FAILED" } else { "COMPLETED" }, "cpus": 2, "memory": 4}));
    }
    let mut page = json!({ "items": items });
    if at < count {
        page["nextToken"] = at.to_string().into();
    }
    page
}

async fn peers() -> Peers {
    let context: Value = serde_json::from_slice(&fixture("context.json")).unwrap();
    let delay = Arc::new(Mutex::new(Duration::ZERO));
    let objects: Arc<Mutex<HashMap<String, Vec<u8>>>> = Arc::default();
    let outputs_key = "/ngs360-omics-output/runs/4417021/logs/outputs.json".to_owned();
    objects.lock().unwrap().insert(outputs_key, context["outputs"].to_string().into_bytes());
    let (d, ctx) = (delay.clone(), context.clone());
    let aws = Server::start(move |req: Request| {
        let (d, ctx, objects) = (d.clone(), ctx.clone(), objects.clone());
        async move {
            let wait = *d.lock().unwrap();
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
            aws_answer(&req, &ctx, &objects)
        }
    })
    .await;
    let d = delay.clone();
    let wes = Server::start(move |_req: Request| {
        let d = d.clone();
        async move {
            let wait = *d.lock().unwrap();
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
            Response::json(200, &json!({"status": "ok"}))
        }
    })
    .await;
    Peers { aws, wes, delay }
}

/// Secrets Manager (JSON protocol), HealthOmics (REST JSON) and S3 (path style), by route.
fn aws_answer(req: &Request, ctx: &Value, objects: &Mutex<HashMap<String, Vec<u8>>>) -> Response {
    if req.header("x-amz-target") == Some("secretsmanager.GetSecretValue") {
        return Response::json(200, &json!({"Name": "bench", "SecretString": json!({"AUTH_TOKEN": KEY}).to_string()}));
    }
    let path = req.path().to_owned();
    if path == "/run/4417021" {
        return Response::json(200, &ctx["run"]);
    }
    if path == "/run/4417021/task" {
        return Response::json(200, &json!({"items": ctx["tasks"]}));
    }
    if let Some(run) = path.strip_prefix("/run/") {
        let (id, tasks) = run.split_once('/').map_or((run, false), |(id, rest)| (id, rest == "task"));
        if let Some(count) = id.parse::<usize>().ok().and_then(|n| n.checked_sub(1_000_000_000)) {
            if tasks {
                return Response::json(200, &generated_tasks(req, count));
            }
            let mut run = ctx["run"].clone();
            run["id"] = id.into();
            run["arn"] = format!("arn:aws:omics:eu-west-1:111122223333:run/{id}").into();
            return Response::json(200, &run);
        }
    }
    let mut objects = objects.lock().unwrap();
    match req.method.as_str() {
        "GET" => match objects.get(&path) {
            Some(body) => Response::new(200, body.clone()).header("etag", "\"e\""),
            None => {
                Response::new(404, "<Error><Code>NoSuchKey</Code></Error>").header("content-type", "application/xml")
            }
        },
        "PUT" if req.header("if-none-match") == Some("*") && objects.contains_key(&path) => {
            Response::new(412, "<Error><Code>PreconditionFailed</Code></Error>")
                .header("content-type", "application/xml")
        }
        "PUT" => {
            objects.insert(path, req.body.clone());
            Response::new(200, "").header("etag", "\"e\"")
        }
        _ => Response::new(405, ""),
    }
}

/// A Lambda runtime API that hands out queued events and times each invocation.
struct RuntimeApi {
    server: Server,
    state: Arc<Mutex<ApiState>>,
    changed: Arc<Notify>,
}

#[derive(Default)]
struct ApiState {
    queue: VecDeque<(String, Vec<u8>)>,
    handed: HashMap<String, Instant>,
    done: HashMap<String, (Duration, bool)>,
    first_next: Option<Instant>,
}

impl RuntimeApi {
    async fn start() -> RuntimeApi {
        let state: Arc<Mutex<ApiState>> = Arc::default();
        let changed = Arc::new(Notify::new());
        let (s, c) = (state.clone(), changed.clone());
        let server = Server::start(move |req: Request| {
            let (state, changed) = (s.clone(), c.clone());
            async move {
                let path = req.path().trim_start_matches("/2018-06-01/runtime").to_owned();
                if path == "/invocation/next" {
                    loop {
                        let notified = changed.notified();
                        {
                            let mut st = state.lock().unwrap();
                            st.first_next.get_or_insert_with(Instant::now);
                            if let Some((id, body)) = st.queue.pop_front() {
                                st.handed.insert(id.clone(), Instant::now());
                                return Response::new(200, body)
                                    .header("lambda-runtime-aws-request-id", &id)
                                    .header("lambda-runtime-deadline-ms", "99999999999999")
                                    .header(
                                        "lambda-runtime-invoked-function-arn",
                                        "arn:aws:lambda:eu-west-1:1:function:bench",
                                    );
                            }
                        }
                        notified.await;
                    }
                }
                let mut st = state.lock().unwrap();
                if let Some((id, kind)) = path.trim_start_matches("/invocation/").split_once('/') {
                    let took = st.handed.get(id).map(|t| t.elapsed()).unwrap_or_default();
                    st.done.insert(id.to_owned(), (took, kind == "response"));
                }
                drop(st);
                changed.notify_waiters();
                Response::new(202, "{}")
            }
        })
        .await;
        RuntimeApi { server, state, changed }
    }

    /// Sends one event and waits for its answer: the time from handing it out to the
    /// answer, and whether the invocation succeeded.
    async fn invoke(&self, id: &str, event: &[u8]) -> (Duration, bool) {
        self.state.lock().unwrap().queue.push_back((id.to_owned(), event.to_vec()));
        self.changed.notify_waiters();
        loop {
            let notified = self.changed.notified();
            if let Some(r) = self.state.lock().unwrap().done.get(id) {
                return *r;
            }
            tokio::time::timeout(Duration::from_secs(30), notified).await.expect("the function answers");
        }
    }

    async fn wait_first_next(&self) -> Instant {
        loop {
            let notified = self.changed.notified();
            if let Some(t) = self.state.lock().unwrap().first_next {
                return t;
            }
            let _ = tokio::time::timeout(Duration::from_millis(5), notified).await;
        }
    }
}

/// How a bootstrap is started: directly, or under qemu-aarch64.
struct Launch {
    program: String,
    args: Vec<String>,
}

impl Launch {
    fn native(binary: &str) -> Launch {
        Launch { program: binary.into(), args: vec![] }
    }

    fn qemu(qemu: &str, binary: &str) -> Launch {
        Launch { program: qemu.into(), args: vec!["-L".into(), "/usr/aarch64-linux-gnu".into(), binary.into()] }
    }
}

fn spawn(binary: &str, api: &RuntimeApi, peers: &Peers) -> Child {
    spawn_with(&Launch::native(binary), api, peers, false)
}

/// Starts a bootstrap in Lambda mode against `api` and `peers`; `verbose` gives DEBUG
/// logs (the cold start's phases) on its stdout, piped.
fn spawn_with(launch: &Launch, api: &RuntimeApi, peers: &Peers, verbose: bool) -> Child {
    let aws = peers.aws.url();
    Command::new(&launch.program)
        .args(&launch.args)
        .env_clear()
        .envs([
            ("AWS_LAMBDA_RUNTIME_API", api.server.addr.to_string()),
            ("AWS_LAMBDA_FUNCTION_NAME", "bench".into()),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".into()),
            ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/bench".into()),
            ("AWS_LAMBDA_LOG_STREAM_NAME", "bench".into()),
            ("AWS_LAMBDA_LOG_FORMAT", "JSON".into()),
            ("AWS_REGION", "eu-west-1".into()),
            ("AWS_ACCESS_KEY_ID", "bench".into()),
            ("AWS_SECRET_ACCESS_KEY", "bench".into()),
            ("AWS_SESSION_TOKEN", "bench".into()),
            ("AWS_ENDPOINT_URL_S3", aws.clone()),
            ("AWS_ENDPOINT_URL_OMICS", aws.clone()),
            ("AWS_ENDPOINT_URL_SECRETS_MANAGER", aws),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
            ("AWS_CONFIG_FILE", "/nonexistent".into()),
            ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent".into()),
            ("API_SERVER", peers.wes.url()),
            ("DATA_LAKE_BUCKET", "lake".into()),
            ("ENV_SECRETS", "ngs360/omics".into()),
            ("VERBOSE_LOGGING", verbose.to_string()),
        ])
        .stdout(if verbose { Stdio::piped() } else { Stdio::null() })
        .stderr(Stdio::null())
        .spawn()
        .expect("start the function")
}

/// One cold start: spawn to the first /next, and (when verbose) the log lines.
struct Cold {
    ms: f64,
    spawned: SystemTime,
    first_next: SystemTime,
    lines: Vec<Value>,
}

async fn cold_start(launch: &Launch, peers: &Peers, verbose: bool) -> Cold {
    let api = RuntimeApi::start().await;
    let (spawned, started) = (SystemTime::now(), Instant::now());
    let mut child = spawn_with(launch, &api, peers, verbose);
    let first = api.wait_first_next().await;
    let mut lines = Vec::new();
    if verbose {
        // The background work (SDK clients, the callback key) finishes after /next.
        tokio::time::sleep(Duration::from_millis(if launch.args.is_empty() { 150 } else { 1500 })).await;
    }
    let _ = child.kill();
    if let Ok(out) = child.wait_with_output() {
        lines = String::from_utf8_lossy(&out.stdout).lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    }
    Cold { ms: (first - started).as_secs_f64() * 1e3, spawned, first_next: spawned + (first - started), lines }
}

fn unix_us(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH).map_or(f64::NAN, |d| d.as_micros() as f64)
}

/// The cold start of `ours` beside `hello`'s (alternating, `n` each), their ratio, then
/// the phases of `ours` from its DEBUG `ready` line and background lines (`n` more).
async fn cold_rows(
    row: &mut impl FnMut(&str, String, &str),
    label: &str,
    ours: &Launch,
    hello: &Launch,
    n: usize,
    peers: &Peers,
) {
    let (mut h, mut o) = (Vec::new(), Vec::new());
    for _ in 0..n {
        h.push(cold_start(hello, peers, false).await.ms);
        o.push(cold_start(ours, peers, false).await.ms);
    }
    let (h, o) = (median(h), median(o));
    row(
        &format!("cold start{label}: bare lambda_runtime hello world, spawn to first /next (ms)"),
        format!("{h:.2}"),
        "",
    );
    row(&format!("cold start{label}: ngs360-omics, spawn to first /next (ms)"), format!("{o:.2}"), "< 30");
    row(&format!("cold start{label}: ratio to the hello world"), format!("{:.2}", o / h), "<= 2.0");

    let mut phases: HashMap<&str, Vec<f64>> = HashMap::new();
    for _ in 0..n {
        let cold = cold_start(ours, peers, true).await;
        let Some(ready) = cold.lines.iter().find(|l| l["message"] == "ready" && l.get("main_unix_us").is_some()) else {
            continue;
        };
        let ms = |key: &str| ready[key].as_f64().unwrap_or(f64::NAN) / 1e3;
        let (main_unix, since_main) = (ready["main_unix_us"].as_f64().unwrap_or(f64::NAN), ms("since_main_us"));
        let mut add = |k, v| phases.entry(k).or_default().push(v);
        add("process start to main", (main_unix - unix_us(cold.spawned)) / 1e3);
        add("main to the cold start (configuration, async runtime, logging)", ms("runtime_us"));
        add("  of which configuration", ms("config_us"));
        add("TLS roots and files", ms("tls_us"));
        add("WES client", ms("wes_us"));
        add("wasmtime engine (sandbox thread, from main on)", ms("engine_us"));
        add("bundled guest: deserialize, link (sandbox thread)", ms("guest_us"));
        add("waiting for the sandbox thread", ms("sandbox_wait_us"));
        add("main to ready", since_main);
        add("ready to the first /next (lambda_runtime's client, the request)", {
            (unix_us(cold.first_next) - main_unix) / 1e3 - since_main
        });
        for (key, what) in [
            ("sdk_us", "after /next, in the background: AWS SDK configuration"),
            ("s3_us", "after /next, in the background: S3 client"),
            ("omics_us", "after /next, in the background: HealthOmics client"),
            ("key_us", "after /next, in the background: callback key (Secrets Manager)"),
        ] {
            if let Some(line) = cold.lines.iter().find(|l| l.get(key).is_some()) {
                add(what, line[key].as_f64().unwrap_or(f64::NAN) / 1e3);
            }
        }
    }
    for what in PHASES {
        if let Some(v) = phases.remove(what) {
            row(&format!("  {what}{label} (ms)"), format!("{:.3}", median(v)), "");
        }
    }
}

/// The order the phases are printed in.
const PHASES: [&str; 14] = [
    "process start to main",
    "main to the cold start (configuration, async runtime, logging)",
    "  of which configuration",
    "TLS roots and files",
    "WES client",
    "wasmtime engine (sandbox thread, from main on)",
    "bundled guest: deserialize, link (sandbox thread)",
    "waiting for the sandbox thread",
    "main to ready",
    "ready to the first /next (lambda_runtime's client, the request)",
    "after /next, in the background: AWS SDK configuration",
    "after /next, in the background: S3 client",
    "after /next, in the background: HealthOmics client",
    "after /next, in the background: callback key (Secrets Manager)",
];

fn event(n: usize) -> Vec<u8> {
    let mut e: Value = serde_json::from_slice(&fixture("event.json")).unwrap();
    e["id"] = format!("bench-{n:06}").into();
    e.to_string().into_bytes()
}

fn peak_rss_mib(child: &Child) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn mb(bytes: usize) -> f64 {
    bytes as f64 / 1e6
}

/// The COMPLETED fixture's event, grown with parameters to about `size` bytes.
fn event_of_size(size: usize) -> Vec<u8> {
    let mut e: Value = serde_json::from_slice(&fixture("event.json")).unwrap();
    let mut i = 0;
    while e.to_string().len() < size {
        e["detail"][format!("parameter_{i:04}")] =
            format!("s3://ngs360-reference/genomes/GRCh38/part-{i:04}.fa.gz").into();
        i += 1;
    }
    e.to_string().into_bytes()
}

/// What the host fetches for the COMPLETED fixture.
fn completed_context() -> Context {
    let context: Value = serde_json::from_slice(&fixture("context.json")).unwrap();
    Context {
        run: Some(context["run"].to_string()),
        tasks: Some(guest::TaskList { items: context["tasks"].to_string(), more: false, failed: None }),
        outputs: Some(context["outputs"].to_string().into_bytes()),
        errors: vec![],
    }
}

/// The median time of one event through `guest` in a fresh instance (plan, transform).
async fn per_event_us(guest: &guest::Guest, bytes: &[u8], ctx: &Context, n: usize) -> f64 {
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let mut s = guest.open(bytes).await.unwrap();
        let EventPlan::Process(_) = s.plan(None).await.unwrap() else { panic!("not a run event") };
        s.transform(ctx).await.unwrap();
        times.push(t.elapsed().as_secs_f64() * 1e6);
    }
    median(times)
}

/// Waits for `child`; its peak RSS (MiB: the largest VmHWM seen while it ran, read every
/// millisecond) and exit status.
fn peak_rss_at_exit(mut child: Child) -> (f64, std::process::ExitStatus) {
    let mut peak = 0f64;
    loop {
        let now = peak_rss_mib(&child);
        if now.is_finite() {
            peak = peak.max(now);
        }
        if let Some(status) = child.try_wait().unwrap() {
            return (peak, status);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn size_mb(path: &str) -> Option<f64> {
    std::fs::metadata(path).ok().map(|m| m.len() as f64 / 1e6)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let binary =
        arg("--binary").unwrap_or_else(|| format!("{}/../target/release/ngs360-omics", env!("CARGO_MANIFEST_DIR")));
    let zip = arg("--zip");
    let runs: usize = arg("--runs").and_then(|r| r.parse().ok()).unwrap_or(15);
    // `--only cold,guest`: some of the sections (cold, events, rss, curve, guest, authors).
    let only = arg("--only");
    let want = |section: &str| only.as_deref().is_none_or(|o| o.split(',').any(|s| s == section));
    let peers = peers().await;
    let mut rows: Vec<(String, String, String)> = Vec::new();
    let mut row = |what: &str, value: String, target: &str| rows.push((what.into(), value, target.into()));

    if want("cold") {
        // Cold start beside a bare lambda_runtime function, then its phases.
        let hello = arg("--hello")
            .unwrap_or_else(|| format!("{}/../target/release/examples/hello", env!("CARGO_MANIFEST_DIR")));
        let n = runs.max(21);
        cold_rows(&mut row, "", &Launch::native(&binary), &Launch::native(&hello), n, &peers).await;
        // The arm64 bootstrap under qemu, beside the arm64 hello world under qemu.
        if let (Some(bootstrap), Some(hello)) = (arg("--arm64"), arg("--arm64-hello")) {
            let qemu = arg("--qemu").unwrap_or_else(|| "qemu-aarch64-static".into());
            let (ours, hello) = (Launch::qemu(&qemu, &bootstrap), Launch::qemu(&qemu, &hello));
            cold_rows(&mut row, ", arm64 under qemu", &ours, &hello, n, &peers).await;
        }
    }

    if want("events") {
        // One COMPLETED event end to end, peers delayed by 20 ms each, then not delayed.
        for (label, delay) in
            [("with 20 ms per peer call", DELAY), ("host's own time, peers not delayed", Duration::ZERO)]
        {
            *peers.delay.lock().unwrap() = delay;
            let (mut firsts, mut warm) = (Vec::new(), Vec::new());
            for r in 0..runs.min(7) {
                let api = RuntimeApi::start().await;
                let mut child = spawn(&binary, &api, &peers);
                for i in 0..10 {
                    let (took, ok) = api
                        .invoke(&format!("{r}-{i}"), &event(r * 100 + i + if delay.is_zero() { 50_000 } else { 0 }))
                        .await;
                    assert!(ok, "the invocation failed");
                    let ms = took.as_secs_f64() * 1e3;
                    if i == 0 { firsts.push(ms) } else { warm.push(ms) }
                }
                let _ = child.kill();
                let _ = child.wait();
            }
            let target = if delay.is_zero() { "" } else { "< 60" };
            row(
                &format!("COMPLETED event, {label}, first after cold start (ms)"),
                format!("{:.1}", median(firsts)),
                target,
            );
            row(&format!("COMPLETED event, {label}, warm (ms)"), format!("{:.1}", median(warm)), target);
        }
    }

    if want("rss") {
        // Peak RSS over 1,000 events.
        *peers.delay.lock().unwrap() = Duration::ZERO;
        let api = RuntimeApi::start().await;
        let mut child = spawn(&binary, &api, &peers);
        for i in 0..1000 {
            let (_, ok) = api.invoke(&format!("rss-{i}"), &event(100_000 + i)).await;
            assert!(ok);
        }
        row("peak RSS over 1,000 COMPLETED events (MiB)", format!("{:.1}", peak_rss_mib(&child)), "< 40");
        let _ = child.kill();
        let _ = child.wait();
    }

    if want("curve") {
        // The cost curve of large runs (behaviour §4): one event per fresh process, 20 ms per
        // peer call; HealthOmics calls made, time, peak RSS.
        *peers.delay.lock().unwrap() = DELAY;
        for status in ["COMPLETED", "FAILED"] {
            for tasks in [10usize, 1_000, 10_000, 100_000] {
                let api = RuntimeApi::start().await;
                let mut child = spawn(&binary, &api, &peers);
                let id = generated_run(tasks);
                let before =
                    peers.aws.requests().iter().filter(|r| r.path().starts_with(&format!("/run/{id}"))).count();
                let mut e: Value = serde_json::from_slice(&fixture("event.json")).unwrap();
                e["id"] = format!("curve-{status}-{tasks}").into();
                e["detail"]["status"] = status.into();
                e["detail"]["runId"] = id.clone().into();
                e["detail"]["runOutputUri"] = format!("s3://ngs360-omics-output/runs/{id}").into();
                let (took, ok) = api.invoke(&format!("curve-{status}-{tasks}"), e.to_string().as_bytes()).await;
                assert!(ok, "the {status} run of {tasks} tasks failed");
                let calls = peers.aws.requests().iter().filter(|r| r.path().starts_with(&format!("/run/{id}"))).count()
                    - before;
                row(
                    &format!("{status} run of {tasks} tasks: HealthOmics calls / ms (20 ms per call) / peak RSS MiB"),
                    format!("{calls} / {:.0} / {:.1}", took.as_secs_f64() * 1e3, peak_rss_mib(&child)),
                    if tasks == 100_000 { "RSS < 64" } else { "" },
                );
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        *peers.delay.lock().unwrap() = Duration::ZERO;
    }

    if want("guest") {
        // Loading the guest, per path (cold start cost), and the guest per event.
        let time_us = |n: usize, f: &mut dyn FnMut()| -> f64 {
            median(
                (0..n)
                    .map(|_| {
                        let t = Instant::now();
                        f();
                        t.elapsed().as_secs_f64() * 1e6
                    })
                    .collect(),
            )
        };
        row(
            "wasmtime engine and epoch ticker (us)",
            format!("{:.0}", time_us(20, &mut || drop(Runtime::new().unwrap()))),
            "",
        );
        let runtime = Runtime::new().unwrap();
        let mut times = Vec::new();
        for _ in 0..50 {
            let t = Instant::now();
            drop(runtime.bundled(Limits::default()).await.unwrap());
            times.push(t.elapsed().as_secs_f64() * 1e6);
        }
        row("guest load: bundled .cwasm (deserialize, link, describe) (us)", format!("{:.0}", median(times)), "< 1000");
        let wasm_path = arg("--wasm").unwrap_or_else(|| {
            format!("{}/../target/guest-build/wasm32-wasip2/guest/ngs360_omics_guest.wasm", env!("CARGO_MANIFEST_DIR"))
        });
        if let Ok(wasm) = std::fs::read(&wasm_path) {
            let mut times = Vec::new();
            for _ in 0..5 {
                let t = Instant::now();
                drop(runtime.load(wasm.clone(), "bench".into(), None, Limits::default()).await.unwrap());
                times.push(t.elapsed().as_secs_f64() * 1e6);
            }
            row("guest load: a .wasm from S3 or a file, compiled here (us)", format!("{:.0}", median(times)), "");
            let cwasm = guest::precompile(&wasm, guest::BUNDLED_TARGET, "bench").unwrap();
            let pin = guest::sha256_hex(&cwasm);
            let mut times = Vec::new();
            for _ in 0..50 {
                let t = Instant::now();
                drop(runtime.load(cwasm.clone(), "bench".into(), Some(&pin), Limits::default()).await.unwrap());
                times.push(t.elapsed().as_secs_f64() * 1e6);
            }
            row(
                "guest load: a pinned .cwasm (sha256, deserialize, link, describe) (us)",
                format!("{:.0}", median(times)),
                "",
            );
        }
        let context: Value = serde_json::from_slice(&fixture("context.json")).unwrap();
        let (run, tasks, outputs) =
            (context["run"].to_string(), context["tasks"].to_string(), context["outputs"].to_string().into_bytes());
        let guest = runtime.bundled(Limits::default()).await.unwrap();
        for (label, size) in [("2 KB", 2usize << 10), ("100 KB", 100 << 10)] {
            let bytes = event_of_size(size);
            let ctx = completed_context();
            let n = if size > 10_000 { 300 } else { 3000 };
            let wasm = per_event_us(&guest, &bytes, &ctx, n).await;
            let native_tasks = ngs360_omics_guest::TaskList { items: &tasks, more: false, failed: None };
            let c = ngs360_omics_guest::Context {
                run: Some(&run),
                tasks: Some(native_tasks),
                outputs: Some(&outputs),
                errors: &[],
            };
            let native = time_us(n, &mut || {
                let ev = ngs360_omics_guest::Event::parse(&bytes).unwrap();
                ev.plan(None).unwrap();
                ev.transform(&c).unwrap();
            });
            let target = if size < 10_000 { "< 100" } else { "" };
            row(
                &format!("guest, {label} event ({} B), fresh instance, plan + transform (us)", bytes.len()),
                format!("{wasm:.0}"),
                target,
            );
            row(&format!("same logic compiled natively, {label} (us)"), format!("{native:.0}"), "");
        }
    }

    if want("authors") {
        // Guests that authors write (make python-guest, make rust-guest), as they would ship:
        // precompiled and pinned.
        let root = format!("{}/..", env!("CARGO_MANIFEST_DIR"));
        let runtime = Runtime::new().unwrap();
        let bundled_wasm = arg("--wasm").unwrap_or_else(|| {
            format!("{}/../target/guest-build/wasm32-wasip2/guest/ngs360_omics_guest.wasm", env!("CARGO_MANIFEST_DIR"))
        });
        let guests = [
            ("bundled guest", bundled_wasm),
            ("Python guest", format!("{root}/dist/guests/python.wasm")),
            ("Rust template", format!("{root}/dist/guests/rust.wasm")),
        ];
        for (name, path) in guests {
            let Ok(wasm) = std::fs::read(&path) else {
                row(&format!("{name}: {path}"), "not built".into(), "");
                continue;
            };
            let limits = Limits::default();
            let t = Instant::now();
            let cwasm = guest::precompile(&wasm, guest::BUNDLED_TARGET, "bench").unwrap();
            let compile_ms = t.elapsed().as_secs_f64() * 1e3;
            let pin = guest::sha256_hex(&cwasm);
            let mut times = Vec::new();
            for _ in 0..5 {
                let t = Instant::now();
                drop(runtime.load(cwasm.clone(), name.into(), Some(&pin), limits).await.unwrap());
                times.push(t.elapsed().as_secs_f64() * 1e3);
            }
            let guest = runtime.load(cwasm.clone(), name.into(), Some(&pin), limits).await.unwrap();
            let per_event = per_event_us(&guest, &event_of_size(2 << 10), &completed_context(), 200).await;
            let cwasm_path = std::env::temp_dir().join(format!("bench-{}.cwasm", std::process::id()));
            std::fs::write(&cwasm_path, &cwasm).unwrap();
            let t = Instant::now();
            let child = Command::new(&binary)
                .args(["check", cwasm_path.to_str().unwrap(), "--fixtures", &format!("{root}/fixtures")])
                .env("GUEST_SHA256", &pin)
                .stdout(Stdio::null())
                .spawn()
                .unwrap();
            let (rss, status) = peak_rss_at_exit(child);
            let check_ms = t.elapsed().as_secs_f64() * 1e3;
            let _ = std::fs::remove_file(&cwasm_path);
            assert!(status.success(), "{name}: check failed");
            row(&format!("{name}: .wasm, .cwasm (MB)"), format!("{:.1}, {:.1}", mb(wasm.len()), mb(cwasm.len())), "");
            row(&format!("{name}: precompile (ms)"), format!("{compile_ms:.0}"), "");
            // Issue targets for an author's guest: load under 100 ms, an event under 5 ms.
            let (load_target, event_target) = if name.starts_with("bundled") { ("", "") } else { ("< 100", "< 5000") };
            row(&format!("{name}: load, pinned .cwasm (ms)"), format!("{:.1}", median(times)), load_target);
            row(
                &format!("{name}: 2 KB event, fresh instance, plan + transform (us)"),
                format!("{per_event:.0}"),
                event_target,
            );
            row(&format!("{name}: `check` of every fixture, process start to exit (ms)"), format!("{check_ms:.0}"), "");
            row(&format!("{name}: `check` peak RSS (MiB)"), format!("{rss:.1}"), "");
        }
    }

    match size_mb(&binary) {
        Some(mb) => row("binary (this build) (MB)", format!("{mb:.1}"), ""),
        None => row("binary (MB)", "missing".into(), ""),
    }
    if let Some(zip) = zip {
        match size_mb(&zip) {
            Some(mb) => row(&format!("deployment zip {zip} (MB)"), format!("{mb:.1}"), "< 10"),
            None => row("deployment zip (MB)", format!("{zip}: not built (make package)"), "< 10"),
        }
    }

    let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    println!("{:<width$}  {:>18}  {:>8}", "measure (median)", "value", "target");
    for (what, value, target) in rows {
        println!("{what:<width$}  {value:>18}  {target:>8}");
    }
}
