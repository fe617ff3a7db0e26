//! The adapter: WIT types in, the standard shaping, your rules, WIT types out.

mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "omics-event-processor",
    });
}

use crate::rules;
use bindings::exports::ngs360::omics_events::processor::{self as wit, Guest, GuestEvent};
use ngs360_omics_guest::model;

struct Component;

impl Guest for Component {
    type Event = Event;

    fn describe() -> wit::GuestInfo {
        wit::GuestInfo { name: env!("CARGO_PKG_NAME").into(), version: env!("CARGO_PKG_VERSION").into() }
    }
}

/// One parsed event (the WIT `event` resource).
pub struct Event(ngs360_omics_guest::Event);

impl GuestEvent for Event {
    fn parse(bytes: Vec<u8>) -> Result<wit::Event, wit::TransformError> {
        ngs360_omics_guest::Event::parse(&bytes).map(|e| wit::Event::new(Event(e))).map_err(error)
    }

    fn plan(&self, run: Option<String>) -> Result<wit::EventPlan, wit::TransformError> {
        Ok(match self.0.plan(run.as_deref()).map_err(error)? {
            model::EventPlan::Ignore(why) => wit::EventPlan::Ignore(why),
            model::EventPlan::Process(p) => wit::EventPlan::Process(wit::FetchPlan {
                identity: identity(p.identity),
                get_run: p.get_run,
                tasks: p.tasks.map(|t| wit::TaskRequest { limit: t.limit, failed: t.failed }),
                outputs: p.outputs.map(|o| match o {
                    model::OutputsLocation::Uri(uri) => wit::OutputsLocation::Uri(uri),
                    model::OutputsLocation::AfterRun => wit::OutputsLocation::AfterRun,
                    model::OutputsLocation::Unknown => wit::OutputsLocation::Unknown,
                }),
            }),
        })
    }

    fn transform(&self, context: wit::Context) -> Result<wit::Outcome, wit::TransformError> {
        let tasks = context.tasks.as_ref().map(|t| model::TaskList {
            items: &t.items,
            more: t.more,
            failed: t.failed.as_deref(),
        });
        let ctx = model::Context {
            run: context.run.as_deref(),
            tasks,
            outputs: context.outputs.as_deref(),
            errors: &context.errors,
        };
        let mut o = self.0.transform(&ctx).map_err(error)?;
        rules::apply(&mut o).map_err(error)?;
        Ok(wit::Outcome {
            identity: identity(o.identity),
            record: o.record,
            callback: match o.callback {
                model::Callback::Send => wit::Callback::Send,
                model::Callback::Skip(why) => wit::Callback::Skip(why),
            },
            archive_key: wit::ArchiveKey { timestamp: o.archive_key.timestamp, id: o.archive_key.id },
            enrichment_errors: o.enrichment_errors,
            notes: o.notes,
        })
    }
}

fn identity(i: model::Identity) -> wit::EventIdentity {
    wit::EventIdentity { run_id: i.run_id, status: i.status, event_id: i.event_id }
}

fn error(e: model::Error) -> wit::TransformError {
    match e {
        model::Error::InvalidJson(m) => wit::TransformError::InvalidJson(m),
        model::Error::NotAnObject(kind) => wit::TransformError::NotAnObject(kind.into()),
        model::Error::MissingField(f) => wit::TransformError::MissingField(f),
        model::Error::InvalidField { field, reason } => {
            wit::TransformError::InvalidField(wit::FieldProblem { field, reason })
        }
        model::Error::TooDeep(limit) => wit::TransformError::TooDeep(limit),
        model::Error::InvalidContext(m) => wit::TransformError::InvalidContext(m),
    }
}

bindings::export!(Component with_types_in bindings);
