//! Where the guest comes from (bundled, a file, an S3 object), the guest in use (swappable
//! between events), and the refresh of an S3 component without a cold start.

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use tracing::{debug, error, info};

use super::aws;
use super::lazy::Lazy;
use super::metrics::Emf;
use super::s3::{get_object, get_object_if_changed};
use super::tls::Tls;
use crate::config::{GuestSource, parse_guest_source};
use crate::error::LoadError;
use crate::sandbox::{Guest, Limits, Runtime};

/// Loads the configured guest; for an S3 source also returns the object's ETag. `pinned`
/// is `GUEST_SHA256` (ignored for the bundled guest, which is part of the binary). A
/// component that cannot be fetched, compiled or linked is an error: there is no fallback
/// to other logic.
pub async fn load(
    runtime: &Runtime,
    source: &GuestSource,
    pinned: Option<&str>,
    s3: &Lazy<aws_sdk_s3::Client>,
    limits: Limits,
) -> Result<(Guest, Option<String>), LoadError> {
    let origin = source.to_string();
    let (bytes, etag) = match source {
        GuestSource::Bundled => return Ok((runtime.bundled(limits).await?, None)),
        GuestSource::Path(path) => (
            tokio::fs::read(path)
                .await
                .map_err(|e| LoadError::Read { origin: origin.clone(), reason: e.to_string() })?,
            None,
        ),
        GuestSource::S3 { bucket, key, version_id } => get_object(s3.get().await, bucket, key, version_id.as_deref())
            .await
            .map_err(|e| LoadError::Read { origin: origin.clone(), reason: e.to_string() })?,
    };
    Ok((compile(runtime, bytes, origin, pinned, limits).await?, etag))
}

/// Loads the guest a command names: `bundled`, a path, or `s3://bucket/key[?versionId=V]`
/// (AWS credentials and region from the environment); a `.cwasm` only when `GUEST_SHA256`
/// pins it.
pub async fn load_named(runtime: &Runtime, name: &str, limits: Limits) -> Result<Guest, LoadError> {
    let unreadable = |reason: String| LoadError::Read { origin: name.into(), reason };
    let source = match name {
        "bundled" => GuestSource::Bundled,
        _ => parse_guest_source(name).map_err(|e| unreadable(e.to_string()))?,
    };
    let s3: Lazy<aws_sdk_s3::Client> = match &source {
        GuestSource::S3 { .. } => {
            let tls = Tls::from_env().map_err(|e| unreadable(e.to_string()))?;
            Lazy::ready(aws::s3_client(&aws::sdk_config(tls.aws()).await))
        }
        _ => Lazy::new(|| async { unreachable!("a path or the bundled guest") }),
    };
    let pinned = std::env::var("GUEST_SHA256").ok().filter(|s| !s.trim().is_empty());
    Ok(load(runtime, &source, pinned.as_deref().map(str::trim), &s3, limits).await?.0)
}

/// Compiles (or, when pinned, deserializes) a component and describes it.
async fn compile(
    runtime: &Runtime,
    bytes: Vec<u8>,
    origin: String,
    pinned: Option<&str>,
    limits: Limits,
) -> Result<Guest, LoadError> {
    runtime.load(bytes, origin, pinned, limits).await
}

/// Holds the guest that shapes the next event. A swap is atomic: an event in flight keeps
/// the guest it started with.
#[derive(Clone)]
pub struct GuestSlot {
    current: Arc<RwLock<Guest>>,
}

impl GuestSlot {
    pub fn new(guest: Guest) -> GuestSlot {
        GuestSlot { current: Arc::new(RwLock::new(guest)) }
    }

    /// The guest for the next event.
    pub fn current(&self) -> Guest {
        self.current.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Puts `guest` in place for the events that start from now on.
    pub fn swap(&self, guest: Guest) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = guest;
    }
}

/// Looks for a new version of an S3 component (`GUEST_REFRESH_SECONDS`): at most every
/// `every`, a conditional GET on the ETag; a new object that loads is swapped in for the
/// events that follow; one that does not is refused, logged at ERROR, counted
/// (`GuestRefreshFailed`), and not compiled again until the object changes; the running
/// guest stays. The ETag of the running guest changes only once a new one has loaded, and
/// a check that fails or panics half-way leaves nothing behind: the next one starts afresh.
pub struct Refresher {
    runtime: Runtime,
    s3: Lazy<aws_sdk_s3::Client>,
    bucket: String,
    key: String,
    pinned: Option<String>,
    limits: Limits,
    every: Duration,
    slot: GuestSlot,
    metrics: Option<Emf>,
    state: Arc<Mutex<RefreshState>>,
}

#[derive(Debug)]
struct RefreshState {
    /// When the last check ended.
    last: Instant,
    /// A check is running.
    running: bool,
    /// The ETag of the object the running guest was loaded from.
    loaded: Option<String>,
    /// The ETag of an object that was fetched and refused.
    refused: Option<String>,
}

