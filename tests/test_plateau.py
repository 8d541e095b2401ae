"""reduce_on_plateau: optax's rules and state, torch ReduceLROnPlateau's decisions, under jit."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradxform as gx
from gradxform import (
    ReduceLROnPlateauState,
    reduce_on_plateau,
)
from tests._require import require


def loss_sequence():
    """A noisy loss: a fall, a plateau, a slow fall, a long plateau, a rise, a drop."""
    rng = np.random.default_rng(0)
    trend = np.concatenate(
        [
            np.linspace(10, 6, 20),
            np.full(15, 6.0),
            np.linspace(6, 4, 10),
            np.full(25, 4.0),
            np.linspace(4, 5, 10),
            np.full(20, 3.9),
        ]
    )
    # On a grid of 0.01, so no comparison is decided by rounding.
    return np.round(trend + rng.choice([-0.02, 0.0, 0.01, 0.03], trend.size), 2)


def run(tx, values):
    """The scale after each update (and the updates of a vector of ones), in one jitted scan."""
    params = jnp.zeros(2)

    def body(state, value):
        updates, state = tx.update(jnp.ones(2), state, params, value=value)
        return state, (state.scale, updates)

    _, (scales, updates) = jax.jit(lambda s, v: jax.lax.scan(body, s, v))(
        tx.init(params), jnp.asarray(values, jnp.float32)
    )
    chex.assert_trees_all_close(updates, jnp.stack([scales, scales], axis=1))
    return np.asarray(scales)


def torch_lrs(values, **kwargs):
    torch = require("torch")
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, **kwargs)
    lrs = []
    for v in values:
        opt.step()
        sched.step(float(v))
        lrs.append(opt.param_groups[0]["lr"])
    return np.array(lrs)


# Torch's arguments for each configuration; ``ours`` translates them (see the docstring of
# reduce_on_plateau): torch counts ``patience`` non-improving decisions before the one that
# reduces, and its threshold is relative (rtol) or absolute (atol).
CONFIGS = {
    "rel-min": dict(factor=0.5, patience=3),
    "abs-cooldown-floor": dict(
        factor=0.3, patience=2, threshold=0.035, threshold_mode="abs", cooldown=2, min_lr=0.05
    ),
    "rel-max-cooldown": dict(factor=0.5, patience=4, threshold=0.01, mode="max", cooldown=1),
    "abs-max-impatient": dict(
        factor=0.7, patience=0, threshold=0.035, threshold_mode="abs", mode="max", min_lr=0.2
    ),
    "defaults": dict(patience=9),  # gradxform's (optax's) default patience 10 is torch's 9
}


def ours(torch_config):
    config = dict(torch_config)
    threshold = config.pop("threshold", 1e-4)
    if config.pop("threshold_mode", "rel") == "rel":
        config.update(rtol=threshold, atol=0.0)
    else:
        config.update(rtol=0.0, atol=threshold)
    config["patience"] = config.get("patience", 10) + 1
    config["min_scale"] = config.pop("min_lr", 0.0)
    return config


@pytest.mark.parametrize("name", list(CONFIGS))
def test_decisions_match_torch(name):
    config = CONFIGS[name]
    values = loss_sequence()
    if config.get("mode") == "max":
        values = np.round(12.0 - values, 2)  # an accuracy-like value that rises and stalls
    expected = torch_lrs(values, **config)
    assert len(set(expected)) > 2  # the sequence makes torch reduce more than once
    np.testing.assert_allclose(run(reduce_on_plateau(**ours(config)), values), expected, rtol=1e-6)


def test_defaults_are_optax_defaults():
    assert ours(CONFIGS["defaults"]) == dict(patience=10, rtol=1e-4, atol=0.0, min_scale=0.0)
    values = loss_sequence()
    np.testing.assert_array_equal(
        run(reduce_on_plateau(), values),
        run(reduce_on_plateau(**ours(CONFIGS["defaults"])), values),
    )


def test_accumulated_decisions_match_torch_on_the_means():
    values = loss_sequence()[:99]
    means = values.reshape(-1, 3).mean(axis=1)
    config = dict(factor=0.5, patience=1, threshold=0.001)
    expected = torch_lrs(means, **config)
    scales = run(reduce_on_plateau(accumulation_size=3, **ours(config)), values)
    np.testing.assert_allclose(scales[2::3], expected, rtol=1e-6)
    # Between decisions the scale holds.
    np.testing.assert_array_equal(scales[0::3][1:], scales[2::3][:-1])
    np.testing.assert_array_equal(scales[1::3][1:], scales[2::3][:-1])


def test_decisions_written_from_the_rules():
    """patience=2, cooldown=1, an absolute margin of 0.5 on integer values: reduce at the
    second non-improvement in a row, then skip one decision."""
    tx = reduce_on_plateau(factor=0.5, patience=2, rtol=0.0, atol=0.5, cooldown=1)
    values = [5, 4, 4, 4, 4, 3, 3, 3, 3]
    expected = [1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25]
    np.testing.assert_array_equal(run(tx, values), expected)


def _python_reference(values, factor, patience, rtol, atol, cooldown, accumulation_size, min_scale):
    """The rules of optax's reduce_on_plateau in plain Python, decision by decision."""
    scale, best, bad, cool, pending, out = 1.0, np.inf, 0, 0, [], []
    for v in values:
        pending.append(v)
        if len(pending) == accumulation_size:
            mean, pending = float(np.mean(pending)), []
            if mean < (1 - rtol) * best - atol:
                best, bad = mean, 0
            else:
                bad += 1
            if cool > 0:
                bad, cool = 0, cool - 1
            elif bad == patience:
                scale, bad, cool = max(scale * factor, min_scale), 0, cooldown
        out.append(scale)
    return np.array(out)


