"""The files of one run directory as the report reads them (see the shape in :mod:`stkd.report`):
metrics.json (required), data.json, predictions and the data's timestamps. Shared by the plots and
the report.md assembly."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from stkd.errors import STKDError
from stkd.report.tables import _task


# ----------------------------------------------------------------------------- run directory
@dataclass
class _Run:
    """What the report reads from a run directory."""

    root: Path
    metrics: dict
    data: dict

    @property
    def task(self) -> str:
        """``forecast`` or ``classify``."""
        return _task(self.metrics)

    def prediction(self, name: str) -> np.ndarray | None:
        """``predictions/<name>.npy`` as an array, or None when absent or unreadable."""
        path = self.root / "predictions" / f"{name}.npy"
        if not path.is_file():
            return None
        try:
            return np.load(path, allow_pickle=False)
        except (OSError, ValueError):
            return None


def _read_json(path: Path) -> dict:
    """A JSON object from ``path``, or ``{}`` when the file is absent."""
    if not path.is_file():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))


def _load_run(run_dir: Path) -> _Run:
    """Read metrics.json (required) and data.json (optional) of ``run_dir``."""
    run_dir = Path(run_dir)
    mpath = run_dir / "metrics.json"
    if not mpath.is_file():
        raise STKDError(f"{mpath} not found: is {run_dir} a run directory written by `stkd run`?")
    return _Run(run_dir, _read_json(mpath), _read_json(run_dir / "data.json"))


def _step_delta(freq: Any):
    """The data's step as a ``pandas.Timedelta``, or None when ``freq`` is not a fixed frequency."""
    if not freq:
        return None
    try:
        import pandas as pd
        from pandas.tseries.frequencies import to_offset

        return pd.Timedelta(to_offset(str(freq)))
    except (ValueError, TypeError):
        return None


def _timestamps(run: _Run, steps: np.ndarray) -> np.ndarray | None:
    """Timestamps (``datetime64``) of data ``steps``: start + step * freq, or None if unknown."""
    delta = _step_delta(run.data.get("freq"))
    start = run.data.get("start")
    if delta is None or not start:
        return None
    import pandas as pd

    try:
        t0 = pd.Timestamp(start)
    except (ValueError, TypeError):
        return None
    if t0.tzinfo is not None:
        t0 = t0.tz_localize(None)
    return (t0 + pd.to_timedelta(steps * delta.value, unit="ns")).to_numpy()


