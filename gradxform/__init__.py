"""gradxform: functional gradient transformations and schedules for JAX."""

from importlib.metadata import PackageNotFoundError, version

from gradxform._base import EmptyState as EmptyState
from gradxform._base import GradientTransformation as GradientTransformation
from gradxform._base import OptState as OptState
from gradxform._base import Params as Params
from gradxform._base import ScalarOrSchedule as ScalarOrSchedule
from gradxform._base import Schedule as Schedule
from gradxform._base import Updates as Updates
from gradxform._base import apply_updates as apply_updates
from gradxform._base import chain as chain
from gradxform._base import identity as identity
from gradxform._base import stateless as stateless
from gradxform._tree import bias_correction as bias_correction
from gradxform._tree import ema as ema
from gradxform._tree import global_norm as global_norm
from gradxform._tree import safe_increment as safe_increment
from gradxform.optimizers.adam import adam as adam
from gradxform.optimizers.adam import adamw as adamw
from gradxform.optimizers.classic import adagrad as adagrad
from gradxform.optimizers.classic import rmsprop as rmsprop
from gradxform.optimizers.classic import sgd as sgd
from gradxform.transforms.decay import add_decayed_weights as add_decayed_weights
from gradxform.transforms.moments import ScaleByAdagradState as ScaleByAdagradState
from gradxform.transforms.moments import ScaleByAdamState as ScaleByAdamState
from gradxform.transforms.moments import ScaleByRmsState as ScaleByRmsState
from gradxform.transforms.moments import TraceState as TraceState
from gradxform.transforms.moments import scale_by_adagrad as scale_by_adagrad
from gradxform.transforms.moments import scale_by_adam as scale_by_adam
from gradxform.transforms.moments import scale_by_momentum as scale_by_momentum
from gradxform.transforms.moments import scale_by_rms as scale_by_rms
from gradxform.transforms.scaling import ScaleByScheduleState as ScaleByScheduleState
from gradxform.transforms.scaling import scale as scale
from gradxform.transforms.scaling import scale_by_learning_rate as scale_by_learning_rate
from gradxform.transforms.scaling import scale_by_schedule as scale_by_schedule

try:
    __version__ = version("gradxform")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

__all__ = [
    "EmptyState",
    "GradientTransformation",
    "OptState",
    "Params",
    "ScalarOrSchedule",
    "ScaleByAdagradState",
    "ScaleByAdamState",
    "ScaleByRmsState",
    "ScaleByScheduleState",
    "Schedule",
    "TraceState",
    "Updates",
    "adagrad",
    "adam",
    "adamw",
    "add_decayed_weights",
    "apply_updates",
    "bias_correction",
    "chain",
    "ema",
    "global_norm",
    "identity",
    "rmsprop",
    "safe_increment",
    "scale",
    "scale_by_adagrad",
    "scale_by_adam",
    "scale_by_learning_rate",
    "scale_by_momentum",
    "scale_by_rms",
    "scale_by_schedule",
    "sgd",
    "stateless",
]
