"""Hyperparameters kept in the optimizer state, so they can change without recompiling."""

from __future__ import annotations

import contextlib
import functools
import inspect
import warnings
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np

from gradxform import _checks, _tree
from gradxform._base import (
    GradientTransformationExtraArgs,
    OptState,
    transformation,
    with_extra_args_support,
)
from gradxform._wrappers.stateful_schedules import WrappedSchedule, is_stateful_schedule


class InjectHyperparamsState(NamedTuple):
    """The state of optax's former ``inject_hyperparams``, kept for code that builds one.

    :func:`inject_hyperparams` returns an :class:`InjectStatefulHyperparamsState`,
    as optax's does.
    """

    count: chex.Array
    hyperparams: dict[str, chex.Array]
    inner_state: OptState


class InjectStatefulHyperparamsState(NamedTuple):
    """The wrapped optimizer's state and the hyperparameters it runs with.

    Attributes:
      count: the number of updates made so far (int32, saturating).
      hyperparams: ``{name: array}``, one entry per numeric or scheduled
        hyperparameter: the value used by the latest update (after ``init``,
        the value the first update will use).
      hyperparams_states: ``{name: state}``, the state of each schedule (a
        :class:`WrappedScheduleState` holding the step count for a plain schedule).
      inner_state: the wrapped optimizer's state.
    """

    count: chex.Array
    hyperparams: dict[str, chex.Array]
    hyperparams_states: dict[str, Any]
    inner_state: OptState


def _is_numeric(value: Any) -> bool:
    if isinstance(value, bool | np.bool_):
        return False
    if isinstance(value, int | float | np.number):
        return True
    return isinstance(value, jax.Array | np.ndarray) and bool(
        jnp.issubdtype(value.dtype, jnp.integer) or jnp.issubdtype(value.dtype, jnp.floating)
    )


def _is_dtype(value: Any) -> bool:
    """``jnp.bfloat16``, ``np.float32`` and ``np.dtype(...)``: callable, but not schedules."""
    return isinstance(value, type | np.dtype)


def _convert_floats(value: Any, dtype: Any) -> Any:
    """A floating-point value in ``dtype``, unless it is a JAX array of a dtype of its own
    (not weakly typed); integers and everything else unchanged."""
    if isinstance(value, jax.Array) and not getattr(value, "weak_type", False):
        return value
    current = value.dtype if hasattr(value, "dtype") else type(value)
    if jnp.issubdtype(current, jnp.floating):
        return jnp.asarray(value, dtype)
    return value


def _params_dtype(params: Any) -> np.dtype:
    """The highest floating-point dtype of the params (the default float if none)."""
    dtypes = [
        np.dtype(jnp.finfo(_tree.dtype_of(x)).dtype)  # finfo: complex -> its real dtype
        for x in jax.tree.leaves(params)
        if _tree.is_inexact(x)
    ]
    return max(dtypes, key=lambda d: d.itemsize) if dtypes else _tree.float_dtype()


_CONCRETENESS_ERRORS = (
    jax.errors.ConcretizationTypeError,
    jax.errors.TracerIntegerConversionError,
    jax.errors.TracerArrayConversionError,
    jax.errors.TracerBoolConversionError,
)


def _needs_python_number(
    build: Callable[[dict[str, Any]], Any], values: dict[str, Any]
) -> list[str]:
    """The hyperparameters the optimizer cannot take as traced arrays.

    Found by tracing (``jax.eval_shape``, nothing runs): the factory must
    accept the value traced (it may check that a count is a Python int), and
    ``init`` and one ``update`` on a scalar parameter must not need it
    concrete (``float(b2)``, say).
    """

    def fails(names: list[str]) -> bool:
        arrays = {name: jnp.asarray(values[name]) for name in names}

        def factory(traced: dict[str, jax.Array]) -> jax.Array:
            build({**values, **traced})
            return jnp.zeros([])

        def step(traced: dict[str, jax.Array]) -> jax.Array:
            tx = with_extra_args_support(build({**values, **traced}))
            param = jnp.zeros([], jnp.float32)
            tx.update(param, tx.init(param), param)
            return jnp.zeros([])

        try:
            jax.eval_shape(factory, arrays)
        except Exception:
            return True
        try:
            jax.eval_shape(step, arrays)
        except _CONCRETENESS_ERRORS:
            return True
        except Exception:  # the probe cannot run (an update that needs value=, say)
            return False
        return False

    if not values or not fails(list(values)):
        return []
    return [name for name in values if fails([name])]


