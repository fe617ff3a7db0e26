//! Reconciled events (behaviour §9): a run's current status, rebuilt from its HealthOmics
//! description (GetRun's JSON, the AWS CLI's keys) as an event of the processor's own, with
//! an id derived from the run, the status and the time, so that reconciling twice archives
//! once and the WES API answers "No state change".
//!
//! The same builder makes the start a heal reports (behaviour §7): the run's description,
//! status RUNNING, at its `startTime`, with an id derived from the terminal event's.
//!
//! A reconciliation spends HealthOmics' quota sparingly: ListRuns' pages, then GetRun only
//! for the runs whose status changed since a pass last brought them up to date (its ledger,
//! an S3 object beside the archive), and no task listing; all at its own pace
//! (`RECONCILE_RATE`), so that most of the quota stays with live events.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use futures_util::StreamExt;
use serde_json::{Map, Value, json};
use tracing::warn;

use super::{ArchiveTarget, CallbackOutcome, Handler, Report};
use crate::adapters::omics::{self, Pace, RunSummary};
use crate::adapters::s3;
use crate::error::{AwsError, FetchError};
use crate::ports::{Archive, Enricher, Fetched, Notifier};
use crate::sandbox::{TaskList, TaskRequest};

/// The source of reconciled events.
pub const SOURCE: &str = "ngs360.reconcile";

/// The namespace of reconciled events' ids (UUID v5): a fixed, arbitrary UUID.
const NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x6e67_7333_3630_4f6d_8963_7352_6563_6f6e);

/// What a rebuilt event may say instead of the run's description.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub status: Option<String>,
    pub time: Option<String>,
    pub id: Option<String>,
}

/// The time a run's status dates from: its stop, else its start, else its creation.
pub fn status_time(run: &Value) -> Option<&str> {
    ["stopTime", "startTime", "creationTime"].iter().find_map(|k| run.get(*k).and_then(Value::as_str))
}

/// The derived id of a run's status at a time: the same inputs give the same id.
pub fn derived_id(run_id: &str, status: &str, time: &str) -> String {
    uuid::Uuid::new_v5(&NAMESPACE, format!("{run_id}/{status}/{time}").as_bytes()).to_string()
}

/// The event for a run (GetRun's JSON), or `None` when the description lacks the run's id
/// or status.
pub fn run_event(run: &Value, overrides: &Overrides) -> Option<Value> {
    let text = |k: &str| run.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
    let run_id = text("id")?;
    let status = overrides.status.as_deref().or(text("status"))?;
    let time = overrides.time.as_deref().or_else(|| status_time(run)).unwrap_or_default();
    let id = overrides.id.clone().unwrap_or_else(|| derived_id(run_id, status, time));
    let arn = text("arn");
    // arn:{partition}:omics:{region}:{account}:run/{id}
    let parts: Vec<&str> = arn.map(|a| a.splitn(6, ':').collect()).unwrap_or_default();
    let region = parts.get(3).copied().filter(|s| !s.is_empty());
    let account = parts.get(4).copied().filter(|s| !s.is_empty());
    let mut detail = Map::new();
    let mut put = |key: &str, value: Option<&str>| {
        if let Some(v) = value {
            detail.insert(key.to_owned(), Value::from(v));
        }
    };
    put("arn", arn);
    put("runId", Some(run_id));
    put("status", Some(status));
    put("uuid", text("uuid"));
    put("runName", text("name"));
    put("runOutputUri", text("runOutputUri"));
    put("workflowId", text("workflowId"));
    put("workflowUuid", text("workflowUuid"));
    put("runCache", text("cacheId"));
    put("runCacheBehavior", text("cacheBehavior"));
    if overrides.status.is_none() {
        // A start reported for a heal is not the run's failure.
        put("statusMessage", text("statusMessage"));
        put("failureReason", text("failureReason"));
    }
    let mut event = json!({
        "version": "0",
        "id": id,
        "detail-type": "Run Status Change",
        "source": SOURCE,
    });
    let top = event.as_object_mut().expect("an object");
    if let Some(account) = account {
        top.insert("account".into(), account.into());
    }
    if !time.is_empty() {
        top.insert("time".into(), time.into());
    }
    if let Some(region) = region {
        top.insert("region".into(), region.into());
    }
    top.insert("resources".into(), Value::Array(arn.map(|a| vec![Value::from(a)]).unwrap_or_default()));
    top.insert("detail".into(), Value::Object(detail));
    Some(event)
}

