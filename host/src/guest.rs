//! All wasmtime code: the engine, loading and checking components, and running one event
//! through a guest in a fresh, sandboxed store.
//!
//! The sandbox: WASI with no capabilities (no preopened directory, no environment, no
//! arguments, no network, no stdin or stdout), a clock frozen at the Unix epoch, a random
//! source that yields zeros, and stderr captured in a small buffer that truncates. Each call
//! runs under a memory cap (a store limiter), a time limit (epoch interruption from a ticker
//! thread) and a cap on the record's size; each has its own error.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use wasmtime::component::{Component, Linker, ResourceAny, ResourceTable};
use wasmtime::{Engine, PoolingAllocationConfig, ResourceLimiter, Store, Trap};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxView, WasiView};

use crate::engine;
use crate::error::{GuestError, LoadError};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "omics-event-processor",
    });
}

pub use bindings::exports::ngs360::omics_events::processor::{
    ArchiveKey, Callback, Context, EventIdentity, EventPlan, FetchPlan, GuestInfo, Outcome, OutputsLocation,
    TransformError,
};
use bindings::{OmicsEventProcessor, OmicsEventProcessorPre};

/// The WIT interface a guest must export, without its version.
pub const WIT_INTERFACE: &str = "ngs360:omics-events/processor";
/// The interface version this host was built against (`wit/processor.wit`).
pub const WIT_VERSION: &str = "0.1.0";

/// The guest bundled in this binary, precompiled for `BUNDLED_TARGET` by the build script.
static BUNDLED: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/guest.cwasm"));
/// The target the bundled guest was precompiled for.
pub const BUNDLED_TARGET: &str = env!("NGS360_BUNDLED_GUEST_TARGET");

/// The most linear memory a guest may use, in bytes, unless [`Limits`] says otherwise.
pub const GUEST_MEMORY_MAX: u64 = 64 << 20;

/// How often the epoch ticks; the time limit is counted in ticks.
const TICK: Duration = Duration::from_millis(5);

/// What one event may cost a guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Linear memory, in bytes.
    pub memory: u64,
    /// Wall-clock time per call.
    pub time: Duration,
    /// The record's size, in bytes.
    pub output: usize,
    /// Captured stderr, in bytes; the rest is dropped.
    pub stderr: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { memory: GUEST_MEMORY_MAX, time: Duration::from_secs(2), output: 8 << 20, stderr: 16 << 10 }
    }
}

/// The process's wasmtime engine, with its pooling allocator and epoch ticker. Made once.
#[derive(Clone)]
pub struct Runtime {
    engine: Engine,
    linker: Arc<Linker<State>>,
}

impl Runtime {
    /// Makes the engine for this machine and starts the epoch ticker.
    pub fn new() -> Result<Runtime, LoadError> {
        let mut config = engine::compile_config(None).map_err(LoadError::engine)?;
        let mut pool = PoolingAllocationConfig::new();
        // One event at a time per process, plus a component being checked on refresh.
        pool.total_component_instances(8)
            .total_core_instances(64)
            .total_memories(4)
            .total_tables(32)
            .total_stacks(0)
            .max_memory_size(GUEST_MEMORY_MAX as usize)
            .max_unused_warm_slots(4);
        config.allocation_strategy(pool);
        // Enough frames to place a trap; a runaway recursion would otherwise list thousands.
        config.wasm_backtrace_max_frames(std::num::NonZeroUsize::new(16));
        let engine = Engine::new(&config).map_err(LoadError::engine)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(LoadError::engine)?;
        start_ticker(&engine);
        Ok(Runtime { engine, linker: Arc::new(linker) })
    }

    /// The engine, for precompiling components.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The guest bundled in this binary.
    pub fn bundled(&self, limits: Limits) -> Result<Guest, LoadError> {
        // SAFETY: these bytes were produced by this crate's build script with this wasmtime
        // and these engine settings; they are part of the binary itself.
        let component = unsafe { Component::deserialize(&self.engine, BUNDLED) }
            .map_err(|e| LoadError::Compile { origin: "bundled guest".into(), reason: format!("{e:#}") })?;
        self.prepare(component, "bundled".into(), limits)
    }

    /// A component from its bytes, under the trust rule: a `.wasm` component is compiled
    /// here, so it is only ever sandboxed code; precompiled (`.cwasm`) bytes are native code
    /// and load only when `pinned` (`GUEST_SHA256`, set by the deployer) equals their sha256.
    /// A pin applies to a `.wasm` too.
    pub fn load(&self, bytes: &[u8], origin: String, pinned: Option<&str>, limits: Limits) -> Result<Guest, LoadError> {
        if let Some(pinned) = pinned {
            let actual = sha256_hex(bytes);
            if !actual.eq_ignore_ascii_case(pinned) {
                return Err(LoadError::Digest { origin, actual, pinned: pinned.to_owned() });
            }
            if Engine::detect_precompiled(bytes).is_some() {
                // SAFETY: the deployer pinned exactly these bytes.
                return unsafe { self.load_precompiled(bytes, origin, limits) };
            }
        }
        self.compile(bytes, origin, limits)
    }

