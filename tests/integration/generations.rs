//! Both generations of the NGS360 WES API (behaviour §7): the earlier service, its callback
//! route at the root, and the current one, under `/ga4gh/wes/v1`, which tags each run with
//! `callback_url`. `API_SERVER` in either form reaches either; a `callback_url` tag is used
//! only within `CALLBACK_ORIGINS`, and the key never reaches another origin, redirects
//! included; a stream of lost, doubled and reordered events with an outage of the service
//! ends right after a replay and one reconcile, against each generation.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ngs360_omics::error::{CallbackError, Error};
use ngs360_omics::pipeline::{CallbackOutcome, Report};
use serde_json::{Value, json};

use crate::lambda::{lambda_env, spawn};
use crate::pipeline::{KEY, peers_of, wes_client_with};
use crate::recovery::destination_record;
use crate::support::http::{Response, Server};
use crate::support::moto::{self, aws_env, bucket, queue};
use crate::support::omics::{self, Omics};
use crate::support::run;
use crate::support::runtime_api::{Answer, RuntimeApi};
use crate::support::wes::{API_PREFIX, Generation, Mode, PATH, Wes};

/// A time `minutes` ago, as HealthOmics writes times.
fn ago(minutes: u64) -> String {
    crate::support::iso(std::time::SystemTime::now() - Duration::from_secs(minutes * 60))
}

fn arn(run_id: &str) -> String {
    format!("arn:aws:omics:eu-west-1:111122223333:run/{run_id}")
}

/// A HealthOmics event.
fn event(run_id: &str, status: &str, id: &str, time: &str) -> Value {
    json!({"version": "0", "id": id, "detail-type": "Run Status Change", "source": "aws.omics",
           "account": "111122223333", "time": time, "region": "eu-west-1", "resources": [arn(run_id)],
           "detail": {"arn": arn(run_id), "status": status, "runId": run_id}})
}

/// A run's description, tagged with its WES run and, when given, a `callback_url`.
fn run_json(run_id: &str, status: &str, wes_run: &str, tag: Option<&str>, start: &str, stop: Option<&str>) -> Value {
    let mut tags = json!({"WESRunId": wes_run, "Project": "P-20"});
    if let Some(tag) = tag {
        tags["callback_url"] = tag.into();
    }
    let mut run = json!({"arn": arn(run_id), "id": run_id, "uuid": format!("u-{run_id}"), "status": status,
                         "name": format!("run-{run_id}"), "creationTime": start, "startTime": start, "tags": tags});
    if let Some(stop) = stop {
        run["stopTime"] = stop.into();
    }
    run
}

/// A WES run id (36 characters) for a number.
fn wes_run(n: u32) -> String {
    format!("{n:08x}-0000-4000-8000-000000000020")
}

/// A server on another origin that must never be reached: it answers 200 to anything and
/// records what it got.
async fn foreign() -> Server {
    Server::start(|_req| async { Response::json(200, &json!({"message": "thanks for the key"})) }).await
}

