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
    """Adam (Kingma & Ba 2015) with every variant as an explicit option.

    amsgrad: Reddi et al. 2018, max over the raw v (then bias-corrected) or over v^.
    nesterov: Dozat 2016; "constant" m^ = b1 m/(1-b1^(t+1)) + (1-b1) g/(1-b1^t),
      "dozat" mu_s = b1 (1 - 0.5 * 0.96^(s * psi)), P_t = prod mu_s,
      m^ = mu_{t+1} m/(1-P_{t+1}) + (1-mu_t) g/(1-P_t).
    eps_uncorrected: eps added to sqrt(v_t) before the bias correction (the epsilon-hat of
      section 2), i.e. m^ / (sqrt(v^) + eps / sqrt(1 - b2^t)).
    weight_decay: decoupled, times lr (scale_decay_by_lr) or not.
    """

    def __init__(self, learning_rate, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0,
                 weight_decay=0.0, mask=None, *, nesterov=False, momentum_schedule="constant",
                 momentum_decay=4e-3, amsgrad=False, amsgrad_max="raw", eps_uncorrected=False,
                 scale_decay_by_lr=True):
        self.lr, self.b1, self.b2, self.eps, self.eps_root = learning_rate, b1, b2, eps, eps_root
        self.wd, self.nesterov, self.schedule, self.psi = (weight_decay, nesterov,
                                                           momentum_schedule, momentum_decay)
        self.amsgrad, self.max_of, self.eps_unc = amsgrad, amsgrad_max, eps_uncorrected
        self.wd_lr = scale_decay_by_lr

    def init(self, p):
        return {"m": np.zeros_like(p), "v": np.zeros_like(p), "vmax": np.zeros_like(p),
                "t": 0, "P": 1.0}

    def _mu(self, s):
        return self.b1 * (1 - 0.5 * 0.96 ** (s * self.psi))

    def step(self, g, s, p):
        t = s["t"] + 1
        b1, b2 = self.b1, self.b2
        m = b1 * s["m"] + (1 - b1) * g
        v = b2 * s["v"] + (1 - b2) * g * g
        prod = s["P"]
        if self.nesterov and self.schedule == "dozat":
            prod = prod * self._mu(t)
            prod_next = prod * self._mu(t + 1)
            m_hat = self._mu(t + 1) * m / (1 - prod_next) + (1 - self._mu(t)) * g / (1 - prod)
        elif self.nesterov:
            m_hat = b1 * m / (1 - b1 ** (t + 1)) + (1 - b1) * g / (1 - b1**t)
        else:
            m_hat = m / (1 - b1**t)
        vmax = s["vmax"]
        if self.amsgrad and self.max_of == "raw":
            vmax = np.maximum(vmax, v)
            v_hat = vmax / (1 - b2**t)
        elif self.amsgrad:
            vmax = np.maximum(vmax, v / (1 - b2**t))
            v_hat = vmax
        else:
            v_hat = v / (1 - b2**t)
        eps = self.eps / np.sqrt(1 - b2**t) if self.eps_unc else self.eps
        d = m_hat / (np.sqrt(v_hat + self.eps_root) + eps)
        decay = self.wd * p
        u = -self.lr * (d + decay) if self.wd_lr else -self.lr * d - decay
        return u, {"m": m, "v": v, "vmax": vmax, "t": t, "P": prod}


class Adamax(Reference):
    """Kingma & Ba 2015, section 7.1: u = max(b2 u, |g|); step m^ / (u + eps).

    eps_in_max: u = max(b2 u, |g| + eps), step m^ / u. Decoupled decay as in AdamW.
    """

    def __init__(self, learning_rate, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.0, mask=None,
                 *, eps_in_max=False, scale_decay_by_lr=True):
        self.lr, self.b1, self.b2, self.eps, self.wd = learning_rate, b1, b2, eps, weight_decay
        self.in_max, self.wd_lr = eps_in_max, scale_decay_by_lr

    def init(self, p):
        return {"m": np.zeros_like(p), "u": np.zeros_like(p), "t": 0}

    def step(self, g, s, p):
        t = s["t"] + 1
        m = self.b1 * s["m"] + (1 - self.b1) * g
        if self.in_max:
            u = np.maximum(self.b2 * s["u"], np.abs(g) + self.eps)
            d = m / (1 - self.b1**t) / u
        else:
            u = np.maximum(self.b2 * s["u"], np.abs(g))
            d = m / (1 - self.b1**t) / (u + self.eps)
        step = -self.lr * (d + self.wd * p) if self.wd_lr else -self.lr * d - self.wd * p
        return step, {"m": m, "u": u, "t": t}


