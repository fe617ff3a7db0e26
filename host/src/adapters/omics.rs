//! HealthOmics: GetRun, ListRunTasks and ListRuns, turned into the JSON the AWS CLI prints
//! (camelCase keys), which is what the guest reads; and how they spend HealthOmics' small
//! per-Region quota (10 calls per second by default, shared by GetRun, ListRunTasks and
//! ListRuns): each call is retried through throttling, jittered, until the invocation's
//! throttling budget runs out (`OMICS_THROTTLE_BUDGET_SECONDS`), and a reconciliation
//! paces its own calls (`Pace`, `RECONCILE_RATE`).

use std::future::Future;
use std::time::{Duration, Instant};

use aws_sdk_omics::config::http::HttpResponse;
use aws_sdk_omics::error::{ProvideErrorMetadata, SdkError};
use serde_json::Value;

use aws_sdk_omics::types::TaskStatus;
use tracing::debug;

use super::aws::sort;
use crate::error::{AwsError, FetchError};
use crate::sandbox::{TaskList, TaskRequest};

/// The throttling budget when no invocation set one (`OMICS_THROTTLE_BUDGET_SECONDS`'s
/// default).
pub const THROTTLE_BUDGET: Duration = Duration::from_secs(300);

tokio::task_local! {
    /// When the current invocation's throttling budget runs out.
    static BUDGET_ENDS: Instant;
}

/// Runs `work` (one invocation) with `budget` for waiting out HealthOmics' throttling, over
/// all of its calls together.
pub async fn with_throttle_budget<F: Future>(budget: Duration, work: F) -> F::Output {
    BUDGET_ENDS.scope(Instant::now() + budget, work).await
}

/// Whether HealthOmics throttled the call (HTTP 429, `ThrottlingException`): the quota is
/// spent for now, which is never a verdict on the run.
fn is_throttled<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> bool {
    match err {
        SdkError::ServiceError(service) => {
            service.raw().status().as_u16() == 429
                || matches!(service.err().code(), Some("ThrottlingException" | "TooManyRequestsException"))
        }
        _ => false,
    }
}

/// The wait before the `attempt`-th retry of a throttled call: full jitter over an interval
/// that doubles from 0.5 s to 8 s (at most `left`), so that instances throttled together do
/// not come back together.
fn backoff(attempt: u32, left: Duration) -> Duration {
    let ceiling = (0.5 * 2f64.powi(attempt.min(4) as i32)).min(8.0).min(left.as_secs_f64());
    Duration::from_secs_f64(ceiling * fastrand::f64())
}

