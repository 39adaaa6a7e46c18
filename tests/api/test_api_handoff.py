"""Notebooks handed over with a request (:mod:`jupyter_sched.handoff`).

A hub's scheduler service does not read users' folders: it checks the copy of a notebook
its owner's processes hand over with the request. A user's server in hub mode hands its
user's notebook to the service, which is shown here with a service that has none of the
user's files: a real ``jupyter server`` process whose root is an empty folder.
"""

from __future__ import annotations

import json
import secrets
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest

from jupyter_sched import handoff
from jupyter_sched.client import ServiceClient
from jupyter_sched.errors import InvalidInput, NotFound
from jupyter_sched.handoff import HandedNotebook, encode, notebook_to_hand
from tests.servers import jupyter_server, server_status

from .conftest import Api

TOKEN = secrets.token_hex(8)


def declaring(*names: str) -> bytes:
    """A notebook whose parameters cell declares ``names`` (strings)."""
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    cell = nbformat.v4.new_code_cell("\n".join(f"{name} = 'a'" for name in names))
    cell.metadata["tags"] = ["parameters"]
    printed = nbformat.v4.new_code_cell("print(1)")
    printed.outputs = [nbformat.v4.new_output("stream", text="1\n" * 1000)]
    notebook.cells = [cell, printed]
    return nbformat.writes(notebook).encode()


def handing(body: Any, path: str, content: bytes) -> dict[str, Any]:
    """The ``raw`` body and headers of a request handing ``content`` over for ``path``."""
    content_type, raw = encode(json.dumps(body).encode(), HandedNotebook(path, content))
    return {"raw": raw, "headers": {"Content-Type": content_type}}


async def test_the_service_checks_the_handed_copy_and_not_its_own_files(api: Api) -> None:
    # no "away/" folder in the server's root: only the handed copy can be checked
    notebook = "away/handed.ipynb"
    content = declaring("region")
    body = {"name": "handed", "notebook": notebook, "parameters": {"region": "eu"}}
    job = await api.json("POST", "jobs", status=201, **handing(body, notebook, content))
    assert (job["notebook"], job["parameters"]) == (notebook, {"region": "eu"})

    unknown = {**body, "parameters": {"nope": 1}}
    error = await api.error("POST", "jobs", status=422, **handing(unknown, notebook, content))
    assert error["field"] == "parameters.nope"
    # a copy handed for another path is not the notebook the request names
    other = {**body, "notebook": "away/other.ipynb"}
    error = await api.error("POST", "jobs", status=404, **handing(other, notebook, content))
    assert error["field"] == "notebook"
    # the path itself is still checked
    outside = {**body, "notebook": "../handed.ipynb"}
    error = await api.error(
        "POST", "jobs", status=400, **handing(outside, "../handed.ipynb", content)
    )
    assert error["field"] == "notebook"

    patch = {"parameters": {"region": "us"}}
    changed = await api.json("PATCH", f"jobs/{job['id']}", **handing(patch, notebook, content))
    assert changed["parameters"] == {"region": "us"}
    error = await api.error(
        "PATCH", f"jobs/{job['id']}", status=422,
        **handing({"parameters": {"zone": 1}}, notebook, content),
    )  # fmt: skip
    assert error["field"] == "parameters.zone"
    run = await api.json(
        "POST", f"jobs/{job['id']}/run", status=201,
        **handing({"parameters": {"region": "ap"}}, notebook, content),
    )  # fmt: skip
    assert run["parameters"] == {"region": "ap"}
    # without a copy, the service reads its own root, where there is no such notebook
    error = await api.error(
        "POST", f"jobs/{job['id']}/run", {"parameters": {"region": "x"}}, status=404
    )
    assert error["field"] == "notebook"


