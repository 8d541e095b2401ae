"""Tree math shared by every transformation: one implementation of each piece.

Moment estimates (``update_moment``, ``lincomb``), their bias correction (``bias_correction``), the
saturating step counter, norms and dtype handling live here and nowhere else;
their validation is in ``_checks``.

Precision policy: arithmetic that can underflow or lose precision in float16 or
bfloat16 (squares, denominators, eps) is done in ``compute_dtype(x)`` -- the
leaf's dtype promoted to at least float32 -- and the result is cast back to the
dtype the caller keeps (the state's dtype, or the gradient's dtype for updates).

Complex leaves: a first moment of complex gradients is complex; a second moment is
the moving average of ``|g|**2`` (``abs_sq``), a real number. By default it is stored
in the parameter's dtype, so for a complex parameter in a complex dtype with a zero
imaginary part (as optax stores it); it is read back with ``real_part`` and every
square root, maximum and division by it is done in real arithmetic.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np

INT32_MAX = np.iinfo(np.int32).max


# ----------------------------------------------------------------------------- dtypes


def is_inexact(x: Any) -> bool:
    """Whether a leaf (array, scalar or ``ShapeDtypeStruct``) is floating point or complex."""
    return bool(jnp.issubdtype(dtype_of(x), jnp.inexact))


def is_complex(x: Any) -> bool:
    """Whether a leaf (array, scalar or ``ShapeDtypeStruct``) is complex."""
    return bool(jnp.issubdtype(dtype_of(x), jnp.complexfloating))


def real_dtype(dtype: Any) -> np.dtype:
    """The real dtype of ``dtype``: float32 for complex64, ``dtype`` itself if it is not complex."""
    dtype = np.dtype(dtype)
    if jnp.issubdtype(dtype, jnp.complexfloating):
        return np.dtype(jnp.finfo(dtype).dtype)
    return dtype


def dtype_of(x: Any) -> np.dtype:
    """The dtype of a leaf: an array, a scalar or a ``ShapeDtypeStruct``."""
    dtype = getattr(x, "dtype", None)
    return np.dtype(dtype) if dtype is not None else jnp.asarray(x).dtype


def float_dtype() -> np.dtype:
    """The dtype schedules compute in: float32, or float64 when x64 is enabled."""
    return np.dtype(jax.dtypes.canonicalize_dtype(jnp.float64))


def promote(*dtypes: Any) -> np.dtype:
    """The standard JAX promotion of ``dtypes``, explicitly (valid under strict promotion)."""
    return _promote(float_dtype(), dtypes)


@functools.cache
def _promote(widest: np.dtype, dtypes: tuple[Any, ...]) -> np.dtype:
    del widest  # a key only: float64 promotes to float32 without x64
    with jax.numpy_dtype_promotion("standard"):
        return np.dtype(jnp.result_type(*dtypes))


def astype(x: Any, dtype: Any) -> chex.Array:
    """``x`` as a ``dtype`` array; an array that already is one is returned as it is.

    Skipping the no-op conversion keeps tracing fast on trees of many leaves. A
    weakly typed scalar is still converted, so it takes part in promotion as ``dtype``.
    """
    if isinstance(x, jax.Array):
        if x.dtype == dtype and not jax.typeof(x).weak_type:
            return x
    elif isinstance(x, int | float) and not isinstance(x, bool):
        dtype = np.dtype(dtype)
        if jnp.issubdtype(dtype, jnp.floating) and dtype == jax.dtypes.canonicalize_dtype(dtype):
            with np.errstate(over="ignore"):  # beyond the dtype's range: inf, as a cast gives
                return np.asarray(x, dtype)  # a constant, rounded once, without a traced op
    return jnp.asarray(x).astype(dtype)


def compute_dtype(dtype: Any) -> np.dtype:
    """``dtype`` promoted to at least float32 (float64 and complex stay as they are)."""
    return promote(dtype, jnp.float32)


def to_compute(x: chex.Array) -> chex.Array:
    """Cast a leaf to its :func:`compute_dtype`."""
    return astype(x, compute_dtype(dtype_of(x)))


def zeros_like(params: chex.ArrayTree, dtype: Any | None = None) -> chex.ArrayTree:
    """Zeros shaped like ``params`` (arrays or ``ShapeDtypeStruct``\\ s).

    Floating-point leaves get ``dtype`` if given, else their own dtype; other
    leaves (integer or boolean parameters, which every transformation passes
    through) keep their own dtype. Each leaf keeps the sharding of its
    parameter: that of a committed array, of a ``ShapeDtypeStruct`` with a
    ``sharding``, or, under ``jit`` with explicitly sharded axes, of the traced
    value. So a state is created where its parameter lives, shard by shard,
    never gathered on one device.
    """

    def zeros(p):
        own = dtype_of(p)
        return jnp.zeros_like(p, dtype if dtype is not None and is_inexact(p) else own)

    return jax.tree.map(zeros, params)


def full_like(params: chex.ArrayTree, value: float, dtype: Any | None = None) -> chex.ArrayTree:
    """Like :func:`zeros_like`, filled with ``value`` on floating-point leaves."""

    def full(p):
        if not is_inexact(p):
            return jnp.zeros_like(p, dtype_of(p))
        return jnp.full_like(p, value, dtype if dtype is not None else dtype_of(p))

    return jax.tree.map(full, params)


def cast_like(x: chex.Array, like: chex.Array) -> chex.Array:
    """``x`` cast to the dtype of ``like`` (an update is returned in its gradient's dtype)."""
    return cast_to(x, dtype_of(like))


def cast_to(x: chex.Array, dtype: Any) -> chex.Array:
    """``x`` cast to ``dtype``; a complex ``x`` cast to a real dtype keeps its real part.

    Callers cast a complex value to a real dtype only where its imaginary part is
    zero (a second moment kept in a complex dtype, the update of a real parameter
    from a complex ``mu_dtype`` state); the layout checks refuse the other cases.
    """
    if is_complex(x) and not jnp.issubdtype(dtype, jnp.complexfloating):
        x = jnp.real(x)
    return astype(x, dtype)


def real_part(x: chex.Array) -> chex.Array:
    """A real-valued statistic (a second moment, a maximum of ``|g|``) in its real compute dtype.

    Such a statistic is kept in a complex dtype for complex parameters (as optax
    keeps it), with a zero imaginary part; this drops that part.
    """
    return jnp.real(to_compute(x))


def div_real(x: chex.Array, d: chex.Array) -> chex.Array:
    """``x / d`` for a real ``d``, in the promotion of both; a complex ``x`` part by part.

    Dividing the real and imaginary parts by ``d`` is exact to rounding, as a real
    division is, whatever the size of ``d``.
    """
    real = promote(real_dtype(dtype_of(x)), dtype_of(d))
    d = astype(d, real)
    if is_complex(x):
        return jax.lax.complex(astype(jnp.real(x), real) / d, astype(jnp.imag(x), real) / d)
    return astype(x, real) / d


def sqrt_eps(x: chex.Array, eps: chex.Numeric, eps_in_sqrt: bool) -> chex.Array:
    """``sqrt(x + eps)`` or ``sqrt(x) + eps`` in ``x``'s (compute) dtype."""
    e = astype(eps, x.dtype)
    return jnp.sqrt(x + e) if eps_in_sqrt else jnp.sqrt(x) + e


# ------------------------------------------------------------------------ leaf mapping


def map_inexact(f: Callable[..., Any], *trees: chex.ArrayTree, keep: int = 0) -> chex.ArrayTree:
    """``jax.tree.map(f, *trees)`` on the leaves where ``trees[keep]`` is floating point.

    Elsewhere the leaf of ``trees[keep]`` is returned unchanged: integer and
    boolean leaves pass through every transformation bit for bit.
    """

    def g(*leaves):
        return f(*leaves) if is_inexact(leaves[keep]) else leaves[keep]

    return jax.tree.map(g, *trees)


def map_unzip(
    f: Callable[..., tuple[Any, ...]], tree: chex.ArrayTree, *rest: chex.ArrayTree
) -> tuple[chex.ArrayTree, ...]:
    """Map ``f`` returning a tuple over the leaves of ``tree``; return one tree per element.

    The other trees are flattened up to ``tree``'s structure, so a state node
    that stands for one parameter (a per-leaf statistics node, say) reaches ``f`` whole.
    """
    treedef: Any = jax.tree.structure(tree)  # typed loosely: the stub lacks flatten_up_to
    columns = [treedef.flatten_up_to(t) for t in (tree, *rest)]
    results = [f(*leaves) for leaves in zip(*columns, strict=True)]
    if not results:
        return ()
    return tuple(treedef.unflatten(list(r)) for r in zip(*results, strict=True))


# ------------------------------------------------------------------------ moments


def lincomb(
    a: chex.Numeric, x: chex.ArrayTree, b: chex.Numeric, y: chex.ArrayTree, order: int = 1
) -> chex.ArrayTree:
    """``a * x + b * y**order`` leaf by leaf, computed in at least float32, stored in ``x``'s dtype.

    The one linear combination behind every moment: a heavy-ball trace is
    ``lincomb(decay, v, 1, g)``, AdaGrad's running sum ``lincomb(1, s, 1, g, 2)``,
    a running mean ``lincomb(n / (n + 1), m, 1 / (n + 1), g)``. The square of
    a float16 gradient is taken in float32, so it cannot underflow first.

    ``order`` is 1 or 2. Order 2 is a second moment, ``a * x + b * |y|**2``: the
    square of a complex ``y`` is ``|y|**2`` (:func:`abs_sq`), ``x`` is read as a
    real number (:func:`real_part`) and the sum is formed in real arithmetic.
    """
    if order not in (1, 2):
        raise ValueError(f"order={order!r} must be 1 (a first moment) or 2 (a second moment)")
    coefficients = per_dtype(lambda dtype: (_coefficient(a, dtype), _coefficient(b, dtype)))

    def step(xi, yi):
        if order == 2:
            x32 = real_part(xi)
            y32 = abs_sq(yi, at_least=x32.dtype)
        else:
            x32, y32 = to_compute(xi), to_compute(yi)
        dtype = promote(x32.dtype, y32.dtype)
        ca, cb = coefficients(dtype)
        return cast_to(_times(ca, astype(x32, dtype)) + _times(cb, astype(y32, dtype)), xi.dtype)

    return map_inexact(step, x, y)


def per_dtype(make: Callable[[np.dtype], Any]) -> Callable[[Any], Any]:
    """``make(dtype)``, formed once per dtype and reused for every leaf of that dtype.

    The scalars of a step (coefficients, bias-correction factors) are traced once
    per dtype instead of once per leaf, which keeps the compiled program, and its
    compile time, small on trees of many leaves. The values are the same.
    """
    made: dict[np.dtype, Any] = {}

    def get(dtype: Any) -> Any:
        dtype = np.dtype(dtype)
        if dtype not in made:
            made[dtype] = make(dtype)
        return made[dtype]

    return get


def _coefficient(c: chex.Numeric, dtype: np.dtype) -> chex.Array | None:
    """``c`` as a ``dtype`` scalar, or ``None`` for a Python ``1`` (no multiply: exact)."""
    if isinstance(c, int | float) and not isinstance(c, bool) and c == 1:
        return None
    return astype(c, dtype)


def _times(c: chex.Array | None, x: chex.Array) -> chex.Array:
    return x if c is None else c * x


def update_moment(
    moments: chex.ArrayTree, updates: chex.ArrayTree, decay: chex.Numeric, order: int = 1
) -> chex.ArrayTree:
    """The exponential moving average ``m <- decay * m + (1 - decay) * g**order``.

    Every adaptive method's moment estimate; stored in each moment's own dtype.
    """
    d = jnp.asarray(decay)
    return lincomb(d, moments, 1 - d, updates, order)


def bias_correction(
    moment: chex.ArrayTree, decay: chex.Numeric, count: chex.Array
) -> chex.ArrayTree:
    """Divide a moment estimate by ``1 - decay**count`` (Kingma & Ba, 2015, Alg. 1).

    ``count`` is the number of updates folded into the moment; a count below 1
    is taken as 1, so the factor is never zero for ``decay < 1``. The factor is
    computed as ``-expm1(count * log1p(decay - 1))`` in at least float32, which
    is exact to rounding even for ``decay`` within 1e-7 of 1, and the result is
    returned in at least float32 (callers cast at the end).

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> gx.bias_correction(jnp.array([0.25]), 0.5, jnp.array(2, jnp.int32))
      Array([0.33333334], dtype=float32)
    """

    def make_factor(real):  # lax directly: a few traced scalar ops, no jnp wrappers
        d = astype(decay, real)
        t = jax.lax.max(astype(count, real), np.ones([], real))
        return jax.lax.neg(jax.lax.expm1(jax.lax.mul(t, jax.lax.log1p(d - np.ones([], real)))))

    factor = per_dtype(make_factor)

    def correct(m):
        m = to_compute(m)
        return div_real(m, factor(real_dtype(m.dtype)))

    return map_inexact(correct, moment)


def safe_increment(count: chex.Array) -> chex.Array:
    """``count + 1`` for an int32 step counter, saturating at ``2**31 - 1`` instead of wrapping."""
    count = astype(count, jnp.int32)
    return jax.lax.select(count < INT32_MAX, count + np.int32(1), np.int32(INT32_MAX))


def zero_count() -> chex.Array:
    """A new int32 step counter."""
    return jnp.zeros([], jnp.int32)


# ------------------------------------------------------------------------- norms


def all_finite(tree: chex.ArrayTree) -> chex.Array:
    """Whether every floating-point entry of ``tree`` is finite (a bool scalar)."""
    checks = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree) if is_inexact(x)]
    return jnp.all(jnp.stack(checks)) if checks else jnp.ones([], jnp.bool_)


