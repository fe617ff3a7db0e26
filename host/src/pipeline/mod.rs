//! One event, start to finish: the guest admits it and says what to fetch, the host fetches
//! it concurrently, the guest shapes the record, then the host archives it and calls back,
//! concurrently (behaviour §3-§7).
//!
//! The capabilities are behind the ports (`crate::ports`), so the same orchestration serves
//! Lambda, `process`, and the offline `transform` and `check`.
//!
//! - `shape.rs`: admission, enrichment and the guest's transform;
//! - `key.rs`: the archive key;
//! - `mod.rs` (here): the `Handler` that does the rest, and what it reports.

mod key;
pub mod reconcile;
mod shape;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tracing::{Instrument, error, info, warn};

pub use key::ArchiveTarget;
pub use shape::{Admission, RunEvent, Shaped, admit, event_span};

use crate::adapters::context_file::ContextFile;
use crate::adapters::metrics::{CallbackMetric, Emf, EventMetrics};
use crate::adapters::omics;
use crate::adapters::refresh::{GuestSlot, Refresher};
use crate::error::{CallbackError, Error};
use crate::ports::{Archive, Archived, Delivery, Enricher, Notifier, Route};
use crate::sandbox::{Callback, Context, Guest, Outcome, plain_text};

/// What happened to the callback of an event that succeeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallbackOutcome {
    /// 2xx.
    Sent(u16),
    /// 2xx after the run's start was reported first (the WES run was still queued there).
    Healed(u16),
    /// Not sent: the guest said why (no `WESRunId`, DELETED, ...).
    Skipped(String),
    /// Rejected for good by the WES API (404 naming the run, 409, 422).
    Rejected(u16),
}

impl CallbackOutcome {
    /// How the Lambda response and the CLI say it.
    pub fn describe(&self) -> String {
        match self {
            CallbackOutcome::Sent(code) => format!("sent (HTTP {code})"),
            CallbackOutcome::Healed(code) => format!("sent (HTTP {code}) after reporting the run's start"),
            CallbackOutcome::Skipped(why) => format!("skipped: {why}"),
            CallbackOutcome::Rejected(code) => format!("rejected by the WES API (HTTP {code})"),
        }
    }
}

/// One event that succeeded, for the Lambda response and the CLI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    Ignored(String),
    Processed {
        status: String,
        uri: String,
        archived: Archived,
        callback: CallbackOutcome,
        /// The WES API's answer to the callback, in short ("No state change", ...).
        answer: Option<String>,
        /// The origin that answered the callback (`https://host:443`), when one did.
        callback_origin: Option<String>,
        guest: String,
    },
}

impl Report {
    /// The Lambda response, in the Python function's shape plus what happened.
    pub fn response(&self) -> serde_json::Value {
        match self {
            Report::Ignored(why) => serde_json::json!({
                "statusCode": 200,
                "body": format!("Event ignored: {why}"),
                "outcome": "ignored",
            }),
            Report::Processed { status, uri, archived, callback, callback_origin, guest, .. } => {
                let mut response = serde_json::json!({
                    "statusCode": 200,
                    "body": format!("Event processed, status: {status} -> {uri}"),
                    "outcome": "processed",
                    "archive": archived.as_str(),
                    "callback": callback.describe(),
                    "guest": guest,
                });
                if let Some(origin) = callback_origin {
                    response["callback_origin"] = origin.as_str().into();
                }
                response
            }
        }
    }

    /// The callback's part of a one-line summary: `callback sent (HTTP 200) at ORIGIN`.
    pub fn callback_line(&self) -> Option<String> {
        let Report::Processed { callback, callback_origin, .. } = self else { return None };
        Some(match callback_origin {
            Some(origin) => format!("callback {} at {origin}", callback.describe()),
            None => format!("callback {}", callback.describe()),
        })
    }
}

/// The `callback_url` tag of a run's description (GetRun's JSON), when it has one.
fn callback_url_tag(run: Option<&str>) -> Option<String> {
    let run: serde_json::Value = serde_json::from_str(run?).ok()?;
    run.pointer("/tags/callback_url").and_then(serde_json::Value::as_str).map(str::to_owned)
}

