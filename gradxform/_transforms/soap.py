"""SOAP: Adam run in the eigenbasis of Shampoo's preconditioner."""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp

from gradxform import _checks, _sharding, _tree
from gradxform._base import GradientTransformation, transformation
from gradxform._transforms import preconditioners as pc
from gradxform._transforms.matrices import (
    MatrixLayout,
    check_weight_dimension_numbers,
    from_matrices,
    to_matrices,
)


class SoapState(NamedTuple):
    """The state of :func:`scale_by_soap`.

    ``mu``: Adam's first moment, in the params' own coordinates; ``nu``: the second
    moment, in the eigenbasis (param-shaped, each matrix's entries in its rotated
    coordinates); ``stats_left``, ``stats_right``: the factors ``L`` (``(batch, m, m)``)
    and ``R`` (``(batch, n, n)``) of each matrix leaf; ``basis_left``, ``basis_right``:
    their eigenbases ``Q_L``, ``Q_R``. A side that is not preconditioned (longer than
    ``max_precondition_dim``, of length 1, or a leaf that is not a matrix) holds an
    empty array. ``failures``: how many refreshes kept a previous basis (the identity
    on the first step) because a new one was not finite (uint32, saturating; not a step
    counter).
    """

    count: chex.Array
    mu: chex.ArrayTree
    nu: chex.ArrayTree
    stats_left: chex.ArrayTree
    stats_right: chex.ArrayTree
    basis_left: chex.ArrayTree
    basis_right: chex.ArrayTree
    failures: chex.Array


class _Config(NamedTuple):
    precondition_frequency: int
    bias_correction: bool
    plans: tuple[Any, ...]


class _Plan(NamedTuple):
    matrix: MatrixLayout
    left: bool
    right: bool


def _project(x, ql, qr, back=False):
    """``Q_L^T X Q_R`` (``back``: ``Q_L X Q_R^T``), an absent side skipped."""
    if ql is not None:
        ql = ql.astype(x.dtype)
        x = (ql if back else jnp.swapaxes(ql, -1, -2)) @ x
    if qr is not None:
        qr = qr.astype(x.dtype)
        x = x @ (jnp.swapaxes(qr, -1, -2) if back else qr)
    return x


