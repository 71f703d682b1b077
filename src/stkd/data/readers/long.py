"""``csv-long`` / ``parquet-long``: records ``(time, node, value columns...)``."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from stkd.data.container import STData
from stkd.data.readers.common import (
    _apply_null,
    _check_file,
    _check_policy,
    _combine_duplicates,
    _finish,
    _fmt_time,
    _grid,
    _node_ids,
    _ns,
    _numeric_column,
    _parse_times,
    _preview,
    _read_csv,
    _Rows,
    _short,
)
from stkd.errors import ConfigError, DataError


# ============================================================================ long
def read_long(path: str | Path, *, time_column: str | None, node_column: str | None,
              target: Sequence[str] = (), covariates: Sequence[str] = (), encode: Sequence[str] = (),
              freq: str | None = None, duplicates: str = "error", null_value: float | None = None,
              fmt: str | None = None, name: str | None = None) -> STData:
    """Records ``(time, node, targets..., covariates...)`` from a CSV or parquet file, pivoted to
    ``[T, N, F]`` with ``F = targets + covariates``.

    Non-numeric covariates listed in ``encode`` become one-hot features named ``col=value`` (a blank
    category is missing in all of them); any other non-numeric cell is an error naming file, column,
    row and value. Blank and NA cells are missing. The record order does not matter (records are
    placed by timestamp); a repeated ``(timestamp, node)`` is an error unless ``duplicates`` is mean,
    first or last. The grid step is ``freq``, or inferred as the most common step (irregular steps are
    an error then); grid points without a record are missing. ``null_value`` marks missing targets.

    Args:
        fmt: ``csv`` or ``parquet``; by default from the suffix (``.parquet``/``.pq`` are parquet).
    """
    path = Path(path)
    _check_policy(duplicates)
    target, covariates, encode = list(target), list(covariates), list(encode)
    fmt = fmt or ("parquet" if path.suffix.lower() in (".parquet", ".pq") else "csv")
    if not time_column or not node_column:
        raise ConfigError(f"{path}: a long file needs data.time_column and data.node_column (the timestamp and "
                          "sensor id columns)")
    for c in encode:
        if c not in covariates:
            raise ConfigError(f"data.encode: {c!r} is not one of data.covariates {covariates}; only covariates "
                              "can be one-hot encoded (targets must be numbers)")
    df, rows = _read_long_frame(path, fmt, time_column, node_column, target, covariates)
    return long_frame(df, rows, path, time_column=time_column, node_column=node_column, target=target,
                      covariates=covariates, encode=encode, freq=freq, duplicates=duplicates,
                      null_value=null_value, name=name or path.stem, meta={"source": f"{fmt}-long", "path": str(path)})


def long_frame(df: pd.DataFrame, rows: _Rows, where: str | Path, *, time_column: str, node_column: str,
               target: Sequence[str] = (), covariates: Sequence[str] = (), encode: Sequence[str] = (),
               freq: str | None = None, duplicates: str = "error", null_value: float | None = None,
               name: str = "data", meta: dict | None = None) -> STData:
    """The checks and pivot of :func:`read_long` on records already in a DataFrame (from a file, an SQL
    query or the Python API); messages name ``where`` (a file, ``data.query``, ...) and ``rows``."""
    path = where
    _check_policy(duplicates)
    target, covariates, encode = list(target), list(covariates), list(encode)
    have = [str(c) for c in df.columns]
    missing = [c for c in dict.fromkeys([time_column, node_column, *target, *covariates]) if c not in have]
    if missing:
        raise DataError(f"{where}: no column(s) {missing}; the records have {_preview(have)}")
    if len(df) == 0:
        raise DataError(f"{where}: no records; expected ({time_column}, {node_column}, value columns...)")
    for c in encode:
        if c not in covariates:
            raise ConfigError(f"data.encode: {c!r} is not one of data.covariates {covariates}; only covariates "
                              "can be one-hot encoded (targets must be numbers)")
    if target:
        df = df[list(dict.fromkeys([time_column, node_column, *target, *covariates]))]
    if not target:
        rest = [c for c in map(str, df.columns) if c not in (time_column, node_column)]
        if len(rest) != 1:
            raise ConfigError(f"{path}: data.target is not set; name the value column(s) to forecast, one of "
                              f"{_preview(rest)}")
        target = rest
        df = df[[time_column, node_column, *target]]
    used = [time_column, node_column, *target, *covariates]
    dup_cfg = pd.Index(used)[pd.Index(used).duplicated()]
    if len(dup_cfg):
        raise ConfigError(f"{path}: column {dup_cfg[0]!r} is used twice among data.time_column, node_column, "
                          "target and covariates")

    times = _parse_times(df[time_column], time_column, rows)
    nodes_s = _node_ids(df[node_column], node_column, rows)
    features: list[str] = []
    blocks: list[np.ndarray] = []
    for c in target:
        v = _numeric_column(df[c], c, rows)
        _apply_null(v, null_value)
        blocks.append(v[:, None])
        features.append(c)
    for c in covariates:
        if c in encode:
            names, onehot = _one_hot(df[c], c)
            blocks.append(onehot)
            features.extend(names)
        else:
            hint = f"; to use {c!r} as categories list it in data.encode"
            blocks.append(_numeric_column(df[c], c, rows, hint)[:, None])
            features.append(c)
    clash = pd.Index(features)[pd.Index(features).duplicated()]
    if len(clash):
        raise DataError(f"{path}: feature name {clash[0]!r} arises twice (an encoded category clashes with a "
                        "column name); rename the column")
    vals = np.hstack(blocks)  # [R, F]

    tz = times.tz
    t_ns = _ns(times)  # [R]
    codes, uniques = pd.factorize(nodes_s, sort=False)  # node order: first appearance in the file

    def describe(same: np.ndarray) -> str:
        where = ", ".join(rows.at(i) for i in same[:5])
        return (f"{path}: {where} repeat timestamp {_fmt_time(t_ns[same[0]], tz)} for node "
                f"{str(uniques[codes[same[0]]])!r}")

    keys, vals = _combine_duplicates([t_ns, codes], vals, duplicates, describe)
    t_ns, codes = keys
    index, pos = _grid(t_ns, freq, tz, rows.at, Path(path))
    cell = pd.DataFrame({"p": pos, "n": codes})
    if cell.duplicated().any():  # several timestamps in one step of an explicit freq: average them
        g = pd.DataFrame(vals).groupby([cell["p"], cell["n"]], sort=False).mean()
        pos = np.asarray(g.index.get_level_values(0))
        codes = np.asarray(g.index.get_level_values(1))
        vals = g.to_numpy(dtype=np.float64)
    values = np.full((len(index), len(uniques), len(features)), np.nan, dtype=np.float64)  # [T, N, F]
    values[pos, codes] = vals
    return _finish(values, index, [str(u) for u in uniques], features, target, name, dict(meta or {}), Path(path))


def _read_long_frame(path: Path, fmt: str, time_column: str, node_column: str, target: list[str],
                     covariates: list[str]) -> tuple[pd.DataFrame, _Rows]:
    """Only the configured columns; checked to exist before the data is read."""
    what = f"a long {fmt} file of records ({time_column}, {node_column}, value columns...)"
    wanted = [time_column, node_column, *target, *covariates] if target else None
    if fmt == "csv":
        if wanted is None:
            df, rows = _read_csv(path, what, dtype={node_column: str})
            for c in (time_column, node_column):
                if c not in df.columns:
                    raise DataError(f"{path}: no column {c!r}; the header has {_preview(list(df.columns))}")
        else:
            df, rows = _read_csv(path, what, usecols=list(dict.fromkeys(wanted)), dtype={node_column: str})
        return df, rows
    if fmt != "parquet":
        raise ConfigError(f"{path}: unknown long format {fmt!r}; expected csv or parquet")
    _check_file(path, what)
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        names = pq.read_schema(path).names
    except (pa.ArrowException, OSError, ValueError) as e:
        raise DataError(f"{path}: not a readable parquet file ({_short(e)}); the file may be truncated; "
                        f"expected {what}") from None
    need = wanted or [time_column, node_column]
    missing = [c for c in need if c not in names]
    if missing:
        raise DataError(f"{path}: no column(s) {missing}; the file has {_preview(names)}")
    try:
        df = pd.read_parquet(path, columns=list(dict.fromkeys(wanted)) if wanted else None)
    except (pa.ArrowException, OSError, ValueError) as e:
        raise DataError(f"{path}: cannot read the parquet file ({_short(e)}); the file may be truncated; "
                        f"expected {what}") from None
    if len(df) == 0:
        raise DataError(f"{path}: the file holds no records; expected {what}")
    return df.reset_index(drop=True), _Rows(path)



def _one_hot(s: pd.Series, col: str) -> tuple[list[str], np.ndarray]:
    """Categories as 0/1 columns ``col=value`` (sorted values); a blank category is missing (NaN) in
    every one of them, not an all-zero row that would claim 'none of these'."""
    if pd.api.types.is_float_dtype(s):
        v = s.to_numpy()
        ok = ~np.isnan(v)
        if (v[ok] == np.round(v[ok])).all():
            s = pd.Series(np.where(ok, v, 0).astype(np.int64), index=s.index).astype(str).where(ok)
    present = s.notna().to_numpy()
    labels = s.astype(str).str.strip().where(present)
    cats = sorted(set(labels[present]))
    onehot = np.zeros((len(s), len(cats)), dtype=np.float64)  # [R, C]
    if cats:
        code = pd.Categorical(labels, categories=cats).codes
        hit = code >= 0
        onehot[np.flatnonzero(hit), code[hit]] = 1.0
    onehot[~present] = np.nan
    return [f"{col}={c}" for c in cats], onehot


