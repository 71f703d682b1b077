"""Cutting a wide STID down to a narrow one (``distill.init: teacher``): exact at equal size, nearer the
teacher than random weights when smaller, refused with a reason when the student cannot be cut from it."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from stkd.errors import ConfigError
from stkd.models import ModelSpec, build_model
from stkd.models.students import stid_shrink
from stkd.models.students.stid_shrink import check_shrinkable, shrink_stid

N, P, H, F_IN = 9, 12, 6, 2

pytestmark = pytest.mark.usefixtures("one_torch_thread")

WIDE = {"embed_dim": 16, "node_dim": 12, "tod_dim": 8, "dow_dim": 8, "layers": 4, "dropout": 0.0}
NARROW = {"embed_dim": 6, "node_dim": 4, "tod_dim": 3, "dow_dim": 2, "layers": 2, "dropout": 0.0}


def spec(in_features: int = F_IN, adjacency=None) -> ModelSpec:
    return ModelSpec(N, P, H, in_features, 1, steps_per_day=24, adjacency=adjacency)


def batches(count: int = 6, size: int = 16, seed: int = 0, in_features: int = F_IN) -> list:
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(count):
        x = torch.randn(size, P, N, in_features, generator=g)  # [B, P, N, F]
        tod = torch.rand(size, 1, generator=g) + torch.arange(P) / 24.0  # [B, P]
        dow = torch.randint(0, 7, (size, 1), generator=g).expand(-1, P)  # [B, P]
        out.append(SimpleNamespace(x=x, tod=tod % 1.0, dow=dow.long()))
    return out


def trained_like(params: dict, seed: int = 1, **kw):
    """An STID whose weights are not at their initial scale (a trained teacher's are not)."""
    torch.manual_seed(seed)
    model = build_model("stid", spec(**kw), params)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model.eval()


def forecast(model, bs: list) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([model(b.x, b.tod, b.dow)["pred"] for b in bs])  # [B, H, N, 1]


def test_a_student_as_wide_and_deep_as_its_teacher_forecasts_exactly_what_it_does():
    teacher = trained_like(WIDE)
    student = build_model("stid", spec(), WIDE)
    student.load_state_dict(student.shrink_from(teacher, batches()))
    student.eval()
    held_out = batches(seed=7)
    assert torch.allclose(forecast(student, held_out), forecast(teacher, held_out), rtol=1e-4, atol=1e-4)


def fitted_teacher(steps: int = 150, extra=None):
    """A wide STID trained a little to a target its inputs determine (a trained model's weights have the
    structure that cutting keeps; random ones have none); with ``extra`` it reads one channel more
    (:func:`with_extra_channel`) and the target leans on it too."""
    torch.manual_seed(2)
    teacher = build_model("stid", spec(F_IN + (extra is not None)), WIDE)
    opt = torch.optim.Adam(teacher.parameters(), lr=1e-2)
    for i in range(steps):
        b = batches(count=1, seed=100 + i)[0]
        target = (b.x[:, -3:, :, :1].mean(1, keepdim=True) + torch.sin(6.28 * b.tod[:, -1])[:, None, None, None])
        if extra is not None:
            b = with_extra_channel([b], extra)[0]
            target = target + b.x[:, -3:, :, -1:].mean(1, keepdim=True)
        loss = (teacher(b.x, b.tod, b.dow)["pred"] - target.expand(-1, H, -1, -1)).abs().mean()  # [B, H, N, 1]
        opt.zero_grad()
        loss.backward()
        opt.step()
    return teacher.eval()


def test_a_narrow_shallow_student_starts_nearer_its_teacher_than_from_random_weights():
    teacher = fitted_teacher()
    torch.manual_seed(0)
    random_student = build_model("stid", spec(), NARROW).eval()
    cut = build_model("stid", spec(), NARROW)
    cut.load_state_dict(shrink_stid(teacher, cut, batches()))
    cut.eval()
    held_out = batches(seed=7)
    target = forecast(teacher, held_out)
    gap_cut = float((forecast(cut, held_out) - target).abs().mean())
    gap_random = float((forecast(random_student, held_out) - target).abs().mean())
    assert gap_cut < 0.5 * gap_random, (gap_cut, gap_random)


def test_the_same_windows_cut_the_same_weights_and_the_teacher_is_left_as_it_was():
    teacher = trained_like(WIDE)
    teacher.train()
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    one = shrink_stid(teacher, build_model("stid", spec(), NARROW), batches())
    two = shrink_stid(teacher, build_model("stid", spec(), NARROW), batches())
    assert one.keys() == two.keys()
    assert all(torch.equal(one[k], two[k]) for k in one)
    assert teacher.training  # its mode is restored
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items())


