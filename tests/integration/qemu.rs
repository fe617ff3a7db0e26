//! The packaged arm64 `bootstrap` (cargo lambda, zig) under qemu-aarch64: the bundled guest,
//! precompiled for aarch64, shapes a fixture offline, and the Lambda runtime loop processes
//! an event against the loopback peers. Run by `make qemu-test` after `make package`.

use std::process::Command;
use std::time::Duration;

use crate::pipeline::KEY;
use crate::support::moto::{self, aws_env, bucket};
use crate::support::omics::Omics;
use crate::support::runtime_api::{Answer, RuntimeApi};
use crate::support::wes::Wes;
use crate::support::{FIXTURE_OUTPUTS, Fixture, Proc, fixtures, serve_fixture};

fn qemu(bootstrap: &str) -> Command {
    let mut cmd = Command::new(std::env::var("QEMU_AARCH64").unwrap_or_else(|_| "qemu-aarch64-static".into()));
    cmd.args(["-L", "/usr/aarch64-linux-gnu", bootstrap]);
    cmd
}

fn bootstrap() -> String {
    std::env::var("NGS360_AARCH64_BOOTSTRAP").expect("NGS360_AARCH64_BOOTSTRAP: the packaged arm64 bootstrap")
}

#[test]
#[ignore = "needs the packaged arm64 bootstrap and qemu-aarch64: make package qemu-test"]
fn qemu_arm64_bootstrap_shapes_a_fixture_with_its_bundled_guest() {
    let f = Fixture::load("eventbridge-omics-run-completed");
    let dir = fixtures().join(&f.name);
    let out = qemu(&bootstrap())
        .args([
            "transform",
            dir.join("event.json").to_str().unwrap(),
            "--context",
            dir.join("context.json").to_str().unwrap(),
        ])
        .output()
        .expect("qemu-aarch64");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{}\n", f.record().unwrap()));
    assert!(stderr.contains(&format!("guest: {}#", crate::support::GUEST)), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the packaged arm64 bootstrap and qemu-aarch64: make package qemu-test"]
async fn qemu_arm64_bootstrap_runs_the_lambda_loop() {
    let api = RuntimeApi::start().await;
    let omics = Omics::start().await;
    let wes = Wes::start(KEY).await;
    let archive = bucket("qemu").await;
    let f = Fixture::load("eventbridge-omics-run-completed");
    let _outputs = FIXTURE_OUTPUTS.lock().await;
    serve_fixture(&omics, &moto::s3().await, &f).await;

    let mut cmd = qemu(&bootstrap());
    cmd.env_clear()
        .envs(crate::lambda::lambda_env(&api).into_iter().chain(aws_env(&omics.url())))
        .env("API_SERVER", wes.api_server())
        .env("DATA_LAKE_BUCKET", &archive)
        .env("AUTH_TOKEN", KEY);
    let proc = Proc::spawn(cmd);
    let spawned = std::time::Instant::now();

    api.invoke("q-completed", &f.event);
    let Answer::Response(ok) = api.answer("q-completed", Duration::from_secs(120)).await else {
        panic!("completed: {}", proc.stdout())
    };
    eprintln!("qemu cold start, process start to the first /next: {:?}", api.first_next().unwrap() - spawned);
    let key = f.expected["archive_key"].as_str().unwrap();
    assert_eq!(ok["body"], format!("Event processed, status: COMPLETED -> s3://{archive}/omics-run-events/{key}"));
    assert_eq!(ok["callback"], "sent (HTTP 200)");
    assert_eq!(serde_json::to_string(&wes.accepted()[0]).unwrap(), f.record().unwrap());

    api.invoke("q-malformed", &Fixture::load("malformed-top-level-array").event);
    let Answer::Error(bad) = api.answer("q-malformed", Duration::from_secs(60)).await else { panic!() };
    assert_eq!(bad["errorMessage"], "the guest refused the event: the event is a JSON array, not an object");
}
