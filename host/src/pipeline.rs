//! One event, start to finish: ask the guest what to fetch, fetch it concurrently, let the
//! guest shape the record, then archive it and call back, concurrently (SPEC sections 3-7).
//!
//! The capabilities are behind small traits ([`Enricher`], [`Archive`], [`Notifier`]) so the
//! same orchestration serves Lambda, `process`, and the offline `transform` and `check`.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tracing::{Instrument, Span, debug, error, info, info_span, warn};

use crate::error::{Error, TransientError};
use crate::guest::{Callback, Context, EventIdentity, EventPlan, FetchPlan, Guest, Outcome, OutputsLocation, Session};
use crate::metrics::{CallbackMetric, Emf, EventMetrics};

/// Why something could not be fetched.
#[derive(Debug)]
pub enum FetchError {
    /// Retrying will not help (not found, access denied, invalid request): the record is
    /// shaped without it and says so in `enrichment_errors`.
    Permanent(String),
    /// Retrying later may help (throttling, 5xx, network): the invocation fails.
    Transient(TransientError),
}

/// A fetch's result: `Ok(None)` when there is nothing to fetch (no such `outputs.json`, or a
/// context file without that part).
pub type Fetched<T> = Result<Option<T>, FetchError>;

/// Where the guest's inputs come from: HealthOmics and S3, or a context file.
pub trait Enricher: Sync {
    /// The run, as GetRun returns it, in JSON with the AWS CLI's keys.
    fn run(&self, run_id: &str) -> impl Future<Output = Fetched<String>> + Send;
    /// Every ListRunTasks item over all pages, as a JSON array.
    fn tasks(&self, run_id: &str) -> impl Future<Output = Fetched<String>> + Send;
    /// An object's bytes, by `s3://` URI.
    fn outputs(&self, uri: &str) -> impl Future<Output = Fetched<Vec<u8>>> + Send;
}

/// The guest's first answer about an event.
pub enum Planned {
    /// Not a HealthOmics run status change: why, and the time the guest took to say so.
    Ignored(String, Duration),
    /// A run status change, with the guest instance that will shape it.
    Run(Box<RunEvent>),
}

/// A run event the guest has planned, and the instance (a fresh store) that holds it.
pub struct RunEvent {
    session: Session,
    plan: FetchPlan,
}

/// Runs `f` on a blocking thread: a guest call must not hold up the async runtime (and
/// WASI's synchronous bindings must not run on one of its workers).
pub(crate) async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(value) => value,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// Asks a fresh instance of the guest what `event` is and what to fetch for it.
pub async fn plan(guest: &Guest, event: Arc<[u8]>) -> Result<Planned, Error> {
    let g = guest.clone();
    blocking(move || {
        let mut session = g.open(&event)?;
        Ok(match session.plan(None)? {
            EventPlan::Ignore(why) => Planned::Ignored(why, session.busy()),
            EventPlan::Process(plan) => Planned::Run(Box::new(RunEvent { session, plan })),
        })
    })
    .await
}

impl RunEvent {
    /// Who the event is about.
    pub fn identity(&self) -> &EventIdentity {
        &self.plan.identity
    }

    /// The span every log line about this event runs in.
    pub fn span(&self) -> Span {
        event_span(self.identity())
    }

    /// Fetches what the guest asked for (concurrently), and lets it shape the record.
    pub async fn shape<E: Enricher>(self, enricher: &E) -> Result<Outcome, Error> {
        self.shape_timed(enricher).await.0
    }

    /// [`RunEvent::shape`], with the time spent in the guest (its plan included).
    pub async fn shape_timed<E: Enricher>(self, enricher: &E) -> (Result<Outcome, Error>, Duration) {
        let RunEvent { session, plan } = self;
        let mut guest_time = session.busy();
        let result = enrich_and_transform(session, plan, enricher, &mut guest_time).await;
        (result, guest_time)
    }
}