OPTAX_CONFIGS = [
    dict(
        factor=0.5, patience=3, rtol=1e-3, atol=0.0, cooldown=0, accumulation_size=1, min_scale=0.0
    ),
    dict(
        factor=0.3, patience=1, rtol=0.0, atol=0.02, cooldown=2, accumulation_size=1, min_scale=0.05
    ),
    dict(
        factor=0.5, patience=2, rtol=1e-2, atol=0.01, cooldown=1, accumulation_size=3, min_scale=0.0
    ),
]


@pytest.mark.parametrize("config", OPTAX_CONFIGS, ids=range(len(OPTAX_CONFIGS)))
def test_decisions_match_python_reference_and_optax(config):
    values = loss_sequence()
    ours_ = run(reduce_on_plateau(**config), values)
    np.testing.assert_allclose(ours_, _python_reference(values, **config), rtol=1e-6)
    optax = require("optax")
    with jax.numpy_dtype_promotion("standard"):  # optax's code mixes dtypes
        theirs = run(optax.contrib.reduce_on_plateau(**config), values)
    np.testing.assert_allclose(ours_, theirs, rtol=1e-6)


@pytest.mark.parametrize(
    "dtypes", [(jnp.float32,), (jnp.bfloat16, jnp.float32)], ids=["f32", "bf16-f32"]
)
def test_state_is_optax_state(dtypes):
    optax = require("optax")
    params = {f"p{i}": jnp.zeros(2, d) for i, d in enumerate(dtypes)}
    ours_ = reduce_on_plateau().init(params)
    with jax.numpy_dtype_promotion("standard"):  # optax's code mixes dtypes
        theirs = optax.contrib.reduce_on_plateau().init(params)
    assert type(ours_).__name__ == type(theirs).__name__
    assert ours_._fields == theirs._fields
    chex.assert_trees_all_equal_shapes_and_dtypes(tuple(ours_), tuple(theirs))
    chex.assert_trees_all_equal(tuple(ours_), tuple(theirs))


def test_state_and_chain():
    tx = gx.chain(gx.sgd(0.1), reduce_on_plateau(factor=0.5, patience=1))
    params = {"w": jnp.ones(3)}
    abstract = jax.tree.map(lambda p: jax.ShapeDtypeStruct(p.shape, p.dtype), params)
    state = tx.init(params)
    chex.assert_trees_all_equal_shapes_and_dtypes(tx.init(abstract), state)
    plateau = state[1]
    assert isinstance(plateau, ReduceLROnPlateauState)
    for name in ("plateau_count", "cooldown_count", "count"):
        assert getattr(plateau, name).dtype == jnp.int32
    update = jax.jit(tx.update)
    for loss in [1.0, 1.0, 1.0]:
        updates, state = update({"w": jnp.ones(3)}, state, params, value=loss)
    chex.assert_trees_all_close(updates, {"w": jnp.full(3, -0.1 * 0.25)})
    chex.assert_trees_all_equal_dtypes(updates, params)


def test_low_precision_updates_keep_their_dtype():
    tx = reduce_on_plateau(factor=0.5, patience=1)
    g = jnp.ones(2, jnp.bfloat16)
    state = tx.init(g)
    for loss in [1.0, 1.0]:
        updates, state = tx.update(g, state, value=jnp.bfloat16(loss))
    assert updates.dtype == jnp.bfloat16
    chex.assert_trees_all_close(updates, jnp.full(2, 0.5, jnp.bfloat16))


def test_missing_or_non_scalar_value_raises():
    tx = reduce_on_plateau()
    state = tx.init(jnp.zeros(1))
    with pytest.raises(ValueError, match="value=loss"):
        tx.update(jnp.ones(1), state)
    with pytest.raises(ValueError, match="scalar"):
        tx.update(jnp.ones(1), state, value=jnp.ones(2))


@pytest.mark.parametrize(
    "kwargs,argument,error",
    [
        (dict(factor=1.0), "factor", ValueError),
        (dict(factor=0.0), "factor", ValueError),
        (dict(patience=0), "patience", ValueError),
        (dict(patience=2.5), "patience", TypeError),
        (dict(rtol=-0.1), "rtol", ValueError),
        (dict(rtol=1.5), "rtol", ValueError),
        (dict(atol=-1.0), "atol", ValueError),
        (dict(rtol=0.0, atol=0.0), "rtol", ValueError),
        (dict(mode="minimum"), "mode", ValueError),
        (dict(cooldown=-2), "cooldown", ValueError),
        (dict(min_scale=1.5), "min_scale", ValueError),
        (dict(accumulation_size=0), "accumulation_size", ValueError),
    ],
)
def test_bad_arguments_raise(kwargs, argument, error):
    with pytest.raises(error, match=f"{argument}="):
        reduce_on_plateau(**kwargs)
