"""Independent NumPy references, written from the published update equations.

Each reference works on one float64 NumPy array at a time and keeps its own
state dict. ``step(g, state, p) -> (update, state)`` returns the additive update
``theta_t - theta_{t-1}``.
"""

from __future__ import annotations

import itertools

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
        self.lr, self.s0, self.eps, self.inside = (
            learning_rate,
            initial_accumulator_value,
            eps,
            eps_in_sqrt,
        )

    def init(self, p):
        return {"s": np.full_like(p, self.s0)}

    def step(self, g, s, p):
        acc = s["s"] + g * g
        denom = np.sqrt(acc + self.eps) if self.inside else np.sqrt(acc) + self.eps
        return -self.lr * g / denom, {"s": acc}


class RMSProp(Reference):
    """Tieleman & Hinton 2012; Graves 2013 centered; momentum on the lr-scaled step.

    bias_correction: both moments divided by ``1 - decay**t`` before they are used.
    """

    def __init__(
        self,
        learning_rate,
        decay=0.9,
        eps=1e-8,
        initial_scale=0.0,
        eps_in_sqrt=True,
        centered=False,
        momentum=None,
        nesterov=False,
        *,
        bias_correction=False,
    ):
        self.lr, self.rho, self.eps, self.nu0 = learning_rate, decay, eps, initial_scale
        self.inside, self.centered, self.mom, self.nesterov = (
            eps_in_sqrt,
            centered,
            momentum,
            nesterov,
        )
        self.corrected = bias_correction

    def init(self, p):
        return {
            "nu": np.full_like(p, self.nu0),
            "mu": np.zeros_like(p),
            "b": np.zeros_like(p),
            "t": 0,
        }

    def step(self, g, s, p):
        t = s["t"] + 1
        nu = self.rho * s["nu"] + (1 - self.rho) * g * g
        mu = self.rho * s["mu"] + (1 - self.rho) * g
        correction = 1 - self.rho**t if self.corrected else 1.0
        nu_hat, mu_hat = nu / correction, mu / correction
        var = nu_hat - mu_hat * mu_hat if self.centered else nu_hat
        denom = np.sqrt(var + self.eps) if self.inside else np.sqrt(var) + self.eps
        d = self.lr * g / denom
        b = s["b"]
        if self.mom is not None:
            b = self.mom * b + d
            d = d + self.mom * b if self.nesterov else b
        return -d, {"nu": nu, "mu": mu, "b": b, "t": t}


class Adam(Reference):
    """Adam (Kingma & Ba 2015) with every variant as an explicit option.

    amsgrad: Reddi et al. 2018, max over the raw v (then bias-corrected) or over v^.
    nesterov: Dozat 2016; "constant" m^ = b1 m/(1-b1^(t+1)) + (1-b1) g/(1-b1^t),
      "dozat" mu_s = b1 (1 - 0.5 * 0.96^(s * psi)), P_t = prod mu_s,
      m^ = mu_{t+1} m/(1-P_{t+1}) + (1-mu_t) g/(1-P_t).
    eps_uncorrected: eps added to sqrt(v_t) before the bias correction (the epsilon-hat of
      section 2), i.e. m^ / (sqrt(v^) + eps / sqrt(1 - b2^t)).
    weight_decay: decoupled, times lr (scale_decay_by_lr) or not.
    bias_correction_mu / bias_correction_nu (AMSGrad): without them m^ = m, and the maximum
      is taken over the uncorrected v and used as it is (the paper's algorithm).
    """

    def __init__(
        self,
        learning_rate,
        b1=0.9,
        b2=0.999,
        eps=1e-8,
        eps_root=0.0,
        weight_decay=0.0,
        mask=None,
        *,
        nesterov=False,
        momentum_schedule="constant",
        momentum_decay=4e-3,
        amsgrad=False,
        amsgrad_max="raw",
        eps_uncorrected=False,
        scale_decay_by_lr=True,
        bias_correction_mu=True,
        bias_correction_nu=True,
    ):
        self.lr, self.b1, self.b2, self.eps, self.eps_root = learning_rate, b1, b2, eps, eps_root
        self.wd, self.nesterov, self.schedule, self.psi = (
            weight_decay,
            nesterov,
            momentum_schedule,
            momentum_decay,
        )
        self.amsgrad, self.max_of, self.eps_unc = amsgrad, amsgrad_max, eps_uncorrected
        self.wd_lr = scale_decay_by_lr
        self.bc_mu, self.bc_nu = bias_correction_mu, bias_correction_nu

    def init(self, p):
        return {
            "m": np.zeros_like(p),
            "v": np.zeros_like(p),
            "vmax": np.zeros_like(p),
            "t": 0,
            "P": 1.0,
        }

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
            m_hat = m / (1 - b1**t) if self.bc_mu else m
        vmax = s["vmax"]
        if self.amsgrad and self.max_of == "raw":
            vmax = np.maximum(vmax, v)
            v_hat = vmax / (1 - b2**t)
        elif self.amsgrad:
            vmax = np.maximum(vmax, v / (1 - b2**t) if self.bc_nu else v)
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

    def __init__(
        self,
        learning_rate,
        b1=0.9,
        b2=0.999,
        eps=1e-8,
        weight_decay=0.0,
        mask=None,
        *,
        eps_in_max=False,
        scale_decay_by_lr=True,
    ):
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
    """Liu et al. 2020, Algorithm 2 (threshold on rho_t; eps_uncorrected as in Adam;
    nesterov: Adam's Nesterov m^ = b1 m/(1-b1^(t+1)) + (1-b1) g/(1-b1^t))."""

    def __init__(
        self,
        learning_rate,
        b1=0.9,
        b2=0.999,
        eps=1e-8,
        eps_root=0.0,
        threshold=5.0,
        *,
        eps_uncorrected=False,
        nesterov=False,
    ):
        self.lr, self.b1, self.b2, self.eps, self.eps_root = learning_rate, b1, b2, eps, eps_root
        self.threshold, self.eps_unc, self.nesterov = threshold, eps_uncorrected, nesterov

    def init(self, p):
        return {"m": np.zeros_like(p), "v": np.zeros_like(p), "t": 0}

    def step(self, g, s, p):
        t = s["t"] + 1
        b1, b2 = self.b1, self.b2
        m = b1 * s["m"] + (1 - b1) * g
        v = b2 * s["v"] + (1 - b2) * g * g
        m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)
        if self.nesterov:
            m_hat = b1 * m / (1 - b1 ** (t + 1)) + (1 - b1) * g / (1 - b1**t)
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

    def __init__(
        self, learning_rate=None, rho=0.9, eps=1e-6, weight_decay=0.0, weight_decay_mask=None
    ):
        # No learning rate (the paper's step) is eta = 1; the mask is applied per leaf.
        learning_rate = 1.0 if learning_rate is None else learning_rate
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

    def __init__(
        self,
        learning_rate,
        learning_rate_power=-0.5,
        initial_accumulator_value=0.1,
        l1=0.0,
        l2=0.0,
        l2_shrinkage=0.0,
        beta=0.0,
        *,
        proximal_center="origin",
    ):
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
    """Chen et al. 2023, Algorithm 2: sign(b1 m + (1-b1) g) + decoupled decay; m <- b2 EMA.

    mode (optax's): "smooth" is tanh(smooth_beta c) in place of sign(c), "refined" is c
    where |c| < 1 and sign(c) elsewhere.
    """

    def __init__(
        self,
        learning_rate,
        b1=0.9,
        b2=0.99,
        weight_decay=1e-3,
        mask=None,
        *,
        scale_decay_by_lr=True,
        mode="hard",
        smooth_beta=1.0,
    ):
        self.lr, self.b1, self.b2, self.wd, self.wd_lr = (
            learning_rate,
            b1,
            b2,
            weight_decay,
            scale_decay_by_lr,
        )
        self.mode, self.smooth_beta = mode, smooth_beta

    def init(self, p):
        return {"m": np.zeros_like(p)}

    def step(self, g, s, p):
        c = self.b1 * s["m"] + (1 - self.b1) * g
        if self.mode == "smooth":
            d = np.tanh(self.smooth_beta * c)
        elif self.mode == "refined":
            d = np.where(np.abs(c) < 1, c, np.sign(c))
        else:
            d = np.sign(c)
        u = -self.lr * (d + self.wd * p) if self.wd_lr else -self.lr * d - self.wd * p
        return u, {"m": self.b2 * s["m"] + (1 - self.b2) * g}


