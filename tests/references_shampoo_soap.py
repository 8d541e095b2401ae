"""NumPy float64 references for Shampoo (Gupta et al. 2018; Anil et al. 2020) and SOAP
(Vyas et al. 2024), written from the papers' equations.

Shampoo: per matrix and per block (blocks cut without padding, the last one shorter),
``L = b2 L + w G G^T``, ``R = b2 R + w G^T G`` from ``eps I``, inverse fourth roots by
a float64 eigendecomposition every k steps, grafting onto a diagonal method's norm,
(Nesterov) momentum. SOAP: Adam in the eigenbasis of ``L`` and ``R``, the basis from an
eigendecomposition at the first step and one power iteration + QR every k steps.
"""

from __future__ import annotations

import math

import numpy as np

from tests.references import Reference

# The step counter saturates at 2**31 - 1 (gradxform's int32 counters): a refresh every k
# steps is scheduled by the saturated count.
INT32_MAX = 2**31 - 1


def default_view(shape):
    """(reduction axes, output axes) of a matrix leaf, or None: 2-D as is, more axes as
    one matrix whose columns are the last axis, 0-D and 1-D leaves diagonal."""
    if len(shape) < 2 or math.prod(shape) == 0:
        return None
    return tuple(range(len(shape) - 1)), (len(shape) - 1,)


def as_matrices(x, red, out):
    """``x`` as (batch, rows, cols) and the permutation that took it there."""
    batch = [a for a in range(x.ndim) if a not in red + out]
    perm = batch + list(red) + list(out)
    shape = (
        math.prod(x.shape[a] for a in batch),
        math.prod(x.shape[a] for a in red),
        math.prod(x.shape[a] for a in out),
    )
    return np.transpose(x, perm).reshape(shape), perm


def from_matrices(m, perm, shape):
    return np.transpose(m.reshape([shape[a] for a in perm]), np.argsort(perm))


def inverse_fourth_root(s):
    """``S^{-1/4}``, eigenvalues below ``2^-23`` of the largest raised to that."""
    lam, q = np.linalg.eigh((s + s.T) / 2)
    lam = np.maximum(lam, lam.max() * 2.0**-23)
    return (q * lam ** (-0.25)) @ q.T


def _cuts(n, size):
    return [(i, min(i + size, n)) for i in range(0, n, size)] if n > size else [(0, n)]


