//! `transform` and `check` through the binary, over every fixture case.

use crate::support::{Fixture, TempDir, fixtures, run};

#[test]
fn transform_gives_every_fixture_record_byte_for_byte() {
    let all = Fixture::all();
    assert!(all.len() >= 20, "the fixture suite has {} cases", all.len());
    for f in &all {
        let dir = fixtures().join(&f.name);
        let event = dir.join("event.json");
        let context = dir.join("context.json");
        let mut args = vec!["transform", event.to_str().unwrap()];
        if context.is_file() {
            args.extend(["--context", context.to_str().unwrap()]);
        }
        let (code, stdout, stderr) = run(&args, &[]);
        assert!(!stderr.contains("panicked") && !stderr.contains("backtrace"), "{}: {stderr}", f.name);
        if let Some(record) = f.record() {
            assert_eq!(code, 0, "{}: {stderr}", f.name);
            assert_eq!(stdout, format!("{record}\n"), "{}", f.name);
            let callback = f.expected["callback"].as_str().unwrap();
            assert!(stderr.lines().any(|l| l.starts_with(&format!("callback: {callback}"))), "{}: {stderr}", f.name);
            if let Some(key) = f.expected["archive_key"].as_str() {
                assert!(stderr.contains(&format!("/omics-run-events/{key}")), "{}: {stderr}", f.name);
            }
        } else if f.expected.get("ignored").is_some() {
            assert_eq!((code, stdout.as_str()), (0, ""), "{}", f.name);
            assert_eq!(stderr.lines().count(), 1, "{}: {stderr}", f.name);
            assert!(stderr.starts_with("ignored: "), "{}: {stderr}", f.name);
        } else {
            assert_eq!((code, stdout.as_str()), (1, ""), "{}", f.name);
            assert_eq!(stderr.lines().count(), 1, "{}: {stderr}", f.name);
            assert!(stderr.starts_with("error: the guest refused the event: "), "{}: {stderr}", f.name);
        }
    }
}

