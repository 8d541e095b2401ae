"""A state that a transformation did not make is reported as such, never as an internal error."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest

import gradxform as gx
from tests.registry import REGISTRY

PARAMS = {"w": jnp.ones((2, 3)), "b": jnp.zeros(3)}
GRADS = jax.tree.map(lambda p: jnp.full_like(p, 0.5), PARAMS)


def _other(entry):
    """A registry entry whose state is laid out differently from ``entry``'s."""
    mine = jax.tree.structure(entry.make().init(PARAMS))
    return next(o for o in REGISTRY if jax.tree.structure(o.make().init(PARAMS)) != mine)


@pytest.mark.parametrize("entry", REGISTRY, ids=[e.id for e in REGISTRY])
def test_state_of_another_optimizer_names_both_states(entry):
    other = _other(entry)
    state = other.make().init(PARAMS)
    with pytest.raises(ValueError, match=r"did not make|not a tuple of \d+ states") as info:
        entry.make().update(GRADS, state, PARAMS)
    # the message names what was received, whichever level noticed
    received = state[0] if isinstance(state, tuple) and state else state
    assert type(received).__name__ in str(info.value) or "first difference" in str(info.value)


@pytest.mark.parametrize("entry", REGISTRY, ids=[e.id for e in REGISTRY])
def test_state_of_another_model_names_the_key_path(entry):
    other_model = {"v": jnp.ones((2, 3)), "b": jnp.zeros(3)}
    state = entry.make().init(other_model)
    if jax.tree.structure(state) == jax.tree.structure(entry.make().init(PARAMS)):
        # a state with nothing per parameter (plain SGD, signSGD) fits any model
        entry.make().update(GRADS, state, PARAMS)
        return
    with pytest.raises(ValueError, match=r"'v'|'w'"):
        entry.make().update(GRADS, state, PARAMS)


CASES = {
    "momentum state given to adam": (
        lambda: gx.adam(0.1),
        lambda: gx.sgd(0.1, momentum=0.9).init(PARAMS),
        r"expected ScaleByAdamState .* got TraceState .*first difference at 'trace/b'",
    ),
    "adam state given to momentum": (
        lambda: gx.scale_by_momentum(0.9),
        lambda: gx.scale_by_adam().init(PARAMS),
        r"expected TraceState .* got ScaleByAdamState",
    ),
    "primitive state given to a chain": (
        lambda: gx.chain(gx.scale_by_adam(), gx.scale(-0.1)),
        lambda: gx.scale_by_adam().init(PARAMS),
        r"tuple of 2 states: ScaleByAdamState",
    ),
    "wrapped state given to the bare optimizer": (
        lambda: gx.adam(0.1),
        lambda: gx.apply_if_finite(gx.adam(0.1), 3).init(PARAMS),
        r"not a tuple of 2 states: ApplyIfFiniteState",
    ),
}


@pytest.mark.parametrize("name", CASES)
def test_mismatched_states(name):
    make, state, pattern = CASES[name]
    with pytest.raises(ValueError, match=pattern):
        make().update(GRADS, state(), PARAMS)


def test_jit_reports_the_same_error():
    tx = gx.adam(0.1)
    with pytest.raises(ValueError, match="did not make"):
        jax.jit(tx.update)(GRADS, gx.sgd(0.1, momentum=0.9).init(PARAMS), PARAMS)
