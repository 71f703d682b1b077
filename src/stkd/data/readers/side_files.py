"""Side files of a data set: node locations, the adjacency matrix, pairwise distances."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from stkd import names
from stkd.data.readers.common import (
    _check_file,
    _field_counts,
    _is_number,
    _node_ids,
    _numeric_column,
    _open_npz,
    _pick,
    _preview,
    _read_csv,
    _read_raw,
    _Rows,
    _short,
)
from stkd.data.readers.pickles import read_dcrnn_pickle
from stkd.errors import DataError

# ============================================================================ side files
_NODE_NAMES = names.NODE_COLUMNS
_LAT_NAMES = names.LAT_COLUMNS
_LON_NAMES = names.LON_COLUMNS


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
    if (a.data < 0).any():
        k = int(np.flatnonzero(a.data < 0)[0])
        r = int(np.searchsorted(a.indptr, k, side="right") - 1)
        raise DataError(f"{path}: weight at row {r + 1}, column {int(a.indices[k]) + 1} is {a.data[k]:g}; "
                        f"adjacency weights must be >= 0 (0 for no edge); {int((a.data < 0).sum())} cell(s) are negative")
    return a


def read_distances(path: str | Path) -> pd.DataFrame:
    """The pairwise distance CSV ``(from, to, cost)`` of DCRNN/PEMS, as read (checked for emptiness and
    truncation here; columns and ids are checked by :func:`stkd.data.graph.distance_table_to_matrix`).
    Ids are read as strings so they match node ids exactly."""
    path = Path(path)
    df, _ = _read_csv(path, "a distances CSV with columns from, to, cost", dtype=str)
    return df