/// Marks a check as running; dropped when the check ends, however it ends (a panic
/// unwinds the check's task and drops it too), which makes the next check possible.
struct Running(Arc<Mutex<RefreshState>>);

impl Drop for Running {
    fn drop(&mut self) {
        let mut state = self.0.lock().unwrap_or_else(|e| e.into_inner());
        state.running = false;
        state.last = Instant::now();
    }
}

/// Claims the next check when one is due and none is running.
fn claim(state: &Arc<Mutex<RefreshState>>, every: Duration) -> Option<Running> {
    let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
    if s.running || s.last.elapsed() < every {
        return None;
    }
    s.running = true;
    Some(Running(state.clone()))
}

impl Refresher {
    /// A refresher for `source`, when it is an unversioned S3 object and `every` is not zero
    /// (a `versionId` names an object that cannot change).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        runtime: Runtime,
        s3: Lazy<aws_sdk_s3::Client>,
        source: &GuestSource,
        pinned: Option<String>,
        limits: Limits,
        every: Duration,
        slot: GuestSlot,
        etag: Option<String>,
    ) -> Option<Arc<Refresher>> {
        let GuestSource::S3 { bucket, key, version_id: None } = source else { return None };
        if every.is_zero() {
            return None;
        }
        Some(Arc::new(Refresher {
            runtime,
            s3,
            bucket: bucket.clone(),
            key: key.clone(),
            pinned,
            limits,
            every,
            slot,
            metrics: None,
            state: Arc::new(Mutex::new(RefreshState {
                last: Instant::now(),
                running: false,
                loaded: etag,
                refused: None,
            })),
        }))
    }

    /// Counts failed refreshes in these metrics.
    pub fn with_metrics(mut self: Arc<Self>, metrics: Emf) -> Arc<Self> {
        if let Some(this) = Arc::get_mut(&mut self) {
            this.metrics = Some(metrics);
        }
        self
    }

    /// Called as an invocation starts: when a check is due, it runs in the background,
    /// beside the event, and what it finds serves the events after this one.
    pub fn poke(self: &Arc<Self>) {
        let Some(running) = claim(&self.state, self.every) else { return };
        let this = self.clone();
        tokio::spawn(async move {
            let _running = running;
            this.check().await;
        });
    }

    /// One conditional GET, and a swap if the object changed and loads.
    pub async fn check(&self) {
        let origin = format!("s3://{}/{}", self.bucket, self.key);
        let (loaded, refused) = {
            let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            (state.loaded.clone(), state.refused.clone())
        };
        let ask = refused.clone().or(loaded.clone());
        let fetched = get_object_if_changed(self.s3.get().await, &self.bucket, &self.key, None, ask.as_deref()).await;
        let (bytes, etag) = match fetched {
            Ok(None) => {
                debug!(guest_source = %origin, "guest component unchanged");
                return;
            }
            Ok(Some(found)) => found,
            Err(e) => {
                error!(guest_source = %origin, "cannot look for a new guest component: {e}; keeping the current one");
                self.failed();
                return;
            }
        };
        if etag.is_some() && etag == loaded {
            // Back to the object the running guest came from.
            self.state.lock().unwrap_or_else(|e| e.into_inner()).refused = None;
            return;
        }
        let current = self.slot.current().label();
        match compile(&self.runtime, bytes, origin.clone(), self.pinned.as_deref(), self.limits).await {
            Ok(guest) => {
                info!(guest = %guest.label(), previous = %current, guest_source = %origin, "new guest component in place for the next events");
                self.slot.swap(guest);
                let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
                state.loaded = etag;
                state.refused = None;
            }
            Err(e) => {
                error!(guest = %current, "new guest component refused, keeping {current}: {e}");
                self.state.lock().unwrap_or_else(|e| e.into_inner()).refused = etag;
                self.failed();
            }
        }
    }

    fn failed(&self) {
        if let Some(metrics) = &self.metrics {
            metrics.refresh_failed(&self.slot.current().label());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_check_that_panics_does_not_stop_the_next_ones() {
        let state = Arc::new(Mutex::new(RefreshState {
            last: Instant::now() - Duration::from_secs(60),
            running: false,
            loaded: None,
            refused: None,
        }));
        let s = state.clone();
        let task = tokio::spawn(async move {
            let _running = claim(&s, Duration::from_secs(1)).expect("due");
            panic!("a check that panics");
        });
        assert!(task.await.unwrap_err().is_panic());
        let after = state.lock().unwrap();
        assert!(!after.running, "the claim was released by the panic's unwinding");
        drop(after);
        let next = claim(&state, Duration::ZERO);
        assert!(next.is_some(), "the next check can run");
        assert!(claim(&state, Duration::ZERO).is_none(), "but only one at a time");
    }
}
