"""How steady a run's batch-1 latencies are, measured four ways: why ``stkd.evaluate.measure_speeds`` times a
run's models together in rounds and reports the 10th percentile of a model's calls.

    python benchmarks/latency_rounds.py --run runs/quickstart     # writes docs/results/latency-rounds.json

The run's models are measured ``--times`` times over, each time four ways: **in turn** (each model's
``--repeats`` calls one after the other, the median call: how runs measured until 2026-12-07), **rounds,
median** (the calls split over ``--rounds`` rounds that take every model in turn, the median over rounds of
each round's median call), **rounds, quickest** (the same rounds, the quickest round's median call) and
**rounds, p10 of calls** (the same rounds, the 10th percentile of all calls: what runs report since
2026-12-07; the rounds as ``stkd.evaluate.time_in_rounds`` runs them, batch-1 rounds in orders drawn anew). Two models of one architecture and size (the run's distilled and plain student; its
teachers where it has two copies) take the same time per call, so the ratio of their latencies should be
1: its spread over the measurements is the error of the method. The teacher-over-student ratio (the
headline's "x lower batch-1 latency") is given too. ``--busy N ...`` (default 0 1) measures once per number: with
N background processes that keep a core busy in random bursts of 10 to 100 ms, half the time, like a
machine's other work.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import statistics
import time
from itertools import combinations
from pathlib import Path

import numpy as np
import torch

from common import machine_line, save_result

SECTION = "latency-rounds"
METHODS = ("in turn", "rounds, median", "rounds, quickest", "rounds, p10 of calls")


def busy(seed: int, stop) -> None:
    """Keep one core busy in random bursts (10-100 ms), idle as long between them, until ``stop`` is set."""
    rng = random.Random(seed)
    while not stop.is_set():
        until = time.perf_counter() + rng.uniform(0.01, 0.1)
        while time.perf_counter() < until:
            pass
        time.sleep(rng.uniform(0.01, 0.1))


def in_turn(calls: dict, repeats: int) -> dict[str, float]:
    """Each model's ``repeats`` batch-1 calls one after the other, after its warm-up: the median call (ms)."""
    from stkd.evaluate import WARMUP_CALLS

    out = {}
    for name, (one_call, _, _) in calls.items():
        for _ in range(WARMUP_CALLS):
            one_call()
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            one_call()
            times.append(time.perf_counter() - t0)
        out[name] = statistics.median(times) * 1000.0
    return out


def measure(calls: dict, args, n_busy: int) -> dict:
    """``args.times`` measurements of every method with ``n_busy`` background processes busy in bursts."""
    from stkd.evaluate import time_in_rounds

    spawn = mp.get_context("spawn")
    stop = spawn.Event()
    helpers = [spawn.Process(target=busy, args=(i, stop), daemon=True) for i in range(n_busy)]
    for h in helpers:
        h.start()
    measurements = []
    try:
        with torch.no_grad():
            for i in range(args.times):
                turn = in_turn(calls, args.repeats)
                timed = time_in_rounds(calls, args.repeats, args.rounds)
                measurements.append({"in turn": turn,
                                     "rounds, median": {k: float(np.median(t.rounds_ms)) for k, t in timed.items()},
                                     "rounds, quickest": {k: float(min(t.rounds_ms)) for k, t in timed.items()},
                                     "rounds, p10 of calls": {k: t.latency_ms for k, t in timed.items()}})
                print(n_busy, i, measurements[-1], flush=True)
    finally:
        stop.set()
        for h in helpers:
            h.join(5)
    return {"busy": n_busy, "measurements": measurements, "load_average": os.getloadavg()[0]}


def twins(models) -> list[tuple[str, str]]:
    """Pairs of models of one architecture and size: their latencies should be equal."""
    from stkd.models.base import count_params

    return [(a.name, b.name) for a, b in combinations(models, 2)
            if a.registry_name == b.registry_name and count_params(a.model) == count_params(b.model)]


