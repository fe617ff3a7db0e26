//! The host's errors. Each says what failed in one line an operator can act on; none carries
//! the callback key.

use std::time::Duration;

use crate::guest::{TransformError, describe_rejection};

/// The configuration cannot be used (SPEC section 8).
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

impl LoadError {
    pub(crate) fn engine(e: wasmtime::Error) -> LoadError {
        LoadError::Engine(format!("{e:#}"))
    }
}

/// A guest call failed: the guest refused the event, or it hit a limit or trapped.
#[derive(Debug, thiserror::Error)]
pub enum GuestError {
    #[error("the guest refused the event: {}", describe_rejection(.0))]
    Rejected(TransformError),
    #[error("the guest ran past its time limit of {} ms{}", .limit.as_millis(), stderr_note(.stderr))]
    TimeLimit { limit: Duration, stderr: String },
    #[error("the guest reached its memory limit of {limit_mib} MiB{}", stderr_note(.stderr))]
    MemoryLimit { limit_mib: u64, stderr: String },
    #[error("the guest's record is {size} bytes, over the limit of {limit} bytes")]
    OutputTooLarge { size: usize, limit: usize },
    #[error("the guest's record cannot be stored: {0}")]
    InvalidRecord(String),
    #[error("the guest trapped: {reason}{}", stderr_note(.stderr))]
    Trap { reason: String, stderr: String },
}

/// "; guest stderr: ..." with the guest's last stderr line, or nothing.
fn stderr_note(stderr: &str) -> String {
    let text = stderr.trim();
    if text.is_empty() {
        return String::new();
    }
    let excerpt: String = text.chars().take(500).collect();
    format!("; guest stderr: {}", excerpt.replace('\n', " | "))
}

/// A call to AWS failed in a way that retrying later may fix.
#[derive(Debug, thiserror::Error)]
#[error("{call} failed: {reason}")]
pub struct TransientError {
    pub call: &'static str,
    pub reason: String,
}

/// Why an event was not processed. Every case fails the invocation, so Lambda retries and
/// the dead-letter queue keeps the event.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Guest(#[from] GuestError),
    #[error("enrichment: {0}")]
    Enrichment(#[from] TransientError),
    #[error("archiving to {uri} failed: {reason}")]
    Archive { uri: String, reason: String },
    #[error("{0}")]
    Callback(String),
    #[error("archiving to {uri} failed: {reason}; and {callback}")]
    ArchiveAndCallback { uri: String, reason: String, callback: String },
    #[error("{0}")]
    Input(String),
}
