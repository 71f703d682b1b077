"""Paired comparisons across seeds: is the distilled student better than the same student alone?

Each seed trains both arms from the same initial weights and batch order, so the per-seed difference
removes what the seed alone does. The gain of a seed is ``(plain - distilled) / plain`` (a relative
error reduction: positive = distillation helped); over seeds we report its mean, a 95 % percentile
bootstrap interval of that mean (resampling seeds), and the wins. A gain is **established** only when
all three hold, otherwise it is reported as "not established", however large the mean:

- at least ``MIN_SEEDS`` seeds (with 3 seeds that all agree, the bootstrap interval is roughly their
  range, and 3 agreeing seeds happen 1 time in 4 by chance alone);
- the interval excludes zero;
- the gain is at least the seed spread: the plain arm's standard deviation over seeds, relative to its
  mean (a gain the seed alone can produce is not shown to come from the method).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: The fewest paired seeds that can establish a gain.
MIN_SEEDS = 5


def paired_gain(plain: Sequence[float], distilled: Sequence[float], *, lower_is_better: bool = True,
                n_boot: int = 10_000, level: float = 0.95, seed: int = 0, min_seeds: int = MIN_SEEDS) -> dict:
    """Relative gain of ``distilled`` over ``plain`` (paired by position = seed).

    Returns ``{"n", "gains" (per seed, %), "mean" (%), "ci" ([low, high] %), "wins", "spread" (%, None
    for one seed), "established", "why_not"}``; ``established`` is True when there are ``min_seeds`` seeds
    or more, the whole interval lies above zero (the gain) or below it (a loss: then ``mean`` is
    negative), and ``|mean|`` is at least the seed spread; ``why_not`` names the first rule that failed
    (None when established). For a score where higher is better (F1) pass ``lower_is_better=False``.
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
    mean = float(gains.mean())
    spread = float(100.0 * p.std(ddof=1) / np.abs(p.mean())) if len(p) > 1 and p.mean() != 0 else None
    why_not = None
    if len(gains) < min_seeds:
        why_not = f"{len(gains)} seed{'s' if len(gains) != 1 else ''}, {min_seeds} needed"
    elif not (low > 0 or high < 0):
        why_not = "the interval includes 0"
    elif spread is not None and abs(mean) < spread:
        why_not = f"smaller than the seed spread, {spread:.1f} %"
    return {"n": int(len(gains)), "gains": [float(g) for g in gains], "mean": mean, "ci": [low, high],
            "wins": int((diff > 0).sum()), "spread": spread, "established": why_not is None, "why_not": why_not}


def signed(value: float, digits: int = 1) -> str:
    """A mean gain with its sign at ``digits`` decimals, ``+0.0`` where it rounds to zero: a mean of
    -0.04 % is no loss, and "-0.0 %" would read as one."""
    text = f"{value:+.{digits}f}"
    return f"{0.0:+.{digits}f}" if float(text) == 0 else text


def bound(value: float) -> str:
    """An interval's end with its sign, to 0.1 % or, where that would round it to zero, to 0.01 %: whether
    an end lies below or above zero is what decides "established", so it must not be rounded away."""
    return f"{value:+.1f}" if abs(value) >= 0.05 else f"{value:+.2f}"


def gain_cell(g: dict) -> str:
    """A table cell of :func:`paired_gain`'s mean and interval: ``+0.4 % (+0.2 to +0.6)``."""
    return f"{signed(g['mean'])} % ({bound(g['ci'][0])} to {bound(g['ci'][1])})"


def verdict(g: dict) -> str:
    """``better`` / ``worse`` (established by :func:`paired_gain`'s rule) or ``not established``."""
    if not g["established"]:
        return f"not established ({g['why_not']})" if g.get("why_not") else "not established"
    return "better" if g["mean"] > 0 else "worse"


def describe_gain(g: dict, what: str = "distillation", score: str | None = None) -> str:
    """One sentence computed from :func:`paired_gain`'s numbers (never canned). ``score``: the name of a
    higher-is-better score (e.g. ``"F1"``, with ``paired_gain(..., lower_is_better=False)``), so the
    sentence says the score rises or falls; default: an error that falls or rises."""
    lo, hi = g["ci"]
    wins = f"{g['wins']} of {g['n']} seeds"
    why = f" ({g['why_not']})" if g.get("why_not") else ""

    def ci(sign: int) -> str:  # the interval of the quantity the sentence names, in the sentence's sign
        a, b = sorted((sign * lo, sign * hi))
        return f"95 % interval {bound(a)} % to {bound(b)} %"

    if score is not None:  # the gain is the score's rise
        if g["established"] and g["mean"] > 0:
            return f"{what} raises {score} by {g['mean']:.1f} % on average ({ci(1)}; better on {wins}): established."
        if g["established"]:
            return f"{what} lowers {score} by {-g['mean']:.1f} % on average ({ci(-1)}; better on {wins}): a loss."
        return f"{what} changes {score} by {signed(g['mean'])} % on average ({ci(1)}; better on {wins}): not established{why}."
    # the gain is the error's fall
    if g["established"] and g["mean"] > 0:
        return f"{what} lowers the error by {g['mean']:.1f} % on average ({ci(1)}; better on {wins}): established."
    if g["established"]:
        return f"{what} raises the error by {-g['mean']:.1f} % on average ({ci(-1)}; better on {wins}): a loss."
    # not "changes the error by +0.1 %": beside a table of gains, an error's rise read as a contradiction
    return f"the gain from {what} is {signed(g['mean'])} % on average ({ci(1)}; better on {wins}): not established{why}."
