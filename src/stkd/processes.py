"""Work that runs in processes of its own, side by side on one machine: the models of a run trained at once
(``train.workers``: a run's teachers, its distilled and plain student) and a search's trial workers
(``tune.workers``).

Why processes: torch's intra-op threads do little for small models. On the project's 2-core CPU the default
preset's teacher took 46 to 52 ms a step at 2 threads and 66 to 67 ms at 1, its student 7.1 ms at 2 and 5.2 ms at
1; trained side by side at one thread each, the preset's two teachers and two students took the default run 3 min
46 s, and 5 min 14 s one after the other at two threads right after (``benchmarks/default_run.py
--one-at-a-time``; ``stkd.presets`` gives the runs).

Each process is a fresh interpreter (``python -c``) that imports the target by its module and name and gets
its job on stdin: it holds none of the parent's thread pools (a forked child can hang on them), builds its own
state from what the job carries (a config, paths), and never re-imports the caller's script, so ``stkd.run``
from a script without an ``if __name__ == "__main__":`` guard, or from a notebook, works as from the CLI
(multiprocessing's spawn would run such a script again in every process). The job travels as JSON through the
child's stdin (no pickle: nothing a process reads can run code).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence

from stkd.errors import STKDError

#: What a child runs: :func:`child_main`, found on the parent's ``sys.path``.
_CHILD = "import json, sys; sys.path[:] = json.loads(sys.argv[1]); from stkd.processes import child_main; child_main()"
#: How often the parent looks whether a child ended (seconds).
_POLL_S = 0.2
#: How long an interrupted run waits for its processes to stop on their own (each saves where it is).
STOP_WAIT_S = 30


def threads_per_worker(workers: int, configured: int | None) -> int:
    """Torch threads of each of ``workers`` processes: ``configured`` (``train.threads``) if set, else the cores
    shared out (at least one each)."""
    return configured or max(1, (os.cpu_count() or 1) // workers)


def run_processes(target: Callable[[dict, int], None], jobs: Sequence[dict], *, limit: int, threads: int | None,
                  name: Callable[[dict], str], stop_on_failure: bool, after_failure: str) -> None:
    """Run ``target(job, slot)`` for every job, each in a fresh process, at most ``limit`` at once, started in
    the order given; ``slot`` (0 .. limit-1) is the place the job holds among those running (its progress bar's
    row). Each process runs torch at ``threads`` intra-op threads (:func:`threads_per_worker`; None leaves
    torch's own default: for targets that train nothing), set before the target runs, so no target sets them
    itself. ``target`` must be importable by its module and name, and ``job`` a mapping JSON writes and reads
    back as it is; an STKDError it raises is printed as ``stkd: error: <name>: ...`` (exit code 2), an interrupt
    ends it with 130. Returns when all ended;
    raises STKDError naming each job whose process failed (its own error is on stderr above), followed by
    ``after_failure``. With ``stop_on_failure`` the first failure stops the others (no job starts after it and
    the running ones are terminated): what they trained stays in their checkpoints. Interrupted (Ctrl-C reaches
    every process of the terminal), each process gets :data:`STOP_WAIT_S` to stop by itself before it is
    terminated.
    """
    pending = list(jobs)
    running: dict[int, tuple[str, subprocess.Popen]] = {}  # slot -> (name, process)
    failed: list[str] = []
    stopped: list[str] = []
    try:
        while pending or running:
            while pending and len(running) < limit and not (failed and stop_on_failure):
                slot = min(set(range(limit)) - running.keys())
                job = pending.pop(0)
                label = name(job)
                running[slot] = (label, _start(target, job, slot, label, threads))
            if not running:
                break
            time.sleep(_POLL_S)
            for slot, (label, proc) in list(running.items()):
                if proc.poll() is None:
                    continue
                del running[slot]
                if proc.returncode != 0 and label not in stopped:
                    failed.append(f"{label} (exit code {proc.returncode})")
            if failed and stop_on_failure:
                for label, proc in running.values():
                    if label not in stopped:
                        stopped.append(label)
                        proc.terminate()
    except BaseException:
        for _, proc in running.values():
            try:
                proc.wait(timeout=STOP_WAIT_S)
            except subprocess.TimeoutExpired:
                proc.terminate()
        raise
    if failed:
        also = f"; stopped with it: {', '.join(stopped)}" if stopped else ""
        raise STKDError(f"process(es) {', '.join(failed)} stopped with an error (above){also}; {after_failure}")


def _start(target: Callable[[dict, int], None], job: dict, slot: int, label: str,
           threads: int | None) -> subprocess.Popen:
    """A fresh interpreter running ``target(job, slot)`` at ``threads`` torch threads (:func:`child_main`), its
    stdout and stderr this process's."""
    message = json.dumps([target.__module__, target.__qualname__, job, slot, label, threads])
    proc = subprocess.Popen([sys.executable, "-c", _CHILD, json.dumps(sys.path)], stdin=subprocess.PIPE, text=True)
    assert proc.stdin is not None
    with proc.stdin:
        proc.stdin.write(message)
    return proc


def child_main() -> None:
    """In a child: read [module, function name, job, slot, label, threads] as JSON from stdin and call the
    function at ``threads`` torch threads (if given), its progress bars drawn on row ``slot``; an STKDError is one
    line on stderr and exit code 2, as the command line reports it, an interrupt exit code 130."""
    import importlib

    from stkd.progress import set_bar_row

    module, name, job, slot, label, threads = json.load(sys.stdin)
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    set_bar_row(slot)
    target = getattr(importlib.import_module(module), name)
    try:
        target(job, slot)
    except STKDError as e:
        print(f"stkd: error: {label}: {e}", file=sys.stderr, flush=True)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
