"""The model registry: names -> classes, and ``build_model`` that checks names and hyper-parameters."""

from __future__ import annotations

import difflib
from typing import Any

from stkd.errors import ConfigError
from stkd.models.base import ModelSpec, STModel, hyperparameters
from stkd.models.students.linear import LinearModel
from stkd.models.students.mlp import MLP
from stkd.models.students.stid import STID
from stkd.models.teachers.agcrn import AGCRN
from stkd.models.teachers.gwnet import GWNet
from stkd.models.teachers.staeformer import STAEformer

MODELS: dict[str, type[STModel]] = {
    "gwnet": GWNet,
    "staeformer": STAEformer,
    "agcrn": AGCRN,
    "mlp": MLP,
    "stid": STID,
    "linear": LinearModel,
}
TEACHERS: tuple[str, ...] = tuple(n for n, c in MODELS.items() if c.role == "teacher")
STUDENTS: tuple[str, ...] = tuple(n for n, c in MODELS.items() if c.role == "student")  # dense ops: export to ONNX


def model_class(name: str) -> type[STModel]:
    """The class registered as ``name`` (a ConfigError naming the valid names otherwise)."""
    if name not in MODELS:
        raise ConfigError(
            f"unknown model {name!r}{_suggest(str(name), list(MODELS))} "
            f"(teachers: {', '.join(TEACHERS)}; students: {', '.join(STUDENTS)})"
        )
    return MODELS[name]


def _suggest(key: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    return f"; did you mean {close[0]!r}?" if close else ""


def _check_type(model: str, key: str, value: Any, default: Any) -> None:
    """Values must have the default's type (int for float is fine); ``None`` defaults take anything."""
    if default is None:
        return
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif isinstance(default, (tuple, list)):
        ok = isinstance(value, (tuple, list)) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    else:
        ok = isinstance(value, type(default))
    if not ok:
        want = "a list of integers" if isinstance(default, (tuple, list)) else type(default).__name__
        raise ConfigError(f"{model}: params.{key} must be {want} (default {default!r}), got {value!r}")


def model_defaults(name: str) -> dict[str, Any]:
    """The hyper-parameters of a registered model and their defaults (``None``: chosen from the spec)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in hyperparameters(model_class(name)).items()}


def build_model(name: str, spec: ModelSpec, params: dict[str, Any] | None = None) -> STModel:
    """Build registered model ``name`` for ``spec`` with hyper-parameters ``params``.

    Raises ConfigError for an unknown model name, an unknown hyper-parameter name, a value of the
    wrong type, or a spec the model cannot handle (e.g. too many nodes), each saying what to change.
    """
    cls = model_class(name)
    params = dict(params or {})
    defaults = hyperparameters(cls)
    for key, value in params.items():
        if key not in defaults:
            raise ConfigError(
                f"{name}: unknown hyper-parameter params.{key}{_suggest(str(key), list(defaults))} "
                f"(valid: {', '.join(defaults)})"
            )
        _check_type(name, key, value, defaults[key])
    return cls(spec, **params)
