"""A partial config section extends the default it replaces (issue 17, item 10).

Before the fix a section was rebuilt from its dataclass's own field defaults, so ``student: {params:
{dropout: 0.1}}`` became ``ModelConfig(name='gwnet')``: the "student" silently was the big teacher.
"""

import copy

import pytest

from stkd.cli import apply_overrides
from stkd.config import RunConfig, parse_config, to_dict

DEFAULT = to_dict(RunConfig())

# (a partial section in YAML form, the dotted key it sets, the same as a --set override)
CASES = [
    ({"student": {"params": {"dropout": 0.1}}}, "student.params", "student.params.dropout=0.1"),
    ({"student": {"epochs": 3}}, "student.epochs", "student.epochs=3"),
    ({"student": {"inputs": {"length": 24}}}, "student.inputs", "student.inputs.length=24"),
    ({"teacher": {"epochs": 3}}, "teacher.epochs", "teacher.epochs=3"),
    ({"teacher": [{"params": {"dropout": 0.2}}]}, "teacher.params", "teacher.params.dropout=0.2"),
    ({"distill": {"alpha": 0.3}}, "distill.alpha", "distill.alpha=0.3"),
    ({"train": {"epochs": 2}}, "train.epochs", "train.epochs=2"),
    ({"eval": {"latency_repeats": 3}}, "eval.latency_repeats", "eval.latency_repeats=3"),
    ({"data": {"window": {"input": 24}}}, "data.window.input", "data.window.input=24"),
    ({"data": {"graph": {"k": 3}}}, "data.graph.k", "data.graph.k=3"),
    ({"data": {"simulator": {"nodes": 10}}}, "data.simulator.nodes", "data.simulator.nodes=10"),
]


def _without(d: dict, dotted: str) -> dict:
    """``d`` with the key ``dotted`` removed (teacher: from its first model)."""
    d = copy.deepcopy(d)
    node = d
    parts = dotted.split(".")
    for p in parts[:-1]:
        node = node[p][0] if isinstance(node[p], list) else node[p]
    node.pop(parts[-1])
    return d


@pytest.mark.parametrize("raw, key, override", CASES, ids=[c[1] for c in CASES])
def test_a_partial_section_keeps_every_other_default(raw, key, override):
    for cfg in (parse_config(raw), parse_config(apply_overrides({}, [override]))):
        assert cfg.student.name == "stid" and [t.name for t in cfg.teacher] == ["gwnet"]
        assert _without(to_dict(cfg), key) == _without(DEFAULT, key)


def test_the_student_without_a_name_stays_stid_with_its_params():
    cfg = parse_config({"student": {"params": {"dropout": 0.1}}})
    assert cfg.student.name == "stid" and cfg.student.params == {"dropout": 0.1}
    cfg = parse_config(apply_overrides({}, ["student.params.dropout=0.1"]))
    assert cfg.student.name == "stid" and cfg.student.params == {"dropout": 0.1}


def test_a_second_teacher_and_a_partial_events_section_get_the_class_defaults():
    cfg = parse_config({"teacher": [{"epochs": 2}, {"name": "agcrn"}],
                        "task": "classify", "events": {"value": 40.0}})
    assert [(t.name, t.epochs) for t in cfg.teacher] == [("gwnet", 2), ("agcrn", None)]
    assert cfg.events.rule == "threshold" and cfg.events.value == 40.0 and cfg.events.op == "<"


def test_merging_does_not_share_state_between_configs():
    a = parse_config({"student": {"params": {"dropout": 0.1}}})
    a.student.params["x"] = 1
    b = parse_config({"student": {"epochs": 2}})
    assert b.student.params == {}
