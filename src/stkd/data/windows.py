"""From an :class:`STData` to batches: split, fit the scaler on train, impute, scale, window lazily.

:func:`prepare` returns the one :class:`WindowedData` that training, distillation, evaluation and
serving read. It holds a single scaled, imputed ``float32 [T, N, F]`` tensor and, per split, only the
integer start of every window; :meth:`WindowedData.batch` cuts a batch out of the tensor with one
gather. Nothing is ever materialised per window, so a year of 20,000 sensors windows for the cost of
its start indices (the BasicTS/tsl complaint of RAM blown up by pre-built windows cannot happen).

Targets in a batch are the ORIGINAL observed values, cut from the source ``data.values`` (which the
``WindowedData`` keeps referenced anyway, so this costs no extra array). Recovering them with
``scaler.inverse`` from the scaled tensor would be off by up to half a float32 ulp of the scaler's
center (6e-5 at a center of 2000): a zero count would come back as a tiny non-zero number and slip
past MAPE's zero guard. Missing targets are 0 with ``mask`` False.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from stkd.config import DataConfig, InputsConfig, parse_duration
from stkd.data.container import STData
from stkd.data.impute import fill_inputs
from stkd.data.loaders import load_data
from stkd.data.quality import check_observed, clip_outliers
from stkd.data.scalers import Scaler
from stkd.data.splits import SPLITS, check_ratios, split_ranges, window_starts
from stkd.data.views import InputView, lag_reach, resolve_view
from stkd.errors import ConfigError, DataError


@dataclass
class Batch:
    """One batch of windows (torch tensors). Shapes: B windows, P input steps, H horizon steps.

    x:     ``[B, P, N, F]`` float32, scaled and imputed inputs (targets first, then covariates).
    y:     ``[B, H, N, F_out]`` float32, targets in original units, 0 where missing.
    mask:  ``[B, H, N, F_out]`` bool, True where the target was observed.
    tod:   ``[B, P]`` float32, time of day in [0, 1) of each input step.
    dow:   ``[B, P]`` int64, day of week (Monday 0) of each input step.
    start: ``[B]`` int64, index of each window's first step in the data.
    nodes: ``[K]`` int64 indices of the nodes the batch holds (a node-subset batch, N = K), or None
        for all nodes.
    """

    x: torch.Tensor
    y: torch.Tensor
    mask: torch.Tensor
    tod: torch.Tensor
    dow: torch.Tensor
    start: torch.Tensor
    nodes: torch.Tensor | None = None

    def to(self, device, non_blocking: bool = False) -> "Batch":
        """The same batch on ``device`` (a new object; tensors already there are not copied)."""
        moved: dict[str, Any] = {}  # every field's tensor on device; nodes stays None when it is
        for f in fields(self):
            v = getattr(self, f.name)
            moved[f.name] = None if v is None else v.to(device, non_blocking=non_blocking)
        return Batch(**moved)

    def __len__(self) -> int:
        return int(self.start.shape[0])


# ------------------------------------------------------------------------------ helpers
def time_covariates(index: pd.DatetimeIndex) -> tuple[np.ndarray, np.ndarray]:
    """``tod [T]`` float32 in [0, 1) (wall-clock minutes since midnight / 1440) and ``dow [T]`` int64, Monday 0.

    Wall-clock fields (not elapsed time since midnight) keep a tz-aware index's profile aligned across
    daylight-saving changes.
    """
    secs = (index.hour.to_numpy(np.float64) * 3600 + index.minute.to_numpy(np.float64) * 60
            + index.second.to_numpy(np.float64))
    tod = np.minimum((secs / 86400.0).astype(np.float32), np.nextafter(np.float32(1), np.float32(0)))
    dow = index.day_of_week.to_numpy().astype(np.int64)
    return tod, dow


def _covariates_before(index: pd.DatetimeIndex, steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Time of day and day of week of the ``steps`` steps before ``index[0]`` (the clock runs on)."""
    step = pd.Timedelta(index[1] - index[0])
    before = pd.date_range(end=index[0] - step, periods=steps, freq=step, tz=index.tz)
    tod, dow = time_covariates(before)
    return torch.from_numpy(tod), torch.from_numpy(dow)