def scale_by_soap(
    b1: chex.Numeric = 0.95,
    b2: chex.Numeric = 0.95,
    eps: chex.Numeric = 1e-8,
    *,
    shampoo_beta: chex.Numeric | None = None,
    precondition_frequency: int = 10,
    max_precondition_dim: int = 10000,
    precondition_1d: bool = False,
    bias_correction: bool = True,
    weight_dimension_numbers: Any = None,
) -> GradientTransformation:
    """SOAP's direction (Vyas et al. 2024, "SOAP: Improving and Stabilizing Shampoo using
    Adam", arXiv:2409.11321): Adam in the eigenbasis of Shampoo's factors.

    For each matrix ``G_t`` (a leaf viewed as a batch of matrices), with
    ``beta = shampoo_beta`` (default ``b2``) and ``s = t - 1``::

        L_t = beta L_{t-1} + (1 - beta) G_t G_t^T,   R_t = beta R_{t-1} + (1 - beta) G_t^T G_t
        t = 1:   Q_L, Q_R = eigenvectors of L_1, R_1 (eigh, descending); no step
        t > 1:   G'_t = Q_L^T G_t Q_R
                 m_t = b1 m_{t-1} + (1 - b1) G_t                (the params' coordinates)
                 v_t = b2 v_{t-1} + (1 - b2) G'_t^2             (the eigenbasis)
                 u_t = c_s Q_L [(Q_L^T m_t Q_R) / (sqrt(v_t) + eps)] Q_R^T
                 c_s = sqrt(1 - b2^s) / (1 - b1^s)   (bias_correction; else 1)
                 then, when s % precondition_frequency == 0, each basis is refreshed
                 by one power iteration and a QR decomposition:
                 Q <- QR(S Q), columns ordered by diag(Q^T S Q) descending, and the
                 rows/columns of v_t reordered the same way

    as the authors' implementation (Algorithms 3 and 4). The first basis comes from
    ``eigh``; the decompositions run in float32 whatever the params' dtype, inside
    ``lax.cond``, only on the steps that need them. A side longer than
    ``max_precondition_dim`` (or of length 1) keeps the identity; 1-D leaves are
    ``(1, n)`` matrices with ``precondition_1d``, else (as 0-D leaves) plain Adam. A
    basis (one matrix of a leaf's batch) whose new value is not finite keeps the
    previous one (the identity on the first step), and its second moment keeps its
    order; each such refresh counts one in ``failures``.

    Args:
      b1: decay of the first moment in ``[0, 1)``.
      b2: decay of the second moment in ``[0, 1)``.
      eps: non-negative term added to ``sqrt(v_t)``.
      shampoo_beta: decay of ``L`` and ``R`` in ``[0, 1)``; ``None``: ``b2``.
      precondition_frequency: refresh the bases every this many steps (an int >= 1).
      max_precondition_dim: the longest side preconditioned (an int >= 1).
      precondition_1d: precondition 1-D leaves (a factor ``R`` of size ``n x n``).
      bias_correction: scale by ``c_s`` as above.
      weight_dimension_numbers: ``None`` (2-D leaves as they are, leaves of more axes
        as one matrix whose columns are the last axis), or :class:`MuonDimensionNumbers`
        for every leaf, a tree of them (``None`` leaves get Adam), or a function of the
        params returning one.

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> tx = gx.scale_by_soap(b1=0.0, b2=0.0)
      >>> g = jnp.array([[2.0, 0.0], [0.0, 1.0]])
      >>> state = tx.init(g)
      >>> u, state = tx.update(g, state)  # the first step sets the basis only
      >>> u, state = tx.update(g, state)
      >>> jnp.abs(u).round(4)  # b2 = 0: the sign of G in the basis that diagonalizes it
      Array([[1., 0.],
             [0., 1.]], dtype=float32)
    """
    _checks.decay_rate("b1", b1, allow_schedule=False)
    _checks.decay_rate("b2", b2, allow_schedule=False)
    _checks.non_negative("eps", eps, allow_schedule=False)
    if shampoo_beta is not None:
        _checks.decay_rate("shampoo_beta", shampoo_beta, allow_schedule=False)
    _checks.integer("precondition_frequency", precondition_frequency, low=1)
    _checks.integer("max_precondition_dim", max_precondition_dim, low=1)
    _checks.boolean("precondition_1d", precondition_1d)
    _checks.boolean("bias_correction", bias_correction)
    check_weight_dimension_numbers(weight_dimension_numbers, "weight_dimension_numbers")
    beta = b2 if shampoo_beta is None else shampoo_beta

    def plans(tree: Any) -> list[_Plan | None]:
        views = pc.matrix_views(weight_dimension_numbers, tree, "weight_dimension_numbers")
        out: list[_Plan | None] = []
        for leaf, view in zip(jax.tree.leaves(tree), views, strict=True):
            shape = tuple(leaf.shape)
            if view is None and precondition_1d and len(shape) == 1 and _tree.is_inexact(leaf):
                view = MatrixLayout(perm=(0,), batch=1, rows=1, cols=shape[0])
            if view is None:
                out.append(None)
                continue
            left = 1 < view.rows <= max_precondition_dim
            right = 1 < view.cols <= max_precondition_dim
            out.append(_Plan(view, left, right) if left or right else None)
        return out

    def init_fn(params):
        leaves, treedef = jax.tree.flatten(params)
        parts: dict[str, list[Any]] = {k: [] for k in ("sl", "sr", "ql", "qr")}
        for leaf, plan in zip(leaves, plans(params), strict=True):
            dtype = _tree.dtype_of(leaf)
            for side in ("l", "r"):
                if plan is None or not (plan.left if side == "l" else plan.right):
                    # distinct buffers: a donated state may hold no buffer twice
                    parts["s" + side].append(jnp.zeros((0,), dtype))
                    parts["q" + side].append(jnp.zeros((0,), dtype))
                    continue
                n = plan.matrix.rows if side == "l" else plan.matrix.cols
                lead = (plan.matrix.batch,)
                parts["s" + side].append(jnp.zeros((*lead, n, n), dtype))
                parts["q" + side].append(pc.identity_stack(lead, n, 1.0, dtype))
        tree = {k: jax.tree.unflatten(treedef, v) for k, v in parts.items()}
        return SoapState(
            count=_tree.zero_count(),
            mu=_tree.zeros_like(params),
            nu=_tree.zeros_like(params),
            stats_left=tree["sl"],
            stats_right=tree["sr"],
            basis_left=tree["ql"],
            basis_right=tree["qr"],
            failures=jnp.zeros([], jnp.uint32),
        )

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        _checks.check_updates(updates, state.mu, "scale_by_soap")
        config = _Config(precondition_frequency, bias_correction, tuple(plans(updates)))
        real = _tree.float_dtype()
        hyper = {
            k: jnp.asarray(v, real)
            for k, v in (("b1", b1), ("b2", b2), ("eps", eps), ("beta", beta))
        }
        return _update(config, hyper, updates, state)

    return transformation(init_fn, update_fn, per_leaf="scale_by_soap")