/// Fetches what the plan asks for, then lets the guest shape the record; `guest_time`
/// follows the session's time in guest calls.
async fn enrich_and_transform<E: Enricher>(
    mut session: Session,
    plan: FetchPlan,
    enricher: &E,
    guest_time: &mut Duration,
) -> Result<Outcome, Error> {
    debug!(get_run = plan.get_run, list_tasks = plan.list_tasks, outputs = ?plan.outputs, "the guest's plan");
    let run_id = plan.identity.run_id.as_str();
    let early_outputs = match &plan.outputs {
        Some(OutputsLocation::Uri(uri)) => Some(uri.as_str()),
        _ => None,
    };
    let (run, tasks, outputs) = tokio::join!(
        when(plan.get_run, || enricher.run(run_id)),
        when(plan.list_tasks, || enricher.tasks(run_id)),
        when(early_outputs.is_some(), || enricher.outputs(early_outputs.unwrap_or_default())),
    );
    let mut errors = Vec::new();
    let run = settle(run, &mut errors)?;
    let tasks = settle(tasks, &mut errors)?;
    let mut outputs = settle(outputs, &mut errors)?;
    let mut outputs_uri = early_outputs.map(str::to_owned);

    if let (Some(OutputsLocation::AfterRun), Some(run_json)) = (&plan.outputs, run.clone()) {
        let (s, replan) = blocking(move || {
            let r = session.plan(Some(&run_json));
            (session, r)
        })
        .await;
        session = s;
        *guest_time = session.busy();
        if let EventPlan::Process(FetchPlan { outputs: Some(OutputsLocation::Uri(uri)), .. }) = replan? {
            outputs = settle(Some(enricher.outputs(&uri).await), &mut errors)?;
            outputs_uri = Some(uri);
        }
    }
    if plan.outputs.is_some() && outputs.is_none() {
        match &outputs_uri {
            Some(uri) => {
                info!(outputs = %uri, "no outputs.json (Nextflow runs write none): the record has no output_mapping")
            }
            None => info!("the run names no output location: the record has no output_mapping"),
        }
    }

    let context = Context { run, tasks, outputs, errors };
    let (session, outcome) = blocking(move || {
        let r = session.transform(&context);
        (session, r)
    })
    .await;
    *guest_time = session.busy();
    let stderr = session.stderr();
    if !stderr.is_empty() {
        debug!(guest_stderr = %stderr, "the guest wrote to stderr");
    }
    Ok(outcome?)
}

/// The span for one event: run id, status and event id on every line.
pub fn event_span(id: &EventIdentity) -> Span {
    info_span!("event", run_id = %id.run_id, status = %id.status, event_id = id.event_id.as_deref().unwrap_or("-"))
}

/// Runs the fetch only when the plan asks for it.
async fn when<T, F: Future<Output = Fetched<T>>>(wanted: bool, fetch: impl FnOnce() -> F) -> Option<Fetched<T>> {
    if wanted { Some(fetch().await) } else { None }
}

/// A permanent failure becomes an enrichment error; a transient one fails the event.
fn settle<T>(fetched: Option<Fetched<T>>, errors: &mut Vec<String>) -> Result<Option<T>, Error> {
    match fetched {
        None | Some(Ok(None)) => Ok(None),
        Some(Ok(Some(value))) => Ok(Some(value)),
        Some(Err(FetchError::Permanent(why))) => {
            errors.push(why);
            Ok(None)
        }
        Some(Err(FetchError::Transient(e))) => Err(Error::Enrichment(e)),
    }
}

/// Where records are archived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveTarget {
    pub bucket: String,
    pub prefix: String,
}

impl ArchiveTarget {
    /// The object key for an outcome's key parts (SPEC section 6): the event's UTC time and
    /// id, or else the current time and a fresh UUID v4. The guest is not trusted with the
    /// key's shape: a part that is not `YYYYMMDD_HHMMSS`, or not an id of letters, digits,
    /// `-`, `_` and `.` (at most 128), is replaced as if it were missing.
    pub fn key(&self, parts: &crate::guest::ArchiveKey, now: SystemTime) -> String {
        let timestamp = parts.timestamp.clone().filter(|t| valid_timestamp(t)).unwrap_or_else(|| compact_utc(now));
        let id = parts.id.clone().filter(|i| valid_id(i)).unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        if self.prefix.is_empty() {
            format!("event_{timestamp}_{id}.json")
        } else {
            format!("{}/event_{timestamp}_{id}.json", self.prefix)
        }
    }
}

/// `YYYYMMDD_HHMMSS`.
fn valid_timestamp(t: &str) -> bool {
    t.len() == 15 && t.bytes().enumerate().all(|(i, b)| if i == 8 { b == b'_' } else { b.is_ascii_digit() })
}

/// One path segment of plain characters.
fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id != "."
        && id != ".."
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// `YYYYMMDD_HHMMSS` in UTC.
fn compact_utc(t: SystemTime) -> String {
    let iso = aws_sdk_s3::primitives::DateTime::from(t)
        .fmt(aws_sdk_s3::primitives::DateTimeFormat::DateTime)
        .expect("the current time is representable");
    // 2026-11-29T14:05:09Z (a fraction may follow the seconds)
    format!("{}{}{}_{}{}{}", &iso[0..4], &iso[5..7], &iso[8..10], &iso[11..13], &iso[14..16], &iso[17..19])
}

