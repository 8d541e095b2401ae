"""Muon: orthogonalized momentum for the matrices, AdamW for every other leaf."""

from __future__ import annotations

from typing import Any

import chex
import jax

from gradxform import _checks
from gradxform._base import GradientTransformation, Mask, ScalarOrSchedule, chain
from gradxform._optimizers.adam import adamw
from gradxform._transforms.matrices import (
    MuonDimensionNumbers,
    check_weight_dimension_numbers,
    leaf_dimension_numbers,
)
from gradxform._transforms.muon import (
    DEFAULT_NS_COEFFS,
    check_ns_coeffs,
    scale_by_muon,
    scale_by_shape,
)
from gradxform._transforms.scaling import scale_by_learning_rate
from gradxform._transforms.weight_decay import add_decayed_weights
from gradxform._wrappers.masking import is_mask_fn
from gradxform._wrappers.partition import partition

# Per-step coefficients of Ahn et al. 2025 ("Dion: Distributed Orthonormalized Updates").
NS_COEFFS_PRESETS: dict[str, Any] = {
    "standard": DEFAULT_NS_COEFFS,
    "dion": (
        (4.0848, -6.8946, 2.9270),
        (3.9505, -6.3029, 2.6377),
        (3.7418, -5.5913, 2.3037),
        (2.8769, -3.1427, 1.2046),
        (2.8366, -3.0525, 1.2012),
    ),
}


