"""Every registered optimizer with its test configuration.

The battery in ``test_battery.py`` runs over ``REGISTRY``; adding an optimizer
means adding an ``Entry`` here (and a NumPy reference in ``references.py``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import optax

import gradxform as gx
from tests import references as ref


@dataclasses.dataclass(frozen=True)
class Entry:
    """One optimizer configuration.

    Attributes:
      id: test id.
      factory: the gradxform factory.
      kwargs: its arguments for the battery (including ``learning_rate``).
      reference: the NumPy reference class, called with ``kwargs``.
      optax_factory: optax's same-named optimizer, or None; called with ``optax_kwargs``.
      optax_kwargs: optax's spelling of ``kwargs`` (defaults to ``kwargs``).
      quadratic: (learning_rate, steps) that must converge on the ill-conditioned quadratic.
      rosenbrock: (learning_rate, steps) that must converge on Rosenbrock.
      converge_kwargs: overrides for the convergence runs (e.g. no weight decay,
        which would move the minimum).
    """

    id: str
    factory: Callable[..., Any]
    kwargs: dict[str, Any]
    reference: Callable[..., ref.Reference]
    optax_factory: Callable[..., Any] | None
    quadratic: tuple[float, int]
    rosenbrock: tuple[float, int]
    optax_kwargs: dict[str, Any] | None = None
    converge_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)

    def make(self, **overrides: Any) -> gx.GradientTransformation:
        return self.factory(**{**self.kwargs, **overrides})

    def make_reference(self) -> ref.Reference:
        return self.reference(**self.kwargs)

    def make_optax(self) -> Any:
        assert self.optax_factory is not None
        kw = self.kwargs if self.optax_kwargs is None else self.optax_kwargs
        return self.optax_factory(**kw)


REGISTRY: list[Entry] = [
    Entry("sgd", gx.sgd, dict(learning_rate=0.1), ref.SGD, optax.sgd,
          quadratic=(0.015, 2000), rosenbrock=(2e-3, 20000)),
    Entry("sgd-momentum", gx.sgd, dict(learning_rate=0.05, momentum=0.9), ref.SGD, optax.sgd,
          quadratic=(0.01, 1000), rosenbrock=(5e-4, 10000)),
    Entry("sgd-nesterov", gx.sgd, dict(learning_rate=0.05, momentum=0.9, nesterov=True),
          ref.SGD, optax.sgd, quadratic=(0.01, 1000), rosenbrock=(5e-4, 10000)),
    Entry("adagrad", gx.adagrad, dict(learning_rate=0.3), ref.Adagrad, optax.adagrad,
          quadratic=(0.5, 2000), rosenbrock=(0.5, 10000)),
    Entry("adagrad-torch-eps", gx.adagrad,
          dict(learning_rate=0.3, initial_accumulator_value=0.0, eps=1e-10, eps_in_sqrt=False),
          ref.Adagrad, None, quadratic=(0.5, 2000), rosenbrock=(0.5, 10000)),
    Entry("rmsprop", gx.rmsprop, dict(learning_rate=0.01), ref.RMSProp, optax.rmsprop,
          quadratic=(0.01, 2000), rosenbrock=(1e-3, 10000)),
    Entry("rmsprop-centered-momentum", gx.rmsprop,
          dict(learning_rate=0.01, decay=0.95, eps=1e-6, centered=True, momentum=0.5,
               eps_in_sqrt=False),
          ref.RMSProp, optax.rmsprop, quadratic=(0.01, 2000), rosenbrock=(1e-3, 10000)),
    Entry("adam", gx.adam, dict(learning_rate=0.01), ref.Adam, optax.adam,
          quadratic=(0.05, 2000), rosenbrock=(0.01, 10000)),
    Entry("adam-nesterov", gx.adam, dict(learning_rate=0.01, nesterov=True), ref.Adam,
          optax.adam, quadratic=(0.05, 2000), rosenbrock=(0.01, 10000)),
    Entry("adamw", gx.adamw, dict(learning_rate=0.01, weight_decay=0.1), ref.Adam, optax.adamw,
          quadratic=(0.05, 2000), rosenbrock=(0.01, 10000),
          converge_kwargs=dict(weight_decay=0.0)),
]
