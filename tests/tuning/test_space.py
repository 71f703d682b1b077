"""The search space: defaults per task and student, a --space file's ranges, choices, fixed values and
nulls, its errors (unknown keys, values outside a key's domain, keys the task or student does not use),
and sampled values set into a valid run config."""

from __future__ import annotations

import pytest

from stkd import names
from stkd.config import EventsConfig, ModelConfig, RunConfig
from stkd.errors import ConfigError
from stkd.tuning.space import DOMAINS, Param, apply_values, build_space, default_space, read_space_file


def _cfg(student: str = "stid", task: str = "forecast", **params) -> RunConfig:
    events = EventsConfig(rule="threshold", value=40.0) if task == "classify" else None
    return RunConfig(task=task, student=ModelConfig(name=student, params=params), events=events)


def test_every_tunable_key_has_a_domain():
    assert set(DOMAINS) == set(names.TUNE_PARAMS)


def test_default_spaces_follow_the_task_and_the_student():
    forecast = default_space("forecast", "stid")
    assert set(forecast.params) == {"distill.alpha", "train.lr", "distill.loss", "student.width", "student.depth"}
    assert forecast.params["distill.loss"].choices == names.LOSSES
    assert forecast.params["train.lr"].log
    events = default_space("classify", "mlp")
    assert "distill.temperature" in events.params and "distill.loss" not in events.params
    assert set(default_space("forecast", "linear").params) == {"distill.alpha", "train.lr", "distill.loss"}


def test_a_space_file_narrows_fixes_and_removes_keys():
    raw = {"train.lr": {"low": "1e-4", "high": 1.0e-3, "log": True},  # YAML 1.1 reads 1e-4 as a string
           "distill.loss": ["huber", "l1"], "student.depth": 2, "student.width": None,
           "student.dropout": {"low": 0.0, "high": 0.3}, "distill.alpha": [0.5]}
    space = build_space(_cfg(), raw)
    assert space.params["train.lr"] == Param("train.lr", "float", 1e-4, 1e-3, log=True)
    assert space.params["distill.loss"].choices == ("huber", "l1")
    assert space.fixed == {"student.depth": 2, "distill.alpha": 0.5}  # one choice is a fixed value
    assert "student.width" not in space.params and "student.width" not in space.fixed
    assert space.params["student.dropout"].kind == "float"


@pytest.mark.parametrize("raw, message", [
    ({"train.lrr": 0.1}, "unknown key 'train.lrr'; did you mean 'train.lr'?"),
    ({"distill.temperature": 2.0}, "distill.temperature: task forecast does not use it"),
    ({"distill.alpha": {"low": 0.2, "high": 1.5}}, "distill.alpha: 1.5 lies outside [0, 1]"),
    ({"distill.loss": ["huber", "l3"]}, "'l3' is not one of l1, huber, mse"),
    ({"distill.loss": {"low": 1, "high": 2}}, "takes a list of choices"),
    ({"train.lr": {"low": 0.1}}, "a range is {low: .., high: .., log: true|false}"),
    ({"train.lr": {"low": 0.1, "high": 0.01}}, "low (0.1) is above high (0.01)"),
    ({"train.lr": {"low": 0.01, "high": 0.1, "log": "yes"}}, "log must be true or false"),
    ({"train.weight_decay": {"low": 0, "high": 0.1, "log": True}}, "a log range needs low > 0"),
    ({"student.depth": 1.5}, "student.depth: must be a whole number"),
    ({"train.lr": "fast"}, "train.lr: expected a number"),
    ({"train.lr": []}, "an empty list of choices"),
])
def test_bad_space_entries_name_the_key(raw, message):
    with pytest.raises(ConfigError, match=None) as e:
        build_space(_cfg(), raw)
    assert message in str(e.value)


def test_student_keys_the_student_does_not_have_are_errors():
    with pytest.raises(ConfigError, match="the linear student has no width"):
        build_space(_cfg("linear"), {"student.width": [8, 16]})
    with pytest.raises(ConfigError, match="task classify does not use it"):
        build_space(_cfg(task="classify"), {"distill.loss": ["l1"]})


def test_space_files_are_read_safely_and_must_be_mappings(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text("- train.lr\n")
    with pytest.raises(ConfigError, match="the top level must be a mapping"):
        read_space_file(path)
    path.write_text("!!python/object/apply:os.system ['true']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        read_space_file(path)
    with pytest.raises(ConfigError, match="does not exist"):
        read_space_file(tmp_path / "missing.yaml")
    path.write_text("")
    assert read_space_file(path) == {}


def test_values_set_the_config_and_the_students_own_parameters():
    cfg = apply_values(_cfg(node_dim=0), {"distill.alpha": 0.3, "distill.loss": "l1", "train.lr": 1e-3,
                                          "student.width": 32, "student.depth": 3, "student.dropout": 0.1})
    assert (cfg.distill.alpha, cfg.distill.loss, cfg.train.lr) == (0.3, "l1", 1e-3)
    assert cfg.student.params == {"embed_dim": 32, "node_dim": 0, "tod_dim": 32, "dow_dim": 32, "layers": 3,
                                  "dropout": 0.1}  # an embedding switched off stays off
    mlp = apply_values(_cfg("mlp", hidden=[64, 64]), {"student.width": 16})
    assert mlp.student.params["hidden"] == [16, 16]
    assert apply_values(_cfg("mlp"), {"student.depth": 3}).student.params["hidden"] == [64, 64, 64]


def test_a_tuned_learning_rate_reaches_a_student_with_its_own():
    """A student with its own ``lr`` (the default preset's) would not train at a tuned ``train.lr``: the
    tuned rate is set on it too, so each trial's student trains at the rate the trial drew."""
    import dataclasses

    cfg = _cfg()
    own = dataclasses.replace(cfg, student=dataclasses.replace(cfg.student, lr=8e-3))
    tuned = apply_values(own, {"train.lr": 1e-3})
    assert (tuned.train.lr, tuned.student.lr) == (1e-3, 1e-3)
    assert apply_values(cfg, {"train.lr": 1e-3}).student.lr is None  # none of its own: train.lr reaches it


def test_values_are_validated_like_any_config():
    with pytest.raises(ConfigError, match="distill.alpha: must lie in"):
        apply_values(_cfg(), {"distill.alpha": 2.0})
