"""Models: shapes, a learning step, dense vs sparse graphs, ONNX export of students, registry errors."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from stkd.data.graph import transition_matrices
from stkd.errors import ConfigError, DataError
from stkd.models import (
    MODELS,
    STUDENTS,
    TEACHERS,
    ModelSpec,
    build_model,
    count_params,
    model_defaults,
)
from stkd.models.base import tod_index

N, P, H, F_IN = 7, 12, 12, 2

pytestmark = pytest.mark.usefixtures("one_torch_thread")


NO_DROPOUT = {"gwnet": {"dropout": 0.0}, "staeformer": {"dropout": 0.0}, "stid": {"dropout": 0.0}}


def ring_adjacency(n: int) -> np.ndarray:
    """A weighted ring with a chord: every node has neighbours, weights are not all equal."""
    a = np.zeros((n, n), dtype=np.float32)
    for i in range(n):
        a[i, (i + 1) % n] = 1.0
        a[(i + 1) % n, i] = 0.5
    a[0, n // 2] = 2.0
    return a


def make_spec(out_classes: int = 1, adjacency=None, n: int = N) -> ModelSpec:
    adj = ring_adjacency(n) if adjacency is None else adjacency
    return ModelSpec(n, P, H, F_IN, 1, steps_per_day=288, adjacency=adj, out_classes=out_classes)


def make_batch(b: int = 4, n: int = N, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, P, n, F_IN, generator=g)  # [B, P, N, F]
    tod = torch.rand(b, P, generator=g)  # [B, P]
    dow = torch.randint(0, 7, (b, P), generator=g)  # [B, P]
    return x, tod, dow


@pytest.mark.parametrize("out_classes", [1, 3])
@pytest.mark.parametrize("name", list(MODELS))
def test_output_shapes(name, out_classes):
    torch.manual_seed(0)
    model = build_model(name, make_spec(out_classes), {})
    x, tod, dow = make_batch(3)
    out = model(x, tod, dow)
    assert set(out) == {"pred", "hidden"}
    assert out["pred"].shape == (3, H, N, out_classes)
    assert out["hidden"].shape == (3, N, model.hidden_dim)
    assert torch.isfinite(out["pred"]).all() and torch.isfinite(out["hidden"]).all()


@pytest.mark.parametrize("name", list(MODELS))
def test_gradient_steps_decrease_loss(name):
    torch.manual_seed(0)
    model = build_model(name, make_spec(), NO_DROPOUT.get(name, {}))
    x, tod, dow = make_batch(4)
    y = torch.randn(4, H, N, 1, generator=torch.Generator().manual_seed(1))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)

    def loss_fn():
        return torch.nn.functional.mse_loss(model(x, tod, dow)["pred"], y)

    with torch.no_grad():
        before = loss_fn().item()
    for _ in range(5):
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
        opt.step()
    with torch.no_grad():
        after = loss_fn().item()
    assert np.isfinite(after) and after < before


@pytest.mark.parametrize("name", list(MODELS))
def test_hparams_json_safe_and_rebuild(name):
    spec = make_spec()
    model = build_model(name, spec, {})
    assert set(model.hparams) == set(model_defaults(name))
    again = build_model(name, spec, json.loads(json.dumps(model.hparams)))
    assert again.hparams == model.hparams
    assert count_params(again) == count_params(model)
    again.load_state_dict(model.state_dict())  # same keys and shapes


@pytest.mark.parametrize("params", [{}, {"adaptive": False}])
def test_gwnet_dense_and_sparse_adjacency_agree(params):
    dense = ring_adjacency(N)
    m_dense = build_model("gwnet", make_spec(adjacency=dense), params).eval()
    m_sparse = build_model("gwnet", make_spec(adjacency=sp.csr_matrix(dense)), params).eval()
    assert m_sparse.support_0.is_sparse and not m_dense.support_0.is_sparse
    assert "support_0" not in m_dense.state_dict()  # derived from the spec, not saved
    m_sparse.load_state_dict(m_dense.state_dict())
    x, tod, dow = make_batch(3)
    with torch.no_grad():
        a, b = m_dense(x, tod, dow), m_sparse(x, tod, dow)
    torch.testing.assert_close(a["pred"], b["pred"], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(a["hidden"], b["hidden"], atol=1e-5, rtol=1e-5)


def test_gwnet_sparse_backward_and_graph_matters():
    spec = make_spec(adjacency=sp.csr_matrix(ring_adjacency(N)))
    model = build_model("gwnet", spec, {"adaptive": False, "dropout": 0.0})
    x, tod, dow = make_batch(2)
    model(x, tod, dow)["pred"].sum().backward()
    assert model.start.weight.grad is not None
    # a different graph, same weights -> a different forecast (the graph is used)
    other = build_model("gwnet", make_spec(adjacency=sp.csr_matrix(ring_adjacency(N).T)), {"adaptive": False})
    other.load_state_dict(model.state_dict())
    model.eval(), other.eval()
    with torch.no_grad():
        assert not torch.allclose(model(x, tod, dow)["pred"], other(x, tod, dow)["pred"])


@pytest.mark.parametrize("sparse", [False, True])
def test_diffusion_conv_is_the_papers_concatenate_then_linear_form(sparse):
    """Golden: projection first with Horner's rule computes ``Linear(cat[X, A X, A^2 X, B X, B^2 X, ...])``,
    with the same weights, forwards and backwards (the form the paper writes, and the one saved weights have)."""
    from stkd.models.teachers.gwnet import DiffusionConv

    torch.manual_seed(0)
    a = torch.from_numpy(transition_matrices(sp.csr_matrix(ring_adjacency(N)))[0].toarray())
    adaptive = torch.softmax(torch.randn(N, N), dim=1)
    supports = [a.to_sparse() if sparse else a, adaptive]
    conv = DiffusionConv(5, 6, num_supports=2, order=3, dropout=0.0)
    x = torch.randn(N, 2, 4, 5, requires_grad=True)  # [N, B, T, C_in] (the model's node-major layout)
    terms = [x]
    for s in (a, adaptive):
        h = x
        for _ in range(3):
            h = torch.einsum("nm,mbtc->nbtc", s, h)
            terms.append(h)
    expected = conv.mlp(torch.cat(terms, dim=-1))  # [N, B, T, C_out]
    got = conv(x, supports)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    grad_expected = torch.autograd.grad(expected.square().sum(), [x, conv.mlp.weight])
    grad_got = torch.autograd.grad(got.square().sum(), [x, conv.mlp.weight])
    for g, e in zip(grad_got, grad_expected):
        torch.testing.assert_close(g, e, atol=1e-4, rtol=1e-4)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # bf16 training: same output within bf16 precision
        low = conv(x, supports)
    assert low.dtype == torch.bfloat16
    torch.testing.assert_close(low.float(), expected, atol=0.1, rtol=0.05)


def test_gwnet_dropout_keeps_one_minus_p_scaled_and_is_off_in_eval():
    from stkd.models.teachers.gwnet import _dropout

    torch.manual_seed(0)
    x = torch.ones(200_000)
    out = _dropout(x, 0.3, training=True)
    kept = out != 0
    assert abs(kept.float().mean().item() - 0.7) < 0.005  # each element kept with probability 1 - p
    torch.testing.assert_close(out[kept], torch.full_like(out[kept], 1 / 0.7))  # inverted: the mean is kept
    assert torch.equal(_dropout(x, 0.3, training=False), x) and torch.equal(_dropout(x, 0.0, training=True), x)
    low = _dropout(x.bfloat16(), 0.5, training=True)
    assert low.dtype == torch.bfloat16 and set(low.unique().tolist()) == {0.0, 2.0}


def test_gwnet_multiplies_a_dense_enough_sparse_graph_dense_under_bf16():
    dense = ring_adjacency(N)  # 2-3 nonzeros per row of 7: far above DENSE_UNDER_BF16
    model = build_model("gwnet", make_spec(adjacency=sp.csr_matrix(dense)), {"dropout": 0.0}).eval()
    assert all(a.is_sparse for a in model.supports()[:2])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not any(a.is_sparse for a in model.supports())
        x, tod, dow = make_batch(3)
        low = model(x, tod, dow)["pred"]
    model.DENSE_UNDER_BF16 = 1.1  # never dense: the same forecast through the sparse float32 product
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert all(a.is_sparse for a in model.supports()[:2])
        sparse_low = model(x, tod, dow)["pred"]
    with torch.no_grad():
        full = model(x, tod, dow)["pred"]
    torch.testing.assert_close(low.float(), full, atol=0.15, rtol=0.05)
    torch.testing.assert_close(sparse_low.float(), full, atol=0.15, rtol=0.05)


def test_transition_matrices_rows_sum_to_one():
    a = ring_adjacency(N)
    a[3] = 0.0  # a node without out-edges keeps a zero row
    fwd, bwd = transition_matrices(sp.csr_matrix(a))
    rows = np.asarray(fwd.sum(axis=1)).ravel()
    assert np.allclose(np.delete(rows, 3), 1.0) and rows[3] == 0.0
    assert np.allclose(np.asarray(bwd.sum(axis=1)).ravel(), 1.0)
    assert np.allclose(bwd.toarray(), a.T / a.T.sum(axis=1, keepdims=True))


def test_gwnet_receptive_field_follows_input_len():
    for p in (3, 12, 24):
        spec = ModelSpec(N, p, 4, F_IN, 1, 288, adjacency=ring_adjacency(N))
        model = build_model("gwnet", spec, {})
        assert model.receptive_field >= p
        x = torch.randn(2, p, N, F_IN)
        assert model(x, torch.rand(2, p), torch.zeros(2, p, dtype=torch.long))["pred"].shape == (2, 4, N, 1)
    with pytest.raises(ConfigError, match="receptive field"):
        build_model("gwnet", make_spec(), {"blocks": 1})


def test_gwnet_needs_some_graph():
    spec = ModelSpec(N, P, H, F_IN, 1, 288)
    build_model("gwnet", spec, {})  # adaptive graph only: fine
    with pytest.raises(ConfigError, match="needs a graph"):
        build_model("gwnet", spec, {"adaptive": False})


def test_gwnet_adaptive_off_above_limit(caplog):
    spec = make_spec(adjacency=sp.csr_matrix(ring_adjacency(N)))
    with caplog.at_level("WARNING", logger="stkd.models.teachers.gwnet"):
        model = build_model("gwnet", spec, {"adaptive_max_nodes": 5})
    assert not model.adaptive_active and "switched off" in caplog.text
    assert model.hparams["adaptive"] is True


@pytest.mark.parametrize("name", ["staeformer", "agcrn"])
def test_dense_teachers_refuse_large_graphs_before_allocating(name):
    spec = ModelSpec(1_000_000, P, H, F_IN, 1, 288)  # would be 3.6 TiB per N x N matrix
    with pytest.raises(ConfigError, match="too large.*Try gwnet"):
        build_model(name, spec, {})
    with pytest.raises(ConfigError, match="too large"):
        build_model(name, make_spec(), {"max_nodes": 5})


def test_wrong_input_shape_is_a_clear_error():
    model = build_model("stid", make_spec(), {})
    x, tod, dow = make_batch(2, n=N + 1)
    with pytest.raises(DataError, match="N=7"):
        model(x, tod, dow)


def test_tod_index_is_exact_on_the_grid():
    k = torch.arange(288)
    tod = (k.float() / 288).float()
    assert torch.equal(tod_index(tod, 288), k)
    assert tod_index(torch.tensor([0.99999]), 288).item() == 287


def test_stid_uses_calendar_and_node_identity():
    torch.manual_seed(0)
    model = build_model("stid", make_spec(), {}).eval()
    x, tod, dow = make_batch(1)
    x = x.expand(1, P, N, F_IN).clone()
    x[:] = x[:, :, :1]  # every node sees the same window
    with torch.no_grad():
        out = model(x, tod, dow)["pred"]
        assert not torch.allclose(out[:, :, 0], out[:, :, 1])  # node identity
        assert not torch.allclose(out, model(x, (tod + 0.5) % 1, dow)["pred"])  # time of day
        assert not torch.allclose(out, model(x, tod, (dow + 1) % 7)["pred"])  # day of week


def test_build_model_errors():
    spec = make_spec()
    with pytest.raises(ConfigError, match="unknown model 'gwnt'; did you mean 'gwnet'"):
        build_model("gwnt", spec, {})
    with pytest.raises(ConfigError, match="teachers: gwnet, staeformer, agcrn; students: mlp, stid, linear"):
        build_model("transformer", spec, {})
    with pytest.raises(ConfigError, match=r"params\.hiden; did you mean 'hidden'.*valid: hidden, dropout"):
        build_model("mlp", spec, {"hiden": [32]})
    with pytest.raises(ConfigError, match=r"params\.layers must be int"):
        build_model("stid", spec, {"layers": "two"})
    with pytest.raises(ConfigError, match="heads"):
        build_model("staeformer", spec, {"heads": 3})
    assert set(TEACHERS) | set(STUDENTS) == set(MODELS)


def test_students_are_ten_times_smaller_than_teachers():
    """Product requirement (issue 3): >= 10x fewer parameters at the defaults, Los-loop shape."""
    spec = ModelSpec(207, 12, 12, 1, 1, 288, adjacency=sp.random(207, 207, density=0.04, format="csr", random_state=0))
    teacher = min(count_params(build_model(t, spec, {})) for t in ("gwnet", "staeformer"))
    for s in STUDENTS:
        assert 10 * count_params(build_model(s, spec, {})) <= teacher, s


@pytest.mark.parametrize("name, params", [(s, {}) for s in STUDENTS] + [(s, {"neighbours": 2}) for s in ("stid", "mlp")]
                         + [("mlp", {"neighbours": 2, "node_dim": 4}), ("mlp", {"calendar": 2})])
def test_students_export_to_onnx(name, params, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    model = build_model(name, make_spec(out_classes=3), params).eval()
    path = tmp_path / f"{name}.onnx"
    batch = {"x": {0: "batch"}, "tod": {0: "batch"}, "dow": {0: "batch"}, "pred": {0: "batch"}, "hidden": {0: "batch"}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's DeprecationWarning
        torch.onnx.export(
            model, make_batch(2), str(path), dynamo=False, opset_version=17,
            input_names=["x", "tod", "dow"], output_names=["pred", "hidden"], dynamic_axes=batch,
        )
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = {i.name for i in session.get_inputs()}  # unused inputs (tod, dow of mlp/linear) are dropped
    for b in (1, 5):
        x, tod, dow = make_batch(b, seed=b)
        feed = {k: v.numpy() for k, v in {"x": x, "tod": tod, "dow": dow}.items() if k in names}
        pred, hidden = session.run(["pred", "hidden"], feed)
        with torch.no_grad():
            ref = model(x, tod, dow)
        np.testing.assert_allclose(pred, ref["pred"].numpy(), atol=1e-4)
        np.testing.assert_allclose(hidden, ref["hidden"].numpy(), atol=1e-4)


CLOCK_OFF = {"gwnet": {"time_embedding": False}, "agcrn": {"time_dim": 0},
             "staeformer": {"tod_embed": 0, "dow_embed": 0}, "stid": {"tod_dim": 0, "dow_dim": 0}}


@pytest.mark.parametrize("name", list(CLOCK_OFF))
def test_models_read_the_clock_unless_switched_off(name):
    """Same window, another weekday -> another forecast; with the clock inputs off, the same one."""
    x, tod, dow = make_batch(2)
    other_dow = (dow + 3) % 7
    for params, should_differ in (({**NO_DROPOUT.get(name, {})}, True),
                                  ({**NO_DROPOUT.get(name, {}), **CLOCK_OFF[name]}, False)):
        torch.manual_seed(0)
        model = build_model(name, make_spec(), params).eval()
        with torch.no_grad():
            a, b = model(x, tod, dow)["pred"], model(x, tod, other_dow)["pred"]
        assert (not torch.allclose(a, b)) is should_differ, (name, params)


def test_gwnet_node_identity_tells_sensors_with_equal_readings_apart():
    """Identical inputs at every node and only the adaptive graph (rows sum to 1): without node identity
    every node gets the same forecast; with it (the default) they differ."""
    spec = ModelSpec(N, P, H, F_IN, 1, steps_per_day=288, adjacency=None)
    x, tod, dow = make_batch(2)
    x = x[:, :, :1].expand(-1, -1, N, -1).contiguous()  # [B, P, N, F] the same series at every node
    for identity in (False, True):
        torch.manual_seed(0)
        model = build_model("gwnet", spec, {"dropout": 0.0, "node_identity": identity}).eval()
        with torch.no_grad():
            pred = model(x, tod, dow)["pred"]  # [B, H, N, 1]
        same = torch.allclose(pred, pred[:, :, :1].expand_as(pred), atol=1e-5)
        assert same is not identity


@pytest.mark.parametrize("name", ["stid", "mlp"])
def test_students_read_their_strongest_neighbours_only(name):
    """With ``neighbours: 1`` node 1's output changes when its strongest downstream (2) or upstream (0)
    neighbour changes, and not when a node it has no edge to (4) changes; the buffers are not weights."""
    torch.manual_seed(0)
    a = np.zeros((N, N), dtype=np.float32)
    a[1, 2], a[1, 3] = 3.0, 1.0  # downstream of 1: 2 (strongest), 3
    a[0, 1], a[5, 1] = 2.0, 1.0  # upstream of 1: 0 (strongest), 5
    model = build_model(name, make_spec(adjacency=a), {"neighbours": 1, "dropout": 0.0}).eval()
    assert not any(k.startswith("nbr_") for k in model.state_dict())  # rebuilt from the data, not saved
    x, tod, dow = make_batch(1)
    with torch.no_grad():
        base = model(x, tod, dow)["pred"][:, :, 1]
        for node, matters in ((2, True), (0, True), (3, False), (5, False), (4, False)):
            moved = x.clone()
            moved[:, :, node] += 1.0
            changed = not torch.allclose(model(moved, tod, dow)["pred"][:, :, 1], base)
            assert changed == matters, node


@pytest.mark.parametrize("name", ["stid", "mlp"])
def test_student_neighbours_need_an_adjacency(name):
    spec = ModelSpec(N, P, H, F_IN, 1, steps_per_day=288)
    with pytest.raises(ConfigError, match=f"{name}: params.neighbours=4 reads each sensor's neighbours, but the data has no adjacency"):
        build_model(name, spec, {"neighbours": 4})
    with pytest.raises(ConfigError, match=f"{name}: params.neighbours must be >= 0"):
        build_model(name, make_spec(), {"neighbours": -1})


@pytest.mark.parametrize("name, params", [(n, {}) for n in MODELS] + [("stid", {"neighbours": 2}),
                                                                     ("mlp", {"neighbours": 2})])
def test_reads_other_nodes_says_whether_another_sensors_window_moves_a_forecast(name, params):
    """The class fact the report reads (``reads_other_nodes``) against the model itself: changing one sensor's
    window moves another sensor's forecast exactly when the fact says that the model reads other sensors."""
    torch.manual_seed(0)
    model = build_model(name, make_spec(), params).eval()
    x, tod, dow = make_batch(2)
    moved = x.clone()
    moved[:, :, 1] += 3.0  # sensor 1's window only; sensor 0 is its neighbour on the ring
    with torch.no_grad():
        before, after = (model(v, tod, dow)["pred"][:, :, 0] for v in (x, moved))  # sensor 0's forecast [B, H, C]
    assert (not torch.allclose(before, after)) == model.reads_other_nodes(model.hparams)
    assert model.reads_other_nodes(model.hparams) == (model.role == "teacher" or bool(params))


