"""A one-pass Adam / AdamW step on CPU: a C++ kernel called through ``jax.ffi``.

XLA on CPU writes ``m``, ``v`` and the parameters in separate loops (40 bytes moved
per float32 parameter against the 28 that Adam needs). The kernel in
``gradxform/_csrc/adam.cc``, built by ``pip install`` when a C++ compiler is present
(``setup.py``; optional), reads ``p, g, m, v`` once and writes ``p, m, v`` once,
in place under donation, with the same float32 operations in the same order as the
XLA path.

Why dedicated factories (:func:`fused_adam`, :func:`fused_adamw`) and not every
``adam``: the kernel runs a subset of Adam's options (no ``eps_root``, Nesterov or
``eps_uncorrected``; float32 parameters; float32 or bfloat16 moments), so the
factories refuse the rest when they are built instead of falling back without a word.
What they return *is* ``adam(...)`` / ``adamw(...)``: the same ``init``, ``update``
and state, so it chains, wraps and checkpoints like them, and a state moves freely
between the fused and the plain optimizer. :func:`fused_apply` recognises them (by
their ``update`` function) and takes any other transformation through
``tx.update`` + ``apply_updates``.
"""

from __future__ import annotations

import ctypes
import dataclasses
import functools
import importlib.util
import weakref
from collections.abc import Callable
from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np

from gradxform import _checks, _tree
from gradxform._base import (
    GradientTransformation,
    Mask,
    Params,
    ScalarOrSchedule,
    apply_updates,
)
from gradxform._optimizers.adam import adam, adamw
from gradxform._transforms.adam import ScaleByAdamState, bias_factor
from gradxform._transforms.scaling import scale_by_learning_rate
from gradxform._transforms.weight_decay import add_decayed_weights

_LIBRARY = "gradxform._adam_kernel"  # the extension setup.py builds (a plain shared library)
_TARGET = "gradxform_adam_step"
_MOMENT_DTYPES = (np.dtype(np.float32), np.dtype(jnp.bfloat16))


@functools.cache
def _load_library() -> ctypes.CDLL | None:
    """The compiled kernel library, or ``None`` when the package was installed without it."""
    try:
        spec = importlib.util.find_spec(_LIBRARY)
    except (ImportError, ValueError):
        return None
    if spec is None or spec.origin is None:
        return None
    try:
        return ctypes.cdll.LoadLibrary(spec.origin)
    except OSError:
        return None


_REGISTERED: set[str] = set()


def _registered() -> bool:
    """Load the library and register its handler with XLA once; whether that worked."""
    library = _load_library()
    if library is None:
        return False
    if _TARGET not in _REGISTERED:
        try:
            handler = jax.ffi.pycapsule(library.GxAdamStep)
            jax.ffi.register_ffi_target(_TARGET, handler, platform="cpu")
        except Exception:  # a library that does not fit this jaxlib: the XLA path it is
            return False
        _REGISTERED.add(_TARGET)
    return True


_registered()  # at import, where the library is present


def fused_kernel_available() -> bool:
    """Whether the one-pass Adam kernel was built with the package (CPU only).

    ``False`` after an install without a C++ compiler: :func:`fused_apply` then
    runs the XLA path, with the same results.

    Example:
      >>> import gradxform as gx
      >>> isinstance(gx.fused_kernel_available(), bool)
      True
    """
    return _registered()


@dataclasses.dataclass(frozen=True)
class _Config:
    b1: chex.Numeric
    b2: chex.Numeric
    eps: chex.Numeric
    lr: GradientTransformation  # scale_by_learning_rate(learning_rate): -eta from 1.0
    decay: GradientTransformation | None  # add_decayed_weights(weight_decay): lambda from 0.0
    mask: Mask


_CONFIGS: weakref.WeakKeyDictionary[Callable[..., Any], _Config] = weakref.WeakKeyDictionary()


def _check_fusable(eps_root: Any, mu_dtype: Any, nu_dtype: Any) -> None:
    if not (isinstance(eps_root, int | float) and eps_root == 0):
        raise ValueError(f"{eps_root=}: the fused kernel has no eps_root; use adam/adamw for it")
    for name, dtype in (("mu_dtype", mu_dtype), ("nu_dtype", nu_dtype)):
        canonical = _checks.canonical_dtype(dtype, name)
        if canonical is not None and canonical not in _MOMENT_DTYPES:
            raise ValueError(
                f"{name}={canonical.name}: the fused kernel keeps moments in float32 or "
                f"bfloat16 (or None: the parameter's dtype)"
            )


