"""The zoom line search: a step size satisfying the strong Wolfe conditions.

Nocedal & Wright, *Numerical Optimization* (1999), Algorithms 3.5 (bracketing) and 3.6
(zoom), with the trial point of the zoom chosen by cubic, then quadratic interpolation,
then bisection, and the approximate decrease criterion of Hager & Zhang (2006) near a
minimum. One evaluation of the objective per iteration of a ``lax.while_loop``.
"""

from __future__ import annotations

from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp

from gradxform import _checks, _tree
from gradxform._base import GradientTransformation, transformation
from gradxform._transforms.linesearch import (
    add_scale,
    check_line,
    conj,
    nan_to_inf,
    objective_kwargs,
    require_objective,
    scalar_dtype,
    vdot,
)

INITIAL_GUESS_STRATEGIES = ("one", "keep")


class ZoomLinesearchInfo(NamedTuple):
    """What the last zoom search did: its number of evaluations and the violations (0 when
    satisfied) of the decrease and curvature criteria at the step it returned."""

    num_linesearch_steps: chex.Array
    decrease_error: chex.Array
    curvature_error: chex.Array


class ScaleByZoomLinesearchState(NamedTuple):
    """The step size of the last search, the objective and its gradient there (``value``,
    ``grad``, reused by :func:`value_and_grad_from_state`) and :class:`ZoomLinesearchInfo`."""

    learning_rate: chex.Array
    value: chex.Array
    grad: chex.ArrayTree
    info: ZoomLinesearchInfo


class _Point(NamedTuple):
    """A step size on the line with the objective and its slope there."""

    eta: chex.Array
    value: chex.Array
    slope: chex.Array


class _Search(NamedTuple):
    """The carry of the search loop (all arrays)."""

    count: chex.Array
    last: _Point  # the latest trial
    grad: chex.ArrayTree  # the gradient at the latest trial
    decrease_error: chex.Array
    curvature_error: chex.Array
    bracketed: chex.Array  # phase 2 (zoom) once an interval holds an acceptable step
    done: chex.Array
    failed: chex.Array
    low: _Point  # the interval's end with the lower value (N&W's alpha_lo)
    high: _Point
    ref: _Point  # the previous end that the cubic also interpolates (slope unused)
    safe: _Point  # the best step with sufficient decrease so far (eta 0: none)
    safe_grad: chex.ArrayTree


def cubic_minimizer(a, fa, fpa, b, fb, c, fc):
    """The stationary point of the cubic through ``(a, fa)``, ``(b, fb)``, ``(c, fc)`` with
    slope ``fpa`` at ``a`` (NaN when it has none)."""
    db, dc = b - a, c - a
    residuals = jnp.stack([fb - fa - fpa * db, fc - fa - fpa * dc])
    solve = jnp.stack([jnp.stack([dc**2, -(db**2)]), jnp.stack([-(dc**3), db**3])])
    cubic, square = jnp.dot(solve, residuals, precision=jax.lax.Precision.HIGHEST) / (
        (db * dc) ** 2 * (db - dc)
    )
    return a + (-square + jnp.sqrt(square * square - 3.0 * cubic * fpa)) / (3.0 * cubic)


def quadratic_minimizer(a, fa, fpa, b, fb):
    """The stationary point of the parabola through ``(a, fa)``, ``(b, fb)`` with slope
    ``fpa`` at ``a``."""
    db = b - a
    return a - fpa / (2.0 * ((fb - fa - fpa * db) / db**2))


