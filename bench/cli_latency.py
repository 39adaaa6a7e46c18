"""Start-up latency of ``jupyter sched`` commands, beside a bare ``python -c pass``.

Each sample is one fresh process (``python -m jupyter_sched.cli ...``) on a deployment in a
temporary folder holding one job; the figure is the wall time until it exits. Kinds run
in turn, sample by sample, so machine noise lands on all alike. ``python -c pass`` is the
floor any command pays; the target is ``--help`` and ``jobs list`` under 0.5 s on an idle
machine.

Usage::

    python bench/cli_latency.py [--n 10] [--json F]

``--compare DIR`` also runs each command from another checkout of the project (e.g. the
code before a change, from ``git archive``), alternated with this one's.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from figures import summary

REPO = Path(__file__).resolve().parent.parent
TARGET_SECONDS = 0.5


def timed(argv: list[str], env: dict[str, str], cwd: Path = REPO) -> float:
    """Seconds until the command exits (``-m`` imports the package from ``cwd``)."""
    start = time.perf_counter()
    subprocess.run(argv, env=env, cwd=cwd, check=True, capture_output=True)
    return time.perf_counter() - start


def create_job(data_dir: Path) -> str:
    """One job in the deployment at ``data_dir`` (untimed), for ``jobs show``."""
    from jupyter_sched.config import Settings
    from jupyter_sched.service import Service

    service = Service.open(Settings(data_dir=data_dir, root_dir=REPO))
    owner = os.environ.get("JUPYTER_SCHED_USER") or getpass.getuser()
    body = {"name": "bench", "notebook": "tests/notebooks/trivial.ipynb"}
    job = service.create_job(owner, {**body, "trigger": {"kind": "manual"}})
    service.db.dispose()
    return job.id


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=10, help="samples of each command")
    parser.add_argument("--compare", type=Path, metavar="DIR", help="another checkout to time")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the figures here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="sched-cli-bench-") as tmp:
        env = {**os.environ, "JUPYTER_SCHED_DATA_DIR": tmp, "JUPYTER_SCHED_ROOT_DIR": str(REPO)}
        cli = [sys.executable, "-m", "jupyter_sched.cli"]
        job_id = create_job(Path(tmp))
        commands = {
            "--help": [*cli, "--help"],
            "jobs list": [*cli, "jobs", "list"],
            "runs list": [*cli, "runs", "list"],
            "jobs show": [*cli, "jobs", "show", job_id],
        }
        kinds: dict[str, tuple[list[str], Path]] = {
            "python -c pass": ([sys.executable, "-c", "pass"], REPO)
        }
        for name, command in commands.items():
            kinds[name] = (command, REPO)
            if args.compare:
                kinds[f"{name} (compared)"] = (command, args.compare.resolve())
        for command, cwd in kinds.values():  # warm the file cache
            timed(command, env, cwd)
        samples: dict[str, list[float]] = {kind: [] for kind in kinds}
        for _ in range(args.n):
            for kind, (command, cwd) in kinds.items():
                samples[kind].append(timed(command, env, cwd))
    floor = summary(samples["python -c pass"])["median"]
    figures = {kind: summary(values) for kind, values in samples.items()}
    print(f"jupyter sched start-up, n={args.n} each, user {getpass.getuser()} (seconds)")
    print(f"{'command':<22} {'median':>8} {'p90':>8} {'min':>8} {'x pass':>8}")
    for kind, row in figures.items():
        ratio = row["median"] / floor
        print(
            f"{kind:<22} {row['median']:>8.3f} {row['p90']:>8.3f} {row['min']:>8.3f} {ratio:>8.1f}"
        )
    for kind in ("--help", "jobs list"):
        median = figures[kind]["median"]
        verdict = "met" if median < TARGET_SECONDS else "NOT met"
        print(f"target: {kind} median < {TARGET_SECONDS} s: {median:.3f} s ({verdict})")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
