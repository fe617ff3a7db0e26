"""shaping.py, natively: every fixture case the way the host would run it, and a few rules.

    python3 -m pytest examples/python-guest
"""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import shaping  # noqa: E402

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures"
CASES = sorted(p for p in FIXTURES.iterdir() if (p / "expected.json").is_file())


def run_like_the_host(event_bytes: bytes, context: dict):
    """What the host does with a context.json (host/src/adapters/context_file.rs)."""
    event = shaping.parse(event_bytes)
    decided = shaping.plan(event)
    if isinstance(decided, shaping.Ignore):
        return None
    run = shaping.dumps(context["run"]) if context.get("run") is not None else None
    if isinstance(decided.outputs, shaping.AfterRun) and run is not None:
        decided = shaping.plan(event, run)
    tasks = None
    if decided.tasks and context.get("tasks") is not None:
        limit, failed = decided.tasks
        every = context["tasks"]
        more = len(every) > limit
        failed_ones = None
        if more and failed:
            failed_ones = shaping.dumps([t for t in every if t.get("status") == "FAILED"][:limit])
        tasks = shaping.Tasks(shaping.dumps(every[:limit]), more, failed_ones)
    outputs = None
    if isinstance(decided.outputs, shaping.Uri):
        if "outputs" in context:
            outputs = shaping.dumps(context["outputs"]).encode()
        elif "outputs_raw" in context:
            outputs = context["outputs_raw"].encode()
    return shaping.transform(event, shaping.Context(run, tasks, outputs, []))


def load(path: Path):
    return shaping.parse_json(path.read_bytes())


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_every_fixture_case(case: Path):
    expected = load(case / "expected.json")
    context = load(case / "context.json") if (case / "context.json").is_file() else {}
    event = (case / "event.json").read_bytes()
    if "error" in expected:
        with pytest.raises(shaping.Refused) as refused:
            run_like_the_host(event, context)
        assert refused.value.kind == expected["error"]
        return
    out = run_like_the_host(event, context)
    if expected.get("ignored") is True:
        assert out is None
        return
    # Byte for byte, in the canonical compact form: key order and numbers as written count.
    assert out.record == shaping.dumps(expected["record"])
    if "callback" in expected:
        assert ("send" if out.skip is None else "skip") == expected["callback"]
    if "archive_key" in expected:
        assert f"event_{out.timestamp}_{out.id}.json" == expected["archive_key"]


def test_numbers_are_kept_as_written():
    event = shaping.parse(b'{"source":"aws.omics","detail-type":"Run Status Change","runId":7,"status":"RUNNING","x":1.50}')
    out = shaping.transform(event, shaping.Context())
    assert out.record.endswith('"x":1.50}')
    assert out.identity.run_id == "7"


def test_a_run_without_the_tag_is_not_called_back():
    raw = b'{"source":"aws.omics","detail-type":"Run Status Change","detail":{"runId":"1","status":"RUNNING"}}'
    out = shaping.transform(shaping.parse(raw), shaping.Context(run='{"tags":{"project":"P"}}'))
    assert out.skip == "the run has no WESRunId tag"


def test_large_runs_keep_failed_tasks_first_and_say_they_are_cut():
    first = [(f"t{i}", "align") for i in range(shaping.TASK_LOGS_MAX)]
    failed = [("t5000", "call")]
    kept, truncated = shaping.bounded(first, failed, more=True)
    assert truncated and len(kept) == shaping.TASK_LOGS_MAX and kept[0] == ("t5000", "call")


def test_refusals_name_the_field():
    with pytest.raises(shaping.MissingField, match="runId"):
        shaping.plan(shaping.parse(b'{"source":"aws.omics","detail-type":"Run Status Change","status":"X"}'))
    with pytest.raises(shaping.TooDeep):
        shaping.parse(b"[" * 65 + b"]" * 65)


def test_archive_times_are_utc():
    assert shaping.archive_timestamp("2026-03-02T23:30:00-01:00") == "20260303_003000"
    assert shaping.archive_timestamp("2026-02-30T00:00:00Z") is None
