"""Differential privacy: the clipped, noised aggregation of per-example gradients of DP-SGD."""

from __future__ import annotations

import warnings
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np

from gradxform import _checks, _tree
from gradxform._base import GradientTransformation, transformation
from gradxform._transforms.gradient import _typed_key
from gradxform._transforms.per_example import check_batch, clipped_sums

_WHO = "differentially_private_aggregate"


class DifferentiallyPrivateAggregateState(NamedTuple):
    """The raw data (uint32) of the PRNG key for the next draw of noise."""

    rng_key: chex.Array


def check_dp_args(l2_norm_clip: Any, noise_multiplier: Any) -> None:
    """``l2_norm_clip`` > 0 and ``noise_multiplier`` >= 0, both finite numbers."""
    _checks.positive("l2_norm_clip", l2_norm_clip, allow_schedule=False)
    _checks.non_negative("noise_multiplier", noise_multiplier, allow_schedule=False)


def differentially_private_aggregate(
    l2_norm_clip: chex.Numeric,
    noise_multiplier: chex.Numeric,
    key: jax.Array | int | None = None,
    *,
    seed: int | None = None,
) -> GradientTransformation:
    """Aggregate per-example gradients as DP-SGD does: clip each example, sum, add noise, average.

    Abadi et al., 2016, "Deep Learning with Differential Privacy", Algorithm 1.
    Every leaf of the updates holds one gradient per example on axis 0 (a batch
    of ``B`` examples); example ``b``'s gradient is the whole tree at index
    ``b``, and its norm is taken over all the leaves together::

        n_b   = sqrt(sum_leaves ||g_leaf[b]||**2)
        gbar_b = g[b] * min(1, C / n_b)                      (C = l2_norm_clip)
        u     = (sum_b gbar_b + sigma * C * N(0, I)) / B      (sigma = noise_multiplier)

    The output has the parameters' shapes (the batch axis is summed away), so
    this transformation comes first in a chain; later members see ordinary
    gradients. Aggregating wrappers such as :class:`gradxform.MultiSteps` would
    average already-noised batches, which changes the privacy accounting.

    The noise is optax's, draw for draw: at each update the key is split into
    ``1 + K`` keys (``K`` leaves), the first kept for the next update and one
    per floating leaf (an integer leaf's ``float0`` gradient passes through, without its batch
    axis). The clipped sums and the noise are computed in at least float32
    and cast to each leaf's dtype at the end. The key is carried in the state as
    its raw ``uint32`` data (``jax.random.key_data``), so the state saves and
    restores like any other array.

    Args:
      l2_norm_clip: ``C > 0``, the largest l2 norm of one example's gradient.
      noise_multiplier: ``sigma >= 0``, the noise's standard deviation in units
        of ``C`` (0 gives clipped averaging without noise).
      key: a typed PRNG key (``jax.random.key(0)``) or a non-negative int seed.
        Without it the seed 0 is used, with a warning (as optax does).
      seed: an int seed, the same as ``key=seed`` (optax's former name for it).

    Returns:
      A :class:`gradxform.GradientTransformation` whose ``update`` takes the
      per-example gradients and returns updates without the batch axis.

    Example:
      Per-example gradients come from ``jax.vmap(jax.grad(loss))`` over the
      examples (``in_axes=(None, 0, 0)``: the params are shared):

      >>> import jax, jax.numpy as jnp, gradxform as gx
      >>> def loss(w, x, y):
      ...     return (jnp.dot(x, w) - y) ** 2
      >>> w = jnp.zeros(2)
      >>> x, y = jnp.array([[1.0, 0.0], [0.0, 2.0], [3.0, 4.0]]), jnp.array([1.0, 1.0, 1.0])
      >>> per_example = jax.vmap(jax.grad(loss), in_axes=(None, 0, 0))(w, x, y)
      >>> per_example.shape   # one gradient per example
      (3, 2)
      >>> tx = gx.differentially_private_aggregate(1.0, 0.0, key=0)
      >>> u, state = tx.update(per_example, tx.init(w), w)
      >>> u   # (-1, 0), (0, -1) and (-0.6, -0.8) after clipping to norm 1, averaged
      Array([-0.53333336, -0.6       ], dtype=float32)
    """
    check_dp_args(l2_norm_clip, noise_multiplier)
    if seed is not None:
        if key is not None:
            raise ValueError(f"{_WHO}: give key or seed, not both (key={key!r}, seed={seed!r})")
        _checks.integer("seed", seed, low=0)
        key = seed
    if key is None:
        warnings.warn(f"{_WHO}: no key given; using the seed 0", stacklevel=2)
        key = 0
    typed = _typed_key(key)
    impl = jax.random.key_impl(typed)

    def init_fn(params):
        del params
        return DifferentiallyPrivateAggregateState(rng_key=jax.random.key_data(typed))

    def update_fn(updates, state, params=None, **extra_args):
        del extra_args
        check_batch(updates, _WHO, "updates")
        for path, g in _tree.leaf_paths(updates):
            if not (_tree.is_inexact(g) or _tree.dtype_of(g) == jax.dtypes.float0):
                raise TypeError(
                    f"{_WHO}: updates leaf '{path}' has dtype {_tree.dtype_of(g)}; per-example "
                    f"gradients must be floating point (or float0, an integer leaf's)"
                )
        if params is not None:
            one_example = jax.tree.map(
                lambda g: jax.ShapeDtypeStruct(jnp.shape(g)[1:], _tree.dtype_of(g)), updates
            )
            _checks.check_same_layout(
                one_example, params, what="one example's updates", against="params"
            )
        leaves, treedef = jax.tree.flatten(updates)
        # An integer parameter's gradient (float0) has nothing to clip or noise: it passes
        # through without its batch axis, and takes no key.
        real = [g for g in leaves if _tree.is_inexact(g)]
        batch = jnp.shape(leaves[0])[0]
        sums, _ = clipped_sums(real, l2_norm_clip)
        rng_key, *keys = jax.random.split(
            jax.random.wrap_key_data(state.rng_key, impl=impl), len(real) + 1
        )

        def noised(g, s, k):
            z = jax.random.normal(k, jnp.shape(s), s.dtype)
            # C and sigma cast before they multiply: a Python float and its float32 array
            # (inject_hyperparams') give the same standard deviation.
            std = jnp.asarray(l2_norm_clip, s.dtype) * jnp.asarray(noise_multiplier, s.dtype)
            return ((s + std * z) / batch).astype(g.dtype)

        noised_real = iter([noised(g, s, k) for g, s, k in zip(real, sums, keys, strict=True)])
        out = [
            next(noised_real)
            if _tree.is_inexact(g)
            else np.zeros(jnp.shape(g)[1:], jax.dtypes.float0)
            for g in leaves
        ]
        state = DifferentiallyPrivateAggregateState(rng_key=jax.random.key_data(rng_key))
        return jax.tree.unflatten(treedef, out), state

    # The norm is taken per example over the whole tree and the batch axis is summed away:
    # the leaves cannot be concatenated into one buffer.
    return transformation(init_fn, update_fn, per_leaf=_WHO)