def muon(
    learning_rate: ScalarOrSchedule,
    ns_coeffs: Any = DEFAULT_NS_COEFFS,
    ns_steps: int = 5,
    beta: chex.Numeric = 0.95,
    eps: chex.Numeric = 1e-8,
    weight_decay: ScalarOrSchedule = 0.0,
    weight_decay_mask: Mask = None,
    mu_dtype: Any | None = None,
    *,
    nesterov: bool = True,
    adaptive: bool = False,
    preconditioning: str = "frobenius",
    adam_b1: chex.Numeric = 0.9,
    adam_b2: chex.Numeric = 0.999,
    adam_eps_root: chex.Numeric = 0.0,
    adam_weight_decay: ScalarOrSchedule = 0.0,
    adam_learning_rate: ScalarOrSchedule | None = None,
    muon_weight_dimension_numbers: Any = None,
    consistent_rms: chex.Numeric | None = None,
    bias_correction: bool = True,
    width_scaling: bool = True,
    ns_dtype: Any | None = None,
) -> GradientTransformation:
    """Muon (Jordan et al. 2024, "Muon: An optimizer for hidden layers in neural networks").

    Each matrix leaf ``W`` (``fan_in`` rows, ``fan_out`` columns) takes the step::

        O_t = orthogonalized momentum          (:func:`scale_by_muon`: NS iteration)
        W_t = W_{t-1} - eta * (s(W) * O_t + lambda * W_{t-1})
        s(W) = sqrt(max(1, fan_out / fan_in))                  (consistent_rms=None)
        s(W) = consistent_rms * sqrt(max(fan_in, fan_out))     (Liu et al. 2025)
        s(W) = 1                                               (width_scaling=False)

    where the orthogonalization is ``X <- aX + b(XX^T)X + c(XX^T)^2 X`` run
    ``ns_steps`` times from ``M_t / (||M_t||_F + eps)`` (transposed when rows > cols),
    ``M_t`` the (Nesterov) momentum. ``consistent_rms=0.2`` gives the update AdamW's
    typical RMS, so AdamW's learning rate and weight decay carry over (Liu et al. 2025,
    "Muon is Scalable for LLM Training").

    Every other leaf goes to :func:`adamw` with ``adam_b1``, ``adam_b2``, ``eps``,
    ``adam_eps_root``, ``adam_weight_decay``, ``mu_dtype`` and ``nesterov`` (as optax):
    by default the leaves that are not 2-D. With ``muon_weight_dimension_numbers``
    (a tree of :class:`MuonDimensionNumbers`, a prefix of the params, or a function of
    the params returning one) a leaf with dimension numbers is a Muon leaf (a leaf of
    more than two axes is a batch of matrices) and a ``None`` leaf goes to AdamW:
    embeddings and the output head, say. The state is a :class:`PartitionState` with
    the labels ``"muon"`` and ``"adam"``.

    The shape factor in other libraries (for a ``(fan_out, fan_in)`` torch weight, say
    ``MuonDimensionNumbers(reduction_axis=1, output_axis=0)``):

    * ``torch.optim.Muon(adjust_lr_fn=None or "original")``: ``consistent_rms=None``;
      ``adjust_lr_fn="match_rms_adamw"``: ``consistent_rms=0.2``. Torch's momentum is
      ``bias_correction=False`` and its iteration runs in ``ns_dtype=jnp.bfloat16``.
    * ``keras.optimizers.Muon(rms_rate=r)``: ``consistent_rms=r``; ``rms_rate=None``:
      ``width_scaling=False``; keras' momentum is ``bias_correction=False`` and its
      ``adam_lr_ratio`` is ``adam_learning_rate=learning_rate * adam_lr_ratio``.

    Args:
      learning_rate: ``eta``, a non-negative float, JAX scalar or schedule.
      ns_coeffs: ``(a, b, c)``, a tuple of per-step triples, or a preset name:
        ``"standard"`` (the default triple) or ``"dion"`` (five per-step triples).
      ns_steps: number of Newton-Schulz iterations (an int >= 1).
      beta: momentum decay in ``[0, 1)``.
      eps: non-negative term added to the norm before the iteration, and AdamW's eps.
      weight_decay: non-negative decoupled decay ``lambda`` of the Muon leaves (times
        ``eta``), or a schedule of it.
      weight_decay_mask: which Muon leaves to decay (a tree of bools or a function).
      mu_dtype: dtype of the first moments (Muon's and AdamW's).
      nesterov: Nesterov momentum (Muon and AdamW).
      adaptive: scale each orthogonalized leaf by ``<M_t, O_t>``.
      preconditioning: the scaling before the iteration: ``"frobenius"``,
        ``"spectral"``, ``"aol"`` or ``"schatten"`` (see :func:`scale_by_muon`).
      adam_b1: AdamW's first-moment decay.
      adam_b2: AdamW's second-moment decay.
      adam_eps_root: AdamW's term inside the root.
      adam_weight_decay: AdamW's decoupled weight decay.
      adam_learning_rate: AdamW's learning rate; ``None``: ``learning_rate``.
      muon_weight_dimension_numbers: which leaves are matrices and how (see above).
      consistent_rms: ``r`` for the factor ``r * sqrt(max(fan_in, fan_out))``, or None.
      bias_correction: correct the momentum by ``1 - beta**t`` (optax); ``False``:
        torch's and keras' momentum.
      width_scaling: with ``consistent_rms=None``, multiply by
        ``sqrt(max(1, fan_out / fan_in))``; ``False``: no shape factor.
      ns_dtype: dtype of the iteration (default: at least float32, whatever the params).

    Example:
      >>> import jax.numpy as jnp, gradxform as gx
      >>> params = {"w": jnp.ones((2, 3)), "b": jnp.zeros(3)}
      >>> tx = gx.muon(0.1)
      >>> grads = {"w": jnp.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]), "b": jnp.ones(3)}
      >>> updates, _ = tx.update(grads, tx.init(params), params)
      >>> updates["w"][0, 0].round(3)  # -0.1 * sqrt(3 / 2) * 1.108 (NS of 1 / sqrt(2))
      Array(-0.136, dtype=float32)
      >>> updates["b"].round(3)  # AdamW, Nesterov: -0.1 * (0.9 * 0.1 / 0.19 + 1)
      Array([-0.147, -0.147, -0.147], dtype=float32)
    """
    _checks.non_negative("learning_rate", learning_rate)
    if adam_learning_rate is not None:
        _checks.non_negative("adam_learning_rate", adam_learning_rate)
    if isinstance(ns_coeffs, str):
        _checks.one_of("ns_coeffs", ns_coeffs, tuple(NS_COEFFS_PRESETS))
        ns_coeffs = NS_COEFFS_PRESETS[ns_coeffs]
    check_ns_coeffs(ns_coeffs, ns_steps)
    _checks.decay_rate("adam_b1", adam_b1, allow_schedule=False)
    _checks.decay_rate("adam_b2", adam_b2, allow_schedule=False)
    _checks.non_negative("adam_eps_root", adam_eps_root, allow_schedule=False)
    _checks.non_negative("weight_decay", weight_decay)
    _checks.non_negative("adam_weight_decay", adam_weight_decay)
    spec = muon_weight_dimension_numbers
    check_weight_dimension_numbers(spec, "muon_weight_dimension_numbers")

    def labels(tree: Any) -> Any:
        if spec is None:
            return jax.tree.map(lambda x: "muon" if len(x.shape) == 2 else "adam", tree)
        dims = leaf_dimension_numbers(spec, tree, "muon_weight_dimension_numbers")
        treedef = jax.tree.structure(tree)
        return jax.tree_util.tree_unflatten(
            treedef, ["adam" if d is None else "muon" for d in dims]
        )

    def decay_mask(tree: Any) -> Any:
        # ``tree`` holds the Muon leaves, the others masked out (empty nodes): the user's
        # mask, a tree over all the params or a prefix of it, is read at the Muon leaves.
        mask = weight_decay_mask
        if is_mask_fn(mask):
            mask = mask(tree)  # type: ignore[misc]
        try:
            return jax.tree.map(lambda on, sub: jax.tree.map(lambda _: on, sub), mask, tree)
        except (TypeError, ValueError) as e:
            raise ValueError(
                f"weight_decay_mask must be a tree of bools with the structure of the params "
                f"(or a prefix of it), or a function of the params returning one: {e}"
            ) from None

    # The Muon leaves arrive with the others masked out; every one has dimension numbers.
    inner_dims = MuonDimensionNumbers() if spec is None else spec
    return partition(
        {
            "muon": chain(
                scale_by_muon(
                    ns_coeffs,
                    ns_steps,
                    beta,
                    eps,
                    mu_dtype,
                    nesterov=nesterov,
                    adaptive=adaptive,
                    preconditioning=preconditioning,
                    weight_dimension_numbers=inner_dims,
                    bias_correction=bias_correction,
                    ns_dtype=ns_dtype,
                ),
                scale_by_shape(inner_dims, consistent_rms, width_scaling=width_scaling),
                add_decayed_weights(
                    weight_decay, None if weight_decay_mask is None else decay_mask
                ),
                scale_by_learning_rate(learning_rate),
            ),
            "adam": adamw(
                learning_rate if adam_learning_rate is None else adam_learning_rate,
                b1=adam_b1,
                b2=adam_b2,
                eps=eps,
                eps_root=adam_eps_root,
                mu_dtype=mu_dtype,
                weight_decay=adam_weight_decay,
                nesterov=nesterov,
            ),
        },
        labels,
    )