    /// A `.wasm` component, compiled here. Precompiled (`.cwasm`) bytes are refused: they are
    /// native code (see [`Runtime::load`]).
    pub fn compile(&self, bytes: &[u8], source: String, limits: Limits) -> Result<Guest, LoadError> {
        if Engine::detect_precompiled(bytes).is_some() {
            return Err(LoadError::Precompiled { origin: source });
        }
        let component = Component::new(&self.engine, bytes)
            .map_err(|e| LoadError::Compile { origin: source.clone(), reason: format!("{e:#}") })?;
        self.prepare(component, source, limits)
    }

    /// A precompiled component.
    ///
    /// # Safety
    /// `bytes` is native code that runs in this process: the caller vouches for where it
    /// came from (the bundled guest, or bytes whose hash the deployer pinned).
    pub unsafe fn load_precompiled(&self, bytes: &[u8], source: String, limits: Limits) -> Result<Guest, LoadError> {
        // SAFETY: the caller vouches for the bytes.
        let component = unsafe { Component::deserialize(&self.engine, bytes) }
            .map_err(|e| LoadError::Compile { origin: source.clone(), reason: format!("{e:#}") })?;
        self.prepare(component, source, limits)
    }

    fn prepare(&self, component: Component, source: String, limits: Limits) -> Result<Guest, LoadError> {
        check_version(&self.engine, &component, &source)?;
        let pre = self
            .linker
            .instantiate_pre(&component)
            .and_then(OmicsEventProcessorPre::new)
            .map_err(|e| LoadError::Link { origin: source.clone(), reason: format!("{e:#}") })?;
        let mut guest = Guest {
            inner: Arc::new(Inner {
                pre,
                info: GuestInfo { name: String::new(), version: String::new() },
                source: source.clone(),
                limits,
            }),
        };
        let info = guest
            .session()
            .and_then(|mut s| s.describe())
            .map_err(|e| LoadError::Describe { origin: source, reason: e.to_string() })?;
        // The name goes into every log line and response: plain, short text only.
        let plain = |s: &str| -> String {
            let kept: String = s.chars().filter(|c| c.is_ascii_graphic()).take(64).collect();
            if kept.is_empty() { "unnamed".into() } else { kept }
        };
        let info = GuestInfo { name: plain(&info.name), version: plain(&info.version) };
        Arc::get_mut(&mut guest.inner).expect("not shared yet").info = info;
        Ok(guest)
    }
}

/// Precompiles a `.wasm` component for `target` with this host's wasmtime and engine
/// settings, after checking (with this machine's compiler) that the host can serve its
/// interface version. The result loads only in a host of the same version, and only when
/// `GUEST_SHA256` pins it.
pub fn precompile(bytes: &[u8], target: &str, origin: &str) -> Result<Vec<u8>, LoadError> {
    let compile_error = |e: wasmtime::Error| LoadError::Compile { origin: origin.into(), reason: format!("{e:#}") };
    let native = Engine::new(&engine::compile_config(None).map_err(LoadError::engine)?).map_err(LoadError::engine)?;
    check_version(&native, &Component::new(&native, bytes).map_err(compile_error)?, origin)?;
    let cross =
        Engine::new(&engine::compile_config(Some(target)).map_err(LoadError::engine)?).map_err(LoadError::engine)?;
    cross.precompile_component(bytes).map_err(compile_error)
}

