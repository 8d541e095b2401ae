"""The learning-rate range test."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradxform as gx
from gradxform import (
    find_learning_rate,
)
from tests._require import require


@pytest.mark.parametrize(
    ("mode", "low", "high", "expected"),
    [
        ("exp", 1e-4, 1.0, [1e-4, 1e-3, 1e-2, 1e-1, 1.0]),
        ("linear", 0.1, 0.5, [0.1, 0.2, 0.3, 0.4, 0.5]),
    ],
)
def test_range_test_learning_rates_span_the_range(mode, low, high, expected):
    loss = lambda p, b: jnp.sum((p - b) ** 2)
    r = find_learning_rate(
        loss,
        jnp.ones(2),
        jnp.zeros((1, 2)),
        gx.sgd,
        min_lr=low,
        max_lr=high,
        num_steps=5,
        mode=mode,
    )
    np.testing.assert_allclose(np.asarray(r.learning_rates), expected, rtol=1e-5)


@pytest.mark.parametrize("curvature", [1.0, 4.0, 20.0])
def test_quadratic_suggestion_is_in_the_stable_range(curvature):
    # Gradient descent on curvature c converges iff lr < 2 / c.
    loss = lambda p, b: 0.5 * curvature * jnp.sum((p - b) ** 2)
    r = find_learning_rate(
        loss, jnp.ones(4), jnp.zeros((1, 4)), gx.sgd, min_lr=1e-5, max_lr=100.0, num_steps=80
    )
    assert r.diverged_at is not None
    assert 1e-3 / curvature < r.suggestion < 2.0 / curvature
    assert r.min_over_10 < 2.0 / curvature
    assert len(r.learning_rates) == r.diverged_at + 1
    assert np.all(np.diff(r.learning_rates) > 0)


def test_smoothed_losses_follow_the_formula():
    losses_seen = np.array([3.0, 1.0, 2.0, 5.0])
    batches = jnp.asarray(losses_seen)[:, None]
    loss = lambda p, b: jnp.sum(p * 0.0) + b[0]  # the loss is the batch itself
    r = find_learning_rate(
        loss, jnp.zeros(1), batches, gx.sgd, num_steps=4, smoothing=0.5, diverge_threshold=100.0
    )
    avg, expected = 0.0, []
    for t, x in enumerate(losses_seen, start=1):
        avg = 0.5 * avg + 0.5 * x
        expected.append(avg / (1 - 0.5**t))
    np.testing.assert_allclose(r.smoothed_losses, expected, rtol=1e-6)
    assert r.diverged_at is None


def test_bad_arguments():
    loss = lambda p, b: jnp.sum(p)
    with pytest.raises(ValueError, match="max_lr"):
        find_learning_rate(loss, jnp.ones(1), jnp.zeros((1, 1)), gx.sgd, min_lr=1.0, max_lr=0.5)
    with pytest.raises(ValueError, match="mode"):
        find_learning_rate(loss, jnp.ones(1), jnp.zeros((1, 1)), gx.sgd, mode="cubic")
    with pytest.raises(ValueError, match="num_steps"):
        find_learning_rate(loss, jnp.ones(1), jnp.zeros((1, 1)), gx.sgd, num_steps=2)


def test_digits_suggestion_trains_to_97_percent(tmp_path):
    require("sklearn")
    from gradxform import playground

    data = playground.load_digits()
    params = playground.init_mlp(jax.random.key(0))
    bs = 64
    n = len(data.x_train) // bs * bs
    batches = (data.x_train[:n].reshape(-1, bs, 64), data.y_train[:n].reshape(-1, bs))
    loss = lambda p, b: playground.cross_entropy(p, b[0], b[1])
    r = find_learning_rate(loss, params, batches, gx.adam, num_steps=100)
    result = playground.train_digits(gx.adam(r.suggestion), data, epochs=20)
    assert result.test_accuracy >= 0.97, (r.suggestion, result.test_accuracy)
    require("matplotlib")
    r.plot(tmp_path / "lr.png")
    assert (tmp_path / "lr.png").stat().st_size > 1000