async def test_a_handed_notebook_is_bounded_and_needs_its_path(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(handoff, "MAX_HANDED_BYTES", 1000)
    body = {"name": "big", "notebook": "away/big.ipynb"}
    big = declaring(*(f"p{i}" for i in range(200)))
    error = await api.error("POST", "jobs", status=413, **handing(body, "away/big.ipynb", big))
    assert error["field"] == "notebook"
    request = handing(body, "away/big.ipynb", declaring("a"))
    request["raw"] = request["raw"].replace(b'name="notebook_path"', b'name="ignored"')
    error = await api.error("POST", "jobs", status=400, **request)
    assert error["field"] == "notebook_path"


def test_a_handed_notebook_carries_no_outputs(tmp_path: Path) -> None:
    path = tmp_path / "with-outputs.ipynb"
    path.write_bytes(declaring("a"))
    handed = nbformat.reads(notebook_to_hand(path).decode(), as_version=4)
    assert [cell.get("outputs", []) for cell in handed.cells] == [[], []]
    assert handed.cells[0].source == "a = 'a'"
    not_a_notebook = tmp_path / "broken.ipynb"
    not_a_notebook.write_bytes(b"{not json")
    assert notebook_to_hand(not_a_notebook) == b"{not json"  # the service says what is wrong


@pytest.fixture
def service_url(tmp_path: Path) -> Iterator[str]:
    """A scheduler (a real ``jupyter server`` process) whose root holds no notebook."""
    folder, root = tmp_path / "service", tmp_path / "service-root"
    folder.mkdir()
    root.mkdir()
    args = [f"--SchedApp.data_dir={folder / 'data'}", "--SchedApp.embedded_workers=False"]
    with jupyter_server(folder, root_dir=root, token=TOKEN, args=args) as (port, _):
        yield f"http://127.0.0.1:{port}/"


def test_the_cli_client_hands_its_users_notebooks(service_url: str, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "weekly.ipynb").write_bytes(declaring("region"))
    client = ServiceClient(service_url, TOKEN, root_dir=home)
    body = {"name": "weekly", "notebook": "weekly.ipynb", "parameters": {"region": "eu"}}
    job = client.create_job("", body)
    assert client.update_job("", job.id, {"parameters": {"region": "us"}}).parameters == {
        "region": "us"
    }
    with pytest.raises(InvalidInput) as unknown:
        client.update_job("", job.id, {"parameters": {"zone": "x"}})
    assert unknown.value.field == "parameters.zone"
    assert client.run_job("", job.id, {"region": "ap"}).parameters == {"region": "ap"}
    assert client.run_notebook("", "weekly.ipynb", {"region": "x"}).notebook == "weekly.ipynb"
    with pytest.raises(NotFound):  # checked here, where the user's files are
        client.run_notebook("", "missing.ipynb")
    # without the user's copies, the service has no such notebook
    with pytest.raises(NotFound):
        ServiceClient(service_url, TOKEN).create_job("", body)


class TestAUsersServerOnAHub:
    """The user's server forwards to a service that cannot see the user's files."""

    @pytest.fixture
    def sched_config(self, service_url: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
        monkeypatch.setenv("JUPYTERHUB_API_TOKEN", TOKEN)
        return {"service_url": service_url}

    async def test_it_hands_its_users_notebook_to_the_service(
        self, api: Api, service_url: str
    ) -> None:
        port = urllib.parse.urlsplit(service_url).port
        assert port is not None
        body = {"name": "weekly", "notebook": "trivial.ipynb", "parameters": {"x": 3}}
        job = await api.json("POST", "jobs", body, status=201)
        assert job["notebook"] == "trivial.ipynb"
        listed = json.loads(server_status(port, "sched/api/jobs", TOKEN)[1])
        assert [j["id"] for j in listed["jobs"]] == [job["id"]]  # it is the service's job

        error = await api.error("POST", "jobs", {**body, "parameters": {"y": 1}}, status=422)
        assert error["field"] == "parameters.y"
        error = await api.error("POST", "jobs", {**body, "notebook": "gone.ipynb"}, status=404)
        assert (error["field"], error["message"]) == (
            "notebook",
            "notebook: no notebook at 'gone.ipynb'",
        )

        changed = await api.json("PATCH", f"jobs/{job['id']}", {"parameters": {"x": 4}})
        assert changed["parameters"] == {"x": 4}
        error = await api.error("PATCH", f"jobs/{job['id']}", {"parameters": {"z": 1}}, status=422)
        assert error["field"] == "parameters.z"
        renamed = await api.json("PATCH", f"jobs/{job['id']}", {"name": "renamed"})
        assert renamed["name"] == "renamed"

        run = await api.json("POST", f"jobs/{job['id']}/run", {"parameters": {"x": 5}}, status=201)
        assert run["parameters"] == {"x": 5}
        once = await api.json(
            "POST", "runs", {"notebook": "trivial.ipynb", "parameters": {"x": 1}}, status=201
        )
        assert once["notebook"] == "trivial.ipynb"

        declared = await api.json("GET", "notebooks/parameters?path=trivial.ipynb")
        assert [p["name"] for p in declared["parameters"]] == ["x"]
        error = await api.error("GET", "notebooks/parameters?path=../x.ipynb", status=400)
        assert error["field"] == "path"

        # The service alone has none of the user's files: the copies made the difference.
        status, answer = server_status(
            port, "sched/api/notebooks/parameters?path=trivial.ipynb", TOKEN
        )
        assert status == 404, answer
