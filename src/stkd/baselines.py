"""Simple baselines reported beside the models, fitted on the train split only.

They answer "is the teacher worth it at all?": a model that cannot beat repeating the last value or
the usual value for this time of the week has learned nothing useful.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.linear_model import Ridge

from stkd import names
from stkd.progress import bar as progress_bar

BASELINES = tuple(names.BASELINES)  # config names; names.BASELINES maps them to their report rows
BASELINE_NAMES = names.BASELINES


class LastValue:
    """Repeat the last (imputed) input value over the horizon."""

    def __init__(self, data):
        self.data = data

    def __call__(self, batch) -> torch.Tensor:
        F_out = self.data.out_features
        last = batch.x[:, -1:, :, :F_out]  # [B, 1, N, F_out] scaled
        last = self.data.scaler.inverse(last, feature_slice=slice(0, F_out))
        return last.expand(-1, self.data.H, -1, -1)  # [B, H, N, F_out]


def seasonal_period(steps_per_day: int, train_steps: int) -> tuple[int, str]:
    """The longest natural period (a week, else a day) that the training part holds at least twice, in
    steps, and its name; ``(1, "none")`` when it holds not even two days.

    Why twice: with one cycle of training data every slot's "average" is a single reading, and with
    less than one most slots have none and fall back to the node's mean. Los-loop's 7 days give a
    training part of 4.9 days: two weeks are not there, so its profile is daily.
    """
    for days, name in ((7, "1 week"), (1, "1 day")):
        period = days * steps_per_day
        if period > 1 and train_steps >= 2 * period:
            return period, name
    return 1, "none"


class SeasonalAverage:
    """Mean of the observed target at the same slot of the period over the train part, per node.

    The period is :func:`seasonal_period`'s (a week when the training part holds two, else a day);
    ``period_name`` says which, and the report shows it. Slots nobody observed fall back to the node's
    mean over the training part."""

    def __init__(self, data, *, progress: bool = False):
        self.data = data
        T_train = data.splits["train"][1]
        self.period, self.period_name = seasonal_period(data.steps_per_day, T_train)
        F_out = data.out_features
        sums = np.zeros((self.period, data.num_nodes, F_out), np.float64)  # [period, N, F_out]
        counts = np.zeros_like(sums)
        for t0 in progress_bar(range(0, T_train, self.period), desc="baseline seasonal (fit)", unit="period",
                               progress=progress):  # one period at a time: no full-size temporaries
            t1 = min(t0 + self.period, T_train)
            raw = data.data.values[t0:t1, :, :F_out]  # [<=period, N, F_out], slots 0.. of this week
            mask = data.data.mask[t0:t1, :, :F_out]
            sums[: t1 - t0] += np.where(mask, raw, 0.0)
            counts[: t1 - t0] += mask
        overall = sums.sum(0) / np.maximum(counts.sum(0), 1)  # [N, F_out]
        profile = np.where(counts > 0, sums / np.maximum(counts, 1), overall[None])
        self.profile = torch.as_tensor(profile, dtype=torch.float32)  # [period, N, F_out]

    def __call__(self, batch) -> torch.Tensor:
        P, H = self.data.P, self.data.H
        steps = batch.start[:, None] + P + torch.arange(H)  # [B, H]
        return self.profile[steps % self.period]  # [B, H, N, F_out]


class RidgeWindow:
    """Ridge regression from a node's scaled input window to its scaled horizon, shared across nodes.

    Fitted on (a sample of at most ``max_rows`` node-windows of) the train split, on windows whose
    whole horizon was observed; predictions are inverse-scaled per node.
    """

    def __init__(self, data, alpha: float = 1.0, max_rows: int = 200_000, seed: int = 0, *, progress: bool = False):
        self.data = data
        F_out = data.out_features
        rng = np.random.default_rng(seed)
        starts = data.starts["train"]
        n_windows = max(1, min(len(starts), max_rows // max(1, data.num_nodes)))
        pick = np.sort(rng.choice(starts, size=n_windows, replace=False)) if n_windows < len(starts) else starts
        xs, ys, ms = [], [], []
        for i in progress_bar(range(0, len(pick), 512), desc="baseline ridge (fit)", unit="batch", progress=progress):
            b = data.batch(pick[i:i + 512])
            y_scaled = data.scaler.transform(b.y.clone(), feature_slice=slice(0, F_out))  # [B, H, N, F_out]
            xs.append(_node_rows(b.x))
            ys.append(_node_rows(y_scaled))
            ms.append(_node_rows(b.mask))
        X, Y, M = np.concatenate(xs), np.concatenate(ys), np.concatenate(ms)
        keep = M.all(1)  # rows whose whole horizon is observed
        if keep.sum() < 10:
            keep = np.ones(len(X), bool)
        self.model = Ridge(alpha=alpha).fit(X[keep], Y[keep])

    def __call__(self, batch) -> torch.Tensor:
        B, P, N, F = batch.x.shape
        H, F_out = self.data.H, self.data.out_features
        out = self.model.predict(_node_rows(batch.x))  # [B*N, H*F_out] scaled
        out = torch.as_tensor(out, dtype=torch.float32).reshape(B, N, H, F_out).permute(0, 2, 1, 3)
        return self.data.scaler.inverse(out, feature_slice=slice(0, F_out))  # [B, H, N, F_out]


def _node_rows(t: torch.Tensor) -> np.ndarray:
    """[B, S, N, F] -> [B*N, S*F]: one row per (window, node)."""
    B, S, N, F = t.shape
    return t.permute(0, 2, 1, 3).reshape(B * N, S * F).cpu().numpy()


def build_baseline(name: str, data, *, progress: bool = False):
    """The baseline ``name`` fitted on ``data``'s train part; with ``progress`` a bar ``baseline <name>
    (fit)`` while a fit takes a pass over the training data (seasonal, ridge)."""
    if name == "last":
        return LastValue(data)
    if name == "seasonal":
        return SeasonalAverage(data, progress=progress)
    if name == "ridge":
        return RidgeWindow(data, progress=progress)
    raise ValueError(name)
