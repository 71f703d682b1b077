"""How the trainer's batches reach its steps: cut between steps (today) or cut ahead by a background thread
(the trainer until commit ``BEFORE``).

    python benchmarks/batch_stream.py     # writes docs/results/batch-stream.json

Why: the default run's plan estimated its teacher's training well below the time it took. Its steps ran
much slower inside the trainer than the same step alone: the thread that cut the next batches ran torch's
gathers in a second OpenMP team beside the step's, and on 2 cores the two teams took turns. The trainer now
cuts each batch between steps. This script times both streams through the real trainer (``stkd.steps.train_model``
with the models' own configs; only the stream differs) on the models the project trains most:

- the default preset's teacher (a wide STID) and student (Auckland counts), each reading the lags the preset
  of the commit gives it (the labels name them; the result of 2026-12-05 timed a teacher reading 1D and 7D);
- on Los-loop, the evidence benchmark's Graph WaveNet teacher reading the lag 1D and its ``stid-nb`` and
  ``mlp`` students.

The arms are ``now`` (the batches as ``stkd.train.train_batches`` yields them), ``before`` (the same
generator cut ahead by the ``prefetch`` thread of commit ``BEFORE``, read from git) and ``before, its thread
at one torch thread`` (that thread with ``torch.set_num_threads(1)``: is a tamed thread worth keeping?).
Each arm trains each model for ``--epochs`` epochs (Graph WaveNet: ``--gwnet-batches`` batches an epoch), in
``--rounds`` rounds that take the arms in turn; a cell is the median over rounds of the median
seconds of an epoch's training batches (validation is not timed) per batch. The batches, their order and the
weights are the same in every arm (a seed fixes them), so only the time differs.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import copy
import json
import os
import queue
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Iterable, Iterator

import torch

from common import machine_line, save_result, source_at

SECTION = "batch-stream"
BEFORE = "58140c0"  # the last commit whose trainer cut its batches ahead in a thread (stkd.train.prefetch)
TRAIN_FILE = "src/stkd/train.py"
ARMS = ("now", "before", "before, its thread at one torch thread")


def prefetch_at(commit: str):
    """``prefetch`` (with the two names it needs) from ``src/stkd/train.py`` at ``commit``, read with git."""
    source = source_at(commit, TRAIN_FILE, "batch_stream.py")
    wanted = {"_Failed", "_DONE", "prefetch"}
    tree = ast.parse(source)
    body = [n for n in tree.body if getattr(n, "name", None) in wanted
            or (isinstance(n, ast.Assign) and any(getattr(t, "id", None) in wanted for t in n.targets))]
    if len(body) != len(wanted):
        raise SystemExit(f"{TRAIN_FILE} at {commit} does not define {sorted(wanted)}")
    space: dict = {"queue": queue, "threading": threading, "Iterable": Iterable, "Iterator": Iterator}
    exec(compile(ast.Module(body=body, type_ignores=[]), f"{commit}:{TRAIN_FILE}", "exec"), space)
    return space["prefetch"]


def one_torch_thread(batches: Iterable) -> Iterator:
    """``batches``, with the thread that consumes it (the prefetch worker) at one torch thread."""
    torch.set_num_threads(1)  # runs in the consuming thread, at its first batch
    yield from batches


@contextlib.contextmanager
def stream(arm: str, prefetch):
    """The trainer's batch stream for ``arm`` (``stkd.train.train_batches`` wrapped for the earlier arms)."""
    import stkd.train as train_module

    plain = train_module.train_batches
    if arm == "before":
        train_module.train_batches = lambda *a, **k: prefetch(plain(*a, **k))  # type: ignore[assignment]
    elif arm == ARMS[2]:
        train_module.train_batches = lambda *a, **k: prefetch(one_torch_thread(plain(*a, **k)))  # type: ignore[assignment]
    threads = torch.get_num_threads()
    try:
        yield
    finally:
        train_module.train_batches = plain
        torch.set_num_threads(threads)


@contextlib.contextmanager
def epoch_seconds(into: list[float]):
    """Record the seconds of each epoch's training batches (``Trainer.train_epoch``; validation not timed)."""
    from stkd.train import Trainer

    original = Trainer.train_epoch

    def timed(self, *a, **k):
        t0 = time.perf_counter()
        out = original(self, *a, **k)
        into.append(time.perf_counter() - t0)
        return out

    Trainer.train_epoch = timed  # type: ignore[method-assign]
    try:
        yield
    finally:
        Trainer.train_epoch = original  # type: ignore[method-assign]


