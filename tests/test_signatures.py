"""gradxform's names that optax also has take optax's arguments, and its optimizers name
the user's argument in every error.

* Signatures: for every public name gradxform shares with optax 0.2.8 (optax's top level,
  and ``optax.transforms`` for the names gradxform exports at its top level), optax's
  parameters appear in gradxform's signature with the same names, kinds, order and
  defaults; gradxform's own options are keyword-only and come after optax's. State
  classes have optax's fields. Deliberate differences are listed in ``ALLOWED`` (each
  one also on docs/differences.md).
* Errors: every optimizer factory validates its own arguments, so an invalid value is
  reported under the name the user gave it (``momentum=1.5``, not the inner ``decay=1.5``),
  and a gradient of the wrong kind (integer for a float parameter, complex for a real one)
  is refused with the key path of the leaf.
"""

from __future__ import annotations

import inspect
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradxform as gx

_PUBLIC_OPTAX = {n for n in dir(optax) if not n.startswith("_")}
_PUBLIC_TRANSFORMS = {n for n in dir(optax.transforms) if not n.startswith("_")}


def _optax_object(name: str) -> Any:
    return getattr(optax, name) if name in _PUBLIC_OPTAX else getattr(optax.transforms, name)


SHARED = sorted(set(gx.__all__) & (_PUBLIC_OPTAX | _PUBLIC_TRANSFORMS))

# Deliberate differences, each on docs/differences.md. name -> why.
ALLOWED: dict[str, str] = {
    "lbfgs": "the default linesearch is gradxform's scale_by_zoom_linesearch (optax's "
    "settings: 20 steps, initial guess 'one'), not optax's object",
}

# Names whose module is still being aligned with optax: each entry fails the test strictly
# (xfail strict) until it is aligned, then must be removed from here.
PENDING: dict[str, str] = {
    "sgdr_schedule": "gradxform's cosine_kwargs has a default (for its keyword-only form); "
    "optax requires it",
}


def _kind(p: inspect.Parameter) -> str:
    if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
        return "positional"
    return p.kind.name.lower()


def _same_default(a: Any, b: Any) -> bool:
    if a is b:
        return True
    if callable(a) and callable(b) and not isinstance(a, type) and not isinstance(b, type):
        return getattr(a, "__name__", None) == getattr(b, "__name__", None)
    try:
        if isinstance(a, type) or isinstance(b, type):
            return np.dtype(a) == np.dtype(b)
        return bool(type(a) is type(b) and a == b)
    except TypeError:
        return False


def signature_mismatches(ours: Any, theirs: Any) -> list[str]:
    """How gradxform's callable ``ours`` fails to accept every call of optax's ``theirs``."""
    try:
        sig_ours, sig_theirs = inspect.signature(ours), inspect.signature(theirs)
    except (TypeError, ValueError):
        return []
    problems = []
    p_ours = {p.name: p for p in sig_ours.parameters.values() if p.kind is not p.VAR_POSITIONAL}
    var_ours = [p for p in sig_ours.parameters.values() if p.kind is p.VAR_POSITIONAL]
    positional_theirs = []
    keyword_theirs = []
    for p in sig_theirs.parameters.values():
        if p.kind is p.VAR_POSITIONAL:
            if not var_ours:
                problems.append(f"optax takes *{p.name}, gradxform does not")
            continue
        if p.kind is p.VAR_KEYWORD:
            if not any(q.kind is q.VAR_KEYWORD for q in sig_ours.parameters.values()):
                problems.append(f"optax takes **{p.name}, gradxform does not")
            continue
        (positional_theirs if _kind(p) == "positional" else keyword_theirs).append(p.name)
        q = p_ours.get(p.name)
        if q is None:
            problems.append(f"lacks optax's {p.name!r}")
            continue
        if _kind(q) != _kind(p):
            problems.append(f"{p.name!r} is {_kind(q)}, optax's is {_kind(p)}")
        if (q.default is q.empty) != (p.default is p.empty) or (
            p.default is not p.empty and not _same_default(q.default, p.default)
        ):
            problems.append(f"{p.name!r} defaults to {q.default!r}, optax's to {p.default!r}")
    positional_ours = [p.name for p in sig_ours.parameters.values() if _kind(p) == "positional"]
    if positional_ours != positional_theirs:
        problems.append(f"positional order {positional_ours} != optax's {positional_theirs}")
    keyword_ours = [p.name for p in sig_ours.parameters.values() if p.kind is p.KEYWORD_ONLY]
    if keyword_ours[: len(keyword_theirs)] != keyword_theirs:
        problems.append(f"keyword-only {keyword_ours} do not start with optax's {keyword_theirs}")
    return problems


