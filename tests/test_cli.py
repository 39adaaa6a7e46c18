"""``jupyter sched`` as a user types it, in a subprocess."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from jupyter_sched.joboptions import parse_value
from jupyter_sched.service import Service

from .conftest import REPO, wait_for_worker_process
from .test_reliability import Processes

# Each test starts several `jupyter sched` processes (and some run notebooks), each paying
# its imports: on a loaded 2-core machine one command can take tens of seconds.
pytestmark = pytest.mark.timeout(900)


def sched(tmp_path: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "JUPYTER_SCHED_DATA_DIR": str(tmp_path / "data"),
        "JUPYTER_SCHED_ROOT_DIR": str(REPO),
    }
    return subprocess.run(
        [sys.executable, "-m", "jupyter_sched.cli", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        input=stdin,
        timeout=600,
        check=False,
    )


@pytest.mark.parametrize(
    ("text", "value"),
    [("EU", "EU"), ("7", 7), ("2.5", 2.5), ('["a", 1]', ["a", 1]), ('{"k": 1}', {"k": 1}),
     ("true", True), ("null", None), ("07-01", "07-01")],
)  # fmt: skip
def test_parameter_values_are_json_or_text(text: str, value: object) -> None:
    assert parse_value(text) == value


def test_run_local_with_typed_parameters(tmp_path: Path) -> None:
    result = sched(
        tmp_path, "run", "tests/notebooks/types.ipynb", "--local",
        "-p", "s", "hello", "-p", "i", "42", "-p", "f", "2.5",
        "-p", "l", '[1, "two"]', "-p", "d", '{"k": [1, 2]}',
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "status: succeeded" in result.stdout
    output = re.search(r"^output: +(\S+)$", result.stdout, re.M)
    log = re.search(r"^log: +(\S+)$", result.stdout, re.M)
    assert output and log, result.stdout
    nb = nbformat.read(output.group(1), as_version=4)
    text = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    for line in (
        "s str 'hello'",
        "i int 42",
        "f float 2.5",
        "l list [1, 'two']",
        "d dict {'k': [1, 2]}",
    ):
        assert line in text
    assert "cell 1/" in Path(log.group(1)).read_text()
    # Only the run's kernel starts: no spare one is launched and then killed at exit.
    assert "IPKernelApp" not in result.stderr, result.stderr
    # Not on a terminal: the progress is plain lines on stderr, counting the cells of
    # types.ipynb as its author sees them (papermill's injected cell is not one of them).
    cells = len(nbformat.read(REPO / "tests/notebooks/types.ipynb", as_version=4).cells)
    lines = re.findall(r"^\[\d\d:\d\d\] (.+)$", result.stderr, re.M)
    assert lines[0] == "queued" and lines[-1] == f"succeeded: cell {cells} of {cells}", lines
    assert all(m.group(1) == str(cells) for m in re.finditer(r"cell \d+ of (\d+)", result.stderr))


def test_run_on_a_terminal_draws_a_progress_bar(tmp_path: Path) -> None:
    """On a terminal, ``jupyter sched run`` redraws one line in place: a bar, the state,
    the cell of the user's notebook and the time elapsed (the plain lines are for logs)."""
    controller, terminal = pty.openpty()
    env = {
        **os.environ,
        "JUPYTER_SCHED_DATA_DIR": str(tmp_path / "data"),
        "JUPYTER_SCHED_ROOT_DIR": str(REPO),
        "COLUMNS": "100",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "jupyter_sched.cli", "run", "tests/notebooks/types.ipynb",
         "--local"],
        env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=terminal, text=True,
    )  # fmt: skip
    os.close(terminal)
    drawn = b""
    while True:  # until the command closes its end of the terminal (it exited)
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # EIO: no process holds the terminal any more
            break
        if not chunk:
            break
        drawn += chunk
    os.close(controller)
    stdout, _ = process.communicate(timeout=600)
    assert process.returncode == 0, stdout
    assert "status: succeeded" in stdout
    screen = drawn.decode("utf-8", errors="replace")
    cells = len(nbformat.read(REPO / "tests/notebooks/types.ipynb", as_version=4).cells)
    # Redrawn in place (carriage returns), not a line per change as in a log.
    assert "\r" in screen and not re.search(r"^\[\d\d:\d\d\] ", screen, re.M), screen
    assert re.search(r"queued +\|.{24}\| \d\d:\d\d", screen), screen
    assert re.search(rf"succeeded cell {cells} of {cells} \|█{{24}}\| \d\d:\d\d", screen), screen


