"""The spatio-temporal data layer: container, loaders, graphs, splits, scalers, windows, index."""

from stkd.data.container import STData

__all__ = ["STData"]
