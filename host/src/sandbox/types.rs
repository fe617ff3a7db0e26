//! What the host works with once a guest's answer is out of its memory: the WIT results
//! with every string the guest chose cut to a stated bound and its control characters
//! escaped (`plain_text`), so that no guest text reaches a log line, an error, the Lambda
//! response or a metric as the guest wrote it. The record is the exception: it is data
//! (archived and posted as its bytes), bounded by `RECORD_MAX` and checked to be one JSON
//! object.

use super::TaskRequest;
use super::abi::{
    ArchiveKeyRaw, CallbackRaw, EventPlanRaw, FetchPlanRaw, IdentityRaw, OutcomeRaw, OutputsLocationRaw,
    TransformErrorRaw,
};
use super::limits::plain_text;
use crate::error::Refusal;

/// An identity field (run id, status, event id), in characters.
pub const IDENTITY_MAX: usize = 256;
/// A reason (ignore, skip, refusal), in characters.
pub const REASON_MAX: usize = 300;
/// A note or an enrichment error, in characters.
pub const NOTE_MAX: usize = 500;
/// How many notes, and how many enrichment errors, reach the log.
pub const NOTES_LOGGED: usize = 64;
/// An S3 URI (an object key is at most 1,024 bytes).
pub const URI_MAX: usize = 2048;

/// Who an event is about (WIT `event-identity`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventIdentity {
    pub run_id: String,
    pub status: String,
    pub event_id: Option<String>,
}

/// Where `outputs.json` is (WIT `outputs-location`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputsLocation {
    Uri(String),
    AfterRun,
    Unknown,
}

/// What the host must fetch (WIT `fetch-plan`).
#[derive(Debug, Clone)]
pub struct FetchPlan {
    pub identity: EventIdentity,
    pub get_run: bool,
    pub tasks: Option<TaskRequest>,
    pub outputs: Option<OutputsLocation>,
}

/// Process the event, or ignore it and say why (WIT `event-plan`).
#[derive(Debug, Clone)]
pub enum EventPlan {
    Ignore(String),
    Process(FetchPlan),
}

/// Call the WES API back, or not and why (WIT `callback`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Callback {
    Send,
    Skip(String),
}

/// The event's parts of the archive key (WIT `archive-key`); the pipeline checks their
/// shape before it uses them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveKey {
    pub timestamp: Option<String>,
    pub id: Option<String>,
}

/// A shaped event (WIT `outcome`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub identity: EventIdentity,
    /// The record: one JSON object, archived and posted as these bytes.
    pub record: String,
    pub callback: Callback,
    pub archive_key: ArchiveKey,
    pub enrichment_errors: Vec<String>,
    pub notes: Vec<String>,
}

/// A component's name and version (WIT `guest-info`), plain and short.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestInfo {
    pub name: String,
    pub version: String,
}

impl From<IdentityRaw> for EventIdentity {
    fn from(raw: IdentityRaw) -> EventIdentity {
        EventIdentity {
            run_id: plain_text(&raw.run_id.0, IDENTITY_MAX),
            status: plain_text(&raw.status.0, IDENTITY_MAX),
            event_id: raw.event_id.map(|e| plain_text(&e.0, IDENTITY_MAX)),
        }
    }
}

impl From<FetchPlanRaw> for FetchPlan {
    fn from(raw: FetchPlanRaw) -> FetchPlan {
        FetchPlan {
            identity: raw.identity.into(),
            get_run: raw.get_run,
            tasks: raw.tasks,
            outputs: raw.outputs.map(|o| match o {
                OutputsLocationRaw::Uri(uri) => OutputsLocation::Uri(plain_text(&uri.0, URI_MAX)),
                OutputsLocationRaw::AfterRun => OutputsLocation::AfterRun,
                OutputsLocationRaw::Unknown => OutputsLocation::Unknown,
            }),
        }
    }
}

impl From<EventPlanRaw> for EventPlan {
    fn from(raw: EventPlanRaw) -> EventPlan {
        match raw {
            EventPlanRaw::Ignore(why) => EventPlan::Ignore(plain_text(&why.0, REASON_MAX)),
            EventPlanRaw::Process(plan) => EventPlan::Process(plan.into()),
        }
    }
}

/// At most [`NOTES_LOGGED`] lines, each cut and escaped; a last line says how many more.
fn lines(raw: Vec<super::abi::Short>) -> Vec<String> {
    let total = raw.len();
    let mut out: Vec<String> = raw.iter().take(NOTES_LOGGED).map(|l| plain_text(&l.0, NOTE_MAX)).collect();
    if total > NOTES_LOGGED {
        out.push(format!("... and {} more", total - NOTES_LOGGED));
    }
    out
}

impl From<OutcomeRaw> for Outcome {
    fn from(raw: OutcomeRaw) -> Outcome {
        let ArchiveKeyRaw { timestamp, id } = raw.archive_key;
        Outcome {
            identity: raw.identity.into(),
            record: raw.record.0,
            callback: match raw.callback {
                CallbackRaw::Send => Callback::Send,
                CallbackRaw::Skip(why) => Callback::Skip(plain_text(&why.0, REASON_MAX)),
            },
            archive_key: ArchiveKey { timestamp: timestamp.map(|t| t.0), id: id.map(|i| i.0) },
            enrichment_errors: lines(raw.enrichment_errors.0),
            notes: lines(raw.notes.0),
        }
    }
}

impl From<TransformErrorRaw> for Refusal {
    fn from(raw: TransformErrorRaw) -> Refusal {
        let text = |s: super::abi::Short| plain_text(&s.0, REASON_MAX);
        match raw {
            TransformErrorRaw::InvalidJson(m) => Refusal::InvalidJson(text(m)),
            TransformErrorRaw::NotAnObject(kind) => Refusal::NotAnObject(text(kind)),
            TransformErrorRaw::MissingField(f) => Refusal::MissingField(text(f)),
            TransformErrorRaw::InvalidField(p) => {
                Refusal::InvalidField { field: text(p.field), reason: text(p.reason) }
            }
            TransformErrorRaw::TooDeep(limit) => Refusal::TooDeep(limit),
            TransformErrorRaw::InvalidContext(m) => Refusal::InvalidContext(text(m)),
        }
    }
}
