"""The ``stkd`` command line: subcommands that are plain functions with typed arguments.

Every subcommand has ``--help`` with an example. Errors in user input print one clear line (no
traceback) and exit with status 2.
"""

from __future__ import annotations

import argparse
import errno
import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

from stkd.errors import ConfigError, STKDError
from stkd.names import BUILTIN_DATASETS, DEFAULT_BUILTIN

EPILOG_RUN = """examples:
  stkd run                                   # embedded Auckland pedestrian data, default preset
  stkd run --config my.yaml --out runs/la    # your data
  stkd run --set train.epochs=5 --set student.name=mlp
"""


# ---------------------------------------------------------------------- config
def _parse_value(text: str):
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _override_nodes(raw: dict, key: str) -> list[dict]:
    """The sections a dotted ``--set`` key's last part is set in, created where missing: ``teacher.KEY`` in every
    teacher of a list (a run may have several), ``teacher.N.KEY`` in the N-th, from 0."""
    parts = key.strip().split(".")
    nodes, i = [raw], 0
    while i < len(parts) - 1:
        part, index = parts[i], parts[i + 1] if i + 2 < len(parts) and parts[i + 1].isdigit() else None
        found: list[dict] = []
        for node in nodes:
            child = node.get(part) if isinstance(node.get(part), list) else node.setdefault(part, {})
            if isinstance(child, list):
                if index is not None and int(index) >= len(child):
                    raise ConfigError(f"--set {key}: {part} has {len(child)} entries, numbered 0 to {len(child) - 1}")
                found += child if index is None else [child[int(index)]]
            elif not isinstance(child, dict):
                raise ConfigError(f"--set {key}: {part} is not a section")
            elif index is not None and index != "0":
                raise ConfigError(f"--set {key}: {part} has one entry, numbered 0")
            else:
                found.append(child)
        nodes, i = found, i + (2 if index is not None else 1)
    return nodes


def apply_overrides(raw: dict, overrides: list[str]) -> dict:
    """Apply ``section.key=value`` overrides (values parsed as YAML scalars/lists) to a raw config.

    ``teacher.key`` sets the key in every teacher (a run may have several: an ensemble), ``teacher.N.key`` in the
    N-th, from 0. Naming another model (``student.name=mlp``) drops the old model's ``params`` (they belong to the
    old model); ``params`` given by the same overrides (``student.params.hidden=[32]``) are kept.
    """
    for sec in ("teacher", "student"):  # the short forms `student: stid`, `teacher: [gwnet]`
        if isinstance(raw.get(sec), str):
            raw[sec] = {"name": raw[sec]}
        elif isinstance(raw.get(sec), list):
            raw[sec] = [{"name": t} if isinstance(t, str) else t for t in raw[sec]]
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected key=value, e.g. train.epochs=5")
    for item in overrides or []:
        key, _, value = item.partition("=")
        parts = key.strip().split(".")
        names_model = len(parts) == 2 or (len(parts) == 3 and parts[1].isdigit())  # teacher.name, teacher.1.name
        if parts[0] in ("teacher", "student") and parts[-1] == "name" and names_model:
            for node in _override_nodes(raw, key):
                if node.get("name") != _parse_value(value) and node.get("params"):
                    node["params"] = {}
    for item in overrides or []:
        key, value = item.split("=", 1)
        for node in _override_nodes(raw, key):
            node[key.strip().split(".")[-1]] = _parse_value(value)
    return raw


def resolve_config(config: str | None, overrides: list[str] | None = None, *, default_preset: bool = True):
    """A RunConfig from a YAML file, a builtin data set name, or the default preset, plus overrides."""
    from stkd.config import parse_config
    from stkd.presets import default_preset_dict
    from stkd.runs import absolutize_paths

    base_dir = None
    if config is None:
        raw = default_preset_dict() if default_preset else {}
    elif config.startswith("builtin:") or config in BUILTIN_DATASETS:
        name = config.split(":", 1)[-1]
        raw = default_preset_dict() if name == DEFAULT_BUILTIN else {"data": {"source": "builtin", "name": name}}
    else:
        path = Path(config)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist (or name a builtin: "
                              f"{', '.join(BUILTIN_DATASETS)})")
        try:
            raw = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: not valid YAML: {e}") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of sections")
        base_dir = path.resolve().parent
    raw = apply_overrides(raw, overrides or [])
    cfg = parse_config(raw, where=Path(config).name if config and base_dir else "config")
    return absolutize_paths(cfg, base_dir)


