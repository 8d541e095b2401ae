"""Parameter averages and copies (Polyak averaging, target networks) and gradient scaling."""

from __future__ import annotations

from typing import Any

import chex
import jax
import jax.numpy as jnp

from gradxform import _checks, _tree


def _is_none(x: Any) -> bool:
    return x is None


def incremental_update(
    new_tensors: chex.ArrayTree, old_tensors: chex.ArrayTree, step_size: chex.Numeric
) -> chex.ArrayTree:
    """Polyak averaging: move a moving average of the parameters toward the latest ones.

    ::

        old <- step_size * new + (1 - step_size) * old         (leaf by leaf)

    (Polyak & Juditsky, 1992, "Acceleration of Stochastic Approximation by
    Averaging"), as optax's ``incremental_update``. Floating-point leaves are
    combined in at least float32 and returned in the promoted dtype of the two
    leaves; a ``None`` leaf of ``new_tensors`` gives ``None``.

    Args:
      new_tensors: the latest parameters.
      old_tensors: the moving average, with the same structure.
      step_size: the weight of the new parameters (1: copy them, 0: keep the average).

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> gx.incremental_update(jnp.array([1.0]), jnp.array([3.0]), 0.25)
      Array([2.5], dtype=float32)
    """
    _checks.finite("step_size", step_size, allow_schedule=False)

    def mix(new, old):
        if new is None:
            return None
        new, old = jnp.asarray(new), jnp.asarray(old)
        out_dtype = _tree.promote(new.dtype, old.dtype)
        if not jnp.issubdtype(out_dtype, jnp.inexact):
            with jax.numpy_dtype_promotion("standard"):
                return step_size * new + (1.0 - step_size) * old
        dtype = _tree.compute_dtype(out_dtype)
        s = jnp.asarray(step_size).astype(dtype)
        return (s * new.astype(dtype) + (1 - s) * old.astype(dtype)).astype(out_dtype)

    return jax.tree.map(mix, new_tensors, old_tensors, is_leaf=_is_none)


def periodic_update(
    new_tensors: chex.ArrayTree,
    old_tensors: chex.ArrayTree,
    steps: chex.Numeric,
    update_period: chex.Numeric,
) -> chex.ArrayTree:
    """A slow copy of the parameters: ``new_tensors`` every ``update_period`` steps, else the old.

    ::

        new   if steps % update_period == 0
        old   otherwise

    (a target network: Mnih et al., 2015; Grill et al., 2020), as optax's
    ``periodic_update``. ``steps`` may be a traced integer; the choice is a
    ``lax.cond``, so the two trees must have the same structure and dtypes.

    Args:
      new_tensors: the latest parameters.
      old_tensors: the slow copy.
      steps: the number of updates of the online parameters.
      update_period: every how many steps to copy them (a positive int).

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> gx.periodic_update(jnp.array([1.0]), jnp.array([0.0]), 10, 5)
      Array([1.], dtype=float32)
      >>> gx.periodic_update(jnp.array([1.0]), jnp.array([0.0]), 11, 5)
      Array([0.], dtype=float32)
    """
    concrete = isinstance(update_period, int | float) and not isinstance(update_period, bool)
    if concrete and (update_period <= 0 or update_period != int(update_period)):
        raise ValueError(f"update_period={update_period!r} must be a positive int")
    return jax.lax.cond(
        jnp.mod(steps, update_period) == 0,
        lambda _: new_tensors,
        lambda _: old_tensors,
        None,
    )


@jax.custom_vjp
def _scale_gradient(inputs: chex.ArrayTree, scale: chex.Numeric) -> chex.ArrayTree:
    del scale  # read by the backward pass only
    return inputs


def _scale_gradient_fwd(
    inputs: chex.ArrayTree, scale: chex.Numeric
) -> tuple[chex.ArrayTree, chex.Numeric]:
    return _scale_gradient(inputs, scale), scale


def _scale_gradient_bwd(scale: chex.Numeric, g: chex.ArrayTree) -> tuple[chex.ArrayTree, None]:
    return jax.tree.map(lambda x: x * scale, g), None


_scale_gradient.defvjp(_scale_gradient_fwd, _scale_gradient_bwd)


def scale_gradient(inputs: chex.ArrayTree, scale: chex.Numeric) -> chex.ArrayTree:
    """The identity on ``inputs`` whose gradient is multiplied by ``scale`` on the way back.

    ::

        forward:   scale_gradient(x, s) = x
        backward:  d/dx -> s * d/dx

    as optax's ``scale_gradient``. A Python ``scale`` of 1 returns ``inputs`` as
    they are and 0 stops the gradient (``lax.stop_gradient``).

    Args:
      inputs: a tree of arrays.
      scale: the factor applied to the gradient.

    Example:
      >>> import jax, jax.numpy as jnp, gradxform as gx
      >>> jax.grad(lambda x: gx.scale_gradient(x, 0.5) ** 2)(3.0)
      Array(3., dtype=float32, weak_type=True)
    """
    if isinstance(scale, int | float) and not isinstance(scale, bool):
        if scale == 1:
            return inputs
        if scale == 0:
            return jax.lax.stop_gradient(inputs)
    return _scale_gradient(inputs, scale)