def _trust(p, r, coefficient=1.0, eps=0.0):
    pn, rn = np.linalg.norm(p), np.linalg.norm(r)
    return 1.0 if pn == 0 or rn == 0 else coefficient * pn / (rn + eps)


class LAMB(Reference):
    """You et al. 2020, Algorithm 2 (layer = leaf, phi = identity)."""

    def __init__(
        self, learning_rate, b1=0.9, b2=0.999, eps=1e-6, eps_root=0.0, weight_decay=0.0, mask=None
    ):
        self.adam = Adam(1.0, b1, b2, eps, eps_root)
        self.lr, self.wd = learning_rate, weight_decay

    def init(self, p):
        return self.adam.init(p)

    def step(self, g, s, p):
        neg_d, s = self.adam.step(g, s, p)
        r = -neg_d + self.wd * p
        return -self.lr * _trust(p, r) * r, s


class LARS(Reference):
    """You et al. 2017, Algorithm 1 with heavy-ball (or Nesterov) momentum on the scaled step.

    trust_ratio=False: the leaf takes the global rate alone (local rate 1).
    """

    def __init__(
        self,
        learning_rate,
        weight_decay=0.0,
        weight_decay_mask=None,
        trust_coefficient=1e-3,
        eps=0.0,
        trust_ratio_mask=None,
        momentum=0.9,
        nesterov=False,
        *,
        trust_ratio=True,
    ):
        self.lr, self.wd, self.tc, self.eps = learning_rate, weight_decay, trust_coefficient, eps
        self.mu, self.nesterov, self.trust_ratio = momentum, nesterov, trust_ratio

    def init(self, p):
        return {"v": np.zeros_like(p)}

    def step(self, g, s, p):
        d = g + self.wd * p
        local = _trust(p, d, self.tc, self.eps) if self.trust_ratio else 1.0
        step = -self.lr * local * d
        v = self.mu * s["v"] + step
        return (step + self.mu * v if self.nesterov else v), {"v": v}


def decay_rate_pow(step, decay_rate):
    """Adafactor's decay schedule, ``1 - (step + 1)**(-decay_rate)`` (step 0 at the first)."""
    return 1.0 - (step + 1.0) ** (-decay_rate)


class FactoredRMS(Reference):
    """Shazeer & Stern 2018, Algorithm 4 (factored) and 5's second moment: ``u = g / sqrt(V)``.

    A leaf with two or more axes whose second longest is at least ``min_dim_size_to_factor``
    is factored over its two longest axes (d0 the longest, d1 the next): row statistics
    average over d0, column statistics over d1, and ``V = R C / mean(R)``. The decay is
    ``b = decay_rate_fn(count - step_offset, decay_rate)``, count 0 at the first step.
    """

    def __init__(
        self,
        factored=True,
        decay_rate=0.8,
        step_offset=0,
        min_dim_size_to_factor=128,
        epsilon=1e-30,
        decay_rate_fn=decay_rate_pow,
    ):
        self.factored, self.c, self.offset = factored, decay_rate, step_offset
        self.min_dim, self.eps1, self.fn = min_dim_size_to_factor, epsilon, decay_rate_fn

    def _dims(self, p):
        if not self.factored or p.ndim < 2:
            return None
        order = sorted(range(p.ndim), key=lambda a: (p.shape[a], a))
        d1, d0 = order[-2], order[-1]
        return (d1, d0) if p.shape[d1] >= self.min_dim else None

    def init(self, p):
        dims = self._dims(p)
        if dims is None:
            return {"V": np.zeros_like(p), "t": 0}
        d1, d0 = dims
        return {
            "R": np.zeros(np.delete(p.shape, d0)),
            "C": np.zeros(np.delete(p.shape, d1)),
            "t": 0,
        }

    def step(self, g, s, p):
        b = float(self.fn(s["t"] - self.offset, self.c))
        g2 = g * g + self.eps1
        dims = self._dims(p)
        if dims is None:
            v = b * s["V"] + (1 - b) * g2
            return g / np.sqrt(v), {"V": v, "t": s["t"] + 1}
        d1, d0 = dims
        row = b * s["R"] + (1 - b) * g2.mean(axis=d0)
        col = b * s["C"] + (1 - b) * g2.mean(axis=d1)
        r = np.expand_dims(row, d0)  # row statistics live on the d1 axis
        c = np.expand_dims(col, d1)
        v = r * c / r.mean(axis=d1, keepdims=True)
        return g / np.sqrt(v), {"R": row, "C": col, "t": s["t"] + 1}


