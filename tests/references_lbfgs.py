"""NumPy float64 references for L-BFGS (Nocedal & Wright, Numerical Optimization, 1999).

* :func:`two_loop`: Algorithm 7.4, the product ``H_k q`` from the last ``m`` pairs.
* :func:`dense_inverse_hessian`: the same ``H_k`` built as a matrix by the BFGS update of
  the inverse (eq. 6.17) applied to ``gamma I`` once per pair, oldest first (eq. 7.19):
  an independent check of the recursion.
* :class:`LBFGS`: the L-BFGS iteration with a fixed step (no line search), with
  ``gamma_k = s^T y / y^T y`` (eq. 7.20) and, at the first step, ``min(1, 1/||g_0||)``.
* :func:`wolfe_errors`: how much a step violates the strong Wolfe conditions (eq. 3.7).
"""

from __future__ import annotations

import numpy as np

from tests.references import Reference


def two_loop(q, pairs, gamma):
    """``H q`` by the two-loop recursion; ``pairs`` are ``(s, y, rho)``, oldest first."""
    q = np.array(q, np.float64)
    alphas = []
    for s, y, rho in reversed(pairs):
        alpha = rho * (s @ q)
        q = q - alpha * y
        alphas.append(alpha)
    r = gamma * q
    for (s, y, rho), alpha in zip(pairs, reversed(alphas), strict=True):
        beta = rho * (y @ r)
        r = r + s * (alpha - beta)
    return r


def dense_inverse_hessian(pairs, gamma, n):
    """``H = V^T H V + rho s s^T``, ``V = I - rho y s^T``, from ``H = gamma I``, oldest first."""
    h = gamma * np.eye(n)
    for s, y, rho in pairs:
        v = np.eye(n) - rho * np.outer(y, s)
        h = v.T @ h @ v + rho * np.outer(s, s)
    return h


class LBFGS(Reference):
    """``w <- w - lr H_k g_k`` with the last ``m`` pairs ``s = w_{k+1} - w_k``,
    ``y = g_{k+1} - g_k``, ``rho = 1 / s^T y`` (0 if ``s^T y = 0``)."""

    def __init__(self, learning_rate=1.0, memory_size=10, scale_init_precond=True):
        self.lr, self.m, self.scale = learning_rate, memory_size, scale_init_precond

    def init(self, p):
        return {"pairs": [], "w": None, "g": None}

    def step(self, g, state, p):
        g, p = np.asarray(g, np.float64), np.asarray(p, np.float64)
        pairs = list(state["pairs"])
        if state["w"] is None:
            gamma = min(1.0, 1.0 / np.linalg.norm(g)) if self.scale else 1.0
        else:
            s, y = p - state["w"], g - state["g"]
            sy = s @ y
            pairs = [*pairs, (s, y, 0.0 if sy == 0 else 1.0 / sy)][-self.m :]
            gamma = (sy / (y @ y) if y @ y > 0 else 1.0) if self.scale else 1.0
        update = -self.lr * two_loop(g, pairs, gamma)
        return update, {"pairs": pairs, "w": p, "g": g, "gamma": gamma}


def rosenbrock(w):
    w = np.asarray(w, np.float64)
    return float(np.sum(100.0 * (w[1:] - w[:-1] ** 2) ** 2 + (1.0 - w[:-1]) ** 2))


def rosenbrock_grad(w):
    w = np.asarray(w, np.float64)
    g = np.zeros_like(w)
    inner = w[1:] - w[:-1] ** 2
    g[:-1] += -400.0 * w[:-1] * inner - 2.0 * (1.0 - w[:-1])
    g[1:] += 200.0 * inner
    return g


def wolfe_errors(f, grad, w0, w1, c1, c2):
    """``(decrease, curvature)`` violations of the step ``d = w1 - w0`` (0: satisfied):
    ``f(w1) - f(w0) - c1 g0.d`` and ``|g1.d| - c2 |g0.d|``, clipped below at 0."""
    w0, w1 = np.asarray(w0, np.float64), np.asarray(w1, np.float64)
    d = w1 - w0
    slope0, slope1 = grad(w0) @ d, grad(w1) @ d
    decrease = f(w1) - f(w0) - c1 * slope0
    curvature = abs(slope1) - c2 * abs(slope0)
    return max(decrease, 0.0), max(curvature, 0.0)