def test_a_block_the_student_switches_off_is_left_out_of_its_stream():
    teacher = trained_like(WIDE)
    student = build_model("stid", spec(), {**NARROW, "dow_dim": 0})
    weights = shrink_stid(teacher, student, batches())
    student.load_state_dict(weights)  # strict: every weight of the student and no other
    assert weights["head.weight"].shape == (H, student.hidden_dim)
    assert np.isfinite(forecast(student.eval(), batches(seed=3)).numpy()).all()


def test_a_teacher_s_neighbour_block_is_left_out_of_a_student_that_reads_no_neighbours():
    adjacency = np.roll(np.eye(N, dtype=np.float32), 1, axis=1)
    teacher = trained_like({**WIDE, "neighbours": 1, "neighbour_dim": 10}, adjacency=adjacency)
    student = build_model("stid", spec(adjacency=adjacency), NARROW)
    weights = student.shrink_from(teacher, batches())
    student.load_state_dict(weights)  # strict: the student's blocks only
    assert weights["head.weight"].shape == (H, student.hidden_dim)
    assert np.isfinite(forecast(student.eval(), batches(seed=3)).numpy()).all()


def test_neighbour_windows_are_cut_like_the_other_blocks():
    adjacency = np.roll(np.eye(N, dtype=np.float32), 1, axis=1) + np.roll(np.eye(N, dtype=np.float32), -1, axis=1)
    teacher = trained_like({**WIDE, "neighbours": 1, "neighbour_dim": 10}, adjacency=adjacency)
    same = build_model("stid", spec(adjacency=adjacency), {**WIDE, "neighbours": 1, "neighbour_dim": 10})
    same.load_state_dict(same.shrink_from(teacher, batches()))
    held_out = batches(seed=5)
    assert torch.allclose(forecast(same.eval(), held_out), forecast(teacher, held_out), rtol=1e-4, atol=1e-4)


RING = np.roll(np.eye(N, dtype=np.float32), 1, axis=1)  # a directed ring: one edge out of each sensor, one in


