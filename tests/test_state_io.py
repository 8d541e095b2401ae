"""State that survives: state_dict / load_state_dict, numpy.savez, orbax, golden checkpoint."""

from __future__ import annotations

import pathlib

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradxform as gx
from gradxform import (
    MultiSteps,
    add_noise,
    apply_if_finite,
    clip_by_global_norm,
    dynamic_loss_scaling,
    ema_params,
    label_by_path,
    load_state_dict,
    lookahead_in_state,
    masked,
    multi_transform,
    state_dict,
)
from tests._require import require
from tests._util import grad_sequence, make_params
from tests.registry import REGISTRY, Entry

IDS = [e.id for e in REGISTRY]
GOLDEN = pathlib.Path(__file__).resolve().parent / "data" / "adamw_schedule_state.npz"


def _run(step, params, state, grads):
    for g in grads:
        u, state = step(g, state, params)
        params = gx.apply_updates(params, u)
    return params, state


def _save_restore_continue(tx, params, grads, path, step=None):
    """Run all of ``grads`` at once, and again with a savez round trip in the middle."""
    step = step or tx.update
    p_full, s_full = _run(step, params, tx.init(params), grads)
    half = len(grads) // 2
    p_mid, s_mid = _run(step, params, tx.init(params), grads[:half])
    np.savez(path, **state_dict(s_mid))
    with np.load(path) as f:
        restored = load_state_dict(tx.init(params), dict(f))
    chex.assert_trees_all_equal(restored, s_mid)
    p_end, s_end = _run(step, p_mid, restored, grads[half:])
    chex.assert_trees_all_equal(p_end, p_full)
    chex.assert_trees_all_equal(s_end, s_full)


# ------------------------------------------------------------------- state_dict


def test_state_dict_keys_are_readable_key_paths():
    params = {"encoder": {"dense": {"kernel": jnp.ones((2, 3)), "bias": jnp.ones(3)}}}
    tx = gx.chain(clip_by_global_norm(1.0), gx.scale_by_adam(), gx.scale_by_learning_rate(0.1))
    d = state_dict(tx.init(params))
    assert "1/mu/encoder/dense/kernel" in d and "1/nu/encoder/dense/bias" in d
    assert "1/count" in d
    assert all(isinstance(v, jax.Array) for v in d.values())


def test_state_dict_refuses_ambiguous_key_paths():
    with pytest.raises(ValueError, match="a/b"):
        state_dict({"a/b": jnp.ones(1), "a": {"b": jnp.ones(1)}})


def test_load_state_dict_errors_name_the_key():
    params = {"w": jnp.ones(2)}
    momentum = gx.sgd(0.1, momentum=0.9)
    d = state_dict(momentum.init(params))
    with pytest.raises(ValueError, match=r"'0/sum_of_squares/w'.*missing"):
        load_state_dict(gx.adagrad(0.1).init(params), d)
    template = momentum.init(params)
    with pytest.raises(ValueError, match="unexpected key '0/extra'"):
        load_state_dict(template, {**d, "0/extra": jnp.ones(1)})
    with pytest.raises(ValueError, match=r"'0/trace/w' has shape \(3,\)"):
        load_state_dict(template, {"0/trace/w": jnp.ones(3)})
    with pytest.raises(TypeError, match="'0/trace/w' has dtype bfloat16"):
        load_state_dict(template, {"0/trace/w": jnp.ones(2, jnp.bfloat16)})
    with pytest.raises(TypeError, match="'0/count' has dtype float32"):
        load_state_dict(
            gx.adam(0.1).init(params),
            {**state_dict(gx.adam(0.1).init(params)), "0/count": jnp.zeros([])},
        )


def test_load_into_shape_dtype_struct_template():
    params = make_params()
    tx = gx.adam(0.1)
    state = tx.init(params)
    abstract = jax.eval_shape(tx.init, params)
    chex.assert_trees_all_equal(load_state_dict(abstract, state_dict(state)), state)


# ------------------------------------------------------------- round trips


@pytest.mark.parametrize("entry", REGISTRY, ids=IDS)
def test_savez_round_trip_mid_run_is_bit_identical(entry: Entry, tmp_path):
    params = make_params()
    _save_restore_continue(
        entry.make(), params, grad_sequence(params, steps=2), tmp_path / "state.npz"
    )


