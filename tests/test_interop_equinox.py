"""A gradxform optimizer trains an Equinox model where an optax one would."""

import chex
import jax
import jax.numpy as jnp
import optax

import gradxform as gx
from tests._require import require

eqx = require("equinox")


def _train(tx, steps=60):
    model = eqx.nn.MLP(in_size=2, out_size=1, width_size=16, depth=2, key=jax.random.key(0))
    x = jax.random.normal(jax.random.key(1), (64, 2))
    y = jnp.sin(x[:, :1]) + 0.5 * x[:, 1:]

    def loss_fn(m):
        return jnp.mean((jax.vmap(m)(x) - y) ** 2)

    params = eqx.filter(model, eqx.is_inexact_array)
    state = tx.init(params)

    @eqx.filter_jit
    def step(m, s):
        loss, grads = eqx.filter_value_and_grad(loss_fn)(m)
        updates, s = tx.update(grads, s, eqx.filter(m, eqx.is_inexact_array))
        return eqx.apply_updates(m, updates), s, loss

    losses = []
    for _ in range(steps):
        model, state, loss = step(model, state)
        losses.append(float(loss))
    return model, losses


def test_gradxform_adamw_trains_an_equinox_mlp_like_optax():
    with jax.numpy_dtype_promotion("standard"):
        _model, losses = _train(gx.adamw(1e-2, weight_decay=1e-4))
        _ref_model, ref_losses = _train(optax.adamw(1e-2, weight_decay=1e-4))
    assert losses[-1] < 0.2 * losses[0]
    chex.assert_trees_all_close(losses, ref_losses, rtol=1e-3)


def test_an_equinox_module_of_bools_is_a_mask_not_a_mask_function():
    model = eqx.nn.MLP(in_size=2, out_size=1, width_size=4, depth=1, key=jax.random.key(0))
    params = eqx.filter(model, eqx.is_inexact_array)
    mask = jax.tree.map(lambda p: p.ndim == 2, params)  # callable, but a tree of bools
    tx = gx.add_decayed_weights(1.0, mask=mask)
    zero = jax.tree.map(jnp.zeros_like, params)
    updates, _ = tx.update(zero, tx.init(params), params)
    for layer_u, layer_p in zip(updates.layers, params.layers, strict=True):
        chex.assert_trees_all_equal(layer_u.weight, layer_p.weight)
        chex.assert_trees_all_equal(layer_u.bias, jnp.zeros_like(layer_p.bias))
