"""Line searches: the pieces they share, the backtracking (Armijo) search, and
:func:`value_and_grad_from_state`.

A line search is a transformation that scales the direction ``u`` it receives by a
step size ``eta`` chosen by evaluating the objective along ``w + eta u``. Its
``update`` therefore needs, besides the direction and the params, the objective:
``update(updates, state, params, value=f(w), grad=grad f(w), value_fn=f, **kw)``,
where the keywords that ``value_fn`` accepts are passed on to it (a batch, say). The
search runs in a ``lax.while_loop``; its state is a ``NamedTuple`` of arrays.

The zoom search (strong Wolfe conditions) is in ``zoom.py``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp

from gradxform import _checks, _sharding, _tree
from gradxform._base import GradientTransformation, transformation

# ------------------------------------------------------------------ shared tree math


def scalar_dtype(params: chex.ArrayTree) -> Any:
    """The dtype of a line search's scalars: the params' widest real dtype, at least float32."""
    leaves = [x for x in jax.tree.leaves(params) if _tree.is_inexact(x)]
    if not leaves:
        return _tree.float_dtype()
    return _tree.compute_dtype(
        _tree.real_dtype(_tree.promote(*(_tree.dtype_of(x) for x in leaves)))
    )


def vdot(tree_x: chex.ArrayTree, tree_y: chex.ArrayTree, dtype: Any) -> chex.Array:
    """``Re sum_i <x_i, y_i>`` (``x`` conjugated) over the leaves of two trees, in ``dtype``.

    For complex leaves this is the real inner product of the real and imaginary parts.
    """
    total = jnp.zeros([], dtype)
    for x, y in zip(jax.tree.leaves(tree_x), jax.tree.leaves(tree_y), strict=True):
        if not _tree.is_inexact(x):
            continue
        common = _tree.promote(dtype, _tree.dtype_of(x), _tree.dtype_of(y))
        xd, yd = jnp.asarray(x).astype(common), jnp.asarray(y).astype(common)
        if _tree.is_complex(xd):
            xd = jnp.conj(xd)
        spec = _sharding.explicit_spec(xd)  # explicit mode: say the scalar is replicated
        out = None if spec is None else _sharding.on_mesh_of(xd, jax.sharding.PartitionSpec())
        inner = jnp.tensordot(
            xd, yd, xd.ndim, precision=jax.lax.Precision.HIGHEST, out_sharding=out
        )
        total = total + jnp.real(inner).astype(dtype)
    return total


def conj(tree: chex.ArrayTree) -> chex.ArrayTree:
    """The complex conjugate of every complex leaf (real leaves as they are)."""
    return jax.tree.map(lambda x: jnp.conj(x) if _tree.is_complex(x) else x, tree)


def add_scale(tree_x: chex.ArrayTree, scalar: chex.Array, tree_y: chex.ArrayTree) -> chex.ArrayTree:
    """``x + scalar * y`` leaf by leaf, computed in ``scalar``'s dtype, returned in ``x``'s."""

    def one(x, y):
        dtype = _tree.promote(_tree.compute_dtype(_tree.dtype_of(x)), jnp.asarray(scalar).dtype)
        out = x.astype(dtype) + jnp.asarray(scalar).astype(dtype) * y.astype(dtype)
        return out.astype(_tree.dtype_of(x))

    return _tree.map_inexact(one, tree_x, tree_y)


def nan_to_inf(error: chex.Array) -> chex.Array:
    """The violation ``max(error, 0)`` of a criterion, NaN (out of the domain) as ``inf``."""
    return jnp.maximum(jnp.where(jnp.isnan(error), jnp.inf, error), 0.0).astype(error.dtype)


# ------------------------------------------------------------------ the objective


def objective_kwargs(value_fn: Callable[..., Any], extra_args: dict[str, Any], who: str) -> dict:
    """The extra keyword arguments that ``value_fn`` takes; any other one is a ``TypeError``."""
    names = inspect.signature(value_fn).parameters
    taken = {k: v for k, v in extra_args.items() if k in names}
    rest = sorted(k for k in extra_args if k not in names)
    if rest:
        raise TypeError(
            f"Unexpected keyword arguments passed to {who}.update: value_fn does not take "
            f"{rest} (every extra keyword argument is passed to value_fn)"
        )
    return taken


def require_objective(value: Any, grad: Any, value_fn: Any, who: str) -> None:
    """A line search needs ``value=``, ``grad=`` and ``value_fn=``; a missing one is a TypeError."""
    for name, given in (("value", value), ("grad", grad), ("value_fn", value_fn)):
        if given is None:
            raise TypeError(
                f"{who}.update needs {name}=: call update(updates, state, params, "
                f"value=f(params), grad=grad f(params), value_fn=f)"
            )
    if not callable(value_fn):
        raise TypeError(f"{who}.update: value_fn={value_fn!r} must be callable")
    if jnp.ndim(value) != 0:
        raise ValueError(f"{who}.update: value must be a scalar, got shape {jnp.shape(value)}")


def check_line(updates: Any, params: Any, grad: Any, who: str) -> None:
    """The direction, the params and the gradient: laid out alike."""
    _checks.check_params(updates, params, who)
    _checks.check_same_layout(grad, params, what="grad", against="params")


# ------------------------------------------------------------------ backtracking


class BacktrackingLinesearchInfo(NamedTuple):
    """What the last backtracking search did: its number of evaluations and the violation
    ``max(f(w + eta u) - (1 + rtol) f(w) - c eta <u, grad f(w)>, 0)`` of the decrease
    criterion at the step size it returned (0: satisfied)."""

    num_linesearch_steps: chex.Array
    decrease_error: chex.Array


class ScaleByBacktrackingLinesearchState(NamedTuple):
    """The step size of the last search, the objective there (``value``), its gradient
    (``grad``, or ``None`` unless ``store_grad``) and :class:`BacktrackingLinesearchInfo`."""

    learning_rate: chex.Array
    value: chex.Array
    grad: chex.ArrayTree | None
    info: BacktrackingLinesearchInfo


def scale_by_backtracking_linesearch(
    max_backtracking_steps: int,
    slope_rtol: chex.Numeric = 1e-4,
    decrease_factor: chex.Numeric = 0.8,
    increase_factor: chex.Numeric = 1.5,
    max_learning_rate: chex.Numeric = 1.0,
    atol: chex.Numeric = 0.0,
    rtol: chex.Numeric = 0.0,
    store_grad: bool = False,
    verbose: bool = False,
) -> GradientTransformation:
    r"""Backtracking line search: the largest tried step with sufficient decrease (Armijo).

    With ``w`` the params, ``u`` the updates received (a descent direction) and ``f`` the
    objective, the search starts from ``eta_0 = min(increase_factor * eta_prev,
    max_learning_rate)`` (``eta_prev`` the last search's step, 1 at first) and multiplies
    the step by ``decrease_factor`` until

    .. math::

        f(w + \eta u) \le (1 + \mathrm{rtol})\, f(w) + c\, \eta \langle u, \nabla f(w)
        \rangle + \mathrm{atol}, \qquad c = \mathtt{slope\_rtol},

    at most ``max_backtracking_steps`` times after the first try. The updates returned
    are ``eta u``; a step at which ``f`` is NaN or infinite is replaced by 0. Armijo
    (1966); Nocedal & Wright, *Numerical Optimization* (1999), Sec. 3.1; Vaswani et al.,
    "Painless stochastic gradient" (2019, arXiv:1905.09997).

    ``update`` takes ``value=f(w)``, ``grad=grad f(w)`` and ``value_fn=f``; every other
    keyword argument is passed to ``value_fn`` (it must take them).

    Args:
      max_backtracking_steps: how many times the step may be shrunk, an int ``>= 0``.
      slope_rtol: ``c`` in the criterion, in ``[0, 1)``.
      decrease_factor: factor that shrinks the step, in ``(0, 1)``.
      increase_factor: factor applied to the last step to make the first guess,
        ``>= 1`` (``math.inf``: always start at ``max_learning_rate``).
      max_learning_rate: largest step, ``> 0``.
      atol: absolute tolerance of the criterion, ``>= 0``.
      rtol: relative tolerance on ``f(w)`` in the criterion, ``>= 0``.
      store_grad: also keep the gradient at the accepted step in the state (for
        :func:`value_and_grad_from_state`); otherwise ``grad`` is ``None``.
      verbose: print a message when no step satisfies the criterion.

    Example:
      >>> import jax, jax.numpy as jnp, gradxform as gx
      >>> f = lambda w: jnp.sum(w ** 2)
      >>> tx = gx.chain(gx.sgd(1.0), gx.scale_by_backtracking_linesearch(15))
      >>> w = jnp.array([1.0, 2.0])
      >>> u, state = tx.update(jax.grad(f)(w), tx.init(w), w, value=f(w),
      ...                      grad=jax.grad(f)(w), value_fn=f)
      >>> gx.apply_updates(w, u)
      Array([-0.6, -1.2], dtype=float32)
    """
    who = "scale_by_backtracking_linesearch"
    _checks.integer("max_backtracking_steps", max_backtracking_steps, low=0)
    _checks.number(
        "slope_rtol", slope_rtol, low=0.0, high=1.0, high_open=True, allow_schedule=False
    )
    _checks.number(
        "decrease_factor",
        decrease_factor,
        low=0.0,
        high=1.0,
        low_open=True,
        high_open=True,
        allow_schedule=False,
    )
    _checks.number("increase_factor", increase_factor, low=1.0, high=jnp.inf, allow_schedule=False)
    _checks.positive("max_learning_rate", max_learning_rate, allow_schedule=False)
    _checks.non_negative("atol", atol, allow_schedule=False)
    _checks.non_negative("rtol", rtol, allow_schedule=False)
    _checks.boolean("store_grad", store_grad)
    _checks.boolean("verbose", verbose)

    def init_fn(params):
        dtype = scalar_dtype(params)
        return ScaleByBacktrackingLinesearchState(
            learning_rate=jnp.ones([], dtype),
            value=jnp.full([], jnp.inf, dtype),
            grad=_tree.zeros_like(params) if store_grad else None,
            info=BacktrackingLinesearchInfo(
                num_linesearch_steps=_tree.zero_count(),
                decrease_error=jnp.full([], jnp.inf, dtype),
            ),
        )

    def update_fn(updates, state, params=None, *, value=None, grad=None, value_fn=None, **extra):
        require_objective(value, grad, value_fn, who)
        check_line(updates, params, grad, who)
        fn_kwargs = objective_kwargs(value_fn, extra, who)
        dtype = jnp.asarray(state.learning_rate).dtype
        value = jnp.asarray(value).astype(dtype)
        slope = vdot(updates, conj(grad), dtype)  # optax's: the gradient conjugated

        def f(w):
            return jnp.asarray(value_fn(w, **fn_kwargs)).astype(dtype)

        def error(eta, new_value):
            error = new_value - (1.0 + rtol) * value - eta * slope_rtol * slope
            return nan_to_inf(jnp.asarray(error).astype(dtype))

        def cond(carry):
            _, _, _, err, it = carry
            return ~(err <= atol) & (it <= max_backtracking_steps)

        def body(carry):
            eta, _, new_grad, _, it = carry
            eta = jnp.where(it > 0, decrease_factor * eta, eta).astype(dtype)
            w = add_scale(params, eta, updates)
            if store_grad:
                new_value, vjp = jax.vjp(f, w)
                err = error(eta, new_value)
                new_grad = jax.lax.cond(
                    (err <= atol) | (it == max_backtracking_steps),
                    lambda: jax.tree.map(
                        lambda g, o: g.astype(o.dtype), vjp(jnp.ones([], dtype))[0], new_grad
                    ),
                    lambda: new_grad,
                )
            else:
                new_value = f(w)
                err = error(eta, new_value)
            return eta, new_value, new_grad, err, _tree.safe_increment(it)

        eta0 = jnp.minimum(increase_factor * state.learning_rate, max_learning_rate).astype(dtype)
        start = (
            eta0,
            value,
            _tree.zeros_like(params),
            jnp.full([], jnp.inf, dtype),
            _tree.zero_count(),
        )
        eta, new_value, new_grad, err, steps = jax.lax.while_loop(cond, body, start)
        eta = jnp.where(jnp.isinf(err), 0.0, eta).astype(dtype)
        if verbose:
            jax.lax.cond(
                err > atol,
                lambda: jax.debug.print(
                    "scale_by_backtracking_linesearch: no step with sufficient decrease "
                    "(value {v}, slope {s}, step {e}, decrease error {d})",
                    v=value,
                    s=slope,
                    e=eta,
                    d=err,
                ),
                lambda: None,
            )
        new_state = ScaleByBacktrackingLinesearchState(
            learning_rate=eta,
            value=new_value,
            grad=new_grad if store_grad else None,
            info=BacktrackingLinesearchInfo(num_linesearch_steps=steps, decrease_error=err),
        )
        return _tree.scale_tree(updates, eta), new_state

    return transformation(init_fn, update_fn)


# ------------------------------------------------------------------ reusing the last evaluation


def _find_field(state: Any, name: str) -> list[Any]:
    """Every field called ``name`` in the NamedTuples nested in ``state``."""
    found = []
    if isinstance(state, tuple) and hasattr(state, "_fields"):
        if name in state._fields:
            found.append(getattr(state, name))
        for field in state._fields:
            if field != name:
                found += _find_field(getattr(state, field), name)
    elif isinstance(state, tuple | list):
        for item in state:
            found += _find_field(item, name)
    elif isinstance(state, dict):
        for item in state.values():
            found += _find_field(item, name)
    return found


def value_and_grad_from_state(
    value_fn: Callable[..., chex.Numeric],
) -> Callable[..., tuple[chex.Array, chex.ArrayTree]]:
    """``jax.value_and_grad(value_fn)`` that reuses the objective kept in an optimizer state.

    A line search evaluates the objective and its gradient at the step it accepts, which
    are the value and gradient at the next params. The returned function, called as
    ``f(params, *args, state=opt_state, **kwargs)``, returns the ``value`` and ``grad``
    fields found in ``state`` (there must be exactly one of each) when the value is
    finite, and computes them with ``jax.value_and_grad`` otherwise (at the first step,
    when the state still holds ``inf``).

    Args:
      value_fn: the objective, a function of the params returning a scalar.

    Raises (when called): ``ValueError`` if the state has no ``value`` or no ``grad``
    (or a ``grad`` of ``None``), ``KeyError`` if it has more than one.

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> f = lambda w: jnp.sum(w ** 2)
      >>> state = gx.lbfgs().init(jnp.ones(2))  # its value is inf: f is evaluated
      >>> gx.value_and_grad_from_state(f)(jnp.ones(2), state=state)
      (Array(2., dtype=float32), Array([2., 2.], dtype=float32))

    See :func:`lbfgs` for its use in a training loop.
    """
    if not callable(value_fn):
        raise TypeError(f"value_fn={value_fn!r} must be callable")

    def value_and_grad(params, *fn_args, state, **fn_kwargs):
        values, grads = _find_field(state, "value"), _find_field(state, "grad")
        if len(values) > 1 or len(grads) > 1:
            raise KeyError(
                f"value_and_grad_from_state found {len(values)} `value` and {len(grads)} "
                "`grad` fields in the state; it needs exactly one of each"
            )
        if not values or not grads or grads[0] is None:
            raise ValueError(
                "value_and_grad_from_state needs a state with one `value` and one `grad` "
                "field holding arrays (a backtracking search keeps its gradient only with "
                "store_grad=True)"
            )
        value, grad = values[0], grads[0]
        return jax.lax.cond(
            jnp.isfinite(value),
            lambda p, a, kw: (value, grad),
            lambda p, a, kw: jax.value_and_grad(value_fn)(p, *a, **kw),
            params,
            fn_args,
            fn_kwargs,
        )

    return value_and_grad
