"""The in-memory spatio-temporal data set: the contract every other module builds on.

Values are ``float32 [T, N, F]`` with NaN where nothing was observed, and a boolean mask of the same
shape says what was observed. Missing is missing: it is never silently 0. The first ``len(targets)``
features are the forecast targets; the rest are covariates (inputs only).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import cast

import numpy as np
import pandas as pd
import scipy.sparse as sp

from stkd.errors import DataError


def _observed_nan(values: np.ndarray, mask: np.ndarray, chunk: int = 4096) -> bool:
    """True if any entry marked observed is NaN; chunked over time so a large set is not copied."""
    for t in range(0, values.shape[0], chunk):
        if (np.isnan(values[t:t + chunk]) & mask[t:t + chunk]).any():
            return True
    return False


@dataclass
class STData:
    """A regular multivariate time series over N sensors.

    Attributes:
        values: ``[T, N, F]`` float32; NaN where ``mask`` is False.
        mask: ``[T, N, F]`` bool; True where a value was observed.
        index: regular, strictly increasing timestamps of length T.
        nodes: sensor ids (strings) of length N.
        features: feature names of length F; ``features[:len(targets)] == targets``.
        targets: names of the forecast targets (a prefix of ``features``).
        coords: optional ``[N, 2]`` (latitude, longitude) in degrees.
        adjacency: optional weighted ``[N, N]`` adjacency (dense ndarray or scipy sparse).
        events: optional labelled events with columns ``start, end, node, label`` (timestamps,
            node id, integer label); the simulator's incidents are returned here.
        name: a short name of the data set (used in reports and cache keys).
    """

    values: np.ndarray
    mask: np.ndarray
    index: pd.DatetimeIndex
    nodes: list[str]
    features: list[str]
    targets: list[str]
    coords: np.ndarray | None = None
    adjacency: np.ndarray | sp.spmatrix | sp.sparray | None = None
    events: pd.DataFrame | None = None
    name: str = "data"
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.nodes = [str(n) for n in self.nodes]
        self.features = [str(f) for f in self.features]
        self.targets = [str(t) for t in self.targets]
        self.validate()

    # ------------------------------------------------------------------ shape
    @property
    def num_steps(self) -> int:
        return int(self.values.shape[0])

    @property
    def num_nodes(self) -> int:
        return int(self.values.shape[1])

    @property
    def num_features(self) -> int:
        return int(self.values.shape[2])

    @property
    def num_targets(self) -> int:
        return len(self.targets)

    @property
    def freq(self) -> pd.Timedelta:
        """The step between consecutive timestamps."""
        return pd.Timedelta(self.index[1] - self.index[0]) if len(self.index) > 1 else pd.Timedelta(0)

    @property
    def freq_str(self) -> str:
        """The frequency as a pandas offset alias (``5min``, ``1h``)."""
        return pd.tseries.frequencies.to_offset(self.freq).freqstr if self.num_steps > 1 else ""

    @property
    def steps_per_day(self) -> int:
        return max(1, int(round(pd.Timedelta("1D") / self.freq))) if self.num_steps > 1 else 1

    # ------------------------------------------------------------- invariants
    def validate(self) -> None:
        """Check the contract; raise :class:`DataError` naming what is wrong."""
        v, m = self.values, self.mask
        if v.ndim != 3:
            raise DataError(f"{self.name}: values must be [T, N, F], got shape {v.shape}")
        if v.dtype != np.float32:
            raise DataError(f"{self.name}: values must be float32, got {v.dtype}")
        if m.shape != v.shape or m.dtype != np.bool_:
            raise DataError(f"{self.name}: mask must be bool with shape {v.shape}, got {m.dtype} {m.shape}")
        T, N, F = v.shape
        if len(self.index) != T:
            raise DataError(f"{self.name}: index has {len(self.index)} timestamps, values have {T} steps")
        if T > 1:
            steps = np.diff(self.index.asi8)
            if (steps <= 0).any():
                row = int(np.argmax(steps <= 0)) + 1
                raise DataError(f"{self.name}: timestamps must be strictly increasing; row {row} "
                                f"({self.index[row]}) is not after {self.index[row - 1]}")
            if (steps != steps[0]).any():
                row = int(np.argmax(steps != steps[0])) + 1
                raise DataError(f"{self.name}: timestamps must be regular; step before row {row} "
                                f"({self.index[row]}) differs from the first step {pd.Timedelta(int(steps[0]))}")
        if len(self.nodes) != N:
            raise DataError(f"{self.name}: {len(self.nodes)} node ids for {N} nodes")
        if len(set(self.nodes)) != N:
            dup = pd.Index(self.nodes)[pd.Index(self.nodes).duplicated()][0]
            raise DataError(f"{self.name}: node id {dup!r} appears more than once")
        if len(self.features) != F:
            raise DataError(f"{self.name}: {len(self.features)} feature names for {F} features")
        if not self.targets or self.features[: len(self.targets)] != self.targets:
            raise DataError(f"{self.name}: targets {self.targets} must be the first features of {self.features}")
        if _observed_nan(v, m):
            raise DataError(f"{self.name}: values marked observed in the mask are NaN")
        if self.coords is not None:
            self.coords = np.asarray(self.coords, dtype=np.float64)
            if self.coords.shape != (N, 2):
                raise DataError(f"{self.name}: coords must be [N, 2] = [{N}, 2], got {self.coords.shape}")
        if self.adjacency is not None and tuple(self.adjacency.shape) != (N, N):
            raise DataError(f"{self.name}: adjacency must be [{N}, {N}], got {tuple(self.adjacency.shape)}")

    # ------------------------------------------------------------ constructors
    @classmethod
    def from_values(cls, values: np.ndarray, index, nodes, features, targets=None, **kw) -> "STData":
        """Build from values with NaN for missing; the mask is derived (observed = not NaN)."""
        values = np.asarray(values, dtype=np.float32)
        if values.ndim == 2:
            values = values[:, :, None]
        mask = ~np.isnan(values)
        targets = list(features[:1]) if targets is None else list(targets)
        return cls(values=values, mask=mask, index=pd.DatetimeIndex(index), nodes=list(nodes),
                   features=list(features), targets=targets, **kw)

    # ---------------------------------------------------------------- slicing
    def subset(self, node_idx=None, time_slice: slice | None = None) -> "STData":
        """A sub-data-set over some nodes and a contiguous time range, with its own adjacency sub-matrix."""
        node_idx = np.arange(self.num_nodes) if node_idx is None else np.asarray(node_idx, dtype=np.int64)
        ts = time_slice if time_slice is not None else slice(None)
        adj = None
        if self.adjacency is not None:
            a = self.adjacency
            adj = a[node_idx][:, node_idx] if sp.issparse(a) else np.asarray(a)[np.ix_(node_idx, node_idx)]
        events = None
        if self.events is not None:
            keep_nodes = {self.nodes[i] for i in node_idx}
            idx = self.index[ts]
            ev = self.events[self.events["node"].astype(str).isin(keep_nodes)]
            if len(idx):
                ev = ev[(ev["end"] >= idx[0]) & (ev["start"] <= idx[-1])]
            events = ev.reset_index(drop=True)
        return replace(
            self,
            values=np.ascontiguousarray(self.values[ts][:, node_idx]),
            mask=np.ascontiguousarray(self.mask[ts][:, node_idx]),
            index=self.index[ts],
            nodes=[self.nodes[i] for i in node_idx],
            coords=None if self.coords is None else self.coords[node_idx],
            adjacency=adj,
            events=events,
            meta=dict(self.meta),
        )

    def missing_share(self) -> dict[str, float]:
        """Share of unobserved entries per feature."""
        return {f: float(1.0 - self.mask[..., i].mean()) for i, f in enumerate(self.features)}

    def describe(self) -> dict:
        """A summary for ``stkd data inspect`` and reports."""
        adj = self.adjacency
        density = None
        if adj is not None:
            # cast: scipy has no type stubs, so issparse() does not narrow ndarray | sparse for mypy
            nnz = cast("sp.spmatrix | sp.sparray", adj).count_nonzero() if sp.issparse(adj) \
                else int(np.count_nonzero(np.asarray(adj)))
            density = nnz / float(self.num_nodes**2)
        return {
            "name": self.name,
            "nodes": self.num_nodes,
            "steps": self.num_steps,
            "features": self.features,
            "targets": self.targets,
            "freq": self.freq_str,
            "start": str(self.index[0]) if self.num_steps else None,
            "end": str(self.index[-1]) if self.num_steps else None,
            "missing_share": self.missing_share(),
            "has_coords": self.coords is not None,
            "graph_density": density,
            "events": 0 if self.events is None else int(len(self.events)),
        }