def mismatches(name: str) -> list[str]:
    ours, theirs = getattr(gx, name), _optax_object(name)
    fields_ours, fields_theirs = (getattr(x, "_fields", None) for x in (ours, theirs))
    if fields_theirs is not None:
        if fields_ours != fields_theirs:
            return [f"fields {fields_ours} != optax's {fields_theirs}"]
        return []
    if inspect.isclass(theirs) and not inspect.isclass(ours) and not callable(ours):
        return [f"optax's is a class, gradxform's a {type(ours).__name__}"]
    if not callable(theirs):
        return []
    return signature_mismatches(ours, theirs)


def _param(name: str) -> Any:
    marks = []
    if name in PENDING:
        marks.append(pytest.mark.xfail(strict=True, reason=PENDING[name]))
    return pytest.param(name, marks=marks, id=name)


@pytest.mark.parametrize("name", [_param(n) for n in SHARED if n not in ALLOWED])
def test_same_name_takes_optax_arguments(name):
    assert not mismatches(name), f"{name}: " + "; ".join(mismatches(name))


@pytest.mark.parametrize("name", sorted(ALLOWED))
def test_allowed_differences_are_real_and_documented(name):
    assert name in SHARED, f"{name} is no longer shared with optax: drop it from ALLOWED"
    assert mismatches(name), f"{name} now matches optax: drop it from ALLOWED"
    with open("docs/differences.md") as f:
        assert f"`{name}`" in f.read(), f"{name} is not on docs/differences.md"


def test_lists_name_shared_names_only():
    assert set(PENDING) <= set(SHARED) and set(ALLOWED) <= set(SHARED)
    assert not set(PENDING) & set(ALLOWED)


def test_the_rule_catches_drift():
    def theirs(learning_rate, b1=0.9, mu_dtype=None, *, nesterov=False):
        del learning_rate, b1, mu_dtype, nesterov

    def same(learning_rate, b1=0.9, mu_dtype=None, *, nesterov=False, extra=1):
        del learning_rate, b1, mu_dtype, nesterov, extra

    def extra_positional(learning_rate, b1=0.9, eps=1.0, mu_dtype=None, *, nesterov=False):
        del learning_rate, b1, eps, mu_dtype, nesterov

    def keyword_only(learning_rate, b1=0.9, *, mu_dtype=None, nesterov=False):
        del learning_rate, b1, mu_dtype, nesterov

    def other_default(learning_rate, b1=0.99, mu_dtype=None, *, nesterov=False):
        del learning_rate, b1, mu_dtype, nesterov

    assert signature_mismatches(same, theirs) == []
    assert signature_mismatches(extra_positional, theirs)
    assert signature_mismatches(keyword_only, theirs)
    assert signature_mismatches(other_default, theirs)


# ------------------------------------------------- errors name the user's argument


def _first_parameter(obj: Any) -> str | None:
    if not inspect.isfunction(obj):
        return None
    return next(iter(inspect.signature(obj).parameters), None)


FACTORIES = sorted(
    name for name in gx.__all__ if _first_parameter(getattr(gx, name)) == "learning_rate"
)

