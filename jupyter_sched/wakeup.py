"""Wake-ups for the workers of the embedded queue, instead of waiting for their next poll.

SqliteHuey has no blocking pop: a consumer finds new work only when it polls. Each worker
process on the embedded queue binds a Unix datagram socket in a folder of the data dir
(:class:`Doorbell`); whoever enqueues sends a one-byte-ish datagram to every socket there
(:func:`ring`), which wakes the consumer threads of that queue at once. The poll stays as
the fallback: a lost datagram, a folder that cannot be created or a full socket buffer
only delay a run until the next poll. Redis consumers need none of this (they block on
the queue itself).

The same datagrams carry a hint that a run may come soon (a user opened the scheduling
dialog), so that the worker prepares a kernel before it is asked for one.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import socket
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

#: Datagram prefix: work was enqueued on the queue named after it.
WAKE = b"w:"
#: Datagram: a run may be asked for soon; prepare a kernel.
PREPARE = b"p"
#: Longest path of a Unix socket on Linux, less its terminating byte.
_MAX_SOCKET_PATH = 107


def wake_dir(data_dir: Path) -> Path:
    """The folder of the worker sockets of the deployment whose data dir is ``data_dir``.

    Inside the data dir when its socket paths fit in a Unix socket address; otherwise a
    folder of this user's in the temporary directory named after the data dir.
    """
    folder = data_dir / "wake"
    if len(str(folder)) + 24 <= _MAX_SOCKET_PATH:
        return folder
    digest = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"jupyter-sched-wake-{os.getuid()}" / digest


def _own_folder(folder: Path) -> bool:
    """Create ``folder`` (mode 0700) or accept it if this user owns it."""
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        return folder.stat().st_uid == os.getuid()
    except OSError:
        return False


def ring(data_dir: Path, message: bytes) -> None:
    """Send ``message`` to every worker of the embedded queue; never raises, never waits."""
    folder = wake_dir(data_dir)
    try:
        paths = [entry.path for entry in os.scandir(folder) if entry.name.endswith(".sock")]
    except OSError:
        return  # no worker has ever listened here
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        for path in paths:
            try:
                sock.sendto(message, path)
            except (ConnectionRefusedError, FileNotFoundError):
                # Its worker is gone without removing it (killed).
                with contextlib.suppress(OSError):
                    os.unlink(path)
            except OSError:
                pass  # a full buffer: that worker has wake-ups pending already


class Doorbell:
    """The receiving end in a worker process: one event per queue, set when work for it
    was enqueued, and a callback for the hint that a run is expected (``on_wake``, if
    given, also hears of enqueued work: a server whose embedded worker exited idle)."""

    def __init__(
        self,
        data_dir: Path,
        on_prepare: Callable[[], None],
        on_wake: Callable[[], None] | None = None,
    ) -> None:
        self.folder = wake_dir(data_dir)
        self.on_prepare = on_prepare
        self.on_wake = on_wake
        self.path: Path | None = None
        self._events: dict[str, threading.Event] = {}
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._closed = threading.Event()

    def event(self, queue: str) -> threading.Event:
        """The event set when work is enqueued on ``queue`` (or when the bell closes)."""
        return self._events.setdefault(queue, threading.Event())

    def open(self) -> bool:
        """Listen; ``False`` (and the workers only poll) when the socket cannot be bound."""
        if not _own_folder(self.folder):
            log.warning("cannot use %s for wake-ups; the worker polls the queue", self.folder)
            return False
        path = self.folder / f"{os.getpid()}-{os.urandom(4).hex()}.sock"
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sock.bind(str(path))
        except OSError:
            sock.close()
            log.warning("cannot listen on %s; the worker polls the queue", path, exc_info=True)
            return False
        sock.settimeout(1.0)
        self._sock, self.path = sock, path
        self._thread = threading.Thread(target=self._listen, name="sched-doorbell", daemon=True)
        self._thread.start()
        return True

    def _listen(self) -> None:
        sock = self._sock
        assert sock is not None
        while not self._closed.is_set():
            try:
                message = sock.recv(512)
            except TimeoutError:
                continue
            except OSError:
                return  # closed
            if message.startswith(WAKE):
                self.event(message[len(WAKE) :].decode(errors="replace")).set()
                if self.on_wake is not None:
                    self.on_wake()
            elif message == PREPARE:
                self.on_prepare()
                self.wake_all()

    def wake_all(self) -> None:
        """Wake every waiting consumer thread (to stop, or to tend its kernel)."""
        for event in list(self._events.values()):
            event.set()

    def close(self) -> None:
        """Stop listening and remove the socket."""
        self._closed.set()
        self.wake_all()
        if self._thread is not None:
            self._thread.join(2)
        if self._sock is not None:
            self._sock.close()
        if self.path is not None:
            with contextlib.suppress(OSError):
                self.path.unlink()
