"""How a HealthOmics run status change is shaped into the NGS360 record, in plain Python.

This is the whole of docs/behaviour.md's shaping logic (sections 1-7 and 9) as ordinary
functions over JSON values, with no dependency beyond the standard library: test it with
pytest on any machine. `processor.py` and `app.py` are the thin adapter that turns it into a
component for the host (`make python-guest`).

The three entry points mirror the WIT interface (wit/processor.wit):

    event = parse(raw_bytes)          # raises Refused
    plan(event, run_json=None)        # -> Ignore(reason) | Process(identity, tasks, outputs)
    transform(event, context)         # -> Outcome (the record as JSON text, and the rest)

Numbers are kept as written (`Number`, the text of the JSON number), so that a record
carries `1.50` as `1.50`, as the host and the bundled guest do.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Optional, Union

NAME = "ngs360-omics-python-guest"
VERSION = "0.2.0"

# behaviour §1: inputs that nest deeper than this are refused.
MAX_DEPTH = 64
# behaviour §1: the sources of a run status change (EventBridge's, and `reconcile`'s, §9).
SOURCES = ("aws.omics", "ngs360.reconcile")
DETAIL_TYPE = "Run Status Change"
FINISHED = ("COMPLETED", "FAILED", "CANCELLED")
# behaviour §3: the WES API's limits on the two messages.
STATUS_MESSAGE_MAX = 1000
FAILURE_REASON_MAX = 2000
WES_RUN_ID_TAG = "WESRunId"
# behaviour §4.
DEFAULT_LOG_GROUP = "/aws/omics/WorkflowLog"
TASK_LOGS_MAX = 1000


# --- errors: one class per case of the WIT `transform-error` variant -------------------------


class Refused(Exception):
    """The event (or what the host fetched) cannot be shaped; `kind` is the WIT case."""

    kind = ""

    def __init__(self, message: str, value=None):
        super().__init__(message)
        self.value = value


class InvalidJson(Refused):
    kind = "invalid-json"

    def __init__(self, message: str):
        super().__init__(f"invalid JSON: {message}", message)


class NotAnObject(Refused):
    kind = "not-an-object"

    def __init__(self, what: str):
        super().__init__(f"the event is a JSON {what}, not an object", what)


class MissingField(Refused):
    kind = "missing-field"

    def __init__(self, name: str):
        super().__init__(f"the event has no `{name}`", name)


class InvalidField(Refused):
    kind = "invalid-field"

    def __init__(self, name: str, reason: str):
        super().__init__(f"`{name}` {reason}", (name, reason))


class TooDeep(Refused):
    kind = "too-deep"

    def __init__(self, limit: int):
        super().__init__(f"the input nests deeper than {limit} levels", limit)


class InvalidContext(Refused):
    kind = "invalid-context"

    def __init__(self, message: str):
        super().__init__(f"invalid context from the host: {message}", message)


# --- JSON, numbers kept as written ---------------------------------------------------------


class Number(str):
    """A JSON number, as its text."""


def _no_constants(name: str):
    raise ValueError(f"{name} is not JSON")


class _BadJson(Exception):
    pass


class _Deep(Exception):
    pass


def parse_json(raw: Union[bytes, str]):
    """Parses JSON text (UTF-8 bytes or str); raises _Deep or _BadJson(message)."""
    text = raw
    if isinstance(raw, (bytes, bytearray)):
        if _nesting_exceeds(raw, MAX_DEPTH):
            raise _Deep()
        try:
            text = bytes(raw).decode("utf-8")
        except UnicodeDecodeError as e:
            raise _BadJson(f"invalid UTF-8 at byte {e.start}") from None
    elif _nesting_exceeds(raw.encode("utf-8", "surrogatepass"), MAX_DEPTH):
        raise _Deep()
    try:
        return json.loads(text, parse_float=Number, parse_int=Number, parse_constant=_no_constants)
    except (ValueError, RecursionError) as e:
        raise _BadJson(str(e)) from None


def _nesting_exceeds(raw: bytes, limit: int) -> bool:
    # Counts brackets outside strings, so that deep input is refused before it is parsed.
    depth, in_string, escaped = 0, False, False
    for b in raw:
        if in_string:
            if escaped:
                escaped = False
            elif b == 0x5C:  # backslash
                escaped = True
            elif b == 0x22:  # quote
                in_string = False
            continue
        if b == 0x22:
            in_string = True
        elif b in (0x5B, 0x7B):
            depth += 1
            if depth > limit:
                return True
        elif b in (0x5D, 0x7D):
            depth = max(depth - 1, 0)
    return False


def dumps(value) -> str:
    """Compact JSON, keys in insertion order, numbers as written, non-ASCII kept."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, Number):
        return str.__str__(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[" + ",".join(dumps(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(dumps(k) + ":" + dumps(v) for k, v in value.items()) + "}"
    raise TypeError(f"not a JSON value: {type(value).__name__}")


def kind(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, Number):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def text(value) -> Optional[str]:
    """A non-empty string, else None."""
    if isinstance(value, str) and not isinstance(value, Number) and value:
        return value
    return None


# --- §1 and §2: the event, flattened one level ---------------------------------------------


def flatten(top: dict) -> dict:
    out = {}
    for key, value in top.items():
        if isinstance(value, dict):
            for sub, v in value.items():
                out[sub] = v
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, dict):
                    for sub, v in item.items():
                        out[f"{sub}_{i}"] = v
                else:
                    out[f"{key}_{i}"] = item
        else:
            out[key] = value
    return out


