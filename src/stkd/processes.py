"""Work that runs in processes of its own, side by side on one machine: the models of a run trained at once
(``train.workers``: a run's teachers, its distilled and plain student) and a search's trial workers
(``tune.workers``).

Why processes: torch's intra-op threads do little for small models. On the project's 2-core CPU the default
preset's teacher took 46 to 52 ms a step at 2 threads and 66 to 67 ms at 1, its student 7.1 ms at 2 and 5.2 ms at
1; trained side by side at one thread each, the preset's two teachers and two students took the default run 3 min
46 s, and 5 min 14 s one after the other at two threads right after (``benchmarks/default_run.py
--one-at-a-time``; ``stkd.presets`` gives the runs).
Spawned, not forked: a fresh interpreter holds none of the parent's thread pools, which a forked child
can hang on, and builds its own state from what the job carries (a config, paths), never from the parent's
memory.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from multiprocessing.connection import wait
from typing import Any

from stkd.errors import STKDError

#: How long an interrupted run waits for its processes to stop on their own (each saves where it is).
STOP_WAIT_S = 30


def threads_per_worker(workers: int, configured: int | None) -> int:
    """Torch threads of each of ``workers`` processes: ``configured`` (``train.threads``) if set, else the cores
    shared out (at least one each)."""
    return configured or max(1, (os.cpu_count() or 1) // workers)


def run_processes(target: Callable[[Any, int], None], jobs: Sequence[Any], *, limit: int,
                  name: Callable[[Any], str], stop_on_failure: bool, after_failure: str) -> None:
    """Run ``target(job, slot)`` for every job, each in a spawned process, at most ``limit`` at once, started in
    the order given; ``slot`` (0 .. limit-1) is the place the job holds among those running (its progress bar's
    row). Returns when all ended; raises STKDError naming each job whose process failed (its own error is on
    stderr above), followed by ``after_failure``. With ``stop_on_failure`` the first failure stops the others
    (no job starts after it and the running ones are terminated): what they trained stays in their checkpoints.
    Interrupted (Ctrl-C reaches every process of the terminal), each process gets :data:`STOP_WAIT_S` to stop
    by itself before it is terminated."""
    ctx = multiprocessing.get_context("spawn")
    pending = list(jobs)
    running: dict[int, multiprocessing.process.BaseProcess] = {}  # slot -> process
    failed: list[str] = []
    stopped: list[str] = []
    try:
        while pending or running:
            while pending and len(running) < limit and not (failed and stop_on_failure):
                slot = min(set(range(limit)) - running.keys())
                job = pending.pop(0)
                started = ctx.Process(target=target, args=(job, slot), name=name(job))
                started.start()
                running[slot] = started
            if not running:
                break
            wait([p.sentinel for p in running.values()])
            for slot, proc in list(running.items()):
                if proc.exitcode is None:
                    continue
                proc.join()
                del running[slot]
                if proc.exitcode != 0 and proc.name not in stopped:
                    failed.append(f"{proc.name} (exit code {proc.exitcode})")
            if failed and stop_on_failure:
                for proc in running.values():
                    if proc.name not in stopped:
                        stopped.append(proc.name)
                        proc.terminate()
    except BaseException:
        for proc in running.values():
            proc.join(timeout=STOP_WAIT_S)
            if proc.is_alive():
                proc.terminate()
        raise
    if failed:
        also = f"; stopped with it: {', '.join(stopped)}" if stopped else ""
        raise STKDError(f"process(es) {', '.join(failed)} stopped with an error (above){also}; {after_failure}")
