"""stkd transfer: a tiny simulated source network guides a smaller simulated target with a short history."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import yaml

from stkd import names
from stkd.cli import main
from stkd.config import parse_config
from stkd.data.windows import load_windowed
from stkd.errors import ConfigError
from stkd.transfer.run import parse_histories
from stkd.transfer.source import load_source

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY_GWNET = {"residual_channels": 8, "dilation_channels": 8, "skip_channels": 16, "end_channels": 16}
TINY_STID = {"embed_dim": 8, "node_dim": 4, "tod_dim": 4, "dow_dim": 4}


def sim_config(nodes: int, seed: int, adaptive: bool = False) -> dict:
    """A simulated network of ``nodes`` sensors over 5 days, 15-minute steps, tiny models, few batches."""
    return {"data": {"source": "builtin", "name": "synthetic-traffic",
                     "simulator": {"nodes": nodes, "days": 5, "seed": seed, "freq": "15min"}},
            "teacher": {"name": "gwnet", "params": {**TINY_GWNET, "adaptive": adaptive}},
            "student": {"name": "stid", "params": TINY_STID},
            "train": {"epochs": 2, "batch_size": 32, "max_batches": 2},
            "eval": {"latency_repeats": 1, "baselines": ["last"]}}


@pytest.fixture(scope="module")
def source_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("source")
    cfg = base / "source.yaml"
    cfg.write_text(yaml.safe_dump(sim_config(24, seed=0)))
    out = base / "run"
    assert main(["train", "--config", str(cfg), "--out", str(out), "--quiet"]) == 0
    return out


@pytest.fixture(scope="module")
def transferred(source_run, tmp_path_factory):
    base = tmp_path_factory.mktemp("target")
    cfg = base / "target.yaml"
    cfg.write_text(yaml.safe_dump(sim_config(16, seed=1)))
    out = base / "transfer"
    assert main(["transfer", "--source-run", str(source_run), "--config", str(cfg), "--history", "12h,1d",
                 "--seeds", "0", "1", "--out", str(out), "--quiet"]) == 0
    return cfg, out, json.loads((out / "transfer.json").read_text())


def test_every_route_history_and_seed_is_scored(transferred):
    _, out, result = transferred
    assert result["histories"] == ["12h", "1d"] and result["seeds"] == [0, 1]
    assert result["source"]["nodes"] == 24 and result["target"]["nodes"] == 16
    for h in ("12h", "1d"):
        for seed in ("0", "1"):
            routes = result["runs"][h]["seeds"][seed]["routes"]
            assert set(routes) == set(names.TRANSFER_ROUTES)
            for m in routes.values():
                assert all(math.isfinite(m[k]) for k in ("mae", "rmse", "mape"))
        assert set(result["gains"][h]) == set(names.TRANSFER_ROUTES) - {"target_only"}
        assert all(g["n"] == 2 for g in result["gains"][h].values())
    text = (out / "transfer.md").read_text()
    assert "kd_finetuned" in text and (out / "plots" / "transfer_curve.png").stat().st_size > 1000
    # each distilled route learns from its own teacher: the routes' two teachers make no ensemble row, and no
    # student is measured against one
    models = json.loads((out / "runs" / "12h-seed0" / "metrics.json").read_text())["models"]
    assert {"kd_source", "target_only", "source_zero_shot", "finetuned"} <= set(models)
    assert names.TEACHER_ENSEMBLE not in models and not any("to_teacher" in m for m in models.values())


def test_routes_share_the_test_windows_and_history_shortens_training(transferred):
    _, out, result = transferred
    short, long = result["runs"]["12h"], result["runs"]["1d"]
    assert short["windows"]["test"] == long["windows"]["test"] and short["test_start"] == long["test_start"]
    assert short["windows"]["val"] == long["windows"]["val"]
    # 15-minute steps: 12 h = 48 steps, 1 d = 96 steps of training, each minus one window (24 steps) + 1
    assert short["windows"]["train"] == 48 - 24 + 1 and long["windows"]["train"] == 96 - 24 + 1
    assert short["train_days"] == pytest.approx(0.5) and long["train_days"] == pytest.approx(1.0)
    assert (short["batches_per_epoch"], long["batches_per_epoch"]) == (1, 2)  # batch 32, at most 2 an epoch
    from stkd.transfer.report import schedule_hint, table

    assert schedule_hint(result, None) == ("the histories train on 1 to 2 batches an epoch, so the shorter ones get "
                                           "fewer optimiser steps; train.min_batches: 2 gives each the same")
    assert schedule_hint(result, 2) is None
    assert "| 12h (0.50 d, 25, 1) |" in "\n".join(table(result))
    # every route of a run was scored on the same windows: one truth file, one prediction per route
    preds = out / "runs" / "12h-seed0" / "predictions"
    truth = np.load(preds / "truth.npy")
    assert truth.shape[0] == short["windows"]["test"]
    for route in names.TRANSFER_ROUTES:
        assert np.load(preds / f"{route}.npy").shape == truth.shape


def test_finetuned_teacher_starts_from_the_source_weights(transferred, source_run):
    """Fine-tuning starts from the source weights, scored as epoch 0, and keeps them unless an epoch beats
    them on validation; transfer.json records which, and the fine-tuned card says where they came from."""
    _, out, result = transferred
    from stkd.transfer.report import findings, source_weights_kept

    kept = 0
    for h in ("12h", "1d"):
        for seed in ("0", "1"):
            run = out / "runs" / f"{h}-seed{seed}"
            epoch = result["runs"][h]["seeds"][seed]["finetuned_epoch"]
            assert epoch == json.loads((run / "models" / "finetuned" / "model.json").read_text())["best_epoch"]
            with open(run / "models" / "finetuned" / "log.csv", newline="") as fh:
                val = {int(r["epoch"]): float(r["val_mae"]) for r in csv.DictReader(fh)}
            assert min(val) == 0 and epoch == min(val, key=lambda e: (val[e], e))
            same = np.array_equal(np.load(run / "predictions" / "finetuned.npy"),
                                  np.load(run / "predictions" / "source_zero_shot.npy"))
            assert same == (epoch == 0)  # kept: the fine-tuned teacher forecasts exactly as the source one
            kept += epoch == 0
        count = source_weights_kept(result, h)
        n_kept = sum(result["runs"][h]["seeds"][s]["finetuned_epoch"] == 0 for s in ("0", "1"))
        assert count == (f"{n_kept} of 2 seeds" if n_kept else None)
        line = next(x for x in findings(result) if x.startswith(f"- **{h}**"))
        assert ("kept the source weights" in line) == bool(n_kept)
    fake = {"runs": {"7d": {"seeds": {"0": {"finetuned_epoch": 0}, "1": {"finetuned_epoch": 3},
                                      "2": {"finetuned_epoch": 0}}}}}
    assert source_weights_kept(fake, "7d") == "2 of 3 seeds" and source_weights_kept(fake, "1d") is None
    card = json.loads((out / "runs" / "1d-seed0" / "models" / "finetuned" / "model.json").read_text())
    assert card["source_model"] == "gwnet" and card["spec"]["num_nodes"] == 16
    kd = json.loads((out / "runs" / "1d-seed0" / "models" / "kd_source" / "model.json").read_text())
    assert kd["teacher_route"] == "source_zero_shot"


def test_history_keeps_the_test_split_and_refits_on_the_kept_part():
    raw = sim_config(16, seed=1)
    full = load_windowed(parse_config(raw).data)
    raw["data"]["history"] = "1d"
    short = load_windowed(parse_config(raw).data)
    assert short.num_windows("train") < full.num_windows("train")
    assert short.index[short.ranges["test"][0]] == full.index[full.ranges["test"][0]]
    assert short.num_windows("test") == full.num_windows("test")
    assert short.fingerprint() != full.fingerprint()  # the soft-label cache never mixes two histories
    raw["data"]["history"] = "2h"
    with pytest.raises(ConfigError, match="data.history: 2h is 8 steps"):
        load_windowed(parse_config(raw).data)


def test_a_teacher_with_per_node_weights_transfers_to_its_own_sensors_only(tmp_path, capsys):
    """An adaptive Graph WaveNet (node embeddings) teaches the same sensors' short history; other sensors, or
    the same in another order, are refused naming the parameter that makes a teacher transfer anywhere."""
    raw = sim_config(16, seed=0, adaptive=True)
    cfg = tmp_path / "src.yaml"
    cfg.write_text(yaml.safe_dump(raw))
    assert main(["train", "--config", str(cfg), "--out", str(tmp_path / "src"), "--quiet"]) == 0
    source = load_source(tmp_path / "src")
    assert source.per_node and len(source.node_ids) == 16
    out = tmp_path / "same"
    assert main(["transfer", "--source-run", str(tmp_path / "src"), "--config", str(cfg), "--history", "1d",
                 "--seeds", "0", "--out", str(out), "--quiet"]) == 0
    routes = json.loads((out / "transfer.json").read_text())["runs"]["1d"]["seeds"]["0"]["routes"]
    assert set(routes) == set(names.TRANSFER_ROUTES) and all(math.isfinite(r["mae"]) for r in routes.values())
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump(sim_config(20, seed=1)))
    assert main(["transfer", "--source-run", str(tmp_path / "src"), "--config", str(other),
                 "--out", str(tmp_path / "t"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "transfers only to the sensors it learned" in err and "set params.adaptive: false" in err
    assert not (tmp_path / "t").exists()
    from stkd.transfer.source import check_same_sensors, node_agnostic_fix

    ids = source.node_ids
    check_same_sensors(source, list(ids))
    with pytest.raises(ConfigError, match=r"the target keeps 15 of the source's 16 sensors"):
        check_same_sensors(source, ids[1:])
    with pytest.raises(ConfigError, match=rf"sensor 1 is {ids[1]!r} there, {ids[0]!r} in the source"):
        check_same_sensors(source, [ids[1], ids[0], *ids[2:]])
    with pytest.raises(ConfigError, match=r"1 of the target's 16 sensors are not the source's \(e\.g\. 'elsewhere'\)"):
        check_same_sensors(source, [*ids[:-1], "elsewhere"])
    assert node_agnostic_fix("agcrn").startswith("no setting of agcrn")
    assert node_agnostic_fix("stid") == "set params.node_dim: 0"


def test_history_list_is_checked():
    assert parse_histories("1d, 2d,all") == ["1d", "2d", "all"]
    with pytest.raises(ConfigError, match="--history"):
        parse_histories("1d,1d")
    with pytest.raises(ConfigError, match="not a duration"):
        parse_histories("soon")


def test_finetune_lr_sets_the_finetuned_routes_learning_rate_only(source_run, tmp_path, capsys):
    raw = sim_config(16, seed=1)
    raw["train"]["lr"] = 0.002
    cfg = tmp_path / "target.yaml"
    cfg.write_text(yaml.safe_dump(raw))
    out = tmp_path / "transfer"
    assert main(["transfer", "--source-run", str(source_run), "--config", str(cfg), "--history", "12h",
                 "--seeds", "0", "--finetune-lr", "0.0002", "--out", str(out), "--quiet"]) == 0
    assert json.loads((out / "transfer.json").read_text())["finetune_lr"] == 0.0002

    def first_lr(route: str) -> float:
        with open(out / "runs" / "12h-seed0" / "models" / route / "log.csv", newline="") as fh:
            return float(next(r for r in csv.DictReader(fh) if r["epoch"] == "1")["lr"])

    # the same schedule from a tenth of the rate: every logged rate a tenth of the other routes'
    assert first_lr("finetuned") == pytest.approx(first_lr("target_only") / 10)
    assert first_lr("kd_source") == pytest.approx(first_lr("target_only"))
    with open(out / "runs" / "12h-seed0" / "models" / "finetuned" / "log.csv", newline="") as fh:
        assert next(csv.DictReader(fh))["epoch"] == "0"  # the source weights, scored before fine-tuning
    assert main(["transfer", "--source-run", str(source_run), "--config", str(cfg), "--finetune-lr", "-1",
                 "--out", str(tmp_path / "bad"), "--quiet"]) == 2  # refused before anything is written
    assert "--finetune-lr: must be a finite number > 0, got -1.0" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


def test_students_that_cannot_start_from_the_source_teacher_are_refused_before_anything_trains(source_run, tmp_path,
                                                                                              capsys):
    """``distill.init: teacher`` in a target config: the students would start from the route's teacher, the source's
    Graph WaveNet, which an STID cannot be cut from: refused before the fine-tuned teacher trains."""
    raw = sim_config(16, seed=1)
    raw["teacher"] = {"name": "stid", "params": TINY_STID}  # the target config's own teacher section passes
    raw["distill"] = {"init": "teacher"}
    cfg = tmp_path / "target.yaml"
    cfg.write_text(yaml.safe_dump(raw))
    out = tmp_path / "transfer"
    assert main(["transfer", "--source-run", str(source_run), "--config", str(cfg), "--history", "12h",
                 "--seeds", "0", "--out", str(out), "--quiet"]) == 2
    assert "can start only from a teacher of its own kind; the first teacher is a GWNet" in capsys.readouterr().err
    assert not list(out.rglob("finetuned"))
