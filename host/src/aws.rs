//! The AWS adapters: HealthOmics (GetRun, ListRunTasks) and S3 (outputs.json, the archive,
//! guest components), and the callback key from Secrets Manager.
//!
//! Failures are sorted as SPEC section 3 says: a 4xx that retrying cannot fix is permanent;
//! throttling, timeouts, 5xx and network failures (after the SDK's own retries) are
//! transient.

use std::time::Duration;

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_omics::config::http::HttpResponse;
use aws_sdk_omics::config::interceptors::BeforeTransmitInterceptorContextMut;
use aws_sdk_omics::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_omics::error::{BoxError, DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ServerSideEncryption;
use serde_json::Value;

use crate::config::ApiKey;
use crate::error::TransientError;
use crate::pipeline::{Archive, Enricher, FetchError, Fetched, Stored};

/// Loads region, credentials and endpoints from the environment (the standard AWS
/// variables, `AWS_ENDPOINT_URL_S3` and `AWS_ENDPOINT_URL_OMICS` among them), with time
/// limits on every call: a stalled AWS call fails the invocation (and Lambda retries it)
/// instead of holding the function until its 15-minute timeout.
pub async fn sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).timeout_config(timeouts()).load().await
}

/// 3 s to connect, 10 s per attempt, 30 s per call with the SDK's retries.
pub fn timeouts() -> aws_config::timeout::TimeoutConfig {
    aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(3))
        .operation_attempt_timeout(Duration::from_secs(10))
        .operation_timeout(Duration::from_secs(30))
        .build()
}

/// The S3 client.
pub fn s3(config: &SdkConfig) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::new(config)
}

/// The HealthOmics client. The SDK puts `workflows-` before the endpoint's host name for
/// GetRun and ListRunTasks, even with a custom endpoint; for an endpoint on `localhost` or
/// an IP address (a local emulator or test server, `AWS_ENDPOINT_URL_OMICS`) that name
/// cannot resolve, so the prefix is dropped there. AWS's own endpoints are left alone.
pub fn omics(config: &SdkConfig) -> aws_sdk_omics::Client {
    let conf = aws_sdk_omics::config::Builder::from(config).interceptor(DropLocalHostPrefix("workflows-")).build();
    aws_sdk_omics::Client::from_conf(conf)
}

/// The host of an `http(s)://` URI with `prefix` removed, when what remains is `localhost`
/// or an IP address; `None` otherwise.
fn strip_local_prefix(uri: &str, prefix: &str) -> Option<String> {
    let (scheme, rest) = uri.split_once("://")?;
    let rest = rest.strip_prefix(prefix)?;
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let host = authority.rsplit_once(':').map_or(authority, |(h, _)| h);
    let local = host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::Ipv4Addr>().is_ok();
    local.then(|| format!("{scheme}://{rest}"))
}

/// Removes a host prefix the SDK added, where it would make a local endpoint unreachable.
#[derive(Debug)]
struct DropLocalHostPrefix(&'static str);

impl Intercept for DropLocalHostPrefix {
    fn name(&self) -> &'static str {
        "DropLocalHostPrefix"
    }

    fn modify_before_signing(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request_mut();
        if let Some(uri) = strip_local_prefix(request.uri(), self.0) {
            request.set_uri(uri)?;
        }
        Ok(())
    }
}

/// Reads the callback key: the secret's JSON must have a non-empty string `AUTH_TOKEN`.
pub async fn callback_key(config: &SdkConfig, secret_id: &str) -> Result<ApiKey, String> {
    let client = aws_sdk_secretsmanager::Client::new(config);
    let out = client
        .get_secret_value()
        .secret_id(secret_id)
        .send()
        .await
        .map_err(|e| format!("cannot read the secret {secret_id} (ENV_SECRETS): {}", DisplayErrorContext(&e)))?;
    let text =
        out.secret_string().ok_or_else(|| format!("the secret {secret_id} (ENV_SECRETS) has no string value"))?;
    let json: Value =
        serde_json::from_str(text).map_err(|_| format!("the secret {secret_id} (ENV_SECRETS) is not a JSON object"))?;
    match json.get("AUTH_TOKEN").and_then(Value::as_str) {
        Some(key) if !key.is_empty() => Ok(ApiKey::new(key.to_owned())),
        _ => Err(format!("the secret {secret_id} (ENV_SECRETS) has no AUTH_TOKEN")),
    }
}

/// HealthOmics and S3, as the guest's inputs.
#[derive(Clone)]
pub struct AwsEnricher {
    pub omics: aws_sdk_omics::Client,
    pub s3: aws_sdk_s3::Client,
}

impl Enricher for AwsEnricher {
    async fn run(&self, run_id: &str) -> Fetched<String> {
        let out = self.omics.get_run().id(run_id).send().await.map_err(|e| sort("GetRun", e))?;
        Ok(Some(run_json(&out).to_string()))
    }

