"""gradxform: functional gradient transformations and schedules for JAX.

Every public name is re-exported here once; the modules they come from are private
implementation detail and may move.
"""

from importlib.metadata import PackageNotFoundError, version

from gradxform import schedules as schedules
from gradxform import tree as tree
from gradxform._base import EmptyState as EmptyState
from gradxform._base import GradientTransformation as GradientTransformation
from gradxform._base import GradientTransformationExtraArgs as GradientTransformationExtraArgs
from gradxform._base import Mask as Mask
from gradxform._base import OptState as OptState
from gradxform._base import Params as Params
from gradxform._base import ScalarOrSchedule as ScalarOrSchedule
from gradxform._base import Schedule as Schedule
from gradxform._base import Updates as Updates
from gradxform._base import apply_updates as apply_updates
from gradxform._base import chain as chain
from gradxform._base import identity as identity
from gradxform._base import init_empty_state as init_empty_state
from gradxform._base import stateless as stateless
from gradxform._base import stateless_with_tree_map as stateless_with_tree_map
from gradxform._base import with_extra_args_support as with_extra_args_support
from gradxform._fused import fused_adam as fused_adam
from gradxform._fused import fused_adamw as fused_adamw
from gradxform._fused import fused_apply as fused_apply
from gradxform._fused import fused_kernel_available as fused_kernel_available
from gradxform._lr_finder import LRRangeTest as LRRangeTest
from gradxform._lr_finder import find_learning_rate as find_learning_rate
from gradxform._lr_sweep import LRSweep as LRSweep
from gradxform._lr_sweep import lr_sweep as lr_sweep
from gradxform._optimizers.acprop import acprop as acprop
from gradxform._optimizers.adam import adam as adam
from gradxform._optimizers.adam import adamw as adamw
from gradxform._optimizers.adam import amsgrad as amsgrad
from gradxform._optimizers.adam import nadam as nadam
from gradxform._optimizers.adam import nadamw as nadamw
from gradxform._optimizers.adam_refinements import adan as adan
from gradxform._optimizers.adam_refinements import ademamix as ademamix
from gradxform._optimizers.adam_refinements import adopt as adopt
from gradxform._optimizers.adam_refinements import mars as mars
from gradxform._optimizers.adam_refinements import novograd as novograd
from gradxform._optimizers.adam_refinements import simplified_ademamix as simplified_ademamix
from gradxform._optimizers.adam_variants import adabelief as adabelief
from gradxform._optimizers.adam_variants import adamax as adamax
from gradxform._optimizers.adam_variants import adamaxw as adamaxw
from gradxform._optimizers.adam_variants import radam as radam
from gradxform._optimizers.adam_variants import yogi as yogi
from gradxform._optimizers.cocob import cocob as cocob
from gradxform._optimizers.distance import dog as dog
from gradxform._optimizers.distance import dowg as dowg
from gradxform._optimizers.fromage import fromage as fromage
from gradxform._optimizers.ftrl import ftrl as ftrl
from gradxform._optimizers.layerwise import adafactor as adafactor
from gradxform._optimizers.layerwise import lamb as lamb
from gradxform._optimizers.layerwise import lars as lars
from gradxform._optimizers.lbfgs import lbfgs as lbfgs
from gradxform._optimizers.lr_free import dadapt_adamw as dadapt_adamw
from gradxform._optimizers.lr_free import dadapt_sgd as dadapt_sgd
from gradxform._optimizers.lr_free import prodigy as prodigy
from gradxform._optimizers.madgrad import madgrad as madgrad
from gradxform._optimizers.muon import muon as muon
from gradxform._optimizers.noisy_sgd import noisy_sgd as noisy_sgd
from gradxform._optimizers.optimistic import optimistic_adam as optimistic_adam
from gradxform._optimizers.optimistic import optimistic_adam_v2 as optimistic_adam_v2
from gradxform._optimizers.optimistic import (
    optimistic_gradient_descent as optimistic_gradient_descent,
)
from gradxform._optimizers.polyak import polyak_sgd as polyak_sgd
from gradxform._optimizers.privacy import dpsgd as dpsgd
from gradxform._optimizers.psgd import kron as kron
from gradxform._optimizers.rms import adadelta as adadelta
from gradxform._optimizers.rms import adagrad as adagrad
from gradxform._optimizers.rms import rmsprop as rmsprop
from gradxform._optimizers.rprop import rprop as rprop
from gradxform._optimizers.schedule_free import schedule_free_adamw as schedule_free_adamw
from gradxform._optimizers.schedule_free import schedule_free_sgd as schedule_free_sgd
from gradxform._optimizers.sgd import nesterov_lookahead_point as nesterov_lookahead_point
from gradxform._optimizers.sgd import sgd as sgd
from gradxform._optimizers.sgd import sgd_nesterov_lookahead as sgd_nesterov_lookahead
from gradxform._optimizers.shampoo import shampoo as shampoo
from gradxform._optimizers.shampoo import soap as soap
from gradxform._optimizers.sign import lion as lion
from gradxform._optimizers.sign import sign_sgd as sign_sgd
from gradxform._optimizers.sign import signum as signum
from gradxform._optimizers.sm3 import sm3 as sm3
from gradxform._optimizers.sophia import sophia as sophia
from gradxform._sharding import state_shardings as state_shardings
from gradxform._sharding import zero1_shardings as zero1_shardings
from gradxform._state_io import load_state_dict as load_state_dict
from gradxform._state_io import state_dict as state_dict
from gradxform._transforms.acprop import scale_by_acprop as scale_by_acprop
from gradxform._transforms.adam import ScaleByAdamState as ScaleByAdamState
from gradxform._transforms.adam import ScaleByAmsgradState as ScaleByAmsgradState
from gradxform._transforms.adam import scale_by_adam as scale_by_adam
from gradxform._transforms.adam import scale_by_amsgrad as scale_by_amsgrad
from gradxform._transforms.adam_refinements import ScaleByAdemamixState as ScaleByAdemamixState
from gradxform._transforms.adam_refinements import (
    ScaleBySimplifiedAdEMAMixState as ScaleBySimplifiedAdEMAMixState,
)
from gradxform._transforms.adam_refinements import adopt_clip_value as adopt_clip_value
from gradxform._transforms.adam_refinements import scale_by_ademamix as scale_by_ademamix
from gradxform._transforms.adam_refinements import scale_by_adopt as scale_by_adopt
from gradxform._transforms.adam_refinements import (
    scale_by_simplified_ademamix as scale_by_simplified_ademamix,
)
from gradxform._transforms.adam_refinements_more import ScaleByAdanState as ScaleByAdanState
from gradxform._transforms.adam_refinements_more import ScaleByMarsState as ScaleByMarsState
from gradxform._transforms.adam_refinements_more import ScaleByNovogradState as ScaleByNovogradState
from gradxform._transforms.adam_refinements_more import scale_by_adan as scale_by_adan
from gradxform._transforms.adam_refinements_more import scale_by_mars as scale_by_mars
from gradxform._transforms.adam_refinements_more import scale_by_novograd as scale_by_novograd
from gradxform._transforms.adam_variants import ScaleByBeliefState as ScaleByBeliefState
from gradxform._transforms.adam_variants import scale_by_adamax as scale_by_adamax
from gradxform._transforms.adam_variants import scale_by_belief as scale_by_belief
from gradxform._transforms.adam_variants import scale_by_radam as scale_by_radam
from gradxform._transforms.adam_variants import scale_by_yogi as scale_by_yogi
from gradxform._transforms.clipping import AdaptiveGradClipState as AdaptiveGradClipState
from gradxform._transforms.clipping import ClipByGlobalNormState as ClipByGlobalNormState
from gradxform._transforms.clipping import ClipState as ClipState
from gradxform._transforms.clipping import adaptive_grad_clip as adaptive_grad_clip
from gradxform._transforms.clipping import clip as clip
from gradxform._transforms.clipping import clip_by_block_rms as clip_by_block_rms
from gradxform._transforms.clipping import clip_by_global_norm as clip_by_global_norm
from gradxform._transforms.clipping import unitwise_clip as unitwise_clip
from gradxform._transforms.clipping import unitwise_norm as unitwise_norm
from gradxform._transforms.cocob import COCOBState as COCOBState
from gradxform._transforms.cocob import scale_by_cocob as scale_by_cocob
from gradxform._transforms.constraints import NonNegativeParamsState as NonNegativeParamsState
from gradxform._transforms.constraints import keep_params_nonnegative as keep_params_nonnegative
from gradxform._transforms.distance import DoGState as DoGState
from gradxform._transforms.distance import DoWGState as DoWGState
from gradxform._transforms.distance import scale_by_dog as scale_by_dog
from gradxform._transforms.distance import scale_by_dowg as scale_by_dowg
from gradxform._transforms.ftrl import ScaleByFtrlState as ScaleByFtrlState
from gradxform._transforms.ftrl import scale_by_ftrl as scale_by_ftrl
from gradxform._transforms.gradient import AddNoiseState as AddNoiseState
from gradxform._transforms.gradient import ZeroNansState as ZeroNansState
from gradxform._transforms.gradient import add_noise as add_noise
from gradxform._transforms.gradient import centralize as centralize
from gradxform._transforms.gradient import zero_nans as zero_nans
from gradxform._transforms.hessian_diag import GNBState as GNBState
from gradxform._transforms.hessian_diag import HutchinsonState as HutchinsonState
from gradxform._transforms.hessian_diag import (
    gnb_estimator_diag_hessian as gnb_estimator_diag_hessian,
)
from gradxform._transforms.hessian_diag import (
    hutchinson_estimator_diag_hessian as hutchinson_estimator_diag_hessian,
)
from gradxform._transforms.layerwise import FactoredState as FactoredState
from gradxform._transforms.layerwise import ScaleByTrustRatioState as ScaleByTrustRatioState
from gradxform._transforms.layerwise import scale_by_factored_rms as scale_by_factored_rms
from gradxform._transforms.layerwise import scale_by_param_block_norm as scale_by_param_block_norm
from gradxform._transforms.layerwise import scale_by_param_block_rms as scale_by_param_block_rms
from gradxform._transforms.layerwise import scale_by_trust_ratio as scale_by_trust_ratio
from gradxform._transforms.layouts import flatten as flatten
from gradxform._transforms.lbfgs import ScaleByLBFGSState as ScaleByLBFGSState
from gradxform._transforms.lbfgs import scale_by_lbfgs as scale_by_lbfgs
from gradxform._transforms.linesearch import (
    BacktrackingLinesearchInfo as BacktrackingLinesearchInfo,
)
from gradxform._transforms.linesearch import (
    ScaleByBacktrackingLinesearchState as ScaleByBacktrackingLinesearchState,
)
from gradxform._transforms.linesearch import (
    scale_by_backtracking_linesearch as scale_by_backtracking_linesearch,
)
from gradxform._transforms.linesearch import value_and_grad_from_state as value_and_grad_from_state
from gradxform._transforms.lr_free import DAdaptAdamWState as DAdaptAdamWState
from gradxform._transforms.lr_free import DAdaptSGDState as DAdaptSGDState
from gradxform._transforms.lr_free import ProdigyState as ProdigyState
from gradxform._transforms.madgrad import MadgradState as MadgradState
from gradxform._transforms.madgrad import scale_by_madgrad as scale_by_madgrad
from gradxform._transforms.matrices import MuonDimensionNumbers as MuonDimensionNumbers
from gradxform._transforms.momentum import EmaState as EmaState
from gradxform._transforms.momentum import TraceState as TraceState
from gradxform._transforms.momentum import ema as ema
from gradxform._transforms.momentum import scale_by_momentum as scale_by_momentum
from gradxform._transforms.momentum import trace as trace
from gradxform._transforms.muon import MuonState as MuonState
from gradxform._transforms.muon import scale_by_muon as scale_by_muon
from gradxform._transforms.numerics import global_norm as global_norm
from gradxform._transforms.numerics import safe_increment as safe_increment
from gradxform._transforms.numerics import safe_int32_increment as safe_int32_increment
from gradxform._transforms.numerics import safe_norm as safe_norm
from gradxform._transforms.numerics import safe_root_mean_squares as safe_root_mean_squares
from gradxform._transforms.optimistic import (
    ScaleByOptimisticGradientState as ScaleByOptimisticGradientState,
)
from gradxform._transforms.optimistic import (
    scale_by_optimistic_gradient as scale_by_optimistic_gradient,
)
from gradxform._transforms.per_example import (
    per_example_global_norm_clip as per_example_global_norm_clip,
)
from gradxform._transforms.per_example import (
    per_example_layer_norm_clip as per_example_layer_norm_clip,
)
from gradxform._transforms.plateau import ReduceLROnPlateauState as ReduceLROnPlateauState
from gradxform._transforms.plateau import reduce_on_plateau as reduce_on_plateau
from gradxform._transforms.polyak import MomoAdamState as MomoAdamState
from gradxform._transforms.polyak import MomoState as MomoState
from gradxform._transforms.polyak import momo as momo
from gradxform._transforms.polyak import momo_adam as momo_adam
from gradxform._transforms.polyak import scale_by_polyak as scale_by_polyak
from gradxform._transforms.privacy import (
    DifferentiallyPrivateAggregateState as DifferentiallyPrivateAggregateState,
)
from gradxform._transforms.privacy import (
    differentially_private_aggregate as differentially_private_aggregate,
)
from gradxform._transforms.psgd import KronState as KronState
from gradxform._transforms.psgd import precond_update_prob_schedule as precond_update_prob_schedule
from gradxform._transforms.psgd import scale_by_kron as scale_by_kron
from gradxform._transforms.rms import ScaleByAdadeltaState as ScaleByAdaDeltaState
from gradxform._transforms.rms import ScaleByAdadeltaState as ScaleByAdadeltaState
from gradxform._transforms.rms import ScaleByAdagradState as ScaleByAdagradState
from gradxform._transforms.rms import ScaleByRmsState as ScaleByRmsState
from gradxform._transforms.rms import ScaleByRmsWithCountState as ScaleByRmsWithCountState
from gradxform._transforms.rms import ScaleByRStdDevState as ScaleByRStdDevState
from gradxform._transforms.rms import (
    ScaleByRStdDevWithCountState as ScaleByRStdDevWithCountState,
)
from gradxform._transforms.rms import scale_by_adadelta as scale_by_adadelta
from gradxform._transforms.rms import scale_by_adagrad as scale_by_adagrad
from gradxform._transforms.rms import scale_by_rms as scale_by_rms
from gradxform._transforms.rms import scale_by_stddev as scale_by_stddev
from gradxform._transforms.rprop import ScaleByRpropState as ScaleByRpropState
from gradxform._transforms.rprop import scale_by_rprop as scale_by_rprop
from gradxform._transforms.sam import NormalizeState as NormalizeState
from gradxform._transforms.sam import SAMState as SAMState
from gradxform._transforms.sam import normalize as normalize
from gradxform._transforms.sam import sam as sam
from gradxform._transforms.sam import sam_gradient as sam_gradient
from gradxform._transforms.scaling import ScaleByScheduleState as ScaleByScheduleState
from gradxform._transforms.scaling import ScaleState as ScaleState
from gradxform._transforms.scaling import normalize_by_update_norm as normalize_by_update_norm
from gradxform._transforms.scaling import scale as scale
from gradxform._transforms.scaling import scale_by_learning_rate as scale_by_learning_rate
from gradxform._transforms.scaling import scale_by_schedule as scale_by_schedule
from gradxform._transforms.shampoo import ShampooState as ShampooState
from gradxform._transforms.shampoo import scale_by_shampoo as scale_by_shampoo
from gradxform._transforms.sign import ScaleByLionState as ScaleByLionState
from gradxform._transforms.sign import scale_by_lion as scale_by_lion
from gradxform._transforms.sign import scale_by_sign as scale_by_sign
from gradxform._transforms.sm3 import ScaleBySM3State as ScaleBySM3State
from gradxform._transforms.sm3 import scale_by_sm3 as scale_by_sm3
from gradxform._transforms.soap import SoapState as SoapState
from gradxform._transforms.soap import scale_by_soap as scale_by_soap
from gradxform._transforms.sophia import SophiaState as SophiaState
from gradxform._transforms.sophia import scale_by_sophia as scale_by_sophia
from gradxform._transforms.updates import incremental_update as incremental_update
from gradxform._transforms.updates import periodic_update as periodic_update
from gradxform._transforms.updates import scale_gradient as scale_gradient
from gradxform._transforms.weight_decay import AddDecayedWeightsState as AddDecayedWeightsState
from gradxform._transforms.weight_decay import add_decayed_weights as add_decayed_weights
from gradxform._transforms.zoom import ScaleByZoomLinesearchState as ScaleByZoomLinesearchState
from gradxform._transforms.zoom import ZoomLinesearchInfo as ZoomLinesearchInfo
from gradxform._transforms.zoom import scale_by_zoom_linesearch as scale_by_zoom_linesearch
from gradxform._tree import bias_correction as bias_correction
from gradxform._wrappers.accumulate import ApplyEvery as ApplyEvery
from gradxform._wrappers.accumulate import MultiSteps as MultiSteps
from gradxform._wrappers.accumulate import MultiStepsState as MultiStepsState
from gradxform._wrappers.accumulate import ShouldSkipUpdateFunction as ShouldSkipUpdateFunction
from gradxform._wrappers.accumulate import apply_every as apply_every
from gradxform._wrappers.accumulate import skip_large_updates as skip_large_updates
from gradxform._wrappers.accumulate import skip_not_finite as skip_not_finite
from gradxform._wrappers.averaging import EmaParamsState as EmaParamsState
from gradxform._wrappers.averaging import ema_params as ema_params
from gradxform._wrappers.cautious import cautious as cautious
from gradxform._wrappers.conditional import (
    ConditionallyMaskState as ConditionallyMaskState,
)
from gradxform._wrappers.conditional import (
    ConditionallyTransformState as ConditionallyTransformState,
)
from gradxform._wrappers.conditional import conditionally_mask as conditionally_mask
from gradxform._wrappers.conditional import conditionally_transform as conditionally_transform
from gradxform._wrappers.flat import FlatState as FlatState
from gradxform._wrappers.flat import flat as flat
from gradxform._wrappers.flat import flatten_params as flatten_params
from gradxform._wrappers.hyperparams import InjectHyperparamsState as InjectHyperparamsState
from gradxform._wrappers.hyperparams import (
    InjectStatefulHyperparamsState as InjectStatefulHyperparamsState,
)
from gradxform._wrappers.hyperparams import inject_hyperparams as inject_hyperparams
from gradxform._wrappers.hyperparams import (
    inject_stateful_hyperparams as inject_stateful_hyperparams,
)
from gradxform._wrappers.hyperparams import set_hyperparams as set_hyperparams
from gradxform._wrappers.lookahead import LookaheadInStateState as LookaheadInStateState
from gradxform._wrappers.lookahead import LookaheadParams as LookaheadParams
from gradxform._wrappers.lookahead import LookaheadState as LookaheadState
from gradxform._wrappers.lookahead import lookahead as lookahead
from gradxform._wrappers.lookahead import lookahead_in_state as lookahead_in_state
from gradxform._wrappers.masking import MaskedNode as MaskedNode
from gradxform._wrappers.masking import MaskedState as MaskedState
from gradxform._wrappers.masking import label_by_path as label_by_path
from gradxform._wrappers.masking import mask_by_path as mask_by_path
from gradxform._wrappers.masking import masked as masked
from gradxform._wrappers.masking import set_to_zero as set_to_zero
from gradxform._wrappers.mechanic import MechanicState as MechanicState
from gradxform._wrappers.mechanic import mechanize as mechanize
from gradxform._wrappers.monitoring import MonitorState as MonitorState
from gradxform._wrappers.monitoring import SnapshotState as SnapshotState
from gradxform._wrappers.monitoring import measure_with_ema as measure_with_ema
from gradxform._wrappers.monitoring import monitor as monitor
from gradxform._wrappers.monitoring import snapshot as snapshot
from gradxform._wrappers.partition import MultiTransformState as MultiTransformState
from gradxform._wrappers.partition import PartitionState as PartitionState
from gradxform._wrappers.partition import freeze as freeze
from gradxform._wrappers.partition import multi_transform as multi_transform
from gradxform._wrappers.partition import named_chain as named_chain
from gradxform._wrappers.partition import partition as partition
from gradxform._wrappers.partition import selective_transform as selective_transform
from gradxform._wrappers.robust import ApplyIfFiniteState as ApplyIfFiniteState
from gradxform._wrappers.robust import DynamicLossScaleState as DynamicLossScaleState
from gradxform._wrappers.robust import apply_if_finite as apply_if_finite
from gradxform._wrappers.robust import dynamic_loss_scaling as dynamic_loss_scaling
from gradxform._wrappers.schedule_free import ScheduleFreeState as ScheduleFreeState
from gradxform._wrappers.schedule_free import schedule_free as schedule_free
from gradxform._wrappers.schedule_free import (
    schedule_free_eval_params as schedule_free_eval_params,
)
from gradxform._wrappers.stateful_schedules import StatefulSchedule as StatefulSchedule
from gradxform._wrappers.stateful_schedules import WrappedSchedule as WrappedSchedule
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

