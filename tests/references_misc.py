"""NumPy float64 references for Rprop, SM3, the optimistic methods, noisy SGD, Fromage and
MADGRAD, written from the papers' update equations.

Each works on one leaf (``Reference``) or on the list of leaves (``TreeReference``) and
returns the additive update ``theta_t - theta_{t-1}``.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from tests.references import Adam, Reference, TreeReference


class Rprop(Reference):
    """Riedmiller & Braun 1993 with Igel & Hüsken's iRprop- (the gradient is forgotten
    after a change of sign). Step sizes start at ``learning_rate``; after each gradient
    ``g_t`` the step size grows by ``eta_plus`` if ``g_t g_{t-1} > 0`` and shrinks by
    ``eta_minus`` if ``< 0`` (then ``g_t := 0``), bounded to ``[min, max]``; the move is
    ``-d_t sign(g_t)``.

    immediate=True applies that move at step t (torch.optim.Rprop, which also bounds the
    step size when the product is 0); immediate=False applies at step t the move of step
    t-1, and none after a change of sign (optax).
    """

    def __init__(
        self,
        learning_rate,
        eta_minus=0.5,
        eta_plus=1.2,
        min_step_size=1e-6,
        max_step_size=50.0,
        immediate=False,
    ):
        self.d0, self.minus, self.plus = learning_rate, eta_minus, eta_plus
        self.low, self.high, self.immediate = min_step_size, max_step_size, immediate

    def init(self, p):
        return {"d": np.full_like(p, self.d0), "g": np.zeros_like(p), "move": np.zeros_like(p)}

    def step(self, g, s, p):
        product = g * s["g"]
        d = s["d"].copy()
        grow, shrink, same = product > 0, product < 0, product == 0
        d[grow] = np.clip(d[grow] * self.plus, self.low, self.high)
        d[shrink] = np.clip(d[shrink] * self.minus, self.low, self.high)
        if self.immediate:
            d[same] = np.clip(d[same], self.low, self.high)
        kept = np.where(shrink, 0.0, g)
        move = -np.sign(kept) * d
        u = move if self.immediate else np.where(shrink, 0.0, s["move"])
        return u, {"d": d, "g": kept, "move": move}


class SM3(Reference):
    """Anil et al. 2019, SM3-II over the cover of axis slices (one accumulator per index of
    each axis; a vector or scalar: one per coordinate), with momentum on the scaled
    gradient and optax's optional decay b2 of the accumulators (1: the paper's sum)."""

    def __init__(self, learning_rate, momentum=0.9, b2=1.0, eps=1e-8):
        self.lr, self.b1, self.b2, self.eps = learning_rate, momentum, b2, eps

    def init(self, p):
        shape = np.shape(p)
        accumulators = [np.zeros(shape)] if len(shape) < 2 else [np.zeros(n) for n in shape]
        return {"mu": accumulators, "m": np.zeros_like(p)}

    def step(self, g, s, p):
        k = np.ndim(g)
        if k < 2:
            previous = s["mu"][0]
        else:
            views = [
                np.reshape(v, [1] * r + [v.size] + [1] * (k - r - 1)) for r, v in enumerate(s["mu"])
            ]
            previous = functools.reduce(np.minimum, views)
        c = 1.0 if self.b2 == 1 else 1.0 - self.b2
        nu = c * g * g + self.b2 * previous
        with np.errstate(divide="ignore", invalid="ignore"):
            x = np.where(nu > 0, g / np.sqrt(nu + self.eps), 0.0)
        m = self.b1 * s["m"] + (1 - self.b1) * x
        if k < 2:
            mu = [nu]
        else:
            mu = [
                np.max(nu, axis=tuple(i for i in range(k) if i != r), initial=0.0) for r in range(k)
            ]
        return -self.lr * m, {"mu": mu, "m": m}


class ScaleBySM3(SM3):
    """The direction of :class:`SM3` with optax's primitive's names (b1 is the momentum)."""

    def __init__(self, b1=0.9, b2=1.0, eps=1e-8):
        super().__init__(-1.0, momentum=b1, b2=b2, eps=eps)


class Optimistic(Reference):
    """Mokhtari et al. 2020: -lr ((alpha + beta) d_t - beta d_{t-1}), d_0 = d_1, on the
    gradient (inner=None) or on another reference's direction (optimistic Adam)."""

    def __init__(self, learning_rate, alpha=1.0, beta=1.0, inner=None):
        self.lr, self.alpha, self.beta, self.inner = learning_rate, alpha, beta, inner

    def init(self, p):
        # the inner direction's state ("t", moments) at the top, beside "prev"
        return {**({} if self.inner is None else self.inner.init(p)), "prev": None}

    def step(self, g, s, p):
        inner = {k: v for k, v in s.items() if k != "prev"}
        if self.inner is None:
            d = g
        else:
            step, inner = self.inner.step(g, inner, p)
            d = -step
        prev = d if s["prev"] is None else s["prev"]
        u = -self.lr * ((self.alpha + self.beta) * d - self.beta * prev)
        return u, {**inner, "prev": d}


def optimistic_adam(
    learning_rate, optimism=None, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0, nesterov=True
):
    """Daskalakis et al. 2018 with optax's first form: -eta r_t - o (r_t - r_{t-1})."""
    adam = Adam(1.0, b1, b2, eps, eps_root, nesterov=nesterov)
    o = learning_rate if optimism is None else optimism
    return Optimistic(1.0, alpha=learning_rate, beta=o, inner=adam)


def optimistic_adam_v2(
    learning_rate, alpha=1.0, beta=1.0, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0, nesterov=True
):
    adam = Adam(1.0, b1, b2, eps, eps_root, nesterov=nesterov)
    return Optimistic(learning_rate, alpha=alpha, beta=beta, inner=adam)


