//! Builds the bundled guest component and precompiles it for the binary's target, so that
//! `ngs360-omics` is self-contained and deserializes its guest at start instead of
//! compiling it.
//!
//! The guest is built by a nested `cargo build --target wasm32-wasip2 --profile guest` into
//! its own target directory (`<target>/guest-build`), then compiled with the same wasmtime
//! and the same engine settings (`src/sandbox/engine.rs`) the binary uses at run time.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

#[path = "src/sandbox/engine.rs"]
mod engine;

const GUEST_PACKAGE: &str = "ngs360-omics-guest";
const GUEST_ARTIFACT: &str = "ngs360_omics_guest.wasm";

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let workspace = manifest_dir.parent().unwrap().to_path_buf();
    for watched in ["guest/src", "guest/Cargo.toml", "wit", "Cargo.toml", "Cargo.lock"] {
        println!("cargo::rerun-if-changed={}", workspace.join(watched).display());
    }
    println!("cargo::rerun-if-changed=src/sandbox/engine.rs");
    println!("cargo::rerun-if-env-changed=CARGO_TARGET_DIR");

    let wasm = build_guest(&workspace);
    let bytes = std::fs::read(&wasm).unwrap_or_else(|e| panic!("reading {}: {e}", wasm.display()));

    let target = env::var("TARGET").unwrap();
    let config =
        engine::compile_config(Some(&target)).unwrap_or_else(|e| panic!("wasmtime cannot compile for {target}: {e}"));
    let engine = wasmtime::Engine::new(&config).expect("wasmtime engine");
    let cwasm =
        engine.precompile_component(&bytes).unwrap_or_else(|e| panic!("precompiling the guest for {target}: {e:?}"));

    let out = PathBuf::from(env::var_os("OUT_DIR").unwrap());
    std::fs::write(out.join("guest.cwasm"), &cwasm).unwrap();
    println!("cargo::rustc-env=NGS360_BUNDLED_GUEST_TARGET={target}");
    println!("cargo::rustc-env=NGS360_BUNDLED_GUEST_SHA256={}", sha256_hex(&bytes));
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Runs the nested cargo build of the guest and returns the component's path.
fn build_guest(workspace: &Path) -> PathBuf {
    let target_dir = env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|d| if d.is_absolute() { d } else { workspace.join(d) })
        .unwrap_or_else(|| workspace.join("target"))
        .join("guest-build");
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace)
        .args(["build", "--package", GUEST_PACKAGE, "--target", "wasm32-wasip2", "--profile", "guest"])
        .arg("--target-dir")
        .arg(&target_dir);
    // Flags meant for the binary's own target (a cross build, `cargo lambda`) must not leak
    // into the wasm build.
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET_DIR",
        "RUSTC_WORKSPACE_WRAPPER",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd.status().expect("running cargo for the guest");
    if !status.success() {
        panic!(
            "building the guest component failed ({status}); is the wasm32-wasip2 target \
             installed? (`rustup target add wasm32-wasip2`)"
        );
    }
    target_dir.join("wasm32-wasip2").join("guest").join(GUEST_ARTIFACT)
}
