"""The Python API: the pipeline from a config dict (or :class:`~stkd.config.RunConfig`) and data from
pandas frames, without YAML files or the command line.

    import stkd
    data = stkd.from_frame(df)                          # wide: index = timestamps, columns = sensors
    res = stkd.run({"train": {"epochs": 5}}, out="runs/api", data=data)
    print(res.table)                                    # the side-by-side markdown table of report.md
    forecast = res.predict(recent_df)                   # = stkd.load(res.run_dir).predict(recent_df)

Data given as an :class:`~stkd.data.container.STData` is written into the run folder
(``RUN/data/records.parquet`` in long form, ``locations.csv`` and ``adjacency.npz`` when it has them)
and ``config.yaml`` names those files as a ``parquet-long`` source, so the run re-runs and re-evaluates
from its folder alone (``stkd evaluate RUN``, ``stkd run --config RUN/config.yaml --out ...``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from stkd.config import RunConfig, dump_config, parse_config
from stkd.data.container import STData
from stkd.data.readers.common import _Rows
from stkd.data.readers.long import long_frame
from stkd.errors import ConfigError, DataError
from stkd.io import atomic_path, read_json, write_text
from stkd.report import format_table
from stkd.runs import prepare_run_dir

DATA_DIR = "data"  # where stkd.run(..., data=...) writes the data in the run folder


@dataclass
class Result:
    """What :func:`run` returns: the run folder and its results."""

    run_dir: Path
    metrics: dict

    @property
    def table(self) -> str:
        """The side-by-side markdown table (every model's test errors, size and speed)."""
        return format_table(self.metrics)

    @property
    def models(self) -> dict[str, dict]:
        """metrics.json's ``models``: name -> role, params, test scores, latency, ..."""
        return self.metrics.get("models", {})

    @property
    def report_path(self) -> Path:
        return self.run_dir / "report.md"

    def load(self, model: str | None = None, **kw):
        """The :class:`~stkd.deploy.predictor.Predictor` of ``model`` (default: the student with the best
        validation score)."""
        from stkd.deploy.loading import load  # the serving stack, loaded when asked for

        return load(self.run_dir, model, **kw)

    def predict(self, window, timestamps=None, *, model: str | None = None, **kw):
        """Forecasts from recent observations: ``self.load(model).predict(window, timestamps, ...)``."""
        return self.load(model).predict(window, timestamps, **kw)


def _as_config(config: dict | RunConfig | str | Path | None) -> RunConfig:
    if config is None:
        return parse_config({})
    if isinstance(config, RunConfig):
        return config
    if isinstance(config, dict):
        return parse_config(config)
    if isinstance(config, (str, Path)):
        from stkd.config import load_config

        return load_config(config)
    raise ConfigError(f"config: expected a dict, a RunConfig or a YAML file path, got {type(config).__name__}")


def run(config: dict | RunConfig | str | Path | None = None, out: str | Path = "runs/api", *,
        data: STData | pd.DataFrame | None = None, overwrite: bool = False, resume: bool = False,
        progress: bool = False) -> Result:
    """The whole pipeline (as ``stkd run``): teacher(s), soft-label cache, distilled and plain
    students, baselines, ``metrics.json`` and the report in ``out``.

    ``data``: an :class:`STData` (or a wide DataFrame, through :func:`from_frame`) to use instead of
    ``config['data']``'s source; it is written into ``out/data/`` and ``config.yaml`` points there. The
    config's other data keys (window, split, graph, scaler, ...) still apply.
    """
    # torch and the models, loaded when a run starts
    from stkd.pipeline import run as run_pipeline

    cfg = _as_config(config)
    out = Path(out)
    if data is not None:
        if isinstance(data, pd.DataFrame):
            data = from_frame(data)
        if not isinstance(data, STData):
            raise ConfigError(f"data: expected an STData or a DataFrame, got {type(data).__name__}")
        prepare_run_dir(out, overwrite=overwrite, resume=resume)  # refuses a folder it must not clobber
        cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, **write_data(data, out / DATA_DIR)))
        if not (out / "config.yaml").is_file():
            write_text(out / "config.yaml", dump_config(cfg))  # marks the folder as a run: the pipeline fills it
        resume = True  # the folder now holds the data: the pipeline continues it (a fresh run trains from start)
        overwrite = False
    run_pipeline(cfg, out, overwrite=overwrite, resume=resume, progress=progress)
    return Result(out, read_json(out / "metrics.json"))