def _unchanged(stats_l, stats_r, ql, qr, nus):
    del stats_l, stats_r
    return ql, qr, nus, jnp.zeros([], jnp.bool_)


def _first_bases(stats_l, stats_r, ql, qr, nus):
    stats, bases = [*stats_l, *stats_r], [*ql, *qr]
    live = [i for i, s in enumerate(stats) if s.size]
    fresh = pc.by_shape(pc.eigenbasis, [stats[i] for i in live])
    new = list(bases)
    failed = jnp.zeros([], jnp.bool_)
    for i, (q, ok) in zip(live, fresh, strict=True):
        new[i] = pc.keep_finite(q, bases[i], ok)
        failed = failed | ~jnp.all(ok)
    return new[: len(stats_l)], new[len(stats_l) :], nus, failed


def _refreshed_bases(stats_l, stats_r, ql, qr, nus):
    stats, bases = [*stats_l, *stats_r], [*ql, *qr]
    live = [i for i, s in enumerate(stats) if s.size]
    fresh = pc.by_shape(pc.refresh_eigenbasis, [stats[i] for i in live], [bases[i] for i in live])
    new, orders = list(bases), [None] * len(bases)
    failed = jnp.zeros([], jnp.bool_)
    for i, (q, order, ok) in zip(live, fresh, strict=True):
        new[i], orders[i] = pc.keep_finite(q, bases[i], ok), order
        failed = failed | ~jnp.all(ok)
    n = len(stats_l)
    out_nu = []
    for v, left, right in zip(nus, orders[:n], orders[n:], strict=True):
        if left is not None:  # the rows of each rotated matrix follow its left basis
            v = jnp.take_along_axis(v, left[:, :, None], axis=1)
        if right is not None:
            v = jnp.take_along_axis(v, right[:, None, :], axis=2)
        out_nu.append(v)
    return new[:n], new[n:], out_nu, failed


