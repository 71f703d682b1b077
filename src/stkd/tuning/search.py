"""``stkd tune`` from start to end: check everything, open the folder and the study, run trials (here or
in worker processes), then write the results and score the best configuration on the test split, once.

The output folder::

    OUT/search.yaml      what is searched (teacher run, base config, space, study, storage): marks the folder
    OUT/study.db         the Optuna study (unless --storage names another)
    OUT/trials/NNNN/     each trial run here: config.yaml and its student (best weights, card, log.csv)
    OUT/trials.csv       every trial's settings, state, validation score, epochs and seconds
    OUT/best.yaml        the best trial's complete config: stkd distill --teacher-run T --config OUT/best.yaml
    OUT/best/            that config distilled again and scored on the test split (metrics.json, report.md)
    OUT/tune.json        best settings, validation score, trial counts and the test result
"""

from __future__ import annotations

import dataclasses
import math
import shutil
import sys
import time
from pathlib import Path

from stkd.config import RunConfig, TuneConfig, dump_config, parse_duration, to_dict, validate_tune
from stkd.errors import STKDError
from stkd.io import read_json, write_text
from stkd.pipeline import check_models, distill_from
from stkd.processes import threads_per_worker
from stkd.runs import require_run_dir, run_lock
from stkd.tuning import require_optuna
from stkd.tuning.results import format_summary, state_counts, trial_rows, write_summary, write_trials_csv
from stkd.tuning.space import Space, apply_values, build_space, read_space_file
from stkd.tuning.study import (
    WorkerJob,
    counted_trials,
    default_storage,
    hide_password,
    identity,
    open_storage,
    open_study,
    run_workers,
    work,
)
from stkd.tuning.trial import TRIALS_DIR, Shared, check_widest_start, load_shared, score_name

MARKER = "search.yaml"  # written first: a folder holding it is a search folder stkd may continue or replace
BEST_CONFIG = "best.yaml"
BEST_RUN = "best"


@dataclasses.dataclass
class TuneResult:
    """What :func:`tune` returns: tune.json's content, trials.csv's rows and the folder."""

    summary: dict
    rows: list[dict]
    out: Path

    @property
    def table(self) -> str:
        return format_summary(self.summary, self.rows)


def tune(cfg: RunConfig, teacher_run: Path, out: Path, tcfg: TuneConfig, *, space: dict | str | Path | None = None,
         overwrite: bool = False, progress: bool = True) -> TuneResult:
    """Search the student's settings distilled from ``teacher_run``'s teachers (see the module doc).

    ``space``: a ``--space`` file or its mapping (None: the default space). Running it again on the same
    ``out`` (or ``tcfg.storage`` and ``tcfg.study``) continues the study."""
    require_optuna()
    validate_tune(tcfg)
    teacher_run = require_run_dir(Path(teacher_run))
    raw_space = read_space_file(space) if isinstance(space, (str, Path)) else space
    search_space = build_space(cfg, raw_space)  # a bad --space fails before data is loaded
    if not search_space.params:
        raise STKDError("--space: nothing left to search (every key is fixed or null)")
    deadline = time.time() + parse_duration(tcfg.timeout, "--timeout") if tcfg.timeout else None
    out = Path(out)
    url = tcfg.storage or default_storage(out)
    with run_lock(out):
        check_search_dir(out, tcfg, url, overwrite=overwrite)
        shared, fingerprint = load_shared(cfg, teacher_run, out, search_space, deadline=deadline, progress=progress)
        # the base student builds on this data and fits in memory beside the other workers' trials
        check_models(shared.task, teachers=False, students_at_once=tcfg.workers)
        check_widest_start(shared)  # distill.init: teacher: every student the space draws can be cut from the teacher
        if overwrite and out.exists():
            shutil.rmtree(out)  # a search folder (check_search_dir), replaced as asked
        out.mkdir(parents=True, exist_ok=True)
        study = open_study(open_storage(url), tcfg, identity(shared, fingerprint), cfg,
                           storage_is_local=tcfg.storage is None)  # another search in the study fails here
        write_text(out / MARKER, dump_search(cfg, teacher_run, search_space, tcfg, url))
        if progress:
            print(plan_line(study, shared, tcfg, url), file=sys.stderr, flush=True)
        if tcfg.workers == 1:
            work(study, shared, tcfg.trials, deadline)
        else:
            threads = threads_per_worker(tcfg.workers, cfg.train.threads)
            run_workers([WorkerJob(to_dict(cfg), str(teacher_run), str(out), search_space, url, tcfg, deadline, i,
                                   progress) for i in range(tcfg.workers)], threads)
        return finish(study, shared, teacher_run, out, tcfg, url, progress=progress)


