//! The whole pipeline in-process, against real peers on loopback: moto's S3 through
//! aws-sdk-s3, the HealthOmics test server through aws-sdk-omics, the WES API test server
//! through reqwest.

use std::sync::Arc;
use std::time::Duration;

use ngs360_omics::adapters::aws;
use ngs360_omics::adapters::enricher::AwsEnricher;
use ngs360_omics::adapters::refresh::GuestSlot;
use ngs360_omics::adapters::s3::S3Archive;
use ngs360_omics::adapters::tls;
use ngs360_omics::adapters::wes::{KeyLoader, WesClient};
use ngs360_omics::config::{ApiKey, CallbackOrigins, Layout, Mounts, api_server};
use ngs360_omics::error::{CallbackError, Error};
use ngs360_omics::lambda::Function;
use ngs360_omics::pipeline::{ArchiveTarget, CallbackOutcome, Handler, Report};
use ngs360_omics::ports::Archived;
use ngs360_omics::sandbox::{Limits, Runtime};
use serde_json::{Value, json};

use crate::support::moto::{self, bucket};
use crate::support::omics::{self, Omics};
use crate::support::wes::{Mode, Wes};
use crate::support::{FIXTURE_OUTPUTS, Fixture, serve_fixture};

pub const KEY: &str = "k-3f9a-callback-key-7c21";

pub struct Peers {
    pub omics: Omics,
    pub wes: Wes,
    pub bucket: String,
    pub s3: aws_sdk_s3::Client,
    pub handler: Function,
}

/// A WES client for `API_SERVER` = `base`, with `key`, the public roots, and a 1 s time
/// limit; `CALLBACK_ORIGINS` is `origins`, or `API_SERVER`'s origin alone.
pub fn wes_client_with(base: &str, key: &str, origins: Option<&str>) -> WesClient {
    let key = KeyLoader::Given(ApiKey::new(key.into()));
    let base = api_server(base).unwrap();
    let origins = CallbackOrigins::from_setting(origins, &base).unwrap();
    WesClient::new(Mounts::of(&base), origins, key, Duration::from_secs(1), tls::client_config(None).unwrap()).unwrap()
}

fn wes_client(base: &str, key: &str) -> WesClient {
    wes_client_with(base, key, None)
}

pub async fn peers(tag: &str) -> Peers {
    peers_with(tag, |_| {}).await
}

pub async fn peers_with(tag: &str, tweak: impl FnOnce(&mut Function)) -> Peers {
    peers_of(tag, Wes::start(KEY).await, tweak).await
}

/// Peers around `wes`, with `API_SERVER` as its documentation gives it; `tweak` may change
/// the handler.
pub async fn peers_of(tag: &str, wes: Wes, tweak: impl FnOnce(&mut Function)) -> Peers {
    let omics = Omics::start().await;
    let bucket = bucket(tag).await;
    let s3 = moto::s3().await;
    let omics_client = aws::omics_client(&moto::sdk_config(&omics.url()).await);
    let guest = Runtime::new().unwrap().bundled(Limits::default()).await.unwrap();
    let mut handler = Handler {
        guest: GuestSlot::new(guest),
        refresher: None,
        metrics: None,
        enricher: AwsEnricher { omics: omics_client.into(), s3: s3.clone().into() },
        archive: S3Archive { s3: s3.clone().into() },
        notifier: wes_client(&wes.api_server(), KEY),
        target: ArchiveTarget { bucket: bucket.clone(), prefix: "omics-run-events".into(), layout: Layout::Flat },
        capture: None,
        throttle_budget: ngs360_omics::adapters::omics::THROTTLE_BUDGET,
    };
    tweak(&mut handler);
    Peers { omics, wes, bucket, s3, handler }
}

impl Peers {
    /// Every object in the archive bucket: key to body.
    pub async fn archive(&self) -> Vec<(String, String)> {
        let listed = self.s3.list_objects_v2().bucket(&self.bucket).send().await.unwrap();
        let mut out = Vec::new();
        for obj in listed.contents() {
            let key = obj.key().unwrap().to_owned();
            let body = self.s3.get_object().bucket(&self.bucket).key(&key).send().await.unwrap();
            let bytes = body.body.collect().await.unwrap().into_bytes();
            out.push((key, String::from_utf8(bytes.to_vec()).unwrap()));
        }
        out
    }
}

