"""Build a :class:`~stkd.deploy.predictor.Predictor` from a run directory or an exported folder.

``stkd.load`` is :func:`load`. From a run directory the model is rebuilt from its safetensors weights
and model card (by default the distilled student: :func:`choose_model`), with the serving spec of
:func:`stkd.deploy.spec.spec_from_run`; from a folder written by ``stkd export`` the exported model runs
as it is (:func:`load_export`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from stkd.checkpoint import load_model, read_model_card
from stkd.deploy.backends import OnnxBackend, TorchBackend, TorchScriptBackend
from stkd.deploy.predictor import Predictor
from stkd.deploy.spec import SPEC_FILE, ServingSpec, serving_stats, spec_from_run
from stkd.errors import STKDError
from stkd.models.registry import model_class
from stkd.runs import load_run

ROLE_PREFERENCE = ("student_kd", "student_plain", "teacher")  # the default model of a run, best first


def needs_adjacency(card: dict) -> bool:
    """Whether rebuilding the model of this card needs the data's adjacency: the model class says so
    (:meth:`stkd.models.base.STModel.needs_adjacency`: the graph teachers, an STID reading its neighbours)."""
    return model_class(card["name"]).needs_adjacency(card.get("hparams") or {})


def is_export_dir(path: Path) -> bool:
    return (Path(path) / SPEC_FILE).is_file() and not (Path(path) / "config.yaml").is_file()


def list_models(run_dir: Path) -> dict[str, dict]:
    """``{name: model card}`` of every trained model in a run directory."""
    out = {}
    for mdir in sorted((Path(run_dir) / "models").glob("*")):
        if (mdir / "model.json").is_file() and (mdir / "model.safetensors").is_file():
            out[mdir.name] = read_model_card(mdir)
    return out


def choose_model(run_dir: Path, model: str | None = None) -> tuple[str, dict]:
    """The model to serve: ``model`` by name, else the distilled student (then plain student, teacher)."""
    cards = list_models(run_dir)
    if not cards:
        raise STKDError(f"{run_dir}: no trained model under models/ (is the run finished?)")
    if model is not None:
        if model not in cards:
            raise STKDError(f"{run_dir}: no model {model!r}; the run has {', '.join(cards)}")
        return model, cards[model]
    for role in ROLE_PREFERENCE:
        for name, card in cards.items():
            if card.get("role") == role:
                return name, card
    name = next(iter(cards))
    return name, cards[name]


def load(run_dir: str | Path, model: str | None = None, *, backend: str = "torch",
         threads: int | None = None, trust_code: bool = False) -> Predictor:
    """A :class:`Predictor` for a model of a run directory (or an exported folder).

    Args:
        run_dir: a run directory written by ``stkd run`` / ``stkd distill``, or a folder written by
            ``stkd export`` (then the exported model is used and ``backend`` is ignored).
        model: a model name of the run (``stkd_kd``, ``gwnet``, ...); default: the distilled student.
        backend: ``torch`` (default), ``onnx`` (exported in memory and run with onnxruntime) or
            ``torchscript``.
        threads: intra-op threads of the onnx backend (default: onnxruntime's choice).
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise STKDError(f"{run_dir}: no such directory (expected an stkd run directory)")
    if is_export_dir(run_dir):
        return load_export(run_dir, threads=threads, trust_code=trust_code)
    cfg, info = load_run(run_dir)
    name, card = choose_model(run_dir, model)
    stats = serving_stats(run_dir, cfg, info, need_adjacency=needs_adjacency(card))
    torch_model, card = load_model(run_dir / "models" / name, adjacency=stats.adjacency)
    spec = spec_from_run(run_dir, name, card, stats, info, cfg)
    pred = Predictor(spec, TorchBackend(torch_model), torch_model, run_dir)
    return pred.with_backend(backend, threads) if backend != "torch" else pred


def load_export(export_dir: str | Path, threads: int | None = None, trust_code: bool = False) -> Predictor:
    """A :class:`Predictor` over an exported folder (``deploy.json`` + ``model.onnx`` or ``model.pt``)."""
    export_dir = Path(export_dir)
    d = json.loads((export_dir / SPEC_FILE).read_text())
    seasonal = None
    if (export_dir / "seasonal_means.npy").is_file():
        seasonal = np.load(export_dir / "seasonal_means.npy", allow_pickle=False)
    spec = ServingSpec.from_json(d, seasonal)
    if (export_dir / "model.onnx").is_file():
        backend = OnnxBackend(export_dir / "model.onnx", threads)
    elif (export_dir / "model.pt").is_file():
        backend = TorchScriptBackend(export_dir / "model.pt")
    else:
        raise STKDError(f"{export_dir}: neither model.onnx nor model.pt")
    return Predictor(spec, backend, None, export_dir)
