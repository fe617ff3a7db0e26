//! AWS SDK configuration and clients, with time limits on every call, and the sorting of
//! SDK errors into permanent and failed (behaviour §3).

use std::time::Duration;

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_omics::config::http::HttpResponse;
use aws_sdk_omics::config::interceptors::BeforeTransmitInterceptorContextMut;
use aws_sdk_omics::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_omics::error::{BoxError, DisplayErrorContext, ProvideErrorMetadata, SdkError};

use crate::error::{AwsError, FetchError};

/// Loads region, credentials and endpoints from the environment (the standard AWS
/// variables, `AWS_ENDPOINT_URL_S3` and `AWS_ENDPOINT_URL_OMICS` among them), with time
/// limits on every call: a stalled AWS call fails the invocation (and Lambda retries it)
/// instead of holding the function until its 15-minute timeout; and `http_client` (see
/// `tls.rs`) for every call.
///
/// Lambda puts the region and the role's credentials in the environment; when they are
/// there, they are used directly. Resolving them through the default chains (profiles,
/// web identity, containers, IMDS) took 4.2-4.6 ms at every cold start, against 0.16 ms.
/// Elsewhere (the commands on an operator's machine) the default chains apply.
pub async fn sdk_config(http_client: aws_sdk_s3::config::SharedHttpClient) -> SdkConfig {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let mut loader =
        aws_config::defaults(BehaviorVersion::latest()).timeout_config(timeouts()).http_client(http_client);
    if let Some(region) = env("AWS_REGION").or_else(|| env("AWS_DEFAULT_REGION"))
        && env("AWS_ACCESS_KEY_ID").is_some()
        && env("AWS_SECRET_ACCESS_KEY").is_some()
    {
        loader = loader
            .region(aws_config::Region::new(region))
            .credentials_provider(aws_config::environment::EnvironmentVariableCredentialsProvider::new());
    }
    loader.load().await
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
pub fn s3_client(config: &SdkConfig) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::new(config)
}

/// The HealthOmics client. The SDK puts `workflows-` before the endpoint's host name for
/// the run calls, even with a custom endpoint; for an endpoint on `localhost` or an IP
/// address (a local emulator or test server, `AWS_ENDPOINT_URL_OMICS`) that name cannot
/// resolve, so the prefix is dropped there. AWS's own endpoints are left alone.
///
/// Its retries are the SDK's (standard, or what `AWS_RETRY_MODE` and `AWS_MAX_ATTEMPTS`
/// say); a throttled call is then retried, jittered, within the invocation's throttling
/// budget (`omics::call`), which also bounds the call's whole time, so it has no operation
/// time limit of its own here (each attempt keeps its 10 s). The SDK's adaptive mode
/// (client-side rate limiting) was measured against that and left out: in a burst each
/// instance's limiter slowed it far below its share of the quota (README, Bursts).
pub fn omics_client(config: &SdkConfig) -> aws_sdk_omics::Client {
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(3))
        .operation_attempt_timeout(Duration::from_secs(10))
        .disable_operation_timeout()
        .build();
    let conf = aws_sdk_omics::config::Builder::from(config)
        .timeout_config(timeouts)
        .interceptor(DropLocalHostPrefix("workflows-"))
        .build();
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

/// Sorts an SDK error (behaviour §3): only what no fix can repair is permanent, the thing
/// itself being gone (HealthOmics' run, the outputs bucket); every other failure fails
/// the invocation, so that the event waits for a retry or a replay. Access denied, expired
/// credentials and any other 4xx are configuration faults that an operator fixes; their
/// message says so.
pub(crate) fn sort<E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static>(
    call: &'static str,
    err: SdkError<E, HttpResponse>,
) -> FetchError {
    if let SdkError::ServiceError(service) = &err {
        let code = service.err().code().unwrap_or("Unknown");
        let status = service.raw().status().as_u16();
        let message = service.err().message().unwrap_or_default();
        if matches!(code, "ResourceNotFoundException" | "NoSuchBucket") {
            return FetchError::Permanent(format!("{call}: not found ({code})"));
        }
        let hint = match (status, code) {
            (408 | 429, _)
            | (_, "ThrottlingException" | "TooManyRequestsException" | "RequestTimeout" | "SlowDown") => {
                "throttled or timed out after the SDK's retries; Lambda retries the event"
            }
            (401 | 403, _)
            | (_, "AccessDeniedException" | "AccessDenied" | "ExpiredToken" | "ExpiredTokenException") => {
                "a configuration fault (the function's IAM policy, credentials, a bucket or a region); the event \
                 waits in the dead-letter queue for a replay once it is fixed"
            }
            (400..=499, _) => "refused; the event waits in the dead-letter queue for a replay once it is fixed",
            _ => "a service fault; Lambda retries the event",
        };
        let message = if message.is_empty() { String::new() } else { format!(": {message}") };
        return FetchError::Failed(AwsError { call, reason: format!("HTTP {status} {code}{message} ({hint})") });
    }
    FetchError::Failed(AwsError { call, reason: DisplayErrorContext(&err).to_string() })
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
}
