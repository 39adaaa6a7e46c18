"""What starting a run's kernel as its owner costs over today's kernel start.

Run as root with an interpreter every user may execute (the hub's environment, e.g.
``/opt/jupyterhub/bin/python bench/owner_kernel.py``): it creates a throwaway Unix user,
then alternates kernel starts (start → ready → shutdown) as this process's user and as
that user, and prints the medians and their ratio. The user is removed at the end.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from jupyter_core.utils import run_sync

from jupyter_sched.kernels import shutdown_kernel, start_kernel
from jupyter_sched.owners import owner_account

USER = "jsched-bench"


def one_start(cwd: Path, account: object | None) -> float:
    """Seconds from launching a python3 kernel to its answering a kernel_info request."""
    started = time.perf_counter()
    km = start_kernel("python3", cwd, account)  # type: ignore[arg-type]
    try:
        client = km.client()
        client.start_channels()
        run_sync(client.wait_for_ready)(timeout=60)
        elapsed = time.perf_counter() - started
        client.stop_channels()
    finally:
        shutdown_kernel(km)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=10, help="starts of each kind")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: it starts kernels as another user")
    subprocess.run(["useradd", "--create-home", USER], check=True)
    try:
        account = owner_account(USER)
        own_cwd = Path(tempfile.mkdtemp())
        plain, as_owner = [], []
        one_start(own_cwd, None)  # warm the page cache for both
        one_start(Path(account.home), account)
        for _ in range(args.n):
            plain.append(one_start(own_cwd, None))
            as_owner.append(one_start(Path(account.home), account))
        p, o = statistics.median(plain), statistics.median(as_owner)
        print(f"kernel start -> ready, {args.n} each, alternating:")
        print(f"  as the worker's user: median {p:.3f} s (min {min(plain):.3f})")
        print(f"  as the run's owner:   median {o:.3f} s (min {min(as_owner):.3f})")
        print(f"  ratio owner/plain:    {o / p:.3f} ({(o / p - 1) * 100:+.1f} %)")
    finally:
        subprocess.run(["userdel", "--remove", USER], check=False, capture_output=True)


if __name__ == "__main__":
    main()
