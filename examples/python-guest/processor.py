"""The component adapter's resource: the WIT `event` resource over shaping.py.

componentize-py looks for an exported interface's resource here, in a module named after the
interface (`processor`). Nothing in this file decides anything: it converts between the WIT
types (generated into `wit_world` by `make python-guest`) and shaping.py's.
"""

from typing import Optional

import shaping
from componentize_py_types import Err
from wit_world.exports import processor as wit


def _refusal(e: shaping.Refused) -> Err:
    cases = {
        "invalid-json": wit.TransformError_InvalidJson,
        "not-an-object": wit.TransformError_NotAnObject,
        "missing-field": wit.TransformError_MissingField,
        "too-deep": wit.TransformError_TooDeep,
        "invalid-context": wit.TransformError_InvalidContext,
    }
    if e.kind == "invalid-field":
        name, reason = e.value
        return Err(wit.TransformError_InvalidField(wit.FieldProblem(name, reason)))
    return Err(cases[e.kind](e.value))


def _identity(who: shaping.Identity) -> wit.EventIdentity:
    return wit.EventIdentity(who.run_id, who.status, who.event_id)


def _location(where) -> Optional[wit.OutputsLocation]:
    if where is None:
        return None
    if isinstance(where, shaping.Uri):
        return wit.OutputsLocation_Uri(where.value)
    if isinstance(where, shaping.AfterRun):
        return wit.OutputsLocation_AfterRun()
    return wit.OutputsLocation_Unknown()


class Event:
    def __init__(self, event: shaping.Event):
        self._event = event

    @classmethod
    def parse(cls, bytes: bytes) -> "Event":
        try:
            return cls(shaping.parse(bytes))
        except shaping.Refused as e:
            raise _refusal(e) from None

    def plan(self, run: Optional[str]) -> wit.EventPlan:
        try:
            decided = shaping.plan(self._event, run)
        except shaping.Refused as e:
            raise _refusal(e) from None
        if isinstance(decided, shaping.Ignore):
            return wit.EventPlan_Ignore(decided.reason)
        tasks = wit.TaskRequest(*decided.tasks) if decided.tasks else None
        fetch = wit.FetchPlan(_identity(decided.identity), decided.get_run, tasks, _location(decided.outputs))
        return wit.EventPlan_Process(fetch)

    def transform(self, context: wit.Context) -> wit.Outcome:
        tasks = None
        if context.tasks is not None:
            tasks = shaping.Tasks(context.tasks.items, context.tasks.more, context.tasks.failed)
        ctx = shaping.Context(context.run, tasks, context.outputs, list(context.errors))
        try:
            out = shaping.transform(self._event, ctx)
        except shaping.Refused as e:
            raise _refusal(e) from None
        callback = wit.Callback_Send() if out.skip is None else wit.Callback_Skip(out.skip)
        return wit.Outcome(
            _identity(out.identity),
            out.record,
            callback,
            wit.ArchiveKey(out.timestamp, out.id),
            out.enrichment_errors,
            out.notes,
        )