def test_mlp_without_neighbours_keeps_its_weights_and_forecasts():
    """``neighbours: 0`` (the default) builds the MLP it always was: the same weight shapes, the same
    forecast from the same seed, so runs saved before the option existed load and predict unchanged."""
    torch.manual_seed(0)
    plain = build_model("mlp", make_spec(), {}).eval()
    torch.manual_seed(0)
    off = build_model("mlp", make_spec(adjacency=np.eye(N, dtype=np.float32)), {"neighbours": 0}).eval()
    assert off.around is None and off.body[0].in_features == P * F_IN
    x, tod, dow = make_batch(2)
    with torch.no_grad():
        torch.testing.assert_close(off(x, tod, dow)["pred"], plain(x, tod, dow)["pred"])
    assert not build_model("mlp", make_spec(), {}).needs_adjacency({"neighbours": 0})


def test_mlp_node_identity_tells_sensors_with_equal_windows_apart():
    """Identical windows at every node: the MLP without node identity gives every node the same forecast;
    with ``node_dim`` they differ, and its weights are tied to the sensors (not node-agnostic)."""
    from stkd.models import MODELS

    x, tod, dow = make_batch(2)
    x = x[:, :, :1].expand(-1, -1, N, -1).contiguous()  # [B, P, N, F] the same series at every node
    for node_dim in (0, 8):
        torch.manual_seed(0)
        model = build_model("mlp", make_spec(), {"node_dim": node_dim}).eval()
        with torch.no_grad():
            pred = model(x, tod, dow)["pred"]  # [B, H, N, 1]
        assert torch.allclose(pred, pred[:, :, :1].expand_as(pred), atol=1e-6) is (node_dim == 0)
    assert MODELS["mlp"].node_agnostic({}) and not MODELS["mlp"].node_agnostic({"node_dim": 8})
    with pytest.raises(ConfigError, match="mlp: params.node_dim must be >= 0"):
        build_model("mlp", make_spec(), {"node_dim": -1})