@dataclass
class Identity:
    run_id: str
    status: str
    event_id: Optional[str]


@dataclass
class Event:
    top: dict
    flat: dict

    def str(self, key: str) -> Optional[str]:
        return text(self.flat.get(key))

    def id(self) -> Optional[str]:
        return text(self.top.get("id"))

    def time(self):
        return self.top.get("time")


def parse(raw: bytes) -> Event:
    """behaviour §1: JSON bytes as EventBridge delivers them, nested or already flattened."""
    try:
        value = parse_json(raw)
    except _Deep:
        raise TooDeep(MAX_DEPTH) from None
    except _BadJson as e:
        raise InvalidJson(str(e)) from None
    if not isinstance(value, dict):
        raise NotAnObject(kind(value))
    return Event(value, flatten(value))


def _required_str(event: Event, key: str) -> str:
    value = event.flat.get(key)
    if value is None:
        raise MissingField(key)
    if isinstance(value, str) and not isinstance(value, Number):
        if not value:
            raise InvalidField(key, "is empty")
        return value
    raise InvalidField(key, f"is a {kind(value)}, not a string")


def classify(event: Event) -> Union[str, Identity]:
    """The identity of a run status change, or why the event is something else."""
    source = _required_str(event, "source")
    detail_type = _required_str(event, "detail-type")
    if source not in SOURCES or detail_type != DETAIL_TYPE:
        return f"source `{source}`, detail-type `{detail_type}` is not a HealthOmics run status change"
    run_id = event.flat.get("runId")
    run_id = str.__str__(run_id) if isinstance(run_id, Number) else _required_str(event, "runId")
    status = _required_str(event, "status")
    return Identity(run_id, status, event.id())


# --- what the host fetched -------------------------------------------------------------------


def _context_json(raw: str, what: str):
    try:
        return parse_json(raw)
    except _Deep:
        raise InvalidContext(f"{what} nests too deep") from None
    except _BadJson as e:
        raise InvalidContext(f"{what} is not valid JSON: {e}") from None


def parse_run(raw: str) -> dict:
    run = _context_json(raw, "run")
    if not isinstance(run, dict):
        raise InvalidContext(f"run is a JSON {kind(run)}, not an object")
    return run


def parse_tasks(raw: str) -> list:
    tasks = _context_json(raw, "tasks")
    if not isinstance(tasks, list):
        raise InvalidContext(f"tasks is a JSON {kind(tasks)}, not an array")
    return tasks


def tasks_with_ids(items: list) -> list:
    """(taskId, name or None) of the items that have a task id."""
    out = []
    for item in items:
        task_id = text(item.get("taskId")) if isinstance(item, dict) else None
        if task_id:
            out.append((task_id, text(item.get("name"))))
    return out


# --- §5: outputs -----------------------------------------------------------------------------


@dataclass
class Uri:
    value: str


@dataclass
class AfterRun:
    pass