    async fn tasks(&self, run_id: &str) -> Fetched<String> {
        let mut items = Vec::new();
        let mut pages = self.omics.list_run_tasks().id(run_id).into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| sort("ListRunTasks", e))?;
            items.extend(page.items().iter().map(task_json));
        }
        Ok(Some(Value::Array(items).to_string()))
    }

    async fn outputs(&self, uri: &str) -> Fetched<Vec<u8>> {
        let Some((bucket, key)) = parse_s3_uri(uri) else {
            return Err(FetchError::Permanent(format!("outputs.json: `{uri}` is not an s3:// URI")));
        };
        match get_object(&self.s3, bucket, key, None).await {
            Ok((bytes, _)) => Ok(Some(bytes)),
            Err(GetError::NotFound) => Ok(None),
            Err(GetError::Fetch(e)) => Err(e),
        }
    }
}

/// Why an object could not be read.
pub enum GetError {
    NotFound,
    Fetch(FetchError),
}

/// Reads a whole object: its bytes and its ETag.
pub async fn get_object(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    version_id: Option<&str>,
) -> Result<(Vec<u8>, Option<String>), GetError> {
    match get_object_if_changed(s3, bucket, key, version_id, None).await? {
        Some(found) => Ok(found),
        None => unreachable!("an unconditional GET is never answered 304"),
    }
}

/// Reads a whole object unless its ETag is still `etag`: `Ok(None)` when unchanged (304),
/// else the bytes and the object's current ETag.
pub async fn get_object_if_changed(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    version_id: Option<&str>,
    etag: Option<&str>,
) -> Result<Option<(Vec<u8>, Option<String>)>, GetError> {
    let out = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .set_version_id(version_id.map(str::to_owned))
        .set_if_none_match(etag.map(str::to_owned))
        .send()
        .await;
    let out = match out {
        Ok(out) => out,
        Err(SdkError::ServiceError(e)) if e.raw().status().as_u16() == 304 => return Ok(None),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => return Err(GetError::NotFound),
        Err(e) => return Err(GetError::Fetch(sort("GetObject", e))),
    };
    let etag = out.e_tag().map(str::to_owned);
    let body = out.body.collect().await.map_err(|e| {
        GetError::Fetch(FetchError::Transient(TransientError {
            call: "GetObject",
            reason: format!("reading the body: {e}"),
        }))
    })?;
    Ok(Some((body.into_bytes().to_vec(), etag)))
}

/// `s3://bucket/key` into its parts.
pub fn parse_s3_uri(uri: &str) -> Option<(&str, &str)> {
    let (bucket, key) = uri.strip_prefix("s3://")?.split_once('/')?;
    (!bucket.is_empty() && !key.is_empty()).then_some((bucket, key))
}

/// Sorts an SDK error into permanent and transient.
fn sort<E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static>(
    call: &'static str,
    err: SdkError<E, HttpResponse>,
) -> FetchError {
    if let SdkError::ServiceError(service) = &err {
        let code = service.err().code().unwrap_or("Unknown");
        let status = Some(service.raw().status().as_u16());
        let throttled =
            matches!(code, "ThrottlingException" | "TooManyRequestsException" | "RequestTimeout" | "SlowDown");
        if matches!(status, Some(400..=499)) && !matches!(status, Some(408 | 429)) && !throttled {
            let what = match code {
                "ResourceNotFoundException" | "NoSuchKey" | "NoSuchBucket" | "NotFound" => "not found",
                "AccessDeniedException" | "AccessDenied" | "Forbidden" => "access denied",
                "ValidationException" => "invalid request",
                _ => "refused",
            };
            return FetchError::Permanent(format!("{call}: {what} ({code})"));
        }
    }
    FetchError::Transient(TransientError { call, reason: DisplayErrorContext(&err).to_string() })
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

/// The data lake in S3: conditional writes (`If-None-Match: *`), AES256, JSON.
#[derive(Clone)]
pub struct S3Archive {
    pub s3: aws_sdk_s3::Client,
}

impl Archive for S3Archive {
    async fn put_new(&self, bucket: &str, key: &str, body: Vec<u8>) -> Result<Stored, String> {
        let result = self
            .s3
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(ByteStream::from(body))
            .content_type("application/json")
            .server_side_encryption(ServerSideEncryption::Aes256)
            .if_none_match("*")
            .send()
            .await;
        match result {
            Ok(_) => Ok(Stored::Written),
            Err(SdkError::ServiceError(e)) if e.raw().status().as_u16() == 412 => Ok(Stored::AlreadyArchived),
            Err(e) => Err(format!("PutObject: {}", DisplayErrorContext(&e))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_prefix_is_dropped_for_local_endpoints_only() {
        assert_eq!(
            strip_local_prefix("http://workflows-127.0.0.1:9000/run/1", "workflows-").as_deref(),
            Some("http://127.0.0.1:9000/run/1")
        );
        assert_eq!(
            strip_local_prefix("http://workflows-localhost:9000/run/1/task?maxResults=1", "workflows-").as_deref(),
            Some("http://localhost:9000/run/1/task?maxResults=1")
        );
        assert_eq!(strip_local_prefix("https://workflows-omics.eu-west-1.amazonaws.com/run/1", "workflows-"), None);
        assert_eq!(strip_local_prefix("http://127.0.0.1:9000/run/1", "workflows-"), None);
    }

    #[test]
    fn s3_uris() {
        assert_eq!(parse_s3_uri("s3://b/k/o.json"), Some(("b", "k/o.json")));
        assert_eq!(parse_s3_uri("s3://b/"), None);
        assert_eq!(parse_s3_uri("https://b/k"), None);
    }
}
