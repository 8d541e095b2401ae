"""Shampoo: a Kronecker-factored preconditioner per matrix, its step size grafted."""

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

GRAFT_TYPES = ("adagrad", "rmsprop", "adam", "sgd", "none")


class ShampooState(NamedTuple):
    """The state of :func:`scale_by_shampoo`.

    ``mu`` and ``graft_mu``: the momenta of the preconditioned and of the grafting
    direction (the second is the update before ``start_preconditioning_step``);
    ``diagonal``: the grafting (and diagonal fallback) second moment; ``stats_left``,
    ``stats_right``: the factors ``L`` and ``R`` of each matrix leaf, one per block,
    shape ``(batch, row_blocks, col_blocks, b, b)`` (an empty array for a diagonal
    leaf); ``roots_left``, ``roots_right``: their inverse roots as last computed;
    ``failures``: how many refreshes kept a previous root because a new one was not
    finite (uint32, saturating; not a step counter).
    """

    count: chex.Array
    mu: chex.ArrayTree
    graft_mu: chex.ArrayTree
    diagonal: chex.ArrayTree
    stats_left: chex.ArrayTree
    stats_right: chex.ArrayTree
    roots_left: chex.ArrayTree
    roots_right: chex.ArrayTree
    failures: chex.Array


class _Config(NamedTuple):
    graft_type: str
    nesterov: bool
    precondition_every: int
    start: int
    plans: tuple[Any, ...]


class _Plan(NamedTuple):
    matrix: MatrixLayout
    blocks: pc.BlockLayout


def _empty(leaf: Any) -> chex.Array:
    return jnp.zeros((0,), _tree.dtype_of(leaf))