#[test]
fn check_passes_on_the_fixtures_and_prints_a_diff_when_a_case_fails() {
    let (code, stdout, _) = run(&["check", "bundled", "--fixtures", fixtures().to_str().unwrap()], &[]);
    assert_eq!(code, 0, "{stdout}");
    let n = Fixture::all().len();
    assert!(stdout.contains(&format!("{n} cases: {n} passed, 0 failed")), "{stdout}");

    // A copy of two cases, one with a changed value, one with two keys swapped.
    let tmp = TempDir::new("check");
    for name in ["eventbridge-omics-run-running", "eventbridge-omics-run-failed"] {
        let from = fixtures().join(name);
        let to = tmp.0.join(name);
        std::fs::create_dir_all(&to).unwrap();
        for file in ["event.json", "context.json", "expected.json"] {
            std::fs::copy(from.join(file), to.join(file)).unwrap();
        }
    }
    let running = tmp.0.join("eventbridge-omics-run-running/expected.json");
    let text = std::fs::read_to_string(&running).unwrap().replace("\"Project\": \"P-0042\"", "\"Project\": \"P-9999\"");
    std::fs::write(&running, text).unwrap();
    let failed = tmp.0.join("eventbridge-omics-run-failed/expected.json");
    let mut expected: serde_json::Value = serde_json::from_slice(&std::fs::read(&failed).unwrap()).unwrap();
    let record = expected["record"].as_object_mut().unwrap();
    let (status, time) = (record.shift_remove("status").unwrap(), record.shift_remove("event_time").unwrap());
    let mut reordered = serde_json::Map::new();
    reordered.insert("omics_run_id".into(), record.shift_remove("omics_run_id").unwrap());
    reordered.insert("event_time".into(), time);
    reordered.insert("status".into(), status);
    reordered.extend(record.clone());
    expected["record"] = reordered.into();
    std::fs::write(&failed, serde_json::to_string_pretty(&expected).unwrap()).unwrap();

    let (code, stdout, _) = run(&["check", "bundled", "--fixtures", tmp.0.to_str().unwrap()], &[]);
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("FAIL  eventbridge-omics-run-running"), "{stdout}");
    assert!(stdout.contains(r#"~ tags: expected {"Project":"P-9999""#), "{stdout}");
    assert!(stdout.contains("FAIL  eventbridge-omics-run-failed"), "{stdout}");
    assert!(stdout.contains("key order differs from position 1: expected [event_time, status"), "{stdout}");
    assert!(stdout.contains("2 cases: 0 passed, 2 failed"), "{stdout}");
}

#[test]
fn usage_errors_name_what_is_missing_and_exit_2() {
    let (code, _, stderr) = run(&["transform"], &[]);
    assert_eq!(code, 2);
    assert!(stderr.starts_with("error: the following required arguments were not provided:"), "{stderr}");
    assert!(stderr.contains("<EVENT>") && stderr.contains("Usage: ngs360-omics transform"), "{stderr}");
    let (code, stdout, _) = run(&["check", "--help"], &[]);
    assert_eq!(code, 0);
    assert!(stdout.contains("Usage: ngs360-omics check [OPTIONS] <COMPONENT>"), "{stdout}");
    let (code, _, stderr) = run(&["transform", "/nonexistent/event.json"], &[]);
    assert_eq!(code, 2);
    assert!(stderr.starts_with("error: cannot read the event /nonexistent/event.json: "), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn diff_agrees_on_an_equal_guest_and_reports_a_changed_rule() {
    let plain = crate::support::wasm::rust_template(false);
    let changed = crate::support::wasm::rust_template(true);
    let n = Fixture::all().len();
    let fx = fixtures();
    let fx = fx.to_str().unwrap();

    // The template without rules is the standard shaping in std Rust: the same on every case.
    let (code, stdout, stderr) =
        run(&["diff", "--guest", "bundled", "--guest", plain.to_str().unwrap(), "--cases", fx], &[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains(&format!("{n} cases: {n} the same, 0 differ")), "{stdout}");
    assert!(stdout.contains("B: ngs360-omics-rust-guest@0.1.0#"), "{stdout}");

    // One rule changed: each FAILED case differs, and the report says how.
    let (code, stdout, _) = run(&["diff", "--guest=bundled", "--guest", changed.to_str().unwrap(), "--cases", fx], &[]);
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains(&format!("DIFF  {fx}/eventbridge-omics-run-failed\n")), "{stdout}");
    assert!(stdout.contains("      + needs_attention: added by B (true)"), "{stdout}");
    assert!(stdout.contains(&format!("same  {fx}/eventbridge-omics-run-completed\n")), "{stdout}");
    assert!(stdout.contains(&format!("{n} cases: {} the same, 4 differ", n - 4)), "{stdout}");

    // Captured inputs: case folders at any depth, no expected.json, one that B refuses differently.
    let tmp = TempDir::new("diff");
    let deep = tmp.0.join("2026/11/30/event-1");
    std::fs::create_dir_all(&deep).unwrap();
    let failed = fixtures().join("eventbridge-omics-run-failed");
    std::fs::copy(failed.join("event.json"), deep.join("event.json")).unwrap();
    std::fs::copy(failed.join("context.json"), deep.join("context.json")).unwrap();
    let other = tmp.0.join("2026/11/30/event-2");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("event.json"), r#"{"source":"aws.omics","detail-type":"Run Status Change"}"#).unwrap();
    let cases = tmp.0.to_str().unwrap();
    let (code, stdout, _) =
        run(&["diff", "--guest", "bundled", "--guest", changed.to_str().unwrap(), "--cases", cases], &[]);
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains(&format!("DIFF  {cases}/2026/11/30/event-1")), "{stdout}");
    assert!(stdout.contains(&format!("same  {cases}/2026/11/30/event-2")), "{stdout}");
    assert!(stdout.contains("2 cases: 1 the same, 1 differ"), "{stdout}");

    // Against a guest that ignores what the other processes, and with one guest only.
    let (code, stdout, _) = run(
        &["diff", "--guest", "bundled", "--guest", crate::support::wasm::hostile().to_str().unwrap(), "--cases", cases],
        &[],
    );
    assert_eq!(code, 1, "{stdout}");
    let (code, _, stderr) = run(&["diff", "--guest", "bundled"], &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("give --guest twice"), "{stderr}");
}
