//! Where the guest comes from (bundled, a file, an S3 object) and the guest in use,
//! swappable between events.

use std::sync::{Arc, RwLock};

use crate::aws::{GetError, get_object};
use crate::config::GuestSource;
use crate::error::LoadError;
use crate::guest::{Guest, Limits, Runtime};
use crate::pipeline::FetchError;

/// Loads the configured guest. `pinned` is `GUEST_SHA256` (ignored for the bundled guest,
/// which is part of the binary). A component that cannot be fetched, compiled or linked is
/// an error: there is no fallback to other logic.
pub async fn load(
    runtime: &Runtime,
    source: &GuestSource,
    pinned: Option<&str>,
    s3: Option<&aws_sdk_s3::Client>,
    limits: Limits,
) -> Result<Guest, LoadError> {
    let origin = source.to_string();
    let bytes = match source {
        GuestSource::Bundled => return runtime.bundled(limits),
        GuestSource::Path(path) => tokio::fs::read(path)
            .await
            .map_err(|e| LoadError::Read { origin: origin.clone(), reason: e.to_string() })?,
        GuestSource::S3 { bucket, key, version_id } => {
            let Some(s3) = s3 else {
                return Err(LoadError::Read { origin, reason: "no S3 client".into() });
            };
            get_object(s3, bucket, key, version_id.as_deref()).await.map_err(|e| LoadError::Read {
                origin: origin.clone(),
                reason: match e {
                    GetError::NotFound => "no such object".into(),
                    GetError::Fetch(FetchError::Permanent(why)) => why,
                    GetError::Fetch(FetchError::Transient(e)) => e.to_string(),
                },
            })?
        }
    };
    let runtime = runtime.clone();
    let pinned = pinned.map(str::to_owned);
    tokio::task::spawn_blocking(move || runtime.load(&bytes, origin, pinned.as_deref(), limits))
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
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
