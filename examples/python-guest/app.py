"""The component's entry: the exported interface's free function (`describe`).

The `event` resource is in processor.py; the shaping logic in shaping.py.
"""

import shaping
from wit_world import exports
from wit_world.exports import processor as wit


class Processor(exports.Processor):
    def describe(self) -> wit.GuestInfo:
        return wit.GuestInfo(shaping.NAME, shaping.VERSION)
