"""Numerically safe helpers under optax's names: counters that saturate, norms with safe gradients.

``safe_increment`` adds one to a counter of any integer or floating dtype and
stops at the largest value of that dtype instead of wrapping; ``safe_norm``
and ``safe_root_mean_squares`` are ``max(norm(x), floor)`` whose gradient is
zero, not NaN, where the norm is at the floor.
"""

from __future__ import annotations

from typing import Any

import chex
import jax
import jax.numpy as jnp

from gradxform import _tree


def safe_increment(count: chex.ArrayLike) -> chex.Array:
    """``count + 1`` in ``count``'s own dtype, saturating at that dtype's largest value.

    ::

        safe_increment(c) = c + 1   if c < max(dtype)
                          = max(dtype)  otherwise

    ``max`` is ``iinfo(dtype).max`` for an integer counter and ``finfo(dtype).max``
    for a floating-point one, so a counter never wraps around to a negative
    value (an int32 step count would otherwise turn negative after ``2**31 - 1``
    steps) nor becomes infinite. Any other dtype (bool, complex) is refused
    with a ``ValueError``. A Python int is taken as JAX's default integer.

    Args:
      count: the counter, a scalar or an array.

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> gx.safe_increment(jnp.asarray(1, jnp.int32))
      Array(2, dtype=int32)
      >>> gx.safe_increment(jnp.asarray(2147483647, jnp.int32))
      Array(2147483647, dtype=int32)
      >>> gx.safe_increment(jnp.asarray(255, jnp.uint8))
      Array(255, dtype=uint8)
    """
    count = jnp.asarray(count)
    dtype = count.dtype
    if jnp.issubdtype(dtype, jnp.integer):
        top: Any = jnp.iinfo(dtype).max
    elif jnp.issubdtype(dtype, jnp.floating):
        top = jnp.finfo(dtype).max
    else:
        raise ValueError(
            f"safe_increment: count of dtype {dtype} cannot be incremented safely; "
            f"give an integer or floating-point counter"
        )
    top = jnp.asarray(top, dtype)
    return jnp.where(count < top, count + jnp.asarray(1, dtype), top)


def safe_int32_increment(count: chex.ArrayLike) -> chex.Array:
    """The same function as :func:`safe_increment` (optax keeps both names).

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> gx.safe_int32_increment(jnp.asarray(7, jnp.int32))
      Array(8, dtype=int32)
    """
    return safe_increment(count)


def safe_norm(
    x: chex.ArrayLike,
    min_norm: chex.ArrayLike,
    ord: int | float | str | None = None,
    axis: int | tuple[int, ...] | None = None,
    keepdims: bool = False,
) -> chex.Array:
    """``max(norm(x), min_norm)`` whose gradient is zero, not NaN, where ``norm(x) <= min_norm``.

    ::

        n = jnp.linalg.norm(x, ord, axis)
        safe_norm(x) = min_norm   where n <= min_norm
                     = n          elsewhere

    The gradient of ``jnp.maximum(jnp.linalg.norm(x), min_norm)`` at ``x = 0`` is
    NaN because both branches are differentiated; here the norm is evaluated at
    a harmless point wherever the floor applies, so the gradient there is zero.
    ``ord``, ``axis`` and ``keepdims`` are those of :func:`jax.numpy.linalg.norm`.
    The norm is computed in at least float32 and returned in the real dtype of
    ``x`` promoted with ``min_norm``.

    Args:
      x: an array.
      min_norm: the floor of the norm.
      ord: order of the norm (as ``jnp.linalg.norm``).
      axis: axis or pair of axes to reduce (as ``jnp.linalg.norm``); ``None``: all.
      keepdims: keep the reduced axes with size one.

    Example:
      >>> import jax, jax.numpy as jnp, gradxform as gx
      >>> gx.safe_norm(jnp.array([3.0, 4.0]), 1.0)
      Array(5., dtype=float32)
      >>> jax.grad(gx.safe_norm)(jnp.zeros(2), 0.0)
      Array([0., 0.], dtype=float32)
    """
    x = jnp.asarray(x)
    out_dtype = _result_dtype(x, min_norm)
    xc = _tree.to_compute(x)
    floor = jnp.asarray(min_norm).astype(_tree.real_dtype(xc.dtype))
    norm = jnp.linalg.norm(xc, ord=ord, axis=axis, keepdims=True)
    safe_x = jnp.where(norm <= floor, jnp.ones_like(xc), xc)
    norm = norm if keepdims else jnp.squeeze(norm, axis=axis)
    masked = jnp.linalg.norm(safe_x, ord=ord, axis=axis, keepdims=keepdims)
    return jnp.where(norm <= floor, floor, masked).astype(out_dtype)


def safe_root_mean_squares(x: chex.ArrayLike, min_rms: chex.ArrayLike) -> chex.Array:
    """``max(sqrt(mean(|x|**2)), min_rms)`` whose gradient is zero, not NaN, at the floor.

    ::

        r = sqrt(mean(|x|**2))                 (over all entries; complex x counts |x|)
        safe_root_mean_squares(x) = min_rms  where r <= min_rms,  else r

    Computed in at least float32 and returned in the real dtype of ``x``
    promoted with ``min_rms``.

    Args:
      x: an array.
      min_rms: the floor of the root mean square.

    Example:
      >>> import jax, jax.numpy as jnp, gradxform as gx
      >>> gx.safe_root_mean_squares(jnp.array([3.0, 4.0, 0.0, 0.0]), 1e-3)
      Array(2.5, dtype=float32)
      >>> jax.grad(gx.safe_root_mean_squares)(jnp.zeros(2), 0.1)
      Array([0., 0.], dtype=float32)
    """
    x = jnp.asarray(x)
    out_dtype = _result_dtype(x, min_rms)
    xc = _tree.to_compute(x)
    floor = jnp.asarray(min_rms).astype(_tree.real_dtype(xc.dtype))
    rms = jnp.sqrt(jnp.mean(_tree.abs_sq(xc)))
    safe_x = jnp.where(rms <= floor, jnp.ones_like(xc), xc)
    return jnp.where(rms <= floor, floor, jnp.sqrt(jnp.mean(_tree.abs_sq(safe_x)))).astype(
        out_dtype
    )


def _result_dtype(x: chex.Array, floor: Any) -> Any:
    """The dtype optax's formula gives: the norm's dtype (real, floating) with ``floor``'s."""
    norm_dtype = (
        _tree.real_dtype(x.dtype) if jnp.issubdtype(x.dtype, jnp.inexact) else _tree.float_dtype()
    )
    with jax.numpy_dtype_promotion("standard"):
        return jnp.result_type(norm_dtype, floor)


def global_norm(updates: chex.ArrayTree) -> chex.Array:
    """The l2 norm of all floating-point leaves of ``updates`` taken together.

    ::

        global_norm(u) = sqrt(sum_leaves sum |u_leaf|**2)

    computed in at least float32 (complex leaves count ``|u|``; integer and
    boolean leaves are left out). The argument is named as in optax.

    Args:
      updates: a tree of arrays.

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> gx.global_norm({"a": jnp.array([3.0]), "b": jnp.array([4.0])})
      Array(5., dtype=float32)
    """
    return _tree.global_norm(updates)