def _overrides(args) -> list[str]:
    """The ``--set`` overrides of a command, with ``--seed N`` as ``train.seed=N`` (applied last)."""
    items = list(getattr(args, "set", None) or [])
    if getattr(args, "seed", None) is not None:
        items.append(f"train.seed={args.seed}")
    return items


def default_out() -> Path:
    return Path("runs") / time.strftime("run-%Y%m%d-%H%M%S")


_WRITE_ERRORS = {errno.ENOSPC: "no space left on the device", errno.EDQUOT: "disk quota exceeded",
                 errno.EROFS: "the file system is read-only", errno.EACCES: "permission denied",
                 errno.EPERM: "permission denied"}


@contextmanager
def writing_to(folder: Path) -> Iterator[None]:
    """Turn a full disk or a read-only / unwritable output folder into one line naming the folder (and the
    file) and what to do, instead of a traceback. Atomic writes leave the files already there intact."""
    try:
        yield
    except OSError as e:
        if e.errno not in _WRITE_ERRORS:
            raise
        what = _WRITE_ERRORS[e.errno]
        name = Path(e.filename) if e.filename else None
        from stkd.runs import lock_path

        folder = Path(folder).absolute()
        if (name is not None and folder not in (name.absolute(), *name.absolute().parents)
                and name.absolute() != lock_path(folder)):
            raise STKDError(f"cannot access {name}: {what}") from None  # an input, not the output folder
        fix = ("free some space there" if e.errno in (errno.ENOSPC, errno.EDQUOT)
               else "make it writable")
        raise STKDError(f"cannot write to {folder}{f' ({name.name})' if name is not None else ''}: {what}; "
                        f"{fix}, or choose another --out") from None


# ---------------------------------------------------------------- subcommands
def cmd_run(args) -> int:
    from stkd.pipeline import run

    cfg = resolve_config(args.config, _overrides(args))
    out = Path(args.out) if args.out else default_out()
    if args.devices and args.devices > 1:
        from stkd.distributed import relaunch_with_torchrun

        return relaunch_with_torchrun(args.devices)
    with writing_to(out):
        metrics = run(cfg, out, overwrite=args.overwrite, resume=args.resume, progress=not args.quiet)
    from stkd.distributed import is_rank0

    if is_rank0():
        _print_result(metrics, out, with_metrics=True)
    return 0


def _print_result(metrics: dict, run_dir: Path, *, with_metrics: bool = False) -> None:
    """The side-by-side table, the student that serve / export / predict use by default (chosen on the
    validation split) and where the report is."""
    from stkd.report import format_table
    from stkd.report.tables import none_served_reason, served_student

    print(format_table(metrics))
    models = metrics.get("models") or {}
    served = served_student(models)
    if served is not None:
        print(f"\nserved by default (stkd serve, export, predict; the better student on validation): {served}")
    elif (reason := none_served_reason(models)) is not None:
        print(f"\nserved by default: none. {reason}".replace("`", ""))
    print(f"\nreport: {run_dir / 'report.md'}" + (f"\nmetrics: {run_dir / 'metrics.json'}" if with_metrics else ""))


def cmd_train(args) -> int:
    from stkd.pipeline import train_only

    cfg = resolve_config(args.config, _overrides(args))
    out = Path(args.out) if args.out else default_out()
    with writing_to(out):
        run_dir = train_only(cfg, out, overwrite=args.overwrite, resume=args.resume, progress=not args.quiet)
    print(f"teacher(s) and soft-label cache written to {run_dir}; distil a student with\n"
          f"  stkd distill --teacher-run {run_dir} --out <dir>")
    return 0


def cmd_distill(args) -> int:
    from stkd.config import distinct_seeds
    from stkd.pipeline import distill_from
    from stkd.runs import load_run

    if args.seeds is not None:  # checked before anything is read
        if args.seed is not None:
            raise ConfigError("stkd distill: give --seed (one run) or --seeds (a run per seed), not both")
        args.seeds = distinct_seeds(args.seeds)
    if args.config:
        cfg = resolve_config(args.config, _overrides(args))
    else:
        from stkd.config import parse_config, to_dict

        base, _ = load_run(args.teacher_run)
        cfg = parse_config(apply_overrides(to_dict(base), _overrides(args)))
    out = Path(args.out) if args.out else default_out()
    if args.seeds:
        from stkd.across_seeds import distill_seeds, render

        with writing_to(out):
            result = distill_seeds(cfg, Path(args.teacher_run), out, args.seeds, overwrite=args.overwrite,
                                   resume=args.resume, progress=not args.quiet)
        if result["records"]:  # rank 0 (under DDP the other ranks hold no records)
            print(render(result), end="")
            print(f"\nacross seeds: {out / 'seeds.md'}\nper seed: {out / 'seed-<S>'}")
        return 0
    with writing_to(out):
        metrics = distill_from(cfg, Path(args.teacher_run), out, overwrite=args.overwrite, resume=args.resume,
                               progress=not args.quiet)
    _print_result(metrics, out)
    return 0


