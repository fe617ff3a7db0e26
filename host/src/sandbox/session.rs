//! A loaded guest, and one event's session with it: a fresh store and instance per event,
//! each call under the memory, time and output limits, and every failure classified.
//!
//! Calls are asynchronous (wasmtime runs the guest on a fiber): a call is a future that a
//! timeout drops at the time limit, whatever the guest is doing, computing or blocked in a
//! host function (a WASI sleep, a poll). While it computes, the epoch ticker makes it yield
//! to the executor every tick and interrupts it at the deadline. The guest's answers are
//! lifted with their sizes checked first (`abi.rs`) and their text made plain (`types.rs`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::{ComponentExportIndex, ComponentNamedList, Instance, InstancePre, Lift, Lower, ResourceAny};
use wasmtime::{Store, Trap, UpdateDeadline};

use super::Context;
use super::abi::{EventPlanRaw, GuestInfoRaw, OutcomeRaw, Oversized, TransformErrorRaw};
use super::limits::{Limits, plain_text};
use super::types::{EventPlan, GuestInfo, Outcome};
use super::wasi::State;
use crate::error::{GuestError, LoadError};

/// How much of a guest's stderr goes into an error message.
const STDERR_EXCERPT: usize = 500;

/// Where a component's exports are, found once when it is loaded.
#[derive(Clone)]
pub(super) struct Exports {
    pub describe: ComponentExportIndex,
    pub parse: ComponentExportIndex,
    pub plan: ComponentExportIndex,
    pub transform: ComponentExportIndex,
}

/// A loaded, linked and described guest. Cheap to clone; each event gets its own
/// [`Session`].
#[derive(Clone)]
pub struct Guest {
    inner: Arc<Inner>,
}

#[derive(Clone)]
struct Inner {
    pre: InstancePre<State>,
    exports: Exports,
    info: GuestInfo,
    origin: String,
    sha256: String,
    limits: Limits,
}

impl Guest {
    /// A linked component whose name and version are known (the bundled guest's, from
    /// the build).
    pub(super) fn known(
        pre: InstancePre<State>,
        exports: Exports,
        info: GuestInfo,
        origin: String,
        sha256: String,
        limits: Limits,
    ) -> Guest {
        Guest { inner: Arc::new(Inner { pre, exports, info, origin, sha256, limits }) }
    }

    /// Asks a linked component for its name and version, and makes it a guest.
    pub(super) async fn describe_new(
        pre: InstancePre<State>,
        exports: Exports,
        origin: String,
        sha256: String,
        limits: Limits,
    ) -> Result<Guest, LoadError> {
        let unnamed = GuestInfo { name: String::new(), version: String::new() };
        let mut guest = Guest::known(pre, exports, unnamed, origin.clone(), sha256, limits);
        let described = match guest.session().await {
            Ok(mut session) => session.describe().await,
            Err(e) => Err(e),
        };
        let info = described.map_err(|e| LoadError::Describe { origin, reason: e.to_string() })?;
        Arc::get_mut(&mut guest.inner).expect("not shared yet").info = info;
        Ok(guest)
    }

    /// The same guest, whose events run under `limits`.
    pub fn with_limits(self, limits: Limits) -> Guest {
        let inner = Arc::unwrap_or_clone(self.inner);
        Guest { inner: Arc::new(Inner { limits, ..inner }) }
    }

    /// The guest's own name and version (its `describe` export).
    pub fn info(&self) -> &GuestInfo {
        &self.inner.info
    }

    /// `name@version#sha256` (the first 12 hex digits of the component's sha256), for log
    /// lines, metrics and the Lambda response.
    pub fn label(&self) -> String {
        format!("{}@{}#{}", self.inner.info.name, self.inner.info.version, self.sha256_short())
    }

    /// The first 12 hex digits of the component's sha256.
    pub fn sha256_short(&self) -> &str {
        &self.inner.sha256[..12.min(self.inner.sha256.len())]
    }

