//! What a guest returns, lifted out of its memory with every size checked **before** the
//! copy: a guest cannot make the host allocate more than these bounds, whatever it returns
//! (a list of a million strings all pointing at the same megabytes would otherwise be
//! copied a million times).
//!
//! `Text<MAX>` and `List<T, MAX>` are a `string` and a `list<T>` of the canonical ABI that
//! refuse to be lifted when their length exceeds `MAX`; they read the length the guest gave
//! and then let wasmtime's own `String` and `Vec<T>` do the lifting. The records and
//! variants below mirror `wit/processor.wit`'s results with them; wasmtime type-checks them
//! against the component's own types when a function is looked up, so a mismatch with the
//! WIT is a load-time error, not a silent misreading. (They implement wasmtime's
//! `ComponentType` and `Lift`, whose required items are hidden from wasmtime's docs: this
//! is pinned to the wasmtime version in the workspace, like the precompiled guest.)

use wasmtime::component::__internal::{CanonicalAbiInfo, InstanceType, InterfaceType, LiftContext};
use wasmtime::component::{ComponentType, Lift};
use wasmtime::{Result, ValRaw};

use super::TaskRequest;

/// The longest record a guest may return, in bytes (behaviour: archived and posted as is).
pub const RECORD_MAX: usize = 8 << 20;
/// The longest other string a guest may return (a reason, a note, an id), in bytes.
pub const TEXT_MAX: usize = 64 << 10;
/// The most notes, or enrichment errors, a guest may return.
pub const LIST_MAX: usize = 256;

/// A guest's string or list was longer than the host accepts; nothing was copied.
#[derive(Debug, thiserror::Error)]
#[error("the guest returned a {what} of {size} {unit}, over the limit of {limit}")]
pub struct Oversized {
    pub what: &'static str,
    pub size: usize,
    pub limit: usize,
    pub unit: &'static str,
}

/// The length the canonical ABI gives for a string or list: the second word of the pair.
/// A string's length may carry the latin1+utf16 tag in its top bit.
fn flat_len(src: &[ValRaw; 2]) -> usize {
    (src[1].get_u32() & 0x7fff_ffff) as usize
}

fn memory_len(bytes: &[u8]) -> usize {
    (u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]) & 0x7fff_ffff) as usize
}

/// A `string` of at most `MAX` code units (bytes, for UTF-8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text<const MAX: usize>(pub String);

impl<const MAX: usize> Text<MAX> {
    fn check(len: usize) -> Result<()> {
        if len > MAX {
            let what = if MAX == RECORD_MAX { "record" } else { "string" };
            return Err(wasmtime::Error::new(Oversized { what, size: len, limit: MAX, unit: "bytes" }));
        }
        Ok(())
    }
}

// SAFETY: the same ABI, lowered form and type as `String`, which this delegates to.
unsafe impl<const MAX: usize> ComponentType for Text<MAX> {
    type Lower = <String as ComponentType>::Lower;
    const ABI: CanonicalAbiInfo = <String as ComponentType>::ABI;

    fn typecheck(ty: &InterfaceType, types: &InstanceType<'_>) -> Result<()> {
        <String as ComponentType>::typecheck(ty, types)
    }
}

// SAFETY: lifts exactly as `String` does, after refusing a length over `MAX`.
unsafe impl<const MAX: usize> Lift for Text<MAX> {
    fn linear_lift_from_flat(cx: &mut LiftContext<'_>, ty: InterfaceType, src: &Self::Lower) -> Result<Self> {
        Self::check(flat_len(src))?;
        <String as Lift>::linear_lift_from_flat(cx, ty, src).map(Text)
    }

    fn linear_lift_from_memory(cx: &mut LiftContext<'_>, ty: InterfaceType, bytes: &[u8]) -> Result<Self> {
        Self::check(memory_len(bytes))?;
        <String as Lift>::linear_lift_from_memory(cx, ty, bytes).map(Text)
    }
}

/// A `list<T>` of at most `MAX` items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct List<T, const MAX: usize>(pub Vec<T>);

impl<T, const MAX: usize> List<T, MAX> {
    fn check(len: usize) -> Result<()> {
        if len > MAX {
            return Err(wasmtime::Error::new(Oversized { what: "list", size: len, limit: MAX, unit: "items" }));
        }
        Ok(())
    }
}