def scale_by_zoom_linesearch(
    max_linesearch_steps: int,
    max_learning_rate: chex.Numeric | None = None,
    tol: chex.Numeric = 0.0,
    increase_factor: chex.Numeric = 2.0,
    slope_rtol: chex.Numeric = 1e-4,
    curv_rtol: chex.Numeric = 0.9,
    approx_dec_rtol: chex.Numeric | None = 1e-6,
    stepsize_precision: chex.Numeric = 1e-5,
    initial_guess_strategy: str = "keep",
    verbose: bool = False,
) -> GradientTransformation:
    r"""Line search for a step satisfying the strong Wolfe conditions (zoom).

    With ``w`` the params, ``u`` the updates received (a descent direction), ``f`` the
    objective and ``phi(eta) = f(w + eta u)``, it looks for ``eta`` with sufficient
    decrease and small curvature,

    .. math::

        \phi(\eta) \le \phi(0) + c_1 \eta \phi'(0) + \mathrm{tol}, \qquad
        |\phi'(\eta)| \le c_2 |\phi'(0)| + \mathrm{tol},

    ``c_1 = slope_rtol``, ``c_2 = curv_rtol``. Near a minimum, where the first test
    cannot resolve differences below the square root of the machine epsilon, the
    approximate decrease ``phi'(eta) <= (2 c_1 - 1) phi'(0)`` of Hager & Zhang (2006)
    is accepted instead once ``phi(eta) <= phi(0) + approx_dec_rtol |phi(0)|``.

    Phase 1 (Nocedal & Wright 1999, Alg. 3.5) tries ``eta_0`` (1 or the last step, see
    ``initial_guess_strategy``), then multiplies by ``increase_factor`` (capped at
    ``max_learning_rate``) until an interval is found that holds an acceptable step: the
    decrease fails or ``phi`` rises (the new step is its upper end) or the slope turns
    non-negative (the new step is its lower end). Phase 2 (Alg. 3.6) shrinks the interval
    ``[lo, hi]`` (``lo`` the end with the lower value): the trial step is the minimizer of
    the cubic through ``lo`` (value and slope), ``hi`` and the previous end, if it lies
    more than ``0.2 |hi - lo|`` inside the interval, else that of the quadratic through
    ``lo`` and ``hi`` if more than ``0.1 |hi - lo|`` inside, else the midpoint. The search
    stops when both criteria hold, or after ``max_linesearch_steps`` evaluations or once
    the interval is shorter than ``stepsize_precision``: then the step of lowest value
    with sufficient decrease is returned, if any.

    ``update`` takes ``value=f(w)``, ``grad=grad f(w)`` and ``value_fn=f``; every other
    keyword argument is passed to ``value_fn``. The value and gradient at the accepted
    step are kept in the state (see :func:`value_and_grad_from_state`).

    Args:
      max_linesearch_steps: largest number of evaluations of ``f``, an int ``>= 1``.
      max_learning_rate: largest step, ``> 0``, or ``None`` for none.
      tol: absolute tolerance of both criteria, ``>= 0``.
      increase_factor: growth of the step in phase 1, ``> 1``.
      slope_rtol: ``c_1``, in ``[0, 1)``.
      curv_rtol: ``c_2``, ``> 0`` (``math.inf`` drops the curvature test).
      approx_dec_rtol: relative tolerance of the switch to the approximate decrease
        criterion, ``>= 0``, or ``None`` to use Armijo's test alone.
      stepsize_precision: interval length below which the search stops, ``>= 0``.
      initial_guess_strategy: ``"one"`` (start at 1, for quasi-Newton directions) or
        ``"keep"`` (start at the last step, for gradient directions).
      verbose: print a message when the search ends without an acceptable step.

    Example:
      >>> import jax, jax.numpy as jnp, gradxform as gx
      >>> f = lambda w: jnp.sum(w ** 2)
      >>> tx = gx.chain(gx.sgd(1.0), gx.scale_by_zoom_linesearch(15))
      >>> w = jnp.array([1.0, 2.0])
      >>> u, state = tx.update(jax.grad(f)(w), tx.init(w), w, value=f(w),
      ...                      grad=jax.grad(f)(w), value_fn=f)
      >>> gx.apply_updates(w, u)
      Array([0., 0.], dtype=float32)
    """
    who = "scale_by_zoom_linesearch"
    _checks.integer("max_linesearch_steps", max_linesearch_steps, low=1)
    if max_learning_rate is not None:
        _checks.positive("max_learning_rate", max_learning_rate, allow_schedule=False)
    _checks.non_negative("tol", tol, allow_schedule=False)
    _checks.number("increase_factor", increase_factor, low=1.0, low_open=True, allow_schedule=False)
    _checks.number(
        "slope_rtol", slope_rtol, low=0.0, high=1.0, high_open=True, allow_schedule=False
    )
    _checks.number(
        "curv_rtol", curv_rtol, low=0.0, high=jnp.inf, low_open=True, allow_schedule=False
    )
    if approx_dec_rtol is not None:
        _checks.non_negative("approx_dec_rtol", approx_dec_rtol, allow_schedule=False)
    _checks.non_negative("stepsize_precision", stepsize_precision, allow_schedule=False)
    _checks.one_of("initial_guess_strategy", initial_guess_strategy, INITIAL_GUESS_STRATEGIES)
    _checks.boolean("verbose", verbose)

    def init_fn(params):
        dtype = scalar_dtype(params)
        return ScaleByZoomLinesearchState(
            learning_rate=jnp.ones([], dtype),
            value=jnp.full([], jnp.inf, dtype),
            grad=_tree.zeros_like(params),
            info=ZoomLinesearchInfo(
                num_linesearch_steps=_tree.zero_count(),
                decrease_error=jnp.full([], jnp.inf, dtype),
                curvature_error=jnp.full([], jnp.inf, dtype),
            ),
        )

    def update_fn(updates, state, params=None, *, value=None, grad=None, value_fn=None, **extra):
        require_objective(value, grad, value_fn, who)
        check_line(updates, params, grad, who)
        fn_kwargs = objective_kwargs(value_fn, extra, who)
        dtype = jnp.asarray(state.learning_rate).dtype
        value0 = jnp.asarray(value).astype(dtype)
        slope0 = vdot(updates, grad, dtype)
        value_and_grad = jax.value_and_grad(lambda w: value_fn(w, **fn_kwargs))

        def scalar(x):
            return jnp.asarray(x, dtype)

        def evaluate(eta):
            """``phi(eta)``, the gradient at ``w + eta u`` and ``phi'(eta)``."""
            v, g = value_and_grad(add_scale(params, eta, updates))
            g = jax.tree.map(lambda x, p: x.astype(_tree.dtype_of(p)), g, params)
            return _Point(eta, scalar(v), vdot(conj(g), updates, dtype)), g

        def errors(p):
            decrease = p.value - value0 - slope_rtol * p.eta * slope0
            if approx_dec_rtol is not None:
                approx = jnp.maximum(
                    p.slope - (2 * slope_rtol - 1.0) * slope0,
                    p.value - value0 - approx_dec_rtol * jnp.abs(value0),
                )
                decrease = jnp.minimum(approx, decrease)
            curvature = jnp.abs(p.slope) - curv_rtol * jnp.abs(slope0)
            return nan_to_inf(scalar(decrease)), nan_to_inf(scalar(curvature))

        def pick(pred, a, b):
            return jax.tree.map(lambda x, y: jnp.where(pred, x, y).astype(y.dtype), a, b)

        def bracket_trial(s: _Search):
            """Phase 1's next step: ``eta_0``, then ``increase_factor`` times the last."""
            guess = jnp.where(s.count == 0, eta0, increase_factor * s.last.eta)
            if max_learning_rate is None:
                return scalar(guess), jnp.asarray(False)
            return scalar(jnp.minimum(guess, max_learning_rate)), guess >= max_learning_rate

        def zoom_trial(s: _Search):
            """Phase 2's next step: cubic, quadratic or bisection inside ``[lo, hi]``."""
            lo, hi, ref = s.low, s.high, s.ref
            width = jnp.abs(hi.eta - lo.eta)
            left, right = jnp.minimum(hi.eta, lo.eta), jnp.maximum(hi.eta, lo.eta)
            cubic = cubic_minimizer(lo.eta, lo.value, lo.slope, hi.eta, hi.value, ref.eta,
                                    ref.value)  # fmt: skip
            quad = quadratic_minimizer(lo.eta, lo.value, lo.slope, hi.eta, hi.value)
            use_cubic = (cubic > left + 0.2 * width) & (cubic < right - 0.2 * width)
            use_quad = ~use_cubic & (quad > left + 0.1 * width) & (quad < right - 0.1 * width)
            trial = jnp.where(use_cubic, cubic, jnp.where(use_quad, quad, (lo.eta + hi.eta) / 2))
            return scalar(trial), width

        def bracket(s: _Search, new: _Point, g, dec, curv, at_max) -> _Search:
            error = jnp.maximum(dec, curv)
            new_is_high = (dec > 0.0) | ((new.value >= s.last.value) & (s.count > 0))
            new_is_low = (new.slope >= 0.0) & ~new_is_high
            low = pick(new_is_low, new, s.last)
            bracketed = new_is_high | new_is_low | (error <= tol)
            done = (error <= tol) | (at_max & ~bracketed)
            ok = dec <= tol
            return s._replace(
                bracketed=bracketed, done=done,
                failed=(s.count + 1 >= max_linesearch_steps) & ~done,
                low=low, high=pick(new_is_low, s.last, new), ref=low,
                safe=pick(ok, new, s.safe), safe_grad=pick(ok, g, s.safe_grad),
            )  # fmt: skip

        def zoom(s: _Search, new: _Point, g, dec, curv, width) -> _Search:
            lo, hi = s.low, s.high
            better = (dec <= tol) & (new.value < s.safe.value)
            safe = pick(better, new, s.safe)
            done = jnp.maximum(dec, curv) <= tol
            new_is_high = (dec > 0.0) | (new.value >= lo.value)
            low_is_high = (new.slope * (hi.eta - lo.eta) >= 0.0) & ~new_is_high
            stop = (s.count + 1 >= max_linesearch_steps) | (
                (width <= stepsize_precision) & (safe.eta > 0.0)
            )
            return s._replace(
                done=done, failed=stop & ~done,
                low=pick(new_is_high, lo, new),
                high=pick(new_is_high, new, pick(low_is_high, lo, hi)),
                ref=pick(new_is_high | low_is_high, hi, lo),
                safe=safe, safe_grad=pick(better, g, s.safe_grad),
            )  # fmt: skip

        def fall_back(s: _Search) -> _Search:
            """Out of evaluations: the best step with sufficient decrease, if any (or no
            step when the last one left the domain)."""
            use_safe = s.failed & ((s.safe.eta > 0.0) | jnp.isinf(s.decrease_error))
            if verbose:
                jax.lax.cond(
                    s.failed & (s.safe.eta > 0.0),
                    lambda: jax.debug.print(
                        "scale_by_zoom_linesearch: curvature condition not met; "
                        "taking the step {e} with sufficient decrease",
                        e=s.safe.eta,
                    ),
                    lambda: None,
                )
                jax.lax.cond(
                    s.failed & (s.safe.eta <= 0.0),
                    lambda: jax.debug.print(
                        "scale_by_zoom_linesearch: no step with sufficient decrease "
                        "(slope {s} at 0, last step {e})", s=slope0, e=s.last.eta,
                    ),
                    lambda: None,
                )  # fmt: skip
            return s._replace(
                last=pick(use_safe, s.safe, s.last), grad=pick(use_safe, s.safe_grad, s.grad)
            )

        def step(s: _Search) -> _Search:
            """One evaluation: at phase 1's or phase 2's trial step (both computed, one
            chosen, so that the objective and its gradient are compiled once)."""
            guess, at_max = bracket_trial(s)
            trial, width = zoom_trial(s)
            new, g = evaluate(jnp.where(s.bracketed, trial, guess))
            dec, curv = errors(new)
            s = pick(s.bracketed, zoom(s, new, g, dec, curv, width),
                     bracket(s, new, g, dec, curv, at_max))  # fmt: skip
            s = s._replace(
                count=_tree.safe_increment(s.count), last=new, grad=g,
                decrease_error=dec, curvature_error=curv,
            )  # fmt: skip
            return fall_back(s)

        if initial_guess_strategy == "one":
            eta0 = jnp.ones([], dtype)
        else:
            eta0 = jnp.asarray(state.learning_rate).astype(dtype)
        origin = _Point(jnp.zeros([], dtype), value0, slope0)
        grad = jax.tree.map(lambda x, p: x.astype(_tree.dtype_of(p)), grad, params)
        inf = jnp.full([], jnp.inf, dtype)
        start = _Search(
            count=_tree.zero_count(), last=origin, grad=grad, decrease_error=inf,
            curvature_error=inf, bracketed=jnp.asarray(False), done=jnp.asarray(False),
            failed=jnp.asarray(False), low=origin, high=origin, ref=origin, safe=origin,
            safe_grad=grad,
        )  # fmt: skip
        end = jax.lax.while_loop(lambda s: ~(s.done | s.failed), step, start)
        new_state = ScaleByZoomLinesearchState(
            learning_rate=end.last.eta,
            value=end.last.value,
            grad=end.grad,
            info=ZoomLinesearchInfo(
                num_linesearch_steps=end.count,
                decrease_error=end.decrease_error,
                curvature_error=end.curvature_error,
            ),
        )
        return _tree.scale_tree(updates, end.last.eta), new_state

    return transformation(init_fn, update_fn)
