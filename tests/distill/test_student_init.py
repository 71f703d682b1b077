"""``distill.init: teacher`` end to end: the distilled student starts from its teacher's weights cut to its
size, the plain student from the seed's; configs that cannot do it are refused before anything trains."""

from __future__ import annotations

import csv
import json
import math

import pytest
import yaml

from stkd.cli import main
from stkd.config import parse_config
from stkd.errors import ConfigError

WIDE = {"embed_dim": 16, "node_dim": 8, "tod_dim": 8, "dow_dim": 8, "layers": 3}


def _config(los_small_config, **student_params) -> dict:
    raw = los_small_config()
    raw["teacher"] = {"name": "stid", "params": WIDE}
    raw["student"]["params"].update(student_params)
    raw["distill"] = {"init": "teacher"}
    raw["train"]["epochs"] = 3
    return raw


def _log(path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_the_distilled_student_starts_from_its_teacher_and_the_plain_one_from_the_seed(tmp_path, los_small_config):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(_config(los_small_config)))
    run = tmp_path / "run"
    assert main(["run", "--config", str(cfg), "--out", str(run), "--quiet"]) == 0
    kd, plain = _log(run / "models" / "stid_kd" / "log.csv"), _log(run / "models" / "stid_plain" / "log.csv")
    # the starting weights (the teacher's, cut) are scored as epoch 0, with no training loss; the epochs after
    # it log every term of the objective
    assert [int(r["epoch"]) for r in kd] == [0, 1, 2, 3]
    assert kd[0]["train_loss"] == "nan" and kd[0]["loss_hard"] == "" and math.isfinite(float(kd[0]["val_mae"]))
    assert all(math.isfinite(float(r["loss_soft"])) for r in kd[1:])
    assert [int(r["epoch"]) for r in plain] == [1, 2, 3]
    card = json.loads((run / "models" / "stid_kd" / "model.json").read_text())
    assert card["distill"]["init"] == "teacher"
    # the report's plots read a log whose first row has empty cells
    assert (run / "report.md").is_file()


def test_a_resumed_run_takes_the_student_from_its_checkpoint_without_cutting_the_teacher_again(
        tmp_path, los_small_config, monkeypatch):
    from stkd.checkpoint import load_weights
    from stkd.models.students.stid import STID

    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(_config(los_small_config)))
    run = tmp_path / "run"
    assert main(["run", "--config", str(cfg), "--out", str(run), "--quiet"]) == 0
    before = load_weights(run / "models" / "stid_kd" / "model.safetensors")

    def no_cut(self, teacher, batches, teacher_batches=None):
        raise AssertionError("the student was cut from its teacher again on resume")

    monkeypatch.setattr(STID, "shrink_from", no_cut)
    assert main(["run", "--config", str(cfg), "--out", str(run), "--resume", "--quiet"]) == 0
    after = load_weights(run / "models" / "stid_kd" / "model.safetensors")
    assert before.keys() == after.keys() and all(before[k].equal(after[k]) for k in before)
    # a fresh run still cuts it (the patched cut is what the start goes through)
    with pytest.raises(AssertionError, match="cut from its teacher again"):
        main(["run", "--config", str(cfg), "--out", str(tmp_path / "fresh"), "--quiet"])


def test_a_student_wider_than_its_teacher_is_refused_before_the_run_folder_is_made(tmp_path, los_small_config,
                                                                                   capsys):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(_config(los_small_config, embed_dim=32)))
    run = tmp_path / "run"
    assert main(["run", "--config", str(cfg), "--out", str(run), "--quiet"]) == 2
    assert "window embedding is 32 wide, the teacher's 16" in capsys.readouterr().err
    assert not run.exists()


