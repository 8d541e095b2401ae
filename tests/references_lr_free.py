"""NumPy float64 references for the learning-rate-free optimizers, from the papers' equations.

Each method estimates one distance ``d`` from sums over the whole tree, so the references
are ``TreeReference``\\ s: ``init(ps)`` and ``step(gs, state, ps)`` take the list of leaves.
Given a single array instead of a list, they treat it as a tree of one leaf (the
convergence runs of the sweep pass one array).

The estimates are written in the papers' notation (weights ``eta_k d_k**2`` in Prodigy,
``x_0 - s`` as the dual iterate of D-Adapt SGD), not in the implementations' scaled forms.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from tests.references import TreeReference


def _lr(learning_rate: Any, k: int) -> float:
    return float(learning_rate(k)) if callable(learning_rate) else float(learning_rate)


class _Tree(TreeReference):
    """A tree reference that also takes a single array (a tree of one leaf)."""

    def init(self, ps):
        if isinstance(ps, np.ndarray):
            return self.init_tree([ps])
        return self.init_tree(list(ps))

    def step(self, gs, s, ps, **extra):
        if isinstance(ps, np.ndarray):
            us, s = self.step_tree([gs], s, [ps])
            return us[0], s
        return self.step_tree(list(gs), s, list(ps))

    def after(self, state, count):
        """The state as after ``count`` updates that left every sum at zero (the zero
        state of the implementation with its step counter set to ``count``): no initial
        point is captured any more, and the implementation's is zero."""
        state = {**state, "k": count}
        if "x0" in state and self.zero_x0:
            state["x0"] = [np.zeros_like(s) for s in state["m" if "m" in state else "v"]]
        return state

    zero_x0 = False

    def init_tree(self, ps):
        raise NotImplementedError

    def step_tree(self, gs, s, ps):
        raise NotImplementedError


def _dot(xs, ys) -> float:
    return float(sum(np.sum(x * y) for x, y in zip(xs, ys, strict=True)))


def _l1(xs) -> float:
    return float(sum(np.sum(np.abs(x)) for x in xs))


def _adam_factor(b1: float, b2: float, t: int, on: bool) -> float:
    return math.sqrt(1 - b2**t) / (1 - b1**t) if on else 1.0


class Prodigy(_Tree):
    """Mishchenko & Defazio 2023, Algorithm 4 (Prodigy, Adam form) with AdamW's decay.

    With ``lambda_k = eta_k * bias_k``::

        m = b1 m + (1 - b1) d_k g;  v = b2 v + (1 - b2) d_k^2 g^2
        r = b3 r + eta_k d_k^2 <g, x0 - x_k>        (times bias_k, as the step)
        s = b3 s + eta_k d_k^2 g                    (safeguard: d_k^2 g)
        d_{k+1} = max(d_k, coef * r / |s|_1)
        x_{k+1} = x_k - wd d_k lambda_k x_k - d_k lambda_k m / (sqrt(v) + d_{k+1} eps)
    """

    def __init__(
        self,
        learning_rate=1.0,
        betas=(0.9, 0.999),
        beta3=None,
        eps=1e-8,
        estim_lr0=1e-6,
        estim_lr_coef=1.0,
        weight_decay=0.0,
        safeguard_warmup=False,
        use_bias_correction=True,
    ):
        self.lr, (self.b1, self.b2) = learning_rate, betas
        self.b3 = math.sqrt(self.b2) if beta3 is None else beta3
        self.eps, self.d0, self.coef, self.wd = eps, estim_lr0, estim_lr_coef, weight_decay
        self.safeguard, self.bias = safeguard_warmup, use_bias_correction

    zero_x0 = True

    def init_tree(self, ps):
        zeros = [np.zeros_like(p) for p in ps]
        return {"m": zeros, "v": zeros, "s": zeros, "x0": None, "r": 0.0, "d": self.d0, "k": 0}

    def step_tree(self, gs, st, ps):
        k, d = st["k"], st["d"]
        x0 = ps if st["x0"] is None else st["x0"]
        eta = _lr(self.lr, k)
        lam = eta * _adam_factor(self.b1, self.b2, k + 1, self.bias)
        m = [self.b1 * m + (1 - self.b1) * d * g for m, g in zip(st["m"], gs, strict=True)]
        v = [self.b2 * v + (1 - self.b2) * d * d * g * g for v, g in zip(st["v"], gs, strict=True)]
        weight = d * d if self.safeguard else lam * d * d
        s = [self.b3 * s + weight * g for s, g in zip(st["s"], gs, strict=True)]
        diff = [a - b for a, b in zip(x0, ps, strict=True)]
        r = self.b3 * st["r"] + lam * d * d * _dot(gs, diff)
        l1 = _l1(s)
        d_new = max(d, self.coef * r / l1) if l1 > 0 else d
        us = [
            -self.wd * d * lam * p - d * lam * mi / (np.sqrt(vi) + d_new * self.eps)
            for p, mi, vi in zip(ps, m, v, strict=True)
        ]
        return us, {"m": m, "v": v, "s": s, "x0": x0, "r": r, "d": d_new, "k": k + 1}


