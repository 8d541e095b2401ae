"""All validation: hyperparameters at construction time, trees at update time.

Every factory in gradxform validates its arguments through these functions, so
every bad argument gets the same kind of error: a ``ValueError`` (or a
``TypeError`` for a value of the wrong type) naming the argument and its value.
Values that are only known at run time (tracers, schedules) are not checked.
Trees (updates, params, states, masks) are checked at trace time, against the
params or the state, with an error that names the key path of the first
offending leaf.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np

from gradxform import _tree


def _concrete(value: Any) -> float | None:
    """The value as a Python float, or None when it is a schedule or a tracer."""
    if callable(value):
        return None
    if isinstance(value, bool):
        raise TypeError(f"expected a number, got the bool {value!r}")
    if isinstance(value, complex | np.complexfloating):
        raise TypeError(f"expected a real number, got the complex {value!r}")
    if isinstance(value, int | float | np.number):
        return float(value)
    if isinstance(value, jax.core.Tracer):
        return None
    if isinstance(value, jax.Array | np.ndarray):
        if np.ndim(value) != 0:
            raise TypeError(f"expected a scalar, got an array of shape {np.shape(value)}")
        dtype = np.asarray(value).dtype
        if not jnp.issubdtype(dtype, jnp.integer) and not jnp.issubdtype(dtype, jnp.floating):
            raise TypeError(f"expected a real number, got dtype {dtype}")
        return float(np.asarray(value))
    raise TypeError(f"expected a number, got {type(value).__name__} {value!r}")


def number(
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    allow_schedule: bool = True,
) -> None:
    """Check a scalar hyperparameter lies in ``[low, high]`` (or open ends).

    NaN is always rejected, and so is an infinite value unless the interval is
    closed at that infinity (``high=math.inf`` with ``high_open=False``); an
    open-ended bound (``high=None``) means "any finite value above ``low``".
    ``allow_schedule=False`` rejects callables.
    """
    if callable(value) and not allow_schedule:
        raise TypeError(f"{name}={value!r} must be a number, not a schedule")
    try:
        v = _concrete(value)
    except TypeError as e:
        raise TypeError(f"{name}={value!r}: {e}") from None
    if v is None:
        return
    if math.isnan(v):
        raise ValueError(f"{name}={value!r} must not be NaN")
    if math.isinf(v) and not (
        (v > 0 and high == math.inf and not high_open)
        or (v < 0 and low == -math.inf and not low_open)
    ):
        raise ValueError(f"{name}={value!r} must be finite")
    if low is not None and (v < low or (low_open and v == low)):
        raise ValueError(f"{name}={value!r} must be {_interval(low, high, low_open, high_open)}")
    if high is not None and (v > high or (high_open and v == high)):
        raise ValueError(f"{name}={value!r} must be {_interval(low, high, low_open, high_open)}")


def _interval(low, high, low_open, high_open) -> str:
    if high is None:
        return f"{'>' if low_open else '>='} {low}"
    if low is None:
        return f"{'<' if high_open else '<='} {high}"
    return f"in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"


def non_negative(name: str, value: Any, **kw: Any) -> None:
    """``value >= 0`` (finite or not is left to ``number``'s other bounds)."""
    number(name, value, low=0.0, **kw)


def positive(name: str, value: Any, **kw: Any) -> None:
    """``value > 0``."""
    number(name, value, low=0.0, low_open=True, **kw)


def decay_rate(name: str, value: Any, **kw: Any) -> None:
    """An EMA decay: ``0 <= value < 1``, and still below 1 once rounded to float32.

    Decays are applied in at least float32; one that rounds to 1 there (``1 - 1e-9``)
    would freeze the moment and make its bias correction ``1 - decay**t`` zero.
    """
    number(name, value, low=0.0, high=1.0, high_open=True, **kw)
    v = _concrete(value)
    if v is not None and np.float32(v) >= 1:
        raise ValueError(
            f"{name}={value!r} must be in [0, 1); it rounds to 1 in float32 "
            f"(the largest usable decay is {float(np.nextafter(np.float32(1), 0))})"
        )


def finite(name: str, value: Any, **kw: Any) -> None:
    """Any finite number."""
    number(name, value, low=-math.inf, high=math.inf, low_open=True, high_open=True, **kw)


def integer(name: str, value: Any, *, low: int | None = None) -> None:
    """A Python int (not a bool) no smaller than ``low``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name}={value!r} must be an int")
    if low is not None and value < low:
        raise ValueError(f"{name}={value!r} must be >= {low}")


def one_of(name: str, value: Any, choices: tuple[Any, ...]) -> None:
    """``value`` is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name}={value!r} must be one of {', '.join(map(repr, choices))}")