class Adafactor(Reference):
    """Shazeer & Stern 2018, Algorithms 4 and 5, in optax's chain: the factored direction,
    update clipping ``u / max(1, RMS(u) / d)``, times ``eta_t`` (if given), times
    ``max(min_scale, RMS(theta))`` (if multiply_by_parameter_scale), an undebiased moving
    average ``m = momentum m + (1 - momentum) u`` (if momentum), plus
    ``weight_decay_rate * theta`` (if given), all negated."""

    def __init__(
        self,
        learning_rate=None,
        min_dim_size_to_factor=128,
        decay_rate=0.8,
        decay_offset=0,
        multiply_by_parameter_scale=True,
        clipping_threshold=1.0,
        momentum=None,
        weight_decay_rate=None,
        eps=1e-30,
        factored=True,
        weight_decay_mask=None,
        *,
        min_scale=1e-3,
    ):
        self.rms = FactoredRMS(factored, decay_rate, decay_offset, min_dim_size_to_factor, eps)
        self.lr, self.d, self.scale_by_p = (
            learning_rate,
            clipping_threshold,
            multiply_by_parameter_scale,
        )
        self.mom, self.wd, self.eps2 = momentum, weight_decay_rate, min_scale

    def init(self, p):
        return {"rms": self.rms.init(p), "m": np.zeros_like(p), "t": 0}

    def step(self, g, s, p):
        u, rms = self.rms.step(g, s["rms"], p)
        if self.d is not None:
            u = u / max(1.0, np.sqrt(np.mean(u * u)) / self.d)
        if self.lr is not None:
            u = u * (float(self.lr(s["t"])) if callable(self.lr) else self.lr)
        if self.scale_by_p:
            u = u * max(self.eps2, np.sqrt(np.mean(p * p)))
        m = s["m"]
        if self.mom is not None:
            m = self.mom * m + (1 - self.mom) * u
            u = m
        if self.wd is not None:
            u = u + (float(self.wd(s["t"])) if callable(self.wd) else self.wd) * p
        return -u, {"rms": rms, "m": m, "t": s["t"] + 1}


class SignSGD(Reference):
    """Bernstein et al. 2018: -lr sign(g) (``learning_rate`` a number or a schedule)."""

    def __init__(self, learning_rate):
        self.lr = learning_rate

    def init(self, p):
        return {"t": 0}

    def step(self, g, s, p):
        lr = float(self.lr(s["t"])) if callable(self.lr) else self.lr
        return -lr * np.sign(g), {"t": s["t"] + 1}


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
    """Zhuang et al. 2020, Algorithm 2: s = b2 s + (1 - b2) (g - m)^2 + eps_root (new m);
    nesterov: Adam's Nesterov m^ in place of m / (1 - b1^t)."""

    def __init__(
        self, learning_rate, b1=0.9, b2=0.999, eps=1e-16, eps_root=1e-16, *, nesterov=False
    ):
        self.lr, self.b1, self.b2, self.eps, self.eps_root = learning_rate, b1, b2, eps, eps_root
        self.nesterov = nesterov

    def init(self, p):
        return {"m": np.zeros_like(p), "s": np.zeros_like(p), "t": 0}

    def step(self, g, s, p):
        t = s["t"] + 1
        m = self.b1 * s["m"] + (1 - self.b1) * g
        belief = self.b2 * s["s"] + (1 - self.b2) * (g - m) ** 2 + self.eps_root
        b1 = self.b1
        if self.nesterov:
            m_hat = b1 * m / (1 - b1 ** (t + 1)) + (1 - b1) * g / (1 - b1**t)
        else:
            m_hat = m / (1 - b1**t)
        d = m_hat / (np.sqrt(belief / (1 - self.b2**t)) + self.eps)
        return -self.lr * d, {"m": m, "s": belief, "t": t}


class Yogi(Reference):
    """Zaheer et al. 2018, Algorithm 2: v = v - (1 - b2) sign(v - g^2) g^2, plus Adam's bias
    correction of m and v."""

    def __init__(
        self,
        learning_rate,
        b1=0.9,
        b2=0.999,
        eps=1e-3,
        eps_root=0.0,
        initial_accumulator_value=1e-6,
    ):
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


# --------------------------------------------------------------------- primitives
#
# A ``scale_by_*`` primitive returns the direction an optimizer steps along; the
# optimizers above return ``-learning_rate`` times it. ``Negated(Opt(1.0, ...))`` is
# therefore the primitive's reference; the ones below have no optimizer around them.


class Negated(Reference):
    """``-step`` of a reference optimizer (built with learning rate 1): its direction."""

    def __init__(self, reference):
        self.ref = reference

    def init(self, p):
        return self.ref.init(p)

    def step(self, g, s, p):
        u, s = self.ref.step(g, s, p)
        return -u, s


class Identity(Reference):
    def init(self, p):
        return {}

    def step(self, g, s, p):
        return g, s


class SetToZero(Identity):
    def step(self, g, s, p):
        return np.zeros_like(g), s


class Sign(Identity):
    """Bernstein et al. 2018: sign(g), sign(0) = 0."""

    def step(self, g, s, p):
        return np.sign(g), s


class ZeroNans(Identity):
    def step(self, g, s, p):
        return np.where(np.isnan(g), 0.0, g), s


