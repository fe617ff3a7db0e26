//! The wasmtime engine settings, in one place. The build script compiles the bundled guest
//! with these same settings (it includes this file), because a precompiled component only
//! loads in an engine configured exactly like the one that produced it.
//!
//! This file depends on nothing but `wasmtime`.

use wasmtime::{Config, OptLevel};

/// Settings that shape compiled code. Both the build script (for the bundled guest) and the
/// host (for components it compiles or loads at run time) start from these.
///
/// - Epoch interruption: the host's per-call time limit. It cost no measurable time per
///   event here (93 us with it, 92 us without, 2 KB event).
/// - wasmtime's default memory reservation: guard pages instead of explicit bounds checks
///   (explicit checks measured 144 us instead of 106 us per 2 KB event). The reservation is
///   address space only, taken per instance and given back when its event ends.
/// - `target`: `None` for the machine that runs this code, else a target triple; an explicit
///   triple (even the host's) compiles for that architecture's baseline, without CPU
///   features detected on the build machine, so a package runs on any machine of its
///   architecture.
pub fn compile_config(target: Option<&str>) -> wasmtime::Result<Config> {
    let mut config = Config::new();
    if let Some(triple) = target {
        config.target(triple)?;
    }
    config.epoch_interruption(true).cranelift_opt_level(OptLevel::Speed).native_unwind_info(false);
    Ok(config)
}
