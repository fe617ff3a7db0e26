//! The hostile guest in Lambda mode: each probe fails its invocation with its own error,
//! within the time limit plus a small slack; no guest text reaches the log as a line of its
//! own; the process's memory stays bounded; and the next event is processed normally.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::lambda::{lambda_env, spawn};
use crate::pipeline::KEY;
use crate::support::moto::{aws_env, bucket};
use crate::support::runtime_api::{Answer, RuntimeApi};
use crate::support::wasm;
use crate::support::wes::Wes;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_lambda_mode_each_probe_fails_its_own_invocation_and_the_next_event_is_fine() {
    let api = RuntimeApi::start().await;
    let wes = Wes::start(KEY).await;
    let archive = bucket("hostile-lambda").await;
    let mut env = lambda_env(&api);
    env.extend(aws_env("http://127.0.0.1:9"));
    env.extend(
        [
            ("API_SERVER", wes.api_server()),
            ("DATA_LAKE_BUCKET", archive),
            ("AUTH_TOKEN", KEY.into()),
            ("GUEST_COMPONENT", wasm::hostile().to_str().unwrap().to_owned()),
            ("GUEST_TIMEOUT_MS", "300".into()),
            ("AWS_LAMBDA_LOG_FORMAT", "JSON".into()),
        ]
        .map(|(k, v)| (k.to_string(), v)),
    );
    let (proc, _) = spawn(&env);
    let cases = [
        ("sleep-parse", "the guest ran past its time limit of 300 ms"),
        ("sleep-plan", "the guest ran past its time limit of 300 ms"),
        ("sleep-transform", "the guest ran past its time limit of 300 ms"),
        ("poll", "the guest ran past its time limit of 300 ms"),
        ("huge-refusal", "the guest returned a string of 20971520 bytes"),
        ("huge-ignore", "the guest returned a string of 20971520 bytes"),
        ("huge-identity", "the guest returned a string of 102400 bytes"),
        ("many-notes", "the guest returned a list of 1000000 items"),
        ("output", "the guest returned a record of 10485762 bytes"),
    ];
    for (i, (mode, message)) in cases.iter().enumerate() {
        let id = format!("h-{i}");
        let started = Instant::now();
        api.invoke(&id, format!(r#"{{"hostile":"{mode}"}}"#).as_bytes());
        let Answer::Error(error) = api.answer(&id, Duration::from_secs(60)).await else {
            panic!("{mode}: {}", proc.stdout())
        };
        let took = started.elapsed();
        assert_eq!(error["errorType"], "GuestError", "{mode}: {error}");
        assert!(error["errorMessage"].as_str().unwrap().starts_with(message), "{mode}: {error}");
        assert!(took < Duration::from_millis(1500), "{mode}: {took:?}");

        // The next event is processed normally.
        let next = format!("h-{i}-next");
        api.invoke(&next, br#"{"hostile":"none"}"#);
        let Answer::Response(ok) = api.answer(&next, Duration::from_secs(30)).await else { panic!("after {mode}") };
        assert_eq!(ok["archive"], "written", "after {mode}: {ok}");
    }
    // Newlines, control characters and forged log lines in every string: processed, and
    // every log line is still one JSON object of the function's own.
    api.invoke("h-newlines", br#"{"hostile":"newlines"}"#);
    let Answer::Response(ok) = api.answer("h-newlines", Duration::from_secs(30)).await else { panic!() };
    assert!(ok["callback"].as_str().unwrap().starts_with("skipped: \\n{\"level\":\"ERROR\""), "{ok}");

    tokio::time::sleep(Duration::from_millis(200)).await;
    let peak_kib: u64 = std::fs::read_to_string(format!("/proc/{}/status", proc.child.id()))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    let stdout = proc.stdout();
    drop(proc);
    for line in stdout.lines() {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|_| panic!("not a JSON line: {line}"));
        assert_ne!(v["message"], "forged", "a guest forged a log line: {line}");
    }
    assert!(stdout.contains(r#"\\n{\"level\":\"ERROR\""#), "the guest's text is in the log, escaped");
    // Twice the guest's memory limit (64 MiB) plus the host's own (about 25 MiB).
    let peak_mib = peak_kib as f64 / 1024.0;
    eprintln!("hostile guest in Lambda mode: peak RSS {peak_mib:.1} MiB");
    assert!(peak_mib < 2.0 * 64.0 + 40.0, "peak RSS {peak_mib:.1} MiB");
}
