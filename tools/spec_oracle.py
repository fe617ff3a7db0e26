#!/usr/bin/env python3
"""docs/behaviour.md (§1-§7) written a second time, in Python, as an oracle for the fixtures.

The expected records in fixtures/*/expected.json come from this script, not from the Rust
guest, so that `ngs360-omics check` compares two independent readings of the
behaviour contract. Each function names the section it reads.

    python3 tools/spec_oracle.py fixtures            # rewrite every expected.json
    python3 tools/spec_oracle.py fixtures --verify   # exit 1 if any differs

A case directory holds event.json, optionally context.json, and expected.json. A case whose
expected.json says {"ignored": true} or {"error": ...} is left alone: those are written by
hand.
"""
import json
import re
import sys
from datetime import datetime, timezone
from pathlib import Path

FINISHED = {"COMPLETED", "FAILED", "CANCELLED"}
TASK_LOGS_MAX = 1000
DEFAULT_GROUP = "/aws/omics/WorkflowLog"


# behaviour §2: one-level flattening.
def flatten(top):
    out = {}
    for key, value in top.items():
        if isinstance(value, dict):
            for k, v in value.items():
                out[k] = v
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, dict):
                    for k, v in item.items():
                        out[f"{k}_{i}"] = v
                else:
                    out[f"{key}_{i}"] = item
        else:
            out[key] = value
    return out


def nonempty_str(v):
    return v if isinstance(v, str) and v else None


# behaviour §4: the console's encoding of a log group or stream.
def encode(s):
    out = []
    for b in s.encode():
        c = chr(b)
        if c.isascii() and (c.isalnum() or c in "-_.!~*'()"):
            out.append(c)
        else:
            out.append("$25%02X" % b)
    return "".join(out)


def console_host(partition, region):
    return {
        "aws-cn": f"{region}.console.amazonaws.cn",
        "aws-us-gov": f"{region}.console.amazonaws-us-gov.com",
    }.get(partition, f"{region}.console.aws.amazon.com")


# behaviour §4: region and partition from the run's ARN, the event's, else `region`.
def console(flat, run):
    for arn in ((run or {}).get("arn"), flat.get("arn"), flat.get("resources_0")):
        if isinstance(arn, str):
            parts = arn.split(":", 4)
            if len(parts) >= 4 and parts[0] == "arn" and parts[1] and parts[3]:
                return parts[1], parts[3]
    region = nonempty_str(flat.get("region"))
    return ("aws", region) if region else None


def group_url(con, group):
    partition, region = con
    return (f"https://{console_host(partition, region)}/cloudwatch/home?region={region}"
            f"#logsV2:log-groups/log-group/{encode(group)}")


def stream_url(con, group, stream):
    return f"{group_url(con, group)}/log-events/{encode(stream)}"


# behaviour §4: the log group, from GetRun's logLocation when it names one.
def log_group(run):
    arn = ((run or {}).get("logLocation") or {}).get("runLogStream")
    if isinstance(arn, str) and ":log-group:" in arn:
        group = arn.split(":log-group:", 1)[1].split(":log-stream:", 1)[0]
        if group:
            return group
    return DEFAULT_GROUP


# behaviour §4, large runs: what the host reads of a run's tasks (`all_tasks`, as every
# page of ListRunTasks would list them) and which of those task_logs keeps.
def task_selection(all_tasks, status):
    with_id = lambda ts: [t for t in ts if nonempty_str(t.get("taskId"))]
    more = len(all_tasks) > TASK_LOGS_MAX
    first = with_id(all_tasks[:TASK_LOGS_MAX])
    if not more:
        return first, False
    failed = []
    if status == "FAILED":
        failed = with_id([t for t in all_tasks if t.get("status") == "FAILED"][:TASK_LOGS_MAX])
    kept, seen = [], set()
    for t in failed + first:
        if len(kept) == TASK_LOGS_MAX:
            break
        if t["taskId"] not in seen:
            seen.add(t["taskId"])
            kept.append(t)
    return kept, True


# behaviour §4: log_urls.
def log_urls(status, run_id, flat, run, tasks, con):
    group = log_group(run)
    urls = {"run_log": stream_url(con, group, f"run/{run_id}")}
    kept, truncated = task_selection(tasks or [], status)
    named = [(t.get("name") or t["taskId"], t["taskId"]) for t in kept]
    if named:
        counts = {}
        for name, _ in named:
            counts[name] = counts.get(name, 0) + 1
        urls["task_logs"] = {
            (f"{name}#{tid}" if counts[name] > 1 else name): stream_url(con, group, f"run/{run_id}/task/{tid}")
            for name, tid in named
        }
        if truncated:
            urls["task_logs_base_url"] = group_url(con, group)
            urls["task_logs_truncated"] = True
    else:
        urls["task_logs_base_url"] = group_url(con, group)
    uuid = nonempty_str((run or {}).get("uuid")) or nonempty_str(flat.get("uuid"))
    if uuid:
        urls["manifest_log"] = stream_url(con, group, f"manifest/run/{run_id}/{uuid}")
    if status == "FAILED":
        urls["engine_log"] = stream_url(con, group, f"run/{run_id}/engine")
    return urls


