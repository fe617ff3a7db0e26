//! Test components, built by the test suite itself with cargo for wasm32-wasip2. Variants of
//! the hostile guest (cargo features) are built one after another into the same target
//! directory and copied out, so that each build recompiles only that crate.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

/// The target directory the nested guest builds share with the build script.
fn guest_target_dir() -> PathBuf {
    let root = super::root();
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|d| if d.is_absolute() { d } else { root.join(d) })
        .unwrap_or_else(|| root.join("target"))
        .join("guest-build")
}

/// One cargo build at a time: variants share the artifact's path until copied.
static BUILDING: Mutex<()> = Mutex::new(());

fn build(package: &str, artifact: &str, feature: Option<&str>) -> PathBuf {
    let _one_at_a_time = BUILDING.lock().unwrap_or_else(|e| e.into_inner());
    let target_dir = guest_target_dir();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(super::root())
        .args(["build", "--package", package, "--target", "wasm32-wasip2", "--profile", "guest", "--target-dir"])
        .arg(&target_dir)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS");
    if let Some(feature) = feature {
        cmd.args(["--features", feature]);
    }
    let status = cmd.status().expect("running cargo");
    assert!(status.success(), "building {package} ({feature:?}) for wasm32-wasip2 failed");
    let built = target_dir.join("wasm32-wasip2/guest").join(artifact);
    let copy = target_dir.join(format!("{}-{}.wasm", artifact.trim_end_matches(".wasm"), feature.unwrap_or("default")));
    std::fs::copy(&built, &copy).expect("copying the component");
    copy
}

/// The real guest as a `.wasm` component (what an operator uploads).
pub fn guest() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| build("ngs360-omics-guest", "ngs360_omics_guest.wasm", None))
}

/// The hostile test component (tests/guests/hostile).
pub fn hostile() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| build("ngs360-omics-hostile-guest", "ngs360_omics_hostile_guest.wasm", None))
}

/// A variant of the hostile component whose `describe` misbehaves: `describe-sleeps`,
/// `describe-chatty`, or `unlinked-import`.
pub fn hostile_variant(feature: &'static str) -> PathBuf {
    static PATHS: Mutex<Vec<(&'static str, PathBuf)>> = Mutex::new(Vec::new());
    if let Some((_, path)) = PATHS.lock().unwrap().iter().find(|(f, _)| *f == feature) {
        return path.clone();
    }
    let path = build("ngs360-omics-hostile-guest", "ngs360_omics_hostile_guest.wasm", Some(feature));
    PATHS.lock().unwrap().push((feature, path.clone()));
    path
}

/// The Rust guest template (examples/rust-guest), as an author builds it, with its
/// `example-change` rule or without.
pub fn rust_template(example_change: bool) -> PathBuf {
    let _one_at_a_time = BUILDING.lock().unwrap_or_else(|e| e.into_inner());
    let target_dir = guest_target_dir();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(super::root().join("examples/rust-guest"))
        .args(["build", "--release", "--target", "wasm32-wasip2", "--target-dir"])
        .arg(&target_dir)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS");
    if example_change {
        cmd.args(["--features", "example-change"]);
    }
    let status = cmd.status().expect("running cargo");
    assert!(status.success(), "building examples/rust-guest (example-change: {example_change}) failed");
    let built = target_dir.join("wasm32-wasip2/release/ngs360_omics_rust_guest.wasm");
    let copy = target_dir.join(format!("rust-template-{}.wasm", if example_change { "changed" } else { "plain" }));
    std::fs::copy(&built, &copy).expect("copying the component");
    copy
}