def select_tree(pred: chex.Array, new: chex.ArrayTree, old: chex.ArrayTree) -> chex.ArrayTree:
    """``new`` where the scalar ``pred`` holds, else ``old``, leaf by leaf, in ``old``'s dtypes."""
    return jax.tree.map(lambda n, o: jnp.where(pred, n, o).astype(jnp.asarray(o).dtype), new, old)


def abs_sq(x: chex.Array, at_least: Any = None) -> chex.Array:
    """``|x|**2`` in at least float32 (the real part of ``x * conj(x)``: complex leaves count).

    With ``at_least`` (a real dtype), in at least that precision.
    """
    x = to_compute(x)
    if at_least is not None:
        x = x.astype(promote(x.dtype, at_least))
    return jnp.real(x * jnp.conj(x))


def leaf_norm(x: chex.Array, axis: Any = None, keepdims: bool = False) -> chex.Array:
    """The l2 norm of one leaf (over ``axis``), in at least float32."""
    return jnp.sqrt(jnp.sum(abs_sq(x), axis=axis, keepdims=keepdims))


def leaf_rms(x: chex.Array) -> chex.Array:
    """The root mean square of one leaf, in at least float32."""
    return jnp.sqrt(jnp.mean(abs_sq(x)))


def global_norm(tree: chex.ArrayTree) -> chex.Array:
    """The l2 norm of all floating-point leaves taken together, in at least float32."""
    leaves = [to_compute(x) for x in jax.tree.leaves(tree) if is_inexact(x)]
    if not leaves:
        return jnp.zeros([], jnp.float32)
    dtype = promote(*(x.dtype for x in leaves))
    squares = [jnp.sum(abs_sq(x)).astype(jnp.finfo(dtype).dtype) for x in leaves]
    return jnp.sqrt(sum(squares[1:], squares[0]))