# behaviour §5: output mapping.
def location(v):
    if isinstance(v, str):
        return v
    if isinstance(v, dict) and isinstance(v.get("location"), str):
        return v["location"]
    return None


def output_mapping(outputs):
    mapping = {}
    for name, v in outputs.items():
        loc = location(v)
        if loc is not None:
            mapping[name] = loc
        elif isinstance(v, list) and all(location(i) is not None for i in v):
            mapping[name] = [location(i) for i in v]
        else:
            mapping[name] = v
    return mapping


# behaviour §6: the archive key (None when a part falls back to now or a fresh UUID).
def archive_key(top):
    t, i = top.get("time"), top.get("id")
    ts = None
    if isinstance(t, str):
        try:
            ts = datetime.fromisoformat(t.replace("Z", "+00:00")).astimezone(timezone.utc).strftime("%Y%m%d_%H%M%S")
        except ValueError:
            ts = None
    ok_id = isinstance(i, str) and re.fullmatch(r"[A-Za-z0-9._-]{1,128}", i) and i not in (".", "..")
    if ts is None or not ok_id:
        return None
    return f"event_{ts}_{i}.json"


# behaviour §3 (the record, enrichment) and §7 (the callback decision).
def expected(event, ctx):
    top = event
    flat = flatten(top)
    run_id = flat["runId"] if isinstance(flat["runId"], str) else json.dumps(flat["runId"])
    status = flat["status"]
    # What the host passes: the run always, tasks when finished, outputs when COMPLETED.
    run = ctx.get("run")
    tasks = ctx.get("tasks") if status in FINISHED else None
    outputs = ctx.get("outputs") if status == "COMPLETED" else None
    errors = []

    rec = {"omics_run_id": run_id, "status": status}
    if top.get("time") is not None:
        rec["event_time"] = top["time"]
    if nonempty_str(top.get("id")):
        rec["event_id"] = top["id"]
    tags = (run or {}).get("tags")
    wes = nonempty_str((tags or {}).get("WESRunId"))
    if wes:
        rec["wes_run_id"] = wes
    def text(key):
        return nonempty_str(flat.get(key)) or nonempty_str((run or {}).get(key))
    if text("statusMessage"):
        rec["status_message"] = text("statusMessage")[:1000]
    if text("failureReason"):
        rec["failure_reason"] = text("failureReason")[:2000]
    if status in FINISHED:
        con = console(flat, run)
        if con:
            rec["log_urls"] = log_urls(status, run_id, flat, run, tasks, con)
    if status == "COMPLETED" and outputs is not None:
        if isinstance(outputs, dict):
            rec["output_mapping"] = output_mapping(outputs)
        else:
            errors.append("outputs.json is not an object")
    if tags:
        rec["tags"] = dict(sorted(tags.items()))
    for k, v in flat.items():
        if k not in rec and not (k == "enrichment_errors" and errors):
            rec[k] = v
    if errors:
        rec["enrichment_errors"] = errors

    if status == "DELETED" or run is None or not wes:
        callback = "skip"
    else:
        callback = "send"
    result = {"callback": callback}
    key = archive_key(top)
    if key:
        result["archive_key"] = key
    result["record"] = rec
    return result


def main():
    root = Path(sys.argv[1])
    verify = "--verify" in sys.argv
    differ = []
    for case in sorted(p for p in root.iterdir() if (p / "event.json").is_file()):
        exp_path = case / "expected.json"
        if exp_path.is_file():
            current = json.loads(exp_path.read_text())
            if "ignored" in current or "error" in current:
                continue
        event = json.loads((case / "event.json").read_text())
        ctx = json.loads((case / "context.json").read_text()) if (case / "context.json").is_file() else {}
        text = json.dumps(expected(event, ctx), indent=2, ensure_ascii=False) + "\n"
        if verify:
            if not exp_path.is_file() or exp_path.read_text() != text:
                differ.append(case.name)
        else:
            exp_path.write_text(text)
    if differ:
        print("expected.json differs from the oracle in: " + ", ".join(differ))
        sys.exit(1)


if __name__ == "__main__":
    main()
