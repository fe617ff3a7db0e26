//! The guest's part of an event: admit it (what is it, what must be fetched), fetch what it
//! asked for concurrently, and let it shape the record.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tracing::{Span, debug, info, info_span};

use crate::error::{Error, FetchError};
use crate::ports::{Enricher, Fetched};
use crate::sandbox::{
    Context, EventIdentity, EventPlan, FetchPlan, Guest, Outcome, OutputsLocation, Session, TASKS_MAX, TaskRequest,
};

/// The guest's first answer about an event.
pub enum Admission {
    /// Not a run status change: why, and the time the guest took to say so.
    Ignored { reason: String, guest_time: Duration },
    /// A run status change, with the guest instance that will shape it.
    Run(Box<RunEvent>),
}

/// A run event the guest admitted, and the instance (a fresh store) that holds it.
pub struct RunEvent {
    session: Session,
    plan: FetchPlan,
}

/// Asks a fresh instance of the guest what `event` is and what to fetch for it.
pub async fn admit(guest: &Guest, event: Arc<[u8]>) -> Result<Admission, Error> {
    let mut session = guest.open(&event).await?;
    Ok(match session.plan(None).await? {
        EventPlan::Ignore(reason) => Admission::Ignored { reason, guest_time: session.busy() },
        EventPlan::Process(plan) => Admission::Run(Box::new(RunEvent { session, plan })),
    })
}

impl RunEvent {
    /// Who the event is about.
    pub fn identity(&self) -> &EventIdentity {
        &self.plan.identity
    }

    /// Fetches what the guest asked for (concurrently), and lets it shape the record.
    pub async fn shape<E: Enricher>(self, enricher: &E) -> Result<Outcome, Error> {
        self.shape_timed(enricher).await.0.map(|s| s.outcome)
    }

    /// [`RunEvent::shape`], with what was fetched of the run and the time spent in the guest
    /// (its plan included).
    pub async fn shape_timed<E: Enricher>(self, enricher: &E) -> (Result<Shaped, Error>, Duration) {
        let RunEvent { session, plan } = self;
        let mut guest_time = session.busy();
        let result = enrich_and_transform(session, plan, enricher, &mut guest_time).await;
        (result, guest_time)
    }
}

/// A shaped event, and what the guest saw: the context (the run's description, GetRun's
/// JSON, heals a queued WES run) and which fetch each of its `errors` came from (`run`,
/// `tasks` or `outputs`), for a captured case.
pub struct Shaped {
    pub outcome: Outcome,
    pub context: Context,
    pub error_parts: Vec<&'static str>,
}

/// Fetches what the plan asks for, then lets the guest shape the record; `guest_time`
/// follows the session's time in guest calls.
async fn enrich_and_transform<E: Enricher>(
    mut session: Session,
    plan: FetchPlan,
    enricher: &E,
    guest_time: &mut Duration,
) -> Result<Shaped, Error> {
    debug!(get_run = plan.get_run, tasks = ?plan.tasks, outputs = ?plan.outputs, "the guest's plan");
    let task_request = plan.tasks.map(|t| TaskRequest { limit: t.limit.min(TASKS_MAX), failed: t.failed });
    let run_id = plan.identity.run_id.as_str();
    let early_outputs = match &plan.outputs {
        Some(OutputsLocation::Uri(uri)) => Some(uri.as_str()),
        _ => None,
    };
    let (run, tasks, outputs) = tokio::join!(
        when(plan.get_run, || enricher.run(run_id)),
        async {
            match task_request {
                Some(request) => Some(enricher.tasks(run_id, request).await),
                None => None,
            }
        },
        when(early_outputs.is_some(), || enricher.outputs(early_outputs.unwrap_or_default())),
    );
    let mut errors = Errors::default();
    let run = errors.settle(run, "run")?;
    let tasks = errors.settle(tasks, "tasks")?;
    let mut outputs = errors.settle(outputs, "outputs")?;
    let mut outputs_uri = early_outputs.map(str::to_owned);

    if let (Some(OutputsLocation::AfterRun), Some(run_json)) = (&plan.outputs, run.as_deref()) {
        let replan = session.plan(Some(run_json)).await;
        *guest_time = session.busy();
        if let EventPlan::Process(FetchPlan { outputs: Some(OutputsLocation::Uri(uri)), .. }) = replan? {
            outputs = errors.settle(Some(enricher.outputs(&uri).await), "outputs")?;
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

    let Errors { errors, parts: error_parts } = errors;
    let context = Context { run, tasks, outputs, errors };
    let outcome = session.transform(&context).await;
    *guest_time = session.busy();
    let stderr = session.stderr();
    if !stderr.is_empty() {
        debug!(guest_stderr = %stderr, "the guest wrote to stderr");
    }
    Ok(Shaped { outcome: outcome?, context, error_parts })
}

/// The span for one event: run id, status, event id and the guest on every line.
pub fn event_span(id: &EventIdentity, guest: &str) -> Span {
    info_span!("event", run_id = %id.run_id, status = %id.status, event_id = id.event_id.as_deref().unwrap_or("-"), guest = %guest)
}

/// Runs the fetch only when the plan asks for it.
async fn when<T, F: Future<Output = Fetched<T>>>(wanted: bool, fetch: impl FnOnce() -> F) -> Option<Fetched<T>> {
    if wanted { Some(fetch().await) } else { None }
}

/// The enrichment errors so far, and the fetch each came from.
#[derive(Default)]
struct Errors {
    errors: Vec<String>,
    parts: Vec<&'static str>,
}

impl Errors {
    /// A permanent failure becomes an enrichment error; any other fails the event.
    fn settle<T>(&mut self, fetched: Option<Fetched<T>>, part: &'static str) -> Result<Option<T>, Error> {
        match fetched {
            None | Some(Ok(None)) => Ok(None),
            Some(Ok(Some(value))) => Ok(Some(value)),
            Some(Err(FetchError::Permanent(why))) => {
                self.errors.push(why);
                self.parts.push(part);
                Ok(None)
            }
            Some(Err(FetchError::Failed(e))) => Err(Error::Enrichment(e)),
        }
    }
}
