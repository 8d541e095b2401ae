"""NumPy float64 references of Sophia and SAM/ASAM, written from the papers' equations.

* Sophia: Liu et al. 2023 (arXiv:2305.14342), Algorithm 3 with Hutchinson's estimator
  (Algorithm 1) and the Gauss-Newton-Bartlett estimator (Algorithm 2). The step divides
  by the Hessian-diagonal average of the previous step unless ``hessian_first`` (the
  order gradxform documents for optax's form). The Hessian-vector products are central
  finite differences of the loss in float64; the random probes (and GNB's sampled labels)
  are drawn with ``jax.random`` by the key schedule gradxform documents, so both sides
  see the same random numbers.
* SAM: Foret et al. 2021 (arXiv:2010.01412), ``w_adv = w + rho g / ||g||`` taken as
  optimizer steps of an ascent optimizer, the outer step from the cached ``w``; ASAM:
  Kwon et al. 2021 (arXiv:2102.11600), ``e = rho T^2 g / ||T g||``, ``T = |w| + eta``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from tests.references_lr_free_2 import WholeTree


def _at(value: Any, t: int) -> float:
    return float(value(t)) if callable(value) else float(value)


# ------------------------------------------------------------------ random numbers


@functools.partial(jax.jit, static_argnums=(1, 2))
def _draw(key: Any, shapes: tuple[tuple[int, ...], ...], gaussian: bool) -> Any:
    """``key, sub = split(key)``; one key per leaf from ``sub``; a float32 probe each."""
    key, sub = jax.random.split(key)
    keys = jax.random.split(sub, len(shapes))
    if gaussian:
        return key, [
            jax.random.normal(k, s, jnp.float32) for k, s in zip(keys, shapes, strict=True)
        ]
    # signs from Bernoulli(1/2) draws of float32 uniforms (jax.random.rademacher's outside x64)
    return key, [
        2 * jax.random.bernoulli(k, jnp.float32(0.5), s).astype(jnp.float32) - 1
        for k, s in zip(keys, shapes, strict=True)
    ]


def probes(key: Any, shapes: Sequence[tuple[int, ...]], gaussian: bool = False) -> Any:
    """(next key, the probes as float64 arrays)."""
    key, zs = _draw(key, tuple(tuple(s) for s in shapes), gaussian)
    return key, [np.asarray(z, np.float64) for z in zs]


def sampled_labels(key: Any, logits: np.ndarray) -> Any:
    """GNB's labels: ``key, sub = split(key)``, one categorical draw per row with ``sub``."""
    key, sub = jax.random.split(key)
    labels = jax.random.categorical(sub, jnp.asarray(logits, jnp.float32))
    return key, np.asarray(labels)


# -------------------------------------------------------------- finite differences


def hvp(loss: Callable[[Any], float], xs: list[np.ndarray], zs: list[np.ndarray], h: float = 1e-4):
    """``H z`` of ``loss`` at ``xs`` by central differences: ``d/dx_i`` of
    ``(f(x + h z) - f(x - h z)) / 2h``, each a central difference of step ``h``."""

    def f(ys):
        return float(loss(ys))

    out = []
    for i, x in enumerate(xs):
        col = np.zeros(x.shape)
        for idx in np.ndindex(x.shape):
            vals = []
            for sz in (1.0, -1.0):
                for se in (1.0, -1.0):
                    ys = [y + sz * h * z for y, z in zip(xs, zs, strict=True)]
                    e = np.zeros(x.shape)
                    e[idx] = se * h
                    ys[i] = ys[i] + e
                    vals.append(f(ys))
            col[idx] = (vals[0] - vals[1] - vals[2] + vals[3]) / (4 * h * h)
        out.append(col)
    return out


