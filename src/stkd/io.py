"""Atomic, safe file writing and reading for run directories.

Results are written to a temporary file in the same folder and moved into place with ``os.replace``,
so a crash never leaves a half-written file where a good one was. Nothing here unpickles: weights go
through safetensors, everything else is JSON, YAML (``safe_load``) or ``.npy`` without pickles.
"""

from __future__ import annotations

import glob
import json
import math
import os
import re
import socket
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import numpy as np

_UMASK = os.umask(0)
os.umask(_UMASK)


def _host_tag() -> str:
    """This host as temporary file names carry it (letters, digits and dashes only)."""
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:40] or "host"


def _writer_tag() -> str:
    """This process as a temporary file names it, ``<host>-<pid>``: enough for a later writer on the same
    host to tell whether the file's writer still runs (:func:`_sweep_orphans`)."""
    return f"{_host_tag()}-{os.getpid()}"


def _pid_alive(pid: int) -> bool:
    """Whether a process with ``pid`` runs on this host (POSIX ``kill(pid, 0)``: it sends nothing)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _sweep_orphans(path: Path, suffix: str) -> list[Path]:
    """Remove the temporary files of ``path`` left by writers on this host that no longer run (a process
    killed by a signal, e.g. the out-of-memory killer in the middle of a large soft-label cache, cannot
    remove its own). A live writer's file, and any file of another host (a shared file system) or of
    another naming, is left alone; on a non-POSIX system nothing is removed. Returns what was removed."""
    if os.name != "posix" or not path.parent.is_dir():
        return []
    pattern = re.compile(rf"\.{re.escape(path.name)}\.{re.escape(_host_tag())}-(\d+)\..*{re.escape(suffix)}")
    removed = []
    for tmp in path.parent.glob(f".{glob.escape(path.name)}.*{glob.escape(suffix)}"):
        m = pattern.fullmatch(tmp.name)
        if m is None or int(m.group(1)) == os.getpid() or _pid_alive(int(m.group(1))):
            continue
        tmp.unlink(missing_ok=True)
        removed.append(tmp)
    return removed


def _temp_beside(path: Path, suffix: str) -> Path:
    """A new empty file next to ``path``, hidden and unique to this writer (``mkstemp``): two writers of
    one result never write into each other's temporary file. Its name says which process writes it, so
    the files of writers that died without cleaning up are removed here first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _sweep_orphans(path, suffix)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{_writer_tag()}.", suffix=suffix)
    os.close(fd)
    return Path(tmp)


def _publish(tmp: Path, path: Path) -> Path:
    """Move a finished temporary file into place (one atomic rename) with ordinary file permissions."""
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; results are ordinary files
    os.replace(tmp, path)
    return path


@contextmanager
def atomic_path(path: str | Path, suffix: str = ".tmp") -> Iterator[Path]:
    """A temporary file path beside ``path`` to write to; moved onto ``path`` when the block ends
    without an exception, removed when it raises. For writers that want a file name (safetensors,
    savefig); :func:`atomic_write` is the same for writers that take an open file.

    Every result file stkd writes goes through here (or :class:`AtomicNpy`): one temporary-file rule,
    one permission rule (ordinary files, as the umask allows)."""
    path = Path(path)
    tmp = _temp_beside(path, suffix)
    try:
        yield tmp
        _publish(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], Any]) -> Path:
    """Call ``write(fh)`` on a binary temporary file beside ``path``, then move it into place in one step:
    a crash never leaves a half-written file where a good one was."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            write(fh)
    return Path(path)


class AtomicNpy:
    """An ``.npy`` array written through an on-disk memmap and moved to ``path`` by ``commit``.

    For arrays too large to hold in RAM (a teacher's soft labels). Each writer gets its own temporary
    file (``mkstemp``), so two processes building the same file at once (two ``stkd distill`` runs
    sharing a teacher run) never write into each other's; the last ``commit`` wins with a whole file.
    ``discard`` removes the temporary file instead (for a writer that failed before ``commit``).
    """

    def __init__(self, path: Path, shape: tuple[int, ...], dtype=np.float32) -> None:
        self.path = Path(path)
        self.tmp = _temp_beside(self.path, ".tmp.npy")
        self.array = np.lib.format.open_memmap(self.tmp, mode="w+", dtype=dtype, shape=shape)

    def commit(self) -> Path:
        self.array.flush()
        del self.array
        return _publish(self.tmp, self.path)

    def discard(self) -> None:
        self.__dict__.pop("array", None)
        self.tmp.unlink(missing_ok=True)


class LockHeld(Exception):
    """:func:`take_lock` found the lock held by another process (``holder``: the pid it wrote, or "unknown")."""

    def __init__(self, holder: str) -> None:
        super().__init__(holder)
        self.holder = holder


def take_lock(path: Path) -> int:
    """An exclusive, non-blocking ``fcntl.flock`` on ``path`` (created if needed), which then holds this
    process's pid; returns the open descriptor (closing it releases the lock; so does the process's exit,
    however it exits, so a stale lock file locks nothing). Raises :class:`LockHeld` naming the holder's pid
    when another process has it. One lock rule for run folders and serving state files."""
    import fcntl  # POSIX only: imported where a lock is taken

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise LockHeld(holder) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def write_bytes(path: Path, data: bytes) -> Path:
    return atomic_write(path, lambda fh: fh.write(data))


def write_text(path: Path, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def _jsonable(obj: Any) -> Any:
    """JSON has no NaN: non-finite floats become null so every reader can parse the file."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        f = float(obj)
        return f if math.isfinite(f) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_json(path: Path, obj: Any) -> Path:
    return write_text(path, json.dumps(_jsonable(obj), indent=2) + "\n")


def read_json(path: Path, fix: str = "restore it, or re-create it") -> Any:
    """The parsed JSON of ``path``; a :class:`~stkd.errors.DataError` naming the file and ``fix`` (what to do)
    when it is not JSON (a damaged or hand-edited file) instead of a decoder traceback."""
    from stkd.errors import DataError

    try:
        return json.loads(Path(path).read_text())
    except ValueError as e:  # JSONDecodeError, UnicodeDecodeError
        raise DataError(f"{path}: not valid JSON ({str(e)[:200]}); {fix}") from None


def write_npy(path: Path, array: np.ndarray) -> Path:
    return atomic_write(path, lambda fh: np.save(fh, np.ascontiguousarray(array), allow_pickle=False))


def read_npy(path: Path, mmap: bool = False) -> np.ndarray:
    return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
