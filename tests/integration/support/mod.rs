//! Shared test support: fixtures, the binary, child processes, and the loopback peers.

#![allow(dead_code)]

pub mod http;
pub mod moto;
pub mod omics;
pub mod runtime_api;
pub mod wasm;
pub mod wes;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use serde_json::Value;

/// The bundled guest's label (`name@version`), as log lines and responses give it.
pub const GUEST: &str = concat!("ngs360-omics-guest@", env!("CARGO_PKG_VERSION"));
/// The hostile test guest's label.
pub const HOSTILE: &str = concat!("hostile@", env!("CARGO_PKG_VERSION"));

/// The repository's root.
/// A time as HealthOmics' JSON and EventBridge write it (RFC 3339, UTC).
pub fn iso(t: std::time::SystemTime) -> String {
    aws_sdk_s3::primitives::DateTime::from(t).fmt(aws_sdk_s3::primitives::DateTimeFormat::DateTime).unwrap()
}

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

pub fn fixtures() -> PathBuf {
    root().join("fixtures")
}

/// The `ngs360-omics` binary cargo built for these tests.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_ngs360-omics")
}

/// A fixture case's files.
pub struct Fixture {
    pub name: String,
    pub event: Vec<u8>,
    pub context: Value,
    pub expected: Value,
}

impl Fixture {
    pub fn load(name: &str) -> Fixture {
        let dir = fixtures().join(name);
        let read = |f: &str| std::fs::read(dir.join(f)).ok();
        Fixture {
            name: name.to_owned(),
            event: read("event.json").unwrap_or_else(|| panic!("{name}/event.json")),
            context: read("context.json").map(|b| serde_json::from_slice(&b).unwrap()).unwrap_or(Value::Null),
            expected: serde_json::from_slice(&read("expected.json").unwrap()).unwrap(),
        }
    }

    /// Every case, sorted by name.
    pub fn all() -> Vec<Fixture> {
        let mut names: Vec<String> = std::fs::read_dir(fixtures())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.path().join("expected.json").is_file())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names.iter().map(|n| Fixture::load(n)).collect()
    }

    /// The expected record in its canonical (compact, ordered) form, if the case has one.
    pub fn record(&self) -> Option<String> {
        self.expected.get("record").map(|r| serde_json::to_string(r).unwrap())
    }

    pub fn event_json(&self) -> Value {
        serde_json::from_slice(&self.event).unwrap()
    }
}

/// A child process that is killed when dropped; its stdout and stderr are collected.
pub struct Proc {
    pub child: Child,
    out: Arc<Mutex<Vec<u8>>>,
    err: Arc<Mutex<Vec<u8>>>,
}

impl Proc {
    pub fn spawn(mut cmd: Command) -> Proc {
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).stdin(Stdio::null()).spawn().expect("spawn");
        let out = collect(child.stdout.take().unwrap());
        let err = collect(child.stderr.take().unwrap());
        Proc { child, out, err }
    }

    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.out.lock().unwrap()).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.err.lock().unwrap()).into_owned()
    }

    /// Waits for the process to exit, up to `secs`.
    pub fn wait(&mut self, secs: u64) -> Option<std::process::ExitStatus> {
        let until = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        while std::time::Instant::now() < until {
            if let Some(status) = self.child.try_wait().unwrap() {
                std::thread::sleep(std::time::Duration::from_millis(50));
                return Some(status);
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn collect(mut stream: impl Read + Send + 'static) -> Arc<Mutex<Vec<u8>>> {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let sink = buf.clone();
    std::thread::spawn(move || {
        let mut chunk = [0u8; 8192];
        while let Ok(n) = stream.read(&mut chunk) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().extend_from_slice(&chunk[..n]);
        }
    });
    buf
}

/// Runs the binary to completion with `args` and extra environment; (code, stdout, stderr).
pub fn run(args: &[&str], env: &[(String, String)]) -> (i32, String, String) {
    let out = Command::new(bin())
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("run ngs360-omics");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A unique temporary directory under the target directory, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "ngs360-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Held while a test uses the fixtures' outputs bucket, whose keys several cases share.
pub static FIXTURE_OUTPUTS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Serves a fixture's run and tasks from the HealthOmics test server, and puts its
/// outputs.json (or removes it) where the run says, in moto.
pub async fn serve_fixture(omics: &omics::Omics, s3: &aws_sdk_s3::Client, f: &Fixture) {
    let Some(run) = f.context.get("run") else { return };
    let event = f.event_json();
    let run_id =
        event.pointer("/detail/runId").or(event.get("runId")).and_then(Value::as_str).unwrap_or("none").to_owned();
    let tasks = f.context.get("tasks").and_then(Value::as_array).cloned().unwrap_or_default();
    omics.set(&run_id, omics::Run::Found { run: run.clone(), tasks });
    let uri = run["runOutputUri"].as_str().unwrap();
    let (bucket, prefix) = ngs360_omics::adapters::s3::parse_uri(uri).unwrap();
    let _ = s3.create_bucket().bucket(bucket).send().await;
    let key = format!("{prefix}/logs/outputs.json");
    match f.context.get("outputs") {
        Some(outputs) => {
            s3.put_object()
                .bucket(bucket)
                .key(&key)
                .body(outputs.to_string().into_bytes().into())
                .send()
                .await
                .unwrap();
        }
        None => {
            s3.delete_object().bucket(bucket).key(&key).send().await.unwrap();
        }
    }
}
