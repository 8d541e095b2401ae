"""Test functions, trajectories and pictures."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradxform as gx
from gradxform import playground as F
from gradxform.playground import steps_to_tolerance, trajectories, trajectory
from tests._require import require


@pytest.mark.parametrize("name", list(F.FUNCTIONS))
def test_known_minima_are_stationary_minima(name):
    f = F.FUNCTIONS[name]
    for m in f.minima:
        x = jnp.asarray(m, jnp.float32)
        np.testing.assert_allclose(float(f.fn(x)), f.minimum_value, atol=1e-5)
        np.testing.assert_allclose(np.asarray(jax.grad(f.fn)(x)), 0.0, atol=1e-3)
        eig = np.linalg.eigvalsh(np.asarray(jax.hessian(f.fn)(x), np.float64))
        assert eig.min() > 0, f"{name}: {m} is not a strict minimum ({eig})"


def test_minimum_values_are_global_on_a_grid():
    for f in F.FUNCTIONS.values():
        (x_lo, x_hi), (y_lo, y_hi) = f.bounds
        xs, ys = np.meshgrid(np.linspace(x_lo, x_hi, 301), np.linspace(y_lo, y_hi, 301))
        pts = jnp.asarray(np.stack([xs.ravel(), ys.ravel()], 1), jnp.float32)
        assert float(jnp.min(jax.vmap(f.fn)(pts))) >= f.minimum_value - 1e-3, f.name


def test_saddle_origin_is_a_saddle():
    eig = np.linalg.eigvalsh(np.asarray(jax.hessian(F.saddle)(jnp.zeros(2)), np.float64))
    assert eig.min() < 0 < eig.max()


def test_momentum_escapes_the_local_minimum_where_sgd_stalls():
    f = F.FUNCTIONS["local_minimum"]
    runs = trajectories(
        f.fn,
        {"sgd": gx.sgd(0.1), "momentum": gx.sgd(0.1, momentum=0.9)},
        jnp.asarray(f.x0),
        steps=500,
    )
    sgd_end = np.asarray(runs["sgd"].path[-1])
    mom_end = np.asarray(runs["momentum"].path[-1])
    assert np.linalg.norm(sgd_end - np.array([4.0, 1.0])) < 0.4  # stuck near (4, 1)
    assert float(runs["sgd"].losses[-1]) > 0.5
    np.testing.assert_allclose(mom_end, [0.0, 0.0], atol=1e-3)  # global minimum


def test_momentum_beats_sgd_in_the_valley():
    f = F.FUNCTIONS["valley"]
    # The largest stable plain-GD rate is 2/25; momentum with the same rate goes faster.
    runs = trajectories(
        f.fn,
        {"sgd": gx.sgd(0.05), "momentum": gx.sgd(0.05, momentum=0.8)},
        jnp.asarray(f.x0),
        steps=300,
    )
    t_sgd = steps_to_tolerance(runs["sgd"], 0.0, 1e-6)
    t_mom = steps_to_tolerance(runs["momentum"], 0.0, 1e-6)
    assert t_mom is not None and t_sgd is not None and t_mom < t_sgd


def test_trajectory_matches_a_hand_loop_and_vmaps_over_starts():
    f = F.FUNCTIONS["beale"]
    tx = gx.adam(0.05)
    starts = jnp.array([[1.0, 1.5], [0.5, -0.5]])
    batch = trajectory(f.fn, tx, starts, steps=25)
    assert batch.path.shape == (2, 26, 2) and batch.losses.shape == (2, 26)
    for i in range(2):
        x, s = starts[i], tx.init(starts[i])
        for _ in range(25):
            u, s = tx.update(jax.grad(f.fn)(x), s, x)
            x = gx.apply_updates(x, u)
        np.testing.assert_allclose(np.asarray(batch.path[i, -1]), np.asarray(x), rtol=1e-5)


def test_steps_to_tolerance():
    traj = trajectory(F.quadratic_valley, gx.sgd(0.5), jnp.array([2.0, 0.0]), steps=10)
    # x_t = 2 * 0.5**t, f = x**2 / 2 = 2 * 0.25**t <= 1e-3 first at t = 6 (2/4096).
    assert steps_to_tolerance(traj, 0.0, 1e-3) == 6
    assert steps_to_tolerance(traj, 0.0, 1e-12) is None


def test_unknown_function_lists_valid_names():
    with pytest.raises(ValueError, match="rosenbrock"):
        F.get_function("nope")


def test_bad_trajectory_arguments():
    with pytest.raises(ValueError, match="steps"):
        trajectory(F.beale, gx.sgd(0.1), jnp.zeros(2), steps=0)
    with pytest.raises(ValueError, match="x0"):
        trajectory(F.beale, gx.sgd(0.1), jnp.zeros((1, 1, 2)), steps=3)


def test_plots_write_non_empty_images(tmp_path):
    plots = F
    require("matplotlib")
    f = F.FUNCTIONS["rosenbrock"]
    runs = trajectories(
        f.fn,
        {"adam": gx.adam(0.05), "sgd": gx.sgd(1e-3, momentum=0.9)},
        jnp.asarray(f.x0),
        steps=60,
    )
    outputs = [
        plots.plot_paths(f, runs, tmp_path / "paths.png"),
        plots.plot_losses(runs, tmp_path / "losses.png"),
        plots.animate_race(f, runs, tmp_path / "race.gif", frames=5),
        plots.plot_schedules(
            {
                "const": lambda t: jnp.ones_like(t, jnp.float32),
                "decay": lambda t: 0.99 ** t.astype(jnp.float32),
            },
            50,
            tmp_path / "schedules.png",
        ),
    ]
    for path in outputs:
        data = path.read_bytes()
        assert len(data) > 1000, path
    assert outputs[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert outputs[2].read_bytes()[:6] in (b"GIF89a", b"GIF87a")
