//! HealthOmics: GetRun and ListRunTasks, turned into the JSON the AWS CLI prints (camelCase
//! keys), which is what the guest reads.

use serde_json::Value;

use super::aws::sort;
use crate::error::FetchError;

/// GetRun, as JSON.
pub async fn get_run(client: &aws_sdk_omics::Client, run_id: &str) -> Result<Value, FetchError> {
    let out = client.get_run().id(run_id).send().await.map_err(|e| sort("GetRun", e))?;
    Ok(run_json(&out))
}

/// Every ListRunTasks item over all pages, as a JSON array.
pub async fn list_tasks(client: &aws_sdk_omics::Client, run_id: &str) -> Result<Value, FetchError> {
    let mut items = Vec::new();
    let mut pages = client.list_run_tasks().id(run_id).into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| sort("ListRunTasks", e))?;
        items.extend(page.items().iter().map(task_json));
    }
    Ok(Value::Array(items))
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