/// Sends a HealthOmics request made by `request` (the SDK's own retries come first); when
/// the answer is still a throttle, waits (jittered) and sends it again, for as long as the
/// invocation's budget lasts. The budget also bounds the time spent inside the SDK, its
/// retries included. Any other failure is sorted at once.
async fn call<T, E, F>(name: &'static str, request: impl Fn() -> F) -> Result<T, FetchError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    F: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
{
    let started = Instant::now();
    let ends = BUDGET_ENDS.try_with(|t| *t).unwrap_or_else(|_| started + THROTTLE_BUDGET);
    let spent = || {
        FetchError::Failed(AwsError {
            call: name,
            reason: format!(
                "throttled until the invocation's throttling budget ran out (OMICS_THROTTLE_BUDGET_SECONDS; \
                 {:.0} s in this call); Lambda retries the event",
                started.elapsed().as_secs_f64()
            ),
        })
    };
    let mut attempt = 0;
    loop {
        let Ok(answer) = tokio::time::timeout_at(ends.into(), request()).await else { return Err(spent()) };
        match answer {
            Err(e) if is_throttled(&e) => {
                // Drawn within what is left of the budget, so that the tries go on until it
                // ends (the last one cut by it), not until a long wait is drawn.
                let left = ends.saturating_duration_since(Instant::now());
                if left < Duration::from_millis(1) {
                    return Err(spent());
                }
                let wait = backoff(attempt, left);
                attempt += 1;
                debug!(
                    call = name,
                    attempt,
                    wait_ms = wait.as_millis() as u64,
                    "HealthOmics throttled the call; trying again"
                );
                tokio::time::sleep(wait).await;
            }
            answer => return answer.map_err(|e| sort(name, e)),
        }
    }
}

/// At most `rate` calls per second, whoever makes them: a reconciliation's share of the
/// quota, so that it leaves the rest to live events.
pub struct Pace {
    interval: Duration,
    next: tokio::sync::Mutex<Instant>,
}

impl Pace {
    pub fn new(rate: f64) -> Pace {
        Pace { interval: Duration::from_secs_f64(1.0 / rate.max(0.01)), next: tokio::sync::Mutex::new(Instant::now()) }
    }

    /// Waits for the next call's turn.
    pub async fn turn(&self) {
        let at = {
            let mut next = self.next.lock().await;
            let at = (*next).max(Instant::now());
            *next = at + self.interval;
            at
        };
        tokio::time::sleep_until(at.into()).await;
    }
}

/// GetRun, as JSON.
pub async fn get_run(client: &aws_sdk_omics::Client, run_id: &str) -> Result<Value, FetchError> {
    let out = call("GetRun", || client.get_run().id(run_id).send()).await?;
    Ok(run_json(&out))
}

/// A run as ListRuns lists it: enough to tell whether its status falls in a window, and
/// whether it changed since a reconciliation last brought it up to date.
#[derive(Debug, Clone)]
pub struct RunSummary {
    pub id: String,
    pub status: String,
    /// When its status dates from: its stop, else its start, else its creation.
    pub status_time: Option<std::time::SystemTime>,
    /// The same, as the AWS CLI prints it (empty when there is none).
    pub status_time_text: String,
}

/// ListRuns' largest page.
const RUNS_PAGE: i32 = 100;

/// Every run of the account and region, over all pages of ListRuns (100 a page), each page
/// after `pace`'s turn when given; and how many pages that took.
pub async fn list_runs(
    client: &aws_sdk_omics::Client,
    pace: Option<&Pace>,
) -> Result<(Vec<RunSummary>, usize), FetchError> {
    let mut runs = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        pages += 1;
        if let Some(pace) = pace {
            pace.turn().await;
        }
        let page =
            call("ListRuns", || client.list_runs().max_results(RUNS_PAGE).set_starting_token(token.clone()).send())
                .await?;
        for item in page.items() {
            let Some(id) = item.id() else { continue };
            let time = item.stop_time().or(item.start_time()).or(item.creation_time());
            runs.push(RunSummary {
                id: id.to_owned(),
                status: item.status().map(|s| s.as_str().to_owned()).unwrap_or_default(),
                status_time: time.and_then(|t| std::time::SystemTime::try_from(*t).ok()),
                status_time_text: iso(time).and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default(),
            });
        }
        token = page.next_token().filter(|t| !t.is_empty()).map(str::to_owned);
        if token.is_none() {
            return Ok((runs, pages));
        }
    }
}

/// ListRunTasks' largest page.
const PAGE: u32 = 100;

/// A run's tasks within `request`'s bounds (behaviour §4, large runs): the first
/// `request.limit` in ListRunTasks order, whether the run has more, and when asked and it
/// has more, at most `request.limit` of its FAILED tasks (ListRunTasks' status filter). The
/// calls made do not grow with the run past the limit: at most `2 * ceil(limit / 100)`.
pub async fn list_tasks(
    client: &aws_sdk_omics::Client,
    run_id: &str,
    request: TaskRequest,
) -> Result<TaskList, FetchError> {
    let (items, more) = list_some(client, run_id, request.limit, None).await?;
    let failed = if more && request.failed {
        Some(Value::Array(list_some(client, run_id, request.limit, Some(TaskStatus::Failed)).await?.0).to_string())
    } else {
        None
    };
    Ok(TaskList { items: Value::Array(items).to_string(), more, failed })
}

/// Up to `limit` tasks (of `status`, when given), and whether there are more.
async fn list_some(
    client: &aws_sdk_omics::Client,
    run_id: &str,
    limit: u32,
    status: Option<TaskStatus>,
) -> Result<(Vec<Value>, bool), FetchError> {
    let limit = limit as usize;
    let mut items = Vec::with_capacity(limit.min(PAGE as usize));
    let mut token: Option<String> = None;
    loop {
        let wanted = (limit - items.len()).min(PAGE as usize) as i32;
        let page = call("ListRunTasks", || {
            client
                .list_run_tasks()
                .id(run_id)
                .max_results(wanted.max(1))
                .set_status(status.clone())
                .set_starting_token(token.clone())
                .send()
        })
        .await?;
        let room = limit - items.len();
        let got = page.items();
        items.extend(got.iter().take(room).map(task_json));
        let cut = got.len() > room;
        token = page.next_token().filter(|t| !t.is_empty()).map(str::to_owned);
        if cut || items.len() == limit || token.is_none() {
            return Ok((items, cut || token.is_some()));
        }
    }
}

