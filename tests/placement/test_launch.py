"""Launch output of a plan (issue 12): each replica is pinned to exactly its reserved GPUs."""

from __future__ import annotations

import random
from collections import defaultdict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nodeselect import InputError
from nodeselect.placement._placer import place
from nodeselect.placement._plan import Plan
from nodeselect.table._table import NodeTable
from reference_placement import NOW, Instance, TinyGpu, TinyNode, random_instance, tiny_job

instances = st.integers(0, 2**32 - 1).map(lambda s: random_instance(random.Random(s)))


def _plan(inst: Instance) -> Plan:
    nodes = inst.fleet()
    return place(inst.jobs, NodeTable.from_nodes(nodes, now=NOW), nodes=nodes, now=NOW)


def _shared_node() -> Instance:
    """One 8-GPU node and two 2-GPU jobs plus a 2-node gang over it and a 1-GPU node."""
    nodes = (
        TinyNode(
            "00000000-0000-0000-0000-0000000000b1",
            (TinyGpu("T4", 16),) * 8,
            64,
            256,
            900,
            "op-1",
            "DE",
        ),
        TinyNode(
            "00000000-0000-0000-0000-0000000000b2", (TinyGpu("T4", 16),), 16, 64, 500, "op-2", "DE"
        ),
    )
    jobs = (
        tiny_job("a", gpus=2, priority=3),
        tiny_job("b", gpus=2, priority=2),
        tiny_job("gang", gpus=1, nodes=2, priority=1),
    )
    return Instance(nodes=nodes, jobs=jobs)


@given(instances)
@settings(max_examples=100, deadline=None)
def test_every_env_lists_exactly_its_reserved_gpus_and_no_gpu_twice(inst: Instance) -> None:
    """Each replica's CUDA_VISIBLE_DEVICES is its gpu_indices, and no (node, GPU) repeats."""
    plan = _plan(inst)
    doc = plan.to_json()
    seen: dict[str, list[int]] = defaultdict(list)
    for a, ja in zip(plan.assignments, doc["assignments"], strict=True):
        envs = plan.launch_env(a.job_name)
        assert len(envs) == len(a.replicas)
        for k, (r, env, jr) in enumerate(zip(a.replicas, envs, ja["replicas"], strict=True)):
            visible = [int(g) for g in env["CUDA_VISIBLE_DEVICES"].split(",") if g]
            assert visible == list(r.gpu_indices)
            assert jr["env"] == env
            assert env["NODE_RANK"] == str(k)
            assert env["NNODES"] == str(len(a.replicas))
            assert "MASTER_ADDR" not in env
            seen[r.node_uuid].extend(r.gpu_indices)
    for gpus in seen.values():
        assert len(gpus) == len(set(gpus))


def test_two_jobs_on_one_node_get_disjoint_devices_and_ports() -> None:
    """Two jobs sharing a node see disjoint GPUs and rendezvous on different ports."""
    plan = _plan(_shared_node())
    a, b = plan.launch_env("a")[0], plan.launch_env("b")[0]
    assert plan.assignment("a").replicas[0].node_uuid == plan.assignment("b").replicas[0].node_uuid
    assert set(a["CUDA_VISIBLE_DEVICES"].split(",")).isdisjoint(
        b["CUDA_VISIBLE_DEVICES"].split(",")
    )
    assert (a["MASTER_PORT"], b["MASTER_PORT"]) == ("29500", "29501")
    cmd = plan.torchrun_commands("b", "train.py", "--lr", "3")
    assert cmd[0][:3] == ["env", f"CUDA_VISIBLE_DEVICES={b['CUDA_VISIBLE_DEVICES']}", "torchrun"]
    assert cmd[0][-3:] == ["train.py", "--lr", "3"]
    assert "--master-port=29501" in cmd[0]


def test_a_gang_env_has_world_size_and_a_private_master() -> None:
    """A gang's env counts every process; MASTER_ADDR appears only when asked for."""
    plan = _plan(_shared_node())
    envs = plan.launch_env("gang", show_private=True)
    addr = plan.hosts("gang")[0][0]
    assert [e["NODE_RANK"] for e in envs] == ["0", "1"]
    assert all(e["WORLD_SIZE"] == "2" and e["MASTER_ADDR"] == addr for e in envs)
    assert all("MASTER_ADDR" not in e for e in plan.launch_env("gang"))
    records = plan.to_records()
    assert [(r["job"], r["replica"]) for r in records] == [
        (a.job_name, k) for a in plan.assignments for k in range(len(a.replicas))
    ]
    assert "address" not in records[0]
    assert "address" in plan.to_records(show_private=True)[0]


def test_a_bad_master_port_is_an_input_error() -> None:
    """A port outside 1..65535 is refused with the accepted range."""
    with pytest.raises(InputError, match=r"1\.\.65535"):
        _plan(_shared_node()).launch_env("a", master_port=70000)
