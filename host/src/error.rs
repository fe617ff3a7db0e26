//! The host's errors, for every layer. Each says what failed in one line an operator can act
//! on; none carries the callback key, and every string that came from a guest has been cut
//! and escaped (`sandbox::text`) before it gets here.
//!
//! This module depends on nothing else in the crate: it is the bottom layer, beside
//! `config`.

use std::time::Duration;

/// The configuration cannot be used (behaviour §8).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{0} is not set (or is empty); it is required")]
    Missing(&'static str),
    #[error("{var} is invalid: {reason}")]
    Invalid { var: &'static str, reason: String },
}

/// A guest component cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot set up wasmtime: {0}")]
    Engine(String),
    #[error("cannot read the guest component {origin}: {reason}")]
    Read { origin: String, reason: String },
    #[error(
        "{origin} is a precompiled component (.cwasm), which is native code; it is only loaded \
         when GUEST_SHA256 pins its sha256"
    )]
    Precompiled { origin: String },
    #[error("{origin} has sha256 {actual}, but GUEST_SHA256 pins {pinned}")]
    Digest { origin: String, actual: String, pinned: String },
    #[error("cannot compile the guest component {origin}: {reason}")]
    Compile { origin: String, reason: String },
    #[error("the guest component {origin} exports {found}, but this host serves {wanted}")]
    Version { origin: String, found: String, wanted: String },
    #[error("cannot link the guest component {origin}: {reason}")]
    Link { origin: String, reason: String },
    #[error("the guest component {origin} failed its describe call: {reason}")]
    Describe { origin: String, reason: String },
}

/// Why a guest refused an event: the cases of the WIT `transform-error`, with the guest's
/// text already cut and escaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The input is not valid JSON (or not UTF-8).
    InvalidJson(String),
    /// The input is JSON but not an object; names what it is.
    NotAnObject(String),
    /// A field the processor needs is absent.
    MissingField(String),
    /// A field is present but unusable.
    InvalidField { field: String, reason: String },
    /// Nesting deeper than the guest accepts.
    TooDeep(u32),
    /// What the host fetched breaks the contract.
    InvalidContext(String),
}

impl Refusal {
    /// The WIT case's name (`missing-field`, ...), as fixtures name it.
    pub fn kind(&self) -> &'static str {
        match self {
            Refusal::InvalidJson(_) => "invalid-json",
            Refusal::NotAnObject(_) => "not-an-object",
            Refusal::MissingField(_) => "missing-field",
            Refusal::InvalidField { .. } => "invalid-field",
            Refusal::TooDeep(_) => "too-deep",
            Refusal::InvalidContext(_) => "invalid-context",
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::InvalidJson(m) => write!(f, "invalid JSON: {m}"),
            Refusal::NotAnObject(kind) => write!(f, "the event is a JSON {kind}, not an object"),
            Refusal::MissingField(field) => write!(f, "the event has no `{field}`"),
            Refusal::InvalidField { field, reason } => write!(f, "`{field}` {reason}"),
            Refusal::TooDeep(limit) => write!(f, "the input nests deeper than {limit} levels"),
            Refusal::InvalidContext(m) => write!(f, "invalid context: {m}"),
        }
    }
}

/// A guest call failed: the guest refused the event, or it hit a limit or trapped.
#[derive(Debug, thiserror::Error)]
pub enum GuestError {
    #[error("the guest refused the event: {0}")]
    Refused(Refusal),
    #[error("the guest ran past its time limit of {} ms{}", .limit.as_millis(), stderr_note(.stderr))]
    TimeLimit { limit: Duration, stderr: String },
    #[error("the guest reached its memory limit of {limit_mib} MiB{}", stderr_note(.stderr))]
    MemoryLimit { limit_mib: u64, stderr: String },
    #[error("the guest returned a {what} of {size} {unit}, over the limit of {limit}; nothing of it was read")]
    OutputTooLarge { what: &'static str, size: usize, limit: usize, unit: &'static str },
    #[error("the guest's record cannot be stored: {0}")]
    InvalidRecord(String),
    #[error("the guest trapped: {reason}{}", stderr_note(.stderr))]
    Trap { reason: String, stderr: String },
}