/// A run event of the given status for a run nobody else uses.
pub fn event(status: &str, run_id: &str, event_id: &str, outputs_bucket: &str) -> Vec<u8> {
    json!({
        "version": "0", "id": event_id, "detail-type": "Run Status Change", "source": "aws.omics",
        "account": "111122223333", "time": "2026-03-02T14:05:09Z", "region": "eu-west-1",
        "resources": [format!("arn:aws:omics:eu-west-1:111122223333:run/{run_id}")],
        "detail": {"arn": format!("arn:aws:omics:eu-west-1:111122223333:run/{run_id}"), "status": status,
                   "runId": run_id, "runOutputUri": format!("s3://{outputs_bucket}/runs/{run_id}")}
    })
    .to_string()
    .into_bytes()
}

pub fn run_json(run_id: &str, wes_run_id: Option<&str>) -> Value {
    let mut tags = json!({"Project": "P-7"});
    if let Some(w) = wes_run_id {
        tags["WESRunId"] = w.into();
    }
    json!({"arn": format!("arn:aws:omics:eu-west-1:111122223333:run/{run_id}"), "id": run_id,
           "uuid": "5d2c1b0a-9f8e-4d7c-8b6a-5f4e3d2c1b0a", "status": "COMPLETED", "tags": tags,
           "creationTime": "2026-03-02T12:58:41.120Z"})
}

