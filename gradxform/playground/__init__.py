"""Seeing optimizers work: test functions, trajectories, pictures and the digits demo.

The optional side of gradxform. Plotting needs matplotlib and the digits data
needs scikit-learn (``pip install 'gradxform[demo]'``); the test functions and
trajectories need only JAX. ``python -m gradxform`` runs :mod:`gradxform.playground.cli`.
"""

from gradxform.playground._digits import Split as Split
from gradxform.playground._digits import TrainResult as TrainResult
from gradxform.playground._digits import accuracy as accuracy
from gradxform.playground._digits import cross_entropy as cross_entropy
from gradxform.playground._digits import init_mlp as init_mlp
from gradxform.playground._digits import load_digits as load_digits
from gradxform.playground._digits import mlp as mlp
from gradxform.playground._digits import train as train_digits
from gradxform.playground._functions import FUNCTIONS as FUNCTIONS
from gradxform.playground._functions import TestFunction as TestFunction
from gradxform.playground._functions import beale as beale
from gradxform.playground._functions import get_function as get_function
from gradxform.playground._functions import himmelblau as himmelblau
from gradxform.playground._functions import local_minimum_bowl as local_minimum_bowl
from gradxform.playground._functions import quadratic_valley as quadratic_valley
from gradxform.playground._functions import rosenbrock as rosenbrock
from gradxform.playground._functions import saddle as saddle
from gradxform.playground._lr_study import StudyRow as StudyRow
from gradxform.playground._lr_study import suggestion_study as suggestion_study
from gradxform.playground._plots import animate_race as animate_race
from gradxform.playground._plots import plot_contour as plot_contour
from gradxform.playground._plots import plot_losses as plot_losses
from gradxform.playground._plots import plot_lr_range_test as plot_lr_range_test
from gradxform.playground._plots import plot_paths as plot_paths
from gradxform.playground._plots import plot_schedules as plot_schedules
from gradxform.playground._plots import pyplot as pyplot
from gradxform.playground._trajectories import Trajectory as Trajectory
from gradxform.playground._trajectories import steps_to_tolerance as steps_to_tolerance
from gradxform.playground._trajectories import trajectories as trajectories
from gradxform.playground._trajectories import trajectory as trajectory

__all__ = [
    "FUNCTIONS",
    "Split",
    "StudyRow",
    "TestFunction",
    "TrainResult",
    "Trajectory",
    "accuracy",
    "animate_race",
    "beale",
    "cross_entropy",
    "get_function",
    "himmelblau",
    "init_mlp",
    "load_digits",
    "local_minimum_bowl",
    "mlp",
    "plot_contour",
    "plot_losses",
    "plot_lr_range_test",
    "plot_paths",
    "plot_schedules",
    "pyplot",
    "quadratic_valley",
    "rosenbrock",
    "saddle",
    "steps_to_tolerance",
    "suggestion_study",
    "train_digits",
    "trajectories",
    "trajectory",
]