/// Which runs a reconciliation looks at: those whose status dates from within the window.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub since: SystemTime,
    pub until: SystemTime,
}

/// How many runs are processed at once (their S3 writes and callbacks overlap); their
/// HealthOmics calls keep to the pace whatever this is.
pub const CONCURRENCY: usize = 4;

/// `RECONCILE_RATE`'s default: HealthOmics calls per second, 3 of the default quota's 10.
pub const RATE: f64 = 3.0;

/// How a reconciliation spends the quota, when it stops, and where it keeps its place.
pub struct Settings<'a> {
    /// HealthOmics calls per second at most (`RECONCILE_RATE`).
    pub rate: f64,
    /// No run is started after this (a scheduled reconciliation: shortly before the
    /// function's time limit); the runs left are the next pass's.
    pub stop_at: Option<Instant>,
    /// The runs brought up to date, kept between passes; without it every run of the window
    /// is read again.
    pub ledger: Option<Ledger<'a>>,
}

/// The ledger: run id to the status (and its time) a pass last brought up to date, archived
/// and called back (or skipped, or rejected for good: nothing a later pass would change). A
/// run whose callback failed is not in it, so the next pass takes it again.
pub struct Ledger<'a> {
    pub s3: &'a aws_sdk_s3::Client,
    pub bucket: String,
    pub key: String,
}

impl<'a> Ledger<'a> {
    /// The ledger of the archive `target`: `{prefix}/_reconcile/state.json` in its bucket. Its
    /// folder starts with `_`, which the data lake's readers (Athena, Hive) skip as hidden.
    pub fn beside(s3: &'a aws_sdk_s3::Client, target: &ArchiveTarget) -> Ledger<'a> {
        let key = if target.prefix.is_empty() {
            "_reconcile/state.json".into()
        } else {
            format!("{}/_reconcile/state.json", target.prefix)
        };
        Ledger { s3, bucket: target.bucket.clone(), key }
    }

    async fn load(&self) -> Result<HashMap<String, String>, String> {
        match s3::get_object(self.s3, &self.bucket, &self.key, None).await {
            Ok((bytes, _)) => {
                let doc: Value = serde_json::from_slice(&bytes).map_err(|e| format!("not JSON ({e})"))?;
                let runs = doc.get("runs").and_then(Value::as_object).ok_or("no `runs` object")?;
                Ok(runs.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned()))).collect())
            }
            Err(s3::GetError::NotFound) => Ok(HashMap::new()),
            Err(e) => Err(e.to_string()),
        }
    }

    async fn save(&self, runs: &HashMap<String, String>) -> Result<(), String> {
        let mut sorted: Vec<(&String, &String)> = runs.iter().collect();
        sorted.sort();
        let runs: Map<String, Value> = sorted.into_iter().map(|(k, v)| (k.clone(), Value::from(v.as_str()))).collect();
        let body = json!({"version": 1, "runs": runs}).to_string().into_bytes();
        s3::put_object(self.s3, &self.bucket, &self.key, body).await
    }
}

/// What the ledger holds for a run's status: `STATUS@time`.
fn marker(run: &RunSummary) -> String {
    format!("{}@{}", run.status, run.status_time_text)
}

/// What a reconciliation did.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Summary {
    /// Runs ListRuns gave.
    pub runs_seen: usize,
    /// Of those, runs whose status dates from within the window.
    pub in_window: usize,
    /// Of those, runs already brought up to date in that status by an earlier pass: no
    /// GetRun, nothing sent.
    pub unchanged: usize,
    /// HealthOmics calls made: ListRuns pages and GetRun.
    pub list_runs_pages: usize,
    pub get_run_calls: usize,
    /// Callbacks that moved a WES run (2xx, with a state change).
    pub callbacks_sent: usize,
    /// Runs the WES API already had in this state (or had finished). A run whose event was
    /// archived before but whose callback had failed counts as sent when the callback moves it.
    pub already_current: usize,
    /// Runs without a `WESRunId` tag (or DELETED): archived, no callback.
    pub skipped: usize,
    /// Runs the WES API rejected for good (unknown WES run, ...).
    pub rejected: usize,
    /// Runs whose event failed; `failures` says why. The next pass takes them again.
    pub failed: usize,
    pub failures: Vec<String>,
    /// Runs not started before the pass had to stop (`stop_at`): the next pass's.
    pub left: usize,
    /// The ledger could not be read or written (the next pass reads every run again).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ledger_error: Option<String>,
    /// With `--dry-run`: the events that would be processed, one line each.
    pub planned: Vec<String>,
}

