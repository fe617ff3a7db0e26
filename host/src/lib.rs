//! The NGS360 Omics run event processor: a native AWS Lambda host around a sandboxed
//! WebAssembly guest that shapes each event (see ARCHITECTURE.md).

pub mod aws;
pub mod callback;
pub mod cli;
pub mod config;
pub mod engine;
pub mod error;
pub mod fixtures;
pub mod guest;
pub mod lambda;
pub mod logging;
pub mod metrics;
pub mod pipeline;
pub mod refresh;
