"""Run every benchmark in this folder (``bench_*.py``) one after another and print their figures.

    python benchmarks/run.py [--quick] [--only NAME]

``--quick`` is passed on to each benchmark that accepts it (smaller sizes, a CI smoke run).
Exit status: the number of benchmarks that failed (0 when all ran).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes in every benchmark")
    parser.add_argument("--only", help="run only bench_<ONLY>.py")
    args = parser.parse_args()
    files = sorted(HERE.glob("bench_*.py"))
    if args.only:
        files = [f for f in files if f.stem == f"bench_{args.only}"]
    failed = 0
    for f in files:
        cmd = [sys.executable, str(f)]
        if args.quick and "--quick" in f.read_text(encoding="utf-8"):
            cmd.append("--quick")
        if f.stem == "bench_scale":
            cmd.append("--no-dask")  # bench_dask.py runs as a benchmark of its own
        print(f"== {f.name} {' '.join(cmd[2:])}".rstrip(), flush=True)
        t0 = time.perf_counter()
        rc = subprocess.call(cmd)
        print(f"== {f.name}: exit {rc} after {time.perf_counter() - t0:.1f} s\n", flush=True)
        failed += rc != 0
    return failed


if __name__ == "__main__":
    sys.exit(main())
