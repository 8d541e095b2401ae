"""Schedule-Free SGD and AdamW (Defazio et al., 2024, "The Road Less Scheduled"):
:func:`gradxform.schedule_free` over SGD and over Adam without momentum, as optax's."""

from __future__ import annotations

from typing import Any

import chex

from gradxform import _checks, _tree
from gradxform._base import GradientTransformationExtraArgs, ScalarOrSchedule, Schedule, chain
from gradxform._optimizers.sgd import sgd
from gradxform._transforms.rms import scale_by_rms
from gradxform._transforms.scaling import scale_by_learning_rate
from gradxform._transforms.weight_decay import add_decayed_weights
from gradxform._wrappers.schedule_free import check_common, schedule_free
from gradxform.schedules._warmup import warmup_constant_schedule


def _learning_rates(
    learning_rate: Any, warmup_steps: Any, paper_warmup: Any
) -> tuple[ScalarOrSchedule, ScalarOrSchedule]:
    """(the averaging weights' learning rate, the base optimizer's learning rate)."""
    _checks.boolean("paper_warmup", paper_warmup)
    if warmup_steps is None:
        _checks.non_negative("learning_rate", learning_rate)
        return learning_rate, learning_rate
    _checks.integer("warmup_steps", warmup_steps, low=0)
    _checks.non_negative("learning_rate", learning_rate)
    schedule: Schedule
    if callable(learning_rate):  # the warmup as a factor of the schedule
        peak, ramp = learning_rate, warmup_constant_schedule(0.0, 1.0, warmup_steps)
        schedule = lambda count: ramp(count) * peak(count)
    else:
        schedule = warmup_constant_schedule(0.0, learning_rate, warmup_steps)
    if not paper_warmup:
        return schedule, schedule  # optax: the base counts its steps from 0
    return schedule, lambda count: schedule(_tree.safe_increment(count))


def schedule_free_sgd(
    learning_rate: ScalarOrSchedule = 1.0,
    warmup_steps: int | None = None,
    b1: chex.Numeric = 0.9,
    weight_decay: ScalarOrSchedule | None = None,
    weight_lr_power: chex.Numeric = 2.0,
    state_dtype: Any | None = None,
    *,
    r: chex.Numeric = 0.0,
    paper_warmup: bool = False,
) -> GradientTransformationExtraArgs:
    """Schedule-Free SGD (Defazio et al., 2024), as optax's.

    :func:`schedule_free` over SGD: ``d_t = -gamma_t (grad f(y_t) + lambda y_t)``
    (``lambda = weight_decay``, computed at ``y`` and multiplied by the learning
    rate, as in optax and the authors' ``SGDScheduleFree``), then::

        z_{t+1} = z_t + d_t
        x_{t+1} = (1 - c_{t+1}) x_t + c_{t+1} z_{t+1},   c_{t+1} = w_t / sum_i w_i
        y_{t+1} = (1 - b1) z_{t+1} + b1 x_{t+1}

    The params you hold are ``y``: take the gradients there, and evaluate (validation
    loss, checkpoints for inference) at ``x = schedule_free_eval_params(state, params)``::

        state = tx.init(params)
        for batch in batches:
            grads = jax.grad(loss)(params, batch)          # at y
            updates, state = tx.update(grads, state, params)
            params = gx.apply_updates(params, updates)     # the next y
        eval_params = gx.schedule_free_eval_params(state, params)  # x

    Args:
      learning_rate: ``gamma``, a non-negative float or a schedule.
      warmup_steps: ``W``, an int >= 0, or ``None``: the learning rate rises
        linearly from 0 over ``W`` steps (:func:`gradxform.warmup_constant_schedule`;
        a schedule is multiplied by that ramp).
      b1: ``b1`` in ``(0, 1)``: the weight of the average ``x`` in ``y``.
      weight_decay: ``lambda >= 0`` (or a schedule), or ``None`` for none.
      weight_lr_power: ``p >= 0``: weights ``w_t = t**r max_i(gamma_i)**p``.
      state_dtype: dtype of ``z``; default: each parameter's dtype.
      r: ``r >= 0``: polynomial weighting ``t**r`` of the average (the authors'
        package's ``r``; 0 is optax's).
      paper_warmup: with ``warmup_steps``, step ``t`` (from 1) moves ``z`` with the
        learning rate ``gamma min(t, W) / W``, as in the paper, the authors' package
        and keras. The default is optax's: the base optimizer counts from 0, so its
        step ``t`` uses ``gamma min(t - 1, W) / W`` (the first update is zero) while
        the averaging weights use ``gamma min(t, W) / W``.

    Returns:
      A :func:`schedule_free` transformation (state: :class:`ScheduleFreeState`).

    Example:
      >>> import jax, jax.numpy as jnp, gradxform as gx
      >>> f = lambda p: jnp.sum(p**2)
      >>> tx = gx.schedule_free_sgd(learning_rate=0.25)
      >>> params = jnp.array([1.0, 2.0])
      >>> state = tx.init(params)
      >>> for _ in range(20):
      ...     updates, state = tx.update(jax.grad(f)(params), state, params)
      ...     params = gx.apply_updates(params, updates)
      >>> x = gx.schedule_free_eval_params(state, params)
      >>> bool(f(x) < 0.05 * f(jnp.array([1.0, 2.0])))
      True

    Reference: Defazio et al., 2024, "The Road Less Scheduled" (NeurIPS).
    """
    weights_lr, base_lr = _learning_rates(learning_rate, warmup_steps, paper_warmup)
    if weight_decay is not None:
        _checks.non_negative("weight_decay", weight_decay)
    check_common(b1, weight_lr_power, r, state_dtype)
    base = sgd(base_lr)
    if weight_decay is not None:
        base = chain(add_decayed_weights(weight_decay), base)
    return schedule_free(base, weights_lr, b1, weight_lr_power, state_dtype, r=r)