def fused_adam(
    learning_rate: ScalarOrSchedule,
    b1: chex.Numeric = 0.9,
    b2: chex.Numeric = 0.999,
    eps: chex.Numeric = 1e-8,
    eps_root: chex.Numeric = 0.0,
    mu_dtype: Any | None = None,
    *,
    nu_dtype: Any | None = None,
) -> GradientTransformation:
    """:func:`adam` that :func:`fused_apply` runs as one pass of a C++ kernel on CPU.

    The returned transformation is ``adam(learning_rate, b1, b2, eps, mu_dtype=mu_dtype,
    nu_dtype=nu_dtype)``: same update equation, ``init``, ``update`` and state
    (:class:`ScaleByAdamState`). Only :func:`fused_apply` differs, and only in how
    it computes the step (see :func:`fused_apply`).

    Args:
      learning_rate: ``eta``, a non-negative float, JAX scalar or schedule.
      b1: first-moment decay in ``[0, 1)``.
      b2: second-moment decay in ``[0, 1)``.
      eps: non-negative term added to the root.
      eps_root: must be 0 (kept so the positional order is :func:`adam`'s).
      mu_dtype: dtype of the first moment: ``None``, float32 or bfloat16.
      nu_dtype: dtype of the second moment: ``None``, float32 or bfloat16.

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> tx = gx.fused_adam(0.1)
      >>> params = {"w": jnp.array([1.0, -1.0])}
      >>> params, state = gx.fused_apply(tx, params, {"w": jnp.array([0.3, -0.2])},
      ...                                tx.init(params))
      >>> params
      {'w': Array([ 0.9, -0.9], dtype=float32)}
    """
    _check_fusable(eps_root, mu_dtype, nu_dtype)
    tx = adam(learning_rate, b1, b2, eps, 0.0, mu_dtype, nu_dtype=nu_dtype)
    _CONFIGS[tx.update] = _Config(b1, b2, eps, scale_by_learning_rate(learning_rate), None, None)
    return tx


def fused_adamw(
    learning_rate: ScalarOrSchedule,
    b1: chex.Numeric = 0.9,
    b2: chex.Numeric = 0.999,
    eps: chex.Numeric = 1e-8,
    eps_root: chex.Numeric = 0.0,
    mu_dtype: Any | None = None,
    weight_decay: ScalarOrSchedule = 1e-4,
    mask: Mask = None,
    *,
    nu_dtype: Any | None = None,
) -> GradientTransformation:
    """:func:`adamw` that :func:`fused_apply` runs as one pass of a C++ kernel on CPU.

    The returned transformation is ``adamw(learning_rate, b1, b2, eps, 0.0, mu_dtype,
    weight_decay, mask, nu_dtype=nu_dtype)`` (decay scaled by the learning rate,
    ``theta <- theta - eta * (d + lambda * theta)``): same ``init``, ``update`` and
    state. Only :func:`fused_apply` differs, and only in how it computes the step.

    Args:
      learning_rate: ``eta``, a non-negative float, JAX scalar or schedule.
      b1: first-moment decay in ``[0, 1)``.
      b2: second-moment decay in ``[0, 1)``.
      eps: non-negative term added to the root.
      eps_root: must be 0 (kept so the positional order is :func:`adamw`'s).
      mu_dtype: dtype of the first moment: ``None``, float32 or bfloat16.
      weight_decay: non-negative ``lambda``, or a schedule of it.
      mask: which leaves to decay (tree of bools or a function of the params).
      nu_dtype: dtype of the second moment: ``None``, float32 or bfloat16.

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> tx = gx.fused_adamw(0.5, weight_decay=0.5)
      >>> p, _ = gx.fused_apply(tx, jnp.array([1.0]), jnp.array([2.0]),
      ...                       tx.init(jnp.array([1.0])))
      >>> p  # 1 - 0.5 * (sign(2.0) + 0.5 * 1.0)
      Array([0.25], dtype=float32)
    """
    _check_fusable(eps_root, mu_dtype, nu_dtype)
    tx = adamw(learning_rate, b1, b2, eps, 0.0, mu_dtype, weight_decay, mask, nu_dtype=nu_dtype)
    _CONFIGS[tx.update] = _Config(
        b1, b2, eps, scale_by_learning_rate(learning_rate), add_decayed_weights(weight_decay), mask
    )
    return tx


