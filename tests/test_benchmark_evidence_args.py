"""``benchmarks/evidence.py``'s arguments: a schedule that would train no teacher of the row is refused, so no row
is labelled with a teacher schedule none of its teachers had."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from evidence import teacher_epochs_problem  # noqa: E402


def test_teacher_epochs_without_the_main_teacher_or_a_copy_of_it_is_refused_with_the_reason():
    problem = teacher_epochs_problem(60, ["stid-64"], without_main=True)
    assert problem is not None
    assert "--teacher-epochs" in problem and "stid-64" in problem and "data set's schedule" in problem


def test_teacher_epochs_with_the_main_teacher_or_a_copy_of_its_model_is_allowed():
    assert teacher_epochs_problem(60, ["stid-64"], without_main=False) is None  # the main teacher trains for it
    assert teacher_epochs_problem(60, ["stid-64-nb", "gwnet:101"], without_main=True) is None  # so does its copy
    assert teacher_epochs_problem(None, ["stid-64"], without_main=True) is None
