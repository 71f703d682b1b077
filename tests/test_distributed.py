"""Data-parallel training: 2 gloo processes under torchrun match 1 process (same global batch).

Tolerance: the MLP student has no dropout and no batch norm, so the only difference is the order of
floating-point sums (each rank averages its half of the batch, DDP averages the two): test MAE within
0.1 % relative. Models with dropout or batch norm (the GWNet teacher) differ more, since each rank
draws its own dropout masks and normalises over its own half batch: within 2 % here, and so is the student distilled from it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

CONFIG = """
data:
  source: csv-wide
  path: {path}
  start: "2012-03-01 00:00"
  freq: 5min
  nodes: ["773869", "767541", "767542", "717447", "717446", "717445"]
  time_range: ["2012-03-01", "2012-03-02 23:55"]
  locations: {locations}
  graph: {{method: knn, k: 3}}
teacher: {{name: gwnet, params: {{residual_channels: 8, dilation_channels: 8, skip_channels: 16, end_channels: 16}}}}
student: {{name: mlp}}
train: {{epochs: 2, batch_size: 16, max_batches: 4, seed: 0, threads: 1}}
eval: {{baselines: [last], latency_repeats: 2}}
"""


@pytest.mark.slow
def test_two_processes_match_one(tmp_path, los_loop_dir):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(CONFIG.format(path=los_loop_dir / "los_speed.csv",
                                 locations=los_loop_dir / "graph_sensor_locations.csv"))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    one = subprocess.run([sys.executable, "-m", "stkd", "run", "--config", str(cfg), "--out", str(tmp_path / "one"),
                          "--quiet"], env=env, capture_output=True, text=True, timeout=600)
    assert one.returncode == 0, one.stderr[-3000:]
    # train.workers (the default preset sets 2) is set aside under torchrun, with a note: the ranks share each model
    ddp_cfg = tmp_path / "tiny-workers.yaml"
    ddp_cfg.write_text(cfg.read_text().replace("threads: 1}", "threads: 1, workers: 2}"))
    two = subprocess.run([sys.executable, "-m", "stkd", "run", "--devices", "2", "--config", str(ddp_cfg),
                          "--out", str(tmp_path / "two"), "--quiet"], env=env, capture_output=True, text=True,
                         timeout=600)
    assert two.returncode == 0, two.stderr[-3000:]
    assert two.stderr.count("train.workers 2 is not used under torchrun") == 1  # rank 0 says it, once
    m1 = json.loads((tmp_path / "one" / "metrics.json").read_text())["models"]
    m2 = json.loads((tmp_path / "two" / "metrics.json").read_text())["models"]
    assert set(m1) == set(m2)
    a, b = m1["mlp_plain"]["test"]["mae"], m2["mlp_plain"]["test"]["mae"]
    assert abs(a - b) / a < 1e-3, ("mlp_plain", a, b)
    for name in ("gwnet", "mlp_kd"):  # the distilled student learns from that teacher's soft labels
        a, b = m1[name]["test"]["mae"], m2[name]["test"]["mae"]
        assert abs(a - b) / a < 0.02, (name, a, b)
    # only rank 0 wrote: one log per model, no stray files from rank 1
    log = (tmp_path / "two" / "models" / "mlp_plain" / "log.csv").read_text().splitlines()
    assert len(log) == 1 + 2
    # one soft-label cache: rank 1 held the same teacher (batch-norm statistics synced from rank 0)
    assert len(list((tmp_path / "two" / "cache").glob("*/meta.json"))) == 1


EVENTS = CONFIG.replace("teacher: {{name: gwnet", "task: classify\nteacher: {{name: gwnet") + """
events: {{rule: threshold, target: value, op: "<", value: 60, within: 3}}
"""


@pytest.mark.slow
def test_two_processes_match_one_for_an_event_task(tmp_path, los_loop_dir):
    """``--devices 2`` for ``task: classify``: the teacher's logits cache, both students and the scores
    are written once (rank 0), and the plain MLP student's probabilities match one process."""
    cfg = tmp_path / "events.yaml"
    cfg.write_text(EVENTS.format(path=los_loop_dir / "los_speed.csv",
                                 locations=los_loop_dir / "graph_sensor_locations.csv"))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    runs = {}
    for label, extra in (("one", []), ("two", ["--devices", "2"])):
        r = subprocess.run([sys.executable, "-m", "stkd", "run", *extra, "--config", str(cfg),
                            "--out", str(tmp_path / label), "--quiet"], env=env, capture_output=True, text=True,
                           timeout=600)
        assert r.returncode == 0, r.stderr[-3000:]
        runs[label] = json.loads((tmp_path / label / "metrics.json").read_text())
    m1, m2 = runs["one"]["models"], runs["two"]["models"]
    assert runs["two"]["task"] == "classify" and set(m1) == set(m2)
    for key in ("auroc", "average_precision"):  # threshold-free scores of the plain student
        a, b = m1["mlp_plain"]["test"][key], m2["mlp_plain"]["test"][key]
        assert abs(a - b) < 2e-3, (key, a, b)
    log = (tmp_path / "two" / "models" / "mlp_plain" / "log.csv").read_text().splitlines()
    assert len(log) == 1 + 2
    assert len(list((tmp_path / "two" / "cache").glob("*/meta.json"))) == 1


@pytest.mark.slow
def test_seeds_of_a_distillation_under_two_processes_match_one(tmp_path, los_loop_dir):
    """``torchrun ... stkd distill --seeds``: every rank trains each seed's students, rank 0 alone writes the
    comparison, and each seed's plain MLP matches the one-process run's (within 0.1 %, as above)."""
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(CONFIG.format(path=los_loop_dir / "los_speed.csv",
                                 locations=los_loop_dir / "graph_sensor_locations.csv"))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    teacher = subprocess.run([sys.executable, "-m", "stkd", "train", "--config", str(cfg), "--out",
                              str(tmp_path / "teacher"), "--quiet"], env=env, capture_output=True, text=True, timeout=600)
    assert teacher.returncode == 0, teacher.stderr[-3000:]
    tail = ["-m", "stkd", "distill", "--teacher-run", str(tmp_path / "teacher"), "--seeds", "0", "1", "--quiet"]
    one = subprocess.run([sys.executable, *tail, "--out", str(tmp_path / "one")], env=env, capture_output=True,
                         text=True, timeout=600)
    assert one.returncode == 0, one.stderr[-3000:]
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                          *tail, "--out", str(tmp_path / "two")], env=env, capture_output=True, text=True, timeout=600)
    assert two.returncode == 0, two.stderr[-3000:]
    assert two.stdout.count("# Distillation across seeds") == 1  # printed by rank 0 only
    r1 = json.loads((tmp_path / "one" / "seeds.json").read_text())["records"]
    r2 = json.loads((tmp_path / "two" / "seeds.json").read_text())["records"]
    assert [r["seed"] for r in r2] == [0, 1]
    for a, b in zip(r1, r2):
        assert abs(a["plain_test"] - b["plain_test"]) / a["plain_test"] < 1e-3, (a, b)
    written = sorted(p.name for p in (tmp_path / "two").iterdir() if not p.name.endswith(".lock"))  # run locks
    assert written == ["config.yaml", "seed-0", "seed-1", "seeds.json", "seeds.md"]  # no stray temporary files