@dataclass
class Unknown:
    pass


def _join(base: str, tail: str) -> str:
    return base.rstrip("/") + "/" + tail


def locate_outputs(event: Event, run_id: str, run: Optional[dict]):
    uri = event.str("runOutputUri")
    if uri:
        return Uri(_join(uri, "logs/outputs.json"))
    if run is None:
        return AfterRun()
    if text(run.get("runOutputUri")):
        return Uri(_join(run["runOutputUri"], "logs/outputs.json"))
    if text(run.get("outputUri")):
        return Uri(_join(_join(run["outputUri"], run_id), "logs/outputs.json"))
    return Unknown()


def _location(value) -> Optional[str]:
    if isinstance(value, str) and not isinstance(value, Number):
        return value
    if isinstance(value, dict):
        loc = value.get("location")
        if isinstance(loc, str) and not isinstance(loc, Number):
            return loc
    return None


def output_mapping(raw: bytes) -> dict:
    """The output name to location(s) map; raises ValueError with the record's error line."""
    try:
        outputs = parse_json(raw)
    except _Deep:
        raise ValueError("outputs.json nests too deep") from None
    except _BadJson as e:
        raise ValueError(f"outputs.json is not valid JSON ({e})") from None
    if not isinstance(outputs, dict):
        raise ValueError(f"outputs.json is a JSON {kind(outputs)}, not an object")
    mapping = {}
    for name, value in outputs.items():
        loc = _location(value)
        if loc is not None:
            mapping[name] = loc
        elif isinstance(value, list) and all(_location(v) is not None for v in value):
            mapping[name] = [_location(v) for v in value]
        else:
            mapping[name] = value
    return mapping


# --- §4: log links ---------------------------------------------------------------------------


def _encode(s: str) -> str:
    # The CloudWatch console's encoding of a log group or stream name.
    out = []
    for b in s.encode("utf-8"):
        c = chr(b)
        if c.isascii() and (c.isalnum() or c in "-_.!~*'()"):
            out.append(c)
        else:
            out.append("$25%02X" % b)
    return "".join(out)


@dataclass
class Console:
    host: str
    region: str

    @staticmethod
    def of(partition: str, region: str) -> "Console":
        host = {
            "aws-cn": f"{region}.console.amazonaws.cn",
            "aws-us-gov": f"{region}.console.amazonaws-us-gov.com",
        }.get(partition, f"{region}.console.aws.amazon.com")
        return Console(host, region)

    @staticmethod
    def from_arn(arn: str) -> Optional["Console"]:
        parts = arn.split(":", 4)
        if len(parts) >= 4 and parts[0] == "arn" and parts[1] and parts[3]:
            return Console.of(parts[1], parts[3])
        return None

    def group_url(self, group: str) -> str:
        return (
            f"https://{self.host}/cloudwatch/home?region={self.region}"
            f"#logsV2:log-groups/log-group/{_encode(group)}"
        )

    def stream_url(self, group: str, stream: str) -> str:
        return f"{self.group_url(group)}/log-events/{_encode(stream)}"


def console(event: Event, run: Optional[dict]) -> Optional[Console]:
    for arn in (text((run or {}).get("arn")), event.str("arn"), event.str("resources_0")):
        found = Console.from_arn(arn) if arn else None
        if found:
            return found
    region = event.str("region")
    return Console.of("aws", region) if region else None


def log_group(run: Optional[dict]) -> str:
    location = (run or {}).get("logLocation")
    arn = location.get("runLogStream") if isinstance(location, dict) else None
    if text(arn) and ":log-group:" in arn:
        group = arn.split(":log-group:", 1)[1].split(":log-stream:", 1)[0]
        if group:
            return group
    return DEFAULT_LOG_GROUP


def bounded(first: list, failed: list, more: bool):
    """behaviour §4, large runs: at most TASK_LOGS_MAX tasks, the failed ones first."""
    if not more and len(first) <= TASK_LOGS_MAX:
        return first, False
    kept, seen = [], set()
    for task in failed + first:
        if len(kept) == TASK_LOGS_MAX:
            break
        if task[0] not in seen:
            seen.add(task[0])
            kept.append(task)
    return kept, True


