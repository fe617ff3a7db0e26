//! The component adapter: WIT types in, the pure modules, WIT types out. Nothing else.

#[allow(unused_imports)]
use crate::prelude::*;

mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "omics-event-processor",
    });
}

use bindings::exports::ngs360::omics_events::processor::{self as wit, Guest, GuestEvent};

use crate::model;

struct Component;

impl Guest for Component {
    type Event = crate::Event;

    fn describe() -> wit::GuestInfo {
        wit::GuestInfo { name: crate::NAME.into(), version: crate::VERSION.into() }
    }
}

impl GuestEvent for crate::Event {
    fn parse(bytes: Vec<u8>) -> Result<wit::Event, wit::TransformError> {
        crate::Event::parse(&bytes).map(wit::Event::new).map_err(error)
    }

    fn plan(&self, run: Option<String>) -> Result<wit::EventPlan, wit::TransformError> {
        Ok(match crate::Event::plan(self, run.as_deref()).map_err(error)? {
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
        let ctx = model::Context {
            run: context.run.as_deref(),
            tasks: context.tasks.as_ref().map(|t| model::TaskList {
                items: &t.items,
                more: t.more,
                failed: t.failed.as_deref(),
            }),
            outputs: context.outputs.as_deref(),
            errors: &context.errors,
        };
        let o = crate::Event::transform(self, &ctx).map_err(error)?;
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

#[global_allocator]
static ALLOCATOR: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;

/// A panic is a bug in this component: stop with a trap, which the host reports and which
/// fails the invocation (Lambda then retries, and the dead-letter queue keeps the event).
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    core::arch::wasm32::unreachable()
}

/// `memcmp` for the `no_std` build: the C library that would provide it is not linked.
///
/// # Safety
/// `a` and `b` point to at least `n` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    for i in 0..n {
        // SAFETY: the caller guarantees `n` readable bytes behind both pointers.
        let (x, y) = unsafe { (*a.add(i), *b.add(i)) };
        if x != y {
            return i32::from(x) - i32::from(y);
        }
    }
    0
}

/// `bcmp` (equality only), which the compiler may call instead of `memcmp`.
///
/// # Safety
/// As [`memcmp`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: same contract.
    unsafe { memcmp(a, b, n) }
}

/// The canonical ABI's allocator export, through which the host writes arguments into this
/// component's memory. (On wasm32-wasip2 the C library would provide it.)
///
/// # Safety
/// Called by the host per the canonical ABI: `old` was returned by an earlier call with
/// `old_len` and `align`, or `old_len` is 0; `align` is a power of two.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cabi_realloc(old: *mut u8, old_len: usize, align: usize, new_len: usize) -> *mut u8 {
    use alloc::alloc::{Layout, alloc, handle_alloc_error, realloc};
    if new_len == 0 {
        return align as *mut u8;
    }
    // SAFETY: per the canonical ABI, `align` is a power of two and the sizes are in range.
    let layout = unsafe { Layout::from_size_align_unchecked(new_len, align) };
    let ptr = if old_len == 0 {
        // SAFETY: `layout` has a non-zero size.
        unsafe { alloc(layout) }
    } else {
        // SAFETY: `old` was allocated with this alignment and `old_len`.
        unsafe { realloc(old, Layout::from_size_align_unchecked(old_len, align), new_len) }
    };
    if ptr.is_null() {
        handle_alloc_error(layout);
    }
    ptr
}
