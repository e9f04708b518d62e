"""Part-2 figures, first half (initialization, activations, normalization, regularization, losses,
transposed convolution, templates): each `run` at its `get_config("test")` size passes its checks
and reports its key numbers in `data`."""

import importlib

import numpy as np
import pytest

NAMES = (
  "init_statistics",
  "zero_init_symmetry",
  "deep_relu_init",
  "vanishing_gradients",
  "activations",
  "batch_norm",
  "norms_vs_batch_size",
  "overfitting",
  "losses",
  "transposed_conv",
  "templates",
)

# Key numbers each figure must report in `data` (None: present; an int: a list of that length).
DATA_KEYS = {
  "init_statistics": {
    "tanh_normal_0.01": 10,
    "tanh_normal_1": 10,
    "tanh_xavier": 10,
    "relu_xavier": 10,
    "relu_he": 10,
  },
  "zero_init_symmetry": {"unit_spread": None, "final_val_accuracy": None, "dataset": None},
  "deep_relu_init": {"first_step_layer_grad_norms": None, "train_loss": None, "plateau_steps": 2},
  "vanishing_gradients": {
    "layer_grad_norms": None,
    "first_over_last": None,
    "backprop_first_over_last": 4,
  },
  "activations": {"train_loss": None, "final_val_accuracy": None, "test_error": 7},
  "batch_norm": {
    "validation_accuracy": None,
    "final_test_accuracy": None,
    "bn_steps_to_no_bn_final_accuracy": None,
    "percentiles": None,
    "drift": None,
    "learning_rate_arm": None,
    "dropout_arm": None,
  },
  "norms_vs_batch_size": {"per_device_batch": None, "val_error": None, "val_loss": None},
  "overfitting": {
    "early_stopping_step": None,
    "loss_gap": None,
    "accuracy_gap": None,
    "train_sizes": None,
    "best_val_accuracy": None,
    "dropout_best_val_accuracy_gain": None,
  },
  "losses": {"cross_entropy_base10": 3, "svm": 3, "identity_max_gap": None},
  "transposed_conv": {"picture_output": 4, "factors": None},
  "templates": {"linear_templates": 10, "template_class_correlation": 10},
}


@pytest.mark.parametrize("name", NAMES)
def test_figure_passes_at_test_size(name):
  module = importlib.import_module(f"experiments.figures.{name}")
  result = module.run(module.get_config("test"))
  failed = [c.as_dict() for c in result.checks if not c.passed]
  assert result.passed, f"{name}: failed checks {failed}"
  for key, length in DATA_KEYS[name].items():
    assert key in result.data, f"{name}: data lacks {key!r}"
    if length is not None:
      assert len(result.data[key]) == length, (name, key, len(result.data[key]))


def test_norms_split_difference_separates_batch_from_per_example_norms():
  import jax

  from experiments.figures.norms_vs_batch_size import NormalizedCNN, split_difference

  x = np.random.default_rng(0).normal(size=(8, 8, 8, 1)).astype(np.float32)
  diffs = {}
  for norm in ("batch", "group", "layer", "instance"):
    model = NormalizedCNN(norm, channels=(8, 8), strides=(1, 2), groups=2, per_device=4)
    variables = model.init(jax.random.PRNGKey(0), x[:1])
    diffs[norm] = split_difference(model, variables, x, 2)
  assert diffs["batch"] > 1e-2  # batch statistics: the split changes every output
  assert max(diffs[k] for k in ("group", "layer", "instance")) < 1e-5


def test_init_statistics_numbers_are_finite_and_ordered():
  module = importlib.import_module("experiments.figures.init_statistics")
  config = module.get_config()
  config.num_samples = 200
  config.width = 200
  result = module.run(config)
  stds = {k: np.asarray(result.data[k]) for k in module.CASES}
  assert all(np.isfinite(v).all() and len(v) == 10 for v in stds.values())
  # the slides' ordering at the last layer: saturated > Xavier-tanh > vanishing
  assert stds["tanh_normal_1"][-1] > stds["tanh_xavier"][-1] > stds["tanh_normal_0.01"][-1]
  assert stds["relu_he"][-1] > stds["relu_xavier"][-1]