def _first_value(name: str, schedule: Any) -> Any:
    try:
        value = (
            schedule(schedule.init())
            if is_stateful_schedule(schedule)
            else schedule(_tree.zero_count())
        )
    except Exception as e:
        raise TypeError(
            f"{name}={schedule!r} is callable, so it was taken for a schedule, but "
            f"evaluating it at step 0 failed ({type(e).__name__}: {e}); if it is not a "
            f"schedule, name it in static_args"
        ) from e
    if not _is_numeric(value) and not _is_numeric(np.asarray(value)):
        raise TypeError(
            f"{name}={schedule!r} was taken for a schedule, but its value at step 0, "
            f"{value!r}, is not a number; if it is not a schedule, name it in static_args"
        )
    return value


def inject_hyperparams(
    inner_factory: Callable[..., Any],
    static_args: str | Iterable[str] = (),
    hyperparam_dtype: Any | None = None,
) -> Callable[..., GradientTransformationExtraArgs]:
    """Wrap an optimizer factory so its numeric hyperparameters live in the state.

    ``inject_hyperparams(f)(**kwargs)`` is the optimizer ``f(**kwargs)`` with
    every numeric argument (Python and NumPy numbers, JAX and NumPy arrays)
    and every schedule kept in ``state.hyperparams`` as an array, with
    optax's semantics:

    - a numeric hyperparameter keeps the value found in the state, so it can be
      changed between steps (:func:`set_hyperparams`) without recompiling a
      jitted training step;
    - a schedule ``step -> value`` is evaluated at its own step count (the
      first update uses step 0; the state shows the value the latest update
      used; a value written into a scheduled entry is overwritten);
    - a :class:`StatefulSchedule` (any object with ``init``, ``update`` and
      ``__call__``) keeps its state in ``state.hyperparams_states`` and sees
      the extra arguments of ``update`` (``loss=...``).

    Floating-point values (Python floats, NumPy floats, weakly typed JAX
    arrays such as ``jnp.asarray(0.1)``, schedule values) are stored in
    ``hyperparam_dtype``, by default the highest floating-point dtype of the
    params (bfloat16 for bfloat16 params, float64 for float64 params); a JAX
    array of a dtype of its own keeps it. Integers stay integers (a PRNG seed
    stays an int). Passed through unchanged: booleans, strings, ``None``,
    dtypes (``mu_dtype=jnp.bfloat16``), callables left at their default, and
    every argument named in ``static_args``. Every other callable is taken
    for a schedule: list a callable that is not one (a ``mask`` function) in
    ``static_args``.

    Arguments are validated when the wrapped factory is called (schedules at
    step 0), as the unwrapped factory would validate them. A numeric argument
    that the factory needs as a Python number (a count it checks is an
    ``int``, a value it converts with ``float``) is found then too, by
    tracing, and passed through unchanged: it is not in
    ``state.hyperparams``, and it cannot be a schedule (optax would fail under
    ``jit`` instead).

    Args:
      inner_factory: a function returning a transformation, such as :func:`~gradxform.adam`.
      static_args: names of arguments to pass through unchanged.
      hyperparam_dtype: the dtype of the floating-point hyperparameters;
        ``None``: the params' highest floating-point dtype.

    Returns:
      A factory with the signature of ``inner_factory`` returning a
      transformation whose state is an :class:`InjectStatefulHyperparamsState`.

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> tx = gx.inject_hyperparams(gx.sgd)(learning_rate=0.1, momentum=0.9)
      >>> state = tx.init(jnp.zeros(2))
      >>> state = gx.set_hyperparams(state, learning_rate=0.5)
      >>> updates, state = tx.update(jnp.ones(2), state)
      >>> updates, state.hyperparams["learning_rate"]
      (Array([-0.5, -0.5], dtype=float32), Array(0.5, dtype=float32))
    """
    if not callable(inner_factory):
        raise TypeError(f"inner_factory={inner_factory!r} must be callable")
    signature = inspect.signature(inner_factory)
    static = {static_args} if isinstance(static_args, str) else set(static_args)
    unknown = static - set(signature.parameters)
    if unknown:
        raise ValueError(
            f"static_args={sorted(static)!r} names {sorted(unknown)!r}, which "
            f"are not parameters of {getattr(inner_factory, '__name__', inner_factory)}"
        )
    hyperparam_dtype = _checks.canonical_dtype(hyperparam_dtype, "hyperparam_dtype")
    passed_through = {
        name
        for name, p in signature.parameters.items()
        if name in static or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    }

    @functools.wraps(inner_factory)
    def wrapped(*args: Any, **kwargs: Any) -> GradientTransformationExtraArgs:
        bound = signature.bind(*args, **kwargs)
        given = set(bound.arguments)
        bound.apply_defaults()
        schedules: dict[str, Any] = {}
        numeric: dict[str, Any] = {}
        first: dict[str, Any] = {}  # schedules' values at step 0, for the checks
        for name, value in bound.arguments.items():
            if name in passed_through or _is_dtype(value) or isinstance(value, bool | np.bool_):
                continue
            if is_stateful_schedule(value):
                schedules[name] = value
                # Its value may need the extra arguments of update: then it is not checked now.
                with contextlib.suppress(TypeError):
                    first[name] = _first_value(name, value)
            elif callable(value) and name in given:
                schedules[name] = WrappedSchedule(value)
                first[name] = _first_value(name, value)
            elif _is_numeric(value):
                numeric[name] = value

        def build(hyperparams: dict[str, Any]) -> Any:
            call = inspect.BoundArguments(signature, {**bound.arguments, **hyperparams})
            return inner_factory(*call.args, **call.kwargs)

        try:
            example = build({**numeric, **first})  # validates every value now
        except TypeError:
            if set(schedules) <= set(first):
                raise
            # A stateful schedule whose value needs update's extra arguments, for a
            # parameter without a default: nothing can be checked (or declared) now.
            example = None
        probed = {**numeric, **first} if example is not None else {}
        for name in _needs_python_number(build, probed):
            if name in schedules:
                raise TypeError(
                    f"{name}={bound.arguments[name]!r} cannot be a schedule: "
                    f"{getattr(inner_factory, '__name__', 'the factory')} needs it as a "
                    f"Python number"
                )
            del numeric[name]  # passed through unchanged

        def convert(values: dict[str, Any], dtype: Any, like: dict[str, Any]) -> dict[str, Any]:
            out = {}
            for name, v in values.items():
                d = dtype
                if d is None:  # update without params: keep the stored dtype
                    stored = like.get(name)
                    d = (
                        stored.dtype
                        if isinstance(stored, jax.Array)
                        and jnp.issubdtype(stored.dtype, jnp.floating)
                        else _tree.float_dtype()
                    )
                out[name] = jnp.asarray(_convert_floats(v, d))
            return out

        def init_fn(params):
            dtype = _params_dtype(params) if hyperparam_dtype is None else hyperparam_dtype
            states = {name: s.init() for name, s in schedules.items()}
            hyperparams = convert(numeric, dtype, {})
            hyperparams.update(convert({n: s(states[n]) for n, s in schedules.items()}, dtype, {}))
            return InjectStatefulHyperparamsState(
                count=_tree.zero_count(),
                hyperparams=hyperparams,
                hyperparams_states=states,
                inner_state=build(hyperparams).init(params),
            )

        def update_fn(updates, state, params=None, **extra_args):
            unknown = set(state.hyperparams) - set(numeric) - set(schedules)
            if unknown:
                raise ValueError(
                    f"state.hyperparams has {sorted(unknown)!r}, which are not "
                    f"hyperparameters of this optimizer ({sorted({*numeric, *schedules})!r})"
                )
            dtype = hyperparam_dtype
            if dtype is None and params is not None:
                dtype = _params_dtype(params)
            stored = dict(state.hyperparams)
            hyperparams = convert({n: stored[n] for n in numeric}, dtype, stored)
            hyperparams.update(
                convert(
                    {n: s(state.hyperparams_states[n], **extra_args) for n, s in schedules.items()},
                    dtype,
                    stored,
                )
            )
            schedule_states = {
                n: s.update(state.hyperparams_states[n], **extra_args) for n, s in schedules.items()
            }
            inner = with_extra_args_support(build(hyperparams))
            updates, inner_state = inner.update(updates, state.inner_state, params, **extra_args)
            return updates, InjectStatefulHyperparamsState(
                count=_tree.safe_increment(state.count),
                hyperparams=hyperparams,
                hyperparams_states=schedule_states,
                inner_state=inner_state,
            )

        if example is None:
            return GradientTransformationExtraArgs(init_fn, update_fn)
        return transformation(init_fn, update_fn, inner=(example,))

    return wrapped


