//! The function's configuration, from the environment (behaviour §8).

use std::fmt;
use std::time::Duration;

use crate::error::ConfigError;

/// The callback key. Never printed: `Debug` and `Display` show `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(key: String) -> ApiKey {
        ApiKey(key)
    }

    /// The key itself, for the request header only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(***)")
    }
}

/// Where the callback key comes from. There is always one: without it the WES API answers
/// 422 to every callback (FastAPI's answer for a missing required header), which would
/// read as "refused for good".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `AUTH_TOKEN`.
    Direct(ApiKey),
    /// The Secrets Manager secret `ENV_SECRETS`, JSON key `AUTH_TOKEN`, read by the first callback (begun in the background at cold start).
    Secret(String),
}

/// Where the guest component comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GuestSource {
    /// The component bundled in the binary.
    Bundled,
    /// A file.
    Path(String),
    /// An S3 object.
    S3 { bucket: String, key: String, version_id: Option<String> },
}

impl fmt::Display for GuestSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GuestSource::Bundled => f.write_str("bundled"),
            GuestSource::Path(p) => f.write_str(p),
            GuestSource::S3 { bucket, key, version_id: None } => write!(f, "s3://{bucket}/{key}"),
            GuestSource::S3 { bucket, key, version_id: Some(v) } => write!(f, "s3://{bucket}/{key}?versionId={v}"),
        }
    }
}

/// Everything the function reads from its environment.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `API_SERVER`, normalised: without empty path segments or a trailing slash, with or
    /// without the WES API's `/ga4gh/wes/v1` prefix.
    pub api_server: String,
    /// `CALLBACK_ORIGINS`: the origins a run's `callback_url` tag may name (behaviour §7);
    /// `API_SERVER`'s origin is always one of them.
    pub callback_origins: CallbackOrigins,
    /// `DATA_LAKE_BUCKET`.
    pub bucket: String,
    /// `S3_PREFIX`, without leading or trailing slashes.
    pub prefix: String,
    /// `VERBOSE_LOGGING=true`.
    pub verbose: bool,
    /// `AUTH_TOKEN` or `ENV_SECRETS`.
    pub key: KeySource,
    /// `GUEST_COMPONENT`.
    pub guest: GuestSource,
    /// `GUEST_SHA256`: the pinned sha256 of the guest component, lower-case hex.
    pub guest_sha256: Option<String>,
    /// `GUEST_REFRESH_SECONDS`: how often to look for a new component (0: never).
    pub guest_refresh: Duration,
    /// `CALLBACK_TIMEOUT_SECONDS`: the whole callback request's time limit.
    pub callback_timeout: Duration,
    /// `GUEST_MEMORY_MB` and `GUEST_TIMEOUT_MS`.
    pub guest_limits: GuestLimits,
    /// `CAPTURE_INPUTS=s3://bucket[/prefix]`: where each processed event's inputs are kept
    /// as a case folder (off when unset).
    pub capture: Option<ArchiveTarget>,
    /// `OMICS_THROTTLE_BUDGET_SECONDS`: how long one invocation's HealthOmics calls may
    /// spend waiting out throttling, all together, before the invocation fails.
    pub throttle_budget: Duration,
    /// `RECONCILE_RATE`: the HealthOmics calls per second a reconciliation may make.
    pub reconcile_rate: f64,
    /// `ARCHIVE_LAYOUT`: how archive keys (and captured cases' folders) are laid out.
    pub layout: Layout,
    /// `QUEUE_RETRY_SECONDS`: a queued event that failed is tried again after this many
    /// seconds times the number of times it was received (0: after the queue's visibility
    /// timeout).
    pub queue_retry: Duration,
}

/// How the archive's keys are laid out under the prefix (behaviour §6).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Layout {
    /// `{prefix}/event_{YYYYMMDD_HHMMSS}_{id}.json`: the Python function's keys.
    #[default]
    Flat,
    /// `{prefix}/year=YYYY/month=MM/day=DD/event_{YYYYMMDD_HHMMSS}_{id}.json`, by the event's
    /// UTC time: Hive-style partitions a query can skip by.
    Dated,
}