// SAFETY: the same ABI, lowered form and type as `Vec<T>`, which this delegates to.
unsafe impl<T: ComponentType, const MAX: usize> ComponentType for List<T, MAX> {
    type Lower = <Vec<T> as ComponentType>::Lower;
    const ABI: CanonicalAbiInfo = <Vec<T> as ComponentType>::ABI;

    fn typecheck(ty: &InterfaceType, types: &InstanceType<'_>) -> Result<()> {
        <Vec<T> as ComponentType>::typecheck(ty, types)
    }
}

// SAFETY: lifts exactly as `Vec<T>` does, after refusing a length over `MAX`.
unsafe impl<T: Lift, const MAX: usize> Lift for List<T, MAX> {
    fn linear_lift_from_flat(cx: &mut LiftContext<'_>, ty: InterfaceType, src: &Self::Lower) -> Result<Self> {
        Self::check(flat_len(src))?;
        <Vec<T> as Lift>::linear_lift_from_flat(cx, ty, src).map(List)
    }

    fn linear_lift_from_memory(cx: &mut LiftContext<'_>, ty: InterfaceType, bytes: &[u8]) -> Result<Self> {
        Self::check(memory_len(bytes))?;
        <Vec<T> as Lift>::linear_lift_from_memory(cx, ty, bytes).map(List)
    }
}

/// A short string.
pub type Short = Text<TEXT_MAX>;

/// WIT `transform-error`.
#[derive(ComponentType, Lift, Debug)]
#[component(variant)]
pub enum TransformErrorRaw {
    #[component(name = "invalid-json")]
    InvalidJson(Short),
    #[component(name = "not-an-object")]
    NotAnObject(Short),
    #[component(name = "missing-field")]
    MissingField(Short),
    #[component(name = "invalid-field")]
    InvalidField(FieldProblemRaw),
    #[component(name = "too-deep")]
    TooDeep(u32),
    #[component(name = "invalid-context")]
    InvalidContext(Short),
}

/// WIT `field-problem`.
#[derive(ComponentType, Lift, Debug)]
#[component(record)]
pub struct FieldProblemRaw {
    pub field: Short,
    pub reason: Short,
}

/// WIT `event-identity`.
#[derive(ComponentType, Lift, Debug)]
#[component(record)]
pub struct IdentityRaw {
    #[component(name = "run-id")]
    pub run_id: Short,
    pub status: Short,
    #[component(name = "event-id")]
    pub event_id: Option<Short>,
}

/// WIT `outputs-location`.
#[derive(ComponentType, Lift, Debug)]
#[component(variant)]
pub enum OutputsLocationRaw {
    #[component(name = "uri")]
    Uri(Short),
    #[component(name = "after-run")]
    AfterRun,
    #[component(name = "unknown")]
    Unknown,
}

/// WIT `fetch-plan`.
#[derive(ComponentType, Lift, Debug)]
#[component(record)]
pub struct FetchPlanRaw {
    pub identity: IdentityRaw,
    #[component(name = "get-run")]
    pub get_run: bool,
    pub tasks: Option<TaskRequest>,
    pub outputs: Option<OutputsLocationRaw>,
}

/// WIT `event-plan`.
#[derive(ComponentType, Lift, Debug)]
#[component(variant)]
pub enum EventPlanRaw {
    #[component(name = "ignore")]
    Ignore(Short),
    #[component(name = "process")]
    Process(FetchPlanRaw),
}

/// WIT `callback`.
#[derive(ComponentType, Lift, Debug)]
#[component(variant)]
pub enum CallbackRaw {
    #[component(name = "send")]
    Send,
    #[component(name = "skip")]
    Skip(Short),
}

/// WIT `archive-key`.
#[derive(ComponentType, Lift, Debug)]
#[component(record)]
pub struct ArchiveKeyRaw {
    pub timestamp: Option<Short>,
    pub id: Option<Short>,
}

/// WIT `outcome`.
#[derive(ComponentType, Lift, Debug)]
#[component(record)]
pub struct OutcomeRaw {
    pub identity: IdentityRaw,
    pub record: Text<RECORD_MAX>,
    pub callback: CallbackRaw,
    #[component(name = "archive-key")]
    pub archive_key: ArchiveKeyRaw,
    #[component(name = "enrichment-errors")]
    pub enrichment_errors: List<Short, LIST_MAX>,
    pub notes: List<Short, LIST_MAX>,
}

/// WIT `guest-info`.
#[derive(ComponentType, Lift, Debug)]
#[component(record)]
pub struct GuestInfoRaw {
    pub name: Short,
    pub version: Short,
}
