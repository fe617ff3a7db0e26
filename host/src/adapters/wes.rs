//! The callback to the NGS360 WES API (behaviour §7): reqwest with rustls, a time limit for
//! the whole request, no redirects, the key in a header marked sensitive. Where the callback
//! goes: the URL of a run's `callback_url` tag when its origin is in `CALLBACK_ORIGINS`,
//! else `API_SERVER`'s route, under whichever of the service's two mounts answers.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, HeaderValue};
use tracing::warn;

use crate::config::{ApiKey, CALLBACK_ROUTE, CallbackOrigins, Mounts, Origin};
use crate::error::{CallbackError, InitError};
use crate::ports::{Delivery, Notifier, Route};

/// The header that carries the key.
pub const KEY_HEADER: &str = "X-Internal-API-Key";

/// The longest `callback_url` tag considered (HealthOmics' tag values hold at most 256
/// characters); a longer one is refused without being parsed.
pub const TAG_MAX: usize = 2048;

/// Where the callback key comes from.
pub enum KeyLoader {
    /// Given directly (`AUTH_TOKEN`).
    Given(ApiKey),
    /// Read from Secrets Manager (`ENV_SECRETS`) by the first callback that needs it, or
    /// ahead of it (`WesClient::read_key`); a failed read is tried again next time.
    Secret { sdk: super::lazy::Lazy<aws_config::SdkConfig>, id: String },
}

/// Why a connection failed: the innermost cause (refused, no route, a certificate the
/// roots do not vouch for), with a pointer to `API_SERVER_CA_FILE` for the last.
fn connect_reason(e: &reqwest::Error) -> String {
    let mut cause: &dyn std::error::Error = e;
    while let Some(source) = cause.source() {
        cause = source;
    }
    let reason = cause.to_string();
    if reason.contains("certificate") {
        format!("{reason} (an API_SERVER whose certificate a private CA signed needs API_SERVER_CA_FILE)")
    } else {
        reason
    }
}

/// One of the two places the service may mount the callback route.
struct Mount {
    /// The base URL (what `API_SERVER` would be).
    base: String,
    /// The callback URL under it.
    url: String,
    origin: String,
}

/// `API_SERVER`'s two mounts, and which one the service answered at last.
struct MountState {
    /// `[API_SERVER as configured, the other generation's]`.
    mounts: [Mount; 2],
    /// The index of the mount tried first: 0 until the service answers at the other.
    current: AtomicUsize,
}

/// The route for a run's `callback_url` tag (behaviour §7): its URL when, and only when, it
/// is at most [`TAG_MAX`] bytes of plain text, an `http(s)` URL without user info, query or
/// fragment, whose origin is in `origins` and whose path ends with the callback route.
pub fn tagged_url(origins: &CallbackOrigins, tag: &str) -> Result<String, String> {
    if tag.len() > TAG_MAX {
        return Err(format!("it is {} bytes long, over {TAG_MAX}", tag.len()));
    }
    if tag.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("it is not a URL (it holds white space or control characters)".into());
    }
    let url = reqwest::Url::parse(tag).map_err(|e| format!("it is not a URL ({e})"))?;
    let origin = Origin::of(&url).ok_or("it is not an http:// or https:// URL with a host")?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err("it carries user info".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("it has a query or a fragment".into());
    }
    if !origins.allows(&origin) {
        return Err(format!("its origin {origin} is not one of CALLBACK_ORIGINS ({})", origins.listed()));
    }
    if !url.path().ends_with(CALLBACK_ROUTE) {
        return Err(format!("its path does not end with {CALLBACK_ROUTE}"));
    }
    Ok(url.to_string())
}

/// Posts records to the WES API's callback route.
#[derive(Clone)]
pub struct WesClient {
    http: reqwest::Client,
    mounts: Arc<MountState>,
    origins: Arc<CallbackOrigins>,
    key: Arc<(tokio::sync::OnceCell<ApiKey>, KeyLoader)>,
    timeout: Duration,
}

