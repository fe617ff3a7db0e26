//! Guest benchmark: component load time at start, and per-event time with a fresh instance
//! for a 2 KB and a 100 KB event, beside the same logic compiled natively.
//!
//!     cargo run --release --example bench_guest [-- ITERATIONS]
//!
//! Prints medians and 90th percentiles in microseconds.

use std::hint::black_box;
use std::time::{Duration, Instant};

use ngs360_omics::guest::{Context, EventPlan, Limits, Runtime};
use serde_json::Value;

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/../fixtures/eventbridge-omics-run-completed/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The COMPLETED fixture event, padded with extra detail fields to about `size` bytes.
fn event_of_size(size: usize) -> Vec<u8> {
    let mut event: Value = serde_json::from_slice(&fixture("event.json")).unwrap();
    let mut i = 0;
    while event.to_string().len() < size {
        event["detail"][format!("parameter_{i:04}")] =
            Value::from(format!("s3://ngs360-reference/genomes/GRCh38/part-{i:04}.fa.gz"));
        i += 1;
    }
    event.to_string().into_bytes()
}

fn stats(mut samples: Vec<Duration>) -> (f64, f64) {
    samples.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    (us(samples[samples.len() / 2]), us(samples[samples.len() * 9 / 10]))
}

fn time<T>(n: usize, mut f: impl FnMut() -> T) -> (f64, f64) {
    for _ in 0..n.min(20) {
        black_box(f());
    }
    stats(
        (0..n)
            .map(|_| {
                let t = Instant::now();
                black_box(f());
                t.elapsed()
            })
            .collect(),
    )
}

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(2000);
    let context_json: Value = serde_json::from_slice(&fixture("context.json")).unwrap();
    let run = context_json["run"].to_string();
    let tasks = context_json["tasks"].to_string();
    let outputs = context_json["outputs"].to_string().into_bytes();

    println!("ngs360-omics guest benchmark ({n} iterations per row; microseconds)");
    println!("{:<58} {:>10} {:>10}", "", "median", "p90");
    let row = |name: &str, (median, p90): (f64, f64)| println!("{name:<58} {median:>10.1} {p90:>10.1}");

    row("engine: wasmtime Engine + pooling allocator + linker", time(20, || Runtime::new().unwrap()));
    let runtime = Runtime::new().unwrap();
    row(
        "load: bundled guest (deserialize .cwasm, link, describe)",
        time(50, || runtime.bundled(Limits::default()).unwrap()),
    );
    let wasm = std::env::args().nth(2);
    if let Some(path) = wasm {
        let bytes = std::fs::read(&path).unwrap();
        row(
            "load: compile a .wasm component with Cranelift",
            time(5, || runtime.compile(&bytes, path.clone(), Limits::default()).unwrap()),
        );
    }
    let guest = runtime.bundled(Limits::default()).unwrap();
    let small = event_of_size(2 << 10);
    row("instance: fresh store + instantiate + parse a 2 KB event", time(n, || guest.open(&small).unwrap()));

    for (label, size) in [("2 KB", 2 << 10), ("100 KB", 100 << 10)] {
        let event = event_of_size(size);
        let ctx = Context {
            run: Some(run.clone()),
            tasks: Some(tasks.clone()),
            outputs: Some(outputs.clone()),
            errors: vec![],
        };
        let wasm = time(n, || {
            let mut s = guest.open(&event).unwrap();
            let EventPlan::Process(_) = s.plan(None).unwrap() else { panic!("not a run event") };
            s.transform(&ctx).unwrap()
        });
        let native_ctx =
            ngs360_omics_guest::Context { run: Some(&run), tasks: Some(&tasks), outputs: Some(&outputs), errors: &[] };
        let native = time(n, || {
            let parsed = ngs360_omics_guest::Event::parse(&event).unwrap();
            parsed.plan(None).unwrap();
            parsed.transform(&native_ctx).unwrap()
        });
        row(&format!("event {label} ({} B): wasm, fresh instance, plan + transform", event.len()), wasm);
        row(&format!("event {label} ({} B): native, plan + transform", event.len()), native);
    }
}