def check_search_dir(out: Path, tcfg: TuneConfig, url: str, *, overwrite: bool) -> None:
    """``out`` may be created, continued (the folder of this same study: its search.yaml names it) or, with
    ``overwrite``, replaced (a search folder with its own study.db). One folder holds one study's trials;
    a folder stkd did not write as a search is never touched."""
    if out.exists() and not out.is_dir():
        raise STKDError(f"{out} exists and is not a directory; choose another --out")
    if not out.exists() or not any(out.iterdir()):
        return
    if not (out / MARKER).is_file():
        raise STKDError(f"{out} is not empty and is not an stkd tune folder (no {MARKER}); choose another --out")
    if overwrite:
        if tcfg.storage is not None:
            raise STKDError("--overwrite starts a new study in the folder's own study.db; with --storage, name a "
                            "new study with --study and another --out instead")
        return
    import yaml

    try:
        saved = yaml.safe_load((out / MARKER).read_text()) or {}
    except yaml.YAMLError:
        saved = {}
    now = {"study": tcfg.study, "storage": stored_url(tcfg, url)}
    if isinstance(saved, dict) and {k: saved.get(k) for k in now} != now:
        raise STKDError(f"{out} holds the trials of study {saved.get('study')!r} in "
                        f"{saved.get('storage') or 'its study.db'}, not "
                        f"{tcfg.study!r} in {now['storage'] or 'its study.db'}: one folder per study; choose another --out (or "
                        "--overwrite to start again)")


def stored_url(tcfg: TuneConfig, url: str) -> str | None:
    """The storage as search.yaml records it: None for the folder's own study.db (so that a moved folder
    still continues), the URL without its password otherwise."""
    return None if tcfg.storage is None else hide_password(url)


def dump_search(cfg: RunConfig, teacher_run: Path, space: Space, tcfg: TuneConfig, url: str) -> str:
    import yaml

    return yaml.safe_dump({"teacher_run": str(Path(teacher_run).resolve()), "study": tcfg.study,
                           "storage": stored_url(tcfg, url), "space": space.to_dict(), "config": to_dict(cfg)},
                          sort_keys=False)


def plan_line(study, shared: Shared, tcfg: TuneConfig, url: str) -> str:
    budget = [f"{tcfg.trials} trials" if tcfg.trials else "", f"{tcfg.timeout}" if tcfg.timeout else ""]
    space = ", ".join(f"{k} {p.describe()}" for k, p in shared.space.params.items())
    label, sign = score_name(shared.task)
    return (f"tune: study {tcfg.study!r} in {hide_password(url)} ({counted_trials(study)} trials so far), budget "
            f"{' or '.join(b for b in budget if b)}, {tcfg.workers} process(es); "
            f"{'minimising' if sign > 0 else 'maximising'} validation {label}; searching {space}")


def finish(study, shared: Shared, teacher_run: Path, out: Path, tcfg: TuneConfig, url: str, *,
           progress: bool = True) -> TuneResult:
    """trials.csv, best.yaml, the best configuration's test result (OUT/best), tune.json."""
    optuna = require_optuna()
    label, sign = score_name(shared.task)
    rows = trial_rows(study, label, sign)
    write_trials_csv(out / "trials.csv", rows)
    summary: dict = {"study": tcfg.study, "storage": hide_password(url), "teacher_run": str(Path(teacher_run).resolve()),
                     "task": shared.task.name, "monitor": label, "monitor_sign": sign, "trials": state_counts(study),
                     "space": shared.space.to_dict(), "best": None}
    complete = [t for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
                if t.value is not None and math.isfinite(t.value)]
    if complete:
        best = min(complete, key=lambda t: (t.value, t.number))
        # from this machine's config (its data paths) and the trial's values: on another machine of the study
        # the trial ran the same config but read the data from that machine's paths
        best_cfg = apply_values(shared.task.cfg, {**shared.space.fixed, **best.params})
        write_text(out / BEST_CONFIG, dump_config(best_cfg))
        metrics = final_test(best_cfg, teacher_run, out / BEST_RUN, progress=progress)
        name, entry = next((n, m) for n, m in metrics["models"].items() if m["role"] == "student_kd")
        summary["best"] = {"trial": best.number, "params": dict(best.params), "val": {label: sign * best.value},
                           "config": BEST_CONFIG, "run": BEST_RUN, "model": name, "test": entry["test"],
                           "params_count": entry.get("params"), "latency_ms_batch1": entry.get("latency_ms_batch1")}
    elif progress:
        print("tune: no trial has completed yet, so there is no best configuration; run the command again (with a "
              "larger --trials or --timeout) to continue", file=sys.stderr)
    write_summary(out / "tune.json", summary)
    return TuneResult(summary, rows, out)


def final_test(cfg: RunConfig, teacher_run: Path, run_dir: Path, *, progress: bool = True) -> dict:
    """The best configuration distilled again from the teachers (same seed) and scored on the test split,
    the only time a search reads it. A session that ends with the same best as the last reuses its result."""
    if (run_dir / "metrics.json").is_file() and (run_dir / "config.yaml").is_file() \
            and (run_dir / "config.yaml").read_text() == dump_config(cfg):
        return read_json(run_dir / "metrics.json")
    return distill_from(cfg, teacher_run, run_dir, overwrite=True, progress=progress, plain=False)


__all__ = ["TRIALS_DIR", "TuneResult", "load_shared", "tune"]