/// Everything one event needs: the guest and the capabilities.
pub struct Handler<E, A, N> {
    pub guest: GuestSlot,
    /// Looks for a new guest component between events (`GUEST_REFRESH_SECONDS`).
    pub refresher: Option<Arc<Refresher>>,
    /// Writes one EMF line per event (Lambda mode).
    pub metrics: Option<Emf>,
    pub enricher: E,
    pub archive: A,
    pub notifier: N,
    pub target: ArchiveTarget,
    /// Where each processed event's inputs are kept as a case folder (`CAPTURE_INPUTS`),
    /// through the same archive port: written once, encrypted.
    pub capture: Option<ArchiveTarget>,
    /// How long one event's HealthOmics calls may wait out throttling, all together
    /// (`OMICS_THROTTLE_BUDGET_SECONDS`).
    pub throttle_budget: Duration,
}

impl<E: Enricher, A: Archive, N: Notifier> Handler<E, A, N> {
    /// Processes one event. `Ok` only when the invocation should succeed. With `metrics`
    /// set, writes the event's EMF line, whatever the outcome.
    pub async fn handle(&self, event: Arc<[u8]>) -> Result<Report, Error> {
        self.handle_with(event, &self.enricher).await
    }

    /// [`Handler::handle`], with the guest's inputs from `enricher` (a reconciliation has
    /// the run's description at hand already).
    pub async fn handle_with<F: Enricher>(&self, event: Arc<[u8]>, enricher: &F) -> Result<Report, Error> {
        let started = Instant::now();
        let mut m = EventMetrics { status: "INVALID".into(), ..EventMetrics::default() };
        let result =
            omics::with_throttle_budget(self.throttle_budget, self.handle_measured(event, enricher, started, &mut m))
                .await;
        m.failed = result.is_err();
        m.total = started.elapsed();
        if let Some(emf) = &self.metrics {
            emf.emit(&m);
        }
        result
    }

    async fn handle_measured<F: Enricher>(
        &self,
        event: Arc<[u8]>,
        enricher: &F,
        started: Instant,
        m: &mut EventMetrics,
    ) -> Result<Report, Error> {
        let guest = self.guest.current();
        m.guest = Some(guest.label());
        if let Some(refresher) = &self.refresher {
            refresher.poke();
        }
        let run = match admit(&guest, event.clone()).await {
            Ok(Admission::Run(run)) => run,
            Ok(Admission::Ignored { reason, guest_time }) => {
                m.status = "IGNORED".into();
                m.guest_time = guest_time;
                info!(guest = %guest.label(), "event ignored: {reason}");
                return Ok(Report::Ignored(reason));
            }
            Err(e) => {
                error!(guest = %guest.label(), "event failed: {e}");
                return Err(e);
            }
        };
        let id = run.identity();
        m.status = id.status.clone();
        m.run_id = Some(id.run_id.clone());
        m.event_id = id.event_id.clone();
        let span = event_span(id, &guest.label());
        async {
            let (shaped, guest_time) = run.shape_timed(enricher).await;
            m.guest_time = guest_time;
            let result = match shaped {
                Ok(shaped) => self.finish(&guest, shaped, &event, started, m).await,
                Err(e) => Err(e),
            };
            if let Err(e) = &result {
                error!(guest = %guest.label(), "event failed: {e}");
            }
            result
        }
        .instrument(span)
        .await
    }

