#!/usr/bin/env bash
# Runs the property-based fuzz campaign (tests/integration/fuzz.rs) for a bounded time and
# prints the number of cases it ran and what it found. FUZZ_SEED=N replays a seed.
#
#   tools/fuzz.sh [SECONDS]     (default 60)
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZ_SECONDS="${1:-60}" cargo test --release --test suite fuzz_campaign -- --ignored --nocapture
