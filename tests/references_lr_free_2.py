"""NumPy float64 references of the learning-rate-free methods: DoG, DoWG (distance over
gradients), COCOB (coin betting), Polyak's step and MoMo (step sizes from the loss).

Written from the papers' update equations (Ivgi et al. 2023; Khaled et al. 2023; Orabona
& Tommasi 2017, Algorithm 2; Loizou et al. 2021; Schaipp et al. 2023, Algorithms 1 and 3).
DoG, DoWG, Polyak and MoMo take norms and inner products over the whole tree: they are
``TreeReference``\\ s, stepping a list of leaves (a single array is a one-leaf tree). The
loss of the step is the keyword ``value``. COCOB is coordinate-wise: a leaf ``Reference``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from tests.references import Reference, TreeReference

# A squared norm at or below this counts as zero: no step (float64's machine epsilon).
TINY = float(np.finfo(np.float64).eps)


def _at(value: Any, t: int) -> float:
    return float(value(t)) if callable(value) else float(value)


def _sq(xs: Sequence[np.ndarray]) -> float:
    return float(sum(np.sum(x * x) for x in xs))


def _dot(xs: Sequence[np.ndarray], ys: Sequence[np.ndarray]) -> float:
    return float(sum(np.sum(x * y) for x, y in zip(xs, ys, strict=True)))


class WholeTree(TreeReference):
    """A reference over the whole tree; ``step`` also takes one array (a one-leaf tree)."""

    def init(self, ps):
        return self.init_tree(list(ps) if isinstance(ps, list) else [ps])

    def step(self, gs, s, ps, **extra):
        if isinstance(gs, list):
            return self.step_tree(gs, s, ps, **extra)
        us, s = self.step_tree([gs], s, [ps], **extra)
        return us[0], s

    def init_tree(self, ps):
        raise NotImplementedError

    def step_tree(self, gs, s, ps, **extra):
        raise NotImplementedError


def _decayed(gs, ps, weight_decay, decay_mask):
    """``g + lambda x`` on the leaves the mask selects (``None``: no decay)."""
    if weight_decay is None:
        return list(gs)
    flags = decay_mask or [True] * len(gs)
    return [g + weight_decay * p if on else g for g, p, on in zip(gs, ps, flags, strict=True)]


class DoG(WholeTree):
    """Ivgi et al. 2023: r_t = max(r_{t-1}, ||x_t - x_0||), G_t = G_{t-1} + ||g_t||^2,
    x_{t+1} = x_t - s_t r_t / sqrt(G_t + eps) g_t. r_0 from init_step: ("distance", r),
    ("heuristic", a) -> a (1 + ||x_0||), ("learning_rate", eta) -> eta for step 1, r_0 = 0."""

    def __init__(
        self,
        learning_rate=1.0,
        init_step=("heuristic", 1e-6),
        eps=1e-8,
        weight_decay=None,
        decay_mask=None,
    ):
        self.lr, (self.kind, self.value), self.eps = learning_rate, init_step, eps
        self.wd, self.mask = weight_decay, decay_mask

    def init_tree(self, ps):
        return {"t": 0, "x0": None, "r": 0.0, "G": 0.0}

    def step_tree(self, gs, s, ps, **extra):
        gs = _decayed(gs, ps, self.wd, self.mask)
        x0, r = s["x0"], s["r"]
        if x0 is None:
            x0 = [p.copy() for p in ps]
            r = {
                "distance": self.value,
                "heuristic": self.value * (1 + np.sqrt(_sq(ps))),
                "learning_rate": 0.0,
            }[self.kind]
        r = max(r, np.sqrt(_sq([p - q for p, q in zip(ps, x0, strict=True)])))
        big_g = s["G"] + _sq(gs)
        eta = r / np.sqrt(big_g + self.eps)
        if self.kind == "learning_rate" and s["t"] == 0:
            eta = self.value
        step = _at(self.lr, s["t"]) * eta
        return [-step * g for g in gs], {"t": s["t"] + 1, "x0": x0, "r": r, "G": big_g}


class DoWG(WholeTree):
    """Khaled et al. 2023: r_t^2 = max(r_{t-1}^2, ||x_t - x_0||^2), v_t = v_{t-1} +
    r_t^2 ||g_t||^2, x_{t+1} = x_t - s_t r_t^2 / (sqrt(v_t) + eps) g_t, r_0^2 given or eps."""

    def __init__(
        self,
        learning_rate=1.0,
        init_estim_sq_dist=None,
        eps=1e-4,
        weight_decay=None,
        decay_mask=None,
    ):
        self.lr, self.eps = learning_rate, eps
        self.r0 = eps if init_estim_sq_dist is None else init_estim_sq_dist
        self.wd, self.mask = weight_decay, decay_mask

    def init_tree(self, ps):
        return {"t": 0, "x0": None, "r2": self.r0, "v": 0.0}

    def step_tree(self, gs, s, ps, **extra):
        gs = _decayed(gs, ps, self.wd, self.mask)
        x0 = [p.copy() for p in ps] if s["x0"] is None else s["x0"]
        r2 = max(s["r2"], _sq([p - q for p, q in zip(ps, x0, strict=True)]))
        v = s["v"] + r2 * _sq(gs)
        step = _at(self.lr, s["t"]) * r2 / (np.sqrt(v) + self.eps)
        return [-step * g for g in gs], {"t": s["t"] + 1, "x0": x0, "r2": r2, "v": v}


class COCOB(Reference):
    """Orabona & Tommasi 2017, Algorithm 2 (COCOB-Backprop), per coordinate, on the
    gradient s_t (g_t + lambda x_t): L = max(L, |g|), G += |g|, Reward = max(Reward -
    g (x - x_0), 0), theta -= g, x_{t+1} = x_0 + theta / (L max(G + L, alpha L)) (L + Reward)."""

    def __init__(self, learning_rate=1.0, alpha=100.0, eps=1e-8, weight_decay=0.0):
        self.lr, self.alpha, self.eps, self.wd = learning_rate, alpha, eps, weight_decay

    def init(self, p):
        z = np.zeros_like(p)
        return {"t": 0, "x0": None, "theta": z, "L": np.full_like(p, self.eps), "G": z, "R": z}

    def step(self, g, s, p):
        g = _at(self.lr, s["t"]) * (g + self.wd * p)
        x0 = p.copy() if s["x0"] is None else s["x0"]
        big_l = np.maximum(s["L"], np.abs(g))
        big_g = s["G"] + np.abs(g)
        reward = np.maximum(s["R"] - g * (p - x0), 0.0)
        theta = s["theta"] - g
        x_next = x0 + theta / (big_l * np.maximum(big_g + big_l, self.alpha * big_l)) * (
            big_l + reward
        )
        state = {"t": s["t"] + 1, "x0": x0, "theta": theta, "L": big_l, "G": big_g, "R": reward}
        return x_next - p, state


class Polyak(WholeTree):
    """Loizou et al. 2021 (SPS_max), as optax chains it: u = -s_t g, gamma = min(gap /
    (||u||^2 + eps), max_learning_rate), gap = f - f_min ("sps") or its positive part
    ("sps+", Garrigos et al. 2023); no step when ||u||^2 + eps <= TINY. x_{t+1} = x_t +
    gamma u."""

    def __init__(self, max_learning_rate=1.0, scaling=1.0, f_min=0.0, eps=0.0, variant="sps"):
        self.cap, self.s, self.f_min, self.eps = max_learning_rate, scaling, f_min, eps
        self.plus = variant == "sps+"

    def init_tree(self, ps):
        return {"t": 0}

    def step_tree(self, gs, s, ps, *, value, **extra):
        us = [-_at(self.s, s["t"]) * g for g in gs]
        gap = value - self.f_min
        if self.plus:
            gap = max(gap, 0.0)
        den = _sq(us) + self.eps
        gamma = 0.0 if den <= TINY else min(gap / den, self.cap)
        return [gamma * u for u in us], {"t": s["t"] + 1}


class _MomoBase(WholeTree):
    """The step shared by MoMo and MoMo-Adam: the model's step size tau, the lower bound."""

    def __init__(self, learning_rate, lower_bound, weight_decay, adapt_lower_bound):
        self.lr, self.floor, self.wd, self.adapt = (
            learning_rate,
            lower_bound,
            weight_decay,
            adapt_lower_bound,
        )

    def after(self, state, count):
        """The state as after ``count`` updates that left every average at zero."""
        return {**state, "t": count}

    def _tau(self, alpha, barf, gamma, iprod, norm, lb, rho):
        """(tau, next lb) from Schaipp et al. 2023 (rho = 1 for MoMo, 1 - b1^t for Adam)."""
        c = 1 + alpha * self.wd
        if self.adapt:
            cap = c * (barf - gamma) + iprod
            if cap < c * rho * lb:
                lb = max(cap / (2 * rho * c), self.floor)
        h = 0.0 if norm <= TINY else max(c * (barf - rho * lb - gamma) + iprod, 0.0) / norm
        tau = min(alpha / rho, h)
        if self.adapt:
            lb = max((barf + iprod - gamma - tau * norm / 2) / rho, self.floor)
        return tau, lb


