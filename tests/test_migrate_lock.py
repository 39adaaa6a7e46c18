"""Start-up against the history database: migrations under a lock, a schema this code
does not know refused, and no password in what the CLI prints or the server logs.

Every server, worker and CLI command migrates on start, so several often start together
on an empty database; and a process older than the database must not write to it.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import text

from jupyter_sched.config import Settings, redact_url
from jupyter_sched.db import MIGRATION_LOCK_KEY, Database
from jupyter_sched.errors import MigrationFailed, SchemaTooNew

from . import servers
from .conftest import REPO
from .servers import PostgresServer

PASSWORD = "Pw-" + secrets.token_hex(6)  # a test value: the test server trusts any
TOKEN = secrets.token_hex(8)
FUTURE = "0999_from_the_future"
PARALLEL = 6


def cli(*args: str, db_url: str, data_dir: Path, **popen: object) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "JUPYTER_SCHED_DB_URL": db_url,
        "JUPYTER_SCHED_DATA_DIR": str(data_dir),
        "JUPYTER_SCHED_ROOT_DIR": str(REPO),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "jupyter_sched.cli", *args],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,  # type: ignore[call-overload]
    )


def finish(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=500)
    return process.returncode, out, err


def stamp_future(url: str) -> None:
    """Make the database look migrated by a newer jupyter-sched."""
    db = Database(url)
    db.upgrade()
    with db.engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": FUTURE})
    db.dispose()


def with_password(pg: PostgresServer, name: str) -> str:
    """A new database's URL with a password in it (the test server trusts any)."""
    return pg.create_database(name).replace("postgres@", f"postgres:{PASSWORD}@", 1)


@pytest.mark.timeout(600)  # six interpreters starting at once on a loaded machine
def test_parallel_upgrades_of_an_empty_database_all_succeed(db_url: str, tmp_path: Path) -> None:
    processes = [
        cli("db", "upgrade", db_url=db_url, data_dir=tmp_path / f"data{i}") for i in range(PARALLEL)
    ]
    results = [finish(process) for process in processes]
    for code, out, err in results:
        assert code == 0, err
        assert "database at the newest schema" in out
    db = Database(db_url)
    assert db.is_current()
    db.dispose()


def test_a_current_schema_is_not_migrated_again(pg: PostgresServer) -> None:
    """At head, upgrade returns without the migration lock, even while another process
    holds it (a long migration of another database version, say)."""
    url = pg.create_database("current")
    Database(url).upgrade()
    holder = Database(url)
    with holder.engine.connect() as connection:
        connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK_KEY})
        done = threading.Event()

        def upgrade() -> None:
            Database(url).upgrade()
            done.set()

        threading.Thread(target=upgrade, daemon=True).start()
        assert done.wait(60), "upgrade of a current schema waited for the migration lock"
        connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK_KEY})
    holder.dispose()


def test_a_schema_from_newer_code_is_refused(db_url: str) -> None:
    stamp_future(db_url)
    db = Database(db_url)
    with pytest.raises(SchemaTooNew) as refused:
        db.upgrade()
    assert FUTURE in refused.value.message and "\n" not in refused.value.message
    with db.engine.connect() as connection:  # nothing was written
        version = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    assert version == FUTURE
    db.dispose()


def test_a_migration_that_fails_in_its_child_process_says_why(db_url: str) -> None:
    db = Database(db_url)
    with db.engine.begin() as connection:  # a table in the way of the first migration
        connection.execute(text("CREATE TABLE jobs (stray INTEGER)"))
    with pytest.raises(MigrationFailed) as failed:
        db.upgrade(in_child=True)
    message = failed.value.message
    assert message.startswith(f"migrating the history database {redact_url(db_url)} failed: ")
    assert "already exists" in message and "\n" not in message
    assert not db.is_current()
    db.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize("command", [("db", "upgrade"), ("worker",), ("jobs", "list")])
