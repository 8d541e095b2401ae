"""Muon: momentum orthogonalized by a Newton-Schulz iteration, and the matrix layout of a leaf.

:func:`newton_schulz` (the orthogonalization of a batch of matrices) and
:func:`matrix_layout` (which axes of a leaf form the matrix) serve any matrix
optimizer; :func:`scale_by_muon` and the shape factor :func:`scale_by_shape` are
the primitives of :func:`gradxform.muon`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np

from gradxform import _checks, _tree
from gradxform._base import GradientTransformation, init_empty_state, transformation
from gradxform._transforms.adam import check_moment_updates, nesterov_mu_hat
from gradxform._wrappers.masking import is_mask_fn

DEFAULT_NS_COEFFS = (3.4445, -4.7750, 2.0315)
PRECONDITIONINGS = ("frobenius", "spectral", "aol", "schatten")


class MuonDimensionNumbers(NamedTuple):
    """Which axes of a leaf are the rows (``reduction_axis``) and columns (``output_axis``)
    of the matrix Muon orthogonalizes; every other axis is a batch axis.

    For ``y = x @ W`` the reduction axis is the one contracted with ``x`` (0 for a
    ``(fan_in, fan_out)`` kernel: the default) and the output axis indexes ``y``.
    Several axes on one side are flattened together (a conv kernel ``(h, w, in, out)``:
    ``reduction_axis=(0, 1, 2), output_axis=3``); the other axes (stacked or scanned
    layers, attention heads) index independent matrices. Negative axes count from the
    end; an axis out of range or named twice is an error naming the leaf.
    """

    reduction_axis: Sequence[int] | int = 0
    output_axis: Sequence[int] | int = 1


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


def _axes(value: Any, name: str) -> tuple[int, ...]:
    axes = (value,) if isinstance(value, int | np.integer) else value
    if isinstance(axes, str) or not isinstance(axes, Sequence | np.ndarray):
        raise TypeError(f"{name}={value!r} must be an int or a sequence of ints")
    for a in axes:
        if isinstance(a, bool) or not isinstance(a, int | np.integer):
            raise TypeError(f"{name}={value!r} must be an int or a sequence of ints")
    return tuple(int(a) for a in axes)


def check_dimension_numbers(dims: Any, name: str) -> None:
    """Check a :class:`MuonDimensionNumbers`'s axes are ints (their range needs a leaf)."""
    if not isinstance(dims, MuonDimensionNumbers):
        raise TypeError(f"{name}={dims!r} must be a MuonDimensionNumbers or None")
    _axes(dims.reduction_axis, f"{name}.reduction_axis")
    _axes(dims.output_axis, f"{name}.output_axis")


def _is_dims(x: Any) -> bool:
    return x is None or isinstance(x, MuonDimensionNumbers)


class _Box:
    """A leaf holding one leaf's dimension numbers (``None`` included) while mapping."""

    __slots__ = ("dims",)

    def __init__(self, dims: Any):
        self.dims = dims


DEFAULT = MuonDimensionNumbers()


def leaf_dimension_numbers(spec: Any, tree: Any, name: str) -> list[Any]:
    """The dimension numbers of every leaf of ``tree`` (flattening order) from ``spec``.

    ``spec`` is ``None`` (every leaf a 2-D matrix as it is: ``DEFAULT``), one
    :class:`MuonDimensionNumbers` for every leaf, a tree of them (or ``None``: not a
    Muon leaf) with the structure of ``tree`` or a prefix of it, or a function of
    ``tree`` returning any of these.
    """
    if spec is not None and not isinstance(spec, MuonDimensionNumbers) and is_mask_fn(spec):
        spec = spec(tree)
    n = len(jax.tree.leaves(tree))
    if spec is None or isinstance(spec, MuonDimensionNumbers):
        return [spec or DEFAULT] * n
    try:
        boxed = jax.tree.map(
            lambda d, sub: jax.tree.map(lambda _: _Box(d), sub), spec, tree, is_leaf=_is_dims
        )
    except (TypeError, ValueError) as e:
        raise ValueError(
            f"{name} must be a MuonDimensionNumbers, or a tree of them (None for a leaf "
            f"Muon does not update) with the structure of the params or a prefix of it: {e}"
        ) from None
    out = [b.dims for b in jax.tree.leaves(boxed, is_leaf=lambda x: isinstance(x, _Box))]
    for d in out:
        if d is not None:
            check_dimension_numbers(d, name)
    return out


