"""The deploy subcommands' start-up: what ``stkd --help`` and ``stkd.load`` import, and one clear line
when an optional extra is missing. Each check runs in a fresh interpreter (``sys.modules`` of this one
already holds everything)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import stkd

SRC = str(Path(stkd.__file__).resolve().parents[1])


def run_python(code: str, *, block: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """Run ``code`` in a new interpreter that imports this checkout's stkd; ``block``: top-level modules
    whose import fails there as if they were not installed (a ``sys.meta_path`` finder that refuses them)."""
    prelude = ""
    if block:
        prelude = (
            "import sys\n"
            "class _Blocker:\n"
            f"    names = {block!r}\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name.split('.')[0] in self.names:\n"
            "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
            "        return None\n"
            "sys.meta_path.insert(0, _Blocker())\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-c", prelude + code], capture_output=True, text=True, env=env,
                          timeout=120)


HEAVY = ("torch", "pandas", "numpy", "sklearn", "scipy", "fastapi", "onnxruntime", "onnx")


def test_building_the_parser_imports_nothing_heavy():
    """``stkd --help`` builds the whole parser: the deploy subcommands register without their code."""
    r = run_python("import sys, stkd.cli\n"
                   "p = stkd.cli.build_parser()\n"
                   "assert {'predict', 'export', 'serve'} <= set(p._subparsers._group_actions[0].choices)\n"
                   f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]", r.stdout


def test_loading_a_student_does_not_import_scikit_learn(run_template):
    stkd.load(run_template)  # the train statistics are cached in the run (the first load reads the data)
    r = run_python(f"import sys, stkd\np = stkd.load({str(run_template)!r})\n"
                   "print(p.name, 'sklearn' in sys.modules)")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["stid_kd", "False"]


@pytest.mark.parametrize("argv, block, line", [
    (["serve", "RUN"], ("fastapi",), 'stkd serve needs the serve extra: pip install -c constraints.txt -e ".[serve]"'),
    (["serve", "RUN", "--backend", "onnx"], ("onnxruntime",),
     'stkd serve --backend onnx needs the export extra: pip install -c constraints.txt -e ".[export]"'),
    (["export", "RUN", "--out", "OUT"], ("onnx",),
     'stkd export --format onnx needs the export extra: pip install -c constraints.txt -e ".[export]"'),
])
def test_a_missing_extra_is_one_clear_line(run_dir, tmp_path, argv, block, line):
    argv = [str(run_dir) if a == "RUN" else str(tmp_path / "out") if a == "OUT" else a for a in argv]
    r = run_python(f"import sys, stkd.cli\nsys.exit(stkd.cli.main({argv!r}))", block=block)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert r.stderr.strip() == f"stkd: error: {line}"
    assert not (tmp_path / "out").exists()


def test_an_onnx_export_without_onnxruntime_names_the_extra(run_dir):
    from stkd.deploy.export import export_model

    export_model(run_dir, "onnx", run_dir / "exp", windows=4)
    r = run_python(f"import stkd\nstkd.load({str(run_dir / 'exp')!r})", block=("onnxruntime",))
    assert r.returncode == 1
    assert r.stderr.strip().splitlines()[-1].endswith(
        'the onnx backend needs the export extra: pip install -c constraints.txt -e ".[export]"')


@pytest.mark.parametrize("argv, env, line", [
    (["serve", "RUN", "--port", "0"], {"STKD_API_TOKEN": ""},
     "STKD_API_TOKEN is set but empty: set a token, or unset the variable to serve without one"),
    (["serve", "RUN", "--port", "0", "--token", " "], {}, "--token is empty"),
    (["serve", "RUN", "--port", "0", "--host", "0.0.0.0"], {},
     "--host 0.0.0.0 is reachable from other machines and no API token is set"),
])
def test_serve_refuses_to_run_without_authentication_by_accident(run_dir, argv, env, line):
    """An empty STKD_API_TOKEN used to switch authentication off, and a public --host without a token only
    warned (issue 17). Both now stop before anything is served (the old code served: the subprocess
    would run until its timeout)."""
    argv = [str(run_dir) if a == "RUN" else a for a in argv]
    extra = "import os\n" + "".join(f"os.environ[{k!r}] = {v!r}\n" for k, v in env.items())
    if "STKD_API_TOKEN" not in env:
        extra += "os.environ.pop('STKD_API_TOKEN', None)\n"
    r = run_python(extra + f"import sys, stkd.cli\nsys.exit(stkd.cli.main({argv!r}))")
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert r.stderr.startswith(f"stkd: error: {line}")


def test_loopback_hosts():
    from stkd.deploy.cli import is_loopback

    assert all(is_loopback(h) for h in ("127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost", "LOCALHOST"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "10.0.0.2", "example.org", "192.168.1.1"))
