//! HealthOmics: GetRun and ListRunTasks, turned into the JSON the AWS CLI prints (camelCase
//! keys), which is what the guest reads.

use serde_json::Value;

use aws_sdk_omics::types::TaskStatus;

use super::aws::sort;
use crate::error::FetchError;
use crate::sandbox::{TaskList, TaskRequest};

/// GetRun, as JSON.
pub async fn get_run(client: &aws_sdk_omics::Client, run_id: &str) -> Result<Value, FetchError> {
    let out = client.get_run().id(run_id).send().await.map_err(|e| sort("GetRun", e))?;
    Ok(run_json(&out))
}

/// A run as ListRuns lists it: enough to tell whether its status falls in a window.
#[derive(Debug, Clone)]
pub struct RunSummary {
    pub id: String,
    pub status: String,
    /// When its status dates from: its stop, else its start, else its creation.
    pub status_time: Option<std::time::SystemTime>,
}

/// Every run of the account and region, over all pages of ListRuns.
pub async fn list_runs(client: &aws_sdk_omics::Client) -> Result<Vec<RunSummary>, FetchError> {
    let mut runs = Vec::new();
    let mut pages = client.list_runs().max_results(100).into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| sort("ListRuns", e))?;
        for item in page.items() {
            let Some(id) = item.id() else { continue };
            let time = item.stop_time().or(item.start_time()).or(item.creation_time());
            runs.push(RunSummary {
                id: id.to_owned(),
                status: item.status().map(|s| s.as_str().to_owned()).unwrap_or_default(),
                status_time: time.and_then(|t| std::time::SystemTime::try_from(*t).ok()),
            });
        }
    }
    Ok(runs)
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
        let page = client
            .list_run_tasks()
            .id(run_id)
            .max_results(wanted.max(1))
            .set_status(status.clone())
            .set_starting_token(token.take())
            .send()
            .await
            .map_err(|e| sort("ListRunTasks", e))?;
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
