"""Targets for tests/test_processes.py's processes: a process imports its target by the module's name, which a
test module loaded by pytest's importlib mode does not have; this one is imported by that name from the tests
folder (put on ``sys.path``, which the processes get from the parent)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path


def hold_slot(job: dict, slot: int) -> None:
    """Hold the file ``slots/<slot>`` (created exclusively: a second process in the same slot at the same time
    fails) for a moment, then note which job ran in which slot. Job ``fail`` exits 2, ``refused`` raises an
    STKDError, ``sleep`` waits a minute."""
    folder, name = Path(job["folder"]), job["name"]
    held = folder / "slots" / str(slot)
    fd = os.open(held, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    try:
        if name == "refused":
            from stkd.errors import STKDError

            raise STKDError("bad input, said in one line")
        if name == "fail":
            print(f"job {name}: failing on purpose", file=sys.stderr)
            sys.exit(2)
        time.sleep(60 if name == "sleep" else 0.3)
        (folder / "done" / name).write_text(str(slot))
    finally:
        os.close(fd)
        held.unlink()


def note_threads(job: dict, slot: int) -> None:
    """Write torch's intra-op threads as the target finds them to ``<folder>/<name>``."""
    import torch

    (Path(job["folder"]) / job["name"]).write_text(str(torch.get_num_threads()))
