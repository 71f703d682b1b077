"""Paired seed comparisons: the bootstrap interval decides whether a gain is established."""

from __future__ import annotations

import pytest

from stkd.paired import bound, describe_gain, gain_cell, paired_gain, signed


def test_a_consistent_gain_is_established_and_described_from_the_numbers():
    g = paired_gain([4.0, 4.2, 3.9, 4.1, 4.0], [3.6, 3.8, 3.5, 3.7, 3.6])
    assert g["n"] == 5 and g["wins"] == 5 and g["established"]
    assert g["gains"][0] == pytest.approx(10.0) and 9 < g["mean"] < 11
    assert 0 < g["ci"][0] <= g["mean"] <= g["ci"][1]
    text = describe_gain(g)
    assert "established" in text and f"{g['mean']:.1f} %" in text and "5 of 5" in text


def test_a_gain_whose_interval_includes_zero_is_not_established():
    g = paired_gain([4.0, 4.2, 3.9, 4.1, 4.0], [3.9, 4.4, 3.7, 4.3, 3.95])
    assert not g["established"] and g["ci"][0] < 0 < g["ci"][1]
    assert describe_gain(g).endswith("not established (the interval includes 0).")
    # the sentence gives the gain the table's cell gives, in its sign (not the error's change)
    assert f"the gain from distillation is {signed(g['mean'])} %" in describe_gain(g)
    assert gain_cell(g).startswith(f"{signed(g['mean'])} %")


def test_a_consistent_gain_smaller_than_the_seed_spread_is_not_established():
    plain = [4.0, 4.4, 3.8, 4.2, 4.1]  # spread: 5.5 % of the mean
    g = paired_gain(plain, [p * 0.98 for p in plain])  # 2 % better on every seed: the interval is clear of 0
    assert g["wins"] == 5 and g["ci"][0] > 0 and g["spread"] == pytest.approx(5.45, abs=0.01)
    assert not g["established"] and g["why_not"] == "smaller than the seed spread, 5.5 %"
    assert describe_gain(g).endswith("not established (smaller than the seed spread, 5.5 %).")
    assert paired_gain(plain, [p * 0.9 for p in plain])["established"]  # 10 % is more than the spread


def test_three_agreeing_seeds_do_not_establish_a_gain():
    g = paired_gain([4.0, 4.2, 3.9], [3.6, 3.8, 3.5])
    assert g["wins"] == 3 and g["ci"][0] > 0 and not g["established"] and g["why_not"] == "3 seeds, 5 needed"
    assert paired_gain([4.0, 4.2, 3.9], [3.6, 3.8, 3.5], min_seeds=3)["established"]


def test_higher_is_better_scores_and_bad_input():
    g = paired_gain([0.70, 0.72, 0.71], [0.75, 0.76, 0.77], lower_is_better=False)
    assert g["mean"] > 0 and g["wins"] == 3
    with pytest.raises(ValueError, match="same number"):
        paired_gain([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="finite"):
        paired_gain([1.0, float("nan")], [1.0, 1.0])


def test_a_higher_is_better_score_is_described_as_rising_or_falling():
    up = paired_gain([0.70, 0.72, 0.71, 0.69, 0.70], [0.75, 0.76, 0.77, 0.74, 0.75], lower_is_better=False)
    text = describe_gain(up, "distillation", score="F1")
    assert text.startswith(f"distillation raises F1 by {up['mean']:.1f} %") and text.endswith("established.")
    down = paired_gain([0.75, 0.76, 0.77, 0.74, 0.75], [0.70, 0.72, 0.71, 0.69, 0.70], lower_is_better=False)
    assert describe_gain(down, "distillation", score="F1").endswith(": a loss.")
    flat = paired_gain([0.70, 0.72, 0.71], [0.71, 0.70, 0.72], lower_is_better=False)
    assert "changes F1 by" in describe_gain(flat, score="F1") and describe_gain(flat, score="F1").endswith(
        "not established (3 seeds, 5 needed).")


@pytest.mark.parametrize("kd", [[3.6, 3.8, 3.5, 3.7, 3.6], [4.4, 4.6, 4.3, 4.5, 4.4], [3.9, 4.4, 3.7, 4.3, 3.95]])
def test_the_sentence_gives_its_interval_in_the_sign_of_its_own_number(kd):
    """"raises the error by 1.1 % (95 % interval -1.3 % to -0.8 %)" read as a contradiction: the interval
    is of the quantity the sentence names, so it brackets the number the sentence gives."""
    import re

    g = paired_gain([4.0, 4.2, 3.9, 4.1, 4.0], kd)
    text = describe_gain(g)
    number = float(re.search(r"(?:by|is) ([+-]?\d+\.\d) %", text).group(1))
    low, high = (float(v) for v in re.search(r"interval ([+-]\d+\.\d) % to ([+-]\d+\.\d) %", text).groups())
    assert low <= number <= high, text


def test_a_mean_that_rounds_to_zero_is_written_without_a_minus():
    """A mean gain of -0.02 % is no loss: "+0.0 %", never "-0.0 %", in the sentence and the table cell."""
    plain = [10.0, 11.0, 12.0, 10.5, 11.5]
    g = paired_gain(plain, [p * (1 - r / 100) for p, r in zip(plain, [-0.04, 0.02, -0.06, 0.01, -0.05])])
    assert -0.05 < g["mean"] < 0
    assert "is +0.0 %" in describe_gain(g)
    assert gain_cell(g).startswith("+0.0 % (")
    assert signed(-0.04) == "+0.0" and signed(-0.06) == "-0.1" and signed(0.25, 2) == "+0.25"


def test_an_interval_end_near_zero_keeps_its_sign():
    """Whether an end lies below or above zero decides "established": it is never rounded to a bare 0.0."""
    assert bound(-0.004) == "-0.00" and bound(0.03) == "+0.03" and bound(-0.3) == "-0.3" and bound(0.05) == "+0.1"
    plain = [10.0, 11.0, 12.0, 10.5, 11.5]
    g = paired_gain(plain, [p * (1 - r / 100) for p, r in zip(plain, [0.3, 0.2, -0.01, 0.25, 0.3])])
    low = g["ci"][0]
    assert gain_cell(g).split("(")[1].startswith(bound(low)) and bound(low)[0] == ("-" if low < 0 else "+")
