"""Muon: momentum orthogonalized by a Newton-Schulz iteration.

:func:`newton_schulz` (the orthogonalization of a batch of matrices) serves any matrix
optimizer, with the batch-of-matrices view of a leaf in ``matrices``;
:func:`scale_by_muon` and the shape factor :func:`scale_by_shape` are the primitives of
:func:`gradxform.muon`.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np

from gradxform import _checks, _sharding, _tree
from gradxform._base import GradientTransformation, init_empty_state, transformation
from gradxform._transforms.adam import check_moment_updates, nesterov_mu_hat
from gradxform._transforms.matrices import (
    MatrixLayout,
    check_weight_dimension_numbers,
    from_matrices,
    leaf_dimension_numbers,
    matrix_layout,
    to_matrices,
)

DEFAULT_NS_COEFFS = (3.4445, -4.7750, 2.0315)
PRECONDITIONINGS = ("frobenius", "spectral", "aol", "schatten")


class MuonState(NamedTuple):
    """Step count, the momentum ``mu`` and the Newton-Schulz coefficients (optax's fields).

    ``ns_coeffs`` is kept in the params' widest floating-point dtype, as a record: the
    iteration uses the coefficients given to :func:`scale_by_muon` in float32 (float64
    under x64), so bfloat16 params do not round them.
    """

    count: chex.Array
    mu: chex.ArrayTree
    ns_coeffs: chex.Array


# ----------------------------------------------------------------------- checks


def check_ns_coeffs(ns_coeffs: Any, ns_steps: Any) -> np.ndarray:
    """``ns_coeffs`` as a float64 array of shape ``(3,)`` or ``(n, 3)`` with ``n <= ns_steps``."""
    _checks.integer("ns_steps", ns_steps, low=1)
    if isinstance(ns_coeffs, str) or callable(ns_coeffs):
        raise TypeError(f"ns_coeffs={ns_coeffs!r} must be a triple (a, b, c) or a tuple of triples")
    try:
        coeffs = np.asarray(ns_coeffs, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise TypeError(
            f"ns_coeffs={ns_coeffs!r} must be a triple (a, b, c) or a tuple of triples: {e}"
        ) from None
    if coeffs.ndim not in (1, 2) or coeffs.shape[-1] != 3 or coeffs.size == 0:
        raise ValueError(
            f"ns_coeffs={ns_coeffs!r} must have shape (3,) or (n, 3), got shape {coeffs.shape}"
        )
    if not np.all(np.isfinite(coeffs)):
        raise ValueError(f"ns_coeffs={ns_coeffs!r} must be finite")
    if coeffs.ndim == 2 and coeffs.shape[0] > ns_steps:
        raise ValueError(
            f"ns_coeffs has {coeffs.shape[0]} triples (one per step), more than "
            f"ns_steps={ns_steps}: raise ns_steps (with a tuple of triples it only bounds them)"
        )
    return coeffs


# --------------------------------------------------------------- Newton-Schulz


def newton_schulz(
    x: chex.Array,
    coeffs: chex.Array,
    steps: int,
    eps: chex.Numeric = 1e-8,
    preconditioning: str = "frobenius",
    dtype: Any = None,
) -> chex.Array:
    """Orthogonalize a batch of matrices ``x`` (shape ``(..., m, n)``) by Newton-Schulz.

    Each matrix ``X`` is transposed when ``m > n`` (so ``X X^H`` is the smaller Gram
    matrix), scaled, then iterated with the quintic map::

        X <- a X + b (X X^H) X + c (X X^H)^2 X

    ``coeffs`` is one triple ``(a, b, c)`` applied ``steps`` times, or an ``(n, 3)``
    array of per-step triples (then ``steps`` is ignored). With Muon's coefficients
    (3.4445, -4.7750, 2.0315) five steps take the singular values of the scaled ``X``
    from ``(0, 1]`` into about ``[0.7, 1.2]`` (not to 1: the iteration is tuned for the
    slope at zero), so the result approximates ``U V^H`` for ``X = U S V^H``.

    The scaling (``preconditioning``): ``"frobenius"`` divides by ``||X||_F + eps``;
    ``"spectral"`` by ``||X||_2 + eps``; ``"aol"`` and ``"schatten"`` replace the first
    step's input by ``X D`` with ``D = diag(max(sum_j |A_ij|, eps))^{-1/2}``, ``A = X X^H``
    (Boissin et al. 2025), or by ``X / sqrt(max(||A||_F, eps))`` (the Schatten-4 norm,
    Grishina et al. 2025). The norms are formed in at least float32; the iteration runs
    in ``dtype`` (default: the dtype of ``x`` promoted to at least float32; complex
    matrices stay complex). The result has that dtype.
    """
    x = original = jnp.asarray(x)
    # Under explicit sharding a product over a sharded axis has no defined output
    # sharding: the iteration runs on the whole (replicated) matrix, and the result takes
    # the input's sharding back. Elsewhere both calls return their argument.
    x = _sharding.replicated(x)
    base = _tree.compute_dtype(x.dtype)
    work = base if dtype is None else np.dtype(dtype)
    if _tree.is_complex(x):
        work = _tree.promote(work, jnp.complex64)
    transpose = x.shape[-2] > x.shape[-1]
    if transpose:
        x = jnp.swapaxes(x, -1, -2)
    x = x.astype(base)
    coeffs = jnp.asarray(coeffs)
    rows = [coeffs[i] for i in range(coeffs.shape[0])] if coeffs.ndim == 2 else [coeffs] * steps

    def gram(y):
        return y @ jnp.conj(jnp.swapaxes(y, -1, -2))

    def step(y, abc, a=None):
        a = gram(y) if a is None else a
        c0, c1, c2 = (abc[i].astype(y.dtype) for i in range(3))
        return c0 * y + (c1 * a + c2 * (a @ a)) @ y

    def real(v):
        return jnp.asarray(v).astype(_tree.real_dtype(base))

    first = None
    if preconditioning in ("frobenius", "spectral"):
        ord_ = "fro" if preconditioning == "frobenius" else 2
        norm = jnp.linalg.norm(x, ord=ord_, axis=(-2, -1), keepdims=True)
        x = x / (norm + real(eps)).astype(base)
    elif preconditioning == "aol":
        a = gram(x)
        s = jax.lax.rsqrt(jnp.maximum(jnp.abs(a).sum(axis=-1), real(eps)))[..., :, None]
        x, first = x * s.astype(base), a * (s * jnp.swapaxes(s, -1, -2)).astype(base)
    else:  # schatten
        a = gram(x)
        norm = jnp.linalg.norm(a, ord="fro", axis=(-2, -1), keepdims=True)
        s = jax.lax.rsqrt(jnp.maximum(norm, real(eps)))
        x, first = x * s.astype(base), a * (s * s).astype(base)
    x = x.astype(work)
    for i, abc in enumerate(rows):
        x = step(x, abc, first.astype(work) if i == 0 and first is not None else None)
    return _sharding.sharded_like(jnp.swapaxes(x, -1, -2) if transpose else x, original)


# ------------------------------------------------------------------ scale_by_muon


def _record_dtype(params: Any) -> np.dtype:
    """The params' widest real floating-point dtype (the default float if they have none)."""
    dtypes = [_tree.real_dtype(_tree.dtype_of(x)) for x in jax.tree.leaves(params)]
    floats = [d for d in dtypes if jnp.issubdtype(d, jnp.floating)]
    return max(floats, key=lambda d: d.itemsize) if floats else _tree.float_dtype()


def scale_by_muon(
    ns_coeffs: Any = DEFAULT_NS_COEFFS,
    ns_steps: int = 5,
    beta: chex.Numeric = 0.95,
    eps: chex.Numeric = 1e-8,
    mu_dtype: Any | None = None,
    *,
    nesterov: bool = True,
    adaptive: bool = False,
    preconditioning: str = "frobenius",
    weight_dimension_numbers: Any = None,
    bias_correction: bool = True,
    ns_dtype: Any | None = None,
) -> GradientTransformation:
    """Muon's direction: momentum orthogonalized by a Newton-Schulz iteration.

    For each matrix leaf (Jordan et al. 2024, "Muon: An optimizer for hidden layers in
    neural networks")::

        m_t = beta * m_{t-1} + (1 - beta) * g_t
        M_t = m_t / (1 - beta**t)                                            (nesterov=False)
        M_t = beta * m_t / (1 - beta**(t+1)) + (1 - beta) * g_t / (1 - beta**t)   (nesterov)
        X_0 = M_t / (||M_t||_F + eps),   transposed when rows > cols
        X_{k+1} = a X_k + b (X_k X_k^T) X_k + c (X_k X_k^T)^2 X_k,   k < ns_steps
        u_t = X_K                     (adaptive: u_t = <M_t, X_K> X_K, the dual norm)

    as :func:`newton_schulz` with ``(a, b, c) = ns_coeffs``. A leaf of more than two
    axes is viewed as a batch of matrices by its :class:`MuonDimensionNumbers`. The
    shape-dependent factor and the learning rate are applied by :func:`gradxform.muon`.

    Beyond optax: ``bias_correction=False`` uses ``m_t`` and
    ``beta * m_t + (1 - beta) * g_t`` as they are (``torch.optim.Muon``,
    ``keras.optimizers.Muon``: after the normalization only the relative weight of
    ``m_t`` and ``g_t`` matters, which the correction changes in the Nesterov form);
    ``ns_dtype`` sets the dtype of the iteration (torch runs it in bfloat16).

    Args:
      ns_coeffs: ``(a, b, c)``, or a tuple of per-step triples (at most ``ns_steps``).
      ns_steps: number of iterations (an int >= 1; unused with per-step triples).
      beta: momentum decay in ``[0, 1)``.
      eps: non-negative term added to the norm of ``M_t`` (the floor of the AOL and
        Schatten scalings).
      mu_dtype: dtype of ``m``; default: each parameter's dtype.
      nesterov: use the Nesterov form of ``M_t``.
      adaptive: scale the result by ``<M_t, X_K>`` (Bernstein et al. 2024).
      preconditioning: ``"frobenius"``, ``"spectral"``, ``"aol"`` or ``"schatten"``:
        the scaling before the iteration (see :func:`newton_schulz`).
      weight_dimension_numbers: ``None`` (every leaf a 2-D matrix), a
        :class:`MuonDimensionNumbers` for every leaf, a tree of them (a prefix of the
        params), or a function of the params returning one.
      bias_correction: divide by ``1 - beta**t`` as above (optax); ``False``: torch and keras.
      ns_dtype: dtype of the iteration (a real floating dtype, such as
        ``jnp.bfloat16``); default: the momentum's dtype promoted to at least float32.

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> tx = gx.scale_by_muon()
      >>> g = jnp.array([[3.0, 0.0], [0.0, 4.0]])  # singular values 3 and 4
      >>> u, _ = tx.update(g, tx.init(g))
      >>> jnp.diag(u).round(1)  # from 0.6 and 0.8 (g / ||g||_F) towards 1
      Array([0.7, 1.1], dtype=float32)
    """
    coeffs = check_ns_coeffs(ns_coeffs, ns_steps)
    _checks.decay_rate("beta", beta, allow_schedule=False)
    _checks.non_negative("eps", eps, allow_schedule=False)
    mu_dtype = _checks.canonical_dtype(mu_dtype, "mu_dtype")
    for name, flag in (("nesterov", nesterov), ("adaptive", adaptive)):
        _checks.boolean(name, flag)
    _checks.boolean("bias_correction", bias_correction)
    _checks.one_of("preconditioning", preconditioning, PRECONDITIONINGS)
    ns_dtype = _checks.canonical_dtype(
        ns_dtype, "ns_dtype", real_only="it sets the iteration's precision"
    )
    check_weight_dimension_numbers(weight_dimension_numbers, "weight_dimension_numbers")
    # The iteration reads the coefficients as given (in float32, or float64 under x64);
    # the state's copy (optax's field) is a record in the params' precision.
    exact = jnp.asarray(coeffs, _tree.float_dtype())

    def layouts(tree):
        dims = leaf_dimension_numbers(weight_dimension_numbers, tree, "weight_dimension_numbers")
        out: list[MatrixLayout | None] = []
        for (path, leaf), d in zip(
            jax.tree_util.tree_flatten_with_path(tree)[0], dims, strict=True
        ):
            where = _tree.path_name(path)
            if d is None:
                raise ValueError(
                    f"scale_by_muon: leaf '{where}' has None dimension numbers; route it to "
                    f"another transformation (gradxform.muon sends such leaves to AdamW)"
                )
            if not _tree.is_inexact(leaf):
                out.append(None)
                continue
            if weight_dimension_numbers is None and len(leaf.shape) != 2:
                raise ValueError(
                    f"scale_by_muon: leaf '{where}' has shape {tuple(leaf.shape)}, not a matrix; "
                    f"give weight_dimension_numbers to view it as a batch of matrices"
                )
            out.append(matrix_layout(tuple(leaf.shape), d, where))
        return out

    def init_fn(params):
        layouts(params)
        return MuonState(
            count=_tree.zero_count(),
            mu=_tree.zeros_like(params, mu_dtype),
            ns_coeffs=jnp.asarray(coeffs, _record_dtype(params)),
        )

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        check_moment_updates(updates, state.mu, "scale_by_muon", mu_dtype)
        count = _tree.safe_increment(state.count)
        mu = _tree.update_moment(state.mu, updates, beta, 1)
        if bias_correction and nesterov:
            mu_hat = nesterov_mu_hat(mu, updates, beta, count)
        elif bias_correction:
            mu_hat = _tree.bias_correction(mu, beta, count)
        elif nesterov:
            mu_hat = _tree.update_moment(_tree.map_inexact(_tree.to_compute, mu), updates, beta)
        else:
            mu_hat = _tree.map_inexact(_tree.to_compute, mu)

        leaves, treedef = jax.tree.flatten(updates)
        hats = jax.tree.leaves(mu_hat)
        out = []
        for g, m, layout in zip(leaves, hats, layouts(updates), strict=True):
            if layout is None:
                out.append(g)
                continue
            m = _tree.to_compute(m)
            o = newton_schulz(
                to_matrices(m, layout), exact, ns_steps, eps, preconditioning, ns_dtype
            )
            o = from_matrices(o.astype(m.dtype), layout, m.shape)
            if adaptive:
                o = jnp.sum(jnp.conj(m) * o) * o
            out.append(_tree.cast_like(o, g))
        return jax.tree_util.tree_unflatten(treedef, out), MuonState(
            count=count, mu=mu, ns_coeffs=state.ns_coeffs
        )

    return transformation(init_fn, update_fn, per_leaf="scale_by_muon")


# ---------------------------------------------------------------- scale_by_shape


def scale_by_shape(
    weight_dimension_numbers: Any = None,
    consistent_rms: chex.Numeric | None = None,
    *,
    width_scaling: bool = True,
) -> GradientTransformation:
    """Multiply each matrix leaf by a factor of its shape (``fan_in`` rows, ``fan_out`` cols)::

        consistent_rms=None:   sqrt(max(1, fan_out / fan_in))      (Jordan's width scaling)
        consistent_rms=r:      r * sqrt(max(fan_in, fan_out))      (Liu et al. 2025)
        width_scaling=False:   1                                    (consistent_rms=None only)

    ``fan_in``/``fan_out`` are the products of the reduction/output axes' sizes
    (:class:`MuonDimensionNumbers`; ``None``: 2-D leaves, rows then columns).
    """
    if consistent_rms is not None:
        _checks.non_negative("consistent_rms", consistent_rms, allow_schedule=False)
    _checks.boolean("width_scaling", width_scaling)
    if not width_scaling and consistent_rms is not None:
        raise ValueError("width_scaling=False has no effect unless consistent_rms=None")
    check_weight_dimension_numbers(weight_dimension_numbers, "weight_dimension_numbers")

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        dims = leaf_dimension_numbers(weight_dimension_numbers, updates, "weight_dimension_numbers")
        flat = jax.tree_util.tree_flatten_with_path(updates)
        out = []
        for (path, g), d in zip(flat[0], dims, strict=True):
            if not _tree.is_inexact(g) or d is None:
                out.append(g)
                continue
            layout = matrix_layout(tuple(g.shape), d, _tree.path_name(path))
            fan_in, fan_out = layout.rows, layout.cols
            if fan_in * fan_out == 0:  # an empty leaf: nothing to scale
                factor = 1.0
            elif consistent_rms is not None:
                factor = math.sqrt(max(fan_in, fan_out)) * consistent_rms
            else:
                factor = math.sqrt(max(1.0, fan_out / fan_in)) if width_scaling else 1.0
            x = _tree.to_compute(g)
            out.append(_tree.cast_like(x * jnp.asarray(factor).astype(x.dtype), g))
        return jax.tree.unflatten(flat[1], out), state

    return transformation(init_empty_state, update_fn, per_leaf="scale_by_shape")