def weekdays_covered(index: pd.DatetimeIndex, times: int = 1) -> bool:
    """Whether every day of the week occurs on at least ``times`` distinct dates of ``index`` (the
    training part): the condition for a day-of-week embedding to be learnt rather than left at its
    random initial value for the weekdays training never saw (``ModelSpec.day_of_week``). Once is
    enough: on the simulator's 9.8 training days (one weekend) the embedding lowers validation and
    test MAE alike (``benchmarks/day_of_week.py``), where the earlier rule (twice) had left it off."""
    if len(index) == 0:
        return False
    days = pd.DatetimeIndex(index).normalize().unique()  # distinct dates
    counts = np.bincount(days.day_of_week.to_numpy(), minlength=7)
    return bool((counts >= times).all())


def steps_per_week(index: pd.DatetimeIndex) -> int | None:
    """Steps in one week when the step divides a week evenly (the seasonal-imputation period), else None."""
    if len(index) < 2:
        return None
    step = pd.Timedelta(index[1] - index[0])
    week = pd.Timedelta("7D")
    if step <= pd.Timedelta(0) or week % step != pd.Timedelta(0):
        return None
    return int(week // step)


def _min_steps(ratios: tuple[float, float, float], need: int) -> int:
    """The shortest series whose every non-empty split holds at least ``need`` steps (for the error message)."""
    positive = [r for r in ratios if r > 0]
    T = max(need, int(math.floor(need / min(positive))) - 2)
    while T < 100 * need / min(positive) + 10:
        rng = split_ranges(T, ratios)
        if all(hi - lo >= need for r, (lo, hi) in zip(ratios, rng.values()) if r > 0):
            return T
        T += 1
    return T


def _check_length(data: STData, ranges: dict[str, tuple[int, int]], ratios, P: int, H: int) -> None:
    """Every split with a positive share must hold one whole window; say by how much it falls short."""
    need = P + H
    short = [name for r, name in zip(ratios, SPLITS) if r > 0 and ranges[name][1] - ranges[name][0] < need]
    if not short:
        return
    per = ", ".join(f"{name} {hi - lo}" for name, (lo, hi) in ranges.items())
    raise DataError(
        f"{data.name}: the series is too short for one window in every split: it has {data.num_steps} steps, "
        f"a window needs input {P} + horizon {H} = {need} steps, and split {list(ratios)} gives "
        f"{per} steps ({', '.join(short)} too short). Use at least {_min_steps(ratios, need)} steps, "
        f"a shorter data.window, or data.split with a 0 share for val/test.")


# ------------------------------------------------------------------------------ the prepared data
class WindowedData:
    """Scaled, imputed data plus window starts per split; cuts :class:`Batch` es by index arithmetic.

    Attributes:
        x_all: ``[T, N, F]`` float32 tensor, scaled and imputed (the only copy of the values).
        mask_all: ``[T, N, F_out]`` bool tensor, True where a target was observed.
        tod: ``[T]`` float32 time of day in [0, 1); dow: ``[T]`` int64 day of week (Monday 0).
        starts: ``{"train" | "val" | "test": int64 ndarray}`` window starts; ranges (alias splits):
            ``{"train": (0, a), "val": (a, b), "test": (b, T)}``.
        P, H, num_nodes, in_features (F), out_features (F_out = number of targets), steps_per_day.
        input_len: the steps a batch's ``x`` holds: P, or a view's length (:meth:`view`).
        view: the :class:`~stkd.data.views.InputView` batches are cut for (None: the plain window).
        scaler: the :class:`Scaler` fitted on the train slice. index, nodes: timestamps and node ids.
        data: the source :class:`STData` (adjacency, coords, events); cfg: the :class:`DataConfig`.
        day_of_week: whether models embed the day of the week: ``data.day_of_week`` on/off, or with auto
            (the default) when the training part holds every weekday at least once (:func:`weekdays_covered`).
    """

    def __init__(self, *, x_all: torch.Tensor, mask_all: torch.Tensor, tod: torch.Tensor, dow: torch.Tensor,
                 starts: dict[str, np.ndarray], ranges: dict[str, tuple[int, int]], input_len: int,
                 horizon: int, scaler: Scaler, data: STData, cfg: DataConfig) -> None:
        self.x_all = x_all
        self.mask_all = mask_all
        self.tod = tod
        self.dow = dow
        self.starts = starts
        self.ranges = ranges
        self.P = int(input_len)
        self.H = int(horizon)
        self.scaler = scaler
        self.data = data
        self.cfg = cfg
        self.index = data.index
        self.nodes = list(data.nodes)
        self.num_steps = int(x_all.shape[0])
        self.num_nodes = int(x_all.shape[1])
        self.in_features = int(x_all.shape[2])
        self.out_features = int(mask_all.shape[2])
        self.steps_per_day = data.steps_per_day
        rule = cfg.day_of_week
        self.day_of_week = (weekdays_covered(data.index[ranges["train"][0]:ranges["train"][1]]) if rule == "auto"
                            else rule == "on")
        self.input_len = self.P
        self.view_spec: InputView | None = None
        self._before: tuple[torch.Tensor, torch.Tensor] | None = None
        self._fingerprint: str | None = None

    def __repr__(self) -> str:
        n = {k: len(v) for k, v in self.starts.items()}
        return (f"WindowedData({self.data.name!r}, T={self.num_steps}, N={self.num_nodes}, F={self.in_features}, "
                f"F_out={self.out_features}, P={self.P}, H={self.H}, windows={n})")

    @property
    def splits(self) -> dict[str, tuple[int, int]]:
        """The split step ranges (same as ``ranges``; both names are in use)."""
        return self.ranges

    @property
    def features(self) -> list[str]:
        return list(self.data.features)

    @property
    def targets(self) -> list[str]:
        return list(self.data.targets)

    @property
    def device(self) -> torch.device:
        return self.x_all.device

    def to(self, device) -> "WindowedData":
        """Move the tensors (in place, like ``nn.Module.to``) so batches are cut on ``device`` directly."""
        self.x_all = self.x_all.to(device)
        self.mask_all = self.mask_all.to(device)
        self.tod = self.tod.to(device)
        self.dow = self.dow.to(device)
        return self

    # ---------------------------------------------------------------- windows
    def view(self, inputs: InputsConfig | None, where: str = "inputs") -> "WindowedData":
        """The same windows (starts, targets, scaler) whose batches hold what ``inputs`` reads (see
        :mod:`stkd.data.views`): a longer history, lagged channels, some features. Shares every array;
        returns ``self`` for the plain window."""
        view = resolve_view(inputs, P=self.P, H=self.H, step=self.data.freq, features=self.features, where=where)
        if view is None:
            return self
        out = copy.copy(self)
        out.view_spec = view
        out.input_len = view.length
        out.in_features = len(view.features) * (1 + len(view.lags))
        lookback = view.length - self.P + lag_reach(view.lags, self.H)
        out._before = _covariates_before(self.index, lookback) if lookback > 0 else None
        return out

    @property
    def live_channels(self) -> int:
        """How many leading input channels hold the window's own readings; a lagged view's further channels
        hold readings from at least a horizon earlier (:mod:`stkd.data.views`)."""
        return self.in_features if self.view_spec is None else len(self.view_spec.features)

    def unseen_lag_share(self, split: str = "train") -> float:
        """The share of ``split``'s windows whose longest lagged channel reads only steps before the data's
        first step, so only the training mean (0 after scaling): there the lag tells the model nothing. 0
        for a view without lags. The lag's channel at input step ``t`` reads ``t + H - lag``, so a window
        starting at ``s`` sees an observed value at its last input step once ``s + P - 1 + H - lag >= 0``."""
        if self.view_spec is None or not self.view_spec.lags:
            return 0.0
        starts = self._split_starts(split)
        if not len(starts):
            return 0.0
        first_seen = lag_reach(self.view_spec.lags, self.H) - self.P + 1  # the first start that sees a value
        return float(np.mean(starts < first_seen))

    def view_key(self) -> dict | None:
        """The view as plain data (for cache keys and model cards); None for the plain window."""
        return None if self.view_spec is None else self.view_spec.key()

    def _split_starts(self, split: str) -> np.ndarray:
        if split not in self.starts:
            raise DataError(f"unknown split {split!r}; choose one of {', '.join(self.starts)}")
        return self.starts[split]

    def num_windows(self, split: str) -> int:
        """How many windows the split holds (windows crossing a split boundary are not counted)."""
        return int(len(self._split_starts(split)))

    def _as_starts(self, starts) -> tuple[np.ndarray, torch.Tensor]:
        """Starts as int64 (numpy, and a tensor on the data's device), checked to lie in ``[0, T - P - H]``.

        The check matters: a negative index would silently wrap around to the end of the series.
        """
        if isinstance(starts, torch.Tensor):
            a = starts.detach().to("cpu", torch.long).numpy().reshape(-1)
        else:
            a = np.asarray(starts, dtype=np.int64).reshape(-1)
        last = self.num_steps - self.P - self.H
        if a.size and (a.min() < 0 or a.max() > last):
            raise DataError(f"window starts must lie in [0, {last}] (T={self.num_steps}, P={self.P}, H={self.H}), "
                            f"got values from {a.min()} to {a.max()}")
        return a, torch.as_tensor(a, device=self.device)

    def batch(self, starts, nodes=None) -> Batch:
        """The windows starting at ``starts`` (``[B]`` ints: ndarray, list or tensor) as one :class:`Batch`.

        One gather per tensor: step indices ``start[:, None] + arange(P)`` select rows of ``x_all``.
        ``nodes`` (``[K]`` indices) cuts the batch to those nodes (node-subset training).
        """
        a, s = self._as_starts(starts)  # [B]
        B, P, H, N, F, Fo = len(a), self.P, self.H, self.num_nodes, int(self.x_all.shape[2]), self.out_features
        if self.view_spec is not None:
            return self._view_batch(self.view_spec, a, s, nodes)
        t_in = s[:, None] + torch.arange(P, device=self.device)  # [B, P]
        t_out = (a[:, None] + np.arange(P, P + H)).reshape(-1)  # [B*H] target steps
        if nodes is None:
            x = self.x_all.index_select(0, t_in.reshape(-1)).view(B, P, N, F)  # [B, P, N, F]
            mask = self.mask_all.index_select(0, torch.as_tensor(t_out, device=self.device)).view(B, H, N, Fo)
            raw = torch.from_numpy(self.data.values[t_out, :, :Fo]).view(B, H, N, Fo)  # [B, H, N, F_out], NaN if missing
            node_idx = None
        else:
            k_idx = np.asarray(nodes, dtype=np.int64).reshape(-1)
            if k_idx.size == 0 or k_idx.min() < 0 or k_idx.max() >= N:
                raise DataError(f"batch nodes must be indices in [0, {N - 1}], got {k_idx.size} values "
                                f"from {k_idx.min(initial=0)} to {k_idx.max(initial=0)}")
            # one gather over (step, node) pairs: the full-N rows of the window are never copied
            K, node_idx = len(k_idx), torch.as_tensor(k_idx, device=self.device)
            x = self.x_all[t_in.reshape(-1)[:, None], node_idx].view(B, P, K, F)  # [B, P, K, F]
            t_out_idx = torch.as_tensor(t_out, device=self.device)
            mask = self.mask_all[t_out_idx[:, None], node_idx].view(B, H, K, Fo)  # [B, H, K, F_out]
            raw = torch.from_numpy(self.data.values[t_out[:, None], k_idx, :Fo]).view(B, H, K, Fo)  # [B, H, K, F_out]
        y = torch.where(mask, raw.to(self.device), 0.0)  # original units, 0 where missing
        return Batch(x=x, y=y, mask=mask, tod=self.tod[t_in], dow=self.dow[t_in], start=s, nodes=node_idx)

    def observed_inputs(self, starts) -> torch.Tensor:
        """``[B, 1, N, F_out]`` bool: whether each sensor's target readings were observed at every input step of
        the windows starting at ``starts`` (the plain window's ``P`` steps). Where they were not, the inputs were
        imputed (``distill.teacher_scope: observed-inputs`` leaves the teacher's forecast out there)."""
        _, s = self._as_starts(starts)  # [B]
        t_in = s[:, None] + torch.arange(self.P, device=self.device)  # [B, P]
        return self.mask_all[t_in].all(dim=1, keepdim=True)  # [B, P, N, F_out] -> [B, 1, N, F_out]

    def _view_batch(self, v: InputView, a: np.ndarray, s: torch.Tensor, nodes) -> Batch:
        """A batch whose ``x``, ``tod``, ``dow`` follow the view ``v`` (this data's ``view_spec``); targets and
        mask as the plain window's."""
        plain = copy.copy(self)
        plain.view_spec = None
        base = plain.batch(a, nodes)  # targets, mask, node subset as usual
        L, H = v.length, self.H
        t_in = (s + self.P)[:, None] - L + torch.arange(L, device=self.device)  # [B, L], may reach before step 0
        feats = torch.as_tensor(v.features, device=self.device)
        node_idx = base.nodes
        chans = [self._gather(t, feats, node_idx) for t in (t_in, *(t_in + H - lag for lag in v.lags))]
        x = torch.cat(chans, dim=-1) if len(chans) > 1 else chans[0]  # [B, L, N, F_v * (1 + lags)]
        tod, dow = self._covariates(t_in)
        return Batch(x=x, y=base.y, mask=base.mask, tod=tod, dow=dow, start=s, nodes=node_idx)

    def _gather(self, t: torch.Tensor, feats: torch.Tensor, node_idx) -> torch.Tensor:
        """``x_all`` at steps ``t [B, L]`` (0 = the training mean before the first step), features ``feats``."""
        B, L = t.shape
        valid = t >= 0
        rows = t.clamp_min(0).reshape(-1)
        if node_idx is None:
            x = self.x_all.index_select(0, rows).view(B, L, self.num_nodes, -1)  # [B, L, N, F]
        else:
            x = self.x_all[rows[:, None], node_idx].view(B, L, len(node_idx), -1)  # [B, L, K, F]
        x = x.index_select(-1, feats)
        return x if bool(valid.all()) else x * valid[:, :, None, None]

    def _covariates(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Time of day and day of week at steps ``t`` (before the first step too, from the clock)."""
        if self._before is None or bool((t >= 0).all()):
            return self.tod[t], self.dow[t]
        tod_b, dow_b = self._before  # steps -len .. -1
        k = len(tod_b)
        tod = torch.cat([tod_b.to(self.device), self.tod])[t + k]
        dow = torch.cat([dow_b.to(self.device), self.dow])[t + k]
        return tod, dow

    def iterate(self, split: str, batch_size: int, shuffle: bool = False,
                generator: torch.Generator | None = None, drop_last: bool = False) -> Iterator[Batch]:
        """Yield the split's windows as batches; with ``shuffle`` the order comes from ``generator``'s seed."""
        if batch_size < 1:
            raise ConfigError(f"train.batch_size: must be >= 1, got {batch_size}")
        starts = self._split_starts(split)
        if shuffle:
            starts = starts[torch.randperm(len(starts), generator=generator).numpy()]
        for i in range(0, len(starts), batch_size):
            chunk = starts[i:i + batch_size]
            if drop_last and len(chunk) < batch_size:
                return
            yield self.batch(chunk)

    # ------------------------------------------------------------ fingerprint
    def fingerprint(self) -> str:
        """A 16-hex-digit sha256 of what determines the prepared data (the soft-label cache key).

        Covers the observed values (missing entries hashed as 0, whatever they hold), the mask, the
        timestamps, node ids, feature and target names, the adjacency, and the DataConfig fields that
        change the prepared arrays or windows (window lengths, split, impute, scaler, scaler_scope).
        The data name and file paths are left out: the same values give the same key.
        """
        if self._fingerprint is None:
            self._fingerprint = data_fingerprint(self.data, self.cfg)
        return self._fingerprint


def data_fingerprint(data: STData, cfg: DataConfig) -> str:
    """See :meth:`WindowedData.fingerprint`; hashes in time chunks so no full-size temporary is made."""
    h = hashlib.sha256()
    settings = {"input": cfg.window.input, "horizon": cfg.window.horizon, "split": [float(r) for r in cfg.split],
                "impute": cfg.impute, "scaler": cfg.scaler, "scaler_scope": cfg.scaler_scope}
    clip = getattr(cfg, "clip_outliers", None)
    if clip is not None:  # only then, so older runs keep their fingerprint
        settings["clip_outliers"] = float(clip)
    if getattr(cfg, "history", None) is not None:  # the same: only then
        settings["history"] = str(cfg.history)
    h.update(json.dumps(settings, sort_keys=True).encode())
    h.update(json.dumps({"shape": list(data.values.shape), "nodes": data.nodes, "features": data.features,
                         "targets": data.targets}).encode())
    h.update(np.ascontiguousarray(data.index.asi8).tobytes())
    rows = max(1, (1 << 22) // max(1, data.num_nodes * data.num_features))
    for t0 in range(0, data.num_steps, rows):
        v, m = data.values[t0:t0 + rows], data.mask[t0:t0 + rows]
        h.update(np.where(m, v, np.float32(0)).astype(np.float32).tobytes())
        h.update(np.packbits(m).tobytes())
    adj = data.adjacency
    if adj is not None:
        if sp.issparse(adj):
            a = sp.csr_matrix(adj, dtype=np.float32)
            a.sum_duplicates()
            a.sort_indices()
            for part in (a.indptr, a.indices, a.data):
                h.update(np.ascontiguousarray(part).tobytes())
        else:
            h.update(np.ascontiguousarray(np.asarray(adj, dtype=np.float32)).tobytes())
    return h.hexdigest()[:16]


# ------------------------------------------------------------------------------ prepare
def clip_floors(data: STData, train_end: int, mode: str = "auto") -> list[float | None] | None:
    """Per-feature floors for forecasts (``data.clip``): 0 for each target under ``nonnegative``, or under
    ``auto`` for each target whose observed train values are all >= 0 (counts, speeds, concentrations);
    None for covariates and unbounded targets. None when nothing is clipped."""
    if mode == "none":
        return None
    floors: list[float | None] = [None] * data.num_features
    for j in range(data.num_targets):
        if mode == "nonnegative":
            floors[j] = 0.0
            continue
        v, m = data.values[:train_end, :, j], data.mask[:train_end, :, j]
        if m.any() and float(np.min(v[m])) >= 0:
            floors[j] = 0.0
    return floors if any(f is not None for f in floors) else None


def keep_history(data: STData, ranges: dict[str, tuple[int, int]], history: str,
                 need: int) -> tuple[STData, dict[str, tuple[int, int]]]:
    """The data from the last ``history`` (a duration, ``data.history``) of the train part on, and the split
    ranges shifted to match: a place with little history. The val and test parts keep their steps, so
    models trained on any history are scored on the same test windows; everything fitted on the train part
    (scaler, imputation, day-of-week coverage, forecast floors) sees only the kept steps, because the
    earlier ones are gone, not merely unused."""
    steps = int(round(parse_duration(history, "data.history") / data.freq.total_seconds()))
    lo, hi = ranges["train"]
    if steps < need:
        raise ConfigError(f"data.history: {history} is {steps} steps of {data.freq_str}, shorter than one window "
                          f"(input + horizon = {need} steps); keep a longer history")
    cut = max(lo, hi - steps)
    if cut == lo:
        return data, ranges
    shifted = {name: (a - cut if name != "train" else 0, b - cut) for name, (a, b) in ranges.items()}
    return data.subset(time_slice=slice(cut, None)), shifted


def split_data(data: STData, cfg: DataConfig) -> tuple[STData, dict[str, tuple[int, int]]]:
    """The data (its train part cut to ``data.history`` when set) and its train / val / test step ranges, as
    :func:`prepare` cuts them; errors for a window that does not fit."""
    P, H = int(cfg.window.input), int(cfg.window.horizon)
    if P < 1 or H < 1:
        raise ConfigError(f"data.window: input and horizon must be >= 1, got input={P}, horizon={H}")
    ratios = check_ratios(cfg.split)
    ranges = split_ranges(data.num_steps, ratios)
    _check_length(data, ranges, ratios, P, H)
    if cfg.history is not None:
        data, ranges = keep_history(data, ranges, cfg.history, P + H)
    return data, ranges


def prepare(data: STData, cfg: DataConfig) -> WindowedData:
    """Split, fit the scaler on train only, impute inputs with train statistics, scale, and index windows.

    Memory: one float32 copy of the values (filled and scaled in place) plus a bool target mask; the
    source ``data`` is left untouched and referenced, not copied.
    """
    P, H = int(cfg.window.input), int(cfg.window.horizon)
    data, ranges = split_data(data, cfg)
    train_end = ranges["train"][1]
    data = check_observed(data, train_end)  # no target at all: an error; silent nodes: dropped with a warning
    if cfg.clip_outliers is not None:
        data = clip_outliers(data, cfg.clip_outliers, train_end)

    scaler = Scaler(cfg.scaler, cfg.scaler_scope).fit(data.values[:train_end], data.mask[:train_end])
    scaler.set_lower(clip_floors(data, train_end, cfg.clip))
    x = np.array(data.values, dtype=np.float32, order="C", copy=True)  # [T, N, F] the one working copy
    fill_inputs(x, data.mask, method=cfg.impute, period=steps_per_week(data.index), train_end=train_end,
                inplace=True)
    scaler.transform(x, out=x)
    tod, dow = time_covariates(data.index)
    return WindowedData(
        x_all=torch.from_numpy(x),  # shares memory with x: no copy
        mask_all=torch.from_numpy(np.ascontiguousarray(data.mask[..., :data.num_targets])),
        tod=torch.from_numpy(tod),
        dow=torch.from_numpy(dow),
        starts={name: window_starts(lo, hi, P, H) for name, (lo, hi) in ranges.items()},
        ranges=ranges,
        input_len=P,
        horizon=H,
        scaler=scaler,
        data=data,
        cfg=cfg,
    )


def load_windowed(cfg: DataConfig, base_dir=None) -> WindowedData:
    """The data a config describes, loaded (:func:`stkd.data.loaders.load_data`) and prepared
    (:func:`prepare`): what training, evaluation and serving read. ``wd.data`` is the loaded STData."""
    return prepare(load_data(cfg, base_dir), cfg)
