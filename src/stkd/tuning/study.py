"""The study: where it is stored, how trials are sampled and pruned, the budget, and worker processes.

- Storage: an Optuna RDB storage URL; by default ``sqlite:///OUT/study.db``. Every process (and machine)
  given the same URL and study name works on one study: that is how a search resumes, runs in several
  processes, and joins machines (``postgresql://...``). SQLite waits up to a minute for a lock that
  another process holds. A heartbeat marks a trial whose process died as failed (it does not count).
- Sampling: TPE, seeded from ``train.seed`` (plus the trials already in the study and the worker's index,
  so a resumed session or a second worker does not repeat the first one's random start).
- Pruning: a median pruner on the per-epoch validation score, after ``prune_warmup`` epochs and once
  ``prune_startup`` trials have finished.
- Budget: ``--trials`` counts every trial of the study that finished or is running, sessions and
  processes together (a trial that finds the last place taken by another worker as it starts stops before
  training and is left out of the results); ``--timeout`` is this session's wall time: no trial starts after it and running
  ones stop after their current epoch (as pruned).
- The study records what it searches (task, data fingerprint, base config, space) and refuses to be
  continued with anything else.
"""

from __future__ import annotations

import json
import re
import socket
import sys
import time
import warnings
import zlib
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from stkd import names
from stkd.config import PLACEMENT_TRAIN_KEYS, RunConfig, TuneConfig, parse_config, to_dict
from stkd.errors import STKDError
from stkd.processes import run_processes
from stkd.tuning import require_optuna
from stkd.tuning.space import Space, build_space
from stkd.tuning.trial import (
    SURPLUS,
    Shared,
    SurplusTrial,
    claim_place,
    counted_states,
    load_shared,
    run_trial,
    score_name,
)

HEARTBEAT_S = 60  # a running trial's process writes a heartbeat this often
GRACE_S = 180  # a running trial without a heartbeat for this long is marked failed (its process died)
SQLITE_TIMEOUT_S = 60  # how long a SQLite writer waits for another process's lock


def default_storage(out: Path) -> str:
    return f"sqlite:///{(Path(out) / names.TUNE_STORAGE_FILE).resolve()}"


def hide_password(url: str) -> str:
    """``postgresql://user:secret@host/db`` -> ``postgresql://user:***@host/db`` (for messages and files)."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def open_storage(url: str):
    """An Optuna RDB storage on ``url`` with a heartbeat, and a lock timeout for SQLite."""
    optuna = require_optuna()
    kwargs = {"connect_args": {"timeout": SQLITE_TIMEOUT_S}} if url.startswith("sqlite") else {}
    try:
        with warnings.catch_warnings():  # the heartbeat is marked experimental; nothing for the user to do
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(url, engine_kwargs=kwargs, heartbeat_interval=HEARTBEAT_S,
                                              grace_period=GRACE_S)
    except Exception as e:  # a bad URL, a missing database driver, a server that does not answer
        first = str(e).strip().splitlines()[0][:200] if str(e).strip() else ""
        raise STKDError(f"--storage {hide_password(url)}: cannot open it ({type(e).__name__}: {first}); give an "
                        "Optuna storage URL such as sqlite:///study.db or postgresql://user:password@host/db "
                        "(its database driver installed)") from None


def identity(shared: Shared, fingerprint: str) -> dict:
    """What a study searches, as it records it: the same on every machine that joins it (no paths)."""
    cfg = to_dict(shared.task.cfg)
    base = {k: v for k, v in cfg.items() if k not in ("data", "events")}
    base["train"] = {k: v for k, v in base["train"].items() if k not in PLACEMENT_TRAIN_KEYS}
    return json.loads(json.dumps({"task": shared.task.name, "monitor": shared.task.monitor, "data": fingerprint,
                                  "config": base, "space": shared.space.to_dict()}, default=str))


def sampler_seed(cfg: RunConfig, trials_so_far: int, worker: int, storage_is_local: bool) -> int:
    """``train.seed``, moved on by the trials already in the study and the worker's index (and the host,
    for a study shared between machines), so that no two samplers draw the same random start."""
    seed = cfg.train.seed + 1000 * trials_so_far + worker
    if not storage_is_local:
        seed += zlib.crc32(socket.gethostname().encode())
    return seed % (2**32)


def open_study(storage, tcfg: TuneConfig, ident: dict, cfg: RunConfig, *, worker: int = 0,
               storage_is_local: bool = True):
    """Create the study, or load it and check that it searches the same thing; its TPE sampler is seeded
    by :func:`sampler_seed` from the trials it already holds."""
    optuna = require_optuna()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # trials are reported by stkd's own lines
    pruner = optuna.pruners.MedianPruner(n_startup_trials=tcfg.prune_startup, n_warmup_steps=tcfg.prune_warmup)
    study = optuna.create_study(storage=storage, study_name=tcfg.study, direction="minimize", pruner=pruner,
                                sampler=optuna.samplers.RandomSampler(seed=0), load_if_exists=True)
    saved = study.user_attrs.get("stkd")
    if saved is None:
        study.set_user_attr("stkd", ident)
    elif saved != ident:
        what = [k for k in ident if saved.get(k) != ident[k]]
        raise STKDError(f"study {tcfg.study!r} in this storage searches something else (it differs in: "
                        f"{', '.join(what)}): continue it with the same teacher run, config and --space, or start "
                        "another with --study NAME and another --out")
    seed = sampler_seed(cfg, len(study.get_trials(deepcopy=False)), worker, storage_is_local)
    study.sampler = optuna.samplers.TPESampler(seed=seed)
    return study


def counted_trials(study) -> int:
    """Trials toward ``--trials`` (:func:`~stkd.tuning.trial.counted_states`), every session's."""
    return len(study.get_trials(deepcopy=False, states=counted_states()))