def cmd_evaluate(args) -> int:
    from stkd.pipeline import evaluate_run

    with writing_to(Path(args.run_dir)):
        metrics = evaluate_run(Path(args.run_dir), progress=not args.quiet)
    _print_result(metrics, Path(args.run_dir))
    return 0


def _load_for_data_command(source: str, overrides):
    from stkd.data.loaders import load_data

    cfg = resolve_config(source, overrides)
    return load_data(cfg.data), cfg


def cmd_data_inspect(args) -> int:
    from stkd.data.quality import OUTLIER_IQR_K, find_outliers, shown, unusable_nodes
    from stkd.data.windows import split_data

    data, cfg = _load_for_data_command(args.source, args.set)
    info = data.describe()
    k = cfg.data.clip_outliers or OUTLIER_IQR_K
    info["outliers"] = {"k": k, "features": find_outliers(data, k)}
    try:  # what training would drop: the nodes that never report, or keep one value, in the train part
        part, ranges = split_data(data, cfg.data)
        info["dropped_nodes"] = {"train_steps": ranges["train"][1], **unusable_nodes(part, ranges["train"][1])}
    except STKDError as e:  # a split the data cannot hold: training says so too
        info["dropped_nodes"] = {"error": str(e)}
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    span = f"{info['start']} .. {info['end']}"
    lines = [f"data set      {info['name']}",
             f"nodes         {info['nodes']}",
             f"steps         {info['steps']}",
             f"frequency     {info['freq']}",
             f"time span     {span}",
             f"features      {', '.join(info['features'])} (targets: {', '.join(info['targets'])})",
             "missing share " + ", ".join(f"{k}: {v:.2%}" for k, v in info["missing_share"].items()),
             f"graph density {'none' if info['graph_density'] is None else format(info['graph_density'], '.4f')}",
             f"coordinates   {'yes' if info['has_coords'] else 'no'}",
             f"events        {info['events']}"]
    outliers = info["outliers"]["features"]
    lines.append(f"outliers      {'none ' if not outliers else ''}beyond median +- {k:g} x IQR per feature"
                 + (":" if outliers else ""))
    for o in outliers:
        worst = "; ".join(f"{e['node']} at {e['time']}: {e['value']:.6g}" for e in o["examples"])
        lines.append(f"  {o['feature']}: {o['count']} value(s) ({o['share']:.4%}) outside [{o['low']:.6g}, "
                     f"{o['high']:.6g}]; most extreme: {worst}")
    if outliers:
        lines.append("  clip them with data.clip_outliers (k), or fix the file (see docs/data.md)")
    dropped = info["dropped_nodes"]
    if "error" in dropped:
        lines.append(f"dropped       unknown: the data cannot be split for training ({dropped['error']})")
    else:
        count = len(dropped["silent"]) + len(dropped["stuck"])
        lines.append(f"dropped       {f'{count} node(s)' if count else 'none'} before training (train part: the first "
                     f"{dropped['train_steps']} steps)" + (":" if count else ""))
        for key, words in (("silent", "no observed target"), ("stuck", "the target keeps one value")):
            if dropped[key]:
                lines.append(f"  {words}: {shown(dropped[key])}")
    print("\n".join(lines))
    return 0


