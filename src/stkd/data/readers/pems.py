"""``pems-npz``: the PEMS03/04/07/08 ``data [T, N, F]`` arrays."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from stkd.data.container import STData
from stkd.data.readers.common import (
    _check_file,
    _finish,
    _freq_timedelta,
    _open_npz,
    _short,
    _timestamp,
)
from stkd.errors import ConfigError, DataError

PEMS_STARTS = {"pems03": "2018-09-01", "pems04": "2018-01-01", "pems07": "2017-05-01", "pems08": "2016-07-01"}
PEMS_FEATURES = ("flow", "occupancy", "speed")  # the channel order of PEMS04/08 (PEMS03/07: flow only)


# ============================================================================ PEMS npz
def read_pems_npz(path: str | Path, *, start: str | None = None, freq: str | None = None,
                  null_value: float | None = None, target: Sequence[str] = (), covariates: Sequence[str] = (),
                  name: str | None = None) -> STData:
    """A PEMS npz file (ASTGCN/STSGCN release): array ``data`` of shape ``[T, N, F]`` (or ``[T, N]``).

    The files carry no timestamps. ``freq`` defaults to 5min (every PEMS release is 5-minute). ``start``
    defaults to the known first day of PEMS03/04/07/08 when the file is named so (``PEMS_STARTS``:
    2018-09-01, 2018-01-01, 2017-05-01, 2016-07-01), so day-of-week inputs are right; for any other
    file it is required. Node ids are the row numbers ``"0" .. "N-1"`` that the PEMS distance CSV uses.

    Features are named flow, occupancy, speed (the PEMS04/08 channel order; one channel is flow).
    ``target`` (default: the first channel) comes first, then ``covariates`` (default none, the usual
    benchmark protocol of forecasting flow from flow).
    """
    path = Path(path)
    what = "a PEMS npz file with an array 'data' of shape [T, N, F]"
    _check_file(path, what)
    try:
        with _open_npz(path, what) as z:
            if "data" not in z.files:
                raise DataError(f"{path}: no array 'data' (arrays: {z.files}); expected {what}")
            arr = z["data"]
    except DataError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as e:
        raise DataError(f"{path}: not a readable npz file ({_short(e)}); the "
                        f"file may be truncated; expected {what}") from None
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or 0 in arr.shape:
        raise DataError(f"{path}: 'data' has shape {arr.shape}, expected [T, N, F] with T, N, F > 0")
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise DataError(f"{path}: 'data' holds {arr.dtype} values, expected numbers")
    T, N, F = arr.shape
    names = list(PEMS_FEATURES[:F]) if F <= len(PEMS_FEATURES) else [f"feature{i}" for i in range(F)]
    targets = list(target) or [names[0]]
    covs = list(covariates)
    for key, chosen in (("data.target", targets), ("data.covariates", covs)):
        unknown = [c for c in chosen if c not in names]
        if unknown:
            raise ConfigError(f"{key}: {unknown} not among the channels of {path.name}: {names}")
    if set(targets) & set(covs):
        raise ConfigError(f"data.covariates: {sorted(set(targets) & set(covs))} are targets already")
    order = [names.index(c) for c in targets + covs]
    values = arr[:, :, order].astype(np.float64)  # [T, N, F']
    if np.isinf(values).any():
        raise DataError(f"{path}: 'data' holds infinite values; expected finite numbers")
    if null_value is not None:
        t_vals = values[:, :, : len(targets)]
        t_vals[t_vals == null_value] = np.nan
    if start is None:
        start = PEMS_STARTS.get(path.stem.lower())
        if start is None:
            raise ConfigError(f"{path}: a PEMS npz file has no timestamps; set data.start to its first "
                              "timestamp (e.g. '2018-01-01 00:00')")
    index = pd.date_range(_timestamp(start, "data.start"), periods=T, freq=_freq_timedelta(freq or "5min"))
    meta = {"source": "pems-npz", "path": str(path)}
    return _finish(values, index, [str(i) for i in range(N)], targets + covs, targets, name or path.stem, meta, path)


