"""A NumPy reference of PSGD-Kron, written from Li's equations (arXiv:1512.04202,
arXiv:2211.04422), in float64.

Each leaf's preconditioner is built as the explicit Kronecker product ``Q = Q_1 (x) ... (x)
Q_n`` (a diagonal factor as ``diag(q_i)``) acting on the row-major vector of the leaf, so
``A = Q h``, ``B = Q^{-T} v`` and ``P M = Q^T Q M`` are plain matrix-vector products; the
per-axis statistics ``A_(i) A_(i)^T`` are the mode-``i`` unfoldings. The fit of each factor:

    Q_i <- Q_i - lr * triu(G_i - H_i) Q_i / ||G_i + H_i||_lb    (triangular)
    q_i <- q_i - lr * (G_i - H_i) q_i / max|G_i + H_i|         (diagonal)

``||S||_lb = ||S S s_j|| / ||S s_j||``, ``s_j`` the column of ``S`` of largest norm (one
power step: a lower bound of the spectral norm). Before a fit the factors are rescaled to
the geometric mean of their largest entries (``Q`` unchanged).

The probes are the documented draws: the key ``jax.random.key(key)`` is split at every
step into the next key and a step key, and leaf ``i`` draws
``jax.random.normal(jax.random.fold_in(step_key, i), shape, float32)``. ``jax.random`` is
used only to draw them.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from tests.references import TreeReference


def diagonal_axes(shape, max_size, min_ndim, mode):
    n = len(shape)
    forced = [False] * n
    if n:
        big = max(i for i in range(n) if shape[i] == max(shape))  # the last of the largest
        if mode == "all_diag":
            forced = [True] * n
        smart = mode == "smart_one_diag" and n >= 2 and sorted(shape)[-1] > sorted(shape)[-2]
        if mode == "one_diag" or smart:
            forced[big] = True
    return [d == 1 or d > max_size or n < min_ndim or forced[i] for i, d in enumerate(shape)]


def kron_matrix(factors):
    q = np.ones((1, 1))
    for f in factors:
        q = np.kron(q, f if f.ndim == 2 else np.diag(np.atleast_1d(f)))
    return q


def unfold_gram(x, axis, diag):
    m = np.moveaxis(x, axis, 0).reshape(x.shape[axis], -1)
    return np.sum(m * m, axis=1) if diag else m @ m.T


def lower_bound(s):
    j = int(np.argmax(np.sum(s * s, axis=0)))
    x = s @ s[:, j]
    return np.linalg.norm(s @ x) / np.linalg.norm(x)


def standard_normals(key, shapes):
    return [
        np.asarray(jax.random.normal(jax.random.fold_in(key, i), s, jnp.float32), np.float64)
        for i, s in enumerate(shapes)
    ]


class Kron(TreeReference):
    """``kron`` (``direction_only``: ``scale_by_kron``'s direction, no decay or rate)."""

    def __init__(
        self,
        learning_rate=0.001,
        b1=0.9,
        weight_decay=0.0,
        weight_decay_mask=None,
        preconditioner_update_probability=None,
        max_size_triangular=8192,
        min_ndim_triangular=2,
        memory_save_mode=None,
        momentum_into_precond_update=True,
        preconditioner_lr=0.1,
        preconditioner_init_scale=1.0,
        mu_dtype=None,
        precond_dtype=None,
        *,
        key=0,
        direction_only=False,
    ):
        del mu_dtype, precond_dtype
        self.lr, self.b1, self.wd, self.mask = learning_rate, b1, weight_decay, weight_decay_mask
        prob = preconditioner_update_probability
        self.prob = prob if prob is not None else default_probability
        self.sizes = (max_size_triangular, min_ndim_triangular, memory_save_mode)
        self.into_m, self.plr, self.scale = (
            momentum_into_precond_update,
            preconditioner_lr,
            preconditioner_init_scale,
        )
        self.key, self.direction_only = key, direction_only

    def init(self, ps):
        if isinstance(ps, np.ndarray):  # one leaf (the battery's convergence runs)
            return self.init([ps])
        qs = []
        for p in ps:
            if p.size == 0:
                qs.append([])
            elif p.ndim == 0:
                qs.append([np.array(float(self.scale))])
            else:
                s = self.scale ** (1 / p.ndim)
                diag = diagonal_axes(p.shape, *self.sizes)
                pairs = zip(p.shape, diag, strict=True)
                qs.append([s * np.ones(d) if dg else s * np.eye(d) for d, dg in pairs])
        key = self.key if not isinstance(self.key, int) else jax.random.key(self.key)
        return {"m": [np.zeros_like(p) for p in ps], "Q": qs, "t": 0, "c": 0, "key": key}

    def step(self, gs, s, ps, **extra):
        if isinstance(gs, np.ndarray):  # one leaf
            out, s = self.step([gs], s, [ps], **extra)
            return out[0], s
        t, c = s["t"], s["c"] + 1
        prob = np.float32(self.prob(t) if callable(self.prob) else self.prob)
        fit = bool(prob > 0 and np.float32(c) >= np.float32(1) / prob)
        key, step_key = jax.random.split(s["key"])
        vs = standard_normals(step_key, [g.shape for g in gs])
        b1 = self.b1
        ms = [b1 * m + (1 - b1) * g for m, g in zip(s["m"], gs, strict=True)]
        mh = [m / (1 - b1 ** (t + 1)) for m in ms]
        qs, out = [], []
        for g, m, v, fs in zip(gs, mh, vs, s["Q"], strict=True):
            if not fs:
                qs.append(fs)
                out.append(g)
                continue
            if fit:
                fs = self._fit(balanced(fs), m if self.into_m else g, v)
            qs.append(fs)
            q = kron_matrix(fs)
            u = (q.T @ q @ m.reshape(-1)).reshape(m.shape)
            out.append(u * min(1.0, 1.1 / (np.sqrt(np.mean(u * u)) + 1e-6)))
        state = {"m": ms, "Q": qs, "t": t + 1, "c": 0 if fit else c, "key": key}
        if self.direction_only:
            return out, state
        mask = self.mask(ps) if callable(self.mask) else self.mask
        masks = jax.tree.leaves(mask) if mask is not None else [True] * len(ps)
        wd = float(self.wd(t) if callable(self.wd) else self.wd)
        lr = float(self.lr(t) if callable(self.lr) else self.lr)
        return [
            -lr * (u + (wd * p if on else 0.0)) for u, p, on in zip(out, ps, masks, strict=True)
        ], state

    def after(self, s, count):
        """The state as after ``count`` updates (the steps since the last fit left as they are)."""
        return {**s, "t": count}

    def _fit(self, fs, h, v):
        q = kron_matrix(fs)
        a = (q @ h.reshape(-1)).reshape(h.shape)
        b = np.linalg.solve(q.T, v.reshape(-1)).reshape(v.shape)
        new = []
        for i, f in enumerate(fs):
            if h.ndim == 0:
                g1, g2 = a * a, b * b
            else:
                g1, g2 = unfold_gram(a, i, f.ndim < 2), unfold_gram(b, i, f.ndim < 2)
            if f.ndim < 2:
                new.append(f - self.plr * (g1 - g2) * f / np.max(np.abs(g1 + g2)))
            else:
                new.append(f - self.plr * np.triu(g1 - g2) @ f / lower_bound(g1 + g2))
        return new


def balanced(fs):
    if len(fs) < 2:
        return fs
    tops = [np.max(np.abs(f)) for f in fs]
    mean = math.prod(tops) ** (1 / len(fs))
    return [f * (mean / top) for f, top in zip(fs, tops, strict=True)]


def default_probability(t):
    """Li's anneal: 1 for 500 steps, then ``exp(-0.001 (t - 500))``, floored at 0.03."""
    return min(1.0, max(0.03, math.exp(-0.001 * (t - 500))))


def scale_by_kron(**kwargs):
    return Kron(direction_only=True, **kwargs)