/// "; guest stderr: ..." with the start of the guest's stderr (already escaped), or nothing.
fn stderr_note(stderr: &str) -> String {
    let text = stderr.trim();
    if text.is_empty() { String::new() } else { format!("; guest stderr: {text}") }
}

/// An AWS call failed in a way that a retry or an operator can fix (behaviour §3): the
/// invocation fails.
#[derive(Debug, thiserror::Error)]
#[error("{call} failed: {reason}")]
pub struct AwsError {
    pub call: &'static str,
    pub reason: String,
}

/// Why something the guest asked for could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// Nothing anyone can fix (the run is gone, the outputs bucket does not exist): the
    /// record is shaped without it and says so in `enrichment_errors`.
    #[error("{0}")]
    Permanent(String),
    /// Anything else: the invocation fails.
    #[error(transparent)]
    Failed(#[from] AwsError),
}

/// The archive write failed.
#[derive(Debug, thiserror::Error)]
#[error("archiving to {uri} failed: {reason}")]
pub struct ArchiveError {
    pub uri: String,
    pub reason: String,
}

/// The callback failed in a way that fails the invocation (behaviour §7).
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum CallbackError {
    #[error("callback to {url} timed out after {} s", .after.as_secs())]
    Timeout { url: String, after: Duration },
    #[error("callback to {url} could not connect: {reason}")]
    Connect { url: String, reason: String },
    #[error("callback to {url} failed: {reason}")]
    Transport { url: String, reason: String },
    #[error(
        "callback to {url}{}: no such route (HTTP 404 {excerpt}); API_SERVER is wrong: it must be the \
         WES API service's base URL (https://host or https://host/ga4gh/wes/v1, behind any proxy prefix)",
        other_mount(.other)
    )]
    NoRoute {
        url: String,
        /// The other mount, when it was tried too.
        other: Option<String>,
        excerpt: String,
    },
    #[error("the WES API refused the state transition (HTTP 400: {excerpt})")]
    Transition { excerpt: String },
    #[error("could not report the run's start before its terminal status: {0}")]
    Heal(String),
    #[error("the callback key could not be read: {0}")]
    Key(String),
    #[error("the WES API answered HTTP {status}: {excerpt}")]
    Status { status: u16, excerpt: String },
}

fn other_mount(other: &Option<String>) -> String {
    other.as_ref().map(|o| format!(" and {o}")).unwrap_or_default()
}

impl CallbackError {
    /// Whether the WES API answered (an HTTP status), rather than not being reached at all.
    pub fn is_answer(&self) -> bool {
        matches!(self, CallbackError::NoRoute { .. } | CallbackError::Transition { .. } | CallbackError::Status { .. })
    }
}

/// The function cannot start (reported to Lambda's init error endpoint).
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("{0}")]
    Secret(String),
    #[error("{0}")]
    Setup(String),
}

/// Why an event was not processed. Every case fails the invocation, so Lambda retries and
/// the dead-letter queue keeps the event.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Guest(#[from] GuestError),
    #[error("enrichment: {0}")]
    Enrichment(#[from] AwsError),
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error(transparent)]
    Callback(#[from] CallbackError),
    #[error("{archive}; and {callback}")]
    ArchiveAndCallback { archive: ArchiveError, callback: CallbackError },
    /// A scheduled reconciliation could not list the runs, or some runs failed.
    #[error("reconcile: {0}")]
    Reconcile(String),
}

impl Error {
    /// The `errorType` Lambda reports for this error.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Guest(_) => "GuestError",
            Error::Enrichment(_) => "EnrichmentError",
            Error::Archive(_) | Error::ArchiveAndCallback { .. } => "ArchiveError",
            Error::Callback(_) => "CallbackError",
            Error::Reconcile(_) => "ReconcileError",
        }
    }
}
