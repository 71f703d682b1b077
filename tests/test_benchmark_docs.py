"""The benchmark page and the README's headline numbers are what the committed result files give."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_benchmark_page_and_readme_headlines_render_from_the_result_files():
    """``python benchmarks/render.py --check`` rebuilds every generated block from docs/results/ and
    finds nothing to change: a number edited by hand, or a result file changed without re-rendering,
    fails here; so does a block whose result file is missing."""
    run = subprocess.run([sys.executable, "benchmarks/render.py", "--check"], cwd=REPO, capture_output=True,
                         text=True)
    assert run.returncode == 0, run.stderr
    readme = (REPO / "README.md").read_text()
    assert re.search(r"<!-- headline:[\w.-]+:start -->", readme), "the README has no generated headline block"
    assert list((REPO / "docs" / "results").glob("*.json")), "no result files"


def test_no_doc_names_a_path_outside_the_repository():
    """Neither the pages nor the result files they are rendered from (committed, read by anyone)."""
    pattern = re.compile(r"(/work/|/tmp/[a-z]|/root/|/home/|\.\./shared)")
    for path in [REPO / "README.md", *(REPO / "docs").rglob("*.md"), *(REPO / "docs").rglob("*.json")]:
        for i, line in enumerate(path.read_text().splitlines(), 1):
            assert not pattern.search(line), f"{path.relative_to(REPO)}:{i} names a machine path: {line.strip()}"
