"""Pytree utilities: optax's ``tree_utils`` / ``tree`` functions, by the same names.

Every function exists under its ``tree_*`` name (as in ``optax.tree_utils``) and
under its short name (as in ``optax.tree``): ``tree.tree_add`` is ``tree.add``.

Example:
  >>> import jax.numpy as jnp
  >>> from gradxform import tree
  >>> tree.norm({"a": jnp.array([3.0]), "b": jnp.array([4.0])})
  Array(5., dtype=float32)
"""

from gradxform.tree._access import NamedTupleKey as NamedTupleKey
from gradxform.tree._access import tree_get as tree_get
from gradxform.tree._access import tree_get_all_with_path as tree_get_all_with_path
from gradxform.tree._access import tree_map_params as tree_map_params
from gradxform.tree._access import tree_random_like as tree_random_like
from gradxform.tree._access import tree_set as tree_set
from gradxform.tree._access import tree_split_key_like as tree_split_key_like
from gradxform.tree._access import tree_unwrap_random_key_data as tree_unwrap_random_key_data
from gradxform.tree._dtypes import tree_cast as tree_cast
from gradxform.tree._dtypes import tree_cast_like as tree_cast_like
from gradxform.tree._dtypes import tree_dtype as tree_dtype
from gradxform.tree._math import tree_add as tree_add
from gradxform.tree._math import tree_add_scale as tree_add_scale
from gradxform.tree._math import tree_allclose as tree_allclose
from gradxform.tree._math import tree_batch_shape as tree_batch_shape
from gradxform.tree._math import tree_bias_correction as tree_bias_correction
from gradxform.tree._math import tree_clip as tree_clip
from gradxform.tree._math import tree_conj as tree_conj
from gradxform.tree._math import tree_div as tree_div
from gradxform.tree._math import tree_full_like as tree_full_like
from gradxform.tree._math import tree_l1_norm as tree_l1_norm
from gradxform.tree._math import tree_l2_norm as tree_l2_norm
from gradxform.tree._math import tree_linf_norm as tree_linf_norm
from gradxform.tree._math import tree_max as tree_max
from gradxform.tree._math import tree_min as tree_min
from gradxform.tree._math import tree_mul as tree_mul
from gradxform.tree._math import tree_norm as tree_norm
from gradxform.tree._math import tree_ones_like as tree_ones_like
from gradxform.tree._math import tree_real as tree_real
from gradxform.tree._math import tree_scale as tree_scale
from gradxform.tree._math import tree_size as tree_size
from gradxform.tree._math import tree_sub as tree_sub
from gradxform.tree._math import tree_sum as tree_sum
from gradxform.tree._math import tree_update_infinity_moment as tree_update_infinity_moment
from gradxform.tree._math import tree_update_moment as tree_update_moment
from gradxform.tree._math import (
    tree_update_moment_per_elem_norm as tree_update_moment_per_elem_norm,
)
from gradxform.tree._math import tree_vdot as tree_vdot
from gradxform.tree._math import tree_where as tree_where
from gradxform.tree._math import tree_zeros_like as tree_zeros_like

add = tree_add
add_scale = tree_add_scale
allclose = tree_allclose
batch_shape = tree_batch_shape
bias_correction = tree_bias_correction
cast = tree_cast
cast_like = tree_cast_like
clip = tree_clip
conj = tree_conj
div = tree_div
dtype = tree_dtype
full_like = tree_full_like
get = tree_get
get_all_with_path = tree_get_all_with_path
map_params = tree_map_params
max = tree_max
min = tree_min
mul = tree_mul
norm = tree_norm
ones_like = tree_ones_like
random_like = tree_random_like
real = tree_real
scale = tree_scale
set = tree_set
size = tree_size
split_key_like = tree_split_key_like
sub = tree_sub
sum = tree_sum
unwrap_random_key_data = tree_unwrap_random_key_data
update_infinity_moment = tree_update_infinity_moment
update_moment = tree_update_moment
update_moment_per_elem_norm = tree_update_moment_per_elem_norm
vdot = tree_vdot
where = tree_where
zeros_like = tree_zeros_like

__all__ = [
    "NamedTupleKey",
    "add",
    "add_scale",
    "allclose",
    "batch_shape",
    "bias_correction",
    "cast",
    "cast_like",
    "clip",
    "conj",
    "div",
    "dtype",
    "full_like",
    "get",
    "get_all_with_path",
    "map_params",
    "max",
    "min",
    "mul",
    "norm",
    "ones_like",
    "random_like",
    "real",
    "scale",
    "set",
    "size",
    "split_key_like",
    "sub",
    "sum",
    "tree_add",
    "tree_add_scale",
    "tree_allclose",
    "tree_batch_shape",
    "tree_bias_correction",
    "tree_cast",
    "tree_cast_like",
    "tree_clip",
    "tree_conj",
    "tree_div",
    "tree_dtype",
    "tree_full_like",
    "tree_get",
    "tree_get_all_with_path",
    "tree_l1_norm",
    "tree_l2_norm",
    "tree_linf_norm",
    "tree_map_params",
    "tree_max",
    "tree_min",
    "tree_mul",
    "tree_norm",
    "tree_ones_like",
    "tree_random_like",
    "tree_real",
    "tree_scale",
    "tree_set",
    "tree_size",
    "tree_split_key_like",
    "tree_sub",
    "tree_sum",
    "tree_unwrap_random_key_data",
    "tree_update_infinity_moment",
    "tree_update_moment",
    "tree_update_moment_per_elem_norm",
    "tree_vdot",
    "tree_where",
    "tree_zeros_like",
    "unwrap_random_key_data",
    "update_infinity_moment",
    "update_moment",
    "update_moment_per_elem_norm",
    "vdot",
    "where",
    "zeros_like",
]
