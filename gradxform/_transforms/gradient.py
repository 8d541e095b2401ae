"""Gradient processing: replacing NaNs, annealed Gaussian noise, gradient centralization."""

from __future__ import annotations

from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp

from gradxform import _checks, _tree
from gradxform._base import GradientTransformation, from_function, transformation


def _check_structure(updates: chex.ArrayTree, reference: chex.ArrayTree, who: str) -> None:
    if not _tree.same_structure(updates, reference):
        _checks.check_same_layout(
            updates, reference, what="updates", against=f"the params given to {who}.init"
        )


# ------------------------------------------------------------------------ zero_nans


class ZeroNansState(NamedTuple):
    """Per leaf, whether the last update contained a NaN (a bool scalar)."""

    found_nan: chex.ArrayTree


def zero_nans() -> GradientTransformation:
    """Replace every NaN in the updates by zero and record, per leaf, that it happened.

    ``u <- where(isnan(u), 0, u)``. Infinities are left as they are (clip them
    with :func:`gradxform.clip`). ``state.found_nan`` holds
    one bool per leaf, true when that leaf had a NaN at the last update, for
    logging.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradxform import zero_nans
      >>> tx = zero_nans()
      >>> u, state = tx.update(jnp.array([1.0, jnp.nan]), tx.init(jnp.zeros(2)))
      >>> u, state.found_nan
      (Array([1., 0.], dtype=float32), Array(True, dtype=bool))
    """

    def init_fn(params):
        return ZeroNansState(found_nan=jax.tree.map(lambda _: jnp.zeros([], jnp.bool_), params))

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        _check_structure(updates, state.found_nan, "zero_nans")

        def found(u):
            return jnp.any(jnp.isnan(u)) if _tree.is_inexact(u) else jnp.zeros([], jnp.bool_)

        out = _tree.map_inexact(
            lambda u: jnp.where(jnp.isnan(u), jnp.zeros([], u.dtype), u), updates
        )
        return out, ZeroNansState(found_nan=jax.tree.map(found, updates))

    return transformation(init_fn, update_fn)


# ------------------------------------------------------------------------ add_noise


class AddNoiseState(NamedTuple):
    """Step count and the raw data (uint32) of the PRNG key for the next draw."""

    count: chex.Array
    rng_key: chex.Array


def add_noise(eta: chex.Numeric, gamma: chex.Numeric, seed: int) -> GradientTransformation:
    """Add annealed Gaussian noise to the updates (Neelakantan et al., 2015, "Adding
    Gradient Noise Improves Learning for Very Deep Networks").

    ::

        sigma_t**2 = eta / (1 + t)**gamma          (t = 0 at the first update)
        u_t <- u_t + sigma_t * N(0, 1)

    The noise is drawn in at least float32 and added before casting back, so
    float16 updates get correctly scaled noise. Each leaf gets its own key; the
    key is carried in the state as raw ``uint32`` data so the state saves and
    restores like any other array. Non-finite updates stay non-finite.

    Args:
      eta: non-negative noise variance at ``t = 0`` (the paper uses 0.01-1).
      gamma: non-negative annealing exponent (the paper uses 0.55).
      seed: non-negative int seeding the noise.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradxform import add_noise
      >>> tx = add_noise(eta=0.0, gamma=0.55, seed=0)   # zero variance: no noise
      >>> tx.update(jnp.ones(2), tx.init(jnp.zeros(2)))[0]
      Array([1., 1.], dtype=float32)
    """
    _checks.non_negative("eta", eta, allow_schedule=False)
    _checks.non_negative("gamma", gamma, allow_schedule=False)
    _checks.integer("seed", seed, low=0)

    def init_fn(params):
        del params
        return AddNoiseState(
            count=_tree.zero_count(), rng_key=jax.random.key_data(jax.random.key(seed))
        )

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        leaves, treedef = jax.tree.flatten(updates)
        keys = jax.random.split(jax.random.wrap_key_data(state.rng_key), len(leaves) + 1)
        t = state.count.astype(jnp.float32)
        variance = jnp.asarray(eta, jnp.float32) / (1 + t) ** jnp.asarray(gamma, jnp.float32)
        sigma = jnp.sqrt(variance)

        def noisy(u, key):
            if not _tree.is_inexact(u):
                return u
            dtype = _tree.compute_dtype(u.dtype)
            z = jax.random.normal(key, jnp.shape(u), dtype)
            return (u.astype(dtype) + sigma.astype(dtype) * z).astype(u.dtype)

        out = [noisy(u, k) for u, k in zip(leaves, keys[1:], strict=True)]
        state = AddNoiseState(
            count=_tree.safe_increment(state.count), rng_key=jax.random.key_data(keys[0])
        )
        return jax.tree.unflatten(treedef, out), state

    # Each leaf draws its own noise from its own key: not the noise of one concatenated buffer.
    return transformation(init_fn, update_fn, per_leaf="add_noise")


# ----------------------------------------------------------------------- centralize


def centralize() -> GradientTransformation:
    """Gradient centralization (Yong et al., 2020, "Gradient Centralization: A New
    Optimization Technique for Deep Neural Networks").

    For every leaf with two or more axes, subtract from each output unit its
    mean over the unit (all axes but the last, the output axis in JAX's
    ``(fan_in, fan_out)`` and ``HWIO`` layouts)::

        g[..., j] <- g[..., j] - mean(g[..., j])

    Vectors and scalars (biases, norm scales) are left as they are. optax's
    ``centralize`` takes the *first* axis as the output axis (PyTorch's
    layout); transpose accordingly when comparing. A NaN or infinity in a unit
    makes that whole unit non-finite, since it enters the mean.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradxform import centralize
      >>> tx = centralize()
      >>> tx.update(jnp.array([[1.0, 2.0], [3.0, 6.0]]), tx.init(jnp.zeros((2, 2))))[0]
      Array([[-1., -2.],
             [ 1.,  2.]], dtype=float32)
    """

    def f(updates, params):
        del params

        def one(u):
            if u.ndim < 2:
                return u
            x = _tree.to_compute(u)
            return (x - jnp.mean(x, axis=tuple(range(u.ndim - 1)), keepdims=True)).astype(u.dtype)

        return _tree.map_inexact(one, updates)

    return from_function(f, per_leaf="centralize")