impl Layout {
    /// `ARCHIVE_LAYOUT`'s value: `flat` or `dated` (any case).
    pub fn parse(value: &str) -> Result<Layout, ConfigError> {
        match value.to_ascii_lowercase().as_str() {
            "flat" => Ok(Layout::Flat),
            "dated" => Ok(Layout::Dated),
            _ => Err(ConfigError::Invalid {
                var: "ARCHIVE_LAYOUT",
                reason: format!("`{}` is neither `flat` nor `dated`", value.escape_debug()),
            }),
        }
    }
}

/// `OMICS_THROTTLE_BUDGET_SECONDS`' default and range: long enough to ride out a burst of
/// runs finishing together, well short of the function's 900 s time limit.
pub const THROTTLE_BUDGET_SECONDS: (u64, std::ops::RangeInclusive<u64>) = (300, 0..=840);
/// `QUEUE_RETRY_SECONDS`' default and range: a failed queued event is tried again after 1,
/// then 2 minutes, as Lambda retries an asynchronous one; at most SQS's 12 hours.
pub const QUEUE_RETRY_SECONDS: (u64, std::ops::RangeInclusive<u64>) = (60, 0..=43_200);
/// `RECONCILE_RATE`'s default (of HealthOmics' default quota of 10 per second) and range.
pub const RECONCILE_RATE: (f64, std::ops::RangeInclusive<f64>) = (3.0, 0.1..=100.0);

/// A bucket and a key prefix (without leading or trailing slashes; may be empty) that the
/// function writes objects under: the data lake's archive, or the captured inputs. Their
/// keys are made in `pipeline::key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveTarget {
    pub bucket: String,
    pub prefix: String,
    pub layout: Layout,
}

/// `s3://bucket[/prefix]`.
fn s3_place(var: &'static str, s: &str) -> Result<ArchiveTarget, ConfigError> {
    let invalid = |reason: &str| ConfigError::Invalid { var, reason: format!("`{s}`: {reason}") };
    let rest = s.strip_prefix("s3://").ok_or_else(|| invalid("is not an s3://bucket[/prefix] URI"))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() || rest.contains(['?', '#']) {
        return Err(invalid("is not an s3://bucket[/prefix] URI"));
    }
    Ok(ArchiveTarget { bucket: bucket.to_owned(), prefix: prefix.trim_matches('/').to_owned(), layout: Layout::Flat })
}

/// What one event may cost the guest: settings, since a real guest may need more than the
/// bundled one (a Python guest needs more memory).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuestLimits {
    /// `GUEST_MEMORY_MB`: the guest's linear memory per event, in MiB.
    pub memory_mb: u64,
    /// `GUEST_TIMEOUT_MS`: the wall-clock time of each guest call, host calls included.
    pub timeout: Duration,
}

/// `GUEST_MEMORY_MB`'s default and range.
pub const GUEST_MEMORY_MB: (u64, std::ops::RangeInclusive<u64>) = (64, 8..=4096);
/// `GUEST_TIMEOUT_MS`'s default and range.
pub const GUEST_TIMEOUT_MS: (u64, std::ops::RangeInclusive<u64>) = (2000, 10..=60_000);

impl Default for GuestLimits {
    fn default() -> Self {
        GuestLimits { memory_mb: GUEST_MEMORY_MB.0, timeout: Duration::from_millis(GUEST_TIMEOUT_MS.0) }
    }
}

impl GuestLimits {
    /// Reads `GUEST_MEMORY_MB` and `GUEST_TIMEOUT_MS` from the process environment (the
    /// offline commands use the same settings as the function).
    pub fn from_env() -> Result<GuestLimits, ConfigError> {
        GuestLimits::from_lookup(&|name| {
            std::env::var(name).ok().map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
        })
    }

