"""Run directories: create, reopen and load them, and link a distilled run to its teachers.

A run directory (``--out DIR``) holds ``config.yaml`` (everything needed to re-run), ``data.json`` (the
data's summary and fingerprint), ``models/<name>/`` (weights and model cards), ``cache/`` (the
teachers' soft labels), ``metrics.json`` and the report. Every run kind (forecast or event; ``stkd run``,
``train`` or ``distill``) opens its folder through :func:`open_run_dir`, so they share one set of rules:
never clobber a folder stkd did not write, refuse to resume with other data, and under DDP let rank 0
alone write while the others wait.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from stkd.checkpoint import load_model, read_model_card
from stkd.config import (
    INPUTS_CARD_EXTRAS,
    PLACEMENT_TRAIN_KEYS,
    InputsConfig,
    RunConfig,
    dump_config,
    from_dict,
    load_config,
    to_dict,
)
from stkd.distributed import barrier, is_rank0
from stkd.errors import STKDError
from stkd.io import LockHeld, read_json, take_lock, write_json, write_text

TEACHER_RUN_FILE = "teacher_run.json"  # in a run made by `stkd distill`: where its teachers live
DATA_JSON_FIX = "restore it, or re-create the run (stkd run --overwrite)"


@dataclass
class Trained:
    """A trained model of a run: its folder name, role, the module, registry name, training time and its
    validation scores (``{"mae": ...}`` for a forecaster, ``{"f1": ...}`` for an event model; the card
    keeps them as ``val_<key>``)."""

    name: str
    role: str
    model: nn.Module
    registry_name: str
    train_seconds: float | None
    val: dict = field(default_factory=dict)
    kind: str = "forecast"  # the task it was trained for: forecast | classify (an event teacher may forecast)
    run_dir: Path | None = None  # the run directory that holds it (where its soft-label cache lives)
    inputs: InputsConfig | None = None  # what it reads when not the plain window (a privileged teacher)
    #: The machines it trained on (:func:`stkd.machine.compute_facts`; empty for a card written before they
    #: were kept): its numbers repeat with the same seed on the same kernels.
    trained_on: list[dict] = field(default_factory=list)

    @property
    def val_mae(self) -> float | None:
        return self.val.get("mae")


_HELD: dict[Path, list] = {}  # lock file -> [open descriptor, nesting depth] held by this process


def lock_path(run_dir: Path) -> Path:
    """The lock file of a run folder: beside it (``.<name>.lock``), so ``--overwrite`` deleting the folder
    never deletes the lock that guards it."""
    run_dir = Path(run_dir).absolute()
    return run_dir.parent / f".{run_dir.name}.lock"


@contextmanager
def run_lock(run_dir: Path) -> Iterator[Path]:
    """Hold an exclusive lock on a run folder for the block: a second stkd process that opens the same
    folder (a second ``--overwrite``, ``--resume`` or ``evaluate``) stops with an error naming the holder's
    pid instead of tearing the run (metrics of one, models of the other). ``fcntl.flock`` on a lock file
    beside the folder: the kernel releases it when the holder exits, however it exits; a stale lock file
    locks nothing. Re-entrant within a process; under DDP rank 0 alone takes it."""
    path = lock_path(run_dir)
    if not is_rank0():
        yield path
        return
    if path in _HELD:
        _HELD[path][1] += 1
        try:
            yield path
        finally:
            _HELD[path][1] -= 1
        return
    try:
        fd = take_lock(path)
    except LockHeld as e:
        raise STKDError(f"run folder {Path(run_dir)} is in use by another stkd process (pid {e.holder}); wait "
                        "for it to finish, or choose another --out") from None
    _HELD[path] = [fd, 1]
    try:
        yield path
    finally:
        _HELD[path][1] -= 1
        if _HELD[path][1] == 0:
            del _HELD[path]
            os.close(fd)  # releases the lock; the file stays (deleting it would race with a new holder)


# ``train`` settings a resumed run may change: where and how fast it runs and where it logs, not what it
# learns (a run started on a GPU may finish on a CPU, a spent time budget may be raised).
RESUME_FREE_TRAIN_KEYS = (*PLACEMENT_TRAIN_KEYS, "tensorboard", "mlflow", "time_budget")


def check_same_training(out: Path, cfg: RunConfig) -> None:
    """On ``--resume``: the saved config's models and everything that shapes their training (the task, the
    teacher, student, distill and events sections, and the train section but for
    :data:`RESUME_FREE_TRAIN_KEYS`) must be this config's. Otherwise the resumed run would train other models
    beside the old ones, or finish a model under another objective than it started with, and report the
    mix as one run."""
    saved_path = Path(out) / "config.yaml"
    if not saved_path.is_file():
        return
    saved, now = to_dict(load_config(saved_path)), to_dict(cfg)
    for section in ("task", "teacher", "student", "distill", "events", "train"):
        was, isnow = saved.get(section), now.get(section)
        if section == "train":  # a dict in both: every RunConfig has a train section
            was, isnow = ({k: v for k, v in d.items() if k not in RESUME_FREE_TRAIN_KEYS}
                          for d in (saved[section], now[section]))
        if was == isnow:
            continue
        if section in ("teacher", "student"):
            brief = f"saved {_brief(was)}, now {_brief(isnow)}"
        elif isinstance(was, dict) and isinstance(isnow, dict):
            keys = sorted(k for k in was.keys() | isnow.keys() if was.get(k) != isnow.get(k))
            brief = "; ".join(f"{section}.{k}: saved {was.get(k)!r}, now {isnow.get(k)!r}" for k in keys)
        else:
            brief = f"saved {was!r}, now {isnow!r}"
        raise STKDError(f"--resume: the {section} section differs from the run's {saved_path} ({brief}); resume "
                        "with the same config, or start a new run (another --out, or --overwrite)")


def _brief(section) -> str:
    """A short form of a model section for messages: the name(s) and the settings given."""
    models = section if isinstance(section, list) else [section]
    return ", ".join(f"{m['name']}" + (f" {m['params']}" if m.get("params") else "")
                     + (f" epochs={m['epochs']}" if m.get("epochs") else "") for m in models)


def prepare_run_dir(out: Path, *, overwrite: bool = False, resume: bool = False) -> Path:
    """Create the run directory; refuse to clobber an existing one unless asked.

    ``--overwrite`` only ever deletes a folder that stkd itself wrote (it holds ``config.yaml``);
    a user's folder with other files is never removed.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise STKDError(f"{out} exists and is not a directory; choose another --out")
    if out.exists() and any(out.iterdir()):
        if resume:
            if not (out / "config.yaml").is_file():
                raise STKDError(f"{out} is not an stkd run directory (no config.yaml); nothing to resume")
            return out
        if not overwrite:
            raise STKDError(f"run directory {out} already exists and is not empty; pass --overwrite to "
                            "replace it, --resume to continue it, or choose another --out")
        if not (out / "config.yaml").is_file():
            raise STKDError(f"{out} is not an stkd run directory (no config.yaml); refusing to delete it")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    return out


