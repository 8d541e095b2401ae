"""Every registered optimizer with its test configuration.

The battery in ``test_battery.py`` runs over ``REGISTRY``; adding an optimizer
means adding an ``Entry`` here (and a NumPy reference in ``references.py``).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import jax.numpy as jnp
import optax

import gradxform as gx
from gradxform import (
    adabelief,
    adadelta,
    adafactor,
    adamax,
    adamaxw,
    amsgrad,
    ftrl,
    lamb,
    lars,
    lion,
    nadam,
    nadamw,
    radam,
    sgd_nesterov_lookahead,
    sign_sgd,
    signum,
    yogi,
)
from tests import references as ref
from tests import references_lr_free as ref_lr_free


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
      rosenbrock: (learning_rate, steps) that must converge on Rosenbrock; the rate may be a
        schedule (sign methods need a decaying one to settle in the curved valley).
      converge_kwargs: overrides for the convergence runs (e.g. no weight decay,
        which would move the minimum).
    """

    id: str
    factory: Callable[..., Any]
    kwargs: dict[str, Any]
    reference: Callable[..., ref.Reference]
    optax_factory: Callable[..., Any] | None
    quadratic: tuple[float, int]
    rosenbrock: tuple[float | Callable[[Any], Any], int]
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


def mechanize_sgd(learning_rate: Any, **kwargs: Any) -> Any:
    """Mechanic around SGD (the battery's entry for the ``mechanize`` wrapper)."""
    return gx.mechanize(gx.sgd(learning_rate), **kwargs)


def mechanic_sgd_reference(learning_rate: Any, **kwargs: Any) -> Any:
    return ref_lr_free.Mechanic(lambda: ref.SGD(learning_rate), **kwargs)


def exponential(rate: float, decay: float) -> Callable[[Any], Any]:
    """The schedule ``rate * decay**t``."""
    return lambda t: rate * decay ** jnp.asarray(t).astype(jnp.float32)


