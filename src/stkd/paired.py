"""Paired comparisons across seeds: is the distilled student better than the same student alone?

Each seed trains both arms from the same initial weights and batch order, so the per-seed difference
removes what the seed alone does. The gain of a seed is ``(plain - distilled) / plain`` (a relative
error reduction: positive = distillation helped); over seeds we report its mean, a 95 % percentile
bootstrap interval of that mean (resampling seeds), and the wins. A gain is **established** only when the
interval excludes zero; otherwise it is reported as "not established", however large the mean.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def paired_gain(plain: Sequence[float], distilled: Sequence[float], *, lower_is_better: bool = True,
                n_boot: int = 10_000, level: float = 0.95, seed: int = 0) -> dict:
    """Relative gain of ``distilled`` over ``plain`` (paired by position = seed).

    Returns ``{"n", "gains" (per seed, %), "mean" (%), "ci" ([low, high] %), "wins", "established"}``;
    ``established`` is True when the whole interval lies above zero (the gain) or below it (a loss:
    then ``mean`` is negative). For a score where higher is better (F1) pass ``lower_is_better=False``.
    """
    p, d = np.asarray(plain, dtype=float), np.asarray(distilled, dtype=float)
    if p.shape != d.shape or p.ndim != 1 or len(p) == 0:
        raise ValueError(f"plain and distilled need the same number (>= 1) of paired scores, got {p.shape}, {d.shape}")
    if not (np.isfinite(p).all() and np.isfinite(d).all()):
        raise ValueError("paired scores must be finite")
    diff = (p - d) if lower_is_better else (d - p)
    gains = 100.0 * diff / np.abs(p)  # [n] %
    rng = np.random.default_rng(seed)
    boot = gains[rng.integers(0, len(gains), size=(n_boot, len(gains)))].mean(axis=1)  # [n_boot]
    alpha = (1.0 - level) / 2.0
    low, high = (float(v) for v in np.quantile(boot, [alpha, 1.0 - alpha]))
    return {"n": int(len(gains)), "gains": [float(g) for g in gains], "mean": float(gains.mean()),
            "ci": [low, high], "wins": int((diff > 0).sum()), "established": bool(low > 0 or high < 0)}


def describe_gain(g: dict, what: str = "distillation", score: str | None = None) -> str:
    """One sentence computed from :func:`paired_gain`'s numbers (never canned). ``score``: the name of a
    higher-is-better score (e.g. ``"F1"``, with ``paired_gain(..., lower_is_better=False)``), so the
    sentence says the score rises or falls; default: an error that falls or rises."""
    ci = f"95 % interval {g['ci'][0]:+.1f} % to {g['ci'][1]:+.1f} %"
    wins = f"{g['wins']} of {g['n']} seeds"
    if score is not None:
        if g["established"] and g["mean"] > 0:
            return f"{what} raises {score} by {g['mean']:.1f} % on average ({ci}; better on {wins}): established."
        if g["established"]:
            return f"{what} lowers {score} by {-g['mean']:.1f} % on average ({ci}; better on {wins}): a loss."
        return f"{what} changes {score} by {g['mean']:+.1f} % on average ({ci}; better on {wins}): not established."
    if g["established"] and g["mean"] > 0:
        return f"{what} lowers the error by {g['mean']:.1f} % on average ({ci}; better on {wins}): established."
    if g["established"]:
        return f"{what} raises the error by {-g['mean']:.1f} % on average ({ci}; better on {wins}): a loss."
    return f"{what} changes the error by {-g['mean']:+.1f} % on average ({ci}; better on {wins}): not established."
