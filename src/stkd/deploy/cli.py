"""The deployment subcommands: ``stkd predict``, ``stkd export``, ``stkd serve`` (see docs/deploy.md).

``stkd.cli`` imports this module and calls :func:`register` on every start, ``stkd --help`` included, so
it imports nothing heavy: each command imports its implementation when it runs. Measured: importing
the implementations here (numpy, pandas, torch, fastapi) took ``stkd --help`` from 0.3 s to over 0.6 s.
"""

from __future__ import annotations

import argparse
import importlib
import ipaddress
import os
import sys

from stkd.errors import STKDError
from stkd.names import EXPORT_FORMATS, FILE_SOURCES, LOG_LEVELS, MAX_CLOCK_SKEW, SERVE_BACKENDS, STATE_SYNC_MODES

SERVE_MODULES = ("fastapi", "uvicorn")  # what the `serve` extra brings that `stkd serve` cannot run without
EXPORT_MODULES = ("onnx", "onnxruntime")  # the `export` extra
# --model of predict, export and serve: each picks the same default (stkd.deploy.loading.choose_model)
MODEL_HELP = ("model of the run (default: the student with the best validation score, the distilled one unless the "
              "same student trained alone scored better)")


def require_extra(extra: str, modules: tuple[str, ...], command: str) -> None:
    """One clear line (an STKDError) when a module of an optional extra is not installed."""
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError:
            raise STKDError(f'{command} needs the {extra} extra: pip install -c constraints.txt -e ".[{extra}]"') \
                from None


# Each command imports its implementation when it runs (see the module docstring for the measurement).
def cmd_predict(args) -> int:
    from stkd.deploy.batch import predict_file

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
    if args.format == "onnx":
        require_extra("export", EXPORT_MODULES, "stkd export --format onnx")
    from stkd.deploy.export import export_model

    report = export_model(args.run_dir, args.format, args.out, args.model, tolerance=args.tolerance,
                          windows=args.windows, overwrite=args.overwrite)
    print(f"exported {report['model']} ({report['format']}) to {report['out']}")
    print(f"  check on {report['checked_on']}: max |exported - pytorch| = {report['max_abs_diff']:.3g} "
          f"(allowed {report['bound']:.3g})")
    return 0


def cmd_serve(args) -> int:
    require_extra("serve", SERVE_MODULES, "stkd serve")
    if args.backend == "onnx":
        require_extra("export", EXPORT_MODULES, "stkd serve --backend onnx")
    from stkd.deploy.serve import serve

    token = api_token(args.token)
    if token is None and not is_loopback(args.host):
        if not args.insecure:
            raise STKDError(f"--host {args.host} is reachable from other machines and no API token is set: anyone "
                            "could post readings; give --token (or STKD_API_TOKEN), or --insecure to serve "
                            "without one")
        print(f"stkd: warning: serving on {args.host} without an API token (--insecure): anyone who reaches it "
              "can post", file=sys.stderr)
    serve(args.run_dir, host=args.host, port=args.port, backend=args.backend, token=token, model=args.model,
          threads=args.threads, log_level=args.log_level,
          persist=False if args.no_persist else (args.state or True),
          max_body_bytes=int(args.max_body_mb * 2**20), max_clock_skew=args.max_clock_skew,
          reset_state=args.reset_state, sync=args.sync, trust_code=args.trust_code)
    return 0


def api_token(flag: str | None) -> str | None:
    """The token of ``--token`` or else ``STKD_API_TOKEN``; an empty one is an error, not "no token"
    (an empty variable used to switch authentication off without a word)."""
    if flag is not None:
        if not flag.strip():
            raise STKDError("--token is empty: give a token, or leave --token out to serve without one")
        return flag
    env = os.environ.get("STKD_API_TOKEN")
    if env is not None and not env.strip():
        raise STKDError("STKD_API_TOKEN is set but empty: set a token, or unset the variable to serve without one")
    return env


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only (127.0.0.0/8, ::1, localhost)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