class DAdaptAdamW(_Tree):
    """Defazio & Mishchenko 2023, Algorithm 3 (D-Adapted Adam) with AdamW's decay.

    With ``b = sqrt(b2)`` and ``lambda_k = d_k eta_k bias_k``::

        r = b r + (1 - b) lambda_k <g, s / (sqrt(v) + eps)>     (s, v before this step)
        m = b1 m + (1 - b1) lambda_k g;  v = b2 v + (1 - b2) g^2
        s = b s + (1 - b) lambda_k g
        d_{k+1} = max(d_k, min(r / ((1 - b) |s|_1), growth_rate d_k))
        x_{k+1} = x_k - wd lambda_k x_k - m / (sqrt(v) + eps)
    """

    def __init__(
        self,
        learning_rate=1.0,
        betas=(0.9, 0.999),
        eps=1e-8,
        estim_lr0=1e-6,
        weight_decay=0.0,
        growth_rate=math.inf,
        use_bias_correction=True,
    ):
        self.lr, (self.b1, self.b2), self.eps = learning_rate, betas, eps
        self.d0, self.wd, self.growth, self.bias = (
            estim_lr0,
            weight_decay,
            growth_rate,
            use_bias_correction,
        )

    def init_tree(self, ps):
        zeros = [np.zeros_like(p) for p in ps]
        return {"m": zeros, "v": zeros, "s": zeros, "r": 0.0, "d": self.d0, "k": 0}

    def step_tree(self, gs, st, ps):
        k, d, b = st["k"], st["d"], math.sqrt(self.b2)
        lam = d * _lr(self.lr, k) * _adam_factor(self.b1, self.b2, k + 1, self.bias)
        scaled = [s / (np.sqrt(v) + self.eps) for s, v in zip(st["s"], st["v"], strict=True)]
        r = b * st["r"] + (1 - b) * lam * _dot(gs, scaled)
        m = [self.b1 * m + (1 - self.b1) * lam * g for m, g in zip(st["m"], gs, strict=True)]
        v = [self.b2 * v + (1 - self.b2) * g * g for v, g in zip(st["v"], gs, strict=True)]
        s = [b * s + (1 - b) * lam * g for s, g in zip(st["s"], gs, strict=True)]
        l1 = _l1(s)
        d_new = max(d, min(r / ((1 - b) * l1), self.growth * d)) if l1 > 0 else d
        us = [
            -self.wd * lam * p - mi / (np.sqrt(vi) + self.eps)
            for p, mi, vi in zip(ps, m, v, strict=True)
        ]
        return us, {"m": m, "v": v, "s": s, "r": r, "d": d_new, "k": k + 1}


class DAdaptSGD(_Tree):
    """Defazio & Mishchenko 2023, Algorithm 1 (dual averaging) with primal averaging.

    With ``g^ = g + wd x_k`` and ``lambda_k = d_k eta_k / |g_0|`` (``g_0`` the first
    non-zero raw gradient)::

        r = r + lambda_k <g^, s>;  s = s + lambda_k g^
        d_{k+1} = max(d_k, min(2 r / |s|_2, growth_rate d_k))
        z = x0 - s;  x_{k+1} = momentum x_k + (1 - momentum) z
    """

    def __init__(
        self, learning_rate=1.0, momentum=0.0, weight_decay=0.0, d0=1e-6, growth_rate=math.inf
    ):
        self.lr, self.mu, self.wd, self.d0, self.growth = (
            learning_rate,
            momentum,
            weight_decay,
            d0,
            growth_rate,
        )

    def init_tree(self, ps):
        return {"s": [np.zeros_like(p) for p in ps], "x0": None, "g0": 0.0, "r": 0.0}

    def step_tree(self, gs, st, ps):
        st = {**st, "d": st.get("d", self.d0), "k": st.get("k", 0)}
        x0 = ps if st["x0"] is None else st["x0"]
        g0 = st["g0"] or math.sqrt(_dot(gs, gs))
        if g0 == 0:  # nothing seen yet: nothing moves
            return [np.zeros_like(p) for p in ps], {**st, "k": st["k"] + 1}
        d = st["d"]
        lam = d * _lr(self.lr, st["k"]) / g0
        ghat = [g + self.wd * p for g, p in zip(gs, ps, strict=True)]
        r = st["r"] + lam * _dot(ghat, st["s"])
        s = [si + lam * g for si, g in zip(st["s"], ghat, strict=True)]
        norm = math.sqrt(_dot(s, s))
        d_new = max(d, min(2 * r / norm, self.growth * d)) if norm > 0 else d
        new_x = [self.mu * p + (1 - self.mu) * (a - si) for p, a, si in zip(ps, x0, s, strict=True)]
        us = [nx - p for nx, p in zip(new_x, ps, strict=True)]
        return us, {"s": s, "x0": x0, "g0": g0, "r": r, "d": d_new, "k": st["k"] + 1}


