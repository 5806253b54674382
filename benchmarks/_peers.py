"""The two benchmark jobs written for polars and pandas over the same NodeTable columns, for a
side-by-side comparison (``bench_fresh.py``): same constraints, same score formula, top k.

Frames are built once (warm, like a built NodeTable): a node frame and an exploded GPU frame
(one row per GPU with its node's row). Each ``*_rank`` returns the feasible node rows (sorted)
and the top-k rows, so the benchmark can check the feasible sets equal the engine's.

A library that is not installed is reported missing (``available``), never imported eagerly.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import numpy as np

from nodeselect.table import TELEMETRY_FRESH_S, NodeTable

FRESH_S = 600.0  # freshness scale
TELE_S = 300.0  # idle: telemetry scale


def available(name: str) -> bool:
    """Whether ``name`` can be imported."""
    return importlib.util.find_spec(name) is not None


def columns(t: NodeTable) -> tuple[dict[str, Any], dict[str, Any]]:
    """The node and exploded-GPU columns both peers read."""
    n = len(t)
    nodes = {
        "row": np.arange(n, dtype=np.int64),
        "status": t.status_code,
        "suspended": t.suspended,
        "deleted": t.deleted,
        "reputation": t.reputation,
        "arch": t.arch_code,
        "driver": t.driver_version,
        "cores": t.cpu_cores,
        "ram": t.ram_free_gb,
        "disk": t.disk_free_gb,
        "seen": t.last_seen_epoch_s,
        "tele": t.telemetry_epoch_s,
        "cpu_load": t.cpu_load,
        "gpus": t.gpu_count,
    }
    lens = np.diff(t.gpu_offsets)
    gpus = {
        "row": np.repeat(np.arange(n, dtype=np.int64), lens),
        "model": t.gpu_model_code,
        "free": t.gpu_vram_free_gb,
        "tele_free": t.gpu_tele_vram_free_gb,
        "load": t.gpu_load,
        "tele": np.repeat(t.telemetry_epoch_s, lens),
    }
    return nodes, gpus


def codes(t: NodeTable) -> tuple[int, int]:
    """The table's codes of status AVAILABLE and architecture x86_64."""
    return t.status_vocab.index("AVAILABLE"), t.arch_vocab.index("x86_64")


# ------------------------------------------------------------------------------------- polars


class Polars:
    """The jobs in polars (lazy queries, collected)."""

    def __init__(self, t: NodeTable) -> None:
        import polars as pl  # noqa: PLC0415 - optional

        self.pl = pl
        nodes, gpus = columns(t)
        self.nodes = pl.DataFrame(nodes)
        self.gpus = pl.DataFrame(gpus)
        self.available, self.x86 = codes(t)
        self.max_gpus = int(np.diff(t.gpu_offsets).max()) if len(t) else 0

    def _node_filter(self, job: dict[str, Any]) -> Any:
        pl = self.pl
        c = pl.col
        cond = (
            (c("status") == self.available)
            & ~c("suspended")
            & ~c("deleted")
            & (c("reputation") >= job["rep"])
            & (c("cores") >= job["cores"])
            & (c("ram") >= job["ram"])
        )
        if "disk" in job:
            cond = cond & (c("disk") >= job["disk"]) & (c("arch") == self.x86)
            cond = cond & (c("driver") >= job["driver"])
        return cond

    def _decay(self, col: str, scale: float, now: float) -> Any:
        pl = self.pl
        age = (now - pl.col(col)).clip(lower_bound=0.0)
        return pl.when(age.is_nan()).then(0.0).otherwise(scale / (scale + age))

    def rank_cpu(self, job: dict[str, Any], now: float, k: int) -> tuple[Any, Any]:
        """A CPU-only job: node constraints, 5 score terms, top k."""
        pl = self.pl
        c = pl.col
        rep = (
            pl.when(c("reputation").is_nan())
            .then(0.0)
            .otherwise(c("reputation").cast(pl.Float64).clip(0.0, 100.0) / 100.0)
        )
        load = c("cpu_load").cast(pl.Float64).clip(0.0, 1.0)
        f = self._decay("tele", TELE_S, now)
        idle = pl.when(load.is_nan()).then(0.5).otherwise(f * (1.0 - load) + (1.0 - f) * 0.5)
        fit = 1.0 / (1.0 + c("gpus").cast(pl.Float64))
        score = (rep + self._decay("seen", FRESH_S, now) + 1.0 + fit + idle) / 5.0
        out = (
            self.nodes.lazy()
            .filter(self._node_filter(job))
            .select(c("row"), score.alias("score"))
            .collect()
        )
        top = out.top_k(k, by="score")
        return out["row"].to_numpy(), top["row"].to_numpy()

    def rank_gpu(self, job: dict[str, Any], now: float, k: int) -> tuple[Any, Any]:
        """A multi-GPU job: per-GPU limits on the exploded GPUs, grouped per node, joined with
        the node constraints, 5 score terms (pack fit, idle of the matching GPUs), top k."""
        pl = self.pl
        c = pl.col
        fresh = (now - c("tele")) <= TELEMETRY_FRESH_S
        free = pl.when(fresh & ~c("tele_free").is_nan()).then(c("tele_free")).otherwise(c("free"))
        load = pl.when(fresh).then(c("load")).otherwise(None)
        per_gpu = (
            self.gpus.lazy()
            .filter(
                c("model").is_in(job["models"])
                & (free >= job["vram"])
                & (load <= job["max_load"]).fill_null(value=False)
            )
            .group_by("row")
            .agg(
                pl.len().alias("m"),
                c("load").cast(pl.Float64).clip(0.0, 1.0).fill_nan(None).mean().alias("mean_load"),
            )
            .filter(c("m") >= job["count"])
        )
        rep = (
            pl.when(c("reputation").is_nan())
            .then(0.0)
            .otherwise(c("reputation").cast(pl.Float64).clip(0.0, 100.0) / 100.0)
        )
        f = self._decay("tele", TELE_S, now)
        idle = (
            pl.when(c("mean_load").is_null())
            .then(0.5)
            .otherwise(f * (1.0 - c("mean_load")) + (1.0 - f) * 0.5)
        )
        fit = job["count"] / c("m").cast(pl.Float64)
        score = (rep + self._decay("seen", FRESH_S, now) + 1.0 + fit + idle) / 5.0
        out = (
            self.nodes.lazy()
            .filter(self._node_filter(job) & (c("gpus") >= job["count"]))
            .join(per_gpu, on="row", how="inner")
            .select(c("row"), score.alias("score"))
            .collect()
        )
        top = out.top_k(k, by="score")
        return np.sort(out["row"].to_numpy()), top["row"].to_numpy()