def inject_stateful_hyperparams(
    inner_factory: Callable[..., Any],
    static_args: str | Iterable[str] = (),
    hyperparam_dtype: Any | None = None,
) -> Callable[..., GradientTransformationExtraArgs]:
    """:func:`inject_hyperparams` under optax's deprecated name (it warns, as optax's does).

    Example:
      >>> import warnings, gradxform as gx
      >>> with warnings.catch_warnings():
      ...     warnings.simplefilter("ignore", DeprecationWarning)
      ...     tx = gx.inject_stateful_hyperparams(gx.sgd)(0.1)
    """
    warnings.warn(
        "inject_stateful_hyperparams is deprecated, use inject_hyperparams instead",
        DeprecationWarning,
        stacklevel=2,
    )
    return inject_hyperparams(inner_factory, static_args, hyperparam_dtype)


def set_hyperparams(state: Any, **values: chex.Numeric) -> Any:
    """A copy of ``state`` with new values for some hyperparameters, in their stored dtype.

    Each value is cast to the dtype and shape already in ``state.hyperparams``,
    so a jitted training step that takes the new state is not retraced (a bare
    Python float written into the dict would be, once: it is weakly typed).
    Works eagerly and under ``jit``. Scheduled hyperparameters are
    recomputed at every update, so setting one has no effect.

    Args:
      state: the state of an optimizer made by :func:`inject_hyperparams`.
      **values: ``name=value`` for hyperparameters present in ``state.hyperparams``.

    Returns:
      The new state.

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> state = gx.inject_hyperparams(gx.adam)(1e-3).init(jnp.zeros(1))
      >>> gx.set_hyperparams(state, learning_rate=3e-4).hyperparams["learning_rate"]
      Array(0.0003, dtype=float32)
    """
    if not isinstance(state, InjectStatefulHyperparamsState | InjectHyperparamsState):
        raise TypeError(
            f"state must be an InjectStatefulHyperparamsState (or InjectHyperparamsState), "
            f"got {type(state).__name__}"
        )
    hyperparams = dict(state.hyperparams)
    for name, value in values.items():
        if name not in hyperparams:
            raise ValueError(
                f"{name}={value!r} is not a hyperparameter in this state; it has "
                f"{sorted(hyperparams)!r}"
            )
        old = jnp.asarray(hyperparams[name])
        if jnp.shape(value) != old.shape:
            raise ValueError(
                f"{name}={value!r} has shape {jnp.shape(value)} but the state "
                f"holds shape {old.shape}"
            )
        if jnp.issubdtype(old.dtype, jnp.integer) and not jnp.issubdtype(
            jnp.asarray(value).dtype, jnp.integer
        ):
            raise TypeError(
                f"{name}={value!r} would be truncated: the state holds it as "
                f"{old.dtype} (it was first given as an integer)"
            )
        hyperparams[name] = jnp.asarray(value).astype(old.dtype)
    return state._replace(hyperparams=hyperparams)
