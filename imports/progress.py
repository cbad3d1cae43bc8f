"""A small progress bar for the terminal: rows done, rows per second and time left.

Hand-written instead of a dependency: it is twenty lines, and it only draws when stderr is a
terminal, so logs and tests stay clean.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    minutes, seconds = divmod(seconds, 60)
    return f"{minutes}:{seconds:02d}"


class ProgressBar:
    def __init__(self, *, stream: TextIO | None = None, width: int = 30, label: str = "") -> None:
        self.stream = stream or sys.stderr
        self.width = width
        self.label = label
        self.started = time.monotonic()
        self.last_draw = 0.0
        self.enabled = hasattr(self.stream, "isatty") and self.stream.isatty()

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if not self.enabled or (now - self.last_draw < 0.2 and done < total):
            return
        self.last_draw = now
        elapsed = max(now - self.started, 1e-6)
        rate = done / elapsed
        share = done / total if total else 1.0
        filled = int(self.width * share)
        eta = (total - done) / rate if rate else 0
        self.stream.write(
            f"\r{self.label}[{'#' * filled}{'.' * (self.width - filled)}] "
            f"{done:,}/{total:,} rows  {rate:,.0f} rows/s  ETA {_duration(eta)}  "
        )
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()
