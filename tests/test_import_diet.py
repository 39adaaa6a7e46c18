"""What the server and the CLI's listings import: what serving needs, not the execution
stack (papermill, nbclient, nbconvert), nor alembic once the schema is current.

Each check runs in a fresh interpreter, since this test process has imported everything.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from jupyter_sched.config import Settings
from jupyter_sched.db import Database
from jupyter_sched.service import Service

from .conftest import REPO
from .servers import RedisServer

#: Never imported by the server or by the CLI's listings and help.
EXECUTION_STACK = ("papermill", "nbclient", "nbconvert", "jupyter_sched.executor")
#: Nor, by the CLI's help, listings and showings: what runs notebooks, carries runs to
#: workers or serves the API (the driver of a PostgreSQL history only where there is one).
NOT_FOR_THE_CLI = (
    *EXECUTION_STACK, "nbformat", "jsonschema", "jupyter_client", "huey", "redis", "psycopg",
    "tornado", "jupyter_server",
)  # fmt: skip

SERVER = """
import json, sys, time
from jupyter_server.serverapp import ServerApp

app = ServerApp.instance()
app.initialize(argv=sys.argv[1:], new_httpserver=False)
sched = app.extension_manager.extension_apps["jupyter_sched"]
sched_app = next(iter(sched))
assert sched_app.ready.wait(60), "the scheduler did not start"
sched_app.service.list_jobs("alice")
sched_app.service.preview({"trigger": {"kind": "interval", "every_seconds": 60}})
# A few ticks of the ticker and a refresh of the metrics (waited for: a loaded machine may
# take longer than an idle one to get there).
deadline = time.monotonic() + 240
def done():
    ticker, observer = sched_app.ticker, sched_app.observer
    return ticker is not None and ticker.ticks >= 3 and observer is not None and observer.polls
while not done():
    assert time.monotonic() < deadline, "no ticks or no metrics refresh"
    time.sleep(0.05)
sched_app.stop_scheduler()
print(json.dumps(sorted(sys.modules)))
"""

#: A hub user's server: the extension forwards the API to the service and runs nothing.
FORWARDING_SERVER = """
import json, sys
import prometheus_client
from jupyter_server.serverapp import ServerApp

app = ServerApp.instance()
app.initialize(argv=sys.argv[1:], new_httpserver=False)
assert app.extension_manager.extension_apps["jupyter_sched"], "the extension did not load"
series = prometheus_client.generate_latest(prometheus_client.REGISTRY).decode()
assert "jupyter_sched_" not in series, series
print(json.dumps(sorted(sys.modules)))
"""

#: Starts an embedded (SQLite) queue's worker, which takes a message off the queue.
EMBEDDED_WORKER = """
import json, sys, time
from jupyter_sched.config import Settings
from jupyter_sched.db import Database
from jupyter_sched.service import Service
from jupyter_sched.worker import Worker

service = Service.open(Settings(prestart_kernels=False))
worker = Worker(service.settings, service.db)
worker.start()
service.queues.enqueue("no-such-run", "default")
deadline = time.monotonic() + 120
while service.queues["default"].depth() and time.monotonic() < deadline:
    time.sleep(0.1)
assert not service.queues["default"].depth(), "the worker took no message"
worker.stop(grace_seconds=10)
print(json.dumps(sorted(sys.modules)))
"""

#: A Redis queue made after the embedded queue loaded huey (without redis): it still works.
REDIS_AFTER_EMBEDDED = """
import json, sys
from jupyter_sched.config import Settings
from jupyter_sched.db import Database
from jupyter_sched.queue import RunQueue

embedded = RunQueue(Settings())
embedded.enqueue("run-a")
assert "redis" not in sys.modules
queue = RunQueue(Settings(redis_url=sys.argv[1], secret="s"), name="diet")
queue.flush()
queue.enqueue("run-b", priority=1)
queue.enqueue_many([("run-c", 0), ("run-d", 5)])
assert queue.depth() == 3 and queue.pending_ids() == {"run-b", "run-c", "run-d"}
taken = [queue.huey.dequeue().id for _ in range(3)]
assert taken == ["run-d", "run-b", "run-c"], taken
assert queue.huey.dequeue() is None
print(json.dumps(sorted(sys.modules)))
"""

CLI = """
import json, sys
from click.testing import CliRunner
from jupyter_sched.cli import main

for args in sys.argv[1:]:
    result = CliRunner().invoke(main, args.split(), catch_exceptions=False)
    assert result.exit_code == 0, result.output
