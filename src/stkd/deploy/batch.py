"""``stkd predict``: forecasts at every step of an input file, written in long form (CSV or Parquet).

The file is read like the run's data (its DataConfig with the path swapped: :func:`input_config`), put
in the model's node and feature order (:func:`read_input`), forecast window by window with
:meth:`stkd.deploy.predictor.Predictor.predict_series`, and written to a temporary file beside
``--out`` that is moved into place only when every window is written (``stkd.io.atomic_path``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from stkd.data.loaders import load_data
from stkd.deploy.loading import is_export_dir, load
from stkd.errors import ConfigError, STKDError
from stkd.io import atomic_path
from stkd.names import FILE_SOURCES, NODE_COLUMNS, OUTPUT_FORMATS, TIME_COLUMNS
from stkd.runs import load_run


def _header(path: Path, fmt: str) -> list[str]:
    try:
        if fmt == "parquet":
            return [str(c) for c in pq.read_schema(path).names]
        return [str(c) for c in pd.read_csv(path, nrows=0).columns]
    except Exception as e:  # noqa: BLE001 - any reader failure is a bad input file
        raise STKDError(f"{path}: cannot read the header ({type(e).__name__}: {str(e)[:200]})") from None


def input_config(path: Path, data_cfg, spec, source: str | None = None, start: str | None = None):
    """The run's DataConfig turned into one that reads ``path``: same format options, no selection,
    no graph, no side files."""
    path = Path(path)
    if not path.is_file():
        raise STKDError(f"--input {path}: no such file")
    suffixes = [s.lower() for s in path.suffixes]
    ext = suffixes[-1] if suffixes else ""
    if ext in (".gz", ".bz2", ".zip", ".xz") and len(suffixes) > 1:
        ext = suffixes[-2]
    kw: dict = {}
    if source is None:
        if ext in (".parquet", ".pq"):
            source = "parquet-long"
        elif ext in (".h5", ".hdf5"):
            source = "metr-la-h5"
        elif ext == ".npz":
            source = "pems-npz"
        elif ext in (".csv", ".txt", ".tsv"):
            cols = _header(path, "csv")  # a long file has a node column and a timestamp column
            has_node = data_cfg.node_column in cols or any(c.lower() in NODE_COLUMNS for c in cols)
            has_time = data_cfg.time_column in cols or any(c.lower() in TIME_COLUMNS for c in cols)
            source = "csv-long" if has_node and has_time else "csv-wide"
        else:
            raise STKDError(f"--input {path}: unknown file type {ext!r}; use .csv (wide or long), .parquet (long), "
                            ".h5 or .npz, or name the format with --source")
    if source not in FILE_SOURCES:
        raise STKDError(f"--source {source!r}: choose one of {', '.join(FILE_SOURCES)}")
    if source in ("csv-long", "parquet-long"):
        cols = _header(path, "parquet" if source == "parquet-long" else "csv")
        tcol = data_cfg.time_column if data_cfg.time_column in cols else \
            next((c for c in cols if c.lower() in TIME_COLUMNS), None)
        ncol = data_cfg.node_column if data_cfg.node_column in cols else \
            next((c for c in cols if c.lower() in NODE_COLUMNS), None)
        if tcol is None or ncol is None:
            raise STKDError(f"--input {path}: a long file needs a timestamp and a node column (e.g. timestamp, node, "
                            f"value); the header has {cols[:10]}")
        targets = list(spec.targets)
        covs = [f for f in spec.features if f not in spec.targets]
        if len(spec.features) == 1 and spec.features[0] not in cols and "value" in cols:
            targets = ["value"]
        if data_cfg.covariates and data_cfg.encode:
            covs, kw["encode"] = list(data_cfg.covariates), list(data_cfg.encode)
        kw.update(time_column=tcol, node_column=ncol, target=targets, covariates=covs)
    elif source == "csv-wide":
        cols = _header(path, "csv")
        kw.update(time_column=data_cfg.time_column if data_cfg.time_column in cols else None)
    freq = spec.freq if start else None
    graph = dataclasses.replace(data_cfg.graph, method="none")
    return dataclasses.replace(data_cfg, source=source, path=str(path), start=start, freq=freq, time_range=None,
                               nodes=None, locations=None, adjacency=None, distances=None, graph=graph,
                               name=path.stem, **kw)


def read_input(predictor, path: Path, source: str | None = None, start: str | None = None):
    """``(values [T, N, F], index, ignored_nodes)`` of an input file in the model's node and feature order."""
    spec = predictor.spec
    cfg, _ = load_run(predictor.run_dir)
    try:
        data = load_data(input_config(path, cfg.data, spec, source, start))
    except ConfigError as e:
        if "data.start" in str(e) and not start:
            raise STKDError(f"--input {path}: the file has no timestamp column; pass --start with the timestamp of "
                            f"its first row (steps of {spec.freq} follow)") from None
        raise
    if data.num_steps > 1 and data.freq != predictor.prep.step:
        raise STKDError(f"--input {path}: its step is {data.freq}, the model's is {predictor.prep.step} "
                        f"({spec.freq}); resample the file first")
    feats = list(data.features)
    if len(spec.features) == 1 and len(feats) == 1:
        f_idx = [0]
    else:
        missing = [f for f in spec.features if f not in feats]
        if missing:
            raise STKDError(f"--input {path}: no feature(s) {missing}; the model reads {spec.features}, "
                            f"the file has {feats}")
        f_idx = [feats.index(f) for f in spec.features]
    pos = {n: i for i, n in enumerate(data.nodes)}
    missing = [n for n in spec.nodes if n not in pos]
    if missing:
        raise STKDError(f"--input {path}: {len(missing)} of the model's {len(spec.nodes)} nodes are not in the file, "
                        f"e.g. {missing[:5]}")
    ignored = [n for n in data.nodes if n not in predictor.node_pos]
    order = np.array([pos[n] for n in spec.nodes], dtype=np.int64)
    values = np.ascontiguousarray(data.values[:, order][:, :, f_idx])  # NaN where missing: the loader's contract
    return values, data.index, ignored


