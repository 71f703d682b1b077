"""Progress bars: every long stage of a run names itself on stderr (training, the soft-label cache, scoring,
latency, baselines), and ``--quiet`` / ``progress=False`` silences all of them."""

from __future__ import annotations

import re

import pytest
import yaml

from stkd.cli import main
from stkd.progress import bar

pytestmark = pytest.mark.usefixtures("one_torch_thread")

#: the stages of the small run of ``los_small_config`` (teacher gwnet, student stid, three baselines)
STAGES = ("teacher gwnet", "cache gwnet", "student_kd stid_kd", "student_plain stid_plain",
          "evaluate gwnet", "latency gwnet", "evaluate stid_kd", "latency stid_kd", "evaluate stid_plain",
          "latency stid_plain", "baseline last", "baseline seasonal (fit)", "baseline seasonal",
          "baseline ridge (fit)", "baseline ridge")
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
