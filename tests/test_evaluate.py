"""Speed measurement (``stkd.evaluate.measure_speeds``): a run's models are timed together, in rounds, each
model in turn, so that a slow spell of the machine lands on all of them alike."""

from __future__ import annotations

import time
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from stkd.evaluate import WARMUP_CALLS, measure_speeds


class Windows:
    """The two things ``measure_speeds`` asks of a model's data: the test starts and a batch of them."""

    def __init__(self):
        self.starts = {"train": np.arange(40), "test": np.arange(20)}

    def batch(self, starts):
        b = len(starts)
        return SimpleNamespace(x=torch.zeros(b, 12, 3, 1), tod=torch.zeros(b, 12), dow=torch.zeros(b, 12))


class Clock:
    """Counts the batch-1 calls of every model; ``slow`` (a set of call numbers) sleeps longer on them."""

    def __init__(self, slow=frozenset()):
        self.calls: list[tuple[str, int]] = []
        self.slow = slow
        self.batch1 = 0


class Sleeper(nn.Module):
    """A model whose batch-1 call takes ``ms`` milliseconds (more on the clock's slow calls)."""

    def __init__(self, name: str, clock: Clock, ms: float = 1.0):
        super().__init__()
        self.name, self.clock, self.ms = name, clock, ms

    def forward(self, x, tod, dow):
        self.clock.calls.append((self.name, x.shape[0]))
        if x.shape[0] == 1:
            extra = 5.0 if self.clock.batch1 in self.clock.slow else 0.0
            self.clock.batch1 += 1
            time.sleep((self.ms + extra) / 1000)
        return {"pred": x}


def test_every_model_is_timed_once_a_round_in_orders_drawn_anew_and_the_batched_calls_after():
    clock = Clock()
    data = Windows()
    models = {n: (Sleeper(n, clock, 0.2), data) for n in ("a", "b", "c")}
    out = measure_speeds(models, repeats=10, throughput_batch=8, rounds=5)
    timed = clock.calls[3 * (WARMUP_CALLS + 1):]  # after each model's warm-up (batch-1 calls and one batch)
    single = [name for name, size in timed if size == 1]
    assert [size for _, size in timed] == [1] * 30 + [8] * (len(timed) - 30)  # every batch-1 round comes first
    rounds = [single[i:i + 6] for i in range(0, 30, 6)]  # 2 calls of each model a round
    orders = [tuple(r[::2]) for r in rounds]
    assert all(r[0::2] == r[1::2] and sorted(r[::2]) == ["a", "b", "c"] for r in rounds)
    assert len(set(orders)) > 1  # drawn anew: not the same order every round
    for name in "abc":
        assert sum(1 for n, s in timed if n == name and s == 8) >= 5  # its throughput, in every round too
        o = out[name]
        assert o["latency_rounds"] == 5 and o["throughput_windows_per_s"] > 0
        assert o["latency_ms_batch1"] <= o["latency_ms_batch1_median"] <= o["latency_ms_batch1_p90"]  # p10, p50, p90


def test_a_slow_spell_during_one_models_calls_does_not_make_it_slower_than_its_twin():
    """Two copies of one model, and a spell of 5 ms extra on 10 consecutive batch-1 calls, all of them the
    first model's in the first round. Timed one after the other (all calls of a model at once), the spell would
    have covered a fifth of its calls in a row; in rounds it spoils one round of five, a fifth of its calls, and
    their 10th percentile reads past it (as it would past a spell spread over the rounds)."""
    slow_from = 2 * WARMUP_CALLS  # the first timed batch-1 call
    clock = Clock(slow=frozenset(range(slow_from, slow_from + 10)))
    data = Windows()
    out = measure_speeds({"a": (Sleeper("a", clock), data), "b": (Sleeper("b", clock), data)},
                         repeats=50, throughput_batch=4, rounds=5)
    assert max(out[n]["latency_ms_batch1_p90"] for n in "ab") > 5  # the spell was measured: one's slowest calls
    assert out["a"]["latency_ms_batch1"] == pytest.approx(out["b"]["latency_ms_batch1"], abs=0.5)
    assert out["a"]["latency_ms_batch1"] < 3


def test_fewer_repeats_than_rounds_time_one_call_per_round():
    clock = Clock()
    out = measure_speeds({"a": (Sleeper("a", clock, 0.1), Windows())}, repeats=2, throughput_batch=4, rounds=5)
    assert out["a"]["latency_rounds"] == 2
    assert sum(1 for _, s in clock.calls if s == 1) == WARMUP_CALLS + 2
