"""Import huey without the client libraries of the storages a process does not use.

``huey.storage`` imports redis and psycopg whenever they are installed (about 22 MB in each
process that imports huey), although the embedded queue uses neither and the scheduler
never uses huey's PostgreSQL storage (its history reaches PostgreSQL through SQLAlchemy,
which imports psycopg itself when the database URL asks for it). So huey is imported with
those two hidden, and redis is handed to huey when a Redis queue is first made.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

#: Client libraries that ``huey.storage`` imports at once if it can.
_EAGER_CLIENTS = ("redis", "psycopg")
_lock = threading.Lock()


def load_huey() -> Any:
    """Import huey (once) without importing redis or psycopg; returns ``huey.storage``."""
    with _lock:
        loaded = sys.modules.get("huey.storage")
        if loaded is not None:
            return loaded
        hidden = [name for name in _EAGER_CLIENTS if name not in sys.modules]
        for name in hidden:
            # A None entry makes `import name` raise ImportError, which huey.storage
            # takes as "not installed" for that storage.
            sys.modules[name] = None  # type: ignore[assignment]
        try:
            import huey.storage
        finally:
            for name in hidden:
                if name in sys.modules and sys.modules[name] is None:
                    del sys.modules[name]
        return huey.storage


def load_huey_redis() -> Any:
    """Import huey with its Redis storage usable; returns ``huey.storage``."""
    storage = load_huey()
    with _lock:
        if storage.Redis is None:
            # What huey.storage would have bound at its import, had redis been imported.
            from redis import ConnectionPool, Redis
            from redis.exceptions import ConnectionError, TimeoutError

            storage.ConnectionPool, storage.Redis = ConnectionPool, Redis
            storage.ConnectionError, storage.TimeoutError = ConnectionError, TimeoutError
            storage.RedisStorage.redis_client = Redis
    return storage
