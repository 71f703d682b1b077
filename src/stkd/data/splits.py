"""Chronological train/val/test splits and the window starts inside each split.

The split is by time, never shuffled: a model is judged on the future it has not seen. Windows that
would straddle two splits are dropped rather than shared, so no target step of a validation or test
window ever appears in a training window (tsl's temporal splitter does the same).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from stkd import names
from stkd.errors import ConfigError, DataError

SPLITS = names.SPLITS


def check_ratios(ratios: Sequence[float]) -> tuple[float, float, float]:
    """Validate three train/val/test shares; a clear error beats a silently skewed split."""
    try:
        r = tuple(float(x) for x in ratios)
    except (TypeError, ValueError):
        raise ConfigError(f"data.split: three numbers (train, val, test) expected, got {ratios!r}") from None
    if len(r) != 3 or not all(math.isfinite(x) and x >= 0 for x in r) or abs(sum(r) - 1.0) > 1e-6:
        total = sum(x for x in r if math.isfinite(x))
        raise ConfigError(f"data.split: three non-negative shares (train, val, test) summing to 1 expected, "
                          f"got {list(ratios)} (sum {total:.4g})")
    if r[0] <= 0:
        raise ConfigError(f"data.split: the train share must be positive, got {list(ratios)}")
    return r  # type: ignore[return-value]


def split_ranges(num_steps: int, ratios: Sequence[float]) -> dict[str, tuple[int, int]]:
    """Half-open step ranges ``{"train": (0, a), "val": (a, b), "test": (b, T)}`` in time order.

    Boundaries are the cumulative shares times ``T``, rounded to the nearest step, so the three ranges
    always tile ``[0, T)`` exactly. A zero share gives an empty range (``(a, a)``); callers that need
    windows in every split (``windows.prepare``) check lengths themselves.
    """
    if num_steps < 0:
        raise DataError(f"split_ranges: the number of steps must be >= 0, got {num_steps}")
    r_train, r_val, _ = check_ratios(ratios)
    a = min(num_steps, int(math.floor(num_steps * r_train + 0.5)))
    b = min(num_steps, max(a, int(math.floor(num_steps * (r_train + r_val) + 0.5))))
    return {"train": (0, a), "val": (a, b), "test": (b, num_steps)}


def num_windows(lo: int, hi: int, input_len: int, horizon: int) -> int:
    """How many windows of ``input_len + horizon`` steps fit entirely in ``[lo, hi)``."""
    return max(0, hi - lo - input_len - horizon + 1)


def window_starts(lo: int, hi: int, input_len: int, horizon: int) -> np.ndarray:
    """Starts ``s`` (int64) with ``lo <= s`` and ``s + P + H <= hi``: every window lies inside ``[lo, hi)``.

    Only integers are returned; windows are cut from the one data array when a batch is built, so
    windowing a year of 20,000 sensors costs 8 bytes per window, not a copy of the data per window.
    """
    if input_len < 1 or horizon < 1:
        raise ConfigError(f"data.window: input and horizon must be >= 1, got input={input_len}, horizon={horizon}")
    if hi < lo:
        raise DataError(f"window_starts: empty range [{lo}, {hi})")
    n = num_windows(lo, hi, input_len, horizon)
    return np.arange(lo, lo + n, dtype=np.int64)
