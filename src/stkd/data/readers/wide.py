"""``csv-wide``: one column per node, one row per step (Los-loop's ``los_speed.csv``)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from stkd.data.container import STData
from stkd.data.readers.common import (
    _TIME_NAMES,
    _apply_null,
    _check_policy,
    _check_sorted,
    _combine_duplicates,
    _finish,
    _fmt_time,
    _freq_timedelta,
    _grid,
    _is_number,
    _ns,
    _numeric_column,
    _parse_times,
    _preview,
    _read_csv,
    _Rows,
    _timestamp,
)
from stkd.errors import ConfigError, DataError


# ============================================================================ wide
def read_csv_wide(path: str | Path, *, time_column: str | None = None, start: str | None = None,
                  freq: str | None = None, duplicates: str = "error", null_value: float | None = None,
                  feature: str = "value", name: str | None = None) -> STData:
    """A wide CSV: one column per node, one row per step (Los-loop's ``los_speed.csv``).

    The timestamps come from ``time_column``, or from the first column when it holds timestamps (its
    name is time/date/timestamp, or its first value parses as one), or, for a file without timestamps,
    from ``start`` and ``freq`` (both required then: the steps of such a file are consecutive).

    Rows with timestamps must be in time order (a step back is an error naming the row); repeated
    timestamps are an error unless ``duplicates`` is mean, first or last; gaps become missing steps.

    Returns:
        STData with values ``[T, N, 1]`` (feature ``feature``), node ids from the header.
    """
    path = Path(path)
    _check_policy(duplicates)
    df, rows = _read_csv(path, "a wide CSV: one column per sensor, one row per time step")
    cols = [str(c) for c in df.columns]
    tcol = _wide_time_column(df, time_column, path)
    if tcol is None:
        if not start or not freq:
            missing = " and ".join(k for k, v in (("data.start", start), ("data.freq", freq)) if not v)
            raise ConfigError(f"{path}: the file has no timestamp column (its first column {cols[0]!r} holds "
                              f"values), so {missing} must give the first timestamp and the step "
                              "(e.g. start: '2012-03-01 00:00', freq: 5min); or name the column with "
                              "data.time_column")
        node_cols = cols
        _check_node_names(node_cols, path)
        vals = np.column_stack([_numeric_column(df[c], c, rows) for c in node_cols]) if node_cols \
            else np.empty((len(df), 0))  # [T, N]
        _apply_null(vals, null_value)
        index = pd.date_range(_timestamp(start, "data.start"), periods=len(df), freq=_freq_timedelta(freq))
        values = vals[:, :, None]  # [T, N, 1]
        meta = {"source": "csv-wide", "path": str(path)}
        return _finish(values, index, node_cols, [feature], [feature], name or path.stem, meta, path)
    node_cols = [c for c in cols if c != tcol]
    if not node_cols:
        raise DataError(f"{path}: only the timestamp column {tcol!r}; expected one column per sensor")
    _check_node_names(node_cols, path)
    times = _parse_times(df[tcol], tcol, rows)
    vals = np.column_stack([_numeric_column(df[c], c, rows) for c in node_cols])  # [R, N]
    return _wide_to_stdata(times, vals, node_cols, rows, tcol, freq, duplicates, null_value, feature,
                           name or path.stem, {"source": "csv-wide", "path": str(path)})


def _check_node_names(node_cols: list[str], path: Path) -> None:
    """Header cells are node ids; a blank one (pandas calls it ``Unnamed: k``) names no sensor."""
    for c in node_cols:
        if not c.strip() or c.startswith("Unnamed: "):
            raise DataError(f"{path}: a value column has no name in the header (column {c!r}); every sensor "
                            "column needs its node id as the header")


def _wide_time_column(df: pd.DataFrame, time_column: str | None, path: Path) -> str | None:
    """The timestamp column of a wide file: the configured one, or the first column if it holds
    timestamps. A numeric first column is data (Los-loop's first column is a sensor)."""
    cols = [str(c) for c in df.columns]
    if time_column is not None:
        if time_column not in cols:
            raise DataError(f"{path}: no column {time_column!r} (data.time_column); the header has {_preview(cols)}")
        return time_column
    first = df.iloc[:, 0]
    if pd.api.types.is_numeric_dtype(first) or pd.api.types.is_bool_dtype(first):
        return None
    if cols[0].strip().lower() in _TIME_NAMES:
        return cols[0]
    value = first.dropna()
    if not len(value) or _is_number(str(value.iloc[0])):  # a sensor column with a bad cell further down
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pd.Timestamp(str(value.iloc[0]))
        return cols[0]
    except (ValueError, TypeError):
        return None


def _wide_to_stdata(times: pd.DatetimeIndex, vals: np.ndarray, nodes: list[str], rows: _Rows, tcol: str,
                    freq: str | None, duplicates: str, null_value: float | None, feature: str, name: str,
                    meta: dict) -> STData:
    """Timestamped rows ``[R, N]`` -> regular ``[T, N, 1]``: order check, repeated rows, grid."""
    tz = times.tz
    t_ns = _ns(times)  # [R]
    _check_sorted(t_ns, rows, tz, tcol)
    _apply_null(vals, null_value)

    def describe(same: np.ndarray) -> str:
        where = ", ".join(rows.at(i) for i in same[:5])
        return f"{rows.path}: {where} repeat timestamp {_fmt_time(t_ns[same[0]], tz)}"

    keys, vals = _combine_duplicates([t_ns], vals, duplicates, describe)
    t_ns = keys[0]
    index, pos = _grid(t_ns, freq, tz, rows.at, rows.path)
    if len(np.unique(pos)) != len(pos):  # several timestamps in one step of an explicit freq: average
        g = pd.DataFrame(vals).groupby(pos, sort=True).mean()
        pos, vals = g.index.to_numpy(), g.to_numpy(dtype=np.float64)
    values = np.full((len(index), len(nodes), 1), np.nan, dtype=np.float64)  # [T, N, 1]
    values[pos, :, 0] = vals
    return _finish(values, index, nodes, [feature], [feature], name, meta, rows.path)


