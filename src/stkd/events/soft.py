"""A forecasting teacher's forecasts turned into event probabilities (soft targets for an event student).

Users often have a forecaster already; its forecast of the target says how likely the label rule is
to fire. With ``events.teacher_kind: forecast`` the forecast ``f`` (original units) of horizon step h
is read as the mean of a Gaussian whose standard deviation is the teacher's validation RMSE at that
step, ``sigma_h`` (``forecast_prob: gaussian``). Then, with ``Phi`` the standard normal CDF:

- threshold ``target < value`` (or ``<=``): ``P(event at h) = Phi((value - f_h) / sigma_h)``;
  ``>`` / ``>=``: ``P(event at h) = Phi((f_h - value) / sigma_h)``.
- bands with edges ``e_0 < ... < e_{K-2}``: ``P(class <= k at h) = Phi((e_k - f_h) / sigma_h)`` and
  ``P(class k) = P(class <= k) - P(class <= k-1)``.
- ``within: k`` (the worst class over steps h .. h+k-1): the forecast errors of neighbouring steps are
  strongly correlated, so the steps are taken as comonotone: ``P(worst <= c) = min_j P(class_j <= c)``
  over the look-ahead steps the forecast covers (steps past the forecast horizon H use those up to H).
  For a threshold that is ``P(event) = max_j P(event at j)``, a lower bound of the probability.

The probabilities are clipped to ``[1e-6, 1]`` and their logarithms used as the teacher's logits in
``T^2 * KL(softmax(t / T) || softmax(s / T))`` (``softmax(log p) = p``).
"""

from __future__ import annotations

import numpy as np
import torch

from stkd.config import EventsConfig

EPS = 1e-6


def _phi(z: torch.Tensor) -> torch.Tensor:
    """Standard normal CDF."""
    return 0.5 * (1.0 + torch.erf(z / np.sqrt(2.0)))


def horizon_sigma(cache, wd, feature: int = 0, split: str = "val", batch_size: int = 256) -> np.ndarray:
    """Per-horizon RMSE ``[H]`` of a forecast cache against the observed truth of ``split`` (original units).

    A step with no observed truth gets the RMSE pooled over all steps; a zero RMSE is floored at 1e-6.
    """
    H = wd.H
    sq, n = np.zeros(H), np.zeros(H)
    for b in wd.iterate(split, batch_size):
        f = cache.pred(split, b.start.cpu().numpy())[..., feature].double()  # (B, H, N)
        y, m = b.y[..., feature].double(), b.mask[..., feature]
        err = torch.where(m, (f - y) ** 2, torch.zeros((), dtype=torch.float64))
        sq += err.sum(dim=(0, 2)).numpy()
        n += m.sum(dim=(0, 2)).numpy()
    pooled = np.sqrt(sq.sum() / n.sum()) if n.sum() > 0 else 1.0
    sigma = np.where(n > 0, np.sqrt(sq / np.maximum(n, 1)), pooled)
    return np.maximum(sigma, 1e-6)


def class_cdf(forecast: torch.Tensor, sigma: torch.Tensor, e: EventsConfig) -> torch.Tensor:
    """``P(class <= c)`` per step for c = 0..K-2: ``[..., H, N, K-1]`` from forecasts ``[..., H, N]``.

    For a threshold rule class 1 is the event, so ``P(class <= 0) = P(no event)``.
    """
    z_sigma = sigma.to(forecast).reshape(-1, 1)  # (H, 1)
    if e.rule == "threshold":
        assert e.value is not None  # the config check requires a value for a threshold rule
        p_event = _phi((e.value - forecast) / z_sigma) if e.op in ("<", "<=") else \
            _phi((forecast - e.value) / z_sigma)
        return (1.0 - p_event).unsqueeze(-1)
    edges = torch.as_tensor(e.edges, dtype=forecast.dtype, device=forecast.device)  # (K-1,)
    return _phi((edges - forecast.unsqueeze(-1)) / z_sigma.unsqueeze(-1))


def event_probabilities(forecast: torch.Tensor, sigma, e: EventsConfig) -> torch.Tensor:
    """Event class probabilities ``[B, H, N, K]`` from forecasts ``[B, H, N]`` (original units).

    ``sigma``: ``[H]`` the forecast's error scale per horizon step (the validation RMSE). See the module
    docstring for the formulas. Rows sum to 1.
    """
    sigma = torch.as_tensor(np.asarray(sigma), dtype=forecast.dtype, device=forecast.device)
    cdf = class_cdf(forecast, sigma, e)  # (B, H, N, K-1)
    k = max(1, int(e.within))
    if k > 1:
        H = cdf.shape[1]
        out = cdf.clone()
        for j in range(1, k):  # comonotone steps: P(worst <= c) = min over the look-ahead
            if j >= H:
                break
            out[:, : H - j] = torch.minimum(out[:, : H - j], cdf[:, j:])
        cdf = out
    ones = torch.ones_like(cdf[..., :1])
    zeros = torch.zeros_like(cdf[..., :1])
    # monotone in c (edges increase), but clamp away float noise before differencing
    cdf = torch.cummax(cdf, dim=-1).values
    probs = torch.diff(torch.cat([zeros, cdf, ones], dim=-1), dim=-1)  # (B, H, N, K)
    return probs.clamp_min(0.0) / probs.clamp_min(0.0).sum(-1, keepdim=True).clamp_min(1e-12)


def probabilities_to_logits(probs: torch.Tensor) -> torch.Tensor:
    """``log(clip(p, 1e-6, 1))``: logits whose softmax gives back ``p`` (up to the clip)."""
    return probs.clamp(EPS, 1.0).log()