class Momo(_MomoBase):
    """Schaipp et al. 2023, Algorithm 1 (MoMo) with weight decay: averages with weight
    b = 0 at the first step (beta after) of f, g and <g, x>; tau = min(alpha, max(c (f_bar -
    lb - gamma) + <d, x>, 0) / ||d||^2), c = 1 + alpha lambda; x_{t+1} = x_t / c - tau d."""

    def __init__(
        self,
        learning_rate=1.0,
        beta=0.9,
        lower_bound=0.0,
        weight_decay=0.0,
        adapt_lower_bound=False,
    ):
        super().__init__(learning_rate, lower_bound, weight_decay, adapt_lower_bound)
        self.beta = beta

    def init_tree(self, ps):
        return {"t": 0, "d": [np.zeros_like(p) for p in ps], "f": 0.0, "gx": 0.0, "lb": self.floor}

    def step_tree(self, gs, s, ps, *, value, **extra):
        t = s["t"]
        b = 0.0 if t == 0 else self.beta
        alpha = _at(self.lr, t)
        barf = b * s["f"] + (1 - b) * value
        d = [b * di + (1 - b) * g for di, g in zip(s["d"], gs, strict=True)]
        gamma = b * s["gx"] + (1 - b) * _dot(gs, ps)
        tau, lb = self._tau(alpha, barf, gamma, _dot(d, ps), _sq(d), s["lb"], 1.0)
        shrink = alpha * self.wd / (1 + alpha * self.wd)
        us = [-shrink * p - tau * di for di, p in zip(d, ps, strict=True)]
        return us, {"t": t + 1, "d": d, "f": barf, "gx": gamma, "lb": lb}


