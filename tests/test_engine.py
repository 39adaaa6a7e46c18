"""End to end: jobs and ad-hoc runs executed by a real worker on real kernels."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path

import nbformat
import pytest

from jupyter_sched.config import Settings
from jupyter_sched.models import Run as RunRow
from jupyter_sched.schemas import Run
from jupyter_sched.service import Service
from jupyter_sched.worker import Worker

from .conftest import OWNER, wait_for_run, wait_for_worker_process, wait_until

TYPED = {"s": "hello", "i": 42, "f": 2.5, "l": [1, "two", 3.0], "d": {"k": [1, 2], "n": None}}


def outputs_text(nb: nbformat.NotebookNode) -> str:
    return "".join(
        out.get("text", "")
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
    )


def test_parameters_arrive_with_their_types(service: Service, worker: Worker) -> None:
    run = service.run_notebook(OWNER, "tests/notebooks/types.ipynb", TYPED)
    run = wait_for_run(service, run.id)
    assert run.status == "succeeded", run.error
    assert run.progress.done == run.progress.total > 0
    assert run.started_at and run.finished_at and run.duration_seconds is not None
    assert run.duration_seconds == pytest.approx((run.finished_at - run.started_at).total_seconds())
    output = service.run_output(OWNER, run.id)
    nb = nbformat.read(output, as_version=4)
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1
    assert 's = "hello"' in injected[0].source and "i = 42" in injected[0].source
    text = outputs_text(nb)
    assert "s str 'hello'" in text
    assert "i int 42" in text
    assert "f float 2.5" in text
    assert "l list [1, 'two', 3.0]" in text
    assert "d dict {'k': [1, 2], 'n': None}" in text
    log, offset = service.run_log(OWNER, run.id)
    assert "cell 1/" in log and offset == len(log.encode())
    more, _ = service.run_log(OWNER, run.id, offset)
    assert more == ""


def test_failing_notebook_records_the_cell_error(service: Service, worker: Worker) -> None:
    run = service.run_notebook(OWNER, "tests/notebooks/fail.ipynb", {"message": "bad input"})
    run = wait_for_run(service, run.id)
    assert run.status == "failed"
    assert run.error is not None
    assert (run.error.ename, run.error.evalue, run.error.cell_index) == (
        "ValueError",
        "bad input",
        6,
    )
    nb = nbformat.read(service.run_output(OWNER, run.id), as_version=4)
    # the index is the output notebook's (with papermill's injected and marker cells)
    failing = nb.cells[run.error.cell_index]
    assert any(out.get("ename") == "ValueError" for out in failing.outputs)
    assert "never" not in outputs_text(nb)


def test_example_notebook_fails_on_a_bad_parameter(service: Service, worker: Worker) -> None:
    run = service.run_notebook(OWNER, "notebooks/data_quality_check.ipynb", {"max_null_ratio": 1.5})
    run = wait_for_run(service, run.id)
    assert run.status == "failed"
    assert run.error and run.error.ename == "ValueError"
    assert "max_null_ratio" in run.error.evalue


def test_html_output(service: Service, worker: Worker) -> None:
    run = service.run_notebook(
        OWNER, "notebooks/hello.ipynb", {"name": "html"}, output_formats=["html"]
    )
    run = wait_for_run(service, run.id)
    assert run.status == "succeeded"
    html = service.run_output(OWNER, run.id, "html").read_text()
    assert "Hello, html!" in html


def test_retries_follow_the_backoff(service: Service, worker: Worker, tmp_path: Path) -> None:
    counter = tmp_path / "attempts"
    job = service.create_job(
        OWNER,
        {
            "name": "flaky",
            "notebook": "tests/notebooks/flaky.ipynb",
            "parameters": {"counter_path": str(counter), "fail_times": 2},
            "retries": 3,
            "retry_delay_seconds": 1.0,
            "retry_backoff": 2.0,
        },
    )
    first = service.run_job(OWNER, job.id)
    runs = [wait_for_run(service, first.id)]

    def retry_of(run_id: str) -> Run | None:
        page = service.list_runs(OWNER, job_id=job.id)
        return next((r for r in page.runs if r.retry_of == run_id), None)

    while runs[-1].status != "succeeded" and len(runs) < 3:
        wait_until(lambda: retry_of(runs[-1].id), 30, "the retry")
        retry = retry_of(runs[-1].id)
        assert retry is not None
        runs.append(wait_for_run(service, retry.id))
    assert [r.status for r in runs] == ["failed", "failed", "succeeded"]
    assert [r.attempt for r in runs] == [1, 2, 3]
    assert [r.trigger for r in runs] == ["manual", "retry", "retry"]
    assert runs[1].retry_of == runs[0].id and runs[2].retry_of == runs[1].id
    assert runs[0].error and runs[0].error.evalue == "attempt 1 fails"
    # delay × backoff^(attempt-1): each retry waits 1 s then 2 s after its predecessor
    # ended, and never starts before that (how much later depends on the machine's load).
    with service.db.read() as session:
        not_before = [session.get(RunRow, run.id).not_before for run in runs[1:]]
    for earlier, later, earliest, delay in zip(
        runs[:-1], runs[1:], not_before, (1.0, 2.0), strict=True
    ):
        assert earliest is not None and earlier.finished_at is not None
        assert later.started_at is not None
        assert (earliest - earlier.finished_at).total_seconds() == pytest.approx(delay)
        assert later.started_at >= earlier.finished_at + timedelta(seconds=delay)
    assert counter.read_text().strip() == "3"


def test_deleted_notebook_fails_the_run_cleanly(service: Service, worker: Worker) -> None:
    root = service.settings.root_dir
    path = root / "tests" / "notebooks" / "_deleted_soon.ipynb"
    path.write_text((root / "notebooks" / "hello.ipynb").read_text())
    try:
        job = service.create_job(OWNER, {"name": "gone", "notebook": str(path.relative_to(root))})
    finally:
        path.unlink()
    run = wait_for_run(service, service.run_job(OWNER, job.id).id)
    assert run.status == "failed"
    assert run.error and "no notebook" in run.error.evalue
    # the worker is still serving
    ok = wait_for_run(service, service.run_notebook(OWNER, "notebooks/hello.ipynb").id)
    assert ok.status == "succeeded"


def test_job_stats(service: Service, worker: Worker) -> None:
    job = service.create_job(OWNER, {"name": "hello", "notebook": "notebooks/hello.ipynb"})
    runs = [service.run_job(OWNER, job.id, {"name": str(i)}) for i in range(3)]
    for run in runs:
        wait_for_run(service, run.id)
    stats = service.job_stats(OWNER, job.id)
    assert (stats.runs, stats.succeeded, stats.failed, stats.success_rate) == (3, 3, 0, 1.0)
    assert stats.duration_p50_seconds and stats.duration_p95_seconds
    assert stats.duration_p50_seconds <= stats.duration_p95_seconds
    assert stats.last_success_at is not None and stats.last_failure_at is None
    assert (
        json.loads(service.get_job(OWNER, job.id).model_dump_json())["last_run"]["id"]
        == runs[-1].id
    )


def test_kernel_sees_no_scheduler_settings(
    service: Service, worker: Worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    # what a worker started with the deployment's variables has in its environment
    monkeypatch.setenv("JUPYTER_SCHED_DB_URL", "postgresql://sched:secret@db/sched")
    monkeypatch.setenv("JUPYTER_SCHED_SECRET", "queue-signing-key")
    worker.kernels.discard()  # the pre-started kernel predates the variables
    for _ in range(2):  # a kernel started for the run, then one pre-started before it
        run = wait_for_run(service, service.run_notebook(OWNER, "tests/notebooks/env.ipynb").id)
        assert run.status == "succeeded", run.error
        text = outputs_text(nbformat.read(service.run_output(OWNER, run.id), as_version=4))
        assert "found: []" in text
        # the notebook runs in its own folder, as when opened in Lab
        assert f"cwd: {service.settings.root_dir / 'tests' / 'notebooks'}" in text


#: The capabilities that let a process read a non-dumpable process's /proc/<pid>/environ
#: whatever its uid (measured on Linux 6.18: any one of them suffices).
_BYPASS_HIDING = "-sys_ptrace,-sys_admin,-perfmon"


def _as_ordinary_process(argv: list[str]) -> list[str]:
    """``argv`` run as a process of this uid without the capabilities that see through
    :func:`~jupyter_sched.owners.hide_process` (which root has): what a worker and its
    kernels are where they run as an ordinary user."""
    if os.geteuid() != 0:
        return argv
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("dropping root's capabilities needs setpriv (util-linux)")
    return [setpriv, "--bounding-set", _BYPASS_HIDING, *argv]


def test_a_standalone_workers_kernel_cannot_read_its_credentials(
    settings: Settings, tmp_path: Path
) -> None:
    """`jupyter sched worker` has the deployment's credentials in its environment; a kernel
    it starts (same uid) can read neither its parent's /proc/<pid>/environ nor any other."""
    marker = f"credential-{uuid.uuid4().hex}"
    deployment = settings.replace(secret=marker, smtp_password=marker)
    service = Service.open(deployment)
    env = {**os.environ, **deployment.worker_environ()}
    assert env["JUPYTER_SCHED_SECRET"] == env["JUPYTER_SCHED_SMTP_PASSWORD"] == marker
    log = tmp_path / "worker.log"
    command = [sys.executable, "-m", "jupyter_sched.cli", "-v", "worker", "-c", "1"]
    with open(log, "wb") as out:
        worker = subprocess.Popen(
            _as_ordinary_process(command), env=env, stdout=out, stderr=subprocess.STDOUT
        )
    # The kernel could read the marker where a process of its uid does not hide it.
    decoy = subprocess.Popen(_as_ordinary_process(["sleep", "600"]), env={"DECOY": marker})
    try:
        wait_for_worker_process(service, worker, log)
        notebook = "tests/notebooks/proc_environ.ipynb"
        run = wait_for_run(service, service.run_notebook(OWNER, notebook, {"marker": marker}).id)
    finally:
        for proc in (worker, decoy):
            proc.kill()
            proc.wait(30)
        service.db.dispose()
    assert run.status == "succeeded", run.error
    text = outputs_text(nbformat.read(service.run_output(OWNER, run.id), as_version=4))
    seen = json.loads(text.split("PROC ", 1)[1].splitlines()[0])
    assert seen["parent"] == worker.pid  # the kernel's parent is the worker
    assert seen["parent_read"] == "PermissionError", seen
    assert decoy.pid in seen["readable"] and worker.pid not in seen["readable"]
    assert seen["found"] == [decoy.pid], seen


