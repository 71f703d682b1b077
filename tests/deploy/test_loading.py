"""Loading untrusted deploy files (issue 17): TorchScript only when trusted, exported files checked
against their recorded SHA-256, ONNX external data kept inside its folder, and one clear line naming
the file for a damaged weights file, model card, data summary, export spec or statistics cache."""

from __future__ import annotations

import hashlib
import json
import warnings

import numpy as np
import pytest
import torch

import stkd
from stkd.cli import main
from stkd.deploy.export import export_model
from stkd.deploy.serve import create_app
from stkd.errors import STKDError


class WritesAFile(torch.nn.Module):
    """A crafted TorchScript model: its forward creates ``marker`` (``torch.from_file`` with shared=True)."""

    def __init__(self, marker: str) -> None:
        super().__init__()
        self.marker = marker

    def forward(self, x: torch.Tensor, tod: torch.Tensor, dow: torch.Tensor) -> torch.Tensor:
        t = torch.from_file(self.marker, shared=True, size=8)
        return x + t.sum() * 0


def rehash(folder, name: str) -> None:
    """Record the current SHA-256 of ``name`` in deploy.json, as an attacker who edits both would."""
    spec = json.loads((folder / "deploy.json").read_text())
    spec.setdefault("files", {})[name] = hashlib.sha256((folder / name).read_bytes()).hexdigest()
    (folder / "deploy.json").write_text(json.dumps(spec))


@pytest.fixture
def evil_export(run_dir, tmp_path):
    """A TorchScript export whose model.pt was replaced by :class:`WritesAFile` (hash updated to match)."""
    out = run_dir / "ts"
    export_model(run_dir, "torchscript", out, windows=4)
    marker = tmp_path / "marker"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.script(WritesAFile(str(marker))).save(str(out / "model.pt"))
    rehash(out, "model.pt")
    return out, marker


def test_torchscript_does_not_load_without_trust(evil_export, prepared):
    """The crafted model.pt created its marker file through stkd.load(X).predict and stkd serve X."""
    out, marker = evil_export
    data, wd = prepared
    with pytest.raises(STKDError, match="model.pt is TorchScript, which is code.*trust_code=True"):
        stkd.load(out).predict(data.values[:12], data.index[:12])
    with pytest.raises(STKDError, match="--trust-code"):
        create_app(out, "torch", state_path=False)
    assert main(["serve", str(out), "--port", "0"]) == 2
    assert not marker.exists()
    # the module really is hostile: trusted, it runs, and the file appears
    with pytest.raises(STKDError, match="model output has shape"):
        stkd.load(out, trust_code=True).predict(data.values[:12], data.index[:12])
    assert marker.exists()


def test_a_changed_export_file_is_refused(run_dir, prepared):
    data, wd = prepared
    out = run_dir / "onnx"
    export_model(run_dir, "onnx", out, windows=4)
    good = (out / "model.onnx").read_bytes()
    (out / "model.onnx").write_bytes(good[:-1] + bytes([good[-1] ^ 1]))  # one bit
    with pytest.raises(STKDError, match="model.onnx: its SHA-256 differs from the one recorded in deploy.json"):
        stkd.load(out)
    (out / "model.onnx").write_bytes(good)
    seasonal = np.load(out / "seasonal_means.npy")
    np.save(out / "seasonal_means.npy", seasonal + 1)
    with pytest.raises(STKDError, match="seasonal_means.npy: its SHA-256 differs"):
        stkd.load(out)
    np.save(out / "seasonal_means.npy", seasonal)
    assert stkd.load(out).backend.name == "onnx"
    # a TorchScript file changed after export is refused even when trusted
    ts = run_dir / "ts"
    export_model(run_dir, "torchscript", ts, windows=4)
    (ts / "model.pt").write_bytes((ts / "model.pt").read_bytes() + b"\0")
    with pytest.raises(STKDError, match="model.pt: its SHA-256 differs"):
        stkd.load(ts, trust_code=True)


def test_onnx_external_data_outside_the_folder_is_refused(run_dir, prepared):
    """An ONNX tensor may read its bytes from another file; one pointing at ../ reads whatever is there."""
    import onnx

    data, wd = prepared
    out = run_dir / "onnx"
    export_model(run_dir, "onnx", out, windows=4)
    proto = onnx.load(str(out / "model.onnx"))
    tensor = max(proto.graph.initializer, key=lambda t: len(t.raw_data))
    (run_dir / "outside.bin").write_bytes(tensor.raw_data)  # where the attacker points the tensor
    n = len(tensor.raw_data)
    tensor.ClearField("raw_data")
    tensor.data_location = onnx.TensorProto.EXTERNAL
    for key, value in (("location", "../outside.bin"), ("offset", "0"), ("length", str(n))):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(out / "model.onnx"))
    rehash(out, "model.onnx")
    with pytest.raises(STKDError, match=r"reads its data from '\.\./outside\.bin', outside the model's folder"):
        stkd.load(out)


@pytest.mark.parametrize("damage", ["truncated", "not_safetensors"])
def test_damaged_weights_are_one_line(run_dir, tmp_path, capsys, damage):
    weights = run_dir / "models" / "stid_kd" / "model.safetensors"
    raw = weights.read_bytes()
    weights.write_bytes(raw[: len(raw) // 2] if damage == "truncated" else b"\x80\x04\x95 a pickle, not tensors")
    with pytest.raises(STKDError, match="model.safetensors: not a readable safetensors file.*re-train"):
        stkd.load(run_dir)
    for argv in (["export", str(run_dir), "--out", str(tmp_path / "e")],
                 ["predict", str(run_dir), "--input", str(run_dir / "config.yaml"), "--out", str(tmp_path / "p.csv")],
                 ["serve", str(run_dir), "--port", "0"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "model.safetensors: not a readable safetensors file" in err, err
    assert stkd.load(run_dir, "stid_plain").name == "stid_plain"  # the other models still load


@pytest.mark.parametrize("target", ["models/stid_kd/model.json", "data.json"])
def test_bad_json_names_the_file(run_dir, target):
    (run_dir / target).write_text('{"name": "stid", ')
    with pytest.raises(STKDError, match=f"{target}: not valid JSON"):
        stkd.load(run_dir)


def test_bad_json_in_an_export_spec_names_the_file(run_dir):
    out = run_dir / "onnx"
    export_model(run_dir, "onnx", out, windows=4)
    spec = (out / "deploy.json").read_text()
    (out / "deploy.json").write_text(spec[: len(spec) // 2])
    with pytest.raises(STKDError, match="deploy.json: not valid JSON.*re-export"):
        stkd.load(out)
    d = json.loads(spec)
    d["nodes"] = 5  # valid JSON, wrong type
    (out / "deploy.json").write_text(json.dumps(d))
    with pytest.raises(STKDError, match="deploy.json: .*re-export"):
        stkd.load(out)


def test_a_corrupt_statistics_cache_is_rebuilt_with_a_warning(run_dir):
    want = stkd.load(run_dir).spec.train_means  # writes the cache
    cache = run_dir / "deploy" / "stats.npz"
    cache.write_bytes(cache.read_bytes()[:100])  # a truncated zip
    with pytest.warns(UserWarning, match="stats.npz is unreadable.*rebuilding it"):
        p = stkd.load(run_dir)
    np.testing.assert_array_equal(p.spec.train_means, want)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # rebuilt: no warning the next time
        stkd.load(run_dir)