class MomoAdam(_MomoBase):
    """Schaipp et al. 2023, Algorithm 3 (MoMo-Adam): Adam's moments m, v, D = eps +
    sqrt(v / (1 - b2^t)), rho = 1 - b1^t; tau = min(alpha / rho, max(c (f_bar - rho lb -
    gamma) + <m, x>, 0) / <m, m / D>); x_{t+1} = x_t / c - tau m / D."""

    def __init__(
        self,
        learning_rate=1e-2,
        b1=0.9,
        b2=0.999,
        eps=1e-8,
        lower_bound=0.0,
        weight_decay=0.0,
        adapt_lower_bound=False,
    ):
        super().__init__(learning_rate, lower_bound, weight_decay, adapt_lower_bound)
        self.b1, self.b2, self.eps = b1, b2, eps

    def init_tree(self, ps):
        z = [np.zeros_like(p) for p in ps]
        return {"t": 0, "m": z, "v": list(z), "f": 0.0, "gx": 0.0, "lb": self.floor}

    def step_tree(self, gs, s, ps, *, value, **extra):
        t = s["t"] + 1
        b1, b2 = self.b1, self.b2
        alpha = _at(self.lr, t - 1)
        barf = b1 * s["f"] + (1 - b1) * value
        m = [b1 * mi + (1 - b1) * g for mi, g in zip(s["m"], gs, strict=True)]
        v = [b2 * vi + (1 - b2) * g * g for vi, g in zip(s["v"], gs, strict=True)]
        direction = [
            mi / (self.eps + np.sqrt(vi / (1 - b2**t))) for mi, vi in zip(m, v, strict=True)
        ]
        gamma = b1 * s["gx"] + (1 - b1) * _dot(gs, ps)
        tau, lb = self._tau(alpha, barf, gamma, _dot(m, ps), _dot(m, direction), s["lb"], 1 - b1**t)
        shrink = alpha * self.wd / (1 + alpha * self.wd)
        us = [-shrink * p - tau * di for di, p in zip(direction, ps, strict=True)]
        return us, {"t": t, "m": m, "v": v, "f": barf, "gx": gamma, "lb": lb}


def negated_tree(reference: Callable[..., WholeTree], **fixed: Any) -> Callable[..., Any]:
    """The reference of a ``scale_by_*`` primitive that returns ``+eta g`` (DoG, DoWG,
    Polyak's step): the optimizer's reference at learning rate 1, negated."""
    return lambda n, **kw: _NegatedTree(reference(**fixed, **kw))


class _NegatedTree(WholeTree):
    def __init__(self, inner: WholeTree):
        self.inner = inner

    def init_tree(self, ps):
        return self.inner.init_tree(ps)

    def step_tree(self, gs, s, ps, **extra):
        us, s = self.inner.step_tree(gs, s, ps, **extra)
        return [-u for u in us], s
