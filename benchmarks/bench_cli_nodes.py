"""`nodeselect nodes` output formats on one simulated fleet: table vs json vs jsonl.

The same fetch (a loopback simulated API) is written as a table, a JSON array and JSON lines,
to /dev/null, in process; rounds interleave the formats so load changes hit them alike. Prints
the best of ``--repeat`` and the range, and the same-run ratios json/table and jsonl/table
(issue 14 asks jsonl <= 1.25x table). Also times the output step alone on one fetched result,
and when the first JSON line is written compared with the end of the whole fetch (streaming:
the first node goes out while later pages are in flight). No assertions (machines are noisy).

    python benchmarks/bench_cli_nodes.py [--nodes 20000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import time

from nodeselect.cli import main as cli_main
from nodeselect.sim import SimServer, generate_fleet

FORMATS = ("table", "json", "jsonl")


def _timed(argv: list[str]) -> float:
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        start = time.perf_counter()
        code = cli_main(argv)
        took = time.perf_counter() - start
    if code not in (0, 1):
        raise SystemExit(f"{argv} exited {code}")
    return took


class _FirstWrite:
    """A text sink (no ``buffer``) that remembers when it was first written to."""

    def __init__(self) -> None:
        self.first: float | None = None

    def write(self, text: str) -> int:
        if self.first is None:
            self.first = time.perf_counter()
        return len(text)

    def flush(self) -> None:
        return None


def _first_line(url: str) -> tuple[float, float]:
    """Seconds to the first jsonl line and to the end, for one in-process `nodes -o jsonl`."""
    sink = _FirstWrite()
    start = time.perf_counter()
    with contextlib.redirect_stdout(sink):  # type: ignore[type-var]
        cli_main(["nodes", "--api", url, "-q", "-o", "jsonl"])
    end = time.perf_counter()
    return (sink.first or end) - start, end - start


def _output_only(url: str, repeat: int) -> dict[str, float]:
    """The output step alone: one fetch, then each format written to a StringIO."""
    from nodeselect.cli import nodes as nodes_cli  # noqa: PLC0415
    from nodeselect.fetch import Client, NodeQuery  # noqa: PLC0415

    with Client(url) as client:
        result = client.fetch(NodeQuery(), strict=False)
    best = dict.fromkeys(FORMATS, float("inf"))
    for _ in range(repeat):
        for fmt in FORMATS:
            buf = io.StringIO()
            start = time.perf_counter()
            with contextlib.redirect_stdout(buf):
                if fmt == "table":
                    nodes_cli._table(result, False)
                elif fmt == "json":
                    nodes_cli._write_json_array(result, False, buf)
                else:
                    nodes_cli._write_json_lines(result, False, buf)
            best[fmt] = min(best[fmt], time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"fleet: {args.nodes} simulated nodes on loopback; python {sys.version.split()[0]}")
    with SimServer(generate_fleet(args.nodes, seed=3)) as server:
        times: dict[str, list[float]] = {f: [] for f in FORMATS}
        for _ in range(args.repeat):
            for fmt in FORMATS:
                times[fmt].append(_timed(["nodes", "--api", server.url, "-q", "-o", fmt]))
        print(f"{'format':<8} {'best':>8} {'range':>16}   (fetch + output, end to end)")
        for fmt in FORMATS:
            t = times[fmt]
            print(f"{fmt:<8} {min(t):>7.2f}s {min(t):>7.2f}-{max(t):.2f}s")
        table = min(times["table"])
        for fmt in ("json", "jsonl"):
            print(f"ratio {fmt}/table: {min(times[fmt]) / table:.2f}x")
        alone = _output_only(server.url, args.repeat)
        first, total = _first_line(server.url)
        print(f"jsonl: first line after {first:.2f}s of {total:.2f}s ({first / total:.0%})")
        print("output step alone (best): " + ", ".join(
            f"{f} {alone[f]:.2f}s ({alone[f] / args.nodes * 1e6:.0f} us/node)" for f in FORMATS
        ))  # fmt: skip


if __name__ == "__main__":
    main()
