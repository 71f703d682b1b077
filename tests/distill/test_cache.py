"""Tests of the soft-label cache: written once, read by every later student without running the
teacher; keyed by the teacher's weights and the data; equal to the teacher's own predictions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from stkd.config import DataConfig, WindowConfig
from stkd.data.container import STData
from stkd.data.windows import prepare
from stkd.distill.cache import SPLITS, build_or_load, cache_key, weights_digest
from stkd.errors import STKDError
from stkd.evaluate import to_original_units
from stkd.models.registry import build_model
from stkd.steps import model_spec


@pytest.fixture(scope="module")
def wd():
    rng = np.random.default_rng(0)
    T, N = 300, 5
    t = np.arange(T)[:, None]
    values = 40 + 8 * np.sin(2 * np.pi * t / 24 + np.arange(N)) + rng.normal(0, 1, (T, N))
    values[rng.random((T, N)) < 0.03] = np.nan
    data = STData.from_values(values.astype(np.float32), pd.date_range("2024-03-01", periods=T, freq="1h"),
                              [f"s{i}" for i in range(N)], ["speed"], name="toy")
    return prepare(data, DataConfig(window=WindowConfig(input=6, horizon=4)))


class Counting(torch.nn.Module):
    """A teacher whose forward calls are counted."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.hparams = model.hparams
        self.calls = 0

    def forward(self, x, tod, dow):
        self.calls += 1
        return self.model(x, tod, dow)


def _teacher(wd, seed=0):
    torch.manual_seed(seed)
    return Counting(build_model("stid", model_spec(wd), {"embed_dim": 8, "node_dim": 4, "tod_dim": 4,
                                                         "dow_dim": 4})).eval()


def test_second_student_reads_the_cache_without_running_the_teacher(wd, tmp_path):
    teacher = _teacher(wd)
    first = build_or_load(tmp_path, teacher, "stid", wd, with_hidden=False, batch_size=64)
    assert first.built and teacher.calls > 0
    calls = teacher.calls
    files = sorted(p.name for p in first.path.iterdir())
    second = build_or_load(tmp_path, teacher, "stid", wd, with_hidden=False, batch_size=64)
    assert not second.built
    assert teacher.calls == calls  # the teacher did not run
    assert second.path == first.path and sorted(p.name for p in second.path.iterdir()) == files
    assert len(list((tmp_path / "cache").iterdir())) == 1
    for split in SPLITS:
        np.testing.assert_array_equal(second.all_pred(split), first.all_pred(split))
    assert second.meta["windows"] == {s: len(wd.starts[s]) for s in SPLITS}


def test_cached_predictions_equal_the_teachers_in_original_units(wd, tmp_path):
    teacher = _teacher(wd)
    entry = build_or_load(tmp_path, teacher, "stid", wd, with_hidden=True, batch_size=32)
    for split in SPLITS:
        starts = wd.starts[split][[0, 3, -1]]
        b = wd.batch(starts)
        with torch.no_grad():
            out = teacher(b.x, b.tod, b.dow)
        expected = to_original_units(wd, out["pred"])
        got = entry.pred(split, starts)
        assert got.shape == (3, wd.H, wd.num_nodes, 1)
        torch.testing.assert_close(got, expected)
        assert 20 < float(got.mean()) < 60  # original units (speeds near 40), not z-scores
        torch.testing.assert_close(entry.hidden(split, starts), out["hidden"])


def test_hidden_features_only_when_asked(wd, tmp_path):
    teacher = _teacher(wd)
    entry = build_or_load(tmp_path, teacher, "stid", wd, with_hidden=False)
    assert not entry.has_hidden and entry.meta["hidden_dim"] is None
    with pytest.raises(STKDError, match="no hidden features"):
        entry.hidden("train", wd.starts["train"][:2])
    # asking later with hidden features rebuilds the same entry with them
    with_hidden = build_or_load(tmp_path, teacher, "stid", wd, with_hidden=True)
    assert with_hidden.built and with_hidden.has_hidden and with_hidden.path == entry.path
    h = with_hidden.hidden("val", wd.starts["val"][:2])
    assert h.shape == (2, wd.num_nodes, with_hidden.meta["hidden_dim"])
    # and a student without a hint loss reads it as it is
    again = build_or_load(tmp_path, teacher, "stid", wd, with_hidden=False)
    assert not again.built and again.has_hidden


def test_a_changed_teacher_gets_a_new_key(wd, tmp_path):
    teacher = _teacher(wd)
    a = build_or_load(tmp_path, teacher, "stid", wd, with_hidden=False)
    digest = weights_digest(teacher)
    with torch.no_grad():
        next(teacher.parameters()).add_(0.01)
    assert weights_digest(teacher) != digest
    b = build_or_load(tmp_path, teacher, "stid", wd, with_hidden=False)
    assert b.built and b.path != a.path
    assert len(list((tmp_path / "cache").iterdir())) == 2
    assert not np.array_equal(a.all_pred("test"), b.all_pred("test"))
    # the key also changes with the name, the hyper-parameters and the data
    k = cache_key("stid", {"a": 1}, digest, "data1")
    assert len({k, cache_key("gwnet", {"a": 1}, digest, "data1"), cache_key("stid", {"a": 2}, digest, "data1"),
                cache_key("stid", {"a": 1}, digest, "data2")}) == 4


