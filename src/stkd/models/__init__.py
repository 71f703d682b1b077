"""Teachers and students behind one interface (docs/internals.md, section Models).

``build_model(name, spec, params)`` builds a registered model; ``model(x, tod, dow)`` returns
``{"pred": [B, H, N, out_features * out_classes], "hidden": [B, N, model.hidden_dim]}``;
``model.hparams`` is the JSON-safe dict that rebuilds it with the same spec.
"""

from stkd.models.base import ModelSpec, STModel, count_params, hyperparameters
from stkd.models.registry import (
    MODELS,
    STUDENTS,
    TEACHERS,
    build_model,
    model_class,
    model_defaults,
)

__all__ = [
    "MODELS",
    "STUDENTS",
    "TEACHERS",
    "ModelSpec",
    "STModel",
    "build_model",
    "count_params",
    "hyperparameters",
    "model_class",
    "model_defaults",
]
