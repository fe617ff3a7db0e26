//! The engine, and loading components under the trust rule: a `.wasm` is compiled here, so
//! it is only ever sandboxed code; a precompiled `.cwasm` is native code and loads only
//! when the deployer pinned its sha256. A component must export the processor interface at
//! a version this host can serve.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use wasmtime::Engine;
use wasmtime::component::{Component, ComponentExportIndex, InstancePre, Linker};

use super::bindings::OmicsEventProcessorPre;
use super::code::{CodeMemory, PageAligned};
use super::engine;
use super::limits::{Limits, TICK, plain_text};
use super::session::{Exports, Guest};
use super::types::GuestInfo;
use super::wasi::State;
use crate::error::LoadError;

/// The WIT interface a guest must export, without its version.
pub const WIT_INTERFACE: &str = "ngs360:omics-events/processor";
/// The interface version this host was built against (`wit/processor.wit`).
pub const WIT_VERSION: &str = "0.2.0";

/// The guest bundled in this binary, precompiled for `BUNDLED_TARGET` by the build script.
static BUNDLED: &PageAligned<[u8]> = &PageAligned(*include_bytes!(concat!(env!("OUT_DIR"), "/guest.cwasm")));
/// The target the bundled guest was precompiled for.
pub const BUNDLED_TARGET: &str = env!("NGS360_BUNDLED_GUEST_TARGET");
/// The sha256 of the bundled guest's component (the `.wasm` the build made).
pub const BUNDLED_SHA256: &str = env!("NGS360_BUNDLED_GUEST_SHA256");
/// The bundled guest's name and version, as its `describe` export gives them (a test
/// checks): the guest crate's, which shares the workspace's version. Known here, loading
/// the bundled guest needs no instance (0.25 ms of the cold start).
pub const BUNDLED_NAME: &str = "ngs360-omics-guest";
/// See [`BUNDLED_NAME`].
pub const BUNDLED_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Whether a load of the bundled guest has claimed its bytes, to run from them in place.
static IN_PLACE_CLAIMED: AtomicBool = AtomicBool::new(false);
/// Whether that load succeeded.
static IN_PLACE_LOADED: AtomicBool = AtomicBool::new(false);

/// Whether the bundled guest's code runs from this binary's own pages (the first load of it
/// in a process, on a machine with 4 KiB pages), rather than from a copy.
pub fn bundled_in_place() -> bool {
    IN_PLACE_LOADED.load(Ordering::Acquire)
}

/// The bundled guest, and whether it is used in place: the first load in a process uses
/// the bytes where they are, and every later load copies them (wasmtime registers each
/// loaded component's code by its address, once).
///
/// # Safety
/// `BUNDLED` was produced by this crate's build script with this wasmtime and these engine
/// settings, and is never written to.
unsafe fn deserialize_bundled(engine: &Engine) -> wasmtime::Result<(Component, bool)> {
    if let Some(bytes) = super::code::in_place(BUNDLED)
        && !IN_PLACE_CLAIMED.swap(true, Ordering::AcqRel)
    {
        // SAFETY: see above; the bytes are 'static.
        if let Ok(component) = unsafe { Component::deserialize_raw(engine, bytes) } {
            IN_PLACE_LOADED.store(true, Ordering::Release);
            return Ok((component, true));
        }
    }
    // SAFETY: see above.
    Ok((unsafe { Component::deserialize(engine, &BUNDLED.0) }?, false))
}

fn engine_error(e: wasmtime::Error) -> LoadError {
    LoadError::Engine(format!("{e:#}"))
}

/// The process's wasmtime engine, with its epoch ticker, and the linkers. Made once.
#[derive(Clone)]
pub struct Runtime {
    engine: Engine,
    /// For components that import nothing, as the bundled guest.
    bare: Arc<Linker<State>>,
    /// For components that import WASI interfaces (a guest built with `std`, or with
    /// componentize-py): made when the first such component is loaded (0.22 ms).
    wasi: Arc<OnceLock<Linker<State>>>,
}

