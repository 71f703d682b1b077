"""Read spatio-temporal data from the common file formats into an :class:`STData`.

One entry point, :func:`load_data`, dispatches on ``DataConfig.source``; each format has its own
reader in :mod:`stkd.data.readers` that can be called directly:

- ``csv-wide``: :func:`~stkd.data.readers.wide.read_csv_wide` (one column per node, one row per step);
- ``csv-long`` / ``parquet-long``: :func:`~stkd.data.readers.long.read_long` (records ``time, node, values...``);
- ``metr-la-h5``: :func:`~stkd.data.readers.metr_la.read_metr_la_h5` (the METR-LA / PEMS-BAY HDF5 frame);
- ``pems-npz``: :func:`~stkd.data.readers.pems.read_pems_npz` (``data [T, N, F]``; distances CSV for the graph);
- ``sql``: :func:`~stkd.data.readers.sql.read_sql` (long records from DuckDB or PostgreSQL: ``url`` + ``query``/``table``);
- ``builtin``: ``akl-pedestrians`` and ``los-loop`` (:mod:`stkd.data.builtin`) and ``synthetic-traffic``
  (the simulator); the names are listed in :data:`stkd.names.BUILTIN_DATASETS`.

Side files (:mod:`stkd.data.readers.side_files`): ``read_locations`` (node, latitude, longitude),
``read_adjacency`` (csv, npy, npz or a DCRNN pickle), ``read_distances`` (from, to, cost).

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

from dataclasses import replace
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from stkd.config import DataConfig
from stkd.data.builtin import load_akl_pedestrians, load_los_loop
from stkd.data.container import STData
from stkd.data.graph import build_adjacency, distance_table_to_matrix
from stkd.data.readers.common import _preview, _resolve, _timestamp
from stkd.data.readers.long import read_long
from stkd.data.readers.metr_la import read_metr_la_h5
from stkd.data.readers.pems import read_pems_npz
from stkd.data.readers.side_files import read_adjacency, read_distances, read_locations
from stkd.data.readers.sql import read_sql
from stkd.data.readers.wide import read_csv_wide
from stkd.data.simulator import simulate_traffic
from stkd.errors import ConfigError, DataError
from stkd.names import BUILTIN_DATASETS


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
            return load_akl_pedestrians()
        if cfg.name == "los-loop":
            return load_los_loop()
        if cfg.name == "synthetic-traffic":
            return simulate_traffic(cfg.simulator)
        raise ConfigError(f"data.name: builtin data set {cfg.name!r} is unknown; choose one of "
                          f"{', '.join(BUILTIN_DATASETS)}")
    if src == "sql":
        return read_sql(cfg.url, query=cfg.query, table=cfg.table, time_column=cfg.time_column,
                        node_column=cfg.node_column, target=cfg.target, covariates=cfg.covariates, encode=cfg.encode,
                        freq=cfg.freq, duplicates=cfg.duplicates, null_value=cfg.null_value,
                        name=cfg.name if cfg.name not in BUILTIN_DATASETS else None, base_dir=base_dir)
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
                      "pems-npz, sql, builtin")


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
    adj = build_adjacency(data, cfg.graph, distances=dist)  # CSR [N, N] float32, or None without a graph
    return replace(data, adjacency=adj)