    fn from_lookup(var: &impl Fn(&str) -> Option<String>) -> Result<GuestLimits, ConfigError> {
        Ok(GuestLimits {
            memory_mb: ranged(var, "GUEST_MEMORY_MB", &GUEST_MEMORY_MB, "MiB")?,
            timeout: Duration::from_millis(ranged(var, "GUEST_TIMEOUT_MS", &GUEST_TIMEOUT_MS, "ms")?),
        })
    }
}

/// A whole number within its range, or the default when unset.
fn ranged(
    var: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    (default, range): &(u64, std::ops::RangeInclusive<u64>),
    unit: &str,
) -> Result<u64, ConfigError> {
    let Some(v) = var(name) else { return Ok(*default) };
    match v.parse::<u64>() {
        Ok(n) if range.contains(&n) => Ok(n),
        _ => Err(ConfigError::Invalid {
            var: name,
            reason: format!("`{v}` is not a whole number from {} to {} ({unit})", range.start(), range.end()),
        }),
    }
}

/// The archive prefix when `S3_PREFIX` is not set.
pub const DEFAULT_PREFIX: &str = "omics-run-events";
/// The callback's time limit when `CALLBACK_TIMEOUT_SECONDS` is not set.
pub const DEFAULT_CALLBACK_TIMEOUT: Duration = Duration::from_secs(10);

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `get`; empty values count as unset.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let var = |name: &str| get(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let required = |name: &'static str| var(name).ok_or(ConfigError::Missing(name));

        let api_server = api_server(&required("API_SERVER")?)?;
        let callback_origins = CallbackOrigins::from_setting(var("CALLBACK_ORIGINS").as_deref(), &api_server)?;
        let bucket = required("DATA_LAKE_BUCKET")?;
        let key = match (var("AUTH_TOKEN"), var("ENV_SECRETS")) {
            (Some(token), _) => KeySource::Direct(ApiKey(token)),
            (None, Some(secret)) => KeySource::Secret(secret),
            (None, None) => return Err(ConfigError::Missing("AUTH_TOKEN or ENV_SECRETS")),
        };
        let guest = match var("GUEST_COMPONENT") {
            None => GuestSource::Bundled,
            Some(s) => parse_guest_source(&s)?,
        };
        let guest_sha256 = match var("GUEST_SHA256") {
            None => None,
            Some(h) if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) => Some(h.to_ascii_lowercase()),
            Some(_) => {
                return Err(ConfigError::Invalid { var: "GUEST_SHA256", reason: "must be 64 hex digits".into() });
            }
        };
        let layout = var("ARCHIVE_LAYOUT").map(|v| Layout::parse(&v)).transpose()?.unwrap_or_default();
        Ok(Config {
            api_server,
            callback_origins,
            bucket,
            prefix: var("S3_PREFIX").unwrap_or_else(|| DEFAULT_PREFIX.into()).trim_matches('/').to_owned(),
            verbose: var("VERBOSE_LOGGING").is_some_and(|v| v.eq_ignore_ascii_case("true")),
            key,
            guest,
            guest_sha256,
            guest_refresh: Duration::from_secs(seconds(&var, "GUEST_REFRESH_SECONDS", 0)?),
            callback_timeout: match var("CALLBACK_TIMEOUT_SECONDS") {
                None => DEFAULT_CALLBACK_TIMEOUT,
                Some(_) => Duration::from_secs(seconds(&var, "CALLBACK_TIMEOUT_SECONDS", 10)?.max(1)),
            },
            guest_limits: GuestLimits::from_lookup(&var)?,
            capture: var("CAPTURE_INPUTS").map(|s| s3_place("CAPTURE_INPUTS", &s)).transpose()?.map(|c| {
                // Captured cases are filed like the archive.
                ArchiveTarget { layout, ..c }
            }),
            layout,
            throttle_budget: Duration::from_secs(ranged(
                &var,
                "OMICS_THROTTLE_BUDGET_SECONDS",
                &THROTTLE_BUDGET_SECONDS,
                "seconds",
            )?),
            queue_retry: Duration::from_secs(ranged(&var, "QUEUE_RETRY_SECONDS", &QUEUE_RETRY_SECONDS, "seconds")?),
            reconcile_rate: match var("RECONCILE_RATE") {
                None => RECONCILE_RATE.0,
                Some(v) => v.parse::<f64>().ok().filter(|r| RECONCILE_RATE.1.contains(r)).ok_or_else(|| {
                    ConfigError::Invalid {
                        var: "RECONCILE_RATE",
                        reason: format!(
                            "`{v}` is not a number of calls per second from {} to {}",
                            RECONCILE_RATE.1.start(),
                            RECONCILE_RATE.1.end()
                        ),
                    }
                })?,
            },
        })
    }

    /// The two mounts the callback route may be under: `API_SERVER` first, then the other
    /// generation's (behaviour §7).
    pub fn mounts(&self) -> Mounts {
        Mounts::of(&self.api_server)
    }
}