def test_distill_from_a_narrower_saved_teacher_is_refused_before_the_run_folder_is_made(tmp_path, los_small_config,
                                                                                       capsys):
    raw = _config(los_small_config)
    raw["distill"] = {"init": "random"}
    raw["teacher"]["params"] = {"embed_dim": 4, "node_dim": 4, "tod_dim": 4, "dow_dim": 4}
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(raw))
    assert main(["train", "--config", str(cfg), "--out", str(tmp_path / "teacher"), "--quiet"]) == 0
    out = tmp_path / "students"
    rc = main(["distill", "--teacher-run", str(tmp_path / "teacher"), "--set", "distill.init=teacher",
               "--out", str(out), "--quiet"])
    assert rc == 2
    assert "window embedding is 8 wide, the teacher's 4" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize("change, message", [
    ({"distill": {"init": "teachr"}}, "distill.init: 'teachr' is not one of random, teacher; did you mean 'teacher'"),
    ({"distill": {"init": "teacher"}, "teacher": {"name": "gwnet"}},
     "the first teacher is 'gwnet', the student 'stid'"),
])
def test_a_config_that_cannot_start_the_student_from_its_teacher_is_refused(change, message):
    raw = {"student": {"name": "stid"}, **change}
    with pytest.raises(ConfigError, match=message):
        parse_config(raw)


def test_a_student_starts_from_a_teacher_that_reads_more_than_it_does(tmp_path):
    """A privileged teacher (a longer history and yesterday's values) embeds a window the student lacks: the
    student's window block is fitted on what it reads (:mod:`stkd.models.students.stid_shrink`), and the
    start is scored as epoch 0, nearer the teacher than the plain student's first epoch."""
    raw = {"data": {"source": "builtin", "name": "synthetic-traffic",
                    "simulator": {"nodes": 16, "days": 4, "seed": 2}},
           "teacher": {"name": "stid", "params": WIDE, "inputs": {"length": 24, "lags": ["1D"]}},
           "student": {"name": "stid", "params": {"embed_dim": 8, "node_dim": 4, "tod_dim": 4, "dow_dim": 4}},
           "train": {"epochs": 2, "batch_size": 32, "max_batches": 3, "threads": 1},
           "distill": {"init": "teacher"}, "eval": {"latency_repeats": 2, "horizons": [3], "baselines": ["last"]}}
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(raw))
    run = tmp_path / "run"
    assert main(["run", "--config", str(cfg), "--out", str(run), "--quiet"]) == 0
    teacher = json.loads((run / "models" / "stid" / "model.json").read_text())
    student = json.loads((run / "models" / "stid_kd" / "model.json").read_text())
    assert (teacher["spec"]["input_len"], teacher["spec"]["in_features"]) == (24, 2)
    assert (student["spec"]["input_len"], student["spec"]["in_features"]) == (12, 1)
    kd = _log(run / "models" / "stid_kd" / "log.csv")
    plain = _log(run / "models" / "stid_plain" / "log.csv")
    assert [int(r["epoch"]) for r in kd] == [0, 1, 2] and kd[0]["loss_hard"] == ""
    assert float(kd[0]["val_mae"]) < float(plain[0]["val_mae"])  # the cut start against one epoch from the seed's
    # distilled again from the saved teacher: its card's inputs decide how the student is cut, as in the run
    again = tmp_path / "again"
    assert main(["distill", "--teacher-run", str(run), "--out", str(again), "--quiet"]) == 0
    assert _log(again / "models" / "stid_kd" / "log.csv")[0]["val_mae"] == kd[0]["val_mae"]


def test_an_event_classifier_starts_from_its_classifying_teacher_too(tmp_path):
    """The cut reads the models' structure only: an STID event classifier starts from a wider STID classifier."""
    raw = {"task": "classify",
           "data": {"source": "builtin", "name": "synthetic-traffic",
                    "simulator": {"nodes": 16, "days": 3, "incidents_per_day": 40, "seed": 1}},
           "teacher": {"name": "stid", "params": WIDE},
           "student": {"name": "stid", "params": {"embed_dim": 8, "node_dim": 4, "tod_dim": 4, "dow_dim": 4}},
           "train": {"epochs": 2, "batch_size": 32, "max_batches": 3, "threads": 1},
           "distill": {"init": "teacher"}, "eval": {"latency_repeats": 2, "horizons": [3]},
           "events": {"rule": "given", "source": "simulator"}}
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(raw))
    run = tmp_path / "run"
    assert main(["run", "--config", str(cfg), "--out", str(run), "--quiet"]) == 0
    kd = _log(run / "models" / "stid_kd" / "log.csv")
    assert [int(r["epoch"]) for r in kd] == [0, 1, 2] and kd[0]["loss_hard"] == ""
    assert [int(r["epoch"]) for r in _log(run / "models" / "stid_plain" / "log.csv")] == [1, 2]
