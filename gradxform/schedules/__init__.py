"""Learning-rate schedules: pure functions ``step -> value``, one module per family.

Every schedule is exported here (``gradxform.schedules.X``, as ``optax.schedules.X``);
the ones optax has take optax's arguments, in optax's order, with optax's defaults.
"""

from gradxform._base import Schedule as Schedule
from gradxform.schedules._basic import constant_schedule as constant_schedule
from gradxform.schedules._basic import linear_schedule as linear_schedule
from gradxform.schedules._basic import piecewise_constant_schedule as piecewise_constant_schedule
from gradxform.schedules._basic import (
    piecewise_interpolate_schedule as piecewise_interpolate_schedule,
)
from gradxform.schedules._basic import polynomial_schedule as polynomial_schedule
from gradxform.schedules._cosine import cosine_decay_schedule as cosine_decay_schedule
from gradxform.schedules._cosine import sgdr_schedule as sgdr_schedule
from gradxform.schedules._cyclical import cosine_onecycle_schedule as cosine_onecycle_schedule
from gradxform.schedules._cyclical import cyclical_schedule as cyclical_schedule
from gradxform.schedules._cyclical import linear_onecycle_schedule as linear_onecycle_schedule
from gradxform.schedules._cyclical import one_cycle_momentum_schedule as one_cycle_momentum_schedule
from gradxform.schedules._cyclical import one_cycle_schedule as one_cycle_schedule
from gradxform.schedules._decay import exponential_decay as exponential_decay
from gradxform.schedules._decay import inverse_sqrt_schedule as inverse_sqrt_schedule
from gradxform.schedules._decay import inverse_time_decay as inverse_time_decay
from gradxform.schedules._join import join_schedules as join_schedules
from gradxform.schedules._warmup import warmup_constant_schedule as warmup_constant_schedule
from gradxform.schedules._warmup import warmup_cosine_decay_schedule as warmup_cosine_decay_schedule
from gradxform.schedules._warmup import (
    warmup_exponential_decay_schedule as warmup_exponential_decay_schedule,
)
from gradxform.schedules._warmup import warmup_stable_decay_schedule as warmup_stable_decay_schedule

__all__ = [
    "Schedule",
    "constant_schedule",
    "cosine_decay_schedule",
    "cosine_onecycle_schedule",
    "cyclical_schedule",
    "exponential_decay",
    "inverse_sqrt_schedule",
    "inverse_time_decay",
    "join_schedules",
    "linear_onecycle_schedule",
    "linear_schedule",
    "one_cycle_momentum_schedule",
    "one_cycle_schedule",
    "piecewise_constant_schedule",
    "piecewise_interpolate_schedule",
    "polynomial_schedule",
    "sgdr_schedule",
    "warmup_constant_schedule",
    "warmup_cosine_decay_schedule",
    "warmup_exponential_decay_schedule",
    "warmup_stable_decay_schedule",
]
