"""Notebook files the scheduler is handed: names that look like format strings, metadata
papermill cannot work with, hidden files, files that are not notebooks. Each is read or
refused with a 4xx naming the field, never a 500, never formatted, never echoed.

The worker runs in the server (real kernels), so what is accepted is also run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook
from traitlets.config import Config

from .conftest import Api

pytestmark = pytest.mark.slow

LEAK = "leaked_secret_parameter"
SECRET = "SECRET_TOKEN=hunter2-do-not-show"


@pytest.fixture
def sched_config(sched_config: dict[str, Any]) -> dict[str, Any]:
    return {**sched_config, "embedded_workers": True}


def write_notebook(
    path: Path,
    parameters: str | None,
    *code: str,
    kernelspec: dict[str, str] | None = None,
    language: str | None = "python",
) -> None:
    """A notebook with an optional ``parameters`` cell, then ``code`` cells."""
    nb = new_notebook()
    if parameters is not None:
        nb.cells.append(new_code_cell(parameters, metadata={"tags": ["parameters"]}))
    nb.cells.extend(new_code_cell(source) for source in code)
    if kernelspec is not None:
        nb.metadata["kernelspec"] = kernelspec
    if language is not None:
        nb.metadata["language_info"] = {"name": language}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)


PYTHON3 = {"name": "python3", "display_name": "Python 3", "language": "python"}


async def output_text(api: Api, run_id: str) -> str:
    response = await api.request("GET", f"runs/{run_id}/output")
    assert response.code == 200, response.body
    nb = nbformat.reads(response.body.decode(), as_version=4)
    return "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))


async def run_now(api: Api, job_id: str, parameters: dict[str, Any]) -> dict[str, Any]:
    run = await api.json("POST", f"jobs/{job_id}/run", {"parameters": parameters}, status=201)
    run = await api.wait_run(run["id"])
    assert run["status"] == "succeeded", run
    return run  # type: ignore[no-any-return]


async def test_a_notebook_path_is_never_formatted(api: Api, jp_root_dir: Path) -> None:
    # Formatted with papermill's parameters, this path would be "../x.ipynb": outside.
    sneaky = "{pm[run_uuid]:.0}../x.ipynb"
    write_notebook(jp_root_dir / sneaky, "inside = 1", "print('inside is', inside)",
                   kernelspec=PYTHON3)  # fmt: skip
    write_notebook(jp_root_dir.parent / "x.ipynb", f"{LEAK} = 1", kernelspec=PYTHON3)
    for name in ("{x}.ipynb", "{.ipynb", "}{0}.ipynb"):
        write_notebook(jp_root_dir / name, "inside = 1", "print('inside is', inside)",
                       kernelspec=PYTHON3)  # fmt: skip

    for path in (sneaky, "{x}.ipynb", "{.ipynb", "}{0}.ipynb"):
        response = await api.request("GET", "notebooks/parameters", params={"path": path})
        assert response.code == 200, (path, response.body)
        assert LEAK not in response.body.decode()
        parameters = json.loads(response.body)["parameters"]
        assert [(p["name"], p["default"]) for p in parameters] == [("inside", 1)], path

        error = await api.error(
            "POST", "jobs", {"name": "leak", "notebook": path, "parameters": {LEAK: 1}},
            status=422,
        )  # fmt: skip
        assert error["field"] == f"parameters.{LEAK}", error

        job = await api.json(
            "POST", "jobs", {"name": path, "notebook": path, "parameters": {"inside": 2}},
            status=201,
        )  # fmt: skip
        run = await run_now(api, job["id"], {"inside": 3})
        assert "inside is 3" in await output_text(api, run["id"])


async def test_metadata_papermill_cannot_use_gets_a_4xx_or_works(
    api: Api, jp_root_dir: Path
) -> None:
    # No kernelspec and no language: the kernel is python3, as when Jupyter opens it.
    write_notebook(jp_root_dir / "bare.ipynb", "x: int = 1", "print('twice', x * 2)",
                   language=None)  # fmt: skip
    got = await api.json("GET", "notebooks/parameters", params={"path": "bare.ipynb"})
    assert [(p["name"], p["type"], p["default"]) for p in got["parameters"]] == [("x", "int", 1)]
    error = await api.error(
        "POST", "jobs", {"name": "bare", "notebook": "bare.ipynb", "parameters": {"x": "a"}},
        status=422,
    )  # fmt: skip
    assert error["field"] == "parameters.x"
    job = await api.json(
        "POST", "jobs", {"name": "bare", "notebook": "bare.ipynb", "parameters": {"x": 2}},
        status=201,
    )  # fmt: skip
    run = await run_now(api, job["id"], {"x": 21})
    assert "twice 42" in await output_text(api, run["id"])

    # A language papermill has no translator for: its parameters cannot be read or written.
    cobol = {"name": "cobol", "display_name": "COBOL", "language": "cobol"}
    write_notebook(jp_root_dir / "cobol.ipynb", "x = 1", kernelspec=cobol, language="cobol")
    write_notebook(jp_root_dir / "cobol_plain.ipynb", None, "x", kernelspec=cobol,
                   language="cobol")  # fmt: skip
    error = await api.error("GET", "notebooks/parameters?path=cobol.ipynb", status=422)
    assert error["field"] == "path" and "cobol" in error["message"]
    error = await api.error("POST", "jobs", {"name": "c", "notebook": "cobol.ipynb"}, status=422)
    assert error["field"] == "notebook"
    error = await api.error(
        "POST", "jobs", {"name": "c", "notebook": "cobol_plain.ipynb", "parameters": {"x": 1}},
        status=422,
    )  # fmt: skip
    assert error["field"] == "parameters" and "cobol" in error["message"]
    assert (await api.json("GET", "notebooks/parameters?path=cobol_plain.ipynb")) == {
        "parameters": []
    }

    # A log offset past what any file can hold is refused, naming the offset.
    for offset in (2**44, 2**53):
        error = await api.error("GET", f"runs/{run['id']}/log?offset={offset}", status=422)
        assert error["field"] == "offset"


async def test_errors_say_what_is_wrong_not_what_the_file_holds(
    api: Api, jp_root_dir: Path
) -> None:
    (jp_root_dir / "notes.txt").write_text(SECRET + "\n")
    (jp_root_dir / "notes.ipynb").symlink_to(jp_root_dir / "notes.txt")
    (jp_root_dir / "schema.ipynb").write_text(json.dumps({"cells": SECRET, "nbformat": 4}))
    (jp_root_dir / "latin1.ipynb").write_bytes(b'{"cells": "\xe9' + SECRET.encode() + b'"}')
    for path in ("notes.ipynb", "schema.ipynb", "latin1.ipynb"):
        response = await api.request("GET", "notebooks/parameters", params={"path": path})
        assert response.code == 422 and SECRET not in response.body.decode(), response.body
        assert json.loads(response.body)["field"] == "path"
        response = await api.request("POST", "jobs", {"name": "x", "notebook": path})
        assert response.code == 422 and SECRET not in response.body.decode(), response.body
        assert path in json.loads(response.body)["message"]
        assert "notes.txt" not in response.body.decode()  # nor where a symlink points


def hidden_files(root: Path) -> list[str]:
    """Notebooks with a hidden component, as given or once a symlink is resolved."""
    write_notebook(root / ".hidden" / "h.ipynb", "x = 1", kernelspec=PYTHON3)
    write_notebook(root / "reports" / ".draft.ipynb", "x = 1", kernelspec=PYTHON3)
    (root / ".env").write_text(SECRET + "\n")
    (root / "dotenv.ipynb").symlink_to(root / ".env")
    (root / "visible.ipynb").symlink_to(root / ".hidden" / "h.ipynb")
    return [".hidden/h.ipynb", "reports/.draft.ipynb", "dotenv.ipynb", "visible.ipynb",
            "reports/../.hidden/h.ipynb"]  # fmt: skip


async def test_hidden_notebooks_are_not_found(api: Api, jp_root_dir: Path) -> None:
    for path in hidden_files(jp_root_dir):
        error = await api.error("GET", "notebooks/parameters", params={"path": path}, status=404)
        assert error["field"] == "path" and SECRET not in error["message"], error
        error = await api.error("POST", "jobs", {"name": "h", "notebook": path}, status=404)
        assert error["field"] == "notebook" and "hidden" in error["message"], error
        assert SECRET not in error["message"]
    job = await api.json("POST", "jobs", {"name": "ok", "notebook": "trivial.ipynb"}, status=201)
    error = await api.error("PATCH", f"jobs/{job['id']}", {"notebook": ".hidden/h.ipynb"},
                            status=404)  # fmt: skip
    assert error["field"] == "notebook"
    assert len((await api.json("GET", "jobs"))["jobs"]) == 1


class TestHiddenAllowed:
    @pytest.fixture
    def jp_server_config(self, jp_server_config: Config) -> Config:
        jp_server_config.ContentsManager.allow_hidden = True
        return jp_server_config

    async def test_hidden_notebooks_follow_allow_hidden(self, api: Api, jp_root_dir: Path) -> None:
        hidden_files(jp_root_dir)
        for path in (".hidden/h.ipynb", "reports/.draft.ipynb", "visible.ipynb"):
            got = await api.json("GET", "notebooks/parameters", params={"path": path})
            assert [p["name"] for p in got["parameters"]] == ["x"]
            await api.json("POST", "jobs", {"name": path, "notebook": path}, status=201)
        # a file that is not a notebook is still refused without its content
        error = await api.error(
            "POST", "jobs", {"name": "e", "notebook": "dotenv.ipynb"}, status=422
        )
        assert error["field"] == "notebook" and SECRET not in error["message"]
