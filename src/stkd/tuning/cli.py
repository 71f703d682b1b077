"""``stkd tune``: its flags and the plain function behind them. Registered by :mod:`stkd.cli`; Optuna is
imported only when the command runs (``stkd --help`` works without it)."""

from __future__ import annotations

import sys
from pathlib import Path

from stkd import names

EPILOG = f"""examples:
  stkd tune --teacher-run runs/teacher --out runs/tune --trials 30
  stkd tune --teacher-run runs/teacher --out runs/tune --timeout 30min --workers 2
  stkd tune --teacher-run runs/teacher --out runs/tune --space space.yaml --set student.name=mlp
  stkd distill --teacher-run runs/teacher --config runs/tune/best.yaml --out runs/best

Running the same command again continues the study (trials already done count toward --trials).
Several machines: the same command with the same --storage postgresql://user:pw@host/db and --study
joins one study. View it: optuna-dashboard sqlite:///runs/tune/{names.TUNE_STORAGE_FILE}
Searched keys (--space): {', '.join(names.TUNE_PARAMS)}
"""


def base_config(args):
    """The config every trial starts from: ``--config`` (and ``--set``), else the teacher run's own."""
    from stkd.cli import _overrides, apply_overrides, resolve_config
    from stkd.config import parse_config, to_dict
    from stkd.runs import load_run, require_run_dir

    if args.config:
        return resolve_config(args.config, _overrides(args))
    base, _ = load_run(require_run_dir(Path(args.teacher_run)))
    return parse_config(apply_overrides(to_dict(base), _overrides(args)))


def cmd_tune(args) -> int:
    from stkd.cli import writing_to
    from stkd.config import TuneConfig
    from stkd.tuning.search import tune

    trials = args.trials if args.trials is not None or args.timeout else TuneConfig.trials
    tcfg = TuneConfig(trials=trials, timeout=args.timeout, workers=args.workers, storage=args.storage,
                      study=args.study, prune_warmup=args.prune_warmup, prune_startup=args.prune_startup)
    cfg = base_config(args)
    out = Path(args.out)
    try:
        with writing_to(out):
            res = tune(cfg, Path(args.teacher_run), out, tcfg, space=args.space, overwrite=args.overwrite,
                       progress=not args.quiet)
    except KeyboardInterrupt:
        print("stkd: interrupted; the study keeps every finished trial: run the same command again to continue",
              file=sys.stderr)
        return 130
    print(res.table)
    print(f"\nbest config: {out / 'best.yaml'}\nsummary: {out / 'tune.json'}\ntrials: {out / 'trials.csv'}")
    return 0


def register(sub, fmt) -> None:
    from stkd.config import TuneConfig

    p = sub.add_parser("tune", help="search the student's hyper-parameters with Optuna (validation split only)",
                       description="Distil many students from the teacher(s) of an earlier run with sampled "
                                   "settings (distillation weight, loss or temperature, learning rate, width, "
                                   "depth), score each on the validation split, prune those that fall behind, and "
                                   "write the best as a ready-to-run config; its test result is computed once, at "
                                   "the end. Needs the tune extra: pip install -c constraints.txt -e \".[tune]\".",
                       epilog=EPILOG, formatter_class=fmt)
    p.add_argument("--teacher-run", required=True, help="run directory holding trained teacher(s) (stkd train/run)")
    p.add_argument("--out", required=True, help="search folder: study.db, trials/, trials.csv, best.yaml, tune.json")
    p.add_argument("--config", help="config every trial starts from (default: the teacher run's config.yaml)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a value of that config, e.g. --set train.epochs=20 (repeatable)")
    p.add_argument("--seed", type=int, help="train.seed: every trial's seed, and the sampler's")
    p.add_argument("--trials", type=int,
                   help=f"trials in the whole study, earlier sessions' included (default {TuneConfig.trials} "
                        "unless --timeout is given)")
    p.add_argument("--timeout", help="this session's wall time, e.g. 30min or 2h: then no trial starts and "
                                     "running ones stop after their epoch")
    p.add_argument("--workers", type=int, default=1, help="processes on this machine running trials (default 1)")
    p.add_argument("--storage", help="Optuna storage URL (default sqlite:///OUT/study.db); a PostgreSQL URL lets "
                                     "several machines join one study")
    p.add_argument("--study", default=TuneConfig.study, help=f"study name in the storage (default {TuneConfig.study})")
    p.add_argument("--space", help="YAML file narrowing or fixing the searched keys (see the README, Tuning)")
    p.add_argument("--prune-warmup", type=int, default=TuneConfig.prune_warmup,
                   help=f"epochs a trial trains before it may be pruned (default {TuneConfig.prune_warmup})")
    p.add_argument("--prune-startup", type=int, default=TuneConfig.prune_startup,
                   help=f"finished trials before any is pruned (default {TuneConfig.prune_startup})")
    p.add_argument("--overwrite", action="store_true", help="replace the search folder and start a new study")
    p.add_argument("--quiet", action="store_true", help="no per-trial lines")
    p.set_defaults(func=cmd_tune)