pub const WES_RUN: &str = "0b5c3f0e-6a36-4b0e-9d43-64c4a4f0a0e1";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fixture_case_gives_the_expected_archive_and_callback() {
    let p = peers("fixtures").await;
    let _outputs = FIXTURE_OUTPUTS.lock().await;
    for f in Fixture::all() {
        serve_fixture(&p.omics, &p.s3, &f).await;
        let posted_before = p.wes.accepted().len();
        let result = p.handler.handle(Arc::from(f.event.clone())).await;
        if let Some(record) = f.record() {
            let Ok(Report::Processed { uri, archived, callback, .. }) = result else {
                panic!("{}: {result:?}", f.name)
            };
            assert_eq!(archived, Archived::Written, "{}", f.name);
            let key = format!("omics-run-events/{}", f.expected["archive_key"].as_str().unwrap());
            assert_eq!(uri, format!("s3://{}/{key}", p.bucket), "{}", f.name);
            let body = p.s3.get_object().bucket(&p.bucket).key(&key).send().await.unwrap();
            assert_eq!(body.server_side_encryption().map(|s| s.as_str()), Some("AES256"), "{}", f.name);
            assert_eq!(body.content_type(), Some("application/json"), "{}", f.name);
            let stored_record = String::from_utf8(body.body.collect().await.unwrap().into_bytes().to_vec()).unwrap();
            assert_eq!(stored_record, record, "{}", f.name);
            let posted = p.wes.accepted();
            match f.expected["callback"].as_str().unwrap() {
                "send" => {
                    assert!(matches!(callback, CallbackOutcome::Sent(200)), "{}: {callback:?}", f.name);
                    assert_eq!(posted.len(), posted_before + 1, "{}", f.name);
                    assert_eq!(serde_json::to_string(posted.last().unwrap()).unwrap(), record, "{}", f.name);
                }
                _ => {
                    assert!(matches!(callback, CallbackOutcome::Skipped(_)), "{}: {callback:?}", f.name);
                    assert_eq!(posted.len(), posted_before, "{}", f.name);
                }
            }
        } else if f.expected.get("ignored").is_some() {
            assert!(matches!(result, Ok(Report::Ignored(_))), "{}: {result:?}", f.name);
        } else {
            assert!(matches!(result, Err(Error::Guest(_))), "{}: {result:?}", f.name);
        }
    }
    // The large runs: 1,203 and 1,500 tasks. The first 1,000 tasks are 10 pages of 100, the
    // last of which says there are more; the FAILED run's failed tasks are one more
    // (filtered) listing. Nothing beyond.
    assert_eq!(p.omics.calls("/run/5521900/task"), 10);
    let failed_run_listings = p.omics.calls("/run/5521901/task");
    assert!((11..=15).contains(&failed_run_listings), "{failed_run_listings}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivered_event_is_archived_once_and_both_invocations_succeed() {
    let p = peers("redelivery").await;
    let outputs = bucket("redelivery-out").await;
    p.omics.set("8100001", omics::Run::Found { run: run_json("8100001", Some(WES_RUN)), tasks: vec![] });
    let ev: Arc<[u8]> = Arc::from(event("RUNNING", "8100001", "e-8100001", &outputs));
    let first = p.handler.handle(ev.clone()).await.unwrap();
    let second = p.handler.handle(ev).await.unwrap();
    let Report::Processed { archived: s1, .. } = first else { panic!() };
    let Report::Processed { archived: s2, .. } = second else { panic!() };
    assert_eq!((s1, s2), (Archived::Written, Archived::AlreadyThere));
    let archive = p.archive().await;
    assert_eq!(archive.len(), 1);
    assert_eq!(archive[0].0, "omics-run-events/event_20260302_140509_e-8100001.json");
    assert_eq!(p.wes.accepted().len(), 2, "the WES API answers 200 for an event it already has");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callback_failures_fail_the_invocation_keep_the_archive_and_a_retry_succeeds() {
    let p = peers("callback-fail").await;
    let outputs = bucket("callback-fail-out").await;
    p.omics.set("8200001", omics::Run::Found { run: run_json("8200001", Some(WES_RUN)), tasks: vec![] });
    let cases = [
        (Mode::Broken, "answered HTTP 500"),
        (Mode::Hang, "timed out after 1 s"),
        (Mode::Stuck, "refused the state transition (HTTP 400"),
    ];
    for (i, (mode, message)) in cases.into_iter().enumerate() {
        let ev: Arc<[u8]> = Arc::from(event("RUNNING", "8200001", &format!("e-8200001-{i}"), &outputs));
        p.wes.set_mode(mode);
        let err = p.handler.handle(ev.clone()).await.unwrap_err();
        assert!(matches!(err, Error::Callback(_)), "{mode:?}: {err}");
        assert!(err.to_string().contains(message), "{mode:?}: {err}");
        assert_eq!(p.archive().await.len(), i + 1, "{mode:?}: the record is archived anyway");
        p.wes.set_mode(Mode::Normal);
        let Report::Processed { archived, callback, .. } = p.handler.handle(ev).await.unwrap() else { panic!() };
        assert_eq!((archived, callback), (Archived::AlreadyThere, CallbackOutcome::Sent(200)), "{mode:?}");
        assert_eq!(p.archive().await.len(), i + 1, "{mode:?}: no second object");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_refused_fails_the_invocation() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let p = peers_with("refused", |h| {
        h.notifier = wes_client(&format!("http://{closed}"), KEY);
    })
    .await;
    let outputs = bucket("refused-out").await;
    p.omics.set("8300001", omics::Run::Found { run: run_json("8300001", Some(WES_RUN)), tasks: vec![] });
    let err = p.handler.handle(Arc::from(event("RUNNING", "8300001", "e-8300001", &outputs))).await.unwrap_err();
    assert!(err.to_string().contains("could not connect"), "{err}");
    assert_eq!(p.archive().await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_wes_run_is_rejected_for_good_but_a_wrong_key_or_route_fails() {
    let p = peers("callback-404").await;
    let outputs = bucket("callback-404-out").await;
    // A WES run the service does not know: 404 naming the run, rejected for good.
    let unknown = "5e0c1f2a-0000-4000-8000-00000000dead";
    p.omics.set("8400001", omics::Run::Found { run: run_json("8400001", Some(unknown)), tasks: vec![] });
    let report = p.handler.handle(Arc::from(event("RUNNING", "8400001", "e-8400001", &outputs))).await.unwrap();
    assert!(matches!(report, Report::Processed { callback: CallbackOutcome::Rejected(404), .. }), "{report:?}");

    // A wrong key: 401, the invocation fails, and the key shows nowhere.
    let wrong = peers_with("callback-401", |h| {
        h.notifier = wes_client(&p.wes.api_server(), "wrong-key-0001");
    })
    .await;
    wrong.omics.set("8400002", omics::Run::Found { run: run_json("8400002", Some(WES_RUN)), tasks: vec![] });
    let err = wrong.handler.handle(Arc::from(event("RUNNING", "8400002", "e-8400002", &outputs))).await.unwrap_err();
    assert!(err.to_string().contains("answered HTTP 401"), "{err}");
    assert!(!err.to_string().contains("wrong-key-0001") && !format!("{err:?}").contains("wrong-key-0001"));

    // An API_SERVER under which the service mounts the route at neither known place: the
    // framework's bare 404 at both is not a verdict on the event; the invocation fails and
    // the error names both URLs and API_SERVER.
    let misrouted = peers_with("callback-route", |h| {
        h.notifier = wes_client(&format!("{}/elsewhere", p.wes.api_server()), KEY);
    })
    .await;
    misrouted.omics.set("8400003", omics::Run::Found { run: run_json("8400003", Some(WES_RUN)), tasks: vec![] });
    let err =
        misrouted.handler.handle(Arc::from(event("RUNNING", "8400003", "e-8400003", &outputs))).await.unwrap_err();
    assert!(matches!(err, Error::Callback(CallbackError::NoRoute { .. })), "{err}");
    let root = p.wes.api_server();
    assert!(
        err.to_string().starts_with(&format!(
            "callback to {root}/elsewhere/internal/callbacks/omics-state-change and \
             {root}/elsewhere/ga4gh/wes/v1/internal/callbacks/omics-state-change: no such route (HTTP 404"
        )) && err.to_string().contains("API_SERVER is wrong"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_unreachable_fails_the_invocation() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let dead = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&moto::sdk_config(&format!("http://{closed}")).await)
            .force_path_style(true)
            .build(),
    );
    let p = peers_with("s3-down", |h| h.archive = S3Archive { s3: dead.into() }).await;
    let outputs = bucket("s3-down-out").await;
    p.omics.set("8500001", omics::Run::Found { run: run_json("8500001", Some(WES_RUN)), tasks: vec![] });
    let err = p.handler.handle(Arc::from(event("RUNNING", "8500001", "e-8500001", &outputs))).await.unwrap_err();
    assert!(matches!(err, Error::Archive { .. }), "{err}");
    assert!(
        err.to_string().starts_with(&format!(
            "archiving to s3://{}/omics-run-events/event_20260302_140509_e-8500001.json failed",
            p.bucket
        )),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_what_nobody_can_fix_is_recorded_and_everything_else_fails() {
    // A throttle that never ends fails the event when its budget is spent (2 s here).
    let p = peers_with("enrichment", |h| h.throttle_budget = Duration::from_secs(2)).await;
    let outputs = bucket("enrichment-out").await;
    // The run is gone (HealthOmics keeps descriptions for a limited time): recorded.
    p.omics.set("8600001", omics::Run::Fails { status: 404, error: "ResourceNotFoundException" });
    let Report::Processed { callback, .. } =
        p.handler.handle(Arc::from(event("FAILED", "8600001", "e-8600001", &outputs))).await.unwrap()
    else {
        panic!()
    };
    assert!(matches!(callback, CallbackOutcome::Skipped(_)), "{callback:?}");
    let archive = p.archive().await;
    let record: Value = serde_json::from_str(&archive[0].1).unwrap();
    assert_eq!(
        record["enrichment_errors"],
        json!(["GetRun: not found (ResourceNotFoundException)", "ListRunTasks: not found (ResourceNotFoundException)"])
    );
    assert!(record["log_urls"]["task_logs_base_url"].is_string(), "{record}");

    // Access denied (an IAM mistake) is a configuration fault: the invocation fails, so the
    // event waits in the dead-letter queue instead of being archived without its callback.
    p.omics.set("8600004", omics::Run::Fails { status: 403, error: "AccessDeniedException" });
    let err = p.handler.handle(Arc::from(event("FAILED", "8600004", "e-8600004", &outputs))).await.unwrap_err();
    assert!(matches!(err, Error::Enrichment(_)), "{err}");
    let text = err.to_string();
    assert!(text.starts_with("enrichment: GetRun failed: HTTP 403 AccessDeniedException"), "{text}");
    assert!(text.contains("a configuration fault (the function's IAM policy"), "{text}");
    assert_eq!(p.archive().await.len(), 1, "nothing archived for it");

    p.omics.set("8600002", omics::Run::Found { run: run_json("8600002", Some(WES_RUN)), tasks: vec![] });
    let completed = event("COMPLETED", "8600002", "e-8600002", &outputs);
    p.s3.put_object()
        .bucket(&outputs)
        .key("runs/8600002/logs/outputs.json")
        .body(b"{not json".to_vec().into())
        .send()
        .await
        .unwrap();
    p.handler.handle(Arc::from(completed)).await.unwrap();
    let record: Value =
        serde_json::from_str(&p.archive().await.iter().find(|(k, _)| k.contains("e-8600002")).unwrap().1).unwrap();
    let errors = record["enrichment_errors"].as_array().unwrap();
    assert!(errors[0].as_str().unwrap().starts_with("outputs.json is not valid JSON"), "{errors:?}");
    assert!(record.get("output_mapping").is_none());

    p.omics.set("8600003", omics::Run::Fails { status: 429, error: "ThrottlingException" });
    let err = p.handler.handle(Arc::from(event("RUNNING", "8600003", "e-8600003", &outputs))).await.unwrap_err();
    assert!(matches!(err, Error::Enrichment(_)), "{err}");
    assert!(err.to_string().starts_with("enrichment: GetRun failed"), "{err}");
    assert!(err.to_string().contains("OMICS_THROTTLE_BUDGET_SECONDS"), "{err}");
    assert_eq!(p.archive().await.len(), 2, "a transient failure archives nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outputs_are_found_through_the_run_when_the_event_does_not_say() {
    let p = peers("after-run").await;
    let outputs = bucket("after-run-out").await;
    let mut run = run_json("8700001", Some(WES_RUN));
    run["outputUri"] = Value::from(format!("s3://{outputs}/base"));
    p.omics.set("8700001", omics::Run::Found { run, tasks: vec![json!({"taskId": "1", "name": "t"})] });
    p.s3.put_object()
        .bucket(&outputs)
        .key("base/8700001/logs/outputs.json")
        .body(br#"{"o":{"location":"s3://x/y"}}"#.to_vec().into())
        .send()
        .await
        .unwrap();
    let mut ev: Value = serde_json::from_slice(&event("COMPLETED", "8700001", "e-8700001", &outputs)).unwrap();
    ev["detail"].as_object_mut().unwrap().remove("runOutputUri");
    p.handler.handle(Arc::from(ev.to_string().into_bytes())).await.unwrap();
    let record: Value = serde_json::from_str(&p.archive().await[0].1).unwrap();
    assert_eq!(record["output_mapping"], json!({"o": "s3://x/y"}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminal_status_for_a_queued_run_reports_the_start_first_then_again() {
    let p = peers("heal").await;
    let outputs = bucket("heal-out").await;
    let wes_run = "7c1d2e3f-4a5b-4c6d-8e7f-8091a2b3c4d5";
    p.wes.submit(wes_run);
    let mut run = run_json("8800001", Some(wes_run));
    run["startTime"] = "2026-03-02T13:02:10.501Z".into();
    p.omics.set("8800001", omics::Run::Found { run, tasks: vec![json!({"taskId": "1", "name": "t"})] });

    // COMPLETED reaches a run still QUEUED (its RUNNING event was lost): 400, then the start
    // is reported from the run's description, then COMPLETED again.
    let report = p.handler.handle(Arc::from(event("COMPLETED", "8800001", "e-8800001", &outputs))).await.unwrap();
    let Report::Processed { callback, archived, .. } = &report else { panic!("{report:?}") };
    assert_eq!(callback, &CallbackOutcome::Healed(200));
    assert_eq!(*archived, Archived::Written);
    assert_eq!(p.wes.history(wes_run), ["RUNNING", "COMPLETE"]);
    assert_eq!(p.wes.run_state(wes_run), Some("COMPLETE"));
    let accepted = p.wes.accepted();
    let start = &accepted[accepted.len() - 2];
    assert_eq!((start["status"].as_str(), start["event_id"].as_str()), (Some("RUNNING"), Some("e-8800001:started")));
    assert_eq!(start["event_time"], "2026-03-02T13:02:10.501Z", "the run's own start time");
    assert_eq!(start["source"], "ngs360.reconcile");
    assert_eq!(accepted.last().unwrap()["status"], "COMPLETED");
    assert_eq!(p.archive().await.len(), 1, "the start is not archived: it is not an event");
    // Replayed, the same event is "already processed" and changes nothing.
    let again = p.handler.handle(Arc::from(event("COMPLETED", "8800001", "e-8800001", &outputs))).await.unwrap();
    assert!(
        matches!(
            again,
            Report::Processed { callback: CallbackOutcome::Sent(200), archived: Archived::AlreadyThere, .. }
        ),
        "{again:?}"
    );

    // A 400 that remains (the service will not move the run) fails the invocation.
    p.wes.set_mode(Mode::Stuck);
    p.omics.set("8800002", omics::Run::Found { run: run_json("8800002", Some(wes_run)), tasks: vec![] });
    let err = p.handler.handle(Arc::from(event("FAILED", "8800002", "e-8800002", &outputs))).await.unwrap_err();
    assert!(matches!(err, Error::Callback(CallbackError::Transition { .. })), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn captured_inputs_are_cases_that_give_the_same_record_again() {
    let p = peers_with("capture", |h| {
        h.capture =
            Some(ArchiveTarget { bucket: h.target.bucket.clone(), prefix: "captured".into(), layout: Layout::Flat });
    })
    .await;
    let _outputs = FIXTURE_OUTPUTS.lock().await;
    let mut processed = 0;
    for f in Fixture::all() {
        serve_fixture(&p.omics, &p.s3, &f).await;
        let result = p.handler.handle(Arc::from(f.event.clone())).await;
        processed += usize::from(matches!(result, Ok(Report::Processed { .. })));
    }
    // A permanent enrichment error (the run is unknown to HealthOmics) is captured too.
    p.omics.set("8900001", omics::Run::Fails { status: 404, error: "ResourceNotFoundException" });
    let outputs = bucket("capture-out").await;
    let unknown: Arc<[u8]> = Arc::from(event("COMPLETED", "8900001", "e-8900001", &outputs));
    assert!(matches!(p.handler.handle(unknown.clone()).await, Ok(Report::Processed { .. })));
    processed += 1;
    // A retry finds its inputs captured already and leaves them.
    assert!(matches!(p.handler.handle(unknown).await, Ok(Report::Processed { .. })));

    let tmp = crate::support::TempDir::new("captured");
    let mut archive = std::collections::HashMap::new();
    let mut folders = std::collections::BTreeSet::new();
    for (key, body) in p.archive().await {
        if let Some(rel) = key.strip_prefix("captured/") {
            let path = tmp.0.join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, body).unwrap();
            folders.insert(path.parent().unwrap().to_owned());
            let head = p.s3.head_object().bucket(&p.bucket).key(&key).send().await.unwrap();
            assert_eq!(head.server_side_encryption().map(|s| s.as_str()), Some("AES256"), "{key}");
        } else {
            let name = key.rsplit('/').next().unwrap().trim_end_matches(".json").to_owned();
            archive.insert(name, body);
        }
    }
    assert_eq!(folders.len(), processed, "one case folder per processed event");
    for folder in &folders {
        // {YYYY}/{MM}/{DD}/event_{YYYYMMDD}_..., dated like the archive key.
        let name = folder.file_name().unwrap().to_str().unwrap().to_owned();
        let date = folder.strip_prefix(&tmp.0).unwrap().to_str().unwrap().replace('/', "");
        assert!(date.starts_with(&name[6..14]), "{date} {name}");
        let (event, context) = (folder.join("event.json"), folder.join("context.json"));
        let args = ["transform", event.to_str().unwrap(), "--context", context.to_str().unwrap()];
        let (code, stdout, stderr) = crate::support::run(&args, &[]);
        assert_eq!(code, 0, "{name}: {stderr}");
        assert_eq!(stdout.trim_end(), archive[&name], "{name}: the captured case gives the archived record");
    }
    // Through `diff`, as an author would after `aws s3 sync`: the same guest agrees on every
    // captured case; one that changes a rule differs on the FAILED runs' cases.
    let cases = tmp.0.to_str().unwrap();
    let (code, stdout, stderr) =
        crate::support::run(&["diff", "--guest", "bundled", "--guest", "bundled", "--cases", cases], &[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains(&format!("{processed} cases: {processed} the same, 0 differ")), "{stdout}");
    let changed = crate::support::wasm::rust_template(true);
    let args = ["diff", "--guest", "bundled", "--guest", changed.to_str().unwrap(), "--cases", cases];
    let (code, stdout, stderr) = crate::support::run(&args, &[]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    let failed =
        Fixture::all().iter().filter(|f| f.record().is_some() && f.expected["record"]["status"] == "FAILED").count();
    assert!(failed >= 3, "{failed}");
    assert_eq!(stdout.matches("      + needs_attention: added by B (true)").count(), failed, "{stdout}");

    let unknown = tmp.0.join("2026/03/02/event_20260302_140509_e-8900001/context.json");
    let context: Value = serde_json::from_slice(&std::fs::read(unknown).unwrap()).unwrap();
    assert!(context["errors"]["run"].as_str().unwrap().contains("not found"), "{context}");
}
