//! A loaded guest, and one event's session with it: a fresh store and instance per event,
//! each call under the memory, time and output limits, and every failure classified.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::ResourceAny;
use wasmtime::{Store, Trap};

use super::bindings::exports::ngs360::omics_events::processor::TransformError;
use super::bindings::{OmicsEventProcessor, OmicsEventProcessorPre};
use super::limits::{Limits, TICK, plain_text};
use super::wasi::State;
use super::{Context, EventPlan, GuestInfo, Outcome};
use crate::error::{GuestError, LoadError, Refusal};

/// How much of a guest's stderr goes into an error message.
const STDERR_EXCERPT: usize = 500;

/// A loaded, linked and described guest. Cheap to clone; each event gets its own
/// [`Session`].
#[derive(Clone)]
pub struct Guest {
    inner: Arc<Inner>,
}

struct Inner {
    pre: OmicsEventProcessorPre<State>,
    info: GuestInfo,
    origin: String,
    limits: Limits,
}

impl Guest {
    /// Asks a linked component for its name and version, and makes it a guest.
    pub(super) fn describe_new(
        pre: OmicsEventProcessorPre<State>,
        origin: String,
        limits: Limits,
    ) -> Result<Guest, LoadError> {
        let mut guest = Guest {
            inner: Arc::new(Inner {
                pre,
                info: GuestInfo { name: String::new(), version: String::new() },
                origin: origin.clone(),
                limits,
            }),
        };
        let info = guest
            .session()
            .and_then(|mut s| s.describe())
            .map_err(|e| LoadError::Describe { origin, reason: e.to_string() })?;
        // The name goes into every log line and response: plain, short text only.
        let plain = |s: &str| -> String {
            let kept: String = s.chars().filter(|c| c.is_ascii_graphic()).take(64).collect();
            if kept.is_empty() { "unnamed".into() } else { kept }
        };
        let info = GuestInfo { name: plain(&info.name), version: plain(&info.version) };
        Arc::get_mut(&mut guest.inner).expect("not shared yet").info = info;
        Ok(guest)
    }

    /// The guest's own name and version (its `describe` export).
    pub fn info(&self) -> &GuestInfo {
        &self.inner.info
    }

    /// `name@version`, for log lines.
    pub fn label(&self) -> String {
        format!("{}@{}", self.inner.info.name, self.inner.info.version)
    }

    /// Where the guest came from (`bundled`, a path, an S3 URI).
    pub fn origin(&self) -> &str {
        &self.inner.origin
    }

    /// The limits each event runs under.
    pub fn limits(&self) -> Limits {
        self.inner.limits
    }

    /// A fresh instance in a fresh store, with `event` parsed in it: one event's session.
    pub fn open(&self, event: &[u8]) -> Result<Session, GuestError> {
        let mut session = self.session()?;
        let parsed =
            session.call(|p, s| p.ngs360_omics_events_processor().event().call_parse(s, event))?.map_err(refusal)?;
        session.event = Some(parsed);
        Ok(session)
    }

    fn session(&self) -> Result<Session, GuestError> {
        let limits = self.inner.limits;
        let engine = self.inner.pre.engine();
        let mut store = Store::new(engine, State::new(&limits));
        store.limiter(|s| &mut s.limiter);
        store.epoch_deadline_trap();
        set_deadline(&mut store, limits.time);
        let processor = self.inner.pre.instantiate(&mut store).map_err(|e| classify(&store, limits, e))?;
        Ok(Session { store, processor, limits, event: None, busy: Duration::ZERO })
    }
}

fn set_deadline(store: &mut Store<State>, time: Duration) {
    let ticks = time.as_nanos().div_ceil(TICK.as_nanos()).max(1) as u64 + 1;
    store.set_epoch_deadline(ticks);
}

/// One event's instance of the guest, holding the parsed event.
pub struct Session {
    store: Store<State>,
    processor: OmicsEventProcessor,
    limits: Limits,
    event: Option<ResourceAny>,
    busy: Duration,
}

impl Session {
    /// The guest's `describe` export.
    pub fn describe(&mut self) -> Result<GuestInfo, GuestError> {
        self.call(|p, s| p.ngs360_omics_events_processor().call_describe(s))
    }

