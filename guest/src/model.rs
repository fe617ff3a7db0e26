//! The guest's native types, one for each WIT type of `ngs360:omics-events`; the component
//! adapter converts them, and native callers (tests, the host's benchmark) use them directly.

#[allow(unused_imports)]
use crate::prelude::*;

use core::fmt;

/// Why an event could not be processed (WIT `transform-error`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// Not valid JSON, or not UTF-8.
    InvalidJson(String),
    /// JSON, but not an object: names what it is.
    NotAnObject(&'static str),
    /// A field the processor needs is absent.
    MissingField(String),
    /// A field is present but unusable.
    InvalidField { field: String, reason: String },
    /// Nesting deeper than the limit, which is the payload.
    TooDeep(u32),
    /// What the host fetched breaks the contract.
    InvalidContext(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidJson(m) => write!(f, "invalid JSON: {m}"),
            Error::NotAnObject(kind) => write!(f, "the event is a JSON {kind}, not an object"),
            Error::MissingField(field) => write!(f, "the event has no `{field}`"),
            Error::InvalidField { field, reason } => write!(f, "`{field}` {reason}"),
            Error::TooDeep(limit) => write!(f, "the input nests deeper than {limit} levels"),
            Error::InvalidContext(m) => write!(f, "invalid context from the host: {m}"),
        }
    }
}

impl core::error::Error for Error {}

/// Who an event is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub run_id: String,
    pub status: String,
    pub event_id: Option<String>,
}

/// Where `outputs.json` is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputsLocation {
    Uri(String),
    AfterRun,
    Unknown,
}

/// Which of a run's tasks the host reads (WIT `task-request`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskRequest {
    /// At most this many, in ListRunTasks order.
    pub limit: u32,
    /// And the FAILED ones, when the run has more than `limit`.
    pub failed: bool,
}

/// What the host must fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchPlan {
    pub identity: Identity,
    pub get_run: bool,
    pub tasks: Option<TaskRequest>,
    pub outputs: Option<OutputsLocation>,
}

/// Process the event, or ignore it and say why (WIT `event-plan`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventPlan {
    Ignore(String),
    Process(FetchPlan),
}

/// The run's tasks the host read (WIT `task-list`).
#[derive(Debug, Clone, Copy)]
pub struct TaskList<'a> {
    /// JSON array of the first ListRunTasks items.
    pub items: &'a str,
    /// The run has more tasks than `items`.
    pub more: bool,
    /// JSON array of the run's FAILED tasks, when asked for and `more`.
    pub failed: Option<&'a str>,
}

/// What the host fetched.
#[derive(Debug, Clone, Copy, Default)]
pub struct Context<'a> {
    /// GetRun output, JSON object with the AWS CLI's keys.
    pub run: Option<&'a str>,
    /// The run's tasks.
    pub tasks: Option<TaskList<'a>>,
    /// Raw `outputs.json`.
    pub outputs: Option<&'a [u8]>,
    /// The host's permanent enrichment failures.
    pub errors: &'a [String],
}

/// Post the record to the WES API, or not and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Callback {
    Send,
    Skip(String),
}

/// The event's parts of the archive key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveKey {
    pub timestamp: Option<String>,
    pub id: Option<String>,
}

/// A shaped event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub identity: Identity,
    pub record: String,
    pub callback: Callback,
    pub archive_key: ArchiveKey,
    pub enrichment_errors: Vec<String>,
    pub notes: Vec<String>,
}
