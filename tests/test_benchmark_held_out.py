"""The held-out Auckland years (``benchmarks/evidence.py``, ``akl-pedestrians-2020-2022``): the pinned preset on
other years, and each row's sentence setting its gain beside the same row's on the years the settings were
chosen on."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import evidence  # noqa: E402
import evidence_gaps  # noqa: E402
import evidence_rows  # noqa: E402
from common import akl_gwnet_preset  # noqa: E402
from stkd.paired import paired_gain  # noqa: E402

HELD_OUT = "akl-pedestrians-2020-2022"


def test_the_held_out_data_set_is_the_pinned_preset_on_the_three_years_before_its_own():
    held, tuned = evidence_rows.config(HELD_OUT, 3, False), evidence_rows.config("akl-pedestrians", 3, False)
    assert held["data"]["time_range"] == ["2020-01-01", "2022-12-31 23:00"]
    assert tuned["data"]["time_range"] == akl_gwnet_preset()["data"]["time_range"] == ["2023-01-01", "2025-12-31 23:00"]
    held["data"].pop("time_range"), tuned["data"].pop("time_range")
    assert held == tuned  # nothing else differs: the same commands mean the same settings
    assert evidence_rows.USUAL_TEACHER_LAGS[HELD_OUT] == evidence_rows.USUAL_TEACHER_LAGS["akl-pedestrians"]



def test_every_held_out_set_is_the_pinned_preset_on_other_years_of_the_same_counts():
    tuned = evidence_rows.config("akl-pedestrians", 3, False)
    assert set(evidence_rows.HELD_OUT) == {"akl-pedestrians-2020-2022", "akl-pedestrians-2019"}
    for name, held_out in evidence_rows.HELD_OUT.items():
        held = evidence_rows.config(name, 3, False)
        assert held["data"]["time_range"] == held_out["years"] != tuned["data"]["time_range"]
        assert {k: v for k, v in held["data"].items() if k != "time_range"} == \
            {k: v for k, v in tuned["data"].items() if k != "time_range"}
        assert {k: v for k, v in held.items() if k != "data"} == {k: v for k, v in tuned.items() if k != "data"}
    # 2019 lies before every other set's years: no window of it is in theirs
    sets = evidence_rows.HELD_OUT
    assert sets["akl-pedestrians-2019"]["years"][1] < sets["akl-pedestrians-2020-2022"]["years"][0]

def _rows(label: str, plain: list[float], kd: list[float], **extra) -> list[dict]:
    return [{"seed": s, "student": label, "plain_mae": p, "kd_mae": k, **extra}
            for s, (p, k) in enumerate(zip(plain, kd))]


def test_a_held_out_row_says_what_the_same_row_gave_on_the_tuned_on_years(tmp_path, monkeypatch):
    monkeypatch.setattr(evidence, "RESULTS", tmp_path)
    tuned = _rows("stid, x", [45.0 + 0.01 * s for s in range(5)], [44.0 + 0.01 * s for s in range(5)])  # better on every seed
    tuned += _rows("stid, y", [45.0 + 0.01 * s for s in range(5)], [46.0 + 0.01 * s for s in range(5)])  # worse on every seed
    (tmp_path / "evidence-akl-pedestrians.json").write_text(json.dumps({"records": tuned}))
    better = _rows("stid, x", [40.0 + 0.01 * s for s in range(5)], [39.0 + 0.01 * s for s in range(5)])
    g = paired_gain([r["plain_mae"] for r in better], [r["kd_mae"] for r in better])
    source = evidence.held_out_source(HELD_OUT)
    text = evidence_gaps.held_out_gap(source, better, g)
    assert text.startswith(" On akl-pedestrians, the years its settings were chosen on, the same row gave +2.")
    assert text.endswith("(5/5 seeds): established better on both.")
    flipped = _rows("stid, y", [40.0 + 0.01 * s for s in range(5)], [39.0 + 0.01 * s for s in range(5)])
    assert evidence_gaps.held_out_gap(source, flipped, g).endswith("(0/5 seeds): the two periods disagree.")
    # a row of an earlier rule, a row the tuned-on years lack, and a data set that is not held out: no sentence
    assert evidence_gaps.held_out_gap(source, _rows("stid, x", [1.0], [1.0], earlier_rule=True), g) == ""
    assert evidence_gaps.held_out_gap(source, _rows("stid, z", [1.0], [1.0]), g) == ""
    assert evidence.held_out_source("akl-pedestrians") is None
    assert evidence_gaps.held_out_gap(evidence.held_out_source("akl-pedestrians"), better, g) == ""
