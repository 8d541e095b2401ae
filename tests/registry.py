"""Every registered optimizer with its test configuration.

The battery in ``test_battery.py`` runs over ``REGISTRY``; adding an optimizer
means adding an ``Entry`` here (and a NumPy reference in ``references.py``).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import warnings
from collections.abc import Callable
from typing import Any

import jax
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
from gradxform._base import transformation
from tests import references as ref
from tests import references_adam_refinements as ref_ar
from tests import references_lr_free as ref_lr_free
from tests import references_lr_free_2 as ref_lr_free_2
from tests import references_misc as misc
from tests import references_muon as ref_muon
from tests import references_privacy as ref_privacy
from tests import references_psgd as ref_psgd
from tests import references_schedule_free as ref_sf
from tests import references_shampoo_soap as ref_shampoo
from tests import references_sophia_sam as ref_ss


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
      quadratic: (learning_rate, steps) that must converge on the ill-conditioned quadratic;
        the rate may be a schedule (a whitened direction settles at a constant rate's scale).
      rosenbrock: (learning_rate, steps) that must converge on Rosenbrock; the rate may be a
        schedule (sign methods need a decaying one to settle in the curved valley).
      converge_kwargs: overrides for the convergence runs (e.g. no weight decay,
        which would move the minimum).
      atol: the absolute tolerance of the update comparisons (reference, optax, jit), for
        updates computed as a difference of weights, ``x_{t+1} - x_t`` (COCOB): such an
        update absorbs the rounding of the weight it is applied to, up to half an ulp of
        the weight; and for updates that depend on the params' values with a weight of
        order one (Schedule-Free's ``c (z - y)``), where jit and eager can round ``y``
        one ulp apart. ``None`` keeps the battery's defaults.
      reads_loss: the optimizer reads the loss (``update(..., value=)``, or Sophia's
        ``obj_fn=``, which it differentiates): its battery factory and reference take
        ``loss``, a function of the params that both sides evaluate at every step (by
        default :func:`battery_loss`; Sophia's :func:`curvature_loss`).
    """

    id: str
    factory: Callable[..., Any]
    kwargs: dict[str, Any]
    reference: Callable[..., ref.Reference]
    optax_factory: Callable[..., Any] | None
    quadratic: tuple[float | Callable[[Any], Any], int]
    rosenbrock: tuple[float | Callable[[Any], Any], int]
    optax_kwargs: dict[str, Any] | None = None
    converge_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    atol: float | None = None
    reads_loss: bool = False

    def objective(self, fn: Callable[[Any], Any]) -> dict[str, Any]:
        """``loss=fn`` for an optimizer that reads the loss (its factory and reference take
        ``loss``, a function of the params): a convergence run feeds it the loss of the
        problem it minimizes. Nothing for the others."""
        return {"loss": fn} if self.reads_loss else {}

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


def cautious_adamw(
    learning_rate: Any,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: Any = 1e-4,
) -> gx.GradientTransformation:
    """C-AdamW: the Cautious mask around AdamW."""
    return gx.cautious(gx.adamw(learning_rate, b1, b2, eps, weight_decay=weight_decay))


def cautious_lion(
    learning_rate: Any, b1: float = 0.9, b2: float = 0.99, weight_decay: Any = 1e-3
) -> gx.GradientTransformation:
    """C-Lion: the Cautious mask around Lion."""
    return gx.cautious(gx.lion(learning_rate, b1, b2, weight_decay=weight_decay))


def schedule_free_rmsprop(learning_rate: float, **kwargs: Any) -> gx.GradientTransformation:
    """``schedule_free`` over RMSProp (the wrapper over a base optimizer without momentum)."""
    return gx.schedule_free(gx.rmsprop(learning_rate, decay=0.9, eps=1e-3), learning_rate, **kwargs)


def schedule_free_rmsprop_reference(learning_rate: float, **kwargs: Any) -> ref.Reference:
    return ref_sf.ScheduleFree(
        ref.RMSProp(learning_rate, decay=0.9, eps=1e-3), learning_rate, **kwargs
    )


def exponential(rate: float, decay: float) -> Callable[[Any], Any]:
    """The schedule ``rate * decay**t``."""
    return lambda t: rate * decay ** jnp.asarray(t).astype(jnp.float32)


def optax_optimistic_adam(*args: Any, **kwargs: Any) -> Any:
    """``optax.optimistic_adam`` without its deprecation warning (it points to the v2 form)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return optax.optimistic_adam(*args, **kwargs)


def battery_loss(params: Any) -> Any:
    """The loss fed to the optimizers that read one: ``1 + ||x||^2 / 2`` over the float
    leaves of the tree. Written with array methods only, so it evaluates the same way on
    a JAX tree (float32, traced) and on the references' NumPy leaves (float64)."""
    leaves = [p for p in jax.tree.leaves(params) if jnp.issubdtype(p.dtype, jnp.floating)]
    return 1.0 + 0.5 * sum((p * p).sum() for p in leaves)


