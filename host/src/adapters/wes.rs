//! The callback to the NGS360 WES API (behaviour §7): reqwest with rustls, a time limit for
//! the whole request, no redirects, the key in a header marked sensitive.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, HeaderValue};

use crate::config::ApiKey;
use crate::error::{CallbackError, InitError};
use crate::ports::{Delivery, Notifier};

/// The header that carries the key.
pub const KEY_HEADER: &str = "X-Internal-API-Key";

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

/// Posts records to `{API_SERVER}/internal/callbacks/omics-state-change`.
#[derive(Clone)]
pub struct WesClient {
    http: reqwest::Client,
    url: String,
    key: Arc<(tokio::sync::OnceCell<ApiKey>, KeyLoader)>,
    timeout: Duration,
}

impl WesClient {
    /// A client with `timeout` for each whole request (connect, send, answer) and no
    /// redirects (a POST must not silently become a GET elsewhere), over `tls`.
    pub fn new(
        url: String,
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
        Ok(WesClient { http, url, key: Arc::new((cell, key)), timeout })
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

    /// The URL callbacks go to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Replaces the key wherever a server echoed it.
    fn scrub(&self, text: &str) -> String {
        match self.key.0.get() {
            Some(key) if !key.expose().is_empty() => text.replace(key.expose(), "***"),
            _ => text.to_owned(),
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
    async fn notify(&self, record: &str) -> Result<Delivery, CallbackError> {
        let url = || self.url.clone();
        let mut key = HeaderValue::from_str(self.api_key().await?.expose()).map_err(|_| CallbackError::Transport {
            url: url(),
            reason: "the callback key is not a valid header value".into(),
        })?;
        key.set_sensitive(true);
        let request = self
            .http
            .post(&self.url)
            .header(CONTENT_TYPE, "application/json")
            .header(KEY_HEADER, key)
            .body(record.to_owned());
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) if e.is_timeout() => return Err(CallbackError::Timeout { url: url(), after: self.timeout }),
            Err(e) if e.is_connect() => return Err(CallbackError::Connect { url: url(), reason: connect_reason(&e) }),
            Err(e) => return Err(CallbackError::Transport { url: url(), reason: self.scrub(&e.to_string()) }),
        };
        let status = response.status().as_u16();
        let body = match response.text().await {
            Ok(body) => body,
            Err(e) if e.is_timeout() => return Err(CallbackError::Timeout { url: url(), after: self.timeout }),
            Err(_) => String::new(),
        };
        let excerpt = self.scrub(&excerpt(&body));
        match status {
            200..=299 => Ok(Delivery::Accepted { status, excerpt }),
            // The web framework's own answer for a path it does not serve: `API_SERVER` is
            // wrong, which is not a verdict on this event.
            404 if no_such_route(&body) => Err(CallbackError::NoRoute { url: url(), excerpt }),
            404 | 409 | 422 => Ok(Delivery::Rejected { status, excerpt }),
            400 => Err(CallbackError::Transition { excerpt }),
            _ => Err(CallbackError::Status { status, excerpt }),
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
    fn excerpts_are_short_single_lines() {
        assert_eq!(excerpt("a\n  b\tc"), "a b c");
        let long = "x".repeat(500);
        assert_eq!(excerpt(&long).chars().count(), 203);
    }

    #[tokio::test]
    async fn echoed_keys_are_scrubbed() {
        let tls = crate::adapters::tls::client_config(None).unwrap();
        let c = WesClient::new(
            "http://127.0.0.1:1/x".into(),
            KeyLoader::Given(ApiKey::new("k3y".into())),
            Duration::from_secs(1),
            tls,
        )
        .unwrap();
        assert_eq!(c.scrub("bad key k3y given"), "bad key *** given");
        assert_eq!(c.api_key().await.unwrap().expose(), "k3y");
    }
}
