"""Hostile inputs: what they cost now (issue 14, items 10-11). Same-run ratios only.

* redaction: the old quadratic e-mail pattern vs ``documents.redact_text`` on names without an
  address (20 KB for the old pattern - 200 KB would take about a minute - and 200 KB), and on
  text full of near-addresses (every pattern runs);
* gzip bomb: peak traced memory and time of a fetch against a 64 MB bomb, capped at 256 KB;
* the capped reader: ``BodyReader`` inflating a real 50-node gzip page vs ``zlib.decompress``;
* peak RSS of a fresh process: an honest fetch vs a 256 MB gzip bomb and an endless body.

Usage: python benchmarks/bench_hostile.py
"""

from __future__ import annotations

import re
import resource
import subprocess
import sys
import time
import tracemalloc
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "fetch"))

from hostile_server import HostileServer

from nodeselect import Client, NodeQuery, RetryPolicy
from nodeselect.documents import blank_personal, redact_text
from nodeselect.errors import ResponseTooLargeError
from nodeselect.fetch._body import BodyReader
from nodeselect.sim import generate_fleet

OLD_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
OLD = (
    OLD_EMAIL,
    re.compile(r"\b0x[0-9a-fA-F]{40}\b"),
    re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b"),
    re.compile(r"(?<![\w:])(?:[0-9a-fA-F]{0,4}:){2,7}[0-9a-fA-F]{0,4}(?![\w:])"),
)


def old_redact(text: str) -> str:
    """The CLI's redact() as it is on main (four patterns over the whole text)."""
    for rx in OLD[:3]:
        text = rx.sub("<hidden>", text)
    return OLD[3].sub(lambda m: "<hidden>" if m.group(0).count(":") >= 2 else m.group(0), text)


def best(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    small, big = "a" * 20_000, "a" * 200_000
    old = best(lambda: OLD_EMAIL.sub("<hidden>", small), 1)
    new_small = best(lambda: redact_text(small), 9)
    new_big = best(lambda: redact_text(big), 9)
    print(
        f"redaction, 20 KB name: old e-mail pattern {old * 1e3:9.1f} ms, redact_text "
        f"{new_small * 1e3:6.2f} ms: {old / new_small:8.0f}x"
    )
    print(
        f"redaction, 200 KB name: redact_text {new_big * 1e3:6.2f} ms "
        f"({new_big / new_small:4.1f}x the 20 KB time: linear is 10x, quadratic 100x)"
    )

    # Every pattern's trigger present: e-mail-ish runs, dots, colons, 0x. (Below ~100 KB the
    # text fits the CPU caches and runs faster per KB: compare 200 KB with 1.6 MB.)
    mixed_small = ("a@b" + "1.2:" * 5 + "0x ") * (20_000 // 26)
    mixed_big, mixed_huge = mixed_small * 10, mixed_small * 80
    old_m = best(lambda: OLD_EMAIL.sub("<hidden>", mixed_small), 1)
    m_big = best(lambda: redact_text(mixed_big), 5)
    m_huge = best(lambda: redact_text(mixed_huge), 3)
    print(
        f"redaction, text full of near-addresses: 200 KB {m_big * 1e3:6.1f} ms, 1.6 MB "
        f"{m_huge * 1e3:6.1f} ms ({m_huge / m_big:4.1f}x: linear is 8x, quadratic 64x); the old "
        f"e-mail pattern on 20 KB of it {old_m * 1e3:.1f} ms"
    )

    cap = 256 * 1024
    with HostileServer("gzip_bomb", bomb_mb=64) as srv:
        tracemalloc.start()
        t = time.perf_counter()
        try:
            with Client(srv.url, max_body_bytes=cap, retry=RetryPolicy(max_attempts=1)) as c:
                c.fetch(NodeQuery(limit=50))
        except ResponseTooLargeError:
            pass
        took = time.perf_counter() - t
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    print(
        f"gzip bomb, 64 MB inflated, cap 256 KB: refused in {took * 1e3:.0f} ms, peak traced "
        f"memory {peak / 2**20:.2f} MB = {peak / cap:.1f}x the cap ({64 * 2**20 / peak:.0f}x "
        "less than the bomb)"
    )

    fleet = generate_fleet(50, seed=1)
    body = b'{"data":[' + b",".join(fleet.page_bytes(list(range(50))))
    body += b'],"limit":50,"page":1,"total":50}'
    packed = zlib.compress(body, 6, wbits=16 | 15)

    def capped() -> None:
        r = BodyReader("gzip", None, cap=8 << 20, url="x")
        for i in range(0, len(packed), 65536):
            r.feed(packed[i : i + 65536])
        r.finish()

    def plain() -> None:
        zlib.decompress(packed, wbits=16 | 15)

    lines = [bytes(raw) for raw in fleet.page_bytes(list(range(50)))]
    texts = [raw.decode() for raw in lines]
    t_old = best(lambda: [old_redact(t) for t in texts], 5) / len(texts)
    t_new = best(lambda: [redact_text(t) for t in texts], 5) / len(texts)
    t_blank = best(lambda: [blank_personal(r) for r in lines], 5) / len(lines)
    print(
        f"hiding personal data in one simulated node document ({len(body) // 50} bytes) for "
        f"jsonl: 4 regexes as on main {t_old * 1e6:6.1f} us, redact_text {t_new * 1e6:6.1f} us "
        f"({t_old / t_new:.1f}x), blank_personal by key {t_blank * 1e6:6.1f} us "
        f"({t_old / t_blank:.1f}x)"
    )

    n = 200
    t_capped = best(lambda: [capped() for _ in range(n)]) / n
    t_plain = best(lambda: [plain() for _ in range(n)]) / n
    print(
        f"a 50-node gzip page ({len(body) / 1024:.0f} KB, {len(packed) / 1024:.0f} KB packed): "
        f"BodyReader {t_capped * 1e3:.2f} ms, zlib.decompress {t_plain * 1e3:.2f} ms: "
        f"{t_capped / t_plain:.2f}x"
    )


def _child(mode: str) -> None:
    """One fetch against ``mode`` in this (fresh) process; print the peak RSS in KB."""
    bomb = {"gzip_bomb": 256}.get(mode, 0)
    with HostileServer(mode, bomb_mb=bomb or 200, nodes=120) as srv:
        try:
            with Client(srv.url, retry=RetryPolicy(max_attempts=1)) as c:
                c.fetch(NodeQuery(limit=50))
        except ResponseTooLargeError:
            pass
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def peak_rss() -> None:
    """Peak RSS of a whole process: an honest fetch vs hostile ones, default 8 MiB cap."""
    rss = {}
    for mode in ("honest", "gzip_bomb", "huge"):
        out = subprocess.run(
            [sys.executable, __file__, "--child", mode], capture_output=True, text=True, check=True
        )
        rss[mode] = int(out.stdout.split()[-1]) / 1024
    print(
        "peak RSS of a process, default max_body_bytes (8 MiB): "
        f"honest fetch {rss['honest']:.0f} MB, "
        f"256 MB gzip bomb {rss['gzip_bomb']:.0f} MB ({rss['gzip_bomb'] / rss['honest']:.2f}x), "
        f"endless body {rss['huge']:.0f} MB ({rss['huge'] / rss['honest']:.2f}x)"
    )


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        _child(sys.argv[2])
    else:
        main()
        peak_rss()