def fused_apply(
    tx: GradientTransformation, params: Params, grads: Params, state: Any
) -> tuple[Params, Any]:
    """One optimizer step, ``(params, state) -> (new_params, new_state)``, in one call.

    For a transformation made by :func:`fused_adam` or :func:`fused_adamw`, on CPU,
    with the kernel built (:func:`fused_kernel_available`), float32 parameters and
    gradients and float32 or bfloat16 moments, every leaf is updated by one C++
    loop that reads ``p, g, m, v`` once and writes ``p, m, v`` once (28 bytes per
    parameter, 20 with bfloat16 moments); under ``jax.jit(..., donate_argnums=...)``
    the params and state are updated in place. Its results are those of the XLA
    path to rounding (the same float32 operations in the same order). Under
    ``jax.vmap`` the kernel runs once on the whole batch.

    In every other case (any other transformation, another platform, no kernel,
    other dtypes) this is exactly ``updates, state = tx.update(grads, state, params)``
    followed by ``apply_updates(params, updates)``.

    Args:
      tx: a gradient transformation.
      params: the parameters.
      grads: gradients shaped like ``params``.
      state: ``tx``'s state.

    Returns:
      ``(new_params, new_state)``.

    Example:
      >>> import functools, jax, jax.numpy as jnp, gradxform as gx
      >>> tx = gx.fused_adamw(1e-3, weight_decay=1e-2)
      >>> @functools.partial(jax.jit, donate_argnums=(0, 1))
      ... def step(params, state, grads):
      ...     return gx.fused_apply(tx, params, grads, state)
      >>> params = {"w": jnp.ones(1000)}
      >>> params, state = step(params, tx.init(params), {"w": jnp.ones(1000)})
      >>> params["w"][:2]
      Array([0.99899, 0.99899], dtype=float32)
    """
    config = _CONFIGS.get(tx.update)
    if config is None or not _registered() or not _fits(params, grads, state):
        return _xla_step(tx, params, grads, state)
    return jax.lax.platform_dependent(
        params,
        grads,
        state,
        cpu=functools.partial(_kernel_step, config),
        default=functools.partial(_xla_step, tx),
    )


def _xla_step(tx: GradientTransformation, params: Any, grads: Any, state: Any) -> Any:
    updates, state = tx.update(grads, state, params)
    return apply_updates(params, updates), state


def _fits(params: Any, grads: Any, state: Any) -> bool:
    """Whether every leaf is one the kernel takes (else the XLA path runs, exactly)."""
    if not (isinstance(state, tuple) and state and isinstance(state[0], ScaleByAdamState)):
        return False
    leaves = jax.tree.leaves(params)
    trees = (grads, state[0].mu, state[0].nu)
    if not all(_tree.same_structure(params, t) for t in trees):
        return False
    f32 = np.dtype(np.float32)
    for p, g, m, v in zip(leaves, *map(jax.tree.leaves, trees), strict=True):
        shapes = {np.shape(x) for x in (p, g, m, v)}
        if len(shapes) != 1 or _tree.dtype_of(p) != f32 or _tree.dtype_of(g) != f32:
            return False
        if _tree.dtype_of(m) not in _MOMENT_DTYPES or _tree.dtype_of(v) not in _MOMENT_DTYPES:
            return False
    return True


def _kernel_step(config: _Config, params: Any, grads: Any, state: Any) -> Any:
    adam_state, *tail = state
    f32 = jnp.float32
    count = _tree.safe_increment(adam_state.count)
    neg_lr, lr_state = config.lr.update(jnp.ones([], f32), tail[-1])
    decay_on = jax.tree.leaves(_checks.resolve_mask(config.mask, params, "fused_adamw"))
    new_tail: tuple[Any, ...]
    if config.decay is None:
        wd, new_tail = jnp.zeros([], f32), (lr_state,)
        decay_on = [False] * len(decay_on)
    else:
        wd, wd_state = config.decay.update(jnp.zeros([], f32), tail[0], jnp.ones([], f32))
        new_tail = (wd_state, lr_state)
    b1, b2 = jnp.asarray(config.b1), jnp.asarray(config.b2)
    scalars = jnp.stack(
        [
            *(_tree.astype(x, f32) for x in (b1, 1 - b1, b2, 1 - b2)),
            bias_factor(config.b1, count),
            bias_factor(config.b2, count),
            _tree.astype(config.eps, f32),
            neg_lr,
            wd,
        ]
    )
    leaves, treedef = jax.tree.flatten(params)
    out = [
        _call(p, g, m, v, scalars, bool(on))
        for p, g, m, v, on in zip(
            leaves,
            jax.tree.leaves(grads),
            jax.tree.leaves(adam_state.mu),
            jax.tree.leaves(adam_state.nu),
            decay_on,
            strict=True,
        )
    ]
    if out:
        columns = zip(*out, strict=True)
        new_params, mu, nu = (jax.tree.unflatten(treedef, column) for column in columns)
    else:  # no leaves
        new_params, mu, nu = params, adam_state.mu, adam_state.nu
    return new_params, (ScaleByAdamState(count, mu, nu), *new_tail)


def _call(p: Any, g: Any, m: Any, v: Any, scalars: Any, decay: bool) -> Any:
    def like(x: Any) -> jax.ShapeDtypeStruct:
        return jax.ShapeDtypeStruct(np.shape(x), _tree.dtype_of(x))

    call = jax.ffi.ffi_call(
        _TARGET,
        (like(p), like(m), like(v)),
        input_output_aliases={0: 0, 2: 1, 3: 2},
        vmap_method="broadcast_all",
    )
    return call(p, g, m, v, scalars, decay=decay)
