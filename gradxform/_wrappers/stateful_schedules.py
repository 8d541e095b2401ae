"""Stateful schedules: a value computed from a state that ``update`` advances.

A schedule ``step -> value`` is stateless: :func:`gradxform.inject_hyperparams`
evaluates it at its own step count. A *stateful* schedule keeps a state of its
own, which it may update from the extra arguments of ``update`` (the loss, a
metric), as optax's ``StatefulSchedule`` protocol defines it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, Protocol, runtime_checkable

import chex

from gradxform import _tree


@runtime_checkable
class StatefulSchedule(Protocol):
    """A schedule with a state: ``init()``, ``update(state, **extra_args)`` and
    ``__call__(state, **extra_args) -> value``.

    :func:`gradxform.inject_hyperparams` keeps the state in
    ``hyperparams_states[name]``: at each ``update`` it computes the value
    from the current state and then advances the state, both with the
    extra arguments ``update`` was given. Any object with these three methods
    is one (optax's included); subclassing is optional.
    """

    def init(self) -> Any:
        """The initial state."""

    def update(self, state: Any, **extra_args: Any) -> Any:
        """The next state."""

    def __call__(self, state: Any, **extra_args: Any) -> chex.Numeric:
        """The value for this state."""


class WrappedScheduleState(NamedTuple):
    """The step count of a :class:`WrappedSchedule`."""

    count: chex.Array


class WrappedSchedule:
    """A stateless schedule as a :class:`StatefulSchedule` whose state is the step count.

    ``WrappedSchedule(f)(state) = f(state.count)``, and ``update`` adds one
    to the count (saturating), whatever the extra arguments.

    Example:
      >>> import gradxform as gx
      >>> s = gx.WrappedSchedule(gx.linear_schedule(1.0, 0.0, 4))
      >>> state = s.update(s.init())
      >>> state.count, s(state)
      (Array(1, dtype=int32), Array(0.75, dtype=float32))
    """

    def __init__(self, schedule_fn: Callable[[chex.Numeric], chex.Numeric]) -> None:
        if not callable(schedule_fn):
            raise TypeError(f"schedule_fn={schedule_fn!r} must be callable")
        self.schedule_fn = schedule_fn

    def init(self) -> WrappedScheduleState:
        return WrappedScheduleState(count=_tree.zero_count())

    def update(self, state: WrappedScheduleState, **extra_args: Any) -> WrappedScheduleState:
        del extra_args
        return WrappedScheduleState(count=_tree.safe_increment(state.count))

    def __call__(self, state: WrappedScheduleState, **extra_args: Any) -> chex.Numeric:
        del extra_args
        return self.schedule_fn(state.count)

    def __repr__(self) -> str:
        return f"WrappedSchedule({self.schedule_fn!r})"


def is_stateful_schedule(value: Any) -> bool:
    """Whether ``value`` follows the :class:`StatefulSchedule` protocol (and is no dtype)."""
    return not isinstance(value, type) and isinstance(value, StatefulSchedule)