def scale_by_shampoo(
    b1: chex.Numeric = 0.9,
    b2: chex.Numeric = 0.999,
    matrix_eps: chex.Numeric = 1e-6,
    diagonal_eps: chex.Numeric = 1e-10,
    *,
    graft_type: str = "adagrad",
    precondition_every: int = 10,
    start_preconditioning_step: int = 10,
    block_size: int = 256,
    max_precondition_dim: int = 8192,
    nesterov: bool = True,
    weight_dimension_numbers: Any = None,
) -> GradientTransformation:
    """Shampoo's direction (Gupta et al. 2018, arXiv:1802.09568; Anil et al. 2020,
    "Scalable Second Order Optimization for Deep Learning", arXiv:2002.09018).

    Each matrix ``G_t`` (a leaf viewed as a batch of matrices, cut into blocks of at
    most ``block_size`` rows and columns, each block alone)::

        L_t = b2 L_{t-1} + w G_t G_t^T,   R_t = b2 R_{t-1} + w G_t^T G_t,
        L_0 = R_0 = matrix_eps * I,       w = 1 if b2 == 1 else 1 - b2
        P_t = L^{-1/4} G_t R^{-1/4}       (roots recomputed when t % precondition_every == 0)
        v_t = v_{t-1} + g_t^2  (adagrad, sgd, none)   b2 v_{t-1} + (1 - b2) g_t^2  (rmsprop, adam)
        a_t = g_t / (sqrt(v_t) + diagonal_eps)   (adagrad, rmsprop, none; adam: v_t / (1 - b2^t))
        a_t = g_t                                (sgd)
        P_t <- P_t * ||a_t||_F / (||P_t||_F + 1e-16)   per matrix (grafting; not with "none")
        m_t = b1 m_{t-1} + P_t,   n_t = b1 n_{t-1} + a_t
        u_t = b1 m_t + P_t  (nesterov; else m_t)     once t >= start_preconditioning_step
        u_t = b1 n_t + a_t  (nesterov; else n_t)     before

    With ``b2 = 1`` the factors are Gupta et al.'s sums ``eps I + sum G G^T``. The
    inverse roots are exact eigendecompositions (``jnp.linalg.eigh``) in float32
    whatever the params' dtype (eigenvalues below ``2^-23`` of the largest, float32
    rounding noise, are raised to that), computed inside ``lax.cond`` only on refresh
    steps; before the first refresh they are the identity. A refresh whose root is not
    finite keeps the previous root and counts one in ``failures``. Leaves that are not
    matrices (0-D, 1-D, or ``None`` dimension numbers) and matrices with a side above
    ``max_precondition_dim`` take ``a_t`` (AdaGrad-like) in place of ``P_t``.

    Args:
      b1: momentum decay in ``[0, 1)``.
      b2: decay of the factors and of ``v`` in ``(0, 1]`` (1: sums).
      matrix_eps: non-negative initial diagonal ``eps`` of ``L`` and ``R`` (the damping).
      diagonal_eps: non-negative term added to ``sqrt(v)``.
      graft_type: ``"adagrad"``, ``"rmsprop"``, ``"adam"``, ``"sgd"`` or ``"none"``: the
        direction whose norm ``P_t`` takes (and the warm-up and fallback direction).
      precondition_every: refresh the roots every this many steps (an int >= 1).
      start_preconditioning_step: the first step that uses ``P_t`` (an int >= 1).
      block_size: the largest block side (an int >= 1).
      max_precondition_dim: matrices with a larger side are preconditioned diagonally.
      nesterov: Nesterov's form of the momentum.
      weight_dimension_numbers: ``None`` (2-D leaves as they are, leaves of more axes
        as one matrix whose columns are the last axis), or :class:`MuonDimensionNumbers`
        for every leaf, a tree of them (``None`` leaves diagonal), or a function of the
        params returning one.

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> tx = gx.scale_by_shampoo(b1=0.0, b2=1.0, graft_type="none", matrix_eps=0.0,
      ...                          precondition_every=1, start_preconditioning_step=1)
      >>> g = jnp.array([[4.0, 0.0], [0.0, 1.0]])
      >>> u, _ = tx.update(g, tx.init(g))
      >>> jnp.diag(u)  # (G G^T)^{-1/4} G (G^T G)^{-1/4} = sign(G) for a diagonal G
      Array([1., 1.], dtype=float32)
    """
    _checks.decay_rate("b1", b1, allow_schedule=False)
    _checks.number("b2", b2, low=0.0, high=1.0, low_open=True, allow_schedule=False)
    _checks.non_negative("matrix_eps", matrix_eps, allow_schedule=False)
    _checks.non_negative("diagonal_eps", diagonal_eps, allow_schedule=False)
    _checks.one_of("graft_type", graft_type, GRAFT_TYPES)
    _checks.integer("precondition_every", precondition_every, low=1)
    _checks.integer("start_preconditioning_step", start_preconditioning_step, low=1)
    _checks.integer("block_size", block_size, low=1)
    _checks.integer("max_precondition_dim", max_precondition_dim, low=1)
    _checks.boolean("nesterov", nesterov)
    check_weight_dimension_numbers(weight_dimension_numbers, "weight_dimension_numbers")

    def plans(tree: Any) -> list[_Plan | None]:
        out: list[_Plan | None] = []
        for view in pc.matrix_views(weight_dimension_numbers, tree, "weight_dimension_numbers"):
            if view is None or max(view.rows, view.cols) > max_precondition_dim:
                out.append(None)
            else:
                out.append(_Plan(view, pc.block_layout(view.rows, view.cols, block_size)))
        return out

    def init_fn(params):
        leaves, treedef = jax.tree.flatten(params)
        factors: dict[str, list[Any]] = {k: [] for k in ("sl", "sr", "rl", "rr")}
        for leaf, plan in zip(leaves, plans(params), strict=True):
            if plan is None:
                for k in factors:
                    factors[k].append(_empty(leaf))
                continue
            b, dtype = plan.blocks, _tree.dtype_of(leaf)
            lead = (plan.matrix.batch, b.row_blocks, b.col_blocks)
            factors["sl"].append(pc.identity_stack(lead, b.block_rows, matrix_eps, dtype))
            factors["sr"].append(pc.identity_stack(lead, b.block_cols, matrix_eps, dtype))
            factors["rl"].append(pc.identity_stack(lead, b.block_rows, 1.0, dtype))
            factors["rr"].append(pc.identity_stack(lead, b.block_cols, 1.0, dtype))
        tree = {k: jax.tree.unflatten(treedef, v) for k, v in factors.items()}
        return ShampooState(
            count=_tree.zero_count(),
            mu=_tree.zeros_like(params),
            graft_mu=_tree.zeros_like(params),
            diagonal=_tree.zeros_like(params),
            stats_left=tree["sl"],
            stats_right=tree["sr"],
            roots_left=tree["rl"],
            roots_right=tree["rr"],
            failures=jnp.zeros([], jnp.uint32),
        )

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        _checks.check_updates(updates, state.mu, "scale_by_shampoo")
        config = _Config(
            graft_type,
            nesterov,
            precondition_every,
            start_preconditioning_step,
            tuple(plans(updates)),
        )
        real = _tree.float_dtype()
        hyper = {
            k: jnp.asarray(v, real) for k, v in (("b1", b1), ("b2", b2), ("eps", diagonal_eps))
        }
        return _update(config, hyper, updates, state)

    return transformation(init_fn, update_fn, per_leaf="scale_by_shampoo")


def _refresh(stats_left, stats_right, roots_left, roots_right):
    stats = [*stats_left, *stats_right]
    roots = [*roots_left, *roots_right]
    live = [i for i, s in enumerate(stats) if s.size]
    fresh = pc.by_shape(lambda s: pc.inverse_root(s, 4), [stats[i] for i in live])
    new = list(roots)
    failed = jnp.zeros([], jnp.bool_)
    for i, (root, ok) in zip(live, fresh, strict=True):
        new[i] = pc.keep_finite(root, roots[i], ok)
        failed = failed | ~jnp.all(ok)
    return new[: len(stats_left)], new[len(stats_left) :], failed


