"""The kernels benchmark's sentences come from its numbers (``benchmarks/kernels.py``)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import kernels  # noqa: E402


def _arm(label: str, teacher: float, kd: float, plain: float, precision: str, wall: float = 180.0,
         caps: dict | None = None) -> dict:
    on = [{"cpu_kernels": "AVX512", "precision": precision}]
    return {"arm": label, "caps": caps or {}, "sets": [], "wall_seconds": wall, "models": {
        "stid": {"role": "teacher", "test_mae": teacher, "val_mae": teacher - 2, "trained_on": on},
        "stid_kd": {"role": "student_kd", "test_mae": kd, "val_mae": kd - 2, "trained_on": on},
        "stid_plain": {"role": "student_plain", "test_mae": plain, "val_mae": plain - 2, "trained_on": on}}}


def _result(again_teacher: float = 42.0) -> dict:
    steps = {"this machine": {"caps": {}, "seconds": {"fp32": {"teacher": 0.035, "student": 0.005},
                                                        "bf16": {"teacher": 0.024, "student": 0.005}}},
             "AVX2 only": {"caps": kernels.AVX2, "seconds": {"fp32": {"teacher": 0.034, "student": 0.005},
                                                             "bf16": {"teacher": 0.81, "student": 0.025}}}}
    arms = [_arm("this machine", 42.0, 44.0, 45.0, "bf16"), _arm("this machine, again", again_teacher, 44.0, 45.0, "bf16"),
            _arm("this machine, seed 1", 42.84, 44.2, 45.1, "bf16"),
            _arm("this machine, fp32", 42.21, 44.1, 44.9, "fp32", wall=200.0),
            _arm("AMX capped away", 42.21, 44.1, 44.9, "fp32", wall=210.0, caps=kernels.NO_AMX),
            _arm("AMX capped away, bf16 forced", 42.42, 45.2, 45.0, "bf16", wall=300.0, caps=kernels.NO_AMX),
            _arm("AVX2 only", 42.3, 44.1, 44.9, "fp32", caps=kernels.AVX2)]
    return {"command": "python benchmarks/kernels.py --runs DIR", "machine": "2 CPU cores (x86_64, AVX512)",
            "versions": {"stkd": "0.1.0", "commit": "abc1234"}, "date": "2026-12-05", "steps": steps,
            "arms": arms}


def test_the_verdicts_are_computed_from_the_runs():
    text = kernels.render(_result())
    assert "every model's test and validation MAE repeated exactly" in text
    # the largest move of the teacher's MAE off seed 0's first run among the other arms: 42.42 (+1.00 %)
    assert "at most 1.00 % (`stid`)" in text and "seed 1 moved it by 2.00 % (`stid`)" in text
    assert "At fp32, 1 of 2 other arms repeated the arm `this machine, fp32` exactly (`AMX capped away`)" in text
    assert "below the plain student's in 6 of 7 runs" in text  # the bf16-forced arm's distilled one is worse
    assert "0.69x the time (this machine), 23.82x the time (AVX2 only); bf16 was faster only with this machine" in text
    assert "took 5.0 min with bf16 forced and 3.5 min with `train.precision: auto` (which chose fp32)" in text
    assert "| AVX2 only | `ONEDNN_MAX_CPU_ISA=AVX2`, `ATEN_CPU_CAPABILITY=avx2` | 34.0 | 810.0 |" in text


def test_a_repeat_that_differs_is_reported_with_its_difference():
    text = kernels.render(_result(again_teacher=42.042))
    assert "the scores differed (`stid` +0.100 %" in text and "repeated exactly" not in text


def test_each_arm_runs_with_only_its_own_caps(monkeypatch):
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "avx2")
    env = kernels.clean_env(kernels.NO_AMX)
    assert env["ONEDNN_MAX_CPU_ISA"] == "AVX512_CORE_BF16" and "ATEN_CPU_CAPABILITY" not in env
    assert not {"ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY"} & set(kernels.clean_env({}))