print(json.dumps(sorted(sys.modules)))
"""


def fresh_modules(tmp_path: Path, code: str, *args: str) -> set[str]:
    """The modules a fresh interpreter has imported after running ``code``."""
    env = {
        **os.environ,
        "JUPYTER_SCHED_DATA_DIR": str(tmp_path / "data"),
        "JUPYTER_SCHED_ROOT_DIR": str(REPO),
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
    }
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def server_modules(tmp_path: Path) -> set[str]:
    """The modules of a ``jupyter server`` with the scheduler that served a few calls."""
    return fresh_modules(
        tmp_path,
        SERVER,
        f"--ServerApp.root_dir={REPO}",
        "--SchedApp.embedded_workers=False",
        "--ServerApp.open_browser=False",
    )


@pytest.fixture
def migrated(tmp_path: Path) -> None:
    """A deployment whose history database is already at the newest schema."""
    service = Service.open(Settings(data_dir=tmp_path / "data", root_dir=REPO))
    service.db.dispose()


def test_the_server_does_not_import_the_execution_stack(tmp_path: Path, migrated: None) -> None:
    modules = server_modules(tmp_path)
    assert "jupyter_sched.service" in modules  # the extension did start
    assert "jupyter_sched.ticker" in modules
    assert not modules.intersection(EXECUTION_STACK), modules.intersection(EXECUTION_STACK)
    assert "alembic" not in modules  # the schema is current: nothing to migrate


def test_a_server_migrates_a_new_database_without_importing_alembic(tmp_path: Path) -> None:
    # alembic runs once per upgrade, in a child process: a long-lived server does not keep
    # its modules (about 13 MB) for it.
    modules = server_modules(tmp_path)
    assert "jupyter_sched.service" in modules  # the API served from the migrated database
    assert "alembic" not in modules
    db = Database(Settings(data_dir=tmp_path / "data").database_url)
    try:
        assert db.is_current()
    finally:
        db.dispose()


def test_a_forwarding_server_shows_none_of_the_schedulers_metrics(tmp_path: Path) -> None:
    # On a hub the deployment's metrics are the service's; a user's server that showed the
    # scheduler's series (all zeros, live workers 0) would mislead a scrape of it.
    modules = fresh_modules(
        tmp_path,
        FORWARDING_SERVER,
        f"--ServerApp.root_dir={tmp_path}",
        "--SchedApp.service_url=http://127.0.0.1:9/services/sched/",
        "--ServerApp.open_browser=False",
    )
    assert "jupyter_sched.forward" in modules
    assert "jupyter_sched.metrics" not in modules


def test_the_embedded_worker_imports_no_redis_nor_psycopg(tmp_path: Path) -> None:
    # huey's storage module imports both whenever they are installed (about 22 MB of the
    # worker's memory); the embedded queue and a SQLite history use neither.
    modules = fresh_modules(tmp_path, EMBEDDED_WORKER)
    assert "huey.consumer" in modules  # the worker did consume
    assert not {"redis", "psycopg"} & modules


@pytest.mark.redis
def test_a_redis_queue_works_after_huey_was_loaded_without_redis(
    tmp_path: Path, redis_srv: RedisServer
) -> None:
    modules = fresh_modules(tmp_path, REDIS_AFTER_EMBEDDED, redis_srv.url)
    assert "redis" in modules
    assert "psycopg" not in modules


@pytest.mark.parametrize("commands", [("--help",), ("jobs list", "runs list", "jobs --help")])
def test_help_and_listings_do_not_import_the_execution_stack(
    tmp_path: Path, migrated: None, commands: tuple[str, ...]
) -> None:
    modules = fresh_modules(tmp_path, CLI, *commands)
    assert not modules.intersection(NOT_FOR_THE_CLI), modules.intersection(NOT_FOR_THE_CLI)
    assert "alembic" not in modules
    assert "jupyter_sched.worker" not in modules


def test_help_imports_no_storage(tmp_path: Path) -> None:
    modules = fresh_modules(tmp_path, CLI, "--help")
    assert not {"sqlalchemy", "pydantic", "croniter", "huey", "jupyter_sched.service"} & modules


def test_jobs_show_does_not_import_the_execution_stack(tmp_path: Path, migrated: None) -> None:
    service = Service.open(Settings(data_dir=tmp_path / "data", root_dir=REPO))
    job = service.create_job(
        os.environ.get("JUPYTER_SCHED_USER") or _login(),
        {"name": "j", "notebook": "tests/notebooks/trivial.ipynb", "trigger": {"kind": "manual"}},
    )
    service.db.dispose()
    # Creating the job read the notebook here; showing it in a fresh process reads nothing.
    modules = fresh_modules(tmp_path, CLI, f"jobs show {job.id}")
    assert not modules.intersection(NOT_FOR_THE_CLI), modules.intersection(NOT_FOR_THE_CLI)


def test_listings_read_their_tables_with_sqlalchemy_core(tmp_path: Path, migrated: None) -> None:
    service = Service.open(Settings(data_dir=tmp_path / "data", root_dir=REPO))
    owner = os.environ.get("JUPYTER_SCHED_USER") or _login()
    notebook = "tests/notebooks/trivial.ipynb"
    first = service.create_job(owner, {"name": "a", "notebook": notebook})
    every = {"kind": "interval", "every_seconds": 3600}
    service.create_job(owner, {"name": "b", "notebook": notebook, "trigger": every})
    after = {"kind": "after", "jobs": [first.id]}
    service.create_job(owner, {"name": "c", "notebook": notebook, "trigger": after})
    service.run_job(owner, first.id)
    service.db.dispose()
    listings = ("jobs list", "jobs list --status active --tag x", "runs list",
                f"runs list --job {first.id} --status queued -n 5")  # fmt: skip
    modules = fresh_modules(tmp_path, CLI, *listings)
    assert "jupyter_sched.listing" in modules  # the light read did list them
    assert not modules.intersection(NOT_FOR_THE_CLI), modules.intersection(NOT_FOR_THE_CLI)
    # Neither the ORM nor the API's models, nor croniter for jobs without a cron trigger.
    heavy = {"sqlalchemy.orm", "pydantic", "croniter", "alembic", "jupyter_sched.models",
             "jupyter_sched.schemas", "jupyter_sched.service"}  # fmt: skip
    assert not modules & heavy, modules & heavy


def _login() -> str:
    import getpass

    return getpass.getuser()
