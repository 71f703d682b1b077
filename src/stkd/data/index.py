"""A spatio-temporal index over an :class:`STData`: which sensors are near a place, and when.

Space is indexed with a scikit-learn BallTree under the haversine metric (great-circle distance on
the sphere), so a radius or nearest-neighbour query over 20,000 sensors touches a few tree nodes
rather than every sensor. Time needs no structure: the timestamp index is sorted and regular, so a
range is two binary searches. :meth:`SpatioTemporalIndex.query` combines the filters and returns a
sub-data-set with its own adjacency sub-matrix (``STData.subset``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.neighbors import BallTree

from stkd.data.container import STData
from stkd.data.graph import EARTH_RADIUS_KM, check_coords, haversine_km
from stkd.errors import DataError

__all__ = ["SpatioTemporalIndex"]


def _check_point(lat, lon) -> np.ndarray:
    """A query centre as ``[[lat, lon]]`` in radians, checked to be on the globe."""
    try:
        lat, lon = float(lat), float(lon)
    except (TypeError, ValueError):
        raise DataError(f"query centre must be numbers (latitude, longitude), got ({lat!r}, {lon!r})") from None
    if not (np.isfinite(lat) and np.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180):
        raise DataError(f"query centre ({lat}, {lon}) is not a location: latitude must lie in [-90, 90], "
                        "longitude in [-180, 180]")
    return np.radians([[lat, lon]])  # (1, 2)


class SpatioTemporalIndex:
    """Radius, bounding-box, nearest-neighbour and time-range queries over one data set.

    Node results are positions into ``data.nodes`` (int64 arrays); :meth:`query` turns them into a
    sub-data-set. Build once, query many times: the tree costs ``O(N log N)`` to build.
    """

    def __init__(self, data: STData):
        if data.coords is None:
            raise DataError(f"{data.name}: the spatio-temporal index needs node coordinates; load the data "
                            "with data.locations set to a CSV of node, latitude, longitude")
        self.data = data
        self.coords = check_coords(data.coords, data.nodes, what=f"{data.name}: coordinates")  # (N, 2) deg
        self.tree = BallTree(np.radians(self.coords), metric="haversine")

    # ------------------------------------------------------------------ space
    @property
    def num_nodes(self) -> int:
        return int(self.coords.shape[0])

    def extent(self) -> str:
        """The data's spatial and temporal extent, for error messages that say what was searchable."""
        c, idx = self.coords, self.data.index
        span = f"{idx[0]} .. {idx[-1]}" if len(idx) else "no timestamps"
        return (f"{self.data.name} has {self.num_nodes} nodes in latitude [{c[:, 0].min():.5f}, "
                f"{c[:, 0].max():.5f}], longitude [{c[:, 1].min():.5f}, {c[:, 1].max():.5f}], "
                f"time {span}")

    def nodes_within(self, lat: float, lon: float, radius_km: float) -> np.ndarray:
        """Positions (sorted) of nodes whose great-circle distance to ``(lat, lon)`` is ``<= radius_km``."""
        centre = _check_point(lat, lon)
        try:
            r = float(radius_km)
        except (TypeError, ValueError):
            r = float("nan")
        if not (np.isfinite(r) and r >= 0):
            raise DataError(f"radius_km must be a number >= 0, got {radius_km!r}")
        (found,) = self.tree.query_radius(centre, r=r / EARTH_RADIUS_KM)
        return np.sort(found.astype(np.int64))

    def nodes_in_bbox(self, lat_min: float, lat_max: float, lon_min: float, lon_max: float) -> np.ndarray:
        """Positions (sorted) of nodes inside a latitude/longitude box (edges inclusive).

        Uses the tree: candidates within a radius that circumscribes the box, then an exact mask on
        those candidates only. The radius is an upper bound on the distance from the box's centre to
        any point in it: half the latitude span (along the meridian) plus half the longitude span
        times the largest ``cos(latitude)`` in the box (along a parallel); a great-circle distance is
        never longer than that path. ``lon_min > lon_max`` means a box that crosses the antimeridian
        (e.g. 170 .. -170).
        """
        vals = [lat_min, lat_max, lon_min, lon_max]
        if not all(isinstance(v, (int, float, np.number)) and np.isfinite(v) for v in vals):
            raise DataError(f"bbox must be four numbers (lat_min, lat_max, lon_min, lon_max), got {vals}")
        if lat_min > lat_max:
            raise DataError(f"bbox: lat_min {lat_min} is above lat_max {lat_max}")
        if not (-90 <= lat_min and lat_max <= 90 and -180 <= min(lon_min, lon_max) and max(lon_min, lon_max) <= 180):
            raise DataError(f"bbox {vals} is not on the globe: latitudes in [-90, 90], longitudes in [-180, 180]")
        lon_span = (lon_max - lon_min) % 360.0 if lon_min > lon_max else lon_max - lon_min  # degrees
        lat_c = (lat_min + lat_max) / 2
        lon_c = (lon_min + lon_span / 2 + 180.0) % 360.0 - 180.0
        max_cos = 1.0 if lat_min <= 0 <= lat_max else np.cos(np.radians(min(abs(lat_min), abs(lat_max))))
        radius = np.radians((lat_max - lat_min) / 2) + max_cos * np.radians(lon_span / 2)  # radians
        (cand,) = self.tree.query_radius(np.radians([[lat_c, lon_c]]), r=min(radius, np.pi) + 1e-12)
        lat, lon = self.coords[cand, 0], self.coords[cand, 1]
        in_lat = (lat >= lat_min) & (lat <= lat_max)
        in_lon = ((lon >= lon_min) | (lon <= lon_max)) if lon_min > lon_max else ((lon >= lon_min) & (lon <= lon_max))
        return np.sort(cand[in_lat & in_lon].astype(np.int64))

    def nearest(self, lat: float, lon: float, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nodes nearest to ``(lat, lon)``: ``(positions, distances_km)``, nearest first."""
        centre = _check_point(lat, lon)
        self._check_k(k, self.num_nodes)
        dist, idx = self.tree.query(centre, k=int(k))  # (1, k) each, sorted by distance
        return idx[0].astype(np.int64), dist[0] * EARTH_RADIUS_KM

    @staticmethod
    def _check_k(k, available: int, among: str = "nodes exist") -> None:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise DataError(f"k must be an integer >= 1, got {k!r}")
        if k > available:
            raise DataError(f"k = {k} nearest nodes asked for, but only {available} {among}")

    # ------------------------------------------------------------------- time
    def _timestamp(self, t, what: str) -> pd.Timestamp:
        """``t`` as a timestamp comparable with the data's index (a naive time on a tz-aware index is
        taken in the index's time zone)."""
        try:
            ts = pd.Timestamp(t)
        except (TypeError, ValueError):
            raise DataError(f"{what} {t!r} is not a timestamp (e.g. '2024-01-31 08:00')") from None
        if ts is pd.NaT:
            raise DataError(f"{what} is not a timestamp: {t!r}")
        tz = self.data.index.tz
        if tz is not None and ts.tz is None:
            ts = ts.tz_localize(tz)
        elif tz is None and ts.tz is not None:
            raise DataError(f"{what} {t!r} has a time zone, but {self.data.name}'s timestamps have none")
        return ts

    def time_slice(self, start=None, end=None) -> slice:
        """Steps with ``start <= timestamp <= end`` (both inclusive; ``None`` = open end) as a slice.

        Two binary searches on the sorted index. The slice may be empty; :meth:`query` reports that.
        """
        idx = self.data.index
        t0 = None if start is None else self._timestamp(start, "start")
        t1 = None if end is None else self._timestamp(end, "end")
        if t0 is not None and t1 is not None and t0 > t1:
            raise DataError(f"time range: start {t0} is after end {t1}")
        lo = 0 if t0 is None else int(idx.searchsorted(t0, side="left"))
        hi = len(idx) if t1 is None else int(idx.searchsorted(t1, side="right"))
        return slice(lo, max(lo, hi))

    # ------------------------------------------------------------------ query
    def _node_positions(self, nodes: Sequence) -> np.ndarray:
        """Node ids as sorted positions; unknown ids are an error naming them."""
        if isinstance(nodes, str):
            nodes = [nodes]
        pos = {n: i for i, n in enumerate(self.data.nodes)}
        ids = [str(n) for n in nodes]
        unknown = [n for n in ids if n not in pos]
        if unknown:
            raise DataError(f"query nodes {unknown[:10]} are not nodes of {self.data.name} "
                            f"({self.num_nodes} nodes, e.g. {self.data.nodes[:3]})")
        return np.unique(np.array([pos[n] for n in ids], dtype=np.int64))

    def query(self, *, lat: float | None = None, lon: float | None = None, radius_km: float | None = None,
              k: int | None = None, bbox: Sequence[float] | None = None, start=None, end=None,
              nodes: Sequence[str] | None = None) -> STData:
        """The sub-data-set of the nodes and steps that pass every given filter.

        Node filters intersect: ``radius_km`` around ``(lat, lon)``, ``bbox`` = ``(lat_min, lat_max,
        lon_min, lon_max)``, and ``nodes`` (ids). ``k`` then keeps the ``k`` nodes nearest to
        ``(lat, lon)`` among those that passed (all nodes when no other node filter is given).
        ``start``/``end`` cut time (inclusive). Nodes keep the data's order. The result has its own
        adjacency sub-matrix. An empty result, or fewer than ``k`` candidates, is a :class:`DataError`
        that states the query and the data's extent.
        """
        has_centre = lat is not None or lon is not None
        if has_centre and (lat is None or lon is None):
            raise DataError(f"query: a centre needs both lat and lon, got lat={lat}, lon={lon}")
        if (radius_km is not None or k is not None) and not has_centre:
            raise DataError("query: radius_km and k are measured from a centre; give lat and lon too")
        if has_centre and radius_km is None and k is None:
            raise DataError("query: lat/lon given without radius_km or k; say how far (radius_km) or how "
                            "many nearest nodes (k)")
        asked = ", ".join(f"{n}={v!r}" for n, v in (("lat", lat), ("lon", lon), ("radius_km", radius_km),
                                                    ("k", k), ("bbox", bbox), ("start", start), ("end", end),
                                                    ("nodes", nodes)) if v is not None)
        keep = self._filter_nodes(lat, lon, radius_km, bbox, nodes)  # sorted positions or None (= all)
        if k is not None:
            keep = self._k_nearest(lat, lon, k, keep, asked)
        if keep is not None and keep.size == 0:
            raise DataError(f"query ({asked}) matched no nodes; {self.extent()}")
        ts = self.time_slice(start, end)
        if ts.stop <= ts.start:
            raise DataError(f"query ({asked}) matched no timestamps; {self.extent()}")
        return self.data.subset(keep, ts)

    def _filter_nodes(self, lat, lon, radius_km, bbox, nodes) -> np.ndarray | None:
        """Intersect the radius, bbox and id filters; ``None`` when none was given."""
        keep = None
        if radius_km is not None:
            keep = self.nodes_within(lat, lon, radius_km)
        if bbox is not None:
            if len(bbox) != 4:
                raise DataError(f"bbox must be (lat_min, lat_max, lon_min, lon_max), got {bbox!r}")
            inside = self.nodes_in_bbox(*bbox)
            keep = inside if keep is None else np.intersect1d(keep, inside)
        if nodes is not None:
            chosen = self._node_positions(nodes)
            keep = chosen if keep is None else np.intersect1d(keep, chosen)
        return keep

    def _k_nearest(self, lat, lon, k, candidates: np.ndarray | None, asked: str) -> np.ndarray:
        """The ``k`` candidates nearest to the centre, as sorted positions."""
        if candidates is None:
            pos, _ = self.nearest(lat, lon, k)
            return np.sort(pos)
        _check_point(lat, lon)
        among = f"nodes match the other filters ({asked})"
        if candidates.size == 0:
            raise DataError(f"query ({asked}) matched no nodes; {self.extent()}")
        self._check_k(k, int(candidates.size), among)
        # exact distances over the (already filtered) candidates only: [1, C]
        d = haversine_km(np.array([[lat, lon]]), self.coords[candidates])[0]
        return np.sort(candidates[np.argsort(d, kind="stable")[: int(k)]])