def test_parameter_names_and_numbers_are_checked(tmp_path: Path) -> None:
    # no_params.ipynb has no parameters cell: a name that is code would have run.
    marker = tmp_path / "owned"
    evil = f"a=1;__import__('pathlib').Path({str(marker)!r}).touch();b"
    for name, value in ((evil, "1"), ("class", "1"), ("x", "1e400"), ("x", "[NaN]")):
        result = sched(tmp_path, "run", "tests/notebooks/no_params.ipynb", "--local",
                       "-p", name, value)  # fmt: skip
        assert result.returncode == 1, result.stdout + result.stderr
        assert f"parameters.{name}" in result.stderr and "run " not in result.stdout
    assert not marker.exists()


def test_failed_run_exits_non_zero_with_the_error(tmp_path: Path) -> None:
    result = sched(
        tmp_path, "run", "tests/notebooks/fail.ipynb", "-p", "message", "nope", "--local"
    )
    assert result.returncode == 3  # ExitCode.RUN_FAILED
    assert "status: failed" in result.stdout
    assert "error:  ValueError: nope" in result.stdout
    # fail.ipynb has 5 cells and raises in the 4th; the executed notebook has papermill's
    # injected parameters and error markers too, so its numbers differ: both are named.
    where = re.search(r"^where: +(.+)$", result.stdout, re.M)
    assert where, result.stdout
    output = re.search(r"^output: +(\S+)$", result.stdout, re.M)
    assert output, result.stdout
    executed = nbformat.read(output.group(1), as_version=4).cells
    failing = [i for i, c in enumerate(executed) if any(o.get("output_type") == "error"
               for o in c.get("outputs", []))]  # fmt: skip
    assert failing and failing[0] > 3
    assert where.group(1) == (
        f"cell 4 of 5 of fail.ipynb (cell {failing[0] + 1} of the executed notebook)"
    )
    log = re.search(r"^log: +(\S+)$", result.stdout, re.M)
    assert log, result.stdout
    assert "failed in cell 4 of 5 of the notebook (cell" in Path(log.group(1)).read_text()


def test_bad_parameter_is_refused_before_running(tmp_path: Path) -> None:
    result = sched(tmp_path, "run", "notebooks/hello.ipynb", "-p", "nme", "x", "--local")
    assert result.returncode == 1  # ExitCode.REFUSED
    assert "parameters.nme" in result.stderr and "name" in result.stderr
    # One line, no traceback.
    assert result.stderr.strip().count("\n") == 0, result.stderr


def test_without_a_worker_it_says_how_to_start_one(tmp_path: Path) -> None:
    result = sched(tmp_path, "run", "notebooks/hello.ipynb")
    assert result.returncode == 4  # ExitCode.UNAVAILABLE
    assert "jupyter sched worker" in result.stderr


def test_db_upgrade_and_lists(tmp_path: Path) -> None:
    upgraded = sched(tmp_path, "db", "upgrade")
    assert upgraded.returncode == 0 and "newest schema" in upgraded.stdout
    ran = sched(tmp_path, "run", "notebooks/hello.ipynb", "--local")
    run_id = ran.stdout.split()[1].rstrip(":")
    listed = sched(tmp_path, "runs", "list")
    assert run_id in listed.stdout and "succeeded" in listed.stdout
    missing = sched(tmp_path, "runs", "cancel", "01NOPE")
    assert missing.returncode == 1 and "no run" in missing.stderr


