"""Independent NumPy references, written from the published update equations.

Each reference works on one float64 NumPy array at a time and keeps its own
state dict. ``step(g, state, p) -> (update, state)`` returns the additive update
``theta_t - theta_{t-1}``.
"""

from __future__ import annotations

import numpy as np


class Reference:
    def init(self, p):
        raise NotImplementedError

    def step(self, g, s, p):
        raise NotImplementedError


class SGD(Reference):
    """Robbins-Monro SGD; heavy ball v = mu v + g; Nesterov step g + mu v."""

    def __init__(self, learning_rate, momentum=None, nesterov=False):
        self.lr, self.mu, self.nesterov = learning_rate, momentum, nesterov

    def init(self, p):
        return {"v": np.zeros_like(p)}

    def step(self, g, s, p):
        if self.mu is None:
            return -self.lr * g, s
        v = self.mu * s["v"] + g
        d = g + self.mu * v if self.nesterov else v
        return -self.lr * d, {"v": v}


class Adagrad(Reference):
    """Duchi et al. 2011: s += g^2; step -lr g / sqrt(s + eps) (or / (sqrt(s) + eps))."""

    def __init__(self, learning_rate, initial_accumulator_value=0.1, eps=1e-7, eps_in_sqrt=True):
        self.lr, self.s0, self.eps, self.inside = (learning_rate, initial_accumulator_value,
                                                   eps, eps_in_sqrt)

    def init(self, p):
        return {"s": np.full_like(p, self.s0)}

    def step(self, g, s, p):
        acc = s["s"] + g * g
        denom = np.sqrt(acc + self.eps) if self.inside else np.sqrt(acc) + self.eps
        return -self.lr * g / denom, {"s": acc}


class RMSProp(Reference):
    """Tieleman & Hinton 2012; Graves 2013 centered; momentum on the lr-scaled step."""

    def __init__(self, learning_rate, decay=0.9, eps=1e-8, initial_scale=0.0, eps_in_sqrt=True,
                 centered=False, momentum=None, nesterov=False):
        self.lr, self.rho, self.eps, self.nu0 = learning_rate, decay, eps, initial_scale
        self.inside, self.centered, self.mom, self.nesterov = (eps_in_sqrt, centered, momentum,
                                                               nesterov)

    def init(self, p):
        return {"nu": np.full_like(p, self.nu0), "mu": np.zeros_like(p), "b": np.zeros_like(p)}

    def step(self, g, s, p):
        nu = self.rho * s["nu"] + (1 - self.rho) * g * g
        mu = self.rho * s["mu"] + (1 - self.rho) * g
        var = nu - mu * mu if self.centered else nu
        denom = np.sqrt(var + self.eps) if self.inside else np.sqrt(var) + self.eps
        d = self.lr * g / denom
        b = s["b"]
        if self.mom is not None:
            b = self.mom * b + d
            d = d + self.mom * b if self.nesterov else b
        return -d, {"nu": nu, "mu": mu, "b": b}


class Adam(Reference):
    """Kingma & Ba 2015, Algorithm 1; Loshchilov & Hutter 2019 decoupled decay (times lr);
    optional Nesterov first moment (Dozat 2016, the form with constant b1)."""

    def __init__(self, learning_rate, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0,
                 weight_decay=0.0, nesterov=False):
        self.lr, self.b1, self.b2, self.eps, self.eps_root = learning_rate, b1, b2, eps, eps_root
        self.wd, self.nesterov = weight_decay, nesterov

    def init(self, p):
        return {"m": np.zeros_like(p), "v": np.zeros_like(p), "t": 0}

    def step(self, g, s, p):
        t = s["t"] + 1
        m = self.b1 * s["m"] + (1 - self.b1) * g
        v = self.b2 * s["v"] + (1 - self.b2) * g * g
        m_hat = m / (1 - self.b1**t)
        if self.nesterov:
            m_hat = self.b1 * m / (1 - self.b1 ** (t + 1)) + (1 - self.b1) * g / (1 - self.b1**t)
        v_hat = v / (1 - self.b2**t)
        d = m_hat / (np.sqrt(v_hat + self.eps_root) + self.eps) + self.wd * p
        return -self.lr * d, {"m": m, "v": v, "t": t}
