"""Progress bars for the long stages of a run: one helper, so every stage's bar looks the same and obeys
the same switches.

A stage longer than a few seconds (training, building a teacher's soft-label cache, scoring a model on
the test split, measuring the models' latency, fitting and scoring a baseline, an analysis section over many
sensors) shows a tqdm bar on stderr named ``"<stage> <what>"`` (``cache gwnet``, ``evaluate stid_kd``,
``latency gwnet, stid_kd, stid_plain``, ``baseline seasonal``; in ``stkd analyze`` the section: ``trend (MSTL)``), cleared
when the stage ends (``leave=False``) so a finished run leaves only its results on the terminal.

Nothing is shown when ``progress`` is False (``--quiet``, the Python API's ``progress=False``) or on a
rank other than 0 under DDP, so N processes do not draw N copies of every bar.

Where stderr is not a terminal (a log file, a pipe, a batch job) a bar redraws at most every
``LOG_INTERVAL_S`` seconds instead of ten times a second: a long run's log keeps a line of progress now and
then, not thousands of redraws.

No heavy imports: ``stkd analyze`` uses it without loading torch.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

from tqdm.auto import tqdm


def _rank0() -> bool:
    """True unless this process is a rank other than 0 of a torch.distributed group. A group can only
    exist once ``torch.distributed`` was imported, so this never imports torch itself."""
    if "torch.distributed" not in sys.modules:
        return True
    from stkd.distributed import is_rank0

    return is_rank0()


#: Seconds between two redraws of a bar where stderr is not a terminal (tqdm's own 0.1 s on one).
LOG_INTERVAL_S = 15.0


def _interval() -> dict[str, float]:
    """tqdm's ``mininterval`` for this process's stderr: its default on a terminal, ``LOG_INTERVAL_S`` elsewhere."""
    isatty = getattr(sys.stderr, "isatty", None)
    return {} if isatty is not None and isatty() else {"mininterval": LOG_INTERVAL_S}


#: The terminal row this process's bars draw on where it is one of several side by side (:mod:`stkd.processes`),
#: so their bars stack instead of overwriting each other; None: tqdm's own choice.
_ROW: list[int | None] = [None]


def set_bar_row(row: int) -> None:
    """Draw this process's bars on row ``row`` (one of several processes side by side)."""
    _ROW[0] = row


def bar(iterable: Iterable | None = None, *, desc: str, total: int | None = None, unit: str = "it",
        progress: bool = True, **kw: Any) -> tqdm:
    """A tqdm bar for one stage (on stderr, cleared when done), or a silent pass-through (``disable``)
    when ``progress`` is False or this is not rank 0. Use it like tqdm: wrap an iterable, or call
    ``update(n)`` and ``close()`` (or use it as a context manager)."""
    return tqdm(iterable, desc=desc, total=total, unit=unit, disable=not (progress and _rank0()), leave=False,
                file=sys.stderr, dynamic_ncols=True, **({"position": _ROW[0]} if _ROW[0] is not None else {}),
                **{**_interval(), **kw})
