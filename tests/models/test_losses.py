"""Losses and metrics against hand-written formulas."""

import jax.numpy as jnp
import numpy as np
import pytest

from research import models


def _np_cross_entropy(s, y):
  s = s - s.max(-1, keepdims=True)
  logp = s - np.log(np.exp(s).sum(-1, keepdims=True))
  return -logp[np.arange(len(y)), y].mean()


def test_softmax_cross_entropy_matches_formula():
  rng = np.random.default_rng(0)
  s = rng.normal(size=(6, 5)).astype(np.float32) * 3
  y = rng.integers(0, 5, size=6)
  np.testing.assert_allclose(models.softmax_cross_entropy(s, y), _np_cross_entropy(s, y), rtol=1e-5)


def test_weights_drop_padded_examples():
  rng = np.random.default_rng(1)
  s = rng.normal(size=(6, 4)).astype(np.float32)
  y = rng.integers(0, 4, size=6)
  mask = np.array([1, 1, 1, 1, 0, 0], np.float32)
  np.testing.assert_allclose(
    models.softmax_cross_entropy(s, y, mask), _np_cross_entropy(s[:4], y[:4]), rtol=1e-5
  )
  np.testing.assert_allclose(
    models.accuracy(s, y, mask), (s[:4].argmax(-1) == y[:4]).mean(), rtol=1e-6
  )


def test_svm_loss_slides_example():
  # The cs231n-style example: scores of three images for (cat, car, frog).
  s = jnp.array([[3.2, 5.1, -1.7], [1.3, 4.9, 2.0], [2.2, 2.5, -3.1]])
  y = jnp.array([0, 1, 2])
  # Per-example losses 2.9, 0, 12.9.
  np.testing.assert_allclose(models.multiclass_svm_loss(s, y), (2.9 + 0.0 + 12.9) / 3, rtol=1e-5)


def test_penalties_count_kernels_only():
  params = {"dense": {"kernel": jnp.array([[1.0, -2.0]]), "bias": jnp.array([5.0])}}
  assert float(models.l2_penalty(params)) == pytest.approx(5.0)
  assert float(models.l1_penalty(params)) == pytest.approx(3.0)
  assert float(models.l2_penalty(params, weights_only=False)) == pytest.approx(30.0)
  with pytest.raises(ValueError, match="kernel"):
    models.l2_penalty({"w": jnp.ones(3)})


def test_top_k_accuracy():
  s = jnp.array([[0.1, 0.5, 0.3, 0.2], [0.9, 0.0, 0.06, 0.05]])
  y = jnp.array([2, 3])
  assert float(models.top_k_accuracy(s, y, 1)) == 0.0
  assert float(models.top_k_accuracy(s, y, 2)) == 0.5
  assert float(models.top_k_accuracy(s, y, 3)) == 1.0


def test_iou_per_class_and_mean():
  labels = jnp.array([[0, 0, 1, 1], [2, 2, 2, 1]])
  pred = jnp.array([[0, 1, 1, 1], [2, 2, 0, 1]])
  logits = jnp.eye(4)[pred]  # 4 classes, class 3 never occurs
  iou = models.confusion_iou(logits, labels, 4)
  # class 0: TP 1, FP 1, FN 1 -> 1/3; class 1: TP 3, FP 1 -> 3/4; class 2: TP 2, FN 1 -> 2/3.
  np.testing.assert_allclose(iou[:3], [1 / 3, 3 / 4, 2 / 3], rtol=1e-6)
  assert np.isnan(iou[3])
  np.testing.assert_allclose(
    models.mean_iou(logits, labels, 4), (1 / 3 + 3 / 4 + 2 / 3) / 3, rtol=1e-6
  )


def test_shape_mismatch_is_explained():
  with pytest.raises(ValueError, match="labels"):
    models.softmax_cross_entropy(jnp.zeros((3, 4)), jnp.zeros((4,), jnp.int32))
