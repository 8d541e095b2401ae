"""NumPy references for ADOPT, AdEMAMix, simplified AdEMAMix, the Cautious mask, Adan,
NovoGrad and MARS, written from the papers' equations.

Same conventions as ``tests/references.py``: one float64 leaf at a time, ``step(g, s, p)``
returns the additive update ``theta_t - theta_{t-1}`` and the new state. A hyperparameter
that may be a schedule is called with the number of steps before the current one.
"""

from __future__ import annotations

import numpy as np

from tests.references import Reference


def _at(value, t):
    return float(value(t)) if callable(value) else value


class ADOPT(Reference):
    """Taniguchi et al. 2024, Algorithm 1 with the clipped variant of section 4.

    v_0 = g_0^2 and no step at t = 0; then m_t = b1 m + (1 - b1) clip(g / max(sqrt(v), eps), c_t),
    theta -= lr m_t (Nesterov: lr (b1 m_t + (1 - b1) r_t)), v_t = b2 v + (1 - b2) g^2.
    """

    def __init__(
        self,
        learning_rate,
        b1=0.9,
        b2=0.9999,
        eps=1e-6,
        *,
        nesterov=False,
        use_clipping=True,
        clip_value_fn=None,
    ):
        self.lr, self.b1, self.b2, self.eps = learning_rate, b1, b2, eps
        self.nesterov, self.use_clipping = nesterov, use_clipping
        self.clip = clip_value_fn if clip_value_fn is not None else (lambda t: t**0.25)

    def init(self, p):
        return {"m": np.zeros_like(p), "v": np.zeros_like(p), "t": 0}

    def step(self, g, s, p):
        t = s["t"]
        if t == 0:
            return np.zeros_like(g), {"m": s["m"], "v": g * g, "t": 1}
        r = g / np.maximum(np.sqrt(s["v"]), self.eps)
        if self.use_clipping:
            c = float(self.clip(t))
            r = np.clip(r, -c, c)
        m = self.b1 * s["m"] + (1 - self.b1) * r
        d = self.b1 * m + (1 - self.b1) * r if self.nesterov else m
        v = self.b2 * s["v"] + (1 - self.b2) * g * g
        return -_at(self.lr, t) * d, {"m": m, "v": v, "t": t + 1}


class AdEMAMix(Reference):
    """Pagliardini et al. 2024, Algorithm 1: Adam's corrected fast moment plus alpha times an
    uncorrected slow EMA (decay b3); decoupled weight decay times lr."""

    def __init__(
        self,
        learning_rate,
        b1=0.9,
        b2=0.999,
        b3=0.9999,
        alpha=5.0,
        eps=1e-8,
        eps_root=0.0,
        weight_decay=0.0,
    ):
        self.lr, self.b1, self.b2, self.b3 = learning_rate, b1, b2, b3
        self.alpha, self.eps, self.eps_root, self.wd = alpha, eps, eps_root, weight_decay

    def init(self, p):
        z = np.zeros_like(p)
        return {"m1": z, "m2": z, "v": z, "t": 0}

    def step(self, g, s, p):
        t = s["t"]
        b3, alpha = _at(self.b3, t), _at(self.alpha, t)
        m1 = self.b1 * s["m1"] + (1 - self.b1) * g
        m2 = b3 * s["m2"] + (1 - b3) * g
        v = self.b2 * s["v"] + (1 - self.b2) * g * g
        m1_hat = m1 / (1 - self.b1 ** (t + 1))
        v_hat = v / (1 - self.b2 ** (t + 1))
        d = (m1_hat + alpha * m2) / (np.sqrt(v_hat + self.eps_root) + self.eps)
        u = -_at(self.lr, t) * (d + _at(self.wd, t) * p)
        return u, {"m1": m1, "m2": m2, "v": v, "t": t + 1}


class SimplifiedAdEMAMix(Reference):
    """Morwani et al. 2025: m = b1 m + g, n = EMA_b2(g^2) corrected, step (m + alpha g) / root."""

    def __init__(
        self, learning_rate, b1=0.99, b2=0.95, alpha=0.0, eps=1e-8, eps_root=0.0, weight_decay=0.0
    ):
        self.lr, self.b1, self.b2, self.alpha = learning_rate, b1, b2, alpha
        self.eps, self.eps_root, self.wd = eps, eps_root, weight_decay

    def init(self, p):
        return {"m": np.zeros_like(p), "n": np.zeros_like(p), "t": 0}

    def step(self, g, s, p):
        t = s["t"]
        m = self.b1 * s["m"] + g
        n = self.b2 * s["n"] + (1 - self.b2) * g * g
        n_hat = n / (1 - self.b2 ** (t + 1))
        d = (m + _at(self.alpha, t) * g) / (np.sqrt(n_hat + self.eps_root) + self.eps)
        u = -_at(self.lr, t) * (d + _at(self.wd, t) * p)
        return u, {"m": m, "n": n, "t": t + 1}


