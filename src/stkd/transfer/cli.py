"""The ``stkd transfer`` subcommand. ``stkd.cli`` calls :func:`register` on every start (``--help``
included), so nothing heavy is imported here: the command imports its implementation when it runs."""

from __future__ import annotations

import argparse
from pathlib import Path


def cmd_transfer(args) -> int:
    from stkd.cli import _overrides, resolve_config, writing_to
    from stkd.paired import gain_cell
    from stkd.transfer.report import LABELS, route_scores, schedule_hint
    from stkd.transfer.run import transfer

    cfg = resolve_config(args.config, _overrides(args), default_preset=False)
    out = Path(args.out)
    with writing_to(out):
        result = transfer(Path(args.source_run), cfg, out, histories=args.history, seeds=args.seeds,
                          teacher=args.teacher, overwrite=args.overwrite, progress=not args.quiet,
                          finetune_lr=args.finetune_lr)
    for h, run in result["runs"].items():
        print(f"history {h} ({run['batches_per_epoch']} training batches an epoch):")
        for route, label in LABELS.items():
            maes = route_scores(result, h, route)
            g = result["gains"].get(h, {}).get(route)
            gain = "" if g is None else f"  gain {gain_cell(g)}"
            print(f"  {route:17s} MAE {sum(maes) / len(maes):8.3f}{gain}  ({label})")
    hint = schedule_hint(result, cfg.train.min_batches)
    if hint:
        print(f"\n{hint}")
    print(f"\nreport: {out / 'transfer.md'}\nresults: {out / 'transfer.json'}")
    return 0


def register(sub, fmt=argparse.RawDescriptionHelpFormatter) -> None:
    """Add ``transfer`` to the ``stkd`` parser's subcommands."""
    p = sub.add_parser(
        "transfer", help="a source run's teacher guides a forecaster for a target place with little history",
        formatter_class=fmt,
        description="Train and score, on the target's test split, five routes for every kept history and seed: "
                    "the student on the target alone (target_only), the source teacher unchanged "
                    "(source_zero_shot), the source teacher fine-tuned on the target (finetuned), the student "
                    "distilled from the source teacher (kd_source) and from the fine-tuned one (kd_finetuned). "
                    "To teach other sensors the source teacher must have no per-node weights (gwnet with "
                    "params.adaptive: false, staeformer with params.adaptive_embed: 0); any teacher teaches its "
                    "own sensors (the same data keeping a short --history). Writes transfer.json, transfer.md and the "
                    "curve of error against history.",
        epilog="example:\n  stkd train --config source.yaml --set teacher.params.adaptive=false --out runs/src\n"
               "  stkd transfer --source-run runs/src --config target.yaml --history 1d,2d,4d --seeds 0 1 2 3 4 "
               "--out runs/transfer")
    p.add_argument("--source-run", required=True, help="a finished stkd train / stkd run folder (the source)")
    p.add_argument("--config", required=True, help="YAML config of the target (its data, student, train settings)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a target config value (repeatable)")
    p.add_argument("--history", default="1d,2d,4d",
                   help="target training history to keep, comma-separated durations (all: the whole train part); "
                        "val and test are unchanged (default: 1d,2d,4d)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4],
                   help="seeds of every route (default: 0 1 2 3 4; fewer seeds never establish a gain)")
    p.add_argument("--teacher", help="the source run's teacher folder (default: its first teacher)")
    p.add_argument("--finetune-lr", type=float, default=None, metavar="LR",
                   help="learning rate of the finetuned route (default: the target's train.lr); a lower one keeps "
                        "more of what the source teacher learned")
    p.add_argument("--out", required=True, help="folder to create")
    p.add_argument("--overwrite", action="store_true", help="replace an existing transfer folder")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_transfer)