/// The outcome of an archive write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// The object was created.
    Written,
    /// An object was already at that key (a retried or re-delivered event).
    AlreadyArchived,
}

/// The data lake.
pub trait Archive: Sync {
    /// Stores `body` at `key` unless an object is already there.
    fn put_new(&self, bucket: &str, key: &str, body: Vec<u8>) -> impl Future<Output = Result<Stored, String>> + Send;
}

/// What the WES API did with a callback that did not fail the invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// 2xx.
    Accepted(u16),
    /// 404, 409 or 422: refused for good; logged at ERROR.
    Refused { status: u16, excerpt: String },
}

/// The NGS360 WES API.
pub trait Notifier: Sync {
    /// Posts the record; `Err` (with a message free of the key) fails the invocation.
    fn notify(&self, record: &str) -> impl Future<Output = Result<Delivery, String>> + Send;
}

/// What happened to the callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallbackResult {
    Sent(u16),
    Skipped(String),
    Refused(u16),
}

/// One processed event, for the Lambda response and the CLI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    Ignored(String),
    Processed { status: String, uri: String, stored: Stored, callback: CallbackResult, guest: String },
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
            Report::Processed { status, uri, stored, callback, guest } => serde_json::json!({
                "statusCode": 200,
                "body": format!("Event processed, status: {status} -> {uri}"),
                "outcome": "processed",
                "archive": match stored { Stored::Written => "written", Stored::AlreadyArchived => "already-archived" },
                "callback": match callback {
                    CallbackResult::Sent(code) => format!("sent (HTTP {code})"),
                    CallbackResult::Skipped(why) => format!("skipped: {why}"),
                    CallbackResult::Refused(code) => format!("refused by the WES API (HTTP {code})"),
                },
                "guest": guest,
            }),
        }
    }
}

/// Everything one event needs: the guest and the three capabilities.
pub struct Handler<E, A, N> {
    pub guest: crate::refresh::GuestSlot,
    /// Looks for a new guest component between events (`GUEST_REFRESH_SECONDS`).
    pub refresher: Option<Arc<crate::refresh::Refresher>>,
    /// Writes one EMF line per event (Lambda mode).
    pub metrics: Option<Emf>,
    pub enricher: E,
    pub archive: A,
    pub notifier: N,
    pub target: ArchiveTarget,
}

impl<E: Enricher, A: Archive, N: Notifier> Handler<E, A, N> {
    /// Processes one event. `Ok` only when the invocation should succeed. With `metrics`
    /// set, writes the event's EMF line, whatever the outcome.
    pub async fn handle(&self, event: Arc<[u8]>) -> Result<Report, Error> {
        let started = Instant::now();
        let mut m = EventMetrics { status: "INVALID".into(), ..EventMetrics::default() };
        let result = self.handle_measured(event, started, &mut m).await;
        m.failed = result.is_err();
        m.total = started.elapsed();
        if let Some(emf) = &self.metrics {
            emf.emit(&m);
        }
        result
    }