# ------------------------------------------------------------------------------------- pandas


class Pandas:
    """The jobs in pandas (numpy-backed frames, boolean indexing, groupby)."""

    def __init__(self, t: NodeTable) -> None:
        import pandas as pd  # noqa: PLC0415 - optional

        self.pd = pd
        nodes, gpus = columns(t)
        self.nodes = pd.DataFrame(nodes)
        self.gpus = pd.DataFrame(gpus)
        self.available, self.x86 = codes(t)

    def _node_mask(self, df: Any, job: dict[str, Any]) -> Any:
        m = (
            (df["status"] == self.available)
            & ~df["suspended"]
            & ~df["deleted"]
            & (df["reputation"] >= job["rep"])
            & (df["cores"] >= job["cores"])
            & (df["ram"] >= job["ram"])
        )
        if "disk" in job:
            m &= (df["disk"] >= job["disk"]) & (df["arch"] == self.x86)
            m &= df["driver"] >= job["driver"]
        return m

    @staticmethod
    def _decay(age: Any, scale: float) -> Any:
        age = age.clip(lower=0.0)
        return (scale / (scale + age)).fillna(0.0)

    def _score(self, df: Any, now: float, fit: Any, load: Any) -> Any:
        rep = (df["reputation"].astype("float64").clip(0.0, 100.0) / 100.0).fillna(0.0)
        f = self._decay(now - df["tele"], TELE_S)
        idle = (f * (1.0 - load) + (1.0 - f) * 0.5).where(load.notna(), 0.5)
        return (rep + self._decay(now - df["seen"], FRESH_S) + 1.0 + fit + idle) / 5.0

    def rank_cpu(self, job: dict[str, Any], now: float, k: int) -> tuple[Any, Any]:
        """A CPU-only job."""
        df = self.nodes[self._node_mask(self.nodes, job)]
        load = df["cpu_load"].astype("float64").clip(0.0, 1.0)
        score = self._score(df, now, 1.0 / (1.0 + df["gpus"].astype("float64")), load)
        top = score.nlargest(k)
        return df["row"].to_numpy(), df.loc[top.index, "row"].to_numpy()

    def rank_gpu(self, job: dict[str, Any], now: float, k: int) -> tuple[Any, Any]:
        """A multi-GPU job."""
        g = self.gpus
        fresh = (now - g["tele"]) <= TELEMETRY_FRESH_S
        free = g["tele_free"].where(fresh & g["tele_free"].notna(), g["free"])
        load = g["load"].where(fresh)
        ok = g["model"].isin(job["models"]) & (free >= job["vram"]) & (load <= job["max_load"])
        sel = g[ok]
        per = (
            sel.assign(l=sel["load"].astype("float64").clip(0.0, 1.0))
            .groupby("row")["l"]
            .agg(["size", "mean"])
        )
        per = per[per["size"] >= job["count"]]
        nodes = self.nodes[self._node_mask(self.nodes, job) & (self.nodes["gpus"] >= job["count"])]
        df = nodes.join(per, on="row", how="inner")
        score = self._score(df, now, job["count"] / df["size"].astype("float64"), df["mean"])
        top = score.nlargest(k)
        return np.sort(df["row"].to_numpy()), df.loc[top.index, "row"].to_numpy()
