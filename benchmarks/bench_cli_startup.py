"""CLI start-up: `nodeselect --help` and `gpus --known` against importing every layer.

Each contender runs in a fresh interpreter; the figure is its CPU time (user + sys of the
child) and wall time. "eager import" is what every command paid before the lazy facade and
parsers: ``import nodeselect`` and touching a facade name loads numpy, httpx, rich and the
engine. Rounds interleave the contenders; the best of ``--repeat`` and the range are printed,
plus same-run ratios. No assertions (machines are noisy).

    python benchmarks/bench_cli_startup.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time

CONTENDERS = {
    "python -c pass": ["-c", "pass"],
    "nodeselect --help": ["-c", "from nodeselect.cli import main; main(['--help'])"],
    "nodeselect gpus --known": [
        "-c", "from nodeselect.cli import main; main(['gpus', '--known'])",
    ],
    "eager import (before)": [
        "-c", "import nodeselect, nodeselect.cli._render; nodeselect.rank; import rich.table",
    ],
}  # fmt: skip


def _run(args: list[str]) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, *args], stdout=subprocess.DEVNULL, check=True,
                   env={**os.environ, "COLUMNS": "100"})  # fmt: skip
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    cpu: dict[str, list[float]] = {k: [] for k in CONTENDERS}
    wall: dict[str, list[float]] = {k: [] for k in CONTENDERS}
    for _ in range(args.repeat):
        for name, argv in CONTENDERS.items():
            c, w = _run(argv)
            cpu[name].append(c)
            wall[name].append(w)
    print(f"{'contender':<26} {'CPU best':>9} {'CPU range':>15} {'wall best':>10}")
    for name in CONTENDERS:
        print(f"{name:<26} {min(cpu[name]):>8.3f}s {min(cpu[name]):>6.3f}-{max(cpu[name]):.3f}s "
              f"{min(wall[name]):>9.3f}s")  # fmt: skip
    eager = min(cpu["eager import (before)"])
    for name in ("nodeselect --help", "nodeselect gpus --known"):
        print(f"CPU ratio eager import / {name}: {eager / min(cpu[name]):.1f}x")


if __name__ == "__main__":
    main()
