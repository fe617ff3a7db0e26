//! Nothing lost: dead letters replayed from moto's SQS or from files, oldest first; runs
//! reconciled from the HealthOmics test server, twice, changing nothing the second time;
//! the scheduled reconciliation in Lambda mode; and a run made of lost and late events that
//! ends COMPLETE using only what an operator does: wait, replay, reconcile.

use std::time::Duration;

use serde_json::{Value, json};

use crate::lambda::{lambda_env, spawn};
use crate::pipeline::KEY;
use crate::support::moto::{self, aws_env, bucket, queue};
use crate::support::omics::{self, Omics};
use crate::support::runtime_api::{Answer, RuntimeApi};
use crate::support::wes::{Mode, Wes};
use crate::support::{TempDir, iso, run};

/// A HealthOmics event of `status` for `run_id`, at `time`.
fn event(run_id: &str, status: &str, id: &str, time: &str) -> Value {
    json!({"version": "0", "id": id, "detail-type": "Run Status Change", "source": "aws.omics",
           "account": "111122223333", "time": time, "region": "eu-west-1",
           "resources": [format!("arn:aws:omics:eu-west-1:111122223333:run/{run_id}")],
           "detail": {"arn": format!("arn:aws:omics:eu-west-1:111122223333:run/{run_id}"), "status": status,
                      "runId": run_id}})
}

/// A run's description, as GetRun gives it.
fn run_json(run_id: &str, status: &str, wes_run: Option<&str>, start: &str, stop: Option<&str>) -> Value {
    let mut tags = json!({"Project": "P-9"});
    if let Some(w) = wes_run {
        tags["WESRunId"] = w.into();
    }
    let mut run = json!({"arn": format!("arn:aws:omics:eu-west-1:111122223333:run/{run_id}"), "id": run_id,
                         "uuid": format!("u-{run_id}"), "status": status, "name": format!("run-{run_id}"),
                         "creationTime": start, "startTime": start, "tags": tags});
    if let Some(stop) = stop {
        run["stopTime"] = stop.into();
    }
    run
}

/// What Lambda's on-failure destination sends for an event whose invocations all failed.
pub fn destination_record(event: &Value, error: &Value) -> String {
    json!({"version": "1.0", "timestamp": "2026-11-30T10:00:00.000Z",
           "requestContext": {"requestId": "r-1", "functionArn": "arn:aws:lambda:eu-west-1:111122223333:function:f:$LATEST",
                              "condition": "RetriesExhausted", "approximateInvokeCount": 3},
           "requestPayload": event,
           "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
           "responsePayload": error})
    .to_string()
}

/// The environment the function and the commands read, against the loopback peers.
fn env(omics: &Omics, wes: &Wes, archive: &str) -> Vec<(String, String)> {
    let mut env = aws_env(&omics.url());
    env.extend(
        [("API_SERVER", wes.api_server()), ("DATA_LAKE_BUCKET", archive.to_owned()), ("AUTH_TOKEN", KEY.into())]
            .map(|(k, v)| (k.to_string(), v)),
    );
    env
}

/// The archived events (not reconcile's ledger, under `_reconcile/`).
async fn objects(archive: &str) -> Vec<String> {
    let listed = moto::s3().await.list_objects_v2().bucket(archive).send().await.unwrap();
    listed.contents().iter().map(|o| o.key().unwrap().to_owned()).filter(|k| !k.contains("/_reconcile/")).collect()
}

async fn messages_left(url: &str) -> usize {
    let out = moto::sqs()
        .await
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .visibility_timeout(0)
        .send()
        .await
        .unwrap();
    out.messages().len()
}

