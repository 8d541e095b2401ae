"""L-BFGS: the L-BFGS direction, a learning rate and a line search."""

from __future__ import annotations

from typing import Any

from gradxform import _checks
from gradxform._base import GradientTransformation, ScalarOrSchedule, chain, identity
from gradxform._transforms.lbfgs import scale_by_lbfgs
from gradxform._transforms.scaling import scale, scale_by_learning_rate
from gradxform._transforms.zoom import scale_by_zoom_linesearch

# The default line search (optax's): the strong Wolfe conditions, starting at a step of 1.
_DEFAULT_LINESEARCH = scale_by_zoom_linesearch(
    max_linesearch_steps=20, initial_guess_strategy="one"
)


def lbfgs(
    learning_rate: ScalarOrSchedule | None = None,
    memory_size: int = 10,
    scale_init_precond: bool = True,
    linesearch: Any = _DEFAULT_LINESEARCH,
) -> GradientTransformation:
    r"""L-BFGS (Liu & Nocedal, 1989): a limited-memory quasi-Newton method with a line search.

    .. math::

        w_{k+1} = w_k - \eta_k\, \alpha\, H_k \nabla f(w_k),

    with ``H_k`` the inverse-Hessian approximation of :func:`scale_by_lbfgs` (the last
    ``memory_size`` pairs of differences of params and gradients, two-loop recursion of
    Nocedal & Wright, *Numerical Optimization*, 1999, Alg. 7.4), ``alpha`` the
    ``learning_rate`` (1 when ``None``) and ``eta_k`` the step chosen by ``linesearch``
    (by default :func:`scale_by_zoom_linesearch` with 20 evaluations starting at 1, which
    satisfies the strong Wolfe conditions; ``None``: ``eta_k = 1``). It is
    ``chain(scale_by_lbfgs(memory_size, scale_init_precond), scale_by_learning_rate(
    learning_rate) or scale(-1), linesearch)``.

    ``update`` takes ``value=f(w)``, ``grad=grad f(w)`` and ``value_fn=f`` for the line
    search; :func:`value_and_grad_from_state` reuses the value and gradient that the
    line search computed at the new params.

    Args:
      learning_rate: a scale ``alpha`` of the direction (a number or a schedule), or
        ``None`` for 1.
      memory_size: the number of pairs kept, an int ``>= 1``.
      scale_init_precond: scale the initial inverse Hessian by
        ``<s, y> / <y, y>`` of the last pair (else the identity).
      linesearch: a line search transformation (:func:`scale_by_zoom_linesearch`,
        :func:`scale_by_backtracking_linesearch`) or ``None``.

    Example:
      >>> import jax, jax.numpy as jnp, gradxform as gx
      >>> f = lambda w: jnp.sum((w - 1.0) ** 2) + jnp.sum(w ** 4)
      >>> tx = gx.lbfgs()
      >>> value_and_grad = gx.value_and_grad_from_state(f)
      >>> @jax.jit
      ... def step(w, state):
      ...     v, g = value_and_grad(w, state=state)
      ...     u, state = tx.update(g, state, w, value=v, grad=g, value_fn=f)
      ...     return gx.apply_updates(w, u), state
      >>> w = jnp.zeros(3)
      >>> state = tx.init(w)
      >>> for _ in range(8):
      ...     w, state = step(w, state)
      >>> w.round(4)
      Array([0.5898, 0.5898, 0.5898], dtype=float32)
    """
    base = scale(-1.0) if learning_rate is None else scale_by_learning_rate(learning_rate)
    if linesearch is None:
        linesearch = identity()
    else:
        _checks.transformation("linesearch", linesearch)
    return chain(scale_by_lbfgs(memory_size, scale_init_precond), base, linesearch)