def absolutize_paths(cfg: RunConfig, base_dir: Path | None) -> RunConfig:
    """Make data paths absolute so the saved config re-runs from anywhere."""
    if base_dir is None:
        return cfg
    d = cfg.data
    changes: dict[str, Any] = {}  # str values; Any because mypy checks **changes against every field of DataConfig
    for key in ("path", "locations", "adjacency", "distances"):
        value = getattr(d, key)
        if value and not Path(value).is_absolute():
            changes[key] = str((Path(base_dir) / value).resolve())
    if d.url and d.url.startswith("duckdb:///") and d.url[len("duckdb:///"):] not in ("", ":memory:") \
            and not d.url.startswith("duckdb:////"):  # a DuckDB file relative to the config's folder
        changes["url"] = "duckdb:///" + str((Path(base_dir) / d.url[len("duckdb:///"):]).resolve())
    e = cfg.events
    if e is not None and e.path and not Path(e.path).is_absolute():  # the event file of task: classify
        cfg = dataclasses.replace(cfg, events=dataclasses.replace(e, path=str((Path(base_dir) / e.path).resolve())))
    return dataclasses.replace(cfg, data=dataclasses.replace(d, **changes)) if changes else cfg



def data_summary(wd) -> dict:
    data = wd.data
    return {"name": data.name, "nodes": list(data.nodes),
            "coords": None if data.coords is None else np.asarray(data.coords).tolist(),
            "freq": data.freq_str, "start": str(data.index[0]), "steps": data.num_steps,
            "targets": list(data.targets), "features": list(data.features), "input_len": wd.P, "horizon": wd.H,
            "day_of_week": wd.day_of_week,
            "splits": {k: list(map(int, v)) for k, v in wd.splits.items()},
            "windows": {k: int(len(v)) for k, v in wd.starts.items()},
            "fingerprint": wd.fingerprint(), "scaler": wd.scaler.state_dict()}



