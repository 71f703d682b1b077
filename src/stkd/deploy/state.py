"""The service's rolling window and where it is kept between restarts.

``RollingWindow`` holds the last P steps of readings per node; ``WindowStore`` saves it after every post
and loads it at start, so a restarted ``stkd serve`` forecasts exactly as before.

Why SQLite for the store: a post must be saved atomically (a crash mid-write must leave the previous
window, never a torn one) and cheaply (it happens on every request). Writing a temporary file and
renaming it cost ~0.3 ms per post on this machine's disk plus ~0.6 ms to build an ``.npz``; one SQLite
transaction in WAL mode costs ~0.05 ms with the same guarantee against a crashed process. The arrays
are stored as raw float32 / int64 bytes with their shapes checked on load: nothing is unpickled.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import sqlite3
from pathlib import Path

import numpy as np
from fastapi import HTTPException

log = logging.getLogger(__name__)

STATE_VERSION = 2  # 1: an .npz file per save (read for migration)


class RollingWindow:
    """The last P steps of readings per node, in original units (NaN = missing), on the data's grid.

    ``carry [N, F]`` holds each column's last reading before the window, so forward fill reaches back
    past the window exactly as over the training series. ``seen`` are the nodes posted at the latest
    step (a second reading of the same node and step is a duplicate).
    """

    def __init__(self, P: int, N: int, F: int) -> None:
        self.P, self.N, self.F = P, N, F
        self.values = np.full((P, N, F), np.nan, np.float32)  # [P, N, F]
        self.carry = np.full((N, F), np.nan, np.float32)  # [N, F]
        self.latest: int | None = None  # grid position of the newest step
        self.steps = 0  # steps covered since the first post (capped at P only in reports)
        self.seen: set[int] = set()
        self.version = 0

    @property
    def ready(self) -> bool:
        return self.latest is not None and self.steps >= self.P

    def check(self, pos: int, idx: np.ndarray, when: str, nodes: list[str]) -> None:
        """Raise 409 for a step before the latest or a repeated (step, node)."""
        if self.latest is None or pos > self.latest:
            return
        if pos < self.latest:
            raise HTTPException(409, f"out of order: {when} is before the latest posted timestamp; readings must "
                                     "arrive in time order")
        dup = [nodes[i] for i in idx if int(i) in self.seen]
        if dup:
            raise HTTPException(409, f"duplicate: node(s) {dup[:5]} already have a reading at {when}")

    def advance(self, pos: int) -> None:
        if self.latest is None:
            self.latest, self.steps = pos, 1
            self.seen = set()
            return
        k = pos - self.latest
        if k <= 0:
            return
        leaving = self.values[: min(k, self.P)]  # rows that drop out, oldest first
        for row in leaving:
            np.copyto(self.carry, row, where=~np.isnan(row))
        if k >= self.P:
            self.values[:] = np.nan
        else:
            self.values[:-k] = self.values[k:]
            self.values[-k:] = np.nan
        self.latest = pos
        self.steps += k
        self.seen = set()

    def put(self, idx: np.ndarray, vals: np.ndarray) -> None:
        self.values[-1, idx] = vals
        self.seen.update(int(i) for i in idx)
        self.version += 1

    def positions(self) -> np.ndarray:
        return np.arange(self.latest - self.P + 1, self.latest + 1, dtype=np.int64)


def _starts_with(path: Path, magic: bytes) -> bool:
    with open(path, "rb") as fh:
        return fh.read(len(magic)) == magic


def nodes_hash(nodes: list[str]) -> str:
    """A short fingerprint of the node list: a saved window only fits the same nodes in the same order."""
    return hashlib.sha256(json.dumps(nodes).encode()).hexdigest()[:16]


class WindowStore:
    """One SQLite file holding the latest rolling window of one served model.

    ``load`` returns the saved window when it was saved for the same model, window length and nodes
    (else None, with the reason logged); ``save`` replaces it in one transaction. A file written by an
    earlier version (an ``.npz``) is read once, renamed to ``<name>.v1``, and the SQLite file takes its path.
    ``legacy``: where an earlier version kept this window by default (``state-<model>.npz``); read once
    the same way (and renamed to ``<name>.v1``) when ``path`` does not exist yet.
    """

    def __init__(self, path: Path, model: str, P: int, N: int, F: int, nodes: list[str],
                 legacy: Path | None = None) -> None:
        self.path = Path(path)
        self.legacy_path = None if legacy is None else Path(legacy)
        self.model, self.P, self.N, self.F = model, P, N, F
        self.nodes_hash = nodes_hash(nodes)
        self._legacy: RollingWindow | None = None
        self._db: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self.path.is_file() and _starts_with(self.path, b"PK"):  # a version-1 .npz (a zip)
                self._read_version_1(self.path)
            elif not self.path.exists() and self.legacy_path is not None and self.legacy_path.is_file() \
                    and _starts_with(self.legacy_path, b"PK"):
                self._read_version_1(self.legacy_path)
            # the lock of the Service serialises every use; the connection may be used from the server's
            # thread and a test client's thread
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")  # WAL: consistent after a crash, no fsync per post
            db.execute("CREATE TABLE IF NOT EXISTS window (id INTEGER PRIMARY KEY CHECK (id = 0), meta TEXT NOT "
                       "NULL, readings BLOB NOT NULL, carry BLOB NOT NULL, seen BLOB NOT NULL)")
            self._db = db
        return self._db

    def _read_version_1(self, path: Path) -> None:
        """Read a version-1 window (kept for ``load``) and rename its file ``<name>.v1``: read once, never lost."""
        self._legacy = self._read_npz(path.read_bytes())
        kept = path.with_name(path.name + ".v1")
        path.replace(kept)
        log.info("read the version-1 window file %s (kept as %s); the window is kept in %s from now on",
                 path, kept, self.path)

    def load(self) -> RollingWindow | None:
        """The saved window, or None when there is none or it belongs to another model or node list."""
        try:
            row = self._connect().execute("SELECT meta, readings, carry, seen FROM window WHERE id = 0").fetchone()
        except sqlite3.DatabaseError as e:
            log.warning("not resuming from %s: %s", self.path, e)
            return None
        if row is None:
            if self._legacy is not None:
                w, self._legacy = self._legacy, None
                self.save(w)
                return w
            return None
        try:
            return self._from_row(*row)
        except (ValueError, KeyError, TypeError) as e:
            log.warning("not resuming from %s: %s", self.path, e)
            return None

    def save(self, w: RollingWindow) -> None:
        meta = json.dumps({"version": STATE_VERSION, "model": self.model, "nodes_hash": self.nodes_hash,
                           "P": w.P, "N": w.N, "F": w.F, "latest": w.latest, "steps": w.steps,
                           "version_counter": w.version})
        seen = np.array(sorted(w.seen), dtype=np.int64)
        self._connect().execute("INSERT OR REPLACE INTO window VALUES (0, ?, ?, ?, ?)",
                                (meta, w.values.tobytes(), w.carry.tobytes(), seen.tobytes()))

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def _check(self, model: str, nodes: str, P: int) -> None:
        if model != self.model or nodes != self.nodes_hash or P != self.P:
            raise ValueError("the saved window belongs to another model or data layout")

    def _from_row(self, meta: str, readings: bytes, carry: bytes, seen: bytes) -> RollingWindow:
        m = json.loads(meta)
        if m["version"] != STATE_VERSION:
            raise ValueError(f"window format {m['version']}, expected {STATE_VERSION}")
        self._check(m["model"], m["nodes_hash"], m["P"])
        P, N, F = self.P, self.N, self.F
        if (m["N"], m["F"]) != (N, F) or len(readings) != P * N * F * 4 or len(carry) != N * F * 4 \
                or len(seen) % 8:
            raise ValueError("the saved window's arrays do not have the model's shape")
        w = RollingWindow(P, N, F)
        w.values = np.frombuffer(readings, dtype=np.float32).reshape(P, N, F).copy()
        w.carry = np.frombuffer(carry, dtype=np.float32).reshape(N, F).copy()
        w.latest = None if m["latest"] is None else int(m["latest"])
        w.steps = int(m["steps"])
        w.version = int(m["version_counter"])
        w.seen = set(np.frombuffer(seen, dtype=np.int64).tolist())
        return w

    def _read_npz(self, data: bytes) -> RollingWindow | None:
        """A window saved by version 1 (``np.savez``, no pickles), or None when it does not fit."""
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as z:
                if int(z["version"]) != 1 or z["values"].shape != (self.P, self.N, self.F):
                    raise ValueError("the saved window belongs to another model or data layout")
                self._check(str(z["model"]), str(z["nodes_hash"]), int(z["P"]))
                w = RollingWindow(self.P, self.N, self.F)
                w.values = np.array(z["values"], dtype=np.float32)
                w.carry = np.array(z["carry"], dtype=np.float32)
                w.latest = int(z["latest"]) if bool(z["has_latest"]) else None
                w.steps = int(z["steps"])
                w.seen = set(int(i) for i in z["seen"])
            return w
        except (ValueError, KeyError, TypeError, OSError) as e:
            log.warning("not resuming from the version-1 window file %s: %s", self.path, e)
            return None