# How each numeric argument can be wrong, besides NaN (always wrong).
DECAYS = {
    "b1",
    "b2",
    "b3",
    "decay",
    "rho",
    "momentum",
    "beta3",
    "adam_b1",
    "adam_b2",
    "shampoo_beta",  # SOAP's decay of the Kronecker factors
}
# (in [0, 1): 1.0, 1.5 are wrong)
NON_NEGATIVE = {
    "learning_rate",
    "eps",
    "eps_root",
    "weight_decay",
    "initial_accumulator_value",
    "initial_scale",
    "l1",
    "l2",
    "l2_shrinkage",
    "trust_coefficient",
    "clipping_threshold",
    "min_scale",
    "weight_decay_rate",
    "decay_rate",
    "momentum_decay",
    "noise_multiplier",
    "weight_lr_power",
    "r",
    "alpha",  # COCOB's bet limit
    "min_norm",
    "min_step_size",
    "beta",
    "optimism",
    "eta",
    "gamma",
    "adam_eps_root",
    "adam_weight_decay",
    "adam_learning_rate",
    "consistent_rms",
    "matrix_eps",  # Shampoo's damping and diagonal eps
    "diagonal_eps",
}
SPECIAL = {  # name -> wrong values
    "threshold": [3.0],  # RAdam's threshold is at least 4
    "learning_rate_power": [0.5],  # non-positive
    "min_dim_size_to_factor": [0, 1.5],  # an int >= 1
    "l2_norm_clip": [0.0, -1.0, math.inf],  # positive and finite
    "seed": [-1, 1.5],  # a non-negative int
    "max_norm": [0.0, -1.0],  # positive (MARS's bound of the corrected gradient)
    "eta_minus": [-0.1, 1.5],  # Rprop's shrinking factor, in [0, 1]
    "eta_plus": [0.5],  # Rprop's growing factor, at least 1
    "max_step_size": [0.0, -1.0],  # positive
    "estim_lr0": [0.0, -1.0],  # a positive initial estimate of the distance
    "estim_lr_coef": [0.0, -1.0],
    "d0": [0.0, -1.0],
    "growth_rate": [0.5],  # at least 1 (or inf)
    "ns_steps": [0, 1.5],  # Newton-Schulz iterations: an int >= 1
    "memory_size": [0, 1.5],  # L-BFGS's number of pairs: an int >= 1
    # Shampoo and SOAP: step counts and sizes, ints >= 1
    "precondition_every": [0, 1.5],
    "start_preconditioning_step": [0, 1.5],
    "block_size": [0, 1.5],
    "max_precondition_dim": [0, 1.5],
    "precondition_frequency": [0, 1.5],
    "clip_threshold": [0.0, -1.0],  # Sophia's bound of each coordinate: positive (or None)
    "update_interval": [0, 1.5],  # steps between Hessian estimates: an int >= 1
    "print_win_rate_every_n_steps": [-1, 1.5],  # an int >= 0
    # PSGD-Kron: the size rules are ints >= 0, the fit's step in (0, 1), the scale positive
    "max_size_triangular": [-1, 1.5],
    "min_ndim_triangular": [-1, 1.5],
    "preconditioner_lr": [0.0, 1.0, -0.1],
    "preconditioner_init_scale": [0.0, -1.0],
    "key": [-1, 1.5],  # a non-negative int seed
}
PER_FACTORY = {
    ("signum", "beta"): [1.0, 1.5],
    ("momo", "beta"): [1.0, 1.5, -0.1],
    ("muon", "beta"): [1.0, 1.5, -0.1],
    ("ftrl", "beta"): [-1.0],
    ("scale_by_ftrl", "beta"): [-1.0],
    # AdEMAMix's alpha (the slow moment's weight) is any finite number; COCOB's is not.
    **{(f, "alpha"): [] for f in ("ademamix", "scale_by_ademamix", "simplified_ademamix")},
    ("scale_by_simplified_ademamix", "alpha"): [],
    ("shampoo", "b2"): [1.5, -0.1, 0.0],  # Shampoo's b2 is in (0, 1]: 1 sums the factors
}
ONLY_NAN = {"decay_offset", "step_offset", "lower_bound"}  # any finite number
# Arguments that are numbers but need a valid value to build the factory at all.
REQUIRED = {"learning_rate": 0.1, "l2_norm_clip": 1.0, "noise_multiplier": 0.5, "seed": 0}
# Optimizers whose gradients carry a batch of per-example gradients on axis 0.
PER_EXAMPLE = {"dpsgd"}


def _required(factory: str, but: str | None = None) -> dict[str, Any]:
    """The REQUIRED arguments that ``factory`` takes (all but ``but``)."""
    names = inspect.signature(getattr(gx, factory)).parameters
    return {k: v for k, v in REQUIRED.items() if k in names and k != but}


