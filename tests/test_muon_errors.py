"""Muon's argument and layout errors name the argument or the leaf's key path."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

import gradxform as gx

D = gx.MuonDimensionNumbers
PARAMS = {"w": jnp.ones((3, 4)), "heads": jnp.ones((2, 3, 5)), "b": jnp.ones(4)}


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"ns_steps": 0}, "ns_steps=0"),
        ({"ns_steps": 2.0}, "ns_steps=2.0"),
        ({"ns_coeffs": (1.0, 2.0)}, "ns_coeffs="),
        ({"ns_coeffs": ((1.0, 2.0, 3.0),) * 6}, "ns_steps=5"),
        ({"ns_coeffs": (1.0, np.nan, 3.0)}, "ns_coeffs="),
        ({"ns_coeffs": "nope"}, "ns_coeffs="),
        ({"preconditioning": "newton"}, "preconditioning='newton'"),
        ({"ns_dtype": jnp.int32}, "ns_dtype="),
        ({"consistent_rms": -0.2}, "consistent_rms=-0.2"),
        ({"consistent_rms": 0.2, "width_scaling": False}, "width_scaling=False"),
        ({"muon_weight_dimension_numbers": {"w": D(0.5, 1)}}, "reduction_axis"),
    ],
)
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        gx.muon(0.1, **kwargs)


@pytest.mark.parametrize(
    "dims,match",
    [
        ({"w": D(), "heads": D(0, 3), "b": None}, r"heads.*out of range"),
        ({"w": D(), "heads": D((0, 1), 1), "b": None}, r"heads.*twice"),
        ({"w": D(), "heads": D(-3, 2), "b": D()}, r"'b'.*needs a matrix"),
        ({"w": D(), "b": None}, "muon_weight_dimension_numbers"),
    ],
)
def test_dimension_numbers_that_do_not_fit_name_the_leaf(dims, match):
    with pytest.raises(ValueError, match=match):
        gx.muon(0.1, muon_weight_dimension_numbers=dims).init(PARAMS)


def test_scale_by_muon_needs_matrices_or_dimension_numbers():
    with pytest.raises(ValueError, match=r"'heads'.*weight_dimension_numbers"):
        gx.scale_by_muon().init({"w": PARAMS["w"], "heads": PARAMS["heads"]})
    with pytest.raises(ValueError, match=r"'b'.*None dimension numbers"):
        gx.scale_by_muon(weight_dimension_numbers={"w": D(), "b": None}).init(
            {"w": PARAMS["w"], "b": PARAMS["b"]}
        )


def test_a_batch_of_matrices_is_orthogonalized_matrix_by_matrix():
    """A (2, 3, 5) leaf with reduction axis 1 and output axis 2: each of its two (3, 5)
    matrices gets the update the matrix alone gets."""
    g = jnp.asarray(np.random.default_rng(0).normal(size=(2, 3, 5)), jnp.float32)
    tx = gx.scale_by_muon(weight_dimension_numbers=D(1, 2))
    u, _ = tx.update(g, tx.init(g))
    one = gx.scale_by_muon()
    for i in range(2):
        ui, _ = one.update(g[i], one.init(g[i]))
        np.testing.assert_allclose(u[i], ui, rtol=1e-6, atol=1e-7)