/// The origin of a URL the configuration vouched for.
fn origin_of(url: &str) -> String {
    reqwest::Url::parse(url).ok().as_ref().and_then(Origin::of).map(|o| o.to_string()).unwrap_or_default()
}

impl WesClient {
    /// A client for the route under `mounts`, which sends to a run's `callback_url` within
    /// `origins`, with `timeout` for each whole request (connect, send, answer) and no
    /// redirects (a POST must not silently become a GET elsewhere, nor take the key to
    /// another origin), over `tls`.
    pub fn new(
        mounts: Mounts,
        origins: CallbackOrigins,
        key: KeyLoader,
        timeout: Duration,
        tls: Arc<rustls::ClientConfig>,
    ) -> Result<WesClient, InitError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("ngs360-omics/", env!("CARGO_PKG_VERSION")))
            .tls_backend_preconfigured(Arc::unwrap_or_clone(tls))
            .build()
            .map_err(|e| InitError::Setup(format!("cannot set up the HTTP client: {e}")))?;
        let cell = match &key {
            KeyLoader::Given(k) => tokio::sync::OnceCell::new_with(Some(k.clone())),
            KeyLoader::Secret { .. } => tokio::sync::OnceCell::new(),
        };
        let mount = |base: String| Mount { url: Mounts::url(&base), origin: origin_of(&base), base };
        let mounts =
            MountState { mounts: [mount(mounts.configured), mount(mounts.other)], current: AtomicUsize::new(0) };
        Ok(WesClient {
            http,
            mounts: Arc::new(mounts),
            origins: Arc::new(origins),
            key: Arc::new((cell, key)),
            timeout,
        })
    }

    /// Reads the key now if it is not at hand (`ENV_SECRETS`); the cold start starts this
    /// in the background, so that the key is at hand when the first callback needs it.
    pub async fn read_key(&self) -> Result<(), CallbackError> {
        self.api_key().await.map(|_| ())
    }

    /// The key, read once (and again after a failed read).
    async fn api_key(&self) -> Result<&ApiKey, CallbackError> {
        let (cell, loader) = &*self.key;
        cell.get_or_try_init(|| async {
            match loader {
                KeyLoader::Given(k) => Ok(k.clone()),
                KeyLoader::Secret { sdk, id } => crate::adapters::secrets::callback_key(sdk.get().await, id)
                    .await
                    .map_err(|e| CallbackError::Key(e.to_string())),
            }
        })
        .await
    }

    /// The URL callbacks without a usable tag go to now.
    pub fn url(&self) -> &str {
        &self.mounts.mounts[self.mounts.current.load(Ordering::Relaxed)].url
    }

    /// Replaces the key wherever a server echoed it.
    fn scrub(&self, text: &str) -> String {
        match self.key.0.get() {
            Some(key) if !key.expose().is_empty() => text.replace(key.expose(), "***"),
            _ => text.to_owned(),
        }
    }

    /// `API_SERVER`'s route: the mount that answered last, and when the service answers
    /// there with the framework's 404, the other one, once. A mount that answers anything
    /// else (an HTTP answer, not a failure to reach it) is used from then on, with one WARN
    /// that says which `API_SERVER` to set. Both the framework's 404: `NoRoute`, naming both.
    async fn post_configured(&self, record: &str) -> Result<Delivery, CallbackError> {
        let tried = self.mounts.current.load(Ordering::Acquire);
        let first = &self.mounts.mounts[tried];
        match self.post(&first.url, &first.origin, record).await {
            Err(CallbackError::NoRoute { .. }) => {}
            answer => return answer,
        }
        let other = &self.mounts.mounts[1 - tried];
        let answer = self.post(&other.url, &other.origin, record).await;
        match &answer {
            Err(CallbackError::NoRoute { excerpt, .. }) => {
                return Err(CallbackError::NoRoute {
                    url: first.url.clone(),
                    other: Some(other.url.clone()),
                    excerpt: excerpt.clone(),
                });
            }
            Err(e) if !e.is_answer() => {}
            _ => {
                if self.mounts.current.compare_exchange(tried, 1 - tried, Ordering::AcqRel, Ordering::Acquire).is_ok() {
                    warn!(
                        callback = %other.url,
                        "the WES API serves the callback route at {}, not at {} (the framework's 404 there): set \
                         API_SERVER={} (it is {}); this instance posts there from now on",
                        other.url,
                        first.url,
                        other.base,
                        self.mounts.mounts[0].base,
                    );
                }
            }
        }
        answer
    }

    /// One POST of the record to `url`, and what its answer means.
    async fn post(&self, url: &str, origin: &str, record: &str) -> Result<Delivery, CallbackError> {
        let owned = || url.to_owned();
        let mut key = HeaderValue::from_str(self.api_key().await?.expose()).map_err(|_| CallbackError::Transport {
            url: owned(),
            reason: "the callback key is not a valid header value".into(),
        })?;
        key.set_sensitive(true);
        let request = self
            .http
            .post(url)
            .header(CONTENT_TYPE, "application/json")
            .header(KEY_HEADER, key)
            .body(record.to_owned());
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) if e.is_timeout() => return Err(CallbackError::Timeout { url: owned(), after: self.timeout }),
            Err(e) if e.is_connect() => {
                return Err(CallbackError::Connect { url: owned(), reason: connect_reason(&e) });
            }
            Err(e) => return Err(CallbackError::Transport { url: owned(), reason: self.scrub(&e.to_string()) }),
        };
        let status = response.status().as_u16();
        let body = match response.text().await {
            Ok(body) => body,
            Err(e) if e.is_timeout() => return Err(CallbackError::Timeout { url: owned(), after: self.timeout }),
            Err(_) => String::new(),
        };
        let excerpt = self.scrub(&excerpt(&body));
        let origin = origin.to_owned();
        match status {
            200..=299 => Ok(Delivery::Accepted { status, excerpt, origin }),
            // The web framework's own answer for a path it does not serve: the route is not
            // here, which is not a verdict on this event.
            404 if no_such_route(&body) => Err(CallbackError::NoRoute { url: owned(), other: None, excerpt }),
            404 | 409 | 422 => Ok(Delivery::Rejected { status, excerpt, origin }),
            400 => Err(CallbackError::Transition { excerpt }),
            _ => Err(CallbackError::Status { status, excerpt }),
        }
    }
}