def test_a_student_reading_fewer_neighbours_forecasts_what_the_teacher_does_where_those_are_all_it_reads():
    """On a ring each sensor has one neighbour each way: a teacher's two-neighbour means are the one-neighbour
    means (the second is padding at weight 0), so the fitted block is the teacher's own and the cut exact."""
    teacher = trained_like({**WIDE, "neighbours": 2, "neighbour_dim": 10}, adjacency=RING)
    student = build_model("stid", spec(adjacency=RING), {**WIDE, "neighbours": 1, "neighbour_dim": 10})
    student.load_state_dict(student.shrink_from(teacher, batches()))
    held_out = batches(seed=5)
    assert torch.allclose(forecast(student.eval(), held_out), forecast(teacher, held_out), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("teacher_k, student_k", [(2, 1), (1, 3)])
def test_a_student_reading_other_neighbours_than_its_teacher_starts_from_a_fit_of_its_neighbour_block(teacher_k,
                                                                                                      student_k,
                                                                                                      monkeypatch):
    """Neighbours each way of unequal weight: the student's means differ from the teacher's, and its
    neighbour block is fitted to what the teacher's puts into the stream."""
    rng = np.random.default_rng(0)
    adjacency = RING + 0.5 * np.roll(RING, 1, axis=1) + 0.1 * rng.random((N, N), dtype=np.float32)
    teacher = trained_like({**WIDE, "neighbours": teacher_k, "neighbour_dim": 10}, adjacency=adjacency)
    params = {**WIDE, "neighbours": student_k, "neighbour_dim": 10}
    torch.manual_seed(0)
    random_student = build_model("stid", spec(adjacency=adjacency), params).eval()
    student = build_model("stid", spec(adjacency=adjacency), params)
    student.load_state_dict(student.shrink_from(teacher, batches(count=12)))
    held_out = batches(seed=7)
    target = forecast(teacher, held_out)
    gap_cut = float((forecast(student.eval(), held_out) - target).abs().mean())
    gap_random = float((forecast(random_student, held_out) - target).abs().mean())
    assert gap_cut < 0.5 * gap_random, (gap_cut, gap_random)
    assert not torch.allclose(forecast(student, held_out), target, atol=1e-3)  # the means differ: a fit, not a copy
    # and the fit starts nearer the teacher than the teacher's own neighbour map on the student's other means
    monkeypatch.setattr(stid_shrink, "fitted_blocks", lambda *args: set())
    copied = build_model("stid", spec(adjacency=adjacency), params)
    copied.load_state_dict(shrink_stid(teacher, copied, batches(count=12)))
    assert gap_cut < float((forecast(copied.eval(), held_out) - target).abs().mean())


def with_extra_channel(bs: list, make) -> list:
    """The same windows as a teacher that reads one channel more sees them: ``make(x) [B, P, N, 1]`` appended."""
    return [SimpleNamespace(x=torch.cat([b.x, make(b.x)], dim=-1), tod=b.tod, dow=b.dow) for b in bs]


def noise(x: torch.Tensor) -> torch.Tensor:
    return torch.randn(x.shape[:-1] + (1,), generator=torch.Generator().manual_seed(int(x.abs().sum() * 1e3) % 2**31))


@pytest.mark.parametrize("extra, unused", [
    (noise, True),  # a channel the student lacks, which the teacher does not use: it is left out exactly
    (lambda x: 2 * x[..., :1] - x[..., 1:2], False),  # a channel the student can compute: the fit finds it
])
def test_a_student_as_wide_as_a_teacher_that_reads_more_forecasts_what_it_does_where_its_inputs_tell_all(extra,
                                                                                                         unused):
    teacher = trained_like(WIDE, in_features=F_IN + 1)
    if unused:
        with torch.no_grad():  # the window block reads [P, F + 1] flattened: the extra channel is every (F+1)-th
            teacher.window_emb.weight.view(-1, P, F_IN + 1)[:, :, F_IN] = 0
    student = build_model("stid", spec(), WIDE)
    student_view = batches()
    student.load_state_dict(student.shrink_from(teacher, student_view, with_extra_channel(student_view, extra)))
    held_out = batches(seed=7)
    assert torch.allclose(forecast(student.eval(), held_out), forecast(teacher, with_extra_channel(held_out, extra)),
                          rtol=1e-3, atol=1e-3)


def test_a_narrow_student_of_a_teacher_that_reads_more_starts_nearer_it_than_from_random_weights():
    """The teacher reads a channel the student does not have and leans on it; the fit keeps what the
    student's own channels tell of the teacher's window block."""
    def correlated(x: torch.Tensor) -> torch.Tensor:  # partly the student's channels, partly new
        return x[..., :1] + 0.5 * noise(x)

    teacher = fitted_teacher(extra=correlated)

    torch.manual_seed(0)
    random_student = build_model("stid", spec(), NARROW).eval()
    cut = build_model("stid", spec(), NARROW)
    student_view = batches(count=12)
    cut.load_state_dict(cut.shrink_from(teacher, student_view, with_extra_channel(student_view, correlated)))
    held_out = batches(seed=7)
    target = forecast(teacher, with_extra_channel(held_out, correlated))
    gap_cut = float((forecast(cut.eval(), held_out) - target).abs().mean())
    gap_random = float((forecast(random_student, held_out) - target).abs().mean())
    assert gap_cut < 0.5 * gap_random, (gap_cut, gap_random)
    with pytest.raises(ConfigError, match="in_features = 3, the student for 2"):
        cut.shrink_from(teacher, student_view)  # the same cut without the teacher's view is refused


@pytest.mark.parametrize("student_params, student_spec, message", [
    ({**NARROW, "embed_dim": 32}, {}, "window embedding is 32 wide, the teacher's 16"),
    ({**NARROW, "layers": 5}, {}, "the student has 5 layers, the teacher 4"),
    ({**NARROW, "neighbours": 1}, {"adjacency": np.ones((N, N), dtype=np.float32)},
     "embeds neighbours but the teacher does not"),
    (NARROW, {"in_features": 3}, "in_features = 2, the student for 3"),
])
def test_a_student_that_cannot_be_cut_from_the_teacher_is_refused_with_the_reason(student_params, student_spec,
                                                                                  message):
    teacher = trained_like(WIDE)
    student = build_model("stid", spec(**student_spec), student_params)
    with pytest.raises(ConfigError, match=message):
        check_shrinkable(teacher, student)
    with pytest.raises(ConfigError, match=message):  # before any teacher forward
        student.shrink_from(teacher, [])
    if "in_features" not in message:  # a teacher that reads more is cut on a fit: every other reason holds there too
        with pytest.raises(ConfigError, match=message):
            check_shrinkable(teacher, student, same_inputs=False)
    else:
        check_shrinkable(teacher, student, same_inputs=False)


def test_a_student_of_another_kind_cannot_start_from_a_teacher_s_weights():
    teacher = trained_like(WIDE)
    mlp = build_model("mlp", spec(), {})
    with pytest.raises(ConfigError, match="cannot start from a teacher's weights"):
        mlp.check_shrink_from(teacher)
    student = build_model("stid", spec(), NARROW)
    with pytest.raises(ConfigError, match="only from a teacher of its own kind; the first teacher is a MLP"):
        student.check_shrink_from(mlp)
    with pytest.raises(ConfigError, match="only from a teacher of its own kind; the first teacher is a MLP"):
        student.shrink_from(mlp, [])  # the cut itself refuses it as clearly as the check before training