def write_data(data: STData, folder: Path) -> dict[str, Any]:
    """``data`` as files a config can name (long parquet records, locations CSV, adjacency npz); returns
    the ``data`` config keys that read them back as the same values, nodes, times and graph."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    T, N, F = data.values.shape
    cols = {"time": np.repeat(data.index.to_numpy(), N), "node": np.tile(np.asarray(data.nodes, dtype=object), T)}
    vals = np.where(data.mask, data.values, np.nan).reshape(T * N, F)  # [T*N, F]
    for j, f in enumerate(data.features):
        cols[f] = vals[:, j]
    records = pd.DataFrame(cols)
    observed = np.asarray(data.mask.reshape(T * N, F).any(axis=1))  # [T*N]
    observed[:N] = True  # keep the first step of every node: the node order and the start stay as they are
    observed[-N:] = True  # and the last, so the time span stays
    path = folder / "records.parquet"
    with atomic_path(path, ".parquet") as tmp:
        records[observed].to_parquet(tmp, index=False)
    keys: dict[str, Any] = {
        "source": "parquet-long", "name": data.name, "path": str(path.resolve()), "time_column": "time",
        "node_column": "node", "target": list(data.targets), "covariates": list(data.features[len(data.targets):]),
        "encode": [], "freq": data.freq_str or None, "locations": None, "adjacency": None, "distances": None,
        "null_value": None}
    if data.coords is not None:
        loc = folder / "locations.csv"
        c = np.asarray(data.coords, dtype=float)
        with atomic_path(loc, ".csv") as tmp:
            pd.DataFrame({"node": data.nodes, "latitude": c[:, 0], "longitude": c[:, 1]}).to_csv(tmp, index=False)
        keys["locations"] = str(loc.resolve())
    if data.adjacency is not None:
        adj = folder / "adjacency.npz"
        with atomic_path(adj, ".npz") as tmp, open(tmp, "wb") as fh:
            sp.save_npz(fh, sp.csr_matrix(data.adjacency))
        keys["adjacency"] = str(adj.resolve())
    return keys


def from_frame(df: pd.DataFrame, *, time_column: str | None = None, node_column: str | None = None,
               target: str | list[str] | None = None, covariates: list[str] | None = None,
               freq: str | None = None, coords=None, adjacency=None, name: str = "frame",
               duplicates: str = "error") -> STData:
    """An :class:`STData` from a pandas DataFrame, with the checks of the file readers.

    - wide (no ``node_column``): a DatetimeIndex (or ``time_column``) and one column per sensor holding
      one target (named ``target``, default ``value``);
    - long (``node_column`` given): records ``time_column, node_column, target..., covariates...``.

    ``coords``: a DataFrame (``node, latitude, longitude`` columns, or indexed by node with the two
    columns), a dict node -> (lat, lon) or an ``[N, 2]`` array in node order. ``adjacency``: an
    ``[N, N]`` array or scipy matrix in node order, or a DataFrame indexed and labelled by node ids.
    """
    if not isinstance(df, pd.DataFrame):
        raise DataError(f"from_frame: expected a pandas DataFrame, got {type(df).__name__}")
    targets = [target] if isinstance(target, str) else list(target or [])
    if node_column is None:  # wide
        if len(targets) > 1:
            raise ConfigError(f"from_frame: a wide frame holds one value per sensor; got target={targets}")
        if time_column is not None:
            if time_column not in df.columns:
                raise DataError(f"from_frame: no column {time_column!r}; the frame has {list(map(str, df.columns))[:8]}")
            df = df.set_index(time_column)
        if not isinstance(df.index, pd.DatetimeIndex):
            raise DataError("from_frame: a wide frame needs a DatetimeIndex (or time_column=...) and one column "
                            f"per sensor; the index is {type(df.index).__name__}")
        feat = targets[0] if targets else "value"
        long = df.rename_axis("time").rename(columns=str)
        long = long.reset_index().melt(id_vars="time", var_name="node", value_name=feat)
        # melt orders records column by column: node order as in the frame, times sorted by the reader
        time_column, node_column, targets = "time", "node", [feat]
        df = long
    elif time_column is None:
        raise ConfigError("from_frame: a long frame needs time_column (and node_column)")
    data = long_frame(df.reset_index(drop=True), _Rows(Path("frame")), "frame", time_column=time_column,
                      node_column=node_column, target=targets, covariates=list(covariates or []), freq=freq,
                      duplicates=duplicates, name=name, meta={"source": "frame"})
    if coords is not None:
        data = dataclasses.replace(data, coords=_coords(coords, data.nodes))
    if adjacency is not None:
        data = dataclasses.replace(data, adjacency=_adjacency(adjacency, data.nodes))
    return data


def _coords(coords, nodes: list[str]) -> np.ndarray:
    """``[N, 2]`` (lat, lon) in ``nodes`` order from a frame, a dict or an array."""
    if isinstance(coords, pd.DataFrame):
        c = coords.copy()
        if "node" in c.columns:
            c = c.set_index("node")
        c.index = c.index.map(str)
        missing_cols = [k for k in ("latitude", "longitude") if k not in c.columns]
        if missing_cols:
            raise DataError(f"coords: no column(s) {missing_cols}; expected node, latitude, longitude")
        coords = {n: (row.latitude, row.longitude) for n, row in c.iterrows()}
    if isinstance(coords, dict):
        coords = {str(k): v for k, v in coords.items()}
        missing = [n for n in nodes if n not in coords]
        if missing:
            raise DataError(f"coords: no coordinates for node(s) {missing[:5]}")
        coords = [coords[n] for n in nodes]
    arr = np.asarray(coords, dtype=float)
    if arr.shape != (len(nodes), 2):
        raise DataError(f"coords: expected [N, 2] = [{len(nodes)}, 2] (latitude, longitude), got {list(arr.shape)}")
    if not np.isfinite(arr).all() or (np.abs(arr[:, 0]) > 90).any() or (np.abs(arr[:, 1]) > 180).any():
        raise DataError("coords: latitudes must lie in [-90, 90] and longitudes in [-180, 180], all finite")
    return arr


def _adjacency(adj, nodes: list[str]):
    """``[N, N]`` in ``nodes`` order (a DataFrame is reordered by its node labels)."""
    if isinstance(adj, pd.DataFrame):
        adj = adj.rename(index=str, columns=str)
        missing = [n for n in nodes if n not in adj.index or n not in adj.columns]
        if missing:
            raise DataError(f"adjacency: node(s) {missing[:5]} missing from the frame's index or columns")
        adj = adj.loc[nodes, nodes].to_numpy(dtype=float)
    shape = adj.shape if sp.issparse(adj) else np.asarray(adj).shape
    if tuple(shape) != (len(nodes), len(nodes)):
        raise DataError(f"adjacency: expected [N, N] = [{len(nodes)}, {len(nodes)}], got {list(shape)}")
    return sp.csr_array(adj, dtype=np.float32)