/// The WES states a HealthOmics status ends in (behaviour §7).
fn wes_state(status: &str) -> &'static str {
    match status {
        "COMPLETED" => "COMPLETE",
        "FAILED" => "EXECUTOR_ERROR",
        "CANCELLED" => "CANCELED",
        _ => "RUNNING",
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_server_in_either_form_reaches_either_generation_and_the_mount_is_remembered() {
    for generation in [Generation::Earlier, Generation::Current] {
        for with_prefix in [false, true] {
            let wes = Wes::start_gen(KEY, generation).await;
            let base = if with_prefix { format!("{}{API_PREFIX}", wes.root()) } else { wes.root() };
            let label = format!("{generation:?}, API_SERVER={base}");
            let right = base == wes.api_server();
            let notifier = wes_client_with(&base, KEY, None);
            let tag = format!("mount-{generation:?}-{with_prefix}").to_lowercase();
            let p = peers_of(&tag, wes, |h| h.notifier = notifier).await;
            let outputs = bucket(&format!("{tag}-out")).await;
            let origin = format!("http://{}", p.wes.server.addr);
            let mut requests = Vec::new();
            for n in 0..3u32 {
                let run_id = format!("20{}{}{n}", generation as u8, with_prefix as u8);
                let w = wes_run(2000 + generation as u32 * 100 + with_prefix as u32 * 10 + n);
                p.wes.submit(&w);
                let run = run_json(&run_id, "RUNNING", &w, None, &ago(5), None);
                p.omics.set(&run_id, omics::Run::Found { run, tasks: vec![] });
                let before = p.wes.server.requests().len();
                let ev = crate::pipeline::event("RUNNING", &run_id, &format!("e-{run_id}"), &outputs);
                let report = p.handler.handle(Arc::from(ev)).await.unwrap_or_else(|e| panic!("{label}: {e}"));
                let Report::Processed { callback, callback_origin, .. } = &report else {
                    panic!("{label}: {report:?}")
                };
                assert_eq!(callback, &CallbackOutcome::Sent(200), "{label}");
                assert_eq!(callback_origin.as_deref(), Some(origin.as_str()), "{label}");
                assert_eq!(report.response()["callback_origin"], origin, "{label}");
                assert_eq!(p.wes.run_state(&w), Some("RUNNING"), "{label}: the WES run moved");
                requests.push(p.wes.server.requests().len() - before);
            }
            // The wrong mount costs one request, once: the other is used from then on.
            assert_eq!(requests, if right { [1, 1, 1] } else { [2, 1, 1] }, "{label}");
            assert_eq!(p.wes.callbacks(), 3, "{label}");
            assert_eq!(p.handler.notifier.url(), p.wes.callback_url(), "{label}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn neither_mount_answering_fails_the_invocation_naming_both_and_api_server() {
    let wes = Wes::start_gen(KEY, Generation::Current).await;
    let base = format!("{}/wes", wes.root());
    let notifier = wes_client_with(&base, KEY, None);
    let p = peers_of("no-mount", wes, |h| h.notifier = notifier).await;
    let outputs = bucket("no-mount-out").await;
    let w = wes_run(2100);
    p.wes.submit(&w);
    p.omics.set(
        "2100001",
        omics::Run::Found { run: run_json("2100001", "RUNNING", &w, None, &ago(5), None), tasks: vec![] },
    );
    let err = p
        .handler
        .handle(Arc::from(crate::pipeline::event("RUNNING", "2100001", "e-2100001", &outputs)))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Callback(CallbackError::NoRoute { .. })), "{err}");
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("callback to {base}{PATH} and {base}{API_PREFIX}{PATH}: no such route (HTTP 404"))
            && text.contains("API_SERVER is wrong"),
        "{text}"
    );
    assert_eq!(p.archive().await.len(), 1, "archived all the same");
    assert_eq!(p.wes.run_state(&w), Some("QUEUED"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_url_tag_is_used_only_within_the_allow_list_and_the_key_never_leaves_for_another_origin() {
    let foreign = foreign().await;
    let wes = Wes::start_gen(KEY, Generation::Current).await;
    let notifier = wes_client_with(&wes.api_server(), KEY, None);
    let service_tag = wes.tag().unwrap();
    let p = peers_of("tags", wes, |h| h.notifier = notifier).await;
    let outputs = bucket("tags-out").await;
    let (own, far) = (p.wes.server.addr, foreign.addr);
    let route = format!("{API_PREFIX}{PATH}");
    // Each tag, and whether it is used; an unused one leaves the callback on API_SERVER's
    // route, which is the same service here.
    let cases: Vec<(&str, String)> = vec![
        ("the service's own tag", service_tag.clone()),
        ("a foreign origin", format!("http://{far}{route}")),
        ("https where the list says http", format!("https://{own}{route}")),
        ("another port of the same host", format!("http://127.0.0.1:{}{route}", far.port())),
        ("a metadata address", "http://169.254.169.254/latest/meta-data/iam/security-credentials/".into()),
        ("not a URL", "ngs360 wes callback".into()),
        ("1 MB long", format!("http://{own}/{}{route}", "a".repeat(1 << 20))),
        ("user info naming the allowed origin", format!("http://{own}@{far}{route}")),
        ("a query", format!("http://{own}{route}?next=http://{far}/")),
        ("another path", format!("http://{own}/ga4gh/wes/v1/runs")),
    ];
    for (n, (what, tag)) in cases.into_iter().enumerate() {
        let run_id = format!("22000{n:02}");
        let w = wes_run(2200 + n as u32);
        p.wes.submit(&w);
        let run = run_json(&run_id, "RUNNING", &w, Some(&tag), &ago(5), None);
        p.omics.set(&run_id, omics::Run::Found { run, tasks: vec![] });
        let before = p.wes.callbacks();
        let ev = crate::pipeline::event("RUNNING", &run_id, &format!("e-{run_id}"), &outputs);
        let report = p.handler.handle(Arc::from(ev)).await.unwrap_or_else(|e| panic!("{what}: {e}"));
        let Report::Processed { callback, callback_origin, .. } = &report else { panic!("{what}: {report:?}") };
        assert_eq!(callback, &CallbackOutcome::Sent(200), "{what}");
        assert_eq!(callback_origin.as_deref(), Some(format!("http://{own}").as_str()), "{what}");
        assert_eq!(p.wes.callbacks(), before + 1, "{what}: the callback reached the service once");
        assert_eq!(p.wes.run_state(&w), Some("RUNNING"), "{what}");
    }
    // A 10 MB tag makes a record over its 8 MiB bound (the record holds every tag): the
    // invocation fails before any callback, so the key goes nowhere.
    let w = wes_run(2299);
    p.wes.submit(&w);
    let tag = format!("http://{far}/{}{route}", "a".repeat(10 << 20));
    p.omics.set(
        "2299001",
        omics::Run::Found { run: run_json("2299001", "RUNNING", &w, Some(&tag), &ago(5), None), tasks: vec![] },
    );
    let before = p.wes.callbacks();
    let err = p.handler.handle(Arc::from(crate::pipeline::event("RUNNING", "2299001", "e-2299001", &outputs))).await;
    assert!(matches!(err, Err(Error::Guest(_))), "{err:?}");
    assert_eq!(p.wes.callbacks(), before);
    assert!(foreign.requests().is_empty(), "the foreign origin was never reached: {:?}", foreign.requests());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_redirect_is_followed_so_the_key_never_leaves_for_another_origin() {
    let foreign = foreign().await;
    let target = format!("http://{}{API_PREFIX}{PATH}", foreign.addr);
    let redirector = Server::start(move |_req| {
        let target = target.clone();
        async move { Response::json(307, &json!({"detail": "moved"})).header("location", &target) }
    })
    .await;
    let wes = Wes::start_gen(KEY, Generation::Current).await;
    // The redirector's origin is allowed: a tag may name it, and the key may go there.
    let origins = format!("{},{}", wes.server.url(), redirector.url());
    let notifier = wes_client_with(&wes.api_server(), KEY, Some(&origins));
    let p = peers_of("redirect", wes, |h| h.notifier = notifier).await;
    let outputs = bucket("redirect-out").await;
    let w = wes_run(2300);
    p.wes.submit(&w);
    let tag = format!("{}{API_PREFIX}{PATH}", redirector.url());
    let run = run_json("2300001", "RUNNING", &w, Some(&tag), &ago(5), None);
    p.omics.set("2300001", omics::Run::Found { run, tasks: vec![] });
    let err = p.handler.handle(Arc::from(crate::pipeline::event("RUNNING", "2300001", "e-2300001", &outputs))).await;
    let err = err.unwrap_err();
    assert!(matches!(err, Error::Callback(CallbackError::Status { status: 307, .. })), "{err}");
    assert_eq!(redirector.requests().len(), 1, "one request, not followed");
    assert_eq!(redirector.requests()[0].header("x-internal-api-key"), Some(KEY), "an allowed origin gets the key");

    // API_SERVER itself redirecting: the same.
    let notifier = wes_client_with(&redirector.url(), KEY, None);
    let p = peers_of("redirect-api", Wes::start_gen(KEY, Generation::Current).await, |h| h.notifier = notifier).await;
    p.omics.set(
        "2300002",
        omics::Run::Found { run: run_json("2300002", "RUNNING", &w, None, &ago(5), None), tasks: vec![] },
    );
    let err = p.handler.handle(Arc::from(crate::pipeline::event("RUNNING", "2300002", "e-2300002", &outputs))).await;
    assert!(matches!(err, Err(Error::Callback(CallbackError::Status { status: 307, .. }))), "{err:?}");
    assert!(foreign.requests().is_empty(), "the redirect's target was never reached: {:?}", foreign.requests());
}

/// What an operator sees of one event through `process`: the requests the WES service got
/// (paths), the origin the response names, and the WARN lines, in short.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    paths: Vec<String>,
    origin: String,
    warnings: Vec<&'static str>,
}

fn warnings(stderr: &str) -> Vec<&'static str> {
    let mut out = Vec::new();
    // The AWS SDK's own WARN about the tests' AWS config files (which point nowhere) aside.
    for line in
        stderr.lines().filter(|l| l.contains("WARN") && !l.contains("config file overridden via environment variable"))
    {
        out.push(if line.contains("callback_url tag is not used") {
            "tag refused"
        } else if line.contains("callback_url tag names a URL the WES API does not serve") {
            "tag has no route"
        } else if line.contains("set API_SERVER=") {
            "set API_SERVER"
        } else {
            panic!("an unexpected WARN: {line}")
        });
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_generation_api_server_form_and_tag_ends_at_the_service() {
    let foreign = foreign().await;
    let mut table = vec![
        "| service | `API_SERVER` | `callback_url` tag | requests (path: answer) | called back at | WARN lines |"
            .to_owned(),
        "|---|---|---|---|---|---|".to_owned(),
    ];
    let tmp = crate::support::TempDir::new("matrix");
    let mut n = 0u32;
    for generation in [Generation::Earlier, Generation::Current] {
        let omics = Omics::start().await;
        let wes = Wes::start_gen(KEY, generation).await;
        let archive = bucket(&format!("matrix-{generation:?}").to_lowercase()).await;
        let (root, prefixed) = (wes.root(), format!("{}{API_PREFIX}", wes.root()));
        let service_tag = format!("{prefixed}{PATH}");
        let foreign_tag = format!("{}{API_PREFIX}{PATH}", foreign.url());
        for (form, base) in [("root", &root), ("with /ga4gh/wes/v1", &prefixed)] {
            for (kind, tag) in
                [("none", None), ("the current service's", Some(&service_tag)), ("foreign", Some(&foreign_tag))]
            {
                n += 1;
                let run_id = format!("24000{n:02}");
                let w = wes_run(2400 + n);
                wes.submit(&w);
                let described = run_json(&run_id, "RUNNING", &w, tag.map(String::as_str), &ago(5), None);
                omics.set(&run_id, omics::Run::Found { run: described, tasks: vec![] });
                let file = tmp.0.join(format!("{run_id}.json"));
                std::fs::write(&file, event(&run_id, "RUNNING", &format!("e-{run_id}"), &ago(4)).to_string()).unwrap();
                let mut env = aws_env(&omics.url());
                env.extend(
                    [("API_SERVER", base.as_str()), ("DATA_LAKE_BUCKET", &archive), ("AUTH_TOKEN", KEY)]
                        .map(|(k, v)| (k.to_owned(), v.to_owned())),
                );
                let before = wes.server.requests().len();
                let (code, stdout, stderr) =
                    tokio::task::block_in_place(|| run(&["process", file.to_str().unwrap()], &env));
                let label = format!("{generation:?}, {form}, tag {kind}");
                assert_eq!(code, 0, "{label}: {stdout}{stderr}");
                let response: Value = serde_json::from_str(&stdout).unwrap();
                assert_eq!(response["callback"], "sent (HTTP 200)", "{label}: {response}");
                assert_eq!(wes.run_state(&w), Some("RUNNING"), "{label}");
                let paths: Vec<String> = wes.server.requests()[before..].iter().map(|r| r.path().to_owned()).collect();
                let seen = Seen {
                    paths: paths.clone(),
                    origin: response["callback_origin"].as_str().unwrap_or_default().to_owned(),
                    warnings: warnings(&stderr),
                };
                // What each cell must be: the route the service serves is reached last; the
                // wrong mount costs one request; a tag is used only on its own origin.
                let served = wes.callback_url().strip_prefix(&wes.server.url()).unwrap().to_owned();
                let (other_path, prefixed_path) = (PATH.to_owned(), format!("{API_PREFIX}{PATH}"));
                let configured_first = if base == &root { other_path.clone() } else { prefixed_path.clone() };
                let mut expected_paths = Vec::new();
                let mut expected_warnings = Vec::new();
                match (kind, generation) {
                    ("the current service's", Generation::Current) => expected_paths.push(prefixed_path.clone()),
                    (k, _) => {
                        if k == "the current service's" {
                            expected_paths.push(prefixed_path.clone());
                            expected_warnings.push("tag has no route");
                        }
                        if k == "foreign" {
                            expected_warnings.insert(0, "tag refused");
                        }
                        if configured_first != served {
                            expected_paths.push(configured_first.clone());
                            expected_warnings.push("set API_SERVER");
                        }
                        expected_paths.push(served.clone());
                    }
                }
                assert_eq!(
                    seen,
                    Seen {
                        paths: expected_paths,
                        origin: format!("http://{}", wes.server.addr),
                        warnings: expected_warnings
                    },
                    "{label}: {stderr}"
                );
                let requests = paths
                    .iter()
                    .map(|p| format!("`{p}`: {}", if *p == served { "200" } else { "404" }))
                    .collect::<Vec<_>>()
                    .join(", then ");
                let service = match generation {
                    Generation::Earlier => "earlier (route at the root)",
                    Generation::Current => "current (route under /ga4gh/wes/v1)",
                };
                let warned = if seen.warnings.is_empty() { "none".to_owned() } else { seen.warnings.join("; ") };
                table.push(format!("| {service} | {form} | {kind} | {requests} | the service's origin | {warned} |"));
            }
        }
    }
    assert!(foreign.requests().is_empty(), "the foreign origin was never reached");
    eprintln!("{}", table.join("\n"));
}

/// The runs of the stream: id, HealthOmics' last status, and whether a foreign
/// `callback_url` tag replaces the service's own.
const RUNS: [(&str, &str, bool); 8] = [
    ("2500001", "COMPLETED", false),
    ("2500002", "FAILED", false),
    ("2500003", "CANCELLED", false),
    ("2500004", "RUNNING", false),
    ("2500005", "COMPLETED", false),
    ("2500006", "FAILED", false),
    ("2500007", "COMPLETED", true),
    ("2500008", "COMPLETED", false),
];

/// The stream EventBridge delivers, in order: lost events are absent (run 1's STARTING and
/// RUNNING, every event of run 5), some come twice (run 2's RUNNING, run 7's COMPLETED),
/// some out of order (run 3's CANCELLED and run 6's FAILED before their start).
const STREAM: [(&str, &str, &str); 16] = [
    ("2500002", "RUNNING", "e2-running"),
    ("2500004", "PENDING", "e4-pending"),
    ("2500003", "CANCELLED", "e3-cancelled"),
    ("2500007", "RUNNING", "e7-running"),
    ("2500002", "RUNNING", "e2-running"),
    ("2500006", "FAILED", "e6-failed"),
    ("2500008", "RUNNING", "e8-running"),
    ("2500004", "STARTING", "e4-starting"),
    ("2500001", "COMPLETED", "e1-completed"),
    ("2500008", "COMPLETED", "e8-completed"),
    ("2500004", "RUNNING", "e4-running"),
    ("2500003", "RUNNING", "e3-running"),
    ("2500002", "FAILED", "e2-failed"),
    ("2500007", "COMPLETED", "e7-completed"),
    ("2500006", "STARTING", "e6-starting"),
    ("2500007", "COMPLETED", "e7-completed"),
];

/// The WES service is down (500 to everything) while these positions of the stream are
/// delivered; a failed invocation is retried two positions later, then four more (Lambda's
/// 1 and 2 minutes), then it is a dead letter: runs 1's and 8's COMPLETED end there.
const OUTAGE: std::ops::Range<usize> = 8..16;

/// Lost, doubled and reordered events, an outage of the WES service and transient
/// HealthOmics faults, through the function in Lambda mode; then the dead letters replayed
/// and one reconcile. Every WES run ends equal to its HealthOmics run, every delivered event
/// is archived exactly once, and a foreign `callback_url` never sees a request.
async fn stream_ends_right(generation: Generation, prefixed: bool) {
    let label = format!("{generation:?}, API_SERVER {}", if prefixed { "with /ga4gh/wes/v1" } else { "root" });
    let api = RuntimeApi::start().await;
    let omics = Omics::start().await;
    let wes = Wes::start_gen(KEY, generation).await;
    let foreign = foreign().await;
    let tag = format!("stream-{generation:?}-{prefixed}").to_lowercase();
    let archive = bucket(&tag).await;
    let dead_letters = queue(&tag).await;
    let api_server = if prefixed { format!("{}{API_PREFIX}", wes.root()) } else { wes.root() };
    let foreign_tag = format!("{}{API_PREFIX}{PATH}", foreign.url());
    let (start, stop) = (ago(100), ago(30));
    let mut wes_runs = HashMap::new();
    for (n, (run_id, status, foreign_tagged)) in RUNS.iter().enumerate() {
        let w = wes_run(2500 + n as u32);
        wes.submit(&w);
        let tag = if *foreign_tagged { Some(foreign_tag.clone()) } else { wes.tag() };
        let stopped = (*status != "RUNNING").then_some(stop.as_str());
        let described = run_json(run_id, status, &w, tag.as_deref(), &start, stopped);
        let tasks = vec![json!({"taskId": format!("{run_id}1"), "name": "align", "status": "COMPLETED"})];
        omics.set(run_id, omics::Run::Found { run: described, tasks });
        wes_runs.insert(*run_id, w);
    }
    let mut env = aws_env(&omics.url());
    env.extend(
        [("API_SERVER", api_server.as_str()), ("DATA_LAKE_BUCKET", &archive), ("AUTH_TOKEN", KEY)]
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
    );
    let mut lambda = lambda_env(&api);
    lambda.extend(env.clone());
    let (proc, _) = spawn(&lambda);

    // One in five HealthOmics requests fails (throttled, or a 500) while the stream runs.
    omics.fail_every(5);
    let events: Vec<Value> = STREAM
        .iter()
        .map(|(run_id, status, id)| {
            let time = if matches!(*status, "PENDING" | "STARTING" | "RUNNING") { &start } else { &stop };
            event(run_id, status, id, time)
        })
        .collect();
    // (position, order of arrival, the event, its attempt)
    let mut deliveries: Vec<(usize, usize, usize, u32)> = (0..events.len()).map(|i| (i, i, i, 1)).collect();
    let (mut invocations, mut failed, mut dead) = (0, 0, 0);
    let mut seq = events.len();
    while let Some(next) = deliveries.iter().enumerate().min_by_key(|(_, d)| (d.0, d.1)).map(|(i, _)| i) {
        let (position, _, e, attempt) = deliveries.swap_remove(next);
        wes.set_mode(if OUTAGE.contains(&position) { Mode::Broken } else { Mode::Normal });
        invocations += 1;
        let request = format!("r-{invocations}");
        api.invoke(&request, events[e].to_string().as_bytes());
        match api.answer(&request, Duration::from_secs(60)).await {
            Answer::Response(_) => {}
            Answer::Error(_) if attempt < 3 => {
                failed += 1;
                seq += 1;
                deliveries.push((position + 2 * attempt as usize, seq, e, attempt + 1));
            }
            Answer::Error(error) => {
                failed += 1;
                dead += 1;
                let body = destination_record(&events[e], &error);
                moto::sqs().await.send_message().queue_url(&dead_letters).message_body(body).send().await.unwrap();
            }
        }
    }
    omics.fail_every(0);
    wes.set_mode(Mode::Normal);
    assert!(
        dead >= 2,
        "{label}: the outage outlasted two events' retries ({invocations} invocations, {failed} failed)"
    );

    let (code, stdout, stderr) = tokio::task::block_in_place(|| run(&["replay", "--queue", &dead_letters], &env));
    assert_eq!(code, 0, "{label}: {stdout}{stderr}");
    assert!(stdout.ends_with(&format!("{dead} of {dead} dead letters replayed; 0 remain\n")), "{label}: {stdout}");
    let (code, stdout, stderr) = tokio::task::block_in_place(|| run(&["reconcile", "--since", "3h"], &env));
    assert_eq!(code, 0, "{label}: {stdout}{stderr}");
    let summary: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!((summary["in_window"].as_u64(), summary["failed"].as_u64()), (Some(8), Some(0)), "{label}: {summary}");

    for (run_id, status, _) in RUNS {
        assert_eq!(wes.run_state(&wes_runs[run_id]), Some(wes_state(status)), "{label}: run {run_id}");
    }
    // The state rules of each generation: a FAILED run still QUEUED is healed (its start
    // reported first) by the earlier service, moved at once by the current one.
    let failed_first = wes.history(&wes_runs["2500006"]);
    match generation {
        Generation::Earlier => assert_eq!(failed_first, ["RUNNING", "EXECUTOR_ERROR"], "{label}"),
        Generation::Current => assert_eq!(failed_first, ["EXECUTOR_ERROR"], "{label}"),
    }
    assert!(foreign.requests().is_empty(), "{label}: the foreign callback_url was never reached");

    // Every delivered event is archived once, and one reconciled event per run.
    let listed = moto::s3().await.list_objects_v2().bucket(&archive).send().await.unwrap();
    let keys: Vec<String> =
        listed.contents().iter().map(|o| o.key().unwrap().to_owned()).filter(|k| !k.contains("/_reconcile/")).collect();
    let mut delivered: Vec<&str> = STREAM.iter().map(|(_, _, id)| *id).collect();
    delivered.sort_unstable();
    delivered.dedup();
    for id in &delivered {
        assert_eq!(keys.iter().filter(|k| k.ends_with(&format!("_{id}.json"))).count(), 1, "{label}: {id} in {keys:?}");
    }
    assert_eq!(keys.len(), delivered.len() + RUNS.len(), "{label}: {keys:?}");

    // What the function said: the refused tag, each time with its metric, and the mount.
    let out = proc.stdout();
    let refused: Vec<Value> = out
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|m| m["CallbackUrlRefused"] == 1)
        .collect();
    assert!(refused.len() >= 3 && refused.iter().all(|m| m["run_id"] == "2500007"), "{label}: {refused:?}");
    let warned = out.lines().filter(|l| l.contains("WARN") && l.contains("callback_url tag is not used")).count();
    assert_eq!(warned, refused.len(), "{label}: one WARN per refused tag");
    let switched = out.lines().filter(|l| l.contains("WARN") && l.contains("set API_SERVER=")).count();
    let right = api_server == wes.api_server();
    assert_eq!(switched, usize::from(!right), "{label}: the mount is found once per instance\n{out}");
    eprintln!(
        "{label}: {invocations} invocations, {failed} failed, {dead} dead letters replayed, reconcile {}",
        summary
    );
    drop(proc);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_of_lost_doubled_and_reordered_events_ends_right_with_either_generation() {
    // The four at once: each has its own peers, function and queue.
    let streams: Vec<_> = [
        (Generation::Current, true),
        (Generation::Earlier, false),
        (Generation::Current, false),
        (Generation::Earlier, true),
    ]
    .into_iter()
    .map(|(generation, prefixed)| tokio::spawn(stream_ends_right(generation, prefixed)))
    .collect();
    for stream in streams {
        stream.await.unwrap();
    }
}
