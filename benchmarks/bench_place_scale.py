"""Placement at scale (issue 13, item 5): peak memory and time of ``place`` as jobs grow.

Each case runs in a fresh process (peak RSS from ``resource.getrusage``) on 100,000 synthetic
nodes. Two job mixes:

* ``varied``: every job's requirements distinct (GPU VRAM, cores, RAM drawn from ranges;
  1 in 10 a gang), so no survey work is shared -- the case where memory grew with
  jobs x nodes (one GPU group, node mask and feasibility mask held per job);
* ``bench``: ``bench_place.make_jobs`` (a few thousand distinct requirement sets at most).

``before`` runs the same code as it was before issue 13: every survey budget unbounded
(``CACHE_BYTES``, ``KEEP_BITS``, ``KEEP_SCORES``: what ``place`` held) and every cacheable score
term computed over the whole table (``SHARE_TERMS_FROM = 1``); ``after`` with the defaults;
``threads`` surveys with ``workers=2``. Every plan of a case is checked equal (a digest of
assignments, GPUs, scores as ``float.hex``, unplaced reasons). Figures only, no
assertions; the machine is shared, so compare the same-run ratios.

    python benchmarks/bench_place_scale.py [--quick] [--repeat N] [--big]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
NODES = 100_000


def varied_jobs(n: int, seed: int = 7) -> list:
    """``n`` jobs whose requirements are all distinct (1 in 10 a gang of 2-4 nodes)."""
    import attrs  # noqa: PLC0415
    from bench_place import make_jobs  # noqa: PLC0415

    from nodeselect.jobs._model import CpuReq, MemoryReq  # noqa: PLC0415

    rng = random.Random(seed)
    out = []
    for i, job in enumerate(make_jobs(n)):
        out.append(
            attrs.evolve(
                job,
                name=f"job-{i:06d}",
                nodes=min(job.nodes, 4),
                cpu=CpuReq(min_cores=rng.randint(1, 32)),
                memory=MemoryReq(min_free_gb=round(rng.uniform(1, 64), 2)),
                gpu=attrs.evolve(job.gpu, min_vram_free_gb=round(rng.uniform(4, 40), 2)),
            )
        )
    return out


def bench_jobs(n: int) -> list:
    import attrs  # noqa: PLC0415
    from bench_place import make_jobs  # noqa: PLC0415

    return [attrs.evolve(j, name=f"job-{i:06d}") for i, j in enumerate(make_jobs(n))]


def digest(plan: object) -> str:
    """A digest of everything a caller reads from a plan (scores as ``float.hex``)."""
    h = hashlib.blake2b(digest_size=8)
    for a in plan.assignments:  # type: ignore[attr-defined]
        reps = [(r.node_uuid, r.gpu_indices, float(r.score).hex()) for r in a.replicas]
        h.update(repr((a.job_name, reps)).encode())
    for u in plan.unplaced:  # type: ignore[attr-defined]
        h.update(repr((u.job_name, u.cause)).encode())
    return h.hexdigest()


def child(spec: dict) -> None:
    """One case in this (fresh) process; prints one JSON line."""
    sys.path.insert(0, str(HERE))
    from bench_place import NOW  # noqa: PLC0415

    from nodeselect.placement import _placer  # noqa: PLC0415
    from nodeselect.table._table import NodeTable  # noqa: PLC0415

    if spec["mode"] == "before":
        _placer.CACHE_BYTES = _placer.KEEP_BITS = _placer.KEEP_SCORES = 1 << 62
        _placer.SHARE_TERMS_FROM = 1
    table = NodeTable.synthetic(spec["nodes"], seed=3, now=NOW)
    jobs = (varied_jobs if spec["mix"] == "varied" else bench_jobs)(spec["jobs"])
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    workers = 2 if spec["mode"] == "threads" else 1
    t0 = time.perf_counter()
    placer = _placer._Placer(jobs, table, now=NOW, seed=0, candidates=64, workers=workers)
    t1 = time.perf_counter()
    plan = placer.run(repair=spec["repair"])
    t2 = time.perf_counter()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "base_mb": base,
                "peak_mb": peak,
                "survey_s": t1 - t0,
                "turns_s": t2 - t1,
                "placed": len(plan.assignments),
                "groups": len(set(placer.keys)),
                "digest": digest(plan),
            }
        )
    )


def run(mix: str, jobs: int, mode: str, *, repair: bool = True, nodes: int = NODES) -> dict:
    spec = {"mix": mix, "jobs": jobs, "mode": mode, "repair": repair, "nodes": nodes}
    out = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(spec)],
        check=True,
        capture_output=True,
        text=True,
    )
    got: dict = json.loads(out.stdout.strip().splitlines()[-1])
    return got


def line(label: str, r: dict) -> str:
    return (
        f"  {label:<28} peak {r['peak_mb']:>7,.0f} MB (table+jobs {r['base_mb']:,.0f} MB), "
        f"survey {r['survey_s']:6.1f} s + turns {r['turns_s']:6.1f} s; "
        f"{r['placed']:,} placed, {r['groups']:,} job groups"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument("--repeat", type=int, default=2, help="repeats of the thread ratio")
    parser.add_argument("--big", action="store_true", help="also 50k and 100k bench jobs")
    args = parser.parse_args()
    if args.child:
        child(json.loads(args.child))
        return
    nodes = 10_000 if args.quick else NODES
    before_sizes = [200, 400] if args.quick else [1_000, 2_000]
    after_sizes = [200, 400, 800] if args.quick else [1_000, 2_000, 4_000]
    bench_sizes = [1_000, 2_000] if args.quick else [10_000, 20_000]
    if args.big:
        bench_sizes += [50_000, 100_000]

    print(f"bench_place_scale: place() on {nodes:,} synthetic nodes, one fresh process per case")
    print("varied jobs (no two alike), before (budgets unbounded) vs after, same run:")
    after: dict[int, dict] = {}
    for n in after_sizes:
        a = after[n] = run("varied", n, "after", nodes=nodes)
        print(line(f"{n:,} jobs, after", a))
        if n in before_sizes:
            b = run("varied", n, "before", nodes=nodes)
            print(line(f"{n:,} jobs, before", b))
            same = "same plan" if a["digest"] == b["digest"] else "PLANS DIFFER"
            print(
                f"    -> memory above the table {(b['peak_mb'] - b['base_mb']):,.0f} MB before, "
                f"{(a['peak_mb'] - a['base_mb']):,.0f} MB after "
                f"({(b['peak_mb'] - b['base_mb']) / max(1.0, a['peak_mb'] - a['base_mb']):.1f}x"
                f" less); time after/before "
                f"{(a['survey_s'] + a['turns_s']) / (b['survey_s'] + b['turns_s']):.2f}; {same}"
            )
    print("bench_place.make_jobs mixes (after):")
    for n in bench_sizes:
        print(line(f"{n:,} jobs", run("bench", n, "after", nodes=nodes)))
    size = 200 if args.quick else 1_000
    print(f"threads: survey of {size:,} varied jobs, workers=2 vs 1 (greedy only), interleaved:")
    for r in range(max(1, args.repeat)):
        one = run("varied", size, "after", repair=False, nodes=nodes)
        two = run("varied", size, "threads", repair=False, nodes=nodes)
        same = "same plan" if one["digest"] == two["digest"] else "PLANS DIFFER"
        print(
            f"  [{r + 1}] survey 1 thread {one['survey_s']:.1f} s, 2 threads "
            f"{two['survey_s']:.1f} s = {one['survey_s'] / two['survey_s']:.2f}x; peak "
            f"{one['peak_mb']:,.0f} / {two['peak_mb']:,.0f} MB; {same}"
        )


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    main()
