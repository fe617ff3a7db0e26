//! The real binary: the lambda_runtime loop driven by a runtime API server, and `process`,
//! configured only by the environment, against the loopback peers.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::pipeline::KEY;
use crate::support::moto::{self, aws_env, bucket};
use crate::support::omics::{self, Omics};
use crate::support::runtime_api::{Answer, RuntimeApi};
use crate::support::wes::{Mode, Wes};
use crate::support::{FIXTURE_OUTPUTS, Fixture, Proc, TempDir, bin, run, serve_fixture};

async fn secret(name: &str) -> String {
    let client = aws_sdk_secretsmanager::Client::new(&moto::sdk_config(&moto::moto().url).await);
    let out = client
        .create_secret()
        .name(name)
        .secret_string(serde_json::json!({"AUTH_TOKEN": KEY}).to_string())
        .send()
        .await
        .expect("create secret");
    out.arn().unwrap().to_owned()
}

pub fn lambda_env(api: &RuntimeApi) -> Vec<(String, String)> {
    [
        ("AWS_LAMBDA_RUNTIME_API", api.address()),
        ("AWS_LAMBDA_FUNCTION_NAME", "omics-run-event-processor".into()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".into()),
        ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/ngs360/omics-run-event-processor".into()),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "2026/03/02/[$LATEST]0123456789abcdef".into()),
        ("PATH", std::env::var("PATH").unwrap_or_default()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// The binary with exactly this environment.
pub fn spawn(env: &[(String, String)]) -> (Proc, Instant) {
    let mut cmd = Command::new(bin());
    cmd.env_clear().envs(env.iter().map(|(k, v)| (k, v)));
    (Proc::spawn(cmd), Instant::now())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lambda_runtime_loop_processes_events_end_to_end() {
    let api = RuntimeApi::start().await;
    let omics = Omics::start().await;
    let wes = Wes::start(KEY).await;
    let archive = bucket("lambda").await;
    let secret_id = secret(&format!("ngs360/omics/lambda-{}", std::process::id())).await;
    let f = Fixture::load("eventbridge-omics-run-completed");
    let _outputs = FIXTURE_OUTPUTS.lock().await;
    serve_fixture(&omics, &moto::s3().await, &f).await;

    let mut env = lambda_env(&api);
    env.extend(aws_env(&omics.url()));
    env.extend(
        [
            ("API_SERVER", wes.api_server()),
            ("DATA_LAKE_BUCKET", archive.clone()),
            ("ENV_SECRETS", secret_id),
            ("VERBOSE_LOGGING", "true".into()),
            ("AWS_LAMBDA_LOG_FORMAT", "JSON".into()),
        ]
        .map(|(k, v)| (k.to_string(), v)),
    );
    let (proc, spawned) = spawn(&env);

    api.invoke("r-completed", &f.event);
    let Answer::Response(ok) = api.answer("r-completed", Duration::from_secs(30)).await else {
        panic!("completed: {}", proc.stderr())
    };
    let cold_start = api.first_next().unwrap() - spawned;
    eprintln!("cold start, process start to the first /next: {cold_start:?}");
    let key = f.expected["archive_key"].as_str().unwrap();
    assert_eq!(ok["statusCode"], 200);
    assert_eq!(ok["body"], format!("Event processed, status: COMPLETED -> s3://{archive}/omics-run-events/{key}"));
    assert_eq!(ok["archive"], "written");
    assert_eq!(ok["callback"], "sent (HTTP 200)");
    let guest = ok["guest"].as_str().unwrap();
    let (label, sha) = guest.split_once('#').unwrap();
    assert_eq!(label, crate::support::GUEST);
    assert!(sha.len() == 12 && sha.bytes().all(|b| b.is_ascii_hexdigit()), "{guest}");
    assert_eq!(serde_json::to_string(&wes.accepted()[0]).unwrap(), f.record().unwrap());

    api.invoke("r-ignored", &Fixture::load("eventbridge-s3-object-created").event);
    let Answer::Response(ignored) = api.answer("r-ignored", Duration::from_secs(10)).await else { panic!() };
    assert!(ignored["body"].as_str().unwrap().starts_with("Event ignored: source `aws.s3`"), "{ignored}");

    api.invoke("r-malformed", &Fixture::load("malformed-run-event-without-run-id").event);
    let Answer::Error(bad) = api.answer("r-malformed", Duration::from_secs(10)).await else { panic!() };
    assert_eq!(bad["errorType"], "GuestError");
    assert_eq!(bad["errorMessage"], "the guest refused the event: the event has no `runId`");

    wes.set_mode(Mode::Broken);
    api.invoke("r-callback", &Fixture::load("eventbridge-omics-run-running").event);
    let Answer::Error(failed) = api.answer("r-callback", Duration::from_secs(10)).await else { panic!() };
    assert_eq!(failed["errorType"], "CallbackError");
    assert!(failed["errorMessage"].as_str().unwrap().contains("HTTP 500"), "{failed}");

    // The log lines of those four invocations are written before their answers.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (stdout, stderr) = (proc.stdout(), proc.stderr());
    drop(proc);
    assert!(!stdout.contains(KEY) && !stderr.contains(KEY), "the key appears in the logs");
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not a JSON log line: {l}")))
        .collect();
    assert!(lines.iter().any(|l| l["level"] == "DEBUG"), "VERBOSE_LOGGING=true gives DEBUG lines");
    let ready = lines.iter().find(|l| l["message"] == "ready").unwrap_or_else(|| panic!("{stdout}"));
    // The bundled guest's code runs from the binary's own pages, not a copy (4 KiB pages here).
    assert_eq!(ready["guest_in_place"], true, "{ready}");
    let event_id = f.event_json()["id"].as_str().unwrap().to_owned();
    let (metrics, logs): (Vec<&Value>, Vec<&Value>) = lines.iter().partition(|l| l.get("_aws").is_some());
    let about: Vec<&Value> = logs
        .iter()
        .copied()
        .filter(|l| l.to_string().contains("4417021") || l.to_string().contains(&event_id))
        .collect();
    assert!(about.len() >= 2, "{stdout}");
    for line in about {
        let span = &line["span"];
        assert_eq!(span["run_id"], "4417021", "{line}");
        assert!(span["status"].is_string() && span["event_id"].is_string(), "{line}");
    }
    assert!(
        lines.iter().any(|l| l["message"] == "event archived" && l["span"]["event_id"] == event_id.as_str()),
        "{stdout}"
    );

    // One EMF line per invocation, with no extra API call.
    assert_eq!(metrics.len(), 4, "{stdout}");
    let by_status =
        |s: &str| metrics.iter().find(|m| m["Status"] == s).copied().unwrap_or_else(|| panic!("no metrics for {s}"));
    let completed = by_status("COMPLETED");
    assert_eq!(completed["_aws"]["CloudWatchMetrics"][0]["Namespace"], "NGS360/OmicsRunEvents");
    assert_eq!(completed["FunctionName"], "omics-run-event-processor");
    assert_eq!(
        (completed["ArchiveWritten"].as_u64(), completed["CallbackSent"].as_u64(), completed["EventsFailed"].as_u64()),
        (Some(1), Some(1), Some(0))
    );
    assert!(
        completed["GuestTime"].as_f64().unwrap() > 0.0
            && completed["TotalTime"].as_f64() > completed["GuestTime"].as_f64()
    );
    assert_eq!(by_status("IGNORED")["EventsIgnored"], 1);
    assert_eq!(
        (by_status("INVALID")["EventsFailed"].as_u64(), by_status("INVALID")["CallbackFailed"].as_u64()),
        (Some(1), Some(0))
    );
    let running = by_status("RUNNING");
    assert_eq!(
        (running["CallbackFailed"].as_u64(), running["EventsFailed"].as_u64(), running["ArchiveWritten"].as_u64()),
        (Some(1), Some(1), Some(1))
    );
}

/// The key's secret is read after the first /next, in the background: one that cannot be
/// read is an ERROR at the cold start, and each callback fails on it (the event is
/// archived, the invocation fails, Lambda retries it), naming the secret.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_key_secret_fails_the_callbacks_and_is_said_at_once() {
    let api = RuntimeApi::start().await;
    let omics = Omics::start().await;
    let wes = Wes::start(KEY).await;
    let archive = bucket("no-secret").await;
    let f = Fixture::load("eventbridge-omics-run-running");
    omics.set("4417021", omics::Run::Found { run: f.context["run"].clone(), tasks: vec![] });
    let mut env = lambda_env(&api);
    env.extend(aws_env(&omics.url()));
    env.extend(
        [
            ("API_SERVER", wes.api_server()),
            ("DATA_LAKE_BUCKET", archive.clone()),
            ("ENV_SECRETS", "ngs360/omics/no-such-secret".into()),
            ("AWS_LAMBDA_LOG_FORMAT", "JSON".into()),
        ]
        .map(|(k, v)| (k.to_string(), v)),
    );
    let (proc, _) = spawn(&env);
    api.invoke("r-no-key", &f.event);
    let Answer::Error(failed) = api.answer("r-no-key", Duration::from_secs(30)).await else {
        panic!("the callback needs the key: {}", proc.stdout())
    };
    assert_eq!(failed["errorType"], "CallbackError");
    let message = failed["errorMessage"].as_str().unwrap();
    assert!(
        message.starts_with(
            "the callback key could not be read: the secret ngs360/omics/no-such-secret (ENV_SECRETS) cannot be read"
        ),
        "{message}"
    );
    assert!(wes.accepted().is_empty());
    let key = f.expected["archive_key"].as_str().unwrap();
    let archived = moto::s3().await.get_object().bucket(&archive).key(format!("omics-run-events/{key}")).send().await;
    assert!(archived.is_ok(), "the event is archived before the callback");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let stdout = proc.stdout();
    let ready = stdout.lines().position(|l| l.contains(r#""message":"ready""#)).expect("ready");
    let said = stdout
        .lines()
        .position(|l| l.contains(r#""level":"ERROR""#) && l.contains("no-such-secret"))
        .expect("the secret's failure is logged");
    assert!(said > ready, "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_variable_stops_the_cold_start_and_names_it() {
    let api = RuntimeApi::start().await;
    let mut env = lambda_env(&api);
    env.extend(aws_env("http://127.0.0.1:9"));
    env.push(("DATA_LAKE_BUCKET".into(), "lake".into()));
    let (mut proc, _) = spawn(&env);
    let report = api.init_error(Duration::from_secs(20)).await.expect("an init error report");
    assert_eq!(report["errorType"], "Runtime.InitError");
    assert_eq!(report["errorMessage"], "API_SERVER is not set (or is empty); it is required");
    let status = proc.wait(10).expect("the process exits");
    assert!(!status.success());
    assert!(proc.stdout().contains("API_SERVER is not set"), "{}", proc.stdout());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process_replays_an_event_and_exits_zero_only_on_success() {
    let omics = Omics::start().await;
    let wes = Wes::start(KEY).await;
    let archive = bucket("process").await;
    let f = Fixture::load("eventbridge-omics-run-running");
    omics.set("4417021", omics::Run::Found { run: f.context["run"].clone(), tasks: vec![] });
    let tmp = TempDir::new("process");
    let path = tmp.0.join("dead-letter-event.json");
    std::fs::write(&path, &f.event).unwrap();
    let mut env = aws_env(&omics.url());
    env.extend(
        [("API_SERVER", wes.api_server()), ("DATA_LAKE_BUCKET", archive.clone()), ("AUTH_TOKEN", KEY.into())]
            .map(|(k, v)| (k.to_string(), v)),
    );

    let (code, stdout, stderr) = tokio::task::block_in_place(|| run(&["process", path.to_str().unwrap()], &env));
    assert_eq!(code, 0, "{stderr}");
    let response: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(response["statusCode"], 200);
    assert_eq!(response["callback"], "sent (HTTP 200)");
    assert!(stderr.contains("event archived"), "{stderr}");
    assert!(!stderr.contains(KEY));

    wes.set_mode(Mode::Broken);
    let (code, stdout, stderr) = tokio::task::block_in_place(|| run(&["process", path.to_str().unwrap()], &env));
    assert_eq!((code, stdout.as_str()), (1, ""), "{stderr}");
    assert!(stderr.lines().last().unwrap().starts_with("error: the WES API answered HTTP 500"), "{stderr}");
}