/// FastAPI's 404 for a path that no route serves: `{"detail": "Not Found"}` exactly (a 404
/// about a run names the run).
fn no_such_route(body: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(body)
        .is_ok_and(|v| v.as_object().is_some_and(|o| o.len() == 1) && v["detail"] == "Not Found")
}

/// The first 200 characters of a response body, on one line.
fn excerpt(body: &str) -> String {
    let one_line: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() > 200 {
        format!("{}...", one_line.chars().take(200).collect::<String>())
    } else {
        one_line
    }
}

impl Notifier for WesClient {
    fn route(&self, tag: &str) -> Result<Route, String> {
        tagged_url(&self.origins, tag).map(Route::Tagged)
    }

    async fn notify(&self, record: &str, route: &Route) -> Result<Delivery, CallbackError> {
        let Route::Tagged(url) = route else { return self.post_configured(record).await };
        let origin = origin_of(url);
        match self.post(url, &origin, record).await {
            Err(CallbackError::NoRoute { excerpt, .. }) => {
                warn!(
                    callback = %url,
                    "the run's callback_url tag names a URL the WES API does not serve (HTTP 404 {excerpt}); \
                     the callback takes API_SERVER's route"
                );
                self.post_configured(record).await
            }
            answer => answer,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_frameworks_own_404_is_told_from_one_about_a_run() {
        assert!(no_such_route(r#"{"detail":"Not Found"}"#));
        assert!(no_such_route(r#"{"detail": "Not Found"}"#));
        assert!(!no_such_route(r#"{"detail":"Workflow run 0b5c3f0e-6a36-4b0e-9d43-64c4a4f0a0e1 not found"}"#));
        assert!(!no_such_route("Not Found"));
        assert!(!no_such_route(r#"{"detail":"Not Found","run":"x"}"#));
    }

    #[test]
    fn a_callback_url_tag_is_used_only_within_the_allow_list() {
        let origins = CallbackOrigins::from_setting(
            Some("https://wes.example.org,http://127.0.0.1:8080"),
            "https://wes.example.org/ga4gh/wes/v1",
        )
        .unwrap();
        let route = "/ga4gh/wes/v1/internal/callbacks/omics-state-change";
        for (tag, url) in [
            (format!("https://wes.example.org{route}"), format!("https://wes.example.org{route}")),
            (format!("https://WES.Example.ORG:443{route}"), format!("https://wes.example.org{route}")),
            (format!("http://127.0.0.1:8080/proxy{route}"), format!("http://127.0.0.1:8080/proxy{route}")),
            (
                "https://wes.example.org/internal/callbacks/omics-state-change".into(),
                "https://wes.example.org/internal/callbacks/omics-state-change".into(),
            ),
        ] {
            assert_eq!(tagged_url(&origins, &tag), Ok(url), "{tag}");
        }
        let long = format!("https://wes.example.org/{}{route}", "a".repeat(10 << 20));
        for (tag, why) in [
            (
                format!("https://evil.example.com{route}"),
                "its origin https://evil.example.com:443 is not one of CALLBACK_ORIGINS",
            ),
            (format!("http://wes.example.org{route}"), "its origin http://wes.example.org:80 is not one of"),
            (format!("https://wes.example.org:8443{route}"), "is not one of"),
            (format!("http://169.254.169.254{route}"), "its origin http://169.254.169.254:80 is not one of"),
            ("http://169.254.169.254/latest/meta-data/iam/security-credentials/".into(), "is not one of"),
            (format!("https://wes.example.org.evil.example.com{route}"), "is not one of"),
            (format!("https://user:pw@wes.example.org{route}"), "user info"),
            (format!("https://wes.example.org@evil.example.com{route}"), "user info"),
            (format!("https://wes.example.org{route}?next=https://evil.example.com"), "a query or a fragment"),
            (format!("https://wes.example.org{route}?"), "a query or a fragment"),
            (format!("https://wes.example.org{route}#x"), "a query or a fragment"),
            ("https://wes.example.org/ga4gh/wes/v1/runs".into(), "its path does not end with"),
            (format!("https://wes.example.org{route}/x"), "its path does not end with"),
            ("not a url".into(), "not a URL"),
            ("wes.example.org/internal/callbacks/omics-state-change".into(), "not a URL"),
            (format!("file:///etc{route}"), "not an http:// or https:// URL"),
            (format!("https://wes.example.org{route}\n"), "white space or control characters"),
            (format!(" https://wes.example.org{route}"), "white space or control characters"),
            (long.clone(), "bytes long, over 2048"),
            (String::new(), "not a URL"),
        ] {
            let err = tagged_url(&origins, &tag).unwrap_err();
            assert!(err.contains(why), "{:.80}: {err}", tag);
        }
    }

    #[test]
    fn excerpts_are_short_single_lines() {
        assert_eq!(excerpt("a\n  b\tc"), "a b c");
        let long = "x".repeat(500);
        assert_eq!(excerpt(&long).chars().count(), 203);
    }

    #[tokio::test]
    async fn echoed_keys_are_scrubbed() {
        let tls = crate::adapters::tls::client_config(None).unwrap();
        let base = "http://127.0.0.1:1/x";
        let c = WesClient::new(
            Mounts::of(base),
            CallbackOrigins::from_setting(None, base).unwrap(),
            KeyLoader::Given(ApiKey::new("k3y".into())),
            Duration::from_secs(1),
            tls,
        )
        .unwrap();
        assert_eq!(c.url(), "http://127.0.0.1:1/x/internal/callbacks/omics-state-change");
        assert_eq!(c.scrub("bad key k3y given"), "bad key *** given");
        assert_eq!(c.api_key().await.unwrap().expose(), "k3y");
    }
}