def log_urls(con: Console, group: str, run_id: str, status: str, uuid, tasks, truncated: bool) -> dict:
    urls = {"run_log": con.stream_url(group, f"run/{run_id}")}
    if tasks:
        names = [name or task_id for task_id, name in tasks]
        uses = {}
        for name in names:
            uses[name] = uses.get(name, 0) + 1
        task_logs = {}
        for (task_id, _), name in zip(tasks, names):
            key = f"{name}#{task_id}" if uses[name] > 1 else name
            task_logs[key] = con.stream_url(group, f"run/{run_id}/task/{task_id}")
        urls["task_logs"] = task_logs
        if truncated:
            urls["task_logs_base_url"] = con.group_url(group)
            urls["task_logs_truncated"] = True
    else:
        urls["task_logs_base_url"] = con.group_url(group)
    if uuid:
        urls["manifest_log"] = con.stream_url(group, f"manifest/run/{run_id}/{uuid}")
    if status == "FAILED":
        urls["engine_log"] = con.stream_url(group, f"run/{run_id}/engine")
    return urls


# --- the plan: what the host fetches ---------------------------------------------------------


@dataclass
class Ignore:
    reason: str


@dataclass
class Process:
    identity: Identity
    get_run: bool
    # (limit, also the FAILED ones) or None
    tasks: Optional[tuple]
    outputs: object  # Uri | AfterRun | Unknown | None


def plan(event: Event, run_json: Optional[str] = None) -> Union[Ignore, Process]:
    who = classify(event)
    if isinstance(who, str):
        return Ignore(who)
    run = parse_run(run_json) if run_json is not None else None
    outputs = locate_outputs(event, who.run_id, run) if who.status == "COMPLETED" else None
    tasks = (TASK_LOGS_MAX, who.status == "FAILED") if who.status in FINISHED else None
    return Process(who, True, tasks, outputs)


# --- §3, §6, §7: the record, the archive key, the callback -----------------------------------


@dataclass
class Tasks:
    items: str
    more: bool
    failed: Optional[str] = None


@dataclass
class Context:
    run: Optional[str] = None
    tasks: Optional[Tasks] = None
    outputs: Optional[bytes] = None
    errors: list = field(default_factory=list)


@dataclass
class Outcome:
    identity: Identity
    record: str
    # None to send, else why not
    skip: Optional[str]
    timestamp: Optional[str]
    id: Optional[str]
    enrichment_errors: list
    notes: list


def transform(event: Event, ctx: Context) -> Outcome:
    who = classify(event)
    if isinstance(who, str):
        raise InvalidField("source", f"cannot be shaped: {who}")
    run = parse_run(ctx.run) if ctx.run is not None else None
    tasks, truncated = None, False
    if ctx.tasks is not None:
        first = tasks_with_ids(parse_tasks(ctx.tasks.items))
        failed = tasks_with_ids(parse_tasks(ctx.tasks.failed)) if ctx.tasks.failed is not None else []
        tasks, truncated = bounded(first, failed, ctx.tasks.more)

    errors = list(ctx.errors)
    notes = []
    status = who.status
    rec = {"omics_run_id": who.run_id, "status": status}
    if event.time() is not None:
        rec["event_time"] = event.time()
    if event.id():
        rec["event_id"] = event.id()
    tags = (run or {}).get("tags")
    tags = tags if isinstance(tags, dict) else None
    wes_run_id = text((tags or {}).get(WES_RUN_ID_TAG))
    if wes_run_id:
        rec["wes_run_id"] = wes_run_id

    def message(key):
        return event.str(key) or text((run or {}).get(key))

    if message("statusMessage"):
        rec["status_message"] = message("statusMessage")[:STATUS_MESSAGE_MAX]
    if message("failureReason"):
        rec["failure_reason"] = message("failureReason")[:FAILURE_REASON_MAX]
    if status in FINISHED:
        con = console(event, run)
        if con:
            uuid = text((run or {}).get("uuid")) or event.str("uuid")
            rec["log_urls"] = log_urls(con, log_group(run), who.run_id, status, uuid, tasks, truncated)
        else:
            notes.append("log_urls left out: neither the run's ARN nor the event names a region")
    if status == "COMPLETED" and ctx.outputs is not None:
        try:
            rec["output_mapping"] = output_mapping(ctx.outputs)
        except ValueError as e:
            errors.append(str(e))
    if tags:
        rec["tags"] = {k: tags[k] for k in sorted(tags)}
    own = set(rec)
    for key, value in event.flat.items():
        if key not in own and not (key == "enrichment_errors" and errors):
            rec[key] = value
    if errors:
        rec["enrichment_errors"] = list(errors)

    if status == "DELETED":
        skip = "status DELETED is not reported to the WES API"
    elif run is None:
        skip = "the run's tags could not be read, so its WESRunId is unknown"
    elif not wes_run_id:
        skip = f"the run has no {WES_RUN_ID_TAG} tag"
    else:
        skip = None
    timestamp, key_id = _archive_key(event, notes)
    return Outcome(who, dumps(rec), skip, timestamp, key_id, errors, notes)