def test_events_webhooks_and_forced_delete(tmp_path: Path) -> None:
    from jupyter_sched.config import Settings
    from jupyter_sched.service import Service

    service = Service.open(Settings(data_dir=tmp_path / "data", root_dir=REPO))
    owner = os.environ.get("JUPYTER_SCHED_USER") or __import__("getpass").getuser()
    event = {"kind": "event", "event": "sales.loaded"}
    a = service.create_job(
        owner, {"name": "A", "notebook": "notebooks/hello.ipynb", "trigger": event}
    )
    b = service.create_job(
        owner,
        {
            "name": "B",
            "notebook": "notebooks/hello.ipynb",
            "trigger": {"kind": "after", "jobs": [a.id]},
        },
    )
    service.db.dispose()
    fired = sched(tmp_path, "events", "fire", "sales.loaded", "--payload", '{"rows": 2}')
    assert fired.returncode == 0 and "1 run(s) started" in fired.stdout and a.id in fired.stdout
    bad = sched(tmp_path, "events", "fire", "x", "--payload", "[1]")
    assert bad.returncode == 2 and "JSON object" in bad.stderr
    hook = sched(tmp_path, "jobs", "webhook", a.id)
    assert hook.returncode == 0 and "token: sched_" in hook.stdout
    refused = sched(tmp_path, "jobs", "delete", a.id)
    assert refused.returncode == 1 and "B (" in refused.stderr
    assert sched(tmp_path, "jobs", "delete", a.id, "--force").returncode == 0
    assert b.id in sched(tmp_path, "jobs", "list").stdout


def test_worker_takes_the_deployment_default_queue(service: Service, tmp_path: Path) -> None:
    processes = Processes(tmp_path)
    try:
        proc = processes.spawn(service.settings.replace(default_queue="reports"), "worker")
        wait_for_worker_process(service, proc, processes.log_of(proc))
        (registered,) = [w for w in service.workers() if w["pid"] == proc.pid]
        assert registered["queues"] == ["reports"]
    finally:
        processes.stop_all()


