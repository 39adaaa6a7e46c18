"""Fire → running lateness on the shared-hub setup with every user server stopped.

Run as root from the repository (``.venv/bin/python -m bench.hub_lateness``): it builds the
hub test environment (tests/hub), starts PostgreSQL and Redis with passwords, a JupyterHub
from ``deploy/jupyterhub_config.py`` with the scheduler service, and two workers run as
root with runs as their owner; alice (a throwaway Unix user) creates an interval job
through the service while no user server runs. It prints p50/p95 over the fires of
``started_at - scheduled_for`` (the fire's due time to a worker claiming the run: status
``running``; the ticker's wake, the Redis enqueue and the worker's pickup), and of the due
time to the executed notebook's first cell starting (papermill's ``start_time``: that plus
the owner's kernel, prepared or started, and the snapshot of the input).
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import nbformat
import requests

from tests.hub.accounts import close_session, open_session
from tests.hub.environment import ensure_hub_environment
from tests.hub.hub import HubClient, start_hub
from tests.servers import HOST, find_free_port, postgres_server, redis_server

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=20, help="fires to measure")
    parser.add_argument("--every", type=float, default=3.0, help="interval, seconds")
    parser.add_argument("--tick", type=float, default=None, help="the service's tick_seconds")
    args = parser.parse_args()
    environment = ensure_hub_environment(REPO)
    session = open_session()
    workers: list[subprocess.Popen[bytes]] = []
    data_dir = Path(tempfile.mkdtemp(prefix="jsched-bench-", dir="/var/tmp"))
    data_dir.chmod(0o711)
    try:
        with (
            postgres_server(password=secrets.token_hex(16)) as pg,
            redis_server(password=secrets.token_hex(16)) as rd,
        ):
            settings = {
                "JUPYTER_SCHED_DB_URL": pg.create_database("sched_bench"),
                "JUPYTER_SCHED_REDIS_URL": rd.url,
                "JUPYTER_SCHED_SECRET": secrets.token_hex(32),
                "JUPYTER_SCHED_DATA_DIR": str(data_dir),
                "JUPYTER_SCHED_RUN_AS_OWNER": "true",
                "JUPYTER_SCHED_USER_ROOT_DIR": "~{owner}",
            }
            if args.tick is not None:
                settings["JUPYTER_SCHED_TICK_SECONDS"] = str(args.tick)
            env_file = session.directory / "sched.env"
            env_file.touch(mode=0o600)
            env_file.write_text("".join(f"{k}={v}\n" for k, v in settings.items()))
            hub = start_hub(
                environment,
                session.directory,
                REPO / "deploy" / "jupyterhub_config.py",
                extra_env={
                    "JUPYTERHUB_USERS_GROUP": session.users_group,
                    "JUPYTERHUB_ADMINS_GROUP": session.admins_group,
                    "JUPYTER_SCHED_ENV_FILE": str(env_file),
                    "JUPYTER_SCHED_SERVICE_URL": f"http://{HOST}:{find_free_port()}",
                },
            )
            try:
                for _ in range(2):
                    workers.append(
                        subprocess.Popen(
                            [str(environment.bin / "jupyter-sched"), "worker", "-c", "1"],
                            env={"PATH": f"{environment.bin}:/usr/bin:/bin", "LANG": "C.UTF-8",
                                 "HOME": str(session.directory), **settings},
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True,
                        )
                    )  # fmt: skip
                tick = f", tick {args.tick:g} s" if args.tick is not None else ", tick default"
                print(measure(hub, session, args.n, args.every) + tick)
            finally:
                for worker in workers:
                    worker.terminate()
                for worker in workers:
                    worker.wait(60)
                hub.stop()
    finally:
        close_session(session)
        subprocess.run(["rm", "-rf", str(data_dir)], check=False)


def measure(hub: object, session: object, n: int, every: float) -> str:
    client = HubClient(hub)  # type: ignore[arg-type]
    alice = session.account("alice")  # type: ignore[attr-defined]
    client.create_users([alice.pw_name])
    token = client.user_token(alice.pw_name)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell("print(x * 2)")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    path = Path(alice.pw_dir) / "trivial.ipynb"
    path.write_text(nbformat.writes(nb))
    os.chown(path, alice.pw_uid, alice.pw_gid)
    api = f"{hub.url}/services/sched/sched/api"  # type: ignore[attr-defined]
    headers = {"Authorization": f"token {token}"}
    job = requests.post(
        f"{api}/jobs",
        headers=headers,
        json={"name": "bench", "notebook": "trivial.ipynb", "overlap": "skip",
              "trigger": {"kind": "interval", "every_seconds": every}},
        timeout=60,
    ).json()  # fmt: skip
    assert not client.server_running(alice.pw_name)
    deadline = time.monotonic() + n * every * 4 + 120
    fired: list[dict[str, object]] = []
    while len(fired) < n + 2 and time.monotonic() < deadline:
        time.sleep(every)
        runs = requests.get(
            f"{api}/runs?job_id={job['id']}&limit=200", headers=headers, timeout=60
        ).json()["runs"]
        fired = [
            r
            for r in runs
            if r["finished_at"] and r["scheduled_for"] and r["trigger"] == "schedule"
        ]
    fired = fired[:-2]  # the oldest two (the list is newest first) warm the workers' kernels
    late = [_t(r["started_at"]) - _t(r["scheduled_for"]) for r in fired]
    first_cell = []
    for run in fired:
        output = requests.get(f"{api}/runs/{run['id']}/output", headers=headers, timeout=60)
        started = output.json()["cells"][0]["metadata"]["papermill"]["start_time"]
        first_cell.append(_t(started) - _t(run["scheduled_for"]))
    return (
        f"on the hub, all user servers stopped, {len(late)} fires every {every:g} s: "
        f"fire -> running {_quantiles(late)}; fire -> first cell {_quantiles(first_cell)}"
    )


def _quantiles(values: list[float]) -> str:
    q = statistics.quantiles(values, n=20)
    return f"p50 {statistics.median(values):.3f} s, p95 {q[18]:.3f} s, max {max(values):.3f} s"


def _t(text: str) -> float:
    moment = datetime.fromisoformat(text)
    # papermill writes UTC without an offset
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


if __name__ == "__main__":
    main()