class RAdam(Reference):
    """Liu et al. 2020, Algorithm 2 (threshold on rho_t; eps_uncorrected as in Adam)."""

    def __init__(self, learning_rate, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0, threshold=5.0,
                 *, eps_uncorrected=False):
        self.lr, self.b1, self.b2, self.eps, self.eps_root = learning_rate, b1, b2, eps, eps_root
        self.threshold, self.eps_unc = threshold, eps_uncorrected

    def init(self, p):
        return {"m": np.zeros_like(p), "v": np.zeros_like(p), "t": 0}

    def step(self, g, s, p):
        t = s["t"] + 1
        b1, b2 = self.b1, self.b2
        m = b1 * s["m"] + (1 - b1) * g
        v = b2 * s["v"] + (1 - b2) * g * g
        m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)
        rho_inf = 2 / (1 - b2) - 1
        rho = rho_inf - 2 * t * b2**t / (1 - b2**t)
        if rho > self.threshold:
            r = np.sqrt((rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho))
            eps = self.eps / np.sqrt(1 - b2**t) if self.eps_unc else self.eps
            d = r * m_hat / (np.sqrt(v_hat + self.eps_root) + eps)
        else:
            d = m_hat
        return -self.lr * d, {"m": m, "v": v, "t": t}


class Adadelta(Reference):
    """Zeiler 2012, Algorithm 1, with coupled L2 (g += wd * p) and a learning rate."""

    def __init__(self, learning_rate=1.0, rho=0.9, eps=1e-6, weight_decay=0.0):
        self.lr, self.rho, self.eps, self.wd = learning_rate, rho, eps, weight_decay

    def init(self, p):
        return {"eg": np.zeros_like(p), "ex": np.zeros_like(p)}

    def step(self, g, s, p):
        g = g + self.wd * p
        eg = self.rho * s["eg"] + (1 - self.rho) * g * g
        d = np.sqrt(s["ex"] + self.eps) / np.sqrt(eg + self.eps) * g
        ex = self.rho * s["ex"] + (1 - self.rho) * d * d
        return -self.lr * d, {"eg": eg, "ex": ex}


class FTRL(Reference):
    """McMahan et al. 2013, Algorithm 1 (per coordinate), with keras' generalisations:
    power p = -learning_rate_power, L2 shrinkage added to the gradient only."""

    def __init__(self, learning_rate, learning_rate_power=-0.5, initial_accumulator_value=0.1,
                 l1=0.0, l2=0.0, l2_shrinkage=0.0, beta=0.0, *, proximal_center="origin"):
        self.a, self.p, self.n0 = learning_rate, -learning_rate_power, initial_accumulator_value
        self.l1, self.l2, self.shrink, self.beta = l1, l2, l2_shrinkage, beta
        self.center = proximal_center

    def init(self, p):
        return {"n": np.full_like(p, self.n0), "z": np.zeros_like(p), "t": 0}

    def step(self, g, s, w):
        n_old, z = s["n"], s["z"]
        a = self.a(s["t"]) if callable(self.a) else self.a
        if self.center == "params" and s["t"] == 0:
            z = z - (self.beta + n_old**self.p) / a * w
        n = n_old + g * g
        sigma = (n**self.p - n_old**self.p) / a
        z = z + g + 2 * self.shrink * w - sigma * w
        q = (self.beta + n**self.p) / a + 2 * self.l2
        w_new = np.where(np.abs(z) <= self.l1, 0.0, -(z - self.l1 * np.sign(z)) / q)
        return w_new - w, {"n": n, "z": z, "t": s["t"] + 1}