def schedule_free_adamw(
    learning_rate: ScalarOrSchedule = 0.0025,
    warmup_steps: int | None = None,
    b1: chex.Numeric = 0.9,
    b2: chex.Numeric = 0.999,
    eps: chex.Numeric = 1e-8,
    weight_decay: ScalarOrSchedule = 0.0,
    weight_lr_power: chex.Numeric = 2.0,
    state_dtype: Any | None = None,
    *,
    r: chex.Numeric = 0.0,
    paper_warmup: bool = False,
) -> GradientTransformationExtraArgs:
    """Schedule-Free AdamW (Defazio et al., 2024), as optax's.

    :func:`schedule_free` over Adam without momentum (the first moment is replaced by
    the interpolation ``b1``) and with decoupled weight decay computed at ``y``::

        v_t     = b2 v_{t-1} + (1 - b2) g_t**2,        g_t = grad f(y_t)
        d_t     = -gamma_t (g_t / (sqrt(v_t / (1 - b2**t)) + eps) + lambda y_t)
        z_{t+1} = z_t + d_t
        x_{t+1} = (1 - c_{t+1}) x_t + c_{t+1} z_{t+1},   c_{t+1} = w_t / sum_i w_i
        y_{t+1} = (1 - b1) z_{t+1} + b1 x_{t+1}

    (``lambda = weight_decay``), as optax and the authors' ``AdamWScheduleFree``.

    The params you hold are ``y``: take the gradients there, and evaluate (validation
    loss, checkpoints for inference) at ``x = schedule_free_eval_params(state, params)``::

        state = tx.init(params)
        for batch in batches:
            grads = jax.grad(loss)(params, batch)          # at y
            updates, state = tx.update(grads, state, params)
            params = gx.apply_updates(params, updates)     # the next y
        eval_params = gx.schedule_free_eval_params(state, params)  # x

    Args:
      learning_rate: ``gamma``, a non-negative float or a schedule.
      warmup_steps: ``W``, an int >= 0, or ``None``: the learning rate rises
        linearly from 0 over ``W`` steps (:func:`gradxform.warmup_constant_schedule`;
        a schedule is multiplied by that ramp).
      b1: ``b1`` in ``(0, 1)``: the weight of the average ``x`` in ``y``.
      b2: decay of the second moment, in ``[0, 1)``.
      eps: non-negative, added to the root of the second moment.
      weight_decay: ``lambda >= 0`` (or a schedule), multiplied by the learning rate.
      weight_lr_power: ``p >= 0``: weights ``w_t = t**r max_i(gamma_i)**p``.
      state_dtype: dtype of ``z``; default: each parameter's dtype.
      r: ``r >= 0``: polynomial weighting ``t**r`` of the average (the authors'
        package's ``r``; 0 is optax's).
      paper_warmup: with ``warmup_steps``, step ``t`` (from 1) moves ``z`` with the
        learning rate ``gamma min(t, W) / W``, as in the paper, the authors' package
        and keras. The default is optax's: the base optimizer counts from 0, so its
        step ``t`` uses ``gamma min(t - 1, W) / W`` (the first update is zero) while
        the averaging weights use ``gamma min(t, W) / W``.

    Returns:
      A :func:`schedule_free` transformation (state: :class:`ScheduleFreeState`).

    Example:
      >>> import jax, jax.numpy as jnp, gradxform as gx
      >>> f = lambda p: jnp.sum(p**2)
      >>> tx = gx.schedule_free_adamw(learning_rate=0.1, warmup_steps=5)
      >>> params = jnp.array([1.0, 2.0])
      >>> state = tx.init(params)
      >>> for _ in range(50):
      ...     updates, state = tx.update(jax.grad(f)(params), state, params)
      ...     params = gx.apply_updates(params, updates)
      >>> x = gx.schedule_free_eval_params(state, params)
      >>> bool(f(x) < 0.05 * f(jnp.array([1.0, 2.0])))
      True

    Reference: Defazio et al., 2024, "The Road Less Scheduled" (NeurIPS).
    """
    weights_lr, base_lr = _learning_rates(learning_rate, warmup_steps, paper_warmup)
    _checks.decay_rate("b2", b2, allow_schedule=False)
    _checks.non_negative("eps", eps, allow_schedule=False)
    _checks.non_negative("weight_decay", weight_decay)
    check_common(b1, weight_lr_power, r, state_dtype)
    base = chain(
        scale_by_rms(decay=b2, eps=eps, eps_in_sqrt=False, bias_correction=True),
        add_decayed_weights(weight_decay),
        scale_by_learning_rate(base_lr),
    )
    return schedule_free(base, weights_lr, b1, weight_lr_power, state_dtype, r=r)
