"""Gradient processing: replacing NaNs, annealed Gaussian noise, gradient centralization."""

from __future__ import annotations

import warnings
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np

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


def add_noise(
    eta: chex.Numeric,
    gamma: chex.Numeric,
    key: jax.Array | int | None = None,
    *,
    seed: int | None = None,
) -> GradientTransformation:
    """Add annealed Gaussian noise to the updates (Neelakantan et al., 2015, "Adding
    Gradient Noise Improves Learning for Very Deep Networks").

    ::

        sigma_t**2 = eta / t**gamma               (t = 1 at the first update)
        u_t <- u_t + sigma_t * N(0, 1)

    The noise is optax's, draw for draw: at each update the key is split into
    the next key and a sampling key, and the sampling key into one key per
    leaf. It is drawn in at least float32 and added before casting back, so
    float16 updates get correctly scaled noise; integer leaves pass through.
    The key is carried in the state as its raw ``uint32`` data
    (``jax.random.key_data``), so the state saves and restores like any other array.

    Args:
      eta: non-negative noise variance at the first update (the paper uses 0.01-1).
      gamma: non-negative annealing exponent (the paper uses 0.55).
      key: a typed PRNG key (``jax.random.key(0)``) or a non-negative int seed.
        Without it the seed 0 is used, with a warning (as optax does).
      seed: an int seed, the same as ``key=seed`` (optax's former name for it).

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from gradxform import add_noise
      >>> tx = add_noise(eta=0.0, gamma=0.55, key=jax.random.key(0))   # zero variance
      >>> tx.update(jnp.ones(2), tx.init(jnp.zeros(2)))[0]
      Array([1., 1.], dtype=float32)
    """
    _checks.non_negative("eta", eta, allow_schedule=False)
    _checks.non_negative("gamma", gamma, allow_schedule=False)
    if seed is not None:
        if key is not None:
            raise ValueError(f"add_noise: give key or seed, not both (key={key!r}, seed={seed!r})")
        _checks.integer("seed", seed, low=0)
        key = seed
    if key is None:
        warnings.warn("add_noise: no key given; using the seed 0", stacklevel=2)
        key = 0
    typed = _typed_key(key)
    impl = jax.random.key_impl(typed)

    def init_fn(params):
        del params
        return AddNoiseState(count=_tree.zero_count(), rng_key=jax.random.key_data(typed))

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        count = _tree.safe_increment(state.count)
        rng_key, sample_key = jax.random.split(jax.random.wrap_key_data(state.rng_key, impl=impl))
        leaves, treedef = jax.tree.flatten(updates)
        keys = jax.random.split(sample_key, len(leaves))
        t = count.astype(jnp.float32)
        sigma = jnp.sqrt(jnp.asarray(eta, jnp.float32) / t ** jnp.asarray(gamma, jnp.float32))

        def noisy(u, k):
            if not _tree.is_inexact(u):
                return u
            dtype = _tree.compute_dtype(u.dtype)
            z = jax.random.normal(k, jnp.shape(u), dtype)
            return (u.astype(dtype) + sigma.astype(dtype) * z).astype(u.dtype)

        out = [noisy(u, k) for u, k in zip(leaves, keys, strict=True)]
        state = AddNoiseState(count=count, rng_key=jax.random.key_data(rng_key))
        return jax.tree.unflatten(treedef, out), state

    # Each leaf draws its own noise from its own key: not the noise of one concatenated buffer.
    return transformation(init_fn, update_fn, per_leaf="add_noise")


def _typed_key(key: Any) -> jax.Array:
    """A typed PRNG key from a typed key or a non-negative int seed."""
    if isinstance(key, jax.Array) and jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        if key.shape != ():
            raise ValueError(f"key={key!r} must be a single key, got a batch of shape {key.shape}")
        return key
    if isinstance(key, jax.Array | np.ndarray) and np.shape(key) == (2,):
        raise TypeError(
            f"key={key!r} is a raw uint32 key (jax.random.PRNGKey); give a typed key "
            f"(jax.random.key(seed)) or an int seed"
        )
    _checks.integer("key", key, low=0)
    return jax.random.key(int(key))


# ----------------------------------------------------------------------- centralize


def centralize() -> GradientTransformation:
    """Gradient centralization (Yong et al., 2020, "Gradient Centralization: A New
    Optimization Technique for Deep Neural Networks").

    For every leaf with two or more axes, subtract from each slice along the
    first axis its mean over all the other axes::

        g[i, ...] <- g[i, ...] - mean(g[i, ...])

    as optax's ``centralize`` does (the first axis is the output axis in
    PyTorch's ``(out, in)`` and ``OIHW`` layouts; for JAX's ``(in, out)`` kernels
    centralize the transpose). Vectors and scalars (biases, norm scales) are left
    as they are. The mean is taken in at least float32. A NaN or infinity in a
    slice makes that whole slice non-finite, since it enters the mean.

    Example:
      >>> import jax.numpy as jnp
      >>> from gradxform import centralize
      >>> tx = centralize()
      >>> tx.update(jnp.array([[1.0, 2.0, 3.0], [4.0, 5.0, 9.0]]), tx.init(jnp.zeros((2, 3))))[0]
      Array([[-1.,  0.,  1.],
             [-2., -1.,  3.]], dtype=float32)
    """

    def f(updates, params):
        del params

        def one(u):
            if u.ndim < 2:
                return u
            x = _tree.to_compute(u)
            return (x - jnp.mean(x, axis=tuple(range(1, u.ndim)), keepdims=True)).astype(u.dtype)

        return _tree.map_inexact(one, updates)

    return from_function(f, per_leaf="centralize")
