"""Tests of stkd.fidelity: how much nearer its teacher a distilled student is, and what share of the plain
student's distance to the teacher is the teacher's edge."""

from __future__ import annotations

import numpy as np
import pytest

from stkd.fidelity import edge_share_pct, nearer_pct


def test_nearer_is_the_share_of_the_plain_student_s_distance_that_distillation_closed():
    assert nearer_pct(0.75, 1.0) == pytest.approx(25.0)
    assert nearer_pct(1.1, 1.0) == pytest.approx(-10.0)  # further
    assert nearer_pct(0.0, 2.0) == pytest.approx(100.0)


def test_the_edge_share_bounds_what_a_partial_approach_gains():
    """On forecasts where the teacher is right on some points and the student on others, the share is the
    teacher's edge over the distance; a student moved a fraction of the way to the teacher at every point gains
    at least that fraction of the edge (the absolute error is convex), so it is at most the whole edge."""
    rng = np.random.default_rng(0)
    truth = rng.normal(size=5000)
    teacher = truth + rng.normal(scale=0.5, size=5000)
    plain = truth + rng.normal(scale=0.6, size=5000)
    mae = lambda f: float(np.abs(f - truth).mean())  # noqa: E731
    distance = float(np.abs(plain - teacher).mean())
    share = edge_share_pct(mae(plain), mae(teacher), distance)
    assert share is not None and 0 < share <= 100
    assert share == pytest.approx(100 * (mae(plain) - mae(teacher)) / distance)
    for fraction in (0.25, 0.5, 1.0):
        moved = plain + fraction * (teacher - plain)
        assert mae(plain) - mae(moved) >= fraction * (mae(plain) - mae(teacher)) - 1e-12
    # no edge to share: a teacher no better than the student, or a student that is the teacher
    assert edge_share_pct(3.0, 3.0, 0.5) is None and edge_share_pct(3.0, 3.2, 0.5) is None
    assert edge_share_pct(3.0, 2.8, 0.0) is None


def test_nearer_words_say_the_direction_and_the_size_of_the_approach():
    from stkd.fidelity import nearer_words

    assert nearer_words(0.6, 0.8) == "25.0 % nearer"
    assert nearer_words(0.9, 0.8) == "12.5 % further away"
    assert nearer_words(0.8, 0.8) == "0.0 % nearer"
