"""How an experiment prints its result: one JSON document, or one aligned `key: value` line per field."""

from __future__ import annotations

import json
from collections.abc import Mapping


def print_result(result: Mapping[str, object], *, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result))
        return
    width = max(map(len, result), default=0)
    for key, value in result.items():
        print(f"{key:>{width}}: {value}")
