"""Work in processes side by side (stkd.processes): every job runs, at most ``limit`` at once, each in a slot
of its own; a failure is named and, where asked, stops the rest."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from stkd.errors import STKDError
from stkd.processes import run_processes, threads_per_worker

sys.path.insert(0, str(Path(__file__).parent))  # process_targets, importable by name in the processes
from process_targets import hold_slot, note_threads  # noqa: E402


def _folder(tmp_path: Path) -> Path:
    (tmp_path / "slots").mkdir()
    (tmp_path / "done").mkdir()
    return tmp_path


def test_every_job_runs_once_at_most_limit_at_once_each_in_its_own_slot(tmp_path):
    folder = _folder(tmp_path)
    jobs = [{"folder": str(folder), "name": f"job{i}"} for i in range(5)]
    run_processes(hold_slot, jobs, limit=2, threads=None, name=lambda job: job["name"], stop_on_failure=True,
                  after_failure="")
    done = {p.name: int(p.read_text()) for p in (folder / "done").iterdir()}
    assert sorted(done) == [f"job{i}" for i in range(5)]
    assert set(done.values()) <= {0, 1}  # two slots: a job in a slot held by another would have failed (O_EXCL)
    assert not any((folder / "slots").iterdir())  # every slot released


def test_a_failure_stops_the_others_and_names_the_job(tmp_path):
    folder = _folder(tmp_path)
    jobs = [{"folder": str(folder), "name": name} for name in ("sleep", "fail", "never")]
    t0 = time.monotonic()
    with pytest.raises(STKDError, match=r"process\(es\) fail \(exit code 2\) stopped with an error \(above\); "
                                        r"stopped with it: sleep; run it again"):
        run_processes(hold_slot, jobs, limit=2, threads=None, name=lambda job: job["name"], stop_on_failure=True,
                      after_failure="run it again")
    assert time.monotonic() - t0 < 45  # the sleeping job (60 s) was stopped, not waited for
    assert not (folder / "done" / "never").exists()  # no job starts after a failure


def test_without_stop_on_failure_the_others_finish(tmp_path):
    folder = _folder(tmp_path)
    jobs = [{"folder": str(folder), "name": name} for name in ("fail", "a", "b")]
    with pytest.raises(STKDError, match=r"fail \(exit code 2\).*kept$"):
        run_processes(hold_slot, jobs, limit=2, threads=None, name=lambda job: job["name"], stop_on_failure=False,
                      after_failure="kept")
    assert sorted(p.name for p in (folder / "done").iterdir()) == ["a", "b"]


def test_a_jobs_stkd_error_is_one_line_named_after_the_job(tmp_path, capfd):
    """An STKDError in a process is reported as the command line reports it (one line, no traceback), with the
    job's name, and counts as a failure (exit code 2)."""
    folder = _folder(tmp_path)
    with pytest.raises(STKDError, match=r"refused \(exit code 2\)"):
        run_processes(hold_slot, [{"folder": str(folder), "name": "refused"}], limit=1, threads=None,
                      name=lambda job: job["name"], stop_on_failure=True, after_failure="")
    err = capfd.readouterr().err
    assert "stkd: error: refused: bad input, said in one line" in err and "Traceback" not in err


def test_each_process_runs_torch_at_the_threads_asked_before_its_target_starts(tmp_path):
    """The threads are set once, for every target, by the process that runs it (no target sets its own)."""
    jobs = [{"folder": str(tmp_path), "name": n} for n in "ab"]
    run_processes(note_threads, jobs, limit=2, threads=1, name=lambda job: job["name"], stop_on_failure=True,
                  after_failure="")
    assert {n: (tmp_path / n).read_text() for n in "ab"} == {"a": "1", "b": "1"}
    more = (os.cpu_count() or 1) + 1  # above the cores: never torch's own default, so only the setting gives it
    run_processes(note_threads, jobs[:1], limit=1, threads=more, name=lambda job: job["name"], stop_on_failure=True,
                  after_failure="")
    assert (tmp_path / "a").read_text() == str(more)


def test_threads_per_worker_shares_the_cores_unless_set():
    cores = os.cpu_count() or 1
    assert threads_per_worker(1, None) == cores
    assert threads_per_worker(2, None) == max(1, cores // 2)
    assert threads_per_worker(cores * 4, None) == 1
    assert threads_per_worker(2, 3) == 3


def test_a_script_without_a_main_guard_is_not_run_again_in_the_processes(tmp_path):
    """A user's script that calls stkd without ``if __name__ == "__main__":`` (as the README's API example reads)
    runs once: the processes import the target by name, never the script."""
    import subprocess

    folder = _folder(tmp_path)
    script = tmp_path / "script.py"
    script.write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "from process_targets import hold_slot\n"
        "from stkd.processes import run_processes\n"
        "print('script started', flush=True)\n"
        f"jobs = [{{'folder': {str(folder)!r}, 'name': n}} for n in 'ab']\n"
        "run_processes(hold_slot, jobs, limit=2, threads=None, name=lambda j: j['name'],\n"
        "              stop_on_failure=True, after_failure='')\n")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("script started") == 1
    assert sorted(p.name for p in (folder / "done").iterdir()) == ["a", "b"]