@functools.partial(jax.jit, static_argnums=0)
def _update(config, hyper, updates, state):
    graft_type, nesterov, precondition_every, start_preconditioning_step, layouts = config
    count = _tree.safe_increment(state.count)
    leaves, treedef = jax.tree.flatten(updates)
    flat = [
        jax.tree.leaves(x)
        for x in (
            state.mu,
            state.graft_mu,
            state.diagonal,
            state.stats_left,
            state.stats_right,
            state.roots_left,
            state.roots_right,
        )
    ]
    mus, gmus, diags, sls, srs, rls, rrs = flat
    summed = graft_type in ("adagrad", "sgd", "none")

    def h(name, like):
        return hyper[name].astype(like.dtype)

    new_diag, grafts, new_sl, new_sr = [], [], [], []
    blocks: list[Any] = []
    for g, v, sl, sr, plan in zip(leaves, diags, sls, srs, layouts, strict=True):
        if not _tree.is_inexact(g):
            new_diag.append(v)
            grafts.append(g)
            blocks.append(None)
            new_sl.append(sl)
            new_sr.append(sr)
            continue
        g32 = _tree.to_compute(g)
        v32 = _tree.to_compute(v)
        b2 = h("b2", g32)
        v32 = v32 + g32 * g32 if summed else b2 * v32 + (1 - b2) * (g32 * g32)
        new_diag.append(v32.astype(v.dtype))
        if graft_type == "adam":
            v32 = v32 / (1 - b2 ** count.astype(g32.dtype))
        a = g32 if graft_type == "sgd" else g32 / (jnp.sqrt(v32) + h("eps", g32))
        grafts.append(a)
        if plan is None:
            blocks.append(None)
            new_sl.append(sl)
            new_sr.append(sr)
            continue
        x = pc.to_blocks(to_matrices(_sharding.replicated(g32), plan.matrix), plan.blocks)
        blocks.append(x)
        weight = jnp.where(b2 == 1, jnp.ones_like(b2), 1 - b2)
        new_sl.append(pc.update_statistics(sl, x, b2, weight))
        new_sr.append(pc.update_statistics(sr, jnp.swapaxes(x, -1, -2), b2, weight))

    new_rl, new_rr, failed = jax.lax.cond(
        count % precondition_every == 0,
        _refresh,
        lambda sl, sr, rl, rr: (rl, rr, jnp.zeros([], jnp.bool_)),
        new_sl,
        new_sr,
        rls,
        rrs,
    )
    start = count >= start_preconditioning_step
    out, out_mu, out_gmu = [], [], []
    for g, a, x, rl, rr, m, n, plan in zip(
        leaves, grafts, blocks, new_rl, new_rr, mus, gmus, layouts, strict=True
    ):
        if not _tree.is_inexact(g):
            out.append(g)
            out_mu.append(m)
            out_gmu.append(n)
            continue
        if plan is None:
            p = a
        else:
            y = rl.astype(x.dtype) @ x @ rr.astype(x.dtype)
            pm = pc.from_blocks(y, plan.blocks)
            if graft_type != "none":
                am = to_matrices(_sharding.replicated(a), plan.matrix)
                norm_a = jnp.linalg.norm(am, axis=(-2, -1), keepdims=True)
                norm_p = jnp.linalg.norm(pm, axis=(-2, -1), keepdims=True)
                pm = pm * (norm_a / (norm_p + 1e-16))
            p = _sharding.sharded_like(from_matrices(pm, plan.matrix, g.shape), g)
        b1 = h("b1", p)
        m32 = b1 * _tree.to_compute(m) + p
        n32 = b1 * _tree.to_compute(n) + a
        direction = jnp.where(
            start, b1 * m32 + p if nesterov else m32, b1 * n32 + a if nesterov else n32
        )
        out.append(_tree.cast_like(direction, g))
        out_mu.append(m32.astype(m.dtype))
        out_gmu.append(n32.astype(n.dtype))

    def tree(xs):
        return jax.tree.unflatten(treedef, xs)

    return tree(out), ShampooState(
        count=count,
        mu=tree(out_mu),
        graft_mu=tree(out_gmu),
        diagonal=tree(new_diag),
        stats_left=tree([s.astype(o.dtype) for s, o in zip(new_sl, sls, strict=True)]),
        stats_right=tree([s.astype(o.dtype) for s, o in zip(new_sr, srs, strict=True)]),
        roots_left=tree(new_rl),
        roots_right=tree(new_rr),
        failures=pc.count_failures(state.failures, failed),
    )
