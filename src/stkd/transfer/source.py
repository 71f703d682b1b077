"""The source side of a transfer: a teacher trained on another place, read from its finished run, checked
to have no per-node weight, and rebuilt on the target's sensors and graph with the source's weights.

Why node-agnostic: a node embedding (STID's, Graph WaveNet's adaptive adjacency, AGCRN's) is a row per
sensor of the source; the target has other sensors (often another number of them), so those rows mean
nothing there. A model whose weights are all shared by the sensors (windows, clock and graph features
in, ``STModel.node_agnostic``) runs on any graph, so its weights load on the target unchanged.
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
    nodes: int


def node_agnostic_fix(name: str) -> str:
    """The setting that makes model ``name`` node-agnostic, as a user writes it (or what to use instead)."""
    params = model_class(name).node_agnostic_params
    if params is None:
        usable = [f"{n} ({', '.join(f'params.{k}: {json.dumps(v)}' for k, v in c.node_agnostic_params.items())})"
                  if c.node_agnostic_params else n
                  for n, c in MODELS.items() if c.role == "teacher" and c.node_agnostic_params is not None]
        return f"no setting of {name} removes them; train the source with {' or '.join(usable)}"
    return "set " + ", ".join(f"params.{k}: {json.dumps(v)}" for k, v in params.items())


def check_node_agnostic(name: str, hparams: dict, what: str) -> None:
    """A ConfigError naming the parameter to set when ``name`` with ``hparams`` has per-node weights."""
    if model_class(name).node_agnostic(hparams):
        return
    raise ConfigError(f"{what} {name!r} has per-node weights (node embeddings or an adaptive N x N graph), so its "
                      f"weights mean nothing on other sensors: {node_agnostic_fix(name)} (e.g. stkd train --set "
                      f"teacher.params.<key>=<value>) and train the source again")


def load_source(source_run: Path, teacher: str | None = None) -> SourceModel:
    """The teacher ``teacher`` (a folder name under ``models/``; default the run's first teacher) of a
    finished ``stkd train`` / ``stkd run`` folder, refused when it is not node-agnostic."""
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
    if card.get("inputs"):
        raise STKDError(f"source teacher {teacher} reads more than the plain window (inputs {card['inputs']}); "
                        "transfer a teacher trained on the plain window (no teacher.inputs section)")
    hparams = model_class(card["name"]).with_legacy_defaults(card["hparams"])
    check_node_agnostic(card["name"], hparams, f"source teacher {teacher}")
    summary = load_run(source_run)[1]
    state = load_weights(source_run / "models" / teacher / "model.safetensors")
    return SourceModel(source_run, teacher, card["name"], hparams, dict(card["spec"]), state,
                       str(summary.get("name")), len(summary.get("nodes", [])))


def source_task(task: Task, source: SourceModel) -> Task:
    """``task`` as the source model sees it: the target's windows, sensors and graph, with the source's
    day-of-week switch (its weights hold a day-of-week embedding or not, whatever the target's history
    covers). Shape facts the weights depend on must match, or a ConfigError names the setting."""
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
    model.load_state_dict(source.state)  # strict: node-agnostic weights fit any N
    model.eval()
    return Trained(label, "teacher", model, source.name, 0.0, {}, run_dir=Path(run_dir))
