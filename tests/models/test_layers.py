"""Layers against the lecture's equations: BatchNorm, Maxout, dropout, PReLU, LRN, init, norms."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from research.models import alexnet, initializers, layers


def _batch(shape, seed=0):
  return jnp.asarray(np.random.default_rng(seed).normal(2.0, 3.0, size=shape), jnp.float32)


# ----------------------------------------------------------------------------- BatchNorm


def test_batchnorm_train_uses_batch_statistics_and_updates_running_estimates():
  x = _batch((16, 3, 3, 4))
  bn = layers.BatchNorm(momentum=0.9)
  variables = bn.init(jax.random.key(0), x, use_running_average=False)
  y, updates = bn.apply(variables, x, use_running_average=False, mutable=["batch_stats"])
  # Normalized with the batch's biased variance: zero mean, unit variance per feature.
  np.testing.assert_allclose(y.mean(axis=(0, 1, 2)), 0.0, atol=1e-5)
  np.testing.assert_allclose(y.var(axis=(0, 1, 2)), 1.0, rtol=1e-3)
  xs = np.asarray(x).reshape(-1, 4)
  stats = updates["batch_stats"]
  np.testing.assert_allclose(stats["mean"], 0.1 * xs.mean(0), rtol=1e-5)
  # The lecture's unbiased B / (B - 1) variance, B = 16 * 3 * 3 values per feature.
  np.testing.assert_allclose(stats["var"], 0.9 + 0.1 * xs.var(0, ddof=1), rtol=1e-5)


def test_batchnorm_eval_uses_running_estimates():
  x = _batch((8, 5))
  bn = layers.BatchNorm()
  variables = bn.init(jax.random.key(0), x, use_running_average=True)
  stats = {"mean": jnp.arange(5.0), "var": jnp.arange(1.0, 6.0)}
  variables = {**variables, "batch_stats": stats}
  y = bn.apply(variables, x, use_running_average=True)
  expected = (np.asarray(x) - np.arange(5.0)) / np.sqrt(np.arange(1.0, 6.0) + 1e-5)
  np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)
  # Evaluation does not depend on the rest of the batch; training does.
  np.testing.assert_allclose(bn.apply(variables, x[:1], use_running_average=True), y[:1], rtol=1e-6)
  y_train, _ = bn.apply(variables, x, use_running_average=False, mutable=["batch_stats"])
  assert not np.allclose(y_train, y, atol=1e-2)


def test_batchnorm_cumulative_average_and_biased_option():
  a, b = _batch((10, 3), 1), _batch((10, 3), 2)
  bn = layers.BatchNorm(momentum=None)
  v = bn.init(jax.random.key(0), a, use_running_average=False)
  for x in (a, b):
    _, upd = bn.apply(v, x, use_running_average=False, mutable=["batch_stats"])
    v = {**v, **upd}
  # mean = (1/N_batch) sum mu_B; var = (1/N_batch) (B/(B-1)) sum sigma_B^2.
  np.testing.assert_allclose(v["batch_stats"]["mean"], (a.mean(0) + b.mean(0)) / 2, rtol=1e-5)
  np.testing.assert_allclose(
    v["batch_stats"]["var"], (np.var(a, 0, ddof=1) + np.var(b, 0, ddof=1)) / 2, rtol=1e-5
  )
  biased = layers.BatchNorm(momentum=0.0, unbiased_variance=False)
  vb = biased.init(jax.random.key(0), a, use_running_average=False)
  _, upd = biased.apply(vb, a, use_running_average=False, mutable=["batch_stats"])
  np.testing.assert_allclose(upd["batch_stats"]["var"], np.var(a, 0), rtol=1e-5)


def test_batchnorm_synced_across_8_devices_equals_whole_batch():
  assert jax.local_device_count() == 8
  x = _batch((8 * 4, 3, 3, 5), 3)
  bn = layers.BatchNorm(use_running_average=False, axis_name="batch")
  variables = bn.init(jax.random.key(0), x[:4])
  step = jax.pmap(
    lambda v, xs: bn.apply(v, xs, mutable=["batch_stats"]), axis_name="batch", in_axes=(None, 0)
  )
  y, upd = step(variables, x.reshape(8, 4, 3, 3, 5))
  single = layers.BatchNorm(use_running_average=False)
  y1, upd1 = single.apply(variables, x, mutable=["batch_stats"])
  np.testing.assert_allclose(y.reshape(x.shape), y1, rtol=1e-4, atol=1e-5)
  for key in ("mean", "var"):
    for d in range(8):  # every device holds the global statistics
      np.testing.assert_allclose(upd["batch_stats"][key][d], upd1["batch_stats"][key], rtol=1e-5)
  # Without syncing, the devices' statistics differ.
  local = jax.pmap(lambda v, xs: single.apply(v, xs, mutable=["batch_stats"]), in_axes=(None, 0))
  _, upd_local = local(variables, x.reshape(8, 4, 3, 3, 5))
  assert not np.allclose(upd_local["batch_stats"]["mean"][0], upd1["batch_stats"]["mean"])


# ----------------------------------------------------------------------------- activations


def test_maxout_with_one_nonzero_piece_is_relu():
  rng = np.random.default_rng(0)
  w, b = rng.normal(size=(6, 3)).astype(np.float32), rng.normal(size=3).astype(np.float32)
  kernel = np.zeros((6, 3, 2), np.float32)
  kernel[:, :, 0] = w  # piece 0 is w^T x + b, piece 1 is identically 0
  bias = np.zeros((3, 2), np.float32)
  bias[:, 0] = b
  params = {"params": {"linear": {"kernel": kernel.reshape(6, 6), "bias": bias.reshape(6)}}}
  x = rng.normal(size=(20, 6)).astype(np.float32)
  out = layers.Maxout(3, num_pieces=2).apply(params, x)
  np.testing.assert_allclose(out, np.maximum(x @ w + b, 0.0), rtol=1e-5, atol=1e-6)


def test_activation_formulas():
  x = jnp.linspace(-3.0, 3.0, 13)
  expect = {
    "relu": np.maximum(x, 0),
    "leaky_relu": np.where(x > 0, x, 0.01 * x),
    "leaky_relu_0.1": np.where(x > 0, x, 0.1 * x),
    "tanh": np.tanh(x),
    "sigmoid": 1 / (1 + np.exp(-x)),
    "elu": np.where(x > 0, x, np.exp(x) - 1),
    "prelu": np.where(x > 0, x, 0.25 * x),
  }
  for kind, target in expect.items():
    act = layers.Activation(kind)
    v = act.init(jax.random.key(0), x)
    np.testing.assert_allclose(act.apply(v, x), target, rtol=1e-5, atol=1e-6, err_msg=kind)
  assert jax.tree.leaves(layers.Activation("prelu").init(jax.random.key(0), x))[0] == 0.25


def test_unknown_names_list_the_choices():
  with pytest.raises(ValueError, match="leaky_relu_0.1"):
    layers.check_activation("swish")
  with pytest.raises(ValueError, match="mlp"):
    layers.check_activation("maxout")
  with pytest.raises(ValueError, match="group"):
    layers.check_norm("switch")
  with pytest.raises(ValueError, match="he_normal"):
    initializers.get("orthogonal")


# ----------------------------------------------------------------------------- dropout


@pytest.mark.parametrize(
  "mode,train_mean,eval_scale", [("inverted", 1.0, 1.0), ("test_time_scaling", 0.7, 0.7)]
)
def test_dropout_expectation(mode, train_mean, eval_scale):
  x = jnp.full((400_000,), 2.0)
  drop = layers.Dropout(0.3, mode)
  y = drop.apply({}, x, train=True, rngs={"dropout": jax.random.key(0)})
  assert float((y == 0).mean()) == pytest.approx(0.3, abs=0.005)
  # E[train output] matches the evaluation output in both conventions.
  assert float(y.mean()) == pytest.approx(2.0 * train_mean, rel=0.01)
  y_eval = drop.apply({}, x, train=False)
  np.testing.assert_allclose(y_eval, 2.0 * eval_scale, rtol=1e-6)
  assert float(y.mean()) == pytest.approx(float(y_eval.mean()), rel=0.01)


# ----------------------------------------------------------------------------- init, norms, LRN


@pytest.mark.parametrize(
  "name,variance",
  [
    ("he_normal", 2 / 1000),
    ("he_uniform", 2 / 1000),
    ("xavier_uniform", 2 / 1500),
    ("xavier_normal", 2 / 1500),
    ("lecun_normal", 1 / 1000),
    ("heuristic_uniform", 1 / 3000),
    ("normal", 1e-4),
    ("normal_1", 1.0),
    ("zeros", 0.0),
  ],
)
def test_initializer_variance(name, variance):
  w = initializers.get(name)(jax.random.key(0), (1000, 500), jnp.float32)
  assert float(w.mean()) == pytest.approx(0.0, abs=0.01 * max(variance, 1e-4) ** 0.5 + 1e-9)
  assert float(w.var()) == pytest.approx(variance, rel=0.02, abs=1e-12)
  if name == "xavier_uniform":
    assert float(jnp.abs(w).max()) <= np.sqrt(6 / 1500)
  if name == "heuristic_uniform":  # U(-1/sqrt(m), 1/sqrt(m)), m = 1000 inputs
    assert 0.99 / np.sqrt(1000) < float(jnp.abs(w).max()) <= 1 / np.sqrt(1000)


def test_weight_norm_is_g_v_over_norm_v():
  class Net(nn.Module):
    @nn.compact
    def __call__(self, x):
      return layers.linear_layer(nn.Dense(3, name="dense"), "weight", name="wn")(x)

  x = _batch((4, 5))
  v = Net().init(jax.random.key(0), x)
  kernel, bias = v["params"]["dense"]["kernel"], v["params"]["dense"]["bias"]
  g = jnp.array([1.0, 2.0, 3.0])
  v["params"]["wn"] = {"dense/kernel/scale": g}
  expected = x @ (g * kernel / jnp.linalg.norm(kernel, axis=0)) + bias
  np.testing.assert_allclose(Net().apply(v, x), expected, rtol=1e-5)


@pytest.mark.parametrize("kind", ["layer", "group", "instance"])
def test_batch_independent_norms_normalize_each_example(kind):
  x = _batch((2, 4, 4, 64))
  module = layers.norm(kind, train=True)
  y = module.apply(module.init(jax.random.key(0), x), x)
  axes = {"layer": (1, 2, 3), "instance": (1, 2), "group": (1, 2)}[kind]
  yy = y.reshape(2, 4, 4, 32, 2) if kind == "group" else y
  np.testing.assert_allclose(yy.mean(axis=axes + ((4,) if kind == "group" else ())), 0, atol=1e-4)
  np.testing.assert_allclose(
    y[:1], module.apply(module.init(jax.random.key(0), x), x[:1]), rtol=1e-5, atol=1e-5
  )


def test_local_response_norm_matches_definition():
  a = np.abs(np.random.default_rng(0).normal(size=(2, 3, 3, 9))).astype(np.float32) * 30
  b = np.asarray(alexnet.local_response_norm(jnp.asarray(a)))
  expected = np.empty_like(a)
  for i in range(9):
    lo, hi = max(0, i - 2), min(8, i + 2)
    expected[..., i] = a[..., i] / (2 + 1e-4 * (a[..., lo : hi + 1] ** 2).sum(-1)) ** 0.75
  np.testing.assert_allclose(b, expected, rtol=1e-5)
