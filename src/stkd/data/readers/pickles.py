"""Safe unpickling: the DCRNN adjacency pickle and pandas' HDF5 frames hold pickles, and a pickle can run
code. Only the classes these files legitimately contain are allowed; anything else is refused."""
from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Callable

import numpy as np

from stkd.data.readers.common import _check_file
from stkd.errors import DataError

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


def _as_str(x) -> str:
    return x.decode("latin1") if isinstance(x, bytes) else str(x)


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


