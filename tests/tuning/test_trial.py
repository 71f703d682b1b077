"""The ``--trials`` budget under several workers: the storage numbers trials in the order it creates them, and a
trial that starts when the places before it already fill the budget stops before training and is left out of
the search's results (two workers that checked the budget at once can no longer overshoot it)."""

from __future__ import annotations

import pytest

from stkd.tuning.results import state_counts, trial_rows
from stkd.tuning.trial import SURPLUS, SurplusTrial, claim_place

optuna = pytest.importorskip("optuna")


def _study():
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(storage=optuna.storages.InMemoryStorage(), direction="minimize")


def test_a_trial_beyond_the_budget_stops_and_an_earlier_failed_one_does_not_count():
    study = _study()
    first, second, third = study.ask(), study.ask(), study.ask()  # three workers asked at once
    claim_place(first, 2)
    claim_place(second, 2)  # one place taken before it
    with pytest.raises(SurplusTrial, match=r"trial 2: --trials 2 were already taken"):
        claim_place(third, 2)
    assert third.user_attrs[SURPLUS] is True and SURPLUS not in second.user_attrs
    claim_place(third, None)  # no budget: every trial runs
    study.tell(first, state=optuna.trial.TrialState.FAIL)  # an error: its place is free again
    fourth = study.ask()
    claim_place(fourth, 3)  # second (running) and third (running, unclaimed) are before it: 2 < 3


def test_a_surplus_trial_is_left_out_of_the_rows_and_the_counts():
    study = _study()

    def objective(trial):
        trial.suggest_float("train.lr", 1e-4, 1e-2, log=True)
        claim_place(trial, 1)
        return 1.0

    study.optimize(objective, n_trials=1)
    running = study.ask()  # another worker's trial, created before ours
    study.optimize(objective, n_trials=1, catch=(SurplusTrial,))  # ours finds the budget taken
    study.tell(running, 2.0)
    states = [t.state for t in study.get_trials()]
    assert states == [optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.COMPLETE,
                      optuna.trial.TrialState.FAIL]
    assert [r["number"] for r in trial_rows(study, "mae", 1)] == [0, 1]
    assert state_counts(study) == {"complete": 2, "pruned": 0, "failed": 0, "running": 0}
