//! HealthOmics' small quota (behaviour §6, §9): a burst of finished runs against the
//! HealthOmics test server behind a token bucket that throttles as the service does, and a
//! reconciliation that spends GetRun only on runs that changed, at its own pace.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use ngs360_omics::error::Error;
use ngs360_omics::pipeline::Report;
use ngs360_omics::pipeline::reconcile::{self, Ledger, Settings, Summary, Window};
use serde_json::{Value, json};

use crate::pipeline::{Peers, event, peers, peers_with};
use crate::support::iso;
use crate::support::omics::Run;
use crate::support::wes::Mode;

fn wes_run(i: usize) -> String {
    format!("b0b0b0b0-0000-4000-8000-{i:012}")
}

/// A finished run of 150 tasks, tagged with its WES run.
fn finished(run_id: &str, wes_run: &str, status: &str, stopped: SystemTime) -> Run {
    let run = json!({"arn": format!("arn:aws:omics:eu-west-1:111122223333:run/{run_id}"), "id": run_id,
                     "uuid": format!("u-{run_id}"), "status": status, "name": format!("run-{run_id}"),
                     "creationTime": iso(stopped - Duration::from_secs(3600)),
                     "startTime": iso(stopped - Duration::from_secs(3500)), "stopTime": iso(stopped),
                     "tags": {"WESRunId": wes_run}});
    Run::Generated { run, count: 150, failed_every: 0 }
}

/// `n` runs finished at `stopped`, ids from `first_run`, each tagged with a queued WES run
/// from `wes_run(first_wes)` on.
fn finished_runs(p: &Peers, n: usize, first_run: usize, first_wes: usize, stopped: SystemTime) {
    for i in 0..n {
        let id = (first_run + i).to_string();
        p.wes.submit(&wes_run(first_wes + i));
        p.omics.set(&id, finished(&id, &wes_run(first_wes + i), "COMPLETED", stopped));
    }
}