/// The WES API's public prefix. The current service mounts the callback route under it, the
/// earlier one at its root (behaviour §7).
pub const WES_PUBLIC_PREFIX: &str = "/ga4gh/wes/v1";

/// The callback route's path, below a mount.
pub const CALLBACK_ROUTE: &str = "/internal/callbacks/omics-state-change";

/// Where the callback route may be: under `API_SERVER` as given, or under the other known
/// mount of the same origin and proxy prefix (`/ga4gh/wes/v1` added, or removed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mounts {
    /// `API_SERVER`, normalised.
    pub configured: String,
    /// The other generation's base URL: what `API_SERVER` should be set to when the service
    /// answers there.
    pub other: String,
}

impl Mounts {
    /// The mounts for a normalised `API_SERVER` (see [`api_server`]).
    pub fn of(api_server: &str) -> Mounts {
        let other = match api_server.strip_suffix(WES_PUBLIC_PREFIX) {
            Some(root) => root.to_owned(),
            None => format!("{api_server}{WES_PUBLIC_PREFIX}"),
        };
        Mounts { configured: api_server.to_owned(), other }
    }

    /// The callback URL under a base URL.
    pub fn url(base: &str) -> String {
        format!("{base}{CALLBACK_ROUTE}")
    }
}

/// An origin: scheme, host (lower case) and port (the scheme's default made explicit), as
/// `https://wes.example.org:443`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin(String);

