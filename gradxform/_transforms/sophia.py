"""Sophia: a clipped step preconditioned by an estimate of the Hessian's diagonal.

:func:`scale_by_sophia` is the primitive of :func:`gradxform.sophia`; the diagonal comes
from a transformation given to it, by default :func:`hutchinson_estimator_diag_hessian`
(Sophia-H) or :func:`gnb_estimator_diag_hessian` (Gauss-Newton-Bartlett, Sophia-G).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np

from gradxform import _checks, _sharding, _tree
from gradxform._base import (
    GradientTransformation,
    GradientTransformationExtraArgs,
    transformation,
    with_extra_args_support,
)
from gradxform._transforms.adam import check_moment_updates
from gradxform._wrappers.conditional import cond

DISTRIBUTIONS = ("rademacher", "gaussian")


class HutchinsonState(NamedTuple):
    """The PRNG key of the next probe (optax's field)."""

    key: chex.Array


class GNBState(NamedTuple):
    """The PRNG key of the next sampled labels."""

    key: chex.Array


class SophiaState(NamedTuple):
    """Step count, first moment ``mu``, Hessian-diagonal average ``nu`` and the state of
    the Hessian-diagonal estimator (optax's fields)."""

    count: chex.Array
    mu: chex.ArrayTree
    nu: chex.ArrayTree
    hessian_fn_state: Any


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


# ---------------------------------------------------------------- scale_by_sophia


def check_sophia_arguments(
    b1: Any,
    b2: Any,
    eps: Any,
    gamma: Any,
    clip_threshold: Any,
    update_interval: Any,
    verbose: Any,
    print_win_rate_every_n_steps: Any,
) -> None:
    """Validate :func:`scale_by_sophia`'s numbers (also :func:`gradxform.sophia`'s)."""
    _checks.decay_rate("b1", b1, allow_schedule=False)
    _checks.decay_rate("b2", b2, allow_schedule=False)
    _checks.non_negative("eps", eps, allow_schedule=False)
    _checks.non_negative("gamma", gamma, allow_schedule=False)
    if clip_threshold is not None:
        _checks.positive("clip_threshold", clip_threshold, allow_schedule=False)
    _checks.integer("update_interval", update_interval, low=1)
    _checks.boolean("verbose", verbose)
    _checks.integer("print_win_rate_every_n_steps", print_win_rate_every_n_steps, low=0)
    if verbose and print_win_rate_every_n_steps == 0:
        raise ValueError(
            "verbose=True prints the win rate every print_win_rate_every_n_steps steps: "
            "give print_win_rate_every_n_steps >= 1 (it is 0)"
        )


def scale_by_sophia(
    b1: chex.Numeric = 0.965,
    b2: chex.Numeric = 0.99,
    eps: chex.Numeric = 1e-8,
    gamma: chex.Numeric = 0.01,
    clip_threshold: chex.Numeric | None = 1.0,
    update_interval: int = 10,
    hessian_diagonal_fn: GradientTransformation = hutchinson_estimator_diag_hessian(),  # noqa: B008
    mu_dtype: Any | None = None,
    verbose: bool = False,
    print_win_rate_every_n_steps: int = 0,
    *,
    nu_dtype: Any | None = None,
    bias_correction: bool = True,
    hessian_first: bool = False,
) -> GradientTransformationExtraArgs:
    """Sophia's direction: the momentum over the clipped, scaled Hessian-diagonal average.

    At step ``t`` (from 1) with gradient ``g_t`` (Liu et al. 2023, arXiv:2305.14342)::

        m_t = b1 * m_{t-1} + (1 - b1) * g_t,     m_hat = m_t / (1 - b1**t)
        u_t = clip(m_hat / max(gamma * h, eps), -clip_threshold, clip_threshold)
        every update_interval steps (t = 1, k + 1, 2k + 1, ...):
            h_t = b2 * h_{t-1} + (1 - b2) * h_hat_t,    else h_t = h_{t-1}

    where ``h_hat_t = hessian_diagonal_fn.update(g_t, ..., params, **extra)`` (under
    ``jit`` inside ``lax.cond``: no recompilation; eagerly only on the steps it runs),
    and ``h`` is ``h_{t-1}``, the average before this step's estimate (optax's order:
    the first step divides by ``eps`` and is clipped to ``+-clip_threshold``). Extra
    keyword arguments of ``update`` (``obj_fn=`` for the default Hutchinson estimator)
    are passed to the estimator. The Hessian average is not bias-corrected. All of it
    is computed in at least float32.

    Beyond optax: ``hessian_first=True`` folds this step's estimate in first and divides
    by ``h_t`` (the paper's Algorithm 3 and pytorch-optimizer's ``SophiaH``);
    ``bias_correction=False`` uses ``m_t`` (the paper and ``SophiaH``); ``nu_dtype``.
    ``SophiaH(lr, p, eps)`` is this with ``learning_rate = lr * gamma``,
    ``clip_threshold = p / gamma`` and ``eps = eps * gamma`` for any ``gamma > 0``.

    Args:
      b1: decay of the first moment, in ``[0, 1)``.
      b2: decay of the Hessian-diagonal average, in ``[0, 1)`` (it is updated every
        ``update_interval`` steps: its effective per-step decay is about
        ``1 - (1 - b2) / update_interval``).
      eps: non-negative floor of the denominator.
      gamma: non-negative scale of the Hessian diagonal.
      clip_threshold: positive bound of each coordinate of the step, or ``None``.
      update_interval: the estimate is refreshed every this many steps (an int >= 1).
      hessian_diagonal_fn: the transformation returning the estimate of the diagonal.
      mu_dtype: dtype of ``m``; default: each parameter's dtype.
      verbose: print the win rate (the fraction of coordinates not clipped) with
        ``jax.debug.print`` every ``print_win_rate_every_n_steps`` steps.
      print_win_rate_every_n_steps: the period of that print (an int >= 1 when verbose).
      nu_dtype: dtype of ``h``; default: each parameter's dtype.
      bias_correction: divide ``m_t`` by ``1 - b1**t`` (optax).
      hessian_first: divide by the average that includes this step's estimate.

    Example:
      >>> import jax, jax.numpy as jnp, gradxform as gx
      >>> tx = gx.scale_by_sophia(gamma=0.5, hessian_first=True, bias_correction=False)
      >>> x = jnp.array([1.0, 0.01])
      >>> f = lambda p: jnp.sum(jnp.array([3.0, 50.0]) * p**2)  # diag(H) = (6, 100)
      >>> u, _ = tx.update(jax.grad(f)(x), tx.init(x), x, obj_fn=f)
      >>> u.round(4)  # m = 0.035 g = (0.21, 0.035), h = 0.01 diag(H): m / (0.5 h), clipped
      Array([1.  , 0.07], dtype=float32)
    """
    check_sophia_arguments(
        b1, b2, eps, gamma, clip_threshold, update_interval, verbose, print_win_rate_every_n_steps
    )
    _checks.transformation("hessian_diagonal_fn", hessian_diagonal_fn)
    mu_dtype = _checks.canonical_dtype(mu_dtype, "mu_dtype", real_only="Sophia is real-only")
    nu_dtype = _checks.canonical_dtype(nu_dtype, "nu_dtype", real_only="Sophia is real-only")
    _checks.boolean("bias_correction", bias_correction)
    _checks.boolean("hessian_first", hessian_first)
    estimator = with_extra_args_support(hessian_diagonal_fn)

    def init_fn(params):
        return SophiaState(
            count=_tree.zero_count(),
            mu=_tree.zeros_like(params, mu_dtype),
            nu=_tree.zeros_like(params, nu_dtype),
            hessian_fn_state=estimator.init(params),
        )

    def update_fn(updates, state, params=None, **extra_args):
        check_moment_updates(updates, state.mu, "scale_by_sophia", mu_dtype)
        _checks.check_real(updates, what="updates", reason="Sophia is real-only")
        if params is None:
            raise ValueError(
                "scale_by_sophia needs the params: call update(updates, state, params)"
            )
        count = _tree.safe_increment(state.count)
        mu = _tree.update_moment(state.mu, updates, b1, 1)
        mu_hat = (
            _tree.bias_correction(mu, b1, count)
            if bias_correction
            else _tree.map_inexact(_tree.to_compute, mu)
        )

        def refresh(hessian_state, nu):
            estimate, hessian_state = estimator.update(updates, hessian_state, params, **extra_args)
            new = _tree.update_moment(nu, estimate, b2, 1)
            # both branches keep nu's sharding (flat() may hand over a replicated copy)
            return hessian_state, jax.tree.map(_sharding.sharded_like, new, nu)

        hessian_state, nu = cond(
            state.count % update_interval == 0,
            refresh,
            lambda hessian_state, nu: (hessian_state, nu),
            state.hessian_fn_state,
            state.nu,
        )
        h = nu if hessian_first else state.nu

        def step(m, hi, g):
            d = jnp.maximum(jnp.asarray(gamma, m.dtype) * _tree.to_compute(hi), eps)
            u = m / d.astype(m.dtype)
            if clip_threshold is not None:
                c = jnp.asarray(clip_threshold, m.dtype)
                u = jnp.clip(u, -c, c)
            return u

        out = _tree.map_inexact(step, mu_hat, h, updates)
        if verbose:
            kept = sum(
                jnp.sum(jnp.abs(u) < clip_threshold if clip_threshold is not None else u == u)
                for u in jax.tree.leaves(out)
                if _tree.is_inexact(u)
            )
            size = sum(u.size for u in jax.tree.leaves(out) if _tree.is_inexact(u))
            cond(
                count % print_win_rate_every_n_steps == 0,
                lambda: jax.debug.print("Sophia win rate: {}", kept / max(size, 1)),
                lambda: None,
            )
        out = jax.tree.map(
            lambda u, g: _tree.cast_like(u, g) if _tree.is_inexact(g) else g, out, updates
        )
        return out, SophiaState(count=count, mu=mu, nu=nu, hessian_fn_state=hessian_state)

    # The estimator differentiates a function of the params' tree (obj_fn, logits_fn).
    return transformation(init_fn, update_fn, per_leaf="scale_by_sophia", inner=[estimator])
