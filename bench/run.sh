#!/usr/bin/env bash
# The performance table: builds the release binary and the benchmark, then prints medians of
# repeated runs (cold start, end to end against delayed loopback peers, guest per event,
# peak RSS over 1,000 events, sizes). Pass --zip dist/ngs360-omics-arm64.zip after
# `make package` to include the package's size, and --binary PATH to measure another build
# of the function (such as the shipping one, from
# `cargo lambda build --profile lambda --x86-64 -p ngs360-omics --bin ngs360-omics`:
# target/lambda/ngs360-omics/bootstrap).
#
#   bench/run.sh [--runs N] [--zip PATH] [--binary PATH]
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target add wasm32-wasip2 >/dev/null 2>&1 || true
cargo build --release --bin ngs360-omics --example bench
cargo build -p ngs360-omics-guest --target wasm32-wasip2 --profile guest --target-dir target/guest-build
# The options given to this script come first, so they win over these defaults.
exec target/release/examples/bench "$@" --binary target/release/ngs360-omics \
    --wasm target/guest-build/wasm32-wasip2/guest/ngs360_omics_guest.wasm