def test_the_cli_refuses_a_newer_schema_in_one_line(
    pg: PostgresServer, tmp_path: Path, command: tuple[str, ...]
) -> None:
    url = with_password(pg, f"future_{'_'.join(command)}")
    stamp_future(url)
    code, out, err = finish(cli(*command, db_url=url, data_dir=tmp_path / "data"))
    assert code == 1 and out == ""
    (line,) = err.strip().splitlines()
    assert line.startswith("Error: the history database postgresql+psycopg://postgres:***@")
    assert FUTURE in line and PASSWORD not in line


@pytest.mark.postgres
def test_db_upgrade_prints_the_url_without_its_password(pg: PostgresServer, tmp_path: Path) -> None:
    url = with_password(pg, "masked")
    code, out, err = finish(cli("db", "upgrade", db_url=url, data_dir=tmp_path / "data"))
    assert code == 0, err
    assert out.strip() == f"database at the newest schema: {url.replace(PASSWORD, '***')}"
    assert PASSWORD not in out + err


@contextmanager
def jupyter_server(db_url: str, tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """A ``jupyter server`` with the scheduler on ``db_url``; yields its port and log."""
    args = [f"--SchedApp.db_url={db_url}", f"--SchedApp.data_dir={tmp_path / 'data'}",
            "--SchedApp.embedded_workers=False"]  # fmt: skip
    with servers.jupyter_server(tmp_path, root_dir=REPO, token=TOKEN, args=args) as started:
        yield started


def status(port: int, path: str) -> int | None:
    return servers.server_status(port, path, TOKEN)[0]


def response(port: int, path: str) -> tuple[int | None, bytes]:
    return servers.server_status(port, path, TOKEN)


@pytest.mark.postgres
def test_the_server_logs_no_password(pg: PostgresServer, tmp_path: Path) -> None:
    url = with_password(pg, "server_log")
    with jupyter_server(url, tmp_path) as (port, log):
        assert status(port, "sched/api/health") == 200
    text_ = log.read_text()
    assert "history postgresql+psycopg://postgres:***@" in text_
    assert PASSWORD not in text_


@pytest.mark.postgres
def test_the_server_refuses_a_newer_schema_in_one_log_line(
    pg: PostgresServer, tmp_path: Path
) -> None:
    url = with_password(pg, "server_future")
    stamp_future(url)
    with jupyter_server(url, tmp_path) as (port, log):
        # The server runs; the scheduler's API says why it is off.
        code, body = response(port, "sched/api/health")
        assert code == 503
        assert json.loads(body)["reason"] == "schema_too_new"
    text_ = log.read_text()
    # One line at start; each API call answers (and logs) the same reason.
    (line,) = [
        line for line in text_.splitlines() if "SchedApp" in line and "jupyter-sched" in line
    ]
    assert "jupyter-sched is off: the history database" in line and FUTURE in line
    assert "Traceback" not in text_ and PASSWORD not in text_


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql+psycopg://sched:s3cr/et@db:5432/sched", "postgresql+psycopg://sched:***@db:5432/sched"),
        ("redis://:hunter2@redis.internal:6379/0", "redis://:***@redis.internal:6379/0"),
        ("postgresql://sched@db/sched?password=hunter2&sslmode=require",
         "postgresql://sched@db/sched?password=***&sslmode=require"),
        ("sqlite:////home/alice/.local/share/jupyter/sched/sched.db",
         "sqlite:////home/alice/.local/share/jupyter/sched/sched.db"),
        ("redis://redis.internal:6379/0", "redis://redis.internal:6379/0"),
    ],
)  # fmt: skip
def test_urls_are_shown_without_passwords(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_settings_never_show_credentials() -> None:
    settings = Settings(
        db_url="postgresql://sched:pw-db@db/sched", redis_url="redis://:pw-redis@redis",
        secret="pw-secret", smtp_password="pw-smtp",
    )  # fmt: skip
    assert "pw-" not in repr(settings) and "pw-" not in str(settings)