/// The requests the HealthOmics server served (not throttled) for `path`.
fn served(p: &Peers, path: impl Fn(&str) -> bool) -> usize {
    p.omics.server.requests().iter().filter(|r| path(r.path())).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_finished_runs_rides_out_the_quota_and_no_event_fails() {
    const RUNS: usize = 30;
    let p = peers("burst").await;
    finished_runs(&p, RUNS, 8_100_000, 0, SystemTime::now());
    p.omics.set_quota(10.0);
    let started = Instant::now();
    let results = futures_util::future::join_all((0..RUNS).map(|i| {
        let id = format!("{}", 8_100_000 + i);
        let event = event("COMPLETED", &id, &format!("e-burst-{i}"), &p.bucket);
        p.handler.handle(Arc::from(event))
    }))
    .await;
    let took = started.elapsed();
    for (i, result) in results.iter().enumerate() {
        assert!(matches!(result, Ok(Report::Processed { .. })), "event {i}: {result:?}");
    }
    let throttled = p.omics.throttled();
    let requests = p.omics.server.requests().len();
    // Each event: one GetRun and two pages of ListRunTasks (150 tasks, 100 a page), whatever
    // the throttling cost in retries.
    assert_eq!(requests - throttled, RUNS * 3, "{requests} requests, {throttled} throttled");
    assert!(throttled > 0, "30 events at once against 10 calls a second must be throttled");
    let floor = (RUNS * 3) as f64 / 10.0;
    assert_eq!(p.archive().await.len(), RUNS, "every event archived once");
    for i in 0..RUNS {
        assert_eq!(p.wes.run_state(&wes_run(i)), Some("COMPLETE"), "WES run {i}");
    }
    eprintln!(
        "burst: {RUNS} events, {} calls served, {throttled} throttled, drained in {:.1} s (quota floor {floor:.0} s)",
        requests - throttled,
        took.as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_that_spends_its_throttling_budget_fails_for_a_retry_and_leaves_nothing() {
    let p = peers_with("budget", |h| h.throttle_budget = Duration::from_secs(3)).await;
    finished_runs(&p, 1, 8_190_000, 900, SystemTime::now());
    // A quota spent elsewhere in the account: nothing is served.
    p.omics.set_quota(0.01);
    let started = Instant::now();
    let result = p.handler.handle(Arc::from(event("COMPLETED", "8190000", "e-budget", &p.bucket))).await;
    let took = started.elapsed();
    let Err(Error::Enrichment(e)) = &result else { panic!("a throttled event fails: {result:?}") };
    let text = e.to_string();
    assert!(text.contains("GetRun") && text.contains("OMICS_THROTTLE_BUDGET_SECONDS"), "{text}");
    assert!(took >= Duration::from_secs(2) && took < Duration::from_secs(15), "the budget bounds the wait: {took:?}");
    assert!(p.omics.throttled() >= 3, "throttled calls are retried within the budget");
    assert!(p.archive().await.is_empty(), "nothing archived: Lambda retries the whole event");
    assert_eq!(p.wes.run_state(&wes_run(900)), Some("QUEUED"));
}

async fn pass(p: &Peers, settings: &Settings<'_>) -> Summary {
    let now = SystemTime::now();
    let window = Window { since: now - Duration::from_secs(26 * 3600), until: now };
    let omics = p.handler.enricher.omics.get().await;
    reconcile::reconcile(&p.handler, omics, window, false, settings, &|_| {}).await.unwrap()
}

fn counts(s: &Summary) -> Value {
    json!({"in_window": s.in_window, "unchanged": s.unchanged, "get_run": s.get_run_calls,
           "pages": s.list_runs_pages, "sent": s.callbacks_sent, "current": s.already_current,
           "failed": s.failed, "left": s.left})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_reads_only_runs_that_changed_and_never_skips_a_failed_callback() {
    const RUNS: usize = 12;
    let p = peers("ledger").await;
    let now = SystemTime::now();
    finished_runs(&p, RUNS, 8_200_000, 100, now - Duration::from_secs(600));
    let s3 = p.handler.enricher.s3.get().await;
    let ledger = Ledger::beside(s3, &p.handler.target);
    let key = ledger.key.clone();
    let settings = Settings { rate: 8.0, stop_at: None, ledger: Some(ledger) };

    // The WES service is down: every callback fails, and no run is marked up to date.
    p.wes.set_mode(Mode::Broken);
    let first = pass(&p, &settings).await;
    assert_eq!(
        counts(&first),
        json!({"in_window": RUNS, "unchanged": 0, "get_run": RUNS, "pages": 1, "sent": 0, "current": 0,
               "failed": RUNS, "left": 0})
    );

    // Back up: the failed runs are taken again, all of them, and brought up to date.
    p.wes.set_mode(Mode::Normal);
    let started = Instant::now();
    let second = pass(&p, &settings).await;
    let took = started.elapsed();
    assert_eq!(
        counts(&second),
        json!({"in_window": RUNS, "unchanged": 0, "get_run": RUNS, "pages": 1, "sent": RUNS, "current": 0,
               "failed": 0, "left": 0})
    );
    // 13 calls at 8 a second: 12 intervals at least.
    assert!(took >= Duration::from_secs_f64(12.0 / 8.0), "the pace holds: {took:?}");
    for i in 0..RUNS {
        assert_eq!(p.wes.run_state(&wes_run(100 + i)), Some("COMPLETE"));
    }

    // Nothing changed: ListRuns only.
    let before = served(&p, |path| path.starts_with("/run/"));
    let third = pass(&p, &settings).await;
    assert_eq!(
        counts(&third),
        json!({"in_window": RUNS, "unchanged": RUNS, "get_run": 0, "pages": 1, "sent": 0, "current": 0,
               "failed": 0, "left": 0})
    );
    assert_eq!(served(&p, |path| path.starts_with("/run/")), before, "no GetRun, no ListRunTasks");

    // One run changes status (a new stop time): that one is read again, and only that one.
    let changed = "8200003";
    p.omics.set(changed, finished(changed, &wes_run(103), "FAILED", now));
    let fourth = pass(&p, &settings).await;
    assert_eq!((fourth.unchanged, fourth.get_run_calls), (RUNS - 1, 1), "{}", counts(&fourth));
    assert_eq!(served(&p, |path| path == format!("/run/{changed}")), 3, "GetRun in passes 1, 2 and 4");
    assert_eq!(served(&p, |path| path.ends_with("/task")), 0, "a reconciliation lists no tasks (behaviour §9)");

    // The ledger is one object beside the archive, under a folder the lake's readers skip.
    assert_eq!(key, "omics-run-events/_reconcile/state.json");
    let got = s3.get_object().bucket(&p.bucket).key(&key).send().await.unwrap();
    let ledger: Value = serde_json::from_slice(&got.body.collect().await.unwrap().into_bytes()).unwrap();
    assert_eq!(ledger["version"], 1);
    assert_eq!(ledger["runs"].as_object().unwrap().len(), RUNS);
    assert!(ledger["runs"][changed].as_str().unwrap().starts_with("FAILED@"), "{ledger}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconciliation_out_of_time_leaves_its_runs_to_the_next_pass() {
    let p = peers("left").await;
    finished_runs(&p, 5, 8_300_000, 200, SystemTime::now() - Duration::from_secs(60));
    let s3 = p.handler.enricher.s3.get().await;
    let ledger = || Some(Ledger::beside(s3, &p.handler.target));
    let late = Settings { rate: reconcile::RATE, stop_at: Some(Instant::now()), ledger: ledger() };
    let first = pass(&p, &late).await;
    assert_eq!((first.left, first.get_run_calls, first.callbacks_sent), (5, 0, 0), "{}", counts(&first));
    let next = Settings { rate: reconcile::RATE, stop_at: None, ledger: ledger() };
    let second = pass(&p, &next).await;
    assert_eq!((second.left, second.get_run_calls, second.callbacks_sent), (0, 5, 5), "{}", counts(&second));
}
