"""Helpers the benchmark scripts share: data configs, machine facts, result files and the page.

Every benchmark writes its numbers to a small JSON file under ``docs/results/`` (:func:`save_result`:
per-seed metrics, timings, the command and its arguments, versions, the machine) and has a
``render(result) -> markdown`` function. ``python benchmarks/render.py`` rebuilds every generated block of
docs/benchmarks.md (between ``<!-- NAME:start -->`` / ``<!-- NAME:end -->``) and the README's headline
blocks from those files alone, byte for byte; commentary lives outside the markers.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "benchmarks.md"
RESULTS = REPO / "docs" / "results"


def source_at(commit: str, path: str, script: str) -> str:
    """The text of ``path`` at ``commit``, read with git: what a speed benchmark compares today's code with
    (``script`` names the benchmark in the message when the repository's history is missing)."""
    try:
        return subprocess.run(["git", "show", f"{commit}:{path}"], cwd=REPO, capture_output=True, text=True,
                              check=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        raise SystemExit(f"{script} compares with {path} at commit {commit}: it needs the repository's git "
                         f"history ({e})") from None


def los_loop_data(**extra) -> dict:
    """The Los-loop data section (the builtin): 207 LA detectors, 5-minute speeds, 7 days, 12 in / 12 out,
    70/10/20."""
    return {"source": "builtin", "name": "los-loop", "window": {"input": 12, "horizon": 12},
            "split": [0.7, 0.1, 0.2], **extra}


def akl_gwnet_preset() -> dict:
    """The default preset of ``stkd run`` until 2026-12-04 (commit 369af88), pinned: a half-width Graph WaveNet
    teacher (8 epochs) and an STID student that reads its 12-hour window only. The Auckland rows of the
    evidence, headroom and preset-variant benchmarks were measured from it, and their commands must still
    mean what they meant after the preset moved on (``src/stkd/presets.py`` says why it did)."""
    return {
        "task": "forecast",
        "data": {"source": "builtin", "name": "akl-pedestrians", "time_range": ["2023-01-01", "2025-12-31 23:00"],
                 "window": {"input": 12, "horizon": 12}, "split": [0.7, 0.1, 0.2],
                 "graph": {"method": "knn", "k": 6}},
        "teacher": [{"name": "gwnet", "epochs": 8,
                     "params": {"residual_channels": 16, "dilation_channels": 16, "skip_channels": 128,
                                "end_channels": 256},
                     "inputs": {"lags": ["1D", "7D"]}}],
        "student": {"name": "stid", "params": {}},
        "distill": {"alpha": 0.5, "loss": "huber"},
        "train": {"epochs": 30, "batch_size": 64, "lr": 0.002, "patience": 6, "seed": 0, "max_batches": 100,
                  "precision": "bf16"},
    }


def los_loop_nodes(k: int | None = None) -> list[str]:
    """The builtin Los-loop's detector ids (the first ``k``)."""
    from stkd.data.builtin import load_los_loop

    return load_los_loop().nodes[:k]


def machine() -> str:
    """Where a result was measured (:func:`stkd.machine.describe`, less the threads: the benchmarks set them in
    their command): cores, architecture, the vector instructions torch's CPU kernels use and AMX bf16 units
    where the CPU has them, any cap set on those kernels, torch's version, a GPU. Two machines with other
    kernels round differently: the same seed then gives slightly different numbers."""
    from stkd.machine import compute_facts, describe

    return describe(compute_facts(), threads=False)


def command() -> str:
    """The command line that is running, with the script's path relative to the repository and any other
    absolute path (a folder for run directories) written as ``DIR``: the docs hold no machine paths."""
    args = [os.path.relpath(sys.argv[0], REPO), *("DIR" if os.path.isabs(a) else a for a in sys.argv[1:])]
    return "python " + " ".join(shlex.quote(a) for a in args)


def versions() -> dict:
    """The versions and the commit of the code this script started with (read once, at its first call:
    a long run must not report a commit made while it ran)."""
    global _VERSIONS
    if _VERSIONS is None:
        _VERSIONS = _read_versions()
    return dict(_VERSIONS)


_VERSIONS: dict | None = None


def _read_versions() -> dict:
    import numpy
    import torch

    import stkd

    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                                check=True).stdout.strip()
        changed = subprocess.run(["git", "status", "--porcelain", "--", "src", "benchmarks"], cwd=REPO,
                                 capture_output=True, text=True, check=True).stdout.strip()
        commit += "+uncommitted" if changed else ""  # the code that ran is not that commit's
    except (OSError, subprocess.CalledProcessError):
        commit = None
    return {"stkd": stkd.__version__, "commit": commit, "python": platform.python_version(),
            "torch": torch.__version__, "numpy": numpy.__version__}


def mean_std(values) -> str:
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=float)
    if len(v) == 0:
        return "n/a"
    return f"{v.mean():.3f} ± {v.std(ddof=1):.3f}" if len(v) > 1 else f"{v.mean():.3f}"


