"""Inputs without ground truth for the student to learn from: augmented windows labelled by the teacher.

The labelled windows of a short series are few (Los-loop trains on 1388); the teacher can label inputs
nobody observed. Each augmentation gives the student's input changed (:meth:`Draw.inputs`) and the
teacher's forecast it should then make. With cached labels (:meth:`Draw.targets`) they need no new run of
the teacher, only its cached soft labels of the batch's own windows, so they work with any teacher (a
privileged one included):

- ``noise``: ``x + N(0, noise_std^2)`` (scaled units), target the teacher's forecast of the clean window:
  the student learns to forecast through sensor noise (a consistency / denoising target);
- ``mask``: the inputs of a random ``mask_share`` of sensors set to 0 (the training mean after scaling),
  target unchanged: a sensor that drops out must not derail its forecast (the teacher still saw it);
- ``mixup``: ``lam * x_i + (1 - lam) * x_j`` with ``lam ~ Beta(a, a)`` folded to ``>= 0.5`` and ``j`` a
  permutation of the batch, target ``lam * t_i + (1 - lam) * t_j`` (Zhang et al., "mixup: Beyond Empirical
  Risk Minimization", ICLR 2018, here on soft labels); the calendar inputs are window i's;
- ``shift``: a small time shift per sensor: each sensor's inputs delayed by ``0..max_shift`` steps, drawn
  per window and sensor (its readings arriving late, its clock behind the others'), the window's first step
  repeated where the delayed window runs out; target unchanged: the forecast of the same hours from stale
  readings. For a student that reads its neighbours this pairs readings that were never seen together; the
  calendar inputs are the window's own.

Where the targets come from (``distill.augment_labels``):

- ``cached`` (the default): from the cached soft labels of the batch's own windows, as above. No new run of
  the teacher, so it works with any teacher (a privileged one included), but the target is the teacher's
  forecast of the clean window (or, for mixup, the mix of two forecasts), not of the input the student sees;
- ``online``: the teacher forecasts the very input the student sees (each teacher on its own view of the
  window, changed by the same draw): the same function at the same point, "consistent teaching" (Beyer et
  al., "Knowledge distillation: A good teacher is patient and consistent", CVPR 2022). It costs a teacher
  forward per batch. A :class:`Draw` holds one augmentation's random choices, so that the student's input
  and the teacher's are changed alike.

Pure functions of tensors and a generator: the same generator state gives the same augmentation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from stkd import names


@dataclass(frozen=True)
class Draw:
    """The random choices of one augmentation of a batch of ``B`` windows, to apply alike to every view of
    them (the student's window, a teacher's longer or lagged one): Gaussian noise (``noise``, the shape of
    the input it was drawn for), blanked sensors (``drop [B, 1, N, 1]``), a mixup weight and partner per
    window (``lam [B]``, ``perm [B]``), or a delay in steps per window and sensor (``delay [B, 1, N, 1]``).
    A delay moves a view's live channels only (a lagged view's other channels hold readings at least a
    horizon old, long arrived), and a teacher's longer window holds the real earlier readings where the
    student's repeats its first step."""

    kind: str
    noise: torch.Tensor | None = None
    drop: torch.Tensor | None = None
    lam: torch.Tensor | None = None
    perm: torch.Tensor | None = None
    delay: torch.Tensor | None = None

    def inputs(self, x: torch.Tensor, live: int | None = None) -> torch.Tensor:
        """``x [B, L, N, C]`` changed by this draw (any length L and channels C for mask, mixup and shift).
        ``live``: how many leading channels hold the window's own readings (default: all). A lagged view's
        further channels hold readings from at least a horizon earlier, long arrived: a delay leaves them be."""
        if self.noise is not None:
            if self.noise.shape != x.shape:
                raise ValueError(f"noise drawn for inputs of shape {tuple(self.noise.shape)}, not {tuple(x.shape)}")
            return x + self.noise.to(x.dtype)
        if self.drop is not None:
            return torch.where(self.drop, torch.zeros((), dtype=x.dtype, device=x.device), x)
        if self.delay is not None:
            L, C = x.shape[1], x.shape[-1] if live is None else live
            steps = (torch.arange(L, device=x.device).view(1, L, 1, 1) - self.delay).clamp_min(0)  # [B, L, N, 1]
            late = torch.gather(x[..., :C], 1, steps.expand(-1, -1, -1, C))  # step p reads step p - delay
            return late if C == x.shape[-1] else torch.cat([late, x[..., C:]], dim=-1)
        assert self.lam is not None and self.perm is not None
        lx = self.lam.view(-1, *([1] * (x.dim() - 1))).to(x.dtype)
        return lx * x + (1 - lx) * x[self.perm]

    def targets(self, teacher: torch.Tensor) -> torch.Tensor:
        """The target from the teacher's cached forecast ``[B, H, N, F_out]`` of the clean windows: unchanged
        for noise, mask and shift, mixed with the inputs' weight and partner for mixup."""
        t = teacher.detach()
        if self.lam is None:
            return t
        assert self.perm is not None
        lt = self.lam.view(-1, *([1] * (t.dim() - 1))).to(t.dtype)
        return lt * t + (1 - lt) * t[self.perm]


def draw(kind: str, x: torch.Tensor, generator: torch.Generator, *, noise_std: float = 0.1,
         mask_share: float = 0.15, mixup_alpha: float = 0.4, max_shift: int = 2) -> Draw:
    """One augmentation's random choices for the student's input ``x [B, P, N, F]`` (see the module doc)."""
    if kind == "noise":
        noise = torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
        return Draw(kind, noise=noise_std * noise)
    if kind == "mask":
        B, _, N, _ = x.shape
        return Draw(kind, drop=(torch.rand((B, 1, N, 1), generator=generator) < mask_share).to(x.device))
    if kind == "mixup":
        B = x.shape[0]
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
        lam = np.random.default_rng(seed).beta(mixup_alpha, mixup_alpha, size=B) if mixup_alpha > 0 else np.ones(B)
        return Draw(kind, lam=torch.as_tensor(np.maximum(lam, 1 - lam), dtype=x.dtype).to(x.device),  # i dominates
                    perm=torch.randperm(B, generator=generator).to(x.device))
    if kind == "shift":
        B, _, N, _ = x.shape
        return Draw(kind, delay=torch.randint(0, max_shift + 1, (B, 1, N, 1), generator=generator).to(x.device))
    raise ValueError(f"augmentation {kind!r} is not one of {', '.join(names.AUGMENTATIONS)}")
