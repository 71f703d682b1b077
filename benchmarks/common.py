"""Helpers the benchmark scripts share: data configs, machine facts, and writing one section of
docs/benchmarks.md (between ``<!-- NAME:start -->`` / ``<!-- NAME:end -->`` markers) atomically."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import re
import shlex
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "benchmarks.md"


def los_loop_data(**extra) -> dict:
    """The Los-loop data section (the builtin): 207 LA detectors, 5-minute speeds, 7 days, 12 in / 12 out,
    70/10/20."""
    return {"source": "builtin", "name": "los-loop", "window": {"input": 12, "horizon": 12},
            "split": [0.7, 0.1, 0.2], **extra}


def los_loop_nodes(k: int | None = None) -> list[str]:
    """The builtin Los-loop's detector ids (the first ``k``)."""
    from stkd.data.builtin import load_los_loop

    return load_los_loop().nodes[:k]


def machine() -> str:
    import torch

    return (f"{os.cpu_count()} CPU cores ({platform.processor() or platform.machine()}), torch {torch.__version__}"
            + (f", GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""))


def command() -> str:
    return "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(sys.argv[0], REPO), *sys.argv[1:]])


def mean_std(values) -> str:
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=float)
    if len(v) == 0:
        return "n/a"
    return f"{v.mean():.3f} ± {v.std(ddof=1):.3f}" if len(v) > 1 else f"{v.mean():.3f}"


def write_section(name: str, body: str, doc: Path = DOC, footer: str | None = None) -> None:
    """Replace (or append) the section ``name`` of docs/benchmarks.md, leaving the others untouched."""
    from stkd.io import write_text

    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    text = doc.read_text() if doc.is_file() else "# Benchmarks\n\nEvery number here comes from the command shown with it.\n"
    footer = footer or f"{_dt.date.today().isoformat()}, measured on {machine()}"
    block = f"{start}\n{body.rstrip()}\n\n_{footer}._\n{end}"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    write_text(doc, text)