class Scale(Identity):
    def __init__(self, step_size):
        self.c = step_size

    def step(self, g, s, p):
        return self.c * g, s


class ScaleBySchedule(Reference):
    """``eta(t) * g`` with ``t`` the number of earlier updates (0 at the first)."""

    def __init__(self, step_size_fn):
        self.fn = step_size_fn

    def init(self, p):
        return {"t": 0}

    def step(self, g, s, p):
        return float(self.fn(s["t"])) * g, {"t": s["t"] + 1}


class ScaleByLearningRate(ScaleBySchedule):
    """``-eta(t) g`` (``flip_sign``) or ``eta(t) g``; ``eta`` a number or a schedule."""

    def __init__(self, learning_rate=None, flip_sign=True):
        # None: no scaling at all, whatever flip_sign.
        sign = 1.0 if learning_rate is None or not flip_sign else -1.0
        lr = 1.0 if learning_rate is None else learning_rate
        super().__init__(lambda t: sign * (float(lr(t)) if callable(lr) else lr))


class Ema(Reference):
    """The updates' exponential moving average, debiased as Kingma & Ba 2015 (Alg. 1)."""

    def __init__(self, decay, debias=True):
        self.d, self.debias = decay, debias

    def init(self, p):
        return {"e": np.zeros_like(p), "t": 0}

    def step(self, g, s, p):
        t = s["t"] + 1
        e = self.d * s["e"] + (1 - self.d) * g
        return (e / (1 - self.d**t) if self.debias else e), {"e": e, "t": t}


class Measured(Reference):
    """``inner`` applied to ``measure(g)`` in place of ``g`` (a measurement's average)."""

    def __init__(self, measure, inner):
        self.measure, self.inner = measure, inner

    def init(self, p):
        return self.inner.init(p)

    def step(self, g, s, p):
        return self.inner.step(np.asarray(self.measure(g), np.float64), s, p)


class Momentum(Reference):
    """Polyak 1964 heavy ball ``v = mu v + g``; ``ema``: ``v = mu v + (1 - mu) g``.
    Nesterov (Sutskever et al. 2013, in the form of Bengio et al. 2013): the step is
    ``g + mu v`` (``ema``: ``mu v + (1 - mu) g``)."""

    def __init__(self, decay=0.9, nesterov=False, ema=False):
        self.mu, self.nesterov, self.w = decay, nesterov, (1 - decay) if ema else 1.0

    def init(self, p):
        return {"v": np.zeros_like(p)}

    def step(self, g, s, p):
        v = self.mu * s["v"] + self.w * g
        return (self.mu * v + self.w * g if self.nesterov else v), {"v": v}


class AddDecayedWeights(Identity):
    """``g + lambda theta`` (Loshchilov & Hutter 2019 when placed before the learning rate)."""

    def __init__(self, weight_decay=0.0):
        self.wd = weight_decay

    def step(self, g, s, p):
        return g + self.wd * p, s


class TrustRatio(Identity):
    """You et al. 2017/2020: ``g * coefficient ||theta|| / (||g|| + eps)``, 1 if a norm is 0."""

    def __init__(self, min_norm=0.0, trust_coefficient=1.0, eps=0.0, *, active=True):
        self.min_norm, self.tc, self.eps, self.active = min_norm, trust_coefficient, eps, active

    def step(self, g, s, p):
        if not self.active:
            return g, s
        pn = max(np.linalg.norm(p), self.min_norm)
        un = max(np.linalg.norm(g), self.min_norm)
        ratio = 1.0 if pn == 0 or un == 0 else self.tc * pn / (un + self.eps)
        return g * ratio, s


class ParamBlockRMS(Identity):
    """Shazeer & Stern 2018, Algorithm 4: the step times ``max(eps2, RMS(theta))``."""

    def __init__(self, min_scale=1e-3):
        self.eps2 = min_scale

    def step(self, g, s, p):
        return g * max(self.eps2, np.sqrt(np.mean(p * p))), s


class ParamBlockNorm(Identity):
    """The step times ``max(min_scale, ||theta||)`` per leaf (the l2 norm, not the RMS)."""

    def __init__(self, min_scale=1e-3):
        self.min_scale = min_scale

    def step(self, g, s, p):
        return g * max(self.min_scale, np.linalg.norm(p)), s


class KeepParamsNonnegative(Identity):
    """Projection onto theta >= 0: ``u = -theta`` where ``theta + u < 0``."""

    def step(self, g, s, p):
        return np.where(p + g < 0, -p, g), s


class ApplyEvery(Reference):
    """The sum of ``k`` consecutive updates, emitted at every ``k``-th step, else zero."""

    def __init__(self, k=1):
        self.k = k

    def init(self, p):
        return {"acc": np.zeros_like(p), "t": 0}

    def step(self, g, s, p):
        acc = g + (s["acc"] if s["t"] % self.k != 0 else 0.0)
        out = acc if s["t"] % self.k == self.k - 1 else np.zeros_like(g)
        return out, {"acc": acc, "t": s["t"] + 1}


def _rescale(g, norm, limit, on_nonfinite):
    """``g * limit / norm`` where ``norm > limit``; a non-finite norm zeroes (or NaNs) ``g``."""
    if not np.isfinite(norm):
        return np.zeros_like(g) if on_nonfinite == "zero" else np.full_like(g, np.nan)
    return g * (limit / norm) if norm > limit else g


class Clip(Identity):
    def __init__(self, max_delta):
        self.d = max_delta

    def step(self, g, s, p):
        return np.clip(g, -self.d, self.d), s


class ClipByBlockRMS(Identity):
    """Shazeer & Stern 2018, update clipping: ``g / max(1, RMS(g) / d)`` per leaf."""

    def __init__(self, threshold, on_nonfinite="zero"):
        self.d, self.nonfinite = threshold, on_nonfinite

    def step(self, g, s, p):
        return _rescale(g, np.sqrt(np.mean(g * g)), self.d, self.nonfinite), s


def _units(x):
    """The output units of a leaf: slices along its last axis (the whole leaf if ndim <= 1)."""
    if x.ndim <= 1:
        return [(Ellipsis,)]
    return [(Ellipsis, j) for j in range(x.shape[-1])]


