//! The sandbox: all wasmtime code. A [`Runtime`] (the engine, the linkers and the epoch
//! ticker) loads components under the trust rule into [`Guest`]s; each event runs in a
//! [`Session`], a fresh store and instance with its own limits.
//!
//! - `engine.rs`: the engine settings, shared with the build script;
//! - `runtime.rs`: the engine, loading, the trust rule, interface versions, precompiling;
//! - `code.rs`: making guest code executable; the bundled guest used in place;
//! - `wasi.rs`: the WASI set-up a guest sees (no capabilities) and the store's data;
//! - `session.rs`: one event's instance, the calls and their limits, error classification;
//! - `abi.rs`: lifting a guest's answers with their sizes checked before the copy;
//! - `types.rs`: those answers as the host uses them, every guest string made plain;
//! - `limits.rs`: the limits and the cutting and escaping of a guest's text.

mod abi;
mod code;
pub mod engine;
mod limits;
mod record;
mod runtime;
mod session;
mod types;
mod wasi;

pub use abi::{LIST_MAX, RECORD_MAX, TEXT_MAX};
pub use limits::{GUEST_MEMORY_MAX, Limits, plain_text};
pub use runtime::{
    BUNDLED_NAME, BUNDLED_SHA256, BUNDLED_TARGET, BUNDLED_VERSION, Runtime, WIT_INTERFACE, WIT_VERSION,
    bundled_in_place, precompile, semver_compatible, sha256_hex,
};
pub use session::{Guest, Session};
pub use types::{ArchiveKey, Callback, EventIdentity, EventPlan, FetchPlan, GuestInfo, Outcome, OutputsLocation};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "omics-event-processor",
    });
}

pub use bindings::exports::ngs360::omics_events::processor::{Context, TaskList, TaskRequest};

/// The most tasks the host reads for one event, whatever a guest asks (twice this with the
/// failed ones): it bounds the host's memory for runs of any size (behaviour §4).
pub const TASKS_MAX: u32 = 10_000;

/// Runs `f` on the blocking pool: guest calls, loading and compiling must not hold up the
/// async runtime, and WASI's synchronous bindings must not run on one of its workers.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(value) => value,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}
