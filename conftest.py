"""Test configuration: strict dtype and rank promotion so silent upcasts and broadcasts fail."""

import jax

jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")