def test_log_can_be_followed_while_the_run_runs(service: Service, worker: Worker) -> None:
    # Two seconds a step: the run goes on for seconds after its log shows step 2, time
    # enough for this thread to look at its status even on a loaded machine.
    run = service.run_notebook(OWNER, "notebooks/slow_etl.ipynb", {"steps": 4, "step_seconds": 2})
    text, offset = "", 0

    def step_two_logged() -> bool:
        nonlocal text, offset
        chunk, offset = service.run_log(OWNER, run.id, offset)
        text += chunk
        return "step 2/4" in text

    wait_until(step_two_logged, 60, "step 2 in the log")
    assert "step 4/4" not in text  # read while the notebook ran ...
    assert service.get_run(OWNER, run.id).status == "running"  # ... and it runs on
    assert wait_for_run(service, run.id).status == "succeeded"
    rest, _ = service.run_log(OWNER, run.id, offset)
    assert "step 4/4" in text + rest


@pytest.mark.parametrize("folder", ["{x}", "{pm[run_uuid]:.0}", "{"])
def test_run_folders_are_not_formatted_by_papermill(
    service: Service, tmp_path: Path, folder: str
) -> None:
    # papermill applies str.format(**parameters) to the paths it is given: braces in the
    # data dir must not send the run's files somewhere else, or fail it.
    settings = service.settings.replace(data_dir=tmp_path / folder / "data")
    braced = Service(settings, service.db)
    worker = Worker(settings, service.db)
    worker.start()
    try:
        run = wait_for_run(braced, braced.run_notebook(OWNER, "tests/notebooks/trivial.ipynb",
                                                       {"x": 21}).id)  # fmt: skip
    finally:
        worker.stop(grace_seconds=0)
    assert run.status == "succeeded", run.error
    output = braced.run_output(OWNER, run.id)
    assert output.parent == (settings.artifacts_dir / run.id).resolve()
    assert "42" in outputs_text(nbformat.read(output, as_version=4))
