"""The speed benchmark's page block (``benchmarks/speed.py``): a student distilled from several teachers is set
against each and against all of them together, as an ensemble's forecast runs them."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import speed  # noqa: E402


def _model(name: str, role: str, params: int, ms: float) -> dict:
    return {"name": name, "role": role, "params": params, "speeds": {"eager": (ms, 1000 / ms), "onnx": "no export"},
            "eager_rounds_ms": [ms, ms * 1.1], "load_s": 0.001, "compute_s": 0.009}


def _result(models: list[dict]) -> dict:
    return {"dataset": {"name": "d", "nodes": 3}, "models": models, "command": "python benchmarks/speed.py",
            "threads": 2, "load_average": 0.1, "machine": "m", "args": {"repeats": 10, "batch": 8, "rounds": 3},
            "versions": {"stkd": "0.1.0", "commit": "abc1234"}, "date": "2026-12-07",
            "batch_stream": "inline", "round_statistic": "p10"}


def test_copies_of_one_teacher_get_numbered_names_and_others_keep_theirs():
    found = [SimpleNamespace(name=n) for n in ("stid", "gwnet", "stid", "stid")]
    assert [t.name for t in speed.unique_names(found)] == ["stid#1", "gwnet", "stid#2", "stid#3"]
    assert [speed.later_copy(n) for n in ("stid#1", "stid#2", "gwnet", "a#b")] == [False, True, False, False]


def test_a_student_of_several_teachers_is_set_against_all_of_them_together():
    teachers = [_model(f"stid#{i}", "teacher", 500_000, 0.4 + 0.1 * i) for i in range(1, 5)]  # 0.5..0.8 ms
    student = _model("mlp_kd", "student_kd", 100_000, 0.2)
    text = speed.render(_result([*teachers, student, _model("mlp_plain", "student_plain", 100_000, 0.2)]))
    assert ("mlp_kd vs the 4 teachers together (an ensemble's forecast runs each: the sum of their batch-1 "
            "latencies, 2.600 ms, and of their parameters, 2,000,000): 13.0x lower latency (eager), 20.0x fewer "
            "parameters.") in text
    assert "mlp_kd vs stid#1: batch-1 latency 2.5x lower" in text  # the first copy alone: the others are alike
    assert "mlp_kd vs stid#2:" not in text and "mlp_kd vs stid#4:" not in text
    assert "together" not in speed.render(_result([teachers[0], student]))  # one teacher: no ensemble line


def test_a_second_result_of_one_data_set_takes_a_section_of_its_own_and_a_bad_name_is_refused_before_any_work():
    import subprocess

    assert speed.SECTION.fullmatch("speed-akl-pedestrians-stid-48")
    for bad in ("akl-pedestrians", "speed-", "speed-../x", "speed-A"):  # not a result's name, or a path
        assert not speed.SECTION.fullmatch(bad)
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "speed.py"
    done = subprocess.run([sys.executable, str(script), "--run", "no-such-folder", "--section", "speed-../x"],
                          capture_output=True, text=True)
    assert done.returncode == 2 and "--section: 'speed-../x' is not speed-<name>" in done.stderr


def test_a_result_of_a_section_of_its_own_says_so_in_its_heading():
    models = [_model("stid", "teacher", 500, 0.45), _model("stid_48_kd", "student_kd", 200, 0.3)]
    assert "### Speed on d (3 nodes): every model of one run\n" in speed.render(_result(models) | {"section": "speed-d"})
    own = speed.render(_result(models) | {"section": "speed-d-stid"})
    assert "### Speed on d (3 nodes): every model of one run (stid)\n" in own
