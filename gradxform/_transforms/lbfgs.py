"""L-BFGS: the direction of a limited-memory quasi-Newton method.

:func:`scale_by_lbfgs` multiplies the updates by an approximation of the inverse Hessian
built from the last ``m`` differences of params and updates (the two-loop recursion);
:func:`gradxform.lbfgs` chains it with a line search (``linesearch.py``, ``zoom.py``).
"""

from __future__ import annotations

from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp

from gradxform import _checks, _tree
from gradxform._base import GradientTransformation, transformation
from gradxform._transforms.linesearch import scalar_dtype, vdot


class ScaleByLBFGSState(NamedTuple):
    """The step count, the last params and updates, and the memory of the last ``m`` pairs
    ``s = w_{k+1} - w_k``, ``y = u_{k+1} - u_k`` (each leaf stacked on a leading axis of
    length ``m``, a ring buffer) with their weights ``rho = 1 / <s, y>`` (optax's fields)."""

    count: chex.Array
    params: chex.ArrayTree
    updates: chex.ArrayTree
    diff_params_memory: chex.ArrayTree
    diff_updates_memory: chex.ArrayTree
    weights_memory: chex.Array


def _at(memory: chex.ArrayTree, i: chex.Array) -> chex.ArrayTree:
    return jax.tree.map(lambda x: x[i], memory)


def _axpy(a: chex.Array, x: chex.ArrayTree, y: chex.ArrayTree) -> chex.ArrayTree:
    """``a x + y`` on trees kept in the compute dtype."""
    return jax.tree.map(lambda xi, yi: yi + a.astype(yi.dtype) * xi.astype(yi.dtype), x, y)


def two_loop(
    updates: chex.ArrayTree,
    s_memory: chex.ArrayTree,
    y_memory: chex.ArrayTree,
    rho: chex.Array,
    gamma: chex.Array,
    newest: chex.Array,
) -> chex.ArrayTree:
    """``H u`` by the two-loop recursion (Nocedal & Wright 1999, Alg. 7.4).

    ``H`` is the L-BFGS inverse-Hessian approximation from the pairs in the ring buffers
    (the newest at index ``newest - 1``, the oldest at ``newest``) on ``gamma I``. A pair
    with ``rho = 0`` (an empty slot, or ``<s, y> = 0``) leaves the product unchanged.
    """
    m = rho.shape[0]
    order = (newest + jnp.arange(m, dtype=jnp.int32)) % m  # oldest to newest
    dtype = rho.dtype

    def backward(q, i):  # newest to oldest: alpha_i = rho_i <s_i, q>, q -= alpha_i y_i
        alpha = rho[i] * vdot(_at(s_memory, i), q, dtype)
        return _axpy(-alpha, _at(y_memory, i), q), alpha

    def forward(r, i_alpha):  # oldest to newest: beta = rho_i <y_i, r>, r += (alpha_i - beta) s_i
        i, alpha = i_alpha
        beta = rho[i] * vdot(_at(y_memory, i), r, dtype)
        return _axpy(alpha - beta, _at(s_memory, i), r), None

    q, alphas = jax.lax.scan(backward, updates, order, reverse=True)
    r = jax.tree.map(lambda x: gamma.astype(x.dtype) * x, q)
    r, _ = jax.lax.scan(forward, r, (order, alphas))
    return r