def test_jobs_create_and_update_cover_the_api_fields(tmp_path: Path) -> None:
    created = sched(
        tmp_path, "jobs", "create", "notebooks/sales_report.ipynb", "--name", "Sales EU",
        "-p", "region", "EU", "-p", "days", "7",
        "--cron", "0 6 * * 1-5", "--timezone", "Europe/Paris", "--retries", "2",
        "--tag", "finance", "--html", "--notify-webhook", "https://hooks.example/x",
        "--notify-on", "failure,slow", "--slower-than", "600", "--keep-runs", "30",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    job_id = re.search(r"^job (\w+): Sales EU", created.stdout, re.M)
    assert job_id, created.stdout
    assert "at 06:00 on Monday to Friday (Europe/Paris)" in created.stdout
    after = sched(
        tmp_path, "jobs", "create", "notebooks/hello.ipynb",
        "--after", job_id.group(1), "--when", "completion", "--pass-results",
    )  # fmt: skip
    assert after.returncode == 0, after.stderr

    def show(job: str) -> dict[str, object]:
        shown = sched(tmp_path, "jobs", "show", job, "--json")
        assert shown.returncode == 0, shown.stderr
        return json.loads(shown.stdout)  # type: ignore[no-any-return]

    job = show(job_id.group(1))
    assert job["parameters"] == {"region": "EU", "days": 7}
    assert job["trigger"] == {"kind": "cron", "cron": "0 6 * * 1-5", "timezone": "Europe/Paris"}
    assert (job["retries"], job["tags"], job["retention_runs"]) == (2, ["finance"], 30)
    assert job["output_formats"] == ["ipynb", "html"]
    assert job["notifications"] == [
        {"kind": "webhook", "url": "https://hooks.example/x", "format": "json",
         "on": ["failure", "slow"], "slower_than_seconds": 600.0,
         # the value-alert fields, unused by this target, at their defaults
         "value": None, "op": "<", "threshold": None}
    ]  # fmt: skip
    follower_id = re.search(r"^job (\w+):", after.stdout, re.M)
    assert follower_id
    assert show(follower_id.group(1))["trigger"] == {
        "kind": "after", "jobs": [job_id.group(1)], "condition": "completion",
        "pass_results": True,
    }  # fmt: skip

    # Options change only what they name; in --json, null goes back to the default.
    updated = sched(
        tmp_path, "jobs", "update", job_id.group(1), "--every", "3600", "--json", "-",
        stdin='{"retention_runs": null, "retries": 5}',
    )  # fmt: skip
    assert updated.returncode == 0, updated.stderr
    assert "every hour" in updated.stdout
    job = show(job_id.group(1))
    assert job["trigger"] == {"kind": "interval", "every_seconds": 3600.0}
    assert (job["retries"], job["retention_runs"], job["tags"]) == (5, None, ["finance"])

    # Bad input: the server's message, and nothing changed.
    bad = sched(tmp_path, "jobs", "update", job_id.group(1), "--cron", "61 * * * *")
    assert bad.returncode == 1
    assert "trigger.cron" in bad.stderr and "61" in bad.stderr
    two = sched(tmp_path, "jobs", "create", "notebooks/hello.ipynb", "--cron", "* * * * *",
                "--every", "5")  # fmt: skip
    assert two.returncode == 2 and "choose one trigger" in two.stderr
    assert show(job_id.group(1))["trigger"] == {"kind": "interval", "every_seconds": 3600.0}


def test_lists_and_shows_for_people_and_for_scripts(tmp_path: Path) -> None:
    from jupyter_sched.config import Settings
    from jupyter_sched.schemas import Job, Run

    empty = sched(tmp_path, "jobs", "list")
    assert empty.returncode == 0 and "No jobs yet" in empty.stdout
    service = Service.open(Settings(data_dir=tmp_path / "data", root_dir=REPO))
    owner = os.environ.get("JUPYTER_SCHED_USER") or __import__("getpass").getuser()
    job = service.create_job(
        owner,
        {"name": "Sales EU", "notebook": "notebooks/hello.ipynb",
         "trigger": {"kind": "interval", "every_seconds": 3600}},
    )  # fmt: skip
    run = service.run_job(owner, job.id)
    service.db.dispose()

    # --json is the REST API's JSON: the same fields, and valid for any JSON tool.
    listed = sched(tmp_path, "jobs", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    tool = subprocess.run(
        [sys.executable, "-m", "json.tool"], input=listed.stdout, capture_output=True,
        text=True, check=False,
    )  # fmt: skip
    assert tool.returncode == 0, tool.stderr
    page = json.loads(listed.stdout)
    assert set(page) == {"jobs", "next_cursor"}
    assert [j["id"] for j in page["jobs"]] == [job.id]
    assert set(page["jobs"][0]) == set(Job.model_fields)
    runs = json.loads(sched(tmp_path, "runs", "list", "--json").stdout)
    assert [r["id"] for r in runs["runs"]] == [run.id]
    shown = json.loads(sched(tmp_path, "runs", "show", run.id, "--json").stdout)
    assert set(shown) == set(Run.model_fields) and shown["status"] == "queued"

    # Without --json: a table with a header, and words for what happened.
    table = sched(tmp_path, "jobs", "list").stdout.splitlines()
    assert table[0].split() == ["ID", "NAME", "STATUS", "TRIGGER", "NEXT", "FIRE", "LAST", "RUN"]
    assert table[1].startswith(job.id) and "every hour" in table[1] and "queued" in table[1]
    paused = sched(tmp_path, "jobs", "pause", job.id)
    assert paused.returncode == 0 and f"job {job.id} (Sales EU): paused" in paused.stdout
    resumed = sched(tmp_path, "jobs", "resume", job.id)
    assert resumed.returncode == 0 and "active; next fire 20" in resumed.stdout
    details = sched(tmp_path, "jobs", "show", job.id).stdout
    assert re.search(r"^trigger: +every hour$", details, re.M), details
    missing = sched(tmp_path, "jobs", "show", "01NOPE")
    assert missing.returncode == 1 and missing.stderr.startswith("Error: ")


def test_help_documents_the_exit_codes(tmp_path: Path) -> None:
    result = sched(tmp_path, "--help")
    assert result.returncode == 0
    codes = re.findall(r"^ +(\d)  ", result.stdout, re.M)
    assert codes == ["0", "1", "2", "3", "4"], result.stdout


def test_html_output_of_a_plot_prints_no_notice(tmp_path: Path) -> None:
    # sales_report.ipynb draws a chart: nbconvert's "Alternative text is missing" notice
    # would be printed for every HTML output of a notebook with a plot.
    result = sched(tmp_path, "run", "notebooks/sales_report.ipynb", "--local", "--html")
    assert result.returncode == 0, result.stdout + result.stderr
    html = re.search(r"^html: +(\S+)$", result.stdout, re.M)
    assert html and "<img" in Path(html.group(1)).read_text(), result.stdout
    assert "Alternative text" not in result.stderr, result.stderr


def test_backfill_preview_and_summary(tmp_path: Path) -> None:
    from jupyter_sched.config import Settings

    service = Service.open(Settings(data_dir=tmp_path / "data", root_dir=REPO))
    owner = os.environ.get("JUPYTER_SCHED_USER") or __import__("getpass").getuser()
    daily = {"kind": "cron", "cron": "0 6 * * *", "timezone": "Europe/Paris"}
    job = service.create_job(
        owner, {"name": "daily", "notebook": "tests/notebooks/report.ipynb", "trigger": daily}
    )
    service.db.dispose()
    week = ("--start", "2026-10-20T00:00:00+02:00", "--end", "2026-10-26T23:00:00+01:00")
    preview = sched(tmp_path, "jobs", "backfill", job.id, *week, "--preview")
    assert preview.returncode == 0, preview.stderr
    assert preview.stdout.startswith("7 fires (7 runs) from 2026-10-20")
    made = sched(tmp_path, "jobs", "backfill", job.id, *week, "--max-parallel", "2")
    assert made.returncode == 0 and re.search(r"^batch \w+: 7 runs$", made.stdout, re.M)
    batch = made.stdout.split()[-3].rstrip(":")
    table = sched(tmp_path, "jobs", "summary", job.id, "--batch", batch, "--csv")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].startswith("run_id,scheduled_for,status,duration_seconds")
    assert len(lines) == 8 and all(",queued," in line for line in lines[1:])


def test_runs_diff_shows_changed_parameters_cells_and_chart(tmp_path: Path) -> None:
    ids = []
    for region in ("EU", "US"):
        result = sched(tmp_path, "run", "notebooks/sales_report.ipynb", "--local",
                       "-p", "region", region)  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
        found = re.search(r"^run:? +(\w{26})", result.stdout, re.M) or re.search(
            r"(\w{26})", result.stdout
        )
        assert found, result.stdout
        ids.append(found.group(1))
    result = sched(tmp_path, "runs", "diff", *ids)
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'region: "EU" -> "US"' in result.stdout
    assert "modified" in result.stdout
    assert re.search(r"image 1: image/png, \d+ chars -> image/png, \d+ chars", result.stdout)
    data = json.loads(sched(tmp_path, "runs", "diff", *ids, "--json").stdout)
    assert [p["name"] for p in data["parameters"]] == ["region"]
    missing = sched(tmp_path, "runs", "diff", ids[0], "nosuchrun")
    assert missing.returncode == 1 and "nosuchrun" in missing.stderr


def test_missing_postgres_driver_is_one_line_and_exit_code_4(tmp_path: Path) -> None:
    # Hide psycopg from the CLI the way a wheel installed without the extra lacks it.
    hider = tmp_path / "hide"
    hider.mkdir()
    (hider / "psycopg.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'psycopg'\", name='psycopg')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(hider), "JUPYTER_SCHED_DATA_DIR": str(tmp_path / "data")}
    result = subprocess.run(
        [sys.executable, "-m", "jupyter_sched.cli", "--db-url",
         "postgresql+psycopg://sched@127.0.0.1:9/sched", "jobs", "list"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 4, result.stdout + result.stderr
    assert result.stderr.strip().splitlines() == [
        "Error: a PostgreSQL history database needs the Python module 'psycopg', which is "
        "missing: pip install 'jupyter-sched[postgres]'"
    ]