impl Runtime {
    /// Makes the engine for this machine and starts the epoch ticker. Each guest's memory
    /// limit is its store's (`Limits::memory`).
    pub fn new() -> Result<Runtime, LoadError> {
        let mut config = engine::compile_config(None).map_err(engine_error)?;
        // wasmtime's on-demand instance allocator, not the pooling one: setting up a pool
        // cost 0.3 ms of every cold start here (4.82 against 4.52 ms, spawn to the first
        // /next, 41 spawns each), and saves 17 us per event (106 against 123 us, 2 KB
        // event); most events here start a fresh process. Memory is capped by the store's
        // limiter either way.
        // Enough frames to place a trap; a runaway recursion would otherwise list thousands.
        config.wasm_backtrace_max_frames(std::num::NonZeroUsize::new(16));
        config.with_custom_code_memory(Some(Arc::new(CodeMemory::new(BUNDLED))));
        let engine = Engine::new(&config).map_err(engine_error)?;
        start_ticker(&engine);
        Ok(Runtime { bare: Arc::new(Linker::new(&engine)), engine, wasi: Arc::default() })
    }

    /// The linker for `component`: the bare one when it imports nothing, else the WASI one.
    fn linker(&self, component: &Component) -> Result<&Linker<State>, LoadError> {
        if component.component_type().imports(&self.engine).next().is_none() {
            return Ok(&self.bare);
        }
        if let Some(linker) = self.wasi.get() {
            return Ok(linker);
        }
        let mut linker = Linker::new(&self.engine);
        // The asynchronous bindings: a WASI call that waits (a sleep, a poll) is a future,
        // which the call's timeout can drop; and they never start a runtime of their own.
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(engine_error)?;
        Ok(self.wasi.get_or_init(|| linker))
    }

    /// The engine, for precompiling components.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The guest bundled in this binary.
    pub async fn bundled(&self, limits: Limits) -> Result<Guest, LoadError> {
        self.bundled_now(limits)
    }

    /// The guest bundled in this binary, on this thread: no instance is needed, its name
    /// and version are known.
    pub fn bundled_now(&self, limits: Limits) -> Result<Guest, LoadError> {
        // SAFETY: these bytes were produced by this crate's build script with this wasmtime
        // and these engine settings; they are part of the binary itself.
        let (component, _) = unsafe { deserialize_bundled(&self.engine) }
            .map_err(|e| LoadError::Compile { origin: "bundled guest".into(), reason: format!("{e:#}") })?;
        let (pre, exports) = self.link(&component, "bundled")?;
        let info = GuestInfo { name: BUNDLED_NAME.into(), version: BUNDLED_VERSION.into() };
        Ok(Guest::known(pre, exports, info, "bundled".into(), BUNDLED_SHA256.into(), limits))
    }

    /// A component from its bytes, under the trust rule: a `.wasm` component is compiled
    /// here (on the blocking pool), so it is only ever sandboxed code; precompiled
    /// (`.cwasm`) bytes are native code and load only when `pinned` (`GUEST_SHA256`, set by
    /// the deployer) equals their sha256. A pin applies to a `.wasm` too.
    pub async fn load(
        &self,
        bytes: Vec<u8>,
        origin: String,
        pinned: Option<&str>,
        limits: Limits,
    ) -> Result<Guest, LoadError> {
        let actual = sha256_hex(&bytes);
        if let Some(pinned) = pinned {
            if !actual.eq_ignore_ascii_case(pinned) {
                return Err(LoadError::Digest { origin, actual, pinned: pinned.to_owned() });
            }
            if Engine::detect_precompiled(&bytes).is_some() {
                // SAFETY: the deployer pinned exactly these bytes.
                let component = unsafe { Component::deserialize(&self.engine, &bytes) }
                    .map_err(|e| precompiled_error(&origin, e))?;
                return self.prepare(component, origin, actual, limits).await;
            }
        }
        if Engine::detect_precompiled(&bytes).is_some() {
            return Err(LoadError::Precompiled { origin });
        }
        let engine = self.engine.clone();
        let from = origin.clone();
        let component = super::blocking(move || Component::new(&engine, &bytes))
            .await
            .map_err(|e| LoadError::Compile { origin: from, reason: format!("{e:#}") })?;
        self.prepare(component, origin, actual, limits).await
    }

