"""Forecasting and event classification run through one pipeline: the rules that once diverged between
the two (memory guard, node subsets, evaluation batch size) now hold for both."""

from __future__ import annotations

import pytest
import torch

from stkd.config import parse_config
from stkd.errors import ConfigError
from stkd.pipeline import TASKS, check_models, prepare_task, run
from stkd.runs import Trained
from stkd.steps import check_fits, eval_batch_size
from stkd.tasks.base import Task

SIM = {"source": "builtin", "name": "synthetic-traffic",
       "simulator": {"nodes": 16, "days": 3, "incidents_per_day": 40, "seed": 1}}
GWNET = {"name": "gwnet", "params": {"residual_channels": 8, "dilation_channels": 8, "skip_channels": 16,
                                     "end_channels": 16, "blocks": 2, "layers": 3}}


def config(task: str, **over) -> dict:
    raw = {"task": task, "data": SIM, "teacher": GWNET, "student": {"name": "mlp", "params": {"hidden": [16]}},
           "train": {"epochs": 1, "batch_size": 8, "max_batches": 2, "threads": 1},
           "eval": {"latency_repeats": 2, "baselines": ["last"]}}
    if task == "classify":
        raw["events"] = {"rule": "given", "source": "simulator"}
    raw.update(over)
    return raw


@pytest.fixture(autouse=True)
def _restore_threads():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def test_every_task_implements_the_interface():
    assert set(TASKS) == {"forecast", "classify"}
    for cls in TASKS.values():
        assert issubclass(cls, Task) and cls.name in TASKS and cls.monitor


@pytest.mark.parametrize("task", ["forecast", "classify"])
def test_node_subsets_with_a_per_node_teacher_are_refused_for_every_task(tmp_path, task):
    """An adaptive Graph WaveNet has per-node weights: node-subset training is refused before anything
    is written (event runs used to ignore train.node_subset silently)."""
    raw = config(task)
    raw["train"] = {**raw["train"], "node_subset": 8}
    with pytest.raises(ConfigError, match="node_subset=8 needs a model without per-node weights"):
        run(parse_config(raw), tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("task", ["forecast", "classify"])
def test_node_subsets_train_a_graph_teacher_for_every_task(tmp_path, task):
    raw = config(task, teacher={**GWNET, "params": {**GWNET["params"], "adaptive": False}},
                 data={**SIM, "simulator": {**SIM["simulator"], "nodes": 20}})
    raw["train"] = {**raw["train"], "node_subset": 8}
    cfg = parse_config(raw)
    seen = []
    original = torch.nn.Module.__call__

    def spy(self, *args, **kw):  # the teacher's training batches hold 8 nodes, its evaluation all 20
        if type(self).__name__ == "GWNet" and self.training:
            seen.append(args[0].shape[2])
        return original(self, *args, **kw)

    torch.nn.Module.__call__ = spy
    try:
        metrics = run(cfg, tmp_path / "run", progress=False)
    finally:
        torch.nn.Module.__call__ = original
    assert 8 in seen and 20 not in seen  # (the memory guard's probes train at 16, 32 and 64 nodes)
    assert metrics["models"]["gwnet"]["role"] == "teacher"


@pytest.mark.parametrize("task", ["forecast", "classify"])
def test_evaluation_runs_at_the_evaluation_batch_size_for_every_task(tmp_path, task):
    """Validation, cache and test forwards use ``eval_batch_size`` (4 x train.batch_size, at most 256);
    event evaluation used to run at 256 whatever the training batch."""
    cfg = parse_config(config(task))
    t = prepare_task(cfg)
    check_models(t)
    bs = eval_batch_size(cfg)
    assert bs == 32 and len(t.wd.starts["test"]) > bs
    sizes = []
    model = check_fits(t, cfg.student, "student")
    model.register_forward_pre_hook(lambda m, args: sizes.append(args[0].shape[0]))
    t.score(tmp_path, [Trained("mlp_plain", "student_plain", model, "mlp", 0.0, {}, kind=t.name)])
    big = [s for s in sizes if s > 1]  # batch-1 forwards are the latency measurement
    assert big and max(big) == bs


@pytest.mark.parametrize("task", ["forecast", "classify"])
def test_a_task_takes_another_training_config_on_the_same_prepared_data(task):
    """``with_config`` (a search's trials): other student, distill and train settings reuse the prepared data
    and labels; other data is refused, since the windows would not be its data."""
    import dataclasses

    from stkd.errors import STKDError

    t = prepare_task(parse_config(config(task)))
    other = dataclasses.replace(t.cfg, distill=dataclasses.replace(t.cfg.distill, alpha=0.9, temperature=4.0),
                                train=dataclasses.replace(t.cfg.train, lr=1e-3))
    u = t.with_config(other)
    assert u.cfg is other and u.wd is t.wd and type(u) is type(t) and t.cfg.distill.alpha != 0.9
    moved = dataclasses.replace(t.cfg, data=dataclasses.replace(t.cfg.data, split=[0.6, 0.2, 0.2]))
    with pytest.raises(STKDError, match="data: differs from the config this task prepared its data for"):
        t.with_config(moved)