def scale_tree(tree: chex.ArrayTree, factor: chex.Numeric) -> chex.ArrayTree:
    """Multiply every floating-point leaf by a scalar, in at least float32, keeping dtypes."""

    factors = per_dtype(lambda dtype: astype(factor, dtype))  # traced once per dtype

    def mul(x):
        y = to_compute(x)
        return astype(y * factors(y.dtype), x.dtype)

    return map_inexact(mul, tree)


# ------------------------------------------------------------------------ layout checks


def path_name(path: tuple[Any, ...]) -> str:
    """A key path as a string such as ``"encoder/dense/kernel"`` (``"<root>"`` if empty)."""
    return jax.tree_util.keystr(path, simple=True, separator="/") or "<root>"


def leaf_paths(tree: chex.ArrayTree) -> list[tuple[str, Any]]:
    return [(path_name(p), x) for p, x in jax.tree_util.tree_flatten_with_path(tree)[0]]


def same_structure(a: chex.ArrayTree, b: chex.ArrayTree) -> bool:
    """Whether two trees have the same structure (containers and key paths)."""
    a_def: Any = jax.tree.structure(a)  # typed loosely: jaxlib's stub lacks __eq__
    return bool(a_def == jax.tree.structure(b))


def value_at(value: Any, count: chex.Array) -> chex.Numeric:
    """A scalar-or-schedule hyperparameter evaluated at step ``count``."""
    return value(count) if callable(value) else value