WRAPPED = {
    "robust": lambda: apply_if_finite(dynamic_loss_scaling(gx.adam(0.01), initial_scale=2.0), 3),
    "multisteps": lambda: MultiSteps(
        gx.chain(add_noise(0.01, 0.55, seed=1), gx.sgd(0.1, 0.9)), 2, accumulator_dtype=jnp.float32
    ),
    "groups": lambda: multi_transform(
        {
            "k": masked(gx.adamw(0.01), lambda p: jax.tree.map(lambda _: True, p)),
            "rest": lookahead_in_state(gx.rmsprop(0.01), 2, 0.5),
        },
        label_by_path({"kernel": "k"}, default="rest"),
    ),
    "ema": lambda: gx.chain(gx.adam(0.01), ema_params(0.9, warmup=True)),
}


@pytest.mark.parametrize("name", WRAPPED)
def test_wrapped_states_round_trip(name, tmp_path):
    params = make_params()
    grads = grad_sequence(params, steps=4)
    grads[1] = {**grads[1], "scale": jnp.asarray(jnp.nan)}  # a skipped step inside the run
    tx = WRAPPED[name]()
    _save_restore_continue(tx, params, grads, tmp_path / "state.npz", step=jax.jit(tx.update))


def test_bfloat16_state_round_trips_through_savez(tmp_path):
    params = make_params(jnp.bfloat16)
    _save_restore_continue(
        gx.adam(0.01), params, grad_sequence(params, steps=2), tmp_path / "state.npz"
    )


def test_orbax_round_trip(tmp_path):
    ocp = require("orbax.checkpoint")
    params = make_params(jnp.bfloat16)
    tx = gx.chain(clip_by_global_norm(1.0), gx.adamw(0.01))
    grads = grad_sequence(params, steps=4)
    p_full, s_full = _run(tx.update, params, tx.init(params), grads)
    p_mid, s_mid = _run(tx.update, params, tx.init(params), grads[:2])
    with ocp.StandardCheckpointer() as ckptr:
        ckptr.save(tmp_path / "ckpt", {"params": p_mid, "opt_state": state_dict(s_mid)})
    template = {"params": params, "opt_state": state_dict(tx.init(params))}
    with ocp.StandardCheckpointer() as ckptr:
        restored = ckptr.restore(
            tmp_path / "ckpt", jax.tree.map(ocp.utils.to_shape_dtype_struct, template)
        )
    state = load_state_dict(tx.init(params), restored["opt_state"])
    p_end, s_end = _run(tx.update, restored["params"], state, grads[2:])
    chex.assert_trees_all_equal(p_end, p_full)
    chex.assert_trees_all_equal(s_end, s_full)


# ---------------------------------------------------------------- golden file

MIGRATION = """\
The committed checkpoint {path} no longer loads into the state of
`adamw(warmup_cosine_decay_schedule(...))`: {error}

This guards the state layout (key paths, shapes, dtypes) that users' saved
checkpoints depend on. If the change is intended:
  1. Tell users how to migrate: a saved state dict is a plain
     {{key path: array}} mapping, so an old checkpoint is converted by renaming,
     adding or dropping keys before `load_state_dict` (for example
     `d["0/nu_max"] = ...` for a new field, `d.pop(...)` for a removed one);
     put that recipe in the changelog.
  2. Regenerate the file with the one-off command in tests/data/README.md.
"""


def golden_run():
    """The optimizer, params and state after three steps stored in tests/data."""
    rng = np.random.default_rng(0)
    params = {
        "encoder": {
            "dense": {
                "kernel": jnp.asarray(rng.normal(size=(3, 4)), jnp.float32),
                "bias": jnp.zeros(4, jnp.float32),
            }
        },
        "head": {"kernel": jnp.asarray(rng.normal(size=(4, 2)), jnp.float32)},
    }
    tx = gx.adamw(
        gx.warmup_cosine_decay_schedule(0.0, 1e-2, warmup_steps=2, decay_steps=10),
        weight_decay=1e-2,
    )
    state = tx.init(params)
    for _ in range(3):
        grads = jax.tree.map(lambda p: jnp.asarray(rng.normal(size=p.shape), jnp.float32), params)
        updates, state = tx.update(grads, state, params)
        params = gx.apply_updates(params, updates)
    return tx, params, state


def test_golden_checkpoint_keeps_loading():
    tx, params, expected = golden_run()
    with np.load(GOLDEN) as f:
        saved = dict(f)
    try:
        state = load_state_dict(tx.init(params), saved)
    except (ValueError, TypeError) as e:
        pytest.fail(MIGRATION.format(path=GOLDEN.name, error=e))
    chex.assert_trees_all_close(state, expected, rtol=1e-6, atol=1e-9)
    assert [int(x) for x in jax.tree.leaves(state) if x.dtype == jnp.int32] == [3, 3]
    u, _ = tx.update(jax.tree.map(jnp.ones_like, params), state, params)
    chex.assert_tree_all_finite(u)