class Cautious(Reference):
    """Liang et al. 2024: keep the coordinates where the step -u and g agree in sign,
    phi = [u g < 0], and rescale by 1 / (mean(phi) + eps); eps=None: n / (nnz(phi) + 1)."""

    def __init__(self, inner, eps=None):
        self.inner, self.eps = inner, eps

    def init(self, p):
        return self.inner.init(p)

    def step(self, g, s, p):
        u, s = self.inner.step(g, s, p)
        phi = (u * g < 0).astype(np.float64)
        eps = 1.0 / phi.size if self.eps is None else self.eps
        scale = 1.0 / (phi.mean() + eps)
        return u * phi * scale, s


class Adan(Reference):
    """Xie et al. 2022, Algorithm 1 in optax's decay convention (b = 1 - beta of the paper),
    with bias correction; the difference enters with weight 1 - b2 (optax) or b2 (the paper)."""

    def __init__(
        self,
        learning_rate,
        b1=0.98,
        b2=0.92,
        b3=0.99,
        eps=1e-8,
        eps_root=0.0,
        weight_decay=0.0,
        *,
        diff_weight="1-b2",
    ):
        self.lr, self.b1, self.b2, self.b3 = learning_rate, b1, b2, b3
        self.eps, self.eps_root, self.wd = eps, eps_root, weight_decay
        self.w = 1 - b2 if diff_weight == "1-b2" else b2

    def init(self, p):
        z = np.zeros_like(p)
        return {"m": z, "v": z, "n": z, "g": z, "t": 0}

    def step(self, g, s, p):
        t = s["t"] + 1
        diff = np.zeros_like(g) if t == 1 else g - s["g"]
        m = self.b1 * s["m"] + (1 - self.b1) * g
        v = self.b2 * s["v"] + (1 - self.b2) * diff
        n = self.b3 * s["n"] + (1 - self.b3) * (g + self.w * diff) ** 2
        m_hat, v_hat = m / (1 - self.b1**t), v / (1 - self.b2**t)
        n_hat = n / (1 - self.b3**t)
        d = (m_hat + self.w * v_hat) / (np.sqrt(n_hat + self.eps_root) + self.eps)
        u = -_at(self.lr, t - 1) * (d + _at(self.wd, t - 1) * p)
        return u, {"m": m, "v": v, "n": n, "g": g, "t": t}


class NovoGrad(Reference):
    """Ginsburg et al. 2019, Algorithm 1: a per-layer second moment of ||g||^2 (its first
    value is ||g_1||^2), the normalised gradient plus weight_decay * p in the momentum."""

    def __init__(
        self,
        learning_rate,
        b1=0.9,
        b2=0.25,
        eps=1e-6,
        eps_root=0.0,
        weight_decay=0.0,
        *,
        grad_averaging=False,
    ):
        self.lr, self.b1, self.b2, self.eps = learning_rate, b1, b2, eps
        self.eps_root, self.wd, self.averaging = eps_root, weight_decay, grad_averaging

    def init(self, p):
        return {"m": np.zeros_like(p), "v": 0.0, "t": 0}

    def step(self, g, s, p):
        t = s["t"]
        sq = float(np.sum(g * g))
        v = sq if t == 0 else self.b2 * s["v"] + (1 - self.b2) * sq
        u = g / (np.sqrt(v + self.eps_root) + self.eps) + self.wd * p
        damping = (1 - self.b1) if self.averaging else 1.0
        m = u if t == 0 else self.b1 * s["m"] + damping * u
        return -_at(self.lr, t) * m, {"m": m, "v": v, "t": t + 1}


class MARS(Reference):
    """Yuan et al. 2024, Algorithm 2 (MARS-AdamW, the approximate form with the last gradient):
    c = g + gamma b1 / (1 - b1) (g - g_prev) (g_prev = 0 at the first step), scaled to norm
    max_norm when longer; Adam's moments of c; decoupled weight decay times lr."""

    def __init__(
        self,
        learning_rate,
        b1=0.95,
        b2=0.99,
        gamma=0.025,
        eps=1e-8,
        weight_decay=0.0,
        *,
        max_norm=1.0,
        eps_uncorrected=False,
    ):
        self.lr, self.b1, self.b2, self.gamma, self.eps = learning_rate, b1, b2, gamma, eps
        self.wd, self.max_norm, self.uncorrected = weight_decay, max_norm, eps_uncorrected

    def init(self, p):
        z = np.zeros_like(p)
        return {"m": z, "v": z, "last": z, "t": 0}

    def step(self, g, s, p):
        t = s["t"] + 1
        c = g + self.gamma * self.b1 / (1 - self.b1) * (g - s["last"])
        norm = np.sqrt(np.sum(c * c))
        if self.max_norm is not None and norm > self.max_norm:
            c = c * (self.max_norm / norm)
        m = self.b1 * s["m"] + (1 - self.b1) * c
        v = self.b2 * s["v"] + (1 - self.b2) * c * c
        m_hat, v_hat = m / (1 - self.b1**t), v / (1 - self.b2**t)
        eps = self.eps / np.sqrt(1 - self.b2**t) if self.uncorrected else self.eps
        d = m_hat / (np.sqrt(v_hat) + eps)
        u = -_at(self.lr, t - 1) * (d + _at(self.wd, t - 1) * p)
        return u, {"m": m, "v": v, "last": g, "t": t}
