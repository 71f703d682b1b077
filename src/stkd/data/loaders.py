"""Read spatio-temporal data from the common file formats into an :class:`STData`.

One entry point, :func:`load_data`, dispatches on ``DataConfig.source``; each format also has its own
reader that can be called directly:

- ``csv-wide``: :func:`read_csv_wide` (one column per node, one row per step; Los-loop);
- ``csv-long`` / ``parquet-long``: :func:`read_long` (records ``time, node, value columns...``);
- ``metr-la-h5``: :func:`read_metr_la_h5` (the METR-LA / PEMS-BAY HDF5 frame, DCRNN adjacency pickle);
- ``pems-npz``: :func:`read_pems_npz` (``data [T, N, F]``; distances CSV for the graph);
- ``builtin``: ``akl-pedestrians`` and ``los-loop`` (:mod:`stkd.data.builtin`) and ``synthetic-traffic``
  (the simulator); the names are listed in :data:`stkd.names.BUILTIN_DATASETS`.

Side files: :func:`read_locations` (node, latitude, longitude), :func:`read_adjacency` (csv, npy, npz or
a DCRNN pickle), :func:`read_distances` (from, to, cost).

What every reader guarantees (the :class:`STData` contract): values ``float32 [T, N, F]`` with NaN where
nothing was observed and the mask True where something was; a strictly increasing, regular index;
missing grid points are missing, never 0. What it refuses, with a :class:`DataError` naming the file,
the column, the row and the bad value: empty or truncated files, non-numeric cells, timestamps out of
order or repeated (unless ``duplicates`` says how to combine them), irregular steps without a ``freq``,
node ids that do not match between the data and its side files. Nothing here writes to any file.

Rows in messages are counted as a user sees them: ``row 1`` is the first data row (the header is not
a row), and for CSV files the line number in the file is given too.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import pickle
import threading
import warnings
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from stkd.config import DataConfig
from stkd.data.container import STData
from stkd.errors import ConfigError, DataError
from stkd import names
from stkd.names import BUILTIN_DATASETS

__all__ = [
    "load_data",
    "read_csv_wide",
    "read_long",
    "read_csv_long",
    "read_parquet_long",
    "read_metr_la_h5",
    "read_pems_npz",
    "read_dcrnn_pickle",
    "read_locations",
    "read_adjacency",
    "read_distances",
    "select",
    "PEMS_STARTS",
]

DUPLICATE_POLICIES = names.DUPLICATE_POLICIES
# Known start dates of the PEMS benchmark files (Guo et al., ASTGCN, AAAI 2019; Song et al., STSGCN,
# AAAI 2020): the npz files carry no timestamps, and a wrong start would give wrong day-of-week inputs.
PEMS_STARTS = {"pems03": "2018-09-01", "pems04": "2018-01-01", "pems07": "2017-05-01", "pems08": "2016-07-01"}
PEMS_FEATURES = ("flow", "occupancy", "speed")  # the channel order of PEMS04/08 (PEMS03/07: flow only)
# a grid this many times longer than the distinct timestamps means a stray timestamp, not gaps
MAX_GRID_BLOWUP = 20
_TIME_NAMES = {*names.TIME_COLUMNS, "unnamed: 0", ""}  # a wide file's index column may have no name


# ============================================================================ helpers
@dataclass
class _Rows:
    """Where a data row sits in its file, for messages: ``row 5 (line 6)``."""

    path: Path
    lines: np.ndarray | None = None  # [R] 1-based file line of each data row (CSV only)

    def at(self, i: int) -> str:
        s = f"row {int(i) + 1}"
        if self.lines is not None and 0 <= i < len(self.lines):
            s += f" (line {int(self.lines[i])})"
        return s


def _resolve(p: str | Path, base_dir: Path | None) -> Path:
    """A config path: absolute as given, relative to the config file's folder otherwise."""
    path = Path(p).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    return path


def _check_file(path: Path, what: str) -> None:
    if not path.exists():
        raise DataError(f"{path}: no such file (expected {what})")
    if not path.is_file():
        raise DataError(f"{path}: not a file (expected {what})")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty (expected {what})")


def _freq_timedelta(freq: str, key: str = "data.freq") -> pd.Timedelta:
    """A fixed step from a pandas frequency string; calendar steps (month, business day) have no fixed
    length, so a regular grid cannot be built on them."""
    try:
        step = pd.Timedelta(pd.tseries.frequencies.to_offset(freq))
    except (ValueError, TypeError):
        raise ConfigError(f"{key}: {freq!r} is not a fixed frequency like 5min, 15min, 1h or 1D") from None
    if step <= pd.Timedelta(0):
        raise ConfigError(f"{key}: must be a positive step, got {freq!r}")
    return step


def _ns(index: pd.DatetimeIndex) -> np.ndarray:
    """Timestamps as int64 nanoseconds (UTC for tz-aware): pandas 3 parses to us or s resolution, and
    grid arithmetic needs one unit."""
    return index.as_unit("ns").asi8


def _fmt_time(ns: int, tz) -> str:
    ts = pd.Timestamp(int(ns), unit="ns", tz="UTC").tz_convert(tz) if tz is not None else pd.Timestamp(int(ns))
    return str(ts)


def _numeric_column(s: pd.Series, col: str, rows: _Rows, hint: str = "") -> np.ndarray:
    """One value column as float64 with NaN for missing; a cell that is neither a number nor blank/NA is
    an error naming it (a silent NaN would hide a broken export)."""
    if pd.api.types.is_bool_dtype(s):
        arr = s.astype("float64").to_numpy()
    elif pd.api.types.is_numeric_dtype(s):
        arr = s.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        if pd.api.types.is_datetime64_any_dtype(s) or isinstance(s.dtype, pd.PeriodDtype):
            raise DataError(f"{rows.path}: column {col!r} holds timestamps ({s.dtype}), expected numbers{hint}")
        try:
            conv = pd.to_numeric(s, errors="coerce")
        except (TypeError, ValueError):
            conv = pd.Series([_to_float_or_nan(v) for v in s], index=s.index)
        bad = (conv.isna() & s.notna()).to_numpy()
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataError(f"{rows.path}: column {col!r}, {rows.at(i)}: {s.iloc[i]!r} is not a number "
                            f"(expected numbers, blank or NA for missing; {int(bad.sum())} such cell(s) in "
                            f"this column){hint}")
        arr = conv.to_numpy(dtype=np.float64, na_value=np.nan)
    inf = np.isinf(arr)
    if inf.any():
        i = int(np.flatnonzero(inf)[0])
        raise DataError(f"{rows.path}: column {col!r}, {rows.at(i)}: {arr[i]} is infinite "
                        "(expected a finite number, or blank/NA for missing)")
    return arr


