"""Measurements of the updates kept in the state: ``snapshot``, ``monitor``,
``measure_with_ema``. The updates pass through unchanged."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp

from gradxform import _checks, _tree
from gradxform._base import (
    EmptyState,
    GradientTransformationExtraArgs,
    init_empty_state,
    transformation,
    with_extra_args_support,
)
from gradxform._transforms.momentum import ema


class SnapshotState(NamedTuple):
    """``{measure_name: measurement}``, taken from the latest updates (from the params at first)."""

    measurement: dict[str, Any]


def _check_measure(name: str, measure: Any) -> None:
    if not callable(measure):
        raise TypeError(f"{name}={measure!r} must be a function of the updates")


def snapshot(
    measure_name: str, measure: Callable[[chex.ArrayTree], chex.ArrayTree]
) -> GradientTransformationExtraArgs:
    """Keep ``measure(updates)`` in the state under ``measure_name``; the updates pass through.

    Placed in a chain, it sees the updates as transformed so far, so
    ``gradxform.tree.get(state, measure_name)`` finds, say, the norm before
    clipping. ``init`` stores ``measure(params)``.

    Args:
      measure_name: the key of the measurement in ``state.measurement``.
      measure: a function of the updates returning a tree of arrays.

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> tx = gx.chain(gx.sgd(0.5), gx.snapshot("norm", gx.tree.norm),
      ...               gx.clip_by_global_norm(0.1))
      >>> _, state = tx.update(jnp.array([3.0, 4.0]), tx.init(jnp.zeros(2)))
      >>> gx.tree.get(state, "norm")
      Array(2.5, dtype=float32)
    """
    if not isinstance(measure_name, str):
        raise TypeError(f"measure_name={measure_name!r} must be a str")
    _check_measure("measure", measure)

    def init_fn(params):
        return SnapshotState({measure_name: measure(params)})

    def update_fn(updates, state, params=None, **extra_args):
        del state, params, extra_args
        return updates, SnapshotState({measure_name: measure(updates)})

    return transformation(init_fn, update_fn)


class MonitorState(NamedTuple):
    """The latest measurements ``{name: value}`` and the states of the stateful measures."""

    measurements: dict[str, Any]
    measure_states: tuple[Any, ...]


def monitor(measures: dict[str, Any]) -> GradientTransformationExtraArgs:
    """Keep several measurements of the updates in the state; the updates pass through.

    Each measure is a function of the updates (as for :func:`snapshot`) or a
    transformation whose output is the measurement and whose state is kept in
    ``state.measure_states`` (:func:`measure_with_ema`, say). Extra arguments
    of ``update`` reach the transformations. ``state.measurements`` holds
    every measurement from ``init`` on (zeros of its shape until the first
    update), so the state keeps its structure under ``lax.scan`` (optax's
    starts empty); only a measure whose output cannot be computed without
    the extra arguments of ``update`` appears at the first update.

    Args:
      measures: ``{name: function or transformation}``.

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> tx = gx.monitor({"norm": gx.tree.norm,
      ...                  "norm_ema": gx.measure_with_ema(gx.tree.norm, decay=0.5)})
      >>> state = tx.init(jnp.zeros(2))
      >>> for g in [jnp.array([3.0, 4.0]), jnp.array([0.0, 1.0])]:
      ...     _, state = tx.update(g, state)
      >>> [round(float(state.measurements[k]), 4) for k in ("norm", "norm_ema")]
      [1.0, 2.3333]
    """
    if not isinstance(measures, dict):
        raise TypeError(f"measures={measures!r} must be a dict of name -> measure")
    members = {}
    for name, m in measures.items():
        if not isinstance(name, str):
            raise TypeError(f"measures key {name!r} must be a str")
        if hasattr(m, "init") and hasattr(m, "update"):
            _checks.transformation(f"measures[{name!r}]", m)
            members[name] = with_extra_args_support(m)
        else:
            _check_measure(f"measures[{name!r}]", m)
            members[name] = _measuring(m)

    def init_fn(params):
        states = tuple(t.init(params) for t in members.values())
        measurements = {}
        for (name, t), s in zip(members.items(), states, strict=True):
            with contextlib.suppress(Exception):  # a measure that needs update's extra args
                shapes = jax.eval_shape(lambda p, s, t=t: t.update(p, s, p)[0], params, s)
                measurements[name] = jax.tree.map(lambda x: jnp.zeros(x.shape, x.dtype), shapes)
        return MonitorState(measurements, states)

    def update_fn(updates, state, params=None, **extra_args):
        measurements, states = {}, []
        for (name, t), s in zip(members.items(), state.measure_states, strict=True):
            measurements[name], s = t.update(updates, s, params, **extra_args)
            states.append(s)
        return updates, MonitorState(measurements, tuple(states))

    return transformation(init_fn, update_fn, inner=tuple(members.values()))


def measure_with_ema(
    measure: Callable[[chex.ArrayTree], chex.ArrayTree],
    decay: chex.Numeric,
    debias: bool = True,
    accumulator_dtype: Any | None = None,
) -> GradientTransformationExtraArgs:
    """The exponential moving average of ``measure(updates)``, for :func:`monitor`.

    A transformation whose output is the (debiased) moving average of the
    measurement, :func:`~gradxform.ema` applied to ``measure(updates)``; its
    state is ``(EmptyState(), EmaState)``, as optax's. A boolean or integer
    measurement (``norm > threshold``) is averaged as a float (the
    fraction of the steps where it held).

    Args:
      measure: a function of the updates returning a tree of arrays.
      decay: the decay of the moving average, in ``[0, 1)``.
      debias: divide by ``1 - decay**t``.
      accumulator_dtype: dtype of the average; default: the measurement's.

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> tx = gx.measure_with_ema(lambda u: gx.tree.norm(u) > 1.0, decay=0.5)
      >>> state = tx.init(jnp.zeros(2))
      >>> for g in [jnp.array([3.0, 4.0]), jnp.array([0.0, 0.5])]:
      ...     fraction, state = tx.update(g, state)
      >>> fraction                          # (0.5 * 0.5 * 1 + 0.5 * 0) / (1 - 0.5**2)
      Array(0.33333334, dtype=float32)
    """
    _check_measure("measure", measure)
    average = ema(decay, debias, accumulator_dtype)

    def measured(tree):
        return jax.tree.map(
            lambda x: x if _tree.is_inexact(x) else jnp.asarray(x, _tree.float_dtype()),
            measure(tree),
        )

    def init_fn(params):
        return (EmptyState(), average.init(measured(params)))

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        out, ema_state = average.update(measured(updates), state[1])
        return out, (state[0], ema_state)

    return transformation(init_fn, update_fn)


def _measuring(measure: Any) -> GradientTransformationExtraArgs:
    """A stateless member that replaces the updates by ``measure(updates)``."""

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        return measure(updates), state

    return GradientTransformationExtraArgs(init_empty_state, update_fn)
