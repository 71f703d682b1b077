"""Node-agnostic models (``STModel.node_agnostic``): with the right setting no weight depends on N, so a
model built for one set of sensors loads its weights on another set of a different size and runs there."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stkd.models import MODELS, ModelSpec, build_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")

AGNOSTIC = {"gwnet": {"adaptive": False, "residual_channels": 8, "dilation_channels": 8, "skip_channels": 16,
                      "end_channels": 16},
            "staeformer": {"adaptive_embed": 0, "layers": 1, "ff_dim": 16},
            "stid": {"node_dim": 0, "neighbours": 2},
            "mlp": {"hidden": [16], "neighbours": 1},
            "linear": {}}


def ring(n: int) -> np.ndarray:
    a = np.zeros((n, n), dtype=np.float32)
    for i in range(n):
        a[i, (i + 1) % n] = 1.0
        a[(i + 1) % n, i] = 0.5
    return a


def spec(n: int) -> ModelSpec:
    return ModelSpec(n, 12, 12, 2, 1, steps_per_day=288, adjacency=ring(n))


def test_every_model_states_whether_it_can_be_node_agnostic():
    assert set(AGNOSTIC) == {n for n, c in MODELS.items() if c.node_agnostic_params is not None}
    assert MODELS["agcrn"].node_agnostic_params is None
    for name, params in AGNOSTIC.items():
        assert MODELS[name].node_agnostic(params), name
    assert not MODELS["gwnet"].node_agnostic({})  # the adaptive adjacency is on by default
    assert not MODELS["stid"].node_agnostic({})  # the node embedding too
    assert not MODELS["linear"].node_agnostic({"node_bias": True})


@pytest.mark.parametrize("name", list(AGNOSTIC))
def test_weights_trained_on_one_network_load_on_another_size(name):
    torch.manual_seed(0)
    small, large = build_model(name, spec(7), AGNOSTIC[name]), build_model(name, spec(13), AGNOSTIC[name])
    state = small.state_dict()
    assert large.load_state_dict(state) is not None  # strict: every weight fits, none is missing
    g = torch.Generator().manual_seed(0)
    x, tod, dow = torch.randn(3, 12, 13, 2, generator=g), torch.rand(3, 12, generator=g), torch.zeros(3, 12)
    large.eval()
    out = large(x, tod, dow.long())["pred"]
    assert out.shape == (3, 12, 13, 1) and torch.isfinite(out).all()


@pytest.mark.parametrize("name, params", [("gwnet", {"adaptive": True}), ("stid", {}), ("linear", {"node_bias": True})])
def test_node_dependent_weights_do_not_load_on_another_size(name, params):
    small, large = build_model(name, spec(7), params), build_model(name, spec(13), params)
    with pytest.raises(RuntimeError, match="size mismatch"):
        large.load_state_dict(small.state_dict())
