"""The lecture's figures, one module per figure; `python -m experiments.figures` builds them.

`FIGURES` fixes the order of the report: part 1 (optimization), then part 2 (training tricks
and architectures). Each name is a module of this package following the contract in
`experiments.figures.common`.
"""

PART1 = (
  "lr_regimes",
  "convergence_rates",
  "newton_vs_gd",
  "line_search",
  "ill_conditioned_valley",
  "optimizer_trajectories",
  "sgd_minibatch_logistic",
  "lr_schedules",
  "weight_decay_strong_convexity",
  "saddle_escape",
  "hyperparameter_search",
  "rate_table",
  "optimizer_facts",
)

PART2 = (
  "backprop",
  "linear_depth",
  "init_statistics",
  "zero_init_symmetry",
  "deep_relu_init",
  "vanishing_gradients",
  "activations",
  "batch_norm",
  "norms_vs_batch_size",
  "overfitting",
  "losses",
  "relu_vs_tanh_cnn",
  "residual_vs_plain",
  "densenet_vs_resnet",
  "fcn_segmentation",
  "transposed_conv",
  "fine_tuning",
  "templates",
  "data_augmentation",
)

FIGURES = PART1 + PART2

# The figures that train a network: each states the published claim it reproduces (its module's
# `PAPER`, a `common.Paper`), which report.json and REPORT.md show beside our numbers.
TRAINING = (
  "hyperparameter_search",
  "zero_init_symmetry",
  "deep_relu_init",
  "vanishing_gradients",
  "activations",
  "batch_norm",
  "norms_vs_batch_size",
  "overfitting",
  "relu_vs_tanh_cnn",
  "residual_vs_plain",
  "densenet_vs_resnet",
  "fcn_segmentation",
  "transposed_conv",
  "fine_tuning",
  "templates",
  "data_augmentation",
)
