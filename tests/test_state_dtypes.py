"""State dtypes after updates, not only at init.

A state leaf that silently changes dtype (a bfloat16 moment written back as float32
after one step) changes memory use, breaks ``lax.scan`` and checkpoints, and is not
seen by a check of ``init`` alone. Every state leaf must keep its init dtype through
the updates, in every float dtype; and a state-dtype argument (``mu_dtype``,
``nu_dtype``, ``accumulator_dtype``, ...) must set exactly the leaves it names, at init
and after the updates.
"""

from __future__ import annotations

import inspect
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradxform as gx
from tests._util import grad_sequence, make_params
from tests.registry import REGISTRY, Entry
from tests.test_hyperparams_sweep import DTYPE_ARGS, SUBJECTS, Subject

STEPS = 3
DTYPES = [jnp.float32, jnp.bfloat16, jnp.float16, jnp.float64]

# The state fields each dtype argument sets (by NamedTuple field name in the key path).
FIELDS = {
    "mu_dtype": {"mu", "m1", "m2"},
    "nu_dtype": {"nu", "nu_max", "v", "v_row", "v_col"},
    "accumulator_dtype": {
        "trace",
        "sum_of_squares",
        "e_g",
        "e_x",
        "n",
        "z_clipped",
        "acc_grads",
        "ema",
    },
    "ema_dtype": {"ema"},
    "slow_dtype": {"slow"},
    "dtype_momentum": {"ema"},  # optax's name for Adafactor's momentum dtype
    "state_dtype": {"z"},  # Schedule-Free's iterate z (optax's name)
    "precond_dtype": {"Qs"},  # PSGD-Kron's Kronecker factors
}
# Where one argument owns other fields too: the centered RMS keeps both of its moments in
# nu_dtype.
# AdEMAMix keeps its second moment in mu_dtype too unless nu_dtype is given (as optax).
OWNS_ALSO = {
    ("scale_by_stddev", "nu_dtype"): {"mu"},
    ("ademamix", "mu_dtype"): {"nu"},
    ("scale_by_ademamix", "mu_dtype"): {"nu"},
}
# A wrapper's dtype argument owns its own fields, not those of the state it wraps.
INNER_STATES = ("inner_opt_state", "inner_state", "fast_state", "base_optimizer_state")
# Optimizers built as a partition (their own state is the partition's inner states).
PARTITIONED = ("muon",)
# Dtype arguments that set the precision of a computation, not of a state leaf.
COMPUTE_DTYPE_ARGS = {"ns_dtype"}


def _name(dtype: Any) -> str:
    return jnp.dtype(dtype).name


def _leaves(state: Any) -> list[tuple[str, Any, set[str]]]:
    """(key path, leaf, field names on the path) for every array leaf of a state."""
    out = []
    for path, leaf in jax.tree_util.tree_flatten_with_path(state)[0]:
        fields = {k.name for k in path if isinstance(k, jax.tree_util.GetAttrKey)}
        out.append((jax.tree_util.keystr(path), leaf, fields))
    return out


def _dtypes(state: Any) -> dict[str, np.dtype]:
    return {path: jnp.dtype(leaf.dtype) for path, leaf, _ in _leaves(state)}


def _run(tx: Any, params: Any, values: tuple[float, ...] | None = None) -> tuple[Any, Any]:
    """(init state, state after STEPS updates) along the battery's gradients."""
    state = init = tx.init(params)
    for t, g in enumerate(grad_sequence(params, steps=STEPS)):
        extra = {} if values is None else {"value": jnp.float32(values[t])}
        updates, state = tx.update(g, state, params, **extra)
        params = gx.apply_updates(params, updates)
    return init, state


def _assert_kept(init: Any, final: Any, what: str) -> None:
    before, after = _dtypes(init), _dtypes(final)
    assert list(before) == list(after), f"{what}: the state's key paths changed"
    changed = {p: f"{before[p]} -> {after[p]}" for p in before if before[p] != after[p]}
    assert not changed, f"{what}: state leaves changed dtype after {STEPS} updates: {changed}"


# ----------------------------------------------------------------- every dtype


