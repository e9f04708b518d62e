"""The eval step's sums over padded batches, for classification and segmentation."""

import flax.linen as nn
import jax
import numpy as np
import optax
import pytest

from research import models
from research.train import parallel, steps
from research.train import state as state_lib


def _batch(shape, num_classes, labels_shape, rng):
  return {
    "image": rng.normal(size=shape).astype(np.float32),
    "label": rng.integers(0, num_classes, size=labels_shape).astype(np.int32),
    "mask": np.r_[np.ones(shape[0] - 3), np.zeros(3)].astype(np.float32),
  }


class PixelClassifier(nn.Module):
  """A 3x3 convolution to per-pixel logits (N, H, W, C): the FCNs' output, compiled in seconds."""

  num_classes: int

  @nn.compact
  def __call__(self, x, train: bool = False):
    del train
    return nn.Conv(self.num_classes, (3, 3))(x)


@pytest.mark.parametrize(
  "name", ["pixel_classifier", pytest.param("fcn8s", marks=pytest.mark.slow)]
)
def test_segmentation_train_and_eval_steps_data_parallel(name):
  rng = np.random.default_rng(0)
  if name == "fcn8s":
    model = models.create("fcn8s", num_classes=3, width=0.0625, fc6_kernel=1, dropout_rate=0.0)
  else:
    model = PixelClassifier(num_classes=3)
  variables = state_lib.init_variables(model, jax.random.PRNGKey(0), (32, 32, 3))
  tx = optax.sgd(0.01)
  state = state_lib.create_train_state(dict(variables), tx, None, jax.random.PRNGKey(1))
  mesh = parallel.create_mesh()
  state = parallel.replicate(state, mesh)
  batch = _batch((8, 32, 32, 3), 3, (8, 32, 32), rng)
  train = parallel.data_parallel_train_step(steps.make_train_step(model, tx), mesh)
  train_batch = {k: v for k, v in batch.items() if k != "mask"}
  state, metrics = train(state, parallel.put_batch(train_batch, mesh))
  assert np.isfinite(float(parallel.fetch(metrics)["loss"]))
  evaluate = parallel.data_parallel_eval_step(
    steps.make_eval_step(model, num_classes=3, task="segmentation"), mesh
  )
  sums = parallel.fetch(evaluate(state, parallel.put_batch(batch, mesh)))
  assert float(sums["count"]) == 5
  confusion = np.asarray(sums["confusion"])
  assert confusion.shape == (3, 3) and confusion.sum() == 5 * 32 * 32  # padded rows excluded
  out = steps.summarize(sums)
  assert 0.0 <= out["mean_iou"] <= 1.0
  np.testing.assert_allclose(out["pixel_accuracy"], np.trace(confusion) / confusion.sum())


def test_eval_sums_add_up_to_the_whole_split():
  rng = np.random.default_rng(1)
  model = models.create("mlp", num_classes=4, depth=1, width=8)
  variables = state_lib.init_variables(model, jax.random.PRNGKey(0), (2, 2, 1))
  state = state_lib.create_train_state(dict(variables), optax.sgd(0.1), None, jax.random.PRNGKey(1))
  batch = _batch((16, 2, 2, 1), 4, (16,), rng)
  mesh = parallel.create_mesh()
  evaluate = parallel.data_parallel_eval_step(steps.make_eval_step(model, num_classes=4), mesh)
  out = steps.summarize(
    parallel.fetch(evaluate(parallel.replicate(state, mesh), parallel.put_batch(batch, mesh)))
  )
  logits = model.apply(variables, batch["image"][:13])
  labels = batch["label"][:13]
  expected_loss = float(optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean())
  np.testing.assert_allclose(out["loss"], expected_loss, rtol=1e-5)
  np.testing.assert_allclose(out["accuracy"], float((logits.argmax(-1) == labels).mean()))
