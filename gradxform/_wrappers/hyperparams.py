"""Hyperparameters kept in the optimizer state, so they can change without recompiling."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np

from gradxform import _tree
from gradxform._base import (
    GradientTransformation,
    OptState,
    transformation,
    with_extra_args_support,
)


class InjectHyperparamsState(NamedTuple):
    """The wrapped optimizer's state and the hyperparameters it runs with.

    Attributes:
      count: the number of updates made so far (int32, saturating); the step
        at which the schedules are evaluated next.
      hyperparams: ``{name: array}``, one entry per numeric or scheduled
        hyperparameter: the value used by the latest update (after ``init``,
        the value the first update will use).
      inner_state: the wrapped optimizer's state.
    """

    count: chex.Array
    hyperparams: dict[str, chex.Array]
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


def _is_count(parameter: inspect.Parameter, value: Any) -> bool:
    """A Python int given to a parameter whose default is an int: a count such as ``patience``."""

    def is_int(x: Any) -> bool:
        return isinstance(x, int | np.integer) and not isinstance(x, bool | np.bool_)

    return is_int(value) and is_int(parameter.default)


def _storage_dtype(value: Any) -> np.dtype:
    """Default float dtype for Python numbers and float arrays, default int for int arrays."""
    if isinstance(value, jax.Array | np.ndarray) and jnp.issubdtype(value.dtype, jnp.integer):
        return np.dtype(jax.dtypes.canonicalize_dtype(jnp.int64))
    return _tree.float_dtype()


def _as_hyperparam(value: Any, like: Any) -> jax.Array:
    """``value`` as an array of the dtype a hyperparameter first given as ``like`` is kept in."""
    return jnp.asarray(value).astype(_storage_dtype(like))


_CONCRETENESS_ERRORS = (
    jax.errors.ConcretizationTypeError,
    jax.errors.TracerIntegerConversionError,
    jax.errors.TracerArrayConversionError,
)


def _needs_python_number(
    build: Callable[[dict[str, Any]], Any], hyperparams: dict[str, jax.Array]
) -> list[str]:
    """The hyperparameters the optimizer cannot take as traced arrays (it calls ``float`` on them).

    Found by tracing (``jax.eval_shape``, nothing runs) the factory, ``init`` and
    one ``update`` on a scalar parameter with the hyperparameters abstract.
    """

    def fails(names: list[str]) -> bool:
        def probe(traced: dict[str, jax.Array]) -> jax.Array:
            tx = build({**hyperparams, **traced})
            param = jnp.zeros([], jnp.float32)
            tx.update(param, tx.init(param), param)
            return jnp.zeros([])

        try:
            jax.eval_shape(probe, {name: hyperparams[name] for name in names})
        except _CONCRETENESS_ERRORS:
            return True
        except Exception:  # the probe cannot run (an update that needs value=, say)
            return False
        return False

    if not fails(list(hyperparams)):
        return []
    return [name for name in hyperparams if fails([name])]


def _first_value(name: str, schedule: Callable[[chex.Numeric], Any]) -> Any:
    try:
        value = schedule(_tree.zero_count())
    except Exception as e:
        raise TypeError(
            f"{name}={schedule!r} is callable, so it was taken for a schedule, but "
            f"{name}(0) failed ({type(e).__name__}: {e}); if it is not a schedule, name it "
            f"in static_args"
        ) from e
    if not _is_numeric(value) and not _is_numeric(np.asarray(value)):
        raise TypeError(
            f"{name}={schedule!r} was taken for a schedule, but {name}(0) = "
            f"{value!r} is not a number; if it is not a schedule, name it in "
            f"static_args"
        )
    return value


def inject_hyperparams(
    optimizer_factory: Callable[..., Any],
    *,
    static_args: str | Iterable[str] = (),
) -> Callable[..., GradientTransformation]:
    """Wrap an optimizer factory so its numeric hyperparameters live in the state.

    ``inject_hyperparams(f)(**kwargs)`` is the optimizer ``f(**kwargs)`` with
    every numeric argument (Python numbers, JAX or NumPy scalars) and every
    schedule kept in ``state.hyperparams`` as an array:

    - a numeric hyperparameter keeps the value found in the state, so it can be
      changed between steps (:func:`set_hyperparams`) without recompiling a
      jitted training step: its shape and dtype never change;
    - a schedule is evaluated at ``state.count``: the first update uses
      step 0, and the state shows the value the latest update used. A value
      written into a scheduled entry is overwritten by the schedule.

    Python numbers are kept as float arrays (float32; float64 under x64), the
    dtype a Python float becomes in the unwrapped optimizer, so wrapped and
    unwrapped optimizers compute the same updates. Integer arrays stay
    integer. Passed through unchanged: booleans, strings, ``None``, dtypes
    (``mu_dtype=jnp.bfloat16``), Python ints given to a parameter whose
    default is an int (counts such as ``patience``, which must stay Python
    ints), and every argument named in ``static_args``. Every other callable
    is taken for a schedule; list a callable that is not one (a ``mask``
    function, for example) in ``static_args``.

    Arguments are validated when the wrapped factory is called (schedules at
    step 0), as the unwrapped factory would validate them. A numeric argument
    that the factory needs as a Python number (one it converts with
    ``float``, say) is found then too and passed through unchanged: it is not
    in ``state.hyperparams``, and it cannot be a schedule.

    Args:
      optimizer_factory: a function returning a transformation, such as :func:`~gradxform.adam`.
      static_args: names of arguments to pass through unchanged.

    Returns:
      A factory with the signature of ``optimizer_factory`` returning a
      transformation whose state is an :class:`InjectHyperparamsState`.

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> tx = gx.inject_hyperparams(gx.sgd)(learning_rate=0.1, momentum=0.9)
      >>> state = tx.init(jnp.zeros(2))
      >>> state = gx.set_hyperparams(state, learning_rate=0.5)
      >>> updates, state = tx.update(jnp.ones(2), state)
      >>> updates, state.hyperparams["learning_rate"]
      (Array([-0.5, -0.5], dtype=float32), Array(0.5, dtype=float32))
    """
    if not callable(optimizer_factory):
        raise TypeError(f"optimizer_factory={optimizer_factory!r} must be callable")
    signature = inspect.signature(optimizer_factory)
    static = {static_args} if isinstance(static_args, str) else set(static_args)
    unknown = static - set(signature.parameters)
    if unknown:
        raise ValueError(
            f"static_args={sorted(static)!r} names {sorted(unknown)!r}, which "
            f"are not parameters of {optimizer_factory.__name__}"
        )
    passed_through = {
        name
        for name, p in signature.parameters.items()
        if name in static or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    }

    @functools.wraps(optimizer_factory)
    def wrapped(*args: Any, **kwargs: Any) -> GradientTransformation:
        bound = signature.bind(*args, **kwargs)
        given = set(bound.arguments)
        bound.apply_defaults()
        schedules: dict[str, Callable[[chex.Numeric], Any]] = {}
        # The value each hyperparameter was first given as: fixes its storage dtype.
        first: dict[str, Any] = {}
        for name, value in bound.arguments.items():
            if (
                name in passed_through
                or _is_dtype(value)
                or _is_count(signature.parameters[name], value)
            ):
                continue
            if callable(value):
                if name in given:
                    schedules[name] = value
                    first[name] = _first_value(name, value)
            elif _is_numeric(value):
                first[name] = value

        def build(hyperparams: dict[str, Any]) -> Any:
            call = inspect.BoundArguments(signature, {**bound.arguments, **hyperparams})
            return optimizer_factory(*call.args, **call.kwargs)

        def current(state: InjectHyperparamsState) -> dict[str, jax.Array]:
            unknown = set(state.hyperparams) - set(first)
            if unknown:
                raise ValueError(
                    f"state.hyperparams has {sorted(unknown)!r}, which are not "
                    f"hyperparameters of this optimizer ({sorted(first)!r})"
                )
            values = {name: state.hyperparams[name] for name in first}
            values.update({name: _tree.value_at(s, state.count) for name, s in schedules.items()})
            return {name: _as_hyperparam(v, first[name]) for name, v in values.items()}

        initial = {name: _as_hyperparam(v, v) for name, v in first.items()}
        example = build(initial)  # validates every value now
        for name in _needs_python_number(build, initial):
            if name in schedules:
                raise TypeError(
                    f"{name}={bound.arguments[name]!r} cannot be a schedule: "
                    f"{optimizer_factory.__name__} needs it as a Python number"
                )
            del first[name]  # passed through unchanged

        def init_fn(params):
            hyperparams = {name: _as_hyperparam(v, v) for name, v in first.items()}
            return InjectHyperparamsState(
                count=_tree.zero_count(),
                hyperparams=hyperparams,
                inner_state=build(hyperparams).init(params),
            )

        def update_fn(updates, state, params=None, **extra_args):
            hyperparams = current(state)
            inner = with_extra_args_support(build(hyperparams))
            updates, inner_state = inner.update(updates, state.inner_state, params, **extra_args)
            return updates, InjectHyperparamsState(
                count=_tree.safe_increment(state.count),
                hyperparams=hyperparams,
                inner_state=inner_state,
            )

        return transformation(init_fn, update_fn, inner=(example,))

    return wrapped


def set_hyperparams(
    state: InjectHyperparamsState,
    **values: chex.Numeric,
) -> InjectHyperparamsState:
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
    if not isinstance(state, InjectHyperparamsState):
        raise TypeError(f"state must be an InjectHyperparamsState, got {type(state).__name__}")
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
                f"{old.dtype} (it was first given as an integer array)"
            )
        hyperparams[name] = jnp.asarray(value).astype(old.dtype)
    return state._replace(hyperparams=hyperparams)
