//! Hostile input and hostile guests: each gives a distinct, clear error within a bounded
//! time and memory, and the next event is processed normally. In-process here, through the
//! binary's commands and in Lambda mode in `hostile_lambda.rs`.

use std::time::{Duration, Instant};

use ngs360_omics::error::{GuestError, LoadError};
use ngs360_omics::sandbox::{Callback, Context, EventPlan, Guest, Limits, Runtime};

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

async fn hostile(limits: Limits) -> Guest {
    let runtime = Runtime::new().unwrap();
    let bytes = std::fs::read(wasm::hostile()).unwrap();
    runtime.load(bytes, "hostile".into(), None, limits).await.unwrap()
}

/// The hostile guest's answer for one mode: the record, or the error.
async fn shape(guest: &Guest, mode: &str) -> Result<String, GuestError> {
    let event = format!(r#"{{"hostile":"{mode}"}}"#);
    let mut session = guest.open(event.as_bytes()).await?;
    match session.plan(None).await? {
        EventPlan::Process(_) => {}
        EventPlan::Ignore(why) => return Ok(format!("ignored: {why}")),
    }
    let ctx = Context { run: None, tasks: None, outputs: None, errors: vec![] };
    session.transform(&ctx).await.map(|o| o.record)
}

/// The next event after a hostile one is processed normally.
async fn still_fine(guest: &Guest) {
    assert_eq!(shape(guest, "none").await.unwrap(), r#"{"ok":true}"#);
}

const FAST: Limits = Limits { memory: 64 << 20, time: Duration::from_millis(300), stderr: 16 << 10 };

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_that_loops_forever_is_stopped_at_its_time_limit() {
    let guest = hostile(FAST).await;
    let started = Instant::now();
    let err = shape(&guest, "loop").await.unwrap_err();
    let took = started.elapsed();
    assert!(matches!(err, GuestError::TimeLimit { .. }), "{err}");
    assert_eq!(err.to_string(), "the guest ran past its time limit of 300 ms");
    assert!(took >= Duration::from_millis(300) && took < Duration::from_millis(800), "{took:?}");
    still_fine(&guest).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_that_sleeps_or_polls_in_any_export_is_stopped_at_its_time_limit() {
    let guest = hostile(FAST).await;
    for mode in ["sleep-parse", "sleep-plan", "sleep-transform", "poll"] {
        let started = Instant::now();
        let err = shape(&guest, mode).await.unwrap_err();
        let took = started.elapsed();
        assert!(matches!(err, GuestError::TimeLimit { .. }), "{mode}: {err}");
        assert!(err.to_string().starts_with("the guest ran past its time limit of 300 ms"), "{mode}: {err}");
        // The limit plus a small slack, where a blocked host call used to hold on for a minute.
        eprintln!("{mode}: stopped after {took:?}");
        assert!(took >= Duration::from_millis(300) && took < Duration::from_millis(800), "{mode}: {took:?}");
        still_fine(&guest).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_that_allocates_without_bound_is_stopped_at_its_memory_limit() {
    let guest = hostile(Limits { memory: 32 << 20, ..Limits::default() }).await;
    let err = shape(&guest, "alloc").await.unwrap_err();
    assert!(matches!(err, GuestError::MemoryLimit { limit_mib: 32, .. }), "{err}");
    assert!(err.to_string().starts_with("the guest reached its memory limit of 32 MiB"), "{err}");
    still_fine(&guest).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_that_panics_traps_with_its_message() {
    let guest = hostile(Limits::default()).await;
    let err = shape(&guest, "panic").await.unwrap_err();
    assert!(matches!(err, GuestError::Trap { .. }), "{err}");
    let text = err.to_string();
    assert!(text.starts_with("the guest trapped: "), "{text}");
    assert!(text.contains("hostile guest panics on purpose"), "{text}");
    assert!(!text.contains('\n'), "{text}");
    still_fine(&guest).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_answers_are_refused_before_they_are_copied() {
    let guest = hostile(Limits::default()).await;
    let cases = [
        ("output", "the guest returned a record of 10485762 bytes, over the limit of 8388608"),
        ("huge-refusal", "the guest returned a string of 20971520 bytes, over the limit of 65536"),
        ("huge-ignore", "the guest returned a string of 20971520 bytes, over the limit of 65536"),
        ("huge-identity", "the guest returned a string of 102400 bytes, over the limit of 65536"),
        ("many-notes", "the guest returned a list of 1000000 items, over the limit of 256"),
    ];
    for (mode, message) in cases {
        let err = shape(&guest, mode).await.unwrap_err();
        assert!(matches!(err, GuestError::OutputTooLarge { .. }), "{mode}: {err}");
        assert_eq!(err.to_string(), format!("{message}; nothing of it was read"), "{mode}");
        still_fine(&guest).await;
    }
}

/// No control character, and at most `max` characters.
fn plain(text: &str, max: usize) -> bool {
    text.chars().count() <= max && !text.chars().any(char::is_control)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_string_a_guest_returns_is_cut_and_escaped() {
    let guest = hostile(Limits::default()).await;
    let mut session = guest.open(br#"{"hostile":"newlines"}"#).await.unwrap();
    let EventPlan::Process(plan) = session.plan(None).await.unwrap() else { panic!() };
    let id = &plan.identity;
    assert!(plain(&id.run_id, 300) && plain(&id.status, 300), "{id:?}");
    assert!(id.run_id.contains("\\n{\"level\":\"ERROR\""), "escaped, not dropped: {}", id.run_id);
    let ctx = Context { run: None, tasks: None, outputs: None, errors: vec![] };
    let outcome = session.transform(&ctx).await.unwrap();
    assert!(plain(&outcome.identity.event_id.clone().unwrap(), 300));
    let Callback::Skip(why) = &outcome.callback else { panic!() };
    assert!(plain(why, 400), "{why}");
    assert_eq!(outcome.notes.len(), 65, "64 notes and a count of the rest");
    assert_eq!(outcome.notes.last().unwrap(), "... and 192 more");
    assert!(outcome.notes.iter().chain(&outcome.enrichment_errors).all(|n| plain(n, 600)));

    let mut session = guest.open(br#"{"hostile":"newlines-ignore"}"#).await.unwrap();
    let EventPlan::Ignore(why) = session.plan(None).await.unwrap() else { panic!() };
    assert!(plain(&why, 400) && why.ends_with("more characters)"), "{why}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chatty_guest_has_its_stderr_truncated_not_failed() {
    let guest = hostile(Limits::default()).await;
    let mut session = guest.open(br#"{"hostile":"chatty"}"#).await.unwrap();
    let ctx = Context { run: None, tasks: None, outputs: None, errors: vec![] };
    assert_eq!(session.transform(&ctx).await.unwrap().record, "{}");
    // 1 MiB written in lines of 1,024 bytes; the first 16 KiB kept, newlines escaped, and
    // the escaped text cut to 16 KiB too.
    let stderr = session.stderr();
    assert!(stderr.starts_with("yyyy") && !stderr.contains('\n'), "{stderr}");
    assert_eq!(stderr.matches("\\n").count(), 15);
    assert!(stderr.len() <= (16 << 10) + 32 && stderr.ends_with(" more characters)"), "{}", stderr.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_that_recurses_without_bound_traps_on_its_own_stack() {
    let guest = hostile(Limits::default()).await;
    let started = Instant::now();
    let err = shape(&guest, "recurse").await.unwrap_err();
    assert!(matches!(err, GuestError::Trap { .. }), "{err}");
    // The shadow stack (in linear memory, first, 128 KiB) runs out before wasmtime's call
    // stack: the access below address 0 traps instead of corrupting data.
    let text = err.to_string();
    assert!(
        text == "the guest trapped: wasm trap: out of bounds memory access" || text.contains("call stack exhausted"),
        "{text}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    still_fine(&guest).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_that_looks_for_the_host_finds_nothing() {
    let guest = hostile(Limits::default()).await;
    let found: serde_json::Value = serde_json::from_str(&shape(&guest, "probe").await.unwrap()).unwrap();
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
    still_fine(&guest).await;
}

/// A variant of the hostile guest, precompiled and pinned, so that loading it takes only
/// the time of its own `describe`.
async fn load_variant(feature: &'static str, limits: Limits) -> (Result<Guest, LoadError>, Duration) {
    use ngs360_omics::sandbox::{BUNDLED_TARGET, precompile, sha256_hex};
    let runtime = Runtime::new().unwrap();
    let bytes = std::fs::read(wasm::hostile_variant(feature)).unwrap();
    let cwasm = match tokio::task::spawn_blocking(move || precompile(&bytes, BUNDLED_TARGET, feature)).await.unwrap() {
        Ok(cwasm) => cwasm,
        Err(e) => return (Err(e), Duration::ZERO),
    };
    let pin = sha256_hex(&cwasm);
    let started = Instant::now();
    let loaded = runtime.load(cwasm, feature.into(), Some(&pin), limits).await;
    (loaded, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misbehaving_at_load_time_is_a_clear_load_error() {
    // Sleeping in describe: the time limit applies to loading too.
    let (loaded, took) = load_variant("describe-sleeps", FAST).await;
    let err = loaded.err().unwrap();
    assert!(took >= Duration::from_millis(300) && took < Duration::from_millis(800), "{took:?}");
    assert!(matches!(err, LoadError::Describe { .. }), "{err}");
    assert!(
        err.to_string().ends_with("failed its describe call: the guest ran past its time limit of 300 ms"),
        "{err}"
    );

    // Writing to stderr while loaded (any std guest that logs): no panic; the name is plain.
    let guest = load_variant("describe-chatty", Limits::default()).await.0.unwrap();
    assert!(plain(&guest.label(), 200) && guest.label().starts_with("hostile{\"level\":"), "{}", guest.label());
    still_fine(&guest).await;

    // Importing what the host does not provide: refused when linking, naming the import.
    let err = load_variant("unlinked-import", Limits::default()).await.0.err().unwrap();
    assert!(matches!(err, LoadError::Link { .. }), "{err}");
    assert!(err.to_string().contains("wasi:http/"), "{err}");
}

/// The binary's `transform` with the hostile guest, on one mode, under a 300 ms limit.
fn transform_hostile(mode: &str) -> ((i32, String, String), Duration) {
    let tmp = TempDir::new("hostile-transform");
    let path = tmp.0.join("event.json");
    std::fs::write(&path, format!(r#"{{"hostile":"{mode}"}}"#)).unwrap();
    let started = Instant::now();
    let out = run(
        &["transform", path.to_str().unwrap(), "--guest", wasm::hostile().to_str().unwrap()],
        &[("GUEST_TIMEOUT_MS".into(), "300".into())],
    );
    (out, started.elapsed())
}

#[test]
fn in_transform_and_check_each_probe_ends_with_its_own_error() {
    // Compiling the hostile .wasm at load takes about a second; the call itself 300 ms.
    for (mode, message) in [
        ("sleep-parse", "error: the guest ran past its time limit of 300 ms"),
        ("sleep-transform", "error: the guest ran past its time limit of 300 ms"),
        ("poll", "error: the guest ran past its time limit of 300 ms"),
        ("huge-ignore", "error: the guest returned a string of 20971520 bytes, over the limit of 65536"),
        ("huge-refusal", "error: the guest returned a string of 20971520 bytes, over the limit of 65536"),
        ("many-notes", "error: the guest returned a list of 1000000 items, over the limit of 256"),
    ] {
        let ((code, stdout, stderr), took) = transform_hostile(mode);
        assert_eq!((code, stdout.as_str()), (1, ""), "{mode}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{mode}: {stderr}");
        assert!(stderr.starts_with(message), "{mode}: {stderr}");
        assert!(took < Duration::from_secs(10), "{mode}: {took:?}");
    }
    // A reason of newlines and forged log lines: one line, escaped.
    let ((code, _, stderr), _) = transform_hostile("newlines-ignore");
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("ignored: \\n{\"level\":\"ERROR\""), "{stderr}");
    let ((code, stdout, stderr), _) = transform_hostile("none");
    assert_eq!((code, stdout.trim()), (0, r#"{"ok":true}"#), "{stderr}");

    // Loading: a guest that writes to stderr in describe (this used to abort the host with
    // "Cannot start a runtime from within a runtime"), one that sleeps there, one that
    // imports what the host does not link.
    let check = |feature: &'static str| {
        let component = wasm::hostile_variant(feature);
        let fixtures = crate::support::fixtures();
        run(
            &["check", component.to_str().unwrap(), "--fixtures", fixtures.to_str().unwrap()],
            &[("GUEST_TIMEOUT_MS".into(), "300".into())],
        )
    };
    let (code, stdout, stderr) = check("describe-chatty");
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stdout.starts_with("checking hostile{\"level\":\"ERROR\""), "{stdout}");
    assert!(!stderr.contains("panicked") && !stderr.contains("runtime"), "{stderr}");
    let (code, _, stderr) = check("describe-sleeps");
    assert_eq!(code, 1);
    assert!(stderr.contains("failed its describe call: the guest ran past its time limit of 300 ms"), "{stderr}");
    let (code, _, stderr) = check("unlinked-import");
    assert_eq!(code, 1);
    assert!(stderr.starts_with("error: cannot link the guest component ") && stderr.contains("wasi:http/"), "{stderr}");
}

/// What the hostile guest's `echo` mode returns as the record, through the host.
async fn echoed(guest: &Guest, record: &str) -> Result<String, GuestError> {
    let input = format!("{{\"hostile\":\"echo\"}}\n20260302_140509\ne-echo\n{record}");
    let mut session = guest.open(input.as_bytes()).await?;
    let ctx = Context { run: None, tasks: None, outputs: None, errors: vec![] };
    session.transform(&ctx).await.map(|o| o.record)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_that_readers_would_read_differently_are_refused() {
    let guest = hostile(Limits::default()).await;
    let deep = format!("{{\"status\":\"COMPLETED\",\"x\":{}1{}}}", "[".repeat(200_000), "]".repeat(200_000));
    let cases = [
        (deep.as_str(), "it nests deeper than 64 levels (at $.x[0][0]"),
        (
            r#"{"omics_run_id":"1","status":"COMPLETED","status":"FAILED"}"#,
            "it has the key \"status\" twice in one object (at $)",
        ),
        (r#"{"tags":{"WESRunId":"a","WESRunId":"b"}}"#, "the key \"WESRunId\" twice in one object (at $.tags)"),
        (r#"{"status":"COMPLETED","note":"\udead"}"#, "it holds a lone surrogate escape (\\udead at byte 30)"),
    ];
    for (record, message) in cases {
        let err = echoed(&guest, record).await.unwrap_err();
        assert!(matches!(err, GuestError::InvalidRecord(_)), "{err}");
        let text = err.to_string();
        assert!(text.starts_with("the guest's record cannot be stored: ") && text.contains(message), "{text}");
        assert!(text.len() < 400, "the error stays one short line: {text}");
        still_fine(&guest).await;
    }
    // What readers agree on still passes: 64 levels, equal keys in different objects, a
    // surrogate pair.
    let fine = format!(
        "{{\"a\":{}1{},\"b\":{{\"k\":1}},\"c\":{{\"k\":2}},\"d\":\"\\ud83d\\ude00\"}}",
        "[".repeat(63),
        "]".repeat(63)
    );
    assert_eq!(echoed(&guest, &fine).await.unwrap(), fine);
}