    async fn prepare(
        &self,
        component: Component,
        origin: String,
        sha256: String,
        limits: Limits,
    ) -> Result<Guest, LoadError> {
        let (pre, exports) = self.link(&component, &origin)?;
        Guest::describe_new(pre, exports, origin, sha256, limits).await
    }

    /// Checks the interface version, links, checks every export against the WIT, and
    /// finds the exports.
    fn link(&self, component: &Component, origin: &str) -> Result<(InstancePre<State>, Exports), LoadError> {
        let interface = check_version(&self.engine, component, origin)?;
        let link_error =
            |e: wasmtime::Error| LoadError::Link { origin: origin.into(), reason: plain_text(&format!("{e:#}"), 1000) };
        let pre = self.linker(component)?.instantiate_pre(component).map_err(link_error)?;
        // The generated bindings check every export against the WIT.
        OmicsEventProcessorPre::new(pre.clone()).map_err(link_error)?;
        let export = |instance: Option<&ComponentExportIndex>, name: &str| {
            component.get_export_index(instance, name).ok_or_else(|| LoadError::Link {
                origin: origin.into(),
                reason: format!("{interface} has no export `{name}`"),
            })
        };
        let processor = export(None, &interface)?;
        let exports = Exports {
            describe: export(Some(&processor), "describe")?,
            parse: export(Some(&processor), "[static]event.parse")?,
            plan: export(Some(&processor), "[method]event.plan")?,
            transform: export(Some(&processor), "[method]event.transform")?,
        };
        Ok((pre, exports))
    }
}

/// A precompiled component that does not load: most often one made by another host
/// version, which `ngs360-omics compile` (of this version) rebuilds.
fn precompiled_error(origin: &str, e: wasmtime::Error) -> LoadError {
    LoadError::Compile {
        origin: origin.into(),
        reason: format!(
            "{e:#} (a .cwasm loads only in the host version and architecture that compiled it, \
             {}; rebuild it from the .wasm with `ngs360-omics compile` of this version)",
            env!("CARGO_PKG_VERSION")
        ),
    }
}

/// Precompiles a `.wasm` component for `target` with this host's wasmtime and engine
/// settings, after checking (with this machine's compiler) that the host can serve its
/// interface version. The result loads only in a host of the same version, and only when
/// `GUEST_SHA256` pins it.
pub fn precompile(bytes: &[u8], target: &str, origin: &str) -> Result<Vec<u8>, LoadError> {
    let compile_error = |e: wasmtime::Error| LoadError::Compile { origin: origin.into(), reason: format!("{e:#}") };
    let native = Engine::new(&engine::compile_config(None).map_err(engine_error)?).map_err(engine_error)?;
    check_version(&native, &Component::new(&native, bytes).map_err(compile_error)?, origin)?;
    let cross = Engine::new(&engine::compile_config(Some(target)).map_err(engine_error)?).map_err(engine_error)?;
    cross.precompile_component(bytes).map_err(compile_error)
}

