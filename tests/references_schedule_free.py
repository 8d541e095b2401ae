"""NumPy references for Schedule-Free learning (Defazio et al., 2024, "The Road Less
Scheduled"), written from the paper's equations, in float64, one array at a time.

The three sequences are kept explicitly: ``z`` (the base optimizer's iterate), ``x`` (the
weighted average of the ``z``) and ``y = (1 - b1) z + b1 x``, where the gradients are taken
(the params). ``step`` returns ``y_{t+1} - y_t``; ``eval_params`` returns ``x``.
"""

from __future__ import annotations

import numpy as np

from tests.references import Reference


def _rate(learning_rate, t):
    return float(learning_rate(t)) if callable(learning_rate) else float(learning_rate)


def warmup_rate(learning_rate, warmup_steps, t):
    """``gamma_t min(t, W) / W`` (``gamma_t`` for no warmup); a schedule is evaluated at ``t``."""
    if warmup_steps:
        return _rate(learning_rate, t) * min(t, warmup_steps) / warmup_steps
    return _rate(learning_rate, t)


class ScheduleFree(Reference):
    """Schedule-Free over a base optimizer's reference (Defazio et al. 2024, Algorithm 1):

    z_{t+1} = z_t + d_t   (d_t: the base optimizer's step for the gradient at y_t)
    c_{t+1} = w_t / sum_{i<=t} w_i,   w_t = t**r * max_{i<=t}(gamma_i)**p
    x_{t+1} = (1 - c_{t+1}) x_t + c_{t+1} z_{t+1}
    y_{t+1} = (1 - b1) z_{t+1} + b1 x_{t+1}

    ``gamma_t = learning_rate(t)`` for a schedule (``t`` from 1).
    """

    def __init__(self, base, learning_rate, b1=0.9, weight_lr_power=2.0, r=0.0):
        self.base, self.lr, self.b1, self.p, self.r = base, learning_rate, b1, weight_lr_power, r

    def gamma(self, t):
        return _rate(self.lr, t)

    def init(self, p):
        return {
            "x": p.copy(),
            "z": p.copy(),
            "t": 0,
            "sum": 0.0,
            "max": 0.0,
            "base": self.base.init(p),
        }

    def step(self, g, s, p):
        t = s["t"] + 1
        gmax = max(s["max"], self.gamma(t))
        w = t**self.r * gmax**self.p
        total = s["sum"] + w
        c = w / total if total > 0 else 0.0
        d, base = self.base.step(g, s["base"], p)  # the gradient and the weights at y
        z = s["z"] + d
        x = (1 - c) * s["x"] + c * z
        y = x + (1 - self.b1) * (z - x)  # (1 - b1) z + b1 x, exactly x when z = x
        return y - p, {"x": x, "z": z, "t": t, "sum": total, "max": gmax, "base": base}

    @staticmethod
    def eval_params(s):
        return s["x"]


class _WarmupBase(Reference):
    """A base step with the learning rate of optax's (``gamma min(t - 1, W) / W``: its
    count starts at 0) or the paper's warmup (``gamma min(t, W) / W``)."""

    def __init__(self, learning_rate, warmup_steps, paper_warmup):
        self.lr, self.warmup, self.paper = learning_rate, warmup_steps, paper_warmup

    def rate(self, t):
        return warmup_rate(self.lr, self.warmup, t if self.paper and self.warmup else t - 1)


class _SgdDirection(_WarmupBase):
    """d_t = -gamma_t (g + lambda y)."""

    def __init__(self, learning_rate, warmup_steps, paper_warmup, weight_decay):
        super().__init__(learning_rate, warmup_steps, paper_warmup)
        self.wd = weight_decay or 0.0

    def init(self, p):
        return {"t": 0}

    def step(self, g, s, p):
        t = s["t"] + 1
        return -self.rate(t) * (g + self.wd * p), {"t": t}


class _AdamWDirection(_WarmupBase):
    """Adam without momentum: v = b2 v + (1 - b2) g^2; d_t = -gamma_t (g / (sqrt(v / (1 -
    b2^t)) + eps) + lambda y)."""

    def __init__(self, learning_rate, warmup_steps, paper_warmup, b2, eps, weight_decay):
        super().__init__(learning_rate, warmup_steps, paper_warmup)
        self.b2, self.eps, self.wd = b2, eps, weight_decay

    def init(self, p):
        return {"v": np.zeros_like(p), "t": 0}

    def step(self, g, s, p):
        t = s["t"] + 1
        v = self.b2 * s["v"] + (1 - self.b2) * g * g
        direction = g / (np.sqrt(v / (1 - self.b2**t)) + self.eps) + self.wd * p
        return -self.rate(t) * direction, {"v": v, "t": t}


class ScheduleFreeSGD(ScheduleFree):
    """Schedule-Free SGD: the base step is -gamma_t (g + lambda y)."""

    def __init__(
        self,
        learning_rate=1.0,
        warmup_steps=None,
        b1=0.9,
        weight_decay=None,
        weight_lr_power=2.0,
        *,
        r=0.0,
        paper_warmup=False,
    ):
        base = _SgdDirection(learning_rate, warmup_steps, paper_warmup, weight_decay)
        super().__init__(base, learning_rate, b1, weight_lr_power, r)
        self.warmup = warmup_steps

    def gamma(self, t):
        return warmup_rate(self.lr, self.warmup, t)


class ScheduleFreeAdamW(ScheduleFree):
    """Schedule-Free AdamW: the base step is Adam's without momentum, decay at y."""

    def __init__(
        self,
        learning_rate=0.0025,
        warmup_steps=None,
        b1=0.9,
        b2=0.999,
        eps=1e-8,
        weight_decay=0.0,
        weight_lr_power=2.0,
        *,
        r=0.0,
        paper_warmup=False,
    ):
        base = _AdamWDirection(learning_rate, warmup_steps, paper_warmup, b2, eps, weight_decay)
        super().__init__(base, learning_rate, b1, weight_lr_power, r)
        self.warmup = warmup_steps

    def gamma(self, t):
        return warmup_rate(self.lr, self.warmup, t)
