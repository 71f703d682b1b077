"""``stkd transfer``: every route (:mod:`stkd.transfer.routes`) for every target history and seed, then
``transfer.json`` and ``transfer.md`` (:mod:`stkd.transfer.report`).

Output folder (``--out``)::

    config.yaml                   the target config (the command's other arguments are in transfer.json)
    transfer.json                 per history, seed and route the test metrics; per seed the fine-tuned
                                  teacher's best epoch (0: no epoch of fine-tuning beat the source
                                  weights on validation, so they were kept); per route the gain over
                                  target_only across seeds; rewritten after each run, so a stopped
                                  transfer keeps what it finished
    transfer.md, plots/transfer_curve.png
    runs/<history>-seed<seed>/    an ordinary run folder per history and seed (models, cache, metrics.json)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from stkd import names
from stkd.checkpoint import read_model_card
from stkd.config import RunConfig, distinct_seeds, dump_config, parse_duration, to_dict, with_seed
from stkd.data.windows import load_windowed
from stkd.errors import ConfigError
from stkd.io import write_json, write_text
from stkd.pipeline import check_splits, make_task
from stkd.runs import open_run_dir, prepare_run_dir, run_lock
from stkd.steps import check_fits
from stkd.train import num_train_batches
from stkd.transfer.report import summarise, write_transfer_report
from stkd.transfer.routes import score_routes, train_routes
from stkd.transfer.source import load_source, source_task, zero_shot

ALL = "all"  # a --history value: the whole train part


def parse_histories(text: str | Sequence[str]) -> list[str]:
    """``1d,2d,4d`` (or a list) -> the durations, each checked; ``all`` keeps the whole train part."""
    items = text.split(",") if isinstance(text, str) else list(text)
    out = [str(h).strip() for h in items if str(h).strip()]
    if not out:
        raise ConfigError("--history: give at least one duration, e.g. 1d,2d,4d (or all)")
    for h in out:
        if h != ALL:
            parse_duration(h, f"--history {h}")
    if len(set(out)) != len(out):
        raise ConfigError(f"--history: {','.join(out)} names a history twice")
    return out


def with_history(cfg: RunConfig, history: str) -> RunConfig:
    """``cfg`` whose data keeps ``history`` of its train part (``all``: the whole of it)."""
    return dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, history=None if history == ALL else history))


def transfer(source_run: Path, cfg: RunConfig, out: Path, *, histories: Sequence[str], seeds: Sequence[int],
             teacher: str | None = None, overwrite: bool = False, progress: bool = True,
             finetune_lr: float | None = None) -> dict:
    """Every route for every history and seed on the target ``cfg`` from the source teacher of
    ``source_run``; returns transfer.json's content (see the module doc for the folder). ``finetune_lr``:
    the learning rate of the ``finetuned`` route (default: the target's ``train.lr``, as every other route)."""
    if cfg.task != "forecast":
        raise ConfigError("stkd transfer: task must be forecast")
    if finetune_lr is not None and not (finetune_lr > 0 and math.isfinite(finetune_lr)):
        raise ConfigError(f"--finetune-lr: must be a finite number > 0, got {finetune_lr}")
    histories = parse_histories(histories)
    seeds = distinct_seeds(seeds)
    source = load_source(Path(source_run), teacher)  # refused here when it has per-node weights
    prepared = {}
    for h in histories:  # bad data, histories or models fail before anything is written
        cfg_h = with_history(cfg, h)
        wd = load_windowed(cfg_h.data)
        check_splits(wd)
        task = make_task(with_seed(cfg_h, seeds[0]), wd)
        check_fits(task, cfg.student, "student")
        zero_shot(source_task(task, source), source, Path(out))
        prepared[h] = (cfg_h, wd)
    result: dict[str, Any] = {
        "source": {"run": str(Path(source_run).resolve()), "teacher": source.label, "model": source.name,
                   "params": source.hparams, "data": source.data_name, "nodes": source.nodes},
        "target": {"data": wd.data.name, "nodes": wd.num_nodes, "freq": wd.data.freq_str,
                   "student": to_dict(cfg.student)},
        "histories": histories, "seeds": seeds, "routes": list(names.TRANSFER_ROUTES), "metric": "mae",
        "finetune_lr": cfg.train.lr if finetune_lr is None else finetune_lr,
        "runs": {}, "gains": {},
    }
    out = Path(out)
    with run_lock(out):
        prepare_run_dir(out, overwrite=overwrite)
        write_text(out / "config.yaml", dump_config(cfg))
        for h, (cfg_h, wd) in prepared.items():
            train_lo, train_hi = wd.ranges["train"]
            entry: dict[str, Any] = {"train_days": (train_hi - train_lo) / wd.steps_per_day,
                     "windows": {s: wd.num_windows(s) for s in names.SPLITS},
                     "batches_per_epoch": num_train_batches(wd, cfg_h.train),
                     "test_start": str(wd.index[wd.ranges["test"][0]]), "seeds": {}}
            result["runs"][h] = entry
            for seed in seeds:
                task = make_task(with_seed(cfg_h, seed), wd)
                run_dir = open_run_dir(task.cfg, wd, out / "runs" / f"{h}-seed{seed}", overwrite=False, resume=False)
                models = train_routes(task, source, run_dir, progress=progress, finetune_lr=finetune_lr)
                scored = score_routes(task, run_dir, models)
                tuned = read_model_card(run_dir / "models" / "finetuned")["best_epoch"]  # 0: the source weights
                entry["seeds"][str(seed)] = {"routes": scored["routes"], "baselines": scored["baselines"],
                                             "finetuned_epoch": tuned}
                result["gains"] = summarise(result)
                write_json(out / "transfer.json", result)  # after every run: a stopped transfer keeps its part
        write_transfer_report(out, result)
    return result
