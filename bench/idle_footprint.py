"""Memory and CPU of an idle ``jupyter server``, with and without the scheduler.

Each configuration starts ``jupyter server`` in its own temporary Jupyter and scheduler
folders (no job, nothing running), waits until it answers, leaves it idle ``--idle``
seconds, then reads the memory of its whole process tree (the server and, with the
scheduler, its embedded worker and any kernel it keeps): the sum of their RSS, and their
PSS from ``/proc/<pid>/smaps_rollup`` where the kernel has it (shared pages split among
the processes sharing them); and the CPU seconds the tree used while idle.

Configurations: ``plain`` (the extension disabled), ``scheduler`` (this checkout), and
with ``--compare DIR`` ``compared`` (the extension imported from another checkout, e.g. the
code before a change, through ``PYTHONPATH``). The target is at most 100 MB over plain
(RSS, the stricter measure: the worker's own interpreter counts in full).

Usage::

    python bench/idle_footprint.py [--idle 60] [--compare DIR] [--json F]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil
from figures import free_port

REPO = Path(__file__).resolve().parent.parent
TARGET_MB = 100.0
START_TIMEOUT_SECONDS = 600.0


def tree(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def memory_mb(processes: list[psutil.Process]) -> dict[str, float]:
    """Memory of the processes in MB: the sum of their RSS (what the issue's figures and
    ``ps`` count: pages shared by the processes, e.g. Python's own, counted in each), and
    their PSS where the kernel has it (each shared page split among its sharers)."""
    rss = pss = 0
    pss_known = True
    for proc in processes:
        rss += proc.memory_info().rss
        try:
            with open(f"/proc/{proc.pid}/smaps_rollup", encoding="ascii") as f:
                pss += 1024 * next(int(line.split()[1]) for line in f if line.startswith("Pss:"))
        except (OSError, StopIteration):
            pss_known = False
    return {"rss": rss / 2**20, **({"pss": pss / 2**20} if pss_known else {})}


def cpu_seconds(processes: list[psutil.Process]) -> float:
    """CPU seconds of the processes, with those of the root's children that have exited
    (an embedded worker that left while idle)."""
    total = 0.0
    for index, proc in enumerate(processes):
        try:
            times = proc.cpu_times()
            total += times.user + times.system
            if index == 0:
                total += times.children_user + times.children_system
        except psutil.Error:
            continue
    return total


def measure(name: str, enabled: bool, idle: float, pythonpath: Path | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix=f"sched-idle-{name}-") as tmp:
        port = free_port()
        env = {
            **os.environ,
            "JUPYTER_CONFIG_DIR": f"{tmp}/config",
            "JUPYTER_DATA_DIR": f"{tmp}/data",
            "JUPYTER_RUNTIME_DIR": f"{tmp}/runtime",
            "JUPYTER_SCHED_DATA_DIR": f"{tmp}/sched",
        }
        if pythonpath is not None:
            env["PYTHONPATH"] = str(pythonpath)
        argv = [
            str(Path(sys.executable).with_name("jupyter-server")),
            f"--port={port}", "--ip=127.0.0.1", "--ServerApp.open_browser=False",
            "--IdentityProvider.token=bench", f"--ServerApp.root_dir={tmp}",
            *(["--allow-root"] if os.geteuid() == 0 else []),
        ]  # fmt: skip
        # The user's config folder outranks the environment's, which enables the extension.
        Path(f"{tmp}/config").mkdir()
        Path(f"{tmp}/config/jupyter_server_config.json").write_text(
            json.dumps({"ServerApp": {"jpserver_extensions": {"jupyter_sched": enabled}}})
        )
        log = open(f"{tmp}/server.log", "wb")  # noqa: SIM115 - closed below
        # Started in its temporary folder: the embedded worker (`python -m`) puts its working
        # folder first on its path, which would import this checkout over ``--compare``'s.
        server = subprocess.Popen(argv, env=env, cwd=tmp, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + START_TIMEOUT_SECONDS
            url = f"http://127.0.0.1:{port}/api/status?token=bench"
            while True:
                try:
                    urllib.request.urlopen(url, timeout=5).close()
                    break
                except OSError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise RuntimeError(f"{name}: the server did not start") from None
                    time.sleep(0.5)
            time.sleep(5)  # the extension's threads and worker settle
            cpu_before = cpu_seconds(tree(server.pid))
            time.sleep(idle)
            processes = tree(server.pid)
            memory = memory_mb(processes)
            cpu = cpu_seconds(processes) - cpu_before
        finally:
            server.send_signal(signal.SIGINT)
            server.send_signal(signal.SIGINT)  # jupyter server asks to confirm the first
            try:
                server.wait(60)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(10)
            log.close()
    return {"rss_mb": memory["rss"], "pss_mb": memory.get("pss"), "processes": len(processes),
            "cpu_percent": 100 * cpu / idle}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--idle", type=float, default=60.0, help="idle seconds before measuring")
    parser.add_argument("--compare", type=Path, metavar="DIR", help="another checkout to measure")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the figures here")
    args = parser.parse_args(argv)
    configurations = [("plain", False, None), ("scheduler", True, None)]
    if args.compare:
        configurations.append(("compared", True, args.compare.resolve()))
    figures = {
        name: measure(name, enabled, args.idle, path) for name, enabled, path in configurations
    }
    plain = figures["plain"]
    print(f"idle jupyter server, {args.idle:g} s idle, memory of the process tree (MB)")
    print(f"{'configuration':<14} {'RSS':>8} {'over plain':>11} {'PSS':>8} {'over plain':>11}"
          f" {'processes':>10} {'CPU %':>7}")  # fmt: skip
    for name, row in figures.items():
        pss = row["pss_mb"]
        pss_text = "-" if pss is None else f"{pss:.1f}"
        pss_over = "-" if pss is None else f"{pss - plain['pss_mb']:.1f}"
        print(
            f"{name:<14} {row['rss_mb']:>8.1f} {row['rss_mb'] - plain['rss_mb']:>11.1f} "
            f"{pss_text:>8} {pss_over:>11} {row['processes']:>10d} {row['cpu_percent']:>7.2f}"
        )
    over = figures["scheduler"]["rss_mb"] - plain["rss_mb"]
    verdict = "met" if over <= TARGET_MB else "NOT met"
    print(f"target: scheduler at most {TARGET_MB:g} MB RSS over plain: {over:.1f} MB ({verdict})")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
