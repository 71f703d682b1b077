"""Damaged run files, a full disk, a read-only output folder and a seed beyond 64 bits are one clear line
naming the file and what to do, with exit status 2, not a traceback (issue 17, item 8)."""

from __future__ import annotations

import errno
import json
import os
import shutil

import numpy as np
import pytest

from stkd.cli import main


@pytest.fixture
def run_copy(finished_run, tmp_path):
    cfg, out = finished_run
    copy = tmp_path / "run"
    shutil.copytree(out, copy)
    return cfg, copy


def _fails(argv, capsys, *needles) -> str:
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2, err
    assert err.startswith("stkd: error: ") and "Traceback" not in err and err.count("\n") == 1, err
    for needle in needles:
        assert needle in err, (needle, err)
    return err


def _teacher_dir(run):
    (mdir,) = [d for d in (run / "models").iterdir() if json.loads((d / "model.json").read_text())["role"] == "teacher"]
    return mdir


@pytest.mark.parametrize("name", ["last.safetensors", "best.safetensors"])
@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_a_damaged_checkpoint_on_resume_names_the_file(run_copy, capsys, name, damage):
    cfg, run = run_copy
    path = _teacher_dir(run) / name
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if damage == "truncate" else b"not safetensors at all")
    _fails(["run", "--config", str(cfg), "--out", str(run), "--resume", "--quiet"], capsys,
           str(path), "truncated or damaged", "train this model from the start")


def test_a_cache_array_holding_objects_says_to_rebuild_the_cache(run_copy, tmp_path, capsys):
    _, run = run_copy
    (entry,) = list((run / "cache").iterdir())
    np.save(entry / "test_pred.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    _fails(["distill", "--teacher-run", str(run), "--out", str(tmp_path / "kd"), "--quiet"], capsys, str(entry / "test_pred.npy"), f"delete the folder {entry}")


@pytest.mark.parametrize("which", ["model.json", "data.json"])
def test_bad_json_in_a_run_is_named_on_evaluate(run_copy, capsys, which):
    _, run = run_copy
    path = (_teacher_dir(run) / which) if which == "model.json" else run / which
    path.write_text('{"name": "gwnet", ')
    _fails(["evaluate", str(run), "--quiet"], capsys, str(path), "not valid JSON")


def test_bad_data_json_in_a_teacher_run_is_named_on_distill(run_copy, tmp_path, capsys):
    _, run = run_copy
    (run / "data.json").write_text("{oops")
    _fails(["distill", "--teacher-run", str(run), "--out", str(tmp_path / "kd"), "--quiet"], capsys,
           str(run / "data.json"), "not valid JSON")


def test_a_full_disk_is_one_line_naming_the_folder_and_keeps_the_old_files(run_copy, capsys, monkeypatch):
    _, run = run_copy
    before = (run / "metrics.json").read_bytes()
    import stkd.io

    def full(path, text):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(stkd.io, "write_text", full)
    monkeypatch.setattr("stkd.report.write_text", full, raising=False)
    monkeypatch.setattr("stkd.steps.write_json", lambda p, o: full(p, ""), raising=False)
    monkeypatch.setattr("stkd.io.write_json", lambda p, o: full(p, ""))
    _fails(["evaluate", str(run), "--quiet"], capsys, f"cannot write to {run.absolute()}", "no space left", "free some space")
    assert (run / "metrics.json").read_bytes() == before


def test_a_full_disk_on_run_names_the_out_folder(finished_run, tmp_path, capsys, monkeypatch):
    cfg, _ = finished_run

    def full(*a, **k):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("stkd.runs.write_text", full)
    out = tmp_path / "new"
    _fails(["run", "--config", str(cfg), "--out", str(out), "--quiet"], capsys, f"cannot write to {out.absolute()}",
           "no space left")


@pytest.mark.parametrize("command", ["run", "evaluate"])
def test_a_read_only_output_folder_is_one_line(finished_run, run_copy, tmp_path, capsys, monkeypatch, command):
    cfg, _ = finished_run
    _, run = run_copy
    if os.geteuid() == 0:  # root writes through chmod: make the file system say what a read-only one says
        def read_only(path, *a, **k):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))

        monkeypatch.setattr("stkd.io._temp_beside", read_only)
        parent = tmp_path
    else:
        parent = tmp_path / "ro"
        parent.mkdir()
        for p in (parent, run):
            p.chmod(0o555)
    try:
        if command == "run":
            out = parent / "new"
            _fails(["run", "--config", str(cfg), "--out", str(out), "--quiet"], capsys, "cannot write to",
                   "make it writable")
        else:
            _fails(["evaluate", str(run), "--quiet"], capsys, f"cannot write to {run.absolute()}", "make it writable")
    finally:
        for p in (parent, run):
            p.chmod(0o755)


@pytest.mark.parametrize("seed", [2**70, 2**63, -1])
def test_a_seed_outside_the_range_every_seed_shares_is_a_config_error(finished_run, tmp_path, capsys, seed):
    """train.seed has the bound of a model's own seed: an offset added to it (augmentation's stream, tuning's
    trials) stays within torch's 64 bits, and numpy's generators take no negative seed."""
    cfg, _ = finished_run
    _fails(["run", "--config", str(cfg), "--out", str(tmp_path / "r"), "--seed", str(seed), "--quiet"], capsys,
           "train.seed", f"from 0 to {2**63 - 1}", f"got {seed}")
    assert not (tmp_path / "r").exists()