def typical_gap(ratios: list[float]) -> float:
    """The root mean square of the ratios' log distance from 1, as a relative gap: how far apart two equal
    models typically measure (the largest gap alone is one measurement's luck)."""
    return float(np.expm1(np.sqrt(np.mean(np.log(ratios) ** 2))))


def condition_block(result: dict, cond: dict) -> str:
    """One condition's table (per method: the twins' ratio ranges, typical and largest gap) and the sentence
    that names the steadiest method by the typical gap over all twin pairs."""
    rows = ["| method | " + " | ".join(f"{a} / {b}: range (typical gap, largest)" for a, b in result["twins"])
            + f" | {result['teacher']} / {result['student']} range |",
            "| --- | " + " | ".join("---:" for _ in result["twins"]) + " | ---: |"]
    typical = {}
    measurements = cond["measurements"]
    methods = [m for m in METHODS if m in measurements[0]]
    for method in methods:
        cells, every = [], []
        for a, b in result["twins"]:
            r = [m[method][a] / m[method][b] for m in measurements]
            every += r
            cells.append(f"{min(r):.3f}-{max(r):.3f} ({typical_gap(r):.1%}, {max(abs(x - 1) for x in r):.1%})")
        typical[method] = typical_gap(every)
        h = [m[method][result["teacher"]] / m[method][result["student"]] for m in measurements]
        rows.append(f"| {method} | " + " | ".join(cells) + f" | {min(h):.2f}-{max(h):.2f}x |")
    best = min(typical, key=typical.get)  # type: ignore[arg-type]
    rounds = [m for m in methods if m != "in turn"]
    busy_text = (f"{cond['busy']} background process(es) busy in bursts" if cond["busy"]
                 else "no background process")
    sentence = (f"Over {len(measurements)} measurements, two copies of one architecture typically measured "
                f"{typical['in turn']:.1%} apart in turn and {min(typical[m] for m in rounds):.1%} to "
                f"{max(typical[m] for m in rounds):.1%} in rounds ("
                + ", ".join(f"{m.removeprefix('rounds, ')} {typical[m]:.1%}" for m in rounds)
                + f"): the steadiest is {best}.")
    return (f"**{busy_text}** (load average after: {cond['load_average']:.1f})\n\n" + "\n".join(rows)
            + "\n\n" + sentence + "\n")


def render(result: dict) -> str:
    a = result["args"]
    return (f"### Batch-1 latency of one run's models, measured four ways\n\n"
            f"Command: `{result['command']}` (run folder: the default preset's `stkd run`); {a['repeats']} "
            f"batch-1 calls per model and measurement, in {a['rounds']} rounds for the round methods  \n"
            f"{machine_line(result)}\n\n"
            + "\n".join(condition_block(result, c) for c in result["conditions"]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, required=True, help="a run folder with trained models (stkd run --out)")
    ap.add_argument("--times", type=int, default=12, help="measurements per condition, each of every method")
    ap.add_argument("--repeats", type=int, default=50, help="batch-1 calls per model and measurement")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--busy", type=int, nargs="+", default=[0, 1],
                    help="background processes busy in bursts: one condition per number")
    args = ap.parse_args()

    from stkd.data.windows import load_windowed
    from stkd.evaluate import model_calls
    from stkd.runs import load_run, load_trained

    cfg, _ = load_run(args.run)
    wd = load_windowed(cfg.data)
    models = load_trained(args.run, wd)
    pairs = twins(models)
    if not pairs:
        raise SystemExit(f"{args.run}: no two models of one architecture and size to compare")
    calls = {m.name: model_calls(m.model, wd.view(m.inputs), 256) for m in models}
    teacher = next(m.name for m in models if m.role == "teacher")
    student = next(m.name for m in models if m.role == "student_kd")
    conditions = [measure(calls, args, n) for n in args.busy]
    path = save_result(SECTION, "latency_rounds", {"twins": pairs, "teacher": teacher, "student": student,
                                                   "conditions": conditions},
                       vars(args) | {"run": None})
    print(render(json.loads(path.read_text())))


if __name__ == "__main__":
    main()
