"""The service's rolling window and the file that keeps it between restarts.

``RollingWindow`` holds the last ``2 P`` steps of readings per node: the P the model reads, and P more
before them, so an operator can roll the window back (``POST /admin/rollback``) by up to P steps with
every reading of the restored window intact. ``WindowStore`` saves the window after every accepted
post and loads it at start, so a restarted ``stkd serve`` forecasts exactly as before.

Rules the window keeps (each one a fix for a way the service lost data or stopped):

- readings are ordered per node: a node's reading must be later than that node's previous one, so a
  late reading for node A is accepted after node B reported a later step, as long as its step is
  still in the window; a repeated (step, node) is a duplicate;
- a save that fails is an error the caller turns into 503: nothing is acknowledged unless it is
  stored (``synchronous=FULL`` by default: stored means on disk, not only in the OS cache);
- one server per state file: an exclusive lock (``fcntl.flock`` on ``<file>.lock``) is held for the
  store's lifetime, and a second server is refused with a message naming the holder;
- a state file that is not a window of this model (another model, another layout, not a SQLite file,
  corrupt) is an error at start, never silently ignored or overwritten; ``--reset-state`` moves it
  aside.

Why SQLite for the store: a post must be saved atomically (a crash mid-write must leave the previous
window, never a torn one) and cheaply (it happens on every request). Writing a temporary file and
renaming it cost ~0.3 ms per post on this machine's disk plus ~0.6 ms to build an ``.npz``; one SQLite
transaction in WAL mode costs ~0.15 ms (``synchronous=NORMAL``, safe against a crashed process) or
~2.5-4 ms (``FULL``, safe against a crashed machine too). The arrays are stored as raw float32 / bool
bytes with their shapes checked on load: nothing is unpickled.

Shapes: L = 2 P rows (steps) of the window, N nodes, F input features.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import sqlite3
import time
from pathlib import Path

import numpy as np

from stkd.errors import STKDError
from stkd.io import LockHeld, take_lock
from stkd.names import STATE_SYNC_MODES

try:  # POSIX; elsewhere two servers on one state file are not detected (a warning says so)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

STATE_VERSION = 3  # 1: an .npz file per save; 2: SQLite, P rows and the nodes of the latest step (both read)
BUSY_TIMEOUT_S = 0.2  # how long a save waits for a lock someone else holds on the file before it fails (503)


class StateError(STKDError):
    """The state file cannot be used: in use by another server, not a window of this model, unreadable,
    or a save failed. The message names the file and what to do; ``cause`` is the bare reason (what a
    client may be told without the server's paths)."""

    def __init__(self, message: str, cause: str | None = None) -> None:
        super().__init__(message)
        self.cause = cause or message


class RollingWindow:
    """The last L = 2 P steps of readings per node, in original units (NaN = missing), on the data's grid.

    Row ``r`` holds grid position ``latest - L + 1 + r``; the model reads the last P rows, the first P
    are what a rollback can restore. ``seen [L, N]`` marks the (step, node) pairs that were posted (a
    null reading too). ``carry [N, F]`` holds each column's last reading before position ``known_from``,
    so forward fill reaches back past the window exactly as over the training series; rows before
    ``known_from`` are empty and closed (their readings are folded into ``carry``). ``first`` is the
    earliest step posted: the window is ready once it spans P steps from there.
    """

    def __init__(self, P: int, N: int, F: int) -> None:
        self.P, self.N, self.F = P, N, F
        self.L = 2 * P
        self.values = np.full((self.L, N, F), np.nan, np.float32)  # [L, N, F]
        self.seen = np.zeros((self.L, N), dtype=bool)  # [L, N]
        self.carry = np.full((N, F), np.nan, np.float32)  # [N, F]
        self.latest: int | None = None  # grid position of the newest step
        self.first: int | None = None  # the earliest step posted
        self.known_from: int | None = None  # readings before this position live in carry only
        self.version = 0  # counts changes (the forecast cache key)

    # ------------------------------------------------------------- facts
    @property
    def start(self) -> int:
        """Grid position of row 0 (of a window with a post: every caller checks or sets ``latest`` first)."""
        assert self.latest is not None, "an empty window has no rows on the grid"
        return self.latest - self.L + 1

    @property
    def steps(self) -> int:
        """Steps spanned since the first post (0 when empty)."""
        if self.latest is None:
            return 0
        assert self.first is not None, "the first post sets it with latest"
        return self.latest - self.first + 1

    @property
    def ready(self) -> bool:
        return self.latest is not None and self.steps >= self.P

    def copy(self) -> "RollingWindow":
        w = RollingWindow.__new__(RollingWindow)
        w.__dict__.update(self.__dict__)
        w.values, w.seen, w.carry = self.values.copy(), self.seen.copy(), self.carry.copy()
        return w

    def model_input(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(values [P, N, F], positions [P], carry [N, F])`` of the window the model reads: its last P
        steps, and each column's last reading before them (the rollback rows folded into ``carry``)."""
        P = self.P
        assert self.latest is not None, "an empty window has no steps to read"
        carry = self.carry.copy()
        for row in self.values[:-P]:  # oldest first
            np.copyto(carry, row, where=~np.isnan(row))
        return self.values[-P:], np.arange(self.latest - P + 1, self.latest + 1, dtype=np.int64), carry

    def last_seen(self, idx: np.ndarray) -> np.ndarray:
        """``[k]`` the newest position posted for each node of ``idx`` in the window (``start - 1`` if none)."""
        cols = self.seen[:, idx]  # [L, k]
        last = self.L - 1 - np.argmax(cols[::-1], axis=0)
        return np.where(cols.any(axis=0), self.start + last, self.start - 1)

    # ------------------------------------------------------------- changes
    def check(self, pos: int, idx: np.ndarray, nodes: list[str], times) -> None:
        """Raise :class:`WindowConflict` unless every node of ``idx`` may get a reading at ``pos``.

        ``times(positions) -> list[str]`` names positions in messages."""
        if self.latest is None or pos > self.latest:
            return  # a new newest step: later than every node's last reading
        earliest = self.start if self.known_from is None else max(self.start, self.known_from)
        if pos < earliest:
            raise WindowConflict(f"too old: {times([pos])[0]} is before the window this service keeps "
                                 f"({times([earliest])[0]} .. {times([self.latest])[0]}); readings of earlier "
                                 "steps are no longer accepted")
        last = self.last_seen(idx)
        dup = [nodes[i] for i, p in zip(idx, last) if p == pos]
        if dup:
            raise WindowConflict(f"duplicate: node(s) {dup[:5]} already have a reading at {times([pos])[0]}")
        late = [(nodes[i], int(p)) for i, p in zip(idx, last) if p > pos]
        if late:
            raise WindowConflict(f"out of order: node {late[0][0]!r} already has a reading at "
                                 f"{times([late[0][1]])[0]}, after {times([pos])[0]}; each node's readings must "
                                 "arrive in time order" + (f" ({len(late)} nodes)" if len(late) > 1 else ""))

    def advance(self, pos: int) -> None:
        """Move the newest step to ``pos`` (later than ``latest``); rows that leave fold into ``carry``."""
        if self.latest is None:
            self.latest = self.first = pos
            self.known_from = self.start  # nothing was posted before: the empty carry is exact
            return
        k = pos - self.latest
        if k <= 0:
            return
        for row in self.values[: min(k, self.L)]:  # rows that drop out, oldest first
            np.copyto(self.carry, row, where=~np.isnan(row))
        if k >= self.L:
            self.values[:] = np.nan
            self.seen[:] = False
        else:
            self.values[:-k], self.seen[:-k] = self.values[k:], self.seen[k:]
            self.values[-k:], self.seen[-k:] = np.nan, False
        self.latest = pos
        assert self.known_from is not None, "the first post sets it with latest"
        self.known_from = max(self.known_from, self.start)

    def put(self, pos: int, idx: np.ndarray, vals: np.ndarray) -> None:
        """Store ``vals [k, F]`` of nodes ``idx`` at step ``pos`` (checked with :meth:`check` first)."""
        self.advance(pos)
        row = pos - self.start
        self.values[row, idx] = vals
        self.seen[row, idx] = True
        assert self.first is not None, "the first post sets it with latest"
        self.first = min(self.first, pos)
        self.version += 1

    def rollback(self, to: int, times) -> int:
        """Drop every reading after step ``to``; returns how many (step, node) readings were dropped.

        The restored window must be whole: its P steps after ``known_from`` (readings before that are
        only kept folded together in ``carry``). Rolling back before the first post empties the window.
        """
        if self.latest is None or to >= self.latest:
            raise WindowConflict(f"nothing to roll back: the latest step is "
                                 f"{'none' if self.latest is None else times([self.latest])[0]}")
        dropped = int(self.seen[max(0, to - self.start + 1):].sum())
        assert self.first is not None and self.known_from is not None, "the first post sets them with latest"
        if to < self.first:  # an empty window; its version still counts up: it keys the service's forecast cache
            empty = RollingWindow(self.P, self.N, self.F)
            empty.version = self.version + 1
            self.__dict__.update(empty.__dict__)
            return dropped
        earliest = max(self.start, self.known_from) + self.P - 1
        if to < earliest:
            raise WindowConflict(f"cannot roll back to {times([to])[0]}: the service keeps the readings of "
                                 f"{times([earliest - self.P + 1])[0]} onwards, and a window needs {self.P} steps; "
                                 f"roll back to {times([earliest])[0]} or later, or reset the window")
        k = self.latest - to
        self.values[k:], self.seen[k:] = self.values[:-k].copy(), self.seen[:-k].copy()
        self.values[:k], self.seen[:k] = np.nan, False
        self.latest = to
        self.version += 1
        return dropped


class WindowConflict(Exception):
    """A reading that does not fit the window (too old, out of order, duplicate): the service answers 409."""


def nodes_hash(nodes: list[str]) -> str:
    """A short fingerprint of the node list: a saved window only fits the same nodes in the same order."""
    return hashlib.sha256(json.dumps(nodes).encode()).hexdigest()[:16]


def _starts_with(path: Path, magic: bytes) -> bool:
    with open(path, "rb") as fh:
        return fh.read(len(magic)) == magic


class WindowStore:
    """One SQLite file holding the latest rolling window of one served model, used by one server at a time.

    :meth:`open` takes the file's lock and checks the file; :meth:`load` returns the saved window (None
    when there is none yet); :meth:`save` replaces it in one transaction or raises :class:`StateError`.
    A window written by an earlier version (an ``.npz``, or SQLite version 2) is read once and upgraded;
    an ``.npz`` is renamed ``<name>.v1`` and kept. ``legacy``: where an earlier version kept this window
    by default (``state-<model>.npz``), read the same way when ``path`` does not exist yet.
    """

    def __init__(self, path: Path, model: str, P: int, N: int, F: int, nodes: list[str],
                 legacy: Path | None = None, sync: str = "full") -> None:
        self._db: sqlite3.Connection | None = None
        self._lock_fd: int | None = None
        if sync not in STATE_SYNC_MODES:
            raise StateError(f"--sync {sync!r}: choose one of {', '.join(STATE_SYNC_MODES)}")
        self.path = Path(path)
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self.legacy_path = None if legacy is None else Path(legacy)
        self.model, self.P, self.N, self.F = model, P, N, F
        self.sync = sync
        self.nodes_hash = nodes_hash(nodes)
        self._legacy: RollingWindow | None = None

    # ------------------------------------------------------------- open / close
    def open(self, reset: bool = False) -> "WindowStore":
        """Take the lock (one server per file), read an earlier version's file, connect and check.
        ``reset``: move an existing file aside first (``<name>.bad-<time>``) and start empty."""
        if self._db is not None:
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._take_lock()
        try:
            if reset:
                moved = self.move_aside(self.path)
                if moved is not None:
                    log.warning("--reset-state: %s moved aside to %s; the window starts empty", self.path, moved)
            elif self.path.is_file() and _starts_with(self.path, b"PK"):  # a version-1 .npz (a zip)
                self._read_version_1(self.path)
            elif not self.path.exists() and self.legacy_path is not None and self.legacy_path.is_file() \
                    and _starts_with(self.legacy_path, b"PK"):
                self._read_version_1(self.legacy_path)
            if self.path.exists() and not self.path.is_file():
                raise StateError(f"state file {self.path} is not a file; give another --state")
            if self.path.is_file() and self.path.stat().st_size and not _starts_with(self.path, b"SQLite format 3\0"):
                raise self._unusable("it is not an SQLite file")
            # the Service's lock serialises every use; the connection may be used from the server's
            # thread and a test client's thread
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_S)
            try:
                db.execute("PRAGMA journal_mode=WAL")
                db.execute(f"PRAGMA synchronous={self.sync.upper()}")
                check = db.execute("PRAGMA quick_check").fetchone()[0]
                if check != "ok":
                    raise self._unusable(f"SQLite finds it damaged ({check})")
                db.execute("CREATE TABLE IF NOT EXISTS window (id INTEGER PRIMARY KEY CHECK (id = 0), meta TEXT "
                           "NOT NULL, readings BLOB NOT NULL, carry BLOB NOT NULL, seen BLOB NOT NULL)")
            except sqlite3.Error as e:
                db.close()
                raise self._unusable(f"SQLite: {e}") from None
            self._db = db
        except BaseException:
            self._release_lock()
            raise
        return self

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
        self._release_lock()

    def __del__(self) -> None:  # a store dropped without close() still frees the file for the next server
        self.close()

    def _take_lock(self) -> None:
        if fcntl is None:  # pragma: no cover
            log.warning("cannot lock %s on this platform: make sure one server only uses it", self.path)
            return
        try:
            self._lock_fd = take_lock(self.lock_path)
        except LockHeld as e:
            raise StateError(f"state file {self.path} is in use by another stkd serve (pid {e.holder}, lock "
                             f"{self.lock_path.name}); stop it, or give this server its own --state FILE "
                             "(or --no-persist)") from None

    def _release_lock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor releases the flock
            self._lock_fd = None

    def _unusable(self, why: str) -> StateError:
        return StateError(f"state file {self.path} cannot be used: {why}. It is left as it is; move it away, "
                          "give another --state FILE, or start with --reset-state (which keeps it as "
                          f"{self.path.name}.bad-<time>)")

    def _read_version_1(self, path: Path) -> None:
        """Read a version-1 window (kept for ``load``) and rename its file ``<name>.v1``: read once, never lost."""
        self._legacy = self._read_npz(path.read_bytes(), path)
        kept = path.with_name(path.name + ".v1")
        path.replace(kept)
        log.info("read the version-1 window file %s (kept as %s); the window is kept in %s from now on",
                 path, kept, self.path)

    # ------------------------------------------------------------- read / write
    def _connection(self) -> sqlite3.Connection:
        """The store's connection, opened first if need be."""
        db = self.open()._db
        assert db is not None, "open() connects or raises"
        return db

    def load(self) -> RollingWindow | None:
        """The saved window, or None when there is none; StateError when the file holds something else."""
        db = self._connection()
        try:
            row = db.execute("SELECT meta, readings, carry, seen FROM window WHERE id = 0").fetchone()
        except sqlite3.Error as e:
            raise self._unusable(f"SQLite: {e}") from None
        if row is None:
            if self._legacy is not None:
                w, self._legacy = self._legacy, None
                self.save(w)
                return w
            return None
        try:
            return self._from_row(*row)
        except (ValueError, KeyError, TypeError) as e:
            raise self._unusable(str(e)) from None

    def save(self, w: RollingWindow) -> None:
        """Replace the saved window in one transaction; StateError (nothing saved) when that fails."""
        meta = json.dumps({"version": STATE_VERSION, "model": self.model, "nodes_hash": self.nodes_hash,
                           "P": w.P, "L": w.L, "N": w.N, "F": w.F, "latest": w.latest, "first": w.first,
                           "known_from": w.known_from, "version_counter": w.version})
        try:
            self._connection().execute("INSERT OR REPLACE INTO window VALUES (0, ?, ?, ?, ?)",
                                       (meta, w.values.tobytes(), w.carry.tobytes(), w.seen.tobytes()))
        except (sqlite3.Error, OSError) as e:
            raise StateError(f"cannot save the rolling window to {self.path}: {e}", cause=str(e)) from None

    def backup(self, label: str) -> Path | None:
        """A consistent copy of the file (``<name>.<label>-<time>``) before an operator changes the window."""
        if not self.path.is_file():
            return None
        dest = self.path.with_name(f"{self.path.name}.{label}-{time.strftime('%Y%m%d-%H%M%S')}")
        try:
            self._connection().execute("VACUUM INTO ?", (str(dest),))
        except sqlite3.Error as e:
            raise StateError(f"cannot back up {self.path} to {dest.name} before the {label}: {e}",
                             cause=str(e)) from None
        return dest

    @staticmethod
    def move_aside(path: Path) -> Path | None:
        """``--reset-state``: rename the state file (and SQLite's -wal/-shm files) ``<name>.bad-<time>``;
        None when there is none. The caller holds no connection to it."""
        path = Path(path)
        if not path.exists():
            return None
        dest = path.with_name(f"{path.name}.bad-{time.strftime('%Y%m%d-%H%M%S')}")
        for suffix in ("-wal", "-shm"):
            side = path.with_name(path.name + suffix)
            if side.exists():
                side.replace(dest.with_name(dest.name + suffix))
        path.replace(dest)
        return dest

    # ------------------------------------------------------------- formats
    def _check(self, model: str, nodes: str, P: int) -> None:
        if model != self.model or nodes != self.nodes_hash or P != self.P:
            raise ValueError(f"the saved window belongs to another model or data layout (model {model!r}, "
                             f"P={P}; this server: {self.model!r}, P={self.P})")

    def _from_row(self, meta: str, readings: bytes, carry: bytes, seen: bytes) -> RollingWindow:
        m = json.loads(meta)
        if m["version"] not in (2, STATE_VERSION):
            raise ValueError(f"window format {m['version']}, expected {STATE_VERSION}")
        self._check(m["model"], m["nodes_hash"], m["P"])
        P, N, F = self.P, self.N, self.F
        if m["version"] == 2:  # P rows, the nodes seen at the latest step
            if (m["N"], m["F"]) != (N, F) or len(readings) != P * N * F * 4 or len(carry) != N * F * 4 \
                    or len(seen) % 8:
                raise ValueError("the saved window's arrays do not have the model's shape")
            w = _from_version_2(P, N, F, np.frombuffer(readings, np.float32).reshape(P, N, F),
                                np.frombuffer(carry, np.float32).reshape(N, F), m["latest"], int(m["steps"]),
                                np.frombuffer(seen, np.int64))
            w.version = int(m["version_counter"])
            return w
        w = RollingWindow(P, N, F)
        L = w.L
        if (m["L"], m["N"], m["F"]) != (L, N, F) or len(readings) != L * N * F * 4 or len(carry) != N * F * 4 \
                or len(seen) != L * N:
            raise ValueError("the saved window's arrays do not have the model's shape")
        w.values = np.frombuffer(readings, dtype=np.float32).reshape(L, N, F).copy()
        w.carry = np.frombuffer(carry, dtype=np.float32).reshape(N, F).copy()
        w.seen = np.frombuffer(seen, dtype=bool).reshape(L, N).copy()
        w.latest = None if m["latest"] is None else int(m["latest"])
        w.first = None if m["first"] is None else int(m["first"])
        w.known_from = None if m["known_from"] is None else int(m["known_from"])
        w.version = int(m["version_counter"])
        marks = {"latest": w.latest, "first": w.first, "known_from": w.known_from}
        if len({v is None for v in marks.values()}) > 1:  # the first post sets all three; nothing clears one alone
            raise ValueError("the saved window's steps are inconsistent (" + ", ".join(
                f"{k} {'empty' if v is None else v}" for k, v in marks.items()) + "): they are set together")
        return w

    def _read_npz(self, data: bytes, path: Path) -> RollingWindow:
        """A window saved by version 1 (``np.savez``, no pickles); StateError when it does not fit."""
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as z:
                if int(z["version"]) != 1 or z["values"].shape != (self.P, self.N, self.F):
                    raise ValueError("the saved window belongs to another model or data layout")
                self._check(str(z["model"]), str(z["nodes_hash"]), int(z["P"]))
                return _from_version_2(self.P, self.N, self.F, z["values"], z["carry"],
                                       int(z["latest"]) if bool(z["has_latest"]) else None, int(z["steps"]),
                                       z["seen"])
        except (ValueError, KeyError, TypeError, OSError, EOFError) as e:
            raise StateError(f"version-1 window file {path} cannot be used: {e}; it is left as it is: move it "
                             "away or start with --reset-state") from None


def _from_version_2(P: int, N: int, F: int, values: np.ndarray, carry: np.ndarray, latest: int | None,
                    steps: int, seen_latest: np.ndarray) -> RollingWindow:
    """A window of the P-row layout (versions 1 and 2) in this layout. Those versions refused any step
    before the latest, so the readings they hold stay closed for their nodes (a node posted at a step
    keeps that step as its newest); the P rows before them are empty, and ``carry`` is exact before them."""
    w = RollingWindow(P, N, F)
    w.carry = np.array(carry, dtype=np.float32)
    if latest is None:
        return w
    w.latest = int(latest)
    w.first = w.latest - max(int(steps), 1) + 1
    w.known_from = w.latest - P + 1
    w.values[-P:] = np.asarray(values, np.float32)
    w.seen[-P:] = ~np.isnan(w.values[-P:]).all(axis=2)
    w.seen[-1, np.asarray(seen_latest, np.int64)] = True
    return w
