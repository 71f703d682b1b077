"""The allowed values every part of stkd reads: one list per concept, in one place.

Config validation, the loaders, the CLI and the docs all take their choices from here, so a new data
source or builtin data set is added once. This module imports nothing heavy (no torch, pandas or
scikit-learn): the CLI's ``--help`` reads it.
"""

from __future__ import annotations

#: Builtin data sets (``data: {source: builtin, name: ...}``), each with a one-line description.
BUILTIN_DATASETS: dict[str, str] = {
    "akl-pedestrians": "hourly pedestrian counts, 21 sensors in central Auckland, 2019-2025 (CC BY 4.0)",
    "los-loop": "5-minute traffic speeds, 207 Los Angeles loop detectors, 7 days of March 2012 (MIT)",
    "synthetic-traffic": "a seeded road-network speed simulator with labelled incidents",
}
DEFAULT_BUILTIN = "akl-pedestrians"