def work(study, shared: Shared, trials: int | None, deadline: float | None) -> None:
    """Run trials, one at a time, until the study holds ``trials`` or the deadline passes. An error in a
    trial (other than pruning or divergence) is recorded as a failed trial and stops this worker."""
    label, sign = score_name(shared.task)

    def report(_study, frozen) -> None:
        if shared.progress and not frozen.user_attrs.get(SURPLUS):
            print(format_trial(frozen, label, sign), file=sys.stderr, flush=True)

    def objective(trial) -> float:
        claim_place(trial, trials)  # another worker may have taken the last place since the check below
        return run_trial(trial, shared)

    while True:
        if deadline is not None and time.time() >= deadline:
            return
        if trials is not None and counted_trials(study) >= trials:
            return
        study.optimize(objective, n_trials=1, callbacks=[report], catch=(SurplusTrial,))


def format_trial(frozen, label: str, sign: int) -> str:
    """One line per finished trial: number, state, validation score, epochs, time and settings."""
    value = frozen.value
    if value is None and frozen.intermediate_values:
        value = frozen.intermediate_values[max(frozen.intermediate_values)]
    score = "n/a" if value is None else f"{sign * value:.4g}"
    attrs = frozen.user_attrs
    why = f" ({attrs['stopped']})" if attrs.get("stopped") and attrs["stopped"] != "pruned" else ""
    params = ", ".join(f"{k.split('.', 1)[1]}={_short(v)}" for k, v in frozen.params.items())
    return (f"trial {frozen.number:4d}  {frozen.state.name.lower():8s}{why:11s} val {label} {score:>9s}  "
            f"{attrs.get('epochs', '?')} epochs  {attrs.get('seconds', 0):.1f} s  {params}")


def _short(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


# ------------------------------------------------------------------------- processes
@dataclass
class WorkerJob:
    """What a worker process needs to rebuild the shared state and join the study (sent as JSON:
    :meth:`to_json`, :meth:`from_json`)."""

    config: dict
    teacher_run: str
    out: str
    space: Space
    storage: str
    tune: TuneConfig
    deadline: float | None
    worker: int
    progress: bool

    def to_json(self) -> dict:
        return {**{f.name: getattr(self, f.name) for f in fields(self)}, "space": self.space.to_dict(),
                "tune": asdict(self.tune)}

    @classmethod
    def from_json(cls, raw: dict) -> WorkerJob:
        """The job :meth:`to_json` wrote; its space rebuilt the way ``--space`` files are read."""
        return cls(**{**raw, "space": build_space(parse_config(raw["config"]), raw["space"]),
                      "tune": TuneConfig(**raw["tune"])})


def run_workers(jobs: list[WorkerJob], threads: int) -> None:
    """One process per job (:func:`stkd.processes.run_processes`), all at once, each at ``threads`` torch threads;
    returns when every one ended and raises if one failed (the others go on: each records its trials)."""
    run_processes(worker_main, [job.to_json() for job in jobs], limit=len(jobs), threads=threads,
                  name=lambda job: f"stkd-tune-{job['worker']}",
                  stop_on_failure=False,
                  after_failure="the study keeps every trial they finished: run the command again to continue")


def worker_main(raw: dict, slot: int = 0) -> None:
    """A worker process: load the data, teachers and cache once, then run trials against the study
    (:func:`stkd.processes.child_main` sets its threads and places its bars on row ``slot``)."""
    job = WorkerJob.from_json(raw)
    cfg = parse_config(job.config)  # an STKDError is reported by stkd.processes.child_main, an interrupt too
    shared, fingerprint = load_shared(cfg, Path(job.teacher_run), Path(job.out), job.space,
                                      deadline=job.deadline, progress=job.progress)
    study = open_study(open_storage(job.storage), job.tune, identity(shared, fingerprint), cfg, worker=job.worker,
                       storage_is_local=job.storage == default_storage(Path(job.out)))
    work(study, shared, job.tune.trials, job.deadline)
