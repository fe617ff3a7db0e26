//! The logic that shapes AWS HealthOmics "Run Status Change" events for NGS360.
//!
//! Built for `wasm32-wasip2` this crate is a WebAssembly component exporting
//! `ngs360:omics-events/processor` (see `wit/`); built natively it is a plain library, so the
//! same logic is unit-tested and benchmarked without a runtime. It is pure: no I/O, no
//! environment, no clock, no randomness. The component is `no_std` and imports nothing at
//! all, not even WASI. The component adapter in `component.rs` only converts types.
//!
//! Without its default feature `component`, the crate is a plain `std` library on every
//! target: what the Rust guest template (`examples/rust-guest`) builds on.

#![cfg_attr(all(target_arch = "wasm32", feature = "component"), no_std)]

extern crate alloc;

/// What `std`'s prelude would bring, for the `no_std` component build.
mod prelude {
    pub use alloc::borrow::ToOwned;
    pub use alloc::format;
    pub use alloc::string::{String, ToString};
    pub use alloc::vec::Vec;
}

pub mod context;
pub mod event;
pub mod flatten;
pub mod json;
pub mod logs;
pub mod model;
pub mod outputs;
pub mod record;
mod time;

#[cfg(all(target_arch = "wasm32", feature = "component"))]
mod component;

pub use event::Event;
pub use model::{
    ArchiveKey, Callback, Context, Error, EventPlan, FetchPlan, Identity, Outcome, OutputsLocation, TaskList,
    TaskRequest,
};

use context::Run;
use event::{Kind, is_finished};
#[allow(unused_imports)]
use prelude::*;

/// This component's name, for the host's log lines.
pub const NAME: &str = env!("CARGO_PKG_NAME");
/// This component's version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

impl Event {
    /// Says whether this is a run status change to process and what the host must fetch:
    /// always the run (its tags name the WES run); when the run has finished, its first
    /// tasks and, for a FAILED run that has more, its failed ones (behaviour §4); the
    /// outputs when it completed. `run` is the GetRun JSON, when the host already has it.
    pub fn plan(&self, run: Option<&str>) -> Result<EventPlan, Error> {
        let fields = self.fields();
        let identity = match fields.classify()? {
            Kind::Foreign(why) => return Ok(EventPlan::Ignore(why)),
            Kind::Run(identity) => identity,
        };
        let run = run.map(Run::parse).transpose()?;
        let outputs =
            (identity.status == "COMPLETED").then(|| outputs::locate(&fields, &identity.run_id, run.as_ref()));
        let tasks = is_finished(&identity.status)
            .then(|| TaskRequest { limit: logs::TASK_LOGS_MAX as u32, failed: identity.status == "FAILED" });
        Ok(EventPlan::Process(FetchPlan { get_run: true, tasks, outputs, identity }))
    }

    /// Shapes the record from what the host fetched.
    pub fn transform(&self, ctx: &Context<'_>) -> Result<Outcome, Error> {
        record::transform(self, ctx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(event: &[u8]) -> Result<EventPlan, Error> {
        Event::parse(event)?.plan(None)
    }

    #[test]
    fn completed_runs_need_everything_and_running_ones_only_the_run() {
        let ev = |status: &str| {
            format!(
                r#"{{"source":"aws.omics","detail-type":"Run Status Change","detail":{{"runId":"1","status":"{status}","runOutputUri":"s3://b/1"}}}}"#
            )
        };
        let EventPlan::Process(p) = plan(ev("COMPLETED").as_bytes()).unwrap() else { panic!() };
        assert!(p.get_run);
        assert_eq!(p.tasks, Some(TaskRequest { limit: 1000, failed: false }));
        assert_eq!(p.outputs, Some(OutputsLocation::Uri("s3://b/1/logs/outputs.json".into())));
        let EventPlan::Process(p) = plan(ev("FAILED").as_bytes()).unwrap() else { panic!() };
        assert!(p.get_run && p.outputs.is_none());
        assert_eq!(p.tasks, Some(TaskRequest { limit: 1000, failed: true }));
        let EventPlan::Process(p) = plan(ev("RUNNING").as_bytes()).unwrap() else { panic!() };
        assert!(p.get_run && p.tasks.is_none() && p.outputs.is_none());
    }

    #[test]
    fn foreign_events_are_ignored() {
        assert!(matches!(plan(br#"{"source":"aws.batch","detail-type":"Job"}"#), Ok(EventPlan::Ignore(_))));
    }
}
