"""Cut a trained wide STID down to a narrow one: the distilled student's starting weights
(``distill.init: teacher``).

Why: a small STID trained from random weights spends its whole schedule finding what the wide teacher
already holds; soft labels change its targets, not where it starts. Starting from the teacher's weights,
cut to the student's size, is how DistilBERT (Sanh et al. 2019: one layer in two) and Minitron (Muralidharan
et al. 2024: width pruning by activation, then distillation) build their students. What it did on the
Auckland counts and on Los-loop, paired by seed: docs/benchmarks.md, the evidence rows "started from the
teacher".

How, for an STID (embeddings concatenated into a residual stream ``h``, residual MLP layers
``h + fc2(relu(fc1(h)))``, a linear head):

- **Stream directions.** Each embedding block (window, neighbours, node, tod, dow) of the teacher is
  ``d_t`` wide, the student's ``d_s <= d_t``. Over training windows the teacher's block outputs ``e``
  have a second moment ``E[e e^T]``; its top ``d_s`` eigenvectors ``U`` (``[d_t, d_s]``, orthonormal)
  keep most of what the block puts into the stream. The student's block is the teacher's projected on
  them (a linear block ``W -> U^T W``, a table ``E -> E U``), so the student's stream is ``P^T h`` with
  ``P`` the block-diagonal of the ``U`` (``P^T P = I``).
- **Layers.** The teacher's layers are split into as many consecutive groups as the student has layers;
  a group's updates are summed as if they ran side by side (each update is small against the stream it
  adds to). Of its hidden units the student keeps the ``d_s`` that carry most: the mean of
  ``relu(fc1(h))`` on the teacher's own stream times the norm of the unit's output ``P^T fc2[:, j]``.
  Student ``fc1 = W1[kept] P``, ``fc2 = P^T W2[:, kept]``, ``fc2.bias = P^T sum(b2)``.
- **Head.** ``W_head P``.
- **A teacher that reads more.** A privileged teacher (``inputs`` with more lags, a longer history, other
  covariates) embeds a window the student does not have. Its linear blocks (window, neighbours) are then
  fitted on what the student reads: over the same training windows, seen by each as it reads them, the
  least-squares map from the student's block input to the teacher's block output (``E[e | x_s]``, the part
  of the teacher's block the student can compute), and cut like a block of the same inputs. Where the two
  read the same, the fit is the teacher's own map, so this is the cut above.
- **Other neighbours.** A student that reads another number of neighbours each way than the teacher
  (``params.neighbours``) embeds other mean windows of its neighbours; its neighbour block is fitted the same
  way, on the teacher's neighbour block (a teacher that reads no neighbours has no such block to start from).

With the student as wide and deep as the teacher this is exact (``P`` is a rotation, every unit is
kept): the student then forecasts what the teacher does (``tests/models/test_stid_shrink.py``).
Everything else is an approximation that training then corrects.
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np
import torch
from torch import nn

from stkd.errors import ConfigError

#: The blocks that map the window linearly (``block_inputs``), cut from a fit where the teacher reads more.
_LINEAR = ("window", "neighbours")


def _widths(model: Any) -> dict[str, int]:
    """The width of each embedding block a model has switched on (``BLOCKS``: STID's blocks in order)."""
    out = {}
    for name, attr in model.BLOCKS.items():
        mod = getattr(model, attr, None)  # an STID has a block's module only while the block is switched on
        if mod is None:
            continue
        out[name] = int(mod.shape[1] if isinstance(mod, nn.Parameter) else
                        mod.out_features if isinstance(mod, nn.Linear) else mod.embedding_dim)
    return out


def check_shrinkable(teacher: Any, student: Any, *, same_inputs: bool = True) -> None:
    """Raise ConfigError, saying what differs, unless ``student``'s weights can be cut from ``teacher``'s:
    the same class and problem (nodes, horizon; the same inputs too unless ``same_inputs`` is False, a
    teacher that reads more: the module's docstring), every block the student has in the teacher at least as
    wide (the neighbour block too, however many neighbours each reads), and no more layers than the teacher."""
    where = "distill.init: teacher"
    if type(teacher) is not type(student):
        raise ConfigError(f"{where}: the student ({type(student).__name__}) can start only from a teacher of its own "
                          f"kind; the first teacher is a {type(teacher).__name__}")
    ts, ss = teacher.spec, student.spec
    fields = ("num_nodes", "horizon", "out_features", "out_classes", "steps_per_day")
    for field in (("input_len", "in_features") if same_inputs else ()) + fields:
        if getattr(ts, field) != getattr(ss, field):
            raise ConfigError(f"{where}: the teacher was built for {field} = {getattr(ts, field)}, the student for "
                              f"{getattr(ss, field)}: a student starts from a teacher that reads what it reads and "
                              "forecasts what it forecasts (the same inputs, nodes and task)")
    tw, sw = _widths(teacher), _widths(student)
    for name, width in sw.items():  # a teacher's block the student does not have is left out, as any block
        if name not in tw:
            raise ConfigError(f"{where}: the student embeds {name} but the teacher does not: nothing to start from"
                              + (" (params.neighbours: 0 on the first teacher)" if name == "neighbours" else ""))
        if width > tw[name]:
            raise ConfigError(f"{where}: the student's {name} embedding is {width} wide, the teacher's {tw[name]}: a "
                              "student starts from a teacher at least as wide")
    if len(student.encoder) > len(teacher.encoder):
        raise ConfigError(f"{where}: the student has {len(student.encoder)} layers, the teacher "
                          f"{len(teacher.encoder)}: a student starts from a teacher at least as deep")


def fitted_blocks(teacher: Any, student: Any, privileged: bool) -> set[str]:
    """The linear blocks whose student weights are fitted rather than cut: every one where the teacher reads
    more (``privileged``), else the neighbour block where the two read other numbers of neighbours."""
    if privileged:
        return set(_LINEAR)
    t_nb, s_nb = teacher.hparams.get("neighbours", 0), student.hparams.get("neighbours", 0)
    return {"neighbours"} if t_nb and s_nb and t_nb != s_nb else set()


def _add_fit(fits: dict[str, list[torch.Tensor]], name: str, z: torch.Tensor, e: torch.Tensor) -> None:
    """Add a batch's rows to block ``name``'s least-squares sums: its input as the student reads it ``z [B, N, k]``
    (with a column of ones for the bias) against the teacher's block output ``e [B, N, d_t]``."""
    flat = z.reshape(-1, z.shape[-1]).double()  # [B*N, k]
    flat = torch.cat([flat, flat.new_ones(flat.shape[0], 1)], dim=1)  # [B*N, k + 1]
    target = e.reshape(-1, e.shape[-1]).double()  # [B*N, d_t]
    sums = fits.setdefault(name, [flat.new_zeros(flat.shape[1], flat.shape[1]), flat.new_zeros(flat.shape[1],
                                                                                              target.shape[1])])
    sums[0] += flat.T @ flat
    sums[1] += flat.T @ target


def _least_squares(gram: torch.Tensor, cross: torch.Tensor) -> torch.Tensor:
    """``[k + 1, d]``: the coefficients minimising ``|Z C - E|^2`` from ``Z^T Z`` and ``Z^T E``, with a ridge of
    1e-8 of the mean diagonal so that an input constant over the windows (or a copy of another) gives the
    smallest coefficients, not a singular solve."""
    ridge = 1e-8 * gram.diagonal().mean().clamp_min(1e-12)
    return torch.linalg.solve(gram + ridge * torch.eye(gram.shape[0], dtype=gram.dtype, device=gram.device), cross)


def _top_eigenvectors(second_moment: torch.Tensor, k: int) -> torch.Tensor:
    """``[d, k]``: the eigenvectors of the ``k`` largest eigenvalues, largest first (a sign fixed so that
    each one's largest entry is positive: the same moments give the same vectors)."""
    _, vecs = torch.linalg.eigh(second_moment)  # ascending
    top = vecs[:, vecs.shape[1] - k:].flip(1) if k else vecs[:, :0]  # [d, k]
    sign = torch.sign(top.gather(0, top.abs().argmax(0, keepdim=True)))  # [1, k]
    return top * torch.where(sign == 0, 1.0, sign)


@torch.no_grad()
def shrink_stid(teacher: Any, student: Any, batches: Iterable[Any],
                teacher_batches: Iterable[Any] | None = None) -> dict[str, torch.Tensor]:
    """The student's state dict cut from the teacher's (see the module's docstring); ``batches`` hold
    training windows (``x``, ``tod``, ``dow``) as the student reads them, ``teacher_batches`` the same
    windows as the teacher reads them where it reads more (None: as the student does)."""
    privileged = teacher_batches is not None
    check_shrinkable(teacher, student, same_inputs=not privileged)
    fitted = fitted_blocks(teacher, student, privileged)
    was_training = teacher.training
    teacher.eval()
    tw, sw = _widths(teacher), _widths(student)
    t_layers = list(teacher.encoder)
    device = next(teacher.parameters()).device  # the sums stay where the teacher runs (a GPU, or the CPU)
    moments = {name: torch.zeros(w, w, dtype=torch.float64, device=device) for name, w in tw.items()}
    unit_mean = [torch.zeros(layer.fc1.out_features, dtype=torch.float64, device=device) for layer in t_layers]
    fits: dict[str, list[torch.Tensor]] = {}  # a fitted linear block: [Z^T Z, Z^T E] over the rows
    rows = 0
    pairs = ((b, b) for b in batches) if teacher_batches is None else zip(batches, teacher_batches)
    for b, tb in pairs:
        parts = teacher.embedding_parts(tb.x.to(device), tb.tod.to(device), tb.dow.to(device))  # [(name, [B, N, d_t])]
        for name, e in parts:
            flat = e.reshape(-1, e.shape[-1]).double()  # [B*N, d_t]
            moments[name] += flat.T @ flat
        if fitted:
            out = dict(parts)
            for name, z in student.block_inputs(b.x):
                if name in out and name in fitted:
                    _add_fit(fits, name, z.to(device), out[name])
        h = torch.cat([e for _, e in parts], dim=-1)  # [B, N, D_t]
        rows += h.shape[0] * h.shape[1]
        for i, layer in enumerate(t_layers):
            unit_mean[i] += torch.relu(layer.fc1(h)).reshape(-1, layer.fc1.out_features).double().sum(0)
            h = layer(h)  # eval mode: no dropout
    if rows == 0:
        raise ConfigError("distill.init: teacher needs training windows to measure the teacher on; there are none")
    dt = torch.get_default_dtype()
    maps = {}  # a fitted block's map from the student's block input: (weight [d_t, k], bias [d_t])
    for name, (gram, cross) in fits.items():
        coef = _least_squares(gram, cross)  # [k + 1, d_t]
        moments[name] = coef.T @ gram @ coef  # the second moment of the fitted block output, over the same rows
        maps[name] = (coef[:-1].T.to(dt), coef[-1].to(dt))
    # the stream's directions: one orthonormal basis per block, block-diagonal over the teacher's stream
    bases = {name: _top_eigenvectors(moments[name] / rows, sw.get(name, 0)).to(dt) for name in tw}
    P = torch.block_diag(*[bases[name] for name in tw])  # [D_t, D_s]
    state = {k: v.clone() for k, v in student.state_dict().items()}
    tsd = teacher.state_dict()
    for name, attr in student.BLOCKS.items():
        if name not in sw:
            continue
        U = bases[name]  # [d_t, d_s]
        if name in _LINEAR:  # Linear(in -> d): rows are the block's directions
            weight, bias = maps.get(name, (tsd[f"{attr}.weight"], tsd[f"{attr}.bias"]))
            state[f"{attr}.weight"] = U.T @ weight
            state[f"{attr}.bias"] = U.T @ bias
        elif name == "node":  # [N, d]
            state[attr] = tsd[attr] @ U
        else:  # Embedding [slots, d]
            state[f"{attr}.weight"] = tsd[f"{attr}.weight"] @ U
    groups = np.array_split(np.arange(len(t_layers)), len(student.encoder)) if len(student.encoder) else []
    for j, group in enumerate(groups):
        w1 = torch.cat([t_layers[i].fc1.weight for i in group])  # [G*D_t, D_t]
        b1 = torch.cat([t_layers[i].fc1.bias for i in group])  # [G*D_t]
        w2 = torch.cat([t_layers[i].fc2.weight for i in group], dim=1)  # [D_t, G*D_t]
        b2 = sum(t_layers[i].fc2.bias for i in group)  # [D_t]
        reach = (P.T @ w2).norm(dim=0).double()  # [G*D_t] how much each unit moves the student's stream
        weight = torch.cat([unit_mean[i] for i in group]) / rows * reach  # [G*D_t]
        width = student.encoder[j].fc1.out_features
        kept = torch.sort(torch.topk(weight, width).indices).values  # [D_s] in the teacher's order
        state[f"encoder.{j}.fc1.weight"] = w1[kept] @ P
        state[f"encoder.{j}.fc1.bias"] = b1[kept].clone()
        state[f"encoder.{j}.fc2.weight"] = P.T @ w2[:, kept]
        state[f"encoder.{j}.fc2.bias"] = P.T @ b2
    state["head.weight"] = tsd["head.weight"] @ P
    state["head.bias"] = tsd["head.bias"].clone()
    teacher.train(was_training)
    return {k: v.detach().cpu().contiguous() for k, v in state.items()}  # load_state_dict moves them to the student