def _to_float_or_nan(v) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return np.nan


def _parse_times(s: pd.Series, col: str, rows: _Rows) -> pd.DatetimeIndex:
    """A timestamp column as a DatetimeIndex; unparsable or blank cells are errors naming the row.

    Tries the fast inferred format first, then ISO 8601 variants, then per-value parsing, so a column
    mixing ``2020-01-01`` and ``2020-01-01 00:05`` still reads. Mixed UTC offsets (local time across a
    DST change written with offsets) are converted to UTC.
    """
    if pd.api.types.is_datetime64_any_dtype(s):
        t = pd.DatetimeIndex(s)
    elif pd.api.types.is_numeric_dtype(s) and not s.isna().all():
        raise DataError(f"{rows.path}: column {col!r} holds numbers ({s.dtype}), expected timestamps such as "
                        "2020-01-01 00:05 (epoch numbers are ambiguous: convert them to timestamps first)")
    else:
        t = None
        for kw in ({}, {"format": "ISO8601"}, {"format": "mixed"}):
            for utc in (False, True):
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        t = pd.DatetimeIndex(pd.to_datetime(s, utc=utc, **kw))
                    break
                except (ValueError, TypeError, OverflowError) as e:
                    if utc or "utc=True" not in str(e):
                        break
            if t is not None:
                break
        if t is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                coerced = pd.to_datetime(s, errors="coerce", format="mixed", utc=True)
            bad = (coerced.isna() & s.notna()).to_numpy()
            i = int(np.flatnonzero(bad)[0]) if bad.any() else 0
            raise DataError(f"{rows.path}: column {col!r}, {rows.at(i)}: {s.iloc[i]!r} is not a timestamp "
                            "(expected e.g. 2020-01-01 00:05)")
    missing = np.asarray(t.isna())
    if missing.any():
        i = int(np.flatnonzero(missing)[0])
        raise DataError(f"{rows.path}: column {col!r}, {rows.at(i)}: the timestamp is blank; every row needs one")
    try:
        return t.as_unit("ns")
    except (ValueError, OverflowError):
        raise DataError(f"{rows.path}: column {col!r}: timestamps outside 1677-2262 are not supported") from None


def _check_sorted(t_ns: np.ndarray, rows: _Rows, tz, col: str) -> None:
    """Rows of a wide file are steps in order: a step back in time means rows were shuffled or two files
    were concatenated, which a silent sort would hide."""
    back = np.diff(t_ns) < 0
    if back.any():
        i = int(np.flatnonzero(back)[0]) + 1
        raise DataError(f"{rows.path}: column {col!r}, {rows.at(i)}: timestamp {_fmt_time(t_ns[i], tz)} comes "
                        f"before the previous row's {_fmt_time(t_ns[i - 1], tz)}; the rows of a wide file must "
                        "be in time order")


def _combine_duplicates(keys: list[np.ndarray], vals: np.ndarray, policy: str,
                        describe: Callable[[np.ndarray], str]) -> tuple[list[np.ndarray], np.ndarray]:
    """Rows repeating a key (timestamp, or timestamp and node): an error naming them, or combined by the
    configured policy (``mean`` of the observed values, or the ``first`` / ``last`` row as a whole).

    Args:
        keys: per-row key arrays, each ``[R]``.
        vals: ``[R, K]`` float64 values.
        describe: builds the message from the row positions of the first repeated key.
    """
    kdf = pd.DataFrame({f"k{i}": k for i, k in enumerate(keys)})
    dup = kdf.duplicated(keep=False).to_numpy()
    if not dup.any():
        return keys, vals
    if policy == "error":
        j = int(np.flatnonzero(kdf.duplicated(keep="first").to_numpy())[0])
        same = np.flatnonzero((kdf == kdf.iloc[j]).all(axis=1).to_numpy())
        n_rep = int(kdf.duplicated(keep="first").sum())
        raise DataError(f"{describe(same)} ({n_rep} repeated row(s) in all); set data.duplicates to mean, "
                        "first or last to combine repeated rows")
    if policy in ("first", "last"):
        keep = ~kdf.duplicated(keep=policy).to_numpy()
        return [k[keep] for k in keys], vals[keep]
    g = pd.DataFrame(vals).groupby([kdf[c] for c in kdf.columns], sort=False).mean()  # NaN skipped
    idx = g.index
    new_keys = [np.asarray(idx.get_level_values(i)) for i in range(len(keys))] if len(keys) > 1 \
        else [np.asarray(idx)]
    return new_keys, g.to_numpy(dtype=np.float64)