def setups(epochs: int, gwnet_batches: int) -> dict:
    """label -> (raw config, role): the models timed, each with its own config."""
    import evidence_rows
    from stkd.presets import default_preset_dict

    akl = default_preset_dict()
    akl["train"]["epochs"] = epochs
    for t in akl["teacher"]:
        t["epochs"] = epochs
    los = evidence_rows.config("los-loop", 0, False)
    los["train"]["epochs"] = epochs
    gw = copy.deepcopy(los)
    gw["teacher"][0].update(inputs={"lags": ["1D"]}, epochs=epochs)
    gw["train"]["max_batches"] = gwnet_batches
    lags = {role: ", ".join(section["inputs"]["lags"]) for role, section in
            (("teacher", akl["teacher"][0]), ("student", akl["student"]))}
    out = {f"default preset: teacher (stid-64, lags {lags['teacher']})": (akl, "teacher"),
           f"default preset: student (stid, lags {lags['student']})": (akl, "student"),
           "los-loop: teacher (gwnet, lag 1D)": (gw, "teacher")}
    for label in ("stid-nb", "mlp"):
        model, params = evidence_rows.STUDENTS[label]
        raw = copy.deepcopy(los)
        raw["student"] = {"name": model, "params": dict(params)}
        out[f"los-loop: student ({label})"] = (raw, "student")
    return out


def time_arm(task, role: str, prefetch, arm: str) -> tuple[float, int]:
    """Median seconds per training batch of one model trained from its seed under ``arm``; batches an epoch."""
    from stkd.steps import train_model
    from stkd.train import num_train_batches

    cfg = task.cfg
    if role == "teacher":
        t, mcfg = task.teacher_task(), cfg.teacher[0]
    else:
        t, mcfg = task, cfg.student
    hard = t.hard_loss()
    seconds: list[float] = []
    with tempfile.TemporaryDirectory() as d, stream(arm, prefetch), epoch_seconds(seconds):
        train_model(t, mcfg, "timed", role, Path(d), lambda _: (hard, {}), progress=False)
    batches = num_train_batches(t.for_inputs(mcfg.inputs).wd, cfg.train)
    return statistics.median(seconds) / batches, batches


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--gwnet-batches", type=int, default=5, help="Graph WaveNet's batches an epoch (about 1 s each)")
    args = ap.parse_args()
    from stkd.config import parse_config
    from stkd.pipeline import prepare_task

    prefetch = prefetch_at(BEFORE)
    tasks = {label: (prepare_task(parse_config(raw)), role)
             for label, (raw, role) in setups(args.epochs, args.gwnet_batches).items()}
    per_batch: dict[str, dict[str, list[float]]] = {label: {arm: [] for arm in ARMS} for label in tasks}
    batches: dict[str, int] = {}
    load = [os.getloadavg()[0]]
    for _ in range(args.rounds):
        for label, (task, role) in tasks.items():
            for arm in ARMS:
                s, batches[label] = time_arm(task, role, prefetch, arm)
                per_batch[label][arm].append(s)
                print(f"{label} | {arm}: {s * 1e3:.2f} ms per batch", flush=True)
        load.append(os.getloadavg()[0])
    rows = [{"model": label, "batches_per_epoch": batches[label],
             "ms_per_batch": {arm: statistics.median(v) * 1e3 for arm, v in per_batch[label].items()},
             "rounds_ms": {arm: [x * 1e3 for x in v] for arm, v in per_batch[label].items()}} for label in tasks]
    result = {"rows": rows, "before_commit": BEFORE, "threads": torch.get_num_threads(), "load_average": load}
    path = save_result(SECTION, "batch_stream", result, vars(args))
    print(render(json.loads(path.read_text())))


def render(result: dict) -> str:
    before = result["before_commit"]
    head = ["| model | batches an epoch | " + " | ".join(f"{a} (ms per batch)" for a in ARMS) + " | before / now |",
            "| --- | ---: | " + " | ".join("---:" for _ in ARMS) + " | ---: |"]
    lines = []
    for r in result["rows"]:
        ms = r["ms_per_batch"]
        head.append(f"| {r['model']} | {r['batches_per_epoch']} | " + " | ".join(f"{ms[a]:.2f}" for a in ARMS)
                    + f" | {ms['before'] / ms['now']:.2f}x |")
    ratios = {r["model"]: r["ms_per_batch"]["before"] / r["ms_per_batch"]["now"] for r in result["rows"]}
    worst = max(ratios, key=ratios.__getitem__)
    best = min(ratios, key=ratios.__getitem__)
    lines.append(f"- Cut ahead by the thread of {before}, a training batch took up to {ratios[worst]:.2f}x the time it "
                 f"takes cut between steps (`{worst}`); the least was {ratios[best]:.2f}x (`{best}`).")
    tamed = {r["model"]: r["ms_per_batch"][ARMS[2]] / r["ms_per_batch"]["now"] for r in result["rows"]}
    lo, hi = min(tamed.values()), max(tamed.values())
    faster = [f"`{m}` ({v:.2f}x)" for m, v in tamed.items() if v < 1]
    lines.append(f"- At one torch thread, the thread took {lo:.2f}x to {hi:.2f}x the time of cutting between steps; "
                 + (f"it was faster on {', '.join(faster)}." if faster else "it was faster on none of the models."))
    load = result["load_average"]
    return (f"### The trainer's batch stream: cut between steps (now) or ahead in a thread (until {before})\n\n"
            f"Command: `{result['command']}`; torch threads: {result['threads']}; load average "
            f"{min(load):.1f}-{max(load):.1f} during the runs  \n{machine_line(result)}\n\n"
            + "\n".join(head) + "\n\n" + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