def register(sub, fmt=argparse.RawDescriptionHelpFormatter) -> None:
    """Add ``predict``, ``export`` and ``serve`` to the ``stkd`` parser's subcommands."""
    p = sub.add_parser(
        "predict", help="batch forecasts over a file of observations (long CSV/Parquet out)", formatter_class=fmt,
        description="Forecast with a trained model at every step of an input file where a whole input window "
                    "ends (back to its longest lag for a model with lagged inputs; or every K-th, or the last). The file is read like the run's data (wide or long CSV, "
                    "Parquet, ...); gaps are filled, scaled and windowed exactly as in training. The output is "
                    "long form: issued_at, target_time, node, horizon, value (original units).",
        epilog="examples:\n  stkd predict runs/la --input recent.csv --out forecasts.csv\n"
               "  stkd predict runs/la --input recent.parquet --out f.parquet --last --model gwnet")
    p.add_argument("run_dir", help="run directory (from stkd run / distill)")
    p.add_argument("--input", required=True, help="observations: wide CSV (timestamp + one column per node), "
                                                  "long CSV or Parquet (timestamp, node, value columns)")
    p.add_argument("--out", required=True, help="output file; .csv or .parquet")
    p.add_argument("--model", help=MODEL_HELP)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--every", type=int, default=1, metavar="K", help="issue every K-th step (from the last)")
    g.add_argument("--last", action="store_true", help="only the forecast from the last window")
    p.add_argument("--source", choices=tuple(FILE_SOURCES), help="input format (default: from the extension and header)")
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
    p.add_argument("--format", choices=EXPORT_FORMATS, default="onnx")
    p.add_argument("--out", help="folder to write (default: RUN_DIR/export/<model>-<format>)")
    p.add_argument("--model", help=MODEL_HELP)
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
                    "otherwise (another address needs a token, or --insecure). With --token (or STKD_API_TOKEN) "
                    "POST endpoints need 'Authorization: Bearer T', and POST /admin/reset and "
                    "/admin/rollback?to=T reset or roll back the rolling window.",
        epilog="examples:\n  stkd serve runs/la\n  stkd serve runs/la --backend onnx --port 8080 --token s3cret\n"
               "  stkd serve runs/la --reset-state        # start with an empty window (the old file is kept)\n"
               "  curl -s localhost:8000/forecast?node=773869")
    p.add_argument("run_dir", help="run directory, or a folder written by stkd export")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--backend", choices=SERVE_BACKENDS, default="torch")
    p.add_argument("--model", help=MODEL_HELP)
    p.add_argument("--token", help="API token for POST endpoints (or set STKD_API_TOKEN)")
    p.add_argument("--threads", type=int, help="intra-op threads of the model (default: the library's choice)")
    p.add_argument("--max-body-mb", type=float, default=5.0, help="largest request body (MiB)")
    p.add_argument("--state", help="file the rolling window is saved to after each post and resumed from "
                                   "(SQLite; default: RUN_DIR/deploy/state-<model>.sqlite)")
    p.add_argument("--no-persist", action="store_true", help="do not save the rolling window")
    p.add_argument("--reset-state", action="store_true",
                   help="start with an empty rolling window; the state file is kept as <file>.bad-<time>")
    p.add_argument("--sync", choices=STATE_SYNC_MODES, default="full",
                   help="full (default): a post is acknowledged once it is on disk; normal: once SQLite has it "
                        "(survives a crash of the server, not of the machine; ~3 ms faster per post)")
    p.add_argument("--max-clock-skew", default=MAX_CLOCK_SKEW, metavar="DURATION",
                   help="refuse readings stamped further ahead of this server's clock (naive timestamps: its "
                        f"local time); e.g. 15min, 2h, or none (default {MAX_CLOCK_SKEW})")
    p.add_argument("--insecure", action="store_true", help="allow a non-loopback --host without an API token")
    p.add_argument("--trust-code", action="store_true",
                   help="allow an exported TorchScript model.pt to load: TorchScript is code and runs as it loads")
    p.add_argument("--log-level", default="info", choices=LOG_LEVELS)
    p.add_argument("--quiet", action="store_true", help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_serve)