def test_mlp_calendar_tells_times_of_day_and_weekdays_apart_and_only_where_the_spec_allows_weekdays():
    """The same window at another time of day (or weekday): the MLP without ``calendar`` forecasts the same, with
    it another; a spec without the weekday leaves the one-hot out (its width and its forecasts)."""
    x, tod, dow = make_batch(2)
    later = (tod + 0.25) % 1.0  # [B, P] six hours on
    other_day = (dow + 1) % 7  # [B, P]
    for calendar in (0, 3):
        torch.manual_seed(0)
        model = build_model("mlp", make_spec(), {"calendar": calendar}).eval()
        with torch.no_grad():
            pred = model(x, tod, dow)["pred"]  # [B, H, N, 1]
            moved_hour = model(x, later, dow)["pred"]
            moved_day = model(x, tod, other_day)["pred"]
        assert torch.allclose(pred, moved_hour) is (calendar == 0)
        assert torch.allclose(pred, moved_day) is (calendar == 0)
    spec = ModelSpec(N, P, H, F_IN, 1, steps_per_day=288, adjacency=ring_adjacency(N), day_of_week=False)
    no_weekday = build_model("mlp", spec, {"calendar": 3}).eval()
    assert no_weekday.body[0].in_features == P * F_IN + 2 * 3
    with torch.no_grad():
        assert torch.equal(no_weekday(x, tod, dow)["pred"], no_weekday(x, tod, other_day)["pred"])
    with pytest.raises(ConfigError, match="mlp: params.calendar must be >= 0"):
        build_model("mlp", make_spec(), {"calendar": -1})