class Shampoo(Reference):
    """``shampoo`` (``direction_only``: ``scale_by_shampoo``)."""

    def __init__(
        self,
        learning_rate=1.0,
        b1=0.9,
        b2=0.999,
        matrix_eps=1e-6,
        diagonal_eps=1e-10,
        weight_decay=0.0,
        mask=None,
        *,
        graft_type="adagrad",
        precondition_every=10,
        start_preconditioning_step=10,
        block_size=256,
        max_precondition_dim=8192,
        nesterov=True,
        weight_dimension_numbers=None,
        view=default_view,
        direction_only=False,
    ):
        del mask, weight_dimension_numbers
        self.lr, self.b1, self.b2, self.meps, self.deps = (
            learning_rate,
            b1,
            b2,
            matrix_eps,
            diagonal_eps,
        )
        self.wd, self.graft, self.k, self.start = (
            weight_decay,
            graft_type,
            precondition_every,
            start_preconditioning_step,
        )
        self.bs, self.max_dim, self.nesterov, self.view = (
            block_size,
            max_precondition_dim,
            nesterov,
            view,
        )
        self.direction_only = direction_only

    def _blocks(self, shape):
        v = self.view(shape)
        if v is None:
            return None
        _, rows, cols = as_matrices(np.zeros(shape), *v)[0].shape
        if max(rows, cols) > self.max_dim:
            return None
        return v, _cuts(rows, self.bs), _cuts(cols, self.bs)

    def init(self, p):
        s = {"m": np.zeros_like(p), "n": np.zeros_like(p), "v": np.zeros_like(p), "t": 0}
        plan = self._blocks(p.shape)
        if plan is not None:
            v, rcuts, ccuts = plan
            batch = as_matrices(p, *v)[0].shape[0]
            s["f"] = {
                (b, i, j): [
                    self.meps * np.eye(r1 - r0),
                    self.meps * np.eye(c1 - c0),
                    np.eye(r1 - r0),
                    np.eye(c1 - c0),
                ]
                for b in range(batch)
                for i, (r0, r1) in enumerate(rcuts)
                for j, (c0, c1) in enumerate(ccuts)
            }
        return s

    def step(self, g, s, p):
        t = min(s["t"] + 1, INT32_MAX)
        b1, b2 = self.b1, self.b2
        ema = self.graft in ("rmsprop", "adam")
        v = b2 * s["v"] + (1 - b2) * g * g if ema else s["v"] + g * g
        vhat = v / (1 - b2**t) if self.graft == "adam" else v
        a = g if self.graft == "sgd" else g / (np.sqrt(vhat) + self.deps)
        plan = self._blocks(g.shape)
        new = {"v": v, "t": t}
        if plan is None:
            d = a
        else:
            view, rcuts, ccuts = plan
            gm, perm = as_matrices(g, *view)
            am = as_matrices(a, *view)[0]
            w = 1.0 if b2 == 1 else 1 - b2
            factors = {k: list(f) for k, f in s["f"].items()}
            dm = np.zeros_like(gm)
            for (b, i, j), f in factors.items():
                (r0, r1), (c0, c1) = rcuts[i], ccuts[j]
                x = gm[b, r0:r1, c0:c1]
                f[0] = b2 * f[0] + w * x @ x.T
                f[1] = b2 * f[1] + w * x.T @ x
                if t % self.k == 0:
                    f[2], f[3] = inverse_fourth_root(f[0]), inverse_fourth_root(f[1])
                dm[b, r0:r1, c0:c1] = f[2] @ x @ f[3]
            if self.graft != "none":
                for b in range(gm.shape[0]):
                    dm[b] *= np.linalg.norm(am[b]) / (np.linalg.norm(dm[b]) + 1e-16)
            d = from_matrices(dm, perm, g.shape)
            new["f"] = factors
        m = b1 * s["m"] + d
        n = b1 * s["n"] + a
        if t >= self.start:
            u = b1 * m + d if self.nesterov else m
        else:
            u = b1 * n + a if self.nesterov else n
        new.update(m=m, n=n)
        if self.direction_only:
            return u, new
        return -self.lr * (u + self.wd * p), new


def eigenbasis(s):
    """Eigenvectors of symmetric ``s``, eigenvalues descending."""
    return np.linalg.eigh(s)[1][:, ::-1]


def power_qr(s, q):
    """One power iteration from ``q`` then QR; columns by ``diag(q^T s q)`` descending."""
    sq = s @ q
    order = np.argsort(-np.sum(q * sq, axis=0), kind="stable")
    return np.linalg.qr(sq[:, order])[0], order