@pytest.mark.parametrize("dtype", DTYPES, ids=_name)
@pytest.mark.parametrize("entry", REGISTRY, ids=[e.id for e in REGISTRY])
def test_registry_state_keeps_its_dtypes(entry: Entry, dtype: Any):
    with jax.enable_x64(dtype == jnp.float64):
        params = make_params(dtype)
        init, final = _run(entry.make(), params)
        _assert_kept(init, final, f"{entry.id} with {_name(dtype)} params")
        floats = [(p, x) for p, x, _ in _leaves(init) if jnp.issubdtype(x.dtype, jnp.floating)]
        wrong = {p: _name(x.dtype) for p, x in floats if x.dtype != jnp.dtype(dtype)}
        assert not wrong, f"{entry.id}: float state leaves not in the params' dtype: {wrong}"


LOW = [jnp.bfloat16, jnp.float16]
STATEFUL = [s for s in SUBJECTS if s.name not in {"identity", "set_to_zero"}]


@pytest.mark.parametrize("dtype", LOW, ids=_name)
@pytest.mark.parametrize("subject", STATEFUL, ids=lambda s: s.name)
def test_every_transformation_keeps_its_state_dtypes_in_low_precision(subject: Subject, dtype: Any):
    params = make_params(dtype)
    init, final = _run(subject.make(dict(subject.base)), params, subject.values)
    _assert_kept(init, final, f"{subject.name} with {_name(dtype)} params")


# ------------------------------------------------------------- dtype arguments


def _dtype_cases() -> list[Any]:
    cases = []
    for entry in REGISTRY:
        for arg in sorted(DTYPE_ARGS & set(inspect.signature(entry.factory).parameters)):
            cases.append(pytest.param(entry.id, entry.make, arg, id=f"registry-{entry.id}-{arg}"))
    for subject in SUBJECTS:
        for arg in sorted(DTYPE_ARGS & set(inspect.signature(subject.factory).parameters)):
            base = dict(subject.base)
            make = lambda subject=subject, base=base, **kw: subject.make({**base, **kw})
            cases.append(pytest.param(subject.name, make, arg, id=f"{subject.name}-{arg}"))
    return cases


@pytest.mark.parametrize("name,make,arg", _dtype_cases())
def test_dtype_argument_sets_its_leaves_and_only_them(name: str, make: Any, arg: str):
    params = make_params(jnp.float32)
    values = next((s.values for s in SUBJECTS if s.name == name), None)
    # Adafactor's momentum dtype has a state only when there is momentum
    extra = {"momentum": 0.9} if arg == "dtype_momentum" else {}
    init, final = _run(make(**{arg: jnp.bfloat16}, **extra), params, values)
    _assert_kept(init, final, f"{name}({arg}=bfloat16)")
    owned = []
    for path, leaf, fields in _leaves(final):
        if not jnp.issubdtype(leaf.dtype, jnp.floating):
            continue
        if any(inner in path for inner in INNER_STATES) and not name.startswith(
            ("scale_by", *PARTITIONED)
        ):
            continue
        if fields & (FIELDS[arg] | OWNS_ALSO.get((name, arg), set())):
            owned.append(path)
            assert leaf.dtype == jnp.bfloat16, f"{name}({arg}=bfloat16): {path} is {leaf.dtype}"
        else:
            assert leaf.dtype == jnp.float32, (
                f"{name}({arg}=bfloat16): {path} is {leaf.dtype}, but {arg} does not own it"
            )
    # An argument that owns no leaf is ignored, unless there is no float state at all
    # (plain SGD accepts accumulator_dtype and keeps no momentum).
    has_floats = any(jnp.issubdtype(x.dtype, jnp.floating) for _, x, _ in _leaves(final))
    assert owned or not has_floats, (
        f"{name}({arg}=bfloat16) has no state leaf among {sorted(FIELDS[arg])}"
    )


def test_every_dtype_argument_is_known():
    """A new state-dtype argument needs its fields in FIELDS (and the sweep exempts it)."""
    assert set(FIELDS) == DTYPE_ARGS
    for subject in SUBJECTS:
        for name in inspect.signature(subject.factory).parameters:
            known = DTYPE_ARGS | COMPUTE_DTYPE_ARGS
            assert not name.endswith("_dtype") or name in known, (subject.name, name)