def merged_records(path: Path, new: list[dict], key) -> list[dict]:
    """The records of ``path`` (if any) with those of ``new`` in place of any with the same ``key(record)`` (where
    they were: a record completed later keeps its row's place in the tables) and the others after them: re-read
    just before saving, so two invocations measuring other parts of one file can run side by side."""
    now = json.loads(path.read_text())["records"] if path.is_file() else []
    fresh = {key(r): r for r in new}
    kept = [fresh.pop(key(r), r) for r in now]
    return kept + [r for r in new if key(r) in fresh]


def commands_line(result: dict) -> str:
    """``Command: `c` `` or ``Commands: `a`; `b` ``: the commands that measured a result's records, first seen
    first (the result's own command when it has none)."""
    commands = list(dict.fromkeys(r["command"] for r in result.get("records", []))) or [result["command"]]
    return "Commands: " + "; ".join(f"`{c}`" for c in commands) if len(commands) > 1 else f"Command: `{commands[0]}`"


def machine_line(result: dict) -> str:
    """``Machine: ...; stkd <version> (commit <commit>), <date>``: where and with what a result was measured."""
    v = result["versions"]
    return f"Machine: {result['machine']}; stkd {v['stkd']} (commit {v['commit']}), {result['date']}"


def save_result(section: str, kind: str, payload: dict, args: dict | None = None) -> Path:
    """Write ``docs/results/<section>.json`` (atomically): the payload plus the command, its arguments,
    versions, machine and date. ``kind`` names the script whose ``render`` turns it into markdown."""
    from stkd.io import write_json

    blob = {"section": section, "kind": kind, "command": command(), "args": args or {},
            "date": _dt.date.today().isoformat(), "machine": machine(), "versions": versions(), **payload}
    return write_json(RESULTS / f"{section}.json", blob)


versions()  # read when a script starts (see versions())


def teacher_role(models: dict) -> str:
    """The role of the teacher the student learned from in a run's ``models`` (metrics.json's, or the kernels
    benchmark's per arm): the teachers' ensemble where the run has several teachers (its copies seeds apart, say),
    else the teacher."""
    return "teacher_ensemble" if any(v["role"] == "teacher_ensemble" for v in models.values()) else "teacher"


def train_side_by_side(target: str, jobs: list[dict], workers: int, name) -> None:
    """Students trained ``workers`` at once, one process each at its share of the cores: ``target``
    (``module.function``, found by its module's name in each fresh process, not as ``__main__``) runs once per job
    of ``jobs`` (JSON), ``name(job)`` names it in messages. A small student's step is little slower at one thread
    than at two (``stkd.processes``), so on 2 cores two finish well before two in turn would. The first failure
    stops the others; each keeps its checkpoints, so the same command goes on."""
    import importlib

    from stkd.processes import run_processes, threads_per_worker

    module, _, function = target.rpartition(".")
    run_processes(getattr(importlib.import_module(module), function), jobs, limit=workers,
                  threads=threads_per_worker(workers, None), name=name, stop_on_failure=True,
                  after_failure="each student keeps its checkpoints: run the same command again to go on")
