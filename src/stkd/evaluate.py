"""Evaluation: predictions in original units, streamed metrics, and speed measurements.

Metrics are computed after inverse scaling, on observed targets only, per horizon step and averaged
(see :mod:`stkd.metrics`). Speed is measured, not estimated: batch-1 latency is the 10th percentile of
repeated single-window forwards; throughput is windows per second at a large batch; a run's models are
measured together, in rounds (:func:`measure_speeds`).
"""

from __future__ import annotations

import os
import random
import statistics
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from stkd.metrics import ForecastAccumulator
from stkd.progress import bar as progress_bar


def to_original_units(data, pred_scaled: torch.Tensor, nodes: torch.Tensor | None = None) -> torch.Tensor:
    """Undo the scaler on the target channels. pred_scaled: [B, H, N, F_out] -> same shape.

    ``nodes`` ([K] indices) when the batch holds a node subset (then N = K)."""
    return data.scaler.inverse(pred_scaled, feature_slice=slice(0, data.out_features), nodes=nodes)


@dataclass
class Predictions:
    """Test-split predictions kept for the report (may be a prefix of the windows for huge data)."""

    pred: np.ndarray  # [W, H, N, F_out] original units
    truth: np.ndarray  # [W, H, N, F_out]
    mask: np.ndarray  # [W, H, N, F_out] bool
    starts: np.ndarray  # [W]
    metrics: dict = field(default_factory=dict)


def iterate_eval(data, split: str, batch_size: int, *, progress: bool = False, desc: str = "evaluate"):
    """The batches of a split in order; with ``progress`` a bar ``desc`` counts their windows."""
    with progress_bar(desc=desc, total=data.num_windows(split), unit="window", progress=progress) as bar:
        for b in data.iterate(split, batch_size):
            yield b
            bar.update(len(b.start))


@torch.no_grad()
def evaluate_forecaster(forecast_fn, data, split: str, horizons, batch_size: int = 256,
                        keep_bytes: int = 256 * 2**20, *, progress: bool = False,
                        desc: str = "evaluate") -> Predictions:
    """Run ``forecast_fn(batch) -> [B, H, N, F_out]`` (original units) over a split.

    Metrics stream through an accumulator, so the whole split is never held in memory; predictions
    are kept for the report up to ``keep_bytes``. With ``progress`` a bar ``desc`` (``evaluate
    <model>``) counts the windows scored.
    """
    acc = ForecastAccumulator(data.H, data.num_nodes)
    kept_pred, kept_y, kept_m, kept_s = [], [], [], []
    kept = 0
    for batch in iterate_eval(data, split, batch_size, progress=progress, desc=desc):
        pred = forecast_fn(batch)
        acc.update(pred, batch.y, batch.mask)
        if kept < keep_bytes:
            kept_pred.append(pred.float().cpu().numpy())
            kept_y.append(batch.y.cpu().numpy())
            kept_m.append(batch.mask.cpu().numpy())
            kept_s.append(batch.start.cpu().numpy())
            kept += kept_pred[-1].nbytes
    metrics = acc.compute(horizons)
    cat = lambda xs, dt: np.concatenate(xs).astype(dt) if xs else np.zeros((0,), dt)  # noqa: E731
    return Predictions(cat(kept_pred, np.float32), cat(kept_y, np.float32), cat(kept_m, bool),
                       cat(kept_s, np.int64), metrics)


def model_forecaster(model: nn.Module, data, device: torch.device | str | None = None):
    """Wrap a model into ``batch -> predictions in original units`` (on the model's own device)."""
    if device is None:
        first = next(iter(model.parameters()), None)
        device = first.device if first is not None else torch.device("cpu")
    device = torch.device(device)
    model.eval()

    def forecast(batch):
        b = batch.to(device)
        out = model(b.x, b.tod, b.dow)["pred"]  # [B, H, N, F_out] scaled
        return to_original_units(data, out).cpu()

    return forecast


#: what :func:`time_in_rounds` times of a model: its batch-1 call, its batched call and that batch's size
TimedCalls = tuple[Callable[[], Any], Callable[[], Any], int]
#: rounds over all models of a run: each round times every model in turn, so a slow spell of the machine
#: (its other work, a clock change) lands on all of them alike instead of on the one measured at that moment
LATENCY_ROUNDS = 10
#: untimed batch-1 calls before the rounds, per model (a first call allocates its buffers)
WARMUP_CALLS = 10
#: seconds of batched calls per model and round for the throughput (at least one call, at most 50)
THROUGHPUT_SECONDS = 0.1


def model_calls(model: nn.Module, data, throughput_batch: int) -> TimedCalls:
    """What :func:`time_in_rounds` times of a model (put in eval mode): a forward of one test window (of the
    training windows where the data has no test split) and one of ``throughput_batch`` of them."""
    model.eval()
    starts = data.starts["test"] if len(data.starts["test"]) else data.starts["train"]
    one, big = data.batch(starts[:1]), data.batch(np.resize(starts, max(1, throughput_batch)))
    return partial(model, one.x, one.tod, one.dow), partial(model, big.x, big.tod, big.dow), len(big.x)


