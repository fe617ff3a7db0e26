//! Loading components: the trust rule (a `.wasm` is compiled here; a `.cwasm` only with a
//! pinned sha256), `compile`, the interface version rules, load failures at cold start,
//! and refreshing an S3 component in a warm function.

use std::time::Duration;

use ngs360_omics::error::LoadError;
use ngs360_omics::sandbox::{Limits, Runtime};

use crate::lambda::{lambda_env, spawn};
use crate::pipeline::KEY;
use crate::support::moto::{self, aws_env, bucket};
use crate::support::omics::{self, Omics};
use crate::support::runtime_api::{Answer, RuntimeApi};
use crate::support::wes::Wes;
use crate::support::{Fixture, GUEST, HOSTILE, TempDir, fixtures, run, wasm};

fn fixtures_arg() -> String {
    fixtures().to_str().unwrap().to_owned()
}

#[test]
fn a_wasm_component_is_compiled_by_the_host_and_passes_check() {
    let (code, stdout, stderr) = run(&["check", wasm::guest().to_str().unwrap(), "--fixtures", &fixtures_arg()], &[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.starts_with(&format!("checking {GUEST}#")), "{stdout}");
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
}

#[test]
fn a_precompiled_component_loads_only_when_its_sha256_is_pinned() {
    let tmp = TempDir::new("cwasm");
    let cwasm = tmp.0.join("guest.cwasm");
    let (code, sha, stderr) = run(&["compile", wasm::guest().to_str().unwrap(), "-o", cwasm.to_str().unwrap()], &[]);
    assert_eq!(code, 0, "{stderr}");
    let sha = sha.trim().to_owned();
    assert_eq!(sha.len(), 64);
    assert!(stderr.starts_with("compiled "), "{stderr}");

    let path = cwasm.to_str().unwrap();
    let (code, _, stderr) = run(&["check", path, "--fixtures", &fixtures_arg()], &[]);
    assert_eq!(code, 1);
    assert!(stderr.contains("is a precompiled component (.cwasm), which is native code"), "{stderr}");

    let wrong = "0".repeat(64);
    let (code, _, stderr) =
        run(&["check", path, "--fixtures", &fixtures_arg()], &[("GUEST_SHA256".into(), wrong.clone())]);
    assert_eq!(code, 1);
    assert!(stderr.contains(&format!("has sha256 {sha}, but GUEST_SHA256 pins {wrong}")), "{stderr}");

    let (code, stdout, stderr) = run(&["check", path, "--fixtures", &fixtures_arg()], &[("GUEST_SHA256".into(), sha)]);
    assert_eq!(code, 0, "{stdout}{stderr}");

    // A pin applies to a .wasm too.
    let (code, _, stderr) = run(
        &["check", wasm::guest().to_str().unwrap(), "--fixtures", &fixtures_arg()],
        &[("GUEST_SHA256".into(), wrong)],
    );
    assert_eq!(code, 1);
    assert!(stderr.contains("but GUEST_SHA256 pins"), "{stderr}");
}

#[test]
fn a_component_for_another_architecture_is_refused_with_the_reason() {
    let tmp = TempDir::new("cwasm-cross");
    let other = if cfg!(target_arch = "x86_64") { "aarch64" } else { "x86_64" };
    let cwasm = tmp.0.join("guest.cwasm");
    let (code, sha, stderr) =
        run(&["compile", wasm::guest().to_str().unwrap(), "-o", cwasm.to_str().unwrap(), "--target", other], &[]);
    assert_eq!(code, 0, "{stderr}");
    let (code, _, stderr) = run(
        &["check", cwasm.to_str().unwrap(), "--fixtures", &fixtures_arg()],
        &[("GUEST_SHA256".into(), sha.trim().into())],
    );
    assert_eq!(code, 1);
    assert!(stderr.contains(&format!("Module was compiled for architecture '{other}'")), "{stderr}");
}

/// The real guest with its interface renamed to another version, as a guest built against
/// that version of the WIT package would be.
fn guest_at_version(version: &str) -> Vec<u8> {
    let from = b"ngs360:omics-events/processor@0.2.0";
    let to = format!("ngs360:omics-events/processor@{version}");
    assert_eq!(to.len(), from.len());
    let mut bytes = std::fs::read(wasm::guest()).unwrap();
    let mut replaced = 0;
    let mut i = 0;
    while i + from.len() <= bytes.len() {
        if &bytes[i..i + from.len()] == from {
            bytes[i..i + from.len()].copy_from_slice(to.as_bytes());
            replaced += 1;
            i += from.len();
        } else {
            i += 1;
        }
    }
    assert!(replaced > 0);
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compatible_interface_versions_load_and_others_are_refused_naming_both() {
    let runtime = Runtime::new().unwrap();
    let patch = runtime.load(guest_at_version("0.2.9"), "guest@0.2.9".into(), None, Limits::default()).await.unwrap();
    assert_eq!(patch.info().name, "ngs360-omics-guest");
    assert!(patch.label().starts_with(GUEST), "{}", patch.label());
    let mut session = patch.open(&Fixture::load("eventbridge-omics-run-running").event).await.unwrap();
    assert!(session.plan(None).await.is_ok());

    let err =
        runtime.load(guest_at_version("0.3.0"), "guest@0.3.0".into(), None, Limits::default()).await.err().unwrap();
    assert!(matches!(err, LoadError::Version { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "the guest component guest@0.3.0 exports ngs360:omics-events/processor@0.3.0, but this host serves \
         ngs360:omics-events/processor@0.2.0 (or a compatible version)"
    );
    let tmp = TempDir::new("v020");
    let path = tmp.0.join("guest-0.3.0.wasm");
    std::fs::write(&path, guest_at_version("0.3.0")).unwrap();
    let (code, _, stderr) = tokio::task::block_in_place(|| {
        run(&["compile", path.to_str().unwrap(), "-o", tmp.0.join("x.cwasm").to_str().unwrap()], &[])
    });
    assert_eq!(code, 1);
    assert!(stderr.contains("exports ngs360:omics-events/processor@0.3.0"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_that_cannot_be_loaded_stops_the_cold_start_with_the_reason() {
    let guests = bucket("guests-missing").await;
    let tmp = TempDir::new("garbage");
    let garbage = tmp.0.join("garbage.wasm");
    std::fs::write(&garbage, b"\0asm\x01\0\0\0 this is not a component").unwrap();
    let cases = [
        (
            format!("s3://{guests}/missing.wasm"),
            format!("cannot read the guest component s3://{guests}/missing.wasm: no such object"),
        ),
        (garbage.to_str().unwrap().to_owned(), format!("cannot compile the guest component {}", garbage.display())),
    ];
    for (source, message) in cases {
        let api = RuntimeApi::start().await;
        let mut env = lambda_env(&api);
        env.extend(aws_env("http://127.0.0.1:9"));
        env.extend(
            [
                ("API_SERVER", "https://wes.example.org".to_owned()),
                ("AUTH_TOKEN", KEY.to_owned()),
                ("DATA_LAKE_BUCKET", "lake".into()),
                ("GUEST_COMPONENT", source),
            ]
            .map(|(k, v)| (k.to_string(), v)),
        );
        let (mut proc, _) = spawn(&env);
        let report = api.init_error(Duration::from_secs(30)).await.expect("an init error report");
        assert!(report["errorMessage"].as_str().unwrap().starts_with(&message), "{report}");
        assert!(!proc.wait(10).expect("exits").success());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warm_function_swaps_in_a_new_component_and_refuses_a_bad_one() {
    let api = RuntimeApi::start().await;
    let omics = Omics::start().await;
    let wes = Wes::start(KEY).await;
    let archive = bucket("refresh").await;
    let guests = bucket("refresh-guests").await;
    let s3 = moto::s3().await;
    let put = |body: Vec<u8>| s3.put_object().bucket(&guests).key("omics/guest.wasm").body(body.into()).send();
    put(std::fs::read(wasm::guest()).unwrap()).await.unwrap();
    let f = Fixture::load("eventbridge-omics-run-running");
    omics.set("4417021", omics::Run::Found { run: f.context["run"].clone(), tasks: vec![] });

    let mut env = lambda_env(&api);
    env.extend(aws_env(&omics.url()));
    env.extend(
        [
            ("API_SERVER", wes.api_server()),
            ("DATA_LAKE_BUCKET", archive),
            ("AUTH_TOKEN", KEY.into()),
            ("GUEST_COMPONENT", format!("s3://{guests}/omics/guest.wasm")),
            ("GUEST_REFRESH_SECONDS", "1".into()),
        ]
        .map(|(k, v)| (k.to_string(), v)),
    );
    let (proc, _) = spawn(&env);

    let mut n = 0;
    let mut invoke = |event: &[u8]| {
        n += 1;
        let id = format!("r-{n}");
        api.invoke(&id, event);
        id
    };
    let guest_of = |answer: Answer| match answer {
        // name@version#sha256 (12 hex digits): compared without the digest.
        Answer::Response(r) => r["guest"].as_str().unwrap_or("(ignored)").split('#').next().unwrap().to_owned(),
        Answer::Error(e) => panic!("{e}"),
    };
    let first = invoke(&f.event);
    assert_eq!(guest_of(api.answer(&first, Duration::from_secs(30)).await), GUEST);

    // A new component: the check starts with the next invocation, the swap serves the ones after.
    put(std::fs::read(wasm::hostile()).unwrap()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let during = invoke(&f.event);
    assert_eq!(guest_of(api.answer(&during, Duration::from_secs(30)).await), GUEST);
    let mut swapped = false;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let next = invoke(&f.event);
        if guest_of(api.answer(&next, Duration::from_secs(30)).await) == HOSTILE {
            swapped = true;
            break;
        }
    }
    assert!(swapped, "the new component was not swapped in: {}", proc.stdout());

    // A bad upload is refused and logged; the running component stays.
    put(b"not a component at all".to_vec()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for _ in 0..8 {
        let next = invoke(&f.event);
        assert_eq!(guest_of(api.answer(&next, Duration::from_secs(30)).await), HOSTILE);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let logs = proc.stdout();
    let refused = logs
        .lines()
        .find(|l| l.contains("new guest component refused"))
        .unwrap_or_else(|| panic!("no refusal logged: {logs}"));
    assert!(refused.contains("ERROR"), "{refused}");
    assert!(refused.contains(&format!("keeping {HOSTILE}")), "{refused}");
}

#[test]
fn the_pin_is_the_sha256_of_the_bytes() {
    assert_eq!(
        ngs360_omics::sandbox::sha256_hex(b"abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}

/// Runs tools/publish_guest.py against moto: (exit code, stdout, stderr).
fn publish(component: &std::path::Path, bucket: &str, out: &std::path::Path) -> (i32, String, String) {
    let arch = if cfg!(target_arch = "aarch64") { "arm64" } else { "x86_64" };
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let tool = crate::support::root().join("tools/publish_guest.py");
    let done = std::process::Command::new(python)
        .arg(tool)
        .arg(component)
        .args(["--bucket", bucket, "--arch", arch, "--host", crate::support::bin(), "--fixtures", &fixtures_arg()])
        .arg("--out")
        .arg(out)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(aws_env("http://127.0.0.1:9"))
        .output()
        .expect("running tools/publish_guest.py");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (done.status.code().unwrap_or(-1), text(&done.stdout), text(&done.stderr))
}

/// The value of `  NAME=value` in publish's output (the first, or the `nth`).
fn parameter(stdout: &str, name: &str, nth: usize) -> String {
    let prefix = format!("  {name}=");
    let line = stdout.lines().filter(|l| l.starts_with(&prefix)).nth(nth);
    line.unwrap_or_else(|| panic!("no {name} in {stdout}"))[prefix.len()..].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_checks_precompiles_uploads_a_version_and_prints_what_loads_it() {
    let tmp = TempDir::new("publish");
    let bucket = bucket("guests").await;
    let s3 = moto::s3().await;

    // No versions, no upload: rollback needs them.
    let plain = wasm::rust_template(false);
    let (code, _, stderr) = publish(&plain, &bucket, &tmp.0);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("does not keep versions") && stderr.contains("put-bucket-versioning"), "{stderr}");
    let status = aws_sdk_s3::types::BucketVersioningStatus::Enabled;
    let versioning = aws_sdk_s3::types::VersioningConfiguration::builder().status(status).build();
    s3.put_bucket_versioning().bucket(&bucket).versioning_configuration(versioning).send().await.unwrap();

    // A guest that fails `check` is not uploaded.
    let (code, stdout, stderr) = publish(&wasm::rust_template(true), &bucket, &tmp.0);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stdout.contains("FAIL  eventbridge-omics-run-failed"), "{stdout}");
    assert!(stderr.contains("check failed (exit 1); nothing was uploaded"), "{stderr}");
    let listed = s3.list_objects_v2().bucket(&bucket).send().await.unwrap();
    assert_eq!(listed.key_count(), Some(0));

    // Twice: the second run names the first as its rollback.
    let (code, first, stderr) = publish(&plain, &bucket, &tmp.0);
    assert_eq!(code, 0, "{first}{stderr}");
    let (code, second, stderr) = publish(&plain, &bucket, &tmp.0);
    assert_eq!(code, 0, "{second}{stderr}");
    let uri = parameter(&second, "GuestComponentUri", 0);
    let sha = parameter(&second, "GuestComponentSha256", 0);
    assert!(uri.starts_with(&format!("s3://{bucket}/guests/rust-template-plain-")), "{second}");
    assert!(uri.contains(".cwasm?versionId="), "{second}");
    assert_eq!(parameter(&second, "GuestComponentUri", 1), parameter(&first, "GuestComponentUri", 0));

    // What it printed loads: the uploaded .cwasm, pinned, agrees with the bundled guest.
    let mut env = aws_env("http://127.0.0.1:9");
    env.push(("GUEST_SHA256".into(), sha.clone()));
    let (code, stdout, stderr) =
        run(&["diff", "--guest", "bundled", "--guest", &uri, "--cases", &fixtures_arg()], &env);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains(&format!("B: ngs360-omics-rust-guest@0.1.0#{}", &sha[..12])), "{stdout}");
    let key = uri.trim_start_matches(&format!("s3://{bucket}/")).split('?').next().unwrap().to_owned();
    let head = s3.head_object().bucket(&bucket).key(&key).send().await.unwrap();
    assert_eq!(head.server_side_encryption().map(|e| e.as_str()), Some("AES256"));
    assert_eq!(head.metadata().and_then(|m| m.get("sha256")), Some(&sha));
}