class NoisySGD(TreeReference):
    """Neelakantan et al. 2015: -lr (g + sigma_t z), sigma_t**2 = eta / t**gamma (t = 1, 2,
    ...). The standard normal draws z are optax's: at each step the key splits into the
    next key and a sampling key, which splits into one key per leaf; z is drawn in float32."""

    def __init__(self, n, learning_rate, eta=0.01, gamma=0.55, key=None, seed=None):
        self.lr, self.eta, self.gamma = learning_rate, eta, gamma
        key = seed if key is None else key
        key = 0 if key is None else key
        self.key = key if isinstance(key, jax.Array) else jax.random.key(key)
        self.n = n

    def init(self, ps):
        return {"t": 0, "key": self.key}

    def step(self, gs, s, ps, **extra):
        t = s["t"] + 1
        key, sample = jax.random.split(s["key"])
        keys = jax.random.split(sample, len(gs))
        sigma = math.sqrt(self.eta / t**self.gamma)
        out = []
        for g, k in zip(gs, keys, strict=True):
            z = np.asarray(jax.random.normal(k, np.shape(g), jnp.float32), np.float64)
            out.append(-self.lr * (g + sigma * z))
        return out, {"t": t, "key": key}


class Fromage(Reference):
    """Bernstein et al. 2020, Algorithm 1, per layer:
    W <- (W - eta max(|W|, m) / max(|g|, m) g) / sqrt(1 + eta**2), ratio 1 if a norm is 0."""

    def __init__(self, learning_rate, min_norm=1e-6):
        self.eta, self.m = learning_rate, min_norm

    def init(self, p):
        return {"t": 0}

    def step(self, g, s, p):
        eta = float(self.eta(s["t"])) if callable(self.eta) else self.eta
        w_norm = max(float(np.linalg.norm(p)), self.m)
        g_norm = max(float(np.linalg.norm(g)), self.m)
        ratio = 1.0 if w_norm == 0 or g_norm == 0 else w_norm / g_norm
        new = (p - eta * ratio * g) / math.sqrt(1 + eta**2)
        return new - p, {"t": s["t"] + 1}


class Madgrad(Reference):
    """Defazio & Jelassi 2021, Algorithm 1 (lambda_k = (eta + eps) sqrt(k + 1), as the authors'
    code adds eps to the rate), with L2 weight decay added to the gradient. x_0 is the
    iterate of the first step (k = 0); a state that starts at a later k without one starts
    the dual averages from 0."""

    def __init__(self, learning_rate, momentum=0.9, weight_decay=0.0, eps=1e-6):
        self.lr, self.beta, self.wd, self.eps = learning_rate, momentum, weight_decay, eps

    def init(self, p):
        return {"t": 0, "s": np.zeros_like(p), "nu": np.zeros_like(p), "x0": None}

    def step(self, g, s, p):
        k = s["t"]
        x0 = s["x0"]
        if x0 is None:
            x0 = p.copy() if k == 0 else np.zeros_like(p)
        lr = self.lr(k) if callable(self.lr) else self.lr
        g = g + self.wd * p
        lam = (lr + self.eps) * math.sqrt(k + 1)
        s_new = s["s"] + lam * g
        nu = s["nu"] + lam * g * g
        z = x0 - s_new / (np.cbrt(nu) + self.eps)
        x_new = self.beta * p + (1 - self.beta) * z
        return x_new - p, {"t": k + 1, "s": s_new, "nu": nu, "x0": x0}


class ScaleByMadgrad(Madgrad):
    def __init__(self, learning_rate, momentum=0.9, eps=1e-6):
        super().__init__(learning_rate, momentum=momentum, eps=eps)


class NoiselessSGD(Reference):
    """noisy_sgd with ``eta = 0``: plain SGD, ``-lr g`` (the battery's deterministic entry)."""

    def __init__(self, learning_rate, eta=0.01, gamma=0.55, key=None, seed=None):
        assert eta == 0, "the battery runs noisy_sgd without noise (NoisySGD has the noise)"
        self.lr = learning_rate

    def init(self, p):
        return {}

    def step(self, g, s, p):
        return -self.lr * g, s


class ACProp(Reference):
    """Zhuang et al. 2021, as optax.contrib computes it: m_t = b1 m + (1 - b1) g;
    s_t = b2 s + (1 - b2) (g - m_{t-1})**2 + eps_root; the step divides g_t by the root of
    the previous s, bias-corrected (1 before the first step), plus eps; decoupled decay
    times the learning rate."""

    def __init__(
        self, learning_rate, b1=0.9, b2=0.999, eps=1e-16, eps_root=1e-16, weight_decay=0.0
    ):
        self.lr, self.b1, self.b2, self.eps, self.eps_root = learning_rate, b1, b2, eps, eps_root
        self.wd = weight_decay

    def init(self, p):
        return {"t": 0, "m": np.zeros_like(p), "s": np.zeros_like(p)}

    def step(self, g, s, p):
        t = s["t"]
        s_hat = 1.0 if t == 0 else s["s"] / (1 - self.b2**t)
        d = g / (np.sqrt(s_hat) + self.eps)
        m = self.b1 * s["m"] + (1 - self.b1) * g
        belief = self.b2 * s["s"] + (1 - self.b2) * (g - s["m"]) ** 2 + self.eps_root
        return -self.lr * (d + self.wd * p), {"t": t + 1, "m": m, "s": belief}


class ScaleByACProp(ACProp):
    def __init__(self, b1=0.9, b2=0.999, eps=1e-16, eps_root=1e-16):
        super().__init__(-1.0, b1, b2, eps, eps_root)
