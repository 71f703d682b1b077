"""The transfer benchmark's computed sentences (benchmarks/transfer.py): the README headline and the line for a
distilled student that ends better than its teacher."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from stkd.transfer.report import summarise  # noqa: E402
from transfer import edge_kept, finetune_start, headline, schedule_text  # noqa: E402


def _result(kd: list[float]) -> dict:
    """A transfer of one history and five seeds: the student alone 100 + seed, the teacher 99, the
    fine-tuned teacher 90, the distilled students ``kd``."""
    seeds = {str(s): {"routes": {"target_only": {"mae": 100.0 + s}, "source_zero_shot": {"mae": 99.0},
                                 "finetuned": {"mae": 90.0}, "kd_source": {"mae": kd[s]},
                                 "kd_finetuned": {"mae": 100.0 + s}}} for s in range(5)}
    return {"seeds": [0, 1, 2, 3, 4], "metric": "mae", "runs": {"7d": {"seeds": seeds}},
            "source": {"nodes": 10}, "target": {"nodes": 11}}


def test_a_distilled_student_better_than_alone_says_how_much_of_its_teachers_edge_it_keeps():
    t = _result([95.0, 96.0, 97.0, 98.0, 95.5])
    lines = edge_kept(t, summarise(t))
    assert lines == ["- **7d**: kd_source (96.300) is better than the student alone (102.000, +5.6 %) and than its "
                     "teacher, source_zero_shot (99.000): the student gains more than the teacher's edge over it."]
    behind = _result([97.5 + s for s in range(5)])  # better than alone on every seed, not than the teacher
    assert edge_kept(behind, summarise(behind)) == [
        "- **7d**: kd_source (99.500) is better than the student alone (102.000, +2.5 %) and keeps 83 % of its "
        "teacher's edge (source_zero_shot, 99.000)."]
    worse = _result([101.0 + s for s in range(5)])
    assert edge_kept(worse, summarise(worse)) == []
    text = headline({"case": "akl-pedestrians", "transfer": t})
    assert ("7d of history 96.3 against 102.0 alone and 99.0 for the teacher (+5.6 %, better on 5 of 5 seeds: "
            "better)") in text and "10 sensors with their full history teach a student for 11 others, 5 seeds" in text
    data = {"source": "builtin", "name": "akl-pedestrians"}
    same = headline({"case": "akl-pedestrians-same", "transfer": t, "source_config": {"data": data},
                     "target_config": {"data": dict(data)}})
    assert "teach a student for the same sensors keeping a short history, 5 seeds" in same
    t["source"]["params"] = {"adaptive": True}
    nodes = headline({"case": "akl-pedestrians-same-nodes", "transfer": t, "source_config": {"data": data},
                      "target_config": {"data": dict(data)}})
    assert "the same sensors keeping a short history (the teacher with node embeddings), 5 seeds" in nodes


def test_the_schedule_says_whether_every_epoch_holds_the_same_batches():
    assert schedule_text({"epochs": 30, "max_batches": 40, "min_batches": 40, "patience": 8}).startswith(
        "30 epochs of 40 batches each (patience 8; a short history's epoch passes over its windows several times")
    assert schedule_text({"epochs": 30, "max_batches": 40, "patience": 8}) == \
        "30 epochs of at most 40 batches (patience 8)"


def test_a_run_with_its_own_student_or_fine_tuning_rate_gets_its_own_result_file():
    from transfer import section_name

    assert section_name("akl-pedestrians") == "transfer-akl-pedestrians"
    assert section_name("simulator", "stid-nb") == "transfer-simulator-stid-nb"
    assert section_name("akl-pedestrians-same", "stid", 0.0002) == "transfer-akl-pedestrians-same-ft0.0002"


def test_the_header_says_whether_the_finetuned_route_could_keep_the_source_weights():
    t = _result([95.0, 96.0, 97.0, 98.0, 95.5])
    assert finetune_start(t).startswith("measured before the finetuned route counted the source weights as epoch 0")
    for s, run in t["runs"]["7d"]["seeds"].items():
        run["finetuned_epoch"] = int(s) % 2
    assert finetune_start(t).startswith("the finetuned route counts the source weights as epoch 0")
    del t["runs"]["7d"]["seeds"]["3"]["finetuned_epoch"]  # a result of both kinds cannot say either
    assert finetune_start(t).startswith("measured before")
