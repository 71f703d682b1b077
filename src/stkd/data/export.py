"""Write a data set as plain CSV files plus the config that reads them back (``stkd data export``).

Why: a builtin data set (or any loaded one, after node/time selection and graph building) becomes the
README's "Your data" form, so a user can look at it with any tool, edit it, or start their own config
from it. The files hold exactly what stkd loaded: reading the written ``config.yaml`` gives the same
values, mask, timestamps, node ids, coordinates and adjacency (tested).

Files written into the output folder (which must not exist or be empty, unless ``overwrite``):

- ``<name>.csv`` (the data set's name, e.g. ``los-loop.csv``): wide (``timestamp`` column, then one column per node) for one feature, or long
  (``timestamp, node, <feature>...``) for several; blank cells are missing values.
- ``locations.csv``: ``node, latitude, longitude`` (when the data has coordinates).
- ``adjacency.csv``: the ``[N, N]`` weights, node ids as the header row and the first column (when it
  has a graph).
- ``config.yaml``: a ready-to-run config whose ``data`` section reads the files above.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import cast

import numpy as np
import pandas as pd
import scipy.sparse as sp
import yaml

from stkd.data.container import STData
from stkd.errors import STKDError
from stkd.io import write_text

FORMATS = ("wide", "long")
FLOAT_FORMAT = "%.9g"  # 9 significant digits round-trip every float32 exactly


def _csv(frame: pd.DataFrame, index: bool, tz=None) -> str:
    buf = io.StringIO()
    frame.to_csv(buf, index=index, float_format=FLOAT_FORMAT,
                 date_format="%Y-%m-%d %H:%M:%S" + ("%z" if tz is not None else ""))  # an offset keeps tz-aware times
    return buf.getvalue()


def _file_stem(name: str) -> str:
    """A file name from a data set's name: letters, digits, ``-`` and ``_`` kept, the rest ``_``."""
    stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in name).strip("._")
    return stem or "data"


def _values_frame(data: STData, fmt: str) -> pd.DataFrame:
    T, N, F = data.values.shape
    index = pd.DatetimeIndex(data.index, name="timestamp")
    if fmt == "wide":
        if F != 1:
            raise STKDError(f"{data.name} has {F} features ({', '.join(data.features)}); a wide file holds one "
                            "value per sensor: use --format long")
        values = np.where(data.mask[..., 0], data.values[..., 0], np.nan)  # [T, N]
        return pd.DataFrame(values, index=index, columns=data.nodes)
    values = np.where(data.mask, data.values, np.nan).reshape(T * N, F)  # [T*N, F], time-major
    frame = pd.DataFrame(values, columns=data.features)
    frame.insert(0, "node", np.tile(np.asarray(data.nodes, dtype=object), T))
    frame.insert(0, "timestamp", np.repeat(index.to_numpy(), N))
    return frame


def export_data(data: STData, out: str | Path, fmt: str = "wide", *, overwrite: bool = False) -> list[Path]:
    """Write ``data`` into the folder ``out`` (see the module doc); returns the files written.

    An existing non-empty folder is refused unless ``overwrite`` (then only the files named above are
    replaced; nothing else in the folder is touched). Each file is written atomically.
    """
    if fmt not in FORMATS:
        raise STKDError(f"--format {fmt!r} is not one of {', '.join(FORMATS)}")
    if data.events is not None and len(data.events):
        raise STKDError(f"{data.name} carries labelled events, which the CSV form does not hold; export the "
                        "values with a data set without events")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise STKDError(f"{out} exists and is not a folder; choose another --out")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise STKDError(f"{out} exists and is not empty; pass --overwrite to replace its files, or choose "
                        "another --out")
    values_file = f"{_file_stem(data.name)}.csv"  # the reader names the data set after the file
    data_cfg: dict = {"source": "csv-wide" if fmt == "wide" else "csv-long", "path": values_file,
                      "time_column": "timestamp", "freq": data.freq_str}
    if fmt == "long":
        data_cfg.update(node_column="node", target=list(data.targets), covariates=data.features[data.num_targets:])
    else:
        data_cfg["target"] = list(data.targets)
    written = [write_text(out / values_file, _csv(_values_frame(data, fmt), index=fmt == "wide", tz=data.index.tz))]
    if data.coords is not None:
        locs = pd.DataFrame({"node": data.nodes, "latitude": data.coords[:, 0], "longitude": data.coords[:, 1]})
        written.append(write_text(out / "locations.csv", _csv(locs, index=False)))
        data_cfg["locations"] = "locations.csv"
    if data.adjacency is not None:
        # cast: scipy has no type stubs, so issparse() does not narrow ndarray | sparse for mypy
        adj = cast("sp.spmatrix | sp.sparray", data.adjacency).toarray() if sp.issparse(data.adjacency) \
            else np.asarray(data.adjacency)
        # a blank corner cell, then node ids on both axes: read back in order even when the ids are numbers
        frame = pd.DataFrame(adj.astype(np.float32), index=pd.Index(data.nodes, name=""), columns=data.nodes)
        written.append(write_text(out / "adjacency.csv", _csv(frame, index=True)))  # [N, N]
        data_cfg["adjacency"] = "adjacency.csv"
        data_cfg["graph"] = {"method": "file", "symmetric": False}  # the graph as it was loaded, unchanged
    else:
        data_cfg["graph"] = {"method": "none"}
    header = (f"# {data.name} as exported by `stkd data export`: {data.num_nodes} nodes, {data.num_steps} steps "
              f"of {data.freq_str}.\n# Run it with: stkd run --config {out.name}/config.yaml\n")
    written.append(write_text(out / "config.yaml", header + yaml.safe_dump({"data": data_cfg}, sort_keys=False)))
    return written
