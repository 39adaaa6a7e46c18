"""What runs hand back, executed by the server's worker on real kernels: logs followed in
chunks, and the output of an upstream run opened by the notebook that runs after it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from nbformat import reads, write
from nbformat.v4 import new_code_cell, new_notebook

from jupyter_sched.app import SchedApp

from .conftest import Api, eventually

pytestmark = pytest.mark.slow

PYTHON3 = {"name": "python3", "display_name": "Python 3", "language": "python"}


@pytest.fixture
def sched_config(sched_config: dict[str, Any]) -> dict[str, Any]:
    return {**sched_config, "embedded_workers": True}


def write_notebook(path: Path, parameters: str, *code: str) -> None:
    nb = new_notebook(metadata={"kernelspec": PYTHON3, "language_info": {"name": "python"}})
    nb.cells.append(new_code_cell(parameters, metadata={"tags": ["parameters"]}))
    nb.cells.extend(new_code_cell(source) for source in code)
    write(nb, path)


async def finished(api: Api, job_id: str, parameters: dict[str, Any] | None = None) -> Any:
    run = await api.json("POST", f"jobs/{job_id}/run", {"parameters": parameters or {}},
                         status=201)  # fmt: skip
    run = await api.wait_run(run["id"])
    assert run["status"] == "succeeded", run
    return run


async def test_log_chunks_hold_whole_characters(
    api: Api, jp_root_dir: Path, sched_app: SchedApp
) -> None:
    # Mostly 4-byte characters, in lines whose lengths do not divide 1 MiB: chunk ends
    # fall inside characters unless the server avoids it.
    write_notebook(
        jp_root_dir / "chatty.ipynb", "lines = 40000",
        "for i in range(lines):\n    print(i, '😀' * 20, 'é€')",
    )  # fmt: skip
    job = await api.json("POST", "jobs", {"name": "chatty", "notebook": "chatty.ipynb"},
                         status=201)  # fmt: skip
    run = await finished(api, job["id"])
    log = (sched_app.service.settings.artifacts_dir / run["id"] / "run.log").read_bytes()
    assert len(log) > 2 * (1 << 20)

    chunks, offset = [], 0
    while True:
        response = await api.request("GET", f"runs/{run['id']}/log", params={"offset": offset})
        assert response.code == 200
        next_offset = int(response.headers["X-Next-Offset"])
        if next_offset == offset:
            break
        assert response.body == log[offset:next_offset]  # whole characters, as stored
        chunks.append(response.body.decode("utf-8"))  # strict: no broken character
        offset = next_offset
    assert len(chunks) >= 3
    assert "".join(chunks) == log.decode("utf-8")
    assert "\ufffd" not in "".join(chunks)

    # An offset inside a character starts at the next whole one.
    emoji = log.index("😀".encode())
    for inside in (emoji + 1, emoji + 2, emoji + 3):
        response = await api.request("GET", f"runs/{run['id']}/log", params={"offset": inside})
        text = response.body.decode("utf-8")
        assert text.startswith("😀" * 19 + " é€\n") and "\ufffd" not in text
        assert int(response.headers["X-Next-Offset"]) > inside
    response = await api.request("GET", f"runs/{run['id']}/log", params={"offset": len(log)})
    assert response.body == b"" and response.headers["X-Next-Offset"] == str(len(log))


async def test_downstream_notebook_opens_the_upstream_output(api: Api, jp_root_dir: Path) -> None:
    write_notebook(jp_root_dir / "upstream.ipynb", "x = 1", "print('answer', x * 2)")
    write_notebook(
        jp_root_dir / "downstream.ipynb",
        'upstream_output_path: str = ""',
        "import nbformat\n"
        "nb = nbformat.read(upstream_output_path, as_version=4)\n"
        "said = ''.join(o.get('text', '') for c in nb.cells for o in c.get('outputs', []))\n"
        "print('upstream said:', said.strip())",
    )  # fmt: skip
    up = await api.json("POST", "jobs", {"name": "up", "notebook": "upstream.ipynb"}, status=201)
    trigger = {"kind": "after", "jobs": [up["id"]], "pass_results": True}
    down = await api.json(
        "POST", "jobs", {"name": "down", "notebook": "downstream.ipynb", "trigger": trigger},
        status=201,
    )  # fmt: skip
    await finished(api, up["id"], {"x": 21})

    async def downstream_run() -> Any:
        runs = (await api.json("GET", "runs", params={"job_id": down["id"]}))["runs"]
        return runs[0] if runs and runs[0]["status"] not in ("queued", "running") else None

    run = await eventually(downstream_run, timeout=90)
    assert run["status"] == "succeeded", run
    path = run["parameters"]["upstream_output_path"]
    assert Path(path).is_absolute() and Path(path).is_file()
    response = await api.request("GET", f"runs/{run['id']}/output")
    nb = reads(response.body.decode(), as_version=4)
    text = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    assert "upstream said: answer 42" in text