def grad(loss: Callable[[Any], float], xs: list[np.ndarray], h: float = 1e-5) -> list[np.ndarray]:
    """The gradient of ``loss`` at ``xs`` by central differences."""
    out = []
    for i, x in enumerate(xs):
        col = np.zeros(x.shape)
        for idx in np.ndindex(x.shape):
            e = np.zeros(x.shape)
            e[idx] = h
            up = [y + e if j == i else y for j, y in enumerate(xs)]
            down = [y - e if j == i else y for j, y in enumerate(xs)]
            col[idx] = (float(loss(up)) - float(loss(down))) / (2 * h)
        out.append(col)
    return out


# -------------------------------------------------------------------------- Sophia


class Hutchinson:
    """``z * (H z)``, ``z`` Rademacher (or Gaussian) by the documented key schedule."""

    def __init__(self, random_seed: Any = None, distribution: str = "rademacher"):
        self.key0 = jax.random.PRNGKey(0 if random_seed is None else random_seed)
        self.gaussian = distribution == "gaussian"

    def estimate(self, key, ps, loss):
        key, zs = probes(key, [p.shape for p in ps], self.gaussian)
        hz = hvp(loss, ps, zs)
        return key, [z * v for z, v in zip(zs, hz, strict=True)]


class Sophia(WholeTree):
    """Liu et al. 2023, Algorithm 3 (decoupled decay, then the learning rate)::

    m_t = b1 m + (1 - b1) g;  m_hat = m_t / (1 - b1^t)  (bias_correction)
    t = 1 mod k: h_t = b2 h + (1 - b2) h_hat(x_t), else h_t = h_{t-1}
    u = clip(m_hat / max(gamma h, eps), c),  h = h_{t-1} (h_t with hessian_first)
    x_{t+1} = x_t - lr (u + wd x_t)
    """

    def __init__(
        self,
        learning_rate,
        b1=0.965,
        b2=0.99,
        eps=1e-8,
        weight_decay=1e-4,
        gamma=0.01,
        clip_threshold=1.0,
        update_interval=10,
        *,
        loss,
        random_seed=None,
        distribution="rademacher",
        bias_correction=True,
        hessian_first=False,
        mu_dtype=None,
        nu_dtype=None,
        estimator=None,
        decay_mask=None,
    ):
        del mu_dtype, nu_dtype  # float64 here
        self.lr, self.b1, self.b2, self.eps, self.wd = learning_rate, b1, b2, eps, weight_decay
        self.gamma, self.c, self.k = gamma, clip_threshold, update_interval
        self.loss, self.bc, self.first = loss, bias_correction, hessian_first
        self.estimator = estimator or Hutchinson(random_seed, distribution)
        self.decay_mask = decay_mask

    def init_tree(self, ps):
        zeros = [np.zeros_like(p) for p in ps]
        return {"t": 0, "m": zeros, "h": list(zeros), "key": self.estimator.key0}

    def after(self, state, count):
        """The state as after ``count`` updates that left every average at zero."""
        return {**state, "t": count}

    def step(self, gs, s, ps, **extra):
        # The loss takes what the caller's params are: a tree (here a list) or one array.
        self.single = not isinstance(gs, list)
        return super().step(gs, s, ps, **extra)

    def step_tree(self, gs, s, ps, **extra):
        t = s["t"] + 1
        m = [self.b1 * mi + (1 - self.b1) * g for mi, g in zip(s["m"], gs, strict=True)]
        m_hat = [mi / (1 - self.b1**t) for mi in m] if self.bc else m
        h, key = s["h"], s["key"]
        if (t - 1) % self.k == 0:
            loss = (lambda ys: self.loss(ys[0])) if self.single else self.loss
            key, est = self.estimator.estimate(key, ps, loss)
            h = [self.b2 * hi + (1 - self.b2) * e for hi, e in zip(h, est, strict=True)]
        used = h if self.first else s["h"]
        lr, wd = _at(self.lr, t - 1), _at(self.wd, t - 1)
        flags = self.decay_mask or [True] * len(ps)
        us = []
        for mi, hi, p, on in zip(m_hat, used, ps, flags, strict=True):
            u = mi / np.maximum(self.gamma * hi, self.eps)
            if self.c is not None:
                u = np.clip(u, -self.c, self.c)
            us.append(-lr * (u + (wd * p if on else 0.0)))
        return us, {"t": t, "m": m, "h": h, "key": key}