REGISTRY: list[Entry] = [
    Entry(
        "sgd",
        gx.sgd,
        dict(learning_rate=0.1),
        ref.SGD,
        optax.sgd,
        quadratic=(0.015, 2000),
        rosenbrock=(2e-3, 20000),
    ),
    Entry(
        "sgd-momentum",
        gx.sgd,
        dict(learning_rate=0.05, momentum=0.9),
        ref.SGD,
        optax.sgd,
        quadratic=(0.01, 1000),
        rosenbrock=(5e-4, 10000),
    ),
    Entry(
        "sgd-nesterov",
        gx.sgd,
        dict(learning_rate=0.05, momentum=0.9, nesterov=True),
        ref.SGD,
        optax.sgd,
        quadratic=(0.01, 1000),
        rosenbrock=(5e-4, 10000),
    ),
    Entry(
        "adagrad",
        gx.adagrad,
        dict(learning_rate=0.3),
        ref.Adagrad,
        optax.adagrad,
        quadratic=(0.5, 2000),
        rosenbrock=(0.5, 10000),
    ),
    Entry(
        "adagrad-torch-eps",
        gx.adagrad,
        dict(learning_rate=0.3, initial_accumulator_value=0.0, eps=1e-10, eps_in_sqrt=False),
        ref.Adagrad,
        None,
        quadratic=(0.5, 2000),
        rosenbrock=(0.5, 10000),
    ),
    Entry(
        "rmsprop",
        gx.rmsprop,
        dict(learning_rate=0.01),
        ref.RMSProp,
        optax.rmsprop,
        quadratic=(0.01, 2000),
        rosenbrock=(1e-3, 10000),
    ),
    Entry(
        "rmsprop-centered-momentum",
        gx.rmsprop,
        dict(
            learning_rate=0.01, decay=0.95, eps=1e-6, centered=True, momentum=0.5, eps_in_sqrt=False
        ),
        ref.RMSProp,
        optax.rmsprop,
        quadratic=(0.01, 2000),
        rosenbrock=(1e-3, 10000),
    ),
    Entry(
        "adam",
        gx.adam,
        dict(learning_rate=0.01),
        ref.Adam,
        optax.adam,
        quadratic=(0.05, 2000),
        rosenbrock=(0.01, 10000),
    ),
    Entry(
        "adam-nesterov",
        gx.adam,
        dict(learning_rate=0.01, nesterov=True),
        ref.Adam,
        optax.adam,
        quadratic=(0.05, 2000),
        rosenbrock=(0.01, 10000),
    ),
    Entry(
        "adamw",
        gx.adamw,
        dict(learning_rate=0.01, weight_decay=0.1),
        ref.Adam,
        optax.adamw,
        quadratic=(0.05, 2000),
        rosenbrock=(0.01, 10000),
        converge_kwargs=dict(weight_decay=0.0),
    ),
    Entry(
        "adam-eps-uncorrected",
        gx.adam,
        dict(learning_rate=0.01, eps_uncorrected=True),
        ref.Adam,
        None,
        quadratic=(0.05, 2000),
        rosenbrock=(0.01, 10000),
    ),
    Entry(
        "adamw-decay-not-scaled",
        gx.adamw,
        dict(learning_rate=0.01, weight_decay=0.01, scale_decay_by_lr=False),
        ref.Adam,
        None,
        quadratic=(0.05, 2000),
        rosenbrock=(0.01, 10000),
        converge_kwargs=dict(weight_decay=0.0),
    ),
    Entry(
        "amsgrad",
        amsgrad,
        dict(learning_rate=0.01, amsgrad_max="raw"),
        functools.partial(ref.Adam, amsgrad=True),
        None,
        quadratic=(0.05, 2000),
        rosenbrock=(0.01, 10000),
    ),
    Entry(
        "amsgrad-corrected",
        amsgrad,
        dict(learning_rate=0.01, amsgrad_max="corrected"),
        functools.partial(ref.Adam, amsgrad=True),
        optax.amsgrad,
        optax_kwargs=dict(learning_rate=0.01),
        quadratic=(0.05, 2000),
        rosenbrock=(0.3, 10000),
    ),
    Entry(
        "adamax",
        adamax,
        dict(learning_rate=0.01),
        ref.Adamax,
        optax.adamax,
        quadratic=(0.05, 2000),
        rosenbrock=(0.01, 10000),
    ),
    Entry(
        "adamax-eps-in-max",
        adamax,
        dict(learning_rate=0.01, eps_in_max=True),
        ref.Adamax,
        None,
        quadratic=(0.05, 2000),
        rosenbrock=(0.01, 10000),
    ),
    Entry(
        "adamaxw",
        adamaxw,
        dict(learning_rate=0.01, weight_decay=0.1),
        ref.Adamax,
        optax.adamaxw,
        quadratic=(0.05, 2000),
        rosenbrock=(0.01, 10000),
        converge_kwargs=dict(weight_decay=0.0),
    ),
    Entry(
        "nadam",
        nadam,
        dict(learning_rate=0.01),
        functools.partial(ref.Adam, nesterov=True),
        optax.nadam,
        quadratic=(0.05, 2000),
        rosenbrock=(0.01, 10000),
    ),
    Entry(
        "nadam-dozat",
        nadam,
        dict(learning_rate=0.01, momentum_schedule="dozat"),
        functools.partial(ref.Adam, nesterov=True),
        None,
        quadratic=(0.05, 2000),
        rosenbrock=(0.01, 10000),
    ),
    Entry(
        "nadam-dozat-keras",
        nadam,
        dict(learning_rate=0.01, momentum_schedule="dozat", momentum_decay=1.0),
        functools.partial(ref.Adam, nesterov=True),
        None,
        quadratic=(0.05, 2000),
        rosenbrock=(0.01, 10000),
    ),
    Entry(
        "nadamw",
        nadamw,
        dict(learning_rate=0.01, weight_decay=0.1),
        functools.partial(ref.Adam, nesterov=True),
        optax.nadamw,
        quadratic=(0.05, 2000),
        rosenbrock=(0.01, 10000),
        converge_kwargs=dict(weight_decay=0.0),
    ),
    Entry(
        "nadamw-dozat",
        nadamw,
        dict(learning_rate=0.01, weight_decay=0.1, momentum_schedule="dozat"),
        functools.partial(ref.Adam, nesterov=True),
        None,
        quadratic=(0.05, 2000),
        rosenbrock=(0.01, 10000),
        converge_kwargs=dict(weight_decay=0.0),
    ),
    # b2 = 0.99: optax evaluates rho_t directly in float32, which for b2 = 0.999 loses
    # about four digits to cancellation (rho_inf = 1999) and drifts from the exact value by
    # more than the 1e-5 tolerance; gradxform's cancellation-free form matches the reference.
    Entry(
        "radam",
        radam,
        dict(learning_rate=0.01, b2=0.99),
        ref.RAdam,
        optax.radam,
        quadratic=(0.05, 2000),
        rosenbrock=(0.003, 10000),
    ),
    Entry(
        "radam-eps-uncorrected",
        radam,
        dict(learning_rate=0.01, eps_uncorrected=True),
        ref.RAdam,
        None,
        quadratic=(0.05, 2000),
        rosenbrock=(0.003, 10000),
    ),
    Entry(
        "adadelta",
        adadelta,
        dict(learning_rate=1.0, rho=0.9, eps=1e-6),
        ref.Adadelta,
        optax.adadelta,
        quadratic=(0.3, 2000),
        rosenbrock=(0.03, 10000),
    ),
    Entry(
        "adadelta-l2",
        adadelta,
        dict(learning_rate=0.5, rho=0.95, eps=1e-5, weight_decay=0.1),
        ref.Adadelta,
        optax.adadelta,
        quadratic=(0.3, 2000),
        rosenbrock=(0.03, 10000),
        converge_kwargs=dict(weight_decay=0.0, rho=0.9, eps=1e-6),
    ),
    # proximal_center="params": with the paper's "origin" the first step moves the N(0, 1)
    # battery weights to about 0, and that update (about -w) cannot be added to w without a
    # rounding error of one ulp of w (which jit, fusing multiply-adds, rounds differently).
    # The origin form is tested in test_zoo.py and against keras.
    Entry(
        "ftrl",
        ftrl,
        dict(
            learning_rate=0.5,
            l1=0.05,
            l2=0.01,
            l2_shrinkage=0.01,
            beta=0.5,
            proximal_center="params",
        ),
        ref.FTRL,
        None,
        quadratic=(0.5, 2000),
        rosenbrock=(0.5, 10000),
        converge_kwargs=dict(l1=0.0, l2=0.0, l2_shrinkage=0.0),
    ),
    Entry(
        "sgd-nesterov-lookahead",
        sgd_nesterov_lookahead,
        dict(learning_rate=0.05, momentum=0.9),
        ref.NesterovLookahead,
        optax.sgd,
        quadratic=(0.01, 1000),
        rosenbrock=(5e-4, 10000),
    ),
    Entry(
        "lion",
        lion,
        dict(learning_rate=0.01, weight_decay=0.1),
        ref.Lion,
        optax.lion,
        quadratic=(0.001, 2000),
        rosenbrock=(0.001, 10000),
        converge_kwargs=dict(weight_decay=0.0),
    ),
    Entry(
        "lamb",
        lamb,
        dict(learning_rate=0.01, weight_decay=0.1),
        ref.LAMB,
        optax.lamb,
        quadratic=(0.05, 2000),
        rosenbrock=(0.003, 10000),
        converge_kwargs=dict(weight_decay=0.0),
    ),
    Entry(
        "lars",
        lars,
        dict(learning_rate=0.5, weight_decay=0.1, trust_coefficient=0.02),
        ref.LARS,
        optax.lars,
        quadratic=(1.0, 2000),
        rosenbrock=(0.1, 10000),
        converge_kwargs=dict(weight_decay=0.0),
    ),
    Entry(
        "lars-nesterov",
        lars,
        dict(learning_rate=0.5, trust_coefficient=0.02, eps=1e-3, nesterov=True),
        ref.LARS,
        optax.lars,
        quadratic=(1.0, 2000),
        rosenbrock=(0.1, 10000),
    ),
    Entry(
        "adafactor",
        adafactor,
        dict(learning_rate=0.05, min_dim_size_to_factor=1),
        ref.Adafactor,
        optax.adafactor,
        quadratic=(0.05, 2000),
        rosenbrock=(0.01, 10000),
    ),
    Entry(
        "adafactor-unfactored",
        adafactor,
        dict(learning_rate=0.05, clipping_threshold=None, multiply_by_parameter_scale=False),
        ref.Adafactor,
        None,
        quadratic=(0.05, 2000),
        rosenbrock=(0.01, 10000),
    ),
    Entry(
        "sign-sgd",
        sign_sgd,
        dict(learning_rate=0.01),
        ref.SignSGD,
        optax.sign_sgd,
        quadratic=(0.01, 2000),
        rosenbrock=(exponential(0.01, 0.999), 10000),
    ),
    Entry(
        "signum",
        signum,
        dict(learning_rate=0.01),
        ref.Signum,
        optax.signum,
        quadratic=(0.001, 2000),
        rosenbrock=(5e-4, 10000),
    ),
    Entry(
        "adabelief",
        adabelief,
        dict(learning_rate=0.01),
        ref.AdaBelief,
        optax.adabelief,
        quadratic=(0.05, 2000),
        rosenbrock=(0.01, 10000),
    ),
    # not optax.yogi: optax starts the first moment at initial_accumulator_value (1e-6) too,
    # where the paper (and gradxform) start it at 0.
    Entry(
        "yogi",
        yogi,
        dict(learning_rate=0.01),
        ref.Yogi,
        None,
        quadratic=(0.05, 2000),
        rosenbrock=(0.01, 10000),
    ),
    # lr_free: learning-rate-free optimizers. Their estimate d is a sum over the whole
    # tree, so their references are TreeReferences. b2 = 0.99: 1 - b2 for b2 = 0.999 is
    # off by 1.3e-5 relative once b2 is rounded to float32, which alone takes the whole
    # 1e-5 tolerance; estim_lr0 = 0.1: with the default 1e-6 the first steps are 1e-6,
    # and x0 - x (which Prodigy's estimate reads from the params) carries the rounding of
    # the float32 params, one ulp of a weight, far more than 1e-5 of such a step.
    Entry(
        "prodigy",
        gx.prodigy,
        dict(learning_rate=1.0, betas=(0.9, 0.99), estim_lr0=0.1, estim_lr_coef=3.0, beta3=0.9),
        ref_lr_free.Prodigy,
        optax.contrib.prodigy,
        quadratic=(0.01, 2000),
        rosenbrock=(0.01, 10000),
    ),
    Entry(
        "prodigy-package-defaults",
        gx.prodigy,
        dict(
            learning_rate=0.5,
            betas=(0.9, 0.99),
            estim_lr0=0.1,
            weight_decay=0.1,
            safeguard_warmup=True,
            use_bias_correction=False,
        ),
        ref_lr_free.Prodigy,
        None,
        quadratic=(0.1, 2000),
        rosenbrock=(0.1, 10000),
        converge_kwargs=dict(weight_decay=0.0),
    ),
    Entry(
        "dadapt-adamw",
        gx.dadapt_adamw,
        dict(learning_rate=1.0, betas=(0.9, 0.99), estim_lr0=0.1, weight_decay=0.1),
        ref_lr_free.DAdaptAdamW,
        optax.contrib.dadapt_adamw,
        quadratic=(0.1, 2000),
        rosenbrock=(0.1, 10000),
        converge_kwargs=dict(weight_decay=0.0),
    ),
    Entry(
        "dadapt-adamw-package",
        gx.dadapt_adamw,
        dict(
            learning_rate=0.5,
            betas=(0.9, 0.99),
            estim_lr0=0.01,
            growth_rate=1.2,
            use_bias_correction=False,
        ),
        ref_lr_free.DAdaptAdamW,
        None,
        quadratic=(0.05, 2000),
        rosenbrock=(0.1, 10000),
    ),
    Entry(
        "dadapt-sgd",
        gx.dadapt_sgd,
        dict(learning_rate=1.0, d0=0.1),
        ref_lr_free.DAdaptSGD,
        None,
        quadratic=(1.0, 2000),
        rosenbrock=(exponential(1.0, 0.9995), 10000),
    ),
    Entry(
        "dadapt-sgd-momentum",
        gx.dadapt_sgd,
        dict(learning_rate=0.5, d0=0.01, momentum=0.5, weight_decay=0.1, growth_rate=1.2),
        ref_lr_free.DAdaptSGD,
        None,
        quadratic=(1.0, 2000),
        rosenbrock=(exponential(1.0, 0.9995), 10000),
        converge_kwargs=dict(weight_decay=0.0),
    ),
    # s_init = 1: Mechanic's Delta is read back from the params, (x0 - x) / S; with the
    # default 1e-6 it carries the float32 rounding of the params (see above). optax's
    # mechanize is compared in test_parity_lr_free.py (it forms its update as
    # new_params - params, which rounds to an ulp of the params).
    Entry(
        "mechanize-sgd",
        mechanize_sgd,
        dict(learning_rate=0.1, s_init=1.0, weight_decay=0.0),
        mechanic_sgd_reference,
        None,
        quadratic=(1e-3, 20000),
        rosenbrock=(1e-3, 50000),
        converge_kwargs=dict(s_init=0.01),
    ),
]
