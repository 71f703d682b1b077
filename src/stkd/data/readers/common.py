"""What every file reader shares: reading CSV text with the checks pandas does not make, numeric and
timestamp columns with errors that name the row, duplicate handling and the regular time grid."""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from stkd import names
from stkd.data.container import STData
from stkd.errors import ConfigError, DataError

DUPLICATE_POLICIES = names.DUPLICATE_POLICIES
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
    header = []
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
              dtype: type | dict | None = None) -> tuple[pd.DataFrame, _Rows]:
    """``pd.read_csv`` with the checks pandas does not make: empty file, header only, duplicate column
    names (pandas would rename them ``x.1``), rows with a wrong number of fields (a truncated file).
    ``dtype`` as pandas takes it: one type for every column (``str``) or one per column."""
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


def _timestamp(value: str, key: str) -> pd.Timestamp:
    try:
        return pd.Timestamp(value)
    except (ValueError, TypeError):
        raise ConfigError(f"{key}: {value!r} is not a timestamp (expected e.g. '2012-03-01 00:00')") from None


def _check_policy(duplicates: str) -> None:
    if duplicates not in DUPLICATE_POLICIES:
        raise ConfigError(f"data.duplicates: {duplicates!r} is not one of {', '.join(DUPLICATE_POLICIES)}")



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



def _pick(cols: list[str], names: Sequence[str]) -> str | None:
    lower = {c.strip().lower(): c for c in cols}
    for n in names:
        if n in lower:
            return lower[n]
    return None



def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def _open_npz(path: Path, what: str):
    """``np.load`` without pickles, insisting on an npz archive (a renamed .npy has no named arrays)."""
    z = np.load(path, allow_pickle=False)
    if not isinstance(z, np.lib.npyio.NpzFile):
        raise DataError(f"{path}: holds a single array, not an npz archive of named arrays; expected {what}")
    return z