class AdaptiveGradClip(Identity):
    """Brock et al. 2021, eq. 3: per unit, ``g`` rescaled to norm at most
    ``clipping * max(||theta||, eps)``."""

    def __init__(self, clipping, eps=1e-3, axis=None, on_nonfinite="zero"):
        self.lam, self.eps, self.nonfinite, self.axis = clipping, eps, on_nonfinite, axis

    def step(self, g, s, p):
        if self.axis is not None:  # one unit per index of the axes not in ``axis``
            gn = np.sqrt(np.sum(g * g, axis=self.axis, keepdims=True))
            pn = np.sqrt(np.sum(p * p, axis=self.axis, keepdims=True))
            limit = self.lam * np.maximum(pn, self.eps)
            with np.errstate(invalid="ignore", divide="ignore"):
                out = np.where(gn > limit, g * limit / gn, g)
            bad = ~np.isfinite(gn) & np.ones_like(g, bool)
            return np.where(bad, 0.0 if self.nonfinite == "zero" else np.nan, out), s
        out = np.array(g, np.float64)
        for unit in _units(g):
            limit = self.lam * max(np.linalg.norm(p[unit]), self.eps)
            out[unit] = _rescale(g[unit], np.linalg.norm(g[unit]), limit, self.nonfinite)
        return out, s


class Centralize(Identity):
    """Yong et al. 2020: each slice along the first axis (the output unit of an ``(out, in)``
    weight) less its mean over all the other axes."""

    def step(self, g, s, p):
        if g.ndim < 2:
            return g, s
        return g - g.mean(axis=tuple(range(1, g.ndim)), keepdims=True), s


# ------------------------------------------------------------ references over trees
#
# Some transformations couple the leaves (a global norm) or wrap another one. Their
# references work on the list of leaves: ``init(ps)``, ``step(gs, s, ps, **extra) ->
# (updates, s)`` and ``observe(s)``, the state quantities a test compares (a loss
# scale, an average of the weights).


class TreeReference:
    def init(self, ps):
        raise NotImplementedError

    def step(self, gs, s, ps, **extra):
        raise NotImplementedError

    def observe(self, s):
        return []


class PerLeaf(TreeReference):
    """One leaf reference per leaf (each may have its own settings, e.g. a mask)."""

    def __init__(self, refs):
        self.refs = list(refs)

    def init(self, ps):
        return [r.init(p) for r, p in zip(self.refs, ps, strict=True)]

    def step(self, gs, s, ps, **extra):
        out = [r.step(g, si, p) for r, g, si, p in zip(self.refs, gs, s, ps, strict=True)]
        return [u for u, _ in out], [si for _, si in out]


class ClipByGlobalNorm(TreeReference):
    """Pascanu et al. 2013: every leaf times ``max_norm / ||g||`` when ``||g|| > max_norm``."""

    def __init__(self, max_norm, on_nonfinite="zero"):
        self.c, self.nonfinite = max_norm, on_nonfinite

    def init(self, ps):
        return ()

    def step(self, gs, s, ps, **extra):
        norm = np.sqrt(sum(float(np.sum(g * g)) for g in gs))
        return [_rescale(g, norm, self.c, self.nonfinite) for g in gs], s


class NormalizeByUpdateNorm(TreeReference):
    """Every leaf times ``scale_factor / (||u|| + eps)``, ``||u||`` the global l2 norm."""

    def __init__(self, scale_factor=1.0, eps=1e-6):
        self.c, self.eps = scale_factor, eps

    def init(self, ps):
        return ()

    def step(self, gs, s, ps, **extra):
        norm = np.sqrt(sum(float(np.sum(g * g)) for g in gs))
        return [self.c * g / (norm + self.eps) for g in gs], s


class Conditionally(TreeReference):
    """``inner`` at the steps where ``should_transform_fn(step[, **extra])`` holds (step 0
    at the first call); elsewhere the updates pass through (``mask=False``) or are zero
    (``mask=True``) and the inner state is kept."""

    def __init__(self, inner, should_transform_fn, forward_extra_args=False, *, mask=False):
        self.inner, self.fn, self.forward, self.mask = (
            inner,
            should_transform_fn,
            forward_extra_args,
            mask,
        )

    def init(self, ps):
        return {"inner": self.inner.init(ps), "t": 0}

    def step(self, gs, s, ps, **extra):
        take = self.fn(s["t"], **extra) if self.forward else self.fn(s["t"])
        if bool(take):
            us, inner = self.inner.step(gs, s["inner"], ps, **extra)
        else:
            us, inner = [np.zeros_like(g) if self.mask else g for g in gs], s["inner"]
        return us, {"inner": inner, "t": s["t"] + 1}


def _finite(xs):
    return all(np.all(np.isfinite(x)) for x in xs)


class ApplyIfFinite(TreeReference):
    """Skip a step (zero update, inner state kept) whose gradients or updates are not all
    finite, unless more than ``max_consecutive_errors`` were skipped in a row."""

    def __init__(self, inner, max_consecutive_errors):
        self.inner, self.limit = inner, max_consecutive_errors

    def init(self, ps):
        return {"inner": self.inner.init(ps), "bad": 0, "total": 0}

    def step(self, gs, s, ps, **extra):
        us, inner = self.inner.step(gs, s["inner"], ps, **extra)
        finite = _finite(gs) and _finite(us)
        bad = 0 if finite else s["bad"] + 1
        if not (finite or bad > self.limit):
            us, inner = [np.zeros_like(u) for u in us], s["inner"]
        return us, {"inner": inner, "bad": bad, "total": s["total"] + (not finite)}

    def observe(self, s):
        return [np.float64(s["bad"]), np.float64(s["total"])]