def fed_loss(tx: Any, loss: Callable[[Any], Any]) -> gx.GradientTransformation:
    """``tx`` given ``value=loss(params)`` at every update: the battery's training loop for
    an optimizer that reads the loss (MoMo, Polyak's step). It declares what ``tx``
    declares (the loss is a sum over the whole tree: ``flat`` may concatenate)."""

    def update(updates: Any, state: Any, params: Any = None, **extra: Any) -> Any:
        return tx.update(updates, state, params, value=loss(params), **extra)

    return transformation(tx.init, update, inner=[tx])


class FedLoss(ref.TreeReference):
    """A loss-reading reference given ``value=loss(params)`` at every step."""

    def __init__(self, inner: Any, loss: Callable[[Any], Any]):
        self.inner, self.loss = inner, loss

    def init(self, ps: Any) -> Any:
        return self.inner.init(ps)

    def step(self, gs: Any, s: Any, ps: Any, **extra: Any) -> Any:
        return self.inner.step(gs, s, ps, value=float(self.loss(ps)), **extra)

    def after(self, s: Any, count: int) -> Any:
        return self.inner.after(s, count)


def polyak_sgd_fed(
    learning_rate: Any,
    scaling: Any = 1.0,
    f_min: Any = 0.0,
    eps: Any = 0.0,
    variant: str = "sps",
    *,
    loss: Callable[[Any], Any] = battery_loss,
) -> gx.GradientTransformation:
    """``polyak_sgd`` with its step cap as the battery's ``learning_rate``, fed the loss."""
    tx = gx.polyak_sgd(learning_rate, scaling, f_min, eps, variant)
    return fed_loss(tx, loss)


def polyak_sgd_fed_reference(learning_rate: Any, *, loss: Any = battery_loss, **kw: Any) -> Any:
    return FedLoss(ref_lr_free_2.Polyak(learning_rate, **kw), loss)


def optax_polyak_sgd_fed(learning_rate: Any, **kw: Any) -> Any:
    return fed_loss(optax.polyak_sgd(learning_rate, **kw), battery_loss)


@functools.wraps(gx.momo)
def momo_fed(*args: Any, loss: Callable[[Any], Any] = battery_loss, **kw: Any) -> Any:
    return fed_loss(gx.momo(*args, **kw), loss)


@functools.wraps(gx.momo_adam)
def momo_adam_fed(*args: Any, loss: Callable[[Any], Any] = battery_loss, **kw: Any) -> Any:
    return fed_loss(gx.momo_adam(*args, **kw), loss)


def fed_reference(inner: Callable[..., Any]) -> Callable[..., Any]:
    """The reference class ``inner``, fed the loss (``loss=`` as the factories take it)."""
    return lambda *a, loss=battery_loss, **kw: FedLoss(inner(*a, **kw), loss)


def optax_fed(factory: Callable[..., Any]) -> Callable[..., Any]:
    """optax's ``factory``, fed the battery's loss."""
    return lambda *a, **kw: fed_loss(factory(*a, **kw), battery_loss)


@functools.wraps(gx.dpsgd)
def dpsgd_on_examples(*args: Any, **kwargs: Any) -> gx.GradientTransformation:
    # dpsgd fed the batch of examples that per_example_view makes of each gradient
    return gx.chain(ref_privacy.per_example_view(), gx.dpsgd(*args, **kwargs))


def dpsgd_on_examples_reference(*args: Any, **kwargs: Any) -> ref.TreeReference:
    return ref_privacy.PerExample(ref_privacy.DPSGD(*args, **kwargs))


