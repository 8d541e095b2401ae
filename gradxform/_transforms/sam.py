"""SAM and ASAM: a step from the gradient at an adversarially perturbed point.

:func:`sam` alternates ascent steps of an adversarial optimizer with the steps of the
outer optimizer (optax.contrib's form, one gradient per call); :func:`normalize` is the
ascent direction; :func:`sam_gradient` computes the SAM or ASAM gradient of a loss in one
call (the two-gradient loop).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp

from gradxform import _checks, _tree
from gradxform._base import (
    EmptyState,
    GradientTransformation,
    GradientTransformationExtraArgs,
    apply_updates,
    init_empty_state,
    transformation,
    with_extra_args_support,
)

NormalizeState = EmptyState


def normalize() -> GradientTransformationExtraArgs:
    """Divide the updates by their global l2 norm: ``u <- g / ||g||_2``.

    The norm is over all floating-point leaves together, in at least float32. Unlike
    optax, an all-zero gradient gives zeros (optax: NaN).

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> tx = gx.normalize()
      >>> tx.update(jnp.array([3.0, 4.0]), tx.init(None))[0]
      Array([0.6, 0.8], dtype=float32)
    """

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        norm = _tree.global_norm(updates)
        safe = jnp.where(norm > 0, norm, jnp.ones_like(norm))

        def divide(g):
            return _tree.cast_like(_tree.div_real(_tree.to_compute(g), safe), g)

        return _tree.map_inexact(divide, updates), state

    return transformation(init_empty_state, update_fn)


class SAMState(NamedTuple):
    """State of :func:`sam` (optax's fields).

    Attributes:
      steps_since_sync: adversarial steps taken since the last outer step (int32).
      opt_state: the outer optimizer's state.
      adv_state: the adversarial optimizer's state.
      cache: the params at the last outer step (``None`` in opaque mode).
    """

    steps_since_sync: chex.Array
    opt_state: Any
    adv_state: Any
    cache: Any


def sam(
    optimizer: GradientTransformation,
    adv_optimizer: GradientTransformation,
    sync_period: int = 2,
    reset_state: bool = True,
    opaque_mode: bool = False,
    batch_axis_name: str | None = None,
) -> GradientTransformationExtraArgs:
    """Sharpness-Aware Minimization (Foret et al. 2021, arXiv:2010.01412) as a transformation.

    SAM minimizes ``max_{||e|| <= rho} L(w + e)`` with the first-order ascent step
    ``e = rho * g / ||g||`` and the descent ``w <- w - eta * grad L(w + e)``. Here the
    ascent is ``sync_period - 1`` steps of ``adv_optimizer`` (negated: it ascends), from
    the params ``w`` kept in ``cache``; the next call's gradient, taken at the perturbed
    point, goes to ``optimizer`` applied at ``w``::

        calls 1 .. n-1 (n = sync_period):   u = -adv_optimizer(g)     (w is cached first)
        call n:                             u = (w - params) + optimizer(g, at w)

    so the params return to ``w`` and take the outer step. The SAM of the paper is
    ``sam(opt, chain(normalize(), sgd(rho)))`` (with ``sync_period=2``); ASAM (Kwon et al.
    2021, arXiv:2102.11600) scales the ascent by ``|w|**2`` (see :func:`sam_gradient`).
    With ``reset_state`` the adversarial state is re-initialized at each outer step.

    ``opaque_mode=True``: each call runs the ``sync_period - 1`` adversarial steps itself
    with ``grad_fn(params, i)`` (``update(g, state, params, grad_fn=...)``), then the outer
    step, so every call is an outer step; ``batch_axis_name`` averages each adversarial
    gradient with ``lax.pmean`` over that axis.

    Unlike optax, ``sync_period=1`` is the outer optimizer alone (optax returns to the
    previous call's params), steps are selected with ``where`` (no ``0 * inf``), and
    ``init`` sets the cache to zeros (it depends on shapes only; the first call stores
    the params there before reading it; optax starts from a copy of the params).

    Args:
      optimizer: the outer optimizer.
      adv_optimizer: the adversarial (ascent) optimizer.
      sync_period: calls per outer step (an int >= 1).
      reset_state: re-initialize ``adv_optimizer``'s state at each outer step.
      opaque_mode: run the adversarial steps inside each call with ``grad_fn``.
      batch_axis_name: in opaque mode, the axis over which adversarial gradients are averaged.

    Example:
      >>> import jax, jax.numpy as jnp, gradxform as gx
      >>> loss = lambda w: jnp.sum(w**2)
      >>> tx = gx.sam(gx.sgd(0.1), gx.chain(gx.normalize(), gx.sgd(0.5)))
      >>> w = jnp.array([3.0, 4.0]); state = tx.init(w)
      >>> u, state = tx.update(jax.grad(loss)(w), state, w)  # ascent by 0.5 g / ||g||
      >>> p = w + u
      >>> p
      Array([3.3, 4.4], dtype=float32)
      >>> u, state = tx.update(jax.grad(loss)(p), state, p)  # descent from w
      >>> p + u  # w - 0.1 * 2 * (3.3, 4.4)
      Array([2.34, 3.12], dtype=float32)
    """
    _checks.transformation("optimizer", optimizer)
    _checks.transformation("adv_optimizer", adv_optimizer)
    _checks.integer("sync_period", sync_period, low=1)
    _checks.boolean("reset_state", reset_state)
    _checks.boolean("opaque_mode", opaque_mode)
    if batch_axis_name is not None and not opaque_mode:
        raise ValueError(f"batch_axis_name={batch_axis_name!r} is only used with opaque_mode=True")
    outer = with_extra_args_support(optimizer)
    adv = with_extra_args_support(adv_optimizer)

    def init_fn(params):
        return SAMState(
            steps_since_sync=_tree.zero_count(),
            opt_state=outer.init(params),
            adv_state=adv.init(params),
            # init depends on shapes only (and must not alias the params' buffers): the
            # cache is zeros until the first call stores the params (optax: the params).
            cache=None if opaque_mode else _tree.zeros_like(params),
        )

    def negate(tree):
        return _tree.map_inexact(lambda x: -x, tree)

    def transparent(updates, state, params=None, **extra_args):
        if params is None:
            raise ValueError("sam needs the params: call update(updates, state, params)")
        extra_args.pop("grad_fn", None)
        _checks.check_params(updates, params, "sam")
        _checks.check_same_layout(
            updates, state.cache, what="updates", against="the params given to sam.init"
        )
        first = state.steps_since_sync == 0
        last = state.steps_since_sync == sync_period - 1
        cache = _tree.select_tree(first, params, state.cache)
        adv_updates, adv_state = adv.update(updates, state.adv_state, params, **extra_args)
        adv_updates = negate(adv_updates)
        opt_updates, opt_state = outer.update(updates, state.opt_state, cache, **extra_args)

        def back_to_cache(c, p, u):
            x = _tree.to_compute(u)
            return _tree.cast_like(_tree.to_compute(c) - _tree.to_compute(p) + x, u)

        opt_updates = _tree.map_inexact(back_to_cache, cache, params, opt_updates, keep=2)
        new_updates = _tree.select_tree(last, opt_updates, adv_updates)
        kept = adv.init(params) if reset_state else state.adv_state
        return new_updates, SAMState(
            steps_since_sync=jnp.where(last, jnp.int32(0), state.steps_since_sync + 1),
            opt_state=_tree.select_tree(last, opt_state, state.opt_state),
            adv_state=_tree.select_tree(last, kept, adv_state),
            cache=cache,
        )

    def opaque(updates, state, params=None, grad_fn=None, **extra_args):
        if params is None:
            raise ValueError("sam needs the params: call update(updates, state, params)")
        if grad_fn is None:
            raise ValueError(
                "sam(opaque_mode=True) needs grad_fn=...: update(updates, state, params, "
                "grad_fn=f), f(params, i) the gradient at the i-th adversarial point"
            )
        _checks.check_params(updates, params, "sam")
        adv_params, grads, adv_state = params, updates, state.adv_state
        for i in range(sync_period - 1):
            step, adv_state = adv.update(grads, adv_state, adv_params, **extra_args)
            adv_params = apply_updates(adv_params, negate(step))
            grads = grad_fn(adv_params, i)
            if batch_axis_name is not None:
                grads = jax.lax.pmean(grads, axis_name=batch_axis_name)
        if reset_state:
            adv_state = adv.init(params)
        new_updates, opt_state = outer.update(grads, state.opt_state, params, **extra_args)
        return new_updates, SAMState(
            steps_since_sync=_tree.zero_count(),
            opt_state=opt_state,
            adv_state=adv_state,
            cache=None,
        )

    if opaque_mode:  # grad_fn takes the params' tree
        return transformation(init_fn, opaque, per_leaf="sam", inner=[outer, adv])
    return transformation(init_fn, transparent, inner=[outer, adv])


def sam_gradient(
    loss_fn: Callable[..., chex.Numeric],
    params: chex.ArrayTree,
    rho: chex.Numeric = 0.05,
    adaptive: bool = False,
    *args: Any,
    eta: chex.Numeric = 0.0,
    eps: chex.Numeric = 1e-12,
) -> chex.ArrayTree:
    """The SAM (or ASAM) gradient of ``loss_fn`` at ``params``: the gradient at the
    adversarial point of the ``rho``-ball (Foret et al. 2021, arXiv:2010.01412)::

        g = grad L(w)
        e = rho * g / (||g||_2 + eps)                         (SAM)
        e = rho * T**2 g / (||T g||_2 + eps),  T = |w| + eta  (ASAM, adaptive=True)
        returns grad L(w + e)

    ASAM is Kwon et al. 2021 (arXiv:2102.11600), whose ``T_w`` makes the ball scale with
    each weight. The norms are global over the floating-point leaves, in at least
    float32. Pass the result to any optimizer in place of the gradient. ``loss_fn`` is
    called as ``loss_fn(params, *args)``.

    Args:
      loss_fn: a scalar function of the params (and ``*args``).
      params: where to take the gradient.
      rho: non-negative radius of the ball.
      adaptive: ASAM's scale-invariant ball.
      *args: further arguments of ``loss_fn`` (the batch, say).
      eta: ASAM's non-negative offset of ``|w|`` (Kwon et al. use 0.01 for biases;
        pytorch-optimizer's ``SAM(adaptive=True)`` is ``eta=0``).
      eps: non-negative term added to the norm (pytorch-optimizer's ``perturb_eps``).

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> loss = lambda w: jnp.sum(w**2)
      >>> gx.sam_gradient(loss, jnp.array([3.0, 4.0]), rho=0.5)  # 2 (w + 0.5 w / 5)
      Array([6.6, 8.8], dtype=float32)
    """
    _checks.non_negative("rho", rho, allow_schedule=False)
    _checks.boolean("adaptive", adaptive)
    _checks.non_negative("eta", eta, allow_schedule=False)
    _checks.non_negative("eps", eps, allow_schedule=False)
    grad = jax.grad(loss_fn)
    g = grad(params, *args)

    def scale(w):
        return jnp.abs(_tree.to_compute(w)) + eta

    tg = (
        _tree.map_inexact(lambda gi, w: scale(w) * _tree.to_compute(gi), g, params)
        if adaptive
        else g
    )
    factor = rho / (_tree.global_norm(tg) + eps)

    def perturb(w, gi, ti):
        x = _tree.to_compute(w)
        e = factor.astype(x.dtype) * (
            scale(w) * _tree.to_compute(ti) if adaptive else _tree.to_compute(gi)
        )
        return _tree.cast_like(x + e, w)

    return grad(_tree.map_inexact(perturb, params, g, tg), *args)