def gnb_estimate(key, ps, logits_fn):
    """Liu et al. 2023, Algorithm 2: labels from softmax(logits), ``B * g_hat**2`` with
    ``g_hat`` the gradient (central differences) of the mean cross-entropy at them."""
    logits = np.asarray(logits_fn(ps), np.float64)
    key, labels = sampled_labels(key, logits)
    batch = logits.shape[0]

    def loss(ys):
        z = np.asarray(logits_fn(ys), np.float64)
        z = z - z.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        return -logp[np.arange(batch), labels].mean()

    return key, [batch * g * g for g in grad(loss, ps)]


# --------------------------------------------------------------------------- SAM


class Normalize(WholeTree):
    """``g / ||g||`` over the whole tree (zeros for a zero gradient)."""

    def init_tree(self, ps):
        return {}

    def step_tree(self, gs, s, ps, **extra):
        norm = np.sqrt(sum(np.sum(g * g) for g in gs))
        return [g / norm if norm > 0 else np.zeros_like(g) for g in gs], s


class SAM(WholeTree):
    """Foret et al. 2021 as alternating calls (``sync_period = n``): calls 1..n-1 ascend,
    ``u = rho v``, ``v = mu_a v + g / ||g||`` (heavy ball on the normalized gradient; the
    ascent state reset after each outer step with ``reset_state``); call n returns to the
    cached ``w`` and takes an outer heavy-ball SGD step ``w - lr (mu v_o + g)`` there."""

    def __init__(
        self,
        learning_rate,
        rho=0.05,
        momentum=0.9,
        adv_momentum=0.0,
        sync_period=2,
        reset_state=True,
    ):
        self.lr, self.rho, self.mu, self.mu_a = learning_rate, rho, momentum, adv_momentum
        self.n, self.reset = sync_period, reset_state

    def init_tree(self, ps):
        zeros = [np.zeros_like(p) for p in ps]
        return {"i": 0, "outer": 0, "v": zeros, "va": list(zeros), "w": [p.copy() for p in ps]}

    def step_tree(self, gs, s, ps, **extra):
        w = [p.copy() for p in ps] if s["i"] == 0 else s["w"]
        s = {**s, "w": w}
        if s["i"] < self.n - 1:  # ascent
            norm = np.sqrt(sum(np.sum(g * g) for g in gs))
            unit = [g / norm if norm > 0 else np.zeros_like(g) for g in gs]
            va = [self.mu_a * v + u for v, u in zip(s["va"], unit, strict=True)]
            return [self.rho * v for v in va], {**s, "i": s["i"] + 1, "va": va}
        lr = _at(self.lr, s["outer"])
        v = [self.mu * vi + g for vi, g in zip(s["v"], gs, strict=True)]
        us = [wi - p - lr * vi for wi, p, vi in zip(w, ps, v, strict=True)]
        va = [np.zeros_like(x) for x in s["va"]] if self.reset else s["va"]
        return us, {**s, "i": 0, "outer": s["outer"] + 1, "v": v, "va": va}


def sam_gradient(loss, xs: list[np.ndarray], rho, adaptive=False, eta=0.0, eps=1e-12):
    """``grad L(w + e)``: ``e = rho g / (||g|| + eps)`` or ``rho T^2 g / (||T g|| + eps)``,
    ``T = |w| + eta``; gradients by central differences of ``loss`` (a function of a list)."""
    g = grad(loss, xs)
    t = [np.abs(x) + eta if adaptive else np.ones_like(x) for x in xs]
    norm = np.sqrt(sum(np.sum((ti * gi) ** 2) for ti, gi in zip(t, g, strict=True)))
    e = [rho * ti * ti * gi / (norm + eps) for ti, gi in zip(t, g, strict=True)]
    return grad(loss, [x + ei for x, ei in zip(xs, e, strict=True)])
