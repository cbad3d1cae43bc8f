"""How fast this machine runs Python, so runs on different machines can be compared.

The HTTP budgets are absolute (req/s and ms against a comparison point measured on "a machine
like this one"), but machines called alike differ: the same harness at the same commit
(0acc731) measured every workload 1.6-2.3x slower on one 2-core machine than on another.
`reference_ms()` times a fixed, CPU-bound pure-Python workload (the kind of work a request
does: calls, dicts, strings); two runs' results scale roughly with it.
"""

from __future__ import annotations

import time


def _workload() -> int:
    total = 0
    table: dict[str, int] = {}
    for i in range(200_000):
        key = f"row-{i % 997}"
        table[key] = table.get(key, 0) + i
        total += len(key.upper()) + (i & 7)
    return total + sum(table.values())


def reference_ms(repeats: int = 5) -> float:
    """Best of `repeats` timings of the fixed workload, in ms (lower is faster)."""
    best = float("inf")
    for _ in range(repeats):
        started = time.process_time()
        _workload()
        best = min(best, time.process_time() - started)
    return best * 1000