class DynamicLossScaling(TreeReference):
    """Micikevicius et al. 2018, section 3.2: gradients divided by the scale ``S``; an
    overflowing step is skipped and ``S`` backs off (not below ``min_scale``); after
    ``growth_interval`` finite steps in a row ``S`` grows."""

    def __init__(
        self,
        inner,
        initial_scale=2.0**15,
        growth_interval=2000,
        growth_factor=2.0,
        backoff_factor=0.5,
        min_scale=1.0,
    ):
        self.inner, self.s0, self.interval = inner, initial_scale, growth_interval
        self.up, self.down, self.floor = growth_factor, backoff_factor, min_scale

    def init(self, ps):
        return {"inner": self.inner.init(ps), "S": float(self.s0), "good": 0}

    def step(self, gs, s, ps, **extra):
        scale = s["S"]
        us, inner = self.inner.step([g / scale for g in gs], s["inner"], ps, **extra)
        if _finite(gs) and _finite(us):
            good = s["good"] + 1
            if good >= self.interval:
                scale, good = min(scale * self.up, float(np.finfo(np.float32).max)), 0
            return us, {"inner": inner, "S": scale, "good": good}
        zeros = [np.zeros_like(u) for u in us]
        return zeros, {"inner": s["inner"], "S": max(scale * self.down, self.floor), "good": 0}

    def observe(self, s):
        return [np.float64(s["S"])]


class MultiSteps(TreeReference):
    """Gradient accumulation: the inner step on the mean (or sum) of ``k`` gradients, zero
    between. ``skip_above``: a mini-batch whose squared gradient norm exceeds it is dropped
    (zero update, nothing accumulated, not counted)."""

    def __init__(self, inner, every_k_schedule, use_grad_mean=True, skip_above=None):
        self.inner, self.k, self.mean, self.skip = (
            inner,
            every_k_schedule,
            use_grad_mean,
            skip_above,
        )

    def init(self, ps):
        return {
            "inner": self.inner.init(ps),
            "acc": [np.zeros_like(p) for p in ps],
            "n": 0,
            "steps": 0,
        }

    def step(self, gs, s, ps, **extra):
        if self.skip is not None and sum(float(np.sum(g * g)) for g in gs) > self.skip:
            return [np.zeros_like(g) for g in gs], s
        k = int(self.k(s["steps"])) if callable(self.k) else self.k
        n = s["n"] + 1
        acc = [a + ((g - a) / n if self.mean else g) for a, g in zip(s["acc"], gs, strict=True)]
        if n < max(k, 1):
            return [np.zeros_like(g) for g in gs], {**s, "acc": acc, "n": n}
        us, inner = self.inner.step(acc, s["inner"], ps, **extra)
        return us, {
            "inner": inner,
            "acc": [np.zeros_like(a) for a in acc],
            "n": 0,
            "steps": s["steps"] + 1,
        }


class EmaParams(TreeReference):
    """Polyak averaging of the weights after ``inner``'s update: ``ema_1 = theta_1``,
    ``ema_t = d_t ema_{t-1} + (1 - d_t) theta_t``, ``d_t = decay`` or, with warmup (as
    tf.train.ExponentialMovingAverage with num_updates), ``min(decay, t / (t + 9))``."""

    def __init__(self, inner, decay=0.99, warmup=False):
        self.inner, self.decay, self.warmup = inner, decay, warmup

    def init(self, ps):
        return {"inner": self.inner.init(ps), "ema": None, "t": 0}

    def step(self, gs, s, ps, **extra):
        us, inner = self.inner.step(gs, s["inner"], ps, **extra)
        theta = [p + u for p, u in zip(ps, us, strict=True)]
        t = s["t"] + 1
        d = min(self.decay, t / (t + 9)) if self.warmup else self.decay
        ema = (
            theta if t == 1 else [d * e + (1 - d) * x for e, x in zip(s["ema"], theta, strict=True)]
        )
        return us, {"inner": inner, "ema": ema, "t": t}

    def observe(self, s):
        return list(s["ema"])


class Lookahead(TreeReference):
    """Zhang et al. 2019, Algorithm 1: ``k`` fast steps, then ``phi += alpha (theta - phi)``
    and the fast weights restart from ``phi``."""

    def __init__(self, inner, sync_period=5, slow_step_size=0.5, reset_state=False):
        self.inner, self.k, self.alpha = inner, sync_period, slow_step_size
        self.reset = reset_state

    def init(self, ps):
        return {"inner": self.inner.init(ps), "slow": [np.array(p) for p in ps], "t": 0}

    def step(self, gs, s, ps, **extra):
        us, inner = self.inner.step(gs, s["inner"], ps, **extra)
        t, slow = s["t"] + 1, s["slow"]
        if t % self.k == 0:
            slow = [
                phi + self.alpha * (p + u - phi) for phi, p, u in zip(slow, ps, us, strict=True)
            ]
            us = [phi - p for phi, p in zip(slow, ps, strict=True)]
            if self.reset:  # the fast optimizer starts afresh from the synced weights
                inner = self.inner.init(ps)
        return us, {"inner": inner, "slow": slow, "t": t}


class ReduceOnPlateau(TreeReference):
    """Performance scheduling (Senior et al. 2013) by optax.contrib.reduce_on_plateau's rule,
    on a scale that starts at 1. Every ``accumulation_size`` values, their mean ``v`` is a
    decision: an improvement if ``v < (1 - rtol) best - atol`` (mode "max": ``v > (1 + rtol)
    best + atol``), which makes ``v`` the best; otherwise the plateau count grows. During a
    cooldown a decision only counts the cooldown down (the plateau count stays 0); else a
    plateau count reaching ``patience`` multiplies the scale by ``factor`` (not below
    ``min_scale``), clears the count and starts ``cooldown`` decisions of cooldown. The
    updates are times the scale after this step's decision."""

    def __init__(
        self,
        factor=0.1,
        patience=10,
        rtol=1e-4,
        atol=0.0,
        cooldown=0,
        accumulation_size=1,
        min_scale=0.0,
        mode="min",
    ):
        self.factor, self.patience, self.rtol, self.atol = factor, patience, rtol, atol
        self.cooldown, self.size, self.floor = cooldown, accumulation_size, min_scale
        self.min = mode == "min"

    def init(self, ps):
        return {
            "scale": 1.0,
            "best": np.inf if self.min else -np.inf,
            "plateau": 0,
            "cool": 0,
            "values": [],
        }

    def _better(self, v, best):
        if self.min:
            return v < (1 - self.rtol) * best - self.atol
        return v > (1 + self.rtol) * best + self.atol

    def step(self, gs, s, ps, *, value, **extra):
        s = {**s, "values": [*s["values"], float(value)]}
        if len(s["values"]) == self.size:
            v = float(np.mean(s["values"]))
            s["values"] = []
            improved = self._better(v, s["best"])
            if improved:
                s["best"] = v
            plateau = 0 if improved else s["plateau"] + 1
            if s["cool"] > 0:
                s["plateau"], s["cool"] = 0, s["cool"] - 1
            elif plateau == self.patience:
                s["scale"] = max(s["scale"] * self.factor, self.floor)
                s["plateau"], s["cool"] = 0, self.cooldown
            else:
                s["plateau"] = plateau
        return [s["scale"] * g for g in gs], s

    def observe(self, s):
        return [np.float64(s["scale"])]


