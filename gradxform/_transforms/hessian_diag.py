"""Estimators of the Hessian's diagonal, the curvature of :func:`gradxform.sophia`.

Each is a transformation whose ``update`` ignores the incoming updates and returns the
estimate for the params it is given: :func:`hutchinson_estimator_diag_hessian` (Sophia-H)
differentiates the loss (``obj_fn=``), :func:`gnb_estimator_diag_hessian` (Sophia-G)
samples labels from a model's logits (``logits_fn=``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np

from gradxform import _checks, _tree
from gradxform._base import GradientTransformationExtraArgs, transformation

DISTRIBUTIONS = ("rademacher", "gaussian")


class HutchinsonState(NamedTuple):
    """The PRNG key of the next probe (optax's field)."""

    key: chex.Array


class GNBState(NamedTuple):
    """The PRNG key of the next sampled labels."""

    key: chex.Array


# ----------------------------------------------------------------------- helpers


def _key(random_seed: Any) -> Callable[[], chex.Array]:
    """A function making ``random_seed``'s key: ``None`` is ``PRNGKey(0)``, an int a seed,
    a key itself. Checked now; made at ``init`` (building a transformation, at import for
    a default argument, must not start JAX's backend)."""
    if random_seed is None:
        return lambda: jax.random.PRNGKey(0)
    if isinstance(random_seed, int | np.integer) and not isinstance(random_seed, bool):
        if random_seed < 0:
            raise ValueError(f"random_seed={random_seed!r} must be a non-negative int or a key")
        seed = int(random_seed)
        return lambda: jax.random.PRNGKey(seed)
    dtype, shape = getattr(random_seed, "dtype", None), getattr(random_seed, "shape", None)
    typed = dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key)
    if not (typed and shape == ()) and (shape != (2,) or dtype != np.uint32):
        raise TypeError(
            f"random_seed={random_seed!r} must be None, an int or a key "
            f"(jax.random.PRNGKey or jax.random.key)"
        )
    return lambda: jnp.asarray(random_seed)


def _rademacher(key: chex.Array, shape: tuple[int, ...], dtype: Any) -> chex.Array:
    """``2 b - 1``, ``b ~ Bernoulli(1/2)`` drawn from float32 uniforms: the numbers of
    ``jax.random.rademacher`` (optax's draw), also under x64 (where that one draws 64-bit
    uniforms and so other signs)."""
    b = jax.random.bernoulli(key, jnp.float32(0.5), shape)
    return 2 * b.astype(dtype) - 1


def _float_part(params: Any, fn: Callable[[Any], Any]) -> tuple[list[int], Callable[..., Any]]:
    """The indices of the params' floating-point leaves, and ``fn`` as a function of them
    alone (the other leaves held at their values: integers are not differentiated)."""
    leaves, treedef = jax.tree.flatten(params)
    where = [i for i, x in enumerate(leaves) if _tree.is_inexact(x)]

    def of_floats(floats):
        full = list(leaves)
        for i, x in zip(where, floats, strict=True):
            full[i] = x
        return fn(jax.tree.unflatten(treedef, full))

    return where, of_floats


def _needs(who: str, params: Any, name: str, value: Any) -> None:
    if params is None:
        raise ValueError(f"{who} needs the params: call update(updates, state, params, ...)")
    if value is None:
        raise ValueError(f"{who} needs {name}=... in update(updates, state, params, {name}=...)")


# ------------------------------------------------------------------- Hutchinson


def hutchinson_estimator_diag_hessian(
    random_seed: chex.Array | None = None,
    *,
    distribution: str = "rademacher",
) -> GradientTransformationExtraArgs:
    """Hutchinson's estimate of the Hessian's diagonal: ``u * (H u)`` for a random probe ``u``.

    ``E[u * (H u)] = diag(H)`` for a probe with independent entries of mean 0 and
    variance 1 (Hutchinson 1989; Bekas et al. 2007). ``update(updates, state, params,
    obj_fn=f)`` differentiates ``f`` (a function of the params returning a scalar) at
    ``params`` with one Hessian-vector product, ``jvp(grad(f), params, u)``; the incoming
    updates are not read. Each call splits the key once (``key, sub = split(key)``), then
    ``sub`` into one key per leaf of the params, and draws ``u`` for each floating-point
    leaf in float32, cast to the params' narrowest floating dtype (optax's numbers; the
    Rademacher signs come from float32 uniforms, so they are the same under x64).
    Integer leaves are not differentiated; their estimate is the leaf unchanged.

    Args:
      random_seed: the first key (``jax.random.PRNGKey``); ``None``: ``PRNGKey(0)``;
        an int ``s``: ``PRNGKey(s)``.
      distribution: ``"rademacher"`` (optax: entries +-1, so a diagonal Hessian is
        estimated exactly) or ``"gaussian"`` (standard normal entries: Liu et al.'s
        and pytorch-optimizer's default).

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> tx = gx.hutchinson_estimator_diag_hessian()
      >>> x = jnp.array([1.0, 2.0])
      >>> f = lambda p: jnp.sum(jnp.array([3.0, 5.0]) * p**2)  # diag(H) = (6, 10)
      >>> tx.update(x, tx.init(x), x, obj_fn=f)[0]
      Array([ 6., 10.], dtype=float32)
    """
    first_key = _key(random_seed)
    _checks.one_of("distribution", distribution, DISTRIBUTIONS)
    sampler = _rademacher if distribution == "rademacher" else jax.random.normal

    def init_fn(params):
        del params
        return HutchinsonState(key=first_key())

    def update_fn(updates, state, params=None, obj_fn=None, **extra_args):
        del updates, extra_args
        _needs("hutchinson_estimator_diag_hessian", params, "obj_fn", obj_fn)
        _checks.check_real(params, what="params", reason="the estimate is of a real Hessian")
        key, sub = jax.random.split(state.key)
        leaves, treedef = jax.tree.flatten(params)
        keys = jax.random.split(sub, len(leaves))
        where, of_floats = _float_part(params, obj_fn)
        floats = [leaves[i] for i in where]
        narrow = min((_tree.dtype_of(x) for x in floats), key=lambda d: d.itemsize, default=None)
        probes = [sampler(keys[i], leaves[i].shape, jnp.float32).astype(narrow) for i in where]
        _, hvp = jax.jvp(jax.grad(of_floats), (floats,), (probes,))
        out = list(leaves)
        for i, h, u in zip(where, hvp, probes, strict=True):
            out[i] = _tree.to_compute(h) * _tree.to_compute(u)
        return jax.tree.unflatten(treedef, out), HutchinsonState(key=key)

    # one key per leaf, and the loss of the whole tree: never run on concatenated leaves
    return transformation(init_fn, update_fn, per_leaf="hutchinson_estimator_diag_hessian")


