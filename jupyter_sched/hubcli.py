"""The CLI in a user's terminal on a JupyterHub: through the scheduler service, no credential.

A user's server on a hub holds no scheduler credential, and neither do its terminals; what
they have is the server's hub token (``$JUPYTERHUB_API_TOKEN``, acting for the user) and the
service's address (``$JUPYTER_SCHED_SERVICE_URL``, set by the hub's configuration). With
both, the user commands (``jobs``, ``runs``, ``run``, ``events``) call the service's REST
API (:class:`~jupyter_sched.client.ServiceClient`), and a command that would open the
deployment itself (``worker``, ``service``, ``scheduler``, ``db``, ``prune``, ``demo``) is
refused with one line (its ``--help`` still shows).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import click

from . import terminal
from .config import hub_service_url

if TYPE_CHECKING:
    from .client import SchedulerAPI

__all__ = ["hub_client", "hub_mode", "refuse_on_a_hub"]


def hub_mode(ctx: click.Context, root_dir: Path | None) -> None:
    """Called by the ``jupyter sched`` group: on a hub, note the service's URL and make
    notebook paths relative to the user's home (as in their Lab) unless a root is given."""
    url = hub_service_url()
    ctx.obj["hub_url"] = url
    if url is None:
        return
    root = root_dir or os.environ.get("JUPYTER_SCHED_ROOT_DIR") or Path.home()
    ctx.obj["settings"] = ctx.obj["settings"].replace(root_dir=Path(root))


def refuse_on_a_hub(ctx: click.Context) -> None:
    """Called before a command opens the deployment itself (with its credentials): in a
    hub user's terminal, one line saying who can, instead."""
    url = ctx.find_root().obj.get("hub_url")
    if url:
        command = ctx.command_path.partition(" ")[2]
        raise terminal.Refused(
            f"`jupyter sched {command}` needs the scheduler's credentials, which only the "
            f"hub's scheduler service ({url}) and its workers hold: ask the hub's administrator"
        )


def hub_client(ctx: click.Context) -> SchedulerAPI | None:
    """The hub's scheduler service with the user's token, in hub mode; else ``None``."""
    if not ctx.obj.get("hub_url"):
        return None
    from .client import ServiceClient  # pydantic: only for the commands that call

    # the user's notebooks are handed to the service, which reads no user's folder
    return ServiceClient.from_env(root_dir=ctx.obj["settings"].root_dir)