impl Origin {
    /// The origin of an `http` or `https` URL with a host; `None` for any other.
    pub fn of(url: &reqwest::Url) -> Option<Origin> {
        let scheme = url.scheme();
        if !matches!(scheme, "http" | "https") {
            return None;
        }
        let host = url.host_str().filter(|h| !h.is_empty())?.to_ascii_lowercase();
        let port = url.port_or_known_default()?;
        Some(Origin(format!("{scheme}://{host}:{port}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `CALLBACK_ORIGINS`: the origins a run's `callback_url` tag may send the callback (and
/// the key) to. Never empty: `API_SERVER`'s origin is always in it, since every callback
/// without a usable tag goes there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackOrigins(Vec<Origin>);

impl CallbackOrigins {
    /// `setting` (comma-separated origins) or, when unset, `API_SERVER`'s origin alone. Each
    /// entry is `http(s)://host[:port]`, without user info, a path, a query or a fragment;
    /// the list must hold `API_SERVER`'s origin.
    pub fn from_setting(setting: Option<&str>, api_server: &str) -> Result<CallbackOrigins, ConfigError> {
        let invalid = |reason: String| ConfigError::Invalid { var: "CALLBACK_ORIGINS", reason };
        let own = reqwest::Url::parse(api_server).ok().as_ref().and_then(Origin::of).ok_or_else(|| {
            ConfigError::Invalid { var: "API_SERVER", reason: format!("`{api_server}` has no origin") }
        })?;
        let Some(setting) = setting else { return Ok(CallbackOrigins(vec![own])) };
        let mut origins = Vec::new();
        for entry in setting.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let url = reqwest::Url::parse(entry).map_err(|e| invalid(format!("`{entry}` is not a URL ({e})")))?;
            let origin = Origin::of(&url)
                .ok_or_else(|| invalid(format!("`{entry}` is not an http:// or https:// origin with a host")))?;
            if !url.username().is_empty() || url.password().is_some() {
                return Err(invalid(format!("`{entry}` must not carry user info")));
            }
            if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
                return Err(invalid(format!(
                    "`{entry}` must be an origin alone (scheme, host, port), without a path, query or fragment"
                )));
            }
            if !origins.contains(&origin) {
                origins.push(origin);
            }
        }
        if !origins.contains(&own) {
            return Err(invalid(format!(
                "must include API_SERVER's origin ({own}): the callback goes there for every run without a \
                 usable callback_url tag"
            )));
        }
        Ok(CallbackOrigins(origins))
    }

    /// Whether `origin` is in the list.
    pub fn allows(&self, origin: &Origin) -> bool {
        self.0.contains(origin)
    }

    /// The origins, comma-separated, for log lines.
    pub fn listed(&self) -> String {
        self.0.iter().map(Origin::as_str).collect::<Vec<_>>().join(",")
    }
}

/// `API_SERVER`, checked and normalised: an `http://` or `https://` URL with a host, no
/// credentials, query or fragment, its path without empty segments or a trailing slash, so
/// that the callback URL has no doubled slash. The path may end with the WES API's
/// `/ga4gh/wes/v1` prefix or not: the callback finds the route under either (behaviour §7).
pub fn api_server(value: &str) -> Result<String, ConfigError> {
    let invalid = |reason: String| ConfigError::Invalid { var: "API_SERVER", reason };
    let url = reqwest::Url::parse(value).map_err(|e| invalid(format!("`{value}` is not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid(format!("`{value}` must be an http:// or https:// URL")));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid(format!("`{value}` has no host")));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid("must not carry credentials (the key goes in AUTH_TOKEN or ENV_SECRETS)".into()));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid(format!("`{value}` must not have a query or a fragment")));
    }
    let path: Vec<&str> = url.path().split('/').filter(|s| !s.is_empty()).collect();
    let path = if path.is_empty() { String::new() } else { format!("/{}", path.join("/")) };
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    Ok(format!("{}://{}{port}{path}", url.scheme(), url.host_str().unwrap_or_default()))
}

fn seconds(var: &impl Fn(&str) -> Option<String>, name: &'static str, default: u64) -> Result<u64, ConfigError> {
    match var(name) {
        None => Ok(default),
        Some(v) => v
            .parse()
            .map_err(|_| ConfigError::Invalid { var: name, reason: format!("`{v}` is not a whole number of seconds") }),
    }
}

/// Whether the environment leaves the bundled guest in place (`GUEST_COMPONENT` unset or
/// empty): the cold start starts loading it before the rest of the configuration is read.
pub fn bundled_guest_in_env() -> bool {
    std::env::var("GUEST_COMPONENT").map_or(true, |v| v.trim().is_empty())
}

/// `GUEST_COMPONENT`: `s3://bucket/key[?versionId=V]` or a path.
pub fn parse_guest_source(s: &str) -> Result<GuestSource, ConfigError> {
    let Some(rest) = s.strip_prefix("s3://") else {
        return Ok(GuestSource::Path(s.to_owned()));
    };
    let (location, version_id) = match rest.split_once('?') {
        None => (rest, None),
        Some((location, query)) => match query.strip_prefix("versionId=") {
            Some(v) if !v.is_empty() && !v.contains('&') => (location, Some(v.to_owned())),
            _ => {
                return Err(ConfigError::Invalid {
                    var: "GUEST_COMPONENT",
                    reason: "the only query an s3:// URI may carry is ?versionId=...".into(),
                });
            }
        },
    };
    match location.split_once('/') {
        Some((bucket, key)) if !bucket.is_empty() && !key.is_empty() => {
            Ok(GuestSource::S3 { bucket: bucket.into(), key: key.into(), version_id })
        }
        _ => {
            Err(ConfigError::Invalid { var: "GUEST_COMPONENT", reason: "an s3:// URI needs a bucket and a key".into() })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    const BASE: [(&str, &str); 3] =
        [("API_SERVER", "https://wes.example.org/"), ("DATA_LAKE_BUCKET", "lake"), ("AUTH_TOKEN", "k")];

    #[test]
    fn defaults() {
        let c = config(&BASE).unwrap();
        assert_eq!(
            c.mounts(),
            Mounts {
                configured: "https://wes.example.org".into(),
                other: "https://wes.example.org/ga4gh/wes/v1".into()
            }
        );
        assert_eq!(
            Mounts::url(&c.mounts().configured),
            "https://wes.example.org/internal/callbacks/omics-state-change"
        );
        assert_eq!(c.callback_origins.listed(), "https://wes.example.org:443");
        assert_eq!(c.prefix, "omics-run-events");
        assert!(!c.verbose);
        assert_eq!(c.key, KeySource::Direct(ApiKey::new("k".into())));
        assert_eq!(c.guest, GuestSource::Bundled);
        assert_eq!(c.callback_timeout, Duration::from_secs(10));
        assert_eq!(c.guest_refresh, Duration::ZERO);
        assert_eq!((c.throttle_budget, c.reconcile_rate), (Duration::from_secs(300), 3.0));
        assert_eq!(c.queue_retry, Duration::from_secs(60));
    }

    #[test]
    fn the_quota_settings_have_ranges() {
        let mut vars = BASE.to_vec();
        vars.extend([("OMICS_THROTTLE_BUDGET_SECONDS", "45"), ("RECONCILE_RATE", "1.5"), ("QUEUE_RETRY_SECONDS", "0")]);
        let c = config(&vars).unwrap();
        assert_eq!((c.throttle_budget, c.reconcile_rate), (Duration::from_secs(45), 1.5));
        assert_eq!(c.queue_retry, Duration::ZERO);
        for (var, bad) in [
            ("OMICS_THROTTLE_BUDGET_SECONDS", "900"),
            ("RECONCILE_RATE", "0"),
            ("RECONCILE_RATE", "fast"),
            ("QUEUE_RETRY_SECONDS", "43201"),
        ] {
            let mut vars = BASE.to_vec();
            vars.push((var, bad));
            let err = config(&vars).unwrap_err();
            assert!(matches!(err, ConfigError::Invalid { var: v, .. } if v == var), "{var}={bad}: {err}");
        }
    }

    #[test]
    fn the_archive_layout_is_flat_or_dated_and_captures_follow_it() {
        assert_eq!(config(&BASE).unwrap().layout, Layout::Flat);
        let mut vars = BASE.to_vec();
        vars.extend([("ARCHIVE_LAYOUT", "Dated"), ("CAPTURE_INPUTS", "s3://cases/x")]);
        let c = config(&vars).unwrap();
        assert_eq!((c.layout, c.capture.unwrap().layout), (Layout::Dated, Layout::Dated));
        let mut vars = BASE.to_vec();
        vars.push(("ARCHIVE_LAYOUT", "daily"));
        let err = config(&vars).unwrap_err().to_string();
        assert!(err.contains("ARCHIVE_LAYOUT") && err.contains("`daily` is neither `flat` nor `dated`"), "{err}");
    }

    #[test]
    fn missing_or_empty_required_variables_are_named() {
        assert_eq!(config(&[("DATA_LAKE_BUCKET", "b")]), Err(ConfigError::Missing("API_SERVER")));
        assert_eq!(
            config(&[("API_SERVER", "https://x"), ("DATA_LAKE_BUCKET", " ")]),
            Err(ConfigError::Missing("DATA_LAKE_BUCKET"))
        );
        let msg = ConfigError::Missing("API_SERVER").to_string();
        assert!(msg.starts_with("API_SERVER "), "{msg}");
    }

    #[test]
    fn the_callback_key_is_required() {
        let err = config(&BASE[..2]).unwrap_err();
        assert_eq!(err, ConfigError::Missing("AUTH_TOKEN or ENV_SECRETS"));
        assert_eq!(err.to_string(), "AUTH_TOKEN or ENV_SECRETS is not set (or is empty); it is required");
    }

    #[test]
    fn key_sources_and_the_key_is_never_printed() {
        let mut vars = BASE[..2].to_vec();
        vars.push(("ENV_SECRETS", "ngs360/omics"));
        assert_eq!(config(&vars).unwrap().key, KeySource::Secret("ngs360/omics".into()));
        vars.push(("AUTH_TOKEN", "s3cr3t-value"));
        let c = config(&vars).unwrap();
        assert_eq!(c.key, KeySource::Direct(ApiKey::new("s3cr3t-value".into())));
        assert!(!format!("{c:?}").contains("s3cr3t"));
    }

    #[test]
    fn capture_inputs_is_a_bucket_and_an_optional_prefix() {
        let with = |v: &str| {
            let mut vars = BASE.to_vec();
            vars.push(("CAPTURE_INPUTS", v));
            config(&vars)
        };
        assert_eq!(with("").unwrap().capture, None);
        let place = |b: &str, p: &str| Some(ArchiveTarget { bucket: b.into(), prefix: p.into(), layout: Layout::Flat });
        assert_eq!(with("s3://cases").unwrap().capture, place("cases", ""));
        assert_eq!(with("s3://cases/real/inputs/").unwrap().capture, place("cases", "real/inputs"));
        for bad in ["cases/x", "s3:///x", "s3://b/p?versionId=1"] {
            let e = with(bad).unwrap_err().to_string();
            assert!(e.contains("CAPTURE_INPUTS") && e.contains("s3://bucket[/prefix]"), "{e}");
        }
    }

    #[test]
    fn verbose_prefix_and_timeouts() {
        let mut vars = BASE.to_vec();
        vars.extend([("VERBOSE_LOGGING", "TRUE"), ("S3_PREFIX", "/a/b/"), ("CALLBACK_TIMEOUT_SECONDS", "3")]);
        let c = config(&vars).unwrap();
        assert!(c.verbose);
        assert_eq!(c.prefix, "a/b");
        assert_eq!(c.callback_timeout, Duration::from_secs(3));
        vars.push(("GUEST_REFRESH_SECONDS", "soon"));
        assert!(matches!(config(&vars), Err(ConfigError::Invalid { var: "GUEST_REFRESH_SECONDS", .. })));
    }

    #[test]
    fn guest_limits_are_settings_within_ranges() {
        let c = config(&BASE).unwrap();
        assert_eq!(c.guest_limits, GuestLimits { memory_mb: 64, timeout: Duration::from_secs(2) });
        let mut vars = BASE.to_vec();
        vars.extend([("GUEST_MEMORY_MB", "256"), ("GUEST_TIMEOUT_MS", "500")]);
        assert_eq!(
            config(&vars).unwrap().guest_limits,
            GuestLimits { memory_mb: 256, timeout: Duration::from_millis(500) }
        );
        for (var, bad) in [
            ("GUEST_MEMORY_MB", "4"),
            ("GUEST_MEMORY_MB", "8192"),
            ("GUEST_MEMORY_MB", "lots"),
            ("GUEST_TIMEOUT_MS", "0"),
            ("GUEST_TIMEOUT_MS", "600000"),
        ] {
            let mut vars = BASE.to_vec();
            vars.push((var, bad));
            let err = config(&vars).unwrap_err();
            assert!(matches!(err, ConfigError::Invalid { var: v, .. } if v == var), "{var}={bad}: {err}");
            assert!(
                err.to_string().starts_with(&format!("{var} is invalid: `{bad}` is not a whole number from ")),
                "{err}"
            );
        }
    }

    #[test]
    fn api_server_is_the_services_base_url_with_or_without_the_prefix() {
        for (given, base, other) in [
            ("https://wes.example.org", "https://wes.example.org", "https://wes.example.org/ga4gh/wes/v1"),
            ("https://wes.example.org/", "https://wes.example.org", "https://wes.example.org/ga4gh/wes/v1"),
            (
                "https://wes.example.org/ga4gh/wes/v1/",
                "https://wes.example.org/ga4gh/wes/v1",
                "https://wes.example.org",
            ),
            (
                "http://127.0.0.1:8080//proxy//wes/",
                "http://127.0.0.1:8080/proxy/wes",
                "http://127.0.0.1:8080/proxy/wes/ga4gh/wes/v1",
            ),
            ("http://10.0.0.5/p/ga4gh/wes/v1", "http://10.0.0.5/p/ga4gh/wes/v1", "http://10.0.0.5/p"),
        ] {
            assert_eq!(api_server(given).unwrap(), base, "{given}");
            assert_eq!(Mounts::of(base), Mounts { configured: base.into(), other: other.into() }, "{given}");
        }
        for bad in [
            "wes.example.org",
            "ftp://wes.example.org",
            "https://user:pw@wes.example.org",
            "https://wes.example.org/?x=1",
            "https://wes.example.org/#top",
        ] {
            let err = api_server(bad).unwrap_err();
            assert!(matches!(err, ConfigError::Invalid { var: "API_SERVER", .. }), "{bad}: {err}");
        }
    }

    #[test]
    fn callback_origins_default_to_api_servers_and_must_include_it() {
        let origins = |setting: Option<&str>, api: &str| CallbackOrigins::from_setting(setting, api);
        assert_eq!(
            origins(None, "https://WES.example.org/ga4gh/wes/v1").unwrap().listed(),
            "https://wes.example.org:443"
        );
        assert_eq!(origins(None, "http://127.0.0.1:8080/p").unwrap().listed(), "http://127.0.0.1:8080");
        let two =
            origins(Some(" https://wes.example.org:443/ , https://Wes-B.example.org:8443"), "https://wes.example.org")
                .unwrap();
        assert_eq!(two.listed(), "https://wes.example.org:443,https://wes-b.example.org:8443");
        let origin = |u: &str| Origin::of(&reqwest::Url::parse(u).unwrap()).unwrap();
        assert!(two.allows(&origin("https://WES-B.EXAMPLE.ORG:8443/x")));
        assert!(!two.allows(&origin("http://wes.example.org/x")), "http where the list says https");
        assert!(!two.allows(&origin("https://wes.example.org:8443/x")));
        for (bad, says) in [
            ("https://wes-b.example.org", "must include API_SERVER's origin (https://wes.example.org:443)"),
            ("https://wes.example.org,wes-b", "`wes-b` is not a URL"),
            ("https://wes.example.org,ftp://wes-b.example.org", "not an http:// or https:// origin"),
            ("https://wes.example.org/ga4gh", "an origin alone"),
            ("https://wes.example.org,https://u@wes-b.example.org", "user info"),
            ("https://wes.example.org?x", "an origin alone"),
        ] {
            let err = origins(Some(bad), "https://wes.example.org").unwrap_err();
            assert!(matches!(err, ConfigError::Invalid { var: "CALLBACK_ORIGINS", .. }), "{bad}: {err}");
            assert!(err.to_string().contains(says), "{bad}: {err}");
        }
        let mut vars = BASE.to_vec();
        vars.push(("CALLBACK_ORIGINS", "https://other.example.org"));
        assert!(matches!(config(&vars), Err(ConfigError::Invalid { var: "CALLBACK_ORIGINS", .. })));
    }

    #[test]
    fn guest_sources() {
        assert_eq!(parse_guest_source("/opt/guest.wasm").unwrap(), GuestSource::Path("/opt/guest.wasm".into()));
        assert_eq!(
            parse_guest_source("s3://b/k/g.wasm?versionId=v1").unwrap(),
            GuestSource::S3 { bucket: "b".into(), key: "k/g.wasm".into(), version_id: Some("v1".into()) }
        );
        assert!(parse_guest_source("s3://b").is_err());
        assert!(parse_guest_source("s3://b/k?x=1").is_err());
        let mut vars = BASE.to_vec();
        vars.push(("GUEST_SHA256", "abc"));
        assert!(matches!(config(&vars), Err(ConfigError::Invalid { var: "GUEST_SHA256", .. })));
    }
}
