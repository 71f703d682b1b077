"""Input views: what one model reads of each window, when it reads more (or other) than the window.

A window is fixed by its start ``s``: inputs are steps ``s .. s+P-1``, targets ``s+P .. s+P+H-1``. A view
keeps the targets and the "now" (the last input step) and changes the inputs:

- ``length`` L: the L steps ending at ``s+P-1`` (L > P reads a longer history; steps before the data's
  first step read as the training mean, 0 after scaling);
- ``lags`` (in steps, each >= H): for every input step t, the values at ``t + H - lag`` as extra channels.
  At the last input step that is the lag's value at the last target time, so a one-day lag shows the
  model what happened over the forecast hours yesterday (all of it in the past, since lag >= H);
- ``features``: which data features it reads (a teacher may read covariates a student does without).

Channels are ``[features at t, features at t + H - lag_1, ...]``: ``len(features) * (1 + len(lags))``.
A privileged teacher's soft labels are computed on its own view of the same windows, so they line up
with the student's windows and targets (the soft-label cache is keyed by window start).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from stkd.config import InputsConfig
from stkd.errors import ConfigError


@dataclass(frozen=True)
class InputView:
    """A resolved view: input length L, lags in steps, the indices of the features read."""

    length: int
    lags: tuple[int, ...]
    features: tuple[int, ...]  # indices into the data's features

    def key(self) -> dict:
        return {"length": self.length, "lags": list(self.lags), "features": list(self.features)}


def lag_reach(lags, H: int) -> int:
    """Steps before a window's first input step that its lagged channels read (input step ``t`` reads
    ``t + H - lag``): the longest lag less the horizon, 0 without lags. Training's views and the serving
    path's history (``ServingSpec.history_len``) both reach back this far."""
    return max(lags) - H if len(lags) else 0


def resolve_view(inputs: InputsConfig | None, *, P: int, H: int, step: pd.Timedelta,
                 features: list[str], where: str = "inputs") -> InputView | None:
    """The view ``inputs`` describes for data with window ``P``/``H``, step ``step`` and ``features``; None
    when it is the plain window (every feature, P steps, no lags)."""
    if inputs is None:
        return None
    length = P if inputs.length is None else int(inputs.length)
    if length < 1:
        raise ConfigError(f"{where}.length: must be >= 1 step, got {inputs.length}")
    lags = []
    for text in inputs.lags:
        try:
            delta = pd.Timedelta(str(text))
        except (ValueError, TypeError):
            raise ConfigError(f"{where}.lags: {text!r} is not a duration like 1D, 7D or 12h") from None
        steps = delta / step if step > pd.Timedelta(0) else float("nan")
        if not float(steps).is_integer() or steps <= 0:
            raise ConfigError(f"{where}.lags: {text!r} is not a whole number of {step} steps")
        if steps < H:
            raise ConfigError(f"{where}.lags: {text!r} is {int(steps)} steps, shorter than the horizon ({H} steps): "
                              "it would read the future; use a lag of at least the horizon (e.g. 1D)")
        lags.append(int(steps))
    if inputs.features is None:
        idx = tuple(range(len(features)))
    else:
        unknown = [f for f in inputs.features if f not in features]
        if unknown or not inputs.features:
            raise ConfigError(f"{where}.features: {unknown or '[]'} not among the data's features {features}")
        idx = tuple(features.index(f) for f in inputs.features)
    view = InputView(length, tuple(lags), idx)
    plain = length == P and not lags and idx == tuple(range(len(features)))
    return None if plain else view
