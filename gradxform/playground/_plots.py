"""Pictures: contour plots with paths, animated races, loss curves, schedule galleries.

Every function writes an image file and returns its path. matplotlib is an
optional dependency (``pip install 'gradxform[demo]'``); the Agg backend is used
so no display is needed.
"""

from __future__ import annotations

import pathlib
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gradxform._base import Schedule
from gradxform.playground._functions import TestFunction
from gradxform.playground._trajectories import Trajectory


def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend, or an ImportError that says how to install it."""
    try:
        import matplotlib
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("plotting needs matplotlib: pip install 'gradxform[demo]'") from e
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _grid(test_fn: TestFunction, n: int = 200) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    (x_lo, x_hi), (y_lo, y_hi) = test_fn.bounds
    xs, ys = np.meshgrid(np.linspace(x_lo, x_hi, n), np.linspace(y_lo, y_hi, n))
    pts = jnp.asarray(np.stack([xs.ravel(), ys.ravel()], axis=1), jnp.float32)
    zs = np.asarray(jax.jit(jax.vmap(test_fn.fn))(pts)).reshape(xs.shape)
    return xs, ys, zs


def plot_contour(ax: Any, test_fn: TestFunction) -> None:
    xs, ys, zs = _grid(test_fn)
    shifted = zs - zs.min() + 1e-3
    levels = np.geomspace(shifted.min(), shifted.max(), 30)
    ax.contour(xs, ys, shifted, levels=levels, cmap="viridis", linewidths=0.6, alpha=0.8)
    for mx, my in test_fn.minima:
        ax.plot(mx, my, marker="*", color="black", markersize=12, linestyle="none")
    (x_lo, x_hi), (y_lo, y_hi) = test_fn.bounds
    ax.set_xlim(x_lo, x_hi)
    ax.set_ylim(y_lo, y_hi)
    ax.set_title(f"{test_fn.name}: {test_fn.description}")


def _save(fig: Any, path: str | pathlib.Path) -> pathlib.Path:
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90, bbox_inches="tight")
    pyplot().close(fig)
    return path


def plot_paths(
    test_fn: TestFunction, trajs: Mapping[str, Trajectory], path: str | pathlib.Path
) -> pathlib.Path:
    """Contour lines of the function with each optimizer's path drawn over them (PNG)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.5))
    plot_contour(ax, test_fn)
    for name, traj in trajs.items():
        p = np.asarray(traj.path)
        ax.plot(p[:, 0], p[:, 1], marker=".", markersize=2, linewidth=1.2, label=name)
    ax.legend(loc="best", fontsize=8)
    return _save(fig, path)


def plot_losses(
    trajs: Mapping[str, Trajectory], path: str | pathlib.Path, minimum_value: float = 0.0
) -> pathlib.Path:
    """Objective gap ``f(x_t) - f*`` against the step, log scale (PNG)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, traj in trajs.items():
        gap = np.maximum(np.asarray(traj.losses, np.float64) - minimum_value, 1e-12)
        ax.semilogy(gap, label=name)
    ax.set_xlabel("step")
    ax.set_ylabel("f(x) - f*")
    ax.legend(loc="best", fontsize=8)
    return _save(fig, path)


def animate_race(
    test_fn: TestFunction,
    trajs: Mapping[str, Trajectory],
    path: str | pathlib.Path,
    *,
    frames: int = 30,
    fps: int = 10,
) -> pathlib.Path:
    """An animated GIF of the optimizers moving at once (matplotlib's Pillow writer)."""
    plt = pyplot()
    from matplotlib.animation import FuncAnimation, PillowWriter

    fig, ax = plt.subplots(figsize=(5, 3.8))
    plot_contour(ax, test_fn)
    paths = {name: np.asarray(t.path) for name, t in trajs.items()}
    steps = max(len(p) for p in paths.values())
    lines = {name: ax.plot([], [], linewidth=1.5, label=name)[0] for name in paths}
    heads = {name: ax.plot([], [], marker="o", color=lines[name].get_color())[0] for name in paths}
    ax.legend(loc="best", fontsize=7)
    cuts = np.unique(np.linspace(1, steps, frames).astype(int))

    def draw(i: int) -> list[Any]:
        for name, p in paths.items():
            k = min(int(cuts[i]), len(p))
            lines[name].set_data(p[:k, 0], p[:k, 1])
            heads[name].set_data(p[k - 1 : k, 0], p[k - 1 : k, 1])
        return [*lines.values(), *heads.values()]

    anim = FuncAnimation(fig, draw, frames=len(cuts), blit=True)
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    anim.save(str(path), writer=PillowWriter(fps=fps), dpi=55)
    plt.close(fig)
    return path


def plot_schedules(
    schedules: Mapping[str, Schedule], steps: int, path: str | pathlib.Path
) -> pathlib.Path:
    """One panel per schedule: its value at steps ``0 .. steps - 1`` (PNG)."""
    if not schedules:
        raise ValueError("schedules must contain at least one schedule")
    plt = pyplot()
    n = len(schedules)
    cols = min(3, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 2.6 * rows), squeeze=False)
    t = jnp.arange(steps, dtype=jnp.int32)
    for ax, (name, schedule) in zip(axes.ravel(), schedules.items(), strict=False):
        ax.plot(np.asarray(t), np.asarray(jax.vmap(schedule)(t)))
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    fig.tight_layout()
    return _save(fig, path)


def plot_lr_range_test(result: Any, path: str | pathlib.Path | None = None, ax: Any = None) -> Any:
    """The loss against the learning rate (log x) of an LR range test: the raw curve, the
    moving average that decides divergence and the centred average the suggestion is read
    from; the suggestion and the valley marked, the region where the loss rises shaded.

    ``result`` is what :func:`gradxform.find_learning_rate` returns. The y axis is
    logarithmic when every loss is positive, so that the divergence stays in view with the
    valley. Writes a PNG when ``path`` is given; returns the matplotlib axes.
    """
    plt = pyplot()
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(6.5, 3.8))
    lrs = np.asarray(result.learning_rates)
    ax.plot(lrs, result.losses, color="tab:blue", alpha=0.3, label="loss")
    ax.plot(lrs, result.smoothed_losses, color="tab:orange", lw=1, ls="--", label="moving average")
    centred = np.asarray(result.centred_losses)
    ax.plot(lrs[: len(centred)], centred, color="tab:blue", label="centred average")
    ax.axvline(
        result.suggestion,
        color="tab:green",
        lw=2,
        label=f"suggestion (valley / 3) {result.suggestion:.2g}",
    )
    ax.axvline(result.valley, color="grey", ls=":", label=f"valley {result.valley:.2g}")
    ax.axvspan(result.rising_from, lrs[-1], color="tab:red", alpha=0.12, label="loss rises")
    if result.diverged_at is not None:
        ax.plot(lrs[-1], result.losses[-1], "rx", label="diverged")
    ax.set_xscale("log" if lrs[0] > 0 and lrs[-1] / lrs[0] > 20 else "linear")
    shown = np.concatenate([np.asarray(result.losses), centred])
    shown = shown[np.isfinite(shown)]
    if shown.size and shown.min() > 0:
        ax.set_yscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss")
    ax.legend(fontsize=7)
    if path is not None:
        target = ax.figure if fig is None else fig
        pathlib.Path(path).parent.mkdir(parents=True, exist_ok=True)
        target.savefig(path, dpi=90, bbox_inches="tight")
    return ax