const WES_A: &str = "a1a1a1a1-0000-4000-8000-00000000000a";
const WES_B: &str = "b2b2b2b2-0000-4000-8000-00000000000b";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_drains_the_queue_oldest_first_and_keeps_what_still_fails() {
    let omics = Omics::start().await;
    let wes = Wes::start(KEY).await;
    let archive = bucket("replay").await;
    let url = queue("replay").await;
    wes.submit(WES_A);
    wes.submit(WES_B);
    omics.set(
        "9300001",
        omics::Run::Found {
            run: run_json("9300001", "COMPLETED", Some(WES_A), "2026-11-30T08:00:00Z", Some("2026-11-30T09:00:00Z")),
            tasks: vec![],
        },
    );
    omics.set(
        "9300002",
        omics::Run::Found {
            run: run_json("9300002", "RUNNING", Some(WES_B), "2026-11-30T08:30:00Z", None),
            tasks: vec![],
        },
    );
    // An event the function still cannot process: GetRun is denied (an IAM mistake).
    omics.set("9300003", omics::Run::Fails { status: 403, error: "AccessDeniedException" });

    let sqs = moto::sqs().await;
    let error = json!({"errorType": "CallbackError", "errorMessage": "the WES API answered HTTP 503: down"});
    // In the queue out of order: the COMPLETED before the RUNNING of the same run.
    let bodies = [
        destination_record(&event("9300001", "COMPLETED", "e-a-completed", "2026-11-30T09:00:00Z"), &error),
        destination_record(&event("9300001", "RUNNING", "e-a-running", "2026-11-30T08:00:05Z"), &error),
        // As the Python stack's SNS topic delivered it.
        json!({"Type": "Notification", "Message": event("9300002", "RUNNING", "e-b-running", "2026-11-30T08:30:05Z").to_string()}).to_string(),
        event("9300003", "FAILED", "e-c-failed", "2026-11-30T08:45:00Z").to_string(),
    ];
    for body in &bodies {
        sqs.send_message().queue_url(&url).message_body(body).send().await.unwrap();
    }
    let env = env(&omics, &wes, &archive);

    // A dry run lists them, oldest first, and leaves them all.
    let (code, stdout, stderr) = tokio::task::block_in_place(|| run(&["replay", "--queue", &url, "--dry-run"], &env));
    assert_eq!(code, 0, "{stdout}{stderr}");
    let listed: Vec<&str> = stdout.lines().collect();
    assert!(
        listed[0].contains("run 9300001 RUNNING") && listed[0].contains("(last error: the WES API answered HTTP 503"),
        "{stdout}"
    );
    assert!(listed[1].contains("run 9300002 RUNNING") && listed[2].contains("run 9300003 FAILED"), "{stdout}");
    assert!(
        listed[3].contains("run 9300001 COMPLETED") && listed[4] == "4 dead letters (dry run: nothing replayed)",
        "{stdout}"
    );
    assert_eq!(messages_left(&url).await, 4);
    assert!(objects(&archive).await.is_empty());

    let (code, stdout, stderr) = tokio::task::block_in_place(|| run(&["replay", "--queue", &url], &env));
    assert_eq!(code, 1, "one remains: {stdout}{stderr}");
    // One progress line per event (not a terminal), in event time order.
    let progress: Vec<&str> = stderr.lines().filter(|l| l.starts_with('[')).collect();
    assert_eq!(progress.len(), 4, "{stderr}");
    assert!(progress[0].starts_with("[1/4] message ") && progress[0].contains("run 9300001 RUNNING"), "{stderr}");
    assert!(
        progress[3].contains("run 9300001 COMPLETED")
            && progress[3].contains("replayed: archive written, callback sent (HTTP 200)"),
        "{stderr}"
    );
    assert!(
        stdout.contains("remains: message ") && stdout.contains("GetRun failed: HTTP 403 AccessDeniedException"),
        "{stdout}"
    );
    assert!(stdout.ends_with("3 of 4 dead letters replayed; 1 remain\n"), "{stdout}");
    // The RUNNING first, so no heal was needed; the run is COMPLETE.
    assert_eq!(wes.history(WES_A), ["RUNNING", "COMPLETE"]);
    assert_eq!(wes.run_state(WES_B), Some("RUNNING"));
    assert_eq!(messages_left(&url).await, 1, "only the failing one stays, visible again");
    assert_eq!(objects(&archive).await.len(), 3, "one archive object per replayed event");

    // Saved files (copied out of the old topic's emails, say) replay the same way.
    let tmp = TempDir::new("replay-files");
    std::fs::write(tmp.0.join("1.json"), &bodies[2]).unwrap();
    std::fs::write(tmp.0.join("2.json"), &bodies[0]).unwrap();
    std::fs::write(tmp.0.join("notes.txt"), "not a letter").unwrap();
    let (code, stdout, stderr) = tokio::task::block_in_place(|| run(&["replay", tmp.0.to_str().unwrap()], &env));
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.ends_with("2 of 2 dead letters replayed; 0 remain\n"), "{stdout}");
    assert!(stderr.contains("archive already-there"), "replays store nothing twice: {stderr}");
    assert_eq!(objects(&archive).await.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_rebuilds_the_runs_of_the_window_and_twice_changes_nothing() {
    let omics = Omics::start().await;
    let wes = Wes::start(KEY).await;
    let archive = bucket("reconcile").await;
    let now = std::time::SystemTime::now();
    let ago = |minutes: u64| iso(now - Duration::from_secs(minutes * 60));
    wes.submit(WES_A);
    wes.submit(WES_B);
    // A finished run whose events were all lost: its WES run is still QUEUED.
    omics.set(
        "9400001",
        omics::Run::Found {
            run: run_json("9400001", "COMPLETED", Some(WES_A), &ago(50), Some(&ago(20))),
            tasks: vec![],
        },
    );
    omics.set(
        "9400002",
        omics::Run::Found { run: run_json("9400002", "RUNNING", Some(WES_B), &ago(30), None), tasks: vec![] },
    );
    omics.set(
        "9400003",
        omics::Run::Found { run: run_json("9400003", "COMPLETED", None, &ago(40), Some(&ago(10))), tasks: vec![] },
    );
    // Outside the window.
    omics.set(
        "9400004",
        omics::Run::Found {
            run: run_json("9400004", "COMPLETED", Some(WES_A), &ago(3000), Some(&ago(2900))),
            tasks: vec![],
        },
    );
    let env = env(&omics, &wes, &archive);

    let (code, stdout, stderr) =
        tokio::task::block_in_place(|| run(&["reconcile", "--since", "2h", "--dry-run"], &env));
    assert_eq!(code, 0, "{stdout}{stderr}");
    let summary: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!((summary["runs_seen"].as_u64(), summary["in_window"].as_u64()), (Some(4), Some(3)), "{summary}");
    assert_eq!(summary["planned"].as_array().unwrap().len(), 3);
    assert!(objects(&archive).await.is_empty(), "a dry run archives nothing");

    let (code, stdout, stderr) = tokio::task::block_in_place(|| run(&["reconcile", "--since", "2h"], &env));
    assert_eq!(code, 0, "{stdout}{stderr}");
    let summary: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        (summary["callbacks_sent"].as_u64(), summary["skipped"].as_u64(), summary["failed"].as_u64()),
        (Some(2), Some(1), Some(0)),
        "{summary}"
    );
    assert_eq!(stderr.lines().filter(|l| l.starts_with("run 94")).count(), 3, "{stderr}");
    assert_eq!(wes.history(WES_A), ["RUNNING", "COMPLETE"], "healed from the run's description");
    assert_eq!(wes.run_state(WES_B), Some("RUNNING"));
    let first = objects(&archive).await;
    assert_eq!(first.len(), 3);

    // Twice: nothing changes; its ledger knows the runs are up to date, so no GetRun.
    let (code, stdout, _) = tokio::task::block_in_place(|| run(&["reconcile", "--since", "2h"], &env));
    assert_eq!(code, 0);
    let summary: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!((summary["unchanged"].as_u64(), summary["get_run_calls"].as_u64()), (Some(3), Some(0)), "{summary}");
    assert_eq!(omics.calls("/run/9400001"), 2, "GetRun in the dry run and the first pass, not the second");
    assert_eq!(objects(&archive).await, first);
    assert_eq!(wes.history(WES_A), ["RUNNING", "COMPLETE"]);
    let record = moto::s3().await.get_object().bucket(&archive).key(&first[0]).send().await.unwrap();
    let record: Value = serde_json::from_slice(&record.body.collect().await.unwrap().into_bytes()).unwrap();
    assert_eq!(record["source"], "ngs360.reconcile", "data lake readers can tell them apart");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduled_reconciliation_runs_in_the_function() {
    let api = RuntimeApi::start().await;
    let omics = Omics::start().await;
    let wes = Wes::start(KEY).await;
    let archive = bucket("scheduled").await;
    wes.submit(WES_B);
    let start = iso(std::time::SystemTime::now() - Duration::from_secs(600));
    omics.set(
        "9500001",
        omics::Run::Found { run: run_json("9500001", "RUNNING", Some(WES_B), &start, None), tasks: vec![] },
    );
    let mut env = lambda_env(&api);
    env.extend(self::env(&omics, &wes, &archive));
    let (proc, _) = spawn(&env);
    // What the template's schedule sends.
    api.invoke("s-1", br#"{"reconcile": {"since": "1h"}}"#);
    let Answer::Response(ok) = api.answer("s-1", Duration::from_secs(30)).await else { panic!("{}", proc.stdout()) };
    assert_eq!(ok["outcome"], "reconciled", "{ok}");
    assert_eq!(ok["summary"]["callbacks_sent"], 1, "{ok}");
    assert_eq!(wes.run_state(WES_B), Some("RUNNING"));
    // An event still goes through as before.
    api.invoke("s-2", event("9500001", "RUNNING", "e-s-2", &start).to_string().as_bytes());
    let Answer::Response(ok) = api.answer("s-2", Duration::from_secs(30)).await else { panic!() };
    assert_eq!(ok["outcome"], "processed", "{ok}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_of_lost_and_late_events_ends_complete_by_waiting_replaying_and_reconciling() {
    let api = RuntimeApi::start().await;
    let omics = Omics::start().await;
    let wes = Wes::start(KEY).await;
    let archive = bucket("scenario").await;
    let url = queue("scenario").await;
    let wes_run = "c3c3c3c3-0000-4000-8000-00000000000c";
    wes.submit(wes_run);
    let now = std::time::SystemTime::now();
    let at = |minutes_ago: u64| iso(now - Duration::from_secs(minutes_ago * 60));
    let (started, stopped) = (at(90), at(30));
    omics.set(
        "9600001",
        omics::Run::Found {
            run: run_json("9600001", "COMPLETED", Some(wes_run), &started, Some(&stopped)),
            tasks: vec![json!({"taskId": "1", "name": "align", "status": "COMPLETED"})],
        },
    );
    let mut env = lambda_env(&api);
    env.extend(self::env(&omics, &wes, &archive));
    let (proc, _) = spawn(&env);

    // The RUNNING event is lost (EventBridge delivers on a best-effort basis). COMPLETED
    // arrives while the WES API is down: the invocation and Lambda's two retries fail.
    wes.set_mode(Mode::Broken);
    let completed = event("9600001", "COMPLETED", "e-9600001-completed", &stopped);
    let mut last_error = Value::Null;
    for attempt in 0..3 {
        let id = format!("attempt-{attempt}");
        api.invoke(&id, completed.to_string().as_bytes());
        let Answer::Error(error) = api.answer(&id, Duration::from_secs(30)).await else { panic!("{}", proc.stdout()) };
        assert_eq!(error["errorType"], "CallbackError", "{error}");
        last_error = error;
    }
    // Lambda's on-failure destination keeps it in the dead-letter queue, with its error.
    moto::sqs()
        .await
        .send_message()
        .queue_url(&url)
        .message_body(destination_record(&completed, &last_error))
        .send()
        .await
        .unwrap();
    assert_eq!(wes.run_state(wes_run), Some("QUEUED"));

    // The WES API is back; the operator replays the dead letters.
    wes.set_mode(Mode::Normal);
    let env = self::env(&omics, &wes, &archive);
    let (code, stdout, stderr) = tokio::task::block_in_place(|| run(&["replay", "--queue", &url], &env));
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stderr.contains("callback sent (HTTP 200) after reporting the run's start"), "{stderr}");
    assert_eq!(wes.run_state(wes_run), Some("COMPLETE"));
    assert_eq!(messages_left(&url).await, 0);

    // And reconciles, which finds the run current.
    let (code, stdout, stderr) = tokio::task::block_in_place(|| run(&["reconcile", "--since", "2h"], &env));
    assert_eq!(code, 0, "{stdout}{stderr}");
    let summary: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(summary["already_current"], 1, "{summary}");

    assert_eq!(wes.history(wes_run), ["RUNNING", "COMPLETE"]);
    // One object per event: the COMPLETED event (stored on its first attempt, kept through
    // the retries and the replay), and the reconciled status.
    let stored = objects(&archive).await;
    assert_eq!(stored.len(), 2, "{stored:?}");
    assert!(stored.iter().any(|k| k.ends_with("_e-9600001-completed.json")), "{stored:?}");
    drop(proc);
}