def _grid(t_ns: np.ndarray, freq: str | None, tz, describe_row: Callable[[int], str],
          path: Path) -> tuple[pd.DatetimeIndex, np.ndarray]:
    """Place timestamps on a regular grid.

    Without ``freq`` the step is the most common gap between distinct timestamps; gaps that are whole
    multiples of it are missing steps, anything else is an irregular series (an error: guessing a
    resampling would invent data). With ``freq`` the grid starts at the first timestamp and each
    timestamp falls into the step that contains it (several in one step are averaged later).

    Args:
        t_ns: ``[R]`` int64 ns timestamps (one per record, repeats allowed).
        describe_row: names a record by position, for messages.
    Returns:
        the grid index ``[T]`` and each record's position on it ``[R]``.
    """
    u = np.unique(t_ns)  # [U] sorted distinct timestamps
    t0 = int(u[0])
    if freq is not None:
        step = int(_freq_timedelta(freq).as_unit("ns").value)
    elif len(u) == 1:
        step = None
    else:
        d = np.diff(u)  # [U-1]
        steps, counts = np.unique(d, return_counts=True)
        step = int(steps[np.argmax(counts)])  # ties: the smallest of the most common steps
        off = (u - t0) % step != 0
        if off.any():
            k = int(np.flatnonzero(off)[0])
            r = int(np.flatnonzero(t_ns == u[k])[0])
            raise DataError(
                f"{path}: irregular time steps: {describe_row(r)} has timestamp {_fmt_time(u[k], tz)}, "
                f"{pd.Timedelta(int(u[k] - u[k - 1]))} after the previous timestamp {_fmt_time(u[k - 1], tz)}, "
                f"while the most common step is {pd.Timedelta(step)}; set data.freq (e.g. "
                f"{_alias(step)}) to place the readings on a regular grid")
    if step is None:
        pos = np.zeros(len(t_ns), dtype=np.int64)
        T = 1
    else:
        pos = (t_ns - t0) // step  # [R]
        T = int(pos.max()) + 1
        if T > MAX_GRID_BLOWUP * len(u) and T > 10_000:
            gaps = np.diff(u)
            k = int(np.argmax(gaps)) + 1
            r = int(np.flatnonzero(t_ns == u[k])[0])
            raise DataError(
                f"{path}: the timestamps span {T} steps of {pd.Timedelta(step)} but only {len(u)} are present; "
                f"the largest gap is {pd.Timedelta(int(gaps[k - 1]))} before {describe_row(r)} "
                f"({_fmt_time(u[k], tz)}); check for a stray timestamp or a data.freq that is too fine")
    start = pd.Timestamp(t0, unit="ns", tz="UTC").tz_convert(tz) if tz is not None else pd.Timestamp(t0, unit="ns")
    index = pd.date_range(start=start, periods=T, freq=pd.Timedelta(step) if step else "1D")
    return index, pos


def _short(e: BaseException) -> str:
    """A one-line cause for a message (HDF5 errors carry a whole C back trace)."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    if not lines:
        return type(e).__name__
    text = lines[-1] if "back trace" in lines[0] else lines[0]
    return f"{type(e).__name__}: {text[:200]}"


def _alias(step_ns: int) -> str:
    try:
        return pd.tseries.frequencies.to_offset(pd.Timedelta(step_ns)).freqstr
    except ValueError:
        return str(pd.Timedelta(step_ns))


def _finish(values: np.ndarray, index: pd.DatetimeIndex, nodes: Sequence[str], features: list[str],
            targets: list[str], name: str, meta: dict, path: Path) -> STData:
    """Cast to the contract's float32 (checking nothing overflowed) and build the container."""
    with np.errstate(over="ignore"):
        v32 = values.astype(np.float32, copy=False)  # [T, N, F]
    if np.isinf(v32).any():
        raise DataError(f"{path}: values beyond the float32 range (|x| > 3.4e38); rescale the data")
    return STData.from_values(v32, index, list(nodes), features, targets, name=name, meta=meta)


def _apply_null(vals: np.ndarray, null_value: float | None) -> None:
    """A sentinel (METR-LA writes 0 for a failed reading) means missing; done in place."""
    if null_value is not None:
        vals[vals == null_value] = np.nan


# ============================================================================ CSV
def _read_raw(path: Path) -> bytes:
    """The file's bytes (gzip-decompressed for ``.gz``), without a UTF-8 byte-order mark."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise DataError(f"{path}: cannot read the file ({e})") from None
    return raw[len(codecs.BOM_UTF8):] if raw.startswith(codecs.BOM_UTF8) else raw


def _field_counts(raw: bytes, path: Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Header fields, then per data line its field count and 1-based line number (blank lines skipped).

    pandas fills a short row with NaN without a word, so a file cut off mid-row would load as missing
    values; counting fields here catches that. Files without quotes are counted with numpy (fast for
    large files); files with quoted fields go through the csv module.
    """
    if b'"' not in raw:
        buf = np.frombuffer(raw, dtype=np.uint8)
        nl = np.flatnonzero(buf == 10)  # [L]
        starts = np.concatenate([[0], nl + 1])
        ends = np.concatenate([nl, [len(buf)]])
        if len(raw) and raw.endswith(b"\n"):
            starts, ends = starts[:-1], ends[:-1]
        length = ends - starts
        cr_only = (length == 1) & (buf[np.minimum(starts, len(buf) - 1)] == 13) if len(buf) else length > 0
        blank = (length == 0) | cr_only
        commas = np.flatnonzero(buf == 44)
        fields = np.searchsorted(commas, ends) - np.searchsorted(commas, starts) + 1
        line_no = np.arange(1, len(starts) + 1)
        keep = ~blank
        fields, line_no, starts, ends = fields[keep], line_no[keep], starts[keep], ends[keep]
        if not len(fields):
            return [], fields, line_no
        header_text = raw[starts[0]:ends[0]].decode("utf-8", errors="replace").rstrip("\r")
        header = next(csv.reader([header_text]))
        return header, fields[1:], line_no[1:]
    text = raw.decode("utf-8", errors="replace")
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] = []
    counts, lines = [], []
    prev = 0
    for row in reader:
        start = prev + 1
        prev = reader.line_num
        if not row:
            continue
        if not header:
            header = row
            continue
        counts.append(len(row))
        lines.append(start)
    return header, np.asarray(counts, dtype=np.int64), np.asarray(lines, dtype=np.int64)


