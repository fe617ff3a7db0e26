//! Runs of any size (behaviour §4, large runs): a run of 100,000 tasks is archived and called
//! back with a bounded record, in a bounded number of HealthOmics calls, in-process and in
//! Lambda mode, where the process's peak RSS is read from /proc.

use std::sync::Arc;
use std::time::Duration;

use ngs360_omics::pipeline::{CallbackOutcome, Report};
use serde_json::Value;

use crate::lambda::{lambda_env, spawn};
use crate::pipeline::{KEY, WES_RUN, event, peers, run_json};
use crate::support::moto::{aws_env, bucket};
use crate::support::omics::{self, Omics};
use crate::support::runtime_api::{Answer, RuntimeApi};
use crate::support::wes::Wes;

const TASKS: usize = 100_000;
/// One task in a thousand failed: 100 failed tasks, spread over the whole run.
const FAILED_EVERY: usize = 1000;

fn generated(run_id: &str) -> omics::Run {
    omics::Run::Generated { run: run_json(run_id, Some(WES_RUN)), count: TASKS, failed_every: FAILED_EVERY }
}

/// The record's task links: the bound, the flags, and the first keys.
fn check_links(record: &Value, failed: bool) -> Vec<String> {
    let urls = &record["log_urls"];
    let tasks = urls["task_logs"].as_object().unwrap();
    assert_eq!(tasks.len(), 1000, "task_logs holds 1,000 entries");
    assert_eq!(urls["task_logs_truncated"], true);
    assert!(urls["task_logs_base_url"].as_str().unwrap().ends_with("log-group/$252Faws$252Fomics$252FWorkflowLog"));
    assert_eq!(urls.get("engine_log").is_some(), failed);
    tasks.keys().cloned().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_of_100000_tasks_gives_a_bounded_record_in_a_bounded_number_of_calls() {
    let p = peers("large").await;
    let outputs = bucket("large-out").await;

    p.omics.set("9100001", generated("9100001"));
    let report = p.handler.handle(Arc::from(event("COMPLETED", "9100001", "e-9100001", &outputs))).await.unwrap();
    assert!(matches!(report, Report::Processed { callback: CallbackOutcome::Sent(200), .. }), "{report:?}");
    let record: Value = serde_json::from_str(&p.archive().await[0].1).unwrap();
    let keys = check_links(&record, false);
    assert_eq!(keys[..3], ["shard_0", "shard_1", "shard_2"], "the first tasks in ListRunTasks order");
    assert_eq!(keys[999], "shard_999");
    // 1,000 tasks in pages of 100; the tenth page says there are more; nothing else.
    assert_eq!(p.omics.calls("/run/9100001/task"), 10);
    assert_eq!(p.omics.calls("/run/9100001"), 1);

    p.omics.set("9100002", generated("9100002"));
    p.handler.handle(Arc::from(event("FAILED", "9100002", "e-9100002", &outputs))).await.unwrap();
    let archive = p.archive().await;
    let (_, body) = archive.iter().find(|(k, _)| k.contains("e-9100002")).unwrap();
    let record: Value = serde_json::from_str(body).unwrap();
    let keys = check_links(&record, true);
    // The 100 failed tasks first (999, 1999, ... 99999), then the first tasks that are not
    // among them.
    let failed: Vec<String> = (0..100).map(|k| format!("shard_{}", k * FAILED_EVERY + FAILED_EVERY - 1)).collect();
    assert_eq!(keys[..100], failed[..]);
    assert_eq!(keys[100..103], ["shard_0", "shard_1", "shard_2"]);
    assert!(!keys[100..].contains(&"shard_999".to_owned()), "each task once");
    // 10 pages of the first tasks, and one filtered listing that found all 100 failed ones.
    assert_eq!(p.omics.calls("/run/9100002/task"), 11);
    assert_eq!(p.wes.accepted().len(), 2);
    let posted = serde_json::to_string(p.wes.accepted().last().unwrap()).unwrap();
    assert!(posted.len() < 400_000, "the posted record is {} bytes", posted.len());
}

/// VmHWM (peak resident set) of a process, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_lambda_mode_runs_of_100000_tasks_stay_within_128_mb() {
    let api = RuntimeApi::start().await;
    let omics = Omics::start().await;
    let wes = Wes::start(KEY).await;
    let archive = bucket("large-lambda").await;
    let outputs = bucket("large-lambda-out").await;
    omics.set("9200001", generated("9200001"));
    omics.set("9200002", generated("9200002"));
    let mut env = lambda_env(&api);
    env.extend(aws_env(&omics.url()));
    env.extend(
        [("API_SERVER", wes.api_server()), ("DATA_LAKE_BUCKET", archive), ("AUTH_TOKEN", KEY.into())]
            .map(|(k, v)| (k.to_string(), v)),
    );
    let (proc, _) = spawn(&env);
    for (id, status, run) in [("l-completed", "COMPLETED", "9200001"), ("l-failed", "FAILED", "9200002")] {
        api.invoke(id, &event(status, run, &format!("e-{run}"), &outputs));
        let Answer::Response(ok) = api.answer(id, Duration::from_secs(60)).await else {
            panic!("{status}: {}", proc.stdout())
        };
        assert_eq!(ok["archive"], "written", "{ok}");
        assert_eq!(ok["callback"], "sent (HTTP 200)", "{ok}");
    }
    let peak_mib = peak_rss_kib(proc.child.id()) as f64 / 1024.0;
    eprintln!("Lambda mode, 100,000-task COMPLETED and FAILED runs: peak RSS {peak_mib:.1} MiB");
    assert!(peak_mib < 128.0, "peak RSS {peak_mib:.1} MiB, over the function's 128 MB");
    assert_eq!(omics.calls("/run/9200001/task") + omics.calls("/run/9200002/task"), 21);
}