def scale_by_lbfgs(
    memory_size: int = 10, scale_init_precond: bool = True
) -> GradientTransformation:
    r"""The L-BFGS direction: the updates times an approximate inverse Hessian.

    With ``w_k`` the params and ``u_k`` the updates (gradients) at step ``k``, the pairs
    ``s_j = w_{j+1} - w_j``, ``y_j = u_{j+1} - u_j``, ``rho_j = 1 / <s_j, y_j>`` (0 when
    ``<s_j, y_j> = 0``) of the last ``m`` steps define

    .. math::

        H_k = V_{k-1}^\top \cdots V_{k-m}^\top (\gamma_k I) V_{k-m} \cdots V_{k-1}
              + \sum_j (\ldots) \rho_j s_j s_j^\top, \qquad V_j = I - \rho_j y_j s_j^\top,

    the BFGS update applied ``m`` times to ``gamma_k I``, and the output is ``H_k u_k``,
    computed by the two-loop recursion (Nocedal & Wright, *Numerical Optimization*, 1999,
    Alg. 7.4; Liu & Nocedal, "On the limited memory BFGS method for large scale
    optimization", 1989). ``gamma_k = <s_{k-1}, y_{k-1}> / <y_{k-1}, y_{k-1}>`` (N&W eq.
    7.20; 1 when ``y_{k-1} = 0``) if ``scale_init_precond``, else 1. At the first step,
    with no pair yet, ``gamma_0 = min(1, 1 / ||u_0||)``: the first step has length at
    most 1 (or ``||u_0||``) without any line search.

    The pair of step ``k - 1`` is formed from the params and updates given at step ``k``,
    so that a line search placed after this transformation has already chosen the step.
    The inner products and the recursion are computed in at least float32.

    Args:
      memory_size: ``m``, the number of pairs kept, an int ``>= 1``.
      scale_init_precond: scale the initial inverse Hessian by ``gamma_k`` (else ``I``).

    Example:
      >>> import jax, jax.numpy as jnp, gradxform as gx
      >>> tx = gx.scale_by_lbfgs(memory_size=3)
      >>> update = jax.jit(tx.update)
      >>> update(jnp.array([3.0, 4.0]), tx.init(jnp.zeros(2)), jnp.zeros(2))[0]  # gamma_0 = 1/5
      Array([0.6, 0.8], dtype=float32)
    """
    who = "scale_by_lbfgs"
    _checks.integer("memory_size", memory_size, low=1)
    _checks.boolean("scale_init_precond", scale_init_precond)

    def init_fn(params):
        dtype = scalar_dtype(params)

        def stack(p):  # m zero slots, laid out (and sharded) like the parameter
            zeros = _tree.zeros_like(p, _tree.compute_dtype(_tree.dtype_of(p)))
            return jnp.broadcast_to(zeros[None], (memory_size, *zeros.shape))

        return ScaleByLBFGSState(
            count=_tree.zero_count(),
            params=_tree.zeros_like(params),
            updates=_tree.zeros_like(params),
            diff_params_memory=jax.tree.map(stack, params),
            diff_updates_memory=jax.tree.map(stack, params),
            weights_memory=jnp.zeros([memory_size], dtype),
        )

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        _checks.check_params(updates, params, who)
        _checks.check_updates(updates, state.params, who, allow_complex=True)
        dtype = state.weights_memory.dtype
        started = state.count > 0
        newest = state.count % memory_size
        previous = (state.count - 1) % memory_size

        def diff(a, b, like):
            d = _tree.to_compute(a) - _tree.to_compute(b)
            return jnp.where(started, d, 0.0).astype(like.dtype)

        s = jax.tree.map(diff, params, state.params, _at(state.diff_params_memory, 0))
        y = jax.tree.map(diff, updates, state.updates, _at(state.diff_updates_memory, 0))
        sy = vdot(s, y, dtype)
        rho = jnp.where(sy == 0.0, 0.0, 1.0 / sy)

        def put(memory, new):
            return jax.tree.map(lambda m, x: m.at[previous].set(x), memory, new)

        s_memory = put(state.diff_params_memory, s)
        y_memory = put(state.diff_updates_memory, y)
        weights = state.weights_memory.at[previous].set(rho)

        if scale_init_precond:
            yy = vdot(y, y, dtype)
            gamma = jnp.where(yy > 0.0, sy / yy, 1.0)
            first = jnp.minimum(1.0, 1.0 / jnp.sqrt(vdot(updates, updates, dtype)))
            gamma = jnp.where(started, gamma, first).astype(dtype)
        else:
            gamma = jnp.ones([], dtype)

        u = jax.tree.map(lambda g, m: g.astype(m.dtype), updates, _at(s_memory, 0))
        direction = two_loop(u, s_memory, y_memory, weights, gamma, newest)
        direction = jax.tree.map(_tree.cast_like, direction, updates)
        new_state = ScaleByLBFGSState(
            count=_tree.safe_increment(state.count),
            params=jax.tree.map(_tree.cast_like, params, state.params),
            updates=jax.tree.map(_tree.cast_like, updates, state.updates),
            diff_params_memory=s_memory,
            diff_updates_memory=y_memory,
            weights_memory=weights,
        )
        return direction, new_state

    return transformation(init_fn, update_fn)
