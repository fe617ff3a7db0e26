//! A component that shapes HealthOmics run events for the NGS360 Omics event processor.
//!
//! `component.rs` is the adapter: WIT types in, the standard shaping (`ngs360_omics_guest`),
//! your rules (`rules.rs`), WIT types out. It uses std and wit-bindgen and nothing hand-written
//! beneath them (wit-bindgen provides the allocator export the host calls, std the rest). The
//! host links every WASI interface this imports as inert stubs (no files, clock, randomness
//! or network), so the component stays pure whatever std pulls in.

pub mod rules;

// The component's exports exist only in the wasm32 build (natively, `cargo test` runs the rules).
#[cfg(target_arch = "wasm32")]
mod component;
