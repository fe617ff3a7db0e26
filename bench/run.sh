#!/usr/bin/env bash
# The performance table: builds the release binary, a bare lambda_runtime hello world and the
# benchmark, then prints medians of repeated runs (cold start beside the hello world's, their
# ratio and the cold start's phases; end to end against delayed loopback peers; guest per
# event; peak RSS over 1,000 events; sizes). Pass --zip dist/ngs360-omics-arm64.zip after
# `make package` to include the package's size, and --binary PATH to measure another build
# of the function (such as the shipping one, from
# `cargo lambda build --profile lambda --x86-64 -p ngs360-omics --bin ngs360-omics`:
# target/lambda/ngs360-omics/bootstrap).
#
# --only SECTIONS picks some of: cold, events, rss, curve, guest. The arm64 bootstrap under
# qemu, beside the arm64 hello world under qemu (after `make package bench-arm64-hello`):
# --arm64 dist/lambda/bootstrap --arm64-hello target/lambda/hello/bootstrap [--qemu PATH].
# --hello PATH compares with another build of the hello world (the `lambda` profile's, say).
#
#   bench/run.sh [--runs N] [--zip PATH] [--binary PATH] [--hello PATH] [--only SECTIONS]
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target add wasm32-wasip2 >/dev/null 2>&1 || true
cargo build --release --bin ngs360-omics --example bench --example hello
cargo build -p ngs360-omics-guest --target wasm32-wasip2 --profile guest --target-dir target/guest-build
# The options given to this script come first, so they win over these defaults.
exec target/release/examples/bench "$@" --binary target/release/ngs360-omics \
    --wasm target/guest-build/wasm32-wasip2/guest/ngs360_omics_guest.wasm