/// A reconciliation's event source: the run's description is at hand, and its tasks are
/// not listed (behaviour §9: ListRunTasks would cost the quota a call per 100 tasks of every
/// run; the record gives `task_logs_base_url`). `outputs.json` is read from S3 as ever.
struct Prefetched<'a, E> {
    run: String,
    inner: &'a E,
}

impl<E: Enricher> Enricher for Prefetched<'_, E> {
    async fn run(&self, _run_id: &str) -> Fetched<String> {
        Ok(Some(self.run.clone()))
    }
    async fn tasks(&self, _run_id: &str, _request: TaskRequest) -> Fetched<TaskList> {
        Ok(None)
    }
    async fn outputs(&self, uri: &str) -> Fetched<Vec<u8>> {
        self.inner.outputs(uri).await
    }
}

/// What became of one run.
enum RunResult {
    Sent,
    Current,
    Skipped,
    Rejected,
    Planned(String),
    Failed(String),
    /// Not started: the pass had to stop.
    Left,
}

impl RunResult {
    /// Whether the run is now up to date in its status, for the ledger.
    fn up_to_date(&self) -> bool {
        matches!(self, RunResult::Sent | RunResult::Current | RunResult::Skipped | RunResult::Rejected)
    }
}

/// Rebuilds every run's current status whose time falls in `window` as an event of its own
/// and processes it through `handler`, [`CONCURRENCY`] at a time: ListRuns, every page; then,
/// for each run of the window whose status changed since the ledger last saw it brought up
/// to date, GetRun; every HealthOmics call at `settings.rate` at most. `progress` gets one
/// line per run processed. With `dry_run`, nothing is archived, called back or recorded:
/// the events are only listed.
pub async fn reconcile<E: Enricher, A: Archive, N: Notifier>(
    handler: &Handler<E, A, N>,
    omics: &aws_sdk_omics::Client,
    window: Window,
    dry_run: bool,
    settings: &Settings<'_>,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Summary, AwsError> {
    let pace = Pace::new(settings.rate);
    let (runs, pages) = omics::list_runs(omics, Some(&pace)).await.map_err(|e| match e {
        FetchError::Failed(e) => e,
        FetchError::Permanent(why) => AwsError { call: "ListRuns", reason: why },
    })?;
    let mut summary = Summary { runs_seen: runs.len(), list_runs_pages: pages, ..Summary::default() };
    let due: Vec<RunSummary> =
        runs.into_iter().filter(|r| r.status_time.is_some_and(|t| t >= window.since && t <= window.until)).collect();
    summary.in_window = due.len();
    let known = match &settings.ledger {
        Some(ledger) => ledger.load().await.unwrap_or_else(|e| {
            warn!(
                "reconcile: the ledger s3://{}/{} cannot be read ({e}); every run of the window is read again",
                ledger.bucket, ledger.key
            );
            summary.ledger_error = Some(format!("read: {e}"));
            HashMap::new()
        }),
        None => HashMap::new(),
    };
    let (unchanged, changed): (Vec<RunSummary>, Vec<RunSummary>) =
        due.into_iter().partition(|r| known.get(&r.id).is_some_and(|m| *m == marker(r)));
    summary.unchanged = unchanged.len();
    let pace = &pace;
    let results: Vec<(RunSummary, RunResult)> = futures_util::stream::iter(changed)
        .map(|run| async move {
            if settings.stop_at.is_some_and(|t| Instant::now() >= t) {
                return (run, RunResult::Left);
            }
            pace.turn().await;
            let result = one(handler, omics, &run, dry_run).await;
            let line = match &result {
                RunResult::Sent => format!("run {} {}: callback sent", run.id, run.status),
                RunResult::Current => format!("run {} {}: already current", run.id, run.status),
                RunResult::Skipped => format!("run {} {}: no callback (no WESRunId, or DELETED)", run.id, run.status),
                RunResult::Rejected => format!("run {} {}: rejected by the WES API", run.id, run.status),
                RunResult::Planned(what) => format!("run {} {}: would process {what}", run.id, run.status),
                RunResult::Failed(why) => format!("run {} {}: failed: {why}", run.id, run.status),
                RunResult::Left => unreachable!("a run left is not processed"),
            };
            progress(&line);
            (run, result)
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let mut ledger: HashMap<String, String> = unchanged.iter().map(|r| (r.id.clone(), marker(r))).collect();
    for (run, result) in results {
        if !matches!(result, RunResult::Left) {
            summary.get_run_calls += 1;
        }
        if result.up_to_date() {
            ledger.insert(run.id.clone(), marker(&run));
        }
        let run_id = run.id;
        match result {
            RunResult::Sent => summary.callbacks_sent += 1,
            RunResult::Current => summary.already_current += 1,
            RunResult::Skipped => summary.skipped += 1,
            RunResult::Rejected => summary.rejected += 1,
            RunResult::Planned(what) => summary.planned.push(format!("run {run_id}: {what}")),
            RunResult::Failed(why) => {
                summary.failed += 1;
                summary.failures.push(format!("run {run_id}: {why}"));
            }
            RunResult::Left => summary.left += 1,
        }
    }
    if let (Some(store), false) = (&settings.ledger, dry_run)
        && let Err(e) = store.save(&ledger).await
    {
        warn!(
            "reconcile: the ledger s3://{}/{} cannot be written ({e}); the next pass reads every run of its window again",
            store.bucket, store.key
        );
        summary.ledger_error = Some(format!("write: {e}"));
    }
    Ok(summary)
}

async fn one<E: Enricher, A: Archive, N: Notifier>(
    handler: &Handler<E, A, N>,
    omics: &aws_sdk_omics::Client,
    run: &RunSummary,
    dry_run: bool,
) -> RunResult {
    let description = match omics::get_run(omics, &run.id).await {
        Ok(d) => d,
        Err(e) => return RunResult::Failed(e.to_string()),
    };
    let Some(event) = run_event(&description, &Overrides::default()) else {
        return RunResult::Failed("GetRun gave no run id or status".into());
    };
    if dry_run {
        let wes = description.pointer("/tags/WESRunId").and_then(Value::as_str).unwrap_or("no WESRunId");
        return RunResult::Planned(format!(
            "event {} at {} (WES run {wes})",
            event["id"].as_str().unwrap_or_default(),
            event["time"].as_str().unwrap_or("-")
        ));
    }
    let enricher = Prefetched { run: description.to_string(), inner: &handler.enricher };
    match handler.handle_with(event.to_string().into_bytes().into(), &enricher).await {
        Ok(Report::Processed { callback: CallbackOutcome::Skipped(_), .. }) => RunResult::Skipped,
        Ok(Report::Processed { callback: CallbackOutcome::Rejected(_), .. }) => RunResult::Rejected,
        Ok(Report::Processed { answer, .. }) if answer.as_deref().is_some_and(unchanged) => RunResult::Current,
        Ok(Report::Processed { .. }) => RunResult::Sent,
        Ok(Report::Ignored(why)) => RunResult::Failed(format!("the guest ignored it: {why}")),
        Err(e) => RunResult::Failed(e.to_string()),
    }
}

/// The WES API's answers that change nothing (behaviour §7).
fn unchanged(answer: &str) -> bool {
    let a = answer.to_ascii_lowercase();
    a.contains("no state change") || a.contains("already")
}

/// `26h`, `90m`, `7d`, `3600s` (or a number of seconds) as a duration.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().map_err(|_| format!("`{text}` is not a duration such as 26h, 90m or 7d"))?;
    let seconds = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return Err(format!("`{text}` is not a duration such as 26h, 90m or 7d")),
    };
    Ok(Duration::from_secs(seconds))
}

