"""The recipe table (``benchmarks/recipe.py``): its sentences are computed from the runs it shows, so a
variant that was not run says nothing and the choice is read on validation, not test."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import recipe  # noqa: E402


def _run(variant: str, val: float, test: float) -> dict:
    return {"variant": variant, "seed": 0, "val_mae": val, "test_mae": test, "params": 100, "epochs_run": 80,
            "best_epoch": 70, "train_seconds": 60.0, "test_horizons": {"3": test - 0.5, "6": test, "12": test + 0.5},
            "command": "python benchmarks/recipe.py"}


def _result(runs: list[dict]) -> dict:
    return {"runs": runs, "args": {"seed": 0}, "command": "python benchmarks/recipe.py",
            "baselines": {"last": {"val": 3.9, "test": 4.4}, "seasonal": {"val": 5.0, "test": 5.5, "period": "1D"}},
            "reference": recipe.REFERENCE, "machine": "2 CPU cores", "date": "2026-12-05",
            "versions": {"stkd": "0.1.0", "commit": "abc1234"}}


def test_the_harmonics_sentence_compares_the_mlp_with_and_without_them_on_validation():
    runs = [_run("stid-long", 3.0, 3.5), _run("mlp-long", 3.40, 3.90), _run("mlp-cal", 3.06, 3.95),
            _run("mlp-id", 3.20, 3.70)]
    text = recipe.render(_result(runs))
    assert ("The time-of-day harmonics take the MLP's validation MAE from 3.400 to 3.060 (-10.0 %; `mlp-long` to "
            "`mlp-cal`).") in text
    assert "`mlp-id` to `mlp-id-cal`" not in text  # that pair was not run
    both = recipe.render(_result([*runs, _run("mlp-id-cal", 2.88, 3.40)]))
    assert ("from 3.400 to 3.060 (-10.0 %; `mlp-long` to `mlp-cal`) and, with the sensor embedding, from 3.200 to "
            "2.880 (-10.0 %; `mlp-id` to `mlp-id-cal`).") in both
    assert "| mlp-cal | MLP, 80 epochs, + 4 harmonics" in text


def test_the_chosen_student_recipe_is_the_stid_variant_lowest_on_validation_whatever_the_mlps_score():
    runs = [_run("stid-long", 3.05, 3.40), _run("stid-32", 2.95, 3.45), _run("mlp-id-cal", 2.90, 3.30)]
    assert recipe.best_student(_result(runs))["variant"] == "stid-32"  # not the better test, not the MLP
