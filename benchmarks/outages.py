"""Sensor outages in the training part, for evidence.py's ``--outages RATE``.

Loop detectors fail: a sensor goes dark for hours while its neighbours keep reporting. Where a reading is
missing the plain student has no target, while the distilled student gets the teacher's forecast in its
place (``distill.fill_missing``), and a graph teacher forms that forecast from neighbours the student
cannot see. This module knocks readings out of the training part of a data set, in outages of 1 to 8 hours
placed at random per sensor until ``RATE`` of each sensor's training readings are gone, and writes the
result in the README's "Your data" form (``stkd data export``), so that every model reads it through the
ordinary loader. Validation and test keep every reading: the scores stay comparable with the data set's
other rows. The outages come from their own seed, the same for every model seed.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np

OUTAGE_HOURS = (1, 8)  # the shortest and longest outage
OUTAGE_SEED = 0


def knock_out(mask: np.ndarray, lo: int, hi: int, rate: float, steps_per_hour: float,
              rng: np.random.Generator) -> np.ndarray:
    """A copy of ``mask`` (``[T, N, F]``, True where observed) with outages in the steps ``[lo, hi)``: per
    sensor, outages of uniformly drawn length (:data:`OUTAGE_HOURS`) at uniform starts, all of its features at
    once, until at least ``rate`` of its steps in the range are out (outages may overlap)."""
    if not 0 < rate < 1:
        raise ValueError(f"the outage rate must lie strictly between 0 and 1, got {rate}")
    out = mask.copy()
    shortest, longest = (max(1, int(round(h * steps_per_hour))) for h in OUTAGE_HOURS)
    span = hi - lo
    for node in range(mask.shape[1]):
        dark = np.zeros(span, dtype=bool)
        while dark.mean() < rate:
            length = int(rng.integers(shortest, longest + 1))
            start = int(rng.integers(0, max(1, span - length + 1)))
            dark[start:start + length] = True
        out[lo:hi][dark, node, :] = False
    return out


def outage_data(data_section: dict, rate: float, folder: Path) -> dict:
    """The data section reading ``data_section``'s data with outages at ``rate`` in its training part, written
    once into ``folder`` (reused when it is there); window, split and every other setting are kept."""
    from dataclasses import replace

    import yaml

    from stkd.config import parse_config
    from stkd.data.export import export_data
    from stkd.data.loaders import load_data
    from stkd.data.splits import split_ranges

    config_file = folder / "config.yaml"
    if not config_file.is_file():
        cfg = parse_config({"data": copy.deepcopy(data_section)}).data
        data = load_data(cfg)
        lo, hi = split_ranges(len(data.index), cfg.split)["train"]
        mask = knock_out(data.mask, lo, hi, rate, 3600 / data.freq.total_seconds(),
                         np.random.default_rng(OUTAGE_SEED))
        values = np.where(mask, data.values, np.nan).astype(np.float32)
        # labelled events (the simulator's incidents) are not a forecaster's concern, and the CSV form has none
        export_data(replace(data, values=values, mask=mask, events=None, name=f"{data.name}-outages"), folder)
    exported = yaml.safe_load(config_file.read_text())["data"]
    for key in ("path", "locations", "adjacency"):  # relative to the exported config; made absolute
        if exported.get(key):
            exported[key] = str((folder / exported[key]).resolve())
    kept = {k: v for k, v in data_section.items() if k not in ("source", "name", "path", "simulator")}
    return {**kept, **{k: v for k, v in exported.items() if k not in kept}}
