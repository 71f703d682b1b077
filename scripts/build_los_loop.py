"""Build stkd's compressed copy of the Los-loop data set (``builtin: los-loop``) from its CSV files.

    python scripts/build_los_loop.py SOURCE_DIR

SOURCE_DIR holds the three published CSV files (``los_speed.csv``, ``los_adj.csv``,
``graph_sensor_locations.csv``) and their licence notices. Each CSV is gzip-compressed byte for byte
(deterministic: no file name or time in the gzip header) into ``src/stkd/data/files/los-loop/``; the
licence notices are copied beside them. ``MANIFEST.json`` records, for every file, the SHA-256 of the
original and of the compressed bytes, and the SHA-256 of the arrays parsed from the original CSVs
(with pandas, independently of stkd's readers): the tests check that the builtin loader returns
exactly these arrays.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

OUT = Path(__file__).resolve().parents[1] / "src" / "stkd" / "data" / "files" / "los-loop"
CSV_FILES = ("los_speed.csv", "los_adj.csv", "graph_sensor_locations.csv")
NOTICES = ("LICENSE-speeds-adjacency", "LICENSE-locations")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def array_digest(a: np.ndarray) -> dict:
    """Shape, dtype and SHA-256 of an array's C-ordered bytes."""
    a = np.ascontiguousarray(a)
    return {"shape": list(a.shape), "dtype": str(a.dtype), "sha256": sha256(a.tobytes())}


def parsed_arrays(src: Path) -> dict:
    """The arrays the CSV files hold, as stkd's contract types them (values and adjacency float32,
    coordinates float64, node ids as strings)."""
    speed = pd.read_csv(src / "los_speed.csv")
    locations = pd.read_csv(src / "graph_sensor_locations.csv")
    adjacency = pd.read_csv(src / "los_adj.csv", header=None).to_numpy(np.float32)
    nodes = [str(c) for c in speed.columns]
    if [str(s) for s in locations["sensor_id"]] != nodes:
        raise SystemExit("graph_sensor_locations.csv does not list the sensors in los_speed.csv's order")
    return {
        "speed": array_digest(speed.to_numpy(np.float32)),  # [T, N]
        "adjacency": array_digest(adjacency),  # [N, N]
        "coords": array_digest(locations[["latitude", "longitude"]].to_numpy(np.float64)),  # [N, 2]
        "nodes": {"count": len(nodes), "sha256": sha256("\n".join(nodes).encode())},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("source_dir", type=Path)
    src = ap.parse_args().source_dir
    OUT.mkdir(parents=True, exist_ok=True)
    files = {}
    for name in CSV_FILES:
        raw = (src / name).read_bytes()
        packed = gzip.compress(raw, compresslevel=9, mtime=0)
        (OUT / f"{name}.gz").write_bytes(packed)
        files[f"{name}.gz"] = {"source": name, "source_sha256": sha256(raw), "sha256": sha256(packed),
                               "source_bytes": len(raw), "bytes": len(packed)}
    for name in NOTICES:
        shutil.copyfile(src / name, OUT / name)
    manifest = {"name": "los-loop", "start": "2012-03-01 00:00", "freq": "5min", "feature": "speed",
                "files": files, "arrays": parsed_arrays(src)}
    (OUT / "MANIFEST.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"wrote {OUT} ({sum(f['bytes'] for f in files.values()) / 1e6:.2f} MB compressed)")


if __name__ == "__main__":
    main()