    /// Archives the record and calls back, concurrently.
    async fn finish(
        &self,
        guest: &Guest,
        shaped: Shaped,
        event: &[u8],
        started: Instant,
        m: &mut EventMetrics,
    ) -> Result<Report, Error> {
        let Shaped { outcome, context, error_parts } = shaped;
        let run = context.run.as_deref();
        m.enrichment_errors = outcome.enrichment_errors.len();
        for e in &outcome.enrichment_errors {
            warn!("enrichment error: {e}");
        }
        for note in &outcome.notes {
            info!("{note}");
        }
        let key = self.target.key(&outcome.archive_key, SystemTime::now());
        let uri = self.target.uri(&key);
        let send = matches!(outcome.callback, Callback::Send);
        let route = if send { self.route(run, m) } else { Route::Configured };
        let body = outcome.record.clone().into_bytes();
        let (archived, delivered, ()) = tokio::join!(
            self.archive.put_new(&self.target.bucket, &key, body),
            async { if send { Some(self.deliver(guest, &outcome, run, event, &route).await) } else { None } },
            self.capture(&key, event, &context, &error_parts, m),
        );
        let answer = match &delivered {
            Some(Ok(Delivered { delivery: Delivery::Accepted { excerpt, .. }, .. })) => Some(excerpt.clone()),
            _ => None,
        };
        let callback_origin = match &delivered {
            Some(Ok(Delivered { delivery, .. })) => Some(delivery.origin().to_owned()),
            _ => None,
        };
        let callback = callback_outcome(&outcome.callback, delivered);
        m.archive = archived.as_ref().ok().copied();
        m.archive_failed = archived.is_err();
        m.callback = Some(match &callback {
            Ok(CallbackOutcome::Sent(_)) => CallbackMetric::Sent,
            Ok(CallbackOutcome::Healed(_)) => CallbackMetric::Healed,
            Ok(CallbackOutcome::Skipped(_)) => CallbackMetric::Skipped,
            Ok(CallbackOutcome::Rejected(_)) => CallbackMetric::Rejected,
            Err(_) => CallbackMetric::Failed,
        });
        match (archived, callback) {
            (Ok(archived), Ok(callback)) => {
                let elapsed_ms = started.elapsed().as_millis() as u64;
                match archived {
                    Archived::Written => info!(archive = %uri, guest = %guest.label(), elapsed_ms, "event archived"),
                    Archived::AlreadyThere => {
                        info!(archive = %uri, guest = %guest.label(), elapsed_ms, "archive already there (re-delivery)")
                    }
                }
                Ok(Report::Processed {
                    status: outcome.identity.status,
                    uri,
                    archived,
                    callback,
                    answer,
                    callback_origin,
                    guest: guest.label(),
                })
            }
            (Ok(_), Err(callback)) => Err(Error::Callback(callback)),
            (Err(archive), Ok(_)) => Err(Error::Archive(archive)),
            (Err(archive), Err(callback)) => Err(Error::ArchiveAndCallback { archive, callback }),
        }
    }

    /// Where the callback goes: the URL of the run's `callback_url` tag when the notifier
    /// allows it; else `API_SERVER`'s route, with one WARN (the tag cut and escaped) and the
    /// `CallbackUrlRefused` metric when the run had a tag that may not be used.
    fn route(&self, run: Option<&str>, m: &mut EventMetrics) -> Route {
        let Some(tag) = callback_url_tag(run) else { return Route::Configured };
        match self.notifier.route(&tag) {
            Ok(route) => route,
            Err(why) => {
                m.callback_url_refused = true;
                warn!(
                    callback_url = %plain_text(&tag, 200),
                    "the run's callback_url tag is not used: {why}; the callback takes API_SERVER's route"
                );
                Route::Configured
            }
        }
    }