def transformation(name: str, value: Any) -> None:
    """``value`` has callable ``init`` and ``update`` (a gradxform or optax transformation)."""
    if not (callable(getattr(value, "init", None)) and callable(getattr(value, "update", None))):
        raise TypeError(
            f"{name}={value!r} must be a gradient transformation: an object with "
            f"callable `init` and `update` attributes"
        )


def is_literal_zero(value: Any) -> bool:
    """Whether a hyperparameter is the Python number 0 (so its transformation can be skipped)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and value == 0


def unused_unless(name: str, value: Any, default: float, needs: str, used: bool) -> None:
    """Refuse a non-default ``value`` for an argument that only acts when ``needs`` holds.

    Values compare at float32 precision, or at the value's own when it is an array
    of lower precision (a hyperparameter kept in an ``inject_hyperparams`` state is
    an array of the params' float dtype, bfloat16 say); tracers are not checked.
    """
    v = None if used else _concrete(value)
    if v is None:
        return
    rounded = float(np.asarray(default, np.dtype(getattr(value, "dtype", np.float32))))
    if np.float32(v) != np.float32(rounded):
        raise ValueError(f"{name}={value!r} has no effect unless {needs}")


def boundaries(name: str, boundaries: Iterable[Any]) -> tuple[int, ...]:
    """Boundaries: positive Python ints, strictly increasing. Returns them as a tuple."""
    out = tuple(boundaries)
    for b in out:
        if isinstance(b, bool) or not isinstance(b, int | np.integer):
            raise TypeError(f"{name}={out!r} must hold ints, got {b!r}")
        if b < 1:
            raise ValueError(f"{name}={out!r} must hold ints >= 1, got {b!r}")
    if any(a >= b for a, b in itertools.pairwise(out)):
        raise ValueError(f"{name}={out!r} must be strictly increasing")
    return tuple(int(b) for b in out)


def boundaries_and_scales(
    name: str,
    boundaries_and_scales: Any,
) -> tuple[tuple[int, ...], tuple[float, ...]]:
    """A ``{step: scale}`` mapping: steps ints >= 1, scales finite and >= 0. Sorted by step."""
    if boundaries_and_scales is None:
        return (), ()
    if not isinstance(boundaries_and_scales, dict):
        raise TypeError(f"{name}={boundaries_and_scales!r} must be a dict {{step: scale}}")
    items = sorted(boundaries_and_scales.items())
    bounds = boundaries(name, (b for b, _ in items))
    for b, s in items:
        non_negative(f"{name}[{b}]", s, allow_schedule=False)
    return bounds, tuple(float(s) for _, s in items)


# ------------------------------------------------------------------ trees at update time


def canonical_dtype(
    dtype: Any | None, name: str, *, real_only: str | None = None
) -> np.dtype | None:
    """Validate a state-dtype argument such as ``mu_dtype``; ``None`` means "as the params".

    Floating-point and complex dtypes are accepted (as optax accepts them); with
    ``real_only`` (the reason, for the message) complex dtypes are refused.
    """
    if dtype is None:
        return None
    try:
        out = np.dtype(jax.dtypes.canonicalize_dtype(dtype))
    except TypeError as e:
        raise TypeError(f"{name}={dtype!r} is not a dtype") from e
    if real_only is not None and jnp.issubdtype(out, jnp.complexfloating):
        raise TypeError(f"{name}={dtype!r} must be a real floating-point dtype: {real_only}")
    if not jnp.issubdtype(out, jnp.inexact):
        raise TypeError(f"{name}={dtype!r} must be a floating-point or complex dtype")
    return out


def check_params(
    updates: chex.ArrayTree, params: chex.ArrayTree | None, who: str, *, allow_complex: bool = True
) -> None:
    """Raise unless ``params`` were given and are laid out like ``updates``."""
    if params is None:
        raise ValueError(f"{who} needs the params: call update(updates, state, params)")
    check_same_layout(
        updates, params, what="updates", against="params", allow_complex=allow_complex
    )


def check_updates(
    updates: chex.ArrayTree,
    reference: chex.ArrayTree,
    who: str,
    *,
    allow_complex: bool = False,
    against: str | None = None,
    complex_on_real: bool = False,
) -> None:
    """Raise, naming the key path, unless ``updates`` is laid out like a state moment.

    Complex updates are refused unless ``allow_complex``; then a complex update
    needs a complex ``reference`` leaf (a moment kept in the params' dtype: a
    complex update for a real parameter would lose its imaginary part).
    ``against`` describes the reference when it is not kept in the params' dtype
    (``"the mu of scale_by_adam (mu_dtype=float32)"``). ``complex_on_real``
    accepts complex updates on real reference leaves: a real-valued statistic
    kept in an explicit real dtype does not tell whether the params are complex.
    """
    check_same_layout(
        updates,
        reference,
        what="updates",
        against=against or f"the params given to {who}.init",
        allow_complex=allow_complex,
        complex_on_real=complex_on_real,
    )


def check_same_layout(
    tree: chex.ArrayTree,
    reference: chex.ArrayTree,
    *,
    what: str,
    against: str,
    allow_complex: bool = True,
    complex_on_real: bool = False,
) -> None:
    """Raise unless ``tree`` has the structure and leaf shapes of ``reference``.

    Runs at trace time (shapes are static), so it costs nothing inside ``jit``.
    The error names the key path of the first offending leaf. A floating-point
    reference leaf must be matched by a floating-point leaf (an integer
    gradient for a float parameter is an error, not a silent cast), and a real
    reference leaf by a real one (a complex update would lose its imaginary part)
    unless ``complex_on_real``.
    """
    if not _tree.same_structure(tree, reference):
        ours = _tree.leaf_paths(tree)
        theirs = _tree.leaf_paths(reference)
        for (a, _), (b, _) in zip(ours, theirs, strict=False):
            if a != b:
                raise ValueError(
                    f"{what} does not match {against}: leaf '{a}' in {what} where "
                    f"{against} has '{b}'"
                )
        if len(ours) < len(theirs):
            raise ValueError(
                f"{what} does not match {against}: {what} lacks the leaf '{theirs[len(ours)][0]}'"
            )
        if len(ours) > len(theirs):
            raise ValueError(
                f"{what} does not match {against}: {what} has an extra leaf "
                f"'{ours[len(theirs)][0]}'"
            )
        raise ValueError(
            f"{what} does not match {against}: same key paths but different containers "
            f"({jax.tree.structure(tree)} vs {jax.tree.structure(reference)})"
        )
    # The usual leaf (same shape, same dtype) is passed without its key path, which is
    # looked up, once, only for leaves that need a closer look: cheap on many leaves.
    names: list[str] | None = None
    refs = jax.tree.leaves(reference)
    for i, (x, r) in enumerate(zip(jax.tree.leaves(tree), refs, strict=True)):
        dtype, ref_dtype = _tree.dtype_of(x), _tree.dtype_of(r)
        if dtype == ref_dtype and np.shape(x) == np.shape(r):
            continue
        names = names or [n for n, _ in _tree.leaf_paths(tree)]
        if np.shape(x) != np.shape(r):
            raise ValueError(
                f"{what} leaf '{names[i]}' has shape {np.shape(x)} but {against} has shape "
                f"{np.shape(r)}; gradxform never broadcasts one into the other"
            )
        if _tree.is_inexact(r) and not _tree.is_inexact(x):
            raise TypeError(
                f"{what} leaf '{names[i]}' has dtype {dtype} but {against} is "
                f"{ref_dtype}: a floating-point leaf needs a floating-point {what}"
            )
        if (
            not complex_on_real
            and jnp.issubdtype(dtype, jnp.complexfloating)
            and jnp.issubdtype(ref_dtype, jnp.floating)
        ):
            raise TypeError(
                f"{what} leaf '{names[i]}' is complex ({dtype}) but {against} is real "
                f"({ref_dtype}): the imaginary part would be discarded"
            )
    if not allow_complex:
        check_real(tree, what=what)


def check_real(tree: chex.ArrayTree, *, what: str, reason: str | None = None) -> None:
    """Raise a ``TypeError`` naming the key path of the first complex leaf of ``tree``.

    ``reason`` says why the transformation has no complex form.
    """
    for i, x in enumerate(jax.tree.leaves(tree)):
        if jnp.issubdtype(_tree.dtype_of(x), jnp.complexfloating):
            why = f" ({reason})" if reason else ""
            name = _tree.leaf_paths(tree)[i][0]
            raise TypeError(
                f"{what} leaf '{name}' is complex ({_tree.dtype_of(x)}); this transformation "
                f"supports real leaves only{why}: optimize the real and imaginary parts as "
                f"separate real parameters"
            )


def resolve_mask(mask: Any, params: chex.ArrayTree, who: str) -> chex.ArrayTree:
    """A mask given as a tree of bools or a function of the params, checked against the params.

    ``None`` means "every leaf". The error for a mask that does not fit names
    the first offending key path.
    """
    if mask is None:
        return jax.tree.map(lambda _: True, params)
    # A callable is a mask function unless it already is a tree of bools shaped
    # like the params (an Equinox module holding bools is callable, yet a tree).
    is_tree = _tree.same_structure(mask, params) and all(
        isinstance(m, bool | np.bool_) for m in jax.tree.leaves(mask)
    )
    tree = mask(params) if callable(mask) and not is_tree else mask
    if not _tree.same_structure(tree, params):
        check_same_layout(tree, params, what=f"{who} mask", against="params")
    for path, m in jax.tree_util.tree_flatten_with_path(tree)[0]:
        if not isinstance(m, bool | np.bool_):
            raise TypeError(
                f"{who} mask leaf '{_tree.path_name(path)}' must be a Python bool, "
                f"got {type(m).__name__}"
            )
    return tree


def boolean(name: str, value: Any) -> None:
    """A Python (or NumPy) bool: a flag given as a number or a string is a ``TypeError``."""
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{name}={value!r} must be a bool")


def empty_state(state: Any, who: str) -> None:
    """Raise for a stateless transformation given a non-empty state."""
    raise ValueError(
        f"{who}.update got a state that {who}.init did not make: expected EmptyState, got "
        f"{type(state).__name__}. Was the state made by another transformation, chain or model?"
    )


def chain_state(state: Any, n: int) -> None:
    """Raise unless ``state`` is a tuple of ``n`` states (one per member of a chain)."""
    if not isinstance(state, tuple) or len(state) != n:
        got = type(state).__name__
        if type(state) is tuple:
            got = f"a tuple of {len(state)}: ({', '.join(type(s).__name__ for s in state)})"
        raise ValueError(
            f"chain of {n} transformations got a state that is not a tuple of {n} states: {got}. "
            f"Was the state made by another transformation, chain or model?"
        )


def state_type(state: Any, expected: type, who: str) -> None:
    """Raise, naming what was received, unless ``state`` has the fields of ``expected`` (a
    NamedTuple state class; the same class from another library passes)."""
    if getattr(state, "_fields", None) == getattr(expected, "_fields", ()):
        return
    raise ValueError(
        f"{who}.update got a state that {who}.init did not make: expected "
        f"{expected.__name__}, got {_state_kind(state)}. Was the state made by another "
        f"transformation, chain or model?"
    )


def _state_kind(state: Any) -> str:
    """A state's type, or for a chain's tuple the types of its members."""
    if type(state) is tuple:
        return f"a tuple ({', '.join(type(s).__name__ for s in state)})"
    return type(state).__name__


def check_state(state: Any, init_fn: Any, updates: Any, who: str, error: Exception) -> None:
    """Raise if ``state`` is not laid out as ``init_fn`` lays out a state for ``updates``.

    Called when an update failed: ``error`` becomes the cause of the clearer
    error. Returns (so the caller re-raises ``error``) when the layouts match or
    the expected state cannot be derived from the updates alone.
    """
    tb = error.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        return  # already one of these checks' own errors, naming what is wrong
    abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(np.shape(x), _tree.dtype_of(x)), updates)
    try:
        expected = jax.eval_shape(init_fn, abstract)
    except Exception:  # no expected layout to compare with: keep the original error
        return
    if _tree.same_structure(state, expected):
        return
    ours = [p for p, _ in _tree.leaf_paths(expected)]
    theirs = [p for p, _ in _tree.leaf_paths(state)]
    where = next(
        (
            f"; first difference at '{b}' (expected '{a}')"
            for a, b in zip(ours, theirs, strict=False)
            if a != b
        ),
        "",
    )
    got = _state_kind(state)
    raise ValueError(
        f"{who}.update got a state that {who}.init did not make for these updates: expected "
        f"{type(expected).__name__} with {len(ours)} leaves, got {got} with "
        f"{len(theirs)} leaves{where}. Was the state made by another transformation, chain "
        f"or model?"
    ) from error