class Mechanic(_Tree):
    """Cutkosky, Defazio & Mehta 2023, Algorithm 1, with the base updates ``u`` of
    ``base`` (a leaf reference factory) and Delta recovered from the params as
    ``(x0 - x) / (S + eps)``; ``x_{k+1} = x0 - S_{k+1} (Delta - u)``."""

    def __init__(
        self,
        base: Callable[[], Any],
        weight_decay=1e-2,
        eps=1e-8,
        s_init=1e-6,
        num_betas=6,
    ):
        self.base, self.wd, self.eps, self.s_init, self.n = (
            base,
            weight_decay,
            eps,
            s_init,
            num_betas,
        )
        self.betas = np.array([1 - 0.1**i for i in range(1, num_betas + 1)])

    def init_tree(self, ps):
        refs = [self.base() for _ in ps]
        z = np.zeros(self.n)
        return {
            "refs": refs,
            "base": [r.init(p) for r, p in zip(refs, ps, strict=True)],
            "x0": None,
            "m": z,
            "v": z,
            "r": z,
            "s": np.full(self.n, self.s_init),
            "zeros": [np.zeros_like(p) for p in ps],
        }

    def after(self, state, count):
        """The zero state after ``count`` updates: the implementation's initial point is 0."""
        return {**state, "x0": state["zeros"]}

    def step_tree(self, gs, st, ps):
        out = [r.step(g, s, p) for r, g, s, p in zip(st["refs"], gs, st["base"], ps, strict=True)]
        u = [o[0] for o in out]
        x0 = ps if st["x0"] is None else st["x0"]
        big_s = float(np.sum(st["s"]))
        gnorm, pnorm = math.sqrt(_dot(gs, gs)), math.sqrt(_dot(ps, ps))
        gt = [
            g + self.wd * big_s * gnorm / (pnorm + self.eps) * p
            for g, p in zip(gs, ps, strict=True)
        ]
        delta = [(a - p) / (big_s + self.eps) for a, p in zip(x0, ps, strict=True)]
        h = _dot(gt, delta)
        m = np.maximum(self.betas * st["m"], abs(h) + self.eps)
        v = self.betas**2 * st["v"] + h * h
        r = self.betas * st["r"] + np.clip(h, -st["m"], st["m"]) * st["s"]
        s = (self.s_init / self.n * m + np.maximum(r, 0)) / (np.sqrt(v) + self.eps)
        new_s = float(np.sum(s))
        new_x = [a - new_s * (dl - ui) for a, dl, ui in zip(x0, delta, u, strict=True)]
        us = [nx - p for nx, p in zip(new_x, ps, strict=True)]
        return us, {
            **st,
            "base": [o[1] for o in out],
            "x0": x0,
            "m": m,
            "v": v,
            "r": r,
            "s": s,
        }


class Coupled(_Tree):
    """``inner`` on the gradient plus ``l2 * x`` (L2 regularisation in the gradient, as
    ``chain(add_decayed_weights(l2), ...)``): the gradients then point away from 0, and
    the estimates of the distance move even when the rest of the gradient is noise."""

    def __init__(self, inner: _Tree, l2: float):
        self.inner, self.l2 = inner, l2

    def init_tree(self, ps):
        return self.inner.init_tree(ps)

    def step_tree(self, gs, st, ps):
        return self.inner.step_tree([g + self.l2 * p for g, p in zip(gs, ps, strict=True)], st, ps)
