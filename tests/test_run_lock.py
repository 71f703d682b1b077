"""One stkd process at a time per run folder, and ``--resume`` only with the models it started
(issue 17, item 9)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from stkd.cli import main
from stkd.errors import STKDError

HOLD = textwrap.dedent("""
    import sys, time
    from stkd.runs import run_lock
    with run_lock(sys.argv[1]):
        print("locked", flush=True)
        sys.stdin.readline()  # hold until the test closes stdin
""")


@pytest.fixture
def other_process():
    """Start another process that holds the lock of a folder; yields (start(folder) -> pid)."""
    procs = []

    def start(folder: Path) -> int:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        p = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, env=env)
        procs.append(p)
        assert p.stdout.readline().strip() == "locked"
        return p.pid

    yield start
    for p in procs:
        p.stdin.close()
        p.wait(timeout=30)


def test_a_second_process_cannot_take_a_held_lock(tmp_path, other_process):
    from stkd.runs import run_lock

    pid = other_process(tmp_path / "run")
    with pytest.raises(STKDError, match=rf"run folder .*run is in use by another stkd process \(pid {pid}\)"):
        with run_lock(tmp_path / "run"):
            pass


def test_the_lock_is_free_again_after_the_holder_exits_and_is_reentrant(tmp_path, other_process):
    from stkd.runs import lock_path, run_lock

    with run_lock(tmp_path / "run"):
        with run_lock(tmp_path / "run"):  # the same process again (a pipeline step inside a command)
            pass
    other_process(tmp_path / "run")  # released: another process takes it at once
    assert lock_path(tmp_path / "run").is_file() and not (tmp_path / "run").exists()


def test_overwrite_while_another_run_holds_the_folder_is_refused_and_changes_nothing(finished_run, tmp_path,
                                                                                     other_process, capsys):
    cfg, out = finished_run
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    pid = other_process(out)
    rc = main(["run", "--config", str(cfg), "--out", str(out), "--overwrite", "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and f"is in use by another stkd process (pid {pid})" in err and str(out) in err, err
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    rc = main(["evaluate", str(out)])
    assert rc == 2 and "in use by another stkd process" in capsys.readouterr().err


@pytest.mark.parametrize("change, section", [(["student.name=mlp"], "student"),
                                             (["student.params.embed_dim=16"], "student"),
                                             (["teacher.params.residual_channels=4"], "teacher"),
                                             (["distill.alpha=0.9"], "distill"),
                                             (["train.lr=0.01"], "train")])
def test_resume_with_other_models_is_refused_before_anything_is_written(finished_run, tmp_path, capsys,
                                                                        change, section):
    import shutil

    cfg, out = finished_run
    run = tmp_path / "run"
    shutil.copytree(out, run)
    before = sorted(p.name for p in (run / "models").iterdir())
    argv = ["run", "--config", str(cfg), "--out", str(run), "--resume", "--quiet"]
    for c in change:
        argv += ["--set", c]
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2 and f"--resume: the {section} section differs" in err and str(run / "config.yaml") in err, err
    assert sorted(p.name for p in (run / "models").iterdir()) == before
    assert (run / "config.yaml").read_bytes() == (out / "config.yaml").read_bytes()
    if section in ("distill", "train"):  # the message names the setting, with both values
        key = change[0].split("=")[0]
        assert f"{key}: saved " in err and "now " + change[0].split("=")[1] in err, err


def test_resume_may_change_where_a_run_trains_but_not_what_it_learns(finished_run, tmp_path):
    """The train keys free on resume (device, threads, logging, time budget) pass the check; any other does
    not, and the check reads the saved config.yaml, not the run's memory of it."""
    import dataclasses
    import shutil

    from stkd.config import load_config
    from stkd.runs import RESUME_FREE_TRAIN_KEYS, check_same_training

    cfg, out = finished_run
    run = tmp_path / "run"
    shutil.copytree(out, run)
    saved = load_config(run / "config.yaml")
    free = dataclasses.replace(saved, train=dataclasses.replace(saved.train, threads=1, time_budget="5min",
                                                                tensorboard=True))
    assert {"threads", "time_budget", "tensorboard"} <= set(RESUME_FREE_TRAIN_KEYS)
    check_same_training(run, free)  # no error
    for change in ({"seed": saved.train.seed + 1}, {"epochs": saved.train.epochs + 1}, {"loss": "mse"}):
        other = dataclasses.replace(saved, train=dataclasses.replace(saved.train, **change))
        key = next(iter(change))
        with pytest.raises(STKDError, match=rf"the train section differs .*train\.{key}: saved"):
            check_same_training(run, other)