class MatrixLayout(NamedTuple):
    """How a leaf is viewed as a batch of ``(rows, cols)`` matrices (rows: the reduction)."""

    perm: tuple[int, ...]
    batch: int
    rows: int
    cols: int


def matrix_layout(shape: tuple[int, ...], dims: Any, where: str) -> MatrixLayout:
    """The batch-of-matrices view of a leaf of ``shape`` under ``dims``.

    ``dims=None`` is ``DEFAULT``. Raises a ``ValueError`` naming ``where`` (the leaf's
    key path) for a leaf of fewer than two axes or dimension numbers that do not fit it.
    """
    ndim = len(shape)
    if ndim < 2:
        raise ValueError(
            f"leaf '{where}' of shape {shape} is routed to Muon, which needs a matrix (at "
            f"least 2 axes); give it None dimension numbers to route it elsewhere"
        )
    dims = dims or DEFAULT
    sides = []
    for side in ("reduction_axis", "output_axis"):
        axes = _axes(getattr(dims, side), side)
        if any(not -ndim <= a < ndim for a in axes):
            raise ValueError(f"leaf '{where}' of shape {shape}: {side}={axes} out of range")
        sides.append(tuple(a % ndim for a in axes))
    red, out = sides
    named = red + out
    if len(set(named)) != len(named):
        raise ValueError(
            f"leaf '{where}' of shape {shape}: the dimension numbers {dims} name an axis "
            f"twice (reduction axes {red}, output axes {out})"
        )
    batch = tuple(a for a in range(ndim) if a not in named)
    return MatrixLayout(
        perm=batch + red + out,
        batch=math.prod(shape[a] for a in batch),
        rows=math.prod(shape[a] for a in red),
        cols=math.prod(shape[a] for a in out),
    )


def to_matrices(x: chex.Array, layout: MatrixLayout) -> chex.Array:
    """``x`` as an array of shape ``(batch, rows, cols)``."""
    return jnp.transpose(x, layout.perm).reshape(layout.batch, layout.rows, layout.cols)


def from_matrices(m: chex.Array, layout: MatrixLayout, shape: tuple[int, ...]) -> chex.Array:
    """The inverse of :func:`to_matrices` for a leaf of ``shape``."""
    m = m.reshape(tuple(shape[a] for a in layout.perm))
    return jnp.transpose(m, tuple(np.argsort(layout.perm)))


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
    x = jnp.asarray(x)
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
    return jnp.swapaxes(x, -1, -2) if transpose else x


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
      >>> g = jnp.array([[3.0, 0.0], [0.0, 4.0]])
      >>> u, _ = tx.update(g, tx.init(g))
      >>> u.round(2)  # both singular values pushed towards 1
      Array([[0.88, 0.  ],
             [0.  , 0.98]], dtype=float32)
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
        out = []
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
        hats = treedef.flatten_up_to(mu_hat)
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
        return treedef.unflatten(out), MuonState(count=count, mu=mu, ns_coeffs=state.ns_coeffs)

    return transformation(init_fn, update_fn, per_leaf="scale_by_muon")


def check_weight_dimension_numbers(spec: Any, name: str) -> None:
    """Check the types in a dimension-numbers argument given as a value (not a function)."""
    if spec is None or isinstance(spec, MuonDimensionNumbers):
        if spec is not None:
            check_dimension_numbers(spec, name)
        return
    if is_mask_fn(spec):
        return
    for d in jax.tree.leaves(spec, is_leaf=_is_dims):
        if d is not None:
            check_dimension_numbers(d, name)


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
