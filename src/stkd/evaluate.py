"""Evaluation: predictions in original units, streamed metrics, and speed measurements.

Metrics are computed after inverse scaling, on observed targets only, per horizon step and averaged
(see :mod:`stkd.metrics`). Speed is measured, not estimated: batch-1 latency is the median of repeated
single-window forwards; throughput is windows per second at a large batch.
"""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass, field

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


@torch.no_grad()
def measure_speed(model: nn.Module, data, repeats: int = 50, throughput_batch: int = 256, *,
                  progress: bool = False, desc: str = "latency") -> dict:
    """Batch-1 latency (median ms over ``repeats``, with the 10th and 90th percentiles and the machine's
    1-minute load average while measuring) and throughput (windows/s at a large batch) on CPU.

    With ``progress`` a bar ``desc`` (``latency <model>``) counts the timed calls: each repeat, then the
    throughput measurement as one last step (a big teacher's batch-1 calls on CPU add up to minutes).
    The bar is drawn between calls, outside the timed spans."""
    with progress_bar(desc=desc, total=repeats + 1, unit="call", progress=progress) as bar:  # closed on errors too
        model.eval()
        starts = data.starts["test"] if len(data.starts["test"]) else data.starts["train"]
        one = data.batch(starts[:1])
        for _ in range(3):
            model(one.x, one.tod, one.dow)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            model(one.x, one.tod, one.dow)
            times.append(time.perf_counter() - t0)
            bar.update()
        big_starts = np.resize(starts, min(throughput_batch, max(1, throughput_batch)))
        big = data.batch(big_starts)
        model(big.x, big.tod, big.dow)
        n_rounds, t0 = 0, time.perf_counter()
        while n_rounds < 1 or time.perf_counter() - t0 < 0.5:  # at least half a second (one round if slower)
            model(big.x, big.tod, big.dow)
            n_rounds += 1
            if n_rounds >= 50:
                break
        elapsed = time.perf_counter() - t0
        bar.update()
    ms = np.asarray(times) * 1000.0
    return {"latency_ms_batch1": statistics.median(times) * 1000.0,
            # the spread over the repeats and how busy the machine was: a latency is read with both
            "latency_ms_batch1_p10": float(np.percentile(ms, 10)), "latency_ms_batch1_p90": float(np.percentile(ms, 90)),
            "load_avg_1m": machine_load(), "cpus": os.cpu_count(),
            "throughput_windows_per_s": n_rounds * len(big_starts) / elapsed}


def machine_load() -> float | None:
    """The 1-minute load average (runnable processes; compare with the CPU count), None where unknown."""
    try:
        return float(os.getloadavg()[0])
    except (OSError, AttributeError):  # Windows has no load average
        return None