/// An RFC 3339 time (`2026-03-02T14:05:09Z`).
pub fn parse_time(text: &str) -> Result<SystemTime, String> {
    aws_sdk_omics::primitives::DateTime::from_str(text.trim(), aws_sdk_omics::primitives::DateTimeFormat::DateTime)
        .ok()
        .and_then(|d| SystemTime::try_from(d).ok())
        .ok_or_else(|| format!("`{text}` is not an RFC 3339 time such as 2026-03-02T14:05:09Z"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run() -> Value {
        json!({"arn": "arn:aws:omics:eu-west-1:111122223333:run/4417021", "id": "4417021", "uuid": "u-1",
               "status": "FAILED", "name": "wgs", "runOutputUri": "s3://b/4417021", "workflowId": "9876543",
               "creationTime": "2026-03-02T12:58:41.120Z", "startTime": "2026-03-02T13:02:10.501Z",
               "stopTime": "2026-03-02T14:05:09Z", "failureReason": "OOM", "tags": {"WESRunId": "w"}})
    }

    #[test]
    fn a_run_becomes_an_event_of_its_own_with_a_stable_id() {
        let event = run_event(&run(), &Overrides::default()).unwrap();
        assert_eq!(event["source"], "ngs360.reconcile");
        assert_eq!(event["detail-type"], "Run Status Change");
        assert_eq!((event["account"].as_str(), event["region"].as_str()), (Some("111122223333"), Some("eu-west-1")));
        assert_eq!(event["time"], "2026-03-02T14:05:09Z", "the stop time");
        assert_eq!(event["resources"][0], "arn:aws:omics:eu-west-1:111122223333:run/4417021");
        let detail = event["detail"].as_object().unwrap();
        let keys: Vec<&str> = detail.keys().map(String::as_str).collect();
        assert_eq!(keys, ["arn", "runId", "status", "uuid", "runName", "runOutputUri", "workflowId", "failureReason"]);
        assert_eq!(event["id"], derived_id("4417021", "FAILED", "2026-03-02T14:05:09Z"));
        assert_eq!(run_event(&run(), &Overrides::default()).unwrap()["id"], event["id"], "stable");
        let mut later = run();
        later["status"] = "COMPLETED".into();
        assert_ne!(run_event(&later, &Overrides::default()).unwrap()["id"], event["id"]);
    }

    #[test]
    fn a_heal_reports_the_start_with_the_ids_and_times_it_is_given() {
        let o = Overrides {
            status: Some("RUNNING".into()),
            time: Some("2026-03-02T13:02:10.501Z".into()),
            id: Some("e-1:started".into()),
        };
        let event = run_event(&run(), &o).unwrap();
        assert_eq!(
            (event["id"].as_str(), event["time"].as_str()),
            (Some("e-1:started"), Some("2026-03-02T13:02:10.501Z"))
        );
        assert_eq!(event["detail"]["status"], "RUNNING");
        assert!(event["detail"].get("failureReason").is_none());
        assert!(run_event(&json!({"status": "RUNNING"}), &Overrides::default()).is_none(), "no run id");
    }

    #[test]
    fn durations_and_times() {
        assert_eq!(parse_duration("26h").unwrap(), Duration::from_secs(26 * 3600));
        assert_eq!(parse_duration("90m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("7d").unwrap(), Duration::from_secs(7 * 86_400));
        assert_eq!(parse_duration("30").unwrap(), Duration::from_secs(30));
        assert!(parse_duration("soon").is_err() && parse_duration("3w").is_err());
        let t = parse_time("2026-03-02T14:05:09Z").unwrap();
        assert_eq!(t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs(), 1_772_460_309);
        assert!(parse_time("yesterday").is_err());
    }

    #[test]
    fn the_reconcile_fixture_is_what_the_builder_makes() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/ngs360-reconcile-run-completed");
        let context: Value = serde_json::from_slice(&std::fs::read(format!("{dir}/context.json")).unwrap()).unwrap();
        let event: Value = serde_json::from_slice(&std::fs::read(format!("{dir}/event.json")).unwrap()).unwrap();
        assert_eq!(run_event(&context["run"], &Overrides::default()).unwrap(), event);
    }
}