/// A JSON object of the entries that have a value, in order.
fn object<'a>(entries: impl IntoIterator<Item = (&'a str, Option<Value>)>) -> Value {
    Value::Object(entries.into_iter().filter_map(|(k, v)| Some((k.to_owned(), v?))).collect())
}

/// A timestamp as the AWS CLI prints it (RFC 3339).
fn iso(t: Option<&aws_sdk_omics::primitives::DateTime>) -> Option<Value> {
    t.and_then(|d| d.fmt(aws_sdk_omics::primitives::DateTimeFormat::DateTime).ok()).map(Value::from)
}

fn text(v: Option<&str>) -> Option<Value> {
    v.map(Value::from)
}

/// GetRun's output with the AWS CLI's keys (camelCase), the fields the guest may use.
pub fn run_json(r: &aws_sdk_omics::operation::get_run::GetRunOutput) -> Value {
    let log_location = r.log_location().map(|l| {
        object([("engineLogStream", text(l.engine_log_stream())), ("runLogStream", text(l.run_log_stream()))])
    });
    let tags =
        r.tags().map(|tags| Value::Object(tags.iter().map(|(k, v)| (k.clone(), Value::from(v.as_str()))).collect()));
    object([
        ("arn", text(r.arn())),
        ("id", text(r.id())),
        ("uuid", text(r.uuid())),
        ("status", text(r.status().map(|v| v.as_str()))),
        ("workflowId", text(r.workflow_id())),
        ("workflowType", text(r.workflow_type().map(|v| v.as_str()))),
        ("workflowVersionName", text(r.workflow_version_name())),
        ("workflowUuid", text(r.workflow_uuid())),
        ("workflowOwnerId", text(r.workflow_owner_id())),
        ("name", text(r.name())),
        ("runGroupId", text(r.run_group_id())),
        ("priority", r.priority().map(Value::from)),
        ("storageCapacity", r.storage_capacity().map(Value::from)),
        ("storageType", text(r.storage_type().map(|v| v.as_str()))),
        ("outputUri", text(r.output_uri())),
        ("runOutputUri", text(r.run_output_uri())),
        ("logLevel", text(r.log_level().map(|v| v.as_str()))),
        ("startedBy", text(r.started_by())),
        ("creationTime", iso(r.creation_time())),
        ("startTime", iso(r.start_time())),
        ("stopTime", iso(r.stop_time())),
        ("statusMessage", text(r.status_message())),
        ("failureReason", text(r.failure_reason())),
        ("retentionMode", text(r.retention_mode().map(|v| v.as_str()))),
        ("cacheId", text(r.cache_id())),
        ("cacheBehavior", text(r.cache_behavior().map(|v| v.as_str()))),
        ("engineVersion", text(r.engine_version())),
        ("logLocation", log_location),
        ("tags", tags),
    ])
}

/// One ListRunTasks item with the AWS CLI's keys.
pub fn task_json(t: &aws_sdk_omics::types::TaskListItem) -> Value {
    object([
        ("taskId", text(t.task_id())),
        ("status", text(t.status().map(|v| v.as_str()))),
        ("name", text(t.name())),
        ("cpus", t.cpus().map(Value::from)),
        ("cacheHit", t.cache_hit().map(Value::from)),
        ("memory", t.memory().map(Value::from)),
        ("gpus", t.gpus().map(Value::from)),
        ("instanceType", text(t.instance_type())),
        ("creationTime", iso(t.creation_time())),
        ("startTime", iso(t.start_time())),
        ("stopTime", iso(t.stop_time())),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttled_waits_grow_to_8_s_and_never_outlast_the_budget() {
        for attempt in 0..8 {
            let ceiling = (0.5 * 2f64.powi(attempt.min(4) as i32)).min(8.0);
            let waits: Vec<f64> = (0..200).map(|_| backoff(attempt, Duration::from_secs(60)).as_secs_f64()).collect();
            assert!(waits.iter().all(|w| *w <= ceiling), "attempt {attempt}");
            assert!(waits.iter().any(|w| *w > ceiling / 2.0), "attempt {attempt}: jittered over the whole interval");
        }
        let left = Duration::from_millis(300);
        assert!((0..200).all(|_| backoff(6, left) <= left));
    }
}
