"""Tests of checkpoints: safetensors + JSON only, exact round trips of the resumable state, and no
unpickling anywhere in the package."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

import stkd
from stkd.checkpoint import (
    load_model,
    load_weights,
    read_model_card,
    save_model,
    save_weights,
)
from stkd.errors import STKDError
from stkd.models.base import ModelSpec
from stkd.models.registry import build_model
from stkd.train import load_last, make_scheduler, save_last

pytestmark = pytest.mark.usefixtures("one_torch_thread")


SPEC = ModelSpec(num_nodes=5, input_len=6, horizon=3, in_features=2, out_features=1, steps_per_day=24)


def _stid():
    torch.manual_seed(0)
    return build_model("stid", SPEC, {"embed_dim": 8, "node_dim": 4, "tod_dim": 4, "dow_dim": 4, "dropout": 0.1})


def _inputs(B=4):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(B, 6, 5, 2, generator=g)
    tod = torch.rand(B, 6, generator=g)
    dow = torch.randint(0, 7, (B, 6), generator=g)
    return x, tod, dow


def _step(model, opt, sched):
    model.train()
    loss = model(*_inputs())["pred"].square().mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    sched.step()


def test_save_model_and_load_model_round_trip(tmp_path):
    model = _stid()
    save_model(tmp_path, model, "stid", SPEC, "student_kd", {"val_mae": 1.5})
    assert {p.name for p in tmp_path.iterdir()} == {"model.safetensors", "model.json"}
    card = read_model_card(tmp_path)
    assert (card["name"], card["role"], card["val_mae"]) == ("stid", "student_kd", 1.5)
    loaded, _ = load_model(tmp_path)
    assert not loaded.training
    for k, v in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v)
    model.eval()
    torch.testing.assert_close(loaded(*_inputs())["pred"], model(*_inputs())["pred"], rtol=0, atol=0)


def test_load_model_refuses_weights_of_another_shape(tmp_path):
    save_model(tmp_path, _stid(), "stid", SPEC, "student_plain")
    card = read_model_card(tmp_path)
    card["hparams"]["embed_dim"] = 16
    from stkd.io import write_json

    write_json(tmp_path / "model.json", card)
    with pytest.raises((STKDError, RuntimeError), match="embed|size|match"):
        load_model(tmp_path)


def test_missing_checkpoint_files_are_clear_errors(tmp_path):
    with pytest.raises(STKDError, match="model.json"):
        read_model_card(tmp_path)
    with pytest.raises(STKDError, match="does not exist"):
        load_weights(tmp_path / "nope.safetensors")


def test_weights_files_are_safetensors(tmp_path):
    save_weights(tmp_path / "w.safetensors", {"a": torch.arange(3.0), "b": torch.ones(2, 2, dtype=torch.uint8)})
    raw = (tmp_path / "w.safetensors").read_bytes()
    header_len = int.from_bytes(raw[:8], "little")
    assert raw[8:9] == b"{" and header_len < len(raw)  # a JSON header, not a pickle (which starts 0x80)
    out = load_weights(tmp_path / "w.safetensors")
    assert torch.equal(out["a"], torch.arange(3.0)) and out["b"].dtype == torch.uint8
    assert not list(tmp_path.glob(".*tmp*"))  # the atomic write left no temporary behind


@pytest.mark.parametrize("kind", ["cosine", "step", "none"])
def test_last_checkpoint_round_trip_restores_weights_optimizer_scheduler_and_rng(tmp_path, kind):
    model = _stid()
    proj = torch.nn.Linear(3, 2)  # an extra module (like a hint projection)
    params = list(model.parameters()) + list(proj.parameters())
    opt = torch.optim.AdamW(params, lr=1e-2, weight_decay=1e-4)
    sched = make_scheduler(opt, kind, epochs=7)
    for _ in range(3):
        _step(model, opt, sched)
    gen = torch.Generator().manual_seed(5)
    torch.randperm(10, generator=gen)
    save_last(tmp_path, {"model": model, "projection": proj}, opt, sched, gen, {"epoch": 2, "note": "x"})
    assert {p.name for p in tmp_path.iterdir()} == {"last.safetensors", "last.json"}
    sched_state = sched.state_dict()
    expect_rand, expect_gen = torch.rand(4), torch.randperm(10, generator=gen)
    _step(model, opt, sched)  # the continuation to reproduce
    expect_state = {k: v.clone() for k, v in model.state_dict().items()}
    expect_lr = opt.param_groups[0]["lr"]

    model2, proj2 = _stid(), torch.nn.Linear(3, 2)
    torch.manual_seed(123)
    with torch.no_grad():
        for p in model2.parameters():
            p.add_(1.0)
    opt2 = torch.optim.AdamW(list(model2.parameters()) + list(proj2.parameters()), lr=1e-2, weight_decay=1e-4)
    sched2 = make_scheduler(opt2, kind, epochs=7)
    gen2 = torch.Generator().manual_seed(0)
    info = load_last(tmp_path, {"model": model2, "projection": proj2}, opt2, sched2, gen2)
    assert info["epoch"] == 2 and info["note"] == "x"
    assert torch.equal(proj2.weight, proj.weight)
    assert torch.equal(torch.rand(4), expect_rand)
    assert torch.equal(torch.randperm(10, generator=gen2), expect_gen)
    assert sched2.state_dict() == sched_state
    _step(model2, opt2, sched2)
    for k, v in model2.state_dict().items():
        assert torch.equal(v, expect_state[k]), k
    assert opt2.param_groups[0]["lr"] == expect_lr


PICKLE_CALL = re.compile(r"\b(torch\.load|pickle\.loads?|np\.load|numpy\.load|dill\.|joblib\.load)\s*\(")


def test_nothing_in_the_package_unpickles():
    """torch.load only with weights_only=True, np.load only with allow_pickle=False, no pickle.load."""
    root = Path(stkd.__file__).parent
    offenders = []
    for path in sorted(root.rglob("*.py")):
        text = path.read_text()
        for m in PICKLE_CALL.finditer(text):
            depth, end = 1, m.end()
            while depth and end < len(text):  # the call's text, up to its matching parenthesis
                depth += {"(": 1, ")": -1}.get(text[end], 0)
                end += 1
            call = text[m.start():end]
            name = m.group(1)
            ok = ((name == "torch.load" and "weights_only=True" in call)
                  or (name in ("np.load", "numpy.load") and "allow_pickle=False" in call))
            if not ok:
                offenders.append(f"{path.relative_to(root)}: {call[:80]}")
        assert "allow_pickle=True" not in text, path
    assert not offenders, offenders


def test_npy_helpers_refuse_object_arrays(tmp_path):
    from stkd.io import read_npy, write_npy

    write_npy(tmp_path / "a.npy", np.arange(4, dtype=np.float32))
    assert read_npy(tmp_path / "a.npy").tolist() == [0, 1, 2, 3]
    np.save(tmp_path / "o.npy", np.array([{"x": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError):
        read_npy(tmp_path / "o.npy")


def test_a_card_saved_before_the_clock_inputs_existed_loads_as_the_old_model(tmp_path):
    """gwnet cards written before ``time_embedding`` / ``node_identity`` lack them: they load with both off
    (the weights they hold), not with today's defaults (which would not match the weights)."""
    import json

    adj = np.eye(5, k=1, dtype=np.float32) + np.eye(5, k=-1, dtype=np.float32)
    spec = ModelSpec(num_nodes=5, input_len=12, horizon=3, in_features=1, out_features=1, steps_per_day=24,
                     adjacency=adj)
    torch.manual_seed(0)
    old = build_model("gwnet", spec, {"time_embedding": False, "node_identity": False, "dropout": 0.0}).eval()
    save_model(tmp_path, old, "gwnet", spec, "teacher")
    card = json.loads((tmp_path / "model.json").read_text())
    for key in ("time_embedding", "node_identity"):
        card["hparams"].pop(key)
    (tmp_path / "model.json").write_text(json.dumps(card))
    loaded, _ = load_model(tmp_path, adjacency=adj)
    assert loaded.time_emb is None and loaded.node_proj is None
    x = torch.randn(2, 12, 5, 1)
    tod, dow = torch.rand(2, 12), torch.randint(0, 7, (2, 12))
    with torch.no_grad():
        assert torch.equal(loaded(x, tod, dow)["pred"], old(x, tod, dow)["pred"])
