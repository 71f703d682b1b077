"""The deployment subcommands: ``stkd predict``, ``stkd export``, ``stkd serve`` (see docs/deploy.md).

``cli.py`` imports this module and calls :func:`register`.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from stkd.errors import STKDError

OUT_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
_FILE_SOURCES = ("csv-wide", "csv-long", "parquet-long", "metr-la-h5", "pems-npz")


# ======================================================================== reading input
def _header(path: Path, fmt: str) -> list[str]:
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            return [str(c) for c in pq.read_schema(path).names]
        return [str(c) for c in pd.read_csv(path, nrows=0).columns]
    except Exception as e:  # noqa: BLE001 - any reader failure is a bad input file
        raise STKDError(f"{path}: cannot read the header ({type(e).__name__}: {str(e)[:200]})") from None


def input_config(path: Path, data_cfg, spec, source: str | None = None, start: str | None = None):
    """The run's DataConfig turned into one that reads ``path``: same format options, no selection,
    no graph, no side files."""
    from stkd.predictor import _NODE_NAMES, _TIME_NAMES

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
            has_node = data_cfg.node_column in cols or any(c.lower() in _NODE_NAMES for c in cols)
            has_time = data_cfg.time_column in cols or any(c.lower() in _TIME_NAMES for c in cols)
            source = "csv-long" if has_node and has_time else "csv-wide"
        else:
            raise STKDError(f"--input {path}: unknown file type {ext!r}; use .csv (wide or long), .parquet (long), "
                            ".h5 or .npz, or name the format with --source")
    if source not in _FILE_SOURCES:
        raise STKDError(f"--source {source!r}: choose one of {', '.join(_FILE_SOURCES)}")
    if source in ("csv-long", "parquet-long"):
        cols = _header(path, "parquet" if source == "parquet-long" else "csv")
        tcol = data_cfg.time_column if data_cfg.time_column in cols else \
            next((c for c in cols if c.lower() in _TIME_NAMES), None)
        ncol = data_cfg.node_column if data_cfg.node_column in cols else \
            next((c for c in cols if c.lower() in _NODE_NAMES), None)
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
    from stkd.data.loaders import load_data
    from stkd.runs import load_run

    spec = predictor.spec
    cfg, _ = load_run(predictor.run_dir)
    from stkd.errors import ConfigError

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
    """Chunks of the long frame into a temporary file beside ``out``; ``commit`` moves it into place."""

    def __init__(self, out: Path, fmt: str) -> None:
        import tempfile

        self.out, self.fmt = out, fmt
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
        os.close(fd)
        self.tmp = Path(tmp)
        self.rows = 0
        self._pq = None
        self._first = True

    def write(self, frame: pd.DataFrame) -> None:
        if self.fmt == "csv":
            frame.to_csv(self.tmp, mode="w" if self._first else "a", header=self._first, index=False,
                         float_format="%.7g")
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(frame, preserve_index=False)
            if self._pq is None:
                self._pq = pq.ParquetWriter(self.tmp, table.schema)
            self._pq.write_table(table)
        self._first = False
        self.rows += len(frame)

    def commit(self, empty_columns: list[str]) -> None:
        if self._first:  # nothing written: still a valid, empty file
            self.write(pd.DataFrame({c: pd.Series([], dtype="float64" if c == "value" else "object")
                                     for c in empty_columns}))
            self.rows = 0
        if self._pq is not None:
            self._pq.close()
        os.chmod(self.tmp, 0o644)
        os.replace(self.tmp, self.out)

    def abort(self) -> None:
        if self._pq is not None:
            try:
                self._pq.close()
            except Exception:  # noqa: BLE001
                pass
        self.tmp.unlink(missing_ok=True)


def predict_file(run_dir, input_path, out, *, model=None, every: int = 1, last: bool = False,
                 overwrite: bool = False, source: str | None = None, start: str | None = None,
                 batch_size: int = 256) -> dict:
    """Forecasts at every step of an input file where a whole window ends, written in long form.

    Returns a summary: rows, windows, skipped windows (no reading in their P steps), ignored nodes.
    """
    from stkd.predictor import load

    out = Path(out)
    fmt = OUT_FORMATS.get(out.suffix.lower())
    if fmt is None:
        raise STKDError(f"--out {out}: the extension must be .csv or .parquet (the output format)")
    if out.exists() and not overwrite:
        raise STKDError(f"--out {out} exists; pass --overwrite to replace it")
    if out.is_dir():
        raise STKDError(f"--out {out} is a directory")
    if every < 1:
        raise STKDError(f"--every must be >= 1, got {every}")
    predictor = load(run_dir, model)
    values, index, ignored = read_input(predictor, Path(input_path), source, start)
    skipped: list = []
    writer = _Writer(out, fmt)
    windows = 0
    try:
        for fc in predictor.predict_series(values, index, every=every, last=last, batch_size=batch_size,
                                           skipped=skipped):
            writer.write(fc.to_frame())
            windows += len(fc)
        cols = ["issued_at", "target_time", "node", "horizon"]
        if predictor.spec.out_features > 1:
            cols.append("target")
        if predictor.out_classes > 1:
            cols.append("class")
        writer.commit(cols + ["value"])
    except BaseException:
        writer.abort()
        raise
    return {"model": predictor.name, "out": str(out), "rows": writer.rows, "windows": windows,
            "skipped_windows": len(skipped), "ignored_nodes": len(ignored), "steps": int(len(index)),
            "format": fmt}


# ======================================================================== subcommands
def cmd_predict(args) -> int:
    summary = predict_file(args.run_dir, args.input, args.out, model=args.model, every=args.every,
                           last=args.last, overwrite=args.overwrite, source=args.source, start=args.start,
                           batch_size=args.batch_size)
    print(f"{summary['model']}: {summary['windows']} forecast(s), {summary['rows']} rows -> {summary['out']}")
    if summary["skipped_windows"]:
        print(f"  skipped {summary['skipped_windows']} window(s) without any reading")
    if summary["ignored_nodes"]:
        print(f"  ignored {summary['ignored_nodes']} node(s) the model does not know")
    return 0


def cmd_export(args) -> int:
    from stkd.export import export_model

    report = export_model(args.run_dir, args.format, args.out, args.model, tolerance=args.tolerance,
                          windows=args.windows, overwrite=args.overwrite)
    print(f"exported {report['model']} ({report['format']}) to {report['out']}")
    print(f"  check on {report['checked_on']}: max |exported - pytorch| = {report['max_abs_diff']:.3g} "
          f"(allowed {report['bound']:.3g})")
    return 0


def cmd_serve(args) -> int:
    from stkd.serve import serve

    token = args.token or os.environ.get("STKD_API_TOKEN") or None
    if args.host not in ("127.0.0.1", "localhost", "::1") and token is None:
        print(f"stkd: warning: serving on {args.host} without an API token: anyone who reaches it can post",
              file=sys.stderr)
    serve(args.run_dir, host=args.host, port=args.port, backend=args.backend, token=token, model=args.model,
          threads=args.threads, log_level=args.log_level,
          persist=False if args.no_persist else (args.state or True),
          max_body_bytes=int(args.max_body_mb * 2**20))
    return 0


def register(sub, fmt=argparse.RawDescriptionHelpFormatter) -> None:
    """Add ``predict``, ``export`` and ``serve`` to the ``stkd`` parser's subcommands."""
    p = sub.add_parser(
        "predict", help="batch forecasts over a file of observations (long CSV/Parquet out)", formatter_class=fmt,
        description="Forecast with a trained model at every step of an input file where a whole input window "
                    "ends (or every K-th, or the last). The file is read like the run's data (wide or long CSV, "
                    "Parquet, ...); gaps are filled, scaled and windowed exactly as in training. The output is "
                    "long form: issued_at, target_time, node, horizon, value (original units).",
        epilog="examples:\n  stkd predict runs/la --input recent.csv --out forecasts.csv\n"
               "  stkd predict runs/la --input recent.parquet --out f.parquet --last --model gwnet")
    p.add_argument("run_dir", help="run directory (from stkd run / distill)")
    p.add_argument("--input", required=True, help="observations: wide CSV (timestamp + one column per node), "
                                                  "long CSV or Parquet (timestamp, node, value columns)")
    p.add_argument("--out", required=True, help="output file; .csv or .parquet")
    p.add_argument("--model", help="model of the run (default: the distilled student)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--every", type=int, default=1, metavar="K", help="issue every K-th step (from the last)")
    g.add_argument("--last", action="store_true", help="only the forecast from the last window")
    p.add_argument("--source", choices=_FILE_SOURCES, help="input format (default: from the extension and header)")
    p.add_argument("--start", help="first timestamp of a wide CSV without a timestamp column")
    p.add_argument("--batch-size", type=int, default=256, help="windows per model call")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    p.add_argument("--quiet", action="store_true", help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser(
        "export", help="export a model to ONNX or TorchScript, checked against PyTorch", formatter_class=fmt,
        description="Write the model (dynamic batch) with deploy.json (nodes, features, window, scaler, train means, "
                    "metrics) to a folder that serves without stkd. The export runs on held-out test windows and "
                    "fails when it differs from PyTorch by more than --tolerance (relative to the output's scale).",
        epilog="examples:\n  stkd export runs/la --format onnx --out deploy/la\n"
               "  stkd export runs/la --format torchscript --model gwnet")
    p.add_argument("run_dir")
    p.add_argument("--format", choices=("onnx", "torchscript"), default="onnx")
    p.add_argument("--out", help="folder to write (default: RUN_DIR/export/<model>-<format>)")
    p.add_argument("--model", help="model of the run (default: the distilled student)")
    p.add_argument("--tolerance", type=float, default=1e-4,
                   help="allowed max |exported - pytorch| as a share of max(1, max |output|) (default 1e-4)")
    p.add_argument("--windows", type=int, default=64, help="held-out windows to check on")
    p.add_argument("--overwrite", action="store_true", help="replace an existing export folder")
    p.add_argument("--quiet", action="store_true", help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser(
        "serve", help="a forecasting web service (FastAPI + uvicorn) over a trained model", formatter_class=fmt,
        description="POST /observations (readings of one timestamp), GET /forecast, POST /predict (stateless), "
                    "GET /health, GET /metadata; OpenAPI docs at /docs. Binds 127.0.0.1 unless --host says "
                    "otherwise. With --token (or STKD_API_TOKEN) POST endpoints need 'Authorization: Bearer T'.",
        epilog="examples:\n  stkd serve runs/la\n  stkd serve runs/la --backend onnx --port 8080 --token s3cret\n"
               "  curl -s localhost:8000/forecast?node=773869")
    p.add_argument("run_dir", help="run directory, or a folder written by stkd export")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--backend", choices=("torch", "onnx"), default="torch")
    p.add_argument("--model", help="model of the run (default: the distilled student)")
    p.add_argument("--token", help="API token for POST endpoints (or set STKD_API_TOKEN)")
    p.add_argument("--threads", type=int, help="intra-op threads of the model (default: the library's choice)")
    p.add_argument("--max-body-mb", type=float, default=5.0, help="largest request body (MiB)")
    p.add_argument("--state", help="file the rolling window is saved to after each post and resumed from "
                                   "(SQLite; default: RUN_DIR/deploy/state-<model>.sqlite)")
    p.add_argument("--no-persist", action="store_true", help="do not save the rolling window")
    p.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"))
    p.add_argument("--quiet", action="store_true", help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_serve)