/// Lower-case hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Refuses a component whose interface version this host cannot serve, before linking,
/// with a message naming both versions.
fn check_version(engine: &Engine, component: &Component, source: &str) -> Result<(), LoadError> {
    let wanted = semver::Version::parse(WIT_VERSION).expect("WIT_VERSION is semver");
    let exported: Vec<String> = component
        .component_type()
        .exports(engine)
        .map(|(name, _)| name.to_owned())
        .filter(|name| name.starts_with(WIT_INTERFACE))
        .collect();
    let Some(found) = exported.first() else {
        return Err(LoadError::Version {
            origin: source.into(),
            found: "no ngs360:omics-events processor export".into(),
            wanted: format!("{WIT_INTERFACE}@{WIT_VERSION}"),
        });
    };
    let version = found
        .strip_prefix(WIT_INTERFACE)
        .and_then(|rest| rest.strip_prefix('@'))
        .and_then(|v| semver::Version::parse(v).ok());
    let compatible = version.as_ref().is_some_and(|v| semver_compatible(&wanted, v));
    if compatible {
        Ok(())
    } else {
        Err(LoadError::Version {
            origin: source.into(),
            found: found.clone(),
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

/// A loaded, linked and described guest. Cheap to clone; each event gets its own
/// [`Session`].
#[derive(Clone)]
pub struct Guest {
    inner: Arc<Inner>,
}

struct Inner {
    pre: OmicsEventProcessorPre<State>,
    info: GuestInfo,
    source: String,
    limits: Limits,
}

impl Guest {
    /// The guest's own name and version (its `describe` export).
    pub fn info(&self) -> &GuestInfo {
        &self.inner.info
    }

    /// `name@version`, for log lines.
    pub fn label(&self) -> String {
        format!("{}@{}", self.inner.info.name, self.inner.info.version)
    }

    /// Where the guest came from (`bundled`, a path, an S3 URI).
    pub fn source(&self) -> &str {
        &self.inner.source
    }

    /// The limits each event runs under.
    pub fn limits(&self) -> Limits {
        self.inner.limits
    }

    /// A fresh instance in a fresh store, with `event` parsed in it: one event's session.
    pub fn open(&self, event: &[u8]) -> Result<Session, GuestError> {
        let mut session = self.session()?;
        let parsed = session
            .call(|p, s| p.ngs360_omics_events_processor().event().call_parse(s, event))?
            .map_err(GuestError::Rejected)?;
        session.event = Some(parsed);
        Ok(session)
    }

    fn session(&self) -> Result<Session, GuestError> {
        let limits = self.inner.limits;
        let stderr = CappedPipe::new(limits.stderr);
        let wasi = WasiCtx::builder()
            .stderr(stderr.clone())
            .wall_clock(FrozenClock)
            .monotonic_clock(FrozenClock)
            .secure_random(wasmtime_wasi::Deterministic::new(vec![0]))
            .insecure_random(wasmtime_wasi::Deterministic::new(vec![0]))
            .insecure_random_seed(0)
            .allow_ip_name_lookup(false)
            .allow_tcp(false)
            .allow_udp(false)
            .build();
        let state = State {
            wasi,
            table: ResourceTable::new(),
            limiter: Limiter { memory: limits.memory as usize, exceeded: false },
            stderr,
        };
        let engine = self.inner.pre.engine();
        let mut store = Store::new(engine, state);
        store.limiter(|s| &mut s.limiter);
        store.epoch_deadline_trap();
        set_deadline(&mut store, limits.time);
        let processor = self.inner.pre.instantiate(&mut store).map_err(|e| classify(&store, limits, e))?;
        Ok(Session { store, processor, limits, event: None, busy: Duration::ZERO })
    }
}

fn set_deadline(store: &mut Store<State>, time: Duration) {
    let ticks = time.as_nanos().div_ceil(TICK.as_nanos()).max(1) as u64 + 1;
    store.set_epoch_deadline(ticks);
}

/// One event's instance of the guest, holding the parsed event.
pub struct Session {
    store: Store<State>,
    processor: OmicsEventProcessor,
    limits: Limits,
    event: Option<ResourceAny>,
    busy: Duration,
}

impl Session {
    /// The guest's `describe` export.
    pub fn describe(&mut self) -> Result<GuestInfo, GuestError> {
        self.call(|p, s| p.ngs360_omics_events_processor().call_describe(s))
    }

    /// The event's `plan` method.
    pub fn plan(&mut self, run: Option<&str>) -> Result<EventPlan, GuestError> {
        let event = self.event.expect("a session opened on an event");
        self.call(|p, s| p.ngs360_omics_events_processor().event().call_plan(s, event, run))?
            .map_err(GuestError::Rejected)
    }

    /// The event's `transform` method, with the record's size checked.
    pub fn transform(&mut self, context: &Context) -> Result<Outcome, GuestError> {
        let event = self.event.expect("a session opened on an event");
        let outcome = self
            .call(|p, s| p.ngs360_omics_events_processor().event().call_transform(s, event, context))?
            .map_err(GuestError::Rejected)?;
        if outcome.record.len() > self.limits.output {
            return Err(GuestError::OutputTooLarge { size: outcome.record.len(), limit: self.limits.output });
        }
        check_record(&outcome.record)?;
        Ok(outcome)
    }

    /// The time spent in guest calls so far.
    pub fn busy(&self) -> Duration {
        self.busy
    }

    /// What the guest wrote to stderr so far (truncated at the limit).
    pub fn stderr(&self) -> String {
        self.store.data().stderr.contents()
    }

    fn call<R>(
        &mut self,
        f: impl FnOnce(&OmicsEventProcessor, &mut Store<State>) -> wasmtime::Result<R>,
    ) -> Result<R, GuestError> {
        set_deadline(&mut self.store, self.limits.time);
        let started = std::time::Instant::now();
        let result = f(&self.processor, &mut self.store);
        self.busy += started.elapsed();
        result.map_err(|e| classify(&self.store, self.limits, e))
    }
}

/// The record is archived and posted as it is: it must be one JSON object.
fn check_record(record: &str) -> Result<(), GuestError> {
    match serde_json::from_str::<serde::de::IgnoredAny>(record) {
        Ok(_) if record.trim_start().starts_with('{') => Ok(()),
        Ok(_) => Err(GuestError::InvalidRecord("it is not a JSON object".into())),
        Err(e) => Err(GuestError::InvalidRecord(format!("it is not JSON ({e})"))),
    }
}

/// Turns a wasmtime error into the limit it hit, or a trap with the guest's stderr.
fn classify(store: &Store<State>, limits: Limits, error: wasmtime::Error) -> GuestError {
    let stderr = store.data().stderr.contents();
    if store.data().limiter.exceeded {
        return GuestError::MemoryLimit { limit_mib: limits.memory >> 20, stderr };
    }
    match error.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => GuestError::TimeLimit { limit: limits.time, stderr },
        // The trap itself ("wasm trap: call stack exhausted"); the wasm backtrace goes to DEBUG.
        Some(trap) => {
            tracing::debug!("guest trap: {error:?}");
            GuestError::Trap { reason: trap.to_string(), stderr }
        }
        None => GuestError::Trap { reason: error.root_cause().to_string(), stderr },
    }
}

/// The store's data.
pub struct State {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: Limiter,
    stderr: CappedPipe,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// The memory cap. Growth past it traps the guest and is remembered, so that the error
/// says what happened.
struct Limiter {
    memory: usize,
    exceeded: bool,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.memory {
            self.exceeded = true;
            wasmtime::bail!("guest memory limit of {} bytes reached (asked for {desired})", self.memory);
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

/// Wall and monotonic clocks that never move: a pure guest needs no time.
struct FrozenClock;

impl HostWallClock for FrozenClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl HostMonotonicClock for FrozenClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}

/// The guest's stderr: keeps the first `cap` bytes and silently drops the rest, so a
/// chatty guest can neither fail on a full pipe nor grow the host's memory.
#[derive(Clone)]
struct CappedPipe {
    buf: Arc<Mutex<Vec<u8>>>,
    cap: usize,
}

impl CappedPipe {
    fn new(cap: usize) -> CappedPipe {
        CappedPipe { buf: Arc::new(Mutex::new(Vec::new())), cap }
    }

    fn append(&self, bytes: &[u8]) {
        let mut buf = self.buf.lock().unwrap_or_else(|e| e.into_inner());
        let room = self.cap.saturating_sub(buf.len());
        buf.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    fn contents(&self) -> String {
        String::from_utf8_lossy(&self.buf.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }
}

impl IsTerminal for CappedPipe {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CappedPipe {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
}

impl OutputStream for CappedPipe {
    fn write(&mut self, bytes: bytes::Bytes) -> StreamResult<()> {
        self.append(&bytes);
        Ok(())
    }
    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }
    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 << 10)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for CappedPipe {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for CappedPipe {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.append(buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

/// A one-line description of a guest's refusal.
pub fn describe_rejection(e: &TransformError) -> String {
    match e {
        TransformError::InvalidJson(m) => format!("invalid JSON: {m}"),
        TransformError::NotAnObject(kind) => format!("the event is a JSON {kind}, not an object"),
        TransformError::MissingField(f) => format!("the event has no `{f}`"),
        TransformError::InvalidField(p) => format!("`{}` {}", p.field, p.reason),
        TransformError::TooDeep(limit) => format!("the input nests deeper than {limit} levels"),
        TransformError::InvalidContext(m) => format!("invalid context: {m}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wit_version_matches_the_wit_file() {
        let wit = include_str!("../../wit/processor.wit");
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

    #[test]
    fn records_must_be_json_objects() {
        assert!(check_record(r#" {"a":[1,{"b":null}]}"#).is_ok());
        for bad in ["", "[1]", "\"x\"", "{", "{} {}", "{\"a\":}", "null"] {
            assert!(matches!(check_record(bad), Err(GuestError::InvalidRecord(_))), "{bad:?}");
        }
    }

    #[test]
    fn capped_pipe_keeps_the_first_bytes_only() {
        let p = CappedPipe::new(4);
        p.append(b"ab");
        p.append(b"cdef");
        p.append(b"gh");
        assert_eq!(p.contents(), "abcd");
    }
}
