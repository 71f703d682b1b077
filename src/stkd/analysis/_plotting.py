"""Figures for the analysis report: pyplot-free (an Agg canvas per figure, no global state, no backend
switch in the caller's process) and written atomically."""

from __future__ import annotations

from pathlib import Path

from stkd.io import atomic_write

DPI = 110


def figure(nrows: int = 1, ncols: int = 1, size: tuple[float, float] = (9, 4.5), **kw):
    """A new figure with its axes array (``squeeze=False``)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=DPI, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, **kw)
    return fig, axes


def save(fig, path: Path) -> Path:
    """Render ``fig`` to PNG and move it into place in one step (no half-written file on a crash)."""
    return atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=DPI))


def date_axis(ax) -> None:
    """Concise date ticks on the x axis."""
    import matplotlib.dates as mdates

    loc = mdates.AutoDateLocator(maxticks=8)
    ax.xaxis.set_major_locator(loc)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(loc))


def short(label: str, n: int = 22) -> str:
    label = str(label)
    return label if len(label) <= n else label[: n - 1] + "…"
