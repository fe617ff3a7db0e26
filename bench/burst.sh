#!/usr/bin/env bash
# The burst bench, offline: N runs of 150 tasks finishing at once, HealthOmics behind a shared
# token bucket of 10 TPS that answers ThrottlingException beyond it, Lambda's retry schedule
# for asynchronous events and its throttle queue, or the run event queue and its event source
# mapping (host/examples/burst.rs says the model). For each N it runs four settings: the
# template's defaults (queue delivery, at most ReservedConcurrency at once), direct delivery
# with that reserved concurrency, and direct delivery with 50 and with 250 instances at a
# time and no reserved concurrency; then one reconcile over
# 1,000, 10,000 and 100,000 retained runs of which 1% changed, twice (the second pass finds
# its ledger). One JSON row per run, then a table.
#
#   bench/burst.sh [--runs "200 1000"] [--binary PATH] [--only burst|reconcile] [--retained LIST]
#
# --binary measures another build of the function (an earlier commit's, say); extra
# settings for the function go after `--` as K=V (OMICS_THROTTLE_BUDGET_SECONDS=60).
set -euo pipefail
cd "$(dirname "$0")/.."
runs="200 1000"
binary=target/release/ngs360-omics
only=""
retained="1000,10000,100000"
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) runs="$2"; shift 2 ;;
        --binary) binary="$2"; shift 2 ;;
        --only) only="$2"; shift 2 ;;
        --retained) retained="$2"; shift 2 ;;
        --) shift; break ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
env_args=()
for kv in "$@"; do env_args+=(--env "$kv"); done
cargo build --release --bin ngs360-omics --example burst
reserved=$(python3 -c "
import re
t = open('template.yaml').read()
m = re.search(r'^  ReservedConcurrency:\n(?:    .*\n)*?    Default: (-?\d+)', t, re.M)
print(m.group(1))")
rows=$(mktemp)
if [ "$only" != reconcile ]; then
    for n in $runs; do
        if [ "$reserved" -ge 0 ]; then
            for d in queue direct; do
                target/release/examples/burst --binary "$binary" --runs "$n" --delivery "$d" --reserved "$reserved" \
                    "${env_args[@]}" | tee -a "$rows"
            done
        fi
        for c in 50 250; do
            target/release/examples/burst --binary "$binary" --runs "$n" --delivery direct --concurrency "$c" \
                "${env_args[@]}" | tee -a "$rows"
        done
    done
fi
if [ "$only" != burst ]; then
    target/release/examples/burst --binary "$binary" --reconcile "$retained" --twice "${env_args[@]}" | tee -a "$rows"
fi
python3 - "$rows" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
burst = [r for r in rows if "drain_s" in r]
if burst:
    print("\n| N | setting | drain s | floor s | x floor | calls/event | throttled | failed inv. | dead letters | p50 s | p99 s | GB-s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in burst:
        d = r.get("delivery", "direct")
        if r["reserved"] is None:
            setting = f"{d}, C={r['concurrency']}, none reserved"
        else:
            setting = f"queue, at most {r['reserved']}" if d == "queue" else f"direct, reserved {r['reserved']}"
        print(f"| {r['runs']} | {setting} | {r['drain_s']:.0f} | {r['floor_s']:.0f} | {r['drain_over_floor']:.2f} | "
              f"{r['calls_per_event']:.2f} | {r['throttled_calls']} | {r['failed_invocations']} | {r['dead_letters']} | "
              f"{r['p50_s']:.1f} | {r['p99_s']:.1f} | {r['gb_s']:.0f} |")
rec = [r for r in rows if "retained" in r]
if rec:
    print("\n| retained | changed | pass | ListRuns | GetRun | ListRunTasks | throttled | s | TPS used | TPS left |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rec:
        c = r["calls"]
        print(f"| {r['retained']} | {r['changed']} | {r['pass']} | {c['ListRuns']} | {c['GetRun']} | {c['ListRunTasks']} | "
              f"{r['throttled_calls']} | {r['seconds']:.0f} | {r['rate_tps']:.2f} | {r['quota_left_tps']:.2f} |")
EOF
rm -f "$rows"
