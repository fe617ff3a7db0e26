//! Test components, built by the test suite itself with cargo for wasm32-wasip2.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The target directory the nested guest builds share with the build script.
fn guest_target_dir() -> PathBuf {
    let root = super::root();
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|d| if d.is_absolute() { d } else { root.join(d) })
        .unwrap_or_else(|| root.join("target"))
        .join("guest-build")
}

fn build(package: &str, artifact: &str) -> PathBuf {
    let target_dir = guest_target_dir();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(super::root())
        .args(["build", "--package", package, "--target", "wasm32-wasip2", "--profile", "guest", "--target-dir"])
        .arg(&target_dir)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .status()
        .expect("running cargo");
    assert!(status.success(), "building {package} for wasm32-wasip2 failed");
    target_dir.join("wasm32-wasip2/guest").join(artifact)
}

/// The real guest as a `.wasm` component (what an operator uploads).
pub fn guest() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| build("ngs360-omics-guest", "ngs360_omics_guest.wasm"))
}

/// The hostile test component (tests/guests/hostile).
pub fn hostile() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| build("ngs360-omics-hostile-guest", "ngs360_omics_hostile_guest.wasm"))
}
