//! The ports: the small traits through which the pipeline reaches the world, and the types
//! that cross them. Adapters (`adapters/`) implement them with AWS and HTTP; the offline
//! commands implement the enrichment port with a context file; tests with loopback peers.

use std::future::Future;

use crate::error::{ArchiveError, CallbackError, FetchError};
use crate::sandbox::{TaskList, TaskRequest};

/// A fetch's result: `Ok(None)` when there is nothing to fetch (no such `outputs.json`, or a
/// context file without that part).
pub type Fetched<T> = Result<Option<T>, FetchError>;

/// Where the guest's inputs come from: HealthOmics and S3, or a context file.
pub trait Enricher: Sync {
    /// The run, as GetRun returns it, in JSON with the AWS CLI's keys.
    fn run(&self, run_id: &str) -> impl Future<Output = Fetched<String>> + Send;
    /// The run's tasks within `request`'s bounds (which the caller has already capped at
    /// `sandbox::TASKS_MAX`): the first ones in ListRunTasks order, whether there are more,
    /// and, when asked and there are more, the FAILED ones.
    fn tasks(&self, run_id: &str, request: TaskRequest) -> impl Future<Output = Fetched<TaskList>> + Send;
    /// An object's bytes, by `s3://` URI.
    fn outputs(&self, uri: &str) -> impl Future<Output = Fetched<Vec<u8>>> + Send;
}

/// What an archive write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Archived {
    /// The object was created.
    Written,
    /// An object was already at that key (a retried or re-delivered event): kept as it is.
    AlreadyThere,
}

impl Archived {
    /// The name used in the Lambda response and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Archived::Written => "written",
            Archived::AlreadyThere => "already-there",
        }
    }
}

/// The data lake.
pub trait Archive: Sync {
    /// Stores `body` at `key` unless an object is already there.
    fn put_new(
        &self,
        bucket: &str,
        key: &str,
        body: Vec<u8>,
    ) -> impl Future<Output = Result<Archived, ArchiveError>> + Send;
}

/// What the WES API did with a callback that does not fail the invocation, and the origin
/// that answered (`https://host:443`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// 2xx, with a short excerpt of the answer ("No state change", ...).
    Accepted { status: u16, excerpt: String, origin: String },
    /// 404 naming the run, 409 or 422: rejected for good; logged at ERROR and counted.
    Rejected { status: u16, excerpt: String, origin: String },
}

impl Delivery {
    /// The origin that answered.
    pub fn origin(&self) -> &str {
        match self {
            Delivery::Accepted { origin, .. } | Delivery::Rejected { origin, .. } => origin,
        }
    }
}

/// Where a run's callback goes (behaviour §7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `API_SERVER`'s route, under whichever mount the service answers at.
    Configured,
    /// The URL the run's `callback_url` tag names, already checked against the allow-list.
    Tagged(String),
}

/// The NGS360 WES API.
pub trait Notifier: Sync {
    /// The route for a run whose `callback_url` tag is `tag`, or why the tag may not be used
    /// (the callback then takes the configured route).
    fn route(&self, tag: &str) -> Result<Route, String>;
    /// Posts the record along `route`.
    fn notify(&self, record: &str, route: &Route) -> impl Future<Output = Result<Delivery, CallbackError>> + Send;
}
