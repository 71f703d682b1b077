"""``stkd tune`` end to end on a small slice of Los-loop (the finished run of conftest as the teacher run):
a short study writes its files and a best config that runs, the teachers' cache is read and never rebuilt,
a second session continues the same study, pruning and the time budget stop trials after an epoch, the
test split is read once at the end, and bad input fails with one clear line before anything is trained."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import pytest
import yaml

from stkd.cli import main
from stkd.config import load_config, parse_config
from stkd.runs import load_run

optuna = pytest.importorskip("optuna")

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]

FAST = ["--set", "train.epochs=3", "--set", "eval.baselines=[last]", "--quiet"]


def _tune(teacher_run: Path, out: Path, *extra: str) -> int:
    return main(["tune", "--teacher-run", str(teacher_run), "--out", str(out), *FAST, *extra])


def _rows(out: Path) -> list[dict]:
    with open(out / "trials.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def _cache_files(run: Path) -> dict[str, int]:
    return {str(p.relative_to(run)): p.stat().st_mtime_ns for p in sorted((run / "cache").rglob("*")) if p.is_file()}


def test_a_study_writes_its_files_reuses_the_cache_resumes_and_its_best_config_runs(finished_run, tmp_path,
                                                                                     monkeypatch, capsys):
    _, run = finished_run
    cache_before = _cache_files(run)
    assert cache_before  # the teacher run holds its soft-label cache
    from stkd.tasks.forecast import ForecastTask

    scored: list[Path] = []  # every test-split scoring (ForecastTask.score) of the whole search
    original = ForecastTask.score

    def counting_score(self, run_dir, models, **kwargs):
        scored.append(Path(run_dir))
        return original(self, run_dir, models, **kwargs)

    monkeypatch.setattr(ForecastTask, "score", counting_score)
    out = tmp_path / "tune"
    assert _tune(run, out, "--trials", "3") == 0
    printed = capsys.readouterr().out
    assert "best: trial" in printed and "val_mae" in printed
    for name in ("study.db", "search.yaml", "trials.csv", "best.yaml", "tune.json", "best/metrics.json",
                 "best/report.md"):
        assert (out / name).is_file(), name
    rows = _rows(out)
    assert [r["number"] for r in rows] == ["0", "1", "2"]
    assert {r["state"] for r in rows} <= {"complete", "pruned"}
    assert {"distill.alpha", "distill.loss", "train.lr", "student.width", "student.depth"} <= set(rows[0])
    summary = json.loads((out / "tune.json").read_text())
    assert summary["monitor"] == "mae" and sum(summary["trials"].values()) == 3
    best = summary["best"]
    complete = {int(r["number"]): float(r["val_mae"]) for r in rows if r["state"] == "complete"}
    assert best["val"]["mae"] == pytest.approx(min(complete.values()))
    assert best["test"]["mae"] > 0 and "horizons" in best["test"]
    # the test split is read once, for the best configuration only; trials leave no test predictions
    assert scored == [out / "best"]
    assert sorted(p.name for p in (out / "trials").iterdir()) == ["0000", "0001", "0002"]
    for tdir in (out / "trials").iterdir():
        assert (tdir / "config.yaml").is_file() and not (tdir / "metrics.json").exists()
        assert not (tdir / "predictions").exists()
        assert not list(tdir.rglob("last.safetensors"))  # trials are never resumed: no checkpoint kept
    # the teachers' cache was read, never rebuilt
    assert _cache_files(run) == cache_before
    # best.yaml is a complete config: the best trial's settings, and stkd distill runs it as it is
    best_cfg = load_config(out / "best.yaml")
    trial_cfg = load_config(out / "trials" / f"{best['trial']:04d}" / "config.yaml")
    assert best_cfg == trial_cfg
    assert best_cfg.distill.alpha == pytest.approx(best["params"]["distill.alpha"])
    assert best_cfg.train.lr == pytest.approx(best["params"]["train.lr"])
    assert best_cfg.student.params["layers"] == best["params"]["student.depth"]
    assert best_cfg.data == load_run(run)[0].data
    again = tmp_path / "again"
    assert main(["distill", "--teacher-run", str(run), "--config", str(out / "best.yaml"), "--out", str(again),
                 "--quiet"]) == 0
    kd = next(m for m in json.loads((again / "metrics.json").read_text())["models"].values()
              if m["role"] == "student_kd")
    assert kd["test"]["mae"] == pytest.approx(best["test"]["mae"], rel=1e-4)

    # a second session continues the same study up to --trials (those done count) and re-reads no cache
    scored.clear()
    assert _tune(run, out, "--trials", "4") == 0
    rows = _rows(out)
    assert len(rows) == 4 and rows[-1]["number"] == "3"
    assert optuna.load_study(study_name="stkd-tune", storage=f"sqlite:///{out / 'study.db'}").trials[-1].number == 3
    assert len(scored) <= 1  # the best's test result is reused when the best did not change
    assert _cache_files(run) == cache_before
    assert _tune(run, out, "--trials", "4") == 0 and len(_rows(out)) == 4  # the budget is spent: nothing new

    # continuing it with another search space is refused (the study records what it searches)
    space = tmp_path / "space.yaml"
    space.write_text("train.lr: {low: 1.0e-3, high: 2.0e-3, log: true}\n")
    assert _tune(run, out, "--trials", "5", "--space", str(space)) == 2
    assert "searches something else (it differs in: space)" in capsys.readouterr().err
    assert yaml.safe_load((out / "search.yaml").read_text())["space"]["train.lr"]["low"] == 3e-4  # still the study's
    assert _tune(run, out, "--trials", "5", "--study", "another") == 2  # one folder holds one study's trials
    assert "holds the trials of study 'stkd-tune'" in capsys.readouterr().err


def test_a_pruned_trial_stops_training_after_the_epoch_the_pruner_gives_up(finished_run, tmp_path):
    """The pruner receives every epoch's validation MAE; when it prunes, training stops after that epoch
    (fewer epochs than configured) and the trial is recorded as pruned with the epochs it trained."""
    from stkd.tuning.space import build_space
    from stkd.tuning.trial import load_shared, run_trial

    _, run = finished_run
    base = load_run(run)[0]
    cfg = parse_config({**_as_dict(base), "train": {**_as_dict(base)["train"], "epochs": 6, "patience": 100}})
    shared, _ = load_shared(cfg, run, tmp_path, build_space(cfg), progress=False)

    class PruneAtEpochTwo(optuna.pruners.BasePruner):
        def prune(self, study, trial):
            return max(trial.intermediate_values, default=0) >= 2

    study = optuna.create_study(pruner=PruneAtEpochTwo(), sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(lambda t: run_trial(t, shared), n_trials=1)
    t = study.trials[0]
    assert t.state == optuna.trial.TrialState.PRUNED
    assert sorted(t.intermediate_values) == [1, 2]  # one report per epoch
    assert t.user_attrs["epochs"] == 2 < 6 and t.user_attrs["stopped"] == "pruned"
    with open(next((tmp_path / "trials" / "0000" / "models").iterdir()) / "log.csv") as fh:
        assert len(list(csv.DictReader(fh))) == 2


def test_a_diverging_trial_is_pruned_and_the_search_goes_on(finished_run, tmp_path):
    """A learning rate that makes the loss non-finite ends that trial as pruned (the sampler learns the region
    is bad) instead of stopping the search."""
    from stkd.tuning.space import build_space
    from stkd.tuning.trial import load_shared, run_trial

    _, run = finished_run
    cfg = load_run(run)[0]
    shared, _ = load_shared(cfg, run, tmp_path, build_space(cfg, {"train.lr": 1e30}), progress=False)
    study = optuna.create_study()
    study.optimize(lambda t: run_trial(t, shared), n_trials=1)
    t = study.trials[0]
    assert t.state == optuna.trial.TrialState.PRUNED and t.user_attrs["stopped"] == "diverged"


def test_the_time_budget_stops_the_running_trial_and_starts_no_other(finished_run, tmp_path):
    _, run = finished_run
    out = tmp_path / "tune"
    t0 = time.perf_counter()
    assert _tune(run, out, "--timeout", "6s", "--set", "train.epochs=400", "--set", "train.patience=400") == 0
    assert time.perf_counter() - t0 < 60
    rows = _rows(out)
    assert 1 <= len(rows) <= 2
    assert rows[-1]["state"] == "pruned" and rows[-1]["stopped"] == "time" and int(rows[-1]["epochs"]) < 400


def test_bad_space_and_budget_fail_with_one_line_before_anything_is_written(finished_run, tmp_path, capsys):
    _, run = finished_run
    space = tmp_path / "space.yaml"
    space.write_text("train.lrr: {low: 1.0e-4, high: 1.0e-2}\n")
    out = tmp_path / "tune"
    assert _tune(run, out, "--space", str(space)) == 2
    assert "unknown key 'train.lrr'; did you mean 'train.lr'?" in capsys.readouterr().err
    assert not out.exists()
    space.write_text("distill.temperature: {low: 1, high: 4}\n")  # a forecast run does not use it
    assert _tune(run, out, "--space", str(space)) == 2
    assert "task forecast does not use it" in capsys.readouterr().err
    assert _tune(run, out, "--trials", "0") == 2
    assert "--trials: must be >= 1" in capsys.readouterr().err
    assert _tune(run, out, "--timeout", "soon") == 2
    assert "--timeout: 'soon' is not a duration" in capsys.readouterr().err
    user = tmp_path / "mine"
    user.mkdir()
    (user / "notes.txt").write_text("mine")
    assert _tune(run, user, "--overwrite") == 2
    assert "not an stkd tune folder" in capsys.readouterr().err and (user / "notes.txt").is_file()


def test_missing_optuna_says_how_to_install_it_and_the_cli_does_not_need_it(finished_run, tmp_path, monkeypatch,
                                                                            capsys):
    import subprocess
    import sys

    from stkd.errors import STKDError
    from stkd.tuning import require_optuna

    code = ("import sys; sys.modules['optuna'] = None\n"
            "from stkd.cli import build_parser\n"
            "build_parser().parse_args(['tune', '--teacher-run', 'x', '--out', 'y'])\n"
            "assert 'optuna' in sys.modules and sys.modules['optuna'] is None\n")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0  # stkd --help needs no optuna
    monkeypatch.setitem(sys.modules, "optuna", None)
    with pytest.raises(STKDError, match=r'pip install -c constraints.txt -e "\.\[tune\]"'):
        require_optuna()
    _, run = finished_run
    assert _tune(run, tmp_path / "tune", "--trials", "1") == 2
    assert 'stkd tune needs Optuna, an optional extra: pip install -c constraints.txt -e ".[tune]"' in \
        capsys.readouterr().err
    assert not (tmp_path / "tune").exists()


def test_commands_with_the_same_storage_and_study_join_one_study(finished_run, tmp_path):
    """What several machines do (a shared database, the same --study): each command has its own folder and
    trials, and they fill one study together (here a SQLite file stands in for the server)."""
    _, run = finished_run
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    a, b = tmp_path / "machine-a", tmp_path / "machine-b"
    assert _tune(run, a, "--trials", "2", "--storage", url, "--study", "joint") == 0
    assert _tune(run, b, "--trials", "3", "--storage", url, "--study", "joint") == 0
    assert [r["number"] for r in _rows(b)] == ["0", "1", "2"]  # every machine's trials
    assert sorted(p.name for p in (a / "trials").iterdir()) == ["0000", "0001"]
    assert sorted(p.name for p in (b / "trials").iterdir()) == ["0002"]
    assert not (a / "study.db").exists() and not (b / "study.db").exists()
    assert json.loads((b / "tune.json").read_text())["storage"] == url


def test_a_postgresql_storage_joins_commands_as_several_machines_do(finished_run, tmp_path_factory, tmp_path):
    """The README's several-machines command: --storage postgresql+psycopg://... (psycopg 3, the sql extra)
    on a real PostgreSQL server (pgserver's bundled binaries), two commands with their own folders."""
    pgserver = pytest.importorskip("pgserver", reason="the test extra (pgserver) is not installed")
    pytest.importorskip("psycopg", reason="the sql extra (psycopg) is not installed")
    srv = pgserver.get_server(tmp_path_factory.mktemp("pg"), cleanup_mode="stop")
    try:
        uri = srv.get_uri()
        url = "postgresql+psycopg://" + uri.split("://", 1)[1]
        _, run = finished_run
        assert _tune(run, tmp_path / "a", "--trials", "1", "--storage", url, "--study", "pg") == 0
        assert _tune(run, tmp_path / "b", "--trials", "2", "--storage", url, "--study", "pg") == 0
        assert [r["number"] for r in _rows(tmp_path / "b")] == ["0", "1"]
        assert sorted(p.name for p in (tmp_path / "b" / "trials").iterdir()) == ["0001"]
    finally:
        srv.cleanup()


def test_two_worker_processes_share_one_study(finished_run, tmp_path):
    _, run = finished_run
    out = tmp_path / "tune"
    assert _tune(run, out, "--trials", "3", "--workers", "2") == 0
    rows = _rows(out)
    assert len(rows) == 3 and len({r["number"] for r in rows}) == 3  # never more than --trials
    assert {r["state"] for r in rows} <= {"complete", "pruned"}
    assert json.loads((out / "tune.json").read_text())["best"]["test"]["mae"] > 0


def test_an_event_study_maximises_validation_f1_and_tunes_the_temperature(tmp_path):
    """Events: the monitor is -F1 (minimised); trials.csv, tune.json and the table show F1 itself, and
    the default space tunes the soft labels' temperature instead of the forecast loss."""
    sim = {"source": "builtin", "name": "synthetic-traffic",
           "simulator": {"nodes": 16, "days": 3, "incidents_per_day": 40, "seed": 1}}
    raw = {"task": "classify", "data": sim, "events": {"rule": "given", "source": "simulator"},
           "teacher": {"name": "gwnet", "params": {"residual_channels": 8, "dilation_channels": 8,
                                                   "skip_channels": 16, "end_channels": 16, "blocks": 2,
                                                   "layers": 3}},
           "student": {"name": "mlp", "params": {"hidden": [16]}},
           "train": {"epochs": 1, "batch_size": 32, "max_batches": 4}, "eval": {"latency_repeats": 2}}
    (tmp_path / "events.yaml").write_text(yaml.safe_dump(raw))
    teacher = tmp_path / "teacher"
    assert main(["train", "--config", str(tmp_path / "events.yaml"), "--out", str(teacher), "--quiet"]) == 0
    out = tmp_path / "tune"
    assert main(["tune", "--teacher-run", str(teacher), "--out", str(out), "--trials", "2", "--quiet",
                 "--set", "train.epochs=2"]) == 0
    summary = json.loads((out / "tune.json").read_text())
    assert summary["monitor"] == "f1" and "distill.temperature" in summary["space"]
    assert "distill.loss" not in summary["space"]
    f1s = [float(r["val_f1"]) for r in _rows(out) if r["state"] == "complete"]
    assert summary["best"]["val"]["f1"] == pytest.approx(max(f1s)) and 0 <= max(f1s) <= 1
    assert load_config(out / "best.yaml").distill.temperature == pytest.approx(
        summary["best"]["params"]["distill.temperature"])
    assert 0 <= summary["best"]["test"]["f1"] <= 1


def _as_dict(cfg) -> dict:
    from stkd.config import to_dict

    return yaml.safe_load(yaml.safe_dump(to_dict(cfg)))


def test_a_space_wider_than_the_teacher_students_start_from_is_refused_before_any_trial(los_small_config, tmp_path,
                                                                                       capsys):
    """``distill.init: teacher``: every trial's student is cut from the first teacher, so the widest and deepest
    student the space can draw must fit in it; checked before the search folder is made."""
    raw = los_small_config()
    raw["teacher"] = {"name": "stid", "params": {"embed_dim": 16, "node_dim": 16, "tod_dim": 16, "dow_dim": 16,
                                                 "layers": 2}}
    raw["distill"] = {"init": "teacher"}
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(raw))
    run = tmp_path / "teacher"
    assert main(["train", "--config", str(cfg), "--out", str(run), "--quiet"]) == 0
    out = tmp_path / "tune"
    assert _tune(run, out) == 2  # the default space draws widths up to 64 and depths up to 4
    err = capsys.readouterr().err
    assert "--space: the widest student the search can draw (student.width 64, student.depth 4)" in err
    assert "window embedding is 64 wide, the teacher's 16" in err and not out.exists()
    space = tmp_path / "space.yaml"
    space.write_text("student.width: [4, 16]\nstudent.depth: {low: 1, high: 3}\n")
    assert _tune(run, out, "--space", str(space)) == 2
    assert "the student has 3 layers, the teacher 2" in capsys.readouterr().err
    space.write_text("student.width: [4, 16]\nstudent.depth: {low: 1, high: 2}\n")
    assert _tune(run, out, "--space", str(space), "--trials", "1") == 0
    assert len(_rows(out)) == 1


def test_workers_each_get_their_share_of_the_memory(finished_run, tmp_path, monkeypatch, capsys):
    """Every worker process loads the data and trains its own trials: a student that fits the machine alone but not
    in half of it is refused for ``--workers 2`` before any trial starts, naming the way out."""
    import stkd.memory
    from stkd.memory import estimate_memory
    from stkd.pipeline import prepare_task
    from stkd.steps import eval_batch_size

    _, run = finished_run
    cfg, _ = load_run(run)
    task = prepare_task(cfg)
    need = estimate_memory(cfg.student.name, task.spec(), cfg.student.params, batch_size=cfg.train.batch_size,
                           eval_batch_size=eval_batch_size(cfg)).total_bytes
    monkeypatch.setattr(stkd.memory, "available_bytes", lambda: int(1.5 * need))  # a machine of 1.5x its need
    out = tmp_path / "tune"
    assert _tune(run, out, "--trials", "2", "--workers", "2") != 0
    err = capsys.readouterr().err
    assert "for each of the 2 models that train at once, each process with its own data; try fewer at once" in err
    assert "stkd tune --workers" in err
    assert not (out / "trials.csv").exists()  # nothing trained
