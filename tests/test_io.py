"""Temporary files of atomic writes: a writer killed by a signal leaves its file behind, and the next
writer of the same result on this host removes it; live writers, other hosts and other results keep theirs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from stkd.io import AtomicNpy, _host_tag, atomic_write, read_npy

pytestmark = pytest.mark.skipif(os.name != "posix", reason="the sweep reads POSIX process ids")

# A writer that opens a large cache array, says where its temporary file is, and waits to be killed.
WRITER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from stkd.io import AtomicNpy
    a = AtomicNpy(Path(sys.argv[1]), (64, 12, 8, 1))
    a.array[:] = 1.0
    print(a.tmp, flush=True)
    time.sleep(600)
""")


def start_writer(path: Path) -> tuple[subprocess.Popen, Path]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True, env=env)
    tmp = Path(proc.stdout.readline().strip())
    assert tmp.is_file() and tmp.parent == path.parent, tmp
    return proc, tmp


def test_a_killed_writers_temporary_file_is_removed_by_the_next_writer(tmp_path):
    target = tmp_path / "cache" / "train_pred.npy"
    proc, orphan = start_writer(target)
    proc.send_signal(signal.SIGKILL)  # no cleanup runs
    proc.wait(timeout=30)
    assert orphan.is_file() and not target.exists()
    other = tmp_path / "cache" / "val_pred.npy"  # another result's temporary file of a dead writer stays
    other_orphan = other.parent / f".{other.name}.{_host_tag()}-{proc.pid}.abc.tmp.npy"
    other_orphan.write_bytes(b"x")

    new = AtomicNpy(target, (2, 3))
    new.array[:] = 7.0
    new.commit()
    assert not orphan.exists(), "the dead writer's file was left"
    assert other_orphan.is_file()
    assert (read_npy(target) == 7.0).all()
    assert sorted(p.name for p in target.parent.iterdir()) == sorted([target.name, other_orphan.name])


def test_a_live_writers_and_another_hosts_temporary_files_stay(tmp_path):
    target = tmp_path / "train_pred.npy"
    proc, live = start_writer(target)
    try:
        elsewhere = tmp_path / f".{target.name}.otherhost-{proc.pid + 1}.xyz.tmp.npy"  # a shared file system
        elsewhere.write_bytes(b"x")
        atomic_write(target, lambda fh: np.save(fh, np.zeros(3, dtype=np.float32)))  # a .tmp writer: not its kind
        new = AtomicNpy(target, (2,))
        new.discard()
        assert live.is_file() and elsewhere.is_file()
        assert not new.tmp.exists()
    finally:
        proc.kill()
        proc.wait(timeout=30)
    # its writer gone, the next writer removes it; the other host's file is never touched
    AtomicNpy(target, (2,)).discard()
    assert not live.exists() and elsewhere.is_file()