/// Lower-case hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Refuses a component whose interface version this host cannot serve, before linking,
/// with a message naming both versions; else the name of the interface it exports.
fn check_version(engine: &Engine, component: &Component, origin: &str) -> Result<String, LoadError> {
    let wanted = semver::Version::parse(WIT_VERSION).expect("WIT_VERSION is semver");
    let exported: Vec<String> = component
        .component_type()
        .exports(engine)
        .map(|(name, _)| name.to_owned())
        .filter(|name| name.starts_with(WIT_INTERFACE))
        .collect();
    let Some(found) = exported.first() else {
        return Err(LoadError::Version {
            origin: origin.into(),
            found: "no ngs360:omics-events processor export".into(),
            wanted: format!("{WIT_INTERFACE}@{WIT_VERSION}"),
        });
    };
    let version = found
        .strip_prefix(WIT_INTERFACE)
        .and_then(|rest| rest.strip_prefix('@'))
        .and_then(|v| semver::Version::parse(v).ok());
    if version.as_ref().is_some_and(|v| semver_compatible(&wanted, v)) {
        Ok(found.clone())
    } else {
        Err(LoadError::Version {
            origin: origin.into(),
            found: super::plain_text(found, 120),
            wanted: format!("{WIT_INTERFACE}@{WIT_VERSION} (or a compatible version)"),
        })
    }
}

/// Semver compatibility as the component model applies it: same major version, and for
/// 0.x the same minor version.
pub fn semver_compatible(host: &semver::Version, guest: &semver::Version) -> bool {
    host.major == guest.major && (host.major != 0 || host.minor == guest.minor) && guest.pre.is_empty()
}

fn start_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("wasm-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(TICK);
            }
        })
        .expect("spawning the epoch ticker");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::EventPlan;

    /// At most one load runs from the binary's pages (here the tests share a process, so
    /// another test's load may have claimed them); the others copy.
    #[test]
    fn the_bundled_guest_is_used_in_place_once_and_copied_after() {
        assert!(super::super::code::in_place(BUNDLED).is_some(), "4 KiB pages");
        let runtime = Runtime::new().unwrap();
        // SAFETY: the bundled bytes, as in `bundled_now`.
        let loads = [(); 3].map(|_| unsafe { deserialize_bundled(&runtime.engine) }.unwrap());
        assert!(loads.iter().filter(|(_, in_place)| *in_place).count() <= 1);
        assert!(bundled_in_place(), "the first load in this process was in place");
        let bytes = BUNDLED.0.as_ptr_range();
        for (component, in_place) in &loads {
            let image = component.image_range();
            let inside = bytes.start <= image.start && image.end <= bytes.end;
            assert_eq!(inside, *in_place, "{image:?} against {bytes:?}");
        }
    }

    /// Two loads share the pages: dropping one leaves the other's code executable.
    #[tokio::test]
    async fn a_dropped_load_of_the_bundled_guest_leaves_another_running() {
        let runtime = Runtime::new().unwrap();
        let first = runtime.bundled_now(Limits::default()).unwrap();
        let second = runtime.bundled_now(Limits::default()).unwrap();
        drop(first);
        let event = include_bytes!("../../../fixtures/eventbridge-omics-run-completed/event.json");
        let plan = second.open(event).await.unwrap().plan(None).await.unwrap();
        assert!(matches!(plan, EventPlan::Process(_)), "{plan:?}");
    }

    #[test]
    fn wit_version_matches_the_wit_file() {
        let wit = include_str!("../../../wit/processor.wit");
        assert!(wit.contains(&format!("package ngs360:omics-events@{WIT_VERSION};")));
    }

    #[test]
    fn semver_rules_follow_the_component_model() {
        let v = |s| semver::Version::parse(s).unwrap();
        assert!(semver_compatible(&v("0.1.0"), &v("0.1.7")));
        assert!(!semver_compatible(&v("0.1.0"), &v("0.2.0")));
        assert!(semver_compatible(&v("1.2.0"), &v("1.9.1")));
        assert!(!semver_compatible(&v("1.2.0"), &v("2.0.0")));
        assert!(!semver_compatible(&v("0.1.0"), &v("0.1.1-rc.1")));
    }
}
