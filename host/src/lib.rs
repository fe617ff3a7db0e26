//! The NGS360 Omics run event processor: a native AWS Lambda host around a sandboxed
//! WebAssembly guest that shapes each event (see ARCHITECTURE.md and docs/behaviour.md).
//!
//! The modules are layers; each imports only from the layers above it in this list
//! (`tools/check_layers.py` enforces it, and that there are no import cycles):
//!
//! 1. `config`, `error`: the configuration and every error type;
//! 2. `sandbox`: wasmtime, the WASI set-up, the limits;
//! 3. `ports`: the small traits the pipeline reaches the world through;
//! 4. `adapters`: those traits on AWS, HTTP and files; metrics; the guest's sources;
//! 5. `pipeline`: one event, start to finish;
//! 6. `lambda`, `queue`, `cli`, `logging`: the entry points.

pub mod config;
pub mod error;

pub mod sandbox;

pub mod ports;

pub mod adapters;

pub mod pipeline;

pub mod cli;
pub mod lambda;
pub mod logging;
pub mod queue;
