"""Run latency of jupyter-sched against the official jupyter-scheduler, through their REST APIs.

What is measured
----------------
Two real ``jupyter server`` processes run side by side on 127.0.0.1, each with its own
temporary root dir (holding a copy of ``tests/notebooks/trivial.ipynb``), its own fresh
Jupyter data, runtime and config dirs, and its scheduler's default deployment:

``jupyter-sched``
    This project, from the project's virtualenv, with its embedded default (SQLite
    history, SqliteHuey queue, the ticker thread and one ``jupyter sched worker``
    subprocess) on a fresh ``JUPYTER_SCHED_DATA_DIR``. During set-up one manual job of the
    notebook is created. A sample is the time from just before ``POST
    sched/api/jobs/{id}/run`` (parameters ``{"x": i}``) until a client polling ``GET
    sched/api/runs/{run_id}`` every 20 ms sees the run ``succeeded``.

``jupyter-scheduler``
    The official extension (PyPI ``jupyter-scheduler==2.12.1``) from its own virtualenv,
    ``bench/.venv-reference`` (it pins ``croniter~=1.4``, which conflicts with this
    project), created with ``pip install jupyter-scheduler==2.12.1 ipykernel`` when missing.
    Its SQLite database and staging area live in the fresh Jupyter data dir. A sample is
    the time from just before ``POST scheduler/jobs`` (a one-off job of the notebook,
    output ``ipynb``, parameters ``{"x": "i"}``) until a client polling ``GET
    scheduler/jobs/{job_id}`` every 20 ms sees it ``COMPLETED``; ``FAILED`` or
    ``STOPPED`` fails the benchmark (a new job reads ``STOPPED``, the column's default,
    until its process starts: that counts as pending). jupyter-scheduler has no "run this job again"
    endpoint: creating a job *is* how its REST API runs a notebook now, so that is the
    closest counterpart of ``jobs/{id}/run``.

Both are what a REST client (the Lab panel of either extension, a script) waits for from
"run this notebook" to "it is done": request handling, the database rows, the input copy,
the hand-off to whatever executes the notebook, the kernel, the execution, the outputs,
recording the outcome and the client noticing it. Each sample also records how long the
submitting request itself took (``submit``).

Each kind is timed as a user would meet it by default: jupyter-sched's worker keeps a
started kernel ready (and has the other server's sample to finish booting the next one),
jupyter-scheduler spawns a fresh Python process per job. Both servers are up before any
sample, and two samples of each kind run untimed first (imports, first connections, the
first kernel). Server start-up (process start until the API answers) is printed once for
each, for information.

Why the kinds alternate
-----------------------
Samples run one at a time as jupyter-sched, jupyter-scheduler, jupyter-sched, ... so that
machine noise (other processes, CPU frequency, a disk flush) lands on both kinds alike and
the ratio of the medians stays meaningful on a busy machine. Both servers stay up the whole
time; the idle one costs nearly nothing.

Usage::

    python bench/vs_jupyter_scheduler.py [--n 10] [--order alternate|blocks] [--json F]
                                         [--logs DIR]

``--order blocks`` runs all samples of jupyter-sched back to back, then all of
jupyter-scheduler's: the worst case for jupyter-sched, whose next kernel then has no idle
time to boot in.

The exit code is 0 whatever the ratio (this is a measurement), and 1 when a run failed or
a server could not be started.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from figures import free_port, summary

REPO = Path(__file__).resolve().parent.parent
NOTEBOOK = REPO / "tests" / "notebooks" / "trivial.ipynb"
#: The notebook's name inside each server's root dir.
NOTEBOOK_NAME = "trivial.ipynb"
REFERENCE_VENV = REPO / "bench" / ".venv-reference"
REFERENCE_REQUIREMENTS = ["jupyter-scheduler==2.12.1", "ipykernel"]
#: Written in the reference venv once the installation succeeded.
REFERENCE_STAMP = REFERENCE_VENV / ".installed-jupyter-scheduler-2.12.1"
OURS = "jupyter-sched"
THEIRS = "jupyter-scheduler"
KERNEL = "python3"
WARMUP = 2
POLL_SECONDS = 0.02
#: A run not finished after this long fails the benchmark.
RUN_TIMEOUT_SECONDS = 120.0
#: A server whose API does not answer after this long fails the benchmark.
START_TIMEOUT_SECONDS = 120.0
STOP_TIMEOUT_SECONDS = 30.0
HTTP_TIMEOUT_SECONDS = 60.0


def our_pending(run: dict[str, Any]) -> bool:
    return run.get("status") in ("queued", "running")


def their_pending(job: dict[str, Any]) -> bool:
    # A new job row reads STOPPED (the column's default in jupyter-scheduler 2.12.1) until
    # its process starts and marks it IN_PROGRESS: STOPPED without a start time is pending.
    status = job.get("status")
    if status == "STOPPED":
        return job.get("start_time") is None
    return status in ("CREATED", "QUEUED", "IN_PROGRESS", "STOPPING")


class RunFailed(RuntimeError):
    """A sample did not complete successfully, or a server did not start."""


@dataclass
class Sample:
    """One run, in seconds."""

    #: From just before the submitting request until the client saw the run finished.
    total: float
    #: The submitting request's round trip.
    submit: float


@dataclass
class Results:
    samples: dict[str, list[Sample]] = field(default_factory=lambda: {OURS: [], THEIRS: []})
    #: Seconds from starting each server process until its API answered.
    startup: dict[str, float] = field(default_factory=dict)


# -- HTTP ---------------------------------------------------------------------------------


class Client:
    """JSON over one kept-alive HTTP connection to a server on 127.0.0.1, with its token."""

    def __init__(self, port: int, token: str) -> None:
        self.port = port
        self.token = token
        self._conn: http.client.HTTPConnection | None = None

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """(status, decoded JSON body or None); a broken connection is reopened once."""
        data = None if body is None else json.dumps(body).encode()
        headers = {"Authorization": f"token {self.token}"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        for attempt in (1, 2):
            if self._conn is None:
                self._conn = http.client.HTTPConnection(
                    "127.0.0.1", self.port, timeout=HTTP_TIMEOUT_SECONDS
                )
            try:
                self._conn.request(method, f"/{path}", body=data, headers=headers)
                response = self._conn.getresponse()
                raw = response.read()
            except (OSError, http.client.HTTPException):
                self.close()
                if attempt == 2 or method != "GET":
                    raise
                continue
            try:
                decoded = json.loads(raw) if raw else None
            except ValueError:
                decoded = raw.decode(errors="replace")
            return response.status, decoded
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


# -- the reference virtualenv -------------------------------------------------------------


def ensure_reference_venv() -> Path:
    """``bench/.venv-reference`` with jupyter-scheduler installed; returns its ``jupyter``."""
    jupyter = REFERENCE_VENV / "bin" / "jupyter"
    if REFERENCE_STAMP.exists() and jupyter.exists():
        return jupyter
    python3 = shutil.which("python3") or sys.executable
    print(f"creating {REFERENCE_VENV.relative_to(REPO)} ({' '.join(REFERENCE_REQUIREMENTS)})")
    subprocess.run([python3, "-m", "venv", str(REFERENCE_VENV)], check=True)
    pip = [str(REFERENCE_VENV / "bin" / "python"), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, *REFERENCE_REQUIREMENTS], check=True)
    REFERENCE_STAMP.touch()
    return jupyter


# -- servers ------------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    client: Client
    root: Path
    log: Path
    #: Seconds from starting the process until the API answered.
    startup: float


def server_env(venv_bin: Path, home: Path, extra: dict[str, str]) -> dict[str, str]:
    """This process's environment with fresh Jupyter dirs under ``home``, none of our
    ``JUPYTER_SCHED_*`` settings, and ``venv_bin`` first on the path."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("JUPYTER_SCHED_", "JUPYTER_", "VIRTUAL_ENV"))
    }
    for name in ("data", "runtime", "config"):
        (home / name).mkdir(parents=True, exist_ok=True)
    env.update(
        JUPYTER_DATA_DIR=str(home / "data"),
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        JUPYTER_CONFIG_DIR=str(home / "config"),
        JUPYTER_PLATFORM_DIRS="1",
        PATH=f"{venv_bin}{os.pathsep}{env.get('PATH', '')}",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def stop_process_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server and wait for it; then end whatever is left of its process group
    (kernels, job processes), SIGKILL last."""
    pgid = proc.pid  # start_new_session=True: the server leads its own group
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            print(f"server pid {proc.pid} ignored SIGTERM; killing its group", file=sys.stderr)
    for sig, grace in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                try:
                    os.killpg(pgid, 0)
                except ProcessLookupError:
                    break
            time.sleep(0.05)
    if proc.poll() is None:
        proc.wait(STOP_TIMEOUT_SECONDS)


@contextmanager
def jupyter_server(
    name: str,
    jupyter: Path,
    home: Path,
    *,
    extension: str,
    health_path: str,
    env_extra: dict[str, str] | None = None,
) -> Iterator[Server]:
    """A ``jupyter server`` of ``jupyter`` with ``extension`` enabled (besides what its
    venv enables), its root and Jupyter dirs under ``home``; yields once ``health_path``
    answers 200."""
    root = home / "root"
    root.mkdir(parents=True)
    shutil.copyfile(NOTEBOOK, root / NOTEBOOK_NAME)
    port, token = free_port(), secrets.token_hex(16)
    argv = [
        str(jupyter), "server", "--no-browser", "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
        f"--ServerApp.jpserver_extensions={{'{extension}': True}}",
    ]  # fmt: skip
    if os.geteuid() == 0:
        argv.append("--allow-root")
    log = home / "server.log"
    env = server_env(jupyter.parent, home, env_extra or {})
    client = Client(port, token)
    with open(log, "wb") as log_file:
        start = time.perf_counter()
        proc = subprocess.Popen(
            argv,
            env=env,
            cwd=root,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        while True:
            try:
                status, _ = client.request("GET", health_path)
                if status == 200:
                    break
            except (OSError, http.client.HTTPException):
                pass
            if proc.poll() is not None:
                raise RunFailed(f"{name} server exited ({proc.returncode}) during start-up")
            if time.perf_counter() - start > START_TIMEOUT_SECONDS:
                raise RunFailed(f"{name} server did not answer {health_path} in time")
            time.sleep(0.05)
        startup = time.perf_counter() - start
        yield Server(name, client, root, log, startup)
    except Exception:  # not on Ctrl-C: the logs only matter when a run failed
        tail = log.read_text(errors="replace").splitlines()[-30:]
        print(f"--- last lines of the {name} server log ---", file=sys.stderr)
        print("\n".join(tail), file=sys.stderr)
        raise
    finally:
        client.close()
        stop_process_group(proc)


# -- samples ------------------------------------------------------------------------------


def poll(
    client: Client, path: str, pending: Callable[[dict[str, Any]], bool], start: float, what: str
) -> tuple[float, dict[str, Any]]:
    """GET ``path`` every 20 ms until ``pending(body)`` is false: (end time, body)."""
    while True:
        status, body = client.request("GET", path)
        if status != 200 or not isinstance(body, dict):
            raise RunFailed(f"GET {path}: {status} {body}")
        if not pending(body):
            return time.perf_counter(), body
        if time.perf_counter() - start > RUN_TIMEOUT_SECONDS:
            raise RunFailed(f"{what} still {body.get('status')} after {RUN_TIMEOUT_SECONDS:g}s")
        time.sleep(POLL_SECONDS)


def create_our_job(server: Server) -> str:
    """The manual job whose runs are the jupyter-sched samples."""
    body = {
        "name": "bench trivial",
        "notebook": NOTEBOOK_NAME,
        "trigger": {"kind": "manual"},
        "kernel": KERNEL,
        "output_formats": ["ipynb"],
    }
    status, job = server.client.request("POST", "sched/api/jobs", body)
    if status != 201:
        raise RunFailed(f"POST sched/api/jobs: {status} {job}")
    return str(job["id"])


def our_sample(server: Server, job_id: str, i: int) -> Sample:
    """One run of the job through jupyter-sched's API, until seen succeeded."""
    start = time.perf_counter()
    status, run = server.client.request(
        "POST", f"sched/api/jobs/{job_id}/run", {"parameters": {"x": i}}
    )
    submitted = time.perf_counter()
    if status != 201:
        raise RunFailed(f"POST sched/api/jobs/{job_id}/run: {status} {run}")
    run_id = run["id"]
    end, run = poll(server.client, f"sched/api/runs/{run_id}", our_pending, start, f"run {run_id}")
    if run["status"] != "succeeded":
        error = run.get("error") or {}
        raise RunFailed(
            f"{OURS} run {run_id} ended {run['status']}: "
            f"{error.get('ename', '')}: {error.get('evalue', '')}"
        )
    return Sample(total=end - start, submit=submitted - start)


def their_sample(server: Server, i: int) -> Sample:
    """One job through jupyter-scheduler's API, until seen completed."""
    body = {
        "name": f"bench trivial {i}",
        "input_uri": NOTEBOOK_NAME,
        "runtime_environment_name": KERNEL,
        "output_formats": ["ipynb"],
        "parameters": {"x": str(i)},
    }
    start = time.perf_counter()
    status, reply = server.client.request("POST", "scheduler/jobs", body)
    submitted = time.perf_counter()
    if status != 200 or not isinstance(reply, dict) or "job_id" not in reply:
        raise RunFailed(f"POST scheduler/jobs: {status} {reply}")
    job_id = reply["job_id"]
    end, job = poll(
        server.client, f"scheduler/jobs/{job_id}", their_pending, start, f"job {job_id}"
    )
    if job["status"] != "COMPLETED":
        raise RunFailed(
            f"{THEIRS} job {job_id} ended {job['status']}: {job.get('status_message') or ''}"
        )
    return Sample(total=end - start, submit=submitted - start)


# -- the benchmark --------------------------------------------------------------------------


def measure(n: int, order: str, work_dir: Path, logs: Path | None) -> Results:
    results = Results()
    reference_jupyter = ensure_reference_venv()
    our_jupyter = Path(sys.prefix) / "bin" / "jupyter"
    servers: list[Server] = []
    try:
        with ExitStack() as stack:
            ours = stack.enter_context(
                jupyter_server(
                    OURS,
                    our_jupyter,
                    work_dir / "ours",
                    extension="jupyter_sched",
                    health_path="sched/api/health",
                    env_extra={"JUPYTER_SCHED_DATA_DIR": str(work_dir / "ours" / "sched")},
                )
            )
            servers.append(ours)
            theirs = stack.enter_context(
                jupyter_server(
                    THEIRS,
                    reference_jupyter,
                    work_dir / "theirs",
                    extension="jupyter_scheduler",
                    health_path="scheduler/config",
                )
            )
            servers.append(theirs)
            results.startup = {OURS: ours.startup, THEIRS: theirs.startup}
            job_id = create_our_job(ours)
            kinds: list[tuple[str, Callable[[int], Sample]]] = [
                (OURS, lambda i: our_sample(ours, job_id, i)),
                (THEIRS, lambda i: their_sample(theirs, i)),
            ]
            for i in range(WARMUP):
                for _, sample in kinds:
                    sample(-1 - i)
            if order == "alternate":
                for i in range(n):
                    for name, sample in kinds:
                        results.samples[name].append(sample(i))
            else:
                for name, sample in kinds:
                    results.samples[name].extend(sample(i) for i in range(n))
    finally:
        if logs is not None:
            logs.mkdir(parents=True, exist_ok=True)
            for server in servers:
                if server.log.exists():
                    shutil.copyfile(server.log, logs / f"{server.name}.log")
    return results


def report(results: Results, order: str) -> dict[str, Any]:
    totals = {
        name: summary([s.total for s in samples]) for name, samples in results.samples.items()
    }
    submits = {
        name: summary([s.submit for s in samples]) for name, samples in results.samples.items()
    }
    ratio = totals[OURS]["median"] / totals[THEIRS]["median"]
    n = len(results.samples[OURS])
    figures: dict[str, Any] = {
        "n": n,
        "order": order,
        "unit": "seconds",
        "notebook": NOTEBOOK_NAME,
        "reference": REFERENCE_REQUIREMENTS[0],
        "startup": results.startup,
        "total": totals,
        "submit": submits,
        "ratio": ratio,
        "samples": {name: [s.total for s in samples] for name, samples in results.samples.items()},
    }
    print(f"run latency through the REST API, {NOTEBOOK_NAME}, n={n} each, {order} (seconds)")
    print(f"{'kind':<18} {'median':>8} {'p90':>8} {'min':>8} {'max':>8} {'submit':>8} {'n':>4}")
    for name, row in totals.items():
        print(
            f"{name:<18} {row['median']:>8.3f} {row['p90']:>8.3f} {row['min']:>8.3f} "
            f"{row['max']:>8.3f} {submits[name]['median']:>8.3f} {n:>4}"
        )
    print("(submit: median round trip of the request that starts the run)")
    print(f"ratio jupyter-sched / jupyter-scheduler (medians): {ratio:.2f}")
    print(
        "server start until the API answers: "
        + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in results.startup.items())
    )
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=10, help="timed samples of each kind")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the figures here")
    parser.add_argument(
        "--logs", type=Path, metavar="DIR", help="keep both servers' logs in this directory"
    )
    parser.add_argument(
        "--order",
        choices=("alternate", "blocks"),
        default="alternate",
        help="blocks: all samples of one kind back to back, then the other's",
    )
    args = parser.parse_args(argv)
    if args.n < 1:
        parser.error("--n must be at least 1")

    work_dir = Path(tempfile.mkdtemp(prefix="sched-vs-ref-"))
    try:
        results = measure(args.n, args.order, work_dir, args.logs)
    except (RunFailed, subprocess.CalledProcessError) as exc:
        print(f"run failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    figures = report(results, args.order)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
