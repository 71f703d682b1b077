"""``metr-la-h5``: the METR-LA / PEMS-BAY HDF5 frame, and the DCRNN adjacency pickle, unpickled safely."""

from __future__ import annotations

import io
import pickle
import threading
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from stkd.data.container import STData
from stkd.data.readers.common import (
    _check_file,
    _check_policy,
    _numeric_column,
    _Rows,
    _short,
)
from stkd.data.readers.pickles import _as_str, _RestrictedUnpickler
from stkd.data.readers.side_files import read_adjacency
from stkd.data.readers.wide import _wide_to_stdata
from stkd.errors import DataError

# ============================================================================ METR-LA h5 + DCRNN pickle
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