def test_agcrn_graph_convolution_is_each_nodes_own_chebyshev_filter():
    """Written out per node: out[b, n] = sum_k (T_k(A) x)[b, n] @ W_n[k] + bias_n with W_n = E_n @ pool."""
    from stkd.models.teachers.agcrn import AdaptiveGraphConv

    torch.manual_seed(0)
    b, n, ci, co, k, d = 2, 5, 3, 4, 3, 6
    conv = AdaptiveGraphConv(ci, co, k, d)
    with torch.no_grad():
        conv.bias_pool.normal_()
    emb, x = torch.randn(n, d), torch.randn(b, n, ci)
    graph = torch.softmax(torch.randn(n, n), dim=1)
    got = conv(x, graph, conv.node_params(emb))
    cheb = [torch.eye(n), graph, 2 * graph @ graph - torch.eye(n)]  # T_0, T_1, T_2
    want = torch.empty(b, n, co)
    for bi in range(b):
        for ni in range(n):
            w = torch.einsum("d,dkio->kio", emb[ni], conv.weight_pool)  # [K, Ci, Co]
            want[bi, ni] = sum((cheb[kk] @ x[bi])[ni] @ w[kk] for kk in range(k)) + emb[ni] @ conv.bias_pool
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_facts_about_a_model_come_from_its_class():
    from stkd.deploy.loading import needs_adjacency
    from stkd.models.registry import model_class

    assert all(model_class(n).role == "teacher" for n in TEACHERS)
    assert all(model_class(n).role == "student" for n in STUDENTS)
    assert needs_adjacency({"name": "gwnet", "hparams": {}})
    assert needs_adjacency({"name": "stid", "hparams": {"neighbours": 2}})
    assert not needs_adjacency({"name": "stid", "hparams": {"neighbours": 0}})
    assert needs_adjacency({"name": "mlp", "hparams": {"neighbours": 2}})
    assert not needs_adjacency({"name": "mlp", "hparams": {}})
    assert not needs_adjacency({"name": "agcrn", "hparams": {}})  # learns its own graph
    assert model_class("gwnet").with_legacy_defaults({"dropout": 0.1}) == {
        "time_embedding": False, "node_identity": False, "dropout": 0.1}


def test_a_new_graph_model_is_served_with_its_graph_without_any_list_to_update(monkeypatch):
    """Adding a model is one class plus one registry line: the deploy path asks the class."""
    from stkd.deploy.loading import needs_adjacency
    from stkd.models import registry
    from stkd.models.students.linear import LinearModel

    class GraphLinear(LinearModel):
        role = "teacher"

        @classmethod
        def needs_adjacency(cls, hparams):
            return True

    monkeypatch.setitem(registry.MODELS, "graph_linear", GraphLinear)
    assert needs_adjacency({"name": "graph_linear", "hparams": {}})