def optax_dpsgd_on_examples(*args: Any, **kwargs: Any) -> Any:
    """optax.contrib.dpsgd, without the warning it gives passing its seed on under a
    deprecated name (test_parity_privacy.py checks that warning)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        dpsgd = optax.contrib.dpsgd(*args, **kwargs)
    return optax.chain(ref_privacy.per_example_view(), dpsgd)


# The convergence runs of DP-SGD: no noise, a bound no example reaches, so that the
# averaged example gradient (a multiple of the gradient: the shifts sum to zero) descends.
DP_CONVERGE = dict(l2_norm_clip=1e6, noise_multiplier=0.0)


# Half an ulp of a float32 weight of size below 4 (the battery's weights are standard
# normal draws): the rounding a weight-difference update (COCOB's) absorbs.
WEIGHT_ULP = 2.5e-7

# Muon's absolute tolerance: measured gaps of 2.7e-8 (see the Muon entries).
MUON_ATOL = 5e-8

# Shampoo's absolute tolerance: float32 eigendecompositions against float64 ones, the
# inverse fourth roots amplifying the statistics' rounding; measured gaps of 1.1e-7 on
# updates of size 0.2 (see the Shampoo entry).
SHAMPOO_ATOL = 3e-7

# ------------------------------------------------------------------ Sophia and SAM


def curvature_loss(params: Any) -> Any:
    """The loss whose Hessian Sophia's battery entry estimates: ``1 + ||x||^2 / 2 +
    sum(x^4) / 12 + 0.02 (sum x)^2`` over the float leaves. Its Hessian ``I + diag(x^2) +
    0.04 * ones`` changes with the params and couples every pair of coordinates, so
    Hutchinson's estimate depends on the probe (the reference draws the same probes).
    Array methods only, as :func:`battery_loss`."""
    leaves = [p for p in jax.tree.leaves(params) if jnp.issubdtype(p.dtype, jnp.floating)]
    total = sum(p.sum() for p in leaves)
    return (
        1.0
        + 0.5 * sum((p * p).sum() for p in leaves)
        + sum((p * p * p * p).sum() for p in leaves) / 12.0
        + 0.02 * total * total
    )


def fed_obj_fn(tx: Any, loss: Callable[[Any], Any]) -> gx.GradientTransformation:
    """``tx`` given ``obj_fn=loss`` at every update: the battery's training loop for
    Sophia-H, whose Hutchinson estimator differentiates the loss (a Hessian-vector product
    at the params of the step). Declared per-leaf: the loss is a function of the tree."""

    def update(updates: Any, state: Any, params: Any = None, **extra: Any) -> Any:
        return tx.update(updates, state, params, obj_fn=loss, **extra)

    return transformation(tx.init, update, per_leaf="fed_obj_fn", inner=[tx])


# The seed of the battery's Hutchinson probes (both sides draw from it).
SOPHIA_SEED = 7


@functools.wraps(gx.sophia)
def sophia_fed(
    *args: Any, loss: Callable[[Any], Any] = curvature_loss, **kw: Any
) -> gx.GradientTransformation:
    """Sophia-H with the probes of ``SOPHIA_SEED``, fed ``obj_fn=loss``
    (:func:`curvature_loss`; a convergence run feeds its problem). It shows sophia's
    signature, so the property tests draw its hyperparameters."""
    signature = inspect.signature(gx.sophia)
    bound = signature.bind(*args, **kw)
    default = signature.parameters["hessian_diagonal_fn"].default
    if bound.arguments.get("hessian_diagonal_fn", default) is default:
        bound.arguments["hessian_diagonal_fn"] = gx.hutchinson_estimator_diag_hessian(SOPHIA_SEED)
    return fed_obj_fn(gx.sophia(*bound.args, **bound.kwargs), loss)


def optax_sophia_fed(learning_rate: Any, **kw: Any) -> Any:
    estimator = optax.contrib.hutchinson_estimator_diag_hessian(jax.random.PRNGKey(SOPHIA_SEED))
    tx = fed_obj_fn(
        optax.contrib.sophia(learning_rate, hessian_diagonal_fn=estimator, **kw), curvature_loss
    )
    # optax runs its Hessian refresh under lax.cond, which compiles at every eager call:
    # its update is compiled once here
    return optax.GradientTransformation(tx.init, jax.jit(tx.update))


def sophia_reference(*args: Any, loss: Any = curvature_loss, **kw: Any) -> Any:
    return ref_ss.Sophia(*args, loss=loss, random_seed=SOPHIA_SEED, **kw)


def sam_sgd(
    learning_rate: Any,
    rho: float = 0.05,
    momentum: float = 0.9,
    adv_momentum: float = 0.0,
    sync_period: int = 2,
    reset_state: bool = True,
) -> gx.GradientTransformation:
    """SAM as optax.contrib documents it: ``sam(sgd(lr, momentum), chain(normalize(),
    sgd(rho, adv_momentum)))``; each call is one gradient (ascent or outer step)."""
    adv = gx.chain(gx.normalize(), gx.sgd(rho, momentum=adv_momentum))
    return gx.sam(gx.sgd(learning_rate, momentum=momentum), adv, sync_period, reset_state)


def optax_sam_sgd(
    learning_rate: Any,
    rho: float = 0.05,
    momentum: float = 0.9,
    adv_momentum: float = 0.0,
    sync_period: int = 2,
    reset_state: bool = True,
) -> Any:
    adv = optax.chain(optax.contrib.normalize(), optax.sgd(rho, momentum=adv_momentum))
    outer = optax.sgd(learning_rate, momentum=momentum)
    return optax.contrib.sam(outer, adv, sync_period, reset_state)


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
    # More optimizers: Rprop, SM3, optimistic gradient methods, noisy SGD, Fromage, MADGRAD,
    # ACProp.
    Entry(
        "rprop",
        gx.rprop,
        dict(learning_rate=0.01),
        misc.Rprop,
        optax.rprop,
        quadratic=(0.01, 2000),
        rosenbrock=(0.01, 10000),
    ),
    Entry(
        "rprop-immediate",
        gx.rprop,
        dict(
            learning_rate=0.02,
            eta_minus=0.4,
            eta_plus=1.3,
            min_step_size=1e-3,
            max_step_size=0.5,
            immediate=True,
        ),
        misc.Rprop,
        None,
        quadratic=(0.01, 2000),
        rosenbrock=(0.01, 10000),
        converge_kwargs=dict(min_step_size=1e-6),
    ),
    # not optax.sm3: optax's scale_by_sm3 fails on scalar leaves (the battery's "scale");
    # test_parity_misc.py compares with it on matrices and vectors.
    Entry(
        "sm3",
        gx.sm3,
        dict(learning_rate=0.1),
        misc.SM3,
        None,
        quadratic=(0.1, 2000),
        rosenbrock=(0.3, 10000),
    ),
    Entry(
        "sm3-no-momentum",
        gx.sm3,
        dict(learning_rate=0.05, momentum=0.0),
        misc.SM3,
        None,
        quadratic=(0.1, 2000),
        rosenbrock=(0.3, 10000),
    ),
    Entry(
        "optimistic-gd",
        gx.optimistic_gradient_descent,
        dict(learning_rate=0.05),
        misc.Optimistic,
        optax.optimistic_gradient_descent,
        quadratic=(0.005, 2000),
        rosenbrock=(1e-3, 20000),
        converge_kwargs=dict(beta=0.5),
    ),
    Entry(
        "optimistic-gd-alpha-beta",
        gx.optimistic_gradient_descent,
        dict(learning_rate=0.05, alpha=0.5, beta=2.0),
        misc.Optimistic,
        optax.optimistic_gradient_descent,
        quadratic=(0.005, 2000),
        rosenbrock=(1e-3, 20000),
        converge_kwargs=dict(alpha=1.0, beta=0.5),
    ),
    Entry(
        "optimistic-adam",
        gx.optimistic_adam,
        dict(learning_rate=0.01),
        misc.optimistic_adam,
        optax_optimistic_adam,
        quadratic=(0.01, 2000),
        rosenbrock=(0.01, 10000),
    ),
    Entry(
        "optimistic-adam-v2",
        gx.optimistic_adam_v2,
        dict(learning_rate=0.01, alpha=0.5, beta=0.5, nesterov=False),
        misc.optimistic_adam_v2,
        optax.optimistic_adam_v2,
        quadratic=(0.01, 2000),
        rosenbrock=(0.01, 10000),
    ),
    # eta = 0: the battery needs a deterministic trajectory; the noise itself is checked
    # against optax draw for draw (same key) and statistically in test_parity_misc.py.
    Entry(
        "noisy-sgd",
        gx.noisy_sgd,
        dict(learning_rate=0.1, eta=0.0, key=0),
        misc.NoiselessSGD,
        optax.noisy_sgd,
        quadratic=(0.015, 2000),
        rosenbrock=(2e-3, 20000),
    ),
    Entry(
        "fromage",
        gx.fromage,
        dict(learning_rate=0.1),
        misc.Fromage,
        optax.fromage,
        quadratic=(0.01, 2000),
        rosenbrock=(exponential(0.1, 0.999), 10000),
        # Fromage shrinks the weights by 1 / sqrt(1 + eta**2) even where the gradient is 0:
        # the zero-gradient check (which uses converge_kwargs) runs at eta = 0; the
        # convergence runs set their own rate.
        converge_kwargs=dict(learning_rate=0.0),
    ),
    # not optax.contrib.madgrad within 1e-5: optax forms x_{k+1} - x_k as the difference of
    # two float32 iterates (test_parity_misc.py compares at the tolerance that leaves).
    Entry(
        "madgrad",
        gx.madgrad,
        dict(learning_rate=0.01, weight_decay=0.1),
        misc.Madgrad,
        None,
        quadratic=(0.01, 2000),
        rosenbrock=(0.01, 10000),
        converge_kwargs=dict(weight_decay=0.0),
    ),
    Entry(
        "acprop",
        gx.acprop,
        dict(learning_rate=0.01),
        misc.ACProp,
        optax.contrib.acprop,
        quadratic=(0.01, 2000),
        rosenbrock=(0.003, 10000),
    ),
    Entry(
        "acprop-decay",
        gx.acprop,
        dict(learning_rate=0.01, b1=0.5, b2=0.9, eps=1e-3, eps_root=1e-4, weight_decay=0.1),
        misc.ACProp,
        optax.contrib.acprop,
        quadratic=(0.003, 2000),
        rosenbrock=(0.003, 10000),
        converge_kwargs=dict(weight_decay=0.0),
    ),
    # Adam refinements: ADOPT, AdEMAMix, simplified AdEMAMix, Cautious, Adan, NovoGrad, MARS
    Entry(
        "adopt",
        gx.adopt,
        dict(learning_rate=0.01),
        ref_ar.ADOPT,
        optax.contrib.adopt,
        quadratic=(0.05, 2000),
        rosenbrock=(0.1, 20000),
    ),
    Entry(
        "adopt-nesterov-unclipped",
        gx.adopt,
        dict(learning_rate=0.01, b1=0.8, b2=0.99, eps=1e-3, nesterov=True, use_clipping=False),
        ref_ar.ADOPT,
        optax.contrib.adopt,
        quadratic=(0.05, 2000),
        rosenbrock=(0.003, 20000),
    ),
    Entry(
        "ademamix",
        gx.ademamix,
        dict(learning_rate=0.01, b3=0.99, weight_decay=0.1),
        ref_ar.AdEMAMix,
        optax.contrib.ademamix,
        quadratic=(0.01, 3000),
        rosenbrock=(0.01, 20000),
        converge_kwargs=dict(weight_decay=0.0),
    ),
    Entry(
        "simplified-ademamix",
        gx.simplified_ademamix,
        dict(learning_rate=0.01, b1=0.9, alpha=2.0, weight_decay=0.1),
        ref_ar.SimplifiedAdEMAMix,
        optax.contrib.simplified_ademamix,
        quadratic=(0.003, 3000),
        rosenbrock=(0.001, 20000),
        converge_kwargs=dict(weight_decay=0.0),
    ),
    Entry(
        "cautious-adamw",
        cautious_adamw,
        dict(learning_rate=0.01, weight_decay=0.1),
        lambda **kw: ref_ar.Cautious(ref.Adam(**kw)),
        None,
        quadratic=(0.05, 2000),
        rosenbrock=(0.01, 10000),
        converge_kwargs=dict(weight_decay=0.0),
    ),
    Entry(
        "cautious-lion",
        cautious_lion,
        dict(learning_rate=0.01, weight_decay=0.1),
        lambda **kw: ref_ar.Cautious(ref.Lion(**kw)),
        None,
        quadratic=(0.001, 2000),
        rosenbrock=(0.001, 10000),
        converge_kwargs=dict(weight_decay=0.0),
    ),
    Entry(
        "adan",
        gx.adan,
        dict(learning_rate=0.01, weight_decay=0.1),
        ref_ar.Adan,
        optax.adan,
        quadratic=(0.03, 3000),
        rosenbrock=(0.01, 20000),
        converge_kwargs=dict(weight_decay=0.0),
    ),
    Entry(
        "adan-paper-weight",
        gx.adan,
        dict(learning_rate=0.01, b2=0.8, eps_root=0.0, diff_weight="b2"),
        ref_ar.Adan,
        None,
        quadratic=(0.01, 3000),
        rosenbrock=(0.003, 20000),
    ),
    Entry(
        "novograd",
        gx.novograd,
        dict(learning_rate=0.01, weight_decay=0.1),
        ref_ar.NovoGrad,
        optax.novograd,
        quadratic=(0.003, 3000),
        rosenbrock=(0.001, 20000),
        converge_kwargs=dict(weight_decay=0.0),
    ),
    Entry(
        "novograd-averaging",
        gx.novograd,
        dict(learning_rate=0.01, b1=0.8, b2=0.5, grad_averaging=True),
        ref_ar.NovoGrad,
        None,
        quadratic=(0.01, 3000),
        rosenbrock=(0.01, 20000),
    ),
    Entry(
        "mars",
        gx.mars,
        dict(learning_rate=0.01, weight_decay=0.1),
        ref_ar.MARS,
        None,
        quadratic=(0.03, 3000),
        rosenbrock=(0.01, 20000),
        converge_kwargs=dict(weight_decay=0.0),
    ),
    Entry(
        "mars-unclipped",
        gx.mars,
        dict(learning_rate=0.01, gamma=0.1, max_norm=None, eps_uncorrected=True, eps=1e-3),
        ref_ar.MARS,
        None,
        quadratic=(0.03, 3000),
        rosenbrock=(0.003, 20000),
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
        # Without update clipping, once the gradient is below sqrt(epsilon) the step is
        # g / sqrt(epsilon)-sized and the iterate leaves the minimum again (after about
        # 700 steps here, in float64): stop before.
        quadratic=(0.05, 500),
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
    # Differential privacy (dpsgd, differentially_private_aggregate) is not registered: it
    # takes per-example gradients (a batch axis on every leaf) and couples the leaves through
    # each example's global norm, where this battery feeds ordinary gradients, integer leaves
    # and a per-leaf reference. tests/test_privacy.py checks the battery's properties that
    # apply, tests/test_parity_privacy.py compares with optax.contrib.
    # Schedule-Free (Defazio et al. 2024). Not against optax here: optax forms the update
    # as y_{t+1} - y_t in float32, a rounding of y (up to 5e-7 for these weights) that the
    # battery's atol does not allow; test_parity_schedule_free.py compares the iterates.
    # b1 is left at its default: the property tests draw b1 from [0, 0.99], and
    # Schedule-Free's is in (0, 1) (the sweep covers it).
    Entry(
        "schedule-free-adamw",
        gx.schedule_free_adamw,
        dict(learning_rate=0.05, warmup_steps=5, weight_decay=0.1),
        ref_sf.ScheduleFreeAdamW,
        None,
        atol=1e-7,
        quadratic=(0.03, 2000),
        rosenbrock=(0.01, 10000),
        converge_kwargs=dict(weight_decay=0.0),
    ),
    Entry(
        "schedule-free-adamw-paper-warmup",
        gx.schedule_free_adamw,
        dict(
            learning_rate=0.05,
            warmup_steps=4,
            b2=0.99,
            eps=1e-6,
            weight_lr_power=1.0,
            r=0.5,
            paper_warmup=True,
        ),
        ref_sf.ScheduleFreeAdamW,
        None,
        atol=1e-7,
        quadratic=(0.003, 2000),
        rosenbrock=(0.003, 10000),
    ),
    Entry(
        "schedule-free-sgd",
        gx.schedule_free_sgd,
        dict(learning_rate=0.1, warmup_steps=3, weight_decay=0.05),
        ref_sf.ScheduleFreeSGD,
        None,
        atol=1e-7,
        quadratic=(0.1, 2000),
        rosenbrock=(0.005, 20000),
        converge_kwargs=dict(weight_decay=None),
    ),
    Entry(
        "schedule-free-rmsprop",
        schedule_free_rmsprop,
        dict(learning_rate=0.05, r=1.0),
        schedule_free_rmsprop_reference,
        None,
        atol=1e-7,
        quadratic=(0.003, 2000),
        rosenbrock=(0.003, 10000),
    ),
    # Learning-rate-free: distance over gradients, coin betting (tests/references_lr_free_2.py).
    Entry(
        "dog",
        gx.dog,
        # optax's default alpha = 1e-6 moves the weights by 1e-6 at first: x_t - x_0 is then
        # a float32 cancellation (5% of r_t), which the float64 reference does not share;
        # test_parity_lr_free_2.py checks that default against optax.
        dict(learning_rate=1.0, init_step=("heuristic", 1e-2)),
        ref_lr_free_2.DoG,
        optax.contrib.dog,
        quadratic=(1.0, 10000),
        rosenbrock=(1.0, 10000),
    ),
    Entry(
        "dog-distance-decay",
        gx.dog,
        dict(learning_rate=1.0, init_step=("distance", 0.1), weight_decay=0.01),
        ref_lr_free_2.DoG,
        optax.contrib.dog,
        quadratic=(1.0, 2000),
        rosenbrock=(1.0, 10000),
        converge_kwargs=dict(weight_decay=None),
    ),
    Entry(
        "dog-learning-rate",
        gx.dog,
        dict(learning_rate=1.0, init_step=("learning_rate", 0.01)),
        ref_lr_free_2.DoG,
        optax.contrib.dog,
        quadratic=(1.0, 10000),
        rosenbrock=(1.0, 20000),
    ),
    Entry(
        "dowg",
        gx.dowg,
        dict(learning_rate=1.0),
        ref_lr_free_2.DoWG,
        optax.contrib.dowg,
        quadratic=(1.0, 2000),
        rosenbrock=(1.0, 10000),
    ),
    Entry(
        "dowg-init-decay",
        gx.dowg,
        dict(learning_rate=1.0, init_estim_sq_dist=0.01, eps=1e-3, weight_decay=0.01),
        ref_lr_free_2.DoWG,
        optax.contrib.dowg,
        quadratic=(1.0, 2000),
        # Its first hundred steps jump across the valley: float32 and float64 runs part
        # there (chaotically) and meet again near the minimum after 20000 steps.
        rosenbrock=(1.0, 20000),
        converge_kwargs=dict(weight_decay=None),
    ),
    Entry(
        "cocob",
        gx.cocob,
        dict(learning_rate=1.0),
        ref_lr_free_2.COCOB,
        optax.contrib.cocob,
        quadratic=(1.0, 2000),
        rosenbrock=(1.0, 50000),
        atol=WEIGHT_ULP,
    ),
    Entry(
        "cocob-alpha-decay",
        gx.cocob,
        dict(learning_rate=1.0, alpha=10.0, weight_decay=0.01),
        ref_lr_free_2.COCOB,
        optax.contrib.cocob,
        quadratic=(1.0, 2000),
        rosenbrock=(1.0, 20000),
        converge_kwargs=dict(weight_decay=0.0),
        atol=WEIGHT_ULP,
    ),
    # Step sizes from the loss: both sides are fed value=battery_loss(params) (or, in the
    # convergence runs, the loss of the problem).
    Entry(
        "polyak-sgd",
        polyak_sgd_fed,
        dict(learning_rate=0.5, scaling=0.7, f_min=0.2, eps=0.1),
        polyak_sgd_fed_reference,
        optax_fed(lambda learning_rate, **kw: optax.polyak_sgd(learning_rate, **kw)),
        quadratic=(1.0, 2000),
        rosenbrock=(1.0, 10000),
        converge_kwargs=dict(f_min=0.0, eps=0.0),
        reads_loss=True,
    ),
    Entry(
        "polyak-sgd-plus",
        polyak_sgd_fed,
        dict(learning_rate=0.3, f_min=1.5, variant="sps+"),
        polyak_sgd_fed_reference,
        optax_fed(lambda learning_rate, **kw: optax.polyak_sgd(learning_rate, **kw)),
        quadratic=(1.0, 2000),
        rosenbrock=(1.0, 10000),
        converge_kwargs=dict(f_min=0.0),
        reads_loss=True,
    ),
    Entry(
        "momo",
        momo_fed,
        dict(learning_rate=0.5, beta=0.8, lower_bound=0.2, weight_decay=0.01),
        fed_reference(ref_lr_free_2.Momo),
        optax_fed(optax.contrib.momo),
        quadratic=(1.0, 2000),
        rosenbrock=(1.0, 10000),
        converge_kwargs=dict(lower_bound=0.0, weight_decay=0.0),
        reads_loss=True,
    ),
    Entry(
        "momo-adapt",
        momo_fed,
        dict(learning_rate=1.0, adapt_lower_bound=True),
        fed_reference(ref_lr_free_2.Momo),
        optax_fed(optax.contrib.momo),
        quadratic=(1.0, 10000),
        rosenbrock=(1.0, 10000),
        reads_loss=True,
        # The adapted bound makes f_bar - lb - gamma + <d, x> nearly cancel: one float32
        # rounding of its O(1) terms (a sum in another order) moves an update by 3e-7.
        atol=5e-7,
    ),
    Entry(
        "momo-adam",
        momo_adam_fed,
        dict(learning_rate=0.05, b1=0.8, b2=0.99, eps=1e-6, weight_decay=0.01),
        fed_reference(ref_lr_free_2.MomoAdam),
        optax_fed(optax.contrib.momo_adam),
        quadratic=(0.3, 2000),
        rosenbrock=(0.3, 10000),
        converge_kwargs=dict(weight_decay=0.0),
        reads_loss=True,
    ),
    # DP-SGD takes per-example gradients: each battery gradient becomes the batch of
    # tests/references_privacy.py on both sides; the noise follows the documented key
    # schedule, which the reference draws too.
    Entry(
        "dpsgd",
        dpsgd_on_examples,
        dict(learning_rate=0.1, l2_norm_clip=1.5, noise_multiplier=0.3, seed=3),
        dpsgd_on_examples_reference,
        optax_dpsgd_on_examples,
        quadratic=(0.015, 2000),
        rosenbrock=(2e-3, 20000),
        converge_kwargs=DP_CONVERGE,
    ),
    Entry(
        "dpsgd-nesterov",
        dpsgd_on_examples,
        dict(
            learning_rate=0.05,
            l2_norm_clip=0.8,
            noise_multiplier=1.1,
            seed=0,
            momentum=0.9,
            nesterov=True,
        ),
        dpsgd_on_examples_reference,
        optax_dpsgd_on_examples,
        quadratic=(0.01, 1000),
        rosenbrock=(5e-4, 10000),
        converge_kwargs=DP_CONVERGE,
    ),
    # Muon: the battery's (3, 4) kernel is orthogonalized (rows 3 = fan_in, columns 4 =
    # fan_out); its bias and the scalar go to AdamW (Nesterov's form, as optax routes them).
    # The float32 Newton-Schulz iteration against the same iteration in float64: five
    # quintic steps do not converge (they map the singular values into about [0.7, 1.2]
    # and expand small ones with slope a = 3.4), so float32 rounding is amplified. Measured
    # over the battery's 12 steps: at most 2.7e-8 absolute (inside the default atol 1e-7,
    # updates of size lr = 0.02), up to 9e-4 relative on the smallest entries of an update.
    # jit fuses the matrix products differently from eager: up to 2.6e-8 apart (MUON_ATOL).
    Entry(
        "muon",
        gx.muon,
        dict(learning_rate=0.02),
        ref_muon.Muon,
        optax.contrib.muon,
        quadratic=(0.05, 2000),
        rosenbrock=(0.01, 10000),
        atol=MUON_ATOL,
    ),
    Entry(
        "muon-no-nesterov-decay",
        gx.muon,
        dict(
            learning_rate=0.02,
            ns_coeffs=(3.0, -3.2, 1.2),
            ns_steps=3,
            beta=0.9,
            weight_decay=0.1,
            nesterov=False,
        ),
        ref_muon.Muon,
        optax.contrib.muon,
        quadratic=(0.05, 2000),
        rosenbrock=(0.01, 10000),
        atol=MUON_ATOL,
        converge_kwargs=dict(weight_decay=0.0),
    ),
    Entry(
        "muon-adjust-match-rms",
        gx.muon,
        dict(learning_rate=0.02, consistent_rms=0.2, weight_decay=0.05),
        ref_muon.Muon,
        optax.contrib.muon,
        quadratic=(0.05, 2000),
        rosenbrock=(0.01, 10000),
        atol=MUON_ATOL,
        converge_kwargs=dict(weight_decay=0.0),
    ),
    Entry(
        "muon-torch-momentum",
        gx.muon,
        dict(learning_rate=0.02, bias_correction=False, width_scaling=False, adaptive=True),
        ref_muon.Muon,
        None,
        quadratic=(0.05, 2000),
        rosenbrock=(0.01, 10000),
        atol=MUON_ATOL,
    ),
    # Shampoo: the battery's (3, 4) kernel is cut into 2 x 2 blocks (its 3 rows padded to
    # 4), the roots refreshed every 2 steps, Adam's norm grafted from step 3; the bias and
    # the scalar take the diagonal (Adam-graft) direction. Measured against the float64
    # reference over 12 steps: 1.1e-7 absolute on the kernel (SHAMPOO_ATOL).
    Entry(
        "shampoo",
        gx.shampoo,
        dict(
            learning_rate=0.05,
            b1=0.8,
            b2=0.99,
            matrix_eps=1e-3,
            precondition_every=2,
            start_preconditioning_step=3,
            graft_type="adam",
            block_size=2,
            nesterov=False,
        ),
        ref_shampoo.Shampoo,
        None,
        quadratic=(0.01, 1000),
        rosenbrock=(0.003, 2000),
        atol=SHAMPOO_ATOL,
    ),
    # SOAP: the kernel's bases refreshed (power iteration + QR) every 2 steps; the first
    # step sets them by eigh and moves nothing but the weight decay. Measured: 2e-8.
    Entry(
        "soap",
        gx.soap,
        dict(
            learning_rate=0.01,
            b1=0.9,
            b2=0.99,
            weight_decay=0.05,
            shampoo_beta=0.9,
            precondition_frequency=2,
        ),
        ref_shampoo.SOAP,
        None,
        quadratic=(0.03, 1000),
        rosenbrock=(0.01, 2000),
        converge_kwargs=dict(weight_decay=0.0),
    ),
    # Sophia-H: both sides differentiate curvature_loss with the same Rademacher probes
    # (the documented key schedule; the reference takes its Hessian-vector products by
    # finite differences in float64).
    Entry(
        "sophia",
        sophia_fed,
        dict(
            learning_rate=0.05,
            b1=0.9,
            b2=0.5,
            eps=1e-6,
            weight_decay=0.01,
            gamma=1.0,
            clip_threshold=0.8,
            update_interval=3,
        ),
        sophia_reference,
        optax_sophia_fed,
        quadratic=(0.5, 2000),
        rosenbrock=(0.5, 10000),
        # the Hutchinson estimate of Rosenbrock's second diagonal entry (200 +- 400 near
        # the optimum) needs a long average: with b2 = 0.5 it is often negative
        converge_kwargs=dict(weight_decay=0.0, b2=0.99),
        reads_loss=True,
    ),
    # SAM: every call takes one gradient; two of every three calls ascend.
    Entry(
        "sam",
        sam_sgd,
        dict(
            learning_rate=0.05,
            rho=0.1,
            momentum=0.5,
            adv_momentum=0.3,
            sync_period=3,
            reset_state=False,
        ),
        ref_ss.SAM,
        optax_sam_sgd,
        quadratic=(0.015, 3000),
        rosenbrock=(1e-3, 30000),
        converge_kwargs=dict(rho=1e-4),
    ),
    # PSGD-Kron: the (3, 4) kernel gets two triangular factors, the bias and the scalar
    # diagonal ones; the preconditioner is fitted at every second step (the skipped steps
    # run the cond's other branch); the reference draws the same probes. Its direction is
    # whitened (RMS capped at 1.1), so at a constant rate it settles at the rate's scale:
    # the quadratic runs at a decaying rate.
    Entry(
        "kron",
        gx.kron,
        dict(
            learning_rate=0.05,
            b1=0.8,
            weight_decay=0.01,
            preconditioner_update_probability=0.5,
            preconditioner_lr=0.2,
            preconditioner_init_scale=2.0,
        ),
        ref_psgd.Kron,
        None,
        quadratic=(exponential(0.02, 0.99), 500),
        rosenbrock=(0.01, 3000),
        converge_kwargs=dict(weight_decay=0.0),
    ),
]
