"""Event labels per (step, node), derived once for the whole series; windows index into them.

A label rule (:class:`stkd.config.EventsConfig`) turns the data into two ``[T, N]`` arrays:
``labels`` (int64 class 0..K-1, 0 = no event) and ``mask`` (bool, True where the label is known).
A window starting at ``s`` (``P`` input steps) reads the labels of its horizon steps
``s + P + h - 1`` for ``h = 1..H``: ``[B, H, N]``, exactly like the forecast targets.

Rules (definitions, in the config's words):

- ``threshold`` (K = 2): the *state* of step t is 1 when ``target[t] op value`` (``op`` one of
  ``< <= > >=``), 0 otherwise; unknown where the target is missing.
- ``bands`` (K = len(edges) + 1, ordered): the state of step t is the number of ``edges`` at or below
  ``target[t]`` (``edges = [35, 75]``: class 0 below 35, class 1 in [35, 75), class 2 at 75 and above).
- ``given``: the state is read from labels the user has: the simulator's incidents (label at the
  incident node on every step from ``start`` to ``end``, both included; 0 elsewhere, always known), a
  column of the long data file (blank = unknown), or an event file of ``(timestamp, node, label)``
  records or ``(start, end, node, label)`` intervals (unlisted steps are 0, known).

Look-ahead: with ``within: k`` the *label* of step t is the worst (largest) state over steps
``t .. t+k-1``, so "speed below 40 mph within the next 30 minutes" on 5-minute data is ``op: '<',
value: 40, within: 6``, read at horizon step 1. The label is known when the largest known state is the
top class (an event was seen, whatever the unknown steps hold) or when all k states are known.
The look-ahead never crosses a split boundary (train / val / test): steps past the end of the
label's split count as unknown, so a train label never reads validation data. ``within: 1``
(default) makes label = state.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from stkd.config import EventsConfig
from stkd.errors import ConfigError, DataError

OPS = {"<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal}


@dataclass
class EventLabels:
    """Labels of the whole series and what they mean.

    Attributes:
        labels: ``[T, N]`` int64, class 0..K-1 (0 where unknown).
        mask: ``[T, N]`` bool, True where the label is known.
        state: ``[T, N]`` int64, the class of each step itself (no look-ahead), with unknown steps
            carrying the last known state forward (0 before the first): what "now" looks like to a
            rule that can only see the past (the persistence baseline reads it).
        num_classes: K.
        class_names: a name per class (for tables and plots).
        rule: a one-line description of the rule.
    """

    labels: np.ndarray
    mask: np.ndarray
    state: np.ndarray
    num_classes: int
    class_names: list[str]
    rule: str

    def __post_init__(self):
        self._labels_t = torch.from_numpy(np.ascontiguousarray(self.labels))
        self._mask_t = torch.from_numpy(np.ascontiguousarray(self.mask))

    def steps(self, starts, P: int, H: int) -> np.ndarray:
        """Horizon step indices ``[B, H]`` of windows starting at ``starts``."""
        s = np.asarray(starts.cpu() if isinstance(starts, torch.Tensor) else starts, dtype=np.int64).reshape(-1)
        return s[:, None] + P + np.arange(H)

    def window(self, starts, P: int, H: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Labels and mask of the windows starting at ``starts``: ``[B, H, N]`` int64 and bool."""
        idx = torch.from_numpy(self.steps(starts, P, H))  # (B, H)
        return self._labels_t[idx], self._mask_t[idx]

    def now(self, starts, P: int) -> np.ndarray:
        """The state at each window's last input step ``[B, N]`` (forward-filled; the persistence rule)."""
        s = np.asarray(starts, dtype=np.int64).reshape(-1)
        return self.state[s + P - 1]

    def class_counts(self, lo: int, hi: int) -> np.ndarray:
        """Known labels per class over steps [lo, hi): ``[K]`` int64."""
        y, m = self.labels[lo:hi], self.mask[lo:hi]
        return np.bincount(y[m].ravel(), minlength=self.num_classes)[: self.num_classes]


# ----------------------------------------------------------------------------------- helpers
def _forward_fill(state: np.ndarray, known: np.ndarray) -> np.ndarray:
    """``state`` with unknown entries replaced by the last known one along time (0 before any)."""
    T = state.shape[0]
    idx = np.where(known, np.arange(T)[:, None], -1)  # (T, N)
    np.maximum.accumulate(idx, axis=0, out=idx)
    out = np.take_along_axis(state, np.maximum(idx, 0), axis=0)
    return np.where(idx >= 0, out, 0)


