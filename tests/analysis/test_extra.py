"""``stkd analyze`` needs the ``analysis`` extra (statsmodels); ``stkd run`` does not."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import stkd

SRC = str(Path(stkd.__file__).resolve().parents[1])
BLOCK_STATSMODELS = (
    "import sys\n"
    "class _Blocker:\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        if name.split('.')[0] == 'statsmodels':\n"
    "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
    "        return None\n"
    "sys.meta_path.insert(0, _Blocker())\n"
)


def run_without_statsmodels(code: str) -> subprocess.CompletedProcess:
    """``code`` in a new interpreter where importing statsmodels fails as if it were not installed."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-c", BLOCK_STATSMODELS + code], capture_output=True, text=True,
                          env=env, timeout=120)


def test_analyze_without_the_extra_is_one_clear_line(tmp_path):
    out = tmp_path / "report"
    argv = ["analyze", "los-loop", "--out", str(out)]
    r = run_without_statsmodels(f"import stkd.cli\nsys.exit(stkd.cli.main({argv!r}))")
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert r.stderr.strip() == (
        'stkd: error: stkd analyze needs the analysis extra: pip install -c constraints.txt -e ".[analysis]"')
    assert not out.exists()


def test_the_default_run_does_not_need_statsmodels():
    """Everything ``stkd run`` imports (pipeline, tasks, models, report, CLI) loads without statsmodels."""
    r = run_without_statsmodels(
        "import stkd.cli, stkd.pipeline, stkd.report, stkd.steps, stkd.evaluate, stkd.baselines\n"
        "import stkd.tasks.forecast, stkd.tasks.classify, stkd.models.registry\n"
        "stkd.cli.build_parser()\n"
        "print('statsmodels' in sys.modules)")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"
