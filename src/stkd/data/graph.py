"""Sensor graphs: from a matrix file, from pairwise road distances, or from coordinates.

Every builder returns a scipy sparse CSR array of float32 weights ``[N, N]``: sensor networks are
sparse (a road sensor has a handful of neighbours), and a dense ``N x N`` matrix of 20,000 sensors
would take 1.6 GB. Row ``i``, column ``j`` holds the weight of the edge ``i -> j``; absent = no edge.

Sources the forms follow:
- thresholded Gaussian kernel: Li et al., "Diffusion Convolutional Recurrent Neural Network", ICLR
  2018 (DCRNN), ``w_ij = exp(-(d_ij / sigma)^2)`` with sigma the std of the distances, weights below
  a threshold dropped for sparsity;
- symmetric normalisation ``D^-1/2 A D^-1/2``: Kipf & Welling, "Semi-Supervised Classification with
  Graph Convolutional Networks", ICLR 2017;
- forward/backward transition matrices ``D_O^-1 A`` and ``D_I^-1 A^T``: DCRNN's diffusion convolution.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from stkd import names
from stkd.config import GraphConfig
from stkd.data.container import STData
from stkd.errors import ConfigError, DataError

EARTH_RADIUS_KM = 6371.0088  # mean Earth radius (IUGG); the same constant everywhere in stkd
MIN_KNN_WEIGHT = 1e-6  # floor that keeps a far neighbour's edge present (see knn_adjacency)
METHODS = names.GRAPH_METHODS

__all__ = [
    "EARTH_RADIUS_KM",
    "MIN_KNN_WEIGHT",
    "haversine_km",
    "check_coords",
    "gaussian_kernel_adjacency",
    "distance_table_to_matrix",
    "knn_adjacency",
    "symmetrize",
    "add_self_loops",
    "normalize",
    "transition_matrices",
    "build_adjacency",
    "neighbourhood_sample",
    "to_torch_sparse",
]


# --------------------------------------------------------------------------- distances
def haversine_km(coords_a: np.ndarray, coords_b: np.ndarray) -> np.ndarray:
    """Great-circle distances in km between every point of ``coords_a`` and every point of ``coords_b``.

    Builds the full ``[M, K]`` matrix, so it is meant for small uses (tests, a query point against a
    candidate set); graph building goes through a BallTree instead.

    Args:
        coords_a: ``[M, 2]`` (latitude, longitude) in degrees.
        coords_b: ``[K, 2]`` (latitude, longitude) in degrees.
    Returns:
        ``[M, K]`` float64 distances in km.
    """
    a = np.radians(np.atleast_2d(np.asarray(coords_a, dtype=np.float64)))  # (M, 2)
    b = np.radians(np.atleast_2d(np.asarray(coords_b, dtype=np.float64)))  # (K, 2)
    lat_a, lon_a = a[:, 0:1], a[:, 1:2]  # (M, 1)
    lat_b, lon_b = b[None, :, 0], b[None, :, 1]  # (1, K)
    h = (np.sin((lat_b - lat_a) / 2) ** 2
         + np.cos(lat_a) * np.cos(lat_b) * np.sin((lon_b - lon_a) / 2) ** 2)  # (M, K)
    # clip: rounding can push h a hair above 1 for antipodal points, and arcsin would return NaN
    return 2.0 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))


def check_coords(coords, names=None, what: str = "coords") -> np.ndarray:
    """Validate ``[N, 2]`` (lat, lon) degrees and return them as float64.

    A NaN or out-of-range coordinate would silently corrupt every distance computed from it, so it is
    an error naming the node (by id when ``names`` is given, else by position).
    """
    c = np.asarray(coords, dtype=np.float64)
    if c.ndim != 2 or c.shape[1] != 2:
        raise DataError(f"{what} must be [N, 2] (latitude, longitude), got shape {c.shape}")
    bad = ~np.isfinite(c).all(axis=1) | (np.abs(c[:, 0]) > 90) | (np.abs(c[:, 1]) > 180)
    if bad.any():
        pos = np.flatnonzero(bad)
        label = [names[i] for i in pos[:5]] if names is not None else pos[:5].tolist()
        kind = "node ids" if names is not None else "positions"
        more = f" and {len(pos) - 5} more" if len(pos) > 5 else ""
        raise DataError(f"{what}: {len(pos)} node(s) have a missing or out-of-range location "
                        f"(latitude must lie in [-90, 90], longitude in [-180, 180]); {kind} "
                        f"{label}{more}, first value {c[pos[0]].tolist()}")
    return c


def _finite_entries(dist) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """The edges of a distance matrix as ``(rows, cols, d)``: stored entries of a sparse matrix
    (an explicit stored 0 is an edge of length 0), finite entries of a dense one."""
    if not sp.issparse(dist):
        dist = np.asarray(dist, dtype=np.float64)
    if dist.ndim != 2 or dist.shape[0] != dist.shape[1]:
        raise DataError(f"a distance matrix must be square [N, N], got shape {tuple(dist.shape)}")
    n = dist.shape[0]
    if sp.issparse(dist):
        coo = sp.coo_array(dist)
        rows, cols, d = coo.row, coo.col, np.asarray(coo.data, dtype=np.float64)
        keep = np.isfinite(d)
        rows, cols, d = rows[keep], cols[keep], d[keep]
    else:
        rows, cols = np.nonzero(np.isfinite(dist))
        d = dist[rows, cols]
    return rows, cols, d, n


def _default_sigma(d: np.ndarray) -> float:
    """DCRNN's kernel width: the std of the distances; the mean (or 1) when they are all equal,
    so a graph whose edges all have the same length does not divide by zero."""
    if d.size == 0:
        return 1.0
    s = float(np.std(d))
    if s > 0:
        return s
    m = float(np.mean(d))
    return m if m > 0 else 1.0


def _mean_sigma(d: np.ndarray) -> float:
    """The kNN kernel width: the mean neighbour distance (1 km when every neighbour is at distance 0)."""
    m = float(np.mean(d)) if d.size else 0.0
    return m if m > 0 else 1.0


def _check_sigma(sigma: float | None) -> None:
    if sigma is not None and not (np.isfinite(sigma) and sigma > 0):
        raise ConfigError(f"graph.sigma: the Gaussian kernel width must be a positive number, got {sigma!r}")


def gaussian_kernel_adjacency(dist, sigma: float | None = None, threshold: float = 0.1) -> sp.csr_array:
    """DCRNN's thresholded Gaussian kernel over pairwise distances: ``w = exp(-(d / sigma)^2)``.

    Args:
        dist: ``[N, N]`` distances (e.g. road metres). Dense: ``np.inf`` or NaN = no edge. Sparse:
            absent = no edge, and a stored 0 is an edge of length 0 (weight 1).
        sigma: kernel width; default the std of the finite distances (as DCRNN).
        threshold: weights below it are dropped, which keeps the graph sparse (DCRNN uses 0.1).
    Returns:
        ``[N, N]`` CSR float32 weights in (0, 1].
    """
    _check_sigma(sigma)
    if not 0.0 <= threshold <= 1.0:
        raise ConfigError(f"graph.threshold: must lie in [0, 1] (kernel weights do), got {threshold}")
    rows, cols, d, n = _finite_entries(dist)
    if (d < 0).any():
        i = int(np.argmax(d < 0))
        raise DataError(f"distances must be >= 0; entry ({rows[i]}, {cols[i]}) is {d[i]}")
    s = _default_sigma(d) if sigma is None else float(sigma)
    w = np.exp(-np.square(d / s))  # (E,)
    keep = (w >= threshold) & (w > 0)  # w > 0: an underflowed weight is no edge, even at threshold 0
    return sp.csr_array((w[keep].astype(np.float32), (rows[keep], cols[keep])), shape=(n, n))


def _normalize_ids(col: pd.Series) -> pd.Series:
    """Ids as strings; float columns holding whole numbers (pandas reads ``773869`` as ``773869.0``
    when the column has a blank) are turned back into integers first, so they match the node ids."""
    if pd.api.types.is_float_dtype(col):
        vals = col.to_numpy()
        finite = np.isfinite(vals)
        if finite.all() and (vals == np.round(vals)).all():
            return pd.Series(vals.astype(np.int64), index=col.index).astype(str)
    return col.astype(str).str.strip()


def _distance_columns(df: pd.DataFrame, where: str) -> tuple[str, str, str]:
    """Pick the (from, to, cost) columns: by name (DCRNN/PEMS files use ``from,to,cost`` or
    ``from,to,distance``), else positionally when the table has exactly three columns."""
    lower = {str(c).strip().lower(): c for c in df.columns}
    if "from" in lower and "to" in lower:
        for name in ("cost", "distance", "dist", "weight"):
            if name in lower:
                return lower["from"], lower["to"], lower[name]
    if df.shape[1] == 3:
        return tuple(df.columns)  # type: ignore[return-value]
    raise DataError(f"{where}: a distance table needs columns from, to, cost (or exactly three columns); "
                    f"got {list(df.columns)}")


def distance_table_to_matrix(df: pd.DataFrame, nodes: list[str], path: str | Path | None = None) -> sp.csr_array:
    """A ``(from, to, cost)`` table as a sparse ``[N, N]`` distance matrix in the order of ``nodes``.

    Directed: row ``from``, column ``to``, as the DCRNN/PEMS distance files are. Ids may be integers
    or strings; they are matched to ``nodes`` as strings. Pairs that appear twice keep the shorter
    distance (the shortest known route); a blank cost is no edge. A zero cost (a sensor to itself)
    is kept as a stored 0, i.e. an edge of length 0.

    Args:
        df: the table (as read from the CSV).
        nodes: node ids of the data set, in its order.
        path: the file the table came from, named in error messages.
    Returns:
        ``[N, N]`` CSR float32 distances; absent = no edge.
    """
    where = str(path) if path is not None else "distance table"
    c_from, c_to, c_cost = _distance_columns(df, where)
    nodes = [str(n) for n in nodes]
    pos = {n: i for i, n in enumerate(nodes)}
    src, dst = _normalize_ids(df[c_from]), _normalize_ids(df[c_to])
    for col in (c_from, c_to):
        if df[col].isna().any():
            row = int(np.flatnonzero(df[col].isna().to_numpy())[0])
            raise DataError(f"{where}: column {col!r} is blank in data row {row + 1}; every pair needs both ids")
    known = set(nodes)
    unknown = sorted(set(src[~src.isin(known)]) | set(dst[~dst.isin(known)]))
    if unknown:
        more = f" and {len(unknown) - 10} more" if len(unknown) > 10 else ""
        raise DataError(f"{where}: {len(unknown)} sensor id(s) in columns {c_from!r}/{c_to!r} are not "
                        f"nodes of the data set: {unknown[:10]}{more} (the data has {len(nodes)} nodes, "
                        f"e.g. {nodes[:3]})")
    cost = pd.to_numeric(df[c_cost], errors="coerce")
    bad = cost.isna() & df[c_cost].notna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(f"{where}: column {c_cost!r} data row {row + 1} holds {df[c_cost].iloc[row]!r}, "
                        "expected a number (a distance)")
    if (cost < 0).any():
        row = int(np.flatnonzero((cost < 0).to_numpy())[0])
        raise DataError(f"{where}: column {c_cost!r} data row {row + 1} is negative ({cost.iloc[row]}); "
                        "distances must be >= 0")
    keep = cost.notna().to_numpy()
    table = pd.DataFrame({"r": src.map(pos).to_numpy()[keep], "c": dst.map(pos).to_numpy()[keep],
                          "d": cost.to_numpy(dtype=np.float64)[keep]})
    table = table.groupby(["r", "c"], as_index=False)["d"].min()  # duplicate pairs: shortest route
    n = len(nodes)
    # coo -> csr keeps explicit zeros, which here are real edges of length 0
    return sp.coo_array((table["d"].to_numpy(np.float32), (table["r"].to_numpy(), table["c"].to_numpy())),
                        shape=(n, n)).tocsr()


# ------------------------------------------------------------------------------ knn
def knn_adjacency(coords: np.ndarray, k: int, sigma: float | None = None) -> sp.csr_array:
    """Each node's ``k`` nearest neighbours by great-circle distance, Gaussian-weighted.

    Uses a BallTree with the haversine metric (``O(N log N)``, never an ``N x N`` matrix), so 20,000
    sensors take well under a second. The graph is directed (``i -> j`` for ``j`` among ``i``'s
    neighbours); :func:`symmetrize` it for an undirected one. No self loops: a node is removed from its
    own neighbour list even when another sensor sits at the same spot (distance 0, weight 1).
    Weights are ``exp(-(d / sigma)^2)``, floored at ``MIN_KNN_WEIGHT`` so that an isolated sensor
    keeps its k edges instead of ending up with none after underflow. The default sigma is the *mean*
    neighbour distance, not DCRNN's std: k-NN distances cluster around the typical sensor spacing, so
    their std is small next to the distances themselves and would push most weights to ~0 (on 20,000
    random sensors, half the edges hit the floor); with the mean, a neighbour at the typical spacing
    weighs ``exp(-1) = 0.37``.

    Args:
        coords: ``[N, 2]`` (latitude, longitude) in degrees.
        k: neighbours per node, ``1 <= k <= N - 1``.
        sigma: kernel width in km.
    Returns:
        ``[N, N]`` CSR float32 with exactly ``k`` entries per row.
    """
    c = check_coords(coords)
    n = c.shape[0]
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ConfigError(f"graph.k: the number of neighbours must be an integer >= 1, got {k!r}")
    if k > n - 1:
        raise ConfigError(f"graph.k: {k} neighbours asked for, but there are only {n} nodes "
                          f"(k must be <= N - 1 = {n - 1})")
    _check_sigma(sigma)
    # imported here: scikit-learn costs ~0.9 s at import (measured), and every model module imports this
    # file, so stkd.load of a student would pay it for a function only graph building calls
    from sklearn.neighbors import BallTree

    tree = BallTree(np.radians(c), metric="haversine")
    dist, idx = tree.query(np.radians(c), k=k + 1)  # (N, k + 1), nearest first, self usually among them
    dist = dist * EARTH_RADIUS_KM
    # drop self from each row; with duplicated coordinates self may not come first, and in the rare
    # row where ties push self out of the k + 1, drop the farthest instead
    is_self = idx == np.arange(n)[:, None]  # (N, k + 1)
    no_self = ~is_self.any(axis=1)
    is_self[no_self, -1] = True
    keep = ~is_self
    nbr = idx[keep].reshape(n, k)  # (N, k)
    d = dist[keep].reshape(n, k)  # (N, k)
    s = _mean_sigma(d) if sigma is None else float(sigma)
    w = np.maximum(np.exp(-np.square(d / s)), MIN_KNN_WEIGHT)  # (N, k)
    rows = np.repeat(np.arange(n), k)
    return sp.csr_array((w.ravel().astype(np.float32), (rows, nbr.ravel())), shape=(n, n))


# ------------------------------------------------------------------------ transforms
def _as_csr(adj, what: str = "adjacency") -> sp.csr_array:
    """Any dense or sparse square matrix as CSR float32 (NaN rejected: missing is not 0)."""
    a = sp.csr_array(adj, dtype=np.float32) if sp.issparse(adj) else sp.csr_array(np.asarray(adj, dtype=np.float32))
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise DataError(f"{what} must be square [N, N], got shape {tuple(a.shape)}")
    if not np.isfinite(a.data).all():
        raise DataError(f"{what} holds NaN or infinite weights; use 0 (dense) or no entry (sparse) for no edge")
    return a


def symmetrize(adj) -> sp.csr_array:
    """``max(A, A^T)`` elementwise: an undirected graph keeping the stronger of the two directions.

    Max rather than the average, so a one-way kNN edge keeps its weight instead of being halved.
    """
    a = _as_csr(adj)
    return sp.csr_array(a.maximum(a.T), dtype=np.float32)


def add_self_loops(adj, weight: float = 1.0) -> sp.csr_array:
    """Set missing diagonal entries to ``weight``; existing self loops are kept as they are.

    Keeping existing ones makes it idempotent and avoids doubling the diagonal of matrices that
    already carry self loops (DCRNN's kernel gives ``exp(0) = 1`` on the diagonal).
    """
    a = _as_csr(adj)
    fill = np.where(a.diagonal() == 0, np.float32(weight), np.float32(0))  # (N,)
    out = sp.csr_array(a + sp.diags_array(fill, format="csr"), dtype=np.float32)
    out.eliminate_zeros()
    return out


def normalize(adj, kind: str = "sym") -> sp.csr_array:
    """Degree-normalise: ``"sym"`` = ``D^-1/2 A D^-1/2`` (GCN), ``"rw"`` = ``D^-1 A`` (random walk).

    ``D`` holds the row sums (out-degrees). A node without edges keeps an all-zero row rather than
    dividing by zero. Computed in float64, returned as float32.
    """
    if kind not in ("sym", "rw"):
        raise ConfigError(f"normalize: kind must be 'sym' or 'rw', got {kind!r}")
    a = _as_csr(adj).astype(np.float64)
    if (a.data < 0).any():
        raise DataError("normalize: adjacency weights must be >= 0 (a negative degree has no square root)")
    deg = np.asarray(a.sum(axis=1)).ravel()  # (N,)
    with np.errstate(divide="ignore"):
        inv = np.where(deg > 0, 1.0 / deg, 0.0)
    if kind == "rw":
        out = sp.diags_array(inv) @ a
    else:
        r = np.sqrt(inv)
        out = sp.diags_array(r) @ a @ sp.diags_array(r)
    return sp.csr_array(out, dtype=np.float32)


def transition_matrices(adj) -> tuple[sp.csr_array, sp.csr_array]:
    """DCRNN's diffusion transition matrices: forward ``D_O^-1 A`` and backward ``D_I^-1 A^T``.

    Both are row-stochastic (rows of nodes with edges sum to 1): forward diffuses along edge
    direction, backward against it.
    """
    a = _as_csr(adj)
    return normalize(a, "rw"), normalize(sp.csr_array(a.T), "rw")


def strongest_neighbours(adj, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's ``k`` heaviest off-diagonal edges as ``(index [N, k] int64, weight [N, k] float32)``.

    Why: a model that reads its neighbours through a fixed-size gather costs O(N k), exports to ONNX
    (a sparse matmul does not), and needs no N x N matrix. Weights are each row's kept edges divided by
    their sum (a weighted mean of the neighbours); a row with fewer than ``k`` edges is padded with its
    own index at weight 0, so a node without neighbours reads zeros. Ties keep the lower column index.
    """
    if isinstance(k, bool) or int(k) < 1:
        raise ConfigError(f"strongest_neighbours: k must be >= 1, got {k!r}")
    a = _as_csr(adj).tolil()
    a.setdiag(0)
    a = sp.csr_array(a.tocsr(), dtype=np.float32)
    a.eliminate_zeros()
    a.sort_indices()
    n, k = a.shape[0], int(k)
    index = np.repeat(np.arange(n, dtype=np.int64)[:, None], k, axis=1)  # [N, k] padding: self
    weight = np.zeros((n, k), dtype=np.float32)  # [N, k]
    for i in range(n):
        lo, hi = a.indptr[i], a.indptr[i + 1]
        if lo == hi:
            continue
        cols, w = a.indices[lo:hi], a.data[lo:hi]
        top = np.argsort(-w, kind="stable")[:k]
        total = float(w[top].sum())
        if total <= 0:
            continue
        index[i, : top.size] = cols[top]
        weight[i, : top.size] = w[top] / total
    return index, weight


# ---------------------------------------------------------------------------- builder
def _knn_for_data(data: STData, cfg: GraphConfig) -> sp.csr_array:
    if data.coords is None:
        raise ConfigError(f"{data.name}: graph.method 'knn' needs node coordinates; set data.locations to a "
                          "CSV of node, latitude, longitude, or choose graph.method file (data.adjacency), "
                          "gaussian (data.distances) or none")
    coords = check_coords(data.coords, data.nodes, what=f"{data.name}: coordinates")
    n = data.num_nodes
    if n < 2:
        raise ConfigError(f"{data.name}: a knn graph needs at least 2 nodes, the data has {n}")
    k = cfg.k
    if isinstance(k, (int, np.integer)) and not isinstance(k, bool) and k > n - 1:
        warnings.warn(f"{data.name}: graph.k = {k} but there are only {n} nodes; using k = {n - 1}",
                      stacklevel=3)
        k = n - 1
    return knn_adjacency(coords, k, cfg.sigma)


def _gaussian_for_data(data: STData, cfg: GraphConfig, distances) -> sp.csr_array:
    if distances is None:
        raise ConfigError(f"{data.name}: graph.method 'gaussian' needs pairwise distances; set data.distances "
                          "to a CSV of (from, to, cost), or choose graph.method knn (coordinates) or file")
    if isinstance(distances, pd.DataFrame):
        dist = distance_table_to_matrix(distances, data.nodes)
    else:
        dist = distances
        if tuple(dist.shape) != (data.num_nodes, data.num_nodes):
            raise DataError(f"{data.name}: distance matrix must be [{data.num_nodes}, {data.num_nodes}], "
                            f"got {tuple(dist.shape)}")
    return gaussian_kernel_adjacency(dist, cfg.sigma, cfg.threshold)


def build_adjacency(data: STData, cfg: GraphConfig, distances: pd.DataFrame | None = None) -> sp.csr_array | None:
    """The data set's graph as chosen by ``cfg.method``; symmetrised when ``cfg.symmetric``.

    - ``file``: the adjacency already loaded into ``data.adjacency``, as CSR;
    - ``gaussian``: DCRNN's thresholded kernel over ``distances`` (a ``(from, to, cost)`` table, or an
      ``[N, N]`` matrix already in node order);
    - ``knn``: ``cfg.k`` nearest neighbours on ``data.coords`` (k is capped at N - 1 with a warning);
    - ``none``: no graph (``None``);
    - ``auto``: the loaded adjacency if any, else gaussian when distances are given, else knn when
      coordinates are, else ``None`` (models that need a graph then learn one or refuse).
    """
    method = cfg.method
    if method not in METHODS:
        raise ConfigError(f"data.graph.method: {method!r} is not one of {', '.join(METHODS)}")
    if method == "auto":
        if data.adjacency is not None:
            method = "file"
        elif distances is not None:
            method = "gaussian"
        elif data.coords is not None:
            method = "knn"
        else:
            return None
    if method == "none":
        return None
    if method == "file":
        if data.adjacency is None:
            raise ConfigError(f"{data.name}: graph.method 'file' needs an adjacency matrix; set data.adjacency "
                              "to a matrix file (csv/npy/npz), or choose graph.method knn, gaussian or none")
        adj = _as_csr(data.adjacency, what=f"{data.name}: adjacency")
    elif method == "gaussian":
        adj = _gaussian_for_data(data, cfg, distances)
    else:
        adj = _knn_for_data(data, cfg)
    return symmetrize(adj) if cfg.symmetric else adj


# ------------------------------------------------------------------------------ torch
def neighbourhood_sample(adj, k: int, rng: np.random.Generator) -> np.ndarray:
    """``k`` sorted node indices: the breadth-first neighbourhood of a random sensor.

    Why: training a graph teacher on a sub-graph needs nodes whose neighbours are mostly in the sample,
    or its graph convolutions see little but the sample's edge. A uniform node sample of a large road
    network keeps almost no edges; a breadth-first ball keeps every edge of its interior nodes.

    ``adj`` is any ``[N, N]`` adjacency (edges in either direction count). Hops are added whole until the
    next one would pass ``k``; that last hop is sampled at random to reach exactly ``k``. When a connected
    component runs out, growth restarts from a new random sensor.
    """
    m = _as_csr(adj)
    neighbours = (m + m.T).tocsr()  # undirected
    n = neighbours.shape[0]
    k = min(int(k), n)
    if k < 1:
        raise ConfigError(f"neighbourhood_sample: k must be >= 1, got {k}")
    chosen = np.zeros(n, dtype=bool)
    parts, count = [], 0
    while count < k:
        frontier = np.array([rng.choice(np.flatnonzero(~chosen))])
        while frontier.size and count < k:
            if frontier.size > k - count:
                frontier = rng.choice(frontier, k - count, replace=False)
            chosen[frontier] = True
            parts.append(frontier)
            count += frontier.size
            nxt = np.unique(neighbours[frontier].indices)
            frontier = nxt[~chosen[nxt]]
    return np.sort(np.concatenate(parts))


def to_torch_sparse(adj, layout: str = "coo", device=None):
    """A scipy (or dense) adjacency as a float32 torch sparse tensor for ``torch.sparse.mm``.

    ``layout="coo"`` (coalesced; works with autograd and on every device) or ``"csr"`` (faster
    sparse-dense products on CPU). torch is imported here so graph building does not need it.
    """
    import torch

    a = _as_csr(adj)
    if layout == "coo":
        coo = a.tocoo()
        indices = torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64))  # (2, E)
        values = torch.from_numpy(coo.data.astype(np.float32))  # (E,)
        return torch.sparse_coo_tensor(indices, values, a.shape, device=device, check_invariants=False).coalesce()
    if layout == "csr":
        a.sort_indices()
        with warnings.catch_warnings():  # "sparse CSR support is in beta": noise for every caller
            warnings.filterwarnings("ignore", message=".*Sparse CSR tensor support is in beta.*")
            return torch.sparse_csr_tensor(torch.from_numpy(a.indptr.astype(np.int64)),
                                           torch.from_numpy(a.indices.astype(np.int64)),
                                           torch.from_numpy(a.data.astype(np.float32)),
                                           size=a.shape, device=device, check_invariants=False)
    raise ConfigError(f"to_torch_sparse: layout must be 'coo' or 'csr', got {layout!r}")