def _read_csv(path: Path, what: str, usecols: list[str] | None = None,
              dtype: dict | None = None) -> tuple[pd.DataFrame, _Rows]:
    """``pd.read_csv`` with the checks pandas does not make: empty file, header only, duplicate column
    names (pandas would rename them ``x.1``), rows with a wrong number of fields (a truncated file)."""
    _check_file(path, what)
    raw = _read_raw(path)
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text (byte {e.start}); expected {what}") from None
    header, fields, lines = _field_counts(raw, path)
    if not header:
        raise DataError(f"{path}: the file holds no header row (only blank lines); expected {what}")
    seen: dict[str, int] = {}
    for i, name in enumerate(header):
        if name in seen and name.strip():
            raise DataError(f"{path}: column name {name!r} appears twice in the header (columns {seen[name] + 1} "
                            f"and {i + 1}); expected unique names")
        seen.setdefault(name, i)
    if not len(fields):
        raise DataError(f"{path}: the file has a header but no data rows; expected {what}")
    wrong = fields != len(header)
    if wrong.any():
        i = int(np.flatnonzero(wrong)[0])
        last = i == len(fields) - 1
        why = "the file looks truncated" if last and fields[i] < len(header) else "a row is malformed"
        raise DataError(f"{path}: line {int(lines[i])} (row {i + 1}) has {int(fields[i])} field(s) but the "
                        f"header has {len(header)}; {why} ({int(wrong.sum())} such row(s)); expected {what}")
    if usecols is not None:
        missing = [c for c in usecols if c not in header]
        if missing:
            raise DataError(f"{path}: no column(s) {missing}; the header has {_preview(header)}")
    try:
        df = pd.read_csv(io.BytesIO(raw), usecols=usecols, dtype=dtype, low_memory=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot parse the CSV ({_short(e)}); expected {what}") from None
    if len(df) == 0:
        raise DataError(f"{path}: the file has a header but no data rows; expected {what}")
    rows = _Rows(path, lines if len(lines) == len(df) else None)
    return df, rows


def _preview(items: Sequence, k: int = 8) -> str:
    items = [str(x) for x in items]
    more = f", ... ({len(items)} in all)" if len(items) > k else ""
    return "[" + ", ".join(repr(x) for x in items[:k]) + more + "]"


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


def _timestamp(value: str, key: str) -> pd.Timestamp:
    try:
        return pd.Timestamp(value)
    except (ValueError, TypeError):
        raise ConfigError(f"{key}: {value!r} is not a timestamp (expected e.g. '2012-03-01 00:00')") from None


def _check_policy(duplicates: str) -> None:
    if duplicates not in DUPLICATE_POLICIES:
        raise ConfigError(f"data.duplicates: {duplicates!r} is not one of {', '.join(DUPLICATE_POLICIES)}")


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
    index, pos = _grid(t_ns, freq, tz, rows.at, path)
    cell = pd.DataFrame({"p": pos, "n": codes})
    if cell.duplicated().any():  # several timestamps in one step of an explicit freq: average them
        g = pd.DataFrame(vals).groupby([cell["p"], cell["n"]], sort=False).mean()
        pos = np.asarray(g.index.get_level_values(0))
        codes = np.asarray(g.index.get_level_values(1))
        vals = g.to_numpy(dtype=np.float64)
    values = np.full((len(index), len(uniques), len(features)), np.nan, dtype=np.float64)  # [T, N, F]
    values[pos, codes] = vals
    meta = {"source": f"{fmt}-long", "path": str(path)}
    return _finish(values, index, [str(u) for u in uniques], features, target, name or path.stem, meta, path)


def read_csv_long(path: str | Path, **kw) -> STData:
    """:func:`read_long` for a CSV file."""
    return read_long(path, fmt="csv", **kw)


def read_parquet_long(path: str | Path, **kw) -> STData:
    """:func:`read_long` for a parquet file."""
    return read_long(path, fmt="parquet", **kw)


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


def _node_ids(s: pd.Series, col: str, rows: _Rows) -> pd.Series:
    """Node ids as strings; whole-number floats (an integer column with a blank) lose the ``.0``."""
    missing = s.isna().to_numpy()
    if missing.any():
        i = int(np.flatnonzero(missing)[0])
        raise DataError(f"{rows.path}: column {col!r}, {rows.at(i)}: the node id is blank; every record needs one")
    if pd.api.types.is_float_dtype(s):
        v = s.to_numpy()
        if (v == np.round(v)).all():
            return pd.Series(v.astype(np.int64)).astype(str)
    return s.astype(str).str.strip().reset_index(drop=True)


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


# ============================================================================ METR-LA h5 + DCRNN pickle
_PICKLE_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("_codecs", "encode"),  # how protocol-2 pickles written by Python 3 store bytes
    *((m, n) for m in ("builtins", "__builtin__") for n in ("list", "dict", "tuple", "set", "frozenset",
                                                            "bytearray", "str", "int", "float", "complex")),
}


