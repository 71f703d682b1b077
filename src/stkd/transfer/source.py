"""The source side of a transfer: a teacher trained on another place (or on the same sensors' longer
history), read from its finished run, and rebuilt on the target's sensors and graph with its weights.

Which teachers transfer where: a node embedding (STID's, Graph WaveNet's adaptive adjacency, AGCRN's) is
a row per sensor of the source; on other sensors (often another number of them) those rows mean nothing.
A model whose weights are all shared by the sensors (windows, clock and graph features in,
``STModel.node_agnostic``) runs on any graph, so its weights load on any target unchanged. A teacher with
per-node weights transfers only to the very sensors it learned, in the same order: a student retrained on
the recent weeks of the same network, taught by a teacher that learned from its archive.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path

import torch

from stkd.checkpoint import load_weights, read_model_card
from stkd.errors import ConfigError, STKDError
from stkd.models.registry import MODELS, build_model, model_class
from stkd.runs import Trained, load_run, require_run_dir
from stkd.steps import teacher_labels
from stkd.tasks.base import Task

#: Shape facts a source model must share with the target: the spec field and the config key that sets it.
MUST_MATCH = {"input_len": "data.window.input", "horizon": "data.window.horizon",
              "in_features": "the input features (targets and covariates)", "out_features": "data.target",
              "steps_per_day": "the step (data.freq)", "out_classes": "the task (forecast)"}


@dataclass
class SourceModel:
    """A trained teacher of the source run: what rebuilds it anywhere (registry name, hyper-parameters,
    the source's shape facts) and its weights."""

    run_dir: Path
    label: str  # its folder, models/<label>
    name: str  # registry name
    hparams: dict
    spec: dict  # the card's ModelSpec fields (the source data's shape)
    state: dict[str, torch.Tensor]
    data_name: str
    node_ids: list[str]  # the source's sensors, in its order
    per_node: bool  # it has per-node weights: it transfers to exactly these sensors only

    @property
    def nodes(self) -> int:
        return len(self.node_ids)


def node_agnostic_fix(name: str) -> str:
    """The setting that makes model ``name`` node-agnostic, as a user writes it (or what to use instead)."""
    params = model_class(name).node_agnostic_params
    if params is None:
        usable = [f"{n} ({', '.join(f'params.{k}: {json.dumps(v)}' for k, v in c.node_agnostic_params.items())})"
                  if c.node_agnostic_params else n
                  for n, c in MODELS.items() if c.role == "teacher" and c.node_agnostic_params is not None]
        return f"no setting of {name} removes them; train the source with {' or '.join(usable)}"
    return "set " + ", ".join(f"params.{k}: {json.dumps(v)}" for k, v in params.items())


def load_source(source_run: Path, teacher: str | None = None) -> SourceModel:
    """The teacher ``teacher`` (a folder name under ``models/``; default the run's first teacher) of a
    finished ``stkd train`` / ``stkd run`` folder. One with per-node weights is refused by
    :func:`source_task` unless the target has exactly its sensors."""
    source_run = require_run_dir(Path(source_run))
    cards = {}
    for mdir in sorted((source_run / "models").glob("*")):
        if (mdir / "model.json").is_file():
            card = read_model_card(mdir)
            if card.get("role") == "teacher" and card.get("task", "forecast") == "forecast":
                cards[mdir.name] = card
    if not cards:
        raise STKDError(f"{source_run} holds no trained forecast teacher (models/*/model.json with role teacher)")
    if teacher is None:
        order = teacher_labels(load_run(source_run)[0])
        teacher = min(cards, key=lambda n: order.index(n) if n in order else len(order))
    if teacher not in cards:
        raise STKDError(f"--teacher {teacher!r}: {source_run} holds the teachers {', '.join(sorted(cards))}")
    card = cards[teacher]
    if card.get("inputs"):  # lags of the source's history, or its own length or features: not the target's
        raise STKDError(f"source teacher {teacher} reads more than the plain window (inputs {card['inputs']}); "
                        "transfer a teacher trained on the plain window (no teacher.inputs section)")
    hparams = model_class(card["name"]).with_legacy_defaults(card["hparams"])
    summary = load_run(source_run)[1]
    state = load_weights(source_run / "models" / teacher / "model.safetensors")
    node_ids = [str(n) for n in summary.get("nodes", [])]
    return SourceModel(source_run, teacher, card["name"], hparams, dict(card["spec"]), state,
                       str(summary.get("name")), node_ids,
                       per_node=not model_class(card["name"]).node_agnostic(hparams))


def check_same_sensors(source: SourceModel, target_nodes: list[str]) -> None:
    """A source teacher with per-node weights needs the target's sensors to be its own, in its order; a
    ConfigError says which differ and how to train a teacher that transfers anywhere."""
    if not source.per_node or [str(n) for n in target_nodes] == source.node_ids:
        return
    known = set(source.node_ids)
    missing = [n for n in target_nodes if str(n) not in known]
    if missing:
        why = f"{len(missing)} of the target's {len(target_nodes)} sensors are not the source's (e.g. {missing[0]!r})"
    elif len(target_nodes) != len(source.node_ids):
        why = f"the target keeps {len(target_nodes)} of the source's {len(source.node_ids)} sensors"
    else:
        at = next(i for i, (a, b) in enumerate(zip(target_nodes, source.node_ids)) if str(a) != b)
        why = (f"the target orders them otherwise (sensor {at + 1} is {target_nodes[at]!r} there, "
               f"{source.node_ids[at]!r} in the source)")
    who = source.label if source.label == source.name else f"{source.label} ({source.name})"
    raise ConfigError(f"source teacher {who} has per-node weights (node embeddings or an "
                      f"adaptive N x N graph), so it transfers only to the sensors it learned, in their order, and "
                      f"{why}; to transfer to other sensors: {node_agnostic_fix(source.name)} (e.g. stkd train --set "
                      "teacher.params.<key>=<value>) and train the source again")


def source_task(task: Task, source: SourceModel) -> Task:
    """``task`` as the source model sees it: the target's windows, sensors and graph, with the source's
    day-of-week switch (its weights hold a day-of-week embedding or not, whatever the target's history
    covers). Shape facts the weights depend on must match, or a ConfigError names the setting; a teacher
    with per-node weights needs the source's very sensors (:func:`check_same_sensors`)."""
    check_same_sensors(source, list(task.wd.data.nodes))
    spec = task.spec()
    for key, setting in MUST_MATCH.items():
        want, have = source.spec.get(key, 1 if key == "out_classes" else None), getattr(spec, key)
        if want != have:
            raise ConfigError(f"source teacher {source.label} was trained with {key}={want} but the target has "
                              f"{have}; set {setting} of the target config as in the source run")
    out = copy.copy(task)
    out.wd = copy.copy(task.wd)  # shares every array; only the switch below differs
    out.wd.day_of_week = bool(source.spec.get("day_of_week", True))
    return out


def zero_shot(task: Task, source: SourceModel, run_dir: Path, label: str = "source_zero_shot") -> Trained:
    """The source teacher on the target's sensors and graph with its source weights, unchanged."""
    model = build_model(source.name, task.spec(), source.hparams)
    model.load_state_dict(source.state)  # strict: node-agnostic weights fit any N, per-node ones their own
    model.eval()
    return Trained(label, "teacher", model, source.name, 0.0, {}, run_dir=Path(run_dir))