    async fn handle_measured(&self, event: Arc<[u8]>, started: Instant, m: &mut EventMetrics) -> Result<Report, Error> {
        let guest = self.guest.current();
        if let Some(refresher) = &self.refresher {
            refresher.poke();
        }
        let run = match plan(&guest, event).await {
            Ok(Planned::Run(run)) => run,
            Ok(Planned::Ignored(why, guest_time)) => {
                m.status = "IGNORED".into();
                m.guest = guest_time;
                info!(guest = %guest.label(), "event ignored: {why}");
                return Ok(Report::Ignored(why));
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
        let span = run.span();
        async {
            let (shaped, guest_time) = run.shape_timed(&self.enricher).await;
            m.guest = guest_time;
            let result = match shaped {
                Ok(outcome) => self.finish(&guest, outcome, started, m).await,
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

    async fn finish(
        &self,
        guest: &Guest,
        outcome: Outcome,
        started: Instant,
        m: &mut EventMetrics,
    ) -> Result<Report, Error> {
        m.enrichment_errors = outcome.enrichment_errors.len();
        for e in &outcome.enrichment_errors {
            warn!("enrichment error: {e}");
        }
        for note in &outcome.notes {
            info!("{note}");
        }
        let key = self.target.key(&outcome.archive_key, SystemTime::now());
        let uri = format!("s3://{}/{key}", self.target.bucket);
        let send = matches!(outcome.callback, Callback::Send);
        let body = outcome.record.clone().into_bytes();
        let (stored, delivered) = tokio::join!(self.archive.put_new(&self.target.bucket, &key, body), async {
            if send { Some(self.notifier.notify(&outcome.record).await) } else { None }
        });
        let callback = match (&outcome.callback, delivered) {
            (Callback::Skip(why), _) => {
                info!("callback skipped: {why}");
                Ok(CallbackResult::Skipped(why.clone()))
            }
            (Callback::Send, Some(Ok(Delivery::Accepted(code)))) => {
                info!(http_status = code, "callback accepted");
                Ok(CallbackResult::Sent(code))
            }
            (Callback::Send, Some(Ok(Delivery::Refused { status, excerpt }))) => {
                error!(http_status = status, body = %excerpt, "the WES API refused the event for good; it stays archived");
                Ok(CallbackResult::Refused(status))
            }
            (Callback::Send, Some(Err(why))) => Err(why),
            (Callback::Send, None) => unreachable!("a callback to send was sent"),
        };
        m.archive = stored.as_ref().ok().copied();
        m.archive_failed = stored.is_err();
        m.callback = Some(match &callback {
            Ok(CallbackResult::Sent(_)) => CallbackMetric::Sent,
            Ok(CallbackResult::Skipped(_)) => CallbackMetric::Skipped,
            Ok(CallbackResult::Refused(_)) => CallbackMetric::Rejected,
            Err(_) => CallbackMetric::Failed,
        });
        let result = match (stored, callback) {
            (Ok(stored), Ok(callback)) => {
                let elapsed_ms = started.elapsed().as_millis() as u64;
                match stored {
                    Stored::Written => info!(archive = %uri, guest = %guest.label(), elapsed_ms, "event archived"),
                    Stored::AlreadyArchived => {
                        info!(archive = %uri, guest = %guest.label(), elapsed_ms, "event already archived (re-delivery)")
                    }
                }
                return Ok(Report::Processed {
                    status: outcome.identity.status,
                    uri,
                    stored,
                    callback,
                    guest: guest.label(),
                });
            }
            (Ok(_), Err(callback)) => Error::Callback(callback),
            (Err(reason), Ok(_)) => Error::Archive { uri, reason },
            (Err(reason), Err(callback)) => Error::ArchiveAndCallback { uri, reason, callback },
        };
        Err(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guest::ArchiveKey;

    #[test]
    fn key_uses_event_parts_and_prefix() {
        let t = ArchiveTarget { bucket: "b".into(), prefix: "omics-run-events".into() };
        let parts = ArchiveKey { timestamp: Some("20260302_140509".into()), id: Some("e-1".into()) };
        assert_eq!(t.key(&parts, SystemTime::UNIX_EPOCH), "omics-run-events/event_20260302_140509_e-1.json");
        let bare = ArchiveTarget { bucket: "b".into(), prefix: String::new() };
        assert_eq!(bare.key(&parts, SystemTime::UNIX_EPOCH), "event_20260302_140509_e-1.json");
    }

    #[test]
    fn key_parts_of_the_wrong_shape_are_not_trusted() {
        let t = ArchiveTarget { bucket: "b".into(), prefix: "p".into() };
        for (ts, id) in [("2026-03-02", "e-1"), ("20260302_140509", "../../etc"), ("20260302_140509", "a/b"), ("x", "")]
        {
            let key = t.key(&ArchiveKey { timestamp: Some(ts.into()), id: Some(id.into()) }, SystemTime::UNIX_EPOCH);
            let rest = key.strip_prefix("p/event_").unwrap();
            assert!(!rest.contains('/'), "{key}");
            assert!(rest.ends_with(".json"), "{key}");
            if ts == "2026-03-02" || ts == "x" {
                assert!(rest.starts_with("19700101_000000_"), "{key}");
            }
        }
    }

    #[test]
    fn key_falls_back_to_now_and_a_fresh_uuid() {
        let t = ArchiveTarget { bucket: "b".into(), prefix: "p".into() };
        let parts = ArchiveKey { timestamp: None, id: None };
        let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(1_772_460_309_250);
        let key = t.key(&parts, at);
        assert!(key.starts_with("p/event_20260302_140509_"), "{key}");
        let id = key.trim_start_matches("p/event_20260302_140509_").trim_end_matches(".json");
        let parsed = uuid::Uuid::parse_str(id).unwrap();
        assert_eq!(parsed.get_version_num(), 4);
        assert_ne!(t.key(&parts, at), key, "each fallback UUID is fresh");
    }
}