# ------------------------------------------------------------ Gauss-Newton-Bartlett


def gnb_estimator_diag_hessian(
    random_seed: chex.Array | None = None,
) -> GradientTransformationExtraArgs:
    """The Gauss-Newton-Bartlett estimate of the diagonal of a softmax cross-entropy's Hessian.

    For a model whose logits on a batch of ``B`` examples are ``logits_fn(params)`` (shape
    ``(B, C)``), labels ``y_b`` are sampled from the model's own distribution
    ``softmax(logits_b)``, and the estimate is (Liu et al. 2023, Algorithm 2)::

        g_hat = grad_params (1/B) sum_b CE(logits_b(params), y_b)
        h_hat = B * g_hat * g_hat

    an unbiased estimate of the diagonal of the Gauss-Newton matrix ``J^T (diag(p) - p p^T) J``
    of the mean loss, which is positive semi-definite. Call ``update(updates, state,
    params, logits_fn=f)``; the incoming updates are not read. Each call splits the key
    once (``key, sub = split(key)``) and samples the labels with ``sub``.

    Args:
      random_seed: the first key (``jax.random.PRNGKey``); ``None``: ``PRNGKey(0)``;
        an int ``s``: ``PRNGKey(s)``.

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> tx = gx.gnb_estimator_diag_hessian()
      >>> w = jnp.zeros((2, 3))
      >>> x = jnp.array([[1.0, 0.0], [0.0, 1.0]])  # two examples, two features
      >>> h, _ = tx.update(w, tx.init(w), w, logits_fn=lambda w: x @ w)
      >>> h.shape, bool((h >= 0).all())
      ((2, 3), True)
    """
    first_key = _key(random_seed)

    def init_fn(params):
        del params
        return GNBState(key=first_key())

    def update_fn(updates, state, params=None, logits_fn=None, **extra_args):
        del updates, extra_args
        _needs("gnb_estimator_diag_hessian", params, "logits_fn", logits_fn)
        _checks.check_real(params, what="params", reason="the estimate is of a real Hessian")
        key, sub = jax.random.split(state.key)
        logits = logits_fn(params)
        if jnp.ndim(logits) != 2:
            raise ValueError(
                f"gnb_estimator_diag_hessian: logits_fn must return logits of shape "
                f"(batch, classes), got shape {jnp.shape(logits)}"
            )
        batch = logits.shape[0]
        labels = jax.random.categorical(sub, jax.lax.stop_gradient(logits).astype(jnp.float32))
        leaves, treedef = jax.tree.flatten(params)
        where, of_floats = _float_part(params, lambda p: _sampled_loss(logits_fn(p), labels))
        g_hat = jax.grad(of_floats)([leaves[i] for i in where])
        out = list(leaves)
        for i, g in zip(where, g_hat, strict=True):
            g = _tree.to_compute(g)
            out[i] = jnp.asarray(batch, g.dtype) * g * g
        return jax.tree.unflatten(treedef, out), GNBState(key=key)

    # the model's logits are a function of the params' tree: never concatenated leaves
    return transformation(init_fn, update_fn, per_leaf="gnb_estimator_diag_hessian")


def _sampled_loss(logits: chex.Array, labels: chex.Array) -> chex.Array:
    """The mean cross-entropy of ``logits`` (in at least float32) at the sampled ``labels``."""
    logits = _tree.to_compute(logits)
    logp = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.mean(jnp.take_along_axis(logp, labels[:, None], axis=-1))
