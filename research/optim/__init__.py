"""The lecture's optimizers as Optax transformations, written from the lecture's equations.

Two layers, as in optax: `scale_by_*` transformations hold a rule's arithmetic on raw
gradients; the aliases (`adam`, `heavy_ball`, ...) chain them with the learning rate. Everything
composes with `optax.chain`, `optax.inject_hyperparams` and `optax.multi_transform`.
By default the stateful aliases keep the state of all small leaves in one vector
(`pack_small_leaves`); the updates are the same. This package imports only jax, optax and numpy.
State dtypes: see `research.optim.base`.
"""

from research.optim.adaptive import (
    AdadeltaState,
    AdagradState,
    AdamState,
    RMSPropState,
    adadelta,
    adagrad,
    adam,
    rmsprop,
    scale_by_adadelta,
    scale_by_adagrad,
    scale_by_adam,
    scale_by_rmsprop,
)
from research.optim.base import (
    PACK_MAX_LEAF_SIZE,
    ScaleByLearningRateState,
    pack_small_leaves,
    pack_tree,
    scale_by_learning_rate,
    state_dtype,
    unpack_tree,
)
from research.optim.clipping import ClipState, clip, clip_by_global_norm, global_norm
from research.optim.line_search import ArmijoState, armijo
from research.optim.momentum import (
    HeavyBallState,
    NesterovState,
    heavy_ball,
    nesterov,
    nesterov_position,
    scale_by_heavy_ball,
    scale_by_nesterov,
    sgd,
)
from research.optim.regularization import (
    PenaltyState,
    SkipNonfiniteState,
    add_l1_penalty,
    add_l2_penalty,
    all_finite,
    decoupled_weight_decay,
    skip_nonfinite,
)
from research.optim.schedules import (
    ReduceOnPlateauState,
    inverse_time_decay,
    linear_decay_then_constant,
    reduce_on_plateau,
    step_decay,
)
from research.optim.second_order import NewtonState, newton, preconditioned_gd

__all__ = [
    "PACK_MAX_LEAF_SIZE", "pack_small_leaves", "pack_tree", "unpack_tree",
    "AdadeltaState", "AdagradState", "AdamState", "ArmijoState", "ClipState", "HeavyBallState",
    "NesterovState", "NewtonState", "PenaltyState", "RMSPropState", "ReduceOnPlateauState",
    "ScaleByLearningRateState", "SkipNonfiniteState",
    "adadelta", "adagrad", "adam", "add_l1_penalty", "add_l2_penalty", "all_finite", "armijo",
    "clip", "clip_by_global_norm", "decoupled_weight_decay", "global_norm", "heavy_ball",
    "inverse_time_decay", "linear_decay_then_constant", "nesterov", "nesterov_position", "newton",
    "preconditioned_gd", "reduce_on_plateau", "rmsprop", "scale_by_adadelta", "scale_by_adagrad",
    "scale_by_adam", "scale_by_heavy_ball", "scale_by_learning_rate", "scale_by_nesterov",
    "scale_by_rmsprop", "sgd", "skip_nonfinite", "state_dtype", "step_decay",
]
