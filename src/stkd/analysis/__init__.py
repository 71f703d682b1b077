"""Spatio-temporal analysis of a data set: missing data, periodicity, trend and seasonality, spatial
autocorrelation, lagged correlation between neighbours, and anomalies (``stkd analyze``).

One module per analysis (``missing``, ``periodicity``, ``trend``, ``spatial``, ``lags``,
``anomalies``), each a set of plain functions over a ``[T, N]`` array; ``report.analyze`` runs them all
on an :class:`~stkd.data.container.STData` and writes ``analysis.md``, ``analysis.json`` and plots.
The heavy imports (statsmodels, matplotlib) happen on first use, so ``stkd --help`` stays fast.
"""

from __future__ import annotations

__all__ = ["analyze", "headline"]


def __getattr__(name: str):
    if name in __all__:
        from stkd.analysis import report

        return getattr(report, name)
    raise AttributeError(f"module 'stkd.analysis' has no attribute {name!r}")