def look_ahead(state: np.ndarray, known: np.ndarray, within: int, top: int,
               segments: list[tuple[int, int]] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Worst state over steps ``t .. t+within-1`` per (t, node), and whether it is known.

    ``state`` ``[T, N]`` int (any value where ``known`` is False), ``known`` ``[T, N]`` bool, ``top`` the
    largest class. Known when every step of the look-ahead is known, or when the top class was seen in
    it. ``segments`` (e.g. the train/val/test step ranges) are treated as separate series: the look-ahead
    stops at a segment's end (the steps beyond count as unknown). Vectorised: ``within`` shifted views.
    """
    T = state.shape[0]
    if within <= 1:
        return np.where(known, state, 0).astype(np.int64), known.copy()
    segments = segments or [(0, T)]
    labels = np.zeros(state.shape, dtype=np.int64)
    mask = np.zeros(state.shape, dtype=bool)
    for lo, hi in segments:
        s = np.where(known[lo:hi], state[lo:hi], -1).astype(np.int64)  # unknown: -1, below every class
        k = known[lo:hi]
        n = hi - lo
        worst = s.copy()
        all_known = k.copy()
        for j in range(1, within):
            if j >= n:
                all_known[:] = False
                break
            np.maximum(worst[: n - j], s[j:], out=worst[: n - j])
            all_known[: n - j] &= k[j:]
            all_known[n - j:] = False  # their look-ahead runs past the segment end
        labels[lo:hi] = np.maximum(worst, 0)
        mask[lo:hi] = all_known | (worst == top)
    return labels, mask


def _feature_index(data, name: str | None) -> int:
    if name is None:
        return 0
    if name not in data.features:
        raise ConfigError(f"events.target: {name!r} is not a column of the data; its features are "
                          f"{', '.join(map(repr, data.features))}")
    return data.features.index(name)


def _steps_of(times: pd.Series, index: pd.DatetimeIndex, where: str) -> np.ndarray:
    """The step containing each timestamp (``index[k] <= t < index[k] + freq``); out-of-range is an error."""
    try:
        t = pd.DatetimeIndex(pd.to_datetime(times))
    except (ValueError, TypeError) as e:
        raise DataError(f"{where}: timestamps that cannot be parsed ({e})") from None
    if t.tz is None and index.tz is not None:
        t = t.tz_localize(index.tz)
    elif t.tz is not None and index.tz is None:
        t = t.tz_convert(None)
    step = index[1] - index[0] if len(index) > 1 else pd.Timedelta(0)
    pos = index.searchsorted(t, side="right") - 1
    bad = (pos < 0) | (t >= index[-1] + step) | t.isna()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(f"{where}: {int(bad.sum())} record(s) fall outside the data's time range "
                        f"{index[0]} .. {index[-1]} (first: {t[i]}); trim the file or widen data.time_range")
    return pos.astype(np.int64)


def _nodes_of(nodes: pd.Series, known: list[str], where: str) -> np.ndarray:
    lookup = {n: i for i, n in enumerate(known)}
    ids = nodes.astype(str).str.strip()
    ids = ids.where(~ids.str.fullmatch(r"-?\d+\.0"), ids.str[:-2])  # 12.0 -> 12 (an int column with blanks)
    pos = ids.map(lookup)
    bad = pos.isna().to_numpy()
    if bad.any():
        unknown = sorted(set(ids[bad]))
        raise DataError(f"{where}: {len(unknown)} unknown node id(s) {unknown[:5]} (not among the data's "
                        f"{len(known)} nodes, e.g. {known[:3]}); fix the ids or drop those records")
    return pos.to_numpy(np.int64)


def _int_labels(values: pd.Series, where: str) -> np.ndarray:
    v = pd.to_numeric(values, errors="coerce").to_numpy(np.float64)
    bad = ~np.isfinite(v) | (v != np.round(v)) | (v < 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(f"{where}: labels must be integers >= 0 (0 = no event); row {i + 2} holds "
                        f"{values.iloc[i]!r}")
    return v.astype(np.int64)


def _read_table(path: Path, columns: list[str] | None, what: str) -> pd.DataFrame:
    if not path.is_file():
        raise DataError(f"{what}: file {path} does not exist")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            df = pd.read_parquet(path)
        else:
            df = pd.read_csv(path, dtype=str, keep_default_na=True)
    except Exception as e:  # noqa: BLE001 - any reader error is a bad file
        raise DataError(f"{what}: cannot read {path} ({type(e).__name__}: {e})") from None
    if columns:
        missing = [c for c in columns if c not in df.columns]
        if missing:
            raise DataError(f"{what}: {path} has no column(s) {missing}; its columns are {list(df.columns)}")
    return df


# ------------------------------------------------------------------------------------ states
def _given_from_intervals(starts: np.ndarray, ends: np.ndarray, nodes: np.ndarray, labels: np.ndarray,
                          T: int, N: int) -> np.ndarray:
    """``[T, N]`` state from intervals (start and end steps inclusive); overlaps keep the larger label."""
    state = np.zeros((T, N), dtype=np.int64)
    for a, b, n, lab in zip(starts, ends, nodes, labels):  # one slice per event: events are few
        seg = state[a:b + 1, n]
        np.maximum(seg, lab, out=seg)
    return state


def given_state(e: EventsConfig, data, base_dir: Path | None = None, data_cfg=None) -> tuple[np.ndarray, np.ndarray, str]:
    """(state, known, description) of a ``rule: given`` config on ``data`` (an STData)."""
    T, N = data.num_steps, data.num_nodes
    if e.source == "simulator":
        ev = data.events
        if ev is None:
            raise DataError("events.source: simulator, but the data carry no events (use builtin synthetic-traffic)")
        if len(ev) == 0:
            return np.zeros((T, N), np.int64), np.ones((T, N), bool), "simulator incidents (none)"
        where = "simulator incidents"
        first, last = data.index[0], data.index[-1]  # a time_range cut may leave incidents half inside
        ev = ev[(pd.to_datetime(ev["end"]) >= first) & (pd.to_datetime(ev["start"]) <= last)]
        a = _steps_of(pd.to_datetime(ev["start"]).clip(lower=first), data.index, where)
        b = _steps_of(pd.to_datetime(ev["end"]).clip(upper=last), data.index, where)
        n = _nodes_of(ev["node"], data.nodes, where)
        lab = _int_labels(ev["label"], where)
        return _given_from_intervals(a, b, n, lab, T, N), np.ones((T, N), bool), "simulator incidents"
    if e.source == "column":
        path = Path((data_cfg.path if data_cfg is not None else None) or data.meta.get("path") or "")
        tcol = data_cfg.time_column if data_cfg is not None else e.time_column
        ncol = data_cfg.node_column if data_cfg is not None else e.node_column
        where = f"events.column {e.column!r}"
        if not path.is_file():
            raise DataError(f"{where}: the long data file (data.path) {str(path)!r} is not readable; "
                            "source column reads the label column from it")
        assert e.column is not None  # source column: checked with the config
        df = _read_table(path, [tcol, ncol, e.column], where)
        t = pd.DatetimeIndex(pd.to_datetime(df[tcol]))
        if t.tz is not None and data.index.tz is None:
            t = t.tz_convert(None)
        elif t.tz is None and data.index.tz is not None:
            t = t.tz_localize(data.index.tz)
        step = data.index[1] - data.index[0]
        keep = (t >= data.index[0]) & (t < data.index[-1] + step)  # data.time_range may have cut the series
        keep &= df[ncol].astype(str).str.strip().str.replace(r"\.0$", "", regex=True).isin(set(data.nodes)).to_numpy()
        df = df[np.asarray(keep)].reset_index(drop=True)
        blank = (df[e.column].isna() | (df[e.column].astype(str).str.strip() == "")).to_numpy()
        df = df[~blank].reset_index(drop=True)
        state = np.zeros((T, N), np.int64)
        known = np.zeros((T, N), bool)
        if len(df):
            a = _steps_of(df[tcol], data.index, where)
            n = _nodes_of(df[ncol], data.nodes, where)
            lab = _int_labels(df[e.column], where)
            np.maximum.at(state, (a, n), lab)
            known[a, n] = True
        return state, known, f"column {e.column!r} of the data file"
    # file
    assert e.path is not None  # source file: checked with the config
    path = Path(e.path)
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    where = f"event file {path}"
    df = _read_table(path, None, where)
    intervals = "start" in df.columns and "end" in df.columns and e.time_column not in df.columns
    need = ["start", "end"] if intervals else [e.time_column]
    need += [e.node_column, e.label_column]
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise DataError(f"{where}: no column(s) {missing}; expected (timestamp, node, label) records or "
                        f"(start, end, node, label) intervals, columns named by events.time_column / "
                        f"node_column / label_column; the file has {list(df.columns)}")
    n = _nodes_of(df[e.node_column], data.nodes, where)
    lab = _int_labels(df[e.label_column], where)
    if intervals:
        a = _steps_of(df["start"], data.index, where)
        b = _steps_of(df["end"], data.index, where)
        if (b < a).any():
            i = int(np.flatnonzero(b < a)[0])
            raise DataError(f"{where}: row {i + 2} ends before it starts ({df['start'].iloc[i]} .. {df['end'].iloc[i]})")
        state = _given_from_intervals(a, b, n, lab, T, N)
    else:
        a = _steps_of(df[e.time_column], data.index, where)
        state = np.zeros((T, N), np.int64)
        np.maximum.at(state, (a, n), lab)
    return state, np.ones((T, N), bool), f"event file {path.name}"


def rule_state(e: EventsConfig, data, base_dir: Path | None = None,
               data_cfg=None) -> tuple[np.ndarray, np.ndarray, int, list[str], str]:
    """(state [T, N], known [T, N], K, class names, description) of the config's rule, before look-ahead."""
    if e.rule == "given":
        state, known, desc = given_state(e, data, base_dir, data_cfg)
        top = int(state[known].max()) if known.any() else 0
        K = e.classes or max(2, top + 1)
        if top >= K:
            raise DataError(f"events.classes: the labels go up to {top} but classes is {K}")
        names = ["no event", "event"] if K == 2 else [f"class {k}" for k in range(K)]
        return state, known, K, names, f"given labels from the {desc}"
    f = _feature_index(data, e.target)
    name = data.features[f]
    x = data.values[:, :, f]  # (T, N) original units, NaN where missing
    known = data.mask[:, :, f] & np.isfinite(x)
    if e.rule == "threshold":
        assert e.value is not None  # checked with the config
        with np.errstate(invalid="ignore"):
            state = OPS[e.op](x, e.value).astype(np.int64)
        desc = f"{name} {e.op} {e.value:g}"
        return state, known, 2, ["no event", f"{name} {e.op} {e.value:g}"], desc
    edges = np.asarray(e.edges, dtype=np.float64)
    state = np.searchsorted(edges, np.nan_to_num(x, nan=-np.inf), side="right").astype(np.int64)
    bounds = ["-inf"] + [f"{v:g}" for v in edges] + ["inf"]
    names = [f"[{bounds[k]}, {bounds[k + 1]})" for k in range(len(edges) + 1)]
    return state, known, len(edges) + 1, names, f"{name} in bands cut at {', '.join(f'{v:g}' for v in edges)}"


def build_labels(e: EventsConfig, data, segments: list[tuple[int, int]] | None = None,
                 base_dir: Path | None = None, data_cfg=None) -> EventLabels:
    """Labels of the whole series for an events config (vectorised; see the module docstring)."""
    state, known, K, names, desc = rule_state(e, data, base_dir, data_cfg)
    labels, mask = look_ahead(state, known, e.within, K - 1, segments)
    if e.within > 1:
        desc += f" within the next {e.within} steps"
    now = _forward_fill(np.where(known, state, 0), known)
    return EventLabels(labels=labels, mask=mask, state=now, num_classes=K, class_names=names, rule=desc)


def check_train_labels(lab: EventLabels, wd, desc: str | None = None) -> np.ndarray:
    """Every class must occur among the train windows' known labels; return the train class counts.

    A threshold that yields no event (or only events) in the train part cannot be learned: say so
    before any training, with the counts and what to change.
    """
    starts = wd.starts["train"]
    lo, hi = int(starts.min()) + wd.P, int(starts.max()) + wd.P + wd.H  # steps the train windows score
    counts = lab.class_counts(lo, hi)
    missing = [k for k in range(lab.num_classes) if counts[k] == 0]
    if missing:
        what = desc or lab.rule
        total = int(counts.sum())
        if lab.num_classes == 2:
            kind = "no positive (event)" if missing == [1] else "no negative (non-event)"
            raise DataError(f"events: the rule '{what}' yields {kind} example in the train part "
                            f"({total} known labels, class counts {counts.tolist()}); change events.value/op, "
                            "events.within or the data so both occur")
        raise DataError(f"events: the rule '{what}' yields no example of class(es) "
                        f"{[lab.class_names[k] for k in missing]} in the train part (class counts "
                        f"{counts.tolist()}); change events.edges so every band occurs, or merge bands")
    return counts


def class_weights(cfg_weights, counts: np.ndarray) -> list[float] | None:
    """Class weights from the config: ``auto`` = n / (K * n_k) on the train labels, ``none``, or a list."""
    K = len(counts)
    if isinstance(cfg_weights, str):
        if cfg_weights == "none":
            return None
        n = counts.sum()
        return [float(n / (K * max(c, 1))) for c in counts]
    if len(cfg_weights) != K:
        raise ConfigError(f"events.class_weights: {len(cfg_weights)} weights given for {K} classes")
    return [float(w) for w in cfg_weights]
