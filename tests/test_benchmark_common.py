"""Shared helpers of the benchmark scripts (``benchmarks/common.py``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from common import merged_records  # noqa: E402


def test_merged_records_replace_in_place_and_append_the_new_ones(tmp_path):
    """A record measured again (or completed later, e.g. ``evidence.py --distances-only``) keeps its place, so
    its row keeps its place in the tables; records of other invocations saved meanwhile are kept."""
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"records": [{"k": "a", "v": 1}, {"k": "b", "v": 1}, {"k": "c", "v": 1}]}))
    merged = merged_records(path, [{"k": "d", "v": 2}, {"k": "b", "v": 2}], key=lambda r: r["k"])
    assert merged == [{"k": "a", "v": 1}, {"k": "b", "v": 2}, {"k": "c", "v": 1}, {"k": "d", "v": 2}]
    assert merged_records(tmp_path / "none.json", [{"k": "a"}], key=lambda r: r["k"]) == [{"k": "a"}]