# ---------------------------------------------------------------------- schedules
#
# Each takes a step ``t`` (a Python int, 0 at the first update) and the schedule's
# arguments by the names gradxform uses, and returns a float (float64 throughout).


def _keep(shape, frac):
    """The fraction of the start value left at progress ``frac`` of an annealing."""
    return {
        "linear": 1 - frac,
        "cosine": (1 + np.cos(np.pi * frac)) / 2,
        "1-sqrt": 1 - np.sqrt(frac),
    }[shape]


def constant_schedule(t, value):
    return value


def polynomial_schedule(t, init_value, end_value, power, transition_steps, transition_begin=0):
    """Chen et al. 2018 ("poly"), keras PolynomialDecay, with a delayed start."""
    done = min(max(t - transition_begin, 0), transition_steps) / transition_steps
    return end_value + (init_value - end_value) * (1 - done) ** power


def linear_schedule(t, init_value, end_value, transition_steps, transition_begin=0):
    done = min(max(t - transition_begin, 0), transition_steps) / transition_steps
    return init_value + (end_value - init_value) * done


def piecewise_constant_schedule(t, init_value, boundaries_and_scales=None):
    """torch MultiStepLR: the value times every scale whose boundary has been reached."""
    value = init_value
    for b, scale in sorted((boundaries_and_scales or {}).items()):
        if t >= b:
            value *= scale
    return value


def piecewise_interpolate_schedule(t, interpolate_type, init_value, boundaries_and_scales=None):
    points, value = [(0, init_value)], init_value
    for b, scale in sorted((boundaries_and_scales or {}).items()):
        value *= scale
        points.append((b, value))
    for (b0, v0), (b1, v1) in itertools.pairwise(points):
        if b0 <= t < b1:
            frac = (t - b0) / (b1 - b0)
            return v1 + (v0 - v1) * _keep(
                "linear" if interpolate_type == "linear" else "cosine", frac
            )
    return points[-1][1]


def cosine_decay_schedule(t, init_value, decay_steps, alpha=0.0, exponent=1.0):
    """Loshchilov & Hutter 2017 (keras CosineDecay) with an exponent on the cosine factor."""
    cosine = _keep("cosine", min(t, decay_steps) / decay_steps) ** exponent
    return init_value * (alpha + (1 - alpha) * cosine)


def sgdr_schedule(
    t,
    cosine_kwargs=None,
    *,
    init_value=None,
    first_decay_steps=None,
    t_mul=2.0,
    m_mul=1.0,
    alpha=0.0,
):
    """Loshchilov & Hutter 2017 (eq. 5 with restarts): optax's form, one
    warmup-cosine cycle per entry of ``cosine_kwargs`` run back to back, or keras'
    CosineDecayRestarts (geometric cycles)."""
    if cosine_kwargs is not None:
        start = 0
        for i, kwargs in enumerate(cosine_kwargs):
            if t < start + kwargs["decay_steps"] or i == len(cosine_kwargs) - 1:
                return warmup_cosine_decay_schedule(t - start, **kwargs)
            start += kwargs["decay_steps"]
    frac = t / first_decay_steps
    if t_mul == 1:
        i = np.floor(frac)
        frac -= i
    else:
        i = np.floor(np.log(1 - frac * (1 - t_mul)) / np.log(t_mul))
        done = (1 - t_mul**i) / (1 - t_mul)
        frac = (frac - done) / t_mul**i
    cosine = 0.5 * m_mul**i * (1 + np.cos(np.pi * frac))
    return init_value * ((1 - alpha) * cosine + alpha)


def exponential_decay(
    t, init_value, transition_steps, decay_rate, transition_begin=0, staircase=False, end_value=None
):
    """keras ExponentialDecay with a delayed start, bounded by ``end_value``."""
    p = max(t - transition_begin, 0) / transition_steps
    with np.errstate(over="ignore"):  # growth beyond float64: inf, then bounded
        value = init_value * np.float64(decay_rate) ** (np.floor(p) if staircase else p)
    if end_value is not None:
        value = max(value, end_value) if decay_rate < 1 else min(value, end_value)
    return value


def inverse_time_decay(t, init_value, decay_steps, decay_rate=1.0, power=1.0, *, staircase=False):
    """keras InverseTimeDecay raised to ``power`` (Senior et al. 2013, power scheduling)."""
    p = t / decay_steps
    return init_value / (1 + decay_rate * (np.floor(p) if staircase else p)) ** power


def inverse_sqrt_schedule(t, init_value, peak_value, warmup_steps):
    """Vaswani et al. 2017, section 5.3: linear warmup, then ``peak * sqrt(W / t)``."""
    if t < warmup_steps:
        return init_value + (peak_value - init_value) * t / warmup_steps
    return peak_value * np.sqrt(warmup_steps / t)


def cyclical_schedule(
    t, base_value, max_value, step_size, mode="triangular", gamma=1.0, *, step_size_down=None
):
    """Smith 2017, as torch CyclicLR computes it."""
    down = step_size if step_size_down is None else step_size_down
    total = step_size + down
    cycle = np.floor(1 + t / total)
    x = 1 + t / total - cycle
    ratio = step_size / total
    height = (max_value - base_value) * (x / ratio if x <= ratio else (x - 1) / (ratio - 1))
    if mode == "triangular2":
        height *= np.exp2(1 - cycle)
    elif mode == "exp_range":
        height *= np.float64(gamma) ** t
    return base_value + height