def cmd_data_query(args) -> int:
    from stkd.data.index import SpatioTemporalIndex

    data, _ = _load_for_data_command(args.source, args.set)
    bbox = tuple(args.bbox) if args.bbox else None
    sub = SpatioTemporalIndex(data).query(lat=args.lat, lon=args.lon, radius_km=args.radius_km, k=args.k,
                                          bbox=bbox, start=args.start, end=args.end)
    info = sub.describe()
    print(f"{info['nodes']} nodes, {info['steps']} steps ({info['start']} .. {info['end']})")
    for i, node in enumerate(sub.nodes):
        where = "" if sub.coords is None else f"  {sub.coords[i][0]:.5f}, {sub.coords[i][1]:.5f}"
        print(f"  {node}{where}")
    if args.out:
        import pandas as pd

        from stkd.io import write_text

        out = Path(args.out)
        if out.exists() and not args.overwrite:
            raise STKDError(f"{out} exists; pass --overwrite to replace it")
        frame = pd.DataFrame(sub.values[..., 0], index=sub.index, columns=sub.nodes)
        frame.index.name = "timestamp"
        write_text(out, frame.to_csv())
        print(f"wrote {out} (wide CSV of {sub.targets[0]})")
    return 0


def cmd_data_export(args) -> int:
    from stkd.data.export import export_data

    data, _ = _load_for_data_command(args.source, args.set)
    written = export_data(data, Path(args.out), args.format, overwrite=args.overwrite)
    print(f"wrote {len(written)} files to {args.out}: {', '.join(p.name for p in written)}\n"
          f"read them back with: stkd data inspect {Path(args.out) / 'config.yaml'}")
    return 0