class SOAP(Reference):
    """``soap`` (``direction_only``: ``scale_by_soap``)."""

    def __init__(
        self,
        learning_rate=1.0,
        b1=0.95,
        b2=0.95,
        eps=1e-8,
        weight_decay=0.01,
        mask=None,
        *,
        shampoo_beta=None,
        precondition_frequency=10,
        max_precondition_dim=10000,
        precondition_1d=False,
        bias_correction=True,
        weight_dimension_numbers=None,
        view=default_view,
        direction_only=False,
    ):
        del mask, weight_dimension_numbers
        self.lr, self.b1, self.b2, self.eps, self.wd = learning_rate, b1, b2, eps, weight_decay
        self.beta = b2 if shampoo_beta is None else shampoo_beta
        self.k, self.max_dim, self.p1d, self.bc = (
            precondition_frequency,
            max_precondition_dim,
            precondition_1d,
            bias_correction,
        )
        self.view, self.direction_only = view, direction_only

    def _view(self, shape):
        v = self.view(shape)
        if v is None and self.p1d and len(shape) == 1:
            return (), (0,)
        return v

    def init(self, p):
        s = {"m": np.zeros_like(p), "v": np.zeros_like(p), "t": 0}
        view = self._view(p.shape)
        if view is not None:
            mats = as_matrices(p, *view)[0]
            _, rows, cols = mats.shape
            on_l, on_r = 1 < rows <= self.max_dim, 1 < cols <= self.max_dim
            s["L"] = [np.zeros((rows, rows)) if on_l else None for _ in mats]
            s["R"] = [np.zeros((cols, cols)) if on_r else None for _ in mats]
            s["QL"] = [np.eye(rows) if on_l else None for _ in mats]
            s["QR"] = [np.eye(cols) if on_r else None for _ in mats]
        return s

    def step(self, g, s, p):
        t = min(s["t"] + 1, INT32_MAX)
        b1, b2, beta = self.b1, self.b2, self.beta
        view = self._view(g.shape)
        new = dict(s, t=t)
        if view is None:
            gm, perm, vm, mm = g[None, None], None, s["v"][None, None], s["m"][None, None]
            qls = qrs = [None]
        else:
            gm, perm = as_matrices(g, *view)
            vm, mm = as_matrices(s["v"], *view)[0], as_matrices(s["m"], *view)[0]
            qls, qrs = s["QL"], s["QR"]

        def rot(x, ql, qr, back=False):
            if ql is not None:
                x = (ql if back else ql.T) @ x
            if qr is not None:
                x = x @ (qr.T if back else qr)
            return x

        if t == 1:
            u = np.zeros_like(g)
        else:
            sidx = t - 1
            mm = b1 * mm + (1 - b1) * gm
            vm = np.stack(
                [
                    b2 * vm[b] + (1 - b2) * rot(gm[b], qls[b], qrs[b]) ** 2
                    for b in range(gm.shape[0])
                ]
            )
            c = math.sqrt(1 - b2**sidx) / (1 - b1**sidx) if self.bc else 1.0
            um = np.stack(
                [
                    c
                    * rot(
                        rot(mm[b], qls[b], qrs[b]) / (np.sqrt(vm[b]) + self.eps),
                        qls[b],
                        qrs[b],
                        back=True,
                    )
                    for b in range(gm.shape[0])
                ]
            )
            u = um.reshape(g.shape) if view is None else from_matrices(um, perm, g.shape)
        if view is not None:
            L = [
                None if x is None else beta * x + (1 - beta) * gb @ gb.T
                for x, gb in zip(s["L"], gm, strict=True)
            ]
            R = [
                None if x is None else beta * x + (1 - beta) * gb.T @ gb
                for x, gb in zip(s["R"], gm, strict=True)
            ]
            qls, qrs, vm = list(qls), list(qrs), vm.copy()
            for b in range(gm.shape[0]):
                if t == 1:
                    qls[b] = None if L[b] is None else eigenbasis(L[b])
                    qrs[b] = None if R[b] is None else eigenbasis(R[b])
                elif (t - 1) % self.k == 0:
                    if L[b] is not None:
                        qls[b], order = power_qr(L[b], qls[b])
                        vm[b] = vm[b][order, :]
                    if R[b] is not None:
                        qrs[b], order = power_qr(R[b], qrs[b])
                        vm[b] = vm[b][:, order]
            new.update(L=L, R=R, QL=qls, QR=qrs)
            new["v"] = from_matrices(vm, perm, g.shape)
            new["m"] = from_matrices(mm, perm, g.shape)
        else:
            new["v"], new["m"] = vm.reshape(g.shape), mm.reshape(g.shape)
        if self.direction_only:
            return u, new
        return -self.lr * (u + self.wd * p), new
