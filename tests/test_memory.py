"""The pre-flight memory guard (stkd.memory): estimates that scale like the models, a clear refusal."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from stkd.errors import STKDError
from stkd.memory import (
    GiB,
    MemoryLimitError,
    available_bytes,
    check_fits,
    complexity,
    data_bytes,
    estimate_memory,
    estimate_training_bytes,
)
from stkd.models.base import ModelSpec


def ring(n: int, degree: int = 3) -> sp.csr_matrix:
    """A sparse directed graph: each node links to its next ``degree`` nodes."""
    rows = np.repeat(np.arange(n), degree)
    cols = (rows + np.tile(np.arange(1, degree + 1), n)) % n
    return sp.csr_matrix((np.ones(rows.size, np.float32), (rows, cols)), shape=(n, n))


def spec(n: int, adjacency=None) -> ModelSpec:
    return ModelSpec(num_nodes=n, input_len=12, horizon=12, in_features=1, out_features=1, steps_per_day=288,
                     adjacency=adjacency)


def test_a_tiny_model_fits_and_the_estimate_is_sane():
    est = check_fits("stid", spec(20), {"embed_dim": 8}, batch_size=8, num_steps=2016)
    assert est is not None
    assert 0 < est.model_bytes < 0.1 * GiB
    assert est.data_bytes == data_bytes(2016, 20, 1, 1) == 2016 * 20 * 9
    assert est.total_bytes < 1 * GiB


def test_staeformer_at_a_huge_n_is_refused_with_the_model_and_a_suggestion():
    with pytest.raises(MemoryLimitError) as info:
        check_fits("staeformer", spec(20000), {}, batch_size=8, available=16 * GiB)
    msg = str(info.value)
    assert isinstance(info.value, STKDError)
    assert msg.startswith("too large for this memory: staeformer at N=20000 needs ~")
    assert "this machine has 16.0 GiB available" in msg
    assert "stid" in msg and "adaptive: false" in msg and "data.nodes" in msg


@pytest.mark.parametrize("name", ["staeformer", "agcrn"])
def test_a_models_node_limit_does_not_refuse_the_tiny_probes(name):
    # the probes run at N = 16..64: max_nodes 100 allows the real N = 80 but not every probe size if it
    # were passed on; the estimate must still be made
    est = estimate_memory(name, spec(80), {"max_nodes": 100}, batch_size=4, data_loaded=True)
    assert est.model_bytes > 0
    est_small = estimate_memory(name, spec(80), {"max_nodes": 20}, batch_size=4, data_loaded=True)
    assert est_small.model_bytes == est.model_bytes


def test_a_smaller_batch_size_is_suggested_when_it_would_fit():
    s = spec(2000)
    one = estimate_memory("staeformer", s, {}, batch_size=1, data_loaded=True).model_bytes
    with pytest.raises(MemoryLimitError, match=r"train\.batch_size: \d+"):
        check_fits("staeformer", s, {}, batch_size=64, data_loaded=True, available=int(4 * one))


def test_models_trained_at_once_each_get_their_share_of_the_memory():
    """``train.workers``: a model that fits alone but not in half the memory is refused with the workers as the
    first way out."""
    s = spec(2000)
    need = estimate_memory("staeformer", s, {}, batch_size=4, data_loaded=True).total_bytes
    assert check_fits("staeformer", s, {}, batch_size=4, data_loaded=True, available=int(1.5 * need)) is not None
    with pytest.raises(MemoryLimitError, match=r"GiB available for each of the 2 models that train at once, each "
                                               r"process with its own data; try fewer at once \(train\.workers: 1"):
        check_fits("staeformer", s, {}, batch_size=4, data_loaded=True, available=int(1.5 * need), share=2)


def test_a_long_series_suggests_a_shorter_time_range():
    with pytest.raises(MemoryLimitError, match=r"shorter data\.time_range"):
        check_fits("stid", spec(20000), {}, batch_size=32, num_steps=105120, available=16 * GiB)  # a year


def test_the_student_estimate_grows_linearly_in_n():
    small = estimate_training_bytes("stid", spec(5000), {}, batch_size=32, data_loaded=True)
    big = estimate_training_bytes("stid", spec(20000), {}, batch_size=32, data_loaded=True)
    assert 3.6 < big / small <= 4.05  # 4x the nodes, about 4x the memory (small constants aside)
    with_data = estimate_training_bytes("stid", spec(20000), {}, batch_size=32, num_steps=4032)
    assert with_data - big >= data_bytes(4032, 20000, 1, 1)


def test_staeformer_grows_quadratically_and_sparse_gwnet_linearly():
    small = estimate_training_bytes("staeformer", spec(2000), {}, batch_size=4, data_loaded=True)
    big = estimate_training_bytes("staeformer", spec(4000), {}, batch_size=4, data_loaded=True)
    assert 3.5 < big / small <= 4.05  # 2x the nodes, about 4x the memory
    g_small = estimate_training_bytes("gwnet", spec(5000, ring(5000)), {"adaptive": False}, batch_size=2,
                                      data_loaded=True)
    g_big = estimate_training_bytes("gwnet", spec(20000, ring(20000)), {"adaptive": False}, batch_size=2,
                                    data_loaded=True)
    assert 3.6 < g_big / g_small <= 4.05


def test_known_complexity_follows_the_dense_matrices():
    assert complexity("stid", spec(50)) == 1
    assert complexity("staeformer", spec(50)) == 2
    assert complexity("agcrn", spec(50)) == 2
    assert complexity("gwnet", spec(50, ring(50))) == 2  # the adaptive adjacency is on at small N
    assert complexity("gwnet", spec(50, ring(50)), {"adaptive": False}) == 1
    assert complexity("gwnet", spec(3000, ring(3000))) == 1  # switched off above adaptive_max_nodes
    assert complexity("gwnet", spec(50, ring(50).toarray()), {"adaptive": False}) == 2  # dense given graph


def test_the_probe_leaves_the_random_state_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    estimate_memory("mlp", spec(30), {}, batch_size=4)
    assert torch.equal(torch.rand(3), expected)


def test_memory_limit_from_the_environment(monkeypatch):
    monkeypatch.setenv("STKD_MEMORY_LIMIT", "2GiB")
    assert available_bytes() <= 2 * GiB
    with pytest.raises(MemoryLimitError, match="has 2.0 GiB available"):
        check_fits("stid", spec(20000), {}, batch_size=32, num_steps=105120)
    monkeypatch.setenv("STKD_MEMORY_LIMIT", "lots")
    with pytest.raises(STKDError, match="STKD_MEMORY_LIMIT"):
        available_bytes()


def test_unknown_models_and_parameters_fail_like_the_registry():
    with pytest.raises(STKDError, match="unknown model"):
        check_fits("gwnett", spec(20))
    with pytest.raises(STKDError, match="unknown hyper-parameter"):
        check_fits("stid", spec(20), {"widht": 3})


@pytest.mark.parametrize("task", ["forecast", "classify"])
def test_the_pipeline_refuses_before_building(monkeypatch, task):
    """One memory guard for every task: an event run is refused like a forecast (it once trained)."""
    from stkd.config import ModelConfig, parse_config
    from stkd.pipeline import prepare_task
    from stkd.steps import check_fits as check_model

    raw = {"task": task, "data": {"source": "builtin", "name": "synthetic-traffic",
                                  "simulator": {"nodes": 30, "days": 2, "incidents_per_day": 40}},
           "train": {"batch_size": 8}}
    if task == "classify":
        raw["events"] = {"rule": "given", "source": "simulator"}
    t = prepare_task(parse_config(raw))
    assert check_model(t, ModelConfig(name="stid"), "student") is not None
    monkeypatch.setenv("STKD_MEMORY_LIMIT", "1MiB")
    with pytest.raises(MemoryLimitError, match="too large for this memory: staeformer at N=30"):
        check_model(t, ModelConfig(name="staeformer"), "teacher")


# ------------------------------------------------------------------ node subsets
def test_node_subset_lowers_the_training_estimate_but_not_the_evaluation():
    n = 3000
    spec = ModelSpec(n, 12, 12, 1, 1, 288, adjacency=ring(n, degree=2))
    full = estimate_memory("gwnet", spec, {"adaptive": False}, batch_size=8)
    sub = estimate_memory("gwnet", spec, {"adaptive": False}, batch_size=8, train_nodes=300)
    assert sub.train_bytes < 0.2 * full.train_bytes
    assert sub.eval_bytes == full.eval_bytes
    # the K-node steps' memory stays with the allocator when the N-node evaluation runs: both count
    assert sub.model_bytes == sub.train_bytes + sub.eval_bytes + sub.buffer_bytes
    assert not full.train_then_eval and full.model_bytes == max(full.train_bytes, full.eval_bytes) + full.buffer_bytes
    assert sub.model_bytes < full.train_bytes + full.eval_bytes + full.buffer_bytes