class NesterovLookahead(Reference):
    """Sutskever et al. 2013, eqs. 3-4: v = mu v - lr g (g given at the look-ahead point)."""

    def __init__(self, learning_rate, momentum=0.9):
        self.lr, self.mu = learning_rate, momentum

    def init(self, p):
        return {"v": np.zeros_like(p)}

    def step(self, g, s, p):
        v = self.mu * s["v"] - self.lr * g
        return v, {"v": v}


class Lion(Reference):
    """Chen et al. 2023, Algorithm 2: sign(b1 m + (1-b1) g) + decoupled decay; m <- b2 EMA."""

    def __init__(self, learning_rate, b1=0.9, b2=0.99, weight_decay=1e-3, mask=None, *,
                 scale_decay_by_lr=True):
        self.lr, self.b1, self.b2, self.wd, self.wd_lr = (learning_rate, b1, b2, weight_decay,
                                                          scale_decay_by_lr)

    def init(self, p):
        return {"m": np.zeros_like(p)}

    def step(self, g, s, p):
        c = self.b1 * s["m"] + (1 - self.b1) * g
        d = np.sign(c)
        u = -self.lr * (d + self.wd * p) if self.wd_lr else -self.lr * d - self.wd * p
        return u, {"m": self.b2 * s["m"] + (1 - self.b2) * g}


def _trust(p, r, coefficient=1.0, eps=0.0):
    pn, rn = np.linalg.norm(p), np.linalg.norm(r)
    return 1.0 if pn == 0 or rn == 0 else coefficient * pn / (rn + eps)


class LAMB(Reference):
    """You et al. 2020, Algorithm 2 (layer = leaf, phi = identity)."""

    def __init__(self, learning_rate, b1=0.9, b2=0.999, eps=1e-6, eps_root=0.0,
                 weight_decay=0.0, mask=None):
        self.adam = Adam(1.0, b1, b2, eps, eps_root)
        self.lr, self.wd = learning_rate, weight_decay

    def init(self, p):
        return self.adam.init(p)

    def step(self, g, s, p):
        neg_d, s = self.adam.step(g, s, p)
        r = -neg_d + self.wd * p
        return -self.lr * _trust(p, r) * r, s


class LARS(Reference):
    """You et al. 2017, Algorithm 1 with heavy-ball (or Nesterov) momentum on the scaled step."""

    def __init__(self, learning_rate, weight_decay=0.0, weight_decay_mask=None,
                 trust_coefficient=1e-3, eps=0.0, trust_ratio_mask=None, momentum=0.9,
                 nesterov=False):
        self.lr, self.wd, self.tc, self.eps = learning_rate, weight_decay, trust_coefficient, eps
        self.mu, self.nesterov = momentum, nesterov

    def init(self, p):
        return {"v": np.zeros_like(p)}

    def step(self, g, s, p):
        d = g + self.wd * p
        step = -self.lr * _trust(p, d, self.tc, self.eps) * d
        v = self.mu * s["v"] + step
        return (step + self.mu * v if self.nesterov else v), {"v": v}


