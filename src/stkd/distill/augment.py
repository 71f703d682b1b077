"""Inputs without ground truth for the student to learn from: augmented windows labelled by the teacher.

The labelled windows of a short series are few (Los-loop trains on 1388); the teacher can label inputs
nobody observed. Each augmentation returns ``(x_aug, target)``: the student's input changed, and the
teacher's forecast it should then make. They need no new run of the teacher, only its cached soft labels
of the batch's own windows, so they work with any teacher (a privileged one included):

- ``noise``: ``x + N(0, noise_std^2)`` (scaled units), target the teacher's forecast of the clean window:
  the student learns to forecast through sensor noise (a consistency / denoising target);
- ``mask``: the inputs of a random ``mask_share`` of sensors set to 0 (the training mean after scaling),
  target unchanged: a sensor that drops out must not derail its forecast (the teacher still saw it);
- ``mixup``: ``lam * x_i + (1 - lam) * x_j`` with ``lam ~ Beta(a, a)`` folded to ``>= 0.5`` and ``j`` a
  permutation of the batch, target ``lam * t_i + (1 - lam) * t_j`` (Zhang et al., "mixup: Beyond Empirical
  Risk Minimization", ICLR 2018, here on soft labels); the calendar inputs are window i's.

Pure functions of tensors and a generator: the same generator state gives the same augmentation.
"""

from __future__ import annotations

import numpy as np
import torch

from stkd import names


def augment(kind: str, x: torch.Tensor, teacher: torch.Tensor, generator: torch.Generator, *,
            noise_std: float = 0.1, mask_share: float = 0.15, mixup_alpha: float = 0.4
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x_aug [B, P, N, F], target [B, H, N, F_out])`` for one augmentation ``kind`` (see the module doc).

    ``x`` is the student's (scaled) input, ``teacher`` the teacher's forecast of the same windows.
    """
    t = teacher.detach()
    if kind == "noise":
        noise = torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
        return x + noise_std * noise, t
    if kind == "mask":
        B, _, N, _ = x.shape
        drop = (torch.rand((B, 1, N, 1), generator=generator) < mask_share).to(x.device)  # [B, 1, N, 1]
        return torch.where(drop, torch.zeros((), dtype=x.dtype, device=x.device), x), t
    if kind == "mixup":
        B = x.shape[0]
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
        draw = np.random.default_rng(seed).beta(mixup_alpha, mixup_alpha, size=B) if mixup_alpha > 0 else np.ones(B)
        lam = torch.as_tensor(np.maximum(draw, 1 - draw), dtype=x.dtype).to(x.device)  # window i dominates
        perm = torch.randperm(B, generator=generator).to(x.device)
        lx = lam.view(B, *([1] * (x.dim() - 1)))
        lt = lam.view(B, *([1] * (t.dim() - 1))).to(t.dtype)
        return lx * x + (1 - lx) * x[perm], lt * t + (1 - lt) * t[perm]
    raise ValueError(f"augmentation {kind!r} is not one of {', '.join(names.AUGMENTATIONS)}")
