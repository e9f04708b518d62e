"""Per-layer activation statistics and gradient norms on the slides' initialization experiment."""

import jax
import numpy as np
import pytest

from research import models
from research.models import diagnostics


def _tanh_net(kernel_init):
  # The slides' experiment, narrowed: 10 tanh layers (200 units here instead of 500).
  model = models.create(
    "mlp", num_classes=10, depth=10, width=200, activation="tanh", kernel_init=kernel_init
  )
  x = jax.random.normal(jax.random.key(0), (256, 200))
  return model, model.init(jax.random.key(1), x), x


def test_activation_std_collapses_with_small_init_and_holds_with_xavier():
  model, variables, x = _tanh_net("normal_0.01")
  stats = diagnostics.activation_stats(model, variables, x)
  assert [s.name for s in stats] == [f"act_{i}" for i in range(10)]
  stds = np.array([float(s.std) for s in stats])
  # N(0, 0.01): each layer multiplies the std by about sqrt(200) * 0.01 = 0.14.
  assert np.all(np.diff(stds) < 0) and stds[-1] < 1e-6
  _, xavier_vars, _ = _tanh_net("xavier_normal")
  xavier = np.array([float(s.std) for s in diagnostics.activation_stats(model, xavier_vars, x)])
  assert xavier[-1] > 0.1
  _, big_vars, _ = _tanh_net("normal_1")
  big = diagnostics.activation_stats(model, big_vars, x)
  # N(0, 1): tanh saturates, activations pile up at +-1.
  assert float(big[-1].std) > 0.9


def test_every_module_and_batchnorm_training():
  model = models.create("mlp", num_classes=3, depth=2, width=8, norm="batch")
  x = jax.random.normal(jax.random.key(0), (4, 5))
  variables = model.init(jax.random.key(1), x)
  acts = diagnostics.activation_stats(model, variables, x, train=True)
  assert [s.name for s in acts] == ["act_0", "act_1"]
  # Training-mode BatchNorm: the pre-activations have batch mean 0 and std 1 per unit.
  everything = diagnostics.activation_stats(model, variables, x, train=True, every_module=True)
  names = [s.name for s in everything]
  assert names[:3] == ["dense_0", "norm_0", "act_0"] and names[-1] == "<model>"
  norm0 = everything[1]
  assert abs(float(norm0.mean)) < 1e-5 and float(norm0.std) == pytest.approx(1.0, rel=1e-3)


def test_gradient_norms_per_module():
  model, variables, x = _tanh_net("xavier_normal")
  labels = jax.random.randint(jax.random.key(2), (256,), 0, 10)
  norms = diagnostics.gradient_norms(model, variables, x, labels)
  assert set(norms) == {f"dense_{i}" for i in range(10)} | {"head"}
  grads = jax.grad(lambda p: models.softmax_cross_entropy(model.apply({"params": p}, x), labels))(
    variables["params"]
  )
  expected = np.sqrt(sum(np.sum(np.square(g)) for g in jax.tree.leaves(grads["dense_3"])))
  assert float(norms["dense_3"]) == pytest.approx(expected, rel=1e-5)