def test_a_different_data_set_gets_a_new_key(wd, tmp_path):
    teacher = _teacher(wd)
    a = build_or_load(tmp_path, teacher, "stid", wd, with_hidden=False)
    data = wd.data
    values = data.values.copy()
    values[0, 0, 0] += 1.0
    other = prepare(STData.from_values(values, data.index, data.nodes, data.features, name="toy"), wd.cfg)
    b = build_or_load(tmp_path, teacher, "stid", other, with_hidden=False)
    assert b.built and b.path != a.path


def test_windows_the_cache_does_not_hold_are_an_error(wd, tmp_path):
    entry = build_or_load(tmp_path, _teacher(wd), "stid", wd, with_hidden=False)
    with pytest.raises(STKDError, match="not in the\\s+train split"):
        entry.pred("train", wd.starts["test"][:2])


def test_an_interrupted_build_is_not_read_as_a_cache(wd, tmp_path):
    teacher = _teacher(wd)
    entry = build_or_load(tmp_path, teacher, "stid", wd, with_hidden=False)
    (entry.path / "meta.json").unlink()  # as if the build died before its last write
    calls = teacher.calls
    again = build_or_load(tmp_path, teacher, "stid", wd, with_hidden=False)
    assert again.built and teacher.calls > calls


class Interleaving(Counting):
    """A teacher that, in its first forward, has a second builder write the same cache entry whole (as a
    second ``stkd distill`` sharing the teacher run would, at the same moment)."""

    def __init__(self, model, run_dir, wd):
        super().__init__(model)
        self.run_dir, self.wd, self.nested = run_dir, wd, False

    def forward(self, x, tod, dow):
        if not self.nested:
            self.nested = True
            build_or_load(self.run_dir, self, "stid", self.wd, with_hidden=True, batch_size=32)
        return super().forward(x, tod, dow)


def test_two_builders_of_one_entry_do_not_write_into_each_other(wd, tmp_path):
    base = _teacher(wd)
    teacher = Interleaving(base.model, tmp_path, wd)
    entry = build_or_load(tmp_path, teacher, "stid", wd, with_hidden=True, batch_size=32)
    for split in SPLITS:  # whole and right, whichever builder's file won
        starts = wd.starts[split]
        with torch.no_grad():
            b = wd.batch(starts)
            out = base.model(b.x, b.tod, b.dow)
        np.testing.assert_allclose(entry.all_pred(split), to_original_units(wd, out["pred"]).numpy(), rtol=1e-5,
                                   atol=1e-5)
    assert not list(entry.path.glob(".*tmp*"))  # no temporary file left behind


def test_a_teacher_that_fails_mid_build_leaves_no_files(wd, tmp_path):
    class Failing(Counting):
        def forward(self, x, tod, dow):
            if self.calls == 1:
                raise RuntimeError("out of memory")
            return super().forward(x, tod, dow)

    teacher = Failing(_teacher(wd).model)
    with pytest.raises(RuntimeError, match="out of memory"):
        build_or_load(tmp_path, teacher, "stid", wd, with_hidden=True, batch_size=32)
    entry_dirs = list((tmp_path / "cache").iterdir())
    assert all(not list(d.iterdir()) for d in entry_dirs)  # no arrays, no temporary files, no meta.json


def test_labels_written_from_memory_read_back_like_a_teachers_cache(tmp_path):
    """write_cache (cross-fitted labels, each window labelled by a teacher that never saw it) writes the layout
    CacheEntry reads: per split the windows' starts and outputs, meta.json last."""
    import numpy as np

    from stkd.distill.cache import SPLITS, CacheEntry, write_cache

    rng = np.random.default_rng(0)
    starts = {"train": np.arange(0, 40, 2), "val": np.arange(50, 60), "test": np.arange(70, 75)}
    preds = {s: rng.normal(size=(len(starts[s]), 3, 4, 1)) for s in SPLITS}  # [W, H, N, F] float64 in
    entry = write_cache(tmp_path / "crossfit", preds, starts, {"teacher": "folds", "kind": "forecast"})
    again = CacheEntry(tmp_path / "crossfit", entry.meta, built=False)
    assert again.kind == "forecast" and (tmp_path / "crossfit" / "meta.json").is_file()
    got = again.pred("train", np.array([4, 30]))  # [2, H, N, F], float32 on disk
    np.testing.assert_allclose(got.numpy(), preds["train"][[2, 15]].astype(np.float32))
    assert got.dtype.is_floating_point and str(got.dtype) == "torch.float32"