def open_run_dir(cfg: RunConfig, wd, out: Path, *, overwrite: bool, resume: bool, summary_extra: dict | None = None,
                 teacher_run: Path | None = None) -> Path:
    """Create (or, with ``resume``, reopen) a run directory and write config.yaml and data.json (plus
    ``summary_extra``) and, for a run distilled from another, the link to ``teacher_run``.

    Every run kind (forecast or event; run, train or distill) starts here, so they share the rules:
    resuming with other data is refused before anything is written (it would mix two runs), and under
    DDP only rank 0 writes while the others wait for the folder.
    """
    out = Path(out)
    if resume and (out / "data.json").is_file():
        check_same_data(out, wd)  # on every rank, so that every rank stops
    if resume:
        check_same_training(out, cfg)
    if is_rank0():
        prepare_run_dir(out, overwrite=overwrite, resume=resume)
        write_text(out / "config.yaml", dump_config(cfg))
        write_json(out / "data.json", {**data_summary(wd), **(summary_extra or {})})
        if teacher_run is not None:
            write_teacher_link(out, teacher_run)
    barrier()
    return out



def load_run(run_dir: Path) -> tuple[RunConfig, dict]:
    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file():
        raise STKDError(f"{run_dir} is not an stkd run directory (no config.yaml)")
    return load_config(run_dir / "config.yaml"), read_json(run_dir / "data.json", fix=DATA_JSON_FIX)


def load_trained(run_dir: Path, wd, roles=("teacher", "student_kd", "student_plain")) -> list[Trained]:
    """Every trained model in a run directory, rebuilt from safetensors + model cards."""
    found = []
    for mdir in sorted((Path(run_dir) / "models").glob("*")):
        if not (mdir / "model.json").is_file():
            continue
        card = read_model_card(mdir)
        if card["role"] not in roles:
            continue
        model, card = load_model(mdir, adjacency=wd.data.adjacency)
        val = {k[len("val_"):]: v for k, v in card.items() if k.startswith("val_")}
        inputs = card.get("inputs")
        inputs = None if not inputs else from_dict(InputsConfig, {k: v for k, v in inputs.items()
                                                                  if k not in INPUTS_CARD_EXTRAS},
                                                   f"{mdir.name}/model.json inputs")
        found.append(Trained(mdir.name, card["role"], model, card["name"], card.get("train_seconds"), val,
                             kind=card.get("task", "forecast"), run_dir=Path(run_dir), inputs=inputs,
                             trained_on=list(card.get("trained_on") or [])))
    return found


def check_same_data(teacher_run: Path, wd) -> None:
    summary = read_json(Path(teacher_run) / "data.json", fix=DATA_JSON_FIX)
    if summary.get("fingerprint") != wd.fingerprint():
        raise STKDError(f"{teacher_run} was trained on different data ({summary.get('name')}, "
                        f"{len(summary.get('nodes', []))} nodes, {summary.get('steps')} steps) than this config "
                        f"({wd.data.name}, {wd.num_nodes} nodes, {wd.data.num_steps} steps); use the same data and "
                        "window settings")


def require_run_dir(teacher_run: Path) -> Path:
    """``teacher_run`` as a Path; an error unless it is a run directory (one holding data.json)."""
    if not (Path(teacher_run) / "data.json").is_file():
        raise STKDError(f"{teacher_run} is not an stkd run directory (no data.json)")
    return Path(teacher_run)


def require_teachers(teachers: list, teacher_run: Path) -> list:
    """``teachers`` unchanged; an error when a teacher run held none."""
    if not teachers:
        raise STKDError(f"{teacher_run} holds no trained teacher (models/*/model.json with role teacher)")
    return teachers


def write_teacher_link(run_dir: Path, teacher_run: Path) -> None:
    """Record where a distilled run's teachers live, so `stkd evaluate` of that run scores them too."""
    write_json(Path(run_dir) / TEACHER_RUN_FILE, {"teacher_run": str(Path(teacher_run).resolve())})


def linked_teacher_run(run_dir: Path) -> Path | None:
    """The teacher run a `stkd distill` run points to (None when it has no link); an error when it is gone."""
    link = Path(run_dir) / TEACHER_RUN_FILE
    if not link.is_file():
        return None
    teacher_run = Path(read_json(link, fix="restore it, or distil the run again (stkd distill --overwrite)")["teacher_run"])
    if not teacher_run.is_dir():
        raise STKDError(f"{run_dir} was distilled from teachers in {teacher_run}, which no longer exists")
    return teacher_run