def _archive_key(event: Event, notes: list):
    time = event.time()
    timestamp = None
    if time is None:
        notes.append("the event has no time; the archive key uses the current time")
    else:
        timestamp = archive_timestamp(time) if text(time) else None
        if timestamp is None:
            notes.append("the event time is not an RFC 3339 timestamp; the archive key uses the current time")
    key_id = event.id()
    if key_id is None:
        notes.append("the event has no id; the archive key uses a fresh UUID")
    elif not _key_safe(key_id):
        notes.append("the event id is not usable in an S3 key; the archive key uses a fresh UUID")
        key_id = None
    return timestamp, key_id


def _key_safe(s: str) -> bool:
    ok = "-_."
    return (
        len(s.encode("utf-8")) <= 128
        and all(c.isascii() and (c.isalnum() or c in ok) for c in s)
        and s not in (".", "..")
    )


def archive_timestamp(s: str) -> Optional[str]:
    """behaviour §6: an RFC 3339 time as UTC `YYYYMMDD_HHMMSS`, else None."""
    b = s.encode("utf-8")
    if len(b) < 20 or b[4:5] != b"-" or b[7:8] != b"-" or b[10:11] not in (b"T", b"t", b" "):
        return None
    if b[13:14] != b":" or b[16:17] != b":":
        return None
    try:
        year, month, day = _digits(b[0:4]), _digits(b[5:7]), _digits(b[8:10])
        hour, minute, second = _digits(b[11:13]), _digits(b[14:16]), _digits(b[17:19])
    except ValueError:
        return None
    if not 1 <= month <= 12 or day == 0 or day > _days_in_month(year, month):
        return None
    if hour > 23 or minute > 59 or second > 60:
        return None
    second = min(second, 59)
    rest = b[19:]
    if rest[:1] == b".":
        n = 0
        while 1 + n < len(rest) and 0x30 <= rest[1 + n] <= 0x39:
            n += 1
        if n == 0:
            return None
        rest = rest[1 + n :]
    if rest in (b"Z", b"z"):
        offset = 0
    elif len(rest) == 6 and rest[0:1] in (b"+", b"-") and rest[3:4] == b":":
        try:
            h, m = _digits(rest[1:3]), _digits(rest[4:6])
        except ValueError:
            return None
        if h > 23 or m > 59:
            return None
        offset = (h * 60 + m) * (-1 if rest[0:1] == b"-" else 1)
    else:
        return None
    utc = _days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second - offset * 60
    y, mo, d = _civil_from_days(utc // 86400)
    secs = utc % 86400
    if not 0 <= y <= 9999:
        return None
    return f"{y:04}{mo:02}{d:02}_{secs // 3600:02}{secs % 3600 // 60:02}{secs % 60:02}"


def _digits(b: bytes) -> int:
    if not all(0x30 <= c <= 0x39 for c in b):
        raise ValueError("not digits")
    return int(b)


def _days_in_month(year: int, month: int) -> int:
    if month == 2:
        return 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def _days_from_civil(year: int, month: int, day: int) -> int:
    y = year - 1 if month <= 2 else year
    era, yoe = y // 400, y % 400
    mp = (month + 9) % 12
    doy = (153 * mp + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _civil_from_days(days: int):
    z = days + 719468
    era, doe = z // 146097, z % 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (1 if month <= 2 else 0), month, day
