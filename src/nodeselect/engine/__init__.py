"""The engine's public seam: a job compiled once into masks and score terms, feasibility,
scores, the one total order, ranking one job (``rank``) or many (``rank_many``), explanations
and shard statistics. Placement, the CLI and the examples use these names only.

The seam, in data-path order:

* :func:`compile_job` -> :class:`CompiledJob` (validated once, names resolved);
* feasibility: :func:`evaluate` / :func:`evaluate_compiled` (every mask, :class:`Evaluation`),
  :func:`node_checks` / :func:`node_mask` (node-level units), :func:`gpu_eval`
  (:class:`GpuEval`, the GPU group), :func:`fast_feasible` (the prefilter's fast pass),
  :func:`rows_pass` (re-checking some rows, e.g. of a residual table), :func:`node_key`;
* scores: :func:`score_terms` (raw terms) and :func:`combine` (the weighted score);
* the one total order: :func:`top_positions`, :func:`tie_key`, :func:`merge_top`;
* GPU choice: :func:`gpu_choice`;
* results: :func:`rank`, :func:`rank_many`, :func:`explain_node`, :class:`Ranking`;
  :func:`rank_many_columns` (:class:`TopColumns`, :func:`top_columns`: the best nodes as
  arrays);
* statistics for shards: :func:`table_stats` / :class:`TableStats`;
* argument checks at the public boundary: :func:`check_jobs_arg`, :func:`check_table_arg`,
  :func:`checked_now` (TypeError saying what was expected and what to do).

Node-level constraints are units in :mod:`nodeselect.engine.constraints`, one module each,
listed once in its registry; score terms likewise in :mod:`nodeselect.engine.scorers`. Finer
building blocks stay in the private modules.
"""

from __future__ import annotations

from nodeselect.engine._boundary import (
    check_job_arg,
    check_jobs_arg,
    check_table_arg,
    checked_now,
)
from nodeselect.engine._constraints import (
    CONSTRAINT_NAMES,
    GPU_CONSTRAINTS,
    Check,
    CompiledJob,
    GpuEval,
    GpuSubset,
    gpu_eval,
    node_checks,
    node_mask,
)
from nodeselect.engine._explain import (
    Evaluation,
    Explanation,
    Failure,
    GpuDetail,
    NearestMiss,
    NodeExplanation,
    explain_node,
)
from nodeselect.engine._prefilter import rows_pass
from nodeselect.engine._rank import (
    RankedNode,
    Ranking,
    TableStats,
    compile_job,
    evaluate,
    evaluate_compiled,
    fast_feasible,
    gpu_choice,
    merge_top,
    rank,
    table_stats,
    top_positions,
)
from nodeselect.engine._scorers import NodeScores, combine, score_terms
from nodeselect.engine._shard import tie_key
from nodeselect.engine.batch import TopColumns, rank_many, rank_many_columns, top_columns
from nodeselect.engine.constraints import (
    NodeConstraint,
    constraint_names,
    node_constraints,
    node_key,
)
from nodeselect.engine.scorers import (
    SCORE_TERM_UNITS,
    ScoreTerm,
    TermInputs,
    score_unit,
    score_units,
)

__all__ = [
    "CONSTRAINT_NAMES",
    "GPU_CONSTRAINTS",
    "SCORE_TERM_UNITS",
    "Check",
    "CompiledJob",
    "Evaluation",
    "Explanation",
    "Failure",
    "GpuDetail",
    "GpuEval",
    "GpuSubset",
    "NearestMiss",
    "NodeConstraint",
    "NodeExplanation",
    "NodeScores",
    "RankedNode",
    "Ranking",
    "ScoreTerm",
    "TableStats",
    "TermInputs",
    "TopColumns",
    "check_job_arg",
    "check_jobs_arg",
    "check_table_arg",
    "checked_now",
    "combine",
    "compile_job",
    "constraint_names",
    "evaluate",
    "evaluate_compiled",
    "explain_node",
    "fast_feasible",
    "gpu_choice",
    "gpu_eval",
    "merge_top",
    "node_checks",
    "node_constraints",
    "node_key",
    "node_mask",
    "rank",
    "rank_many",
    "rank_many_columns",
    "rows_pass",
    "score_terms",
    "score_unit",
    "score_units",
    "table_stats",
    "tie_key",
    "top_columns",
    "top_positions",
]
