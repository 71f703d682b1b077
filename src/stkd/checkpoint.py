"""Model checkpoints: safetensors weights plus a JSON model card; loading never unpickles code.

A model directory ``models/<name>/`` holds ``model.safetensors`` (best weights), ``model.json``
(registry name, hyper-parameters, the data spec it was built for, its role) and, while training,
``last.safetensors`` + ``last.json`` (the resumable state: weights, optimizer moments, RNG state).
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from stkd.errors import STKDError
from stkd.io import atomic_path, read_json, write_json


def save_weights(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    """Atomically write a flat dict of tensors as safetensors."""
    with atomic_path(path) as tmp:
        try:
            save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp))
        except SafetensorError as e:  # an I/O failure (a full disk) as the OSError it is, for the CLI's message
            code = re.search(r"code: (\d+)", str(e))
            if code is None:
                raise
            raise OSError(int(code.group(1)), os.strerror(int(code.group(1))), str(path)) from None


def load_weights(path: Path, fix: str = "restore it from a backup, or re-train the model") -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file; an :class:`STKDError` naming the file and ``fix`` (what to do) when
    it is missing, truncated or not safetensors at all."""
    if not Path(path).is_file():
        raise STKDError(f"weights file {path} does not exist")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise STKDError(f"{path}: not a readable safetensors file, truncated or damaged "
                        f"({str(e).splitlines()[0][:160]}); {fix}") from None


def spec_to_dict(spec) -> dict:
    """The JSON-safe part of a ModelSpec (the adjacency comes from the data, not the checkpoint)."""
    d = asdict(spec)
    d.pop("adjacency", None)
    return d


def save_model(model_dir: Path, model: torch.nn.Module, name: str, spec, role: str, extra: dict | None = None) -> None:
    """Write best weights and the model card that rebuilds the model (rank 0 only under DDP)."""
    from stkd.distributed import is_rank0

    if not is_rank0():
        return
    model_dir = Path(model_dir)
    save_weights(model_dir / "model.safetensors", model.state_dict())
    card = {"name": name, "role": role, "hparams": dict(getattr(model, "hparams", {})),
            "spec": spec_to_dict(spec), **(extra or {})}
    write_json(model_dir / "model.json", card)


def read_model_card(model_dir: Path) -> dict:
    path = Path(model_dir) / "model.json"
    if not path.is_file():
        raise STKDError(f"{model_dir} holds no trained model (model.json missing)")
    return read_json(path, fix="restore it, or train the model again (stkd run --overwrite)")


def load_model(model_dir: Path, adjacency=None) -> tuple[torch.nn.Module, dict]:
    """Rebuild a model from its card and load its weights (``weights_only`` by construction)."""
    from stkd.models.base import ModelSpec
    from stkd.models.registry import build_model, model_class

    card = read_model_card(model_dir)
    spec = ModelSpec(**card["spec"], adjacency=adjacency)
    # a card saved before a hyper-parameter existed rebuilds the older model (the class knows which)
    model = build_model(card["name"], spec, model_class(card["name"]).with_legacy_defaults(card["hparams"]))
    state = load_weights(Path(model_dir) / "model.safetensors")
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise STKDError(f"{model_dir}: weights do not match model {card['name']!r} "
                        f"(missing {list(missing)[:5]}, unexpected {list(unexpected)[:5]})")
    model.eval()
    return model, card
