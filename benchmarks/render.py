"""Rebuild docs/benchmarks.md's generated blocks and the README's headline blocks from docs/results/.

    python benchmarks/render.py           # rewrite the blocks from the result files
    python benchmarks/render.py --check   # exit 1 (and say which) when a block is not what the files give

Each result file names the script that wrote it (``kind``); that script's ``render(result)`` gives the
block ``<!-- SECTION:start --> ... <!-- SECTION:end -->`` of docs/benchmarks.md and, when it has one, its
``headline(result)`` the README block ``<!-- headline:SECTION:start --> ... <!-- headline:SECTION:end -->``.
Text outside the markers is commentary and is left alone. A marker without a result file is an error:
every number on the page comes from a file anyone can re-render and check.
"""

from __future__ import annotations

import argparse
import importlib
import json
import re
import sys
from pathlib import Path

from common import DOC, REPO, RESULTS

README = REPO / "README.md"
MARKER = re.compile(r"<!-- (?P<name>[\w:.-]+):start -->\n.*?<!-- (?P=name):end -->", re.S)


def results() -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(RESULTS.glob("*.json"))}


def rendered() -> dict[str, str]:
    """Marker name -> generated text, for every result file (and its headline, if the script has one)."""
    out = {}
    for section, blob in results().items():
        module = importlib.import_module(blob["kind"])
        out[section] = module.render(blob).rstrip() + "\n"
        if hasattr(module, "headline"):
            out[f"headline:{section}"] = module.headline(blob).rstrip() + "\n"
    return out


def fill(text: str, blocks: dict[str, str], where: Path) -> tuple[str, list[str]]:
    """``text`` with every marked block replaced; the names of markers that have no result file."""
    missing = []

    def sub(m: re.Match) -> str:
        name = m.group("name")
        if name not in blocks:
            missing.append(f"{where.name}: {name}")
            return m.group(0)
        return f"<!-- {name}:start -->\n{blocks[name]}<!-- {name}:end -->"

    return MARKER.sub(sub, text), missing


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="change nothing; exit 1 if a block is out of date")
    args = ap.parse_args()
    blocks = rendered()
    stale, missing = [], []
    for path in (DOC, README):
        text = path.read_text()
        new, lost = fill(text, blocks, path)
        missing += lost
        if new != text:
            stale.append(str(path.relative_to(REPO)))
            if not args.check:
                from stkd.io import write_text

                write_text(path, new)
    for m in missing:
        print(f"no result file for the block {m}", file=sys.stderr)
    if args.check and stale:
        print(f"out of date (run python benchmarks/render.py): {', '.join(stale)}", file=sys.stderr)
    return 1 if missing or (args.check and stale) else 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.exit(main())
