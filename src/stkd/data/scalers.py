"""Scalers fitted on observed training values only, with an exact JSON-safe state.

Fitting on the train slice (never the whole series) is what keeps validation and test numbers honest:
z-scoring before the split leaks the future's mean and spread into the inputs. Statistics are
accumulated over time chunks in float64, so fitting a year of 20,000 sensors needs only a chunk of
scratch memory, and missing entries (mask False) never count, whatever value they hold.
"""

from __future__ import annotations

import numpy as np
import torch

from stkd import names
from stkd.errors import ConfigError, DataError, STKDError

KINDS = names.SCALERS
SCOPES = names.SCALER_SCOPES
_CHUNK_ELEMS = 1 << 22  # scratch elements per chunk (float64: 32 MiB)


def _rows_per_chunk(values: np.ndarray) -> int:
    """Time rows per chunk so that one chunk of ``[t, N, F]`` holds about ``_CHUNK_ELEMS`` entries."""
    per_row = int(np.prod(values.shape[1:])) or 1
    return max(1, _CHUNK_ELEMS // per_row)


def observed_stats(values: np.ndarray, mask: np.ndarray, extremes: bool = True) -> dict[str, np.ndarray]:
    """Per node and feature count, mean, sum of squared deviations, min and max of observed entries.

    ``values`` and ``mask`` are ``[T, N, F]``; every result is ``[N, F]`` (float64; count int64).
    Chunks are merged with Chan's parallel update, which stays accurate where sum-of-squares does not
    (large means, small spreads). Where nothing is observed: count 0, mean 0, m2 0, min +inf, max -inf.
    ``extremes=False`` skips min/max (two passes a z-score does not need).
    """
    values = np.asarray(values)
    mask = np.asarray(mask, dtype=bool)
    if values.ndim != 3 or mask.shape != values.shape:
        raise DataError(f"scaler: values and mask must both be [T, N, F], got {values.shape} and {mask.shape}")
    shape = values.shape[1:]
    count = np.zeros(shape, np.int64)
    mean = np.zeros(shape, np.float64)
    m2 = np.zeros(shape, np.float64)
    vmin = np.full(shape, np.inf)
    vmax = np.full(shape, -np.inf)
    step = _rows_per_chunk(values)
    zero = np.zeros((), values.dtype)
    for t0 in range(0, values.shape[0], step):
        raw, m = values[t0:t0 + step], mask[t0:t0 + step]
        v = np.where(m, raw, zero)  # [t, N, F]; missing may hold NaN or a sentinel: neither may count
        c = np.count_nonzero(m, axis=0)  # [N, F]
        mu = v.sum(axis=0, dtype=np.float64) / np.maximum(c, 1)
        d = v - mu  # float64
        d *= m  # missing entries: v = 0, so d = -mu; zero them
        q = np.einsum("tnf,tnf->nf", d, d)
        del d
        tot = count + c
        delta = mu - mean
        w = np.divide(c, tot, out=np.zeros(shape), where=tot > 0)
        mean = mean + delta * w
        m2 = m2 + q + delta * delta * count * w
        count = tot
        if extremes:
            vmin = np.minimum(vmin, np.where(m, raw, np.inf).min(axis=0))
            vmax = np.maximum(vmax, np.where(m, raw, -np.inf).max(axis=0))
    return {"count": count, "mean": mean, "m2": m2, "min": vmin, "max": vmax}


def pool_nodes(stats: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Merge per-node statistics into per-feature ones (``[1, F]``), exactly as if fitted globally."""
    count = stats["count"].sum(axis=0, keepdims=True)  # [1, F]
    n = np.maximum(count, 1)
    mean = (stats["count"] * stats["mean"]).sum(axis=0, keepdims=True) / n
    m2 = (stats["m2"] + stats["count"] * (stats["mean"] - mean) ** 2).sum(axis=0, keepdims=True)
    return {"count": count, "mean": mean, "m2": m2,
            "min": stats["min"].min(axis=0, keepdims=True), "max": stats["max"].max(axis=0, keepdims=True)}


def _center_scale(stats: dict[str, np.ndarray], kind: str) -> tuple[np.ndarray, np.ndarray]:
    """``(center, scale)`` of one kind; entries with nothing observed come back NaN for the caller."""
    seen = stats["count"] > 0
    if kind == "zscore":
        center = stats["mean"]
        scale = np.sqrt(stats["m2"] / np.maximum(stats["count"], 1))
    else:
        center = stats["min"]
        scale = stats["max"] - stats["min"]
    center = np.where(seen, center, np.nan)
    scale = np.where(seen, scale, np.nan)
    # A constant series (spread 0, or below float32 resolution) keeps scale 1: no division by zero.
    flat = seen & (scale <= 1e-7 * np.abs(center))
    return center, np.where(flat, 1.0, scale)


class Scaler:
    """``transform(v) = (v - center) / scale``, fitted per node and feature or per feature.

    ``kind="zscore"``: center = mean, scale = standard deviation. ``kind="minmax"``: center = min,
    scale = max - min (so the train range maps to [0, 1]). ``scope="node"`` keeps ``[N, F]``
    statistics, ``scope="global"`` one per feature (``[1, F]``, broadcast over nodes).
    A constant series gets scale 1; a node with nothing observed in the train slice falls back to
    the feature's global statistics, and a feature with nothing observed anywhere to 0 / 1.
    """

    def __init__(self, kind: str = "zscore", scope: str = "node") -> None:
        if kind not in KINDS:
            raise ConfigError(f"data.scaler: {kind!r} is not one of {', '.join(KINDS)}")
        if scope not in SCOPES:
            raise ConfigError(f"data.scaler_scope: {scope!r} is not one of {', '.join(SCOPES)}")
        self.kind = kind
        self.scope = scope
        self.center: np.ndarray | None = None  # [N or 1, F] float32
        self.scale: np.ndarray | None = None  # [N or 1, F] float32
        self.lower: np.ndarray | None = None  # [F] float32 floor applied by inverse (-inf: none); data.clip
        self._torch_cache: dict = {}

    def __repr__(self) -> str:
        shape = None if self.center is None else tuple(self.center.shape)
        return f"Scaler(kind={self.kind!r}, scope={self.scope!r}, stats_shape={shape})"

    # ------------------------------------------------------------------ fit
    def fit(self, values: np.ndarray, mask: np.ndarray) -> "Scaler":
        """Fit on ``values [T, N, F]`` where ``mask`` is True. Pass the TRAIN slice only."""
        stats = observed_stats(values, mask, extremes=self.kind == "minmax")
        g_center, g_scale = _center_scale(pool_nodes(stats), self.kind)  # [1, F]
        g_center = np.where(np.isnan(g_center), 0.0, g_center)  # feature never observed: 0 / 1
        g_scale = np.where(np.isnan(g_scale), 1.0, g_scale)
        if self.scope == "global":
            center, scale = g_center, g_scale
        else:
            center, scale = _center_scale(stats, self.kind)  # [N, F]
            lost = np.isnan(center)  # node never observed in train: borrow the feature's statistics
            center = np.where(lost, g_center, center)
            scale = np.where(lost, g_scale, scale)
        self._set(center, scale)
        return self

    def set_lower(self, lower) -> Scaler:
        """Floors per feature (``[F]``; None or -inf: unbounded) that :meth:`inverse` clips to: forecasts of a
        non-negative target never come back below 0 (``data.clip``)."""
        if lower is None:
            self.lower = None
        else:
            lo = np.asarray([-np.inf if v is None else v for v in lower], dtype=np.float32)
            if self.center is not None and lo.shape != (self.center.shape[1],):
                raise DataError(f"scaler: {lo.shape[0]} floors for {self.center.shape[1]} features")
            self.lower = None if np.isneginf(lo).all() else lo
        self._torch_cache = {}
        return self

    def _clip(self, values, feature_slice):
        """``values`` floored at :attr:`lower` (the features ``feature_slice`` picks); unchanged without floors."""
        if self.lower is None:
            return values
        lo = self.lower[slice(None) if feature_slice is None else feature_slice]
        if np.isneginf(lo).all():
            return values
        if isinstance(values, torch.Tensor):
            key = ("lower", values.device, values.dtype, repr(feature_slice))
            if key not in self._torch_cache:
                self._torch_cache[key] = torch.as_tensor(lo, dtype=values.dtype, device=values.device)
            return torch.maximum(values, self._torch_cache[key])
        return np.maximum(values, lo.astype(values.dtype, copy=False))

    def _set(self, center: np.ndarray, scale: np.ndarray) -> None:
        self.center = np.ascontiguousarray(center, dtype=np.float32)
        self.scale = np.ascontiguousarray(scale, dtype=np.float32)
        if not (np.isfinite(self.center).all() and np.isfinite(self.scale).all() and (self.scale > 0).all()):
            raise DataError("scaler: statistics are not finite and positive (are there inf values in the data?)")
        self._torch_cache = {}

    # ------------------------------------------------------------ transform
    def _params(self, like, feature_slice):
        """Center and scale for ``feature_slice`` as arrays/tensors matching ``like``'s type and device."""
        if self.center is None or self.scale is None:
            raise STKDError("Scaler: call fit() (or Scaler.from_state) before transform/inverse")
        fs = slice(None) if feature_slice is None else feature_slice
        if isinstance(like, torch.Tensor):
            dtype = like.dtype if like.is_floating_point() else torch.float32
            key = (like.device, dtype, repr(fs))
            if key not in self._torch_cache:
                c = torch.as_tensor(self.center[:, fs], dtype=dtype, device=like.device)
                s = torch.as_tensor(self.scale[:, fs], dtype=dtype, device=like.device)
                self._torch_cache[key] = (c, s)
            return self._torch_cache[key]
        return self.center[:, fs], self.scale[:, fs]

    def _check(self, values, center) -> None:
        """Trailing dims must be ``[N, F]`` (or ``[.., F]`` for global scope): fail loudly, don't broadcast wrong."""
        shape = tuple(values.shape)
        if len(shape) < 2 or shape[-1] != center.shape[-1] or (center.shape[0] != 1 and shape[-2] != center.shape[0]):
            raise DataError(f"scaler: expected values [..., {'N' if center.shape[0] == 1 else center.shape[0]}, "
                            f"{center.shape[-1]}], got shape {shape}")

    def transform(self, values, out: np.ndarray | None = None, feature_slice: slice | None = None):
        """Scale ``values [..., N, F]`` (numpy or torch). ``out=values`` works in place (numpy)."""
        c, s = self._params(values, feature_slice)
        self._check(values, c)
        if isinstance(values, torch.Tensor):
            return (values - c) / s
        values = np.asarray(values)
        if not np.issubdtype(values.dtype, np.floating):
            values = values.astype(np.float32)
        if out is None:
            return (values - c) / s
        np.subtract(values, c, out=out)
        np.divide(out, s, out=out)
        return out

    def inverse(self, values, feature_slice: slice | None = None, nodes=None):
        """Back to original units. ``values [..., N, F']`` (numpy or torch, any device).

        ``feature_slice`` picks the features ``values`` holds, e.g. ``slice(0, F_out)`` for model
        predictions of the targets only; ``None`` means all features. ``nodes`` (``[K]`` indices) says
        which nodes ``values [..., K, F']`` holds (a node-subset batch); per-node statistics follow it.
        """
        c, s = self._params(values, feature_slice)
        if nodes is not None and c.shape[0] > 1:
            if isinstance(c, torch.Tensor):
                idx = torch.as_tensor(nodes, device=c.device)
                c, s = c.index_select(0, idx), s.index_select(0, idx)
            else:
                c, s = c[np.asarray(nodes)], s[np.asarray(nodes)]
        self._check(values, c)
        if isinstance(values, torch.Tensor):
            return self._clip(values * s + c, feature_slice)
        values = np.asarray(values)
        if not np.issubdtype(values.dtype, np.floating):
            values = values.astype(np.float32)
        return self._clip(values * s + c, feature_slice)

    # ----------------------------------------------------------------- state
    def state_dict(self) -> dict:
        """Plain lists and strings (JSON/YAML-safe); float32 values survive a JSON round trip exactly."""
        if self.center is None or self.scale is None:
            raise STKDError("Scaler.state_dict: the scaler is not fitted")
        state = {"kind": self.kind, "scope": self.scope,
                 "center": self.center.tolist(), "scale": self.scale.tolist()}
        if self.lower is not None:  # only when clipping: older runs' states stay as they were
            state["lower"] = [None if np.isneginf(v) else float(v) for v in self.lower]
        return state

    @classmethod
    def from_state(cls, state: dict) -> "Scaler":
        """Rebuild a fitted scaler from :meth:`state_dict` output (e.g. read back from JSON)."""
        try:
            sc = cls(state["kind"], state["scope"])
            center = np.asarray(state["center"], dtype=np.float32)
            scale = np.asarray(state["scale"], dtype=np.float32)
        except (KeyError, TypeError, ValueError) as e:
            raise DataError(f"scaler state: expected keys kind, scope, center, scale with numeric lists ({e})") from None
        if center.ndim != 2 or center.shape != scale.shape or (sc.scope == "global" and center.shape[0] != 1):
            raise DataError(f"scaler state: center and scale must both be [N, F] ([1, F] for global scope), "
                            f"got {center.shape} and {scale.shape}")
        sc._set(center, scale)
        if state.get("lower") is not None:
            sc.set_lower(state["lower"])
        return sc