@torch.no_grad()
def measure_speeds(models: dict[str, tuple[nn.Module, Any]], repeats: int = 50, throughput_batch: int = 256, *,
                   rounds: int = LATENCY_ROUNDS, progress: bool = False) -> dict[str, dict]:
    """Batch-1 latency and throughput of a run's models on CPU, measured together in rounds.

    ``models`` maps a name to ``(model, the data it reads)``. A batch-1 call of a small student takes a
    fraction of a millisecond, so all its ``repeats`` calls take a few milliseconds: measured one model after
    the other, one model's calls could fall in a quiet moment and the next one's in a busy one (the default
    run's two teachers, one architecture, measured 0.49 and 0.79 ms that way in one run; 0.48 and 0.47 in
    rounds when the run was scored again). Here
    they are timed by :func:`time_in_rounds`: the latency is the 10th percentile of all its calls
    (:attr:`Timed.latency_ms`), with their median and 90th percentile beside it; the throughput (windows/s at
    ``throughput_batch``) the quickest round's. The machine's 1-minute load average at the end is recorded
    with each.

    With ``progress`` one bar, ``latency <names>``, counts the models' turns; it is drawn between
    turns, outside the timed spans."""
    calls = {name: model_calls(model, data, throughput_batch) for name, (model, data) in models.items()}
    with progress_bar(desc="latency " + ", ".join(models), total=2 * round_count(rounds, repeats) * len(models),
                      unit="model", progress=progress) as bar:
        timed = time_in_rounds(calls, repeats, rounds, after_each=bar.update)
    load = machine_load()
    return {name: {"latency_ms_batch1": t.latency_ms,
                   # the spread over the calls and how busy the machine was: a latency is read with both
                   "latency_ms_batch1_median": float(np.median(t.calls_ms)),
                   "latency_ms_batch1_p90": float(np.percentile(t.calls_ms, 90)),
                   "latency_rounds": len(t.rounds_ms), "load_avg_1m": load, "cpus": os.cpu_count(),
                   "throughput_windows_per_s": t.windows_per_s}
            for name, t in timed.items()}


@dataclass
class Timed:
    """What :func:`time_in_rounds` measured of one callable."""

    rounds_ms: list[float]  # [R] each round's median batch-1 call
    calls_ms: np.ndarray  # [R * calls per round] every batch-1 call
    rates: list[float]  # [R] windows per second of the batched calls, per round

    # The machine's other work only ever adds time, so a low share of the calls is what the model takes
    # undisturbed: the 10th percentile, less at the mercy of one lucky call than the quickest. Of four ways
    # to measure, it kept two copies of one architecture closest together (benchmarks/latency_rounds.py;
    # docs/benchmarks.md "Batch-1 latency of one run's models, measured four ways").
    @property
    def latency_ms(self) -> float:
        """The 10th percentile of all batch-1 calls (ms)."""
        return float(np.percentile(self.calls_ms, 10))

    @property
    def windows_per_s(self) -> float:
        """The quickest round's throughput (windows/s of the batched call)."""
        return float(max(self.rates))


def round_count(rounds: int, repeats: int) -> int:
    """The rounds :func:`time_in_rounds` runs: ``rounds``, but no more than there are ``repeats`` (each round
    takes at least one call of each key), and at least one."""
    return max(1, min(rounds, repeats))


def time_in_rounds(calls: dict[Any, TimedCalls], repeats: int,
                   rounds: int = LATENCY_ROUNDS, *, throughput_seconds: float = THROUGHPUT_SECONDS,
                   after_each: Callable[[], Any] | None = None) -> dict[Any, Timed]:
    """Time ``(batch-1 call, batched call, batch size)`` of each key, all keys in turn, in ``rounds`` rounds.

    Each key's ``repeats`` batch-1 calls are split over the rounds (at least one a round); each round times
    every key's share of them in turn, in an order drawn anew each round (seeded: the same every time), so
    that a slow spell of the machine (its other work, a clock change) lands on all keys alike instead of on
    the one measured at that moment, and no key always follows the same other. The batched calls (each key
    for ``throughput_seconds``, at least once, at most 50 times) come after all batch-1 rounds, in rounds of
    their own: beside a busy background process, with each model's batched phase right after its batch-1
    calls, the one of two copies of a teacher that always came after the other's batched phase measured up to
    a third slower.
    ``WARMUP_CALLS`` untimed batch-1 calls and one batched call of each key come first. ``after_each`` is
    called after each key's turn, outside the timed spans (a progress bar): ``2 * rounds * len(calls)``
    times."""
    keys = list(calls)
    rounds = round_count(rounds, repeats)
    per_round = -(-repeats // rounds)  # ceil: at least ``repeats`` calls in all
    for key in keys:  # warm-up: first calls allocate, the thread pool wakes
        one_call, big_call, _ = calls[key]
        for _ in range(WARMUP_CALLS):
            one_call()
        big_call()
    orders = random.Random(0)
    times: dict[Any, list[list[float]]] = {k: [] for k in keys}
    for _ in range(rounds):
        for key in orders.sample(keys, len(keys)):
            one_call = calls[key][0]
            round_times = []
            for _ in range(per_round):
                t0 = time.perf_counter()
                one_call()
                round_times.append(time.perf_counter() - t0)
            times[key].append(round_times)
            if after_each is not None:
                after_each()
    rates: dict[Any, list[float]] = {k: [] for k in keys}
    for _ in range(rounds):
        for key in orders.sample(keys, len(keys)):
            _, big_call, size = calls[key]
            n_calls, t0 = 0, time.perf_counter()
            while n_calls < 1 or (time.perf_counter() - t0 < throughput_seconds and n_calls < 50):
                big_call()
                n_calls += 1
            rates[key].append(n_calls * size / (time.perf_counter() - t0))
            if after_each is not None:
                after_each()
    return {k: Timed([statistics.median(t) * 1000.0 for t in times[k]],
                     np.concatenate([np.asarray(t) for t in times[k]]) * 1000.0, rates[k]) for k in keys}


def machine_load() -> float | None:
    """The 1-minute load average (runnable processes; compare with the CPU count), None where unknown."""
    try:
        return float(os.getloadavg()[0])
    except (OSError, AttributeError):  # Windows has no load average
        return None