def _numeric_arguments(name: str) -> list[str]:
    out = []
    for p in inspect.signature(getattr(gx, name)).parameters.values():
        d = p.default
        numeric = isinstance(d, int | float) and not isinstance(d, bool)
        if numeric or p.name in REQUIRED or (d is None and p.name in DECAYS | NON_NEGATIVE):
            out.append(p.name)
    return out


def _wrong_values(factory: str, arg: str) -> list[Any]:
    values: list[Any] = [math.nan]
    if (factory, arg) in PER_FACTORY:
        return values + PER_FACTORY[(factory, arg)]
    if arg in DECAYS:
        values += [1.0, 1.5, -0.1]
    elif arg in NON_NEGATIVE:
        values += [-1.0]
    elif arg in SPECIAL:
        values += SPECIAL[arg]
    elif arg not in ONLY_NAN:
        raise AssertionError(f"{factory}({arg}=...): classify {arg!r} in this test")
    return values


CASES = [
    pytest.param(f, a, v, id=f"{f}-{a}={v}")
    for f in FACTORIES
    for a in _numeric_arguments(f)
    for v in _wrong_values(f, a)
]


def test_every_factory_has_cases():
    assert {"sgd", "adam", "adafactor", "ftrl", "lars", "signum"} <= set(FACTORIES)
    assert {f for f, *_ in (c.values for c in CASES)} == set(FACTORIES)


@pytest.mark.parametrize(("factory", "arg", "value"), CASES)
def test_invalid_argument_is_named_as_the_user_spelled_it(factory, arg, value):
    kwargs = _required(factory, but=arg)
    with pytest.raises((ValueError, TypeError)) as info:
        getattr(gx, factory)(**kwargs, **{arg: value})
    assert f"{arg}=" in str(info.value), f"{factory}({arg}={value!r}): {info.value}"


def test_sgd_momentum_error_names_momentum():
    with pytest.raises(ValueError, match=r"momentum=1\.5"):
        gx.sgd(0.1, momentum=1.5)
    with pytest.raises(ValueError, match=r"momentum=1\.5"):
        gx.rmsprop(0.1, momentum=1.5)


PARAMS = {"layer": {"kernel": jnp.ones((2, 3)), "bias": jnp.zeros(3)}}


def _bad(dtype: Any) -> dict[str, Any]:
    return {"layer": {"kernel": jnp.ones((2, 3), dtype), "bias": jnp.zeros(3)}}


LOSS_READERS = {"momo", "momo_adam", "polyak_sgd"}  # update(..., value=loss)


@pytest.mark.parametrize("factory", FACTORIES)
@pytest.mark.parametrize("dtype", [jnp.int32, jnp.complex64], ids=["int", "complex"])
def test_gradient_of_the_wrong_kind_is_refused_by_key_path(factory, dtype):
    # a random optimizer gets a key (without one it warns that it uses the seed 0)
    takes = inspect.signature(getattr(gx, factory)).parameters
    seeded = {"key": 0} if "key" in takes and "seed" not in _required(factory) else {}
    tx = getattr(gx, factory)(**_required(factory), **seeded)
    state = tx.init(PARAMS)
    grads = _bad(dtype)
    if factory in PER_EXAMPLE:  # a batch of 4 examples
        grads = jax.tree.map(lambda g: jnp.stack([g] * 4), grads)
    # the loss readers get their loss, so that the gradient is the call's only fault
    loss = {"value": jnp.float32(1.0)} if factory in LOSS_READERS else {}
    with pytest.raises((TypeError, ValueError), match="layer/kernel"):
        tx.update(grads, state, PARAMS, **loss)


# ------------------------------------------------- schedules only where annotated

# Valid values of required arguments, to build a factory whose other argument is tested.
BUILD_WITH = {
    "learning_rate": 0.1,
    "step_size": 0.1,
    "max_delta": 1.0,
    "max_norm": 1.0,
    "l2_norm_clip": 1.0,
    "noise_multiplier": 1.0,
    "seed": 0,
    "clipping": 1.0,
    "threshold": 1.0,
    "eta": 0.01,
    "gamma": 0.55,
    "inner": gx.sgd(0.1),
    "tx": gx.sgd(0.1),
    "fast": gx.sgd(0.1),
    "base_optimizer": gx.sgd(0.1),
    "init_step": ("heuristic", 1e-6),
    "max_linesearch_steps": 15,
    "max_backtracking_steps": 15,
    "optimizer": gx.sgd(0.1),
    "adv_optimizer": gx.sgd(0.1),
}


