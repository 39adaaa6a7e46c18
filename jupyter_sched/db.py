"""The history database: engine set-up for SQLite and PostgreSQL, sessions, migrations.

It is also the one place where a database that cannot be reached becomes
:class:`~jupyter_sched.errors.Unavailable`: every session of :class:`Database` turns
SQLAlchemy's connection-level errors into it, and the process logs one warning when the
database stops answering and one line when it answers again, whichever thread noticed.
"""

from __future__ import annotations

import ast
import fcntl
import functools
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from sqlalchemy import (
    Connection,
    CursorResult,
    Engine,
    Executable,
    create_engine,
    event,
    inspect,
    text,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from . import __version__
from .config import application_name, redact_url
from .errors import MigrationFailed, MissingExtra, SchemaTooNew, Unavailable

if TYPE_CHECKING:
    # alembic is imported only to migrate: every process checks the schema on start, and
    # reading the applied revisions needs one query, not alembic's import. The ORM is
    # imported with the first session (see Database._sessions).
    from alembic.config import Config
    from sqlalchemy.orm import Session, sessionmaker

T = TypeVar("T")

log = logging.getLogger(__name__)

#: Seconds a SQLite writer waits for another writer before giving up.
SQLITE_BUSY_TIMEOUT_SECONDS = 30
#: Seconds a PostgreSQL connection attempt may take (unless the URL sets
#: ``connect_timeout``): a database host that does not answer must not hang its callers.
CONNECT_TIMEOUT_SECONDS = 10
#: SQLAlchemy's errors that say the database cannot be reached now (server down, network,
#: connection dropped, pool exhausted, SQLite locked), as opposed to a wrong statement.
UNAVAILABLE_ERRORS = (OperationalError, InterfaceError, DisconnectionError, PoolTimeoutError)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
#: Where alembic records the applied revisions (its default table).
ALEMBIC_VERSION_TABLE = "alembic_version"
#: The PostgreSQL advisory lock (a 64-bit key, per database) held while migrating.
MIGRATION_LOCK_KEY = int.from_bytes(b"jschedmg", "big")


def _configure_sqlite(engine: Engine) -> None:
    # The driver's own transaction handling is turned off so that write transactions can
    # start with BEGIN IMMEDIATE: two deferred transactions that both read and then write
    # deadlock in SQLite and fail at once with "database is locked", whatever the timeout.
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_SECONDS * 1000}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get("sqlite_immediate", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def updated(session: Session, statement: Executable) -> int:
    """Run a conditional ``UPDATE`` (or ``DELETE``, or ``INSERT ... ON CONFLICT DO
    NOTHING``) and return how many rows it changed: how a compare-and-set learns whether it
    won (0: another party changed the row first, or it was not in the expected state)."""
    return cast(CursorResult[Any], session.execute(statement)).rowcount


class Availability:
    """Whether this process reaches its database, with one log line per change.

    Sessions report how they ended; a report about a session that began before the last
    change is ignored, so the threads still finishing what they began before a change
    neither end an outage nor start a new one.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        #: ``time.monotonic()`` of the first failure of the current outage.
        self._down_since: float | None = None
        #: ``time.monotonic()`` of the first success since the last outage (or ever).
        self._up_since: float | None = None

    @property
    def available(self) -> bool:
        """Whether the last report was a success (``True`` before any report)."""
        return self._down_since is None

    def continuous_seconds(self) -> float:
        """How long this process has reached the database without an outage (0 now)."""
        up, down = self._up_since, self._down_since
        return 0.0 if up is None or down is not None else time.monotonic() - up

    def failed(self, exc: BaseException, began: float) -> None:
        """A session that began at ``began`` (monotonic) could not reach the database."""
        with self._lock:
            if self._down_since is not None or (
                self._up_since is not None and began < self._up_since
            ):
                return
            self._down_since, self._up_since = time.monotonic(), None
        log.warning(
            "jupyter-sched: the history database is unavailable (%s); retrying until it answers",
            _describe(exc),
        )

    def succeeded(self, began: float) -> None:
        """A session that began at ``began`` (monotonic) reached the database."""
        if self._down_since is None and self._up_since is not None:
            return  # the common case, without the lock
        with self._lock:
            down = self._down_since
            if down is not None and began < down:
                return
            if down is None and self._up_since is not None:
                return
            self._down_since, self._up_since = None, time.monotonic()
        if down is not None:
            log.warning(
                "jupyter-sched: the history database is available again (unavailable for %.1f s)",
                time.monotonic() - down,
            )


#: Key in ``Session.info``: the session began a transaction on a connection.
_CONNECTED = "jupyter_sched.connected"


def _mark_connected(session: Session, transaction: Any, connection: Any) -> None:
    session.info[_CONNECTED] = True


def _describe(exc: BaseException) -> str:
    """One line about a connection error (the driver's, without SQLAlchemy's SQL dump)."""
    cause = getattr(exc, "orig", None) or exc
    lines = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {lines[0] if lines else 'no detail'}"


def retry_while_unavailable(
    action: Callable[[], T],
    *,
    give_up: threading.Event | None = None,
    first_delay: float = 0.1,
    max_delay: float = 5.0,
) -> T:
    """``action()``, called again with backoff for as long as it raises
    :class:`~jupyter_sched.errors.Unavailable`.

    For writes that must happen however long the database is away (a run's outcome, the
    claim of a run a worker holds). The outage is logged once by the :class:`Database`;
    nothing is logged here. ``action`` must be safe to repeat: a commit whose answer was
    lost may have happened. When ``give_up`` is set, the last error is raised.
    """
    delay = first_delay
    while True:
        try:
            return action()
        except Unavailable:
            if give_up is not None and (give_up.is_set() or give_up.wait(delay)):
                raise
            if give_up is None:
                time.sleep(delay)
            delay = min(delay * 2, max_delay)


class Database:
    """Engine and sessions for one history database URL."""

    def __init__(self, url: str) -> None:
        self.url = url
        #: Whether this process reaches the database (shared by all its threads).
        self.availability = Availability()
        parsed = make_url(url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        if self.is_sqlite:
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            self.engine = create_engine(
                url,
                connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_SECONDS},
                pool_size=10,
                max_overflow=20,
            )
            _configure_sqlite(self.engine)
            writer: Engine = self.engine.execution_options(sqlite_immediate=True)
        else:
            connect_args: dict[str, Any] = {}
            if "connect_timeout" not in parsed.query:
                connect_args["connect_timeout"] = CONNECT_TIMEOUT_SECONDS
            if "application_name" not in parsed.query:
                # Which process holds which connection, in pg_stat_activity.
                connect_args["application_name"] = application_name()
            try:
                self.engine = create_engine(
                    url,
                    pool_pre_ping=True,
                    pool_size=10,
                    max_overflow=20,
                    connect_args=connect_args,
                )
            except ModuleNotFoundError as exc:
                missing = MissingExtra.for_module(exc.name or "")
                if missing is None:
                    raise
                raise missing from None
            writer = self.engine
        self._writer_engine = writer

    @functools.cached_property
    def _reader(self) -> sessionmaker[Session]:
        return self._sessions(self.engine)

    @functools.cached_property
    def _writer(self) -> sessionmaker[Session]:
        return self._sessions(self._writer_engine)

    @staticmethod
    def _sessions(engine: Engine) -> sessionmaker[Session]:
        # The ORM is imported with the first session: a read through the engine alone
        # (`jupyter sched jobs list`, jupyter_sched.listing) does not pay for it.
        from sqlalchemy.orm import sessionmaker

        factory = sessionmaker(engine, expire_on_commit=False)
        # Only a session that reached the database says it is available: one that
        # executed nothing (an empty check) must not end an outage.
        event.listen(factory, "after_begin", _mark_connected)
        return factory

    @contextmanager
    def reaching(self, session: Session | None = None) -> Iterator[None]:
        """Turn connection-level errors inside the block into :class:`Unavailable` and
        tell :attr:`availability` how the block ended (with ``session``: a success only if
        it connected)."""
        began = time.monotonic()
        try:
            yield
        except UNAVAILABLE_ERRORS as exc:
            self.availability.failed(exc, began)
            raise Unavailable() from exc
        if session is None or session.info.get(_CONNECTED):
            self.availability.succeeded(began)

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reads; it writes nothing."""
        session = self._reader()
        with self.reaching(session), session, session.begin():
            yield session

    @contextmanager
    def peek(self) -> Iterator[Connection]:
        """A connection for a few reads, without the ORM: half the cost of a :meth:`read`
        session, for the queries the ticker makes on every pass, mostly finding nothing."""
        with self.reaching(), self.engine.connect() as connection:
            yield connection

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A transaction that may write; committed on success, rolled back on error."""
        session = self._writer()
        with self.reaching(session), session, session.begin():
            yield session

    def upgrade(self, *, in_child: bool = False) -> None:
        """Bring the schema to the newest migration (creates the tables on a new database).

        Every server, worker and command calls this on start, so it returns after one
        query when the schema is current, and processes starting together migrate one at
        a time (a PostgreSQL advisory lock, or a lock file next to a SQLite database).
        ``in_child`` runs alembic in a short-lived child process (this one holds the lock):
        a long-lived server then never carries alembic's modules (about 13 MB) for what
        happens once per upgrade.
        Raises :class:`~jupyter_sched.errors.SchemaTooNew` when a newer jupyter-sched
        migrated the database: this code would write to a schema it does not know, and
        :class:`~jupyter_sched.errors.Unavailable` when the database cannot be reached.
        """
        # Only reaching the database is an outage; a migration that fails is an error.
        with self.reaching():
            connection = self.engine.connect()
        with connection:
            if self._schema_is_current(connection):
                return
        with self._migration_lock() as connection:
            # Another process may have migrated while this one waited for the lock.
            if self._schema_is_current(connection):
                return
            if in_child:
                _migrate_in_child(self.url)
                return
            from alembic import command

            config = alembic_config(self.url)
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    def is_current(self) -> bool:
        """Whether the schema is at the newest migration."""
        with self.reaching(), self.engine.connect() as connection:
            return self._schema_is_current(connection)

    def _schema_is_current(self, connection: Connection) -> bool:
        known, heads = _revisions()
        applied = _applied_revisions(connection)
        unknown = applied - known
        if unknown:
            raise SchemaTooNew(
                f"the history database {redact_url(self.url)} is at schema revision "
                f"{', '.join(sorted(unknown))}, which jupyter-sched {__version__} does not know "
                "(a newer jupyter-sched migrated it): upgrade jupyter-sched here to the "
                "deployment's version; not starting, so as not to write to an unknown schema"
            )
        return applied == heads

    @contextmanager
    def _migration_lock(self) -> Iterator[Connection]:
        """A connection in a transaction that no other process migrates beside."""
        if self.engine.dialect.name == "postgresql":
            with self.reaching():
                connection = self.engine.connect()
            with connection, connection.begin():
                # Released when the migration's transaction ends, committed or not.
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
                )
                yield connection
            return
        database = make_url(self.url).database
        if not self.is_sqlite or not database or database == ":memory:":
            with self.engine.begin() as connection:
                yield connection
            return
        # SQLite's own lock would fail the second migrator at once ("database is locked":
        # both read the schema, then both want to write), so wait on a file lock instead.
        lock_path = Path(database).with_name(Path(database).name + ".migrate-lock")
        with open(lock_path, "a") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            try:
                with self.engine.begin() as connection:
                    yield connection
            finally:
                fcntl.flock(lock_file, fcntl.LOCK_UN)

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


def _applied_revisions(connection: Connection) -> set[str]:
    """The revisions alembic recorded in the database (none on a new database)."""
    if not inspect(connection).has_table(ALEMBIC_VERSION_TABLE):
        return set()
    rows = connection.execute(text("SELECT version_num FROM alembic_version"))
    return {str(row[0]) for row in rows}


@functools.cache
def _revisions() -> tuple[set[str], set[str]]:
    """This code's migrations (read once per process): every revision, and the heads.

    Read from the ``revision`` and ``down_revision`` assignments of the migration files,
    as alembic reads them, without importing alembic (a test checks that both agree).
    """
    parents: dict[str, set[str]] = {}
    for path in sorted((MIGRATIONS_DIR / "versions").glob("*.py")):
        values = _module_constants(path, ("revision", "down_revision"))
        if isinstance(values.get("revision"), str):
            down = values.get("down_revision") or ()
            parents[values["revision"]] = {down} if isinstance(down, str) else set(down)
    referenced = set().union(*parents.values())
    return set(parents), set(parents) - referenced


def _module_constants(path: Path, names: tuple[str, ...]) -> dict[str, Any]:
    """The literal values assigned at the top level of a Python file to ``names``."""
    values: dict[str, Any] = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        target: ast.expr | None = None
        if isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        elif isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        if isinstance(target, ast.Name) and target.id in names:
            values[target.id] = ast.literal_eval(value)
    return values


def _migrate_in_child(url: str) -> None:
    """Run the migrations to the newest schema in a child interpreter.

    The URL goes through the child's stdin, not its command line, which other users can
    read in ``/proc``. Raises :class:`~jupyter_sched.errors.MigrationFailed` with the
    child's last error line when it fails.
    """
    done = subprocess.run(
        [sys.executable, "-c", "from jupyter_sched.db import migrate_stdin; migrate_stdin()"],
        input=url,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        last = lines[-1] if lines else f"exit status {done.returncode}"
        raise MigrationFailed(
            f"migrating the history database {redact_url(url)} failed: "
            + last.replace(url, redact_url(url))
        )


def migrate_stdin() -> None:
    """The child of :func:`_migrate_in_child`: migrate the database whose URL is on stdin
    (its parent holds the migration lock)."""
    from alembic import command

    try:
        command.upgrade(alembic_config(sys.stdin.read().strip()), "head")
    except Exception as exc:  # noqa: BLE001 - any failure is reported, in one line
        # one line for the parent's error: the driver's words, without SQLAlchemy's
        # statement dump and link
        cause = getattr(exc, "orig", None) or exc
        reason = str(cause).strip().splitlines()
        sys.stderr.write(f"{type(cause).__name__}: {reason[0] if reason else ''}\n")
        sys.exit(1)


def alembic_config(url: str) -> Config:
    """Alembic configuration for this package's migrations against ``url``."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config