class Adafactor(Reference):
    """Shazeer & Stern 2018, Algorithms 4 and 5 (no momentum): factored second moments for
    matrices, update clipping, relative step scaled by max(eps2, RMS(theta))."""

    def __init__(self, learning_rate, decay_rate=0.8, eps=1e-30, clipping_threshold=1.0,
                 min_scale=1e-3, *, min_dim_size_to_factor=128, factored=True,
                 multiply_by_parameter_scale=True):
        self.lr, self.c, self.eps1, self.d, self.eps2 = (learning_rate, decay_rate, eps,
                                                         clipping_threshold, min_scale)
        self.min_dim, self.factored, self.scale_by_p = (min_dim_size_to_factor, factored,
                                                        multiply_by_parameter_scale)

    def _factor(self, p):
        return self.factored and p.ndim == 2 and min(p.shape) >= self.min_dim

    def init(self, p):
        if self._factor(p):
            return {"R": np.zeros(p.shape[0]), "C": np.zeros(p.shape[1]), "t": 0}
        return {"V": np.zeros_like(p), "t": 0}

    def step(self, g, s, p):
        t = s["t"] + 1
        b = 1 - t ** (-self.c)
        g2 = g * g + self.eps1
        if self._factor(p):
            n, m = p.shape
            # Algorithm 4 with sums: R = row sums, C = column sums, V = R C / (1^T R).
            row = b * s["R"] + (1 - b) * g2.sum(axis=1) / m
            col = b * s["C"] + (1 - b) * g2.sum(axis=0) / n
            v = np.outer(row * m, col * n) / (row * m).sum()
            new = {"R": row, "C": col, "t": t}
        else:
            v = b * s["V"] + (1 - b) * g2
            new = {"V": v, "t": t}
        u = g / np.sqrt(v)
        if self.d is not None:
            u = u / max(1.0, np.sqrt(np.mean(u * u)) / self.d)
        alpha = self.lr * (max(self.eps2, np.sqrt(np.mean(p * p))) if self.scale_by_p else 1.0)
        return -alpha * u, new


class SignSGD(Reference):
    """Bernstein et al. 2018: -lr sign(g)."""

    def __init__(self, learning_rate):
        self.lr = learning_rate

    def init(self, p):
        return {}

    def step(self, g, s, p):
        return -self.lr * np.sign(g), s


class Signum(Reference):
    """Bernstein et al. 2018, Algorithm 3: m = beta m + (1 - beta) g; -lr sign(m)."""

    def __init__(self, learning_rate, beta=0.9):
        self.lr, self.beta = learning_rate, beta

    def init(self, p):
        return {"m": np.zeros_like(p)}

    def step(self, g, s, p):
        m = self.beta * s["m"] + (1 - self.beta) * g
        return -self.lr * np.sign(m), {"m": m}


class AdaBelief(Reference):
    """Zhuang et al. 2020, Algorithm 2: s = b2 s + (1 - b2) (g - m)^2 + eps_root (new m)."""

    def __init__(self, learning_rate, b1=0.9, b2=0.999, eps=1e-16, eps_root=1e-16):
        self.lr, self.b1, self.b2, self.eps, self.eps_root = learning_rate, b1, b2, eps, eps_root

    def init(self, p):
        return {"m": np.zeros_like(p), "s": np.zeros_like(p), "t": 0}

    def step(self, g, s, p):
        t = s["t"] + 1
        m = self.b1 * s["m"] + (1 - self.b1) * g
        belief = self.b2 * s["s"] + (1 - self.b2) * (g - m) ** 2 + self.eps_root
        d = m / (1 - self.b1**t) / (np.sqrt(belief / (1 - self.b2**t)) + self.eps)
        return -self.lr * d, {"m": m, "s": belief, "t": t}


class Yogi(Reference):
    """Zaheer et al. 2018, Algorithm 2: v = v - (1 - b2) sign(v - g^2) g^2, plus Adam's bias
    correction of m and v."""

    def __init__(self, learning_rate, b1=0.9, b2=0.999, eps=1e-3, eps_root=0.0,
                 initial_accumulator_value=1e-6):
        self.lr, self.b1, self.b2, self.eps, self.eps_root = learning_rate, b1, b2, eps, eps_root
        self.v0 = initial_accumulator_value

    def init(self, p):
        return {"m": np.zeros_like(p), "v": np.full_like(p, self.v0), "t": 0}

    def step(self, g, s, p):
        t = s["t"] + 1
        m = self.b1 * s["m"] + (1 - self.b1) * g
        v = s["v"] - (1 - self.b2) * np.sign(s["v"] - g * g) * g * g
        d = m / (1 - self.b1**t) / (np.sqrt(v / (1 - self.b2**t) + self.eps_root) + self.eps)
        return -self.lr * d, {"m": m, "v": v, "t": t}

