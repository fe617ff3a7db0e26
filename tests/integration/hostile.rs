//! Hostile input and hostile guests: each gives a distinct, clear error within a bounded
//! time, and the next event is processed normally.

use std::time::{Duration, Instant};

use ngs360_omics::error::GuestError;
use ngs360_omics::guest::{Context, EventPlan, Guest, Limits, Runtime};

use crate::support::{Fixture, TempDir, run, wasm};

fn transform_file(bytes: &[u8]) -> (i32, String, String) {
    let tmp = TempDir::new("hostile-input");
    let path = tmp.0.join("event.json");
    std::fs::write(&path, bytes).unwrap();
    run(&["transform", path.to_str().unwrap()], &[])
}

fn assert_one_line_error(out: &(i32, String, String), contains: &str) {
    let (code, stdout, stderr) = out;
    assert_eq!(*code, 1, "{stderr}");
    assert!(stdout.is_empty());
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("error: ") && stderr.contains(contains), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn hostile_input_gives_one_clear_line() {
    let deep = "[".repeat(100_000) + &"]".repeat(100_000);
    assert_one_line_error(&transform_file(deep.as_bytes()), "nests deeper than 64 levels");
    let deep_event =
        format!(r#"{{"source":"aws.omics","detail":{}}}"#, "{\"a\":".repeat(100_000) + "1" + &"}".repeat(100_000));
    assert_one_line_error(&transform_file(deep_event.as_bytes()), "nests deeper than 64 levels");
    assert_one_line_error(
        &transform_file(b"{\"source\":\"aws.omics\",\"x\":\"\xff\xfe\"}"),
        "invalid JSON: invalid unicode code point",
    );
    assert_one_line_error(&transform_file(b"[1,2,3]"), "the event is a JSON array, not an object");
    let big = format!("\"{}\"", "x".repeat(5 << 20));
    assert_one_line_error(&transform_file(big.as_bytes()), "the event is a JSON string, not an object");
}

#[test]
fn a_five_megabyte_string_inside_an_event_is_processed() {
    let f = Fixture::load("eventbridge-omics-run-failed");
    let mut event = f.event_json();
    event["detail"]["statusMessage"] = serde_json::Value::from("m".repeat(5 << 20));
    let (code, stdout, stderr) = transform_file(event.to_string().as_bytes());
    assert_eq!(code, 0, "{stderr}");
    let record: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(record["status_message"].as_str().unwrap().len(), 1000);
    assert_eq!(record["statusMessage"].as_str().unwrap().len(), 5 << 20);
}

fn hostile(limits: Limits) -> Guest {
    let runtime = Runtime::new().unwrap();
    let bytes = std::fs::read(wasm::hostile()).unwrap();
    runtime.load(&bytes, "hostile".into(), None, limits).unwrap()
}

fn shape(guest: &Guest, mode: &str) -> Result<String, GuestError> {
    let event = format!(r#"{{"hostile":"{mode}"}}"#);
    let mut session = guest.open(event.as_bytes())?;
    assert!(matches!(session.plan(None)?, EventPlan::Process(_)));
    let ctx = Context { run: None, tasks: None, outputs: None, errors: vec![] };
    session.transform(&ctx).map(|o| o.record)
}

#[test]
fn a_guest_that_loops_forever_is_stopped_at_its_time_limit() {
    let limits = Limits { time: Duration::from_millis(300), ..Limits::default() };
    let guest = hostile(limits);
    let started = Instant::now();
    let err = shape(&guest, "loop").unwrap_err();
    let took = started.elapsed();
    assert!(matches!(err, GuestError::TimeLimit { .. }), "{err}");
    assert_eq!(err.to_string(), "the guest ran past its time limit of 300 ms");
    assert!(took >= Duration::from_millis(300) && took < Duration::from_secs(3), "{took:?}");
    assert_eq!(shape(&guest, "none").unwrap(), r#"{"ok":true}"#);
}

#[test]
fn a_guest_that_allocates_without_bound_is_stopped_at_its_memory_limit() {
    let guest = hostile(Limits { memory: 32 << 20, ..Limits::default() });
    let err = shape(&guest, "alloc").unwrap_err();
    assert!(matches!(err, GuestError::MemoryLimit { limit_mib: 32, .. }), "{err}");
    assert!(err.to_string().starts_with("the guest reached its memory limit of 32 MiB"), "{err}");
    assert_eq!(shape(&guest, "none").unwrap(), r#"{"ok":true}"#);
}

#[test]
fn a_guest_that_panics_traps_with_its_message() {
    let guest = hostile(Limits::default());
    let err = shape(&guest, "panic").unwrap_err();
    assert!(matches!(err, GuestError::Trap { .. }), "{err}");
    let text = err.to_string();
    assert!(text.starts_with("the guest trapped: "), "{text}");
    assert!(text.contains("hostile guest panics on purpose"), "{text}");
    assert_eq!(shape(&guest, "none").unwrap(), r#"{"ok":true}"#);
}

#[test]
fn a_guest_that_returns_a_huge_record_is_refused() {
    let guest = hostile(Limits::default());
    let err = shape(&guest, "output").unwrap_err();
    assert!(matches!(err, GuestError::OutputTooLarge { size, limit: 8_388_608 } if size > 10 << 20), "{err}");
    assert_eq!(shape(&guest, "none").unwrap(), r#"{"ok":true}"#);
}

#[test]
fn a_chatty_guest_has_its_stderr_truncated_not_failed() {
    let guest = hostile(Limits::default());
    let mut session = guest.open(br#"{"hostile":"chatty"}"#).unwrap();
    let ctx = Context { run: None, tasks: None, outputs: None, errors: vec![] };
    assert_eq!(session.transform(&ctx).unwrap().record, "{}");
    let stderr = session.stderr();
    assert_eq!(stderr.len(), 16 << 10, "1 MiB written, the first 16 KiB kept");
    assert!(stderr.starts_with("yyyy"));
}
