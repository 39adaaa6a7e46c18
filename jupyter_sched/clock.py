"""The clock: the one place that reads the current time (it imports nothing of the package).

Only the outermost loops and request handlers call :func:`utcnow`; everything below them
takes ``now`` as an argument, so tests pass the time in instead of patching it.
"""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """The current time, aware UTC."""
    return datetime.now(UTC)
