//! Hostile input and hostile guests: each gives a distinct, clear error within a bounded
//! time, and the next event is processed normally.

use std::time::{Duration, Instant};

use ngs360_omics::error::GuestError;
use ngs360_omics::sandbox::{Context, EventPlan, Guest, Limits, Runtime};

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
    assert!(matches!(err, GuestError::OutputTooLarge { size, limit: 8_388_608, .. } if size > 10 << 20), "{err}");
    assert_eq!(shape(&guest, "none").unwrap(), r#"{"ok":true}"#);
}

#[test]
fn a_chatty_guest_has_its_stderr_truncated_not_failed() {
    let guest = hostile(Limits::default());
    let mut session = guest.open(br#"{"hostile":"chatty"}"#).unwrap();
    let ctx = Context { run: None, tasks: None, outputs: None, errors: vec![] };
    assert_eq!(session.transform(&ctx).unwrap().record, "{}");
    // 1 MiB written in lines of 1,024 bytes; the first 16 KiB kept, newlines escaped.
    let stderr = session.stderr();
    assert!(stderr.starts_with("yyyy") && !stderr.contains('\n'), "{stderr}");
    assert_eq!((stderr.matches('y').count(), stderr.matches("\\n").count()), (16 * 1023, 16));
}

#[test]
fn a_guest_that_recurses_without_bound_traps_on_its_own_stack() {
    let guest = hostile(Limits::default());
    let started = Instant::now();
    let err = shape(&guest, "recurse").unwrap_err();
    assert!(matches!(err, GuestError::Trap { .. }), "{err}");
    // The shadow stack (in linear memory, first, 128 KiB) runs out before wasmtime's call
    // stack: the access below address 0 traps instead of corrupting data.
    let text = err.to_string();
    assert!(
        text == "the guest trapped: wasm trap: out of bounds memory access" || text.contains("call stack exhausted"),
        "{text}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(shape(&guest, "none").unwrap(), r#"{"ok":true}"#);
}

#[test]
fn a_guest_that_looks_for_the_host_finds_nothing() {
    let guest = hostile(Limits::default());
    let found: serde_json::Value = serde_json::from_str(&shape(&guest, "probe").unwrap()).unwrap();
    assert_eq!(found["env"], serde_json::json!([]), "no environment variable: {found}");
    assert_eq!(found["std_env"], serde_json::json!([]), "{found}");
    assert_eq!((found["args"].as_u64(), found["preopens"].as_u64()), (Some(0), Some(0)), "{found}");
    assert!(found["file"].as_str().unwrap().starts_with("error: "), "no file: {found}");
    assert!(found["dir"].as_str().unwrap().starts_with("error: "), "no directory: {found}");
    assert_eq!(found["wall_clock_seconds"], 0, "the clock is frozen at the epoch: {found}");
    assert_eq!(found["monotonic_ns"], 0, "{found}");
    assert_eq!(found["system_time_seconds"], 0, "{found}");
    assert_eq!(found["random"], serde_json::json!(vec![0; 16]), "no entropy: {found}");
    assert_eq!(found["insecure_random"], serde_json::json!(vec![0; 16]), "{found}");
    assert!(found["socket"].as_str().unwrap().starts_with("error: "), "no network: {found}");
    assert!(found["lookup"].as_str().unwrap().starts_with("error: "), "no name lookup: {found}");
    assert_eq!(shape(&guest, "none").unwrap(), r#"{"ok":true}"#);
}
