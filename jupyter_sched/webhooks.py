"""Webhooks: each job's secret token and the rate limit on calls made with it.

A token is random, shown once, and stored only as its SHA-256 hash; a call's token is
compared in constant time, also when the job does not exist, so that timing does not tell
which jobs exist.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time

from .errors import RateLimited, Unauthorized
from .models import Job


def new_webhook_token(job: Job) -> str:
    """Give the job a new webhook token; returns it (only its hash is kept)."""
    token = "sched_" + secrets.token_urlsafe(32)
    job.webhook_token_hash = _hash(token)
    return token


def check_webhook_token(job: Job | None, token: str) -> None:
    """Raise :class:`Unauthorized` unless ``token`` is the job's current webhook token."""
    expected = job.webhook_token_hash if job is not None else None
    # Compare even without a job, so timing does not tell whether the job exists.
    valid = hmac.compare_digest(_hash(token), expected or "0" * 64)
    if not valid or expected is None:
        raise Unauthorized("invalid webhook token")


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class RateLimiter:
    """A token bucket per key: ``per_minute`` calls, refilled continuously."""

    def __init__(self, per_minute: float) -> None:
        self.per_minute = per_minute
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> None:
        """Spend one call for ``key`` or raise :class:`RateLimited`."""
        now = time.monotonic()
        with self._lock:
            level, last = self._buckets.get(key, (self.per_minute, now))
            level = min(self.per_minute, level + (now - last) * self.per_minute / 60)
            if level < 1:
                self._buckets[key] = (level, now)
                raise RateLimited(f"too many webhook calls: at most {self.per_minute:g} a minute")
            self._buckets[key] = (level - 1, now)