    /// Keeps what the guest saw as a case folder (`event.json`, `context.json`) for `diff
    /// --cases`, when `CAPTURE_INPUTS` is set. A failure is logged and counted, and does not
    /// fail the event: the archive and the callback are what the event is for.
    async fn capture(
        &self,
        archive_key: &str,
        event: &[u8],
        context: &Context,
        error_parts: &[&'static str],
        m: &mut EventMetrics,
    ) {
        let Some(target) = &self.capture else { return };
        let folder = target.capture_folder(archive_key);
        let (event_key, context_key) = (format!("{folder}/event.json"), format!("{folder}/context.json"));
        let written = tokio::join!(
            self.archive.put_new(&target.bucket, &event_key, event.to_vec()),
            self.archive.put_new(&target.bucket, &context_key, ContextFile::captured(context, error_parts)),
        );
        match written {
            (Ok(_), Ok(_)) => info!(capture = %target.uri(&folder), "inputs captured"),
            (Err(e), _) | (_, Err(e)) => {
                m.capture_failed = true;
                warn!(capture = %target.uri(&folder), "inputs not captured: {e}");
            }
        }
    }

    /// Posts the record (behaviour §7). When the WES API refuses a terminal status as an
    /// invalid transition, the run is still queued there (its RUNNING event was lost or is
    /// late): report the start its description proves, then post the record again.
    async fn deliver(
        &self,
        guest: &Guest,
        outcome: &Outcome,
        run: Option<&str>,
        event: &[u8],
        route: &Route,
    ) -> Result<Delivered, CallbackError> {
        let status = outcome.identity.status.as_str();
        match self.notifier.notify(&outcome.record, route).await {
            Err(CallbackError::Transition { excerpt }) if matches!(status, "COMPLETED" | "FAILED" | "CANCELLED") => {
                warn!(
                    "the WES API refused {status} as a state transition (HTTP 400: {excerpt}): the run is still \
                     queued there; reporting its start first"
                );
                let start = self.start_record(guest, outcome, run, event).await?;
                match self.notifier.notify(&start, route).await? {
                    Delivery::Accepted { status: code, .. } => info!(http_status = code, "the run's start accepted"),
                    Delivery::Rejected { status: code, excerpt, .. } => {
                        return Err(CallbackError::Heal(format!(
                            "the run's start was rejected (HTTP {code}: {excerpt})"
                        )));
                    }
                }
                self.notifier.notify(&outcome.record, route).await.map(|d| Delivered { delivery: d, healed: true })
            }
            other => other.map(|d| Delivered { delivery: d, healed: false }),
        }
    }

    /// The record of the start a heal reports: the run's description as a reconciled event,
    /// status RUNNING, at GetRun's `startTime` (else the event's time), its id the event's
    /// followed by `:started`, shaped by the guest like any event. It is not archived.
    async fn start_record(
        &self,
        guest: &Guest,
        outcome: &Outcome,
        run: Option<&str>,
        event: &[u8],
    ) -> Result<String, CallbackError> {
        let heal = |why: String| CallbackError::Heal(why);
        let run: serde_json::Value = run
            .and_then(|r| serde_json::from_str(r).ok())
            .ok_or_else(|| heal("the run's description (GetRun) is not at hand".into()))?;
        let event: serde_json::Value = serde_json::from_slice(event).unwrap_or_default();
        let time = run.get("startTime").or(event.get("time")).and_then(|t| t.as_str()).map(str::to_owned);
        let id =
            outcome.identity.event_id.clone().or_else(|| event.get("id").and_then(|i| i.as_str()).map(str::to_owned));
        let overrides =
            reconcile::Overrides { status: Some("RUNNING".into()), time, id: id.map(|id| format!("{id}:started")) };
        let start =
            reconcile::run_event(&run, &overrides).ok_or_else(|| heal("the run's description has no id".into()))?;
        let known = KnownRun(run.to_string());
        let shaped = match admit(guest, start.to_string().into_bytes().into()).await {
            Ok(Admission::Run(start)) => start.shape(&known).await,
            Ok(Admission::Ignored { reason, .. }) => {
                return Err(heal(format!("the guest ignored the start: {reason}")));
            }
            Err(e) => Err(e),
        };
        let outcome = shaped.map_err(|e| heal(format!("shaping the start: {e}")))?;
        match outcome.callback {
            Callback::Send => Ok(outcome.record),
            Callback::Skip(why) => Err(heal(format!("the guest would not send the start: {why}"))),
        }
    }
}

/// A posted record, and whether the run's start had to be reported first.
struct Delivered {
    delivery: Delivery,
    healed: bool,
}

/// The enrichment port for a start a heal reports: the run's description is at hand.
struct KnownRun(String);

impl Enricher for KnownRun {
    async fn run(&self, _run_id: &str) -> crate::ports::Fetched<String> {
        Ok(Some(self.0.clone()))
    }
    async fn tasks(
        &self,
        _run_id: &str,
        _request: crate::sandbox::TaskRequest,
    ) -> crate::ports::Fetched<crate::sandbox::TaskList> {
        Ok(None)
    }
    async fn outputs(&self, _uri: &str) -> crate::ports::Fetched<Vec<u8>> {
        Ok(None)
    }
}

/// The callback's outcome from the guest's decision and the WES API's answer.
fn callback_outcome(
    decision: &Callback,
    delivered: Option<Result<Delivered, CallbackError>>,
) -> Result<CallbackOutcome, CallbackError> {
    match (decision, delivered) {
        (Callback::Skip(why), _) => {
            let why = crate::sandbox::plain_text(why, 300);
            info!("callback skipped: {why}");
            Ok(CallbackOutcome::Skipped(why))
        }
        (Callback::Send, Some(Ok(Delivered { delivery: Delivery::Accepted { status, excerpt, origin }, healed }))) => {
            info!(http_status = status, answer = %excerpt, callback_origin = %origin, "callback accepted");
            Ok(if healed { CallbackOutcome::Healed(status) } else { CallbackOutcome::Sent(status) })
        }
        (Callback::Send, Some(Ok(Delivered { delivery: Delivery::Rejected { status, excerpt, origin }, .. }))) => {
            error!(
                http_status = status,
                body = %excerpt,
                callback_origin = %origin,
                "the WES API rejected the event for good; it stays archived"
            );
            Ok(CallbackOutcome::Rejected(status))
        }
        (Callback::Send, Some(Err(why))) => Err(why),
        (Callback::Send, None) => unreachable!("a callback to send was sent"),
    }
}