# --------------------------------------------------------------------- parser
def _common(p: argparse.ArgumentParser, *, config=True, out=True,
            config_default: str = "the embedded Auckland pedestrian preset") -> None:
    if config:
        p.add_argument("--config", help="YAML config (sections data, teacher, student, distill, train, eval); "
                                        f"default: {config_default}")
        p.add_argument("--set", action="append", metavar="KEY=VALUE",
                       help="override a config value, e.g. --set train.epochs=5 (repeatable; teacher.KEY sets every "
                            "teacher, teacher.N.KEY the N-th from 0)")
        p.add_argument("--seed", type=int, help="random seed (train.seed): the same seed repeats a run exactly "
                                                "on the same CPU kernels and threads (the report names the machine)")
    if out:
        p.add_argument("--out", help="run directory to create (default: runs/run-<timestamp>)")
        p.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
        p.add_argument("--resume", action="store_true", help="continue an interrupted run from its checkpoints")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def build_parser() -> argparse.ArgumentParser:
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="stkd", formatter_class=fmt,
        description="Knowledge distillation for spatio-temporal data: train a graph teacher, distil a small "
                    "fast student, compare them side by side, export and serve the student.",
        epilog="examples:\n  stkd run                      # whole pipeline on the embedded default data\n"
               "  stkd data inspect akl-pedestrians\n  stkd run --config my.yaml --out runs/mine\n\n"
               "Run 'stkd <command> --help' for each command.")
    from stkd import __version__

    parser.add_argument("--version", action="version", version=f"stkd {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="command")

    p = sub.add_parser("run", help="the whole pipeline: teacher, distilled and plain student, baselines, report",
                       description="Train the teacher(s), write the soft-label cache, distil the student, train "
                                   "the same student without distillation, score baselines, and write "
                                   "metrics.json + report.md.", epilog=EPILOG_RUN, formatter_class=fmt)
    _common(p)
    p.add_argument("--devices", type=int, default=1,
                   help="data-parallel processes on this machine (torchrun, gloo on CPU)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("train", help="train the teacher(s) only and write their soft-label cache",
                       description="Train the teacher(s) of a config and cache their outputs for every window.",
                       epilog="example:\n  stkd train --config my.yaml --out runs/teacher", formatter_class=fmt)
    _common(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("distill", help="distil a student from the teacher(s) of an earlier run",
                       description="Distil a student from saved teacher(s) without retraining them: the "
                                   "teacher run's soft-label cache is reused (built once if missing).",
                       epilog="examples:\n  stkd distill --teacher-run runs/teacher --set student.name=mlp "
                              "--out runs/mlp\n  stkd distill --teacher-run runs/quickstart --seeds 0 1 2 3 4 "
                              "--out runs/seeds   # does the gain hold across seeds?", formatter_class=fmt)
    _common(p, config_default="the teacher run's config.yaml")
    p.add_argument("--teacher-run", required=True, help="run directory holding trained teacher(s)")
    p.add_argument("--seeds", type=int, nargs="+", metavar="S",
                   help="train the distilled and the plain student once per seed (a run per seed under --out) "
                        "and say whether distillation's gain holds across them (seeds.md; 5 seeds or more can "
                        "establish it)")
    p.set_defaults(func=cmd_distill)

    p = sub.add_parser("evaluate", help="re-score the models of a run and rewrite its report",
                       description="Evaluate every saved model of a run directory on its test split.",
                       epilog="example:\n  stkd evaluate runs/run-20260101-120000", formatter_class=fmt)
    p.add_argument("run_dir")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_evaluate)

    data = sub.add_parser("data", help="inspect and query data sets",
                          description="Look at a data set before training.", formatter_class=fmt,
                          epilog="examples:\n  stkd data inspect akl-pedestrians\n"
                                 "  stkd data export los-loop --out los-loop-csv\n"
                                 "  stkd data query my.yaml --lat 34.05 --lon -118.25 --radius-km 5")
    dsub = data.add_subparsers(dest="data_command", metavar="command")
    p = dsub.add_parser("inspect", help="nodes, steps, frequency, time span, missing share, graph density, "
                                        "outliers, the nodes training would drop",
                        description="Summarise a data set given by a config file or a builtin name.",
                        epilog="examples:\n  stkd data inspect akl-pedestrians\n  stkd data inspect my.yaml",
                        formatter_class=fmt)
    p.add_argument("source", nargs="?", default="akl-pedestrians",
                   help=f"config YAML or builtin name ({', '.join(BUILTIN_DATASETS)})")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config value")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_data_inspect)
    p = dsub.add_parser("query", help="nodes within a radius / box / k nearest, and a time range",
                        description="Query the spatio-temporal index (BallTree, haversine) and print the "
                                    "matching sub-data-set; --out writes it as a wide CSV.",
                        epilog="example:\n  stkd data query akl-pedestrians --lat -36.8485 --lon 174.7633 "
                               "--radius-km 0.5 --start 2024-01-01 --end 2024-01-07", formatter_class=fmt)
    p.add_argument("source", help="config YAML or builtin name")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config value")
    p.add_argument("--lat", type=float)
    p.add_argument("--lon", type=float)
    p.add_argument("--radius-km", type=float)
    p.add_argument("--k", type=int, help="k nearest nodes to --lat/--lon")
    p.add_argument("--bbox", type=float, nargs=4, metavar=("LAT_MIN", "LAT_MAX", "LON_MIN", "LON_MAX"))
    p.add_argument("--start", help="first timestamp (inclusive)")
    p.add_argument("--end", help="last timestamp (inclusive)")
    p.add_argument("--out", help="write the result as a wide CSV")
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=cmd_data_query)
    p = dsub.add_parser("export", help="write a data set as CSV files plus a config that reads them back",
                        description="Write the data (after the config's node/time selection and graph) into a "
                                    "folder: <name>.csv (wide, or long with --format long), locations.csv, "
                                    "adjacency.csv and config.yaml, which loads exactly the same arrays.",
                        epilog="examples:\n  stkd data export los-loop --out los-loop-csv\n"
                               "  stkd run --config los-loop-csv/config.yaml", formatter_class=fmt)
    p.add_argument("source", help="config YAML or builtin name")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config value")
    p.add_argument("--out", required=True, help="folder to write (must not exist or be empty)")
    p.add_argument("--format", choices=("wide", "long"), default="wide",
                   help="layout of the values file: wide (one column per node; one feature) or long (any features)")
    p.add_argument("--overwrite", action="store_true", help="replace the files of a non-empty --out")
    p.set_defaults(func=cmd_data_export)

    _register_extensions(sub, fmt)
    return parser


def _register_extensions(sub, fmt) -> None:
    """Subcommands that live in their own modules (analysis, deployment, tuning, transfer)."""
    import importlib

    for module in ("stkd.analysis.cli", "stkd.deploy.cli", "stkd.tuning.cli", "stkd.transfer.cli"):
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as e:
            if e.name and module.startswith(e.name):
                continue
            raise
        mod.register(sub, fmt)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        if args.command == "data":
            parser.parse_args(["data", "--help"])
        parser.print_help()
        return 0
    from stkd.distributed import init_from_env, launched_by_torchrun, shutdown

    if launched_by_torchrun():  # started by torchrun (or --devices N): join the process group
        import torch

        init_from_env("cuda" if torch.cuda.is_available() else "cpu")
    finished = False
    try:
        code = int(args.func(args) or 0)
        finished = True
        return code
    except STKDError as e:
        print(f"stkd: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("stkd: interrupted; continue with --resume", file=sys.stderr)
        return 130
    finally:
        shutdown(finished)


if __name__ == "__main__":
    sys.exit(main())