@functools.partial(jax.jit, static_argnums=0)
def _update(config, hyper, updates, state):
    precondition_frequency, bias_correction, layouts = config
    count = _tree.safe_increment(state.count)
    first = count == 1
    s = jnp.maximum(count - 1, 1)

    def h(name, like):
        return hyper[name].astype(like.dtype)

    leaves, treedef = jax.tree.flatten(updates)
    mus, nus, sls, srs, qls, qrs = (
        jax.tree.leaves(x)
        for x in (
            state.mu,
            state.nu,
            state.stats_left,
            state.stats_right,
            state.basis_left,
            state.basis_right,
        )
    )
    out, new_mu, new_nu, new_sl, new_sr = [], [], [], [], []
    views: list[_Plan | None] = []
    for g, m, v, sl, sr, ql, qr, plan in zip(
        leaves, mus, nus, sls, srs, qls, qrs, layouts, strict=True
    ):
        if not _tree.is_inexact(g):
            out.append(g)
            new_mu.append(m)
            new_nu.append(v)
            new_sl.append(sl)
            new_sr.append(sr)
            views.append(None)
            continue
        g32, m32, v32 = (_tree.to_compute(x) for x in (g, m, v))
        b1, b2, eps, beta = (h(k, g32) for k in ("b1", "b2", "eps", "beta"))
        m32 = b1 * m32 + (1 - b1) * g32
        if plan is None:
            x, mx, vx = g32, m32, v32
            v_old = v32
            ql_ = qr_ = None
        else:
            x, mx, vx = (to_matrices(_sharding.replicated(y), plan.matrix) for y in (g32, m32, v32))
            v_old = vx
            ql_ = ql if plan.left else None
            qr_ = qr if plan.right else None
        xp = _project(x, ql_, qr_)
        vx = b2 * vx + (1 - b2) * jnp.square(xp)
        d = _project(mx, ql_, qr_) / (jnp.sqrt(vx) + eps)
        if bias_correction:
            st = s.astype(d.dtype)
            d = d * (jnp.sqrt(1 - b2**st) / (1 - b1**st))
        u = _project(d, ql_, qr_, back=True)
        if plan is not None:
            u = _sharding.sharded_like(from_matrices(u, plan.matrix, g.shape), g)
            if plan.left:
                sl = pc.update_statistics(sl, x, beta, 1 - beta)
            if plan.right:
                sr = pc.update_statistics(sr, jnp.swapaxes(x, -1, -2), beta, 1 - beta)
        out.append(_tree.cast_like(jnp.where(first, jnp.zeros_like(u), u), g))
        new_mu.append(jnp.where(first, m, _sharding.sharded_like(m32.astype(m.dtype), m)))
        new_nu.append(jnp.where(first, v_old, _sharding.sharded_like(vx, v_old)))
        new_sl.append(sl)
        new_sr.append(sr)
        views.append(plan)

    # The bases (and the order of the second moment) change only on refresh steps.
    branch = jnp.where(first, 1, jnp.where((count - 1) % precondition_frequency == 0, 2, 0)).astype(
        jnp.int32
    )
    matrix_nu = [
        n if p is not None else jnp.zeros((0, 0, 0), n.dtype)
        for n, p in zip(new_nu, views, strict=True)
    ]
    ql_new, qr_new, nu_rot, failed = jax.lax.switch(
        branch,
        [_unchanged, _first_bases, _refreshed_bases],
        new_sl,
        new_sr,
        qls,
        qrs,
        matrix_nu,
    )
    final_nu = []
    for n, rotated, v, plan, g in zip(new_nu, nu_rot, nus, views, leaves, strict=True):
        if plan is None:
            final_nu.append(n.astype(v.dtype) if _tree.is_inexact(g) else n)
        else:
            back = from_matrices(rotated, plan.matrix, g.shape).astype(v.dtype)
            final_nu.append(_sharding.sharded_like(back, g))

    def tree(xs):
        return jax.tree.unflatten(treedef, xs)

    return tree(out), SoapState(
        count=count,
        mu=tree(new_mu),
        nu=tree(final_nu),
        stats_left=tree([a.astype(b.dtype) for a, b in zip(new_sl, sls, strict=True)]),
        stats_right=tree([a.astype(b.dtype) for a, b in zip(new_sr, srs, strict=True)]),
        basis_left=tree(ql_new),
        basis_right=tree(qr_new),
        failures=pc.count_failures(state.failures, failed),
    )
