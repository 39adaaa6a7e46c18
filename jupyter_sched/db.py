"""The history database: engine set-up for SQLite and PostgreSQL, sessions, migrations."""

from __future__ import annotations

import fcntl
import functools
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from . import __version__
from .config import redact_url
from .errors import SchemaTooNew

#: Seconds a SQLite writer waits for another writer before giving up.
SQLITE_BUSY_TIMEOUT_SECONDS = 30

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
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


class Database:
    """Engine and sessions for one history database URL."""

    def __init__(self, url: str) -> None:
        self.url = url
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
            self.engine = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
            writer = self.engine
        self._reader = sessionmaker(self.engine, expire_on_commit=False)
        self._writer = sessionmaker(writer, expire_on_commit=False)

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reads; it writes nothing."""
        with self._reader() as session, session.begin():
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A transaction that may write; committed on success, rolled back on error."""
        with self._writer() as session, session.begin():
            yield session

    def upgrade(self) -> None:
        """Bring the schema to the newest migration (creates the tables on a new database).

        Every server, worker and command calls this on start, so it returns after one
        query when the schema is current, and processes starting together migrate one at
        a time (a PostgreSQL advisory lock, or a lock file next to a SQLite database).
        Raises :class:`~jupyter_sched.errors.SchemaTooNew` when a newer jupyter-sched
        migrated the database: this code would write to a schema it does not know.
        """
        with self.engine.connect() as connection:
            if self._schema_is_current(connection):
                return
        with self._migration_lock() as connection:
            # Another process may have migrated while this one waited for the lock.
            if self._schema_is_current(connection):
                return
            config = alembic_config(self.url)
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    def is_current(self) -> bool:
        """Whether the schema is at the newest migration."""
        with self.engine.connect() as connection:
            return self._schema_is_current(connection)

    def _schema_is_current(self, connection: Connection) -> bool:
        script = _scripts()
        applied = set(MigrationContext.configure(connection).get_current_heads())
        unknown = applied - {revision.revision for revision in script.walk_revisions()}
        if unknown:
            raise SchemaTooNew(
                f"the history database {redact_url(self.url)} is at schema revision "
                f"{', '.join(sorted(unknown))}, which jupyter-sched {__version__} does not know "
                "(a newer jupyter-sched migrated it): upgrade jupyter-sched here to the "
                "deployment's version; not starting, so as not to write to an unknown schema"
            )
        return applied == set(script.get_heads())

    @contextmanager
    def _migration_lock(self) -> Iterator[Connection]:
        """A connection in a transaction that no other process migrates beside."""
        if self.engine.dialect.name == "postgresql":
            with self.engine.begin() as connection:
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


@functools.cache
def _scripts() -> ScriptDirectory:
    """This code's migrations (read once per process)."""
    return ScriptDirectory.from_config(alembic_config("sqlite://"))


def alembic_config(url: str) -> Config:
    """Alembic configuration for this package's migrations against ``url``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config