    /// The component's sha256 (of the bytes it was loaded from).
    pub fn sha256(&self) -> &str {
        &self.inner.sha256
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
    pub async fn open(&self, event: &[u8]) -> Result<Session, GuestError> {
        let mut session = self.session().await?;
        let parse = self.inner.exports.parse;
        let (parsed,): (Result<ResourceAny, TransformErrorRaw>,) = session.invoke(parse, (event,)).await?;
        session.event = Some(parsed.map_err(|e| GuestError::Refused(e.into()))?);
        Ok(session)
    }

    async fn session(&self) -> Result<Session, GuestError> {
        let limits = self.inner.limits;
        let engine = self.inner.pre.engine();
        let mut store = Store::new(engine, State::new(&limits));
        store.limiter(|s| &mut s.limiter);
        // Every tick, a guest that is computing gives the executor back its thread, and is
        // interrupted once its call's deadline has passed.
        store.epoch_deadline_callback(|store| {
            if Instant::now() >= store.data().deadline {
                Ok(UpdateDeadline::Interrupt)
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });
        store.set_epoch_deadline(1);
        store.data_mut().deadline = Instant::now() + limits.time;
        let instantiated = tokio::time::timeout(limits.time, self.inner.pre.instantiate_async(&mut store)).await;
        let instance = match instantiated {
            Err(_) => return Err(GuestError::TimeLimit { limit: limits.time, stderr: stderr_excerpt(&store) }),
            Ok(result) => result.map_err(|e| classify(&store, limits, e))?,
        };
        Ok(Session {
            store,
            instance,
            exports: self.inner.exports.clone(),
            limits,
            event: None,
            busy: Duration::ZERO,
            broken: false,
        })
    }
}

/// One event's instance of the guest, holding the parsed event.
pub struct Session {
    store: Store<State>,
    instance: Instance,
    exports: Exports,
    limits: Limits,
    event: Option<ResourceAny>,
    busy: Duration,
    /// A call was cut short or trapped: the instance is not called again.
    broken: bool,
}

impl Session {
    /// The guest's `describe` export.
    pub async fn describe(&mut self) -> Result<GuestInfo, GuestError> {
        let (info,): (GuestInfoRaw,) = self.invoke(self.exports.describe, ()).await?;
        // The name goes into every log line and response: plain, short text only.
        let plain = |s: &str| -> String {
            let kept: String = s.chars().filter(|c| c.is_ascii_graphic() && *c != '#').take(64).collect();
            if kept.is_empty() { "unnamed".into() } else { kept }
        };
        Ok(GuestInfo { name: plain(&info.name.0), version: plain(&info.version.0) })
    }

    /// The event's `plan` method.
    pub async fn plan(&mut self, run: Option<&str>) -> Result<EventPlan, GuestError> {
        let event = self.event.expect("a session opened on an event");
        let (plan,): (Result<EventPlanRaw, TransformErrorRaw>,) = self.invoke(self.exports.plan, (event, run)).await?;
        plan.map(EventPlan::from).map_err(|e| GuestError::Refused(e.into()))
    }

    /// The event's `transform` method; the record must be one JSON object.
    pub async fn transform(&mut self, context: &Context) -> Result<Outcome, GuestError> {
        let event = self.event.expect("a session opened on an event");
        let (outcome,): (Result<OutcomeRaw, TransformErrorRaw>,) =
            self.invoke(self.exports.transform, (event, context)).await?;
        let outcome = Outcome::from(outcome.map_err(|e| GuestError::Refused(e.into()))?);
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

    /// One call, bounded in wall-clock time whatever the guest does.
    async fn invoke<P, R>(&mut self, index: ComponentExportIndex, params: P) -> Result<R, GuestError>
    where
        P: ComponentNamedList + Lower + Send + Sync,
        R: ComponentNamedList + Lift + Send + Sync + 'static,
    {
        if self.broken {
            return Err(GuestError::Trap {
                reason: "the instance was stopped by an earlier error".into(),
                stderr: String::new(),
            });
        }
        let func = self
            .instance
            .get_typed_func::<P, R>(&mut self.store, index)
            .map_err(|e| GuestError::Trap { reason: plain_text(&format!("{e:#}"), 300), stderr: String::new() })?;
        let limit = self.limits.time;
        self.store.data_mut().deadline = Instant::now() + limit;
        self.store.set_epoch_deadline(1);
        let started = Instant::now();
        let result = tokio::time::timeout(limit, func.call_async(&mut self.store, params)).await;
        self.busy += started.elapsed();
        match result {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => {
                self.broken = true;
                Err(classify(&self.store, self.limits, e))
            }
            Err(_) => {
                self.broken = true;
                Err(GuestError::TimeLimit { limit, stderr: stderr_excerpt(&self.store) })
            }
        }
    }
}

/// The record is archived and posted as it is: it must be one JSON object that every
/// reader reads the same way (`record::check`).
fn check_record(record: &str) -> Result<(), GuestError> {
    super::record::check(record).map_err(GuestError::InvalidRecord)
}

fn stderr_excerpt(store: &Store<State>) -> String {
    plain_text(store.data().stderr.contents().trim(), STDERR_EXCERPT)
}

/// Turns a wasmtime error into the limit it hit, or a trap with the guest's stderr.
fn classify(store: &Store<State>, limits: Limits, error: wasmtime::Error) -> GuestError {
    let stderr = stderr_excerpt(store);
    if store.data().limiter.exceeded {
        return GuestError::MemoryLimit { limit_mib: limits.memory >> 20, stderr };
    }
    if let Some(o) = error.downcast_ref::<Oversized>() {
        return GuestError::OutputTooLarge { what: o.what, size: o.size, limit: o.limit, unit: o.unit };
    }
    match error.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => GuestError::TimeLimit { limit: limits.time, stderr },
        // The trap itself ("wasm trap: call stack exhausted"); the wasm backtrace goes to DEBUG.
        Some(trap) => {
            tracing::debug!("guest trap: {}", plain_text(&format!("{error:?}"), 4000));
            GuestError::Trap { reason: trap.to_string(), stderr }
        }
        None => GuestError::Trap { reason: plain_text(&format!("{:#}", error), 300), stderr },
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

    /// The bundled guest loads without an instance, with the name and version the build
    /// knows: they must be what its `describe` export says.
    #[tokio::test]
    async fn the_bundled_guests_known_identity_is_what_it_describes() {
        let runtime = super::super::Runtime::new().unwrap();
        let guest = runtime.bundled_now(Limits::default()).unwrap();
        let described = guest.session().await.unwrap().describe().await.unwrap();
        assert_eq!(guest.info(), &described);
        assert_eq!(described.name, super::super::BUNDLED_NAME);
    }
}
