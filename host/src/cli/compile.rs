//! `compile`: precompiles a component for this host version and engine settings, for the
//! given architecture, and prints the sha256 to pin with `GUEST_SHA256`.

use std::path::Path;
use std::process::ExitCode;

use super::{fail, read};
use crate::sandbox::{BUNDLED_TARGET, blocking, precompile, sha256_hex};

/// The target triple for `compile --target`.
pub fn target_triple(arch: &str) -> Result<&'static str, String> {
    match arch {
        "aarch64" | "arm64" => Ok("aarch64-unknown-linux-gnu"),
        "x86_64" | "amd64" => Ok("x86_64-unknown-linux-gnu"),
        other => Err(format!("unknown target `{other}` (aarch64 or x86_64)")),
    }
}

pub async fn run(component: &Path, output: &Path, arch: Option<&str>) -> ExitCode {
    let triple = match arch.map(target_triple).transpose() {
        Ok(t) => t.unwrap_or(BUNDLED_TARGET),
        Err(e) => return fail(2, e),
    };
    let bytes = match read(component, "the component") {
        Ok(b) => b,
        Err(e) => return fail(2, e),
    };
    let origin = component.display().to_string();
    let cwasm = match blocking(move || precompile(&bytes, triple, &origin)).await {
        Ok(c) => c,
        Err(e) => return fail(1, e),
    };
    if let Err(e) = std::fs::write(output, &cwasm) {
        return fail(2, format!("cannot write {}: {e}", output.display()));
    }
    eprintln!("compiled {} for {triple} ({} bytes) to {}", component.display(), cwasm.len(), output.display());
    println!("{}", sha256_hex(&cwasm));
    ExitCode::SUCCESS
}
