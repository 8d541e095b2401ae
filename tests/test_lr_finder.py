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


def test_centred_average_follows_the_formula():
    values = np.array([4.0, 1.0, 3.0, 8.0, 2.0])
    got = gx._lr_finder.centred_average(values, 1)  # the helper itself
    expected = [np.mean(values[max(i - 1, 0) : i + 2]) for i in range(len(values))]
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def _quadratic_test(curvature: float, **kwargs):
    loss = lambda p, b: 0.5 * curvature * jnp.sum((p - b) ** 2)
    return find_learning_rate(
        loss, jnp.ones(4), jnp.zeros((1, 4)), gx.sgd, min_lr=1e-5, max_lr=100.0, **kwargs
    )


@pytest.mark.parametrize("curvature", [1.0, 4.0, 20.0])
def test_suggestion_is_below_the_valley_and_the_rising_region(curvature):
    r = _quadratic_test(curvature, num_steps=80)
    assert r.suggestion == pytest.approx(r.valley / 3)
    assert r.min_over_10 == pytest.approx(r.valley / 10)
    assert r.suggestion < r.valley < r.rising_from
    # the region marked as rising is where gradient descent on curvature c stops
    # converging fast: past the valley, at or above about 1 / c
    assert r.rising_from > 0.5 / curvature
    assert r.steepest <= r.valley
    assert 0.9 < r.drop <= 1.0
    assert r.constant_rate(sign_based=True) == pytest.approx(r.suggestion / 10)


def test_runs_are_the_same_test_from_rotated_batch_orders():
    rng = np.random.default_rng(0)
    batches = jnp.asarray(rng.normal(size=(4, 3)), jnp.float32)
    loss = lambda p, b: jnp.sum((p - b) ** 2) + 0.1 * jnp.sum(p**4)
    kw = dict(min_lr=1e-3, max_lr=0.3, num_steps=12, diverge_threshold=1e6)
    both = find_learning_rate(loss, jnp.ones(3), batches, gx.adam, num_runs=2, **kw)
    first = find_learning_rate(loss, jnp.ones(3), batches, gx.adam, **kw)
    second = find_learning_rate(loss, jnp.ones(3), jnp.roll(batches, -2, axis=0), gx.adam, **kw)
    assert both.run_losses.shape == (2, 12)
    np.testing.assert_allclose(both.run_losses[0], first.losses, rtol=1e-6)
    np.testing.assert_allclose(both.run_losses[1], second.losses, rtol=1e-6)
    np.testing.assert_allclose(both.losses, (first.losses + second.losses) / 2, rtol=1e-6)


def test_a_range_that_never_trains_has_no_drop_and_suggests_its_start():
    loss = lambda p, b: jnp.sum((p - b) ** 2)
    r = find_learning_rate(
        loss, jnp.ones(2), jnp.zeros((1, 2)), gx.sgd, min_lr=1e-9, max_lr=1e-8, num_steps=20
    )
    assert r.drop < 1e-6
    assert r.suggestion == pytest.approx(1e-9)


def test_window_and_num_runs_are_validated():
    loss = lambda p, b: jnp.sum(p)
    with pytest.raises(ValueError, match="num_runs=0"):
        find_learning_rate(loss, jnp.ones(1), jnp.zeros((1, 1)), gx.sgd, num_runs=0)
    with pytest.raises(ValueError, match="window=0"):
        find_learning_rate(loss, jnp.ones(1), jnp.zeros((1, 1)), gx.sgd, window=0)


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


def test_suggestion_trains_within_one_and_a_half_points_of_the_best_grid_rate():
    """The study of the documentation, smaller: four optimizers, two initialisations and
    batch orders, 10 epochs; the rate the range test gives (LRRangeTest.constant_rate)
    against the best of the half-decade grid, by test accuracy."""
    require("sklearn")
    from gradxform import playground

    rows = playground.suggestion_study(seeds=(0, 1), epochs=10)
    assert len(rows) == 8
    for row in rows:
        assert not row.diverged, row
        assert row.best_accuracy - row.accuracy <= 0.015, row
