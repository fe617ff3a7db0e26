//! Making compiled guest code executable, and the bundled guest used where it lies.
//!
//! wasmtime copies a precompiled component into fresh memory before making its code
//! executable; for the bundled guest (515 KB, in this binary's read-only data) that copy
//! was about 160 page faults of every cold start. Instead the bundled guest is
//! deserialized in place (`Component::deserialize_raw`, by the first load of it in a
//! process; `runtime.rs`): its bytes are page-aligned in the binary, and its code pages
//! are switched from read-only to read+execute where they are, never writable. wasmtime
//! leaves that switch to an engine's [`CodeMemory`] for memory it does not own, so this
//! engine has one, and it serves every component: for memory wasmtime owns (a compiled
//! `.wasm`, a `.cwasm` from S3) it takes the steps wasmtime's own publishing takes
//! (instruction-cache upkeep where the CPU needs it, read+execute).

use std::ffi::c_void;
use std::ptr::NonNull;

use wasmtime::CustomCodeMemory;
use wasmtime_jit_icache_coherence as icache;

/// Bytes at a page boundary (4 KiB, the page size of Lambda's x86_64 and arm64 kernels):
/// the bundled component's code section is page-aligned within it, so it is page-aligned
/// in memory too.
#[repr(C, align(4096))]
pub struct PageAligned<B: ?Sized>(pub B);

/// The page size [`PageAligned`] assumes.
const PAGE: usize = 4096;

/// `bytes`, when they can be used in place: on a machine with the 4 KiB pages they are
/// aligned to.
pub fn in_place(bytes: &'static PageAligned<[u8]>) -> Option<NonNull<[u8]>> {
    (page_size() == PAGE).then(|| NonNull::from(&bytes.0))
}

fn page_size() -> usize {
    // SAFETY: sysconf only reads its argument.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size).unwrap_or(0)
}

/// The engine's code memory: read+execute when published. When unpublished (a component
/// dropped), memory wasmtime owns becomes read-only, and is unmapped right after; the
/// bundled guest's pages stay read+execute, as another load of it may be running from them
/// (they were never writable).
pub struct CodeMemory {
    /// The addresses of the bytes used in place.
    in_place: std::ops::Range<usize>,
}

impl CodeMemory {
    /// The code memory for an engine that may use `bytes` in place.
    pub fn new(bytes: &'static PageAligned<[u8]>) -> CodeMemory {
        let range = bytes.0.as_ptr_range();
        CodeMemory { in_place: range.start as usize..range.end as usize }
    }
}

impl CustomCodeMemory for CodeMemory {
    fn required_alignment(&self) -> usize {
        page_size()
    }

    fn publish_executable(&self, ptr: *const u8, len: usize) -> wasmtime::Result<()> {
        // SAFETY: wasmtime passes the code section it is publishing, which nothing writes
        // to from here on.
        unsafe { icache::clear_cache(ptr as *const c_void, len) }?;
        protect(ptr, len, libc::PROT_READ | libc::PROT_EXEC)?;
        icache::pipeline_flush_mt()?;
        Ok(())
    }

    fn unpublish_executable(&self, ptr: *const u8, len: usize) -> wasmtime::Result<()> {
        if self.in_place.contains(&(ptr as usize)) {
            return Ok(());
        }
        protect(ptr, len, libc::PROT_READ)
    }
}

fn protect(ptr: *const u8, len: usize, prot: libc::c_int) -> wasmtime::Result<()> {
    if len == 0 {
        return Ok(());
    }
    // SAFETY: `ptr..ptr + len` is a page-aligned code section wasmtime hands over (see
    // `required_alignment`); only its protection changes.
    let done = unsafe { libc::mprotect(ptr as *mut c_void, len, prot) };
    if done != 0 {
        return Err(wasmtime::format_err!("mprotect of guest code: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}
