#!/usr/bin/env python3
"""Writes a data lake of N runs' events, shaped as the bundled guest shapes them (the
fixtures' records, with each run's ids, times and workflow), for the saved queries:

    python3 tools/lake_gen.py DIR --runs 1000 [--layout flat|dated] [--seed 7]

Each run has a RUNNING event and, 2 to 30 hours later, a terminal one (COMPLETED 80%, FAILED
15%, CANCELLED 5%), over the last 40 days; for one run in ten the terminal event was lost
and reconcile rebuilt it (`source: ngs360.reconcile`, its time the run's stop). The lake
also holds what a real one does: the Python stack's deployment zip under the prefix and
reconcile's ledger (`_reconcile/state.json`). It prints the object count and bytes.
"""

import argparse
import copy
import datetime as dt
import json
import random
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = [("9876543", "wgs-germline"), ("1234567", "rna-quant"), ("5550001", "somatic-pair")]


def template(name):
    return json.loads((ROOT / "fixtures" / f"eventbridge-omics-run-{name}" / "expected.json").read_text())["record"]


def replace_run(value, old, new):
    if isinstance(value, str):
        return value.replace(old, new)
    if isinstance(value, list):
        return [replace_run(v, old, new) for v in value]
    if isinstance(value, dict):
        return {k: replace_run(v, old, new) for k, v in value.items()}
    return value


def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def key(record, layout):
    t = dt.datetime.strptime(record["event_time"], "%Y-%m-%dT%H:%M:%SZ")
    name = f"event_{t:%Y%m%d_%H%M%S}_{record['event_id']}.json"
    return f"year={t:%Y}/month={t:%m}/day={t:%d}/{name}" if layout == "dated" else name


def events(i, rng, now, templates):
    run_id = str(5_000_000 + i)
    wes = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    wf_id, wf_name = WORKFLOWS[i % len(WORKFLOWS)]
    start = now - dt.timedelta(days=rng.uniform(0.2, 40))
    stop = start + dt.timedelta(hours=rng.uniform(2, 30))
    roll = rng.random()
    terminal = "COMPLETED" if roll < 0.8 else "FAILED" if roll < 0.95 else "CANCELLED"
    out = []
    for status, at in (("RUNNING", start), (terminal, stop)):
        if at > now:
            continue
        base = templates["completed" if status == "CANCELLED" else status.lower()]
        r = replace_run(copy.deepcopy(base), "4417021", run_id)
        r["status"] = status
        r["event_time"] = r["time"] = iso(at)
        r["event_id"] = r["id"] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        r["wes_run_id"] = r["tags"]["WESRunId"] = wes
        r["workflowId"], r["workflowName"] = wf_id, wf_name
        if status == "CANCELLED":
            r.pop("output_mapping", None)
        if status != "RUNNING" and rng.random() < 0.1:
            r["source"] = "ngs360.reconcile"
        out.append(r)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dir")
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--layout", choices=["flat", "dated"], default="flat")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0, tzinfo=None)
    templates = {n: template(n) for n in ("running", "completed", "failed")}
    root = Path(args.dir)
    count = size = 0
    for i in range(args.runs):
        for record in events(i, rng, now, templates):
            path = root / key(record, args.layout)
            path.parent.mkdir(parents=True, exist_ok=True)
            body = json.dumps(record, separators=(",", ":")).encode()
            path.write_bytes(body)
            count, size = count + 1, size + len(body)
    (root / "_reconcile").mkdir(parents=True, exist_ok=True)
    (root / "_reconcile" / "state.json").write_text('{"version":1,"runs":{}}')
    (root / "ngs360-omics-python.zip").write_bytes(b"PK\x03\x04" + bytes(rng.getrandbits(8) for _ in range(4096)))
    print(json.dumps({"runs": args.runs, "objects": count, "bytes": size, "layout": args.layout}))


if __name__ == "__main__":
    main()