def test_batch_norm_speed_and_learning_rate_measures():
  from experiments.figures import batch_norm

  steps = np.array([0, 10, 20, 30])
  assert batch_norm.steps_to_reach(steps, np.array([0.1, 0.5, 0.8, 0.7]), 0.75) == 20
  assert batch_norm.steps_to_reach(steps, np.array([0.1, 0.5, 0.6, 0.7]), 0.75) == np.inf
  # halfway from chance 0.1 to the best 0.9 is 0.5: rate 5 trains, rate 20 does not
  rates = (0.1, 1.0, 5.0, 20.0)
  assert batch_norm.largest_training_rate(rates, [0.7, 0.9, 0.5, 0.1], chance=0.1) == 5.0


def test_fit_rejects_steps_that_are_not_a_multiple_of_eval_every():
  from experiments.figures import _fit
  from research import optim
  from research.models import create

  x = np.zeros((8, 8, 8, 1), np.float32)
  y = np.zeros((8,), np.int32)
  with pytest.raises(ValueError, match="steps=5 is not a multiple of eval_every=2"):
    _fit.fit(
      create("linear", num_classes=10),
      optim.sgd(0.1),
      (x, y),
      (x, y),
      batch_size=8,
      steps=5,
      eval_every=2,
    )


def test_load_data_falls_back_only_for_fashion_mnist(tmp_path, monkeypatch):
  """Only fashion_mnist_idx may become digits (the Debian package is optional); a missing idx
  directory or TFDS dataset is an error that says how to prepare it."""
  from experiments.figures import _fit
  from research.data import datasets as datasets_lib

  monkeypatch.setenv(datasets_lib.FASHION_MNIST_DIR_ENV, str(tmp_path / "absent"))
  _fit._load.cache_clear()  # other tests in this process may have loaded the real files
  name, (x_train, _), _, _ = _fit.load_data("fashion_mnist_idx")
  assert name == "digits" and x_train.shape[1:] == (8, 8, 1)
  with pytest.raises(FileNotFoundError):
    _fit.load_data(f"idx:{tmp_path / 'no_such_dir'}")
  monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
  with pytest.raises(FileNotFoundError, match="tfds build cifar10"):
    _fit.load_data("cifar10")


def test_load_data_holds_validation_out_of_the_training_split():
  """Validation is research.data.holdout's part of the training split, absent from `train`;
  test is the dataset's test split."""
  from experiments.figures import _fit
  from research.data import holdout, holdout_count, load_arrays

  data = _fit.load_data("digits")
  x_all, _ = load_arrays("digits", "train")
  count = holdout_count(0.2, len(x_all))
  train_rows, val_rows = holdout(len(x_all), count)
  np.testing.assert_array_equal(data.train[0], x_all[train_rows])
  np.testing.assert_array_equal(data.validation[0], x_all[val_rows])
  assert not set(train_rows) & set(val_rows)
  assert len(data.test[0]) == len(load_arrays("digits", "test")[0])


def test_fit_tests_the_best_validation_parameters_once():
  from experiments.figures import _fit
  from research import optim
  from research.models import create

  data = _fit.load_data("digits", max_train=64, max_val=32, max_test=32)
  out = _fit.fit(
    create("linear", num_classes=10),
    optim.sgd(0.1),
    data.train,
    data.validation,
    test=data.test,
    batch_size=16,
    steps=8,
    eval_every=2,
  )
  assert out.best_index == int(np.argmax(out.val_accuracy))  # the earliest of ties
  assert out.test.keys() >= {"loss", "accuracy"} and out.final_test.keys() >= {"loss", "accuracy"}
  with pytest.raises(ValueError, match="select="):
    _fit.fit(
      create("linear", num_classes=10),
      optim.sgd(0.1),
      data.train,
      data.validation,
      batch_size=16,
      steps=2,
      select="error",
    )