    /// The event's `plan` method.
    pub fn plan(&mut self, run: Option<&str>) -> Result<EventPlan, GuestError> {
        let event = self.event.expect("a session opened on an event");
        self.call(|p, s| p.ngs360_omics_events_processor().event().call_plan(s, event, run))?.map_err(refusal)
    }

    /// The event's `transform` method, with the record's size checked.
    pub fn transform(&mut self, context: &Context) -> Result<Outcome, GuestError> {
        let event = self.event.expect("a session opened on an event");
        let outcome = self
            .call(|p, s| p.ngs360_omics_events_processor().event().call_transform(s, event, context))?
            .map_err(refusal)?;
        if outcome.record.len() > self.limits.output {
            return Err(GuestError::OutputTooLarge {
                what: "record",
                size: outcome.record.len(),
                limit: self.limits.output,
            });
        }
        check_record(&outcome.record)?;
        Ok(outcome)
    }

    /// The time spent in guest calls so far.
    pub fn busy(&self) -> Duration {
        self.busy
    }

    /// What the guest wrote to stderr so far (truncated at the limit), escaped for a log.
    pub fn stderr(&self) -> String {
        plain_text(&self.store.data().stderr.contents(), self.limits.stderr)
    }

    fn call<R>(
        &mut self,
        f: impl FnOnce(&OmicsEventProcessor, &mut Store<State>) -> wasmtime::Result<R>,
    ) -> Result<R, GuestError> {
        set_deadline(&mut self.store, self.limits.time);
        let started = Instant::now();
        let result = f(&self.processor, &mut self.store);
        self.busy += started.elapsed();
        result.map_err(|e| classify(&self.store, self.limits, e))
    }
}

/// A guest's refusal, with its text cut and escaped.
fn refusal(e: TransformError) -> GuestError {
    let text = |s: &str| plain_text(s, 300);
    GuestError::Refused(match e {
        TransformError::InvalidJson(m) => Refusal::InvalidJson(text(&m)),
        TransformError::NotAnObject(kind) => Refusal::NotAnObject(text(&kind)),
        TransformError::MissingField(f) => Refusal::MissingField(text(&f)),
        TransformError::InvalidField(p) => Refusal::InvalidField { field: text(&p.field), reason: text(&p.reason) },
        TransformError::TooDeep(limit) => Refusal::TooDeep(limit),
        TransformError::InvalidContext(m) => Refusal::InvalidContext(text(&m)),
    })
}

/// The record is archived and posted as it is: it must be one JSON object.
fn check_record(record: &str) -> Result<(), GuestError> {
    match serde_json::from_str::<serde::de::IgnoredAny>(record) {
        Ok(_) if record.trim_start().starts_with('{') => Ok(()),
        Ok(_) => Err(GuestError::InvalidRecord("it is not a JSON object".into())),
        Err(e) => Err(GuestError::InvalidRecord(format!("it is not JSON ({e})"))),
    }
}

/// Turns a wasmtime error into the limit it hit, or a trap with the guest's stderr.
fn classify(store: &Store<State>, limits: Limits, error: wasmtime::Error) -> GuestError {
    let stderr = plain_text(store.data().stderr.contents().trim(), STDERR_EXCERPT);
    if store.data().limiter.exceeded {
        return GuestError::MemoryLimit { limit_mib: limits.memory >> 20, stderr };
    }
    match error.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => GuestError::TimeLimit { limit: limits.time, stderr },
        // The trap itself ("wasm trap: call stack exhausted"); the wasm backtrace goes to DEBUG.
        Some(trap) => {
            tracing::debug!("guest trap: {error:?}");
            GuestError::Trap { reason: trap.to_string(), stderr }
        }
        None => GuestError::Trap { reason: plain_text(&error.root_cause().to_string(), 300), stderr },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_must_be_json_objects() {
        assert!(check_record(r#" {"a":[1,{"b":null}]}"#).is_ok());
        for bad in ["", "[1]", "\"x\"", "{", "{} {}", "{\"a\":}", "null"] {
            assert!(matches!(check_record(bad), Err(GuestError::InvalidRecord(_))), "{bad:?}");
        }
    }
}
