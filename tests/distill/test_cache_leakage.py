"""No test (or validation) data reaches a student through the soft-label cache.

The cache holds the teacher's outputs for every window of every split (the report and the event
teachers are scored from it). The distillation loss must read only its training rows: here the
validation and test rows of a real teacher's cache are overwritten with NaN and absurd values, and a
student distilled from the poisoned cache must come out bit for bit the same as one distilled from the
clean cache (the same seed fixes everything else). A loss that read a poisoned row would give NaN or a
different student.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from stkd.cli import main


def _poison(cache_dir, splits=("val", "test"), finite: bool = False) -> int:
    """Overwrite the given splits' rows of every array in every cache entry; return how many files.

    ``finite``: absurd but finite values (+-1e4) instead of NaN and 1e30, for runs that score a teacher
    from its cached test rows (that score is garbage then, but it must be computable)."""
    count = 0
    for entry in cache_dir.iterdir():
        for split in splits:
            for kind in ("pred", "hidden"):
                path = entry / f"{split}_{kind}.npy"
                if path.is_file():
                    arr = np.lib.format.open_memmap(path, mode="r+")
                    arr[...] = -1e4 if finite else np.nan
                    arr[::2] = 1e4 if finite else 1e30  # half NaN, half absurd: any read shows
                    arr.flush()
                    del arr
                    count += 1
    return count


def _distil_clean_and_poisoned(tmp_path, raw: dict, at_least: int = 1, **poison) -> tuple:
    """Train the teacher of ``raw``, distil a student from its clean cache, poison the cache
    (``_poison(**poison)``, at least ``at_least`` files) and distil again: the two student run folders."""
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(raw))
    teacher_run = tmp_path / "teacher"
    assert main(["train", "--config", str(cfg), "--out", str(teacher_run), "--quiet"]) == 0
    runs = []
    for name in ("clean", "poisoned"):
        if name == "poisoned":
            assert _poison(teacher_run / "cache", **poison) >= at_least
        runs.append(tmp_path / name)
        assert main(["distill", "--teacher-run", str(teacher_run), "--config", str(cfg), "--out", str(runs[-1]),
                     "--quiet"]) == 0
    return tuple(runs)


def _student_bytes(run_dir, label):
    return (run_dir / "models" / label / "model.safetensors").read_bytes()


@pytest.mark.parametrize("distill", [{"alpha": 0.3}, {"alpha": 0.3, "feature_weight": 0.5, "relation_weight": 0.5}],
                         ids=["response", "response+hint+relation"])
def test_distillation_reads_only_the_training_rows_of_the_cache(tmp_path, los_small_config, distill):
    raw = los_small_config()
    raw["distill"] = distill
    clean, poisoned = _distil_clean_and_poisoned(tmp_path, raw, at_least=2)
    assert _student_bytes(clean, "stid_kd") == _student_bytes(poisoned, "stid_kd")
    kd = [json.loads((d / "metrics.json").read_text())["models"]["stid_kd"]["test"]["mae"] for d in (clean, poisoned)]
    assert kd[0] == kd[1] and np.isfinite(kd[0])


def test_poisoning_the_training_rows_does_change_the_student(tmp_path, los_small_config):
    """The control: the same poison on the training rows reaches the student (so the test above could fail)."""
    raw = los_small_config()
    raw["distill"] = {"alpha": 0.3}
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(raw))
    teacher_run = tmp_path / "teacher"
    assert main(["train", "--config", str(cfg), "--out", str(teacher_run), "--quiet"]) == 0
    assert _poison(teacher_run / "cache", splits=("train",)) >= 1
    rc = main(["distill", "--teacher-run", str(teacher_run), "--config", str(cfg), "--out", str(tmp_path / "bad"),
               "--quiet"])
    assert rc == 2  # the loss became non-finite: training stops with a clear error


@pytest.mark.parametrize("teacher_kind", ["classify", "forecast"])
def test_event_distillation_reads_only_the_training_rows_of_the_cache(tmp_path, teacher_kind):
    """The same for event tasks: logits of an event teacher, or a forecasting teacher's forecasts turned
    into event probabilities (one teacher: no validation-weighted ensemble reads the validation rows)."""
    events = ({"rule": "given", "source": "simulator"} if teacher_kind == "classify"
              else {"rule": "threshold", "op": "<", "value": 45.0, "teacher_kind": "forecast"})
    raw = {"task": "classify",
           "data": {"source": "builtin", "name": "synthetic-traffic",
                    "simulator": {"nodes": 16, "days": 3, "incidents_per_day": 40, "seed": 1}},
           "teacher": {"name": "stid", "params": {"embed_dim": 8, "node_dim": 4, "tod_dim": 4, "dow_dim": 4}},
           "student": {"name": "mlp", "params": {"hidden": [16]}},
           "train": {"epochs": 2, "batch_size": 32, "max_batches": 3, "threads": 1},
           "distill": {"alpha": 0.3, "temperature": 3.0}, "eval": {"latency_repeats": 2}, "events": events}
    # validation rows legitimately set the forecasting teacher's per-horizon spread: poison the test rows
    clean, poisoned = _distil_clean_and_poisoned(tmp_path, raw, splits=("test",), finite=True)
    assert _student_bytes(clean, "mlp_kd") == _student_bytes(poisoned, "mlp_kd")
