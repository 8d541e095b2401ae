"""NumPy float64 references for Muon (Jordan et al. 2024; Liu et al. 2025 for the RMS match).

Written from the equations: the momentum (with or without its bias correction, heavy
ball or Nesterov), the quintic Newton-Schulz iteration run in float64, the shape factor,
decoupled weight decay, and AdamW (Nesterov's form when Muon is) for the other leaves.
"""

from __future__ import annotations

import math

import numpy as np

from tests.references import Reference

DEFAULT_NS_COEFFS = (3.4445, -4.7750, 2.0315)
DION_NS_COEFFS = (
    (4.0848, -6.8946, 2.9270),
    (3.9505, -6.3029, 2.6377),
    (3.7418, -5.5913, 2.3037),
    (2.8769, -3.1427, 1.2046),
    (2.8366, -3.0525, 1.2012),
)


def newton_schulz(x, coeffs, steps, eps, preconditioning="frobenius"):
    """The iteration on one matrix ``x`` (float64): X <- aX + b(XX^T)X + c(XX^T)^2 X."""
    x = np.asarray(x, np.float64)
    transpose = x.shape[0] > x.shape[1]
    if transpose:
        x = x.T
    coeffs = np.asarray(coeffs, np.float64)
    rows = list(coeffs) if coeffs.ndim == 2 else [coeffs] * steps
    first = None
    if preconditioning == "frobenius":
        x = x / (np.sqrt(np.sum(x * x)) + eps)
    elif preconditioning == "spectral":
        x = x / (np.linalg.svd(x, compute_uv=False)[0] + eps)
    elif preconditioning == "aol":
        a = x @ x.T
        d = 1.0 / np.sqrt(np.maximum(np.abs(a).sum(axis=1), eps))
        x, first = x * d[:, None], a * np.outer(d, d)
    elif preconditioning == "schatten":
        a = x @ x.T
        s = 1.0 / np.sqrt(max(np.sqrt(np.sum(a * a)), eps))
        x, first = x * s, a * s * s
    for i, (ca, cb, cc) in enumerate(rows):
        a = first if i == 0 and first is not None else x @ x.T
        x = ca * x + (cb * a + cc * a @ a) @ x
    return x.T if transpose else x


def _as_matrices(x, red, out):
    """``x`` (any ndim) as (batch, rows, cols) for reduction axes ``red``, output axes ``out``."""
    batch = [a for a in range(x.ndim) if a not in red + out]
    perm = batch + list(red) + list(out)
    shape = (
        math.prod(x.shape[a] for a in batch),
        math.prod(x.shape[a] for a in red),
        math.prod(x.shape[a] for a in out),
    )
    return np.transpose(x, perm).reshape(shape), perm


class Muon(Reference):
    """``muon``: Muon on the leaves ``dims(shape)`` names, AdamW on the others.

    ``dims``: a function of a leaf's shape returning (reduction axes, output axes) for a
    Muon leaf or None for an AdamW leaf; default: the 2-D leaves, rows then columns.
    """

    def __init__(
        self,
        learning_rate,
        ns_coeffs=DEFAULT_NS_COEFFS,
        ns_steps=5,
        beta=0.95,
        eps=1e-8,
        weight_decay=0.0,
        weight_decay_mask=None,
        mu_dtype=None,
        *,
        nesterov=True,
        adaptive=False,
        preconditioning="frobenius",
        adam_b1=0.9,
        adam_b2=0.999,
        adam_eps_root=0.0,
        adam_weight_decay=0.0,
        adam_learning_rate=None,
        muon_weight_dimension_numbers=None,
        consistent_rms=None,
        bias_correction=True,
        width_scaling=True,
        ns_dtype=None,
        dims=None,
        muon_only=False,
    ):
        del weight_decay_mask, mu_dtype, muon_weight_dimension_numbers, ns_dtype
        if isinstance(ns_coeffs, str):
            ns_coeffs = {"standard": DEFAULT_NS_COEFFS, "dion": DION_NS_COEFFS}[ns_coeffs]
        self.lr, self.coeffs, self.steps, self.beta, self.eps = (
            learning_rate,
            ns_coeffs,
            ns_steps,
            beta,
            eps,
        )
        self.wd, self.nesterov, self.adaptive, self.pre = (
            weight_decay,
            nesterov,
            adaptive,
            preconditioning,
        )
        self.b1, self.b2, self.eps_root, self.adam_wd = (
            adam_b1,
            adam_b2,
            adam_eps_root,
            adam_weight_decay,
        )
        self.adam_lr = learning_rate if adam_learning_rate is None else adam_learning_rate
        self.rms, self.bc, self.width = consistent_rms, bias_correction, width_scaling
        self.dims = dims or (lambda shape: ((0,), (1,)) if len(shape) == 2 else None)
        # muon_only: the direction of scale_by_muon alone (no shape factor, decay or rate;
        # the other leaves pass through).
        self.muon_only = muon_only

    def init(self, p):
        return {"m": np.zeros_like(p), "v": np.zeros_like(p), "t": 0}

    def step(self, g, s, p):
        t = s["t"] + 1
        if self.dims(p.shape) is None:
            if self.muon_only:
                return g, {**s, "t": t}
            return self._adamw(g, s, p, t)
        red, out = self.dims(p.shape)
        beta = self.beta
        m = beta * s["m"] + (1 - beta) * g
        if self.bc and self.nesterov:
            mh = beta * m / (1 - beta ** (t + 1)) + (1 - beta) * g / (1 - beta**t)
        elif self.bc:
            mh = m / (1 - beta**t)
        elif self.nesterov:
            mh = beta * m + (1 - beta) * g
        else:
            mh = m
        mats, perm = _as_matrices(mh, red, out)
        o = np.stack([newton_schulz(x, self.coeffs, self.steps, self.eps, self.pre) for x in mats])
        o = np.transpose(o.reshape([mh.shape[a] for a in perm]), np.argsort(perm))
        if self.adaptive:
            o = np.sum(mh * o) * o
        if self.muon_only:
            return o, {**s, "m": m, "t": t}
        fan_in, fan_out = mats.shape[1], mats.shape[2]
        if self.rms is not None:
            scale = self.rms * math.sqrt(max(fan_in, fan_out))
        else:
            scale = math.sqrt(max(1.0, fan_out / fan_in)) if self.width else 1.0
        return -self.lr * (scale * o + self.wd * p), {**s, "m": m, "t": t}

    def _adamw(self, g, s, p, t):
        b1, b2 = self.b1, self.b2
        m = b1 * s["m"] + (1 - b1) * g
        v = b2 * s["v"] + (1 - b2) * g * g
        if self.nesterov:
            mh = b1 * m / (1 - b1 ** (t + 1)) + (1 - b1) * g / (1 - b1**t)
        else:
            mh = m / (1 - b1**t)
        vh = v / (1 - b2**t)
        d = mh / (np.sqrt(vh + self.eps_root) + self.eps)
        return -self.adam_lr * (d + self.adam_wd * p), {"m": m, "v": v, "t": t}


def scale_by_muon(**kwargs):
    """The reference of ``scale_by_muon`` (the direction only; non-matrix leaves pass)."""
    return Muon(1.0, muon_only=True, **kwargs)
