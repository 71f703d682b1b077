"""Progress bars: every long stage of a run names itself on stderr (training, the soft-label cache, scoring,
latency, baselines), and ``--quiet`` / ``progress=False`` silences all of them."""

from __future__ import annotations

import re

import pytest
import yaml

from stkd.cli import main
from stkd.config import parse_config
from stkd.pipeline import check_models, prepare_task
from stkd.progress import bar
from stkd.runs import Trained
from stkd.steps import check_fits

pytestmark = pytest.mark.usefixtures("one_torch_thread")

#: the stages of the small run of ``los_small_config`` (teacher gwnet, student stid, three baselines)
STAGES = ("teacher gwnet", "cache gwnet", "student_kd stid_kd", "student_plain stid_plain",
          "evaluate gwnet", "evaluate stid_kd", "evaluate stid_plain", "latency gwnet, stid_kd, stid_plain",
          "baseline last", "baseline seasonal (fit)", "baseline seasonal", "baseline ridge (fit)", "baseline ridge")
SCORING = tuple(s for s in STAGES if s.split()[0] in ("evaluate", "latency", "baseline"))


def _descriptions(err: str) -> set[str]:
    """The bar descriptions tqdm drew: the text before ``: <n>%|`` or ``: <n>window`` of each redraw."""
    return {m.strip() for m in re.findall(r"(?:^|\r)([^\r\n:]+): +(?:\d+%\||\d+ ?[a-z]+ \[)", err)}


def test_bar_draws_its_description_on_stderr_and_nothing_when_off(capsys):
    for _ in bar(range(3), desc="stage demo", progress=True):
        pass
    out, err = capsys.readouterr()
    assert out == "" and "stage demo:   0%|" in err and "0/3" in err  # drawn at the start, cleared at the end
    for _ in bar(range(3), desc="stage demo", progress=False):
        pass
    assert capsys.readouterr() == ("", "")


def test_only_rank_0_draws_under_ddp(capsys, monkeypatch):
    import torch.distributed  # noqa: F401 - a process group can exist once it is imported

    import stkd.distributed

    monkeypatch.setattr(stkd.distributed, "is_rank0", lambda: False)
    for _ in bar(range(3), desc="stage demo", progress=True):
        pass
    assert capsys.readouterr().err == ""


SIM = {"source": "builtin", "name": "synthetic-traffic",
       "simulator": {"nodes": 16, "days": 3, "incidents_per_day": 40, "seed": 1}}


@pytest.mark.parametrize("task", ["forecast", "classify"])
def test_cache_scoring_and_latency_bars_of_both_tasks(tmp_path, task, capsys):
    """The task's own stages: building the teacher's cache, scoring each model on the test split (an event
    model also on the validation split, for its threshold), the latency of all models (one bar, measured together
    in rounds), the forecast baselines."""
    raw = {"task": task, "data": SIM, "teacher": {"name": "mlp", "params": {"hidden": [8]}},
           "student": {"name": "mlp", "params": {"hidden": [8]}},
           "train": {"epochs": 1, "batch_size": 8, "max_batches": 2, "threads": 1},
           "eval": {"latency_repeats": 2, "baselines": ["last", "seasonal"]}}
    if task == "classify":
        raw["events"] = {"rule": "given", "source": "simulator"}
    cfg = parse_config(raw)
    t = prepare_task(cfg)
    check_models(t)
    teacher = Trained("mlp", "teacher", check_fits(t, cfg.teacher[0], "teacher"), "mlp", 0.0, {}, kind=t.name,
                      run_dir=tmp_path)
    student = Trained("mlp_plain", "student_plain", check_fits(t, cfg.student, "student"), "mlp", 0.0, {},
                      kind=t.name)
    capsys.readouterr()
    t.teacher_signal(tmp_path, [teacher], progress=False)
    t.score(tmp_path / "quiet", [student], progress=False)
    assert capsys.readouterr().err == ""

    t.teacher_signal(tmp_path / "again", [teacher], progress=True)
    t.score(tmp_path / "run", [teacher, student], progress=True)
    shown = _descriptions(capsys.readouterr().err)
    want = {"cache mlp", "latency mlp, mlp_plain"}
    if task == "forecast":
        want |= {"evaluate mlp", "evaluate mlp_plain", "baseline last", "baseline seasonal"}
    else:
        want |= {"evaluate mlp (val)", "evaluate mlp (test)", "evaluate mlp_plain (val)", "evaluate mlp_plain (test)"}
    assert want <= shown, f"missing: {want - shown}"


@pytest.mark.slow
def test_every_stage_shows_a_bar_and_quiet_silences_them(tmp_path, los_small_config, capsys):
    cfg = tmp_path / "los.yaml"
    cfg.write_text(yaml.safe_dump(los_small_config()))
    run = tmp_path / "run"
    assert main(["run", "--config", str(cfg), "--out", str(run)]) == 0
    err = capsys.readouterr().err
    shown = _descriptions(err)
    assert set(STAGES) <= shown, f"missing: {set(STAGES) - shown}"
    assert "plan" in err.lower()  # the plan printed before training is still there

    # stkd evaluate re-scores: its bars, and none of training's or the cache's (the cache is read, not built)
    assert main(["evaluate", str(run)]) == 0
    shown = _descriptions(capsys.readouterr().err)
    assert set(SCORING) <= shown and not {"cache gwnet", "teacher gwnet"} & shown

    # --quiet: not one bar, nor the plan, on stderr
    assert main(["evaluate", str(run), "--quiet"]) == 0
    assert capsys.readouterr().err == ""
    quiet = tmp_path / "quiet"
    assert main(["run", "--config", str(cfg), "--out", str(quiet), "--quiet"]) == 0
    assert capsys.readouterr().err == ""


def test_a_bar_redraws_seldom_where_stderr_is_a_log_and_often_on_a_terminal(monkeypatch):
    """In a log file or pipe (capsys's stderr is one) a bar waits ``LOG_INTERVAL_S`` between redraws; on a
    terminal it keeps tqdm's own 0.1 s, and a caller's own ``mininterval`` wins in both."""
    import io
    import sys

    from stkd.progress import LOG_INTERVAL_S

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    with bar(range(2), desc="stage demo") as logged:
        assert logged.mininterval == LOG_INTERVAL_S > 1
    monkeypatch.setattr(sys, "stderr", Terminal())
    with bar(range(2), desc="stage demo") as drawn:
        assert drawn.mininterval == pytest.approx(0.1)
    with bar(range(2), desc="stage demo", mininterval=2.0) as own:
        assert own.mininterval == 2.0
    assert "stage demo" in sys.stderr.getvalue()
