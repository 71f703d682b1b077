"""Raw readings to model inputs, by training's code path: grid positions, gap filling, scaling, calendar.

:class:`Preprocessor` does for one window what training did for the whole series, with the statistics
of a :class:`stkd.deploy.spec.ServingSpec`:

1. gap filling with :func:`stkd.data.impute.fill_inputs` (forward fill inside the window, or from the
   history given before it; a gap with no earlier reading gets the train mean of its time-of-week
   slot, else the node's train mean: exactly the rule training applies to the series start);
2. scaling with the run's :class:`stkd.data.scalers.Scaler` (``Scaler.from_state`` of ``data.json``);
3. time covariates with :func:`stkd.data.windows.time_covariates` (time of day, day of week).

Shapes: T steps, N nodes, F input features.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd

from stkd.data.impute import fill_inputs
from stkd.data.scalers import Scaler
from stkd.data.windows import time_covariates
from stkd.deploy.spec import ServingSpec
from stkd.errors import DataError


def _as_sequence(timestamps):
    """One timestamp (string, Timestamp, datetime64, datetime) as a one-item list; sequences unchanged."""
    if isinstance(timestamps, (str, pd.Timestamp, np.datetime64)) or not hasattr(timestamps, "__len__"):
        return [timestamps]
    return timestamps


# a naive ISO 8601 date-time as numpy parses it exactly like pandas (no offset, no "Z")
# nanosecond timestamps span 1677-09-21 .. 2262-04-11: numpy wraps a year outside silently (1500 read
# as 2084), so the fast path takes only the whole years inside, and the general path names the others
_NS_RANGE = (pd.Timestamp.min.ceil("s"), pd.Timestamp.max.floor("s"))
_NS_YEARS = (1678, 2261)
_NAIVE_ISO = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)?")

class Preprocessor:
    """Grid positions, gap filling, scaling and time covariates: training's code path for one window.

    Positions are integer steps since ``data_start`` (the training data's first timestamp): they check
    that timestamps lie on the data's grid and give the seasonal slot ``pos % period``.
    """

    def __init__(self, spec: ServingSpec) -> None:
        self.spec = spec
        self.scaler = Scaler.from_state(spec.scaler)
        self.start = pd.Timestamp(spec.data_start)
        self.step = spec.step
        self.step_ns = int(self.step.value)
        if self.step_ns <= 0:
            raise DataError(f"serving spec: freq {spec.freq!r} is not a positive step")
        self.means = spec.train_means  # [N, F]
        self.seasonal = spec.seasonal_means  # [period, N, F] or None
        self.method = spec.impute
        self._start_ns = int(self.start.value)  # UTC ns for an aware start
        self._week: tuple | None = None  # (tod, dow) over one week of the grid, when the calendar repeats

    # ---------------------------------------------------------------- time
    def as_index(self, timestamps, what: str = "timestamps") -> pd.DatetimeIndex:
        """Timestamps (strings, datetimes, numpy datetime64) as a DatetimeIndex in the data's timezone."""
        timestamps = _as_sequence(timestamps)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if isinstance(timestamps, pd.DatetimeIndex):
                    idx = timestamps
                elif len(timestamps) <= 256 and all(isinstance(t, str) for t in timestamps):
                    # a few strings (a request): one by one is ~100x faster than to_datetime's format guessing
                    ts = [pd.Timestamp(t) for t in timestamps]
                    aware = [t.tzinfo is not None for t in ts if t is not pd.NaT]
                    if any(aware) and not all(aware):
                        raise DataError(f"{what}: some timestamps have a timezone and some do not")
                    idx = pd.DatetimeIndex([t.tz_convert("UTC") for t in ts] if any(aware) else ts)
                else:
                    idx = pd.DatetimeIndex(pd.to_datetime(list(timestamps) if not isinstance(
                        timestamps, (pd.Index, np.ndarray, pd.Series)) else timestamps))
                idx = idx.as_unit("ns")  # grid positions are nanosecond counts
        except DataError:
            raise
        except pd.errors.OutOfBoundsDatetime as e:  # its message names the timestamp
            raise DataError(f"{what}: outside the range of timestamps stkd handles ({_NS_RANGE[0]} .. "
                            f"{_NS_RANGE[1]}): {e}") from None
        except (ValueError, TypeError, OverflowError) as e:
            raise DataError(f"{what}: not a timestamp ({e}); expected e.g. '2012-03-01 00:05'") from None
        if idx.hasnans:
            raise DataError(f"{what}: a timestamp is missing (NaT); every input step needs its timestamp")
        tz = self.start.tz
        if tz is None and idx.tz is not None:
            raise DataError(f"{what}: timestamps carry a timezone ({idx.tz}) but the model was trained on "
                            f"naive local times (e.g. {self.start}); drop the timezone")
        if tz is not None:
            if idx.tz is None:
                raise DataError(f"{what}: timestamps have no timezone but the model's data is in {tz} "
                                f"(e.g. {self.start}); give timestamps with a UTC offset")
            idx = idx.tz_convert(tz)
        return idx

    def positions(self, index: pd.DatetimeIndex, what: str = "timestamps") -> np.ndarray:
        """``[T]`` int64 steps since ``data_start``; an error names a timestamp off the data's grid."""
        ns = index.as_unit("ns").asi8 if len(index) else np.zeros(0, np.int64)
        return self._positions_ns(ns, what, lambda k: index[k])

    def grid_positions(self, timestamps, what: str = "timestamps") -> np.ndarray:
        """``positions(as_index(timestamps))``, with a fast path for a request's few naive ISO strings.

        Why: a service parses P timestamps per request; numpy reads ``2012-03-08 00:05`` (or with ``T``,
        seconds, fractions) ~20x faster than pandas, to the same instants. Anything else (offsets, other
        spellings, aware data) goes the general way, which also gives the error messages.
        """
        timestamps = _as_sequence(timestamps)
        if (self.start.tz is None and isinstance(timestamps, (list, tuple, np.ndarray)) and 0 < len(timestamps) <= 256
                and all(isinstance(t, str) and _NAIVE_ISO.fullmatch(t) and _NS_YEARS[0] <= int(t[:4]) <= _NS_YEARS[1]
                        for t in timestamps)):
            try:
                ns = np.array(timestamps, dtype="datetime64[ns]").astype(np.int64)
            except ValueError:  # e.g. month 13: the general path says so
                pass
            else:
                return self._positions_ns(ns, what, lambda k: pd.Timestamp(ns[k]))
        return self.positions(self.as_index(timestamps, what), what)

    def _positions_ns(self, ns: np.ndarray, what: str, timestamp_at) -> np.ndarray:
        far = np.abs(ns.astype(np.float64) - float(self._start_ns)) > 9.2e18  # int64 ns would wrap (292 years)
        if far.any():
            k = int(np.flatnonzero(far)[0])
            raise DataError(f"{what}: {timestamp_at(k)} is too far from the data's start ({self.start}) to place "
                            "on its grid")
        delta = ns - self._start_ns
        off = delta % self.step_ns != 0
        if off.any():
            k = int(np.flatnonzero(off)[0])
            raise DataError(f"{what}: {timestamp_at(k)} is not on the data's {self.spec.freq} grid (steps of "
                            f"{self.step} from {self.start}); round it to the step it belongs to")
        return delta // self.step_ns

    def times(self, pos: np.ndarray) -> pd.DatetimeIndex:
        """Timestamps of grid positions (any shape, flattened)."""
        ns = np.asarray(pos, dtype=np.int64).reshape(-1) * self.step_ns + self._start_ns
        idx = pd.DatetimeIndex(ns.astype("datetime64[ns]"))
        if self.start.tz is not None:
            idx = idx.tz_localize("UTC").tz_convert(self.start.tz)
        return idx

    def covariates(self, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``tod [..]`` float32 and ``dow [..]`` int64 of grid positions (``windows.time_covariates``).

        For naive timestamps on a step that divides a week, the calendar repeats every week, so
        ``time_covariates`` is evaluated once over a week of the grid and looked up by ``pos % period``.
        """
        pos = np.asarray(pos, dtype=np.int64)
        if self._week is None:
            week = pd.Timedelta("7D").value
            period = week // self.step_ns if self.start.tz is None and week % self.step_ns == 0 else 0
            self._week = time_covariates(self.times(np.arange(period))) if 0 < period <= 1_000_000 else ()
        if self._week:
            slot = np.mod(pos, len(self._week[0]))
            return self._week[0][slot], self._week[1][slot]
        tod, dow = time_covariates(self.times(pos))
        return tod.reshape(pos.shape), dow.reshape(pos.shape)

    # ---------------------------------------------------------------- fill
    def fallback(self, pos: np.ndarray) -> np.ndarray:
        """``[T, N, F]`` what a gap with no earlier reading gets: the slot's train mean, else the node's."""
        if self.seasonal is not None and self.method in ("ffill", "seasonal"):
            return self.seasonal[np.mod(np.asarray(pos, np.int64), self.seasonal.shape[0])]
        return np.broadcast_to(self.means, (len(pos),) + self.means.shape)

    def fill(self, values: np.ndarray, pos: np.ndarray, carry: np.ndarray | None = None) -> np.ndarray:
        """Fill the gaps of ``values [T, N, F]`` (original units, NaN = missing) like training did.

        ``carry [N, F]``: the last reading of each column before ``values`` (NaN where none), so a
        forward fill continues across the window's start exactly as it did over the training series.
        """
        values = np.asarray(values, dtype=np.float32)
        mask = ~np.isnan(values)
        if mask.all():
            return np.array(values, dtype=np.float32, order="C", copy=True)
        if self.method == "ffill":
            off = 0
            if carry is not None:
                cm = ~np.isnan(carry)
                if cm.any():
                    values = np.concatenate([np.asarray(carry, np.float32)[None], values])
                    mask = np.concatenate([cm[None], mask])
                    off = 1
            # training's forward fill; train_end=0 leaves the statistics out (leading gaps get 0 here
            # and are replaced below by the saved train statistics, as fill_inputs does with its own)
            out = fill_inputs(values, mask, method="ffill", period=None, train_end=0)
            lead = ~np.logical_or.accumulate(mask, axis=0)
            out, lead = out[off:], lead[off:]
            if lead.any():
                out[lead] = self.fallback(pos)[lead]
            return out
        out = np.array(values, dtype=np.float32, order="C", copy=True)
        out[~mask] = self.fallback(pos)[~mask]
        return out

    def scale(self, filled: np.ndarray) -> np.ndarray:
        return np.asarray(self.scaler.transform(filled), dtype=np.float32)