def _one_cycle(t, total_steps, pct_start, anneal_strategy, three_phase, values):
    """torch OneCycleLR's phase walk, held at the last value from ``total_steps - 1`` on."""
    ends = (
        [pct_start * total_steps - 1, 2 * pct_start * total_steps - 2, total_steps - 1]
        if three_phase
        else [pct_start * total_steps - 1, total_steps - 1]
    )
    t = min(t, total_steps - 1)
    start = 0.0
    for i, end in enumerate(ends):
        if t <= end or i == len(ends) - 1:
            pct = (t - start) / (end - start)
            a, b = values[i], values[i + 1]
            if anneal_strategy == "cos":
                return b + (a - b) / 2 * (np.cos(np.pi * pct) + 1)
            return (b - a) * pct + a
        start = end
    raise AssertionError("unreachable")


def one_cycle_schedule(
    t,
    total_steps,
    max_value,
    pct_start=0.3,
    anneal_strategy="cos",
    div_factor=25.0,
    final_div_factor=1e4,
    *,
    three_phase=False,
):
    """Smith & Topin 2019, as torch OneCycleLR computes it."""
    start = max_value / div_factor
    final = start / final_div_factor
    values = [start, max_value, start, final] if three_phase else [start, max_value, final]
    return _one_cycle(t, total_steps, pct_start, anneal_strategy, three_phase, values)


def one_cycle_momentum_schedule(
    t,
    total_steps,
    base_momentum=0.85,
    max_momentum=0.95,
    pct_start=0.3,
    anneal_strategy="cos",
    *,
    three_phase=False,
):
    """Smith 2018, section 4: the momentum of torch OneCycleLR(cycle_momentum=True)."""
    values = (
        [max_momentum, base_momentum, max_momentum, max_momentum]
        if three_phase
        else [max_momentum, base_momentum, max_momentum]
    )
    return _one_cycle(t, total_steps, pct_start, anneal_strategy, three_phase, values)


def _warmup(t, init_value, peak_value, warmup_steps):
    return init_value + (peak_value - init_value) * t / warmup_steps


def warmup_constant_schedule(t, init_value, peak_value, warmup_steps):
    """Goyal et al. 2017, gradual warmup."""
    return _warmup(t, init_value, peak_value, warmup_steps) if t < warmup_steps else peak_value


def warmup_cosine_decay_schedule(
    t, init_value, peak_value, warmup_steps, decay_steps, end_value=0.0, exponent=1.0
):
    if t < warmup_steps:
        return _warmup(t, init_value, peak_value, warmup_steps)
    span = decay_steps - warmup_steps
    cosine = _keep("cosine", min(t - warmup_steps, span) / span) ** exponent
    return end_value + (peak_value - end_value) * cosine


def warmup_exponential_decay_schedule(
    t,
    init_value,
    peak_value,
    warmup_steps,
    transition_steps,
    decay_rate,
    transition_begin=0,
    staircase=False,
    end_value=None,
):
    if t < warmup_steps:
        return _warmup(t, init_value, peak_value, warmup_steps)
    return exponential_decay(
        t - warmup_steps,
        peak_value,
        transition_steps,
        decay_rate,
        transition_begin,
        staircase,
        end_value,
    )


def warmup_stable_decay_schedule(
    t,
    init_value,
    peak_value,
    warmup_steps,
    total_steps,
    decay_fraction=0.2,
    end_value=0.0,
    *,
    decay_shape="linear",
):
    """Hu et al. 2024 (MiniCPM), Hägele et al. 2024: warmup, a long constant phase, then a
    decay over the last ``round(decay_fraction * total_steps)`` steps."""
    decay = max(1, round(decay_fraction * total_steps))
    if t < warmup_steps:
        return _warmup(t, init_value, peak_value, warmup_steps)
    if t < total_steps - decay:
        return peak_value
    frac = min((t - (total_steps - decay)) / decay, 1.0)
    return end_value + (peak_value - end_value) * _keep(decay_shape, frac)


def join_schedules(t, schedules, boundaries):
    """The ``k``-th schedule from ``boundaries[k - 1]`` on, counting its steps from there."""
    k = sum(t >= b for b in boundaries)
    start = boundaries[k - 1] if k else 0
    return float(schedules[k](t - start))


def _through(t, points, shape):
    """The value at step ``t`` of a path through ``(step, value)`` points, each stretch
    annealed by ``shape`` (``_keep``); constant before the first and after the last."""
    if t < points[0][0]:
        return points[0][1]
    for (b0, v0), (b1, v1) in itertools.pairwise(points):
        if b0 <= t < b1:
            return v1 + (v0 - v1) * _keep(shape, (t - b0) / (b1 - b0))
    return points[-1][1]


def cosine_onecycle_schedule(
    t, transition_steps, peak_value, pct_start=0.3, div_factor=25.0, final_div_factor=1e4
):
    """Smith & Topin 2019 in optax's form: half cosines I -> peak (until int(pct_start T))
    -> I / final_div_factor (until T), I = peak / div_factor."""
    start = peak_value / div_factor
    points = [
        (0, start),
        (int(pct_start * transition_steps), peak_value),
        (transition_steps, start / final_div_factor),
    ]
    return _through(t, points, "cosine")


def linear_onecycle_schedule(
    t,
    transition_steps,
    peak_value,
    pct_start=0.3,
    pct_final=0.85,
    div_factor=25.0,
    final_div_factor=1e4,
):
    """Smith & Topin 2019 in optax's form: straight lines I -> peak (until int(pct_start T))
    -> I (until int(pct_final T)) -> I / final_div_factor (until T), I = peak / div_factor."""
    start = peak_value / div_factor
    points = [
        (0, start),
        (int(pct_start * transition_steps), peak_value),
        (int(pct_final * transition_steps), start),
        (transition_steps, start / final_div_factor),
    ]
    return _through(t, points, "linear")
