//! What a guest sees of the world: WASI with no capabilities (no preopened directory, no
//! environment, no arguments, no network, no stdin or stdout), a clock frozen at the Unix
//! epoch, a random source that yields zeros, and stderr captured in a small buffer that
//! truncates. Plus the store's data: that context, the memory limiter and the stderr sink.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxView, WasiView};

use super::limits::Limits;

/// The store's data for one event.
pub struct State {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(super) limiter: Limiter,
    pub(super) stderr: CappedPipe,
    /// When the call in progress must end.
    pub(super) deadline: std::time::Instant,
}

impl State {
    /// A sandbox with nothing in it, under `limits`.
    pub(super) fn new(limits: &Limits) -> State {
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
        State {
            wasi,
            table: ResourceTable::new(),
            limiter: Limiter::new(limits.memory as usize),
            stderr,
            deadline: std::time::Instant::now() + limits.time,
        }
    }
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// The memory cap, over all the linear memories of the store together, and caps on how
/// many instances, memories and tables a component may make. Growth past the memory cap
/// traps the guest and is remembered, so that the error says what happened.
pub(super) struct Limiter {
    memory: usize,
    /// Bytes of linear memory the store's memories hold (or asked for and were granted).
    used: usize,
    pub(super) exceeded: bool,
}

impl Limiter {
    pub(super) fn new(memory: usize) -> Limiter {
        Limiter { memory, used: 0, exceeded: false }
    }
}

/// A component's core instances per store: the bundled guest has a handful, a Python
/// component about ten.
const INSTANCES_MAX: usize = 64;
/// Linear memories per store.
const MEMORIES_MAX: usize = 4;
/// Tables per store, and table elements per table.
const TABLES_MAX: usize = 32;
const TABLE_ELEMENTS_MAX: usize = 100_000;

impl ResourceLimiter for Limiter {
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let used = self.used.saturating_sub(current).saturating_add(desired);
        if used > self.memory {
            self.exceeded = true;
            wasmtime::bail!("guest memory limit of {} bytes reached (asked for {used} in all)", self.memory);
        }
        self.used = used;
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= TABLE_ELEMENTS_MAX)
    }

    fn instances(&self) -> usize {
        INSTANCES_MAX
    }

    fn memories(&self) -> usize {
        MEMORIES_MAX
    }

    fn tables(&self) -> usize {
        TABLES_MAX
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
pub(super) struct CappedPipe {
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

    /// What was kept, as (lossy) text.
    pub(super) fn contents(&self) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_memory_cap_counts_every_memory_of_the_store() {
        let mut l = Limiter::new(10 << 20);
        assert!(l.memory_growing(0, 4 << 20, None).unwrap());
        assert!(l.memory_growing(0, 4 << 20, None).unwrap());
        assert!(l.memory_growing(4 << 20, 5 << 20, None).unwrap());
        assert!(l.memory_growing(0, 2 << 20, None).is_err(), "9 MiB held, 2 more asked for");
        assert!(l.exceeded);
        assert_eq!((l.instances(), l.memories(), l.tables()), (INSTANCES_MAX, MEMORIES_MAX, TABLES_MAX));
    }

    /// A component of `copies` core instances of a module with one 1-page memory.
    fn component_with_memories(copies: u32) -> Vec<u8> {
        use wasm_encoder::{Component, InstanceSection, MemorySection, MemoryType, Module, ModuleArg, ModuleSection};
        let mut module = Module::new();
        let mut memories = MemorySection::new();
        memories.memory(MemoryType { minimum: 1, maximum: None, memory64: false, shared: false, page_size_log2: None });
        module.section(&memories);
        let mut component = Component::new();
        component.section(&ModuleSection(&module));
        let mut instances = InstanceSection::new();
        for _ in 0..copies {
            instances.instantiate(0, Vec::<(&str, ModuleArg)>::new());
        }
        component.section(&instances);
        component.finish()
    }

    /// The memory cap holds over all of a store's memories, and a component cannot make
    /// more than `MEMORIES_MAX` of them (the pooling allocator's slots used to bound both).
    #[tokio::test]
    async fn a_component_cannot_make_more_memories_than_allowed() {
        let runtime = super::super::Runtime::new().unwrap();
        let engine = runtime.engine();
        let linker = wasmtime::component::Linker::<State>::new(engine);
        let instantiate = |copies: u32, memory: u64| {
            let component = wasmtime::component::Component::new(engine, component_with_memories(copies)).unwrap();
            let mut store = wasmtime::Store::new(engine, State::new(&Limits { memory, ..Limits::default() }));
            store.limiter(|s| &mut s.limiter);
            let linker = linker.clone();
            async move { linker.instantiate_async(&mut store, &component).await.map(drop).map_err(|e| format!("{e:#}")) }
        };
        assert_eq!(instantiate(4, 1 << 20).await, Ok(()));
        let err = instantiate(5, 1 << 20).await.unwrap_err();
        assert!(err.contains("memory count") || err.contains("memories"), "{err}");
        let err = instantiate(2, 64 << 10).await.unwrap_err();
        assert!(err.contains("guest memory limit of 65536 bytes reached"), "{err}");
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