try:
    __version__ = version("gradxform")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

__all__ = [
    "AdaptiveGradClipState",
    "AddDecayedWeightsState",
    "AddNoiseState",
    "ApplyEvery",
    "ApplyIfFiniteState",
    "BacktrackingLinesearchInfo",
    "COCOBState",
    "ClipByGlobalNormState",
    "ClipState",
    "ConditionallyMaskState",
    "ConditionallyTransformState",
    "DAdaptAdamWState",
    "DAdaptSGDState",
    "DifferentiallyPrivateAggregateState",
    "DoGState",
    "DoWGState",
    "DynamicLossScaleState",
    "EmaParamsState",
    "EmaState",
    "EmptyState",
    "FactoredState",
    "FlatState",
    "GNBState",
    "GradientTransformation",
    "GradientTransformationExtraArgs",
    "HutchinsonState",
    "InjectHyperparamsState",
    "InjectStatefulHyperparamsState",
    "KronState",
    "LRRangeTest",
    "LRSweep",
    "LookaheadInStateState",
    "LookaheadParams",
    "LookaheadState",
    "MadgradState",
    "Mask",
    "MaskedNode",
    "MaskedState",
    "MechanicState",
    "MomoAdamState",
    "MomoState",
    "MonitorState",
    "MultiSteps",
    "MultiStepsState",
    "MultiTransformState",
    "MuonDimensionNumbers",
    "MuonState",
    "NonNegativeParamsState",
    "NormalizeState",
    "OptState",
    "Params",
    "PartitionState",
    "ProdigyState",
    "ReduceLROnPlateauState",
    "SAMState",
    "ScalarOrSchedule",
    "ScaleByAdaDeltaState",
    "ScaleByAdadeltaState",
    "ScaleByAdagradState",
    "ScaleByAdamState",
    "ScaleByAdanState",
    "ScaleByAdemamixState",
    "ScaleByAmsgradState",
    "ScaleByBacktrackingLinesearchState",
    "ScaleByBeliefState",
    "ScaleByFtrlState",
    "ScaleByLBFGSState",
    "ScaleByLionState",
    "ScaleByMarsState",
    "ScaleByNovogradState",
    "ScaleByOptimisticGradientState",
    "ScaleByRStdDevState",
    "ScaleByRStdDevWithCountState",
    "ScaleByRmsState",
    "ScaleByRmsWithCountState",
    "ScaleByRpropState",
    "ScaleBySM3State",
    "ScaleByScheduleState",
    "ScaleBySimplifiedAdEMAMixState",
    "ScaleByTrustRatioState",
    "ScaleByZoomLinesearchState",
    "ScaleState",
    "Schedule",
    "ScheduleFreeState",
    "ShampooState",
    "ShouldSkipUpdateFunction",
    "SnapshotState",
    "SoapState",
    "SophiaState",
    "StatefulSchedule",
    "TraceState",
    "Updates",
    "WrappedSchedule",
    "ZeroNansState",
    "ZoomLinesearchInfo",
    "acprop",
    "adabelief",
    "adadelta",
    "adafactor",
    "adagrad",
    "adam",
    "adamax",
    "adamaxw",
    "adamw",
    "adan",
    "adaptive_grad_clip",
    "add_decayed_weights",
    "add_noise",
    "ademamix",
    "adopt",
    "adopt_clip_value",
    "amsgrad",
    "apply_every",
    "apply_if_finite",
    "apply_updates",
    "bias_correction",
    "cautious",
    "centralize",
    "chain",
    "clip",
    "clip_by_block_rms",
    "clip_by_global_norm",
    "cocob",
    "conditionally_mask",
    "conditionally_transform",
    "constant_schedule",
    "cosine_decay_schedule",
    "cosine_onecycle_schedule",
    "cyclical_schedule",
    "dadapt_adamw",
    "dadapt_sgd",
    "differentially_private_aggregate",
    "dog",
    "dowg",
    "dpsgd",
    "dynamic_loss_scaling",
    "ema",
    "ema_params",
    "exponential_decay",
    "find_learning_rate",
    "flat",
    "flatten",
    "flatten_params",
    "freeze",
    "fromage",
    "ftrl",
    "fused_adam",
    "fused_adamw",
    "fused_apply",
    "fused_kernel_available",
    "global_norm",
    "gnb_estimator_diag_hessian",
    "hutchinson_estimator_diag_hessian",
    "identity",
    "incremental_update",
    "init_empty_state",
    "inject_hyperparams",
    "inject_stateful_hyperparams",
    "inverse_sqrt_schedule",
    "inverse_time_decay",
    "join_schedules",
    "keep_params_nonnegative",
    "kron",
    "label_by_path",
    "lamb",
    "lars",
    "lbfgs",
    "linear_onecycle_schedule",
    "linear_schedule",
    "lion",
    "load_state_dict",
    "lookahead",
    "lookahead_in_state",
    "lr_sweep",
    "madgrad",
    "mars",
    "mask_by_path",
    "masked",
    "measure_with_ema",
    "mechanize",
    "momo",
    "momo_adam",
    "monitor",
    "multi_transform",
    "muon",
    "nadam",
    "nadamw",
    "named_chain",
    "nesterov_lookahead_point",
    "noisy_sgd",
    "normalize",
    "normalize_by_update_norm",
    "novograd",
    "one_cycle_momentum_schedule",
    "one_cycle_schedule",
    "optimistic_adam",
    "optimistic_adam_v2",
    "optimistic_gradient_descent",
    "partition",
    "per_example_global_norm_clip",
    "per_example_layer_norm_clip",
    "periodic_update",
    "piecewise_constant_schedule",
    "piecewise_interpolate_schedule",
    "polyak_sgd",
    "polynomial_schedule",
    "precond_update_prob_schedule",
    "prodigy",
    "radam",
    "reduce_on_plateau",
    "rmsprop",
    "rprop",
    "safe_increment",
    "safe_int32_increment",
    "safe_norm",
    "safe_root_mean_squares",
    "sam",
    "sam_gradient",
    "scale",
    "scale_by_acprop",
    "scale_by_adadelta",
    "scale_by_adagrad",
    "scale_by_adam",
    "scale_by_adamax",
    "scale_by_adan",
    "scale_by_ademamix",
    "scale_by_adopt",
    "scale_by_amsgrad",
    "scale_by_backtracking_linesearch",
    "scale_by_belief",
    "scale_by_cocob",
    "scale_by_dog",
    "scale_by_dowg",
    "scale_by_factored_rms",
    "scale_by_ftrl",
    "scale_by_kron",
    "scale_by_lbfgs",
    "scale_by_learning_rate",
    "scale_by_lion",
    "scale_by_madgrad",
    "scale_by_mars",
    "scale_by_momentum",
    "scale_by_muon",
    "scale_by_novograd",
    "scale_by_optimistic_gradient",
    "scale_by_param_block_norm",
    "scale_by_param_block_rms",
    "scale_by_polyak",
    "scale_by_radam",
    "scale_by_rms",
    "scale_by_rprop",
    "scale_by_schedule",
    "scale_by_shampoo",
    "scale_by_sign",
    "scale_by_simplified_ademamix",
    "scale_by_sm3",
    "scale_by_soap",
    "scale_by_sophia",
    "scale_by_stddev",
    "scale_by_trust_ratio",
    "scale_by_yogi",
    "scale_by_zoom_linesearch",
    "scale_gradient",
    "schedule_free",
    "schedule_free_adamw",
    "schedule_free_eval_params",
    "schedule_free_sgd",
    "selective_transform",
    "set_hyperparams",
    "set_to_zero",
    "sgd",
    "sgd_nesterov_lookahead",
    "sgdr_schedule",
    "shampoo",
    "sign_sgd",
    "signum",
    "simplified_ademamix",
    "skip_large_updates",
    "skip_not_finite",
    "sm3",
    "snapshot",
    "soap",
    "sophia",
    "state_dict",
    "state_shardings",
    "stateless",
    "stateless_with_tree_map",
    "trace",
    "unitwise_clip",
    "unitwise_norm",
    "value_and_grad_from_state",
    "warmup_constant_schedule",
    "warmup_cosine_decay_schedule",
    "warmup_exponential_decay_schedule",
    "warmup_stable_decay_schedule",
    "with_extra_args_support",
    "yogi",
    "zero1_shardings",
    "zero_nans",
]