# ======================================================================== writing output
class _Writer:
    """Chunks of the long frame written one after another to ``path`` (CSV or Parquet); ``finish`` closes
    the file, with a header (an empty table) when no chunk came."""

    def __init__(self, path: Path, fmt: str) -> None:
        self.path, self.fmt = path, fmt
        self.rows = 0
        self._pq: pq.ParquetWriter | None = None
        self._first = True

    def write(self, frame: pd.DataFrame) -> None:
        if self.fmt == "csv":
            frame.to_csv(self.path, mode="w" if self._first else "a", header=self._first, index=False,
                         float_format="%.7g")
        else:
            table = pa.Table.from_pandas(frame, preserve_index=False)
            if self._pq is None:
                self._pq = pq.ParquetWriter(self.path, table.schema)
            self._pq.write_table(table)
        self._first = False
        self.rows += len(frame)

    def finish(self, empty_columns: list[str]) -> None:
        if self._first:  # nothing written: still a valid, empty file
            self.write(pd.DataFrame({c: pd.Series([], dtype="float64" if c == "value" else "object")
                                     for c in empty_columns}))
            self.rows = 0
        self.close()

    def close(self) -> None:
        if self._pq is not None:
            self._pq.close()
            self._pq = None


def predict_file(run_dir, input_path, out, *, model=None, every: int = 1, last: bool = False,
                 overwrite: bool = False, source: str | None = None, start: str | None = None,
                 batch_size: int = 256) -> dict:
    """Forecasts at every step of an input file where a whole window ends, written in long form.

    Returns a summary: rows, windows, skipped windows (no reading in their P steps), ignored nodes.
    """
    out = Path(out)
    fmt = OUTPUT_FORMATS.get(out.suffix.lower())
    if fmt is None:
        raise STKDError(f"--out {out}: the extension must be .csv or .parquet (the output format)")
    if out.exists() and not overwrite:
        raise STKDError(f"--out {out} exists; pass --overwrite to replace it")
    if out.is_dir():
        raise STKDError(f"--out {out} is a directory")
    if every < 1:
        raise STKDError(f"--every must be >= 1, got {every}")
    if is_export_dir(run_dir):
        raise STKDError(f"{run_dir} is an exported folder; stkd predict reads --input the way the run read its "
                        "data, so it needs the run directory (an exported folder serves through stkd serve or "
                        "stkd.load)")
    predictor = load(run_dir, model)
    values, index, ignored = read_input(predictor, Path(input_path), source, start)
    skipped: list = []
    windows = 0
    cols = ["issued_at", "target_time", "node", "horizon"]
    if predictor.spec.out_features > 1:  # type: ignore[operator]  # set in DeploySpec.__post_init__
        cols.append("target")
    if predictor.out_classes > 1:
        cols.append("class")
    with atomic_path(out) as tmp:  # a failed run never leaves half a file at --out
        writer = _Writer(tmp, fmt)
        try:
            for fc in predictor.predict_series(values, index, every=every, last=last, batch_size=batch_size,
                                               skipped=skipped):
                writer.write(fc.to_frame())
                windows += len(fc)
            writer.finish(cols + ["value"])
        finally:
            writer.close()
    return {"model": predictor.name, "out": str(out), "rows": writer.rows, "windows": windows,
            "skipped_windows": len(skipped), "ignored_nodes": len(ignored), "steps": int(len(index)),
            "format": fmt}
