"""NumPy references for differential privacy (DP-SGD), written from Abadi et al. 2016,
"Deep Learning with Differential Privacy", Algorithm 1.

The references take per-example gradients: every leaf has the batch on axis 0. The
clipping, the sum, the noise scale and the average are float64 NumPy. The standard
normal draws are the documented key schedule (optax's): ``jax.random.key(seed)`` (or the
typed key given), and at every step the key split into ``1 + K`` keys, the first kept,
one per leaf for ``jax.random.normal`` in float32. ``jax.random`` is used only as the
source of those draws.

``PerExample`` and :func:`per_example_view` turn the ordinary gradients that the sweep
harness feeds into a batch of ``B`` examples, the same way on both sides.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import gradxform as gx
from tests import references as ref

# Example b of the batch made from one gradient g: EXAMPLE_WEIGHTS[b] * g + EXAMPLE_SHIFTS[b] *
# g**2 (not parallel to g, so clipping changes the direction of the sum). Their norms
# straddle the clipping bounds the tests use (0.5 .. 4), and one example is 0. A zero
# gradient gives zero examples, and the shifts (powers of two) sum to exactly zero in
# every float format: unclipped, the batch's mean is 0.65 g, a descent direction.
EXAMPLE_WEIGHTS = (1.0, -0.4, 2.5, 0.0, 0.15)
EXAMPLE_SHIFTS = (0.0, 0.25, -0.125, 0.0, -0.125)


def _typed(key: Any = None, seed: Any = None) -> jax.Array:
    if seed is not None:
        key = seed
    if key is None:
        key = 0
    if isinstance(key, jax.Array) and jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return key
    return jax.random.key(int(key))


class StandardNormals:
    """The standard normal draws of each step, leaf by leaf (float32, returned as float64)."""

    def __init__(self, key: Any = None, seed: Any = None):
        self.key = _typed(key, seed)

    def draw(self, shapes: list[tuple[int, ...]]) -> list[np.ndarray]:
        self.key, *keys = jax.random.split(self.key, len(shapes) + 1)
        return [
            np.asarray(jax.random.normal(k, s, jnp.float32), np.float64)
            for k, s in zip(keys, shapes, strict=True)
        ]


def clip_per_example(gs: list[np.ndarray], c: float) -> list[np.ndarray]:
    """Each example's gradient (all leaves together) scaled to l2 norm at most ``c``."""
    batch = gs[0].shape[0]
    sq = sum(np.sum(np.abs(g.reshape(batch, -1)) ** 2, axis=1) for g in gs)
    norms = np.sqrt(sq)
    with np.errstate(divide="ignore"):
        factors = np.where(norms > c, c / np.where(norms > 0, norms, 1.0), 1.0)
    return [g * factors.reshape((batch,) + (1,) * (g.ndim - 1)) for g in gs]


class DPAggregate(ref.TreeReference):
    """``(sum_b clip_C(g[b]) + sigma C z) / B``, ``z`` the standard normals of the step."""

    def __init__(self, l2_norm_clip, noise_multiplier, key=None, *, seed=None):
        self.c, self.sigma = float(l2_norm_clip), float(noise_multiplier)
        self.key, self.seed = key, seed

    def init(self, ps):
        return StandardNormals(self.key, self.seed)

    def step(self, gs, s, ps, **extra):
        clipped = clip_per_example([np.asarray(g, np.float64) for g in gs], self.c)
        batch = gs[0].shape[0]
        zs = s.draw([g.shape[1:] for g in gs])
        out = [
            (g.sum(axis=0) + self.sigma * self.c * z) / batch
            for g, z in zip(clipped, zs, strict=True)
        ]
        return out, s


class DPSGD(ref.TreeReference):
    """DP aggregation, then SGD (heavy ball or Nesterov momentum) on its output."""

    def __init__(
        self, learning_rate, l2_norm_clip, noise_multiplier, seed, momentum=None, nesterov=False
    ):
        self.aggregate = DPAggregate(l2_norm_clip, noise_multiplier, seed)
        self.sgd = ref.SGD(learning_rate, momentum, nesterov)

    def init(self, ps):
        return self.aggregate.init(ps), [self.sgd.init(p) for p in ps]

    def step(self, gs, s, ps, **extra):
        noise, moments = s
        gtilde, noise = self.aggregate.step(gs, noise, ps)
        steps = [self.sgd.step(g, m, p) for g, m, p in zip(gtilde, moments, ps, strict=True)]
        return [u for u, _ in steps], (noise, [m for _, m in steps])


class PerExample(ref.TreeReference):
    """``inner`` fed the batch that :func:`per_example_view` makes from each gradient."""

    def __init__(self, inner: ref.TreeReference):
        self.inner = inner

    def init(self, ps):
        return self.inner.init(ps)

    def step(self, gs, s, ps, **extra):
        batch = [
            np.stack(
                [w * g + b * g * g for w, b in zip(EXAMPLE_WEIGHTS, EXAMPLE_SHIFTS, strict=True)]
            )
            for g in gs
        ]
        return self.inner.step(batch, s, ps, **extra)


def per_example_view() -> gx.GradientTransformation:
    """A stateless transformation: each gradient ``g`` -> the batch ``[w_b g + s_b g**2]_b``."""

    def expand(g: Any) -> Any:
        if g.dtype == jax.dtypes.float0:  # an integer leaf's gradient: per example too
            return np.zeros((len(EXAMPLE_WEIGHTS), *g.shape), jax.dtypes.float0)
        w = jnp.asarray(EXAMPLE_WEIGHTS, g.dtype).reshape((-1,) + (1,) * g.ndim)
        b = jnp.asarray(EXAMPLE_SHIFTS, g.dtype).reshape((-1,) + (1,) * g.ndim)
        return w * g[None] + b * (g * g)[None]

    return gx.stateless(lambda updates, params: jax.tree.map(expand, updates))