def _number_only_arguments() -> list[Any]:
    """Every numeric argument of every public transformation factory not annotated as
    ``ScalarOrSchedule`` (the arguments that may be a schedule say so in their type)."""
    out = []
    for name in sorted(gx.__all__):
        f = getattr(gx, name)
        if not inspect.isfunction(f):
            continue
        if "GradientTransformation" not in str(inspect.signature(f).return_annotation):
            continue
        for p in inspect.signature(f).parameters.values():
            numeric = isinstance(p.default, int | float) and not isinstance(p.default, bool)
            required_number = isinstance(BUILD_WITH.get(p.name), int | float)
            if (numeric or required_number) and "Schedule" not in str(p.annotation):
                out.append(pytest.param(name, p.name, id=f"{name}-{p.name}"))
    return out


def _build_args(factory: str, arg: str) -> dict[str, Any]:
    params = inspect.signature(getattr(gx, factory)).parameters
    required = [
        n
        for n, p in params.items()
        if p.default is inspect.Parameter.empty
        and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        and n != arg
    ]
    return {n: BUILD_WITH[n] for n in required if n in BUILD_WITH}


@pytest.mark.parametrize(("factory", "arg"), _number_only_arguments())
def test_a_schedule_for_a_number_argument_is_refused_by_name(factory, arg):
    # optimistic_adam's ValueError is optax's; the others' a TypeError
    with pytest.raises((TypeError, ValueError), match=f"{arg}="):
        getattr(gx, factory)(**_build_args(factory, arg), **{arg: lambda step: 0.5})


# Valid values of the schedules' required arguments, to build one whose other argument is
# tested.
SCHEDULE_BUILD_WITH: dict[str, Any] = {
    "value": 1.0,
    "init_value": 1.0,
    "end_value": 0.1,
    "peak_value": 1.0,
    "base_value": 0.1,
    "max_value": 1.0,
    "power": 1.0,
    "decay_rate": 0.5,
    "decay_steps": 10,
    "transition_steps": 10,
    "warmup_steps": 2,
    "first_decay_steps": 10,
    "step_size": 5,
    "total_steps": 100,
    "interpolate_type": "linear",
}


def _schedule_number_arguments() -> list[Any]:
    """Every numeric argument of every public schedule factory: none is annotated as a
    schedule, so each must refuse one."""
    out = []
    for name in sorted(gx.__all__):
        f = getattr(gx, name)
        if not inspect.isfunction(f) or str(inspect.signature(f).return_annotation) != "Schedule":
            continue
        for p in inspect.signature(f).parameters.values():
            numeric = isinstance(p.default, int | float) and not isinstance(p.default, bool)
            required_number = isinstance(SCHEDULE_BUILD_WITH.get(p.name), int | float)
            if numeric or required_number:
                out.append(pytest.param(name, p.name, id=f"{name}-{p.name}"))
    return out


def test_every_schedule_factory_has_number_arguments_checked():
    checked = {p.values[0] for p in _schedule_number_arguments()}
    assert {"linear_schedule", "polynomial_schedule", "sgdr_schedule", "one_cycle_schedule"} <= (
        checked
    )


@pytest.mark.parametrize(("factory", "arg"), _schedule_number_arguments())
def test_a_schedule_for_a_schedule_factory_number_is_refused_by_name(factory, arg):
    f = getattr(gx, factory)
    params = inspect.signature(f).parameters
    required = {n: SCHEDULE_BUILD_WITH[n] for n, p in params.items() if p.default is p.empty}
    if factory == "sgdr_schedule":  # one cosine period from init_value and its length
        required = {"init_value": 1.0, "first_decay_steps": 10}
    required.pop(arg, None)
    with pytest.raises(TypeError, match=f"{arg}="):
        f(**required, **{arg: lambda step: 0.5})