class _RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that builds only plain containers and numpy arrays.

    A pickle can call any importable function while loading (``os.system`` included), so a data file
    from the internet must not be loaded with plain ``pickle.load``. A DCRNN adjacency file needs
    nothing beyond numpy array reconstruction and builtin containers; anything else is refused.
    """

    def __init__(self, file, where: str, extra: Callable[[str, str], bool] | None = None):
        super().__init__(file, encoding="latin1")  # the DCRNN files were written by Python 2
        self._where = where
        self._extra = extra

    def find_class(self, module: str, name: str):
        if (module, name) in _PICKLE_ALLOWED or (self._extra is not None and self._extra(module, name)):
            return super().find_class(module, name)
        raise DataError(f"{self._where}: the pickle asks for {module}.{name}, which a data file never needs; "
                        "refusing to load it (only numpy arrays, lists, dicts and strings are allowed)")


def _safe_unpickle(data: bytes, where: str, extra: Callable[[str, str], bool] | None = None):
    try:
        return _RestrictedUnpickler(io.BytesIO(data), where, extra).load()
    except DataError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError,
            KeyError, ImportError, MemoryError, OverflowError) as e:
        raise DataError(f"{where}: not a readable pickle ({type(e).__name__}: {e}); the file may be truncated") \
            from None


def read_dcrnn_pickle(path: str | Path) -> tuple[list[str], dict[str, int], np.ndarray]:
    """The DCRNN adjacency pickle ``(sensor_ids, sensor_id_to_ind, adj_mx)`` (METR-LA, PEMS-BAY), loaded
    with a restricted unpickler that refuses anything but numpy arrays and builtin containers.

    Returns:
        sensor ids (strings), id -> row index, and the ``[N, N]`` float32 matrix.
    """
    path = Path(path)
    what = "a DCRNN adjacency pickle (sensor_ids, sensor_id_to_ind, adj_mx)"
    _check_file(path, what)
    obj = _safe_unpickle(path.read_bytes(), str(path))
    if not isinstance(obj, (list, tuple)) or len(obj) != 3:
        raise DataError(f"{path}: holds a {type(obj).__name__}, expected {what}")
    ids, id_to_ind, adj = obj
    if not isinstance(ids, (list, tuple)) or not isinstance(id_to_ind, dict) or not isinstance(adj, np.ndarray):
        raise DataError(f"{path}: holds ({type(ids).__name__}, {type(id_to_ind).__name__}, "
                        f"{type(adj).__name__}), expected {what}")
    ids = [_as_str(x) for x in ids]
    mapping = {_as_str(k): v for k, v in id_to_ind.items()}
    n = len(ids)
    if adj.ndim != 2 or adj.shape != (n, n):
        raise DataError(f"{path}: adj_mx has shape {adj.shape} but there are {n} sensor ids; expected [{n}, {n}]")
    if set(mapping) != set(ids) or sorted(int(v) for v in mapping.values()) != list(range(n)):
        raise DataError(f"{path}: sensor_id_to_ind does not map the {n} sensor ids to rows 0..{n - 1}")
    try:
        adj = adj.astype(np.float32)
    except (TypeError, ValueError):
        raise DataError(f"{path}: adj_mx holds {adj.dtype} values, expected numbers") from None
    return ids, {k: int(v) for k, v in mapping.items()}, adj


def _as_str(x) -> str:
    return x.decode("latin1") if isinstance(x, bytes) else str(x)


_HDF_ATTR_ALLOWED = {
    ("copy_reg", "_reconstructor"), ("copyreg", "_reconstructor"),  # protocol-0 objects (PyTables attributes)
    ("__builtin__", "object"), ("builtins", "object"),
    ("datetime", "timedelta"), ("datetime", "datetime"), ("datetime", "date"),  # old pandas offsets' state
}


def _hdf_attr_global(module: str, name: str) -> bool:
    """What pandas' HDF5 attributes may also hold: an index's ``freq`` (a date offset such as ``Minute``,
    pickled with protocol 0 by PyTables) and the datetime values in an old offset's state. Building an
    offset or a timedelta runs no user code."""
    if (module, name) in _HDF_ATTR_ALLOWED:
        return True
    if module not in ("pandas._libs.tslibs.offsets", "pandas.tseries.offsets"):
        return False
    cls = getattr(pd.tseries.offsets, name, None)
    return isinstance(cls, type) and issubclass(cls, pd.tseries.offsets.BaseOffset)


_PYTABLES_LOCK = threading.Lock()


class _GuardedPickle:
    """Stands in for the ``pickle`` module inside PyTables while stkd reads an HDF5 file.

    PyTables unpickles node attributes as soon as a node is touched, and object arrays when they are
    read, with plain ``pickle.loads``: ``pd.read_hdf`` on a file from the internet can run code. A
    METR-LA file needs only numbers, strings and a pickled date offset; every load goes through the
    restricted unpickler, and refusals are collected (PyTables swallows unpickling errors and would
    hand back the raw bytes) so the reader can name them.
    """

    def __init__(self, where: str):
        self.where = where
        self.refused: list[str] = []

    def loads(self, data, *args, **kwargs):
        try:
            return _RestrictedUnpickler(io.BytesIO(bytes(data)), self.where, _hdf_attr_global).load()
        except DataError as e:
            self.refused.append(str(e))
            raise pickle.UnpicklingError(str(e)) from None

    def __getattr__(self, name: str):
        return getattr(pickle, name)


@contextmanager
def _guard_pytables_pickle(where: str):
    """Route PyTables' unpickling through :class:`_GuardedPickle` for the duration of a read.

    This swaps a module attribute of PyTables, so it holds a lock: two stkd reads do not interleave
    (another thread using PyTables directly meanwhile would get the restricted loader too, which only
    refuses more).
    """
    import tables.atom
    import tables.attributeset

    guard = _GuardedPickle(where)
    with _PYTABLES_LOCK:
        saved = tables.attributeset.pickle, tables.atom.pickle
        tables.attributeset.pickle = tables.atom.pickle = guard
        try:
            yield guard
        finally:
            tables.attributeset.pickle, tables.atom.pickle = saved


def _read_hdf_frame(path: Path, what: str) -> pd.DataFrame:
    """The one pandas frame in an HDF5 file (key ``df`` if there are several), read under the pickle
    guard; object arrays (pickled Python objects, never in a METR-LA file) are refused outright."""
    import tables

    with _guard_pytables_pickle(str(path)) as guard:
        try:
            with tables.open_file(str(path), mode="r") as f:
                for node in f.walk_nodes("/"):
                    if isinstance(node, tables.VLArray) and getattr(node.atom, "kind", "") == "object":
                        raise DataError(f"{path} (node {node._v_pathname}): stores pickled Python objects; "
                                        "refusing to unpickle them (a METR-LA / PEMS-BAY file holds only numbers)")
            with pd.HDFStore(str(path), mode="r") as store:
                keys = store.keys()
                if not keys:
                    raise DataError(f"{path}: the HDF5 file holds no pandas frame; expected {what}")
                key = "/df" if "/df" in keys else keys[0] if len(keys) == 1 else None
                if key is None:
                    raise DataError(f"{path}: holds several frames {keys} and none named 'df'; expected {what}")
                df = store.get(key)
        except DataError:
            raise
        except Exception as e:  # HDF5ExtError, OSError, ...: not an HDF5 file, or cut off
            if guard.refused:
                raise DataError(guard.refused[0]) from None
            raise DataError(f"{path}: not a readable HDF5 file ({_short(e)}); the file may be truncated; "
                            f"expected {what}") from None
        if guard.refused:
            raise DataError(guard.refused[0])
    return df


def read_metr_la_h5(path: str | Path, *, adjacency: str | Path | None = None, null_value: float | None = None,
                    freq: str | None = None, duplicates: str = "error", feature: str = "speed",
                    name: str | None = None) -> STData:
    """The METR-LA / PEMS-BAY HDF5 file (a pandas frame: timestamps as rows, sensor ids as columns).

    ``null_value`` marks missing readings (METR-LA writes 0.0 for a failed speed reading: pass 0.0).
    ``adjacency``, if given, is the DCRNN pickle (or any matrix file :func:`read_adjacency` reads),
    reordered to the data's sensor order.

    PyTables unpickles attributes and object arrays while pandas reads; here every such load goes
    through a restricted unpickler (see :class:`_GuardedPickle`), so a crafted file cannot run code.
    """
    path = Path(path)
    _check_policy(duplicates)
    what = "the METR-LA / PEMS-BAY HDF5 frame (rows: timestamps, columns: sensor ids)"
    _check_file(path, what)
    df = _read_hdf_frame(path, what)
    if not isinstance(df, pd.DataFrame):
        raise DataError(f"{path}: holds a {type(df).__name__}, expected {what}")
    if not isinstance(df.index, pd.DatetimeIndex):
        raise DataError(f"{path}: the rows are indexed by {type(df.index).__name__}, expected timestamps "
                        f"(a DatetimeIndex); expected {what}")
    if len(df) == 0 or df.shape[1] == 0:
        raise DataError(f"{path}: the frame is empty ({df.shape[0]} rows, {df.shape[1]} columns); expected {what}")
    rows = _Rows(path)
    nodes = [_as_str(c) for c in df.columns]
    dup = pd.Index(nodes)[pd.Index(nodes).duplicated()]
    if len(dup):
        raise DataError(f"{path}: sensor id {dup[0]!r} is a column twice")
    times = df.index.as_unit("ns")
    if np.asarray(times.isna()).any():
        i = int(np.flatnonzero(np.asarray(times.isna()))[0])
        raise DataError(f"{path}: {rows.at(i)} has no timestamp")
    vals = np.column_stack([_numeric_column(df.iloc[:, j], nodes[j], rows) for j in range(len(nodes))])  # [R, N]
    data = _wide_to_stdata(times, vals, nodes, rows, "index", freq, duplicates, null_value, feature,
                           name or path.stem, {"source": "metr-la-h5", "path": str(path)})
    if adjacency is not None:
        data = replace(data, adjacency=read_adjacency(adjacency, data.nodes))
    return data


# ============================================================================ PEMS npz
def _open_npz(path: Path, what: str):
    """``np.load`` without pickles, insisting on an npz archive (a renamed .npy has no named arrays)."""
    z = np.load(path, allow_pickle=False)
    if not isinstance(z, np.lib.npyio.NpzFile):
        raise DataError(f"{path}: holds a single array, not an npz archive of named arrays; expected {what}")
    return z


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


# ============================================================================ side files
_NODE_NAMES = names.NODE_COLUMNS
_LAT_NAMES = names.LAT_COLUMNS
_LON_NAMES = names.LON_COLUMNS


def _pick(cols: list[str], names: Sequence[str]) -> str | None:
    lower = {c.strip().lower(): c for c in cols}
    for n in names:
        if n in lower:
            return lower[n]
    return None


def read_locations(path: str | Path, nodes: Sequence[str]) -> np.ndarray:
    """Coordinates ``[N, 2]`` (latitude, longitude) in the order of ``nodes``, from a CSV with a node
    column (sensor_id, node, node_id, station, sensor or id), latitude (or lat) and longitude (lon, lng).

    A node in the file that is not in the data, and a data node without a location, are both errors
    naming the ids: a silent mismatch would put sensors in the wrong place on the graph.
    """
    path = Path(path)
    what = "a locations CSV with columns sensor_id (or node/station/id), latitude, longitude"
    df, rows = _read_csv(path, what)
    cols = [str(c) for c in df.columns]
    c_node, c_lat, c_lon = _pick(cols, _NODE_NAMES), _pick(cols, _LAT_NAMES), _pick(cols, _LON_NAMES)
    if c_node is None or c_lat is None or c_lon is None:
        raise DataError(f"{path}: columns {cols}; expected {what}")
    ids = _node_ids(df[c_node], c_node, rows)
    dup = ids[ids.duplicated()]
    if len(dup):
        i = int(np.flatnonzero(ids.duplicated().to_numpy())[0])
        raise DataError(f"{path}: node {dup.iloc[0]!r} is listed twice ({rows.at(i)} repeats it)")
    lat = _numeric_column(df[c_lat], c_lat, rows)
    lon = _numeric_column(df[c_lon], c_lon, rows)
    for col, v, lim in ((c_lat, lat, 90.0), (c_lon, lon, 180.0)):
        bad = np.isnan(v) | (np.abs(v) > lim)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataError(f"{path}: column {col!r}, {rows.at(i)} (node {ids.iloc[i]!r}): {v[i]} is not a "
                            f"coordinate in [-{lim:g}, {lim:g}]")
    nodes = [str(n) for n in nodes]
    known = set(nodes)
    extra = [n for n in ids if n not in known]
    if extra:
        raise DataError(f"{path}: {len(extra)} node(s) in the locations file are not in the data: {_preview(extra)} "
                        f"(the data's ids look like {_preview(nodes, 3)})")
    pos = dict(zip(ids, range(len(ids))))
    lacking = [n for n in nodes if n not in pos]
    if lacking:
        raise DataError(f"{path}: {len(lacking)} data node(s) have no location: {_preview(lacking)}")
    take = np.array([pos[n] for n in nodes], dtype=np.int64)
    return np.column_stack([lat[take], lon[take]])  # [N, 2]


def read_adjacency(path: str | Path, nodes: Sequence[str]) -> sp.csr_array:
    """A weighted adjacency ``[N, N]`` (CSR float32) in the order of ``nodes``.

    Formats: CSV (N x N numbers, no header as in ``los_adj.csv``; or a header row of node ids, which
    must be in the data's order, optionally with a first column of the same ids), ``.npy`` (dense),
    ``.npz`` (scipy sparse from ``scipy.sparse.save_npz``, or one dense array), ``.pkl`` / ``.pickle``
    (the DCRNN ``(sensor_ids, sensor_id_to_ind, adj_mx)``, reordered by sensor id).
    A size mismatch names the file, its shape and N. NaN or infinite weights are errors.
    """
    path = Path(path)
    nodes = [str(n) for n in nodes]
    n = len(nodes)
    suffix = path.suffix.lower()
    if suffix in (".pkl", ".pickle", ".p"):
        ids, mapping, adj = read_dcrnn_pickle(path)
        extra = [i for i in ids if i not in set(nodes)]
        lacking = [x for x in nodes if x not in mapping]
        if extra or lacking:
            raise DataError(f"{path}: the pickle's sensor ids differ from the data's: "
                            f"{len(extra)} not in the data {_preview(extra, 5)}, "
                            f"{len(lacking)} data node(s) missing {_preview(lacking, 5)}")
        order = np.array([mapping[x] for x in nodes], dtype=np.int64)
        return _check_adj(adj[np.ix_(order, order)], path, n)
    if suffix == ".npy":
        _check_file(path, "an [N, N] adjacency .npy array")
        try:
            arr = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as e:
            raise DataError(f"{path}: not a readable .npy array ({_short(e)}); the file may be "
                            "truncated") from None
        return _check_adj(arr, path, n)
    if suffix == ".npz":
        return _check_adj(_read_npz_matrix(path), path, n)
    if suffix in (".csv", ".txt", ".gz"):
        return _check_adj(_read_csv_matrix(path, nodes), path, n)
    raise DataError(f"{path}: unknown adjacency format {suffix!r}; expected .csv, .npy, .npz or a DCRNN .pkl")


def _read_npz_matrix(path: Path):
    _check_file(path, "an adjacency .npz (scipy sparse or one dense array)")
    try:
        with _open_npz(path, "an adjacency .npz (scipy sparse or one dense array)") as z:
            files = list(z.files)
            if {"format", "shape", "data"} <= set(files):
                return sp.load_npz(path)
            arrays = [f for f in files if z[f].ndim == 2]
            pick = next((f for f in ("adj", "adjacency", "adj_mx", "A") if f in files), None)
            if pick is None:
                if len(arrays) != 1:
                    raise DataError(f"{path}: holds arrays {files}; expected one [N, N] array (or one named adj)")
                pick = arrays[0]
            return z[pick]
    except DataError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as e:
        raise DataError(f"{path}: not a readable .npz file ({_short(e)}); "
                        "the file may be truncated") from None


def _read_csv_matrix(path: Path, nodes: list[str]) -> np.ndarray:
    """A CSV matrix; a first row that is not all numbers is a header of node ids, checked against the
    data's order (reordering silently would hide a file meant for another data set)."""
    what = "an N x N adjacency CSV"
    _check_file(path, what)
    raw = _read_raw(path)
    header, fields, lines = _field_counts(raw, path)
    if not header:
        raise DataError(f"{path}: no rows; expected {what}")
    has_header = not all(_is_number(h) for h in header)
    try:
        df = pd.read_csv(io.BytesIO(raw), header=0 if has_header else None, low_memory=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as e:
        raise DataError(f"{path}: cannot parse the CSV ({_short(e)}); expected {what}") from None
    all_fields = fields if has_header else np.concatenate([[len(header)], fields])
    all_lines = lines if has_header else np.concatenate([[lines[0] - 1 if len(lines) else 1], lines])
    width = len(header)
    wrong = all_fields != width
    if wrong.any():
        i = int(np.flatnonzero(wrong)[0])
        raise DataError(f"{path}: line {int(all_lines[i])} has {int(all_fields[i])} field(s), the first row has "
                        f"{width}; the file looks truncated or malformed; expected {what}")
    rows = _Rows(path, all_lines if len(all_lines) == len(df) else None)
    if has_header:
        ids = [h.strip() for h in header]
        row_ids = None
        if len(ids) == len(df) + 1 and not ids[0]:  # a corner cell: the first column holds row ids
            ids = ids[1:]
            row_ids = _node_ids(df.iloc[:, 0], "row ids", rows).tolist()
            df = df.iloc[:, 1:]
        _check_order(ids, nodes, path, "header")
        if row_ids is not None:
            _check_order(row_ids, nodes, path, "first column")
    mat = np.empty(df.shape, dtype=np.float64)  # [N, N]
    for j in range(df.shape[1]):
        col = _numeric_column(df.iloc[:, j], j + 1, rows)  # type: ignore[arg-type]
        if np.isnan(col).any():
            i = int(np.flatnonzero(np.isnan(col))[0])
            raise DataError(f"{path}: column {j + 1}, {rows.at(i)} is blank; every cell of an adjacency matrix "
                            "needs a weight (0 for no edge)")
        mat[:, j] = col
    return mat


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def _check_order(ids: list[str], nodes: list[str], path: Path, where: str) -> None:
    if ids == nodes:
        return
    if len(ids) != len(nodes):
        raise DataError(f"{path}: the {where} names {len(ids)} node(s), the data has {len(nodes)}")
    if set(ids) != set(nodes):
        extra = [i for i in ids if i not in set(nodes)]
        lacking = [x for x in nodes if x not in set(ids)]
        raise DataError(f"{path}: the {where}'s node ids differ from the data's: {_preview(extra, 5)} not in the "
                        f"data, {_preview(lacking, 5)} missing")
    k = next(i for i, (a, b) in enumerate(zip(ids, nodes)) if a != b)
    raise DataError(f"{path}: the {where}'s node order differs from the data's: position {k + 1} is {ids[k]!r}, "
                    f"the data has {nodes[k]!r} there; write the matrix in the data's node order")


def _check_adj(adj, path: Path, n: int) -> sp.csr_array:
    shape = tuple(adj.shape)
    if len(shape) != 2 or shape != (n, n):
        raise DataError(f"{path}: the adjacency has shape {shape}, but the data has N = {n} nodes; expected [{n}, {n}]")
    a = sp.csr_array(adj, dtype=np.float32) if sp.issparse(adj) else None
    if a is None:
        arr = np.asarray(adj)
        if not np.issubdtype(arr.dtype, np.number):
            raise DataError(f"{path}: the adjacency holds {arr.dtype} values, expected numbers")
        a = sp.csr_array(arr.astype(np.float32))
    if not np.isfinite(a.data).all():
        k = int(np.flatnonzero(~np.isfinite(a.data))[0])
        r = int(np.searchsorted(a.indptr, k, side="right") - 1)
        raise DataError(f"{path}: weight at row {r + 1}, column {int(a.indices[k]) + 1} is {a.data[k]}; "
                        "expected finite weights (0 for no edge)")
    return a


def read_distances(path: str | Path) -> pd.DataFrame:
    """The pairwise distance CSV ``(from, to, cost)`` of DCRNN/PEMS, as read (checked for emptiness and
    truncation here; columns and ids are checked by :func:`stkd.data.graph.distance_table_to_matrix`).
    Ids are read as strings so they match node ids exactly."""
    path = Path(path)
    df, _ = _read_csv(path, "a distances CSV with columns from, to, cost", dtype=str)
    return df


# ============================================================================ selection
def select(data: STData, nodes: Sequence[str] | None = None, time_range: Sequence[str] | None = None) -> STData:
    """Keep some nodes (in the order given) and a time range ``[start, end]`` (inclusive; a date alone
    covers its whole day, e.g. ``["2019-01-01", "2019-12-31"]`` is the year 2019)."""
    node_idx = None
    if nodes is not None:
        nodes = [str(n) for n in nodes]
        dup = pd.Index(nodes)[pd.Index(nodes).duplicated()]
        if len(dup):
            raise ConfigError(f"data.nodes: {dup[0]!r} is listed twice")
        pos = {n: i for i, n in enumerate(data.nodes)}
        unknown = [n for n in nodes if n not in pos]
        if unknown:
            raise ConfigError(f"data.nodes: unknown node id(s) {_preview(unknown)}; {data.name} has "
                              f"{data.num_nodes} nodes, e.g. {_preview(data.nodes, 5)}")
        if not nodes:
            raise ConfigError("data.nodes: an empty list keeps no node; omit the key to keep all")
        node_idx = np.array([pos[n] for n in nodes], dtype=np.int64)
    time_slice = None
    if time_range is not None:
        if len(time_range) != 2:
            raise ConfigError(f"data.time_range: expected [start, end], got {list(time_range)}")
        lo, hi = (None if v in (None, "") else str(v) for v in time_range)
        for v in (lo, hi):
            if v is not None:
                _timestamp(v, "data.time_range")
        if lo is not None and hi is not None and pd.Timestamp(lo) > pd.Timestamp(hi):
            raise ConfigError(f"data.time_range: start {lo} is after end {hi}")
        try:
            time_slice = data.index.slice_indexer(lo, hi)
        except (KeyError, ValueError, TypeError) as e:
            raise ConfigError(f"data.time_range: {list(time_range)} cannot be applied ({e})") from None
        n_steps = len(range(*time_slice.indices(data.num_steps)))
        if n_steps == 0:
            span = f"{data.index[0]} .. {data.index[-1]}" if data.num_steps else "no steps"
            raise DataError(f"{data.name}: data.time_range {list(time_range)} keeps no step; the data spans {span}")
    if node_idx is None and time_slice is None:
        return data
    return data.subset(node_idx, time_slice)


# ============================================================================ entry point
def _read_source(cfg: DataConfig, base_dir: Path | None) -> STData:
    """The raw data set named by ``cfg.source`` (before selection and graph)."""
    src = cfg.source
    if src == "builtin":
        if cfg.name == "akl-pedestrians":
            from stkd.data.builtin import load_akl_pedestrians

            return load_akl_pedestrians()
        if cfg.name == "los-loop":
            from stkd.data.builtin import load_los_loop

            return load_los_loop()
        if cfg.name == "synthetic-traffic":
            from stkd.data.simulator import simulate_traffic

            return simulate_traffic(cfg.simulator)
        raise ConfigError(f"data.name: builtin data set {cfg.name!r} is unknown; choose one of "
                          f"{', '.join(BUILTIN_DATASETS)}")
    if not cfg.path:
        raise ConfigError(f"data.path: source {src!r} needs a path to the data file")
    path = _resolve(cfg.path, base_dir)
    name = cfg.name if cfg.name is not None and cfg.name not in BUILTIN_DATASETS else None
    if src == "csv-wide":
        if len(cfg.target) > 1:
            raise ConfigError(f"data.target: a wide file holds one value per sensor; got {cfg.target}")
        return read_csv_wide(path, time_column=cfg.time_column, start=cfg.start, freq=cfg.freq,
                             duplicates=cfg.duplicates, null_value=cfg.null_value,
                             feature=cfg.target[0] if cfg.target else "value", name=name)
    if src in ("csv-long", "parquet-long"):
        return read_long(path, time_column=cfg.time_column, node_column=cfg.node_column, target=cfg.target,
                         covariates=cfg.covariates, encode=cfg.encode, freq=cfg.freq, duplicates=cfg.duplicates,
                         null_value=cfg.null_value, fmt=src.split("-")[0], name=name)
    if src == "metr-la-h5":
        if len(cfg.target) > 1:
            raise ConfigError(f"data.target: a METR-LA file holds one value per sensor; got {cfg.target}")
        return read_metr_la_h5(path, null_value=cfg.null_value, freq=cfg.freq, duplicates=cfg.duplicates,
                               feature=cfg.target[0] if cfg.target else "speed", name=name)
    if src == "pems-npz":
        return read_pems_npz(path, start=cfg.start, freq=cfg.freq, null_value=cfg.null_value, target=cfg.target,
                             covariates=cfg.covariates, name=name)
    raise ConfigError(f"data.source: {src!r} is not one of csv-wide, csv-long, parquet-long, metr-la-h5, "
                      "pems-npz, builtin")


def load_data(cfg: DataConfig, base_dir: Path | None = None) -> STData:
    """The data set a config describes, ready for graph-aware learning.

    Steps: read ``cfg.source``; attach coordinates (``cfg.locations``) and the adjacency file
    (``cfg.adjacency``, unless ``graph.method`` asks for a built graph) and check both against the
    data's node ids; keep ``cfg.nodes`` and ``cfg.time_range``; then the graph per ``cfg.graph`` via
    :func:`stkd.data.graph.build_adjacency` (the loaded matrix, a Gaussian kernel over
    ``cfg.distances``, or kNN on the coordinates; ``none`` drops any graph).

    Relative paths resolve against ``base_dir`` (the config file's folder).
    """
    method = cfg.graph.method
    data = _read_source(cfg, base_dir)
    if cfg.locations:
        data = replace(data, coords=read_locations(_resolve(cfg.locations, base_dir), data.nodes))
    if method in ("auto", "file") and cfg.adjacency:
        data = replace(data, adjacency=read_adjacency(_resolve(cfg.adjacency, base_dir), data.nodes))
    dist = None
    if cfg.distances and method in ("auto", "gaussian"):
        from stkd.data.graph import distance_table_to_matrix

        dpath = _resolve(cfg.distances, base_dir)
        dist = distance_table_to_matrix(read_distances(dpath), data.nodes, dpath)  # [N, N], checks the ids
    full_nodes = data.nodes
    data = select(data, cfg.nodes, cfg.time_range)
    if dist is not None and data.nodes != full_nodes:
        pos = {n: i for i, n in enumerate(full_nodes)}
        keep = np.array([pos[n] for n in data.nodes], dtype=np.int64)
        dist = dist[keep][:, keep]
    if method == "none":
        return replace(data, adjacency=None) if data.adjacency is not None else data
    if method in ("gaussian", "knn") and data.adjacency is not None:
        data = replace(data, adjacency=None)  # an explicit builder replaces a source's own graph
    from stkd.data.graph import build_adjacency

    adj = build_adjacency(data, cfg.graph, distances=dist)  # CSR [N, N] float32, or None without a graph
    return replace(data, adjacency=adj)
