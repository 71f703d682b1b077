"""The event benchmark (``benchmarks/events.py``): the distilled arm trains at the plain arm's chosen setting, so
the two arms differ by the teacher alone; its records say how closely each chosen student follows the teacher;
records of the earlier design are kept apart and never rendered beside the current ones."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import events  # noqa: E402

SCENARIO = events.scenario_config  # the benchmark's own, before a test replaces it
PICKED = "lr 0.01"

def _tiny(name: str, seed: int, quick: bool) -> dict:
    """A scenario small enough for the suite: the simulator's incidents on 16 sensors, a few batches."""
    raw = SCENARIO("simulator", seed, True)
    raw["data"]["simulator"].update(nodes=16, days=4, incidents_per_day=60)
    raw["teacher"]["epochs"] = 2
    raw["student"]["epochs"] = 2
    raw["train"].update(max_batches=3, patience=2)
    raw["eval"]["latency_repeats"] = 2
    return raw


@pytest.fixture(scope="module")
def seed_record(tmp_path_factory, one_torch_thread):
    mp = pytest.MonkeyPatch()
    mp.setattr(events, "scenario_config", _tiny)
    choose = events.chosen  # the plain arm "chooses" lr 0.01, not its first setting: the distilled arm must follow
    mp.setattr(events, "chosen", lambda arm: PICKED if set(arm) == set(events.PLAIN_GRID) else choose(arm))
    try:
        runs = tmp_path_factory.mktemp("events")
        return events.run_seed("simulator", 0, True, runs), runs / "simulator" / "seed-0"
    finally:
        mp.undo()


def test_the_distilled_arm_trains_at_the_plain_arm_s_chosen_setting(seed_record):
    import yaml

    record, out = seed_record
    assert record["design"] == events.DESIGN and set(record["plain"]) == set(events.PLAIN_GRID)
    assert record["kd_setting"] == PICKED  # the plain arm's choice
    assert len(record["kd"]) == len(events.KD_GRID)
    chosen = events.merge(_tiny("simulator", 0, True), events.PLAIN_GRID[record["kd_setting"]])
    for alpha, temp in events.KD_GRID:
        folder = out / f"kd-{events.slug(record['kd_setting'])}-a{alpha}-T{temp}"
        cfg = yaml.safe_load((folder / "config.yaml").read_text())
        assert cfg["train"]["lr"] == chosen["train"]["lr"] == 0.01
        assert cfg["events"]["class_weights"] == chosen["events"].get("class_weights", "auto")
        assert cfg["events"]["focal_gamma"] == chosen["events"].get("focal_gamma", 0.0)
        assert (cfg["distill"]["alpha"], cfg["distill"]["temperature"]) == (alpha, temp)


def test_every_chosen_student_says_how_closely_it_follows_the_teacher(seed_record):
    record, _ = seed_record
    for arm in ("kd", "plain"):
        for label, e in record[arm].items():
            follows = e["to_teacher"]
            assert follows["metric"] == "agreement" and 0 <= follows["value"] <= 1, (arm, label)
            assert 0 <= follows["probability_gap"] <= 1, (arm, label)
    arm = events.arms([record])
    line = events.following(arm)
    kd, plain = arm["kd"][0]["to_teacher"], arm["plain"][0]["to_teacher"]
    assert f"on {100 * kd['value']:.1f} % of the scored targets, the plain one on {100 * plain['value']:.1f} %" in line
    assert f"{kd['probability_gap']:.3f} and {plain['probability_gap']:.3f} from the teacher's" in line
    nearer = kd["probability_gap"] < plain["probability_gap"]
    assert line.endswith(f"({int(nearer)} of 1 seeds nearer).")


def test_records_of_the_earlier_design_are_kept_apart_and_not_rendered(seed_record):
    record, _ = seed_record
    old = {**record, "seed": 1, "design": None}
    old.pop("kd_setting")
    current, earlier = events.current_design({"records": [old, record]})
    assert current == [record] and earlier == [old]
    # a second pass keeps what the file already keeps apart
    again, kept = events.current_design({"records": current, "earlier_design_records": earlier})
    assert again == [record] and kept == [old]
    page = events.render({"scenario": "simulator", "records": current, "command": "c", "machine": "m",
                          "versions": {"stkd": "0", "commit": "x"}, "date": "today"})
    assert "then 5 distilled at the plain arm's chosen setting" in page and "How closely each follows" in page
    first = events.render({"scenario": "simulator", "records": [old], "command": "c", "machine": "m",
                           "versions": {"stkd": "0", "commit": "x"}, "date": "today"})
    assert "Training runs per seed: 5 distilled, 5 plain." in first
    assert "the distilled arm trained at the plain arm's first setting (lr 0.003, class weights auto)" in first
